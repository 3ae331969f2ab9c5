//! `hashscan demo`: the whole path against the bundled loopback test web.
//!
//! Starts the synthetic web of benign generated images on 127.77.x.x,
//! writes its generated reference file into the data directory, scans it
//! with exactly that loopback range allowed, prints the hits, and checks
//! them against the web's ground truth.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hashscan_embedded::ScanOptions;
use hashscan_fetch::FetchConfig;
use hashscan_frontier::{Budgets, ScopeMode};
use hashscan_hash::CryptoAlgo;
use hashscan_netguard::{parse_net, NetPolicy, Overrides};
use hashscan_store::{CaseStore, HitFilter, SqliteStore};
use hashscan_testweb::{TestWeb, WebSpec};
use url::Url;

use crate::hits_cmd::{db_path, print_hits, Format};

#[derive(Args)]
pub struct DemoArgs {
    /// Where the demo's results and reference file are written.
    #[arg(long, default_value = "hashscan-demo")]
    data_dir: PathBuf,
    /// Seed of the generated web.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Requests per second to one test-web host.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// How to print the hits.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        anyhow::bail!("--rate must be a positive number of requests per second, got {}", args.rate);
    }
    let web = TestWeb::start(WebSpec { seed: args.seed, ..WebSpec::default() }, 0)
        .await
        .context("cannot start the loopback test web")?;
    let manifest = web.manifest().clone();
    eprintln!(
        "test web: {} hosts on {} port {}, {} pages, {} listed images reachable (benign, generated)",
        manifest.hosts.len(),
        web.allow_net(),
        manifest.port,
        manifest.expected.pages,
        manifest.expected.listed
    );

    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data directory {}", args.data_dir.display()))?;
    let reference_path = args.data_dir.join("demo-reference.csv");
    std::fs::write(&reference_path, web.reference_csv())
        .with_context(|| format!("cannot write {}", reference_path.display()))?;
    let reference = crate::scan_cmd::load_reference(&reference_path)?;

    let seeds = manifest.seeds.iter().map(|s| Url::parse(s)).collect::<Result<Vec<_>, _>>()?;
    let fetch = FetchConfig {
        policy: NetPolicy::with_allowed(vec![parse_net(&web.allow_net())?]),
        overrides: Overrides::parse(&manifest.resolve_flags())?,
        ..FetchConfig::default()
    };
    let scan_id = format!("demo-{}", crate::scan_cmd::default_scan_id().trim_start_matches("scan-"));
    let reference_path = reference_path.clone();
    let options = ScanOptions {
        scan_id: scan_id.clone(),
        seeds,
        scope: ScopeMode::Domain,
        budgets: Budgets::default(),
        host_interval: Duration::from_secs_f64(1.0 / args.rate),
        fetchers: 16,
        matchers: 2,
        threshold: 0.5,
        fetch,
        reference: Arc::new(reference),
        reference_path: Some(reference_path.clone()),
        applied_reference: Some(args.data_dir.join(crate::scan_cmd::APPLIED_REFERENCE)),
    };
    let report = crate::scan_cmd::execute(options, &args.data_dir, false).await;
    web.shutdown().await;
    report?;

    let store = SqliteStore::open(&db_path(&args.data_dir))?;
    let hits = store.hits(HitFilter { scan: Some(scan_id.clone()), ..HitFilter::default() }).await?;
    println!();
    print_hits(&hits, args.format)?;

    // Check the hits against the ground truth: the demo shows the scanner works.
    let expected: Vec<String> = manifest.expected_hits().map(|c| c.digests.hex(CryptoAlgo::Blake3)).collect();
    let found = hits.iter().filter(|h| expected.contains(&h.blake3)).count();
    let false_hits = hits.len() - found;
    eprintln!(
        "\ndemo: {found} of {} listed images found, {false_hits} false hit(s); results in {} (try `hashscan hits --data-dir {}`)",
        expected.len(),
        db_path(&args.data_dir).display(),
        args.data_dir.display()
    );
    Ok(if found == expected.len() && false_hits == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
