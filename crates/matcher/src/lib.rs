//! The matcher role: look hashes up in the reference set, record every
//! sighting, score, and open cases.
//!
//! It consumes [`MatchWork`] from the bus: page→image edges and hashed
//! images, in any order and possibly more than once. Every write is
//! idempotent (see `hashscan-store`), so a redelivered message changes
//! nothing.
//!
//! Decisions:
//! * The reference set gives an image its own value ([`assess`]): an exact
//!   match scores its list's weight, a PDQ match within a list's radius a
//!   little less the farther it is, an `ignore` list suppresses. The risk
//!   score adds the circumstances where the image was seen (pages and hosts
//!   with listed material, analyst decisions) and is kept current by the
//!   [`rescore::Rescorer`] as evidence arrives.
//! * The reference set can be replaced while messages flow
//!   ([`Matcher::replace_reference`]): each message is assessed against one
//!   set, the one current when it started, and none is dropped or repeated.
//!   Images seen before a new set arrived are re-matched against what
//!   changed by [`retro`].
#![deny(missing_docs)]

mod assess;
pub mod reload;
pub mod rescore;
pub mod retro;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

pub use assess::{assess, near_value};
use hashscan_bus::{Bus, BusError, MatchWork, Message, PdqResult, Topic};
use hashscan_hash::Digests;
use hashscan_refset::ReferenceSet;
use hashscan_store::{Assessment, CaseStore, EvidenceStore, ImageRecord, SightingStore, StoreError};
use rescore::Rescorer;

/// The matcher failed in a way that needs the message redelivered.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The reference set could not be compared or built.
    #[error("reference set: {0}")]
    Reference(String),
}

/// Matches hashes and keeps the record.
pub struct Matcher {
    refset: RwLock<Arc<ReferenceSet>>,
    sightings: Arc<dyn SightingStore>,
    rescorer: Arc<Rescorer>,
    images: AtomicU64,
    hits: AtomicU64,
}

impl Matcher {
    /// A matcher against `refset` recording into `store`; images scoring at
    /// least `threshold` become cases.
    pub fn new<S>(refset: Arc<ReferenceSet>, store: Arc<S>, threshold: f64) -> Self
    where
        S: SightingStore + CaseStore + EvidenceStore + 'static,
    {
        Self::from_parts(refset, store.clone(), store.clone(), store, threshold)
    }

