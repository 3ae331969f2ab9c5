//! The circumstances of an image on PostgreSQL, read back for its risk
//! score: the SQLite store's joins (`crates/store/src/evidence.rs`) with the
//! same caps, the same page order and origin handling, and byte-order
//! (`COLLATE "C"`) URL ranges whatever the database's collation.

use std::collections::HashMap;

use async_trait::async_trait;
use deadpool_postgres::{Object, Transaction};
use hashscan_pdq::PdqHash;
use hashscan_score::Decision;
use hashscan_store::{
    origin_of, EvidenceStore, HostEvidence, RawEvidence, Reason, StoreError, MAX_HOSTS, MAX_LISTED_PAGES,
};
use tokio_postgres::{IsolationLevel, Row};

use crate::sightings::{get, narrow, sql_limit};
use crate::{db, hash32, PgStore};

/// Other images on a page count as evidence when the reference set lists
/// them (exactly or near) or an analyst confirmed them, and an analyst has
/// not found them benign. `c` is the content, `k` its case (SQLite's
/// `LISTED`, with `IS DISTINCT FROM` for its `IS NOT`: a content without a
/// case is not "not_abuse").
pub(crate) const LISTED: &str =
    "((c.ref_score > 0 OR k.status = 'confirmed') AND k.status IS DISTINCT FROM 'not_abuse')";

/// Pages of a content looked at in detail; past them only the count goes
/// on (a content on every page of the web is told apart by its count).
const DETAILED_PAGES: usize = 20 * MAX_LISTED_PAGES;

/// The distinct pages of a content in the order SQLite's plan yields them
/// (its images in insertion order, each one's pages by URL), so the
/// origins kept under [`MAX_HOSTS`] are the same ones.
const PAGES: &str = "SELECT e.page_url FROM images i JOIN edges e ON e.scan = i.scan AND e.image_id = i.image_id
     WHERE i.blake3 = $1 GROUP BY e.page_url ORDER BY min(i.seq), e.page_url COLLATE \"C\" LIMIT $2";

/// Every distinct page of a content, counted (past [`DETAILED_PAGES`]).
const PAGE_COUNT: &str = "SELECT count(DISTINCT e.page_url)
     FROM images i JOIN edges e ON e.scan = i.scan AND e.image_id = i.image_id WHERE i.blake3 = $1";

