//! `hashscan recheck`: are the images of cases still online? Records when
//! they went, for time-to-removal figures per host.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hashscan_fetch::{FetchConfig, Fetcher};
use hashscan_netguard::{parse_net, NetPolicy, Overrides};
use hashscan_recheck::{recheck, RecheckOptions};
use hashscan_store::CASE_STATUSES;
use url::Url;

use crate::store_args::StoreArgs;

#[derive(Args)]
pub struct RecheckArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Cases in these statuses are re-checked (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "open,confirmed,escalate",
          value_parser = clap::builder::PossibleValuesParser::new(CASE_STATUSES))]
    status: Vec<String>,
    /// Requests per second to one host.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Allow connections to this otherwise forbidden range (CIDR; repeatable).
    #[arg(long = "allow-net", value_name = "CIDR")]
    allow_net: Vec<String>,
    /// Pin a host name to an address, like curl (`HOST=IP`; repeatable).
    #[arg(long = "resolve", value_name = "HOST=IP")]
    resolve: Vec<String>,
    /// Where a webmaster learns who asks (put in the User-Agent).
    #[arg(long, value_name = "URL", default_value = hashscan_fetch::DEFAULT_CONTACT)]
    contact: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: RecheckArgs) -> anyhow::Result<ExitCode> {
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        anyhow::bail!("--rate must be a positive number of requests per second, got {}", args.rate);
    }
    if !args.store.exists() {
        anyhow::bail!("no results in {} (run `hashscan scan` first)", args.store.describe());
    }
    let contact = Url::parse(&args.contact).with_context(|| format!("--contact {:?} is not a URL", args.contact))?;
    let config = FetchConfig {
        policy: NetPolicy::with_allowed(args.allow_net.iter().map(|s| parse_net(s)).collect::<Result<Vec<_>, _>>()?),
        overrides: Overrides::parse(&args.resolve)?,
        user_agent: hashscan_fetch::user_agent("hashscan", contact.as_str()),
        ..FetchConfig::default()
    };
    let fetcher = Arc::new(Fetcher::new(config).map_err(|e| anyhow::anyhow!("cannot start the HTTP client: {e}"))?);
    let store = args.store.open().await?;
    let options = RecheckOptions {
        statuses: args.status.clone(),
        host_interval: Duration::from_secs_f64(1.0 / args.rate),
        ..RecheckOptions::default()
    };
    let report = recheck(store, fetcher, &options).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{:<40} {:>6} {:>7} {:>8} {:>8}", "HOST", "CASES", "ONLINE", "OFFLINE", "UNKNOWN");
        for (host, h) in &report.hosts {
            println!("{host:<40} {:>6} {:>7} {:>8} {:>8}", h.cases, h.online, h.offline, h.unknown);
        }
        println!(
            "{} case(s) re-checked with {} request(s): {} online, {} offline, {} unknown \
             (see `hashscan hits` for offline_since and removal_secs)",
            report.cases, report.requests, report.online, report.offline, report.unknown
        );
    }
    Ok(ExitCode::SUCCESS)
}
