//! The contract of [`FrontierStore`], as tests every implementation runs.
//!
//! The architecture promises that a role never knows which store it got, so
//! the in-memory store and the networked ones must behave identically. This
//! kit states that behaviour once: each `check_*` function asserts one part of
//! the contract and panics with a message naming the broken rule. A store's
//! own tests call [`check_all`] (one handle) or [`check_all_shared`] (several
//! handles on the same state, as several processes would hold).
//!
//! Each check works in its own scan ids derived from the `scan` it is given
//! (listed by [`scan_ids`], so a networked store's test can clean them up);
//! checks do not depend on each other and may run in any order. Every loop is
//! bounded, and concurrency is real: operations are spawned as tokio tasks,
//! so a multi-threaded runtime runs them in parallel.
//!
//! Compiled only for tests and with the `testkit` feature, so production
//! builds do not carry it.

use std::collections::HashSet;
use std::sync::Arc;

use hashscan_bus::{FetchTask, TaskKind, Validators};
use url::Url;

use crate::{AdmitChecks, Admitted, FrontierStore};

/// How many operations race in the concurrency checks.
const RACERS: usize = 50;
/// The budget they race for (less than [`RACERS`], so some must lose).
const CAP: u64 = 20;

/// The suffixes of the scan ids the checks use, appended to the caller's scan.
const SUFFIXES: [&str; 16] = [
    "admit",
    "admit-race",
    "seen",
    "seen-b",
    "pages",
    "pages-zero",
    "host-pages",
    "variants",
    "fifo",
    "len",
    "trip",
    "race",
    "race-mixed",
    "iso-a",
    "iso-b",
    "flight",
];

/// Every scan id the checks may write to for a given `scan`, so a test of a
/// networked store can delete them all afterwards.
pub fn scan_ids(scan: &str) -> Vec<String> {
    SUFFIXES.iter().map(|s| sub(scan, s)).collect()
}

fn sub(scan: &str, suffix: &str) -> String {
    format!("{scan}/{suffix}")
}

/// A page task for `http://{host}/{path}` in `scan`, with only the fields
/// the frontier itself sets.
pub fn task(scan: &str, host: &str, path: &str) -> FetchTask {
    FetchTask {
        scan: scan.to_string(),
        url: Url::parse(&format!("http://{host}/{path}")).expect("test URL"),
        kind: TaskKind::Page,
        depth: 1,
        referrer: None,
        hops: 0,
        validators: None,
        attempt: 0,
    }
}

/// Runs every check on one store.
pub async fn check_all<S: FrontierStore + 'static>(store: S, scan: &str) {
    let handle: Arc<dyn FrontierStore> = Arc::new(store);
    check_all_shared(&[handle], scan).await;
}

/// Runs every check with operations spread over several handles on the same
/// state (e.g. two connections to one Redis, as two processes would have).
pub async fn check_all_shared(handles: &[Arc<dyn FrontierStore>], scan: &str) {
    check_seen(handles, scan).await;
    check_page_budget(handles, scan).await;
    check_host_page_budget(handles, scan).await;
    check_query_variants(handles, scan).await;
    check_fifo_and_requeue(handles, scan).await;
    check_queued_hosts_and_len(handles, scan).await;
    check_round_trip(handles, scan).await;
    check_concurrent_dequeue(handles, scan).await;
    check_concurrent_enqueue_dequeue(handles, scan).await;
    check_scan_isolation(handles, scan).await;
    check_in_flight_and_saved_state(handles, scan).await;
    check_admit(handles, scan).await;
    check_concurrent_admit(handles, scan).await;
}

/// The handle for the `i`-th operation (round robin).
fn pick(handles: &[Arc<dyn FrontierStore>], i: usize) -> Arc<dyn FrontierStore> {
    assert!(!handles.is_empty(), "the test kit needs at least one store handle");
    Arc::clone(&handles[i % handles.len()])
}

/// Runs `n` copies of an operation at once, one per spawned task, and
/// returns their results in spawn order.
async fn race<T, F, Fut>(handles: &[Arc<dyn FrontierStore>], n: usize, op: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn FrontierStore>, usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let joins: Vec<_> = (0..n).map(|i| tokio::spawn(op(pick(handles, i), i))).collect();
    let mut out = Vec::with_capacity(n);
    for j in joins {
        out.push(j.await.expect("a racing store operation panicked"));
    }
    out
}

