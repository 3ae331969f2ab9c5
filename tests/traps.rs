//! The crawler against the trap web, proven from the **server's** access log
//! (requests as the test web saw them, with arrival times), not from the
//! crawler's own counters: robots.txt obeyed, intervals held per host and
//! per address, every trap bounded, every failure recorded with its reason.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use hashscan_embedded::{EmbeddedScan, ScanOptions, ScanReport};
use hashscan_frontier::{Budgets, ScopeMode};
use hashscan_scheduler::SchedulerConfig;
use hashscan_store::{CaseStore, HitFilter, ScanStore, SqliteStore};
use hashscan_tests::scan_options;
use hashscan_testweb::{AccessEntry, TrapSpec, TrapWeb};
use url::Url;

const INTERVAL: Duration = Duration::from_millis(150);

fn spec() -> TrapSpec {
    TrapSpec {
        slow_delay: Duration::from_millis(1500),
        crawl_delay_secs: 1,
        retry_after_secs: 1,
        ..TrapSpec::default()
    }
}

fn options(web: &TrapWeb, scan_id: &str, seeds: &[String]) -> ScanOptions {
    let m = web.manifest();
    let mut o = scan_options(scan_id, seeds, &web.allow_net(), &m.resolve_flags(), web.reference_csv());
    o.plan.scope = ScopeMode::Host;
    // Deep enough that only the trap rules (and the per-host budget) can
    // stop the infinite spaces.
    o.plan.budgets = Budgets { max_depth: 1_000, max_pages_per_host: 60, ..Budgets::default() };
    o.plan.crawl =
        SchedulerConfig { host_interval: INTERVAL, robots_retry: Duration::from_millis(200), ..o.plan.crawl };
    o.fetch.first_byte_timeout = Duration::from_millis(700);
    o.fetch.total_timeout = Duration::from_millis(1200);
    o
}

async fn run(options: ScanOptions, store: &SqliteStore) -> ScanReport {
    tokio::time::timeout(Duration::from_secs(240), EmbeddedScan::new(options, store.clone()).run())
        .await
        .expect("the scan of the trap web ends by itself")
        .expect("scan runs to its end")
}

fn normal(url: &str) -> String {
    Url::parse(url).map(|u| u.to_string()).unwrap_or_else(|_| url.to_string())
}

