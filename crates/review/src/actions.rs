//! What analysts do to cases — claim, release, decide, undo, decide a
//! host in bulk — shared by the JSON API and the HTML forms. Each store call
//! is one audited transaction; a decision or undo is then fed back into
//! scoring.

use hashscan_frontier::registrable_domain;
use hashscan_store::review::{Changed, ClaimInfo, ClaimOutcome, ClaimedOutcome, QueueFilter, QueueRow};
use serde::Serialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::params::DecisionInput;
use crate::{ms, App};

/// What the rescoring after a decision did.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Rescore {
    /// Images rescored.
    pub rescored: u64,
    /// Of them, at or above the threshold.
    pub at_or_above_threshold: u64,
}

/// The answer to a decision or undo.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DecisionDone {
    pub case_id: i64,
    pub before: String,
    pub after: String,
    #[serde(flatten)]
    pub rescore: Rescore,
}

/// Rows read per step when bringing the host table up to date.
pub(crate) const SYNC_BATCH: usize = 5_000;
/// Steps at most per request: `serve` keeps the table current in the
/// background, so a request only takes in what arrived just now (a first
/// catch-up of a million cases took 140 s inside one request). One step:
/// with four, host-filtered requests during a large catch-up on
/// PostgreSQL waited up to 5 s (docs/benchmarks.md).
const SYNC_STEPS: usize = 1;

fn holder_message(held: Option<ClaimInfo>) -> ApiError {
    match held {
        Some(h) => ApiError::conflict(format!(
            "case is claimed by {} until {}",
            h.user,
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(h.expires_at_ms).unwrap_or(0))
            )
        )),
        None => ApiError::conflict("claim the case first (you hold no live claim on it)"),
    }
}

impl App {
    /// Brings the hosts-and-domains table of cases up to date (bounded).
    pub(crate) async fn sync_places(&self) -> Result<(), ApiError> {
        for _ in 0..SYNC_STEPS {
            if self.store().sync_places(registrable_domain, SYNC_BATCH).await? == 0 {
                break;
            }
        }
        Ok(())
    }

    /// A page of the queue, the host table made current first when it is filtered by one.
    pub(crate) async fn queue(&self, f: QueueFilter) -> Result<Vec<QueueRow>, ApiError> {
        if f.host.is_some() || f.domain.is_some() {
            self.sync_places().await?;
        }
        Ok(self.store().queue(f).await?)
    }

    pub(crate) async fn claim(&self, caller: &Caller, case_id: i64) -> Result<ClaimInfo, ApiError> {
        let lease = ms(self.config().lease);
        match self.store().claim(case_id, caller.user.id, lease, caller.actor(), self.now()).await? {
            ClaimOutcome::Won(c) => Ok(c),
            ClaimOutcome::Held(h) => Err(holder_message(Some(h))),
            ClaimOutcome::NoCase => Err(ApiError::not_found(format!("no case {case_id}"))),
        }
    }

    pub(crate) async fn release(&self, caller: &Caller, case_id: i64) -> Result<(), ApiError> {
        match self.store().release(case_id, caller.user.id, caller.actor(), self.now()).await? {
            ClaimedOutcome::Done(_) => Ok(()),
            other => Err(outcome_error(case_id, other)),
        }
    }

    pub(crate) async fn decide(
        &self,
        caller: &Caller,
        case_id: i64,
        d: &DecisionInput,
    ) -> Result<DecisionDone, ApiError> {
        let now = self.now();
        let out = self.store().decide_claimed(case_id, caller.user.id, &d.status, &d.note, caller.actor(), now).await?;
        match out {
            ClaimedOutcome::Done(Some(changed)) => self.rescored(changed, now).await,
            other => Err(outcome_error(case_id, other)),
        }
    }

    pub(crate) async fn undo(&self, caller: &Caller, case_id: i64) -> Result<DecisionDone, ApiError> {
        let now = self.now();
        match self.store().undo_claimed(case_id, caller.user.id, caller.actor(), now).await? {
            ClaimedOutcome::Done(Some(changed)) => self.rescored(changed, now).await,
            other => Err(outcome_error(case_id, other)),
        }
    }

    /// Decides every open unclaimed case on a host (at most the bulk limit).
    pub(crate) async fn decide_host(
        &self,
        caller: &Caller,
        host: &str,
        d: &DecisionInput,
    ) -> Result<(Vec<DecisionDone>, bool), ApiError> {
        caller.require(&["lead", "admin"])?;
        self.sync_places().await?;
        let now = self.now();
        let limit = self.config().bulk_limit;
        let changed = self.store().decide_host(host, &d.status, &d.note, caller.actor(), limit, now).await?;
        let more = changed.len() >= limit;
        let mut done = Vec::with_capacity(changed.len());
        for c in changed {
            done.push(self.rescored(c, now).await?);
        }
        Ok((done, more))
    }

    /// Feeds a changed case back into scoring: the image, its page
    /// neighbours and the images of its hosts.
    async fn rescored(&self, c: Changed, now: i64) -> Result<DecisionDone, ApiError> {
        let r = self.0.rescorer.after_decision(c.blake3, &c.scan, now).await?;
        Ok(DecisionDone {
            case_id: c.case_id,
            before: c.before,
            after: c.after,
            rescore: Rescore { rescored: r.scored, at_or_above_threshold: r.cases },
        })
    }
}

fn outcome_error(case_id: i64, o: ClaimedOutcome) -> ApiError {
    match o {
        ClaimedOutcome::NoCase => ApiError::not_found(format!("no case {case_id}")),
        ClaimedOutcome::NotHolder(h) => holder_message(h),
        ClaimedOutcome::NothingToUndo => ApiError::conflict("nothing of yours to undo on this case in this lease"),
        ClaimedOutcome::Conflict(now) => ApiError::conflict(format!("the case changed since (now {now}); not undone")),
        ClaimedOutcome::Done(_) => ApiError::internal("an action reported done without a change"),
    }
}
