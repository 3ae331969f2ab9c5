//! The scheduler role: owns a scan's frontier and decides what is fetched when.
//!
//! It offers seeds and every discovered URL to the [`Frontier`], hands out
//! [`FetchTask`]s on the bus as hosts become due, records every fetch
//! outcome, and ends the scan when nothing is queued or in flight.
//!
//! Decisions:
//! * Politeness is enforced here, measured from the **end** of the previous
//!   request. A host has at most one request in flight, and its next one is
//!   released no earlier than its interval after the previous one finished.
//!   From the start instead, the server would see two requests closer than
//!   the interval whenever the first spent longer on the way than the second.
//! * Politeness is owed to the server, not to the name: every host is also
//!   keyed by its resolved address ([`AddressBook`]), and the interval and
//!   the one-in-flight rule hold per address too, so a site reached under
//!   two names (or its bare IP) is not crawled twice as fast.
//! * robots.txt (RFC 9309) is fetched before any other request to an origin
//!   and decides every URL of it; a refused URL is recorded, never requested.
//!   5xx or unreachable robots.txt disallows everything and is retried with
//!   back-off, then the origin is given up. Crawl-delay raises the interval.
//! * 429/503 double the host's interval (and wait at least `Retry-After`);
//!   the task is retried a bounded number of times.
//! * The per-host pacing is hand-written (it is measured from request ends,
//!   per address, and must later live in a shared store); `governor` caps
//!   the scan-wide request rate on top.
#![deny(missing_docs)]

pub mod revisit;
mod robots;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hashscan_bus::{
    Bus, BusError, FailReason, FetchReport, FetchTask, MatchWork, Message, Outcome, TaskKind, Topic, Validators,
};
use hashscan_frontier::{
    Admission, Budgets, Candidate, Frontier, FrontierStore, Scope, ScopeMode, StoreError as FrontierError,
};
use hashscan_store::{CachedFetch, FetchRecord, SightingStore, StoreError};
use robots::{RobotsState, Verdict};
use serde::{Deserialize, Serialize};
use url::Url;

/// Scheduler failures: the scan cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The frontier store failed.
    #[error(transparent)]
    Frontier(#[from] FrontierError),
    /// The sightings store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a host's requests really go: the address politeness is keyed on.
///
/// Embedded scans answer with the fetcher's own guarded resolver, so the
/// scheduler and the connection agree; `None` keys the host by name alone.
#[async_trait]
pub trait AddressBook: Send + Sync {
    /// The address a request to `host` will connect to, if it resolves.
    async fn lookup(&self, host: &str) -> Option<IpAddr>;
}

/// An address book that resolves nothing: hosts are paced by name only
/// (and by the addresses fetch reports name).
pub struct NoAddressBook;

#[async_trait]
impl AddressBook for NoAddressBook {
    async fn lookup(&self, host: &str) -> Option<IpAddr> {
        host.trim_start_matches('[').trim_end_matches(']').parse().ok()
    }
}

/// Live counters of a scan, read by progress displays.
#[derive(Debug, Default)]
pub struct Progress {
    /// Pages fetched and parsed.
    pub pages: AtomicU64,
    /// Images hashed (by URL; `data:` images count in `data_images`).
    pub images: AtomicU64,
    /// `data:` images hashed in place.
    pub data_images: AtomicU64,
    /// Redirects reported.
    pub redirects: AtomicU64,
    /// Failed fetches (including URLs refused without a request).
    pub failed: AtomicU64,
    /// Image bytes hashed.
    pub bytes: AtomicU64,
    /// Tasks waiting in the frontier.
    pub queued: AtomicU64,
    /// Tasks handed out and not reported yet.
    pub in_flight: AtomicU64,
}

/// Where every URL of a scan ended up.
///
/// Every discovered URL is either rejected (by reason) or queued, and every
/// queued URL ends as a page, an image, a redirect, a not-modified replay
/// or a failure (by reason): [`ScanSummary::unaccounted`] is zero at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScanSummary {
    /// URLs offered to the frontier (seeds, links, images, redirect targets).
    pub discovered: u64,
    /// Offered URLs that were queued.
    pub queued: u64,
    /// Offered URLs that were not queued, by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Pages fetched and parsed.
    pub pages: u64,
    /// Images fetched and hashed.
    pub images: u64,
    /// `data:` images hashed in place.
    pub data_images: u64,
    /// Redirects followed (each target was offered again).
    pub redirects: u64,
    /// Pages and images answered 304: what the earlier fetch found was replayed.
    pub not_modified: u64,
    /// Failed or refused URLs, by reason.
    pub failed: BTreeMap<String, u64>,
    /// Image bytes hashed.
    pub bytes: u64,
    /// robots.txt requests, by what they gave: `rules`, `allow_all` (4xx),
    /// `unavailable` (5xx, 429, unreachable), `gave_up` (origins left alone).
    pub robots: BTreeMap<String, u64>,
    /// 429/503 answers that slowed a host down (the task was retried).
    pub throttled: u64,
    /// Reports for a task already reported (redelivered work), dropped.
    pub duplicate_reports: u64,
    /// Tasks handed out again because their lease lapsed without a report.
    pub lease_renewals: u64,
    /// Messages published for the matchers (by fetchers and by replays):
    /// matching of the scan is complete when this many were processed.
    pub match_messages: u64,
}

