//! Scans and recurring scans on PostgreSQL: the SQLite store's SQL
//! (`crates/store/src/schedule.rs`) with `ON CONFLICT … DO UPDATE` for
//! `OR REPLACE`, `IS DISTINCT FROM` for `IS NOT` and text ordered
//! `COLLATE "C"` (SQLite's BINARY) whatever the database's collation.

use std::collections::BTreeMap;

use async_trait::async_trait;
use hashscan_store::{
    origin_of, FetchRecord, HostFindings, ScanRecord, ScanStore, Schedule, StoreCounts, StoreError, SCHEDULE_STATES,
};
use tokio_postgres::Row;

use crate::evidence::LISTED;
use crate::sightings::{get, narrow, sql_limit};
use crate::{db, PgStore};

/// The columns of a schedule, in the order [`schedule_of`] reads them.
const COLUMNS: &str = "id, every_ms, state, runs, max_runs, last_run, next_run_at, created_at";

/// A row of [`COLUMNS`].
fn schedule_of(r: &Row) -> Result<Schedule, StoreError> {
    Ok(Schedule {
        id: get(r, 0)?,
        every_ms: get(r, 1)?,
        state: get(r, 2)?,
        runs: get(r, 3)?,
        max_runs: get(r, 4)?,
        last_run: get(r, 5)?,
        next_run_at: get(r, 6)?,
        created_at: get(r, 7)?,
    })
}

/// A `count(*)` as the unsigned count [`StoreCounts`] holds.
fn count(r: &Row) -> Result<u64, StoreError> {
    narrow(get(r, 0)?, "counts", "count")
}