/// `mark_seen`: true the first time a key is offered in a scan, false after;
/// exactly one of many concurrent offers of one key wins; scans are separate.
pub async fn check_seen(handles: &[Arc<dyn FrontierStore>], scan: &str) {
    let (a, b) = (sub(scan, "seen"), sub(scan, "seen-b"));
    let s = pick(handles, 0);
    assert!(s.mark_seen(&a, "http://h.test/1").await.expect("mark_seen"), "a new key is unseen");
    assert!(!s.mark_seen(&a, "http://h.test/1").await.expect("mark_seen"), "a key offered twice is seen");
    assert!(s.mark_seen(&a, "http://h.test/2").await.expect("mark_seen"), "another key is unseen");
    assert!(s.mark_seen(&b, "http://h.test/1").await.expect("mark_seen"), "another scan has its own seen-set");
    let s2 = pick(handles, 1);
    assert!(!s2.mark_seen(&a, "http://h.test/2").await.expect("mark_seen"), "every handle sees the same set");

    let scan_a = a.clone();
    let wins = race(handles, RACERS, move |s, _| {
        let scan = scan_a.clone();
        async move { s.mark_seen(&scan, "http://h.test/raced").await.expect("mark_seen") }
    })
    .await;
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "exactly one concurrent offer of a key wins");
}

/// `take_page`: a budget of `max` grants exactly `max` pages, however many
/// callers race for it; a spent budget stays spent; zero grants nothing.
pub async fn check_page_budget(handles: &[Arc<dyn FrontierStore>], scan: &str) {
    let zero = sub(scan, "pages-zero");
    let scan = sub(scan, "pages");
    let sc = scan.clone();
    let granted = race(handles, RACERS, move |s, _| {
        let scan = sc.clone();
        async move { s.take_page(&scan, CAP).await.expect("take_page") }
    })
    .await;
    assert_eq!(granted.iter().filter(|g| **g).count() as u64, CAP, "{RACERS} racers for {CAP} pages");
    let s = pick(handles, 0);
    assert!(!s.take_page(&scan, CAP).await.expect("take_page"), "a spent budget stays spent");
    assert!(s.take_page(&scan, CAP + 1).await.expect("take_page"), "a larger cap grants the difference");
    assert!(!s.take_page(&scan, CAP + 1).await.expect("take_page"), "and no more");
    assert!(!s.take_page(&zero, 0).await.expect("take_page"), "a zero budget grants nothing");
}

/// `take_host_page`: each host's budget is exact under concurrency and
/// independent of the other hosts' and of the scan's page budget.
pub async fn check_host_page_budget(handles: &[Arc<dyn FrontierStore>], scan: &str) {
    let scan = sub(scan, "host-pages");
    let hosts = ["a.test", "b.test"];
    let sc = scan.clone();
    let granted = race(handles, RACERS * 2, move |s, i| {
        let scan = sc.clone();
        async move { (i % 2, s.take_host_page(&scan, hosts[i % 2], CAP).await.expect("take_host_page")) }
    })
    .await;
    for (h, host) in hosts.iter().enumerate() {
        let n = granted.iter().filter(|(i, g)| *i == h && *g).count() as u64;
        assert_eq!(n, CAP, "{RACERS} racers for {CAP} pages of {host}");
    }
    let s = pick(handles, 0);
    assert!(!s.take_host_page(&scan, "a.test", CAP).await.expect("take_host_page"), "a spent host stays spent");
    assert!(s.take_host_page(&scan, "c.test", 1).await.expect("take_host_page"), "another host has its own budget");
    assert!(!s.take_host_page(&scan, "c.test", 1).await.expect("take_host_page"), "a budget of one grants one");
    assert!(!s.take_host_page(&scan, "d.test", 0).await.expect("take_host_page"), "a zero budget grants nothing");
    assert!(s.take_page(&scan, 1).await.expect("take_page"), "host budgets do not spend the scan's budget");
}

