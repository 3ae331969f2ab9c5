//! HTTP fetching with hard limits and the network guard.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hashscan_bus::{
    data_image_id, FailReason, FetchReport, FetchTask, MatchWork, Outcome, PdqResult, TaskKind, Validators,
};
use hashscan_decode::{DecodeLimits, ImageHasher, Mode};
use hashscan_extract::{ExtractLimits, ImageRef};
use hashscan_hash::Digests;
use hashscan_netguard::{NetPolicy, Overrides, Refused};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use crate::sniff::{looks_like_html, sniff_image};

/// Limits and identity of a fetcher.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// The User-Agent header.
    pub user_agent: String,
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time from request to response headers.
    pub first_byte_timeout: Duration,
    /// Time for a whole request, body included.
    pub total_timeout: Duration,
    /// Cap on an HTML body, after decompression.
    pub max_page_bytes: usize,
    /// Cap on an image body, after decompression.
    pub max_image_bytes: usize,
    /// Cap on all bodies in flight together.
    pub memory_budget_bytes: usize,
    /// How long a body may wait for room in the memory budget.
    pub budget_wait: Duration,
    /// Which addresses may be connected to.
    pub policy: NetPolicy,
    /// Pinned host → address mappings.
    pub overrides: Overrides,
    /// Limits on what one page may yield.
    pub extract: ExtractLimits,
    /// Limits on decoding an image for PDQ.
    pub decode: DecodeLimits,
    /// How images are decoded for PDQ.
    pub pdq_mode: Mode,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            user_agent: user_agent("hashscan", DEFAULT_CONTACT),
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(20),
            total_timeout: Duration::from_secs(60),
            max_page_bytes: 5 << 20,
            max_image_bytes: 32 << 20,
            memory_budget_bytes: 256 << 20,
            budget_wait: Duration::from_secs(30),
            policy: NetPolicy::open_web(),
            overrides: Overrides::default(),
            extract: ExtractLimits::default(),
            decode: DecodeLimits::default(),
            pdq_mode: Mode::Exact,
        }
    }
}

/// Where the default User-Agent sends a webmaster who wonders what we are:
/// the page that explains the crawler and how to keep it out. Operators
/// should point `--contact` at their own hotline's page.
pub const DEFAULT_CONTACT: &str = "https://github.com/hashscan/hashscan/blob/main/docs/crawler.md";

/// The User-Agent: the robots.txt product token first (so that a group
/// naming it matches), a contact URL, and what the crawler does.
pub fn user_agent(token: &str, contact: &str) -> String {
    format!("{token}/{} (+{contact}; hash-only child-protection crawler)", env!("CARGO_PKG_VERSION"))
}

/// The HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build HTTP client: {0}")]
pub struct InitError(String);

/// A resolver that answers only with addresses the [`NetPolicy`] allows.
///
/// Plugged into the HTTP client so that the check happens on the very
/// addresses the connection will use.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: NetPolicy,
    overrides: Overrides,
}

impl GuardedResolver {
    /// A resolver enforcing `policy`, with pinned `overrides`.
    pub fn new(policy: NetPolicy, overrides: Overrides) -> Self {
        Self { policy, overrides }
    }

    /// Resolves a host name to the allowed addresses, or says why none is.
    pub async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, ResolveError> {
        let addrs: Vec<SocketAddr> = match self.overrides.get(host) {
            Some(ip) => vec![SocketAddr::new(ip, 0)],
            None => tokio::net::lookup_host((host, 0))
                .await
                .map_err(|e| ResolveError::Dns(format!("{host}: {e}")))?
                .collect(),
        };
        let mut first_refusal = None;
        let allowed: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| match self.policy.check(a.ip()) {
                Ok(()) => true,
                Err(r) => {
                    first_refusal.get_or_insert(r);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), first_refusal) {
            (false, _) => Ok(allowed),
            (true, Some(r)) => Err(ResolveError::Refused(r)),
            (true, None) => Err(ResolveError::Dns(format!("{host}: no addresses"))),
        }
    }

    /// The address a connection to `host` tries first (an IP literal is its
    /// own address): what the scheduler keys per-server politeness on.
    pub async fn first_address(&self, host: &str) -> Option<IpAddr> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse() {
            return Some(ip);
        }
        self.lookup(host).await.ok().and_then(|a| a.first().map(|a| a.ip()))
    }
}

