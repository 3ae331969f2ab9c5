//! Cluster workers ride out RabbitMQ and Redis going away mid-scan. Its own
//! test binary: it restarts the machine's RabbitMQ, which must not happen
//! under another test's feet; Redis is a private one it can kill.

mod common;

use std::process::Command;
use std::time::Duration;

use common::Cluster;

fn sh(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed by this test (it comes with the service): {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A Redis of this test's own, persisting every write (AOF, fsync always),
/// so it can be killed and started again like a production Redis.
struct PrivateRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut r = PrivateRedis { port, dir: tempfile::tempdir().unwrap(), child: None };
        r.spawn();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is needed by this test (scripts/test installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            let ping = Command::new("redis-cli").args(["-p", &self.port.to_string(), "PING"]).output();
            if ping.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the private redis-server on port {} did not start", self.port);
    }

    /// kill -9, a pause, and a start on the same port and files.
    fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        std::thread::sleep(Duration::from_secs(2));
        self.spawn();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn a_scan_survives_a_rabbitmq_restart_and_a_redis_restart() {
    let mut redis = PrivateRedis::start();
    let mut c = Cluster::start_with_env(8, vec![("HASHSCAN_REDIS_URL".into(), redis.url())]);
    c.submit("o1", "3");
    c.wait_running("o1", 3);
    // RabbitMQ stops and starts again: every connection drops, queues and
    // persistent messages survive (quorum queues, confirmed publishes).
    sh("rabbitmqctl", &["-q", "stop_app"]);
    std::thread::sleep(Duration::from_secs(2));
    sh("rabbitmqctl", &["-q", "start_app"]);
    sh("rabbitmqctl", &["-q", "await_startup"]);
    // Redis is killed (-9) and started again on its files: with persistence
    // on (as docs/operations.md asks), the shared state survives and the
    // workers reconnect.
    c.wait_running("o1", 6);
    redis.restart();
    let cfg = c.config.to_str().unwrap().to_string();
    let mid: serde_json::Value =
        serde_json::from_str(c.run(&["scan", "status", "o1", "--config", &cfg, "--json"]).trim()).unwrap();
    assert_ne!(mid["status"], "finished", "the restart landed mid-scan: {mid}");
    let status = c.wait("o1");
    c.assert_same_keys(&status, "o1", &["pages", "images", "data_images", "redirects", "failed"]);
    // Every worker is still up and leaves cleanly.
    for (role, child, _) in &mut c.workers.children {
        assert!(child.try_wait().unwrap().is_none(), "{role} died during the outages");
    }
    c.finish();
}
