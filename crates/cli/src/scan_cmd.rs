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
use hashscan_scheduler::{ScanPlan, SchedulerConfig};
use hashscan_store::SqliteStore;
use url::Url;

/// `hashscan scan`: run a scan here, or (with a subcommand) on a cluster.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ScanCli {
    #[command(subcommand)]
    pub action: Option<crate::cluster_cmd::ScanAction>,
    #[command(flatten)]
    pub run: ScanArgs,
}

/// Where a scan starts.
#[derive(Args, Clone)]
pub struct SeedArgs {
    /// A start URL (repeatable).
    #[arg(long = "seed", value_name = "URL")]
    seeds: Vec<String>,
    /// A file of start URLs, one per line (`#` starts a comment).
    #[arg(long = "seeds", value_name = "FILE")]
    seeds_file: Option<PathBuf>,
}

#[derive(Args, Clone)]
pub struct ScanArgs {
    #[command(flatten)]
    seeds: SeedArgs,
    /// The reference: a list file (CSV/TSV, JSON Lines, hash lines, signal
    /// lines; gzip allowed), a `.toml` set definition, or an index built by
    /// `hashscan refset build`. Watched during the scan: a change (or SIGHUP)
    /// reloads it without stopping.
    #[arg(long, value_name = "FILE")]
    reference: Option<PathBuf>,
    /// Run again every DURATION (e.g. `12h`, `1d`) until stopped (`hashscan
    /// scan stop ID`); later runs look first where earlier ones found
    /// listed material. Run n > 1 is recorded as scan `ID-n`.
    #[arg(long, value_name = "DURATION")]
    every: Option<humantime::Duration>,
    /// With --every: stop after this many runs.
    #[arg(long, requires = "every")]
    runs: Option<u64>,
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
    /// User-Agent header sent with every request (default: the robots
    /// token, the contact URL and what the crawler does).
    #[arg(long)]
    pub user_agent: Option<String>,
    /// Our product token in robots.txt groups (`User-agent: TOKEN`).
    #[arg(long, default_value = "hashscan")]
    pub robots_agent: String,
    /// Where a webmaster learns who crawls and how to object: put in the
    /// default User-Agent. Point it at your hotline's page.
    #[arg(long, value_name = "URL", default_value = hashscan_fetch::DEFAULT_CONTACT)]
    pub contact: String,
    /// Do not obey robots.txt Allow/Disallow (Crawl-delay and rate limits
    /// still hold). Recorded on the scan and on every case it finds.
    #[arg(long)]
    pub ignore_robots: bool,
    /// A robots.txt Crawl-delay above this many seconds leaves the host alone.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub max_crawl_delay: f64,
    /// Requests per second across the whole scan (default: no cap beyond
    /// the per-host rate and --fetchers).
    #[arg(long, value_name = "REQ_PER_SEC")]
    pub max_rate: Option<u32>,
    /// Also crawl pages on this host or domain (and its subdomains; repeatable).
    #[arg(long = "allow-domain", value_name = "DOMAIN")]
    pub allow_domains: Vec<String>,
    /// Never request this host or domain (and its subdomains; repeatable).
    #[arg(long = "deny-domain", value_name = "DOMAIN")]
    pub deny_domains: Vec<String>,
    /// Fetch at most this many pages from one host.
    #[arg(long, default_value_t = 2_000)]
    pub max_pages_per_host: u64,
    /// Seconds to establish a connection.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Seconds from request to response headers.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    pub first_byte_timeout: f64,
    /// Seconds for a whole request, body included.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub fetch_timeout: f64,
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
pub fn collect_seeds(args: &SeedArgs) -> anyhow::Result<Vec<Url>> {
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
    if !(0.0..=1.0).contains(&common.threshold) {
        bail!("--threshold must be between 0 and 1, got {}", common.threshold);
    }
    if common.fetchers == 0 {
        bail!("--fetchers must be at least 1");
    }
    let plan = crawl_plan(common, seeds)?;
    let fetch = fetch_config(common)?;
    let scan_id = common.scan_id.clone().unwrap_or_else(default_scan_id);
    Ok(ScanOptions {
        scan_id,
        plan,
        fetchers: common.fetchers,
        matchers: 2,
        threshold: common.threshold,
        fetch,
        reference: Arc::new(reference),
        reference_path: Some(reference_path.to_path_buf()),
        applied_reference: Some(common.data_dir.join(APPLIED_REFERENCE)),
    })
}

/// Checks and gathers the crawl flags into a plan: where and how politely
/// to crawl, the part of a scan that a cluster scan carries too.
pub fn crawl_plan(common: &CommonScanArgs, seeds: Vec<Url>) -> anyhow::Result<ScanPlan> {
    if !(common.rate > 0.0 && common.rate.is_finite()) {
        bail!("--rate must be a positive number of requests per second, got {}", common.rate);
    }
    if common.robots_agent.is_empty()
        || !common.robots_agent.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("--robots-agent must be a product token (letters, digits, '-', '_'), got {:?}", common.robots_agent);
    }
    let scope: ScopeMode = common.scope.parse().map_err(anyhow::Error::msg)?;
    let max_rate = match common.max_rate {
        Some(r) => Some(std::num::NonZeroU32::new(r).context("--max-rate must be at least 1")?),
        None => None,
    };
    let crawl = SchedulerConfig {
        host_interval: Duration::from_secs_f64(1.0 / common.rate),
        max_rate,
        robots_agent: common.robots_agent.clone(),
        ignore_robots: common.ignore_robots,
        max_crawl_delay: Duration::from_secs_f64(common.max_crawl_delay.clamp(0.0, 86_400.0)),
        ..SchedulerConfig::default()
    };
    if common.ignore_robots {
        tracing::warn!(
            "robots.txt Allow/Disallow is ignored for this scan; this is recorded on the scan and its cases"
        );
        eprintln!(
            "warning: --ignore-robots: robots.txt rules are not obeyed; this is recorded on the scan and every case"
        );
    }
    Ok(ScanPlan {
        seeds,
        scope,
        budgets: Budgets {
            max_depth: common.max_depth,
            max_pages: common.max_pages,
            max_pages_per_host: common.max_pages_per_host,
            ..Budgets::default()
        },
        crawl,
        allow_domains: common.allow_domains.clone(),
        deny_domains: common.deny_domains.clone(),
        host_page_caps: Default::default(),
    })
}

