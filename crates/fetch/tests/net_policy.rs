//! The network guard, range by range: a request to a forbidden address is
//! refused inside the process, whether the URL names the address, a host
//! pinned to it, or an IPv6 spelling of it, and redirects are re-checked.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hashscan_bus::{FailReason, FetchTask, Outcome, TaskKind};
use hashscan_fetch::{FetchConfig, Fetcher};
use hashscan_netguard::{parse_net, NetPolicy, Overrides};
use url::Url;

fn task(url: &str, kind: TaskKind) -> FetchTask {
    FetchTask {
        scan: "s".into(),
        url: Url::parse(url).unwrap(),
        kind,
        depth: 0,
        referrer: None,
        hops: 0,
        validators: None,
        attempt: 0,
    }
}

fn refused(outcome: &Outcome) -> Option<&str> {
    match outcome {
        Outcome::Failed { reason: FailReason::NetPolicy, detail } => Some(detail),
        _ => None,
    }
}

/// Every forbidden range, by a literal URL and by a name pinned to it.
#[tokio::test]
async fn every_forbidden_range_is_refused_before_any_connection() {
    let cases: &[(&str, &str)] = &[
        ("0.0.0.1", "unspecified"),
        ("127.0.0.1", "loopback"),
        ("127.77.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "cgnat"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "unique-local"),
        ("fd12:3456::1", "unique-local"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("::127.0.0.1", "loopback"),
    ];
    let mut pins = Vec::new();
    for (i, (ip, _)) in cases.iter().enumerate() {
        pins.push(format!("h{i}.example.test={ip}"));
    }
    let config = FetchConfig { overrides: Overrides::parse(&pins).unwrap(), ..FetchConfig::default() };
    let fetcher = Fetcher::new(config).unwrap();
    for (i, (ip, range)) in cases.iter().enumerate() {
        let literal = match ip.parse::<IpAddr>().unwrap() {
            IpAddr::V4(_) => format!("http://{ip}:9/x.png"),
            IpAddr::V6(_) => format!("http://[{ip}]:9/x.png"),
        };
        for url in [literal, format!("http://h{i}.example.test:9/x.png")] {
            for kind in [TaskKind::Image, TaskKind::Page, TaskKind::Robots] {
                let fetched = fetcher.fetch(task(&url, kind)).await;
                let detail = refused(&fetched.report.outcome)
                    .unwrap_or_else(|| panic!("{url} ({kind:?}) was not refused: {:?}", fetched.report.outcome));
                assert!(detail.contains(range), "{url}: {detail:?} should name {range}");
                assert_eq!(fetched.report.ip, None, "{url}: no connection was made");
                assert!(fetched.work.is_empty());
            }
        }
    }
}

/// A real listener on loopback sees nothing of refused requests, and a
/// redirect from an allowed address to a forbidden one is refused at the hop.
#[tokio::test]
async fn the_server_on_a_forbidden_address_never_sees_a_request() {
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let counter = hits.clone();
    let server = tokio::spawn(async move {
        // Count accepted connections; answer nothing (the guard must stop first).
        while let Ok((_sock, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let fetcher = Fetcher::new(FetchConfig {
        overrides: Overrides::parse(&["pinned.example.test=127.0.0.1"]).unwrap(),
        ..FetchConfig::default()
    })
    .unwrap();
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://pinned.example.test:{port}/"),
        format!("http://localhost:{port}/"),
    ] {
        let fetched = fetcher.fetch(task(&url, TaskKind::Page)).await;
        assert!(
            matches!(fetched.report.outcome, Outcome::Failed { reason: FailReason::NetPolicy | FailReason::Dns, .. }),
            "{url}: {:?}",
            fetched.report.outcome
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no connection reached the loopback server");

    // Allowed: the same server is reachable once loopback is allowed (so the
    // zero above is the guard's doing, not a dead listener).
    let open = Fetcher::new(FetchConfig {
        policy: NetPolicy::with_allowed(vec![parse_net("127.0.0.1/32").unwrap()]),
        first_byte_timeout: std::time::Duration::from_millis(300),
        ..FetchConfig::default()
    })
    .unwrap();
    let _ = open.fetch(task(&format!("http://127.0.0.1:{port}/"), TaskKind::Page)).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(hits.load(Ordering::SeqCst) >= 1);
    server.abort();
}

/// Redirect hops are re-checked: a page on an allowed address that
/// redirects to 169.254.169.254 yields a redirect whose target is refused.
#[tokio::test]
async fn a_redirect_to_a_forbidden_address_is_refused_at_the_next_hop() {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async {
        (StatusCode::FOUND, [(header::LOCATION, "http://169.254.169.254/latest/meta-data/")]).into_response()
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let fetcher = Fetcher::new(FetchConfig {
        policy: NetPolicy::with_allowed(vec![parse_net("127.0.0.1/32").unwrap()]),
        ..FetchConfig::default()
    })
    .unwrap();
    let fetched = fetcher.fetch(task(&format!("http://{addr}/"), TaskKind::Page)).await;
    let Outcome::Redirect { location } = fetched.report.outcome else { panic!("{:?}", fetched.report.outcome) };
    let hop = fetcher.fetch(task(location.as_str(), TaskKind::Page)).await;
    assert!(refused(&hop.report.outcome).is_some_and(|d| d.contains("link-local")), "{:?}", hop.report.outcome);
    // robots.txt follows its redirects itself: each hop is checked the same way.
    let robots = fetcher.fetch(task(&format!("http://{addr}/robots.txt"), TaskKind::Robots)).await;
    assert!(refused(&robots.report.outcome).is_some(), "{:?}", robots.report.outcome);
    server.abort();
}
