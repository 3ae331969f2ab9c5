//! End-to-end in a real browser: a scan of the loopback test web, the review
//! service over its results, and headless Chromium driven through
//! chromedriver (WebDriver) the way an analyst works — log in, filter the
//! queue, open a case, claim it, decide it with a note — and then a lead
//! reads the audit log. Every step leaves a screenshot in
//! `target/browser-screenshots/` (copied into `docs/img/` for
//! `docs/analyst-guide.md`).
//!
//! Needs `chromium` and `chromedriver` (Debian's `chromium` and
//! `chromium-driver`); `scripts/test` installs them when missing and passes
//! their paths in `HASHSCAN_CHROMIUM` and `HASHSCAN_CHROMEDRIVER`. Without
//! them the test fails, saying so; it never skips.
//!
//! Everything stays on 127.0.0.0/8: the test web, the review service,
//! chromedriver and the browser's only destinations.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use hashscan_review::{hash_password, ReviewConfig};
use hashscan_store::review::{Actor, QueueFilter};
use hashscan_store::{MatchKind, ReviewStore, SqliteStore};
use hashscan_tests::scan_test_web;
use hashscan_testweb::WebSpec;

/// Every wait of the test is bounded by this.
const WAIT: Duration = Duration::from_secs(30);
/// The whole test, scan included.
const WHOLE: Duration = Duration::from_secs(300);
const PASSWORD: &str = "correct horse battery staple";
const ANALYST: &str = "ann";
const LEAD: &str = "lea";
const NOTE: &str = "Confirmed against the reference listing; notice to the host follows.";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_analyst_works_a_case_in_chromium_and_a_lead_audits_it() {
    match tokio::time::timeout(WHOLE, run()).await {
        Ok(()) => {}
        Err(_) => panic!("the browser test did not finish within {WHOLE:?}"),
    }
}

