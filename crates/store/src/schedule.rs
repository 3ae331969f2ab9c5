//! Recurring scans and what earlier runs teach the next one.
//!
//! A schedule is a scan definition that runs again every interval. Its
//! state is kept here so `hashscan scan list|pause|resume|stop` (another
//! process) can see and steer the process that runs it. Before each run the
//! scan asks where listed material was found ([`ScanStore::hotspot_pages`])
//! and which hosts never had any ([`ScanStore::host_findings`]), to look
//! there first and spend less elsewhere.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::evidence::{origin_of, LISTED};
use crate::{FetchRecord, ScanRecord, ScanStore, SqliteStore, StoreCounts, StoreError};

/// The states of a schedule: `active` (runs when due), `paused` (waits),
/// `stopped` (its process ends; a new `hashscan scan --every` starts it again),
/// `finished` (ran its last run).
pub const SCHEDULE_STATES: [&str; 4] = ["active", "paused", "stopped", "finished"];

/// A recurring scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    /// Its id; run n > 1 is recorded as scan `ID-n`.
    pub id: String,
    /// Interval between the starts of two runs (ms).
    pub every_ms: i64,
    /// One of [`SCHEDULE_STATES`].
    pub state: String,
    /// Runs done.
    pub runs: i64,
    /// Stop after this many runs.
    pub max_runs: Option<i64>,
    /// Scan id of the last run.
    pub last_run: Option<String>,
    /// When the next run is due (Unix ms).
    pub next_run_at: Option<i64>,
    /// When it was defined (Unix ms).
    pub created_at: i64,
}

/// What earlier scans found on one host (by page origin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFindings {
    /// Host name.
    pub host: String,
    /// Pages with images seen there.
    pub pages: u64,
    /// Of those, pages with listed or confirmed material.
    pub listed_pages: u64,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Schedule> {
    Ok(Schedule {
        id: r.get(0)?,
        every_ms: r.get(1)?,
        state: r.get(2)?,
        runs: r.get(3)?,
        max_runs: r.get(4)?,
        last_run: r.get(5)?,
        next_run_at: r.get(6)?,
        created_at: r.get(7)?,
    })
}

const COLUMNS: &str = "id, every_ms, state, runs, max_runs, last_run, next_run_at, created_at";

