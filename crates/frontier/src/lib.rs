//! The frontier: which URLs a scan fetches, and in what order per host.
//!
//! The scheduler offers every discovered URL to a [`Frontier`], which
//! normalises it, checks scope, depth and budgets, drops duplicates and
//! queues the survivors per host in a [`FrontierStore`]. Every refusal is
//! counted by [`Rejection`] so a scan's summary explains where each
//! discovered URL ended up.
//!
//! Traps are bounded here, by rules a hostile site cannot talk its way
//! around: a URL longer than [`Budgets::max_url_len`], a path that repeats a
//! segment more than [`Budgets::max_segment_repeats`] times (`/a/b/a/b/…`),
//! more than [`Budgets::max_query_variants`] query strings for one path
//! (parameter explosions, calendars), and [`Budgets::max_pages_per_host`].
//! Each costs a host a bounded number of requests, then stops.
//!
//! Decisions:
//! * Scope applies to **pages** only. An image embedded in an in-scope page is
//!   part of that page wherever it is hosted (CDNs), so it is always fetched
//!   (still subject to the network guard and politeness).
//! * The seen-set and queues live behind [`FrontierStore`] so the cluster's
//!   scheduler can keep them in Redis and survive a restart; the embedded
//!   [`MemoryFrontierStore`] keeps them in memory.
#![deny(missing_docs)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use hashscan_bus::{FetchTask, TaskKind};
use serde::{Deserialize, Serialize};
use url::Url;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

/// How far a scan may wander from its seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeMode {
    /// Only pages on a seed's exact host name.
    Host,
    /// Pages on any host under a seed's registrable domain (public suffix list).
    #[default]
    Domain,
}

impl std::str::FromStr for ScopeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "host" => Ok(Self::Host),
            "domain" => Ok(Self::Domain),
            other => Err(format!("unknown scope {other:?} (expected host or domain)")),
        }
    }
}

/// The registrable domain of a host ("eTLD+1" by the public suffix list);
/// IP addresses and names without a known suffix stand for themselves.
pub fn registrable_domain(host: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return host;
    }
    match psl::domain_str(&host) {
        Some(d) => d.to_string(),
        None => host,
    }
}

/// Brings a URL to the form used for de-duplication: http(s) only, with a
/// host, no fragment, no credentials, percent-escapes of unreserved
/// characters decoded (`%7E` → `~`) and the others in upper case (`%2f` →
/// `%2F`), so the spellings of one URL meet. The `url` crate already
/// lowercases scheme and host, applies IDNA, drops default ports and
/// resolves dot segments.
pub fn normalize(url: &Url) -> Option<Url> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    let mut u = url.clone();
    u.set_fragment(None);
    if u.username() != "" || u.password().is_some() {
        // Credentials in URLs are never sent; the same resource without them is meant.
        let _ = u.set_username("");
        let _ = u.set_password(None);
    }
    let path = normalize_escapes(u.path());
    if path != u.path() {
        u.set_path(&path);
    }
    if let Some(q) = u.query() {
        let q2 = normalize_escapes(q);
        if q2.is_empty() {
            u.set_query(None);
        } else if q2 != q {
            u.set_query(Some(&q2));
        }
    }
    Some(u)
}

