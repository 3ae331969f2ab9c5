//! `hashscan user` and `hashscan serve` on PostgreSQL, as a deployment with
//! several review servers runs them: users made on the command line log in
//! on any replica, and a session begun on one is valid on the other.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hashscan_store_postgres::testdb::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_hashscan");
const PASSWORD: &str = "a long enough password";

/// One HTTP/1.1 exchange: status, head, body.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// `hashscan serve` on the database; returns it and its address.
fn serve(url: &str) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("HASHSCAN_DATABASE_URL", url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = vec![];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.split("review service on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap().to_string();
                    assert!(!line.contains("postgres://"), "the database URL is printed: {line}");
                    return (child, addr);
                }
                seen.push(line);
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("serve did not start: {seen:?}")
            }
        }
    }
}

#[test]
fn users_and_sessions_on_postgresql_are_shared_by_two_review_servers() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::create("serve"));
    // A user made on the command line, in the database of the URL.
    let mut add = Command::new(BIN)
        .args(["user", "add", "ann", "--role", "lead"])
        .env("HASHSCAN_DATABASE_URL", &db.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(add.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = add.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let (mut a, addr_a) = serve(&db.url);
    let (mut b, addr_b) = serve(&db.url);
    let login = format!("{{\"name\":\"ann\",\"password\":\"{PASSWORD}\"}}");
    let json = [("Content-Type", "application/json")];
    let (status, head, body) = http(&addr_a, "POST", "/api/login", &json, &login);
    assert_eq!(status, 200, "{head}\n{body}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    // The session begun on A is valid on B: sessions live in the database.
    let (status, _, me) = http(&addr_b, "GET", "/api/me", &[("Cookie", &cookie)], "");
    assert_eq!(status, 200, "{me}");
    assert!(me.contains("\"ann\""), "{me}");
    let (status, _, queue) = http(&addr_b, "GET", "/api/cases", &[("Cookie", &cookie)], "");
    assert_eq!(status, 200, "{queue}");
    // The audit log (read on B) has the login made on A.
    let (status, _, audit) = http(&addr_b, "GET", "/api/audit", &[("Cookie", &cookie)], "");
    assert_eq!(status, 200, "{audit}");
    assert!(audit.contains("login"), "{audit}");
    // Bad input still gets a clear 4xx on this backend.
    let (status, _, err) = http(&addr_b, "GET", "/api/cases?min_score=abc", &[("Cookie", &cookie)], "");
    assert_eq!(status, 400, "{err}");

    for c in [&mut a, &mut b] {
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
    }
    for c in [&mut a, &mut b] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    rt.block_on(db.drop_now());
}

#[test]
fn a_bad_database_url_is_a_clear_error_that_does_not_print_the_password() {
    let out = Command::new(BIN)
        .args(["hits"])
        .env("HASHSCAN_DATABASE_URL", "postgres://u:secret-pw@127.0.0.1:1/none?connect_timeout=2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PostgreSQL"), "{err}");
    assert!(!err.contains("secret-pw"), "the password is printed: {err}");
}
