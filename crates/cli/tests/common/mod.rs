//! A cluster of `hashscan worker` processes on a served test web, shared by
//! the cluster test binaries.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hashscan_testweb::{TestWeb, WebSpec};
use rand::Rng;

const BIN: &str = env!("CARGO_BIN_EXE_hashscan");

pub struct Workers {
    pub children: Vec<(String, Child, PathBuf)>,
    /// Environment for the workers started from now on (it overrides the file).
    pub env: Vec<(String, String)>,
}

impl Workers {
    pub fn spawn(&mut self, role: &str, config: &Path, logs: &Path) {
        let log = logs.join(format!("{role}-{}.log", self.children.len()));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .args(["worker", role, "--config"])
            .arg(config)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("worker starts");
        self.children.push((role.to_string(), child, log));
    }

    /// The metrics address a worker printed.
    pub fn metrics_addr(&self, i: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&self.children[i].2).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains("metrics on http://")) {
                let url = line.split("http://").nth(1).unwrap();
                return url.trim_end_matches("/metrics").to_string();
            }
            assert!(Instant::now() < deadline, "worker {i} printed no metrics address: {text}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asserts that worker `i` can never write a core file (its core limit
    /// is zero, soft and hard), as the kernel reports it in /proc.
    pub fn assert_no_core_dumps(&self, i: usize) {
        // Once it printed its metrics address it is well past its start.
        self.metrics_addr(i);
        let pid = self.children[i].1.id();
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let line = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap();
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&fields[4..6], ["0", "0"], "worker {i}: {line}");
    }

    /// The last `n` lines of every worker's log, for a failure message.
    pub fn log_tails(&self, n: usize) -> String {
        let mut out = String::new();
        for (role, _, log) in &self.children {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out += &format!("--- {role} ({}), last {n} lines:\n", log.display());
            for l in &lines[lines.len().saturating_sub(n)..] {
                out += l;
                out.push('\n');
            }
        }
        out
    }

    /// kill -9 of worker `i`, which leaves the list (it is not stopped again).
    pub fn kill(&mut self, i: usize) {
        let (_, mut child, _) = self.children.remove(i);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM to all; each must leave cleanly within 10 s.
    pub fn stop(&mut self) {
        for (_, c, _) in &self.children {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (role, c, log) in &mut self.children {
            loop {
                if let Some(status) = c.try_wait().unwrap() {
                    let text = std::fs::read_to_string(&*log).unwrap_or_default();
                    assert!(status.success(), "{role} exited with {status}: {text}");
                    break;
                }
                assert!(Instant::now() < deadline, "{role} did not exit within 10 s of SIGTERM");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (_, c, _) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out)
}

pub fn run(args: &[&str]) -> String {
    run_with(args, &[])
}

/// [`run`] with extra environment (it overrides the worker file).
pub fn run_with(args: &[&str], env: &[(String, String)]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("hashscan runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn hits(data: &Path, scan: &str) -> BTreeSet<String> {
    let out = run(&["hits", "--data-dir", data.to_str().unwrap(), "--scan", scan, "--format", "jsonl"]);
    out.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["blake3"].to_string()).collect()
}

/// A served test web, its files, a worker configuration with a fresh
/// prefix, and the workers started on it.
pub struct Cluster {
    pub rt: tokio::runtime::Runtime,
    pub web: Option<TestWeb>,
    pub dir: tempfile::TempDir,
    pub prefix: String,
    pub config: PathBuf,
    pub seeds: PathBuf,
    pub reference: PathBuf,
    pub data: PathBuf,
    pub workers: Workers,
}

impl Cluster {
    pub fn start(seed: u64) -> Self {
        Self::start_with_env(seed, vec![])
    }

    /// A cluster whose workers and commands get `env` (e.g. another Redis).
    pub fn start_with_env(seed: u64, env: Vec<(String, String)>) -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let web = rt.block_on(TestWeb::start(WebSpec { seed, ..WebSpec::default() }, 0)).unwrap();
        let m = web.manifest().clone();
        let dir = tempfile::tempdir().unwrap();
        let reference = dir.path().join("reference.csv");
        std::fs::write(&reference, web.reference_csv()).unwrap();
        let seeds = dir.path().join("seeds.txt");
        std::fs::write(&seeds, m.seeds.join("\n")).unwrap();
        let prefix = format!("hashscan-test-{:08x}", rand::rng().random::<u32>());
        let resolve: Vec<String> = m.resolve_flags().iter().map(|r| format!("{r:?}")).collect();
        let config = dir.path().join("workers.toml");
        let data = dir.path().join("cluster-data");
        std::fs::write(
            &config,
            format!(
                "[amqp]\nprefix = {prefix:?}\n[redis]\nprefix = {prefix:?}\n[store]\ndata_dir = {:?}\n\
                 [fetcher]\nconcurrency = 4\nallow_net = [{:?}]\nresolve = [{}]\n[matcher]\nreference = {:?}\n\
                 [scheduler]\nresume_grace_secs = 3\ntask_lease_secs = 20\n",
                data.display().to_string(),
                web.allow_net(),
                resolve.join(", "),
                reference.display().to_string(),
            ),
        )
        .unwrap();
        let mut c = Cluster {
            rt,
            web: Some(web),
            dir,
            prefix,
            config,
            seeds,
            reference,
            data,
            workers: Workers { children: vec![], env },
        };
        for role in ["scheduler", "fetcher", "fetcher", "fetcher", "matcher", "matcher"] {
            c.spawn(role);
        }
        c
    }

    pub fn spawn(&mut self, role: &str) {
        let (config, dir) = (self.config.clone(), self.dir.path().to_path_buf());
        self.workers.spawn(role, &config, &dir);
    }

    /// `hashscan ARGS` with the workers' environment.
    pub fn run(&self, args: &[&str]) -> String {
        run_with(args, &self.workers.env)
    }

    /// The Redis the workers use.
    pub fn redis_url(&self) -> String {
        self.workers
            .env
            .iter()
            .find(|(k, _)| k == "HASHSCAN_REDIS_URL")
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var("HASHSCAN_REDIS_URL").ok())
            .unwrap_or_else(|| "redis://127.0.0.1:6379/".into())
    }

    pub fn web(&self) -> &TestWeb {
        self.web.as_ref().unwrap()
    }

    pub fn submit(&self, id: &str, rate: &str) {
        let cfg = self.config.to_str().unwrap();
        self.run(&[
            "scan",
            "submit",
            "--config",
            cfg,
            "--seeds",
            self.seeds.to_str().unwrap(),
            "--rate",
            rate,
            "--scan-id",
            id,
        ]);
    }

    pub fn wait(&self, id: &str) -> serde_json::Value {
        let cfg = self.config.to_str().unwrap();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let out = self.run(&["scan", "status", id, "--config", cfg, "--json"]);
            let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
            if v["status"] == "finished" || v["status"] == "failed" {
                assert_eq!(v["status"], "finished", "{v}");
                return v;
            }
            assert!(Instant::now() < deadline, "the cluster scan did not finish: {v}\n{}", self.workers.log_tails(40));
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The scan's state as `scan status --json` prints it.
    pub fn status(&self, id: &str) -> serde_json::Value {
        let cfg = self.config.to_str().unwrap();
        serde_json::from_str(self.run(&["scan", "status", id, "--config", cfg, "--json"]).trim()).unwrap()
    }

    /// Waits until the scan is running and has fetched `pages` pages.
    pub fn wait_running(&self, id: &str, pages: u64) {
        let cfg = self.config.to_str().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.run(&["scan", "status", id, "--config", cfg, "--json"]);
            let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
            if v["status"] == "running" && v["pages"].as_u64().unwrap_or(0) >= pages {
                return;
            }
            assert!(v["status"] != "finished" && Instant::now() < deadline, "never caught the scan running: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The same scan in embedded mode: its JSON report.
    pub fn embedded(&self, id: &str) -> (serde_json::Value, PathBuf) {
        let embedded = self.dir.path().join(format!("embedded-{id}"));
        let mut args: Vec<String> = vec![
            "scan".into(),
            "--seeds".into(),
            self.seeds.display().to_string(),
            "--reference".into(),
            self.reference.display().to_string(),
            "--data-dir".into(),
            embedded.display().to_string(),
            "--rate".into(),
            "50".into(),
            "--allow-net".into(),
            self.web().allow_net(),
            "--scan-id".into(),
            id.into(),
            "--json".into(),
        ];
        for r in self.web().manifest().resolve_flags() {
            args.push("--resolve".into());
            args.push(r);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        (serde_json::from_str(&run(&refs)).unwrap(), embedded)
    }

    /// Cluster and embedded runs agree on every count and every hit.
    pub fn assert_same(&self, status: &serde_json::Value, cluster_id: &str) {
        self.assert_same_keys(
            status,
            cluster_id,
            &["discovered", "queued", "pages", "images", "data_images", "redirects", "failed", "rejected", "robots"],
        );
    }

    /// Cluster and embedded runs agree on these summary counts, on what was
    /// stored, and on every hit.
    pub fn assert_same_keys(&self, status: &serde_json::Value, cluster_id: &str, keys: &[&str]) {
        let (report, embedded) = self.embedded("e1");
        let c = &status["summary"]["summary"];
        let e = &report["summary"];
        for key in keys {
            assert_eq!(c[*key], e[*key], "{key}: cluster {c} vs embedded {e}");
        }
        assert_eq!(status["summary"]["cases"], report["cases"]);
        assert_eq!(status["summary"]["stored"], report["stored"]);
        // Read through the workers' environment: with HASHSCAN_DATABASE_URL
        // the cluster's results are on PostgreSQL, not in the data directory.
        let out =
            self.run(&["hits", "--data-dir", self.data.to_str().unwrap(), "--scan", cluster_id, "--format", "jsonl"]);
        let cluster_hits: BTreeSet<String> =
            out.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["blake3"].to_string()).collect();
        assert!(!cluster_hits.is_empty());
        assert_eq!(cluster_hits, hits(&embedded, "e1"));
        // Every listed image is a case (others may be, by their circumstances).
        for c in self.web().manifest().expected_hits() {
            let key = format!("{:?}", c.digests.hex(hashscan_hash::CryptoAlgo::Blake3));
            assert!(cluster_hits.contains(&key), "listed {key} is a case");
        }
    }

    /// Stops the workers (SIGTERM, clean exit) and removes the queues and keys.
    pub fn finish(mut self) {
        self.workers.stop();
        let prefix = self.prefix.clone();
        let web = self.web.take().unwrap();
        self.rt.block_on(async {
            let amqp = hashscan_bus_amqp::AmqpConfig {
                url: std::env::var("HASHSCAN_AMQP_URL")
                    .unwrap_or_else(|_| hashscan_bus_amqp::AmqpConfig::default().url),
                prefix: prefix.clone(),
                ..Default::default()
            };
            let bus = hashscan_bus_amqp::AmqpBus::connect(amqp).await.unwrap();
            let dead = hashscan_bus::Bus::take_dead_letters(&bus, hashscan_bus::Topic::Match, 10).await.unwrap();
            assert!(dead.is_empty(), "nothing was dead-lettered: {dead:?}");
            bus.delete_topology().await.unwrap();
            bus.close().await;
            let url = self.redis_url();
            let registry = hashscan_cluster::registry::Registry::connect(&url, &prefix).await.unwrap();
            assert!(registry.forget_everything().await.unwrap() > 0);
            web.shutdown().await;
        });
    }
}
