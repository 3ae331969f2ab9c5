//! Cluster mode as ops run it: `hashscan worker …` processes (1 scheduler,
//! 3 fetchers, 2 matchers) against the real RabbitMQ and Redis on
//! 127.0.0.1, a scan submitted with `hashscan scan submit` — and the same
//! scan in embedded mode, which must find the same hits and counts.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{http_get, Cluster};

#[test]
fn a_cluster_of_workers_scans_like_embedded_mode_and_stops_cleanly_on_sigterm() {
    let c = Cluster::start(5);
    let fetcher_metrics = c.workers.metrics_addr(1);
    // Ready once connected to RabbitMQ.
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(&fetcher_metrics, "/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "the fetcher never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(http_get(&fetcher_metrics, "/healthz").0, 200);
    // Image bytes are never written to disk, not even by a crash.
    for i in 0..c.workers.children.len() {
        c.workers.assert_no_core_dumps(i);
    }
    // The scheduler needs Redis too: ready once it answers.
    let scheduler_metrics = c.workers.metrics_addr(0);
    while http_get(&scheduler_metrics, "/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "the scheduler never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    c.submit("c1", "20");
    let status = c.wait("c1");
    let cluster_log = c.web().access_log();

    // Politeness held cluster-wide with three fetchers: per server address,
    // no two requests closer than 1/rate (measured by the server).
    let mut by_ip: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in &cluster_log {
        by_ip.entry(e.local_ip.to_string()).or_default().push(e.at_ms);
    }
    for (ip, mut times) in by_ip {
        times.sort();
        for w in times.windows(2) {
            assert!(w[1] - w[0] + 1 >= 50, "{ip}: requests {} ms apart", w[1] - w[0]);
        }
    }
    let metrics = http_get(&fetcher_metrics, "/metrics").1;
    assert!(metrics.contains("hashscan_fetches_total{outcome=\"page\"}"), "{metrics}");
    assert!(metrics.contains("hashscan_bus_acked_total"), "{metrics}");
    assert!(metrics.contains("hashscan_hash_seconds_total"), "{metrics}");
    assert!(metrics.contains(&format!("hashscan_queue_depth{{queue=\"{}.fetch\"}}", c.prefix)), "{metrics}");
    c.assert_same(&status, "c1");
    c.finish();
}

#[test]
fn a_cluster_recording_into_postgresql_finds_what_embedded_mode_finds() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(hashscan_store_postgres::testdb::TestDb::create("cluster"));
    // The environment sets `[store] url`, as ops would (the password stays
    // out of the file); `hashscan hits` reads the same variable.
    let c = Cluster::start_with_env(8, vec![("HASHSCAN_DATABASE_URL".to_string(), db.url.clone())]);
    c.submit("p1", "20");
    let status = c.wait("p1");
    c.assert_same(&status, "p1");
    // Nothing went to the data directory's SQLite file.
    assert!(!c.data.join("hashscan.db").exists(), "the workers wrote to SQLite despite store.url");
    c.finish();
    rt.block_on(db.drop_now());
}

#[test]
fn killing_a_fetcher_and_a_matcher_mid_scan_loses_nothing() {
    let mut c = Cluster::start(6);
    // Slow enough that the kills land mid-scan.
    c.submit("k1", "3");
    c.wait_running("k1", 3);
    c.workers.kill(1);
    c.spawn("fetcher");
    c.wait_running("k1", 8);
    // (The kill above shifted the list: the first matcher is now at 3.)
    c.workers.kill(3);
    c.spawn("matcher");
    let status = c.wait("k1");
    c.assert_same(&status, "k1");
    c.finish();
}

#[test]
fn killing_the_scheduler_mid_scan_and_restarting_it_loses_nothing() {
    let mut c = Cluster::start(7);
    c.submit("s1", "3");
    // Kill it once the scan is well under way.
    c.wait_running("s1", 5);
    c.workers.kill(0);
    let before = c.status("s1");
    std::thread::sleep(Duration::from_millis(500));
    c.spawn("scheduler");
    // The resumed run's first progress report goes on from the saved counts.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = c.status("s1");
        let resumed = now["started_at_ms"] != before["started_at_ms"]
            && now["updated_at_ms"].as_u64() > now["started_at_ms"].as_u64();
        if resumed || now["status"] != "running" {
            if now["status"] == "running" {
                assert!(now["pages"].as_u64() >= before["pages"].as_u64(), "progress went back: {before} then {now}");
            }
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the restarted scheduler never reported: {now}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = c.wait("s1");
    let restarted = std::fs::read_to_string(&c.workers.children.last().unwrap().2).unwrap();
    assert!(restarted.contains("resuming a scan from its saved state"), "the kill landed mid-scan: {restarted}");
    // What the scan fetched, stored and found is exact. (How many times a
    // URL was *offered* is not: links of a report handled just before the
    // kill may be offered again and counted as duplicates, and robots.txt
    // is asked again after the restart.)
    c.assert_same_keys(&status, "s1", &["pages", "images", "data_images", "redirects", "failed"]);
    c.finish();
}

#[test]
fn a_worker_without_redis_waits_not_ready_and_still_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference.csv");
    std::fs::write(&reference, "md5\n900150983cd24fb0d6963f7d28e17f72\n").unwrap();
    let config = dir.path().join("workers.toml");
    std::fs::write(
        &config,
        format!(
            "[amqp]\nprefix = \"hashscan-test-noredis\"\n[store]\ndata_dir = {:?}\n[matcher]\nreference = {:?}\n",
            dir.path().join("data").display().to_string(),
            reference.display().to_string()
        ),
    )
    .unwrap();
    // The environment overrides the file (scripts/test sets HASHSCAN_REDIS_URL).
    let env = vec![("HASHSCAN_REDIS_URL".to_string(), "redis://127.0.0.1:1/".to_string())];
    let mut workers = common::Workers { children: vec![], env };
    workers.spawn("matcher", &config, dir.path());
    workers.spawn("scheduler", &config, dir.path());
    for i in 0..2 {
        let addr = workers.metrics_addr(i);
        let deadline = Instant::now() + Duration::from_secs(10);
        // Alive, connected to RabbitMQ, but not ready without Redis.
        while !http_get(&addr, "/metrics").1.contains("hashscan_bus_connected 1") {
            assert!(Instant::now() < deadline, "worker {i} never connected to RabbitMQ");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(http_get(&addr, "/healthz").0, 200);
        let (status, body) = http_get(&addr, "/readyz");
        assert_eq!(status, 503, "worker {i} /readyz: {body}");
    }
    std::thread::sleep(Duration::from_secs(2));
    for (role, child, _) in &mut workers.children {
        assert!(child.try_wait().unwrap().is_none(), "{role} gave up instead of waiting for Redis");
    }
    workers.stop();
}

#[test]
fn a_recurring_cluster_scan_waits_for_its_time_obeys_pause_and_runs_again() {
    let c = Cluster::start(9);
    let cfg = c.config.to_str().unwrap().to_string();
    let seeds = c.seeds.to_str().unwrap().to_string();
    c.run(&["scan", "submit", "--config", &cfg, "--seeds", &seeds, "--rate", "50", "--scan-id", "r1"]);
    let status = |id: &str| -> serde_json::Value {
        let out = c.run(&["scan", "status", "--config", &cfg, "--json"]);
        out.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["scan"] == id)
            .unwrap_or_default()
    };
    // A plain scan next to it, then the recurring one (every 15 s, 2 runs).
    c.wait("r1");
    c.run(&[
        "scan",
        "submit",
        "--config",
        &cfg,
        "--seeds",
        &seeds,
        "--rate",
        "50",
        "--scan-id",
        "rec",
        "--every",
        "15s",
        "--runs",
        "2",
    ]);
    c.wait("rec");
    // Run 2 is submitted by the scheduler, waiting for its time; paused, it
    // keeps waiting past that time.
    c.run(&["scan", "pause", "rec", "--config", &cfg]);
    let next = status("rec-2");
    assert_eq!(next["status"], "scheduled", "{next}");
    let due = next["due_at_ms"].as_i64().expect("a due time");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!(due > now, "the next run is due later: {next}");
    std::thread::sleep(Duration::from_millis((due - now + 2_000).clamp(0, 20_000) as u64));
    assert_eq!(status("rec-2")["status"], "scheduled", "paused: it waits");
    // Resumed: it runs, and being the last run, the schedule ends.
    c.run(&["scan", "resume", "rec", "--config", &cfg]);
    let done = c.wait("rec-2");
    assert_eq!(done["summary"]["summary"]["pages"], status("rec")["summary"]["summary"]["pages"]);
    let list: serde_json::Value =
        serde_json::from_str(c.run(&["scan", "list", "--config", &cfg, "--json"]).lines().next().unwrap()).unwrap();
    assert_eq!(list["schedules"]["rec"], "finished", "{list}");
    assert!(status("rec-3").is_null(), "no third run");
    // Steering a schedule that does not exist fails clearly.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hashscan"))
        .args(["scan", "stop", "nope", "--config", &cfg])
        .envs(c.workers.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no recurring scan"));
    c.finish();
}
