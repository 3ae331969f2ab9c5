//! Is it still online? Re-checks the images of cases and records when they
//! went, so the hotline can report time to removal per host.
//!
//! Decisions:
//! * One GET per image URL, conditional when an earlier fetch left
//!   validators (a 304 costs the host nothing), through the same guarded
//!   client as a scan (network policy, size caps, user agent). The body is
//!   hashed in the fetcher's bounded buffer and dropped like any other:
//!   "still online" means *the same content* (BLAKE3) is still served, not
//!   merely that the URL answers.
//! * 404/410, a body that is no longer an image, or other content at the
//!   URL count as gone; timeouts, refused connections, DNS failures, 5xx and
//!   throttling count as *unknown* this time (a host that is down for an
//!   hour has not removed anything). An image is online when any of its
//!   URLs still serves it, gone when every URL says so.
//! * Politely: URLs are grouped by host, one request at a time per host
//!   with `host_interval` from the end of one to the start of the next;
//!   hosts are checked side by side up to `concurrency`. Only URLs a scan
//!   already fetched are asked for again, under the robots rules in force
//!   then; robots.txt is not fetched anew.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hashscan_bus::{FailReason, FetchTask, Outcome, TaskKind};
use hashscan_fetch::Fetcher;
use hashscan_store::{CaseStore, SightingStore, StoreError};
use serde::Serialize;
use url::Url;

/// A re-check could not be done.
#[derive(Debug, thiserror::Error)]
pub enum RecheckError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How to re-check.
#[derive(Debug, Clone)]
pub struct RecheckOptions {
    /// Case statuses whose images are checked.
    pub statuses: Vec<String>,
    /// Pause between two requests to one host.
    pub host_interval: Duration,
    /// Hosts checked at the same time.
    pub concurrency: usize,
    /// Redirects followed per URL.
    pub max_redirects: u8,
}

impl Default for RecheckOptions {
    fn default() -> Self {
        Self {
            statuses: vec!["open".into(), "confirmed".into(), "escalate".into()],
            host_interval: Duration::from_secs(1),
            concurrency: 16,
            max_redirects: 5,
        }
    }
}

/// What one URL said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The same content is served.
    Online,
    /// Removed, or other content is served there now.
    Gone(String),
    /// No answer this time (down, throttled, DNS); nothing concluded.
    Unknown(String),
}

/// Figures of one host.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HostFigures {
    /// Cases with an image URL on the host.
    pub cases: u64,
    /// Of those, still online.
    pub online: u64,
    /// Gone from every URL.
    pub offline: u64,
    /// Nothing concluded this time.
    pub unknown: u64,
}

/// What a re-check did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecheckReport {
    /// Cases checked.
    pub cases: u64,
    /// Still online.
    pub online: u64,
    /// Gone (removed or replaced) from every URL.
    pub offline: u64,
    /// Nothing concluded (no URL answered).
    pub unknown: u64,
    /// Requests sent.
    pub requests: u64,
    /// Per host of the image URLs.
    pub hosts: BTreeMap<String, HostFigures>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Asks for one URL (following redirects) and says whether `blake3` is