/// A content's evidence, read in one snapshot (`tx`), or `None` when it
/// was never hashed.
async fn gather(tx: &Transaction<'_>, b: &[u8; 32]) -> Result<Option<RawEvidence>, StoreError> {
    let key = &b[..];
    let st = tx.prepare_cached("SELECT ref_score, ignored, pdq FROM contents WHERE blake3 = $1").await.map_err(db)?;
    let Some(row) = tx.query_opt(&st, &[&key]).await.map_err(db)? else {
        return Ok(None);
    };
    let (reference, ignored, pdq): (f64, bool, Option<Vec<u8>>) = (get(&row, 0)?, get(&row, 1)?, get(&row, 2)?);
    let st = tx.prepare_cached("SELECT status FROM cases WHERE blake3 = $1").await.map_err(db)?;
    let status: Option<String> = tx.query_opt(&st, &[&key]).await.map_err(db)?.map(|r| get(&r, 0)).transpose()?;
    let decision = status.and_then(|s| Decision::of_case_status(&s));
    let mut ev = RawEvidence {
        reference,
        ignored,
        decision,
        // As in SQLite: a PDQ column that is not 32 bytes counts as none.
        pdq: pdq.and_then(|p| <[u8; 32]>::try_from(p).ok()).map(PdqHash::from_bytes),
        ..RawEvidence::default()
    };
    // Every page of the content: counted in full, origins kept up to a cap.
    let st = tx.prepare_cached(PAGES).await.map_err(db)?;
    let rows = tx.query(&st, &[&key, &sql_limit(DETAILED_PAGES)]).await.map_err(db)?;
    let mut page_urls = Vec::with_capacity(rows.len());
    for r in &rows {
        let url: String = get(r, 0)?;
        if let Some(o) = origin_of(&url) {
            if let Some((_, n)) = ev.origins.iter_mut().find(|(x, _)| x == o) {
                *n += 1;
            } else if ev.origins.len() < MAX_HOSTS {
                ev.origins.push((o.to_string(), 1));
            }
        }
        page_urls.push(url);
    }
    ev.pages_total = page_urls.len() as u64;
    if page_urls.len() >= DETAILED_PAGES {
        let st = tx.prepare_cached(PAGE_COUNT).await.map_err(db)?;
        ev.pages_total = narrow(get(&tx.query_one(&st, &[&key]).await.map_err(db)?, 0)?, "edges", "page_url")?;
    }
    // The other images of those pages, all pages in one query (a page
    // with no other image has no row: SQLite's (0, 0), which it skips).
    let st = tx
        .prepare_cached(&format!(
            "SELECT e.page_url, count(DISTINCT i.blake3), count(DISTINCT CASE WHEN {LISTED} THEN i.blake3 END)
             FROM edges e JOIN images i ON i.scan = e.scan AND i.image_id = e.image_id
                  JOIN contents c ON c.blake3 = i.blake3 LEFT JOIN cases k ON k.blake3 = i.blake3
             WHERE e.page_url = ANY($1) AND i.blake3 <> $2 GROUP BY e.page_url"
        ))
        .await
        .map_err(db)?;
    let mut per_page: HashMap<String, (u64, u64)> = HashMap::new();
    for r in tx.query(&st, &[&page_urls, &key]).await.map_err(db)? {
        let counts = (narrow(get(&r, 1)?, "edges", "image_id")?, narrow(get(&r, 2)?, "edges", "image_id")?);
        per_page.insert(get(&r, 0)?, counts);
    }
    ev.set_pages(page_urls.into_iter().filter_map(|url| {
        let &(others, listed) = per_page.get(&url)?;
        Some((url, others, listed))
    }));
    Ok(Some(ev))
}

/// What was found on the pages of one origin. Every page URL of the origin
/// sorts (bytewise) between `origin/` and `origin0`; the host is the
/// origin without scheme and numeric port.
async fn host(client: &Object, origin: &str) -> Result<HostEvidence, StoreError> {
    let (lo, hi) = (format!("{origin}/"), format!("{origin}0"));
    let st = client
        .prepare_cached(&format!(
            "SELECT count(DISTINCT e.page_url),
                    count(DISTINCT CASE WHEN {LISTED} THEN e.page_url END),
                    count(DISTINCT CASE WHEN c.ref_score > 0 AND k.status IS DISTINCT FROM 'not_abuse'
                                        THEN i.blake3 END),
                    count(DISTINCT CASE WHEN k.status = 'confirmed' THEN i.blake3 END),
                    max(CASE WHEN {LISTED} THEN i.fetched_at END)
             FROM edges e JOIN images i ON i.scan = e.scan AND i.image_id = e.image_id
                  JOIN contents c ON c.blake3 = i.blake3 LEFT JOIN cases k ON k.blake3 = i.blake3
             WHERE e.page_url COLLATE \"C\" >= $1 AND e.page_url COLLATE \"C\" < $2"
        ))
        .await
        .map_err(db)?;
    let r = client.query_one(&st, &[&lo, &hi]).await.map_err(db)?;
    let name = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    let name = name.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(name, |x| x.0);
    Ok(HostEvidence {
        host: name.to_string(),
        seen_on: 0,
        pages: narrow(get(&r, 0)?, "edges", "page_url")?,
        pages_with_listed: narrow(get(&r, 1)?, "edges", "page_url")?,
        listed: narrow(get(&r, 2)?, "images", "blake3")?,
        confirmed: narrow(get(&r, 3)?, "images", "blake3")?,
        last_listed_ms: get(&r, 4)?,
    })
}

/// BLAKE3 keys in column 0 of `rows`; one of another length is a corrupt store.
fn blake3_rows(rows: &[Row]) -> Result<Vec<[u8; 32]>, StoreError> {
    rows.iter().map(|r| hash32(&get::<Vec<u8>>(r, 0)?, "images", "blake3")).collect()
}