/// `count_query_variant`: counts 1, 2, 3… per host and path, every
/// concurrent caller gets a distinct count, paths are separate.
pub async fn check_query_variants(handles: &[Arc<dyn FrontierStore>], scan: &str) {
    let scan = sub(scan, "variants");
    let s = pick(handles, 0);
    for want in 1..=3 {
        assert_eq!(s.count_query_variant(&scan, "h.test/cal").await.expect("count_query_variant"), want);
    }
    assert_eq!(s.count_query_variant(&scan, "h.test/other").await.expect("count_query_variant"), 1, "per path");
    let sc = scan.clone();
    let mut counts = race(handles, RACERS, move |s, _| {
        let scan = sc.clone();
        async move { s.count_query_variant(&scan, "h.test/raced").await.expect("count_query_variant") }
    })
    .await;
    counts.sort_unstable();
    assert_eq!(counts, (1..=RACERS as u64).collect::<Vec<_>>(), "concurrent counts are 1..={RACERS}, each once");
}

/// Per-host FIFO order, `requeue_front` to the head (also of an empty
/// host), `dequeue` of an empty or unknown host is `None`.
pub async fn check_fifo_and_requeue(handles: &[Arc<dyn FrontierStore>], scan: &str) {
    let scan = sub(scan, "fifo");
    let s = pick(handles, 0);
    let s2 = pick(handles, 1);
    assert!(s.dequeue(&scan, "never.test").await.expect("dequeue").is_none(), "an unknown host has nothing");
    for i in 1..=4 {
        // Interleave two hosts: each keeps its own order.
        s.enqueue(task(&scan, "a.test", &format!("a{i}"))).await.expect("enqueue");
        s2.enqueue(task(&scan, "b.test", &format!("b{i}"))).await.expect("enqueue");
    }
    s.requeue_front(task(&scan, "a.test", "a0")).await.expect("requeue_front");
    let mut got = Vec::new();
    for _ in 0..5 {
        let t = s2.dequeue(&scan, "a.test").await.expect("dequeue").expect("a.test has 5 tasks");
        got.push(t.url.path().to_string());
    }
    assert_eq!(got, ["/a0", "/a1", "/a2", "/a3", "/a4"], "requeued first, then first in first out");
    assert!(s.dequeue(&scan, "a.test").await.expect("dequeue").is_none(), "a drained host has nothing");
    assert!(s.dequeue(&scan, "a.test").await.expect("dequeue").is_none(), "and stays empty");

    assert_eq!(s.dequeue(&scan, "b.test").await.expect("dequeue").expect("b1").url.path(), "/b1");
    s.requeue_front(task(&scan, "b.test", "b1")).await.expect("requeue_front");
    assert_eq!(s.dequeue(&scan, "b.test").await.expect("dequeue").expect("b1").url.path(), "/b1", "retry first");
    assert_eq!(s.dequeue(&scan, "b.test").await.expect("dequeue").expect("b2").url.path(), "/b2");

    s.requeue_front(task(&scan, "a.test", "again")).await.expect("requeue_front");
    assert_eq!(s.queued_hosts(&scan).await.expect("queued_hosts").len(), 2, "requeue to a drained host queues it");
    assert_eq!(s.dequeue(&scan, "a.test").await.expect("dequeue").expect("again").url.path(), "/again");
}