/// Decodes `%XX` of unreserved characters (RFC 3986 §2.3) and upper-cases
/// the hex of the rest; anything that is not a valid escape stays as it is.
fn normalize_escapes(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() {
            let v = u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(0);
            if v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~') {
                out.push(v as char);
            } else {
                out.push('%');
                out.push_str(&s[i + 1..i + 3].to_ascii_uppercase());
            }
            i += 3;
        } else {
            let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// True when `host` is `pattern` or a subdomain of it.
fn host_matches(host: &str, pattern: &str) -> bool {
    let (host, pattern) = (host.trim_end_matches('.'), pattern.trim_end_matches('.').trim_start_matches("*."));
    host.eq_ignore_ascii_case(pattern)
        || (host.len() > pattern.len()
            && host[host.len() - pattern.len()..].eq_ignore_ascii_case(pattern)
            && host.as_bytes()[host.len() - pattern.len() - 1] == b'.')
}

/// The scan's scope: the seeds' hosts or registrable domains, plus an
/// allow-list of more hosts/domains for pages, and a deny-list that no
/// request of any kind may touch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scope {
    mode: ScopeMode,
    roots: HashSet<String>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

impl Scope {
    /// A scope around the given seeds.
    pub fn new(mode: ScopeMode, seeds: &[Url]) -> Self {
        let roots = seeds
            .iter()
            .filter_map(|u| u.host_str())
            .map(|h| match mode {
                ScopeMode::Host => h.to_ascii_lowercase(),
                ScopeMode::Domain => registrable_domain(h),
            })
            .collect();
        Self { mode, roots, allow: Vec::new(), deny: Vec::new() }
    }

    /// Adds hosts or domains (each matches itself and its subdomains) whose
    /// pages are in scope too, and ones that are never fetched at all.
    pub fn with_lists(mut self, allow: Vec<String>, deny: Vec<String>) -> Self {
        self.allow = allow.into_iter().map(|h| h.to_ascii_lowercase()).collect();
        self.deny = deny.into_iter().map(|h| h.to_ascii_lowercase()).collect();
        self
    }

    /// Whether a URL of any kind is on the deny-list.
    pub fn denies(&self, url: &Url) -> bool {
        url.host_str().is_some_and(|h| self.deny.iter().any(|d| host_matches(h, d)))
    }

    /// Whether a page URL is in scope.
    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else { return false };
        if self.denies(url) {
            return false;
        }
        if self.allow.iter().any(|a| host_matches(host, a)) {
            return true;
        }
        match self.mode {
            ScopeMode::Host => self.roots.contains(&host.to_ascii_lowercase()),
            ScopeMode::Domain => self.roots.contains(&registrable_domain(host)),
        }
    }
}

/// Limits on how much a scan fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budgets {
    /// Pages deeper than this many links from a seed are not fetched.
    pub max_depth: u32,
    /// At most this many page fetches per scan.
    pub max_pages: u64,
    /// At most this many redirect hops per URL.
    pub max_redirects: u8,
    /// At most this many page fetches per host.
    pub max_pages_per_host: u64,
    /// Longer URLs (bytes) are refused.
    pub max_url_len: usize,
    /// A path in which one segment appears more often than this is a trap.
    pub max_segment_repeats: usize,
    /// At most this many distinct query strings per host and path.
    pub max_query_variants: u64,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            max_depth: 5,
            max_pages: 10_000,
            max_redirects: 5,
            max_pages_per_host: 2_000,
            max_url_len: 2_048,
            max_segment_repeats: 3,
            max_query_variants: 25,
        }
    }
}

/// Why an offered URL was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// Not http(s), or no host.
    Unsupported,
    /// A page outside the scan's scope.
    OutOfScope,
    /// A page beyond the depth limit.
    TooDeep,
    /// Already queued or fetched in this scan.
    Duplicate,
    /// The scan's page budget is spent.
    PageBudget,
    /// Too many redirect hops.
    TooManyRedirects,
    /// The host is on the deny-list.
    Denied,
    /// The host's page budget is spent.
    HostBudget,
    /// Longer than [`Budgets::max_url_len`].
    UrlTooLong,
    /// A path segment repeats like a generated trap (`/a/b/a/b/a/b`).
    TrapPath,
    /// Too many query strings for one path (parameter explosion, calendar).
    TrapQuery,
}

impl Rejection {
    /// Stable short code for summaries.
    pub fn code(self) -> &'static str {
        match self {
            Self::Unsupported => "unsupported",
            Self::OutOfScope => "out_of_scope",
            Self::TooDeep => "too_deep",
            Self::Duplicate => "duplicate",
            Self::PageBudget => "page_budget",
            Self::TooManyRedirects => "too_many_redirects",
            Self::Denied => "denied",
            Self::HostBudget => "host_budget",
            Self::UrlTooLong => "url_too_long",
            Self::TrapPath => "trap_path",
            Self::TrapQuery => "trap_query",
        }
    }
}

