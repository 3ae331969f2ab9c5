//! What goes to review, on PostgreSQL: cases, the `hits` listing and
//! re-checks, with the SQLite store's SQL and ordering (text ordered
//! `COLLATE "C"`, byte order as SQLite's BINARY, whatever the database's
//! collation).

use std::collections::HashMap;

use async_trait::async_trait;
use hashscan_pdq::PdqHash;
use hashscan_store::{rfc3339, CaseStore, Hit, HitFilter, MatchKind, Reason, RecheckItem, StoreError, CASE_STATUSES};
use tokio_postgres::Row;

use crate::sightings::{get, narrow, narrow_opt};
use crate::{db, hash32, PgStore};

/// The `hits` query: contents (with their case, if any), cases first, by
/// score. `robots_ignored` reads the case's scan configuration as SQLite's
/// `json_extract` does (a JSON true or a non-zero number is true).
const HITS: &str = "SELECT ct.blake3, ct.md5, ct.sha1, ct.sha256, ct.bytes, ct.first_seen, ct.last_seen, ct.score,
        ct.match_kind, ct.match_algo, ct.distance, ct.reference_version, ct.reasons,
        cs.status, cs.scan, ct.pdq, ct.pdq_quality, ct.pdq_error, ct.width, ct.height,
        coalesce((SELECT CASE jsonb_typeof(x.j) WHEN 'boolean' THEN x.j::boolean
                                                WHEN 'number' THEN x.j::numeric <> 0 END
                  FROM (SELECT s.config::jsonb -> 'ignore_robots' AS j FROM scans s WHERE s.id = cs.scan) x), false),
        ct.factors, cs.online, cs.last_checked_at, cs.offline_since, cs.last_online_at
     FROM contents ct LEFT JOIN cases cs ON cs.blake3 = ct.blake3
     WHERE ($1::boolean OR cs.id IS NOT NULL)
       AND ($2::double precision IS NULL OR ct.score >= $2)
       AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM images i WHERE i.blake3 = ct.blake3 AND i.scan = $3))
     ORDER BY (cs.id IS NULL), ct.score DESC, ct.first_seen, ct.blake3";

/// The image records of the hits' contents, each content's first-fetched first.
const HIT_IMAGES: &str = "SELECT blake3, image_id, host, ip, scan FROM images
     WHERE blake3 = ANY($1) AND ($2::text IS NULL OR scan = $2)
     ORDER BY blake3, fetched_at, image_id COLLATE \"C\"";

/// The pages that showed the hits' contents, each page once, earliest
/// first. (SQLite's `SELECT DISTINCT … ORDER BY seen_at` orders a page
/// shown by several edges by one of their times; the earliest is what it
/// means.)
const HIT_PAGES: &str = "SELECT i.blake3, e.page_url FROM edges e JOIN images i USING (scan, image_id)
     WHERE i.blake3 = ANY($1) AND ($2::text IS NULL OR e.scan = $2)
     GROUP BY i.blake3, e.page_url
     ORDER BY i.blake3, min(e.seen_at), e.page_url COLLATE \"C\"";

/// A JSON list of reasons kept in `contents.<column>`.
fn reasons(json: &str, column: &'static str) -> Result<Vec<Reason>, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt { table: "contents", column, detail: e.to_string() })
}

/// A row of [`HITS`] as a hit without its images and pages (filled in by
/// [`CaseStore::hits`] from [`HIT_IMAGES`] and [`HIT_PAGES`]).
pub(crate) fn hit_of_row(r: &Row) -> Result<Hit, StoreError> {
    let hex = |i: usize| -> Result<String, StoreError> { Ok(hex::encode(get::<Vec<u8>>(r, i)?)) };
    let first_seen: i64 = get(r, 5)?;
    let offline_since: Option<i64> = get(r, 24)?;
    let kind: String = get(r, 8)?;
    Ok(Hit {
        image_url: String::new(),
        image_urls: Vec::new(),
        page_urls: Vec::new(),
        host: String::new(),
        ips: Vec::new(),
        blake3: hex(0)?,
        md5: hex(1)?,
        sha1: hex(2)?,
        sha256: hex(3)?,
        bytes: narrow(get(r, 4)?, "contents", "bytes")?,
        pdq: get::<Option<Vec<u8>>>(r, 15)?
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(|b| PdqHash::from_bytes(b).to_hex()),
        pdq_quality: narrow_opt(get(r, 16)?, "contents", "pdq_quality")?,
        pdq_error: get(r, 17)?,
        width: narrow_opt(get(r, 18)?, "contents", "width")?,
        height: narrow_opt(get(r, 19)?, "contents", "height")?,
        robots_ignored: get(r, 20)?,
        online: get(r, 22)?,
        last_checked: get::<Option<i64>>(r, 23)?.map(rfc3339),
        offline_since: offline_since.map(rfc3339),
        last_online: get::<Option<i64>>(r, 25)?.map(rfc3339),
        removal_secs: offline_since.map(|off| (off - first_seen).max(0) as f64 / 1000.0),
        first_seen: rfc3339(first_seen),
        last_seen: rfc3339(get(r, 6)?),
        score: get(r, 7)?,
        match_kind: MatchKind::parse(&kind)?,
        match_algo: get(r, 9)?,
        distance: narrow_opt(get(r, 10)?, "contents", "distance")?,
        reference_version: get(r, 11)?,
        reasons: reasons(&get::<String>(r, 12)?, "reasons")?,
        factors: reasons(&get::<String>(r, 21)?, "factors")?,
        status: get::<Option<String>>(r, 13)?.unwrap_or_else(|| "none".into()),
        scan: get::<Option<String>>(r, 14)?.unwrap_or_default(),
    })
}