/// `queued_hosts` lists exactly the hosts with work (no drained ones) and
/// `queued_len` counts every waiting task, through enqueue, requeue and
/// dequeue.
pub async fn check_queued_hosts_and_len(handles: &[Arc<dyn FrontierStore>], scan: &str) {
    let scan = sub(scan, "len");
    let s = pick(handles, 0);
    let hosts = |s: Arc<dyn FrontierStore>, scan: String| async move {
        let mut h = s.queued_hosts(&scan).await.expect("queued_hosts");
        h.sort();
        h
    };
    assert!(hosts(s.clone(), scan.clone()).await.is_empty(), "a new scan has no hosts");
    assert_eq!(s.queued_len(&scan).await.expect("queued_len"), 0, "a new scan has no tasks");
    for (host, n) in [("a.test", 3), ("b.test", 1), ("[::1]", 2)] {
        for i in 0..n {
            s.enqueue(task(&scan, host, &i.to_string())).await.expect("enqueue");
        }
    }
    s.requeue_front(task(&scan, "c.test", "r")).await.expect("requeue_front");
    assert_eq!(hosts(s.clone(), scan.clone()).await, ["[::1]", "a.test", "b.test", "c.test"]);
    assert_eq!(s.queued_len(&scan).await.expect("queued_len"), 7);

    let s2 = pick(handles, 1);
    assert!(s2.dequeue(&scan, "b.test").await.expect("dequeue").is_some());
    assert!(s2.dequeue(&scan, "c.test").await.expect("dequeue").is_some());
    assert!(s2.dequeue(&scan, "a.test").await.expect("dequeue").is_some());
    assert!(s2.dequeue(&scan, "zzz.test").await.expect("dequeue").is_none());
    assert_eq!(hosts(s.clone(), scan.clone()).await, ["[::1]", "a.test"], "drained hosts leave the list");
    assert_eq!(s.queued_len(&scan).await.expect("queued_len"), 4);
    for host in ["a.test", "a.test", "[::1]", "[::1]"] {
        assert!(s.dequeue(&scan, host).await.expect("dequeue").is_some(), "{host} still had work");
    }
    assert!(hosts(s.clone(), scan.clone()).await.is_empty(), "all drained");
    assert_eq!(s.queued_len(&scan).await.expect("queued_len"), 0, "all drained");
}

/// A task comes back exactly as it went in, every field included, through
/// both `enqueue` and `requeue_front`.
pub async fn check_round_trip(handles: &[Arc<dyn FrontierStore>], scan: &str) {
    let scan = sub(scan, "trip");
    let full = FetchTask {
        scan: scan.clone(),
        url: Url::parse("https://xn--bcher-kva.test:8443/a%20b/caf%C3%A9.jpg?q=1&r=%2F").expect("URL"),
        kind: TaskKind::Image,
        depth: 7,
        referrer: Some(Url::parse("https://xn--bcher-kva.test:8443/page?x=\"y\"").expect("URL")),
        hops: 3,
        validators: Some(Validators {
            etag: Some("W/\"abc\\\"123\"".into()),
            last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
        }),
        attempt: 4,
    };
    let half = FetchTask {
        url: Url::parse("https://xn--bcher-kva.test:8443/robots.txt").expect("URL"),
        kind: TaskKind::Robots,
        depth: 0,
        referrer: None,
        hops: 0,
        validators: Some(Validators { etag: None, last_modified: Some("x".into()) }),
        attempt: 255,
        ..full.clone()
    };
    let host = full.host().to_string();
    let s = pick(handles, 0);
    s.enqueue(full.clone()).await.expect("enqueue");
    s.requeue_front(half.clone()).await.expect("requeue_front");
    let s2 = pick(handles, 1);
    assert_eq!(s2.dequeue(&scan, &host).await.expect("dequeue"), Some(half), "requeued task round-trips");
    assert_eq!(s2.dequeue(&scan, &host).await.expect("dequeue"), Some(full), "enqueued task round-trips");
    assert_eq!(s2.dequeue(&scan, &host).await.expect("dequeue"), None);
}

/// Many callers dequeuing one queue at once: every task is handed out
/// exactly once, and the queue ends empty with consistent counts.
pub async fn check_concurrent_dequeue(handles: &[Arc<dyn FrontierStore>], scan: &str) {
    let scan = sub(scan, "race");
    let hosts = ["a.test", "b.test"];
    let s = pick(handles, 0);
    let per_host = CAP as usize;
    for i in 0..per_host {
        for host in hosts {
            s.enqueue(task(&scan, host, &i.to_string())).await.expect("enqueue");
        }
    }
    // Twice as many takers as tasks: half of them find nothing.
    let sc = scan.clone();
    let got = race(handles, per_host * 4, move |s, i| {
        let scan = sc.clone();
        async move { s.dequeue(&scan, hosts[i % 2]).await.expect("dequeue").map(|t| t.url.to_string()) }
    })
    .await;
    let handed: Vec<String> = got.into_iter().flatten().collect();
    let distinct: HashSet<&String> = handed.iter().collect();
    assert_eq!(handed.len(), per_host * 2, "every queued task is handed out");
    assert_eq!(distinct.len(), handed.len(), "no task is handed out twice");
    assert_eq!(s.queued_len(&scan).await.expect("queued_len"), 0, "nothing left");
    assert!(s.queued_hosts(&scan).await.expect("queued_hosts").is_empty(), "no host left");
}

