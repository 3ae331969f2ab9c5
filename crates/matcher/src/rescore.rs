//! Keeping risk scores current as evidence arrives.
//!
//! A score depends on the circumstances of an image, which keep changing:
//! a listed image found later on the same page raises every image there,
//! an analyst's decision raises or lowers a whole host. The [`Rescorer`]
//! reads the evidence back from the store (see `hashscan-store`'s
//! `EvidenceStore`), scores it (`hashscan-score`) and writes the score; a
//! score that crosses the threshold opens or raises the image's case.
//!
//! When it rescores:
//! * after an image is hashed: the image; when it is listed, also the
//!   images it shares a page with;
//! * after a page's images are recorded: every image on the page;
//! * at the end of a scan and after a decision: a sweep over the scan's
//!   images, with fresh host figures. Between sweeps host figures are
//!   cached for a few seconds, so a busy host costs one query per interval
//!   rather than one per image; the sweep makes the final scores exact
//!   whatever the order of arrival.
//!
//! Cases: an image the reference set matches (or that is near an image an
//! analyst confirmed) opens its case as soon as it scores; an image raised
//! by its circumstances alone opens one only in a [`Pass::Final`] — the
//! sweep, a decision, a retro-match — because mid-scan a page whose other
//! images have not all arrived can show a share the whole page does not
//! support, and cases do not close by themselves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hashscan_frontier::registrable_domain;
use hashscan_pdq::PdqHash;
use hashscan_score::{score, Evidence, HostEvidence, Scored, Weights};
use hashscan_store::{CaseStore, EvidenceStore, Reason, StoreError};

/// Images on one page rescored after a change there, at most.
const MAX_NEIGHBOURS: usize = 2_000;
/// PDQ distance within which an image near an analyst-confirmed one rises.
pub const CONFIRMED_RADIUS: u32 = 31;

type HostCache = HashMap<String, (Instant, HostEvidence)>;

/// Scores images from their circumstances and opens cases.
pub struct Rescorer {
    evidence: Arc<dyn EvidenceStore>,
    cases: Arc<dyn CaseStore>,
    threshold: f64,
    weights: Weights,
    ttl: Duration,
    hosts: Mutex<HostCache>,
    confirmed: Mutex<Option<(Instant, Arc<Vec<PdqHash>>)>>,
}

/// Whether the evidence is complete enough to open cases on circumstances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Messages are still arriving: scores are written, but only images
    /// listed themselves open cases.
    Running,
    /// The evidence is complete (end of a scan, a decision, a retro-match).
    Final,
}

/// What a batch of rescoring did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rescored {
    /// Images scored.
    pub scored: u64,
    /// Cases opened or raised.
    pub cases: u64,
}

impl Rescorer {
    /// A rescorer writing to `evidence` and `cases`; images scoring at least
    /// `threshold` become cases.
    pub fn new(evidence: Arc<dyn EvidenceStore>, cases: Arc<dyn CaseStore>, threshold: f64) -> Self {
        Self {
            evidence,
            cases,
            threshold,
            weights: Weights::default(),
            ttl: Duration::from_secs(5),
            hosts: Mutex::new(HashMap::new()),
            confirmed: Mutex::new(None),
        }
    }

    /// Uses other factor weights (evaluation and tuning).
    pub fn with_weights(mut self, weights: Weights) -> Self {
        self.weights = weights;
        self
    }

    /// The review threshold.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Drops cached host figures and confirmed hashes: the next scores read
    /// them fresh (before a sweep, after a decision).
    pub fn forget(&self) {
        if let Ok(mut h) = self.hosts.lock() {
            h.clear();
        }
        if let Ok(mut c) = self.confirmed.lock() {
            *c = None;
        }
    }

    async fn host(&self, origin: &str) -> Result<HostEvidence, StoreError> {
        if let Ok(h) = self.hosts.lock() {
            if let Some((at, e)) = h.get(origin) {
                if at.elapsed() < self.ttl {
                    return Ok(e.clone());
                }
            }
        }
        let e = self.evidence.host_evidence(origin).await?;
        if let Ok(mut h) = self.hosts.lock() {
            if h.len() > 10_000 {
                h.clear();
            }
            h.insert(origin.to_string(), (Instant::now(), e.clone()));
        }
        Ok(e)
    }

    async fn confirmed(&self) -> Result<Arc<Vec<PdqHash>>, StoreError> {
        if let Ok(c) = self.confirmed.lock() {
            if let Some((at, list)) = c.as_ref() {
                if at.elapsed() < self.ttl {
                    return Ok(list.clone());
                }
            }
        }
        let list = Arc::new(self.evidence.confirmed_pdqs().await?);
        if let Ok(mut c) = self.confirmed.lock() {
            *c = Some((Instant::now(), list.clone()));
        }
        Ok(list)
    }

    /// The evidence about one image, ready to score; `None` if never hashed.
    pub async fn evidence(&self, blake3: [u8; 32], now_ms: i64) -> Result<Option<Evidence>, StoreError> {
        let Some(raw) = self.evidence.evidence(blake3).await? else { return Ok(None) };
        let mut hosts = Vec::with_capacity(raw.origins.len());
        for (origin, seen_on) in &raw.origins {
            hosts.push(HostEvidence { seen_on: *seen_on, ..self.host(origin).await? });
        }
        let confirmed_near = match raw.pdq {
            Some(p) => {
                let list = self.confirmed().await?;
                list.iter()
                    .map(|c| c.hamming(&p))
                    .min()
                    .filter(|d| *d <= CONFIRMED_RADIUS)
                    .map(|d| (d, CONFIRMED_RADIUS))
            }
            None => None,
        };
        let listed_pages = raw
            .listed_pages
            .into_iter()
            .map(|mut p| {
                p.domain =
                    url::Url::parse(&p.url).ok().and_then(|u| u.host_str().map(registrable_domain)).unwrap_or_default();
                p
            })
            .collect();
        Ok(Some(Evidence {
            reference: raw.reference,
            ignored: raw.ignored,
            decision: raw.decision,
            confirmed_near,
            pages_total: raw.pages_total,
            pages_with_listed: raw.pages_with_listed,
            listed_pages,
            hosts,
            now_ms,
        }))
    }