/// still served there. Returns the answer and the requests sent.
pub async fn check_url<S: SightingStore + ?Sized>(
    fetcher: &Fetcher,
    store: &S,
    url: &Url,
    blake3: &[u8; 32],
    max_redirects: u8,
) -> (Seen, u64) {
    let mut url = url.clone();
    let mut requests = 0;
    for hops in 0..=max_redirects {
        let validators = store.cached_fetch(url.as_str()).await.ok().flatten().and_then(|c| {
            // A 304 stands for the content the earlier fetch found: only
            // useful when that was this image.
            (c.blake3.as_deref() == Some(hex::encode(blake3).as_str())).then_some(c.validators)
        });
        let task = FetchTask {
            scan: "recheck".into(),
            url: url.clone(),
            kind: TaskKind::Image,
            depth: 0,
            referrer: None,
            hops,
            validators,
            attempt: 0,
        };
        requests += 1;
        let fetched = fetcher.fetch(task).await;
        return (
            match fetched.report.outcome {
                Outcome::Image { blake3: got, .. } if got == hex::encode(blake3) => Seen::Online,
                Outcome::Image { .. } => Seen::Gone("other content is served there now".into()),
                Outcome::NotModified => Seen::Online,
                Outcome::Redirect { location } => {
                    url = location;
                    continue;
                }
                Outcome::Throttled { status, .. } => Seen::Unknown(format!("throttled (HTTP {status})")),
                Outcome::Failed { reason, detail } => match reason {
                    FailReason::HttpStatus if detail.contains("404") || detail.contains("410") => Seen::Gone(detail),
                    FailReason::NotAnImage | FailReason::TooLarge => Seen::Gone(format!("{}: {detail}", reason.code())),
                    _ => Seen::Unknown(format!("{}: {detail}", reason.code())),
                },
                other => Seen::Unknown(format!("unexpected answer to an image request: {other:?}")),
            },
            requests,
        );
    }
    (Seen::Unknown(format!("more than {max_redirects} redirects")), requests)
}

/// Re-checks every case in `options.statuses` and records the result.
pub async fn recheck<S>(
    store: Arc<S>,
    fetcher: Arc<Fetcher>,
    options: &RecheckOptions,
) -> Result<RecheckReport, RecheckError>
where
    S: SightingStore + CaseStore + ?Sized + 'static,
{
    let items = store.cases_to_recheck(&options.statuses).await?;
    // Every (case, URL) pair, grouped by host.
    let mut by_host: BTreeMap<String, Vec<(usize, Url)>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        for u in &item.urls {
            if let Ok(url) = Url::parse(u) {
                by_host.entry(url.host_str().unwrap_or_default().to_string()).or_default().push((i, url));
            }
        }
    }
    let semaphore = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (host, urls) in by_host {
        let (store, fetcher, semaphore) = (store.clone(), fetcher.clone(), semaphore.clone());
        let keys: Vec<[u8; 32]> = urls.iter().map(|(i, _)| items[*i].blake3).collect();
        let (interval, max_redirects) = (options.host_interval, options.max_redirects);
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let mut seen = Vec::with_capacity(urls.len());
            let mut requests = 0;
            for (k, (i, url)) in urls.iter().enumerate() {
                if k > 0 {
                    tokio::time::sleep(interval).await;
                }
                let (s, n) = check_url(&fetcher, &*store, url, &keys[k], max_redirects).await;
                requests += n;
                seen.push((*i, s));
            }
            (host, seen, requests)
        });
    }
    let mut per_case: Vec<Vec<Seen>> = vec![Vec::new(); items.len()];
    let mut case_hosts: Vec<Vec<String>> = vec![Vec::new(); items.len()];
    let mut report = RecheckReport::default();
    while let Some(done) = tasks.join_next().await {
        let Ok((host, seen, requests)) = done else { continue };
        report.requests += requests;
        for (i, s) in seen {
            per_case[i].push(s);
            if !case_hosts[i].contains(&host) {
                case_hosts[i].push(host.clone());
            }
        }
    }
    let at = now_ms();
    for (i, item) in items.iter().enumerate() {
        let seen = &per_case[i];
        let verdict = if seen.contains(&Seen::Online) {
            Some(true)
        } else if !seen.is_empty() && seen.iter().all(|s| matches!(s, Seen::Gone(_))) {
            Some(false)
        } else {
            None
        };
        report.cases += 1;
        match verdict {
            Some(online) => {
                store.record_check(item.blake3, at, online).await?;
                if online {
                    report.online += 1;
                } else {
                    report.offline += 1;
                }
            }
            None => report.unknown += 1,
        }
        for host in &case_hosts[i] {
            let h = report.hosts.entry(host.clone()).or_default();
            h.cases += 1;
            match verdict {
                Some(true) => h.online += 1,
                Some(false) => h.offline += 1,
                None => h.unknown += 1,
            }
        }
        tracing::debug!(image = %hex::encode(item.blake3), ?verdict, answers = ?seen, "re-checked");
    }
    Ok(report)
}