/// Enqueues and dequeues racing on the same hosts keep `queued_hosts`
/// consistent with the queues: after the race, every listed host has work
/// and draining the listed hosts empties the scan.
pub async fn check_concurrent_enqueue_dequeue(handles: &[Arc<dyn FrontierStore>], scan: &str) {
    let scan = sub(scan, "race-mixed");
    let hosts = ["c.test", "d.test", "e.test"];
    let sc = scan.clone();
    let handed = race(handles, RACERS * 2, move |s, i| {
        let scan = sc.clone();
        async move {
            let host = hosts[i % hosts.len()];
            if i % 2 == 0 {
                s.enqueue(task(&scan, host, &i.to_string())).await.expect("enqueue");
                None
            } else {
                s.dequeue(&scan, host).await.expect("dequeue").map(|t| t.url.to_string())
            }
        }
    })
    .await;
    let mut handed: Vec<String> = handed.into_iter().flatten().collect();
    let s = pick(handles, 0);
    let left = s.queued_len(&scan).await.expect("queued_len");
    assert_eq!(handed.len() as u64 + left, RACERS as u64, "every enqueued task is handed out or waiting");
    let listed = s.queued_hosts(&scan).await.expect("queued_hosts");
    // Bounded: at most RACERS tasks exist.
    for host in &listed {
        let first = s.dequeue(&scan, host).await.expect("dequeue");
        assert!(first.is_some(), "listed host {host} has work");
        handed.extend(first.map(|t| t.url.to_string()));
        for _ in 0..RACERS {
            let Some(t) = s.dequeue(&scan, host).await.expect("dequeue") else { break };
            handed.push(t.url.to_string());
        }
    }
    let distinct: HashSet<&String> = handed.iter().collect();
    assert_eq!(handed.len(), RACERS, "all {RACERS} enqueued tasks handed out once the listed hosts are drained");
    assert_eq!(distinct.len(), RACERS, "no task is handed out twice");
    assert_eq!(s.queued_len(&scan).await.expect("queued_len"), 0);
    assert!(s.queued_hosts(&scan).await.expect("queued_hosts").is_empty());
}

/// Two scans share nothing: seen-sets, budgets, query counts and queues.
pub async fn check_scan_isolation(handles: &[Arc<dyn FrontierStore>], scan: &str) {
    let (a, b) = (sub(scan, "iso-a"), sub(scan, "iso-b"));
    let s = pick(handles, 0);
    assert!(s.mark_seen(&a, "k").await.expect("mark_seen"));
    assert!(s.mark_seen(&b, "k").await.expect("mark_seen"), "seen-sets are per scan");
    assert!(s.take_page(&a, 1).await.expect("take_page"));
    assert!(s.take_page(&b, 1).await.expect("take_page"), "page budgets are per scan");
    assert!(s.take_host_page(&a, "h.test", 1).await.expect("take_host_page"));
    assert!(s.take_host_page(&b, "h.test", 1).await.expect("take_host_page"), "host budgets are per scan");
    assert_eq!(s.count_query_variant(&a, "h.test/p").await.expect("count_query_variant"), 1);
    assert_eq!(s.count_query_variant(&b, "h.test/p").await.expect("count_query_variant"), 1, "per scan");
    s.enqueue(task(&a, "h.test", "only-a")).await.expect("enqueue");
    assert_eq!(s.queued_hosts(&a).await.expect("queued_hosts"), ["h.test"]);
    assert!(s.dequeue(&b, "h.test").await.expect("dequeue").is_none(), "queues are per scan");
    assert!(!s.queued_hosts(&b).await.expect("queued_hosts").contains(&"h.test".to_string()), "hosts per scan");
    let len_b = s.queued_len(&b).await.expect("queued_len");
    assert_eq!(s.queued_len(&a).await.expect("queued_len"), 1);
    assert_eq!(s.dequeue(&a, "h.test").await.expect("dequeue").expect("only-a").url.path(), "/only-a");
    assert_eq!(s.queued_len(&b).await.expect("queued_len"), len_b, "draining one scan leaves the other");
}

