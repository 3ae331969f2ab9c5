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
    /// If-None-Match request header: shows whether a recrawl revalidated.
    pub if_none_match: Option<String>,
    /// If-Modified-Since request header: shows whether a recrawl revalidated.
    pub if_modified_since: Option<String>,
    /// Accept-Encoding request header: what compression the client offered.
    pub accept_encoding: Option<String>,
    /// Response body bytes as sent (compressed size for a compressed body;
    /// the planned length for a streamed one; 0 for HEAD).
    pub bytes: u64,
}

/// The access log both servers share: entries are stamped when a request
/// arrives, so politeness checks see request times as the server saw them,
/// not when a deliberately slow response finished.
pub(crate) struct AccessLog {
    entries: Mutex<Vec<AccessEntry>>,
    started: Instant,
}

impl AccessLog {
    pub(crate) fn new() -> Self {
        Self { entries: Mutex::new(Vec::new()), started: Instant::now() }
    }

    /// An entry for a request arriving now; status and bytes are filled by [`AccessLog::push`].
    pub(crate) fn arrive(&self, local_ip: IpAddr, method: &Method, headers: &HeaderMap, uri: &Uri) -> AccessEntry {
        let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        AccessEntry {
            at_ms: self.started.elapsed().as_millis() as u64,
            unix_ms: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0),
            local_ip,
            host: host_header(headers),
            method: method.to_string(),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
            status: 0,
            user_agent: text(header::USER_AGENT),
            if_none_match: text(header::IF_NONE_MATCH),
            if_modified_since: text(header::IF_MODIFIED_SINCE),
            accept_encoding: text(header::ACCEPT_ENCODING),
            bytes: 0,
        }
    }

    /// Records `entry` with the response's status and body size.
    pub(crate) fn push(&self, mut entry: AccessEntry, status: StatusCode, bytes: u64) {
        entry.status = status.as_u16();
        entry.bytes = if entry.method == Method::HEAD.as_str() { 0 } else { bytes };
        if let Ok(mut log) = self.entries.lock() {
            log.push(entry);
        }
    }

    /// Every request so far, in arrival order.
    pub(crate) fn entries(&self) -> Vec<AccessEntry> {
        self.entries.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// The Host header without the port, lower-cased.
pub(crate) fn host_header(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name).to_ascii_lowercase())
        .unwrap_or_default()
}

/// Serves one router per listener until `stopped` turns true.
pub(crate) fn spawn_servers(
    listeners: Vec<(TcpListener, IpAddr)>,
    app: impl Fn(IpAddr) -> Router,
    stopped: &watch::Receiver<bool>,
) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    for (listener, ip) in listeners {
        let app = app(ip);
        let mut stopped = stopped.clone();
        tasks.spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            // A failing accept loop only ends this host's server; the test sees failed fetches.
            let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        });
    }
    tasks
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

/// Something served by [`Serving`]: it knows what every URL serves. Both
/// the main web and the evaluation web implement it, so they share one
/// handler, one access log and one way of binding.
pub(crate) trait Lookup: Send + Sync + 'static {
    /// What `host` + `path` (with query) serves, if anything.
    fn lookup(&self, host: &str, path: &str) -> Option<&Resource>;
}

struct Shared<W> {
    web: W,
    log: AccessLog,
    /// (host, path) taken down: answered 404, as a removed picture is.
    removed: std::sync::RwLock<std::collections::HashSet<(String, String)>>,
}

struct HostState<W> {
    shared: Arc<Shared<W>>,
    local_ip: IpAddr,
}

impl<W> Clone for HostState<W> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone(), local_ip: self.local_ip }
    }
}