impl ScanSummary {
    /// Failed fetches in total.
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    /// Queued URLs that did not end anywhere: zero after a finished scan.
    pub fn unaccounted(&self) -> i64 {
        let ended = self.pages + self.images + self.redirects + self.not_modified + self.failed_total();
        self.queued as i64 - ended as i64
    }
}

/// How the scheduler paces a scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SchedulerConfig {
    /// Minimum time between two requests to one host (and to one address).
    pub host_interval: Duration,
    /// Tasks in flight across all hosts: the global concurrency cap.
    pub max_in_flight: usize,
    /// Requests per second across the whole scan, if capped.
    pub max_rate: Option<NonZeroU32>,
    /// Our product token in robots.txt groups.
    pub robots_agent: String,
    /// Skip Allow/Disallow (recorded on the scan and its cases). robots.txt
    /// is still fetched for Crawl-delay, and rate limits always hold.
    pub ignore_robots: bool,
    /// How long a robots.txt is trusted.
    pub robots_ttl: Duration,
    /// First wait after an unavailable robots.txt; doubles per attempt.
    pub robots_retry: Duration,
    /// robots.txt attempts before the origin is given up.
    pub robots_attempts: u32,
    /// A Crawl-delay above this leaves the host alone (reason `crawl_delay`).
    pub max_crawl_delay: Duration,
    /// Retries of a task answered 429/503.
    pub throttle_retries: u8,
    /// A `Retry-After` above this gives the task up (reason `throttled`).
    pub max_retry_after: Duration,
    /// Send `If-None-Match`/`If-Modified-Since` from earlier scans.
    pub conditional: bool,
    /// After a restart, how long a task handed out before it may still
    /// report; then it is handed out again (it may never have left).
    pub resume_grace: Duration,
    /// How long a task handed out may go without a report before it is
    /// handed out again: a fetcher died with it, or the broker
    /// dead-lettered it. Without a lease one lost message stalls a scan.
    pub task_lease: Duration,
    /// Hand-outs again after a lapsed lease before the URL ends as failed
    /// (reason `lost`), so a task that always vanishes cannot loop.
    pub lease_retries: u8,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            host_interval: Duration::from_secs(1),
            max_in_flight: 32,
            max_rate: None,
            robots_agent: "hashscan".into(),
            ignore_robots: false,
            robots_ttl: Duration::from_secs(24 * 3600),
            robots_retry: Duration::from_secs(60),
            robots_attempts: 3,
            max_crawl_delay: Duration::from_secs(60),
            throttle_retries: 2,
            max_retry_after: Duration::from_secs(300),
            conditional: true,
            resume_grace: Duration::from_secs(60),
            task_lease: Duration::from_secs(300),
            lease_retries: 2,
        }
    }
}

/// What to crawl and how politely: the part of a scan that is the same in
/// embedded and cluster mode (a cluster stores it with the scan).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanPlan {
    /// Start URLs.
    pub seeds: Vec<Url>,
    /// How far pages may be from the seeds' hosts.
    pub scope: ScopeMode,
    /// Depth, page and trap limits.
    pub budgets: Budgets,
    /// Politeness, robots.txt, throttling, conditional requests.
    pub crawl: SchedulerConfig,
    /// Hosts or domains (and their subdomains) in scope besides the seeds'.
    #[serde(default)]
    pub allow_domains: Vec<String>,
    /// Hosts or domains never requested, whatever else allows them.
    #[serde(default)]
    pub deny_domains: Vec<String>,
    /// Page budgets of particular hosts (instead of the per-host budget).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub host_page_caps: std::collections::BTreeMap<String, u64>,
}

impl ScanPlan {
    /// A plan from seeds with the default scope, budgets and politeness.
    pub fn new(seeds: Vec<Url>) -> Self {
        Self {
            seeds,
            scope: ScopeMode::Domain,
            budgets: Budgets::default(),
            crawl: SchedulerConfig::default(),
            allow_domains: vec![],
            deny_domains: vec![],
            host_page_caps: Default::default(),
        }
    }

    /// The scan's frontier over `store`.
    pub fn frontier<S: FrontierStore>(&self, scan: &str, store: S) -> Frontier<S> {
        let scope =
            Scope::new(self.scope, &self.seeds).with_lists(self.allow_domains.clone(), self.deny_domains.clone());
        Frontier::new(scan, scope, self.budgets, store).with_host_page_caps(self.host_page_caps.clone())
    }
}

/// A politeness key: a resolved address, or the host name when it has none.
type Key = String;

#[derive(Default)]
struct Host {
    next_allowed: Option<Instant>,
    in_flight: bool,
    queued: u64,
    /// Doublings of the interval after 429/503.
    slowdown: u32,
    crawl_delay: Option<Duration>,
    key: Option<Key>,
    /// Waiting for its address to be free.
    parked: bool,
}

#[derive(Default)]
struct Address {
    next_allowed: Option<Instant>,
    in_flight: bool,
    waiters: Vec<String>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The report of a URL that ends as failed without a request of its own
/// (refused, given up after throttling, or lost).
fn no_request(task: FetchTask, reason: FailReason, detail: String) -> FetchReport {
    FetchReport {
        task,
        started_at_ms: now_ms(),
        ip: None,
        validators: None,
        outcome: Outcome::Failed { reason, detail },
        match_messages: 0,
    }
}

/// `pick` of two optional times, or the one that is there.
fn either(a: Option<Instant>, b: Option<Instant>, pick: fn(Instant, Instant) -> Instant) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

/// The earlier of two optional times.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    either(a, b, Instant::min)
}