/// The frontier store failed (a networked store may be unreachable).
#[derive(Debug, thiserror::Error)]
#[error("frontier store: {0}")]
pub struct StoreError(pub String);

/// Where the frontier keeps its seen-set, per-host queues and budget
/// counters. Every method is atomic on its own so several schedulers or a
/// restarted one see a consistent state.
#[async_trait]
pub trait FrontierStore: Send + Sync {
    /// Records a URL key; true when it had not been seen in this scan.
    async fn mark_seen(&self, scan: &str, key: &str) -> Result<bool, StoreError>;
    /// Takes one page from the scan's budget; false when it is spent.
    async fn take_page(&self, scan: &str, max_pages: u64) -> Result<bool, StoreError>;
    /// Takes one page from a host's budget; false when it is spent.
    async fn take_host_page(&self, scan: &str, host: &str, max_pages: u64) -> Result<bool, StoreError>;
    /// Counts a new query string for a host and path; returns how many
    /// distinct ones that path has had, this one included.
    async fn count_query_variant(&self, scan: &str, host_path: &str) -> Result<u64, StoreError>;
    /// Puts a task back at the front of its host's queue (a retry after 429/503).
    async fn requeue_front(&self, task: FetchTask) -> Result<(), StoreError>;
    /// Queues a task under its host.
    async fn enqueue(&self, task: FetchTask) -> Result<(), StoreError>;
    /// Admits one offered URL in one atomic step: marks it seen, counts its
    /// query variant, charges the page budgets and queues it, stopping at
    /// the first check that refuses (what was charged before that stays
    /// charged, as a rejected URL stays seen).
    ///
    /// One step, because a scheduler killed between "seen" and "queued"
    /// would leave a URL that every later offer calls a duplicate and no
    /// queue holds: a page lost for good.
    async fn admit(&self, task: FetchTask, checks: &AdmitChecks) -> Result<Admitted, StoreError>;
    /// Takes the next task of a host, if any.
    async fn dequeue(&self, scan: &str, host: &str) -> Result<Option<FetchTask>, StoreError>;
    /// Hosts that have queued tasks (used to rebuild the schedule after a restart).
    async fn queued_hosts(&self, scan: &str) -> Result<Vec<String>, StoreError>;
    /// Tasks waiting in all queues of a scan.
    async fn queued_len(&self, scan: &str) -> Result<u64, StoreError>;
    /// Tasks waiting in one host's queue (to rebuild the schedule after a restart).
    async fn host_queued_len(&self, scan: &str, host: &str) -> Result<u64, StoreError>;
    /// Takes the next task of a host and records it as handed out, in one
    /// step, so a scheduler that dies right after cannot lose it. It stays
    /// handed out until [`FrontierStore::settle`] or `requeue_front`.
    async fn take(&self, scan: &str, host: &str) -> Result<Option<FetchTask>, StoreError>;
    /// Tasks handed out and not settled: what a restarted scheduler waits
    /// for, and hands out again if no report comes.
    async fn in_flight(&self, scan: &str) -> Result<Vec<FetchTask>, StoreError>;
    /// A handed-out URL ended: forgets it, and keeps the host's next allowed
    /// time (Unix ms) and the scheduler's state, in one step.
    async fn settle(&self, scan: &str, url: &str, host: &str, ready_at_ms: i64, state: &str) -> Result<(), StoreError>;
    /// The state kept by the last `settle`, with every host's next allowed time.
    async fn saved_state(&self, scan: &str) -> Result<Option<SavedState>, StoreError>;
}