async fn run() {
    let shots = Screenshots::new();
    // The results of a real embedded scan of the loopback test web.
    let scanned = scan_test_web(WebSpec::default(), |_| {}).await;
    let store = Arc::new(scanned.store.clone());
    let hash = hash_password(PASSWORD).expect("hash a password");
    for (name, role) in [(ANALYST, "analyst"), (LEAD, "lead")] {
        let added = store
            .add_user(name, role, &hash, Actor { name: "cli:test".into(), ip: None }, now_ms())
            .await
            .expect("add a user");
        assert!(added, "user {name} added");
    }
    let service = Service::start(store.clone()).await;
    let driver = ChromeDriver::start(&shots.dir);
    let browser = driver.browser().await;
    let result = AssertUnwindSafe(walk(&browser, &service, &store, &shots)).catch_unwind().await;
    // Close the session in every case (the guard kills chromedriver and the
    // browser anyway), then report the first failure.
    let _ = browser.c.clone().close().await;
    drop(driver);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// The analyst's and the lead's walk through the UI.
async fn walk(b: &Browser, service: &Service, store: &SqliteStore, shots: &Screenshots) {
    let base = &service.base;

    // Anything but /login sends an anonymous browser to the login form.
    b.goto(&format!("{base}/")).await;
    b.wait_path("/login").await;
    b.fill("input[name=name]", ANALYST).await;
    b.fill("input[name=password]", PASSWORD).await;
    shots.take(b, "01-login").await;
    b.click("form[action='/login'] button[type=submit]").await;

    // The queue: the scan's open cases, highest score first.
    b.wait_path("/").await;
    let header = b.text("header").await;
    assert!(header.contains("ann (analyst)"), "the header names the analyst: {header:?}");
    assert!(!header.contains("Audit log"), "no audit link for an analyst: {header:?}");
    let all = b.queue_rows().await;
    assert!(!all.is_empty(), "the queue shows the scan's cases");
    assert!(all.iter().any(|r| r.match_kind == "exact"), "exact matches in the queue: {all:?}");
    assert!(all.iter().all(|r| r.status == "open"), "only open cases by default: {all:?}");
    let scores: Vec<f64> = all.iter().map(|r| r.score.parse().expect("a score")).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "highest score first: {scores:?}");
    b.assert_no_image("the queue").await;
    shots.take(b, "02-queue").await;

    // Filter by host and match kind through the filter form.
    let target = all.iter().find(|r| r.match_kind == "exact").expect("an exact match");
    let host = target.host.clone();
    b.fill("form.filters input[name=host]", &host).await;
    b.select("form.filters select[name=match]", "exact").await;
    b.click("form.filters button[type=submit]").await;
    b.wait_until("the filtered queue", |url| url.query().is_some_and(|q| q.contains("host="))).await;
    let url = b.url().await;
    let query: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    assert!(query.contains(&("host".into(), host.clone())), "{url}");
    assert!(query.contains(&("match".into(), "exact".into())), "{url}");
    let filtered = b.queue_rows().await;
    assert!(!filtered.is_empty(), "the filter for {host} keeps a case");
    assert!(filtered.iter().all(|r| r.match_kind == "exact"), "{filtered:?}");
    let expected: BTreeSet<i64> = store
        .queue(QueueFilter {
            status: "open".into(),
            host: Some(host.clone()),
            match_kind: Some(MatchKind::Exact),
            limit: 50,
            now_ms: now_ms(),
            ..QueueFilter::default()
        })
        .await
        .expect("the queue from the store")
        .iter()
        .map(|r| r.id)
        .collect();
    let shown: BTreeSet<i64> = filtered.iter().map(|r| r.id).collect();
    assert_eq!(shown, expected, "the page shows exactly the store's answer for host={host}&match=exact");
    assert_eq!(b.value("form.filters input[name=host]").await, host, "the form keeps the filter");
    shots.take(b, "03-queue-filtered").await;

    // Open the first case of the filtered queue.
    let case = filtered[0].id;
    b.click(&format!("table a[href='/cases/{case}']")).await;
    b.wait_path(&format!("/cases/{case}")).await;
    let h1 = b.text("h1").await;
    assert_eq!(h1, format!("Case #{case} — open"));
    let page = b.c.source().await.expect("page source");
    for what in ["Score factors", "Reference set", "MD5", "SHA-256", "BLAKE3", "PDQ", "Image URLs", "Pages", "Hosts"] {
        assert!(page.contains(what), "the case page shows {what}");
    }
    b.assert_no_image("the case page").await;
    let external = b.c.find_all(Locator::Css("a[href^='http:'], a[href^='https:']")).await.expect("links");
    assert!(external.is_empty(), "the case page links no source URL; only the warning page does");
    let source_link = b.find(&format!("a[href='/cases/{case}/source']")).await;
    assert!(b.c.find_all(Locator::Css("textarea")).await.expect("find").is_empty(), "no decision form before a claim");
    shots.take(b, "04-case").await;

    // The source page warns first, and only there are the URLs links.
    source_link.click().await.expect("open the source page");
    b.wait_path(&format!("/cases/{case}/source")).await;
    let warning = b.text(".warn").await;
    assert!(warning.contains("Warning"), "{warning}");
    b.assert_no_image("the warning page").await;
    let links = b.c.find_all(Locator::Css("li.url a")).await.expect("links");
    assert!(!links.is_empty(), "the warning page links the image URLs");
    for a in &links {
        let href = a.attr("href").await.expect("href").unwrap_or_default();
        assert!(href.starts_with("http://") || href.starts_with("https://"), "{href}");
        assert_eq!(a.attr("rel").await.expect("rel").as_deref(), Some("noopener noreferrer"), "{href}");
        assert_eq!(a.attr("referrerpolicy").await.expect("attr").as_deref(), Some("no-referrer"), "{href}");
    }
    shots.take(b, "05-source-warning").await;
    b.click(&format!("a[href='/cases/{case}']")).await;
    b.wait_path(&format!("/cases/{case}")).await;

    // Claim it.
    b.click(&format!("form[action='/cases/{case}/claim'] button")).await;
    b.wait_path(&format!("/cases/{case}")).await;
    b.find("textarea[name=note]").await;
    let claim = b.row_value("claim").await;
    assert!(claim.starts_with("ann until "), "the claim is the analyst's: {claim:?}");
    shots.take(b, "06-claimed").await;

    // Decide: confirmed, with a note.
    b.click(&format!("form[action='/cases/{case}/decision'] input[name=status][value=confirmed]")).await;
    b.fill(&format!("form[action='/cases/{case}/decision'] textarea[name=note]"), NOTE).await;
    shots.take(b, "07-decision-form").await;
    b.click(&format!("form[action='/cases/{case}/decision'] button[type=submit]")).await;
    b.wait_until("the decided case", |_| true).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let h1 = b.text("h1").await;
        if h1 == format!("Case #{case} — confirmed") {
            break;
        }
        assert!(Instant::now() < deadline, "the case page did not show the decision within {WAIT:?}: {h1:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let decisions = b.table_after("Decisions").await;
    assert!(
        decisions.iter().any(|r| r.get(1..5) == Some(&["ann".into(), "open".into(), "confirmed".into(), NOTE.into()])),
        "the decision with its note: {decisions:?}"
    );
    b.assert_no_image("the decided case").await;
    shots.take(b, "08-decided").await;
    // The decisions table is at the foot of the page.
    bounded("scroll down", b.c.execute("window.scrollTo(0, document.body.scrollHeight)", vec![])).await;
    shots.take(b, "09-decisions").await;

    // Back in the queue the case has left the open cases.
    b.click("header a[href='/']").await;
    b.wait_path("/").await;
    assert!(b.queue_rows().await.iter().all(|r| r.id != case), "a decided case leaves the open queue");

    // Log out; the lead logs in and reads the audit log of the case.
    b.click("header form[action='/logout'] button").await;
    b.wait_path("/login").await;
    b.fill("input[name=name]", LEAD).await;
    b.fill("input[name=password]", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_path("/").await;
    b.click("header a[href='/audit']").await;
    b.wait_path("/audit").await;
    b.fill("form.filters input[name=case]", &case.to_string()).await;
    b.click("form.filters button[type=submit]").await;
    b.wait_until("the audit log of the case", |url| {
        url.path() == "/audit" && url.query().is_some_and(|q| q.contains("case="))
    })
    .await;
    let rows = b.table_rows("main table").await;
    // Columns: id, when, who, action, case, before, after, detail, address.
    let has = |actor: &str, action: &str| rows.iter().any(|r| r.get(2..4) == Some(&[actor.into(), action.into()]));
    assert!(has(ANALYST, "claim"), "the claim in the audit log: {rows:?}");
    assert!(has(ANALYST, "decision"), "the decision in the audit log: {rows:?}");
    assert!(has(ANALYST, "source_page"), "opening the warning page is audited: {rows:?}");
    let decision = rows.iter().find(|r| r.get(3).map(String::as_str) == Some("decision")).expect("decision row");
    assert!(decision.iter().any(|c| c.contains("confirmed")), "{decision:?}");
    assert!(rows.iter().all(|r| r.get(4) == Some(&format!("#{case}"))), "only this case: {rows:?}");
    b.assert_no_image("the audit log").await;
    shots.take(b, "10-audit").await;
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .expect("clock after 1970")
}

/// A row of the queue table.
#[derive(Debug)]
struct QueueRow {
    id: i64,
    score: String,
    match_kind: String,
    host: String,
    status: String,
}

/// The headless browser, with bounded helpers that fail with a message.
struct Browser {
    c: Client,
}

impl Browser {
    async fn goto(&self, url: &str) {
        bounded(&format!("open {url}"), self.c.goto(url)).await;
    }

    async fn url(&self) -> url::Url {
        bounded("read the URL", self.c.current_url()).await
    }

    async fn find(&self, css: &str) -> Element {
        match self.c.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!("no element {css:?} on {} within {WAIT:?}: {e}", self.url().await),
        }
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        bounded(&format!("click {css}"), e.click()).await;
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        bounded(&format!("clear {css}"), e.clear()).await;
        bounded(&format!("type into {css}"), e.send_keys(text)).await;
    }

    async fn select(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        bounded(&format!("select {value} in {css}"), e.select_by_value(value)).await;
    }

    async fn value(&self, css: &str) -> String {
        let e = self.find(css).await;
        bounded(&format!("read {css}"), e.prop("value")).await.unwrap_or_default()
    }

    /// The text of `css`. A page that is replaced between finding the
    /// element and reading it (a form's redirect landing) leaves a stale
    /// element: it is found again on the new page, within the test's bound.
    async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let e = self.find(css).await;
            match tokio::time::timeout(WAIT, e.text()).await {
                Ok(Ok(t)) => return t,
                Ok(Err(err)) if err.to_string().contains("stale element") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(Err(err)) => panic!("read {css}: {err}"),
                Err(_) => panic!("read {css}: no answer within {WAIT:?}"),
            }
        }
    }

    /// Waits until the browser is on a page whose URL satisfies `ok`, and
    /// that page has loaded (its `main` is there).
    async fn wait_until(&self, what: &str, ok: impl Fn(&url::Url) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.url().await;
            if ok(&url) && !self.c.find_all(Locator::Css("main")).await.map(|v| v.is_empty()).unwrap_or(true) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: still on {url} after {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_path(&self, path: &str) {
        self.wait_until(&format!("expected the page {path}"), |u| u.path() == path).await;
    }

    async fn assert_no_image(&self, what: &str) {
        let html = bounded("read the page source", self.c.source()).await.to_ascii_lowercase();
        assert!(!html.contains("<img"), "{what} contains an <img");
        let imgs =
            bounded("find images", self.c.find_all(Locator::Css("img, picture, svg image, object, embed, iframe")))
                .await;
        assert!(imgs.is_empty(), "{what} has an image element");
    }

    /// The text of every cell of every body row of the table at `css`.
    async fn table_rows(&self, css: &str) -> Vec<Vec<String>> {
        let table = self.find(css).await;
        let mut rows = Vec::new();
        for tr in bounded("rows", table.find_all(Locator::Css("tbody tr"))).await {
            let mut cells = Vec::new();
            for td in bounded("cells", tr.find_all(Locator::Css("td"))).await {
                cells.push(bounded("cell text", td.text()).await);
            }
            rows.push(cells);
        }
        rows
    }

    /// The rows of the table that follows the heading `h3` with `title`.
    async fn table_after(&self, title: &str) -> Vec<Vec<String>> {
        self.table_rows(&format!("h3:nth-of-type({}) + table", self.h3_index(title).await)).await
    }

    async fn h3_index(&self, title: &str) -> usize {
        let hs = bounded("headings", self.c.find_all(Locator::Css("main h3"))).await;
        for (i, h) in hs.iter().enumerate() {
            if bounded("heading", h.text()).await.starts_with(title) {
                return i + 1;
            }
        }
        panic!("no heading {title:?} on {}", self.url().await)
    }

    /// The value cell of the first table row headed `th`.
    async fn row_value(&self, th: &str) -> String {
        for tr in bounded("rows", self.c.find_all(Locator::Css("main table tr"))).await {
            let Ok(h) = tr.find(Locator::Css("th")).await else { continue };
            if bounded("th", h.text()).await == th {
                let td = bounded("td", tr.find(Locator::Css("td"))).await;
                return bounded("td text", td.text()).await;
            }
        }
        panic!("no row {th:?} on {}", self.url().await)
    }

    async fn queue_rows(&self) -> Vec<QueueRow> {
        self.find("main").await;
        if self.c.find_all(Locator::Css("main table")).await.expect("find").is_empty() {
            return Vec::new();
        }
        // Columns: case, score, now, match, image URL, host, first seen, scan, status, claim, online.
        self.table_rows("main table")
            .await
            .into_iter()
            .map(|c| QueueRow {
                id: c[0].trim_start_matches('#').parse().unwrap_or_else(|_| panic!("a case id: {c:?}")),
                score: c[1].clone(),
                match_kind: c[3].clone(),
                host: c[5].clone(),
                status: c[8].clone(),
            })
            .collect()
    }
}

/// Runs a WebDriver command with the test's bound.
async fn bounded<T, E: std::fmt::Display>(what: &str, f: impl Future<Output = Result<T, E>>) -> T {
    match tokio::time::timeout(WAIT, f).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("{what}: {e}"),
        Err(_) => panic!("{what}: no answer within {WAIT:?}"),
    }
}