/// A task handed out: when it is handed out again, and how often it was.
struct Lease {
    due: Instant,
    task: FetchTask,
    renewals: u8,
}

/// The later of two optional times.
fn later(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    either(a, b, Instant::max)
}

/// One scan's scheduler.
pub struct Scheduler<S> {
    frontier: Frontier<S>,
    bus: Arc<dyn Bus>,
    sightings: Arc<dyn SightingStore>,
    addresses: Arc<dyn AddressBook>,
    config: SchedulerConfig,
    progress: Arc<Progress>,
    limiter: Option<DefaultDirectRateLimiter>,
    hosts: HashMap<String, Host>,
    slots: HashMap<Key, Address>,
    robots: HashMap<String, RobotsState>,
    ready: BinaryHeap<Reverse<(Instant, String)>>,
    in_ready: HashSet<String>,
    /// Tasks handed out and not reported yet, by URL, with their leases: a
    /// second report for one (a fetcher died after reporting, before its
    /// ack, and the task was done again) is recognised and dropped.
    outstanding: HashMap<String, Lease>,
    in_flight: usize,
    queued: u64,
    summary: ScanSummary,
}

impl<S: FrontierStore> Scheduler<S> {
    /// A scheduler for the frontier's scan.
    pub fn new(
        frontier: Frontier<S>,
        bus: Arc<dyn Bus>,
        sightings: Arc<dyn SightingStore>,
        config: SchedulerConfig,
        progress: Arc<Progress>,
    ) -> Self {
        let limiter = config.max_rate.map(|r| RateLimiter::direct(Quota::per_second(r)));
        Self {
            frontier,
            bus,
            sightings,
            addresses: Arc::new(NoAddressBook),
            config,
            progress,
            limiter,
            hosts: HashMap::new(),
            slots: HashMap::new(),
            robots: HashMap::new(),
            ready: BinaryHeap::new(),
            in_ready: HashSet::new(),
            outstanding: HashMap::new(),
            in_flight: 0,
            queued: 0,
            summary: ScanSummary::default(),
        }
    }

    /// Paces hosts by the addresses `book` resolves them to.
    pub fn with_address_book(mut self, book: Arc<dyn AddressBook>) -> Self {
        self.addresses = book;
        self
    }

    /// Runs the scan from its seeds to the end and returns its summary.
    pub async fn run(mut self, seeds: Vec<Url>) -> Result<ScanSummary, SchedulerError> {
        let mut consumer = self.bus.consume(Topic::Report).await?;
        // Forward deliveries through a channel so waiting for them can be
        // raced against timers without cancelling a half-received message.
        let (tx, mut rx) = tokio::sync::mpsc::channel(self.config.max_in_flight.max(1));
        let forward = tokio::spawn(async move {
            while let Some(d) = consumer.next().await {
                if tx.send(d).await.is_err() {
                    break;
                }
            }
        });
        if !self.resume().await? {
            for seed in seeds {
                self.offer(Candidate { url: seed, kind: TaskKind::Page, depth: 0, referrer: None, hops: 0 }).await?;
            }
        }
        let result = self.drive(&mut rx).await;
        forward.abort();
        result?;
        Ok(self.summary)
    }

