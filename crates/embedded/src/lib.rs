//! Embedded mode: every role of a scan as tokio tasks in one process.
//!
//! `hashscan scan` builds an [`EmbeddedScan`]: a scheduler, a pool of fetch
//! loops and a pool of match loops joined by a [`MemoryBus`], writing to one
//! SQLite [`SqliteStore`]. The roles are the same code the cluster runs; only
//! the bus and stores differ.
//!
//! Decision: shutdown is ordered by the data flow. When the scheduler reports
//! that nothing is queued or in flight, the fetch topic closes, fetchers
//! drain and exit, then the match topic closes and matchers drain. So every
//! hash a fetcher produced is recorded before `run` returns.
#![deny(missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hashscan_bus::{Bus, MemoryBus, Topic};
use hashscan_fetch::{FetchConfig, Fetcher, GuardedResolver};
use hashscan_frontier::MemoryFrontierStore;
use hashscan_matcher::reload::{self, ReloadConfig};
use hashscan_matcher::retro::RetroReport;
use hashscan_matcher::Matcher;
use hashscan_refset::ReferenceSet;
use hashscan_scheduler::{AddressBook, Progress, ScanPlan, ScanSummary, Scheduler, SchedulerConfig};
use hashscan_store::{ScanRecord, ScanStore, SqliteStore, StoreCounts};
use serde::Serialize;

/// Everything that defines one embedded scan.
#[derive(Clone)]
pub struct ScanOptions {
    /// Scan id (recorded on every sighting and case).
    pub scan_id: String,
    /// What to crawl and how politely (its `crawl.max_in_flight` is derived
    /// from `fetchers`).
    pub plan: ScanPlan,
    /// Parallel fetch loops.
    pub fetchers: usize,
    /// Parallel match loops.
    pub matchers: usize,
    /// Score at which an image becomes a case.
    pub threshold: f64,
    /// Fetch limits, network policy and overrides.
    pub fetch: FetchConfig,
    /// The reference set.
    pub reference: Arc<ReferenceSet>,
    /// Where the reference was loaded from: watched for changes (and SIGHUP)
    /// during the scan, and reloaded without stopping.
    pub reference_path: Option<PathBuf>,
    /// Where the set last applied to the store is kept, so that images seen
    /// in earlier scans are re-matched against what a new version adds.
    pub applied_reference: Option<PathBuf>,
}

/// What a finished scan reports.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    /// Scan id.
    pub scan_id: String,
    /// Where every URL ended up.
    pub summary: ScanSummary,
    /// Distinct images (by content) that became cases in this scan.
    pub cases: u64,
    /// What the store holds for this scan.
    pub stored: StoreCounts,
    /// Wall time.
    pub elapsed_secs: f64,
    /// Reference set version.
    pub reference_version: String,
    /// Images from earlier scans matched again against what the reference
    /// set added since they were last matched.
    pub retro: RetroReport,
}

