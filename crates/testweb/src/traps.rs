//! The trap web: hostile and broken hosts a polite, robust crawler must
//! survive, served on loopback next to (not inside) the main test web.
//!
//! Each trap is one host under `.trap.test` on its own address after
//! [`TrapSpec::ip_base`] (two alias names share one address). Everything is
//! generated from the seed: pictures are benign generated images, infinite
//! URL spaces are computed on request, and every delay is bounded by
//! [`TrapSpec::slow_delay`]. The [`TrapManifest`] says what a correct scan
//! must and must not do; the shared [`AccessEntry`] log is the evidence.
//!
//! | host | trap |
//! |---|---|
//! | `robots.trap.test` | `Disallow: /private/` with listed images behind it |
//! | `slowpoke.trap.test` | `Crawl-delay` |
//! | `calendar.trap.test` | infinite calendar, growing paths, query explosion |
//! | `loop.trap.test` | redirect loop and endless redirect chain |
//! | `broken.trap.test` | 404 image, truncated and oversized images, lying Content-Types, gzip page, gzip bomb |
//! | `slow.trap.test` | slow headers, slow body |
//! | `busy.trap.test` | 429 then 200; 503 forever, both with Retry-After |
//! | `down.trap.test` | robots.txt answers 500 |
//! | `etag.trap.test` | ETag / If-None-Match revalidation, changeable generation |
//! | `alias-a.trap.test`, `alias-b.trap.test` | two names (and the bare address) on one address |

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;
use hashscan_decode::{DecodeLimits, ImageHasher, Mode};
use hashscan_hash::{CryptoAlgo, Digests};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::images::{self, Format};
use crate::server::{bind_all, spawn_servers, AccessEntry, AccessLog, ServeError};
use crate::web::HostInfo;

/// What to generate and how hostile to be. The same spec and port always
/// give the same trap web, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrapSpec {
    /// Seed of every generated picture.
    pub seed: u64,
    /// Trap hosts get addresses `ip_base + 1`, `+ 2`, … (default
    /// 127.77.1.0, beside the main web's 127.77.0.x).
    pub ip_base: Ipv4Addr,
    /// How long `slow.trap.test` stalls: headers come after this, the
    /// slow body takes twice this. Tests use a scan timeout below it.
    /// (Serialized as `slow_delay_ms`.)
    #[serde(rename = "slow_delay_ms", with = "millis")]
    pub slow_delay: Duration,
    /// `Crawl-delay` of `slowpoke.trap.test`, in seconds.
    pub crawl_delay_secs: u32,
    /// `Retry-After` of the 429 and 503 answers, in seconds.
    pub retry_after_secs: u32,
    /// How many requests of `busy.trap.test/busy.html` get 429 before it answers 200.
    pub throttle_first: u32,
}

impl Default for TrapSpec {
    fn default() -> Self {
        Self {
            seed: 1,
            ip_base: Ipv4Addr::new(127, 77, 1, 0),
            slow_delay: Duration::from_secs(5),
            crawl_delay_secs: 2,
            retry_after_secs: 1,
            throttle_first: 2,
        }
    }
}

/// A [`Duration`] as whole milliseconds, for a readable manifest.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// One image URL of the trap web and what a correct scan does with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrapImage {
    /// Its URL.
    pub url: String,
    /// BLAKE3 (hex) of the bytes served.
    pub blake3: String,
    /// Listed in [`TrapWeb::reference_csv`].
    pub listed: bool,
    /// A correct scan fetches and hashes it (reachable, allowed, not
    /// timing out); false for images behind robots rules.
    pub must_hash: bool,
}

/// The ground truth of the trap web: what a correct, polite scan of
/// [`TrapManifest::seeds`] must do, must not do, and must report as failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrapManifest {
    /// The spec it was generated from.
    pub spec: TrapSpec,
    /// The port every trap host listens on.
    pub port: u16,
    /// Start URLs: every trap host's `/` page.
    pub seeds: Vec<String>,
    /// Every host name and its address (the alias names share one).
    pub hosts: Vec<HostInfo>,
    /// (host, path prefix) that robots.txt forbids for every agent: never requested.
    pub disallowed: Vec<(String, String)>,
    /// Hosts whose robots.txt answers 5xx: nothing but `/robots.txt` may be requested there.
    pub robots_unavailable: Vec<String>,
    /// (host, seconds) of `Crawl-delay` rules: the least gap between two requests.
    pub crawl_delay: Vec<(String, u32)>,
    /// Host names served from one address: politeness must hold per address.
    pub aliases: Vec<(Vec<String>, IpAddr)>,
    /// (url, reason code) of every URL a correct crawler records as failed.
    pub expected_failures: Vec<(String, String)>,
    /// Image URLs fetched and hashed all the same but without a PDQ hash
    /// (the decoder refuses them): not fetch failures.
    pub pdq_failures: Vec<String>,
    /// Start URLs of redirect loops and endless chains a crawler must bound.
    pub redirect_traps: Vec<String>,
    /// Start URLs of infinite URL spaces a crawler must bound by depth or budget.
    pub infinite_spaces: Vec<String>,
    /// BLAKE3 (hex) of listed images a correct scan must report.
    pub listed_allowed: Vec<String>,
    /// BLAKE3 (hex) of listed images only behind robots rules: a correct scan never reports them.
    pub listed_disallowed: Vec<String>,
    /// Every image URL served, with what a correct scan does with it.
    pub images: Vec<TrapImage>,
}

