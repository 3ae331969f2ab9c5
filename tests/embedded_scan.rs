//! End-to-end: an embedded scan of the loopback test web finds exactly the
//! listed images it can reach, records everything else, and fetches only
//! what it should.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use hashscan_hash::CryptoAlgo;
use hashscan_netguard::NetPolicy;
use hashscan_store::{CaseStore, HitFilter, MatchKind, ScanStore};
use hashscan_tests::scan_test_web;
use hashscan_testweb::WebSpec;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_scan_finds_every_reachable_listed_image_and_nothing_else() {
    let s = scan_test_web(WebSpec::default(), |_| {}).await;
    let m = s.web.manifest().clone();
    let hits = s.store.hits(HitFilter::default()).await.unwrap();

    let expected: BTreeSet<String> = m.expected_hits().map(|c| c.digests.hex(CryptoAlgo::Blake3)).collect();
    let (listed, around): (Vec<_>, Vec<_>) = hits.iter().partition(|h| h.match_kind != MatchKind::None);
    let found: BTreeSet<String> = listed.iter().map(|h| h.blake3.clone()).collect();
    assert_eq!(found, expected, "reference hits must be exactly the reachable listed images");
    assert_eq!(expected.len() as u64, m.expected.listed);
    // Every other case is an unlisted image that was seen next to listed
    // material (on this web every site carries some), and says so.
    let listed_pages: BTreeSet<&String> = m.expected_hits().flat_map(|c| c.pages.iter()).collect();
    for h in &around {
        let truth = m.content_by_blake3(&h.blake3).expect("every case is a served content");
        assert!(!truth.listed && h.score < 1.0 && h.reasons.is_empty(), "{h:?}");
        assert!(h.factors.iter().any(|f| f.factor == "cooccurrence"), "{:?}", h.factors);
        assert!(truth.pages.iter().any(|p| listed_pages.contains(p)), "{} met no listed image", h.image_url);
    }

    for h in &listed {
        let truth = m.content_by_blake3(&h.blake3).expect("every hit is a served content");
        assert_eq!(h.md5, truth.digests.hex(CryptoAlgo::Md5));
        assert_eq!(h.sha1, truth.digests.hex(CryptoAlgo::Sha1));
        assert_eq!(h.sha256, truth.digests.hex(CryptoAlgo::Sha256));
        assert_eq!(h.bytes, truth.digests.bytes);
        assert_eq!(h.score, 1.0);
        assert_eq!(h.match_kind, MatchKind::Exact);
        assert_eq!(h.match_algo.as_deref(), truth.listed_by.map(|a| a.name()), "named by the column that lists it");
        assert_eq!(h.reference_version.as_deref(), Some(s.reference.version()));
        assert_eq!(h.status, "open");
        assert_eq!(h.scan, "s1");
        assert_eq!(h.reasons.len(), 1);
        assert!(h.reasons[0].note.contains(s.reference.version()), "{:?}", h.reasons);
        let pages: BTreeSet<&String> = h.page_urls.iter().collect();
        let truth_pages: BTreeSet<&String> = truth.pages.iter().collect();
        assert_eq!(pages, truth_pages, "every page that shows {} and no other", h.image_url);
        for u in &h.image_urls {
            assert!(truth.urls.contains(u), "{u} serves this content");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counts_of_pages_images_and_failures_match_the_manifest() {
    let s = scan_test_web(WebSpec::default(), |_| {}).await;
    let e = &s.web.manifest().expected;
    let r = &s.report.summary;
    assert_eq!(r.pages, e.pages, "{r:?}");
    assert_eq!(r.images, e.images, "{r:?}");
    assert_eq!(r.data_images, e.data_images, "{r:?}");
    assert_eq!(r.redirects, e.redirects, "{r:?}");
    let failed: HashMap<&str, u64> = r.failed.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let want: HashMap<&str, u64> = e.failed.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(failed, want);
    assert_eq!(s.report.stored.contents, e.contents, "one record per distinct content");
    assert!(r.rejected.get("out_of_scope").copied().unwrap_or(0) > 0, "the outside site was refused: {r:?}");
    // Every URL offered ended somewhere: queued or refused with a reason.
    assert_eq!(r.discovered, r.queued + r.rejected.values().sum::<u64>());
    // Every queued task produced exactly one recorded outcome.
    // (robots.txt requests are recorded too, but are not URLs of the scan.)
    let fetches = s.store.fetches("s1").await.unwrap();
    let robots = fetches.iter().filter(|f| f.kind == "robots").count() as u64;
    assert_eq!(robots, r.robots.values().sum::<u64>());
    assert_eq!(fetches.len() as u64 - robots, r.queued);
    assert_eq!(r.queued, r.pages + r.images + r.redirects + r.failed_total());
    assert_eq!(r.unaccounted(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_hashed_image_is_recorded_with_score_hit_or_not() {
    let s = scan_test_web(WebSpec { seed: 7, sites: 2, ..WebSpec::default() }, |_| {}).await;
    let m = s.web.manifest();
    let all = s.store.hits(HitFilter { all: true, ..HitFilter::default() }).await.unwrap();
    assert_eq!(all.len() as u64, m.expected.contents);
    for h in &all {
        let truth = m.content_by_blake3(&h.blake3).expect("a served content");
        assert!(truth.reachable);
        if truth.listed {
            assert_eq!((h.score, h.status.as_str()), (1.0, "open"));
        } else {
            // Unlisted: no reference reasons; any score comes from named
            // circumstance factors, and only company of listed material
            // makes a case.
            assert_eq!(h.match_kind, MatchKind::None);
            assert!(h.reasons.is_empty());
            assert!(h.score < 1.0 && (h.score == 0.0 || !h.factors.is_empty()), "{h:?}");
            if h.status != "none" {
                assert!(h.factors.iter().any(|f| f.factor == "cooccurrence"), "{:?}", h.factors);
            }
        }
        assert!(!h.page_urls.is_empty(), "{} has its pages", h.image_url);
        // The fetcher's PDQ is the PDQ of the same bytes decoded offline.
        assert_eq!(h.pdq, truth.pdq, "{}", h.image_url);
        assert_eq!(h.pdq_quality, truth.pdq_quality, "{}", h.image_url);
        match &truth.pdq_error {
            Some(code) => {
                let err = h.pdq_error.as_deref().unwrap_or_default();
                assert!(err.starts_with(code.as_str()), "{}: {err:?} should say {code}", h.image_url);
            }
            None => assert_eq!((h.pdq_error.as_ref(), h.width.is_some()), (None, true), "{}", h.image_url),
        }
    }
    let broken = all.iter().filter(|h| h.pdq_error.is_some()).count();
    assert_eq!(broken, 1, "the truncated JPEG is recorded with the reason it has no PDQ");
    // data: images are recorded under their synthetic id, never their bytes.
    let data: Vec<_> = all.iter().filter(|h| h.image_url.starts_with("data:")).collect();
    assert_eq!(data.len(), 2);
    for h in data {
        assert_eq!(h.image_url, format!("data:image/png;blake3={}", h.blake3));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_log_shows_only_reachable_urls_each_fetched_once() {
    let s = scan_test_web(WebSpec { seed: 3, sites: 3, ..WebSpec::default() }, |_| {}).await;
    let m = s.web.manifest();
    let log = s.web.access_log();
    // Each host's first request is its robots.txt (this web has none: 404,
    // allow all), and nothing else is asked twice.
    let mut first = BTreeMap::new();
    for entry in &log {
        first.entry(entry.host.clone()).or_insert(entry.path.clone());
    }
    assert!(first.values().all(|p| p == "/robots.txt"), "{first:?}");
    let log: Vec<_> = log.into_iter().filter(|e| e.path != "/robots.txt").collect();
    assert_eq!(log.len() as u64, s.report.summary.queued, "one request per queued URL");
    let mut seen = BTreeSet::new();
    for entry in &log {
        let key = (entry.host.clone(), entry.path.clone());
        assert!(seen.insert(key), "{} {} fetched twice", entry.host, entry.path);
        assert!(entry.user_agent.as_deref().is_some_and(|ua| ua.starts_with("hashscan/")), "{entry:?}");
        assert_ne!(entry.host, "www.outside.test", "out of scope: {entry:?}");
        assert!(!entry.path.contains("orphan") && !entry.path.contains("/hidden/"), "never linked: {entry:?}");
    }
    let unreachable: Vec<_> = m.pages.iter().filter(|p| !p.reachable).collect();
    assert!(!unreachable.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_host_interval_holds_in_the_server_log() {
    let interval = Duration::from_millis(40);
    let s = scan_test_web(WebSpec { seed: 5, sites: 2, pages_per_site: 6, ..WebSpec::default() }, |o| {
        o.plan.crawl.host_interval = interval;
    })
    .await;
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut gaps = 0;
    for entry in s.web.access_log() {
        if let Some(prev) = last.insert(entry.host.clone(), entry.at_ms) {
            let gap = entry.at_ms - prev;
            // 1 ms of slack: the log truncates times to whole milliseconds.
            assert!(gap + 1 >= interval.as_millis() as u64, "{}: {gap} ms between requests", entry.host);
            gaps += 1;
        }
    }
    assert!(gaps > 20, "enough repeat requests to measure: {gaps}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loopback_is_refused_unless_allowed() {
    let s = scan_test_web(WebSpec { sites: 1, ..WebSpec::default() }, |o| {
        o.fetch.policy = NetPolicy::open_web();
    })
    .await;
    let r = &s.report.summary;
    assert_eq!(r.pages, 0);
    assert_eq!(r.failed.get("net_policy"), Some(&1), "{r:?}");
    assert!(s.web.access_log().is_empty(), "no request reached the server");
    let fetches = s.store.fetches("s1").await.unwrap();
    assert!(fetches[0].detail.as_deref().unwrap_or("").contains("loopback"), "{fetches:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn page_budget_and_depth_limit_bound_the_crawl() {
    let s = scan_test_web(WebSpec { sites: 1, ..WebSpec::default() }, |o| {
        o.plan.budgets.max_pages = 3;
    })
    .await;
    assert_eq!(s.report.summary.pages, 3);
    assert!(s.report.summary.rejected.get("page_budget").copied().unwrap_or(0) > 0);

    let s = scan_test_web(WebSpec { sites: 1, ..WebSpec::default() }, |o| {
        o.plan.budgets.max_depth = 0;
    })
    .await;
    assert_eq!(s.report.summary.pages, 1, "only the seed");
    assert!(s.report.summary.rejected.get("too_deep").copied().unwrap_or(0) > 0);
}
