//! The scans of a cluster, in Redis: what was submitted, what a scheduler is
//! running, and each scan's progress and final summary.
//!
//! Decision: a scan waits in a list and a scheduler takes it with `BLMOVE`
//! into a `running` list, atomically; a scheduler that dies leaves the scan
//! in `running`, where the next scheduler to start finds and resumes it.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use hashscan_scheduler::ScanPlan;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

/// Everything that defines one cluster scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanSpec {
    /// Scan id: letters, digits, `.`, `_`, `-`.
    pub id: String,
    /// What to crawl and how (its `crawl.max_in_flight` is the scheduler's).
    #[serde(flatten)]
    pub plan: ScanPlan,
    /// Set when the scan recurs: what the next run is made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurring: Option<Recurring>,
}

/// A recurring cluster scan: run n > 1 is scan `SCHEDULE-n`, submitted by
/// the scheduler that finished run n − 1, due `every_ms` after its start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recurring {
    /// The schedule's name (the first run's id).
    pub schedule: String,
    /// Interval between the starts of two runs (ms).
    pub every_ms: u64,
    /// Stop after this many runs.
    pub max_runs: Option<u64>,
    /// Ids of the runs before this one, oldest first.
    pub runs: Vec<String>,
    /// The plan as submitted; each run learns from the earlier ones on top of it.
    pub base: ScanPlan,
}

/// States of a cluster schedule (as in embedded mode).
pub const SCHEDULE_STATES: [&str; 4] = ["active", "paused", "stopped", "finished"];

/// A registry failure.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Redis failed or is unreachable.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A stored record could not be read.
    #[error("scan {scan}: stored {what} is unreadable: {detail}")]
    Corrupt {
        /// The scan.
        scan: String,
        /// Which record.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// The request is invalid.
    #[error("{0}")]
    Invalid(String),
}

/// Where a scan is in its life.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanState {
    /// `queued`, `running`, `finished` or `failed`.
    pub status: String,
    /// Progress counters and times, as strings (Redis hash fields).
    pub fields: BTreeMap<String, String>,
}

/// The scan registry of one deployment.
#[derive(Clone)]
pub struct Registry {
    con: ConnectionManager,
    prefix: String,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Checks a scan id: it names Redis keys, queues and files.
pub fn check_scan_id(id: &str) -> Result<(), RegistryError> {
    let ok = !id.is_empty()
        && id.len() <= 100
        && id != "registry"
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "scan id {id:?}: use 1–100 letters, digits, '.', '_' or '-' (and not \"registry\")"
        )))
    }
}

