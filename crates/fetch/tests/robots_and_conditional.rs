//! robots.txt fetching (redirect cap, size cap, status), conditional
//! requests and throttling answers, against a loopback server.

use std::net::SocketAddr;

use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hashscan_bus::{FailReason, FetchTask, Outcome, TaskKind, Validators};
use hashscan_fetch::{FetchConfig, Fetcher, MAX_ROBOTS_BYTES};
use hashscan_netguard::{parse_net, NetPolicy};
use url::Url;

async fn serve() -> SocketAddr {
    let app = axum::Router::new()
        // /hop/N redirects to /hop/N-1; /hop/0 is the file.
        .route(
            "/hop/{n}",
            get(|Path(n): Path<u32>| async move {
                if n == 0 {
                    "User-agent: *\nDisallow: /x/\n".into_response()
                } else {
                    (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, format!("/hop/{}", n - 1))]).into_response()
                }
            }),
        )
        .route("/big/robots.txt", get(|| async { "# padding\n".repeat(MAX_ROBOTS_BYTES / 5) }))
        .route("/gone/robots.txt", get(|| async { StatusCode::GONE }))
        .route("/err/robots.txt", get(|| async { StatusCode::BAD_GATEWAY }))
        .route(
            "/etag.html",
            get(|headers: HeaderMap| async move {
                let tag = "\"v7\"";
                if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(tag) {
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                let mut r: Response = ([(header::CONTENT_TYPE, "text/html")], "<a href=/a>a</a>").into_response();
                r.headers_mut().insert(header::ETAG, tag.parse().unwrap());
                r.headers_mut().insert(header::LAST_MODIFIED, "Wed, 01 Jan 2025 00:00:00 GMT".parse().unwrap());
                r
            }),
        )
        .route("/304.html", get(|| async { StatusCode::NOT_MODIFIED }))
        .route("/busy", get(|| async { (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "7")]) }))
        .route("/down", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "soon")]) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn fetcher() -> Fetcher {
    Fetcher::new(FetchConfig {
        policy: NetPolicy::with_allowed(vec![parse_net("127.0.0.1/32").unwrap()]),
        ..FetchConfig::default()
    })
    .unwrap()
}

fn task(url: String, kind: TaskKind, validators: Option<Validators>) -> FetchTask {
    FetchTask {
        scan: "s".into(),
        url: Url::parse(&url).unwrap(),
        kind,
        depth: 0,
        referrer: None,
        hops: 0,
        validators,
        attempt: 0,
    }
}

#[tokio::test]
async fn robots_follows_five_redirects_and_no_more() {
    let addr = serve().await;
    let f = fetcher();
    let ok = f.fetch(task(format!("http://{addr}/hop/5"), TaskKind::Robots, None)).await;
    match ok.report.outcome {
        Outcome::Robots { status: 200, body: Some(b) } => assert!(b.contains("Disallow: /x/")),
        other => panic!("{other:?}"),
    }
    let too_far = f.fetch(task(format!("http://{addr}/hop/6"), TaskKind::Robots, None)).await;
    assert!(
        matches!(too_far.report.outcome, Outcome::Failed { reason: FailReason::Redirect, .. }),
        "{:?}",
        too_far.report.outcome
    );
}

#[tokio::test]
async fn robots_is_cut_at_the_size_cap_and_statuses_are_reported() {
    let addr = serve().await;
    let f = fetcher();
    match f.fetch(task(format!("http://{addr}/big/robots.txt"), TaskKind::Robots, None)).await.report.outcome {
        Outcome::Robots { status: 200, body: Some(b) } => assert_eq!(b.len(), MAX_ROBOTS_BYTES),
        other => panic!("{other:?}"),
    }
    for (path, want) in [("/gone/robots.txt", 410), ("/err/robots.txt", 502)] {
        match f.fetch(task(format!("http://{addr}{path}"), TaskKind::Robots, None)).await.report.outcome {
            Outcome::Robots { status, body: None } => assert_eq!(status, want),
            other => panic!("{path}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn validators_are_captured_sent_back_and_304_is_not_a_redirect() {
    let addr = serve().await;
    let f = fetcher();
    let first = f.fetch(task(format!("http://{addr}/etag.html"), TaskKind::Page, None)).await;
    assert!(matches!(first.report.outcome, Outcome::Page { .. }), "{:?}", first.report.outcome);
    let v = first.report.validators.clone().expect("ETag and Last-Modified captured");
    assert_eq!(v.etag.as_deref(), Some("\"v7\""));
    let again = f.fetch(task(format!("http://{addr}/etag.html"), TaskKind::Page, Some(v))).await;
    assert_eq!(again.report.outcome, Outcome::NotModified);
    assert!(again.work.is_empty());
    // A 304 to an unconditional request is an HTTP error, not a redirect.
    let odd = f.fetch(task(format!("http://{addr}/304.html"), TaskKind::Page, None)).await;
    assert!(matches!(odd.report.outcome, Outcome::Failed { reason: FailReason::HttpStatus, .. }));
    // Empty validators mean "unconditional on purpose".
    let plain = f.fetch(task(format!("http://{addr}/etag.html"), TaskKind::Page, Some(Validators::default()))).await;
    assert!(matches!(plain.report.outcome, Outcome::Page { .. }));
}

#[tokio::test]
async fn throttling_answers_carry_retry_after_when_understood() {
    let addr = serve().await;
    let f = fetcher();
    let busy = f.fetch(task(format!("http://{addr}/busy"), TaskKind::Page, None)).await;
    assert_eq!(busy.report.outcome, Outcome::Throttled { status: 429, retry_after_ms: Some(7000) });
    let down = f.fetch(task(format!("http://{addr}/down"), TaskKind::Image, None)).await;
    assert_eq!(down.report.outcome, Outcome::Throttled { status: 503, retry_after_ms: None });
}