/// The checks [`FrontierStore::admit`] makes for one URL, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmitChecks {
    /// The URL's key in the scan's seen-set (its normalised form).
    pub seen_key: String,
    /// For a URL with a query: its host and path, and how many distinct
    /// query strings that path may have before it is a trap.
    pub query: Option<(String, u64)>,
    /// For a page: its host's page budget and the scan's page budget.
    pub pages: Option<(u64, u64)>,
}

/// What [`FrontierStore::admit`] did with a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// Queued under its host.
    Queued,
    /// Offered before in this scan; nothing written.
    Duplicate,
    /// Its path has had too many query strings.
    TrapQuery,
    /// Its host's page budget is spent.
    HostBudget,
    /// The scan's page budget is spent.
    PageBudget,
}

/// What a scheduler kept of a scan, to resume it after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedState {
    /// The scheduler's own state (its summary), as it wrote it.
    pub state: String,
    /// Host → the earliest time (Unix ms) of its next request.
    pub ready_at_ms: BTreeMap<String, i64>,
}

#[derive(Default)]
struct ScanState {
    seen: HashSet<String>,
    pages: u64,
    host_pages: HashMap<String, u64>,
    query_variants: HashMap<String, u64>,
    queues: BTreeMap<String, VecDeque<FetchTask>>,
    queued: u64,
    in_flight: BTreeMap<String, FetchTask>,
    saved: Option<SavedState>,
}

/// The embedded frontier store: everything in memory, behind one mutex
/// (every operation is a few map lookups; contention is not the bottleneck).
#[derive(Default)]
pub struct MemoryFrontierStore {
    scans: Mutex<HashMap<String, ScanState>>,
}

impl MemoryFrontierStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, scan: &str, f: impl FnOnce(&mut ScanState) -> T) -> Result<T, StoreError> {
        let mut scans = self.scans.lock().map_err(|_| StoreError("memory frontier poisoned".into()))?;
        Ok(f(scans.entry(scan.to_string()).or_default()))
    }
}

#[async_trait]
impl FrontierStore for MemoryFrontierStore {
    async fn mark_seen(&self, scan: &str, key: &str) -> Result<bool, StoreError> {
        self.with(scan, |s| s.seen.insert(key.to_string()))
    }

    async fn take_page(&self, scan: &str, max_pages: u64) -> Result<bool, StoreError> {
        self.with(scan, |s| {
            if s.pages < max_pages {
                s.pages += 1;
                true
            } else {
                false
            }
        })
    }

    async fn take_host_page(&self, scan: &str, host: &str, max_pages: u64) -> Result<bool, StoreError> {
        self.with(scan, |s| {
            let n = s.host_pages.entry(host.to_string()).or_default();
            if *n < max_pages {
                *n += 1;
                true
            } else {
                false
            }
        })
    }

    async fn count_query_variant(&self, scan: &str, host_path: &str) -> Result<u64, StoreError> {
        self.with(scan, |s| {
            let n = s.query_variants.entry(host_path.to_string()).or_default();
            *n += 1;
            *n
        })
    }

    async fn requeue_front(&self, task: FetchTask) -> Result<(), StoreError> {
        let scan = task.scan.clone();
        self.with(&scan, |s| {
            s.in_flight.remove(task.url.as_str());
            s.queues.entry(task.host().to_string()).or_default().push_front(task);
            s.queued += 1;
        })
    }

    async fn enqueue(&self, task: FetchTask) -> Result<(), StoreError> {
        let scan = task.scan.clone();
        self.with(&scan, |s| {
            s.queues.entry(task.host().to_string()).or_default().push_back(task);
            s.queued += 1;
        })
    }