/// Screenshots of every step, in `target/browser-screenshots/`.
struct Screenshots {
    dir: PathBuf,
}

impl Screenshots {
    fn new() -> Self {
        let dir = target_dir().join("browser-screenshots");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        Self { dir }
    }

    async fn take(&self, b: &Browser, name: &str) {
        let png = bounded(&format!("screenshot {name}"), b.c.screenshot()).await;
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot {name} is a PNG");
        let path = self.dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}

/// The workspace's target directory: `CARGO_TARGET_DIR`, or the one this
/// test binary was built into (`target/debug/deps/browser-…`).
fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().find(|a| a.file_name().is_some_and(|n| n == "deps")).map(Path::to_path_buf))
        .and_then(|deps| deps.parent().and_then(Path::parent).map(Path::to_path_buf))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The review service on 127.0.0.1:0, in this process.
struct Service {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Service {
    async fn start(store: Arc<SqliteStore>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("address");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            if let Err(e) = hashscan_review::serve(listener, store, ReviewConfig::default(), shutdown).await {
                panic!("the review service failed: {e}");
            }
        });
        Self { base: format!("http://{addr}"), stop: Some(tx) }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// chromedriver on a free loopback port, in its own process group, which
/// is killed (with the browsers it started) when the guard drops — also
/// when the test panics.
struct ChromeDriver {
    child: Child,
    port: u16,
    log: PathBuf,
}

/// A binary from the environment variable `var`, or `name` on the PATH.
fn tool(var: &str, name: &str, package: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{var}={} is not a file", p.display());
        return p;
    }
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!(
                "{name} not found (set {var} or put it on the PATH): install Debian's {package} \
                 (`apt-get install chromium chromium-driver`); scripts/test installs them when missing"
            )
        })
}

