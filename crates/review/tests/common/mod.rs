//! A review service on loopback over a small store made the way a scan
//! makes it (through the matcher), with users of every role, a clock the
//! test moves, and a client that speaks cookie, CSRF and Bearer.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hashscan_bus::{MatchWork, PdqResult};
use hashscan_hash::{CryptoAlgo, Digests};
use hashscan_matcher::Matcher;
use hashscan_refset::ReferenceSet;
use hashscan_review::{hash_password, new_api_token, ReviewConfig};
use hashscan_store::review::{Actor, QueueFilter};
use hashscan_store::{CaseStore, ReviewStore};
use hashscan_store::{HitFilter, SqliteStore};

/// The image URL of L2: hostile markup in a URL, as a crawler may meet it.
pub const HOSTILE: &str = "http://img.test/<script>alert(1)</script>.png";
/// Every user's password.
pub const PASSWORD: &str = "correct horse battery staple";
/// Start of the test clock (2026-01-01T00:00:00Z).
pub const T0: i64 = 1_767_225_600_000;

/// Pages and the images they show: listed L*, an unknown U on two bad
/// pages with listed material (a case by its circumstances), neighbours N*,
/// benign B* and a logo everywhere.
const WEB: &[(&str, &[&str])] = &[
    ("http://www.bad.test/1", &["L1", "L2", "U", "N1", "logo"]),
    ("http://www.bad.test/2", &["L3", "U", "N2", "logo"]),
    ("http://www.bad.test/about", &["N3", "logo"]),
    ("http://www.good.test/1", &["B", "logo"]),
    ("http://www.good.test/2", &["B2", "logo"]),
    ("http://www.good.test/3", &["B3", "logo"]),
    ("http://www.good.test/4", &["B4", "logo"]),
    ("http://www.good.test/5", &["N1", "logo"]),
    ("http://www.good.test/6", &["N1", "logo"]),
];

pub fn image_url(name: &str) -> String {
    if name == "L2" {
        HOSTILE.to_string()
    } else {
        format!("http://img.test/{name}.png")
    }
}

pub fn blake3_hex(name: &str) -> String {
    Digests::of(name.as_bytes()).hex(CryptoAlgo::Blake3)
}

fn reference() -> Arc<ReferenceSet> {
    let mut csv = String::from("id,md5\n");
    for l in ["L1", "L2", "L3"] {
        csv.push_str(&format!("{l},{}\n", Digests::of(l.as_bytes()).hex(CryptoAlgo::Md5)));
    }
    Arc::new(ReferenceSet::parse("refs.csv", csv.as_bytes()).expect("reference").0)
}

/// Fills `store` through the matcher, as a scan would, and sweeps.
pub async fn scan_web(store: &Arc<SqliteStore>) {
    let m = Matcher::new(reference(), store.clone(), 0.5);
    let mut first_page: BTreeMap<&str, &str> = BTreeMap::new();
    for (page, images) in WEB {
        m.handle(MatchWork::PageImages {
            scan: "s1".into(),
            page_url: url::Url::parse(page).expect("page"),
            images: images.iter().map(|i| image_url(i)).collect(),
            seen_at_ms: T0 - 10_000,
        })
        .await
        .expect("edges");
        for i in *images {
            first_page.entry(i).or_insert(page);
        }
    }
    for (image, page) in first_page {
        m.handle(MatchWork::ImageHashed {
            scan: "s1".into(),
            image_id: image_url(image),
            page_url: Some(url::Url::parse(page).expect("page")),
            host: "img.test".into(),
            ip: Some("127.77.0.9".parse().expect("ip")),
            digests: Digests::of(image.as_bytes()),
            pdq: PdqResult::Failed { reason: "unknown_format".into(), detail: "test".into() },
            fetched_at_ms: T0 - 10_000,
        })
        .await
        .expect("image");
    }
    m.rescorer().sweep("s1", T0 - 5_000).await.expect("sweep");
}

/// How a request authenticates.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Token(String),
    Session { cookie: String, csrf: String },
}

pub struct Server {
    pub base: String,
    pub store: Arc<SqliteStore>,
    pub clock: Arc<AtomicI64>,
    pub http: reqwest::Client,
    /// Case id by image name.
    pub cases: BTreeMap<String, i64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }

    /// The `field` of a JSON error.
    pub fn field(&self) -> String {
        self.json()["field"].as_str().unwrap_or_default().to_string()
    }
}

/// Users made for every test: name → role.
pub const USERS: [(&str, &str); 4] = [("ann", "analyst"), ("bob", "analyst"), ("lea", "lead"), ("adm", "admin")];

