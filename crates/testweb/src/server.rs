//! Serving a generated web on loopback, one address per host, with an
//! access log as the server saw it.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::web::{generate, hosts, Manifest, Resource, Web, WebSpec};

/// One request as the test web's server saw it: the evidence for
/// politeness and for what a scan really fetched.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccessEntry {
    /// Milliseconds since the web started serving (monotonic clock).
    pub at_ms: u64,
    /// Wall-clock time (Unix ms).
    pub unix_ms: i64,
    /// The address the request arrived on.
    pub local_ip: IpAddr,
    /// Host header without the port.
    pub host: String,
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Response status.
    pub status: u16,
    /// User-Agent header.
    pub user_agent: Option<String>,
}

/// Why the test web could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// No single port was free on every host address.
    #[error("could not bind one port on all {hosts} test-web addresses after {attempts} attempts: {last}")]
    Bind {
        /// Addresses to bind.
        hosts: usize,
        /// Ports tried.
        attempts: usize,
        /// The last error.
        last: std::io::Error,
    },
}

struct Shared {
    web: Web,
    log: Mutex<Vec<AccessEntry>>,
    started: Instant,
}

#[derive(Clone)]
struct HostState {
    shared: Arc<Shared>,
    local_ip: IpAddr,
}

/// A test web being served. Dropping it stops the servers.
pub struct TestWeb {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl TestWeb {
    /// Generates the web for `spec` and serves it on loopback: every host on
    /// its own 127.x address, all on one port (chosen free). `port` 0 picks one.
    pub async fn start(spec: WebSpec, port: u16) -> Result<Self, ServeError> {
        let addrs: Vec<IpAddr> = hosts(&spec).iter().map(|h| h.ip).collect();
        let (listeners, port) = bind_all(&addrs, port).await?;
        let web = generate(&spec, port);
        let shared = Arc::new(Shared { web, log: Mutex::new(Vec::new()), started: Instant::now() });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for (listener, ip) in listeners.into_iter().zip(addrs) {
            let state = HostState { shared: shared.clone(), local_ip: ip };
            let app = Router::new().fallback(handle).with_state(state);
            let mut stopped = stopped.clone();
            tasks.spawn(async move {
                let shutdown = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                // A failing accept loop only ends this host's server; the test sees failed fetches.
                let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
            });
        }
        Ok(Self { shared, stop, tasks })
    }

    /// The ground truth, with this server's port in every URL.
    pub fn manifest(&self) -> &Manifest {
        self.shared.web.manifest()
    }

    /// The generated reference file (CSV).
    pub fn reference_csv(&self) -> &str {
        self.shared.web.reference_csv()
    }

    /// The port every host listens on.
    pub fn port(&self) -> u16 {
        self.manifest().port
    }

    /// The CIDR a scan must allow to reach this web.
    pub fn allow_net(&self) -> String {
        self.manifest().spec.allow_net()
    }

    /// Every request so far, in arrival order.
    pub fn access_log(&self) -> Vec<AccessEntry> {
        self.shared.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Stops serving and waits for the servers to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn bind_all(addrs: &[IpAddr], port: u16) -> Result<(Vec<TcpListener>, u16), ServeError> {
    const ATTEMPTS: usize = 20;
    let mut last = std::io::Error::other("no addresses");
    for _ in 0..ATTEMPTS {
        let Some(first) = addrs.first() else { break };
        let l0 = match TcpListener::bind(SocketAddr::new(*first, port)).await {
            Ok(l) => l,
            Err(e) => {
                last = e;
                if port != 0 {
                    break;
                }
                continue;
            }
        };
        let chosen = match l0.local_addr() {
            Ok(a) => a.port(),
            Err(e) => {
                last = e;
                continue;
            }
        };
        let mut listeners = vec![l0];
        for ip in &addrs[1..] {
            match TcpListener::bind(SocketAddr::new(*ip, chosen)).await {
                Ok(l) => listeners.push(l),
                Err(e) => {
                    last = e;
                    break;
                }
            }
        }
        if listeners.len() == addrs.len() {
            return Ok((listeners, chosen));
        }
        if port != 0 {
            break;
        }
    }
    Err(ServeError::Bind { hosts: addrs.len(), attempts: ATTEMPTS, last })
}

async fn handle(State(state): State<HostState>, method: Method, headers: HeaderMap, uri: Uri) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name).to_ascii_lowercase())
        .unwrap_or_default();
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let shared = &state.shared;
    let response = match shared.web.lookup(&host, &path) {
        Some(Resource::Html(html)) => ok("text/html; charset=utf-8", Body::from(html.to_string())),
        Some(Resource::Bytes { body, content_type }) => ok(content_type, Body::from(body.to_vec())),
        Some(Resource::Redirect(location)) => Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, location.as_str())
            .body(Body::empty())
            .unwrap_or_default(),
        None => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from("not found"))
            .unwrap_or_default(),
    };
    let entry = AccessEntry {
        at_ms: shared.started.elapsed().as_millis() as u64,
        unix_ms: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0),
        local_ip: state.local_ip,
        host,
        method: method.to_string(),
        path,
        status: response.status().as_u16(),
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string),
    };
    if let Ok(mut log) = shared.log.lock() {
        log.push(entry);
    }
    response
}

fn ok(content_type: &'static str, body: Body) -> Response {
    Response::builder().header(header::CONTENT_TYPE, content_type).body(body).unwrap_or_default()
}
