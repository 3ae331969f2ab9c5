//! The frontier: which URLs a scan fetches, and in what order per host.
//!
//! The scheduler offers every discovered URL to a [`Frontier`], which
//! normalises it, checks scope, depth and budgets, drops duplicates and
//! queues the survivors per host in a [`FrontierStore`]. Every refusal is
//! counted by [`Rejection`] so a scan's summary explains where each
//! discovered URL ended up.
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
/// host, no fragment. The `url` crate already lowercases scheme and host,
/// applies IDNA, drops default ports and resolves dot segments.
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
    Some(u)
}

/// The scan's scope: the seeds' hosts or registrable domains.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scope {
    mode: ScopeMode,
    roots: HashSet<String>,
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
        Self { mode, roots }
    }

    /// Whether a page URL is in scope.
    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else { return false };
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
}

impl Default for Budgets {
    fn default() -> Self {
        Self { max_depth: 5, max_pages: 10_000, max_redirects: 5 }
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
    /// Queues a task under its host.
    async fn enqueue(&self, task: FetchTask) -> Result<(), StoreError>;
    /// Takes the next task of a host, if any.
    async fn dequeue(&self, scan: &str, host: &str) -> Result<Option<FetchTask>, StoreError>;
    /// Hosts that have queued tasks (used to rebuild the schedule after a restart).
    async fn queued_hosts(&self, scan: &str) -> Result<Vec<String>, StoreError>;
    /// Tasks waiting in all queues of a scan.
    async fn queued_len(&self, scan: &str) -> Result<u64, StoreError>;
}

#[derive(Default)]
struct ScanState {
    seen: HashSet<String>,
    pages: u64,
    queues: BTreeMap<String, VecDeque<FetchTask>>,
    queued: u64,
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

    async fn enqueue(&self, task: FetchTask) -> Result<(), StoreError> {
        let scan = task.scan.clone();
        self.with(&scan, |s| {
            s.queues.entry(task.host().to_string()).or_default().push_back(task);
            s.queued += 1;
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
    store: S,
}

impl<S: FrontierStore> Frontier<S> {
    /// A frontier for one scan.
    pub fn new(scan: impl Into<String>, scope: Scope, budgets: Budgets, store: S) -> Self {
        Self { scan: scan.into(), scope, budgets, store }
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
        if !self.store.mark_seen(&self.scan, url.as_str()).await? {
            return Ok(Admission::Rejected(Rejection::Duplicate));
        }
        if c.kind == TaskKind::Page && !self.store.take_page(&self.scan, self.budgets.max_pages).await? {
            return Ok(Admission::Rejected(Rejection::PageBudget));
        }
        let task = FetchTask {
            scan: self.scan.clone(),
            url,
            kind: c.kind,
            depth: c.depth,
            referrer: c.referrer,
            hops: c.hops,
        };
        let host = task.host().to_string();
        self.store.enqueue(task).await?;
        Ok(Admission::Queued { host })
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
            Budgets { max_depth: 2, max_pages: 2, max_redirects: 1 },
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