#[async_trait]
impl CaseStore for PgStore {
    async fn open_case(&self, blake3: [u8; 32], score: f64, scan: &str, at_ms: i64) -> Result<i64, StoreError> {
        let client = self.client().await?;
        // One statement: under concurrent openers of one image, PostgreSQL
        // either inserts or (waiting for the inserter) updates, and
        // RETURNING gives the one case's id either way.
        let st = client
            .prepare_cached(
                "INSERT INTO cases (blake3, score, scan, opened_at, updated_at) VALUES ($1, $2, $3, $4, $4)
                 ON CONFLICT (blake3) DO UPDATE SET
                   score = GREATEST(cases.score, excluded.score),
                   updated_at = CASE WHEN excluded.score > cases.score THEN excluded.updated_at
                                     ELSE cases.updated_at END
                 RETURNING id",
            )
            .await
            .map_err(db)?;
        let row = client.query_one(&st, &[&&blake3[..], &score, &scan, &at_ms]).await.map_err(db)?;
        get(&row, 0)
    }

    async fn hits(&self, filter: HitFilter) -> Result<Vec<Hit>, StoreError> {
        let client = self.client().await?;
        let st = client.prepare_cached(HITS).await.map_err(db)?;
        let rows = client.query(&st, &[&filter.all, &filter.min_score, &filter.scan]).await.map_err(db)?;
        let mut keys = Vec::with_capacity(rows.len());
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            keys.push(get::<Vec<u8>>(r, 0)?);
            out.push(hit_of_row(r)?);
        }
        if out.is_empty() {
            return Ok(out);
        }
        // Images and pages of all hits in two queries, not two per hit.
        let st = client.prepare_cached(HIT_IMAGES).await.map_err(db)?;
        let mut images: HashMap<Vec<u8>, Vec<(String, String, Option<String>, String)>> = HashMap::new();
        for r in client.query(&st, &[&keys, &filter.scan]).await.map_err(db)? {
            images.entry(get(&r, 0)?).or_default().push((get(&r, 1)?, get(&r, 2)?, get(&r, 3)?, get(&r, 4)?));
        }
        let st = client.prepare_cached(HIT_PAGES).await.map_err(db)?;
        let mut pages: HashMap<Vec<u8>, Vec<String>> = HashMap::new();
        for r in client.query(&st, &[&keys, &filter.scan]).await.map_err(db)? {
            pages.entry(get(&r, 0)?).or_default().push(get(&r, 1)?);
        }
        for (key, hit) in keys.iter().zip(out.iter_mut()) {
            for (id, host, ip, scan) in images.remove(key).unwrap_or_default() {
                hit.add_image(id, host, ip, scan);
            }
            hit.page_urls = pages.remove(key).unwrap_or_default();
        }
        Ok(out)
    }

    async fn decide(&self, blake3: [u8; 32], status: &str, at_ms: i64) -> Result<(), StoreError> {
        if !CASE_STATUSES.contains(&status) {
            return Err(StoreError::BadStatus(status.to_string()));
        }
        let client = self.client().await?;
        let st = client
            .prepare_cached("UPDATE cases SET status = $2, updated_at = $3 WHERE blake3 = $1")
            .await
            .map_err(db)?;
        let n = client.execute(&st, &[&&blake3[..], &status, &at_ms]).await.map_err(db)?;
        if n == 0 {
            return Err(StoreError::NoCase(hex::encode(blake3)));
        }
        Ok(())
    }

    async fn cases_to_recheck(&self, statuses: &[String]) -> Result<Vec<RecheckItem>, StoreError> {
        let client = self.client().await?;
        // SQLite's LIKE ignores ASCII case, hence ILIKE.
        let st = client
            .prepare_cached(
                "SELECT DISTINCT c.id, c.blake3, i.image_id COLLATE \"C\" AS url
                 FROM cases c JOIN images i ON i.blake3 = c.blake3
                 WHERE c.status = ANY($1) AND (i.image_id ILIKE 'http://%' OR i.image_id ILIKE 'https://%')
                 ORDER BY c.id, url",
            )
            .await
            .map_err(db)?;
        let rows = client.query(&st, &[&statuses]).await.map_err(db)?;
        let mut out: Vec<RecheckItem> = Vec::new();
        let mut last_id = None;
        for r in &rows {
            let id: i64 = get(r, 0)?;
            let url: String = get(r, 2)?;
            match out.last_mut() {
                Some(item) if last_id == Some(id) => item.urls.push(url),
                _ => {
                    let blake3 = hash32(&get::<Vec<u8>>(r, 1)?, "cases", "blake3")?;
                    out.push(RecheckItem { blake3, urls: vec![url] });
                    last_id = Some(id);
                }
            }
        }
        Ok(out)
    }

    async fn record_check(&self, blake3: [u8; 32], at_ms: i64, online: bool) -> Result<(), StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "UPDATE cases SET last_checked_at = $2::bigint, online = $3::boolean,
                   last_online_at = CASE WHEN $3::boolean THEN $2::bigint ELSE last_online_at END,
                   offline_since = CASE WHEN $3::boolean THEN NULL ELSE coalesce(offline_since, $2::bigint) END
                 WHERE blake3 = $1",
            )
            .await
            .map_err(db)?;
        client.execute(&st, &[&&blake3[..], &at_ms, &online]).await.map_err(db)?;
        Ok(())
    }
}