    /// As [`Matcher::new`], with each part of the store given on its own:
    /// what a caller holding an `Arc<dyn Store>` (a backend chosen at run
    /// time) passes, each argument upcast from the same handle.
    pub fn from_parts(
        refset: Arc<ReferenceSet>,
        sightings: Arc<dyn SightingStore>,
        evidence: Arc<dyn EvidenceStore>,
        cases: Arc<dyn CaseStore>,
        threshold: f64,
    ) -> Self {
        Self {
            refset: RwLock::new(refset),
            sightings,
            rescorer: Arc::new(Rescorer::new(evidence, cases, threshold)),
            images: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
    }

    /// The reference set in force.
    pub fn reference(&self) -> Arc<ReferenceSet> {
        match self.refset.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts a new reference set in force for every message that starts from
    /// now on, and returns the one it replaces.
    pub fn replace_reference(&self, new: Arc<ReferenceSet>) -> Arc<ReferenceSet> {
        let mut slot = match self.refset.write() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        std::mem::replace(&mut *slot, new)
    }

    /// The score threshold at which an image becomes a case.
    pub fn threshold(&self) -> f64 {
        self.rescorer.threshold()
    }

    /// The rescorer that keeps this matcher's scores current (for sweeps).
    pub fn rescorer(&self) -> Arc<Rescorer> {
        self.rescorer.clone()
    }

    /// Images hashed so far (including redeliveries).
    pub fn images(&self) -> u64 {
        self.images.load(Ordering::Relaxed)
    }

    /// Images scored at or above the threshold so far (an image raised
    /// again counts again).
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Scores an image against the reference set in force.
    pub fn assess(&self, d: &Digests, pdq: &PdqResult) -> Assessment {
        assess(&self.reference(), d, pdq)
    }

    /// Handles one piece of work; safe to call again with the same work.
    pub async fn handle(&self, work: MatchWork) -> Result<(), MatchError> {
        match work {
            MatchWork::PageImages { scan, page_url, images, seen_at_ms } => {
                self.sightings.record_edges(&scan, page_url.as_str(), &images, seen_at_ms).await?;
                let done = self.rescorer.after_page(page_url.as_str(), &scan, seen_at_ms).await?;
                self.hits.fetch_add(done.cases, Ordering::Relaxed);
            }
            MatchWork::ImageHashed { scan, image_id, page_url, host, ip, digests, pdq, fetched_at_ms } => {
                self.images.fetch_add(1, Ordering::Relaxed);
                self.sightings
                    .record_image(ImageRecord {
                        scan: scan.clone(),
                        image_id: image_id.clone(),
                        page_url: page_url.map(|u| u.to_string()),
                        host,
                        ip: ip.map(|i| i.to_string()),
                        digests,
                        pdq: pdq.clone(),
                        fetched_at_ms,
                    })
                    .await?;
                let assessment = self.assess(&digests, &pdq);
                self.sightings.record_assessment(digests.blake3, assessment).await?;
                let done = self.rescorer.after_image(digests.blake3, &scan, fetched_at_ms).await?;
                if done.cases > 0 {
                    self.hits.fetch_add(done.cases, Ordering::Relaxed);
                    tracing::debug!(scan = %scan, image = %image_id, cases = done.cases, "at or above the threshold");
                }
            }
        }
        Ok(())
    }
}

/// Told when a piece of matcher work is recorded (before its ack): cluster
/// mode counts them per scan to know when matching of a scan is complete.
#[async_trait::async_trait]
pub trait WorkDone: Send + Sync {
    /// `work` is recorded.
    async fn done(&self, work: &MatchWork) -> Result<(), String>;
}

/// Consumes matcher work with `concurrency` loops until the topic closes.
/// A message is acknowledged only after its writes are done. A failing write
/// is retried in place for about 15 s (the store may be restarting), then
/// the message goes back to the queue once, then it is dead-lettered with
/// the reason instead of being lost silently.
pub async fn run_matcher(bus: Arc<dyn Bus>, matcher: Arc<Matcher>, concurrency: usize) -> Result<(), BusError> {
    run_matcher_observed(bus, matcher, concurrency, None).await
}

/// [`run_matcher`], telling `observer` about every recorded piece of work.
pub async fn run_matcher_observed(
    bus: Arc<dyn Bus>,
    matcher: Arc<Matcher>,
    concurrency: usize,
    observer: Option<Arc<dyn WorkDone>>,
) -> Result<(), BusError> {
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let mut consumer = bus.consume(Topic::Match).await?;
        let (matcher, observer) = (matcher.clone(), observer.clone());
        loops.spawn(async move {
            while let Some(delivery) = consumer.next().await {
                let Message::Match(work) = delivery.message.clone() else {
                    delivery.reject("match queue got a message of another kind").await?;
                    continue;
                };
                // A store that is briefly away (a restart, a lock) is waited
                // for in place, with the message held, before giving it back.
                let mut result = Err(String::new());
                for pause_ms in [0u64, 250, 500, 1_000, 2_000, 4_000, 8_000] {
                    tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
                    result = matcher.handle(work.clone()).await.map_err(|e| e.to_string());
                    if let (Ok(()), Some(o)) = (&result, &observer) {
                        result = o.done(&work).await;
                    }
                    match &result {
                        Ok(()) => break,
                        Err(e) => tracing::warn!(error = %e, "matcher could not record work; retrying"),
                    }
                }
                let settled = match result {
                    Ok(()) => delivery.ack().await,
                    Err(e) if !delivery.redelivered => {
                        tracing::warn!(error = %e, "matcher could not record work; giving it back");
                        delivery.requeue().await
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "matcher could not record work twice; dead-lettering it");
                        delivery.reject(&e).await
                    }
                };
                // The broker went away: the message comes again; keep consuming.
                if let Err(e) = settled {
                    tracing::warn!(error = %e, "could not settle a match message; it will come again");
                }
            }
            Ok::<(), BusError>(())
        });
    }
    while let Some(r) = loops.join_next().await {
        r.map_err(|e| BusError::Broker(format!("match loop panicked: {e}")))??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashscan_hash::CryptoAlgo;
    use hashscan_store::{HitFilter, MatchKind, ScanStore, SqliteStore};

    fn refset(rows: &str) -> Arc<ReferenceSet> {
        Arc::new(ReferenceSet::parse("refs.csv", rows.as_bytes()).unwrap().0)
    }

    fn hashed(id: &str, data: &[u8]) -> MatchWork {
        MatchWork::ImageHashed {
            scan: "s1".into(),
            image_id: id.into(),
            // A page of its own: these tests are about the image itself.
            page_url: Some(url::Url::parse(&format!("http://www.site0.test/of/{id}")).unwrap()),
            host: "img.site0.test".into(),
            ip: None,
            digests: Digests::of(data),
            pdq: hashscan_bus::PdqResult::Failed { reason: "unknown_format".into(), detail: "test".into() },
            fetched_at_ms: 1,
        }
    }

    #[tokio::test]
    async fn each_algorithm_alone_makes_an_exact_hit_naming_it() {
        for algo in CryptoAlgo::ALL {
            let d = Digests::of(b"listed");
            let csv = format!("id,{algo}\nX1,{}\n", d.hex(algo));
            let store = Arc::new(SqliteStore::in_memory().unwrap());
            let m = Matcher::new(refset(&csv), store.clone(), 0.5);
            m.handle(hashed("http://img/a.png", b"listed")).await.unwrap();
            m.handle(hashed("http://img/b.png", b"benign")).await.unwrap();
            let hits = store.hits(HitFilter::default()).await.unwrap();
            assert_eq!(hits.len(), 1, "{algo}");
            assert_eq!(hits[0].match_algo.as_deref(), Some(algo.name()));
            assert_eq!(hits[0].match_kind, MatchKind::Exact);
            assert!(hits[0].reasons[0].note.contains("item X1"), "{:?}", hits[0].reasons);
            assert_eq!(hits[0].reference_version.as_deref(), Some(m.reference().version()));
        }
    }

    #[tokio::test]
    async fn strongest_algorithm_is_named_and_redelivery_is_harmless() {
        let d = Digests::of(b"listed");
        let csv = format!("md5,sha256\n{},{}\n", d.hex(CryptoAlgo::Md5), d.hex(CryptoAlgo::Sha256));
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let m = Matcher::new(refset(&csv), store.clone(), 0.5);
        for _ in 0..3 {
            m.handle(hashed("http://img/a.png", b"listed")).await.unwrap();
        }
        let hits = store.hits(HitFilter::default()).await.unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].match_algo.as_deref(), Some("sha256"));
        assert_eq!(store.counts(None).await.unwrap().cases, 1);
    }
}
