//! The scheduler role: owns a scan's frontier and decides what is fetched when.
//!
//! It offers seeds and every discovered URL to the [`Frontier`], hands out
//! [`FetchTask`]s on the bus as hosts become due, records every fetch
//! outcome, and ends the scan when nothing is queued or in flight.
//!
//! Decision: politeness is enforced here, and measured from the **end** of
//! the previous request. A host has at most one task in flight, and its next
//! task is released no earlier than the host's interval after the scheduler
//! learned that the previous one finished. Measuring from the start instead
//! would let the server see two requests closer than the interval whenever
//! the first one spent longer on the way (a new connection, a slow resolver)
//! than the second; from the end, the server can never see them closer.
#![deny(missing_docs)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hashscan_bus::{Bus, BusError, FetchReport, MatchWork, Message, Outcome, TaskKind, Topic};
use hashscan_frontier::{Admission, Candidate, Frontier, FrontierStore, StoreError as FrontierError};
use hashscan_store::{FetchRecord, SightingStore, StoreError};
use serde::Serialize;
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
    /// Failed fetches.
    pub failed: AtomicU64,
    /// Image bytes hashed.
    pub bytes: AtomicU64,
    /// Tasks waiting in the frontier.
    pub queued: AtomicU64,
    /// Tasks handed out and not reported yet.
    pub in_flight: AtomicU64,
}

/// Where every URL of a scan ended up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
    /// Failed fetches, by reason.
    pub failed: BTreeMap<String, u64>,
    /// Image bytes hashed.
    pub bytes: u64,
}

impl ScanSummary {
    /// Failed fetches in total.
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// How the scheduler paces a scan.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Minimum time between two requests to one host.
    pub host_interval: Duration,
    /// Tasks in flight across all hosts (bounds the fetch queue).
    pub max_in_flight: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self { host_interval: Duration::from_secs(1), max_in_flight: 32 }
    }
}

#[derive(Default)]
struct HostSlot {
    next_allowed: Option<Instant>,
    in_flight: bool,
    queued: u64,
}

/// One scan's scheduler.
pub struct Scheduler<S> {
    frontier: Frontier<S>,
    bus: Arc<dyn Bus>,
    sightings: Arc<dyn SightingStore>,
    config: SchedulerConfig,
    progress: Arc<Progress>,
    hosts: HashMap<String, HostSlot>,
    ready: BinaryHeap<Reverse<(Instant, String)>>,
    in_ready: HashSet<String>,
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
        Self {
            frontier,
            bus,
            sightings,
            config,
            progress,
            hosts: HashMap::new(),
            ready: BinaryHeap::new(),
            in_ready: HashSet::new(),
            in_flight: 0,
            queued: 0,
            summary: ScanSummary::default(),
        }
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
        for seed in seeds {
            self.offer(Candidate { url: seed, kind: TaskKind::Page, depth: 0, referrer: None, hops: 0 }).await?;
        }
        let result = self.drive(&mut rx).await;
        forward.abort();
        result?;
        Ok(self.summary)
    }

    async fn drive(
        &mut self,
        rx: &mut tokio::sync::mpsc::Receiver<hashscan_bus::Delivery>,
    ) -> Result<(), SchedulerError> {
        loop {
            self.dispatch().await?;
            if self.in_flight == 0 && self.queued == 0 {
                return Ok(());
            }
            let wake = self.ready.peek().map(|Reverse((t, _))| *t);
            let delivery = match wake {
                Some(t) if self.in_flight < self.config.max_in_flight => {
                    tokio::select! {
                        d = rx.recv() => d,
                        _ = tokio::time::sleep_until(t.into()) => continue,
                    }
                }
                _ => rx.recv().await,
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

    /// Hands out every task whose host is due, within the in-flight cap.
    async fn dispatch(&mut self) -> Result<(), SchedulerError> {
        let now = Instant::now();
        while self.in_flight < self.config.max_in_flight {
            let Some(Reverse((due, host))) = self.ready.peek().cloned() else { break };
            if due > now {
                break;
            }
            self.ready.pop();
            self.in_ready.remove(&host);
            let Some(task) = self.frontier.store().dequeue(self.frontier.scan(), &host).await? else {
                if let Some(slot) = self.hosts.get_mut(&host) {
                    self.queued -= slot.queued;
                    slot.queued = 0;
                }
                continue;
            };
            let slot = self.hosts.entry(host).or_default();
            slot.queued = slot.queued.saturating_sub(1);
            slot.in_flight = true;
            // Until the fetcher reports the real start, assume it starts now.
            slot.next_allowed = Some(now + self.config.host_interval);
            self.queued -= 1;
            self.in_flight += 1;
            self.bus.publish(Message::Fetch(task)).await?;
        }
        self.progress.queued.store(self.queued, Ordering::Relaxed);
        self.progress.in_flight.store(self.in_flight as u64, Ordering::Relaxed);
        Ok(())
    }

    fn mark_ready(&mut self, host: &str) {
        let Some(slot) = self.hosts.get(host) else { return };
        if slot.in_flight || slot.queued == 0 || self.in_ready.contains(host) {
            return;
        }
        let due = slot.next_allowed.unwrap_or_else(Instant::now);
        self.in_ready.insert(host.to_string());
        self.ready.push(Reverse((due, host.to_string())));
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

    async fn on_report(&mut self, report: FetchReport) -> Result<(), SchedulerError> {
        let FetchReport { task, started_at_ms, ip, outcome } = report;
        let host = task.host().to_string();
        if let Some(slot) = self.hosts.get_mut(&host) {
            if slot.in_flight {
                slot.in_flight = false;
                self.in_flight = self.in_flight.saturating_sub(1);
            }
            // The request is over by now: its successor waits a full interval.
            slot.next_allowed = Some(Instant::now() + self.config.host_interval);
        }
        let kind = match task.kind {
            TaskKind::Page => "page",
            TaskKind::Image => "image",
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
        let p = &self.progress;
        match outcome {
            Outcome::Page { links, images, data_images } => {
                rec.outcome = "page".into();
                self.summary.pages += 1;
                self.summary.data_images += u64::from(data_images);
                p.pages.fetch_add(1, Ordering::Relaxed);
                p.data_images.fetch_add(u64::from(data_images), Ordering::Relaxed);
                self.sightings.record_fetch(rec).await?;
                for url in links {
                    let c = Candidate {
                        url,
                        kind: TaskKind::Page,
                        depth: task.depth + 1,
                        referrer: Some(task.url.clone()),
                        hops: 0,
                    };
                    self.offer(c).await?;
                }
                for url in images {
                    let c = Candidate {
                        url,
                        kind: TaskKind::Image,
                        depth: task.depth,
                        referrer: Some(task.url.clone()),
                        hops: 0,
                    };
                    self.offer(c).await?;
                }
            }
            Outcome::Image { bytes } => {
                rec.outcome = "image".into();
                rec.detail = Some(format!("{bytes} bytes"));
                self.summary.images += 1;
                self.summary.bytes += bytes;
                p.images.fetch_add(1, Ordering::Relaxed);
                p.bytes.fetch_add(bytes, Ordering::Relaxed);
                self.sightings.record_fetch(rec).await?;
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
                    self.bus.publish(Message::Match(edge)).await?;
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
        }
        self.mark_ready(&host);
        Ok(())
    }
}
