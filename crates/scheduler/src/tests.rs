//! The scheduler against a scripted fetcher: robots, per-address pacing,
//! throttling and 304 replays, decided from what the "server" was asked.

use std::sync::Mutex;

use hashscan_bus::MemoryBus;
use hashscan_frontier::{Budgets, MemoryFrontierStore, Scope, ScopeMode};
use hashscan_store::{ScanStore, SqliteStore};

use super::*;

type Script = dyn Fn(&FetchTask, u32) -> Outcome + Send + Sync;

/// What the scripted server saw: (when, URL).
type Seen = Arc<Mutex<Vec<(Instant, String)>>>;

struct SameAddress;

#[async_trait]
impl AddressBook for SameAddress {
    async fn lookup(&self, _host: &str) -> Option<IpAddr> {
        Some("127.0.0.9".parse().unwrap())
    }
}

fn u(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn page(links: &[&str], images: &[&str]) -> Outcome {
    Outcome::Page {
        links: links.iter().map(|l| u(l)).collect(),
        images: images.iter().map(|l| u(l)).collect(),
        data_images: 0,
        data_ids: vec![],
    }
}

/// Runs a scan of `seeds` against `script` (called with the task and how
/// many times its URL was asked before); returns the summary, what was
/// requested, and the store.
async fn scan(
    seeds: &[&str],
    config: SchedulerConfig,
    book: Arc<dyn AddressBook>,
    store: SqliteStore,
    script: Arc<Script>,
) -> (ScanSummary, Vec<(Instant, String)>, SqliteStore) {
    scan_losing(seeds, config, book, store, script, Arc::new(|_, _| false), Duration::ZERO).await
}

/// Whether the fetcher loses the task (acks it and never reports), given
/// the task and how many times its URL was asked before.
type Vanish = dyn Fn(&FetchTask, u32) -> bool + Send + Sync;

/// [`scan`] with a fetcher that loses the tasks `vanish` picks and starts
/// consuming only after `away`.
async fn scan_losing(
    seeds: &[&str],
    config: SchedulerConfig,
    book: Arc<dyn AddressBook>,
    store: SqliteStore,
    script: Arc<Script>,
    vanish: Arc<Vanish>,
    away: Duration,
) -> (ScanSummary, Vec<(Instant, String)>, SqliteStore) {
    let bus = MemoryBus::new(256);
    let seen: Seen = Arc::default();
    let fetcher = {
        let (bus, seen) = (bus.clone(), seen.clone());
        tokio::spawn(async move {
            tokio::time::sleep(away).await;
            let mut consumer = bus.consume(Topic::Fetch).await.unwrap();
            let mut asked: HashMap<String, u32> = HashMap::new();
            while let Some(d) = consumer.next().await {
                let Message::Fetch(task) = d.message.clone() else { continue };
                d.ack().await.unwrap();
                seen.lock().unwrap().push((Instant::now(), task.url.to_string()));
                let n = asked.entry(task.url.to_string()).or_default();
                let lost = vanish(&task, *n);
                let outcome = script(&task, *n);
                *n += 1;
                if lost {
                    continue;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                let report =
                    FetchReport { task, started_at_ms: 1, ip: None, validators: None, outcome, match_messages: 0 };
                bus.publish(Message::Report(report)).await.unwrap();
            }
        })
    };
    let seeds: Vec<Url> = seeds.iter().map(|s| u(s)).collect();
    let frontier =
        Frontier::new("s1", Scope::new(ScopeMode::Domain, &seeds), Budgets::default(), MemoryFrontierStore::new());
    let shared: Arc<dyn Bus> = Arc::new(bus.clone());
    let scheduler =
        Scheduler::new(frontier, shared, Arc::new(store.clone()), config, Arc::default()).with_address_book(book);
    let summary = tokio::time::timeout(Duration::from_secs(30), scheduler.run(seeds)).await.unwrap().unwrap();
    bus.close(Topic::Fetch);
    fetcher.await.unwrap();
    let seen = seen.lock().unwrap().clone();
    (summary, seen, store)
}

fn fast() -> SchedulerConfig {
    SchedulerConfig {
        host_interval: Duration::from_millis(40),
        robots_retry: Duration::from_millis(30),
        ..SchedulerConfig::default()
    }
}

fn robots(body: &str) -> Outcome {
    Outcome::Robots { status: 200, body: Some(body.into()) }
}

#[tokio::test]
async fn robots_first_disallowed_never_requested_and_everything_accounted() {
    let script: Arc<Script> = Arc::new(|t, _| match t.url.path() {
        "/robots.txt" => robots("User-agent: *\nDisallow: /private/\n"),
        "/" => page(&["http://a.test/private/p.html", "http://a.test/open.html"], &["http://a.test/private/x.png"]),
        "/open.html" => page(&[], &[]),
        other => panic!("requested {other}"),
    });
    let store = SqliteStore::in_memory().unwrap();
    let (summary, seen, store) = scan(&["http://a.test/"], fast(), Arc::new(NoAddressBook), store, script).await;
    let urls: Vec<&str> = seen.iter().map(|(_, u)| u.as_str()).collect();
    assert_eq!(urls[0], "http://a.test/robots.txt");
    assert_eq!(urls.len(), 3, "{urls:?}");
    assert_eq!(summary.failed.get("robots"), Some(&2));
    assert_eq!(summary.unaccounted(), 0);
    assert_eq!(summary.robots.get("rules"), Some(&1));
    let recs = store.fetches("s1").await.unwrap();
    let refused: Vec<_> = recs.iter().filter(|r| r.reason.as_deref() == Some("robots")).collect();
    assert_eq!(refused.len(), 2);
    assert!(refused.iter().all(|r| r.ip.is_none()));
}

#[tokio::test]
async fn robots_5xx_retried_then_host_given_up_without_other_requests() {
    let script: Arc<Script> = Arc::new(|t, _| match t.url.path() {
        "/robots.txt" => Outcome::Robots { status: 500, body: None },
        other => panic!("requested {other} although robots.txt is unavailable"),
    });
    let store = SqliteStore::in_memory().unwrap();
    let (summary, seen, _) = scan(&["http://down.test/"], fast(), Arc::new(NoAddressBook), store, script).await;
    assert_eq!(seen.len(), 3, "three robots attempts: {seen:?}");
    assert!(seen[2].0 - seen[1].0 >= seen[1].0 - seen[0].0, "back-off grows");
    assert_eq!(summary.failed.get("robots_unavailable"), Some(&1));
    assert_eq!(summary.unaccounted(), 0);
}

#[tokio::test]
async fn ignore_robots_fetches_disallowed_but_keeps_crawl_delay() {
    let script: Arc<Script> = Arc::new(|t, _| match t.url.path() {
        "/robots.txt" => robots("User-agent: *\nDisallow: /\nCrawl-delay: 0.2\n"),
        "/" => page(&["http://a.test/b.html"], &[]),
        _ => page(&[], &[]),
    });
    let config = SchedulerConfig { ignore_robots: true, ..fast() };
    let store = SqliteStore::in_memory().unwrap();
    let (summary, seen, _) = scan(&["http://a.test/"], config, Arc::new(NoAddressBook), store, script).await;
    assert_eq!(summary.pages, 2);
    for w in seen.windows(2) {
        assert!(w[1].0 - w[0].0 >= Duration::from_millis(200), "Crawl-delay held: {seen:?}");
    }
}

#[tokio::test]
async fn two_names_one_address_share_the_interval() {
    let script: Arc<Script> = Arc::new(|t, _| match (t.host(), t.url.path()) {
        (_, "/robots.txt") => Outcome::Robots { status: 404, body: None },
        ("a.test", "/") => page(&["http://a.test/1", "http://a.test/2"], &[]),
        ("b.test", "/") => page(&["http://b.test/1", "http://b.test/2"], &[]),
        _ => page(&[], &[]),
    });
    let store = SqliteStore::in_memory().unwrap();
    let config = SchedulerConfig { host_interval: Duration::from_millis(60), ..fast() };
    let (summary, seen, _) =
        scan(&["http://a.test/", "http://b.test/"], config, Arc::new(SameAddress), store, script).await;
    assert_eq!(summary.pages, 6);
    assert_eq!(summary.robots.get("allow_all"), Some(&2));
    // One address: every request, whichever name, at least 60 ms after the
    // previous one started (the script answers in ~5 ms).
    for w in seen.windows(2) {
        assert!(w[1].0 - w[0].0 >= Duration::from_millis(60), "{:?}", seen);
    }
}

#[tokio::test]
async fn throttled_host_slows_down_and_gives_up_after_retries() {
    let script: Arc<Script> = Arc::new(|t, n| match t.url.path() {
        "/robots.txt" => Outcome::Robots { status: 404, body: None },
        "/" => page(&["http://a.test/busy", "http://a.test/never"], &[]),
        "/busy" if n < 1 => Outcome::Throttled { status: 429, retry_after_ms: Some(150) },
        "/busy" => page(&[], &[]),
        _ => Outcome::Throttled { status: 503, retry_after_ms: None },
    });
    let store = SqliteStore::in_memory().unwrap();
    let (summary, seen, _) = scan(&["http://a.test/"], fast(), Arc::new(NoAddressBook), store, script).await;
    let busy: Vec<Instant> = seen.iter().filter(|(_, u)| u.ends_with("/busy")).map(|(t, _)| *t).collect();
    assert_eq!(busy.len(), 2);
    assert!(busy[1] - busy[0] >= Duration::from_millis(150), "Retry-After honoured");
    let never = seen.iter().filter(|(_, u)| u.ends_with("/never")).count();
    assert_eq!(never, 3, "first try and two retries");
    assert_eq!(summary.failed.get("throttled"), Some(&1));
    assert_eq!(summary.throttled, 4, "one for /busy, three for /never");
    assert_eq!(summary.unaccounted(), 0);
}

#[tokio::test]
async fn crawl_delay_beyond_the_limit_leaves_the_host_alone() {
    let script: Arc<Script> = Arc::new(|t, _| match t.url.path() {
        "/robots.txt" => robots("User-agent: *\nCrawl-delay: 3600\n"),
        other => panic!("requested {other}"),
    });
    let store = SqliteStore::in_memory().unwrap();
    let (summary, seen, _) = scan(&["http://a.test/"], fast(), Arc::new(NoAddressBook), store, script).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(summary.failed.get("crawl_delay"), Some(&1));
}

#[tokio::test]
async fn forbidden_origin_fails_every_url_with_the_robots_reason() {
    let script: Arc<Script> = Arc::new(|t, _| match t.url.path() {
        "/robots.txt" => Outcome::Failed { reason: FailReason::NetPolicy, detail: "10.0.0.1 is private".into() },
        other => panic!("requested {other}"),
    });
    let store = SqliteStore::in_memory().unwrap();
    let (summary, seen, _) = scan(&["http://a.test/"], fast(), Arc::new(NoAddressBook), store, script).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(summary.failed.get("net_policy"), Some(&1));
}

#[tokio::test]
async fn not_modified_replays_the_earlier_fetch() {
    let store = SqliteStore::in_memory().unwrap();
    // First scan: the page sends validators; its link and image are remembered.
    let etag = Validators { etag: Some("\"v1\"".into()), last_modified: None };
    store
        .record_cached_fetch(
            "http://a.test/",
            CachedFetch {
                validators: etag.clone(),
                links: vec!["http://a.test/next.html".into()],
                images: vec!["http://a.test/i.png".into()],
                ..CachedFetch::default()
            },
            1,
        )
        .await
        .unwrap();
    let asked: Arc<Mutex<Vec<Option<Validators>>>> = Arc::default();
    let asked2 = asked.clone();
    let script: Arc<Script> = Arc::new(move |t, _| {
        asked2.lock().unwrap().push(t.validators.clone());
        match t.url.path() {
            "/robots.txt" => Outcome::Robots { status: 404, body: None },
            "/" => Outcome::NotModified,
            "/next.html" => page(&[], &[]),
            _ => Outcome::Failed { reason: FailReason::HttpStatus, detail: "HTTP 404".into() },
        }
    });
    let (summary, seen, _) = scan(&["http://a.test/"], fast(), Arc::new(NoAddressBook), store, script).await;
    assert_eq!(summary.not_modified, 1);
    assert_eq!(summary.pages, 1, "the remembered link was followed");
    assert!(seen.iter().any(|(_, u)| u == "http://a.test/i.png"), "the remembered image was offered");
    assert_eq!(asked.lock().unwrap()[1], Some(etag), "the page request was conditional");
    assert_eq!(summary.unaccounted(), 0);
}

#[tokio::test]
async fn a_task_that_never_reports_is_handed_out_again_then_ends_as_lost() {
    let script: Arc<Script> = Arc::new(|t, _| match t.url.path() {
        "/robots.txt" => Outcome::Robots { status: 404, body: None },
        "/" => page(&["http://a.test/late.html", "http://a.test/gone.html"], &[]),
        _ => page(&[], &[]),
    });
    // late.html is lost once, gone.html every time.
    let vanish: Arc<Vanish> = Arc::new(|t, n| match t.url.path() {
        "/late.html" => n == 0,
        "/gone.html" => true,
        _ => false,
    });
    let config = SchedulerConfig { task_lease: Duration::from_millis(150), lease_retries: 2, ..fast() };
    let store = SqliteStore::in_memory().unwrap();
    let (summary, seen, _) =
        scan_losing(&["http://a.test/"], config, Arc::new(NoAddressBook), store, script, vanish, Duration::ZERO).await;
    let asked = |p: &str| seen.iter().filter(|(_, u)| u.ends_with(p)).count();
    assert_eq!(asked("/late.html"), 2, "{seen:?}");
    assert_eq!(asked("/gone.html"), 3, "once and two renewals: {seen:?}");
    assert_eq!(summary.lease_renewals, 3);
    assert_eq!(summary.failed.get("lost"), Some(&1));
    assert_eq!(summary.pages, 2);
    assert_eq!(summary.unaccounted(), 0);
}

#[tokio::test]
async fn a_lost_robots_txt_counts_as_unavailable_and_the_scan_still_ends() {
    let script: Arc<Script> = Arc::new(|_, _| page(&[], &[]));
    let vanish: Arc<Vanish> = Arc::new(|t, _| t.url.path() == "/robots.txt");
    let config =
        SchedulerConfig { task_lease: Duration::from_millis(60), lease_retries: 0, robots_attempts: 2, ..fast() };
    let store = SqliteStore::in_memory().unwrap();
    let (summary, seen, _) =
        scan_losing(&["http://a.test/"], config, Arc::new(NoAddressBook), store, script, vanish, Duration::ZERO).await;
    assert!(seen.iter().all(|(_, u)| u.ends_with("/robots.txt")), "{seen:?}");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(summary.failed.get("robots_unavailable"), Some(&1));
    assert_eq!(summary.unaccounted(), 0);
}

#[tokio::test]
async fn leases_wait_while_tasks_wait_for_fetchers_that_are_away() {
    let script: Arc<Script> = Arc::new(|t, _| match t.url.path() {
        "/robots.txt" => Outcome::Robots { status: 404, body: None },
        "/" => page(&["http://a.test/next.html"], &[]),
        _ => page(&[], &[]),
    });
    // No fetcher for two and a half leases: the robots.txt task waits on
    // the queue through two lapses. (Half a lease between the fetcher's
    // return and the next lapse keeps a busy machine from racing them.)
    let config = SchedulerConfig { task_lease: Duration::from_secs(1), lease_retries: 0, ..fast() };
    let store = SqliteStore::in_memory().unwrap();
    let away = Duration::from_millis(2500);
    let (summary, seen, _) =
        scan_losing(&["http://a.test/"], config, Arc::new(NoAddressBook), store, script, Arc::new(|_, _| false), away)
            .await;
    assert_eq!(seen.len(), 3, "robots.txt, / and next.html, once each: {seen:?}");
    assert_eq!(summary.lease_renewals, 0);
    assert_eq!(summary.failed.get("lost"), None);
    assert_eq!(summary.pages, 2);
    assert_eq!(summary.unaccounted(), 0);
}
