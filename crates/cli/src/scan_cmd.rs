//! `hashscan scan`: one embedded scan from seeds to hits.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use hashscan_embedded::{EmbeddedScan, ScanOptions, ScanReport};
use hashscan_fetch::FetchConfig;
use hashscan_frontier::{Budgets, ScopeMode};
use hashscan_netguard::{parse_net, NetPolicy, Overrides};
use hashscan_refset::ReferenceSet;
use hashscan_store::SqliteStore;
use url::Url;

#[derive(Args, Clone)]
pub struct ScanArgs {
    /// A start URL (repeatable).
    #[arg(long = "seed", value_name = "URL")]
    seeds: Vec<String>,
    /// A file of start URLs, one per line (`#` starts a comment).
    #[arg(long = "seeds", value_name = "FILE")]
    seeds_file: Option<PathBuf>,
    /// The reference: a list file (CSV/TSV, JSON Lines, hash lines, signal
    /// lines; gzip allowed), a `.toml` set definition, or an index built by
    /// `hashscan refset build`. Watched during the scan: a change (or SIGHUP)
    /// reloads it without stopping.
    #[arg(long, value_name = "FILE")]
    reference: PathBuf,
    #[command(flatten)]
    common: CommonScanArgs,
}

/// Options shared by `scan` and `demo`.
#[derive(Args, Clone)]
pub struct CommonScanArgs {
    /// Where results are written (SQLite database `hashscan.db`).
    #[arg(long, default_value = crate::DEFAULT_DATA_DIR, env = "HASHSCAN_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Follow links at most this deep from a seed.
    #[arg(long, default_value_t = 5)]
    pub max_depth: u32,
    /// Fetch at most this many pages.
    #[arg(long, default_value_t = 10_000)]
    pub max_pages: u64,
    /// Pages must be on a seed's host, or under a seed's registrable domain.
    #[arg(long, default_value = "domain", value_parser = ["host", "domain"])]
    pub scope: String,
    /// Requests per second to one host.
    #[arg(long, value_name = "REQ_PER_SEC_PER_HOST", default_value_t = 1.0)]
    pub rate: f64,
    /// Allow connections to this otherwise forbidden range (CIDR; repeatable).
    #[arg(long = "allow-net", value_name = "CIDR")]
    pub allow_net: Vec<String>,
    /// Pin a host name to an address, like curl (`HOST=IP`; repeatable).
    #[arg(long = "resolve", value_name = "HOST=IP")]
    pub resolve: Vec<String>,
    /// Parallel fetches.
    #[arg(long, default_value_t = 16)]
    pub fetchers: usize,
    /// Score at which an image becomes a case.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f64,
    /// Scan id (default: derived from the start time).
    #[arg(long)]
    pub scan_id: Option<String>,
    /// User-Agent header sent with every request.
    #[arg(long)]
    pub user_agent: Option<String>,
    /// How images are decoded for PDQ: `exact` decodes every pixel, `fast`
    /// decodes large JPEGs at reduced scale: ~1.8× faster on large
    /// photos, but hashes move by 8 bits (median) to 28 (measured worst); see docs/benchmarks.md.
    #[arg(long, default_value = "exact", value_parser = ["exact", "fast"])]
    pub pdq_mode: String,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Reads seed URLs from flags and a file; errors name file and line.
fn collect_seeds(args: &ScanArgs) -> anyhow::Result<Vec<Url>> {
    let mut seeds = Vec::new();
    for s in &args.seeds {
        seeds.push(parse_seed(s).with_context(|| format!("--seed {s:?}"))?);
    }
    if let Some(file) = &args.seeds_file {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            seeds.push(parse_seed(line).with_context(|| format!("{}:{}", file.display(), i + 1))?);
        }
    }
    if seeds.is_empty() {
        bail!("no seeds: give --seed URL or --seeds FILE");
    }
    Ok(seeds)
}

fn parse_seed(s: &str) -> anyhow::Result<Url> {
    let url = Url::parse(s).map_err(|e| anyhow::anyhow!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!("only http and https URLs with a host can be crawled");
    }
    Ok(url)
}

/// Loads the reference set, refusing to start on any malformed row.
pub fn load_reference(path: &Path) -> anyhow::Result<ReferenceSet> {
    match ReferenceSet::load(path) {
        Ok((set, warnings)) => {
            for w in warnings {
                tracing::warn!("{w}");
                eprintln!("warning: {w}");
            }
            Ok(set)
        }
        Err(hashscan_refset::LoadError::Invalid { errors }) => {
            for e in errors.iter().take(50) {
                eprintln!("error: {e}");
            }
            if errors.len() > 50 {
                eprintln!("… and {} more (run `hashscan refset check` for all)", errors.len() - 50);
            }
            bail!("reference file {} has {} malformed row(s); not scanning", path.display(), errors.len())
        }
        // The error already names the file.
        Err(e) => Err(anyhow::Error::new(e)),
    }
}