/// A generated web being served on loopback: one listener per host
/// address, all on one port, with the access log. Dropping it stops the
/// servers.
pub(crate) struct Serving<W> {
    shared: Arc<Shared<W>>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl<W: Lookup> Serving<W> {
    /// Binds one port (`port`, or a free one for 0) on every address of
    /// `addrs`, builds the web for that port and serves it.
    pub(crate) async fn start(addrs: &[IpAddr], port: u16, build: impl FnOnce(u16) -> W) -> Result<Self, ServeError> {
        let (listeners, port) = bind_all(addrs, port).await?;
        let shared = Arc::new(Shared { web: build(port), log: AccessLog::new(), removed: Default::default() });
        let (stop, stopped) = watch::channel(false);
        let state_of = |ip| HostState { shared: shared.clone(), local_ip: ip };
        let tasks = spawn_servers(
            listeners.into_iter().zip(addrs.iter().copied()).collect(),
            |ip| Router::new().fallback(handle::<W>).with_state(state_of(ip)),
            &stopped,
        );
        Ok(Self { shared, stop, tasks })
    }

    /// What is being served.
    pub(crate) fn web(&self) -> &W {
        &self.shared.web
    }

    /// Every request so far, in arrival order.
    pub(crate) fn access_log(&self) -> Vec<AccessEntry> {
        self.shared.log.entries()
    }

    /// Answers 404 for `url` from now on (`up` false), or serves it again.
    pub(crate) fn set_up(&self, url: &str, up: bool) {
        let Ok(u) = url::Url::parse(url) else { return };
        let path = match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        };
        let key = (u.host_str().unwrap_or_default().to_ascii_lowercase(), path);
        if let Ok(mut removed) = self.shared.removed.write() {
            if up {
                removed.remove(&key);
            } else {
                removed.insert(key);
            }
        }
    }

    /// Stops serving and waits for the servers to finish.
    pub(crate) async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// A test web being served. Dropping it stops the servers.
pub struct TestWeb {
    serving: Serving<Web>,
}

impl TestWeb {
    /// Generates the web for `spec` and serves it on loopback: every host on
    /// its own 127.x address, all on one port (chosen free). `port` 0 picks one.
    pub async fn start(spec: WebSpec, port: u16) -> Result<Self, ServeError> {
        let addrs: Vec<IpAddr> = hosts(&spec).iter().map(|h| h.ip).collect();
        let serving = Serving::start(&addrs, port, |port| generate(&spec, port)).await?;
        Ok(Self { serving })
    }

    /// The ground truth, with this server's port in every URL.
    pub fn manifest(&self) -> &Manifest {
        self.serving.web().manifest()
    }

    /// The generated reference file (CSV).
    pub fn reference_csv(&self) -> &str {
        self.serving.web().reference_csv()
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
        self.serving.access_log()
    }

    /// Takes `url` down: it answers 404 from now on, as a picture removed
    /// after a notice does (for re-check tests).
    pub fn take_down(&self, url: &str) {
        self.serving.set_up(url, false)
    }

    /// Serves a taken-down `url` again.
    pub fn put_back(&self, url: &str) {
        self.serving.set_up(url, true)
    }

    /// Stops serving and waits for the servers to finish.
    pub async fn shutdown(self) {
        self.serving.shutdown().await
    }
}

pub(crate) async fn bind_all(addrs: &[IpAddr], port: u16) -> Result<(Vec<TcpListener>, u16), ServeError> {
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

async fn handle<W: Lookup>(
    State(state): State<HostState<W>>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let shared = &state.shared;
    // Stamped on arrival; the response below is built without delay.
    let entry = shared.log.arrive(state.local_ip, &method, &headers, &uri);
    let taken_down =
        shared.removed.read().map(|r| r.contains(&(entry.host.clone(), entry.path.clone()))).unwrap_or(false);
    let found = if taken_down { None } else { shared.web.lookup(&entry.host, &entry.path) };
    let (response, bytes) = match found {
        Some(Resource::Html(html)) => (ok("text/html; charset=utf-8", Body::from(html.to_string())), html.len()),
        Some(Resource::Bytes { body, content_type }) => (ok(content_type, Body::from(body.to_vec())), body.len()),
        Some(Resource::Redirect(location)) => (
            Response::builder()
                .status(StatusCode::FOUND)
                .header(header::LOCATION, location.as_str())
                .body(Body::empty())
                .unwrap_or_default(),
            0,
        ),
        None => (
            Response::builder()
                .status(StatusCode::NOT_FOUND)
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from(NOT_FOUND))
                .unwrap_or_default(),
            NOT_FOUND.len(),
        ),
    };
    shared.log.push(entry, response.status(), bytes as u64);
    response
}

const NOT_FOUND: &str = "not found";

fn ok(content_type: &'static str, body: Body) -> Response {
    Response::builder().header(header::CONTENT_TYPE, content_type).body(body).unwrap_or_default()
}