/// Checks and gathers the fetch flags (network policy, identity, timeouts).
fn fetch_config(common: &CommonScanArgs) -> anyhow::Result<FetchConfig> {
    let allow = common.allow_net.iter().map(|s| parse_net(s)).collect::<Result<Vec<_>, _>>()?;
    let overrides = Overrides::parse(&common.resolve)?;
    let pdq_mode = common.pdq_mode.parse().map_err(anyhow::Error::msg)?;
    let secs = |name: &str, v: f64| -> anyhow::Result<Duration> {
        if !(v > 0.0 && v.is_finite() && v < 86_400.0) {
            bail!("--{name} must be a positive number of seconds below a day, got {v}");
        }
        Ok(Duration::from_secs_f64(v))
    };
    let contact =
        Url::parse(&common.contact).with_context(|| format!("--contact {:?} is not a URL", common.contact))?;
    Ok(FetchConfig {
        policy: NetPolicy::with_allowed(allow),
        overrides,
        pdq_mode,
        user_agent: common
            .user_agent
            .clone()
            .unwrap_or_else(|| hashscan_fetch::user_agent(&common.robots_agent, contact.as_str())),
        connect_timeout: secs("connect-timeout", common.connect_timeout)?,
        first_byte_timeout: secs("first-byte-timeout", common.first_byte_timeout)?,
        total_timeout: secs("fetch-timeout", common.fetch_timeout)?,
        ..FetchConfig::default()
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
    // Where every URL went: discovered = queued + not queued; queued =
    // pages + images + redirects + not modified + failed.
    let not_queued: u64 = s.rejected.values().sum();
    eprintln!("  URLs discovered {} = queued {} + not queued {}", s.discovered, s.queued, not_queued);
    for (reason, n) in &s.rejected {
        eprintln!("    not queued ({reason}): {n}");
    }
    eprintln!(
        "  queued {} = pages {} + images {} + redirects {} + not modified since an earlier scan {} + failed {}",
        s.queued,
        s.pages,
        s.images,
        s.redirects,
        s.not_modified,
        s.failed_total()
    );
    for (reason, n) in &s.failed {
        eprintln!("    failed ({reason}): {n}");
    }
    for (what, n) in &s.robots {
        eprintln!("  robots.txt ({what}): {n}");
    }
    if s.throttled > 0 {
        eprintln!("  429/503 answers (host slowed down, task retried): {}", s.throttled);
    }
    if s.unaccounted() != 0 {
        eprintln!("  warning: {} queued URL(s) did not end anywhere; please report this", s.unaccounted());
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
    let seeds = collect_seeds(&args.seeds)?;
    let Some(path) = &args.reference else {
        bail!("--reference FILE is required: the lists to match against (see `hashscan refset check`)");
    };
    let Some(every) = args.every else {
        let reference = load_reference(path)?;
        let options = options(&args.common, seeds, reference, path)?;
        execute(options, &args.common.data_dir, args.common.json).await?;
        return Ok(ExitCode::SUCCESS);
    };
    if args.runs == Some(0) {
        bail!("--runs must be at least 1");
    }
    let id = args.common.scan_id.clone().unwrap_or_else(default_scan_id);
    // Each run reads the reference afresh: lists change between runs.
    let make = |run_id: &str| -> anyhow::Result<ScanOptions> {
        let common = CommonScanArgs { scan_id: Some(run_id.to_string()), ..args.common.clone() };
        options(&common, seeds.clone(), load_reference(path)?, path)
    };
    crate::schedule_cmd::recurring(&id, every.into(), args.runs, &args.common.data_dir, args.common.json, make).await?;
    Ok(ExitCode::SUCCESS)
}
