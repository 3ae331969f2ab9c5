//! `hashscan demo`: the whole path against the bundled loopback test web.
//!
//! Starts the synthetic web of benign generated images on 127.77.x.x,
//! writes its generated reference file into the data directory, scans it
//! with exactly that loopback range allowed, prints the hits, and checks
//! them against the web's ground truth.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hashscan_embedded::ScanOptions;
use hashscan_fetch::FetchConfig;
use hashscan_hash::CryptoAlgo;
use hashscan_netguard::{parse_net, NetPolicy, Overrides};
use hashscan_scheduler::{ScanPlan, SchedulerConfig};
use hashscan_store::{CaseStore, HitFilter, MatchKind, SqliteStore};
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

    let scan_id = format!("demo-{}", crate::scan_cmd::default_scan_id().trim_start_matches("scan-"));
    let options = loopback_scan(
        &scan_id,
        &manifest.seeds,
        &web.allow_net(),
        &manifest.resolve_flags(),
        &reference_path,
        &args.data_dir,
        args.rate,
    )?;
    let report = crate::scan_cmd::execute(options, &args.data_dir, false).await;
    web.shutdown().await;
    report?;

    let store = SqliteStore::open(&db_path(&args.data_dir))?;
    let hits = store.hits(HitFilter { scan: Some(scan_id.clone()), ..HitFilter::default() }).await?;
    println!();
    print_hits(&hits, args.format)?;

    // Check the hits against the ground truth: the demo shows the scanner works.
    // Cases without a reference match are unlisted images raised by where
    // they were seen (every site of this web carries listed material).
    let expected: Vec<String> = manifest.expected_hits().map(|c| c.digests.hex(CryptoAlgo::Blake3)).collect();
    let (listed, around): (Vec<_>, Vec<_>) = hits.iter().partition(|h| h.match_kind != MatchKind::None);
    let found = listed.iter().filter(|h| expected.contains(&h.blake3)).count();
    let false_hits = listed.len() - found;
    eprintln!(
        "\ndemo: {found} of {} listed images found, {false_hits} false hit(s), {} unlisted image(s) raised by \
         their circumstances; results in {} (try `hashscan hits --data-dir {}`)",
        expected.len(),
        around.len(),
        db_path(&args.data_dir).display(),
        args.data_dir.display()
    );
    Ok(if found == expected.len() && false_hits == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Options for an embedded scan of a generated loopback web: exactly its
/// address range allowed, every host pinned, `rate` requests per second
/// per host, the reference file at `reference_path`.
pub(crate) fn loopback_scan(
    scan_id: &str,
    seeds: &[String],
    allow_net: &str,
    resolve: &[String],
    reference_path: &Path,
    data_dir: &Path,
    rate: f64,
) -> anyhow::Result<ScanOptions> {
    if !(rate > 0.0 && rate.is_finite()) {
        anyhow::bail!("--rate must be a positive number of requests per second, got {rate}");
    }
    let reference = crate::scan_cmd::load_reference(reference_path)?;
    let seeds = seeds.iter().map(|s| Url::parse(s)).collect::<Result<Vec<_>, _>>()?;
    let fetch = FetchConfig {
        policy: NetPolicy::with_allowed(vec![parse_net(allow_net)?]),
        overrides: Overrides::parse(resolve)?,
        ..FetchConfig::default()
    };
    Ok(ScanOptions {
        scan_id: scan_id.to_string(),
        plan: ScanPlan {
            crawl: SchedulerConfig { host_interval: Duration::from_secs_f64(1.0 / rate), ..Default::default() },
            ..ScanPlan::new(seeds)
        },
        fetchers: 16,
        matchers: 2,
        threshold: 0.5,
        fetch,
        reference: Arc::new(reference),
        reference_path: Some(reference_path.to_path_buf()),
        applied_reference: Some(data_dir.join(crate::scan_cmd::APPLIED_REFERENCE)),
    })
}