#[async_trait]
impl ScanStore for PgStore {
    /// Records the start of a scan; a scan started again under the same id
    /// replaces the old record, end and summary included (SQLite's
    /// `INSERT OR REPLACE`).
    async fn begin_scan(&self, scan: ScanRecord) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO scans (id, started_at, config, reference_version) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, finished_at = NULL,
                   config = excluded.config, reference_version = excluded.reference_version, summary = NULL",
                &[&scan.id, &scan.started_at_ms, &scan.config_json, &scan.reference_version],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Records the end of a scan with its summary (JSON); an unknown id
    /// changes nothing, as in SQLite.
    async fn finish_scan(&self, id: &str, at_ms: i64, summary_json: String) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute("UPDATE scans SET finished_at = $2, summary = $3 WHERE id = $1", &[&id, &at_ms, &summary_json])
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Row counts, optionally for one scan; one snapshot for all six, so a
    /// summary never mixes two moments of a running scan.
    async fn counts(&self, scan: Option<String>) -> Result<StoreCounts, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let mut n = Vec::with_capacity(6);
        for sql in [
            "SELECT count(*) FROM images WHERE $1::text IS NULL OR scan = $1",
            "SELECT count(DISTINCT blake3) FROM images WHERE $1::text IS NULL OR scan = $1",
            "SELECT count(*) FROM edges WHERE $1::text IS NULL OR scan = $1",
            "SELECT count(*) FROM edges e JOIN images i USING (scan, image_id) WHERE $1::text IS NULL OR e.scan = $1",
            "SELECT count(*) FROM cases WHERE $1::text IS NULL OR scan = $1",
            "SELECT count(*) FROM fetches WHERE $1::text IS NULL OR scan = $1",
        ] {
            let st = tx.prepare_cached(sql).await.map_err(db)?;
            n.push(count(&tx.query_one(&st, &[&scan]).await.map_err(db)?)?);
        }
        tx.commit().await.map_err(db)?;
        Ok(StoreCounts { images: n[0], contents: n[1], edges: n[2], sightings: n[3], cases: n[4], fetches: n[5] })
    }

    /// Every fetch outcome of a scan, by time, then URL.
    async fn fetches(&self, scan: &str) -> Result<Vec<FetchRecord>, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT scan, url, kind, depth, outcome, reason, detail, ip, at FROM fetches WHERE scan = $1
                 ORDER BY at, url COLLATE \"C\"",
            )
            .await
            .map_err(db)?;
        let rows = client.query(&st, &[&scan]).await.map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(FetchRecord {
                    scan: get(r, 0)?,
                    url: get(r, 1)?,
                    kind: get(r, 2)?,
                    depth: narrow(get(r, 3)?, "fetches", "depth")?,
                    outcome: get(r, 4)?,
                    reason: get(r, 5)?,
                    detail: get(r, 6)?,
                    ip: get(r, 7)?,
                    at_ms: get(r, 8)?,
                })
            })
            .collect()
    }

    /// The most recently started scan, so `hits` can default to it.
    async fn latest_scan(&self) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let row = client.query_opt("SELECT id FROM scans ORDER BY started_at DESC LIMIT 1", &[]).await.map_err(db)?;
        row.map(|r| get(&r, 0)).transpose()
    }

    /// Defines (or redefines, from run 0 with no last run, as SQLite's
    /// `INSERT OR REPLACE` does) a recurring scan, active and due now.
    async fn put_schedule(
        &self,
        id: &str,
        every_ms: i64,
        max_runs: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO schedules (id, every_ms, state, runs, max_runs, next_run_at, created_at)
                 VALUES ($1, $2, 'active', 0, $3, $4, $4)
                 ON CONFLICT (id) DO UPDATE SET every_ms = excluded.every_ms, state = 'active', runs = 0,
                   max_runs = excluded.max_runs, last_run = NULL, next_run_at = excluded.next_run_at,
                   created_at = excluded.created_at",
                &[&id, &every_ms, &max_runs, &now_ms],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    /// One schedule.
    async fn schedule(&self, id: &str) -> Result<Option<Schedule>, StoreError> {
        let client = self.client().await?;
        let st = client.prepare_cached(&format!("SELECT {COLUMNS} FROM schedules WHERE id = $1")).await.map_err(db)?;
        let row = client.query_opt(&st, &[&id]).await.map_err(db)?;
        row.map(|r| schedule_of(&r)).transpose()
    }

    /// Every schedule, by id (byte order, as SQLite's BINARY).
    async fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(&format!("SELECT {COLUMNS} FROM schedules ORDER BY id COLLATE \"C\""), &[])
            .await
            .map_err(db)?;
        rows.iter().map(schedule_of).collect()
    }

    /// Pauses, resumes (`active`), stops or finishes a schedule: an unknown
    /// state is [`StoreError::BadStatus`], an unknown id
    /// [`StoreError::NoSchedule`].
    async fn set_schedule_state(&self, id: &str, state: &str) -> Result<(), StoreError> {
        if !SCHEDULE_STATES.contains(&state) {
            return Err(StoreError::BadStatus(state.to_string()));
        }
        let client = self.client().await?;
        let n = client.execute("UPDATE schedules SET state = $2 WHERE id = $1", &[&id, &state]).await.map_err(db)?;
        if n == 0 {
            return Err(StoreError::NoSchedule(id.to_string()));
        }
        Ok(())
    }

    /// Records that run `run_id` of a schedule finished; the next is due at
    /// `next_run_at`. An unknown id changes nothing, as in SQLite.
    async fn schedule_ran(&self, id: &str, run_id: &str, next_run_at: i64) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE schedules SET runs = runs + 1, last_run = $2, next_run_at = $3 WHERE id = $1",
                &[&id, &run_id, &next_run_at],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Every scan recorded here: id, start, end (Unix ms) and summary JSON,
    /// newest first, at most `limit`.
    async fn scan_list(&self, limit: usize) -> Result<Vec<(String, i64, Option<i64>, Option<String>)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, started_at, finished_at, summary FROM scans ORDER BY started_at DESC LIMIT $1",
                &[&sql_limit(limit)],
            )
            .await
            .map_err(db)?;
        rows.iter().map(|r| Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?, get(r, 3)?))).collect()
    }

    /// Pages where listed or confirmed material was seen, most such images
    /// first (then by URL), at most `limit`: where a recurring scan looks first.
    async fn hotspot_pages(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(&format!(
                "SELECT e.page_url FROM edges e JOIN images i ON i.scan = e.scan AND i.image_id = e.image_id
                      JOIN contents c ON c.blake3 = i.blake3 LEFT JOIN cases k ON k.blake3 = i.blake3
                 WHERE {LISTED}
                 GROUP BY e.page_url ORDER BY count(DISTINCT i.blake3) DESC, e.page_url COLLATE \"C\" LIMIT $1"
            ))
            .await
            .map_err(db)?;
        let rows = client.query(&st, &[&sql_limit(limit)]).await.map_err(db)?;
        rows.iter().map(|r| get(r, 0)).collect()
    }

    /// Per host of the pages a scan saw (by host name, lower case, without
    /// port): pages, and pages with listed or confirmed material (as known
    /// now).
    async fn host_findings(&self, scan: &str) -> Result<Vec<HostFindings>, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(&format!(
                "SELECT e.page_url, max(CASE WHEN {LISTED} THEN 1 ELSE 0 END)::bigint
                 FROM edges e JOIN images i ON i.scan = e.scan AND i.image_id = e.image_id
                      JOIN contents c ON c.blake3 = i.blake3 LEFT JOIN cases k ON k.blake3 = i.blake3
                 WHERE e.scan = $1 GROUP BY e.page_url"
            ))
            .await
            .map_err(db)?;
        let rows = client.query(&st, &[&scan]).await.map_err(db)?;
        let mut by_host: BTreeMap<String, HostFindings> = BTreeMap::new();
        for r in &rows {
            let page: String = get(r, 0)?;
            let listed: i64 = get(r, 1)?;
            let authority = origin_of(&page).and_then(|o| o.split_once("://")).map_or("", |(_, a)| a);
            let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h).to_ascii_lowercase();
            let f = by_host.entry(host.clone()).or_insert(HostFindings { host, pages: 0, listed_pages: 0 });
            f.pages += 1;
            // 0 or 1 (the CASE above), so the sign cannot be lost.
            f.listed_pages += listed.unsigned_abs();
        }
        Ok(by_host.into_values().collect())
    }
}