/// `take` hands a task out and remembers it until `settle` or
/// `requeue_front`; `settle` keeps the scheduler's state and the host's next
/// time; `host_queued_len` counts one host's queue.
pub async fn check_in_flight_and_saved_state(handles: &[Arc<dyn FrontierStore>], scan: &str) {
    let scan = sub(scan, "flight");
    let s = pick(handles, 0);
    let s2 = pick(handles, 1);
    assert!(s.saved_state(&scan).await.expect("saved_state").is_none(), "a new scan has no saved state");
    assert!(s.take(&scan, "a.test").await.expect("take").is_none());
    for p in ["1", "2", "3"] {
        s.enqueue(task(&scan, "a.test", p)).await.expect("enqueue");
    }
    s.enqueue(task(&scan, "b.test", "1")).await.expect("enqueue");
    assert_eq!(s2.host_queued_len(&scan, "a.test").await.expect("len"), 3);
    assert_eq!(s2.host_queued_len(&scan, "none.test").await.expect("len"), 0);
    let t1 = s.take(&scan, "a.test").await.expect("take").expect("a1");
    let t2 = s2.take(&scan, "a.test").await.expect("take").expect("a2");
    let b1 = s.take(&scan, "b.test").await.expect("take").expect("b1");
    assert_eq!(s.host_queued_len(&scan, "a.test").await.expect("len"), 1);
    let mut flying: Vec<String> =
        s2.in_flight(&scan).await.expect("in_flight").into_iter().map(|t| t.url.to_string()).collect();
    flying.sort();
    assert_eq!(flying, [t1.url.to_string(), t2.url.to_string(), b1.url.to_string()]);
    // Put back: no longer in flight, and first in its queue.
    s.requeue_front(t2.clone()).await.expect("requeue_front");
    s.settle(&scan, t1.url.as_str(), "a.test", 1_000, "{\"n\":1}").await.expect("settle");
    s2.settle(&scan, b1.url.as_str(), "b.test", 2_000, "{\"n\":2}").await.expect("settle");
    assert!(s.in_flight(&scan).await.expect("in_flight").is_empty());
    assert_eq!(s.take(&scan, "a.test").await.expect("take").expect("a2 again").url, t2.url);
    let saved = s2.saved_state(&scan).await.expect("saved_state").expect("saved");
    assert_eq!(saved.state, "{\"n\":2}", "the last settle's state");
    assert_eq!(saved.ready_at_ms.get("a.test"), Some(&1_000));
    assert_eq!(saved.ready_at_ms.get("b.test"), Some(&2_000));
    // Settling a URL that is not in flight (a duplicate report) is harmless.
    s.settle(&scan, "http://nowhere.test/", "nowhere.test", 5, "{}").await.expect("settle");
    assert_eq!(s.in_flight(&scan).await.expect("in_flight").len(), 1);
}

/// The checks of a page with a host and a scan budget, or of an image.
fn checks(t: &FetchTask, pages: Option<(u64, u64)>, max_variants: u64) -> AdmitChecks {
    let host = t.host().to_string();
    AdmitChecks {
        seen_key: t.url.to_string(),
        query: t.url.query().map(|_| (format!("{host}{}", t.url.path()), max_variants)),
        pages,
    }
}