impl TrapManifest {
    /// `--resolve` values pinning every host name to its address.
    pub fn resolve_flags(&self) -> Vec<String> {
        self.hosts.iter().map(|h| format!("{}={}", h.name, h.ip)).collect()
    }
}

/// The trap hosts; the two aliases share one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Trap {
    Robots,
    Slowpoke,
    Calendar,
    Loop,
    Broken,
    Slow,
    Busy,
    Down,
    Etag,
    AliasA,
    AliasB,
}

impl Trap {
    const ALL: [Trap; 11] = [
        Trap::Robots,
        Trap::Slowpoke,
        Trap::Calendar,
        Trap::Loop,
        Trap::Broken,
        Trap::Slow,
        Trap::Busy,
        Trap::Down,
        Trap::Etag,
        Trap::AliasA,
        Trap::AliasB,
    ];

    fn name(self) -> &'static str {
        match self {
            Trap::Robots => "robots.trap.test",
            Trap::Slowpoke => "slowpoke.trap.test",
            Trap::Calendar => "calendar.trap.test",
            Trap::Loop => "loop.trap.test",
            Trap::Broken => "broken.trap.test",
            Trap::Slow => "slow.trap.test",
            Trap::Busy => "busy.trap.test",
            Trap::Down => "down.trap.test",
            Trap::Etag => "etag.trap.test",
            Trap::AliasA => "alias-a.trap.test",
            Trap::AliasB => "alias-b.trap.test",
        }
    }

    /// Offset of its address from the base.
    fn slot(self) -> u32 {
        match self {
            Trap::Robots => 1,
            Trap::Slowpoke => 2,
            Trap::Calendar => 3,
            Trap::Loop => 4,
            Trap::Broken => 5,
            Trap::Slow => 6,
            Trap::Busy => 7,
            Trap::Down => 8,
            Trap::Etag => 9,
            Trap::AliasA | Trap::AliasB => 10,
        }
    }

    fn ip(self, base: Ipv4Addr) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(u32::from(base).wrapping_add(self.slot())))
    }
}

/// Distinct addresses, in slot order.
fn addresses(spec: &TrapSpec) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = Vec::new();
    for t in Trap::ALL {
        let ip = t.ip(spec.ip_base);
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips
}

const HTML: &str = "text/html; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
/// The fixed `Last-Modified` of every `etag.trap.test` response.
const LAST_MODIFIED: &str = "Wed, 01 Jan 2025 00:00:00 GMT";
/// Decompressed size of the gzip bomb.
const BOMB_BYTES: usize = 64 << 20;
/// Chunks of the slow body (the pauses between them are bounded by their number).
const SLOW_CHUNKS: u32 = 20;

/// A fixed response.
#[derive(Clone)]
struct Asset {
    status: StatusCode,
    content_type: &'static str,
    gzip: bool,
    body: Bytes,
}

impl Asset {
    fn html(text: String) -> Self {
        Self { status: StatusCode::OK, content_type: HTML, gzip: false, body: Bytes::from(text) }
    }
}

/// What the handler will answer: decided (and logged) on arrival, then
/// possibly delayed or trickled.
struct Planned {
    status: StatusCode,
    headers: Vec<(HeaderName, String)>,
    body: PlannedBody,
    /// Stall before the headers.
    delay: Duration,
}

enum PlannedBody {
    Full(Bytes),
    /// Chunks with a pause before each one but the first.
    Trickle {
        chunks: Vec<Bytes>,
        pause: Duration,
    },
}

impl PlannedBody {
    fn len(&self) -> u64 {
        match self {
            PlannedBody::Full(b) => b.len() as u64,
            PlannedBody::Trickle { chunks, .. } => chunks.iter().map(|c| c.len() as u64).sum(),
        }
    }
}