#[async_trait]
impl ScanStore for SqliteStore {
    /// Records the start of a scan.
    async fn begin_scan(&self, scan: ScanRecord) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO scans (id, started_at, config, reference_version) VALUES (?1, ?2, ?3, ?4)",
                params![scan.id, scan.started_at_ms, scan.config_json, scan.reference_version],
            )?;
            Ok(())
        })
        .await
    }

    /// Records the end of a scan with its summary (JSON).
    async fn finish_scan(&self, id: &str, at_ms: i64, summary_json: String) -> Result<(), StoreError> {
        let id = id.to_string();
        self.run(move |c| {
            c.execute(
                "UPDATE scans SET finished_at = ?2, summary = ?3 WHERE id = ?1",
                params![id, at_ms, summary_json],
            )?;
            Ok(())
        })
        .await
    }

    /// Row counts, optionally for one scan.
    async fn counts(&self, scan: Option<String>) -> Result<StoreCounts, StoreError> {
        self.run(move |c| {
            let n = |sql: &str| -> Result<u64, StoreError> {
                Ok(c.query_row(sql, params![scan], |r| r.get::<_, i64>(0))? as u64)
            };
            Ok(StoreCounts {
                images: n("SELECT count(*) FROM images WHERE ?1 IS NULL OR scan = ?1")?,
                contents: n("SELECT count(DISTINCT blake3) FROM images WHERE ?1 IS NULL OR scan = ?1")?,
                edges: n("SELECT count(*) FROM edges WHERE ?1 IS NULL OR scan = ?1")?,
                sightings: n("SELECT count(*) FROM edges e JOIN images i USING (scan, image_id)
                              WHERE ?1 IS NULL OR e.scan = ?1")?,
                cases: n("SELECT count(*) FROM cases WHERE ?1 IS NULL OR scan = ?1")?,
                fetches: n("SELECT count(*) FROM fetches WHERE ?1 IS NULL OR scan = ?1")?,
            })
        })
        .await
    }

    /// Every fetch outcome of a scan, for summaries and tests.
    async fn fetches(&self, scan: &str) -> Result<Vec<FetchRecord>, StoreError> {
        let scan = scan.to_string();
        self.run(move |c| {
            let mut st = c.prepare(
                "SELECT scan, url, kind, depth, outcome, reason, detail, ip, at FROM fetches WHERE scan = ?1 ORDER BY at, url",
            )?;
            let rows = st.query_map(params![scan], |r| {
                Ok(FetchRecord {
                    scan: r.get(0)?,
                    url: r.get(1)?,
                    kind: r.get(2)?,
                    depth: r.get(3)?,
                    outcome: r.get(4)?,
                    reason: r.get(5)?,
                    detail: r.get(6)?,
                    ip: r.get(7)?,
                    at_ms: r.get(8)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// The most recent scan id, so `hits` can default to it.
    async fn latest_scan(&self) -> Result<Option<String>, StoreError> {
        self.run(|c| {
            Ok(c.query_row("SELECT id FROM scans ORDER BY started_at DESC LIMIT 1", [], |r| r.get(0)).optional()?)
        })
        .await
    }

    /// Defines (or redefines, from run 0) a recurring scan, active and due now.
    async fn put_schedule(
        &self,
        id: &str,
        every_ms: i64,
        max_runs: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        self.run(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO schedules (id, every_ms, state, runs, max_runs, next_run_at, created_at)
                 VALUES (?1, ?2, 'active', 0, ?3, ?4, ?4)",
                params![id, every_ms, max_runs, now_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// One schedule.
    async fn schedule(&self, id: &str) -> Result<Option<Schedule>, StoreError> {
        let id = id.to_string();
        self.run(move |c| {
            Ok(c.query_row(&format!("SELECT {COLUMNS} FROM schedules WHERE id = ?1"), params![id], row).optional()?)
        })
        .await
    }

    /// Every schedule, by id.
    async fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        self.run(move |c| {
            let mut st = c.prepare(&format!("SELECT {COLUMNS} FROM schedules ORDER BY id"))?;
            let rows = st.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Pauses, resumes (`active`), stops or finishes a schedule.
    async fn set_schedule_state(&self, id: &str, state: &str) -> Result<(), StoreError> {
        if !SCHEDULE_STATES.contains(&state) {
            return Err(StoreError::BadStatus(state.to_string()));
        }
        let (id, state) = (id.to_string(), state.to_string());
        self.run(move |c| {
            if c.execute("UPDATE schedules SET state = ?2 WHERE id = ?1", params![id, state])? == 0 {
                return Err(StoreError::NoSchedule(id));
            }
            Ok(())
        })
        .await
    }

    /// Records that run `run_id` of a schedule finished; the next is due at `next_run_at`.
    async fn schedule_ran(&self, id: &str, run_id: &str, next_run_at: i64) -> Result<(), StoreError> {
        let (id, run_id) = (id.to_string(), run_id.to_string());
        self.run(move |c| {
            c.execute(
                "UPDATE schedules SET runs = runs + 1, last_run = ?2, next_run_at = ?3 WHERE id = ?1",
                params![id, run_id, next_run_at],
            )?;
            Ok(())
        })
        .await
    }

    /// Every scan recorded here: id, start, end (Unix ms) and summary JSON,
    /// newest first, at most `limit`.
    async fn scan_list(&self, limit: usize) -> Result<Vec<(String, i64, Option<i64>, Option<String>)>, StoreError> {
        self.run(move |c| {
            let mut st =
                c.prepare("SELECT id, started_at, finished_at, summary FROM scans ORDER BY started_at DESC LIMIT ?1")?;
            let rows = st
                .query_map(params![limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Pages where listed or confirmed material was seen, most such images
    /// first, at most `limit`: where a recurring scan looks first.
    async fn hotspot_pages(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        self.run(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT e.page_url FROM edges e JOIN images i ON i.scan = e.scan AND i.image_id = e.image_id
                      JOIN contents c ON c.blake3 = i.blake3 LEFT JOIN cases k ON k.blake3 = i.blake3
                 WHERE {LISTED}
                 GROUP BY e.page_url ORDER BY count(DISTINCT i.blake3) DESC, e.page_url LIMIT ?1"
            ))?;
            let rows =
                st.query_map(params![limit as i64], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Per host of the pages a scan saw: pages, and pages with listed or
    /// confirmed material (as known now).
    async fn host_findings(&self, scan: &str) -> Result<Vec<HostFindings>, StoreError> {
        let scan = scan.to_string();
        self.run(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT e.page_url, max(CASE WHEN {LISTED} THEN 1 ELSE 0 END)
                 FROM edges e JOIN images i ON i.scan = e.scan AND i.image_id = e.image_id
                      JOIN contents c ON c.blake3 = i.blake3 LEFT JOIN cases k ON k.blake3 = i.blake3
                 WHERE e.scan = ?1 GROUP BY e.page_url"
            ))?;
            let mut by_host: std::collections::BTreeMap<String, HostFindings> = Default::default();
            let rows = st.query_map(params![scan], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for r in rows {
                let (page, listed) = r?;
                let authority = origin_of(&page).and_then(|o| o.split_once("://")).map_or("", |(_, a)| a);
                let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h).to_ascii_lowercase();
                let f = by_host.entry(host.clone()).or_insert(HostFindings { host, pages: 0, listed_pages: 0 });
                f.pages += 1;
                f.listed_pages += listed as u64;
            }
            Ok(by_host.into_values().collect())
        })
        .await
    }
}