/// The copy of the last reference set applied to a data directory's
/// results, kept to diff the next version against (readable by its owner only).
pub const APPLIED_REFERENCE: &str = "reference-applied.hsref";

/// Builds scan options from the shared flags.
pub fn options(
    common: &CommonScanArgs,
    seeds: Vec<Url>,
    reference: ReferenceSet,
    reference_path: &Path,
) -> anyhow::Result<ScanOptions> {
    if !(common.rate > 0.0 && common.rate.is_finite()) {
        bail!("--rate must be a positive number of requests per second, got {}", common.rate);
    }
    if !(0.0..=1.0).contains(&common.threshold) {
        bail!("--threshold must be between 0 and 1, got {}", common.threshold);
    }
    if common.fetchers == 0 {
        bail!("--fetchers must be at least 1");
    }
    let allow = common.allow_net.iter().map(|s| parse_net(s)).collect::<Result<Vec<_>, _>>()?;
    let overrides = Overrides::parse(&common.resolve)?;
    let scope: ScopeMode = common.scope.parse().map_err(anyhow::Error::msg)?;
    let pdq_mode = common.pdq_mode.parse().map_err(anyhow::Error::msg)?;
    let mut fetch =
        FetchConfig { policy: NetPolicy::with_allowed(allow), overrides, pdq_mode, ..FetchConfig::default() };
    if let Some(ua) = &common.user_agent {
        fetch.user_agent = ua.clone();
    }
    let scan_id = common.scan_id.clone().unwrap_or_else(default_scan_id);
    Ok(ScanOptions {
        scan_id,
        seeds,
        scope,
        budgets: Budgets { max_depth: common.max_depth, max_pages: common.max_pages, ..Budgets::default() },
        host_interval: Duration::from_secs_f64(1.0 / common.rate),
        fetchers: common.fetchers,
        matchers: 2,
        threshold: common.threshold,
        fetch,
        reference: Arc::new(reference),
        reference_path: Some(reference_path.to_path_buf()),
        applied_reference: Some(common.data_dir.join(APPLIED_REFERENCE)),
    })
}

/// `scan-YYYYMMDDTHHMMSS.mmmZ` in UTC: sortable, readable, safe in file names.
pub fn default_scan_id() -> String {
    let t = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    format!("scan-{}", t.replace(['-', ':'], ""))
}

/// Runs a prepared scan with progress, prints its summary.
pub async fn execute(options: ScanOptions, data_dir: &Path, json: bool) -> anyhow::Result<ScanReport> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let db = crate::hits_cmd::db_path(data_dir);
    let store = SqliteStore::open(&db).with_context(|| format!("cannot open {}", db.display()))?;
    let scan = EmbeddedScan::new(options, store);
    let progress = crate::progress::start(scan.monitor());
    let report = scan.run().await;
    progress.finish().await;
    let report = report.context("scan failed")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report, data_dir);
    }
    Ok(report)
}

fn print_summary(r: &ScanReport, data_dir: &Path) {
    let s = &r.summary;
    eprintln!("scan {} finished in {:.1}s (reference version {})", r.scan_id, r.elapsed_secs, r.reference_version);
    eprintln!(
        "  pages {}  images {} (+{} data:)  redirects {}  failed {}  bytes hashed {}",
        s.pages,
        s.images,
        s.data_images,
        s.redirects,
        s.failed_total(),
        s.bytes
    );
    eprintln!("  URLs discovered {}  queued {}", s.discovered, s.queued);
    for (reason, n) in &s.rejected {
        eprintln!("    not queued ({reason}): {n}");
    }
    for (reason, n) in &s.failed {
        eprintln!("    failed ({reason}): {n}");
    }
    eprintln!("  distinct images {}  sightings {}  cases {}", r.stored.contents, r.stored.sightings, r.cases);
    let retro = &r.retro;
    if retro.scanned > 0 {
        eprintln!(
            "  earlier images re-matched against reference {}: {} examined, {} hit by what changed, {} case(s), {:.1}s",
            retro.to_version, retro.scanned, retro.rematched, retro.cases, retro.elapsed_secs
        );
    }
    eprintln!("  results: {}", crate::hits_cmd::db_path(data_dir).display());
}

pub async fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let seeds = collect_seeds(&args)?;
    let reference = load_reference(&args.reference)?;
    let options = options(&args.common, seeds, reference, &args.reference)?;
    execute(options, &args.common.data_dir, args.common.json).await?;
    Ok(ExitCode::SUCCESS)
}