/// An embedded scan failed to run to its end.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The fetcher could not start.
    #[error(transparent)]
    Init(#[from] hashscan_fetch::InitError),
    /// The scheduler stopped.
    #[error("scheduler: {0}")]
    Scheduler(#[from] hashscan_scheduler::SchedulerError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] hashscan_store::StoreError),
    /// Matching against the reference set failed.
    #[error("matcher: {0}")]
    Match(#[from] hashscan_matcher::MatchError),
    /// A role's loop failed.
    #[error("{role}: {detail}")]
    Role {
        /// Which role.
        role: &'static str,
        /// What happened.
        detail: String,
    },
}

/// Live view of a running scan, for progress displays.
#[derive(Clone)]
pub struct Monitor {
    /// Scheduler counters.
    pub progress: Arc<Progress>,
    matcher: Arc<Matcher>,
}

impl Monitor {
    /// Case openings so far.
    pub fn hits(&self) -> u64 {
        self.matcher.hits()
    }
}

/// A scan ready to run in this process.
pub struct EmbeddedScan {
    options: ScanOptions,
    store: SqliteStore,
    progress: Arc<Progress>,
    matcher: Arc<Matcher>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl EmbeddedScan {
    /// Prepares a scan writing to `store`.
    pub fn new(options: ScanOptions, store: SqliteStore) -> Self {
        let matcher = Arc::new(Matcher::new(options.reference.clone(), Arc::new(store.clone()), options.threshold));
        Self { options, store, progress: Arc::default(), matcher }
    }

    /// A handle to watch progress while [`EmbeddedScan::run`] runs.
    pub fn monitor(&self) -> Monitor {
        Monitor { progress: self.progress.clone(), matcher: self.matcher.clone() }
    }

    /// Runs the scan to its end.
    pub async fn run(self) -> Result<ScanReport, ScanError> {
        let started = Instant::now();
        let o = self.options;
        let config = serde_json::json!({
            "plan": o.plan,
            "host_interval_ms": o.plan.crawl.host_interval.as_millis() as u64,
            "ignore_robots": o.plan.crawl.ignore_robots,
            "allow_net": o.fetch.policy.allowed(),
            "user_agent": o.fetch.user_agent,
            "pdq_mode": o.fetch.pdq_mode,
            "decode_limits": o.fetch.decode,
            "threshold": o.threshold,
        });
        self.store
            .begin_scan(ScanRecord {
                id: o.scan_id.clone(),
                started_at_ms: now_ms(),
                config_json: config.to_string(),
                reference_version: o.reference.version().to_string(),
            })
            .await?;

        // Images of earlier scans meet the reference set's new entries first.
        let retro =
            reload::apply(&self.matcher, &self.store, o.reference.clone(), o.applied_reference.as_deref()).await?;
        let (stop_watch, stopped) = tokio::sync::watch::channel(false);
        let watcher = o.reference_path.clone().map(|path| {
            let config =
                ReloadConfig { path, interval: Duration::from_secs(5), applied_copy: o.applied_reference.clone() };
            tokio::spawn(reload::watch(self.matcher.clone(), Arc::new(self.store.clone()), config, stopped))
        });

        let max_in_flight = (o.fetchers * 2).max(1);
        let memory_bus = MemoryBus::new(max_in_flight * 4 + 64);
        let bus: Arc<dyn Bus> = Arc::new(memory_bus.clone());
        let fetcher = Arc::new(Fetcher::new(o.fetch.clone())?);
        let fetch_loops = tokio::spawn(hashscan_fetch::run_fetcher(bus.clone(), fetcher, o.fetchers));
        let match_loops = tokio::spawn(hashscan_matcher::run_matcher(bus.clone(), self.matcher.clone(), o.matchers));

        let frontier = o.plan.frontier(&o.scan_id, MemoryFrontierStore::new());
        let book = ResolverBook(GuardedResolver::new(o.fetch.policy.clone(), o.fetch.overrides.clone()));
        let scheduler = Scheduler::new(
            frontier,
            bus.clone(),
            Arc::new(self.store.clone()),
            SchedulerConfig { max_in_flight, ..o.plan.crawl.clone() },
            self.progress.clone(),
        )
        .with_address_book(Arc::new(book));
        let summary = scheduler.run(o.plan.seeds.clone()).await;

        memory_bus.close(Topic::Fetch);
        let fetched = fetch_loops.await;
        memory_bus.close(Topic::Match);
        let matched = match_loops.await;
        memory_bus.close(Topic::Report);
        let _ = stop_watch.send(true);
        if let Some(w) = watcher {
            let _ = w.await;
        }
        let summary = summary?;
        join("fetcher", fetched)?;
        join("matcher", matched)?;
        // Every message is in: score the scan's images on the whole evidence
        // (host figures included), whatever order it arrived in.
        self.matcher.rescorer().sweep(&o.scan_id, now_ms()).await?;
        let dead = memory_bus.dead_letters();
        if let Some(first) = dead.first() {
            return Err(ScanError::Role {
                role: "bus",
                detail: format!("{} message(s) rejected; first: {}", dead.len(), first.reason),
            });
        }

        let stored = self.store.counts(Some(o.scan_id.clone())).await?;
        let report = ScanReport {
            scan_id: o.scan_id.clone(),
            cases: stored.cases,
            summary,
            stored,
            elapsed_secs: started.elapsed().as_secs_f64(),
            reference_version: self.matcher.reference().version().to_string(),
            retro,
        };
        let summary_json = serde_json::to_string(&report).unwrap_or_default();
        self.store.finish_scan(&o.scan_id, now_ms(), summary_json).await?;
        tracing::info!(scan = %o.scan_id, pages = report.summary.pages, images = report.summary.images, cases = report.cases, "scan finished");
        Ok(report)
    }
}

/// Politeness keyed by the address the fetcher will connect to: the same
/// guarded resolver (policy and `--resolve` pins) the HTTP client uses.
struct ResolverBook(GuardedResolver);

#[async_trait::async_trait]
impl AddressBook for ResolverBook {
    async fn lookup(&self, host: &str) -> Option<std::net::IpAddr> {
        self.0.first_address(host).await
    }
}

fn join(
    role: &'static str,
    r: Result<Result<(), hashscan_bus::BusError>, tokio::task::JoinError>,
) -> Result<(), ScanError> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ScanError::Role { role, detail: e.to_string() }),
        Err(e) => Err(ScanError::Role { role, detail: e.to_string() }),
    }
}