/// `admit`: checks in order (seen, query variants, host budget, scan
/// budget), queues only what passes, and a refusal queues nothing.
pub async fn check_admit(handles: &[Arc<dyn FrontierStore>], scan: &str) {
    let scan = sub(scan, "admit");
    let (s, s2) = (pick(handles, 0), pick(handles, 1));
    let page = |host: &str, path: &str| task(&scan, host, path);
    let budget = Some((2, 3));
    let admit = |s: Arc<dyn FrontierStore>, t: FetchTask, pages: Option<(u64, u64)>| async move {
        let c = checks(&t, pages, 2);
        s.admit(t, &c).await.expect("admit")
    };
    assert_eq!(admit(s.clone(), page("a.test", "1"), budget).await, Admitted::Queued, "a new page is queued");
    assert_eq!(s.queued_len(&scan).await.expect("queued_len"), 1, "and counted");
    assert_eq!(
        admit(s2.clone(), page("a.test", "1"), budget).await,
        Admitted::Duplicate,
        "an offered URL is a duplicate"
    );
    assert_eq!(s.queued_len(&scan).await.expect("queued_len"), 1, "a duplicate queues nothing");
    assert!(!s.mark_seen(&scan, page("a.test", "1").url.as_str()).await.expect("mark_seen"), "admit marks seen");
    // Query variants: two per path, the third is a trap (and stays seen).
    let img = |q: &str| {
        let mut t = task(&scan, "c.test", &format!("cal?{q}"));
        t.kind = TaskKind::Image;
        t
    };
    assert_eq!(admit(s.clone(), img("d=1"), None).await, Admitted::Queued);
    assert_eq!(admit(s2.clone(), img("d=2"), None).await, Admitted::Queued);
    assert_eq!(admit(s.clone(), img("d=3"), None).await, Admitted::TrapQuery, "a third query of one path is a trap");
    assert_eq!(admit(s.clone(), img("d=3"), None).await, Admitted::Duplicate, "a trapped URL stays seen");
    // Host budget of 2: a.test has one page, takes one more, then no more.
    assert_eq!(admit(s.clone(), page("a.test", "2"), budget).await, Admitted::Queued);
    assert_eq!(admit(s2.clone(), page("a.test", "3"), budget).await, Admitted::HostBudget, "a spent host");
    // Scan budget of 3: b.test takes the third page, then the scan is spent.
    assert_eq!(admit(s.clone(), page("b.test", "1"), budget).await, Admitted::Queued);
    assert_eq!(admit(s.clone(), page("b.test", "2"), budget).await, Admitted::PageBudget, "a spent scan");
    // Images are not pages: no budget applies.
    let mut image = page("b.test", "i.png");
    image.kind = TaskKind::Image;
    assert_eq!(admit(s.clone(), image, None).await, Admitted::Queued, "an image takes no page budget");
    assert_eq!(s.queued_len(&scan).await.expect("queued_len"), 6, "exactly the admitted tasks are queued");
    let mut hosts = s.queued_hosts(&scan).await.expect("queued_hosts");
    hosts.sort();
    assert_eq!(hosts, ["a.test", "b.test", "c.test"]);
    let first = s.dequeue(&scan, "a.test").await.expect("dequeue").expect("a task");
    assert_eq!(first.url.path(), "/1", "admitted tasks queue in order");
    // The budgets admit charged are the ones take_page and take_host_page see.
    assert!(!s.take_page(&scan, 3).await.expect("take_page"), "admit charged the scan budget");
    assert!(!s.take_host_page(&scan, "a.test", 2).await.expect("take_host_page"), "admit charged the host budget");
}

/// `admit` under concurrency: of many offers of one URL exactly one is
/// queued; of many pages of one host exactly the host budget is queued.
pub async fn check_concurrent_admit(handles: &[Arc<dyn FrontierStore>], scan: &str) {
    let scan = sub(scan, "admit-race");
    let same = scan.clone();
    let queued = race(handles, RACERS, move |s, _| {
        let t = task(&same, "r.test", "same");
        async move {
            let c = checks(&t, Some((u64::MAX, u64::MAX)), 1);
            s.admit(t, &c).await.expect("admit")
        }
    })
    .await;
    assert_eq!(queued.iter().filter(|a| **a == Admitted::Queued).count(), 1, "one of many offers of a URL is queued");
    let many = scan.clone();
    let outcomes = race(handles, RACERS, move |s, i| {
        let t = task(&many, "h.test", &i.to_string());
        async move {
            let c = checks(&t, Some((CAP, u64::MAX)), 1);
            s.admit(t, &c).await.expect("admit")
        }
    })
    .await;
    let won = outcomes.iter().filter(|a| **a == Admitted::Queued).count() as u64;
    assert_eq!(won, CAP, "a host budget of {CAP} admits exactly {CAP} racing pages");
    assert_eq!(s_len(handles, &scan, "h.test").await, CAP, "and exactly those are queued");
}

async fn s_len(handles: &[Arc<dyn FrontierStore>], scan: &str, host: &str) -> u64 {
    pick(handles, 0).host_queued_len(scan, host).await.expect("host_queued_len")
}