impl Server {
    /// A server over `store` (filled with the test web when `scan` is set).
    pub async fn start_on(store: Arc<SqliteStore>, scan: bool, configure: impl FnOnce(&mut ReviewConfig)) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        if scan {
            scan_web(&store).await;
        }
        let hash = hash_password(PASSWORD).expect("hash");
        for (name, role) in USERS {
            store.add_user(name, role, &hash, Actor { name: "test".into(), ip: None }, T0).await.expect("user");
        }
        let clock = Arc::new(AtomicI64::new(T0));
        let mut config = ReviewConfig::default();
        let c = clock.clone();
        config.clock = Arc::new(move || c.load(Ordering::SeqCst));
        configure(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let s = store.clone();
        let task = tokio::spawn(async move {
            hashscan_review::serve(listener, s, config, async move {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let rows = store.queue(QueueFilter { limit: 500, now_ms: T0, ..QueueFilter::default() }).await.expect("queue");
        let names = ["L1", "L2", "L3", "U", "N1", "N2", "N3", "B", "B2", "B3", "B4", "logo"];
        let cases = rows
            .iter()
            .filter_map(|r| names.iter().find(|n| blake3_hex(n) == r.blake3).map(|n| (n.to_string(), r.id)))
            .collect();
        Self { base: format!("http://{addr}"), store, clock, http, cases, stop: Some(tx), task: Some(task) }
    }

    /// A server over the test web in memory.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut ReviewConfig)) -> Self {
        Self::start_on(Arc::new(SqliteStore::in_memory().expect("store")), true, configure).await
    }

    pub fn case(&self, name: &str) -> i64 {
        *self.cases.get(name).unwrap_or_else(|| panic!("{name} is not a case: {:?}", self.cases))
    }

    pub fn advance(&self, d: Duration) {
        self.clock.fetch_add(d.as_millis() as i64, Ordering::SeqCst);
    }

    /// The current score of an image (by name).
    pub async fn score(&self, name: &str) -> f64 {
        let hex = blake3_hex(name);
        self.store
            .hits(HitFilter { all: true, ..HitFilter::default() })
            .await
            .expect("hits")
            .into_iter()
            .find(|h| h.blake3 == hex)
            .map(|h| h.score)
            .unwrap_or_else(|| panic!("{name} not seen"))
    }

    /// An API token for a user.
    pub async fn token(&self, user: &str) -> Auth {
        let (token, hash) = new_api_token();
        self.store.add_token(user, "test", hash, Actor::default(), T0).await.expect("token").expect("user");
        Auth::Token(token)
    }

    /// A session by `POST /api/login`.
    pub async fn login(&self, user: &str) -> Auth {
        let r =
            self.post_json("/api/login", &Auth::None, serde_json::json!({ "name": user, "password": PASSWORD })).await;
        assert_eq!(r.status, 200, "{}", r.text);
        Auth::Session { cookie: cookie_of(&r), csrf: r.json()["csrf"].as_str().expect("csrf").to_string() }
    }

    fn request(&self, method: reqwest::Method, path: &str, auth: &Auth, csrf: bool) -> reqwest::RequestBuilder {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        match auth {
            Auth::None => {}
            Auth::Token(t) => rb = rb.header("Authorization", format!("Bearer {t}")),
            Auth::Session { cookie, csrf: token } => {
                rb = rb.header("Cookie", format!("hashscan_session={cookie}"));
                if csrf {
                    rb = rb.header("X-CSRF-Token", token);
                }
            }
        }
        rb
    }

    async fn send(rb: reqwest::RequestBuilder) -> Reply {
        let r = rb.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        Reply { status, headers, text }
    }

    pub async fn get(&self, path: &str, auth: &Auth) -> Reply {
        Self::send(self.request(reqwest::Method::GET, path, auth, false)).await
    }

    /// A JSON POST, with the session's CSRF header when by cookie.
    pub async fn post_json(&self, path: &str, auth: &Auth, body: serde_json::Value) -> Reply {
        Self::send(
            self.request(reqwest::Method::POST, path, auth, true)
                .header("Content-Type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    /// A JSON POST without the CSRF header.
    pub async fn post_json_no_csrf(&self, path: &str, auth: &Auth, body: serde_json::Value) -> Reply {
        Self::send(
            self.request(reqwest::Method::POST, path, auth, false)
                .header("Content-Type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    /// The login form as a browser uses it: `GET /login` (its cookie and
    /// hidden token), then the form posted with both and `fields`.
    pub async fn post_login_form(&self, fields: &[(&str, &str)]) -> Reply {
        let page = self.get("/login", &Auth::None).await;
        let set = page.header("set-cookie");
        let cookie = set.split(';').next().unwrap_or_default().to_string();
        assert!(cookie.starts_with("hashscan_login="), "the login page sets its cookie: {set:?}");
        let at = page.text.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
        let token = page.text[at..].split('"').next().unwrap_or_default().to_string();
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_form_with_cookie("/login", &cookie, &all).await
    }

    /// A form POST with a raw `Cookie` header.
    pub async fn post_form_with_cookie(&self, path: &str, cookie: &str, fields: &[(&str, &str)]) -> Reply {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            s.append_pair(k, v);
        }
        Self::send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("Cookie", cookie)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(s.finish()),
        )
        .await
    }

    /// A form POST (as a browser sends it), without a CSRF header.
    pub async fn post_form(&self, path: &str, auth: &Auth, fields: &[(&str, &str)]) -> Reply {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            s.append_pair(k, v);
        }
        Self::send(
            self.request(reqwest::Method::POST, path, auth, false)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(s.finish()),
        )
        .await
    }
}

/// The session token from a `Set-Cookie`.
pub fn cookie_of(r: &Reply) -> String {
    let c = r.header("set-cookie");
    let v = c.strip_prefix("hashscan_session=").unwrap_or_else(|| panic!("no session cookie: {c:?}"));
    v.split(';').next().unwrap_or_default().to_string()
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}