/// Why a host name gave no usable address.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Every address was refused by the network policy.
    #[error(transparent)]
    Refused(Refused),
    /// The name did not resolve.
    #[error("dns: {0}")]
    Dns(String),
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addrs = this.lookup(name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// What one fetch produced: the report for the scheduler, and work for the matcher.
#[derive(Debug)]
pub struct Fetched {
    /// Exactly one per task.
    pub report: FetchReport,
    /// Edges and hashes for the matcher.
    pub work: Vec<MatchWork>,
}

/// What this fetcher's requests produced, by outcome: the operator's view
/// of a worker (exported on `/metrics` in cluster mode).
#[derive(Debug, Default)]
pub struct FetchStats {
    by_outcome: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
    /// Image bytes hashed.
    pub image_bytes: std::sync::atomic::AtomicU64,
    /// Wall time spent in fetches, microseconds.
    pub busy_micros: std::sync::atomic::AtomicU64,
    /// CPU-side time hashing images (digests, decode, PDQ), microseconds.
    pub hash_micros: std::sync::atomic::AtomicU64,
}

impl FetchStats {
    fn record(&self, outcome: &Outcome, took: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let label = match outcome {
            Outcome::Page { .. } => "page",
            Outcome::Image { bytes, .. } => {
                self.image_bytes.fetch_add(*bytes, Relaxed);
                "image"
            }
            Outcome::Redirect { .. } => "redirect",
            Outcome::Robots { .. } => "robots",
            Outcome::NotModified => "not_modified",
            Outcome::Throttled { .. } => "throttled",
            Outcome::Failed { reason, .. } => reason.code(),
        };
        self.busy_micros.fetch_add(took.as_micros() as u64, Relaxed);
        if let Ok(mut m) = self.by_outcome.lock() {
            *m.entry(label).or_default() += 1;
        }
    }

    /// Fetches so far, by outcome (`page`, `image`, … or a failure reason code).
    pub fn by_outcome(&self) -> Vec<(&'static str, u64)> {
        self.by_outcome.lock().map(|m| m.iter().map(|(k, v)| (*k, *v)).collect()).unwrap_or_default()
    }
}

/// Downloads pages and images within limits.
pub struct Fetcher {
    client: reqwest::Client,
    config: FetchConfig,
    budget: Arc<Semaphore>,
    /// Bounds CPU-heavy work (hashing, parsing) to the number of cores, so a
    /// burst of images cannot flood the blocking pool.
    cpu: Arc<Semaphore>,
    stats: Arc<FetchStats>,
}

struct Failure(FailReason, String);

impl Failure {
    fn new(reason: FailReason, detail: impl Into<String>) -> Self {
        Self(reason, detail.into())
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// One KiB of budget per permit; a body holds permits for its whole size.
const BUDGET_UNIT: usize = 1024;

impl Fetcher {
    /// Builds the HTTP client: no proxies, no automatic redirects, gzip
    /// decoding (capped after decompression by the body limits), and the
    /// guarded resolver.
    pub fn new(config: FetchConfig) -> Result<Self, InitError> {
        // Any provider will do; ignore the error when one is already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let resolver = GuardedResolver::new(config.policy.clone(), config.overrides.clone());
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .timeout(config.total_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(2)
            .dns_resolver(Arc::new(resolver))
            .build()
            .map_err(|e| InitError(e.to_string()))?;
        let units = (config.memory_budget_bytes / BUDGET_UNIT).clamp(1, Semaphore::MAX_PERMITS);
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Ok(Self {
            client,
            budget: Arc::new(Semaphore::new(units)),
            cpu: Arc::new(Semaphore::new(cores)),
            stats: Arc::default(),
            config,
        })
    }

    /// Counters of what fetches produced, for `/metrics`.
    pub fn stats(&self) -> &FetchStats {
        &self.stats
    }

    /// The configuration in force.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// Fetches one task. Never fails: a failure is an [`Outcome::Failed`].
    pub async fn fetch(&self, task: FetchTask) -> Fetched {
        let started = std::time::Instant::now();
        let started_at_ms = now_ms();
        let mut work = Vec::new();
        let mut ip = None;
        let mut validators = None;
        let result = if task.kind == TaskKind::Robots {
            self.fetch_robots(&task, &mut ip).await
        } else {
            self.fetch_inner(&task, &mut ip, &mut validators, &mut work).await
        };
        let outcome = match result {
            Ok(o) => o,
            Err(Failure(reason, detail)) => Outcome::Failed { reason, detail },
        };
        if let Outcome::Failed { reason, detail } = &outcome {
            tracing::debug!(url = %task.url, reason = reason.code(), %detail, "fetch failed");
        }
        self.stats.record(&outcome, started.elapsed());
        let match_messages = work.len() as u32;
        Fetched { report: FetchReport { task, started_at_ms, ip, validators, outcome, match_messages }, work }
    }

    /// robots.txt: follows up to [`MAX_ROBOTS_REDIRECTS`] redirects (each
    /// hop through the network guard), reads at most [`MAX_ROBOTS_BYTES`]
    /// (RFC 9309 asks parsers to take at least 500 KiB; the rest is cut,
    /// not refused) and reports the final status.
    async fn fetch_robots(&self, task: &FetchTask, ip: &mut Option<IpAddr>) -> Result<Outcome, Failure> {
        let mut url = task.url.clone();
        for _ in 0..=MAX_ROBOTS_REDIRECTS {
            let mut resp = self.send(&url, self.client.get(url.clone()), ip).await?;
            let status = resp.status();
            if status.is_redirection() {
                let next = location(&resp, &url).filter(|u| matches!(u.scheme(), "http" | "https"));
                match next {
                    Some(next) => {
                        url = next;
                        continue;
                    }
                    // A redirect to nowhere: as unreachable.
                    None => {
                        return Err(Failure::new(FailReason::Redirect, "robots.txt redirect without a usable Location"))
                    }
                }
            }
            if !status.is_success() {
                return Ok(Outcome::Robots { status: status.as_u16(), body: None });
            }
            let mut body = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(c)) => {
                        let room = MAX_ROBOTS_BYTES - body.len();
                        body.extend_from_slice(&c[..c.len().min(room)]);
                        if body.len() >= MAX_ROBOTS_BYTES {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(classify(&e)),
                }
            }
            return Ok(Outcome::Robots {
                status: status.as_u16(),
                body: Some(String::from_utf8_lossy(&body).into_owned()),
            });
        }
        Err(Failure::new(FailReason::Redirect, format!("robots.txt redirected more than {MAX_ROBOTS_REDIRECTS} times")))
    }

    /// Sends a request within the first-byte timeout; an IP-literal URL is
    /// checked here (names are checked by the resolver).
    async fn send(
        &self,
        url: &Url,
        request: reqwest::RequestBuilder,
        ip: &mut Option<IpAddr>,
    ) -> Result<reqwest::Response, Failure> {
        if let Some(literal) = literal_ip(url) {
            self.config.policy.check(literal).map_err(|r| Failure::new(FailReason::NetPolicy, r.to_string()))?;
        }
        let resp = match tokio::time::timeout(self.config.first_byte_timeout, request.send()).await {
            Err(_) => return Err(Failure::new(FailReason::Timeout, "no response headers in time")),
            Ok(Err(e)) => return Err(classify(&e)),
            Ok(Ok(r)) => r,
        };
        *ip = resp.remote_addr().map(|a| a.ip());
        Ok(resp)
    }

    async fn fetch_inner(
        &self,
        task: &FetchTask,
        ip: &mut Option<IpAddr>,
        validators: &mut Option<Validators>,
        work: &mut Vec<MatchWork>,
    ) -> Result<Outcome, Failure> {
        let mut request = self.client.get(task.url.clone());
        if let Some(v) = &task.validators {
            if let Some(etag) = &v.etag {
                request = request.header(reqwest::header::IF_NONE_MATCH, etag.as_str());
            }
            if let Some(lm) = &v.last_modified {
                request = request.header(reqwest::header::IF_MODIFIED_SINCE, lm.as_str());
            }
        }
        let resp = self.send(&task.url, request, ip).await?;
        let status = resp.status();
        // 304 is a 3xx: tell it from a redirect first.
        if status == reqwest::StatusCode::NOT_MODIFIED {
            if task.validators.as_ref().is_some_and(|v| !v.is_empty()) {
                return Ok(Outcome::NotModified);
            }
            return Err(Failure::new(FailReason::HttpStatus, "HTTP 304 to a request that was not conditional"));
        }
        if status.is_redirection() {
            let location = location(&resp, &task.url).ok_or_else(|| {
                Failure::new(FailReason::Redirect, format!("HTTP {} without a usable Location", status.as_u16()))
            })?;
            return Ok(Outcome::Redirect { location });
        }
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            let retry_after_ms = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()))
                .map(|d| d.as_millis() as u64);
            return Ok(Outcome::Throttled { status: status.as_u16(), retry_after_ms });
        }
        if !status.is_success() {
            return Err(Failure::new(FailReason::HttpStatus, format!("HTTP {}", status.as_u16())));
        }
        let header = |name| {
            resp.headers().get(name).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok()).map(str::to_string)
        };
        let v =
            Validators { etag: header(reqwest::header::ETAG), last_modified: header(reqwest::header::LAST_MODIFIED) };
        *validators = (!v.is_empty()).then_some(v);
        let content_type =
            resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let cap = match task.kind {
            TaskKind::Page | TaskKind::Robots => self.config.max_page_bytes,
            TaskKind::Image => self.config.max_image_bytes,
        };
        let (body, permit) = self.read_body(resp, cap).await?;
        let host = task.host().to_string();
        let fetched_at_ms = now_ms();
        if let Some(format) = sniff_image(&body) {
            // An image task, or a link that turned out to be an image: hash it.
            let (digests, pdq) = self.hash_and_drop(body, permit).await?;
            // For an image task the referrer is the embedding page; for a page
            // task that turned out to be an image, the page that linked it.
            let page_url = task.referrer.clone();
            tracing::trace!(url = %task.url, format = format.media_type(), "image hashed");
            work.push(MatchWork::ImageHashed {
                scan: task.scan.clone(),
                image_id: task.url.to_string(),
                page_url,
                host,
                ip: *ip,
                digests,
                pdq,
                fetched_at_ms,
            });
            return Ok(Outcome::Image { bytes: digests.bytes, blake3: digests.hex(hashscan_hash::CryptoAlgo::Blake3) });
        }
        if task.kind == TaskKind::Image {
            return Err(Failure::new(
                FailReason::NotAnImage,
                format!(
                    "body is not a known image format (Content-Type {})",
                    content_type.as_deref().unwrap_or("none")
                ),
            ));
        }
        if !looks_like_html(content_type.as_deref(), &body) {
            return Err(Failure::new(
                FailReason::NotHtml,
                format!("neither HTML nor an image (Content-Type {})", content_type.as_deref().unwrap_or("none")),
            ));
        }
        self.parse_page(task, body, permit, content_type, fetched_at_ms, work).await
    }

    async fn parse_page(
        &self,
        task: &FetchTask,
        body: Vec<u8>,
        permit: OwnedSemaphorePermit,
        content_type: Option<String>,
        at_ms: i64,
        work: &mut Vec<MatchWork>,
    ) -> Result<Outcome, Failure> {
        let charset = content_type.as_deref().and_then(charset_of).map(str::to_string);
        let page_url = task.url.clone();
        let limits = self.config.extract.clone();
        let (decode, mode, budget) = (self.config.decode, self.config.pdq_mode, self.budget.clone());
        let _cpu =
            self.cpu.clone().acquire_owned().await.map_err(|_| Failure::new(FailReason::Parse, "shutting down"))?;
        let parsed = tokio::task::spawn_blocking(move || {
            let res = hashscan_extract::extract(&body, &page_url, charset.as_deref(), &limits);
            drop(body);
            drop(permit);
            res.map(|ex| {
                // Hash data: images here, on the blocking pool, and keep only their ids.
                let mut images = Vec::new();
                let mut image_ids = Vec::new();
                let mut data = Vec::new();
                for img in ex.images {
                    match img {
                        ImageRef::Url { url, .. } => {
                            image_ids.push(url.to_string());
                            images.push(url);
                        }
                        ImageRef::Data { media_type, bytes, .. } => {
                            let digests = Digests::of(&bytes);
                            // Already on a blocking thread: wait for no budget, take it or skip PDQ.
                            let pdq = pdq_within_budget(&bytes, decode, mode, |units| {
                                budget.clone().try_acquire_many_owned(units).ok()
                            });
                            drop(bytes);
                            let id = data_image_id(&media_type, &digests);
                            image_ids.push(id.clone());
                            data.push((id, digests, pdq));
                        }
                    }
                }
                (ex.links, images, image_ids, data)
            })
        })
        .await
        .map_err(|e| Failure::new(FailReason::Parse, e.to_string()))?
        .map_err(|e| Failure::new(FailReason::Parse, e.to_string()))?;
        let (links, images, image_ids, data) = parsed;
        let data_images = data.len() as u32;
        let data_ids: Vec<String> = data.iter().map(|(id, _, _)| id.clone()).collect();
        work.push(MatchWork::PageImages {
            scan: task.scan.clone(),
            page_url: task.url.clone(),
            images: image_ids,
            seen_at_ms: at_ms,
        });
        for (id, digests, pdq) in data {
            work.push(MatchWork::ImageHashed {
                scan: task.scan.clone(),
                image_id: id,
                page_url: Some(task.url.clone()),
                host: task.host().to_string(),
                ip: None,
                digests,
                pdq,
                fetched_at_ms: at_ms,
            });
        }
        Ok(Outcome::Page { links, images, data_images, data_ids })
    }

    /// Streams a body into one buffer of at most `cap` bytes, holding memory
    /// budget for every byte buffered.
    async fn read_body(
        &self,
        mut resp: reqwest::Response,
        cap: usize,
    ) -> Result<(Vec<u8>, OwnedSemaphorePermit), Failure> {
        if let Some(len) = resp.content_length() {
            if len > cap as u64 {
                return Err(Failure::new(FailReason::TooLarge, format!("Content-Length {len} exceeds cap {cap}")));
            }
        }
        let mut permit = self.reserve(1).await?;
        let mut held = BUDGET_UNIT;
        let mut buf: Vec<u8> = Vec::with_capacity(resp.content_length().unwrap_or(0).min(cap as u64) as usize);
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => return Err(classify(&e)),
            };
            if buf.len() + chunk.len() > cap {
                return Err(Failure::new(FailReason::TooLarge, format!("body exceeds cap {cap} bytes")));
            }
            let need = buf.len() + chunk.len();
            if need > held {
                let units = (need - held).div_ceil(BUDGET_UNIT);
                permit.merge(self.reserve(units).await?);
                held += units * BUDGET_UNIT;
            }
            buf.extend_from_slice(&chunk);
        }
        Ok((buf, permit))
    }

    async fn reserve(&self, units: usize) -> Result<OwnedSemaphorePermit, Failure> {
        let units =
            u32::try_from(units).map_err(|_| Failure::new(FailReason::MemoryBudget, "body larger than budget"))?;
        let acquire = self.budget.clone().acquire_many_owned(units);
        match tokio::time::timeout(self.config.budget_wait, acquire).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(Failure::new(FailReason::MemoryBudget, "budget closed")),
            Err(_) => Err(Failure::new(FailReason::MemoryBudget, "memory budget stayed exhausted")),
        }
    }

    /// Hashes a body (digests and PDQ) on the blocking pool and drops it
    /// there: the buffer never comes back. Decoding for PDQ first reserves
    /// its pixel memory from the same budget as the bodies, sized from the
    /// image's header.
    async fn hash_and_drop(
        &self,
        body: Vec<u8>,
        permit: OwnedSemaphorePermit,
    ) -> Result<(Digests, PdqResult), Failure> {
        let (decode, mode) = (self.config.decode, self.config.pdq_mode);
        let pixels = match hashscan_decode::probe(&body, &decode) {
            Ok(probe) => {
                let units =
                    usize::try_from(probe.decode_bytes(mode).div_ceil(BUDGET_UNIT as u64)).unwrap_or(usize::MAX);
                match self.reserve(units).await {
                    Ok(p) => Ok(p),
                    Err(Failure(_, detail)) => Err(PdqResult::Failed {
                        reason: "memory_budget".into(),
                        detail: format!(
                            "{}x{} needs {} bytes to decode: {detail}",
                            probe.width,
                            probe.height,
                            probe.decode_bytes(mode)
                        ),
                    }),
                }
            }
            Err(e) => Err(PdqResult::Failed { reason: e.code().into(), detail: e.to_string() }),
        };
        let _cpu =
            self.cpu.clone().acquire_owned().await.map_err(|_| Failure::new(FailReason::Parse, "shutting down"))?;
        let stats = self.stats.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let d = Digests::of(&body);
            let pdq = match pixels {
                Ok(pixel_permit) => {
                    let pdq = pdq_of(&body, decode, mode);
                    drop(pixel_permit);
                    pdq
                }
                Err(failed) => failed,
            };
            drop(body);
            drop(permit);
            stats.hash_micros.fetch_add(started.elapsed().as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
            (d, pdq)
        })
        .await
        .map_err(|e| Failure::new(FailReason::Parse, format!("hashing task failed: {e}")))
    }
}

