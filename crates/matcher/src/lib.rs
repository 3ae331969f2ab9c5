//! The matcher role: look hashes up in the reference set, record every
//! sighting, score, and open cases.
//!
//! It consumes [`MatchWork`] from the bus: page→image edges and hashed
//! images, in any order and possibly more than once. Every write is
//! idempotent (see `hashscan-store`), so a redelivered message changes
//! nothing.
//!
//! Decisions:
//! * For now an image's score comes from the reference set alone
//!   ([`assess`]): an exact match scores its list's weight, a PDQ match
//!   within a list's radius a little less the farther it is, an `ignore`
//!   list suppresses; the circumstance-based risk score extends this later
//!   without touching the loop.
//! * The reference set can be replaced while messages flow
//!   ([`Matcher::replace_reference`]): each message is assessed against one
//!   set, the one current when it started, and none is dropped or repeated.
//!   Images seen before a new set arrived are re-matched against what
//!   changed by [`retro`].
#![deny(missing_docs)]

mod assess;
pub mod reload;
pub mod retro;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

pub use assess::{assess, near_value};
use hashscan_bus::{Bus, BusError, MatchWork, Message, PdqResult, Topic};
use hashscan_hash::Digests;
use hashscan_refset::ReferenceSet;
use hashscan_store::{Assessment, CaseStore, ImageRecord, SightingStore, StoreError};

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
    cases: Arc<dyn CaseStore>,
    threshold: f64,
    images: AtomicU64,
    hits: AtomicU64,
}

impl Matcher {
    /// A matcher against `refset`; images scoring at least `threshold` become cases.
    pub fn new(
        refset: Arc<ReferenceSet>,
        sightings: Arc<dyn SightingStore>,
        cases: Arc<dyn CaseStore>,
        threshold: f64,
    ) -> Self {
        Self {
            refset: RwLock::new(refset),
            sightings,
            cases,
            threshold,
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
        self.threshold
    }

    /// Images hashed so far (including redeliveries).
    pub fn images(&self) -> u64 {
        self.images.load(Ordering::Relaxed)
    }

    /// Case openings so far (including re-openings of the same case).
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
                let score = assessment.score;
                self.sightings.record_assessment(digests.blake3, assessment).await?;
                if score >= self.threshold {
                    self.cases.open_case(digests.blake3, score, &scan, fetched_at_ms).await?;
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(scan = %scan, image = %image_id, score, "case opened");
                }
            }
        }
        Ok(())
    }
}

/// Consumes matcher work with `concurrency` loops until the topic closes.
/// A message is acknowledged only after its writes are done; a store
/// failure rejects it with the reason instead of losing it silently.
pub async fn run_matcher(bus: Arc<dyn Bus>, matcher: Arc<Matcher>, concurrency: usize) -> Result<(), BusError> {
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let mut consumer = bus.consume(Topic::Match).await?;
        let matcher = matcher.clone();
        loops.spawn(async move {
            while let Some(delivery) = consumer.next().await {
                let Message::Match(work) = delivery.message.clone() else {
                    delivery.reject("match queue got a message of another kind").await?;
                    continue;
                };
                match matcher.handle(work).await {
                    Ok(()) => delivery.ack().await?,
                    Err(e) => {
                        tracing::error!(error = %e, "matcher could not record work");
                        delivery.reject(&e.to_string()).await?;
                    }
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
    use hashscan_store::{HitFilter, MatchKind, SqliteStore};

    fn refset(rows: &str) -> Arc<ReferenceSet> {
        Arc::new(ReferenceSet::parse("refs.csv", rows.as_bytes()).unwrap().0)
    }

    fn hashed(id: &str, data: &[u8]) -> MatchWork {
        MatchWork::ImageHashed {
            scan: "s1".into(),
            image_id: id.into(),
            page_url: Some(url::Url::parse("http://www.site0.test/").unwrap()),
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
            let m = Matcher::new(refset(&csv), store.clone(), store.clone(), 0.5);
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
        let m = Matcher::new(refset(&csv), store.clone(), store.clone(), 0.5);
        for _ in 0..3 {
            m.handle(hashed("http://img/a.png", b"listed")).await.unwrap();
        }
        let hits = store.hits(HitFilter::default()).await.unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].match_algo.as_deref(), Some("sha256"));
        assert_eq!(store.counts(None).await.unwrap().cases, 1);
    }
}
