//! Shared set-up of the end-to-end tests: serve the loopback test web,
//! scan it in embedded mode, and hand back everything a test asserts on.
//!
//! Only loopback is ever crawled: the scan allows exactly the test web's
//! 127.77/16 range and pins every host name to its address.
#![deny(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use hashscan_embedded::{EmbeddedScan, ScanOptions, ScanReport};
use hashscan_fetch::FetchConfig;

use hashscan_netguard::{parse_net, NetPolicy, Overrides};
use hashscan_refset::ReferenceSet;
use hashscan_scheduler::{ScanPlan, SchedulerConfig};
use hashscan_store::SqliteStore;
use hashscan_testweb::{TestWeb, WebSpec};
use url::Url;

/// A finished scan of a served test web.
pub struct Scanned {
    /// The web, still serving (its access log is the server's view).
    pub web: TestWeb,
    /// The scan's report.
    pub report: ScanReport,
    /// The results.
    pub store: SqliteStore,
    /// The reference set the scan used.
    pub reference: Arc<ReferenceSet>,
    /// Keeps the data directory alive.
    pub dir: tempfile::TempDir,
}

/// Scan options for the served web: its seeds, its loopback range allowed,
/// every host pinned, a fast per-host rate.
pub fn options_for(web: &TestWeb, scan_id: &str) -> ScanOptions {
    let m = web.manifest();
    scan_options(scan_id, &m.seeds, &web.allow_net(), &m.resolve_flags(), web.reference_csv())
}

/// Scan options for a loopback web: `seeds`, the `allow_net` range allowed,
/// hosts pinned by `resolve`, the CSV `reference`, a fast per-host rate.
pub fn scan_options(
    scan_id: &str,
    seeds: &[String],
    allow_net: &str,
    resolve: &[String],
    reference: &str,
) -> ScanOptions {
    let (reference, _) =
        ReferenceSet::parse("reference.csv", reference.as_bytes()).expect("the generated reference file is valid");
    ScanOptions {
        scan_id: scan_id.to_string(),
        plan: ScanPlan {
            crawl: SchedulerConfig { host_interval: Duration::from_millis(10), ..SchedulerConfig::default() },
            ..ScanPlan::new(seeds.iter().map(|s| Url::parse(s).expect("seed URL")).collect())
        },
        fetchers: 8,
        matchers: 2,
        threshold: 0.5,
        fetch: FetchConfig {
            policy: NetPolicy::with_allowed(vec![parse_net(allow_net).expect("CIDR")]),
            overrides: Overrides::parse(resolve).expect("resolve flags"),
            ..FetchConfig::default()
        },
        reference: Arc::new(reference),
        reference_path: None,
        applied_reference: None,
    }
}

/// Serves a web for `spec`, scans it with [`options_for`] as changed by
/// `tweak`, and returns the result.
pub async fn scan_test_web(spec: WebSpec, tweak: impl FnOnce(&mut ScanOptions)) -> Scanned {
    let web = TestWeb::start(spec, 0).await.expect("test web starts on loopback");
    let mut options = options_for(&web, "s1");
    tweak(&mut options);
    let reference = options.reference.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("hashscan.db")).expect("store opens");
    let report = EmbeddedScan::new(options, store.clone()).run().await.expect("scan runs to its end");
    Scanned { web, report, store, reference, dir }
}