    /// Picks up a scan a previous scheduler was running, from the store:
    /// the summary so far, the queues, the hosts' next times, and the tasks
    /// that were out (awaited, then handed out again). False for a new scan.
    async fn resume(&mut self) -> Result<bool, SchedulerError> {
        let scan = self.frontier.scan().to_string();
        let Some(saved) = self.frontier.store().saved_state(&scan).await? else { return Ok(false) };
        self.summary = serde_json::from_str(&saved.state).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "saved scheduler state unreadable; counting afresh");
            ScanSummary::default()
        });
        // The live counters go on from the saved ones: a status read after a
        // resume never shows a scan going backwards.
        let (p, sum) = (&self.progress, &self.summary);
        p.pages.store(sum.pages, Ordering::Relaxed);
        p.images.store(sum.images, Ordering::Relaxed);
        p.data_images.store(sum.data_images, Ordering::Relaxed);
        p.redirects.store(sum.redirects, Ordering::Relaxed);
        p.failed.store(sum.failed_total(), Ordering::Relaxed);
        p.bytes.store(sum.bytes, Ordering::Relaxed);
        let (now, now_unix) = (Instant::now(), now_ms());
        for (host, at) in &saved.ready_at_ms {
            let wait = Duration::from_millis((*at - now_unix).max(0) as u64);
            self.hosts.entry(host.clone()).or_default().next_allowed = Some(now + wait);
        }
        let store = self.frontier.store();
        for host in store.queued_hosts(&scan).await? {
            let n = store.host_queued_len(&scan, &host).await?;
            self.hosts.entry(host).or_default().queued += n;
            self.queued += n;
        }
        let flying = store.in_flight(&scan).await?;
        let resend_at = now + self.config.resume_grace;
        for task in flying {
            let host = task.host().to_string();
            let key = match self.addresses.lookup(&host).await {
                Some(ip) => format!("ip:{ip}"),
                None => format!("host:{host}"),
            };
            let h = self.hosts.entry(host).or_default();
            if !h.in_flight {
                h.in_flight = true;
                self.in_flight += 1;
            }
            h.key = Some(key.clone());
            self.slots.entry(key).or_default().in_flight = true;
            self.outstanding.insert(task.url.to_string(), Lease { due: resend_at, task, renewals: 0 });
        }
        let hosts: Vec<String> = self.hosts.keys().cloned().collect();
        for host in hosts {
            self.mark_ready(&host);
        }
        tracing::info!(
            scan = %scan,
            queued = self.queued,
            in_flight = self.in_flight,
            "resuming a scan from its saved state"
        );
        Ok(true)
    }

    /// Hands out again the tasks whose lease lapsed without a report (or
    /// that were out before a restart), and ends those that lapsed too
    /// often as failed `lost`.
    async fn renew_lapsed(&mut self) -> Result<(), SchedulerError> {
        let now = Instant::now();
        let lapsed: Vec<String> =
            self.outstanding.iter().filter(|(_, l)| l.due <= now).map(|(u, _)| u.clone()).collect();
        if lapsed.is_empty() {
            return Ok(());
        }
        // Tasks still waiting on the queue: the fetchers are behind (or
        // scaled to zero), not losing work. Wait on, count nothing.
        let waiting = match self.bus.waiting(Topic::Fetch).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the fetch queue's depth");
                None
            }
        };
        if let Some(n) = waiting.filter(|n| *n > 0) {
            tracing::info!(waiting = n, lapsed = lapsed.len(), "leases lapsed while tasks wait for fetchers; extended");
            for url in &lapsed {
                if let Some(lease) = self.outstanding.get_mut(url) {
                    lease.due = now + self.config.task_lease;
                }
            }
            return Ok(());
        }
        for url in lapsed {
            let Some(lease) = self.outstanding.get_mut(&url) else { continue };
            if lease.renewals < self.config.lease_retries {
                lease.renewals += 1;
                lease.due = now + self.config.task_lease;
                let task = lease.task.clone();
                tracing::warn!(url = %task.url, renewal = lease.renewals, "no report for a task handed out; handing it out again");
                self.summary.lease_renewals += 1;
                self.bus.publish(Message::Fetch(task)).await?;
            } else {
                let detail = format!("no report after {} hand-outs", u32::from(lease.renewals) + 1);
                tracing::warn!(url = %url, "{detail}; the URL ends as lost");
                let report = no_request(lease.task.clone(), FailReason::Lost, detail);
                self.on_report(report).await?;
            }
        }
        Ok(())
    }

    async fn drive(
        &mut self,
        rx: &mut tokio::sync::mpsc::Receiver<hashscan_bus::Delivery>,
    ) -> Result<(), SchedulerError> {
        loop {
            self.renew_lapsed().await?;
            self.dispatch().await?;
            if self.in_flight == 0 && self.queued == 0 {
                return Ok(());
            }
            // A due host only matters while there is room to send; a lease
            // lapses whatever the room.
            let ready =
                self.ready.peek().map(|Reverse((t, _))| *t).filter(|_| self.in_flight < self.config.max_in_flight);
            let lapse = self.outstanding.values().map(|l| l.due).min();
            let delivery = match earliest(ready, lapse) {
                Some(t) => {
                    tokio::select! {
                        d = rx.recv() => d,
                        _ = tokio::time::sleep_until(t.into()) => continue,
                    }
                }
                None => rx.recv().await,
            };
            let Some(delivery) = delivery else {
                return Err(SchedulerError::Bus(BusError::Closed));
            };
            match &delivery.message {
                Message::Report(report) => {
                    self.on_report(report.clone()).await?;
                    delivery.ack().await?;
                }
                other => {
                    let reason = format!("report queue got a {:?} message", other.topic());
                    delivery.reject(&reason).await?;
                }
            }
        }
    }

    /// The host's interval now: the scan's, never below Crawl-delay, doubled
    /// per 429/503.
    fn interval(&self, host: &str) -> Duration {
        let h = self.hosts.get(host);
        let base = self.config.host_interval.max(h.and_then(|h| h.crawl_delay).unwrap_or_default());
        base * (1u32 << h.map_or(0, |h| h.slowdown.min(6)))
    }

    fn push_ready(&mut self, host: &str, due: Instant) {
        if self.in_ready.insert(host.to_string()) {
            self.ready.push(Reverse((due, host.to_string())));
        }
    }

    /// Hands out every task whose host and address are due, within the caps.
    async fn dispatch(&mut self) -> Result<(), SchedulerError> {
        while self.in_flight < self.config.max_in_flight {
            let now = Instant::now();
            let Some(Reverse((due, host))) = self.ready.peek().cloned() else { break };
            if due > now {
                break;
            }
            self.ready.pop();
            self.in_ready.remove(&host);
            let Some(h) = self.hosts.get(&host) else { continue };
            if h.in_flight || h.queued == 0 || h.parked {
                continue;
            }
            if let Some(t) = h.next_allowed.filter(|t| *t > now) {
                self.push_ready(&host, t);
                continue;
            }
            let key = match h.key.clone() {
                Some(k) => k,
                None => {
                    let k = match self.addresses.lookup(&host).await {
                        Some(ip) => format!("ip:{ip}"),
                        None => format!("host:{host}"),
                    };
                    if let Some(h) = self.hosts.get_mut(&host) {
                        h.key = Some(k.clone());
                    }
                    k
                }
            };
            let slot = self.slots.entry(key.clone()).or_default();
            if slot.in_flight {
                slot.waiters.push(host.clone());
                if let Some(h) = self.hosts.get_mut(&host) {
                    h.parked = true;
                }
                continue;
            }
            if let Some(t) = slot.next_allowed.filter(|t| *t > now) {
                self.push_ready(&host, t);
                continue;
            }
            if let Some(limiter) = &self.limiter {
                if let Err(not_until) = limiter.check() {
                    let wait = not_until
                        .wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
                    self.push_ready(&host, now + wait);
                    continue;
                }
            }
            let Some(task) = self.frontier.store().take(self.frontier.scan(), &host).await? else {
                if let Some(h) = self.hosts.get_mut(&host) {
                    self.queued -= h.queued;
                    h.queued = 0;
                }
                continue;
            };
            self.take_queued(&host);
            let origin = robots::origin(&task.url);
            let verdict = match self.robots.get(&origin) {
                None => Verdict::FetchRobots { attempts: 0 },
                Some(state) => state.verdict(&task.url, self.config.ignore_robots, now),
            };
            match verdict {
                Verdict::Allowed => self.send(task, &key).await?,
                Verdict::FetchRobots { attempts } => {
                    let Some(robots_url) = robots::robots_url(&task.url) else {
                        self.refuse(task, FailReason::Robots, "no robots.txt URL for this origin".into()).await?;
                        continue;
                    };
                    self.put_back(task).await?;
                    self.robots.insert(origin, RobotsState::Fetching { attempts });
                    let robots_task = FetchTask {
                        scan: self.frontier.scan().to_string(),
                        url: robots_url,
                        kind: TaskKind::Robots,
                        depth: 0,
                        referrer: None,
                        hops: 0,
                        validators: None,
                        attempt: 0,
                    };
                    self.send(robots_task, &key).await?;
                }
                Verdict::Wait { until } => {
                    self.put_back(task).await?;
                    if let Some(until) = until {
                        if let Some(h) = self.hosts.get_mut(&host) {
                            h.next_allowed = later(h.next_allowed, Some(until));
                        }
                        self.push_ready(&host, until);
                    }
                }
                Verdict::Refused { reason, detail } => {
                    self.refuse(task, reason, detail).await?;
                    self.mark_ready(&host);
                }
            }
        }
        self.progress.queued.store(self.queued, Ordering::Relaxed);
        self.progress.in_flight.store(self.in_flight as u64, Ordering::Relaxed);
        Ok(())
    }

    fn take_queued(&mut self, host: &str) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.queued = h.queued.saturating_sub(1);
        }
        self.queued = self.queued.saturating_sub(1);
    }

    /// Returns a dequeued task to the front of its host's queue.
    async fn put_back(&mut self, task: FetchTask) -> Result<(), SchedulerError> {
        let host = task.host().to_string();
        self.frontier.store().requeue_front(task).await?;
        self.hosts.entry(host).or_default().queued += 1;
        self.queued += 1;
        Ok(())
    }

    /// Publishes a task: the host and its address are busy until it reports.
    async fn send(&mut self, mut task: FetchTask, key: &str) -> Result<(), SchedulerError> {
        if self.config.conditional && task.kind != TaskKind::Robots && task.validators.is_none() {
            task.validators = self.sightings.cached_fetch(task.url.as_str()).await?.map(|c| c.validators);
        }
        let host = task.host().to_string();
        let h = self.hosts.entry(host).or_default();
        h.in_flight = true;
        h.key = Some(key.to_string());
        self.slots.entry(key.to_string()).or_default().in_flight = true;
        self.in_flight += 1;
        let lease = Lease { due: Instant::now() + self.config.task_lease, task: task.clone(), renewals: 0 };
        self.outstanding.insert(task.url.to_string(), lease);
        self.bus.publish(Message::Fetch(task)).await?;
        Ok(())
    }

    /// Records a URL that ends without a request.
    async fn refuse(&mut self, task: FetchTask, reason: FailReason, detail: String) -> Result<(), SchedulerError> {
        let (url, host) = (task.url.to_string(), task.host().to_string());
        self.settle(no_request(task, reason, detail)).await?;
        self.keep(&url, &host).await
    }

    fn mark_ready(&mut self, host: &str) {
        let Some(h) = self.hosts.get(host) else { return };
        if h.in_flight || h.queued == 0 || h.parked || self.in_ready.contains(host) {
            return;
        }
        let slot_next = h.key.as_ref().and_then(|k| self.slots.get(k)).and_then(|s| s.next_allowed);
        let due = later(h.next_allowed, slot_next).unwrap_or_else(Instant::now);
        self.push_ready(host, due);
    }

    async fn offer(&mut self, c: Candidate) -> Result<(), SchedulerError> {
        self.summary.discovered += 1;
        match self.frontier.offer(c).await? {
            Admission::Queued { host } => {
                self.summary.queued += 1;
                self.queued += 1;
                self.hosts.entry(host.clone()).or_default().queued += 1;
                self.mark_ready(&host);
            }
            Admission::Rejected(r) => *self.summary.rejected.entry(r.code().to_string()).or_default() += 1,
        }
        Ok(())
    }

    /// A request ended: its host and address wait a full interval from now,
    /// and hosts parked on the address may go.
    fn release(&mut self, host: &str, ip: Option<IpAddr>) {
        let now = Instant::now();
        let interval = self.interval(host);
        let Some(h) = self.hosts.get_mut(host) else { return };
        if h.in_flight {
            h.in_flight = false;
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        h.next_allowed = later(h.next_allowed, Some(now + interval));
        let old = h.key.clone();
        // The address the connection really used keys the host from now on.
        if let Some(ip) = ip {
            h.key = Some(format!("ip:{ip}"));
        }
        let mut keys: Vec<Key> = old.into_iter().collect();
        if let Some(k) = self.hosts.get(host).and_then(|h| h.key.clone()) {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        let mut woken = Vec::new();
        for k in keys {
            let slot = self.slots.entry(k).or_default();
            slot.in_flight = false;
            slot.next_allowed = later(slot.next_allowed, Some(now + interval));
            woken.append(&mut slot.waiters);
        }
        for w in woken {
            if let Some(h) = self.hosts.get_mut(&w) {
                h.parked = false;
            }
            self.mark_ready(&w);
        }
    }

    async fn on_report(&mut self, report: FetchReport) -> Result<(), SchedulerError> {
        if self.outstanding.remove(report.task.url.as_str()).is_none() {
            tracing::debug!(url = %report.task.url, "a second report for a task; dropped");
            self.summary.duplicate_reports += 1;
            return Ok(());
        }
        let host = report.task.host().to_string();
        let url = report.task.url.to_string();
        self.summary.match_messages += u64::from(report.match_messages);
        self.release(&host, report.ip);
        if report.task.kind == TaskKind::Robots {
            self.on_robots(report).await?;
        } else if let Outcome::Throttled { status, retry_after_ms } = report.outcome {
            self.on_throttled(report.task, status, retry_after_ms).await?;
        } else {
            self.settle(report).await?;
        }
        self.keep(&url, &host).await?;
        self.mark_ready(&host);
        Ok(())
    }

    /// Records in the frontier store that `url` ended, with the summary and
    /// the host's next time: what a restarted scheduler resumes from.
    async fn keep(&mut self, url: &str, host: &str) -> Result<(), SchedulerError> {
        let wait = self
            .hosts
            .get(host)
            .and_then(|h| h.next_allowed)
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or_default();
        let ready_at = now_ms() + wait.as_millis() as i64;
        let state = serde_json::to_string(&self.summary).unwrap_or_default();
        self.frontier.store().settle(self.frontier.scan(), url, host, ready_at, &state).await?;
        Ok(())
    }

    async fn on_robots(&mut self, report: FetchReport) -> Result<(), SchedulerError> {
        let FetchReport { task, started_at_ms, ip, outcome, .. } = report;
        let origin = robots::origin(&task.url);
        let host = task.host().to_string();
        let attempts = match self.robots.get(&origin) {
            Some(RobotsState::Fetching { attempts }) => *attempts,
            _ => 0,
        };
        let ttl = self.config.robots_ttl;
        let (state, detail) = match &outcome {
            Outcome::Robots { status, body: Some(body) } if (200..300).contains(status) => {
                (RobotsState::from_body(&self.config.robots_agent, body, ttl), format!("HTTP {status}"))
            }
            Outcome::Robots { status, .. } if (400..500).contains(status) && *status != 429 => {
                (RobotsState::allow_all(ttl), format!("HTTP {status}: allow all"))
            }
            Outcome::Robots { status, .. } => self.unavailable(attempts + 1, format!("HTTP {status}")),
            // The origin's address is forbidden or does not resolve: every URL
            // of it would fail the same way, so none is requested.
            Outcome::Failed { reason: reason @ (FailReason::NetPolicy | FailReason::Dns), detail } => {
                (RobotsState::GaveUp { reason: *reason, detail: detail.clone() }, detail.clone())
            }
            Outcome::Failed { reason, detail } => {
                self.unavailable(attempts + 1, format!("{}: {detail}", reason.code()))
            }
            other => self.unavailable(attempts + 1, format!("unexpected answer {other:?}")),
        };
        let label = match &state {
            RobotsState::Ready { rules: Some(_), .. } => "rules",
            RobotsState::Ready { rules: None, .. } => "allow_all",
            RobotsState::Unavailable { .. } => "unavailable",
            RobotsState::GaveUp { .. } => "gave_up",
            RobotsState::Fetching { .. } => "fetching",
        };
        *self.summary.robots.entry(label.to_string()).or_default() += 1;
        if let Some(delay) = state.crawl_delay() {
            if delay > self.config.max_crawl_delay {
                let detail = format!(
                    "robots.txt asks for a Crawl-delay of {:.0} s, more than this scan's limit of {:.0} s",
                    delay.as_secs_f64(),
                    self.config.max_crawl_delay.as_secs_f64()
                );
                *self.summary.robots.entry("gave_up".into()).or_default() += 1;
                self.robots.insert(origin, RobotsState::GaveUp { reason: FailReason::CrawlDelay, detail });
            } else {
                let h = self.hosts.entry(host.clone()).or_default();
                h.crawl_delay = Some(delay);
                // The robots request itself counts: the next waits the delay.
                h.next_allowed = later(h.next_allowed, Some(Instant::now() + delay));
                self.robots.insert(origin, state);
            }
        } else {
            if let RobotsState::Unavailable { retry_at, .. } = &state {
                let h = self.hosts.entry(host.clone()).or_default();
                h.next_allowed = later(h.next_allowed, Some(*retry_at));
            }
            self.robots.insert(origin, state);
        }
        tracing::debug!(url = %task.url, label, %detail, "robots.txt");
        let rec = FetchRecord {
            scan: task.scan.clone(),
            url: task.url.to_string(),
            kind: "robots".into(),
            depth: 0,
            outcome: "robots".into(),
            reason: None,
            detail: Some(format!("{label}: {detail}")),
            ip: ip.map(|i| i.to_string()),
            at_ms: started_at_ms,
        };
        self.sightings.record_fetch(rec).await?;
        Ok(())
    }

    /// robots.txt could not be had: disallow all and retry with back-off,
    /// or give up after the configured attempts. A scan that ignores robots
    /// goes on without it.
    fn unavailable(&self, attempts: u32, detail: String) -> (RobotsState, String) {
        if self.config.ignore_robots {
            return (RobotsState::allow_all(self.config.robots_ttl), format!("{detail} (robots ignored)"));
        }
        if attempts >= self.config.robots_attempts {
            let detail = format!("robots.txt unavailable after {attempts} attempts, last: {detail}; not requested");
            return (RobotsState::GaveUp { reason: FailReason::RobotsUnavailable, detail: detail.clone() }, detail);
        }
        let wait = self.config.robots_retry * (1u32 << (attempts - 1).min(10));
        (RobotsState::Unavailable { attempts, retry_at: Instant::now() + wait }, detail)
    }

    async fn on_throttled(
        &mut self,
        mut task: FetchTask,
        status: u16,
        retry_after_ms: Option<u64>,
    ) -> Result<(), SchedulerError> {
        self.summary.throttled += 1;
        let host = task.host().to_string();
        let asked = retry_after_ms.map(Duration::from_millis).unwrap_or_default();
        if asked > self.config.max_retry_after || task.attempt >= self.config.throttle_retries {
            let detail = if asked > self.config.max_retry_after {
                format!("HTTP {status} with Retry-After {} s, more than this scan waits", asked.as_secs())
            } else {
                format!("HTTP {status} on {} attempts", task.attempt + 1)
            };
            return self.settle(no_request(task, FailReason::Throttled, detail)).await;
        }
        if let Some(h) = self.hosts.get_mut(&host) {
            h.slowdown = (h.slowdown + 1).min(6);
        }
        let wait = asked.max(self.interval(&host));
        let until = Instant::now() + wait;
        if let Some(h) = self.hosts.get_mut(&host) {
            h.next_allowed = later(h.next_allowed, Some(until));
            if let Some(slot) = h.key.as_ref().and_then(|k| self.slots.get_mut(k)) {
                slot.next_allowed = later(slot.next_allowed, Some(until));
            }
        }
        tracing::debug!(url = %task.url, status, wait_ms = wait.as_millis() as u64, "throttled; slowing the host down");
        task.attempt += 1;
        self.put_back(task).await
    }

    /// Records how a queued URL ended and follows what it found.
    async fn settle(&mut self, report: FetchReport) -> Result<(), SchedulerError> {
        let FetchReport { task, started_at_ms, ip, validators, outcome, .. } = report;
        let kind = match task.kind {
            TaskKind::Page => "page",
            TaskKind::Image => "image",
            TaskKind::Robots => "robots",
        };
        let mut rec = FetchRecord {
            scan: task.scan.clone(),
            url: task.url.to_string(),
            kind: kind.into(),
            depth: task.depth,
            outcome: String::new(),
            reason: None,
            detail: None,
            ip: ip.map(|i| i.to_string()),
            at_ms: started_at_ms,
        };
        let p = self.progress.clone();
        match outcome {
            Outcome::Page { links, images, data_images, data_ids } => {
                rec.outcome = "page".into();
                self.summary.pages += 1;
                self.summary.data_images += u64::from(data_images);
                p.pages.fetch_add(1, Ordering::Relaxed);
                p.data_images.fetch_add(u64::from(data_images), Ordering::Relaxed);
                self.sightings.record_fetch(rec).await?;
                if let Some(v) = validators {
                    let cached = CachedFetch {
                        validators: v,
                        blake3: None,
                        links: links.iter().map(Url::to_string).collect(),
                        images: images.iter().map(Url::to_string).collect(),
                        data_ids,
                    };
                    self.sightings.record_cached_fetch(task.url.as_str(), cached, started_at_ms).await?;
                }
                self.follow(&task, links, images).await?;
            }
            Outcome::Image { bytes, blake3 } => {
                rec.outcome = "image".into();
                rec.detail = Some(format!("{bytes} bytes"));
                self.summary.images += 1;
                self.summary.bytes += bytes;
                p.images.fetch_add(1, Ordering::Relaxed);
                p.bytes.fetch_add(bytes, Ordering::Relaxed);
                self.sightings.record_fetch(rec).await?;
                if let Some(v) = validators {
                    let cached = CachedFetch { validators: v, blake3: Some(blake3), ..CachedFetch::default() };
                    self.sightings.record_cached_fetch(task.url.as_str(), cached, started_at_ms).await?;
                }
            }
            Outcome::NotModified => {
                if self.replay(&task, ip, started_at_ms).await? {
                    rec.outcome = "not_modified".into();
                    self.summary.not_modified += 1;
                    self.sightings.record_fetch(rec).await?;
                } else {
                    // Nothing to replay (the store was reset): fetch it again,
                    // unconditionally.
                    let mut again = task;
                    again.validators = Some(Validators::default());
                    self.put_back(again).await?;
                }
            }
            Outcome::Redirect { location } => {
                rec.outcome = "redirect".into();
                rec.detail = Some(location.to_string());
                self.summary.redirects += 1;
                p.redirects.fetch_add(1, Ordering::Relaxed);
                self.sightings.record_fetch(rec).await?;
                if let (TaskKind::Image, Some(page)) = (task.kind, &task.referrer) {
                    // The page shows whatever the image URL redirects to, even
                    // when the target was already fetched from elsewhere.
                    let edge = MatchWork::PageImages {
                        scan: task.scan.clone(),
                        page_url: page.clone(),
                        images: vec![location.to_string()],
                        seen_at_ms: started_at_ms,
                    };
                    self.publish_match(edge).await?;
                }
                let c = Candidate {
                    url: location,
                    kind: task.kind,
                    depth: task.depth,
                    referrer: task.referrer.clone(),
                    hops: task.hops.saturating_add(1),
                };
                self.offer(c).await?;
            }
            Outcome::Failed { reason, detail } => {
                rec.outcome = "failed".into();
                rec.reason = Some(reason.code().into());
                rec.detail = Some(detail);
                *self.summary.failed.entry(reason.code().to_string()).or_default() += 1;
                p.failed.fetch_add(1, Ordering::Relaxed);
                self.sightings.record_fetch(rec).await?;
            }
            // Handled before settling; a stray one is a failure, not a loss.
            Outcome::Robots { status, .. } | Outcome::Throttled { status, .. } => {
                rec.outcome = "failed".into();
                rec.reason = Some(FailReason::HttpStatus.code().into());
                rec.detail = Some(format!("unexpected HTTP {status} answer for a {kind} task"));
                *self.summary.failed.entry(FailReason::HttpStatus.code().to_string()).or_default() += 1;
                p.failed.fetch_add(1, Ordering::Relaxed);
                self.sightings.record_fetch(rec).await?;
            }
        }
        Ok(())
    }

    /// Publishes matcher work, counted in the summary.
    async fn publish_match(&mut self, work: MatchWork) -> Result<(), SchedulerError> {
        self.bus.publish(Message::Match(work)).await?;
        self.summary.match_messages += 1;
        Ok(())
    }

    /// Offers a page's links and images.
    async fn follow(&mut self, page: &FetchTask, links: Vec<Url>, images: Vec<Url>) -> Result<(), SchedulerError> {
        for url in links {
            let c = Candidate {
                url,
                kind: TaskKind::Page,
                depth: page.depth + 1,
                referrer: Some(page.url.clone()),
                hops: 0,
            };
            self.offer(c).await?;
        }
        for url in images {
            let c =
                Candidate { url, kind: TaskKind::Image, depth: page.depth, referrer: Some(page.url.clone()), hops: 0 };
            self.offer(c).await?;
        }
        Ok(())
    }

    /// A 304: what the earlier fetch of the URL found stands, and is
    /// recorded again for this scan (sightings, edges, links). False when
    /// the earlier result is no longer in the store.
    async fn replay(&mut self, task: &FetchTask, ip: Option<IpAddr>, at_ms: i64) -> Result<bool, SchedulerError> {
        let Some(cached) = self.sightings.cached_fetch(task.url.as_str()).await? else { return Ok(false) };
        let host = task.host().to_string();
        match task.kind {
            TaskKind::Image => {
                let Some(work) = self
                    .stored_image(cached.blake3.as_deref(), task.url.as_str(), task.referrer.clone(), &host, ip, at_ms)
                    .await?
                else {
                    return Ok(false);
                };
                self.publish_match(work).await?;
            }
            TaskKind::Page => {
                let mut hashed = Vec::new();
                for id in &cached.data_ids {
                    let blake3 = id.rsplit_once("blake3=").map(|(_, b)| b);
                    match self.stored_image(blake3, id, Some(task.url.clone()), &host, ip, at_ms).await? {
                        Some(w) => hashed.push(w),
                        None => return Ok(false),
                    }
                }
                let mut shown = cached.images.clone();
                shown.extend(cached.data_ids.iter().cloned());
                if !shown.is_empty() {
                    let edge = MatchWork::PageImages {
                        scan: task.scan.clone(),
                        page_url: task.url.clone(),
                        images: shown,
                        seen_at_ms: at_ms,
                    };
                    self.publish_match(edge).await?;
                }
                for w in hashed {
                    self.publish_match(w).await?;
                }
                let parse = |v: &[String]| v.iter().filter_map(|u| Url::parse(u).ok()).collect::<Vec<_>>();
                self.follow(task, parse(&cached.links), parse(&cached.images)).await?;
            }
            TaskKind::Robots => return Ok(false),
        }
        Ok(true)
    }

    /// The hashes of a stored content, as a fresh sighting for this scan.
    async fn stored_image(
        &self,
        blake3_hex: Option<&str>,
        image_id: &str,
        page_url: Option<Url>,
        host: &str,
        ip: Option<IpAddr>,
        at_ms: i64,
    ) -> Result<Option<MatchWork>, SchedulerError> {
        let Some(key) = blake3_hex.and_then(|h| <[u8; 32]>::try_from(hex::decode(h).ok()?).ok()) else {
            return Ok(None);
        };
        let Some(content) = self.sightings.content(key).await? else { return Ok(None) };
        Ok(Some(MatchWork::ImageHashed {
            scan: self.frontier.scan().to_string(),
            image_id: image_id.to_string(),
            page_url,
            host: host.to_string(),
            ip,
            digests: content.digests,
            pdq: content.pdq,
            fetched_at_ms: at_ms,
        }))
    }
}
