//! The contract every results store keeps: checks that run against any
//! [`Store`], so the embedded SQLite store and the PostgreSQL store are
//! held to the same behaviour (idempotent writes, one case per image, one
//! winner per claim, the same queue order, the same audit trail).
//!
//! A backend's test file calls [`run_all`] with a [`Backend`] that makes a
//! fresh, empty store for each check. Every check runs (a failure does not
//! hide the ones after it) and the test fails naming each failed check.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use hashscan_hash::Digests;

use crate::{Assessment, ImageRecord, MatchKind, PdqResult, Reason, Store};

mod cases;
mod evidence;
mod review_cases;
pub use review_cases::store_with_cases;
mod review_users;
mod scans;
mod sightings;

/// One check: it gets an empty store and panics when the store breaks the
/// contract.
pub type CheckFn = fn(Arc<dyn Store>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// A check and its name (what a failure report shows).
pub struct Check {
    /// The check's path (`hashscan_store::testkit::<area>::<fn>`);
    /// `HASHSCAN_STORE_CHECK=<part>` runs only the checks whose path has it.
    pub name: &'static str,
    /// The check.
    pub run: CheckFn,
}

/// Makes `Check`s from async fns taking `Arc<dyn Store>`.
macro_rules! checks {
    ($($f:ident),* $(,)?) => {
        vec![$($crate::testkit::Check { name: concat!(module_path!(), "::", stringify!($f)), run: |s| Box::pin($f(s)) }),*]
    };
}
pub(crate) use checks;

/// Where fresh stores come from.
#[async_trait]
pub trait Backend: Send + Sync {
    /// An empty store for the check named `check`.
    async fn fresh(&self, check: &'static str) -> Arc<dyn Store>;
    /// Called after `check` ran (passed or not): drop its database.
    async fn cleanup(&self, _check: &'static str) {}
}

/// Every check of the contract.
pub fn all() -> Vec<Check> {
    let mut v = sightings::checks();
    v.extend(cases::checks());
    v.extend(scans::checks());
    v.extend(evidence::checks());
    v.extend(review_users::checks());
    v.extend(review_cases::checks());
    v
}

/// Runs every check on a fresh store from `backend`; panics at the end
/// naming every check that failed, with its message.
pub async fn run_all(backend: &dyn Backend) {
    run(backend, all()).await;
}

/// Runs `checks` (e.g. a filtered [`all`]) as [`run_all`] does.
pub async fn run(backend: &dyn Backend, checks: Vec<Check>) {
    let filter = std::env::var("HASHSCAN_STORE_CHECK").ok();
    let mut failed = Vec::new();
    let mut ran = 0;
    for c in checks {
        if filter.as_deref().is_some_and(|f| !c.name.contains(f)) {
            continue;
        }
        ran += 1;
        let store = backend.fresh(c.name).await;
        // A panic inside the spawned task comes back as a JoinError, so
        // one broken check does not stop the others.
        let outcome = tokio::spawn((c.run)(store)).await;
        backend.cleanup(c.name).await;
        if let Err(e) = outcome {
            let msg = match e.try_into_panic() {
                Ok(p) => p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into()),
                Err(e) => e.to_string(),
            };
            failed.push(format!("{}: {msg}", c.name));
        }
    }
    assert!(ran > 0, "no store check matched HASHSCAN_STORE_CHECK={filter:?}");
    assert!(failed.is_empty(), "{} of {ran} store checks failed:\n{}", failed.len(), failed.join("\n"));
}

/// An image record on host `img.site0.test` whose bytes are `data` and
/// whose PDQ failed (so it needs no decodable image).
pub fn image(scan: &str, id: &str, page: Option<&str>, data: &[u8], at: i64) -> ImageRecord {
    ImageRecord {
        scan: scan.into(),
        image_id: id.into(),
        page_url: page.map(Into::into),
        host: "img.site0.test".into(),
        ip: Some("127.77.0.2".into()),
        digests: Digests::of(data),
        pdq: PdqResult::Failed { reason: "unknown_format".into(), detail: "test bytes".into() },
        fetched_at_ms: at,
    }
}

/// An exact SHA-1 match on reference version `abcd`.
pub fn exact() -> Assessment {
    Assessment {
        score: 1.0,
        match_kind: MatchKind::Exact,
        match_algo: Some("sha1".into()),
        distance: Some(0),
        reference_version: Some("abcd".into()),
        reasons: vec![Reason { factor: "exact_match".into(), value: 1.0, weight: 1.0, note: "sha1 listed".into() }],
    }
}
