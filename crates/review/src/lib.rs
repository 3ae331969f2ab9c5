//! The analysts' review service (`hashscan serve`): the queue of cases by
//! risk, the case page, claims, decisions with an append-only audit log,
//! and a server-rendered web UI — over HTTP, on the results store.
//!
//! It is the last role of the pipeline (scheduler → fetcher → matcher →
//! review). It reads and writes the store through `hashscan-store`'s review
//! tables ([`hashscan_store::review`]) and sends every decision back into
//! scoring through the matcher's [`Rescorer::after_decision`], so a
//! confirmation raises the images around it at once.
//!
//! Decisions a reader would question:
//! * **No image is ever shown, fetched or proxied.** The UI prints image
//!   URLs as text; the source opens only from a warning page, in the
//!   analyst's own browser, without a referrer. The Content-Security-Policy
//!   (`default-src 'none'`) would block an image even if a bug rendered one.
//! * **Locked down by default**: every route but `/login` and `/healthz`
//!   needs a session cookie or an API token; state changes by cookie need
//!   the session's CSRF token as well (tokens in headers are not sent by a
//!   browser on its own, so Bearer requests need none).
//! * **Time comes from a [`Clock`]**, so leases, sessions and the login
//!   rate limit are tested without sleeping.
//! * **Errors name the field**: every 4xx of the API is
//!   `{"error": "...", "field": "..."}`; no input reaches an `unwrap`.
#![deny(missing_docs)]

mod actions;
mod api;
mod auth;
mod error;
mod hotline;
mod html;
mod params;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use hashscan_matcher::rescore::Rescorer;
use hashscan_store::Store;

pub use auth::{hash_password, new_api_token, token_hash, verify_password, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};
pub use error::ReviewError;
pub use hashscan_store::review::ROLES;

/// The current time in Unix milliseconds. A function, not the system clock,
/// so that tests can move time (lease expiry, idle sessions, rate limits).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock as a [`Clock`].
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    })
}

/// How the service behaves; [`ReviewConfig::default`] is what `hashscan
/// serve` uses without flags.
#[derive(Clone)]
pub struct ReviewConfig {
    /// How long a claim holds a case (15 min).
    pub lease: Duration,
    /// The review threshold for the rescoring after a decision (0.5).
    pub threshold: f64,
    /// A session ends after this long without a request (8 h).
    pub session_idle: Duration,
    /// A session ends this long after login whatever its use (24 h).
    pub session_max: Duration,
    /// Failed logins are counted over this window (5 min)…
    pub login_window: Duration,
    /// …and this many of them, per user name or per client address, refuse
    /// further attempts with 429 until the oldest leaves the window (5).
    pub login_max_failures: u64,
    /// A bulk decision on a host decides at most this many cases per
    /// request (200); the answer says when more are left.
    pub bulk_limit: usize,
    /// Reverse proxies whose `X-Forwarded-For` is believed (none): behind
    /// one, the login rate limit and the audit log see the analyst's
    /// address instead of the proxy's.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The time.
    pub clock: Clock,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15 * 60),
            threshold: 0.5,
            session_idle: Duration::from_secs(8 * 3600),
            session_max: Duration::from_secs(24 * 3600),
            login_window: Duration::from_secs(5 * 60),
            login_max_failures: 5,
            bulk_limit: 200,
            trusted_proxies: vec![],
            clock: system_clock(),
        }
    }
}

impl std::fmt::Debug for ReviewConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewConfig")
            .field("lease", &self.lease)
            .field("threshold", &self.threshold)
            .field("session_idle", &self.session_idle)
            .field("session_max", &self.session_max)
            .field("login_window", &self.login_window)
            .field("login_max_failures", &self.login_max_failures)
            .field("bulk_limit", &self.bulk_limit)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

/// What every handler shares.
pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) rescorer: Rescorer,
    pub(crate) config: ReviewConfig,
}

/// The shared state of the handlers (cheap to clone).
#[derive(Clone)]
pub(crate) struct App(pub(crate) Arc<Inner>);

impl App {
    pub(crate) fn now(&self) -> i64 {
        (self.0.config.clock)()
    }

    pub(crate) fn store(&self) -> &dyn Store {
        &*self.0.store
    }

    pub(crate) fn config(&self) -> &ReviewConfig {
        &self.0.config
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Checks a configuration before use.
fn check(config: &ReviewConfig) -> Result<(), ReviewError> {
    if !(0.0..=1.0).contains(&config.threshold) {
        return Err(ReviewError::Config(format!("threshold must be in [0, 1], got {}", config.threshold)));
    }
    if config.lease.is_zero() {
        return Err(ReviewError::Config("the lease must be longer than zero".into()));
    }
    if config.bulk_limit == 0 {
        return Err(ReviewError::Config("bulk_limit must be at least 1".into()));
    }
    Ok(())
}

/// The service's routes on `store`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so that the audit
/// log and the login rate limit see client addresses (as [`serve`] does).
pub fn router(store: Arc<dyn Store>, config: ReviewConfig) -> Result<Router, ReviewError> {
    check(&config)?;
    let rescorer = Rescorer::new(store.clone(), store.clone(), config.threshold);
    let app = App(Arc::new(Inner { store, rescorer, config }));
    Ok(Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/login", get(html::login_page).post(html::login_form))
        .route("/logout", post(html::logout_form))
        .route("/", get(html::queue_page))
        .route("/cases/{id}", get(html::case_page))
        .route("/cases/{id}/source", get(html::source_page))
        .route("/cases/{id}/{action}", post(html::case_form))
        .route("/audit", get(html::audit_page))
        .route("/export", get(hotline::export_page))
        .route("/hotspots", get(hotline::hotspots_page))
        .route("/api/login", post(api::login))
        .route("/api/logout", post(api::logout))
        .route("/api/me", get(api::me))
        .route("/api/cases", get(api::queue))
        .route("/api/cases/{id}", get(api::case))
        .route("/api/cases/{id}/{action}", post(api::case_action))
        .route("/api/hosts/{host}/decision", post(api::host_decision))
        .route("/api/audit", get(api::audit))
        .route("/api/audit/export", get(api::audit_export))
        .route("/api/export/cases", get(hotline::export_cases))
        .route("/api/hotspots", get(hotline::hotspots_api))
        .fallback(api::fallback)
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app))
}

/// Headers on every response: nothing may be loaded from anywhere (an image
/// included), framed, sniffed, cached or sent a referrer.
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// Serves the review service on `listener` until `shutdown` completes, then
/// finishes the requests in flight. Refuses to start on a store without an
/// enabled user: a service nobody can log in to is a mistake.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<dyn Store>,
    config: ReviewConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ReviewError> {
    if !store.users().await?.iter().any(|u| !u.disabled) {
        return Err(ReviewError::NoUsers);
    }
    let app = router(store.clone(), config)?;
    let addr = listener.local_addr().map_err(ReviewError::Io)?;
    tracing::info!(%addr, "review service listening");
    // The hosts-and-domains table behind the host filters, kept current
    // from new sightings in the background rather than inside requests.
    let places = tokio::spawn(async move {
        loop {
            match store.sync_places(hashscan_frontier::registrable_domain, actions::SYNC_BATCH).await {
                Ok(0) => tokio::time::sleep(std::time::Duration::from_secs(5)).await,
                Ok(_) => tokio::task::yield_now().await,
                Err(e) => {
                    tracing::warn!(error = %e, "could not bring the host table up to date; trying again");
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                }
            }
        }
    });
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await;
    places.abort();
    served.map_err(ReviewError::Io)?;
    tracing::info!("review service stopped");
    Ok(())
}