thread_local! {
    /// One decoder per blocking thread, so its buffers are reused.
    static HASHER: std::cell::RefCell<Option<ImageHasher>> = const { std::cell::RefCell::new(None) };
}

/// PDQ of an encoded image with this thread's hasher.
fn pdq_of(bytes: &[u8], limits: DecodeLimits, mode: Mode) -> PdqResult {
    let result = HASHER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let hasher = match slot.as_mut() {
            Some(h) if *h.limits() == limits && h.mode() == mode => h,
            _ => slot.insert(ImageHasher::new(limits, mode)),
        };
        hasher.pdq(bytes)
    });
    match result {
        Ok(img) => PdqResult::Hashed {
            hash: img.pdq.hash,
            quality: img.pdq.quality,
            width: img.probe.width,
            height: img.probe.height,
            scale: img.scale,
        },
        Err(e) => PdqResult::Failed { reason: e.code().into(), detail: e.to_string() },
    }
}

/// PDQ when the memory budget has room for the decode now, from a
/// blocking thread (`data:` images, decoded while their page is parsed).
fn pdq_within_budget(
    bytes: &[u8],
    limits: DecodeLimits,
    mode: Mode,
    try_reserve: impl FnOnce(u32) -> Option<OwnedSemaphorePermit>,
) -> PdqResult {
    let probe = match hashscan_decode::probe(bytes, &limits) {
        Ok(p) => p,
        Err(e) => return PdqResult::Failed { reason: e.code().into(), detail: e.to_string() },
    };
    let need = probe.decode_bytes(mode);
    let units = u32::try_from(need.div_ceil(BUDGET_UNIT as u64)).unwrap_or(u32::MAX);
    match try_reserve(units) {
        Some(permit) => {
            let pdq = pdq_of(bytes, limits, mode);
            drop(permit);
            pdq
        }
        None => PdqResult::Failed {
            reason: "memory_budget".into(),
            detail: format!("{}x{} needs {need} bytes to decode; budget busy", probe.width, probe.height),
        },
    }
}

