//! Recurring scans: `hashscan scan --every` runs again by itself, can be
//! paused, resumed and stopped from another process, and later runs spend
//! less on hosts that never had listed material — proven from the served
//! web's access log.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hashscan_testweb::{EvalSpec, EvalWeb};

const BIN: &str = env!("CARGO_BIN_EXE_hashscan");

fn list(data: &str) -> serde_json::Value {
    let out = Command::new(BIN).args(["scan", "list", "--data-dir", data, "--json"]).output().unwrap();
    if !out.status.success() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

fn runs(data: &str) -> (u64, String) {
    let v = list(data);
    let s = &v["schedules"][0];
    (s["runs"].as_u64().unwrap_or(0), s["state"].as_str().unwrap_or("").to_string())
}

fn steer(data: &str, action: &str) {
    let out = Command::new(BIN).args(["scan", action, "rec", "--data-dir", data]).output().unwrap();
    assert!(out.status.success(), "{action}: {}", String::from_utf8_lossy(&out.stderr));
}

fn wait_for(what: &str, deadline_secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(deadline_secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_recurring_scan_runs_again_obeys_pause_resume_stop_and_spends_less_on_quiet_hosts() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let web = rt.block_on(EvalWeb::start(EvalSpec { seed: 4, ..EvalSpec::default() }, 0)).unwrap();
    let truth = web.truth().clone();
    let dir = tempfile::tempdir().unwrap();
    let (reference, seeds) = (dir.path().join("reference.csv"), dir.path().join("seeds.txt"));
    std::fs::write(&reference, web.reference_csv()).unwrap();
    std::fs::write(&seeds, truth.seeds.join("\n")).unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap().to_string();
    let mut args: Vec<String> =
        ["scan", "--seeds", seeds.to_str().unwrap(), "--reference", reference.to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .collect();
    args.extend(
        ["--data-dir", &data, "--every", "1s", "--runs", "4", "--rate", "200", "--max-depth", "8"].map(String::from),
    );
    args.extend(["--scan-id".into(), "rec".into(), "--allow-net".into(), web.allow_net()]);
    for r in truth.resolve_flags() {
        args.extend(["--resolve".into(), r]);
    }
    let mut child = Command::new(BIN).args(&args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();

    // It runs, then again by itself.
    wait_for("the first run", 120, || runs(&data).0 >= 1);
    // Paused: the run under way (if any) ends, then nothing more happens.
    steer(&data, "pause");
    let mut last = runs(&data).0;
    wait_for("the runs to settle under pause", 120, || {
        std::thread::sleep(Duration::from_secs(2));
        let now = runs(&data).0;
        let settled = now == last;
        last = now;
        settled
    });
    assert_eq!(runs(&data), (last, "paused".into()));
    assert!(last < 4, "paused before the last run");
    // Resumed: the due run starts at once.
    steer(&data, "resume");
    wait_for("a run after resume", 120, || runs(&data).0 > last);
    // Stopped: the process ends by itself after the run under way.
    steer(&data, "stop");
    wait_for("the process to end", 120, || child.try_wait().unwrap().is_some());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    let (done, state) = runs(&data);
    assert!(done >= 2 && state == "stopped", "{done} {state}");
    assert!(stderr.contains("page(s) with listed material first"), "{stderr}");
    assert!(stderr.contains("case(s) re-checked") && !stderr.contains(" 0 online"), "{stderr}");
    let v = list(&data);
    let ids: BTreeSet<&str> = v["scans"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert!(ids.contains("rec") && ids.contains("rec-2"), "{ids:?}");

    // The server's view: a host where no run found listed material got at
    // most half its pages on every run after the first.
    let pages: BTreeSet<String> = truth.pages.iter().map(|p| p.url.clone()).collect();
    // A host "had listed material" when a page of it shows a listed image
    // or a variant of one (a near match is listed evidence too).
    let mut bad: BTreeMap<String, bool> = BTreeMap::new();
    for p in &truth.pages {
        let host = p.url.split('/').nth(2).unwrap().split(':').next().unwrap().to_string();
        *bad.entry(host).or_default() |= p.listed || p.near_listed;
    }
    assert!(bad.values().any(|b| !b) && bad.values().any(|b| *b));
    let mut per_host: BTreeMap<String, u64> = BTreeMap::new();
    for e in web.access_log() {
        let url = format!("http://{}:{}{}", e.host, truth.port, e.path);
        if pages.contains(&url) {
            *per_host.entry(e.host.clone()).or_default() += 1;
        }
    }
    let site_pages = |host: &str| truth.pages.iter().filter(|p| p.url.contains(&format!("//{host}:"))).count() as u64;
    for (host, n) in &per_host {
        let full = site_pages(host);
        if bad[host] {
            assert_eq!(*n, full * done, "{host} had listed material: every page on every run");
        } else {
            assert!(*n <= full + full.div_ceil(2) * (done - 1), "{host}: {n} page requests in {done} runs of {full}");
            assert!(*n < full * done, "{host} was spent less on");
        }
    }
    rt.block_on(web.shutdown());
}