    async fn admit(&self, task: FetchTask, checks: &AdmitChecks) -> Result<Admitted, StoreError> {
        let scan = task.scan.clone();
        self.with(&scan, |s| {
            if !s.seen.insert(checks.seen_key.clone()) {
                return Admitted::Duplicate;
            }
            if let Some((host_path, max)) = &checks.query {
                let n = s.query_variants.entry(host_path.clone()).or_default();
                *n += 1;
                if *n > *max {
                    return Admitted::TrapQuery;
                }
            }
            if let Some((host_cap, scan_cap)) = checks.pages {
                let n = s.host_pages.entry(task.host().to_string()).or_default();
                if *n >= host_cap {
                    return Admitted::HostBudget;
                }
                *n += 1;
                if s.pages >= scan_cap {
                    return Admitted::PageBudget;
                }
                s.pages += 1;
            }
            s.queues.entry(task.host().to_string()).or_default().push_back(task);
            s.queued += 1;
            Admitted::Queued
        })
    }

    async fn dequeue(&self, scan: &str, host: &str) -> Result<Option<FetchTask>, StoreError> {
        self.with(scan, |s| {
            let q = s.queues.get_mut(host)?;
            let t = q.pop_front();
            if q.is_empty() {
                s.queues.remove(host);
            }
            if t.is_some() {
                s.queued -= 1;
            }
            t
        })
    }

    async fn queued_hosts(&self, scan: &str) -> Result<Vec<String>, StoreError> {
        self.with(scan, |s| s.queues.keys().cloned().collect())
    }

    async fn queued_len(&self, scan: &str) -> Result<u64, StoreError> {
        self.with(scan, |s| s.queued)
    }

    async fn host_queued_len(&self, scan: &str, host: &str) -> Result<u64, StoreError> {
        self.with(scan, |s| s.queues.get(host).map_or(0, |q| q.len() as u64))
    }

    async fn take(&self, scan: &str, host: &str) -> Result<Option<FetchTask>, StoreError> {
        let task = self.dequeue(scan, host).await?;
        if let Some(t) = &task {
            self.with(scan, |s| s.in_flight.insert(t.url.to_string(), t.clone()))?;
        }
        Ok(task)
    }

    async fn in_flight(&self, scan: &str) -> Result<Vec<FetchTask>, StoreError> {
        self.with(scan, |s| s.in_flight.values().cloned().collect())
    }

    async fn settle(&self, scan: &str, url: &str, host: &str, ready_at_ms: i64, state: &str) -> Result<(), StoreError> {
        self.with(scan, |s| {
            s.in_flight.remove(url);
            let saved = s.saved.get_or_insert_with(SavedState::default);
            saved.state = state.to_string();
            saved.ready_at_ms.insert(host.to_string(), ready_at_ms);
        })
    }

    async fn saved_state(&self, scan: &str) -> Result<Option<SavedState>, StoreError> {
        self.with(scan, |s| s.saved.clone())
    }
}

/// True when some path segment occurs more than `max` times: the mark of
/// relative links that grow a path forever (`/a/b/a/b/…`).
fn repeats_a_segment(path: &str, max: usize) -> bool {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    path.split('/').filter(|s| !s.is_empty()).any(|seg| {
        let n = counts.entry(seg).or_default();
        *n += 1;
        *n > max
    })
}

/// A URL found by a fetcher, offered to the frontier.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The URL as found (resolved against its page).
    pub url: Url,
    /// Page or image.
    pub kind: TaskKind,
    /// Depth of the new task.
    pub depth: u32,
    /// The page it was found on.
    pub referrer: Option<Url>,
    /// Redirect hops taken to reach it.
    pub hops: u8,
}

/// The result of offering a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Queued under its host.
    Queued {
        /// The host it was queued under.
        host: String,
    },
    /// Not queued, and why.
    Rejected(Rejection),
}

/// One scan's admission logic over a store.
pub struct Frontier<S> {
    scan: String,
    scope: Scope,
    budgets: Budgets,
    host_page_caps: std::collections::BTreeMap<String, u64>,
    store: S,
}

impl<S: FrontierStore> Frontier<S> {
    /// A frontier for one scan.
    pub fn new(scan: impl Into<String>, scope: Scope, budgets: Budgets, store: S) -> Self {
        Self { scan: scan.into(), scope, budgets, host_page_caps: Default::default(), store }
    }