/// Redirects followed for robots.txt (RFC 9309: at least five).
pub const MAX_ROBOTS_REDIRECTS: usize = 5;
/// Bytes of robots.txt read (RFC 9309: at least 500 KiB are parsed).
pub const MAX_ROBOTS_BYTES: usize = 500 * 1024;
/// Longest `Retry-After` honoured; a server asking for more is given this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Retry-After` as delay-seconds or an HTTP-date, relative to `now`,
/// capped at [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value).ok()?.duration_since(now).unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// A redirect's target, resolved against the URL that redirected.
fn location(resp: &reqwest::Response, base: &Url) -> Option<Url> {
    let l = resp.headers().get(reqwest::header::LOCATION)?.to_str().ok()?;
    base.join(l.trim()).ok()
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

fn charset_of(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("charset")).then(|| v.trim().trim_matches('"'))
    })
}

/// Maps a transport error to a reason, finding a network-policy refusal or
/// a DNS failure anywhere in its source chain.
fn classify(e: &reqwest::Error) -> Failure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<ResolveError>() {
            return match r {
                ResolveError::Refused(refused) => Failure::new(FailReason::NetPolicy, refused.to_string()),
                ResolveError::Dns(d) => Failure::new(FailReason::Dns, d.clone()),
            };
        }
        source = s.source();
    }
    if e.is_timeout() {
        Failure::new(FailReason::Timeout, e.to_string())
    } else if e.is_decode() || e.is_body() {
        Failure::new(FailReason::Network, format!("body: {}", chain(e)))
    } else {
        Failure::new(FailReason::Network, chain(e))
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_capped() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("5", now), Some(Duration::from_secs(5)));
        let in_two = httpdate::fmt_http_date(now + Duration::from_secs(2));
        assert_eq!(parse_retry_after(&in_two, now), Some(Duration::from_secs(2)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(60));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}