/// The least gap between consecutive requests in `entries` (arrival times).
fn least_gap<'a>(entries: impl Iterator<Item = &'a AccessEntry>) -> Option<(u64, String)> {
    let mut v: Vec<&AccessEntry> = entries.collect();
    v.sort_by_key(|e| e.at_ms);
    v.windows(2).map(|w| (w[1].at_ms - w[0].at_ms, format!("{} {} → {}", w[0].host, w[0].path, w[1].path))).min()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scan_of_the_trap_web_is_polite_bounded_and_accounts_for_every_url() {
    let web = TrapWeb::start(spec(), 0).await.expect("trap web starts on loopback");
    let m = web.manifest().clone();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("hashscan.db")).unwrap();
    let report = run(options(&web, "traps", &m.seeds), &store).await;
    let log = web.access_log();
    let s = &report.summary;
    eprintln!("summary: {}", serde_json::to_string_pretty(s).unwrap());

    // robots.txt: first request on every host, never a disallowed path.
    let mut first: BTreeMap<&str, &str> = BTreeMap::new();
    for e in &log {
        first.entry(e.host.as_str()).or_insert(e.path.as_str());
    }
    for (host, path) in &first {
        assert_eq!(*path, "/robots.txt", "first request to {host}");
    }
    for (host, prefix) in &m.disallowed {
        let bad: Vec<_> = log.iter().filter(|e| &e.host == host && e.path.starts_with(prefix.as_str())).collect();
        assert!(bad.is_empty(), "disallowed {host}{prefix} was requested: {bad:?}");
    }
    // robots.txt 5xx: nothing else asked, a bounded number of retries.
    for host in &m.robots_unavailable {
        let asked: Vec<_> = log.iter().filter(|e| &e.host == host).collect();
        assert!(asked.iter().all(|e| e.path == "/robots.txt"), "{asked:?}");
        assert_eq!(asked.len(), 3, "three robots.txt attempts on {host}");
        let gaps: Vec<u64> = asked.windows(2).map(|w| w[1].at_ms - w[0].at_ms).collect();
        assert!(gaps.iter().all(|g| *g >= 200), "retries back off: {gaps:?}");
    }

    // Politeness per address (which covers every name on it): no two
    // requests to one server closer than the interval; Crawl-delay hosts
    // no closer than their delay.
    let mut by_ip: BTreeMap<String, Vec<&AccessEntry>> = BTreeMap::new();
    for e in &log {
        by_ip.entry(e.local_ip.to_string()).or_default().push(e);
    }
    for (ip, entries) in &by_ip {
        if let Some((gap, which)) = least_gap(entries.iter().copied()) {
            assert!(gap + 1 >= INTERVAL.as_millis() as u64, "{ip}: {gap} ms between {which}");
        }
    }
    for (names, ip) in &m.aliases {
        let names: HashSet<&str> = names.iter().map(String::as_str).collect();
        let on_ip = by_ip.get(&ip.to_string()).expect("the aliases were crawled");
        let hosts: HashSet<&str> = on_ip.iter().map(|e| e.host.as_str()).collect();
        assert!(names.iter().all(|n| hosts.contains(n)), "both names were crawled: {hosts:?}");
    }
    for (host, secs) in &m.crawl_delay {
        let (gap, which) = least_gap(log.iter().filter(|e| &e.host == host)).expect("crawled");
        assert!(gap + 1 >= u64::from(*secs) * 1000, "{host}: Crawl-delay {secs}s broken: {gap} ms, {which}");
    }
    // 429/503: the retry waits at least Retry-After.
    let busy: Vec<&AccessEntry> = log.iter().filter(|e| e.status == 429 || e.status == 503).collect();
    assert!(!busy.is_empty());
    for b in &busy {
        let next = log.iter().find(|e| e.host == b.host && e.at_ms > b.at_ms);
        if let Some(next) = next {
            assert!(
                next.at_ms - b.at_ms + 1 >= u64::from(m.spec.retry_after_secs) * 1000,
                "{} {} answered {} and was asked again after {} ms",
                b.host,
                b.path,
                b.status,
                next.at_ms - b.at_ms
            );
        }
    }
    assert!(s.throttled >= 3, "{s:?}");

    // Every trap bounded: a host costs a bounded number of requests.
    let mut per_host: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &log {
        *per_host.entry(e.host.as_str()).or_default() += 1;
    }
    for (host, n) in &per_host {
        assert!(*n <= 62, "{host} cost {n} requests");
    }
    for start in m.redirect_traps.iter().chain(&m.infinite_spaces) {
        let host = Url::parse(start).unwrap().host_str().unwrap().to_string();
        let n = per_host.get(host.as_str()).copied().unwrap_or(0);
        assert!((2..=62).contains(&n), "{start}: {n} requests");
    }
    assert!(s.rejected.get("too_many_redirects").copied().unwrap_or(0) >= 1, "{s:?}");
    assert!(
        s.rejected.get("trap_query").copied().unwrap_or(0) + s.rejected.get("trap_path").copied().unwrap_or(0) >= 2,
        "{s:?}"
    );

    // Every failure recorded with its reason; every URL accounted for.
    let fetches = store.fetches("traps").await.unwrap();
    let reason: BTreeMap<String, Option<String>> = fetches.iter().map(|f| (normal(&f.url), f.reason.clone())).collect();
    for (url, want) in &m.expected_failures {
        let got = reason.get(&normal(url));
        assert_eq!(got, Some(&Some(want.clone())), "{url} should have failed with {want}");
    }
    assert_eq!(s.unaccounted(), 0, "{s:?}");
    assert_eq!(s.discovered, s.queued + s.rejected.values().sum::<u64>());
    let robots_records = fetches.iter().filter(|f| f.kind == "robots").count() as u64;
    assert_eq!(fetches.len() as u64 - robots_records, s.queued);

    // Results: allowed listed images found, disallowed ones never; images
    // under a wrong Content-Type hashed; the gzip page parsed.
    let all = store.hits(HitFilter { all: true, scan: Some("traps".into()), ..HitFilter::default() }).await.unwrap();
    let found: HashSet<&str> = all.iter().filter(|h| h.score >= 0.5).map(|h| h.blake3.as_str()).collect();
    for b in &m.listed_allowed {
        assert!(found.contains(b.as_str()), "listed image {b} not found");
    }
    for b in &m.listed_disallowed {
        assert!(!found.contains(b.as_str()), "image {b} behind robots.txt was reported");
    }
    let hashed: HashSet<&str> = all.iter().map(|h| h.blake3.as_str()).collect();
    for img in m.images.iter().filter(|i| i.must_hash) {
        assert!(hashed.contains(img.blake3.as_str()), "{} should have been hashed", img.url);
    }
    for url in &m.pdq_failures {
        let h = all.iter().find(|h| h.image_urls.iter().any(|u| normal(u) == normal(url)));
        let h = h.unwrap_or_else(|| panic!("{url} was hashed"));
        assert!(h.pdq_error.is_some(), "{url} has no PDQ and says why");
    }
    // Our identity: the robots token and a contact URL in every request.
    assert!(log
        .iter()
        .all(|e| e.user_agent.as_deref().is_some_and(|ua| ua.starts_with("hashscan/") && ua.contains("+http"))));
    web.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_later_scan_asks_conditionally_and_reuses_what_was_not_modified() {
    let web = TrapWeb::start(spec(), 0).await.expect("trap web starts");
    let m = web.manifest().clone();
    let seed: Vec<String> = m.seeds.iter().filter(|s| s.contains("etag.trap.test")).cloned().collect();
    assert_eq!(seed.len(), 1);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("hashscan.db")).unwrap();
    let first = run(options(&web, "e1", &seed), &store).await;
    assert_eq!(first.summary.not_modified, 0);
    let images_first = first.summary.images;
    assert!(images_first >= 1);
    let before = web.access_log().len();

    let second = run(options(&web, "e2", &seed), &store).await;
    let log: Vec<AccessEntry> = web.access_log().into_iter().skip(before).collect();
    let conditional: Vec<&AccessEntry> = log.iter().filter(|e| e.if_none_match.is_some()).collect();
    assert!(!conditional.is_empty(), "the second scan sent validators: {log:?}");
    assert!(conditional.iter().all(|e| e.status == 304), "{conditional:?}");
    assert!(log.iter().filter(|e| e.status == 304).all(|e| e.bytes == 0));
    assert_eq!(second.summary.not_modified as usize, conditional.len(), "{:?} {log:?}", second.summary);
    assert_eq!(second.summary.pages + second.summary.images, 0, "{:?}", second.summary);
    // The 304s still count as sightings in the second scan: same images, same pages.
    let seen = |scan: &str| {
        let store = store.clone();
        let scan = scan.to_string();
        async move {
            let mut v: Vec<String> = store
                .hits(HitFilter { all: true, scan: Some(scan), ..HitFilter::default() })
                .await
                .unwrap()
                .into_iter()
                .map(|h| h.blake3)
                .collect();
            v.sort();
            v
        }
    };
    assert_eq!(seen("e1").await, seen("e2").await);
    assert_eq!(store.counts(Some("e2".into())).await.unwrap().sightings, images_first);

    // New content (new ETags): fetched again in full.
    web.set_etag_generation(2);
    let third = run(options(&web, "e3", &seed), &store).await;
    assert_eq!(third.summary.not_modified, 0);
    assert_eq!(third.summary.images, images_first);
    web.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ignore_robots_is_explicit_recorded_on_cases_and_rate_limits_still_hold() {
    let web = TrapWeb::start(spec(), 0).await.expect("trap web starts");
    let m = web.manifest().clone();
    let seeds: Vec<String> = m
        .seeds
        .iter()
        .filter(|s| s.contains("robots.trap.test") || s.contains("slowpoke.trap.test"))
        .cloned()
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("hashscan.db")).unwrap();
    let mut o = options(&web, "ign", &seeds);
    o.plan.crawl.ignore_robots = true;
    let report = run(o, &store).await;
    assert_eq!(report.summary.failed.get("robots"), None);
    let log = web.access_log();
    for (host, prefix) in m.disallowed.iter().filter(|(h, _)| h.starts_with("robots.")) {
        assert!(log.iter().any(|e| &e.host == host && e.path.starts_with(prefix.as_str())), "{host}{prefix}");
    }
    let hits = store.hits(HitFilter { scan: Some("ign".into()), ..HitFilter::default() }).await.unwrap();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| h.robots_ignored), "every case says robots.txt was ignored");
    let found: HashSet<&str> = hits.iter().map(|h| h.blake3.as_str()).collect();
    let behind_robots = m.images.iter().filter(|i| i.listed && !i.must_hash && i.url.contains("//robots.trap.test"));
    for img in behind_robots {
        assert!(found.contains(img.blake3.as_str()), "{} is found when robots.txt is ignored", img.url);
    }
    for (host, secs) in &m.crawl_delay {
        let (gap, which) = least_gap(log.iter().filter(|e| &e.host == host)).expect("crawled");
        assert!(gap + 1 >= u64::from(*secs) * 1000, "{host}: Crawl-delay still holds: {gap} ms, {which}");
    }
    // A normal scan's cases do not carry the flag.
    let normal_store = SqliteStore::open(&dir.path().join("other.db")).unwrap();
    run(options(&web, "obey", &seeds), &normal_store).await;
    let hits = normal_store.hits(HitFilter::default()).await.unwrap();
    assert!(!hits.is_empty() && hits.iter().all(|h| !h.robots_ignored));
    web.shutdown().await;
}