    /// Scores one image, stores the score and opens or raises its case when
    /// it crosses the threshold (see [`Pass`]). `scan` names the scan a new
    /// case belongs to. Returns the score and whether a case was opened or raised.
    pub async fn rescore(
        &self,
        blake3: [u8; 32],
        scan: &str,
        now_ms: i64,
        pass: Pass,
    ) -> Result<Option<(Scored, bool)>, StoreError> {
        let Some(e) = self.evidence(blake3, now_ms).await? else { return Ok(None) };
        let scored = score(&e, &self.weights);
        let factors = scored
            .factors
            .iter()
            .map(|f| Reason { factor: f.name.clone(), value: f.value, weight: f.weight, note: f.note.clone() })
            .collect();
        self.evidence.record_score(blake3, scored.score, factors).await?;
        let own = scored
            .factors
            .iter()
            .any(|f| matches!(f.name.as_str(), "reference" | "near_confirmed" | "analyst_confirmed"));
        let open = scored.score >= self.threshold && (own || pass == Pass::Final);
        if open {
            self.cases.open_case(blake3, scored.score, scan, now_ms).await?;
        }
        Ok(Some((scored, open)))
    }

    /// [`Rescorer::rescore`] for many images.
    pub async fn rescore_all(
        &self,
        keys: &[[u8; 32]],
        scan: &str,
        now_ms: i64,
        pass: Pass,
    ) -> Result<Rescored, StoreError> {
        let mut done = Rescored::default();
        for key in keys {
            if let Some((_, opened)) = self.rescore(*key, scan, now_ms, pass).await? {
                done.scored += 1;
                done.cases += u64::from(opened);
            }
        }
        Ok(done)
    }

    /// After an image was hashed: it, and its page neighbours when it is
    /// listed evidence for them.
    pub async fn after_image(&self, blake3: [u8; 32], scan: &str, now_ms: i64) -> Result<Rescored, StoreError> {
        let Some((own, opened)) = self.rescore(blake3, scan, now_ms, Pass::Running).await? else {
            return Ok(Rescored::default());
        };
        let mut done = Rescored { scored: 1, cases: u64::from(opened) };
        let more = self.raise_neighbours(blake3, &own, scan, now_ms, Pass::Running).await?;
        done.scored += more.scored;
        done.cases += more.cases;
        Ok(done)
    }

    /// When `scored` (the score of `blake3`) makes it evidence for others —
    /// it is listed or confirmed — rescores the images it shares a page with.
    pub async fn raise_neighbours(
        &self,
        blake3: [u8; 32],
        scored: &Scored,
        scan: &str,
        now_ms: i64,
        pass: Pass,
    ) -> Result<Rescored, StoreError> {
        // What the store counts as listed (see `LISTED` there).
        if !scored.factors.iter().any(|f| f.name == "reference" || f.name == "analyst_confirmed") {
            return Ok(Rescored::default());
        }
        let n = self.evidence.neighbours(blake3, MAX_NEIGHBOURS).await?;
        self.rescore_all(&n, scan, now_ms, pass).await
    }

    /// After a page's images were recorded: every image on it.
    pub async fn after_page(&self, page_url: &str, scan: &str, now_ms: i64) -> Result<Rescored, StoreError> {
        let keys = self.evidence.contents_on_page(page_url, MAX_NEIGHBOURS).await?;
        self.rescore_all(&keys, scan, now_ms, Pass::Running).await
    }

    /// After an analyst's decision on `blake3`: the image, the images it
    /// shares a page with and every image on the hosts of its pages (a
    /// confirmation raises them, a `not_abuse` takes its weight away).
    pub async fn after_decision(&self, blake3: [u8; 32], scan: &str, now_ms: i64) -> Result<Rescored, StoreError> {
        self.forget();
        let mut keys = vec![blake3];
        keys.extend(self.evidence.neighbours(blake3, MAX_NEIGHBOURS).await?);
        if let Some(raw) = self.evidence.evidence(blake3).await? {
            for (origin, _) in &raw.origins {
                keys.extend(self.evidence.contents_on_origin(origin, 10 * MAX_NEIGHBOURS).await?);
            }
        }
        keys.sort_unstable();
        keys.dedup();
        self.rescore_all(&keys, scan, now_ms, Pass::Final).await
    }

    /// Every image of a scan, with fresh host figures: after the scan's
    /// last message, the scores are exactly those of the whole evidence.
    pub async fn sweep(&self, scan: &str, now_ms: i64) -> Result<Rescored, StoreError> {
        let started = Instant::now();
        self.forget();
        let keys = self.evidence.scan_contents(scan).await?;
        let done = self.rescore_all(&keys, scan, now_ms, Pass::Final).await?;
        let secs = started.elapsed().as_secs_f64();
        tracing::info!(scan, scored = done.scored, cases = done.cases, secs, "scan rescored");
        Ok(done)
    }
}