impl Registry {
    /// Connects; the connection reconnects by itself after outages.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, RegistryError> {
        let client = redis::Client::open(url)?;
        let con = ConnectionManager::new(client).await?;
        Ok(Self { con, prefix: prefix.to_string() })
    }

    fn key(&self, what: &str) -> String {
        format!("{}:registry:{what}", self.prefix)
    }

    /// Submits a scan; refuses an id already used.
    pub async fn submit(&self, spec: &ScanSpec) -> Result<(), RegistryError> {
        self.submit_at(spec, None).await
    }

    /// Submits a scan that waits until `due_ms` (Unix ms) before a scheduler
    /// may take it; `None` queues it at once. A recurring scan's first
    /// submission also defines its schedule, `active`.
    pub async fn submit_at(&self, spec: &ScanSpec, due_ms: Option<i64>) -> Result<(), RegistryError> {
        check_scan_id(&spec.id)?;
        if spec.plan.seeds.is_empty() {
            return Err(RegistryError::Invalid("a scan needs at least one seed".into()));
        }
        let body = serde_json::to_string(spec).map_err(|e| RegistryError::Invalid(e.to_string()))?;
        let mut con = self.con.clone();
        let fresh: bool = con.set_nx(self.key(&format!("spec:{}", spec.id)), body).await?;
        if !fresh {
            return Err(RegistryError::Invalid(format!("scan {} exists already; choose another id", spec.id)));
        }
        let state = self.key(&format!("state:{}", spec.id));
        let mut pipe = redis::pipe();
        pipe.atomic().hset(&state, "submitted_at_ms", now_ms()).zadd(self.key("all"), &spec.id, now_ms());
        match due_ms {
            Some(due) => pipe.hset(&state, "status", "scheduled").hset(&state, "due_at_ms", due).zadd(
                self.key("due"),
                &spec.id,
                due,
            ),
            None => pipe.hset(&state, "status", "queued").rpush(self.key("queue"), &spec.id),
        };
        if let Some(r) = spec.recurring.as_ref().filter(|r| r.runs.is_empty()) {
            pipe.hset(self.key("schedules"), &r.schedule, "active");
        }
        pipe.query_async::<()>(&mut con).await?;
        Ok(())
    }

    /// Moves scans whose time has come onto the queue, unless their
    /// schedule is paused (they wait) or stopped (they never run).
    async fn promote_due(&self) -> Result<(), RegistryError> {
        let mut con = self.con.clone();
        let due: Vec<String> = con.zrangebyscore_limit(self.key("due"), "-inf", now_ms(), 0, 10).await?;
        for id in due {
            let removed: u64 = con.zrem(self.key("due"), &id).await?;
            if removed == 0 {
                continue; // another scheduler took it
            }
            let body: Option<String> = con.get(self.key(&format!("spec:{id}"))).await?;
            let schedule = body
                .and_then(|b| serde_json::from_str::<ScanSpec>(&b).ok())
                .and_then(|s| s.recurring.map(|r| r.schedule));
            let state: Option<String> = match &schedule {
                Some(name) => con.hget(self.key("schedules"), name).await?,
                None => None,
            };
            let scan_state = self.key(&format!("state:{id}"));
            match state.as_deref() {
                Some("paused") => {
                    let _: () = con.zadd(self.key("due"), &id, now_ms() + 1_000).await?;
                }
                Some("stopped") => {
                    let _: () = con.hset(&scan_state, "status", "cancelled").await?;
                }
                _ => {
                    redis::pipe()
                        .atomic()
                        .hset(&scan_state, "status", "queued")
                        .rpush(self.key("queue"), &id)
                        .query_async::<()>(&mut con)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Sets a schedule's state (`active`, `paused`, `stopped`, `finished`).
    pub async fn set_schedule(&self, schedule: &str, state: &str) -> Result<(), RegistryError> {
        if !SCHEDULE_STATES.contains(&state) {
            return Err(RegistryError::Invalid(format!("schedule state {state:?}: use one of {SCHEDULE_STATES:?}")));
        }
        let mut con = self.con.clone();
        let known: bool = con.hexists(self.key("schedules"), schedule).await?;
        if !known {
            return Err(RegistryError::Invalid(format!("no recurring scan {schedule:?} on this cluster")));
        }
        let _: () = con.hset(self.key("schedules"), schedule, state).await?;
        Ok(())
    }

    /// Every schedule and its state.
    pub async fn schedules(&self) -> Result<BTreeMap<String, String>, RegistryError> {
        let mut con = self.con.clone();
        Ok(con.hgetall(self.key("schedules")).await?)
    }

    /// The scan a scheduler should run: one it was running when it died, or
    /// the next submitted one (or `None` after a pause of `wait_secs`).
    pub async fn take(&self, wait_secs: f64) -> Result<Option<ScanSpec>, RegistryError> {
        self.promote_due().await?;
        let mut con = self.con.clone();
        let running: Vec<String> = con.lrange(self.key("running"), 0, 0).await?;
        let id = match running.into_iter().next() {
            Some(id) => Some(id),
            None => {
                // LMOVE and a pause, not BLMOVE: a blocking command would
                // hold the shared, multiplexed connection (and trip its
                // response timeout).
                let id: Option<String> = redis::cmd("LMOVE")
                    .arg(self.key("queue"))
                    .arg(self.key("running"))
                    .arg("LEFT")
                    .arg("RIGHT")
                    .query_async(&mut con)
                    .await?;
                if id.is_none() {
                    tokio::time::sleep(std::time::Duration::from_secs_f64(wait_secs.clamp(0.0, 60.0))).await;
                }
                id
            }
        };
        let Some(id) = id else { return Ok(None) };
        let body: Option<String> = con.get(self.key(&format!("spec:{id}"))).await?;
        let body =
            body.ok_or_else(|| RegistryError::Corrupt { scan: id.clone(), what: "spec", detail: "missing".into() })?;
        let spec = serde_json::from_str(&body).map_err(|e| RegistryError::Corrupt {
            scan: id.clone(),
            what: "spec",
            detail: e.to_string(),
        })?;
        Ok(Some(spec))
    }

    /// Sets fields of a scan's state (progress, status, times).
    pub async fn update(&self, scan: &str, fields: &[(&str, String)]) -> Result<(), RegistryError> {
        let mut con = self.con.clone();
        let _: () = con.hset_multiple(self.key(&format!("state:{scan}")), fields).await?;
        Ok(())
    }

    /// Marks a scan done (`finished` or `failed`) with its summary, and
    /// takes it off the running list.
    pub async fn finish(&self, scan: &str, status: &str, summary: &str) -> Result<(), RegistryError> {
        let mut con = self.con.clone();
        let state = self.key(&format!("state:{scan}"));
        redis::pipe()
            .atomic()
            .hset(&state, "status", status)
            .hset(&state, "finished_at_ms", now_ms())
            .hset(&state, "summary", summary)
            .lrem(self.key("running"), 0, scan)
            .query_async::<()>(&mut con)
            .await?;
        Ok(())
    }

    /// A scan's state, if it exists.
    pub async fn state(&self, scan: &str) -> Result<Option<ScanState>, RegistryError> {
        let mut con = self.con.clone();
        let mut fields: BTreeMap<String, String> = con.hgetall(self.key(&format!("state:{scan}"))).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let status = fields.remove("status").unwrap_or_default();
        Ok(Some(ScanState { status, fields }))
    }

    /// Deletes every key of this deployment's prefix (registry, frontiers,
    /// counters): for tearing a deployment or a test down. Bounded walk.
    pub async fn forget_everything(&self) -> Result<u64, RegistryError> {
        let mut con = self.con.clone();
        let pattern = format!("{}:*", self.prefix);
        let mut cursor = 0u64;
        let mut removed = 0u64;
        for _ in 0..100_000 {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut con)
                .await?;
            if !keys.is_empty() {
                removed += redis::cmd("UNLINK").arg(&keys).query_async::<u64>(&mut con).await?;
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        Ok(removed)
    }

    /// Every scan id, oldest first.
    pub async fn scans(&self) -> Result<Vec<String>, RegistryError> {
        let mut con = self.con.clone();
        Ok(con.zrange(self.key("all"), 0, -1).await?)
    }
}