impl ChromeDriver {
    fn start(log_dir: &Path) -> Self {
        use std::os::unix::process::CommandExt;
        let bin = tool("HASHSCAN_CHROMEDRIVER", "chromedriver", "chromium-driver");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let log = log_dir.join("chromedriver.log");
        let child = Command::new(&bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut driver = Self { child, port, log: log.clone() };
        let deadline = Instant::now() + WAIT;
        loop {
            if TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(1)).is_ok() {
                return driver;
            }
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited ({status}) before answering on port {port}; see {}", log.display());
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on 127.0.0.1:{port} within {WAIT:?}; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A headless Chromium session, 1280×900.
    async fn browser(&self) -> Browser {
        let chromium = tool("HASHSCAN_CHROMIUM", "chromium", "chromium");
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "chrome".into());
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--no-proxy-server", "--no-first-run",
                    "--disable-extensions", "--disable-background-networking", "--disable-sync",
                    "--disable-component-update", "--disable-default-apps",
                ],
            }),
        );
        let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(caps);
        let c = match tokio::time::timeout(WAIT, builder.connect(&format!("http://127.0.0.1:{}", self.port))).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                panic!("cannot start a Chromium session through chromedriver: {e} (see {})", self.log.display())
            }
            Err(_) => panic!("no Chromium session within {WAIT:?} (see {})", self.log.display()),
        };
        bounded("set the window size", c.set_window_size(1280, 900)).await;
        Browser { c }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The group is chromedriver's own (process_group(0)): it and the
        // browser processes it started, nothing else.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) with a negative id signals our child's process group.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