#[async_trait]
impl EvidenceStore for PgStore {
    /// The evidence about `blake3`, read in one repeatable-read snapshot so
    /// counts and lists agree while sightings arrive.
    async fn evidence(&self, blake3: [u8; 32]) -> Result<Option<RawEvidence>, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let ev = gather(&tx, &blake3).await?;
        tx.commit().await.map_err(db)?;
        Ok(ev)
    }

    async fn host_evidence(&self, origin: &str) -> Result<HostEvidence, StoreError> {
        let client = self.client().await?;
        host(&client, origin).await
    }

    async fn neighbours(&self, blake3: [u8; 32], limit: usize) -> Result<Vec<[u8; 32]>, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT DISTINCT i2.blake3
                 FROM images i JOIN edges e ON e.scan = i.scan AND e.image_id = i.image_id
                      JOIN edges e2 ON e2.page_url = e.page_url
                      JOIN images i2 ON i2.scan = e2.scan AND i2.image_id = e2.image_id
                 WHERE i.blake3 = $1 AND i2.blake3 <> $1 LIMIT $2",
            )
            .await
            .map_err(db)?;
        blake3_rows(&client.query(&st, &[&&blake3[..], &sql_limit(limit)]).await.map_err(db)?)
    }

    async fn contents_on_page(&self, page_url: &str, limit: usize) -> Result<Vec<[u8; 32]>, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT DISTINCT i.blake3 FROM edges e JOIN images i ON i.scan = e.scan AND i.image_id = e.image_id
                 WHERE e.page_url = $1 LIMIT $2",
            )
            .await
            .map_err(db)?;
        blake3_rows(&client.query(&st, &[&page_url, &sql_limit(limit)]).await.map_err(db)?)
    }

    /// Contents on pages of one origin: page URLs between `origin/` and
    /// `origin0` in byte order, as in [`host`].
    async fn contents_on_origin(&self, origin: &str, limit: usize) -> Result<Vec<[u8; 32]>, StoreError> {
        let (lo, hi) = (format!("{origin}/"), format!("{origin}0"));
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT DISTINCT i.blake3 FROM edges e JOIN images i ON i.scan = e.scan AND i.image_id = e.image_id
                 WHERE e.page_url COLLATE \"C\" >= $1 AND e.page_url COLLATE \"C\" < $2 LIMIT $3",
            )
            .await
            .map_err(db)?;
        blake3_rows(&client.query(&st, &[&lo, &hi, &sql_limit(limit)]).await.map_err(db)?)
    }

    async fn scan_contents(&self, scan: &str) -> Result<Vec<[u8; 32]>, StoreError> {
        let client = self.client().await?;
        let st = client.prepare_cached("SELECT DISTINCT blake3 FROM images WHERE scan = $1").await.map_err(db)?;
        blake3_rows(&client.query(&st, &[&scan]).await.map_err(db)?)
    }

    /// PDQ hashes of confirmed images; a stored PDQ that is not 32 bytes
    /// is skipped, as SQLite's store does.
    async fn confirmed_pdqs(&self) -> Result<Vec<PdqHash>, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT c.pdq FROM cases k JOIN contents c ON c.blake3 = k.blake3
                 WHERE k.status = 'confirmed' AND c.pdq IS NOT NULL",
            )
            .await
            .map_err(db)?;
        let rows = client.query(&st, &[]).await.map_err(db)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Ok(b) = <[u8; 32]>::try_from(get::<Vec<u8>>(r, 0)?.as_slice()) {
                out.push(PdqHash::from_bytes(b));
            }
        }
        Ok(out)
    }

    /// Stores a content's risk score and its factors (JSON, as SQLite
    /// writes them); an unknown content changes nothing.
    async fn record_score(&self, blake3: [u8; 32], score: f64, factors: Vec<Reason>) -> Result<(), StoreError> {
        let factors = serde_json::to_string(&factors).map_err(|e| StoreError::Worker(e.to_string()))?;
        let client = self.client().await?;
        let st = client
            .prepare_cached("UPDATE contents SET score = $2, factors = $3 WHERE blake3 = $1")
            .await
            .map_err(db)?;
        client.execute(&st, &[&&blake3[..], &score, &factors]).await.map_err(db)?;
        Ok(())
    }
}
