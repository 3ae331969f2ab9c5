//! deploy/ is code too: the files ops copy must load with the real config
//! loader, name only environment variables hashscan reads, and alert or
//! scale on metrics a live worker actually serves.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hashscan_cluster::config::{WorkerConfig, ENV_KEYS};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn read(rel: &str) -> String {
    let p = deploy().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every file under deploy/, by path relative to it.
fn deploy_files() -> Vec<(String, String)> {
    let mut out = vec![];
    let mut dirs = vec![deploy()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let rel = p.strip_prefix(deploy()).unwrap().display().to_string();
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The words of `text` that start with `prefix` and go on in `[A-Za-z0-9_]`.
fn words(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        found.insert(tail[..end].to_string());
        rest = &tail[end.max(1)..];
    }
    found
}

#[test]
fn the_container_configuration_loads_and_listens_where_probes_look() {
    let c = WorkerConfig::load(Some(&deploy().join("workers.toml"))).expect("deploy/workers.toml loads");
    assert_eq!(c.http.listen.to_string(), "0.0.0.0:9100", "probes and Prometheus use port 9100");
    assert!(c.store.url.is_none(), "no database URL (it carries a password) in the file");
    assert!(c.fetcher.allow_net.is_empty(), "the shipped config must not open private ranges");
    for p in ["9100", "/healthz", "/readyz"] {
        assert!(read("k8s/fetcher.yaml").contains(p), "fetcher.yaml probes {p}");
    }
}

#[test]
fn the_kubernetes_configmap_carries_exactly_the_workers_toml() {
    let cm = read("k8s/configmap.yaml");
    let start = cm.find("  workers.toml: |\n").expect("a workers.toml key") + "  workers.toml: |\n".len();
    let embedded: String =
        cm[start..].lines().map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l))).collect::<String>();
    assert_eq!(embedded, read("workers.toml"), "deploy/k8s/configmap.yaml differs from deploy/workers.toml");
}

#[test]
fn deploy_files_name_only_environment_variables_hashscan_reads() {
    // What the binary reads: the config loader's named keys and nested
    // form, and the variables its commands' flags take (from --help).
    let mut known: BTreeSet<String> = ENV_KEYS.iter().map(|(k, _)| format!("HASHSCAN_{k}")).collect();
    for cmd in [&["worker", "--help"][..], &["serve", "--help"], &["scan", "submit", "--help"], &["hits", "--help"]] {
        known.extend(words(&common::run(cmd), "HASHSCAN_"));
    }
    assert!(known.contains("HASHSCAN_DATABASE_URL") && known.contains("HASHSCAN_CONFIG"), "{known:?}");
    for (file, text) in deploy_files() {
        for var in words(&text, "HASHSCAN_") {
            let nested = var.contains("__");
            assert!(known.contains(&var) || nested, "{file} sets {var}, which hashscan does not read");
        }
    }
}

#[test]
fn alerts_and_autoscalers_use_metrics_a_worker_serves() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("hashscan-test-deploy-{}", std::process::id());
    let config = dir.path().join("workers.toml");
    std::fs::write(&config, format!("[amqp]\nprefix = {prefix:?}\n[redis]\nprefix = {prefix:?}\n")).unwrap();
    let mut workers = common::Workers { children: vec![], env: vec![] };
    workers.spawn("fetcher", &config, dir.path());
    let addr = workers.metrics_addr(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let body = common::http_get(&addr, "/metrics").1;
        if body.contains("hashscan_queue_depth{") {
            break body;
        }
        assert!(Instant::now() < deadline, "the fetcher never reported its queue depth: {body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    workers.stop();
    // Leave no queues behind.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let amqp = hashscan_bus_amqp::AmqpConfig {
            url: std::env::var("HASHSCAN_AMQP_URL").unwrap_or_else(|_| hashscan_bus_amqp::AmqpConfig::default().url),
            prefix: prefix.clone(),
            ..Default::default()
        };
        let bus = hashscan_bus_amqp::AmqpBus::connect(amqp).await.unwrap();
        bus.delete_topology().await.unwrap();
        bus.close().await;
    });
    let served = words(&metrics, "hashscan_");
    let mut used = words(&read("prometheus/rules.yml"), "hashscan_");
    used.extend(words(&read("k8s/hpa.yaml"), "hashscan_"));
    // Names of things, not metrics.
    used.retain(|w| w != "hashscan_" && !w.starts_with("hashscan_credentials"));
    assert!(used.contains("hashscan_queue_depth"), "{used:?}");
    for m in &used {
        assert!(served.contains(m), "{m} is used in deploy/ but no worker serves it:\n{metrics}");
    }
    // The queue label the autoscalers select on is the shipped prefix's.
    assert!(read("k8s/hpa.yaml").contains("queue: hashscan.fetch"));
    assert!(metrics.contains(&format!("hashscan_queue_depth{{queue=\"{prefix}.fetch\"}}")), "{metrics}");
}

#[test]
fn the_recheck_cronjob_runs_a_command_hashscan_accepts() {
    let yaml = read("k8s/recheck.yaml");
    assert!(read("k8s/kustomization.yaml").contains("- recheck.yaml"), "the CronJob is applied with the rest");
    let line = yaml.lines().find(|l| l.trim_start().starts_with("args:")).expect("recheck.yaml has args");
    let list = line.trim_start().trim_start_matches("args:").trim();
    let args: Vec<String> = serde_json::from_str(list).expect("args are a flow list of strings");
    assert_eq!(args[0], "recheck");
    // On an empty data directory the arguments parse (clap exits 2 on a bad
    // one) and the command stops on the missing results, as it must.
    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hashscan"))
        .args(&args)
        .arg("--data-dir")
        .arg(empty.path())
        .env_remove("HASHSCAN_DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(stderr.contains("no results in"), "{stderr}");
}
