//! Retro-matching: when a new reference version arrives, every image ever
//! stored is matched against what changed, and new hits become cases with
//! their original circumstances (the sightings are already in the store).
//!
//! Decision: match the stored hashes against the *difference* between the
//! old and the new set ([`ReferenceSet::difference`]), not the whole new
//! set: a day's additions are small, so a pass over ten million stored
//! images costs one cheap lookup each. Only images the difference hits are
//! assessed again, against the whole new set (so ignore lists and better
//! matches elsewhere still count). Without the old set (a first run, or a
//! lost copy) the whole new set is the difference.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hashscan_bus::PdqResult;
use hashscan_refset::ReferenceSet;
use hashscan_store::{CaseStore, SightingStore};

use crate::rescore::{Pass, Rescorer};
use serde::Serialize;

use crate::{assess, MatchError};

/// Rows read from the store per round trip.
const PAGE: usize = 20_000;

/// What a retro-matching pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RetroReport {
    /// The version the store had been matched against, if known.
    pub from_version: Option<String>,
    /// The version applied.
    pub to_version: String,
    /// True when the whole new set was matched (no old set to diff against).
    pub full: bool,
    /// Digests and PDQ hashes in the difference.
    pub changed_items: u64,
    /// Stored images examined.
    pub scanned: u64,
    /// Images the difference hit, assessed again.
    pub rematched: u64,
    /// Of those, images that are cases now (new or raised).
    pub cases: u64,
    /// Wall time.
    pub elapsed_secs: f64,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Matches every stored image against what `new` adds to `old`, records the
/// new assessments, rescores them and the images seen next to them (a new
/// listed image raises its old neighbours), opens cases at the rescorer's
/// threshold, and records `new` as applied. Idempotent: running it again
/// changes nothing.
pub async fn rematch<S>(
    store: &S,
    old: Option<&ReferenceSet>,
    new: &ReferenceSet,
    rescorer: &Rescorer,
) -> Result<RetroReport, MatchError>
where
    S: SightingStore + CaseStore + ?Sized,
{
    let started = Instant::now();
    let from_version = store.reference_applied().await?;
    let mut report = RetroReport { from_version, to_version: new.version().to_string(), ..RetroReport::default() };
    if report.from_version.as_deref() == Some(new.version()) {
        report.elapsed_secs = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let diff_owned;
    let diff: &ReferenceSet = match old.filter(|o| report.from_version.as_deref() == Some(o.version())) {
        Some(old) => {
            diff_owned = new.difference(old).map_err(|e| MatchError::Reference(e.to_string()))?;
            &diff_owned
        }
        None => {
            report.full = true;
            new
        }
    };
    report.changed_items = hashscan_refset::Algo::ALL.iter().map(|a| diff.count(*a) as u64).sum();
    if report.changed_items > 0 {
        let mut after = None;
        loop {
            let page = store.contents_page(after, PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(*last);
            report.scanned += page.len() as u64;
            for (_, content) in page {
                let pdq = match &content.pdq {
                    PdqResult::Hashed { hash, quality, .. } => Some((hash, *quality)),
                    PdqResult::Failed { .. } => None,
                };
                if diff.match_image(&content.digests, pdq).matches.is_empty() {
                    continue;
                }
                report.rematched += 1;
                let key = content.digests.blake3;
                store.record_assessment(key, assess(new, &content.digests, &content.pdq)).await?;
                // The scan that saw it first: read only for the few that match.
                let first = store.content(key).await?.map(|c| c.scan).unwrap_or_default();
                let now = now_ms();
                // Stored evidence is complete: a final pass.
                if let Some((scored, opened)) = rescorer.rescore(key, &first, now, Pass::Final).await? {
                    report.cases += u64::from(opened);
                    rescorer.raise_neighbours(key, &scored, &first, now, Pass::Final).await?;
                }
            }
        }
    }
    store.set_reference_applied(new.version(), now_ms()).await?;
    report.elapsed_secs = started.elapsed().as_secs_f64();
    tracing::info!(
        from = report.from_version.as_deref().unwrap_or("none"),
        to = %report.to_version,
        scanned = report.scanned,
        rematched = report.rematched,
        cases = report.cases,
        secs = report.elapsed_secs,
        "retro-matching done"
    );
    Ok(report)
}