    /// Page budgets for particular hosts instead of
    /// [`Budgets::max_pages_per_host`]: a recurring scan spends less on
    /// hosts that never had listed material.
    pub fn with_host_page_caps(mut self, caps: std::collections::BTreeMap<String, u64>) -> Self {
        self.host_page_caps = caps;
        self
    }

    /// The store (the scheduler dequeues from it).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The scan id.
    pub fn scan(&self) -> &str {
        &self.scan
    }

    /// Offers a URL: normalise, check scope/depth/redirects, de-duplicate,
    /// charge the page budget, queue.
    pub async fn offer(&self, c: Candidate) -> Result<Admission, StoreError> {
        let Some(url) = normalize(&c.url) else {
            return Ok(Admission::Rejected(Rejection::Unsupported));
        };
        if c.hops > self.budgets.max_redirects {
            return Ok(Admission::Rejected(Rejection::TooManyRedirects));
        }
        if self.scope.denies(&url) {
            return Ok(Admission::Rejected(Rejection::Denied));
        }
        if url.as_str().len() > self.budgets.max_url_len {
            return Ok(Admission::Rejected(Rejection::UrlTooLong));
        }
        if repeats_a_segment(url.path(), self.budgets.max_segment_repeats) {
            return Ok(Admission::Rejected(Rejection::TrapPath));
        }
        if c.kind == TaskKind::Page {
            if !self.scope.allows(&url) {
                return Ok(Admission::Rejected(Rejection::OutOfScope));
            }
            if c.depth > self.budgets.max_depth {
                return Ok(Admission::Rejected(Rejection::TooDeep));
            }
        }
        // Pages and images share one seen-set: a URL is fetched once per scan
        // whichever way it was found.
        let host = url.host_str().unwrap_or_default().to_string();
        let checks = AdmitChecks {
            seen_key: url.as_str().to_string(),
            query: url.query().map(|_| (format!("{host}{}", url.path()), self.budgets.max_query_variants)),
            pages: (c.kind == TaskKind::Page).then(|| {
                let cap = self.host_page_caps.get(&host).copied().unwrap_or(self.budgets.max_pages_per_host);
                (cap, self.budgets.max_pages)
            }),
        };
        let task = FetchTask {
            scan: self.scan.clone(),
            url,
            kind: c.kind,
            depth: c.depth,
            referrer: c.referrer,
            hops: c.hops,
            validators: None,
            attempt: 0,
        };
        let rejection = match self.store.admit(task, &checks).await? {
            Admitted::Queued => return Ok(Admission::Queued { host }),
            Admitted::Duplicate => Rejection::Duplicate,
            Admitted::TrapQuery => Rejection::TrapQuery,
            Admitted::HostBudget => Rejection::HostBudget,
            Admitted::PageBudget => Rejection::PageBudget,
        };
        Ok(Admission::Rejected(rejection))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn cand(url: &str, kind: TaskKind, depth: u32) -> Candidate {
        Candidate { url: u(url), kind, depth, referrer: None, hops: 0 }
    }

    #[test]
    fn normalize_lowercases_drops_fragment_default_port_and_dot_segments() {
        let n = normalize(&u("HTTP://WWW.Example.COM:80/a/./b/../c.html#top")).unwrap();
        assert_eq!(n.as_str(), "http://www.example.com/a/c.html");
        assert_eq!(normalize(&u("https://user:pw@x.test/")).unwrap().as_str(), "https://x.test/");
        assert!(normalize(&u("ftp://x.test/")).is_none());
        assert!(normalize(&u("mailto:a@b.test")).is_none());
        assert_eq!(normalize(&u("http://xn--bcher-kva.test/")).unwrap().host_str(), Some("xn--bcher-kva.test"));
        assert_eq!(normalize(&u("http://bücher.test/")).unwrap().host_str(), Some("xn--bcher-kva.test"));
    }

    #[test]
    fn normalize_meets_escape_spellings() {
        assert_eq!(
            normalize(&u("http://x.test/%7Euser/a%2fb?q=%41%2c")).unwrap().as_str(),
            "http://x.test/~user/a%2Fb?q=A%2C"
        );
        assert_eq!(normalize(&u("http://x.test/p?")).unwrap().as_str(), "http://x.test/p");
        assert_eq!(normalize(&u("http://x.test/100%")).unwrap().as_str(), "http://x.test/100%");
        assert_eq!(normalize(&u("http://x.test/caf%C3%A9")).unwrap().as_str(), "http://x.test/caf%C3%A9");
    }

    #[tokio::test]
    async fn traps_are_bounded_and_deny_list_wins() {
        let seeds = [u("http://www.site0.test/")];
        let scope = Scope::new(ScopeMode::Domain, &seeds)
            .with_lists(vec!["partner.test".into()], vec!["bad.site0.test".into()]);
        let budgets = Budgets { max_pages_per_host: 3, max_query_variants: 2, max_url_len: 100, ..Budgets::default() };
        let f = Frontier::new("s", scope, budgets, MemoryFrontierStore::new());
        let rej = |r| Admission::Rejected(r);
        assert_eq!(
            f.offer(cand("http://www.site0.test/a/b/a/b/a/b/a/b", TaskKind::Page, 1)).await.unwrap(),
            rej(Rejection::TrapPath)
        );
        assert_eq!(
            f.offer(cand(&format!("http://www.site0.test/{}", "x".repeat(200)), TaskKind::Page, 1)).await.unwrap(),
            rej(Rejection::UrlTooLong)
        );
        for m in 1..=2 {
            let c = cand(&format!("http://www.site0.test/cal?m={m}"), TaskKind::Page, 1);
            assert!(matches!(f.offer(c).await.unwrap(), Admission::Queued { .. }));
        }
        assert_eq!(
            f.offer(cand("http://www.site0.test/cal?m=3", TaskKind::Page, 1)).await.unwrap(),
            rej(Rejection::TrapQuery)
        );
        assert!(matches!(
            f.offer(cand("http://www.site0.test/p", TaskKind::Page, 1)).await.unwrap(),
            Admission::Queued { .. }
        ));
        assert_eq!(
            f.offer(cand("http://www.site0.test/q", TaskKind::Page, 1)).await.unwrap(),
            rej(Rejection::HostBudget)
        );
        assert!(
            matches!(
                f.offer(cand("http://cdn.partner.test/", TaskKind::Page, 1)).await.unwrap(),
                Admission::Queued { .. }
            ),
            "allow-listed"
        );
        assert_eq!(
            f.offer(cand("http://bad.site0.test/i.png", TaskKind::Image, 1)).await.unwrap(),
            rej(Rejection::Denied)
        );
        assert_eq!(f.offer(cand("http://x.bad.site0.test/", TaskKind::Page, 1)).await.unwrap(), rej(Rejection::Denied));
        assert!(!host_matches("notbad.site0.test", "bad.site0.test"));
    }

    #[tokio::test]
    async fn requeued_tasks_come_first() {
        let store = MemoryFrontierStore::new();
        let t = |p: &str| FetchTask {
            scan: "s".into(),
            url: u(&format!("http://h.test/{p}")),
            kind: TaskKind::Page,
            depth: 0,
            referrer: None,
            hops: 0,
            validators: None,
            attempt: 0,
        };
        store.enqueue(t("1")).await.unwrap();
        store.requeue_front(t("0")).await.unwrap();
        assert_eq!(store.dequeue("s", "h.test").await.unwrap().unwrap().url.path(), "/0");
        assert_eq!(store.queued_len("s").await.unwrap(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_store_keeps_the_store_contract() {
        crate::testkit::check_all(MemoryFrontierStore::new(), "s").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_store_keeps_the_contract_through_shared_handles() {
        let store: std::sync::Arc<dyn FrontierStore> = std::sync::Arc::new(MemoryFrontierStore::new());
        crate::testkit::check_all_shared(&[store.clone(), store], "s").await;
    }

    #[test]
    fn registrable_domain_uses_public_suffixes() {
        assert_eq!(registrable_domain("www.example.co.uk"), "example.co.uk");
        assert_eq!(registrable_domain("a.b.example.com"), "example.com");
        assert_eq!(registrable_domain("img.site0.test"), "site0.test");
        assert_eq!(registrable_domain("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn scope_host_and_domain() {
        let seeds = [u("http://www.site0.test:8080/")];
        let host = Scope::new(ScopeMode::Host, &seeds);
        let dom = Scope::new(ScopeMode::Domain, &seeds);
        assert!(host.allows(&u("http://www.site0.test:9/x")));
        assert!(!host.allows(&u("http://img.site0.test/x")));
        assert!(dom.allows(&u("http://img.site0.test/x")));
        assert!(!dom.allows(&u("http://www.site1.test/x")));
    }

    #[tokio::test]
    async fn offer_applies_scope_depth_dedup_and_budget_to_pages_only() {
        let seeds = [u("http://www.site0.test/")];
        let f = Frontier::new(
            "s",
            Scope::new(ScopeMode::Host, &seeds),
            Budgets { max_depth: 2, max_pages: 2, max_redirects: 1, ..Budgets::default() },
            MemoryFrontierStore::new(),
        );
        let q = |h: &str| Admission::Queued { host: h.to_string() };
        assert_eq!(f.offer(cand("http://www.site0.test/", TaskKind::Page, 0)).await.unwrap(), q("www.site0.test"));
        assert_eq!(
            f.offer(cand("http://WWW.site0.test/#x", TaskKind::Page, 1)).await.unwrap(),
            Admission::Rejected(Rejection::Duplicate)
        );
        assert_eq!(
            f.offer(cand("http://other.test/", TaskKind::Page, 1)).await.unwrap(),
            Admission::Rejected(Rejection::OutOfScope)
        );
        assert_eq!(
            f.offer(cand("http://www.site0.test/deep", TaskKind::Page, 3)).await.unwrap(),
            Admission::Rejected(Rejection::TooDeep)
        );
        // Images are fetched from any host and at any depth.
        assert_eq!(
            f.offer(cand("http://cdn.other.test/i.png", TaskKind::Image, 9)).await.unwrap(),
            q("cdn.other.test")
        );
        assert_eq!(f.offer(cand("http://www.site0.test/2", TaskKind::Page, 1)).await.unwrap(), q("www.site0.test"));
        assert_eq!(
            f.offer(cand("http://www.site0.test/3", TaskKind::Page, 1)).await.unwrap(),
            Admission::Rejected(Rejection::PageBudget)
        );
        let mut redirected = cand("http://www.site0.test/r", TaskKind::Page, 1);
        redirected.hops = 2;
        assert_eq!(f.offer(redirected).await.unwrap(), Admission::Rejected(Rejection::TooManyRedirects));
        assert_eq!(
            f.offer(cand("javascript:alert(1)", TaskKind::Page, 1)).await.unwrap(),
            Admission::Rejected(Rejection::Unsupported)
        );
        let store = f.store();
        assert_eq!(store.queued_len("s").await.unwrap(), 3);
        let mut hosts = store.queued_hosts("s").await.unwrap();
        hosts.sort();
        assert_eq!(hosts, vec!["cdn.other.test", "www.site0.test"]);
        assert_eq!(store.dequeue("s", "www.site0.test").await.unwrap().unwrap().url.path(), "/");
        assert_eq!(store.dequeue("s", "www.site0.test").await.unwrap().unwrap().url.path(), "/2");
        assert!(store.dequeue("s", "www.site0.test").await.unwrap().is_none());
        assert_eq!(store.queued_len("s").await.unwrap(), 1);
    }
}
