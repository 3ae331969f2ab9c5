//! The Redis frontier store against a real Redis: the shared store contract
//! (`hashscan_frontier::testkit`), two connections racing as two processes
//! would, and bad data.
//!
//! Redis is at `HASHSCAN_REDIS_URL` (default `redis://127.0.0.1:6379/`);
//! scripts/test starts one. Without it these tests fail: they never skip.
//! Each test works under its own key prefix and deletes its keys at the
//! end (a failing test leaves them for inspection; nothing is persisted).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use hashscan_frontier::testkit::{self, task};
use hashscan_frontier::FrontierStore;
use hashscan_frontier_redis::RedisFrontierStore;

fn redis_url() -> String {
    std::env::var("HASHSCAN_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_string())
}

/// A key prefix no other test (of this run or a concurrent one) uses.
fn unique_prefix(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("hashscan-test-{test}-{}-{nanos:x}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

async fn connect(prefix: &str) -> RedisFrontierStore {
    let url = redis_url();
    match RedisFrontierStore::connect(&url, prefix).await {
        Ok(store) => store,
        Err(e) => panic!("Redis not reachable at {url}; scripts/test starts it ({e})"),
    }
}

/// A plain connection for looking at (and tampering with) the raw keys.
async fn raw() -> redis::aio::MultiplexedConnection {
    let url = redis_url();
    let client = redis::Client::open(url.as_str()).expect("Redis URL");
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("Redis not reachable at {url}; scripts/test starts it ({e})"))
}

async fn keys_under(prefix: &str) -> Vec<String> {
    let mut con = raw().await;
    redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut con).await.expect("KEYS")
}

/// Forgets the scans and checks that nothing of the prefix is left.
async fn clean_up(store: &RedisFrontierStore, prefix: &str, scans: &[String]) {
    for scan in scans {
        store.forget_scan(scan).await.expect("forget_scan");
    }
    assert_eq!(keys_under(prefix).await, Vec::<String>::new(), "forget_scan left keys behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_the_frontier_store_contract() {
    let prefix = unique_prefix("contract");
    let store = connect(&prefix).await;
    testkit::check_all(store.clone(), "scan").await;
    assert!(!keys_under(&prefix).await.is_empty(), "the checks wrote under the prefix");
    clean_up(&store, &prefix, &testkit::scan_ids("scan")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_the_contract_across_two_connections() {
    let prefix = unique_prefix("shared");
    let (a, b) = (connect(&prefix).await, connect(&prefix).await);
    let handles: [Arc<dyn FrontierStore>; 2] = [Arc::new(a.clone()), Arc::new(b)];
    testkit::check_all_shared(&handles, "scan").await;
    clean_up(&a, &prefix, &testkit::scan_ids("scan")).await;
}

/// Two stores with their own connections, as a restarted scheduler and its
/// predecessor (or two schedulers) would have, race for one budget and one
/// queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_never_overrun_a_budget_nor_share_a_task() {
    let prefix = unique_prefix("race");
    let stores = [connect(&prefix).await, connect(&prefix).await];
    let scan = "s";
    const CAP: u64 = 25;
    const TASKS: usize = 40;

    let takes: Vec<_> = (0..100)
        .map(|i| {
            let s = stores[i % 2].clone();
            tokio::spawn(async move {
                (s.take_page(scan, CAP).await.expect("take_page"), s.take_host_page(scan, "h.test", CAP).await)
            })
        })
        .collect();
    let (mut pages, mut host_pages) = (0, 0);
    for t in takes {
        let (page, host_page) = t.await.expect("take task");
        pages += u64::from(page);
        host_pages += u64::from(host_page.expect("take_host_page"));
    }
    assert_eq!((pages, host_pages), (CAP, CAP), "exactly the budget is granted across both connections");

    for i in 0..TASKS {
        stores[i % 2].enqueue(task(scan, ["a.test", "b.test"][i % 2], &i.to_string())).await.expect("enqueue");
    }
    let takers: Vec<_> = (0..TASKS * 3)
        .map(|i| {
            let s = stores[i % 2].clone();
            let host = ["a.test", "b.test"][(i / 2) % 2];
            tokio::spawn(async move { s.dequeue(scan, host).await.expect("dequeue").map(|t| t.url.to_string()) })
        })
        .collect();
    let mut handed = Vec::new();
    for t in takers {
        handed.extend(t.await.expect("dequeue task"));
    }
    let distinct: HashSet<&String> = handed.iter().collect();
    assert_eq!(handed.len(), TASKS, "every task handed out");
    assert_eq!(distinct.len(), TASKS, "no task handed out twice");
    assert_eq!(stores[0].queued_len(scan).await.expect("queued_len"), 0);
    assert!(stores[1].queued_hosts(scan).await.expect("queued_hosts").is_empty());
    clean_up(&stores[0], &prefix, &[scan.to_string()]).await;
}

/// A queue entry that is not a task is reported with its key and moved
/// aside, and the tasks behind it still come out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_task_is_moved_aside_with_an_error() {
    let prefix = unique_prefix("bad");
    let store = connect(&prefix).await;
    let ns = store.scan_namespace("s");
    let queue = format!("{ns}:q:h.test");
    store.enqueue(task("s", "h.test", "1")).await.expect("enqueue");
    let mut con = raw().await;
    // A foreign writer (or an old schema) put something else in the queue.
    let _: () = redis::pipe()
        .cmd("RPUSH")
        .arg(&queue)
        .arg(b"{\"scan\":\"s\",\"url\":\xff")
        .cmd("INCR")
        .arg(format!("{ns}:queued"))
        .query_async(&mut con)
        .await
        .expect("tamper");
    store.enqueue(task("s", "h.test", "2")).await.expect("enqueue");

    assert_eq!(store.dequeue("s", "h.test").await.expect("first").expect("task 1").url.path(), "/1");
    let err = store.dequeue("s", "h.test").await.expect_err("the bad entry is an error").to_string();
    assert!(
        err.contains(&queue) && err.contains(&format!("{ns}:bad")),
        "error names the queue and where it went: {err}"
    );
    assert_eq!(store.dequeue("s", "h.test").await.expect("after").expect("task 2").url.path(), "/2");
    assert!(store.dequeue("s", "h.test").await.expect("empty").is_none());
    assert_eq!(store.queued_len("s").await.expect("queued_len"), 0);
    let bad: Vec<Vec<u8>> =
        redis::cmd("LRANGE").arg(format!("{ns}:bad")).arg(0).arg(-1).query_async(&mut con).await.expect("LRANGE");
    assert_eq!(bad, [b"{\"scan\":\"s\",\"url\":\xff".to_vec()], "kept byte for byte");
    clean_up(&store, &prefix, &["s".to_string()]).await;
}

/// Keys clobbered by hand give errors naming the operation and key, never a
/// panic, and a refused push writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clobbered_keys_are_errors_without_partial_writes() {
    let prefix = unique_prefix("clobbered");
    let store = connect(&prefix).await;
    let ns = store.scan_namespace("s");
    let mut con = raw().await;
    let _: () = redis::pipe()
        .cmd("SET")
        .arg(format!("{ns}:pages"))
        .arg("lots")
        .cmd("HSET")
        .arg(format!("{ns}:host_pages"))
        .arg("h.test")
        .arg("1.5")
        .cmd("SET")
        .arg(format!("{ns}:queued"))
        .arg("x")
        .cmd("SET")
        .arg(format!("{ns}:seen"))
        .arg("not a set")
        .query_async(&mut con)
        .await
        .expect("clobber");

    let err = store.take_page("s", 10).await.expect_err("take_page").to_string();
    assert!(err.contains("take_page") && err.contains(&format!("{ns}:pages")) && err.contains("not a count"), "{err}");
    let err = store.take_host_page("s", "h.test", 10).await.expect_err("take_host_page").to_string();
    assert!(err.contains("take_host_page") && err.contains("h.test"), "{err}");
    let err = store.queued_len("s").await.expect_err("queued_len").to_string();
    assert!(err.contains(&format!("{ns}:queued")), "{err}");
    let err = store.enqueue(task("s", "h.test", "1")).await.expect_err("enqueue").to_string();
    assert!(err.contains("enqueue") && err.contains("not a count"), "{err}");
    let checks =
        hashscan_frontier::AdmitChecks { seen_key: "http://h.test/2".into(), query: None, pages: Some((10, 10)) };
    let err = store.admit(task("s", "h.test", "2"), &checks).await.expect_err("admit").to_string();
    assert!(err.contains("admit") && err.contains("WRONGTYPE"), "{err}");
    let err = store.mark_seen("s", "k").await.expect_err("mark_seen").to_string();
    assert!(err.contains("mark_seen") && err.contains(&format!("{ns}:seen")), "{err}");
    let len: i64 = redis::cmd("LLEN").arg(format!("{ns}:q:h.test")).query_async(&mut con).await.expect("LLEN");
    let hosts: i64 = redis::cmd("EXISTS").arg(format!("{ns}:hosts")).query_async(&mut con).await.expect("EXISTS");
    assert_eq!((len, hosts), (0, 0), "a refused enqueue or admit wrote nothing");
    clean_up(&store, &prefix, &["s".to_string()]).await;
}

/// Scan ids with the key separator or glob characters get their own keys,
/// and forgetting one scan leaves its look-alikes alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_a_scan_leaves_look_alike_scans_alone() {
    let prefix = unique_prefix("forget");
    let store = connect(&prefix).await;
    let scans = ["a", "a:b", "a*", "a:q", "[a]"];
    for scan in scans {
        assert!(store.mark_seen(scan, "k").await.expect("mark_seen"), "{scan} has its own seen-set");
        store.enqueue(task(scan, "seen", "x")).await.expect("enqueue");
    }
    assert_eq!(store.forget_scan("a").await.expect("forget_scan"), 4, "seen, queue, hosts and counter of a");
    assert!(store.mark_seen("a", "k").await.expect("mark_seen"), "a is forgotten");
    for scan in &scans[1..] {
        assert!(!store.mark_seen(scan, "k").await.expect("mark_seen"), "{scan} is not");
        assert_eq!(store.queued_len(scan).await.expect("queued_len"), 1, "{scan} keeps its queue");
        assert_eq!(store.dequeue(scan, "seen").await.expect("dequeue").expect("task").scan, *scan);
    }
    let all: Vec<String> = scans.iter().map(|s| s.to_string()).collect();
    clean_up(&store, &prefix, &all).await;
}

#[tokio::test]
async fn bad_configuration_is_a_clear_error() {
    // Port 1 on loopback: nothing listens there.
    let err = RedisFrontierStore::connect("redis://127.0.0.1:1/", "p").await.expect_err("nothing listens").to_string();
    assert!(err.contains("Redis not reachable at redis://127.0.0.1:1/"), "{err}");
    let err = RedisFrontierStore::connect(&redis_url(), "a:b").await.expect_err("prefix with ':'").to_string();
    assert!(err.contains("invalid key prefix \"a:b\""), "{err}");
    let err = RedisFrontierStore::connect("http://:pw@x/", "p").await.expect_err("not a Redis URL").to_string();
    assert!(err.contains("invalid Redis URL") && !err.contains("pw"), "{err}");
}