impl Planned {
    fn new(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers: vec![(header::CONTENT_TYPE, content_type.to_string())],
            body: PlannedBody::Full(body.into()),
            delay: Duration::ZERO,
        }
    }

    fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, TEXT, "not found")
    }

    fn redirect(location: String) -> Self {
        let mut p = Self::new(StatusCode::FOUND, TEXT, Bytes::new());
        p.headers = vec![(header::LOCATION, location)];
        p
    }

    fn asset(a: &Asset) -> Self {
        let mut p = Self::new(a.status, a.content_type, a.body.clone());
        if a.gzip {
            p.headers.push((header::CONTENT_ENCODING, "gzip".to_string()));
        }
        p
    }

    fn header(mut self, name: HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// Everything generated at start-up, and the little mutable state the traps keep.
struct TrapShared {
    spec: TrapSpec,
    assets: HashMap<(Trap, String), Asset>,
    manifest: TrapManifest,
    reference_csv: String,
    log: AccessLog,
    /// Requests of `/busy.html` so far.
    busy_requests: AtomicU32,
    /// The ETag generation of `etag.trap.test`.
    etag_generation: AtomicU32,
    stopped: watch::Receiver<bool>,
}

#[derive(Clone)]
struct TrapHostState {
    shared: Arc<TrapShared>,
    local_ip: IpAddr,
}

/// The trap web being served. Dropping it stops the servers.
pub struct TrapWeb {
    shared: Arc<TrapShared>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl TrapWeb {
    /// Generates the trap web for `spec` and serves it on loopback: every
    /// trap host on its own address (the aliases on one), all on one port.
    /// `port` 0 picks a free one.
    pub async fn start(spec: TrapSpec, port: u16) -> Result<Self, ServeError> {
        let addrs = addresses(&spec);
        let (listeners, port) = bind_all(&addrs, port).await?;
        let built = {
            let spec = spec.clone();
            // Drawing pictures and compressing the bomb is CPU work: keep it off the async threads.
            match tokio::task::spawn_blocking(move || build(&spec, port)).await {
                Ok(b) => b,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        };
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(TrapShared {
            spec,
            assets: built.assets,
            manifest: built.manifest,
            reference_csv: built.reference_csv,
            log: AccessLog::new(),
            busy_requests: AtomicU32::new(0),
            etag_generation: AtomicU32::new(0),
            stopped: stopped.clone(),
        });
        let state_of = |ip| TrapHostState { shared: shared.clone(), local_ip: ip };
        let tasks = spawn_servers(
            listeners.into_iter().zip(addrs).collect(),
            |ip| Router::new().fallback(handle).with_state(state_of(ip)),
            &stopped,
        );
        Ok(Self { shared, stop, tasks })
    }

    /// The ground truth, with this server's port in every URL.
    pub fn manifest(&self) -> &TrapManifest {
        &self.shared.manifest
    }

    /// Every request so far, in arrival order, stamped on arrival.
    pub fn access_log(&self) -> Vec<AccessEntry> {
        self.shared.log.entries()
    }

    /// The generated reference file (CSV, the main web's format): the
    /// images behind robots rules plus one allowed listed image, and decoys.
    pub fn reference_csv(&self) -> &str {
        &self.shared.reference_csv
    }

    /// The CIDR a scan must allow to reach the trap web.
    pub fn allow_net(&self) -> String {
        allow_net(&addresses(&self.shared.spec))
    }

    /// The port every trap host listens on.
    pub fn port(&self) -> u16 {
        self.shared.manifest.port
    }

    /// Changes the ETag generation of `etag.trap.test`, so a later scan
    /// sees "changed" content (the bodies stay the same; the ETags do not).
    pub fn set_etag_generation(&self, n: u32) {
        self.shared.etag_generation.store(n, Ordering::SeqCst);
    }

    /// Stops serving (cutting slow responses short) and waits for the servers to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The smallest CIDR (at most a /24) holding every address.
fn allow_net(addrs: &[IpAddr]) -> String {
    let v4: Vec<u32> = addrs
        .iter()
        .filter_map(|a| match a {
            IpAddr::V4(v) => Some(u32::from(*v)),
            IpAddr::V6(_) => None,
        })
        .collect();
    let (Some(lo), Some(hi)) = (v4.iter().min(), v4.iter().max()) else {
        return "127.0.0.0/8".to_string();
    };
    let prefix = (lo ^ hi).leading_zeros().min(24);
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    format!("{}/{prefix}", Ipv4Addr::from(lo & mask))
}

struct Built {
    assets: HashMap<(Trap, String), Asset>,
    manifest: TrapManifest,
    reference_csv: String,
}

/// A seed per picture, from the spec's seed and the picture's label.
fn seed_for(seed: u64, label: &str) -> u64 {
    fnv1a(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15), label.as_bytes())
}

fn fnv1a(start: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325 ^ start;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n{body}</body></html>\n"
    )
}

fn links(hrefs: &[&str]) -> String {
    let mut s = String::from("<ul>\n");
    for h in hrefs {
        let h = h.replace('&', "&amp;");
        let _ = writeln!(s, "<li><a href=\"{h}\">{h}</a></li>");
    }
    s.push_str("</ul>\n");
    s
}

fn img(src: &str) -> String {
    format!("<img src=\"{src}\" alt=\"picture\">\n")
}

struct Builder {
    seed: u64,
    port: u16,
    assets: HashMap<(Trap, String), Asset>,
    images: Vec<TrapImage>,
    /// Listed images in reference order, with the image's bytes digests.
    listed: Vec<Digests>,
    /// Decodes every picture a scan must hash, to learn which have no PDQ.
    decoder: ImageHasher,
    pdq_failures: Vec<String>,
}

impl Builder {
    fn url(&self, trap: Trap, path: &str) -> String {
        format!("http://{}:{}{path}", trap.name(), self.port)
    }

    fn html(&mut self, trap: Trap, path: &str, text: String) {
        self.assets.insert((trap, path.to_string()), Asset::html(text));
    }

    fn text(&mut self, trap: Trap, path: &str, text: &str) {
        self.assets.insert(
            (trap, path.to_string()),
            Asset { status: StatusCode::OK, content_type: TEXT, gzip: false, body: Bytes::from(text.to_string()) },
        );
    }

    /// Serves a generated picture at `path` (format from the extension);
    /// `content_type` overrides its media type.
    fn image(&mut self, trap: Trap, path: &str, listed: bool, must_hash: bool, content_type: Option<&'static str>) {
        let format = if path.ends_with(".jpg") { Format::Jpeg } else { Format::Png };
        let sizes = [(96, 64), (64, 96), (120, 90), (80, 80)];
        let label = format!("{}{path}", trap.name());
        let (w, h) = sizes[(fnv1a(0, label.as_bytes()) % sizes.len() as u64) as usize];
        let bytes = images::generate(seed_for(self.seed, &label), w, h, format);
        self.serve_bytes(trap, path, bytes, content_type.unwrap_or(format.media_type()), listed, must_hash);
    }

    fn serve_bytes(
        &mut self,
        trap: Trap,
        path: &str,
        bytes: Vec<u8>,
        content_type: &'static str,
        listed: bool,
        must_hash: bool,
    ) {
        let digests = Digests::of(&bytes);
        if listed {
            self.listed.push(digests);
        }
        let url = self.url(trap, path);
        // Which hashed pictures the decoder refuses: measured, not assumed.
        if must_hash && self.decoder.pdq(&bytes).is_err() {
            self.pdq_failures.push(url.clone());
        }
        self.images.push(TrapImage { url, blake3: digests.hex(CryptoAlgo::Blake3), listed, must_hash });
        self.assets.insert(
            (trap, path.to_string()),
            Asset { status: StatusCode::OK, content_type, gzip: false, body: Bytes::from(bytes) },
        );
    }
}

/// Generates every fixed response and the ground truth for `port`.
fn build(spec: &TrapSpec, port: u16) -> Built {
    let mut b = Builder {
        seed: spec.seed,
        port,
        assets: HashMap::new(),
        images: Vec::new(),
        listed: Vec::new(),
        decoder: ImageHasher::new(DecodeLimits::default(), Mode::Exact),
        pdq_failures: Vec::new(),
    };
    let mut failures: Vec<(String, &str)> = Vec::new();

    // 1. robots: a private directory full of listed pictures.
    let t = Trap::Robots;
    b.text(t, "/robots.txt", "User-agent: otherbot\nDisallow: /\n\nUser-agent: *\nDisallow: /private/\n");
    b.html(
        t,
        "/",
        page(
            "Robots trap",
            &format!(
                "{}{}{}{}{}",
                links(&["/public.html", "/private/secret.html"]),
                img("/private/listed-1.png"),
                img("/private/listed-2.jpg"),
                img("/public-listed.png"),
                img("/public.jpg"),
            ),
        ),
    );
    b.html(t, "/public.html", page("Public page", &links(&["/"])));
    b.html(t, "/private/secret.html", page("Secret page", &img("/private/listed-3.png")));
    b.image(t, "/private/listed-1.png", true, false, None);
    b.image(t, "/private/listed-2.jpg", true, false, None);
    b.image(t, "/private/listed-3.png", true, false, None);
    b.image(t, "/public-listed.png", true, true, None);
    b.image(t, "/public.jpg", false, true, None);
    for p in ["/private/secret.html", "/private/listed-1.png", "/private/listed-2.jpg"] {
        failures.push((b.url(t, p), "robots"));
    }

    // 2. slowpoke: a Crawl-delay.
    let t = Trap::Slowpoke;
    b.text(t, "/robots.txt", &format!("User-agent: *\nCrawl-delay: {}\n", spec.crawl_delay_secs));
    b.html(t, "/", page("Slowpoke", &links(&["/p1.html", "/p2.html", "/p3.html", "/p4.html"])));
    for k in 1..=4 {
        let src = format!("/img/p{k}.{}", if k % 2 == 0 { "png" } else { "jpg" });
        b.html(t, &format!("/p{k}.html"), page(&format!("Slowpoke page {k}"), &img(&src)));
        b.image(t, &src, false, true, None);
    }

    // 3. calendar: infinite spaces, computed on request; one shared picture.
    let t = Trap::Calendar;
    let starts = ["/calendar?month=2026-11", "/loop/x/", "/long/a", "/search?q=1"];
    b.html(t, "/", page("Calendar", &format!("{}{}", links(&starts), img("/cal.png"))));
    b.image(t, "/cal.png", false, true, None);
    let infinite_spaces: Vec<String> = starts.iter().map(|p| b.url(t, p)).collect();

    // 4. loop: redirects that never end (computed on request).
    let t = Trap::Loop;
    b.html(t, "/", page("Redirect loops", &links(&["/redirect/a", "/chain/0"])));
    let redirect_traps = vec![b.url(t, "/redirect/a"), b.url(t, "/chain/0")];

    // 5. broken: every way an image or a page can be wrong.
    let t = Trap::Broken;
    b.html(
        t,
        "/",
        page(
            "Broken things",
            &format!(
                "{}{}{}{}{}{}{}",
                img("/missing.png"),
                img("/truncated.jpg"),
                img("/truncated-header.jpg"),
                img("/huge.png"),
                img("/mislabelled.png"),
                img("/fake.jpg"),
                links(&["/fake.jpg", "/gzipped.html", "/bomb.html"]),
            ),
        ),
    );
    failures.push((b.url(t, "/missing.png"), "http_status"));
    {
        let full = images::generate(seed_for(spec.seed, "broken/truncated"), 160, 120, Format::Jpeg);
        // Cut in the scan data: decoders that pad a short scan (ours does) still give a PDQ.
        let half = full[..full.len() / 2].to_vec();
        b.serve_bytes(t, "/truncated.jpg", half, "image/jpeg", false, true);
        // Cut inside the headers: no decoder gets pixels out of it.
        let full = images::generate(seed_for(spec.seed, "broken/truncated-header"), 160, 120, Format::Jpeg);
        let head = full[..64.min(full.len())].to_vec();
        b.serve_bytes(t, "/truncated-header.jpg", head, "image/jpeg", false, true);
        b.serve_bytes(t, "/huge.png", huge_png(100_000, 100_000), "image/png", false, true);
    }
    b.image(t, "/mislabelled.png", false, true, Some(HTML));
    b.assets.insert(
        (t, "/fake.jpg".to_string()),
        Asset {
            status: StatusCode::OK,
            content_type: "image/jpeg",
            gzip: false,
            body: Bytes::from(page("Not a picture", "<p>An HTML page served as image/jpeg.</p>\n")),
        },
    );
    failures.push((b.url(t, "/fake.jpg"), "not_an_image"));
    b.assets.insert(
        (t, "/gzipped.html".to_string()),
        Asset {
            status: StatusCode::OK,
            content_type: HTML,
            gzip: true,
            body: Bytes::from(gzip(page("Compressed page", &img("/in-gzip.png")).as_bytes())),
        },
    );
    b.image(t, "/in-gzip.png", false, true, None);
    b.assets.insert(
        (t, "/bomb.html".to_string()),
        Asset { status: StatusCode::OK, content_type: HTML, gzip: true, body: bomb() },
    );
    failures.push((b.url(t, "/bomb.html"), "too_large"));

    // 6. slow: stalls (dynamic).
    let t = Trap::Slow;
    b.html(t, "/", page("Slow server", &links(&["/slow-headers.html", "/slow-body.html"])));
    failures.push((b.url(t, "/slow-headers.html"), "timeout"));
    failures.push((b.url(t, "/slow-body.html"), "timeout"));

    // 7. busy: throttling (dynamic).
    let t = Trap::Busy;
    b.html(t, "/", page("Busy server", &links(&["/busy.html", "/always-busy.html"])));
    b.image(t, "/busy.png", false, true, None);
    failures.push((b.url(t, "/always-busy.html"), "throttled"));

    // 8. down: robots.txt answers 500 (dynamic), so nothing else may be fetched.
    let t = Trap::Down;
    b.html(t, "/", page("Down", &format!("{}{}", links(&["/more.html"]), img("/listed.png"))));
    b.html(t, "/more.html", page("More", &img("/more.jpg")));
    b.image(t, "/listed.png", true, false, None);
    b.image(t, "/more.jpg", false, false, None);
    failures.push((b.url(t, "/"), "robots_unavailable"));

    // 9. etag: revalidation (headers added on request).
    let t = Trap::Etag;
    b.html(t, "/", page("Conditional requests", &links(&["/page.html"])));
    b.html(t, "/page.html", page("Photo page", &img("/photo.png")));
    b.image(t, "/photo.png", false, true, None);

    // 10. aliases: two names, one address, pictures of their own.
    for (t, title) in [(Trap::AliasA, "Alias A"), (Trap::AliasB, "Alias B")] {
        b.html(t, "/", page(title, &links(&["/page1.html", "/page2.html", "/page3.html", "/page4.html"])));
        for k in 1..=4 {
            let src = format!("/img/{k}.png");
            b.html(t, &format!("/page{k}.html"), page(&format!("{title} page {k}"), &img(&src)));
            b.image(t, &src, false, true, None);
        }
    }

    let mut csv = String::from("id,label,md5,sha1,sha256,blake3\n");
    for (n, d) in b.listed.iter().enumerate() {
        let algo = CryptoAlgo::ALL[n % CryptoAlgo::ALL.len()];
        let mut cells = [""; 4].map(String::from);
        cells[n % 4] = d.hex(algo);
        let _ = writeln!(csv, "TRAP-{n:04},generated benign trap image,{}", cells.join(","));
    }
    for d in 0..3u32 {
        let digests = Digests::of(format!("trap decoy {} {d}", spec.seed).as_bytes());
        let mut cells = [""; 4].map(String::from);
        cells[d as usize % 4] = digests.hex(CryptoAlgo::ALL[d as usize % 4]);
        let _ = writeln!(csv, "TRAP-DECOY-{d},listed hash found nowhere,{}", cells.join(","));
    }

    let alias_ip = Trap::AliasA.ip(spec.ip_base);
    let manifest = TrapManifest {
        spec: spec.clone(),
        port,
        seeds: Trap::ALL.iter().map(|t| b.url(*t, "/")).collect(),
        hosts: Trap::ALL.iter().map(|t| HostInfo { name: t.name().to_string(), ip: t.ip(spec.ip_base) }).collect(),
        disallowed: vec![(Trap::Robots.name().to_string(), "/private/".to_string())],
        robots_unavailable: vec![Trap::Down.name().to_string()],
        crawl_delay: vec![(Trap::Slowpoke.name().to_string(), spec.crawl_delay_secs)],
        aliases: vec![(vec![Trap::AliasA.name().to_string(), Trap::AliasB.name().to_string()], alias_ip)],
        expected_failures: failures.into_iter().map(|(u, r)| (u, r.to_string())).collect(),
        pdq_failures: b.pdq_failures,
        redirect_traps,
        infinite_spaces,
        listed_allowed: b.images.iter().filter(|i| i.listed && i.must_hash).map(|i| i.blake3.clone()).collect(),
        listed_disallowed: b.images.iter().filter(|i| i.listed && !i.must_hash).map(|i| i.blake3.clone()).collect(),
        images: b.images,
    };
    Built { assets: b.assets, manifest, reference_csv: csv }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// A gzip stream of [`BOMB_BYTES`] spaces, compressed once per process by
/// streaming (never holding the decompressed bytes): about 64 KiB.
fn bomb() -> Bytes {
    static BOMB: OnceLock<Bytes> = OnceLock::new();
    BOMB.get_or_init(|| {
        let mut enc = GzEncoder::new(Vec::new(), Compression::best());
        let block = [b' '; 64 << 10];
        for _ in 0..BOMB_BYTES / block.len() {
            let _ = enc.write_all(&block);
        }
        Bytes::from(enc.finish().unwrap_or_default())
    })
    .clone()
}

/// A PNG whose header declares `width`×`height` RGB pixels but whose data
/// is a few bytes: tiny on the wire, a memory bomb for a naive decoder.
fn huge_png(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    // The first scanline's worth of zeros, far short of the declared image.
    let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
    let _ = z.write_all(&[0u8; 1024]);
    chunk(&mut out, b"IDAT", &z.finish().unwrap_or_default());
    chunk(&mut out, b"IEND", &[]);
    out
}

impl TrapShared {
    /// The trap a request is for: its Host name when that name lives on
    /// the address it arrived at, otherwise the address's first host
    /// (so the bare address of the aliases serves `alias-a`).
    fn trap_for(&self, host: &str, local_ip: IpAddr) -> Option<Trap> {
        let by_name = Trap::ALL.iter().copied().find(|t| t.name() == host && t.ip(self.spec.ip_base) == local_ip);
        by_name.or_else(|| Trap::ALL.iter().copied().find(|t| t.ip(self.spec.ip_base) == local_ip))
    }

    fn plan(&self, trap: Trap, uri: &Uri, headers: &HeaderMap) -> Planned {
        let path = uri.path();
        let query = uri.query().unwrap_or("");
        let dynamic = match trap {
            Trap::Calendar => calendar(path, query),
            Trap::Loop => redirect_loop(path),
            Trap::Slow => self.slow(path),
            Trap::Busy => self.busy(path),
            Trap::Down if path == "/robots.txt" => {
                Some(Planned::new(StatusCode::INTERNAL_SERVER_ERROR, TEXT, "internal server error"))
            }
            _ => None,
        };
        // The assets are keyed by path alone: a query string finds nothing.
        let planned = dynamic.unwrap_or_else(|| match (query.is_empty(), self.assets.get(&(trap, path.to_string()))) {
            (true, Some(a)) => Planned::asset(a),
            _ => Planned::not_found(),
        });
        if trap == Trap::Etag {
            return self.conditional(uri, headers, planned);
        }
        planned
    }

    fn slow(&self, path: &str) -> Option<Planned> {
        let delay = self.spec.slow_delay;
        match path {
            "/slow-headers.html" => {
                let mut p = Planned::new(StatusCode::OK, HTML, page("Slow headers", "<p>Finally.</p>\n"));
                p.delay = delay;
                Some(p)
            }
            "/slow-body.html" => {
                let mut chunks =
                    vec![Bytes::from_static(b"<!DOCTYPE html>\n<html><head><title>Slow body</title></head>\n<body>\n")];
                for k in 1..SLOW_CHUNKS {
                    chunks.push(Bytes::from(format!("<p>part {k} of a slow page</p>\n")));
                }
                chunks.push(Bytes::from_static(b"</body></html>\n"));
                let len: usize = chunks.iter().map(Bytes::len).sum();
                let mut p = Planned::new(StatusCode::OK, HTML, Bytes::new());
                p.headers.push((header::CONTENT_LENGTH, len.to_string()));
                p.body = PlannedBody::Trickle { chunks, pause: (delay * 2) / SLOW_CHUNKS };
                Some(p)
            }
            _ => None,
        }
    }

    fn busy(&self, path: &str) -> Option<Planned> {
        let retry = self.spec.retry_after_secs.to_string();
        match path {
            "/busy.html" => {
                let n = self.busy_requests.fetch_add(1, Ordering::SeqCst);
                Some(if n < self.spec.throttle_first {
                    Planned::new(StatusCode::TOO_MANY_REQUESTS, TEXT, "too many requests")
                        .header(header::RETRY_AFTER, retry)
                } else {
                    Planned::new(StatusCode::OK, HTML, page("Not busy any more", &img("/busy.png")))
                })
            }
            "/always-busy.html" => Some(
                Planned::new(StatusCode::SERVICE_UNAVAILABLE, TEXT, "service unavailable")
                    .header(header::RETRY_AFTER, retry),
            ),
            _ => None,
        }
    }

    /// ETag and Last-Modified on every response; 304 when If-None-Match
    /// names the current ETag of an existing resource.
    fn conditional(&self, uri: &Uri, headers: &HeaderMap, planned: Planned) -> Planned {
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let generation = self.etag_generation.load(Ordering::SeqCst);
        let etag = format!("\"g{generation}-{:016x}\"", fnv1a(0, target.as_bytes()));
        let matches = planned.status == StatusCode::OK
            && headers
                .get_all(header::IF_NONE_MATCH)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|t| t.trim())
                .any(|t| t == "*" || t.trim_start_matches("W/") == etag);
        let planned = if matches {
            let mut p = Planned::new(StatusCode::NOT_MODIFIED, TEXT, Bytes::new());
            p.headers.clear();
            p
        } else {
            planned
        };
        planned.header(header::ETAG, etag).header(header::LAST_MODIFIED, LAST_MODIFIED.to_string())
    }
}

/// The calendar host's infinite spaces, computed from the URL.
fn calendar(path: &str, query: &str) -> Option<Planned> {
    let param = |name: &str| query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='));
    let html = |title: &str, hrefs: &[&str]| {
        let body = format!("{}{}", links(hrefs), img("/cal.png"));
        Some(Planned::new(StatusCode::OK, HTML, page(title, &body)))
    };
    match path {
        "/calendar" => {
            let (y, m) = param("month")?.split_once('-')?;
            let (year, month): (u32, u32) = (y.parse().ok()?, m.parse().ok()?);
            if !(1..=12).contains(&month) || year > 999_999 {
                return None;
            }
            let prev = if month == 1 { (year.checked_sub(1), 12) } else { (Some(year), month - 1) };
            let next = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
            let mut hrefs = vec![format!("/calendar?month={:04}-{:02}", next.0, next.1)];
            if let (Some(py), pm) = prev {
                hrefs.insert(0, format!("/calendar?month={py:04}-{pm:02}"));
            }
            let refs: Vec<&str> = hrefs.iter().map(String::as_str).collect();
            html(&format!("Calendar {year:04}-{month:02}"), &refs)
        }
        "/search" => {
            let q: u64 = param("q")?.parse().ok()?;
            let sort = param("sort").unwrap_or("asc");
            if sort != "asc" && sort != "desc" {
                return None;
            }
            let page_no: u64 = param("page").map_or(Some(1), |p| p.parse().ok())?;
            let mut hrefs = Vec::new();
            if let Some(q1) = q.checked_add(1) {
                hrefs.push(format!("/search?q={q1}"));
            }
            for s in ["asc", "desc"] {
                hrefs.push(format!("/search?q={q}&sort={s}&page={page_no}"));
            }
            if let Some(p1) = page_no.checked_add(1) {
                hrefs.push(format!("/search?q={q}&sort={sort}&page={p1}"));
            }
            let refs: Vec<&str> = hrefs.iter().map(String::as_str).collect();
            html(&format!("Search {q}, {sort}, page {page_no}"), &refs)
        }
        _ => {
            if let Some(rest) = path.strip_prefix("/loop/") {
                // /loop/x/, /loop/x/x/, …: each links "x/" relative, one segment deeper.
                let depth = rest.len() / 2;
                if depth == 0 || rest != "x/".repeat(depth) {
                    return None;
                }
                return html(&format!("Loop depth {depth}"), &["x/"]);
            }
            if let Some(rest) = path.strip_prefix("/long/") {
                // /long/a, /long/aa, /long/aaaa, …: the link doubles the path.
                if rest.is_empty() || rest.bytes().any(|c| c != b'a') {
                    return None;
                }
                let next = format!("/long/{}", rest.repeat(2));
                return html(&format!("Long path of {}", rest.len()), &[next.as_str()]);
            }
            None
        }
    }
}

/// The loop host: a two-step redirect loop and an endless chain.
fn redirect_loop(path: &str) -> Option<Planned> {
    match path {
        "/redirect/a" => Some(Planned::redirect("/redirect/b".to_string())),
        "/redirect/b" => Some(Planned::redirect("/redirect/a".to_string())),
        _ => {
            let n: u64 = path.strip_prefix("/chain/")?.parse().ok()?;
            Some(Planned::redirect(format!("/chain/{}", n.checked_add(1)?)))
        }
    }
}

/// Sleeps `d`, or less when the web is shutting down.
async fn pause(d: Duration, stopped: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stopped.wait_for(|s| *s) => false,
    }
}

async fn handle(State(state): State<TrapHostState>, method: Method, headers: HeaderMap, uri: Uri) -> Response {
    let shared = &state.shared;
    let entry = shared.log.arrive(state.local_ip, &method, &headers, &uri);
    let planned = match shared.trap_for(&entry.host, state.local_ip) {
        Some(trap) => shared.plan(trap, &uri, &headers),
        None => Planned::not_found(),
    };
    // Logged on arrival, before any stall.
    shared.log.push(entry, planned.status, planned.body.len());
    let mut stopped = shared.stopped.clone();
    if !planned.delay.is_zero() {
        pause(planned.delay, &mut stopped).await;
    }
    let body = match planned.body {
        PlannedBody::Full(b) => Body::from(b),
        PlannedBody::Trickle { chunks, pause: gap } => {
            let stream =
                futures::stream::unfold((0usize, chunks, stopped), move |(i, chunks, mut stopped)| async move {
                    let chunk = chunks.get(i)?.clone();
                    // A shutdown ends the body early: the client sees a short read.
                    if i > 0 && !pause(gap, &mut stopped).await {
                        return None;
                    }
                    Some((Ok::<_, std::io::Error>(chunk), (i + 1, chunks, stopped)))
                });
            Body::from_stream(stream)
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = planned.status;
    for (name, value) in planned.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_through_json() {
        let m = build(&TrapSpec::default(), 8080).manifest;
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("\"slow_delay_ms\":5000"), "{json}");
        assert_eq!(serde_json::from_str::<TrapManifest>(&json).unwrap(), m);
    }

    #[test]
    fn allow_net_covers_every_address() {
        let spec = TrapSpec::default();
        assert_eq!(allow_net(&addresses(&spec)), "127.77.1.0/24");
        assert_eq!(addresses(&spec).len(), 10);
    }

    #[test]
    fn huge_png_is_small_and_declares_its_size() {
        let png = huge_png(100_000, 100_000);
        assert!(png.len() < 1024, "{}", png.len());
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 100_000);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 100_000);
    }

    #[test]
    fn generation_is_deterministic() {
        let spec = TrapSpec::default();
        let a = build(&spec, 8080);
        let b = build(&spec, 8080);
        assert_eq!(a.manifest, b.manifest);
        assert_eq!(a.reference_csv, b.reference_csv);
        let m = &a.manifest;
        assert_eq!(m.listed_allowed.len(), 1);
        assert_eq!(m.listed_disallowed.len(), 4);
        assert_eq!(a.reference_csv.lines().count(), 1 + 5 + 3);
        // The huge and the header-cut pictures never decode; a scan-data cut may (decoders pad).
        let broken = |p: &str| format!("http://broken.trap.test:8080{p}");
        assert!(m.pdq_failures.contains(&broken("/huge.png")), "{:?}", m.pdq_failures);
        assert!(m.pdq_failures.contains(&broken("/truncated-header.jpg")), "{:?}", m.pdq_failures);
        assert!(m.pdq_failures.iter().all(|u| u.starts_with(&broken("/truncated")) || *u == broken("/huge.png")));
        assert_eq!(m.seeds.len(), 11);
        assert_eq!(m.expected_failures.len(), 10);
    }

    #[test]
    fn calendar_spaces_are_computed() {
        let body = |p: Planned| match p.body {
            PlannedBody::Full(b) => String::from_utf8(b.to_vec()).unwrap(),
            PlannedBody::Trickle { .. } => unreachable!(),
        };
        let dec = body(calendar("/calendar", "month=2026-12").unwrap());
        assert!(dec.contains("/calendar?month=2026-11") && dec.contains("/calendar?month=2027-01"), "{dec}");
        assert!(calendar("/calendar", "month=2026-13").is_none());
        assert!(body(calendar("/loop/x/x/", "").unwrap()).contains("href=\"x/\""));
        assert!(calendar("/loop/x/y/", "").is_none());
        assert!(body(calendar("/long/aa", "").unwrap()).contains("/long/aaaa\""));
        let s = body(calendar("/search", "q=3&sort=desc&page=2").unwrap());
        assert!(s.contains("/search?q=4\"") && s.contains("q=3&amp;sort=desc&amp;page=3"), "{s}");
        assert!(redirect_loop(&format!("/chain/{}", u64::MAX)).is_none());
    }
}
