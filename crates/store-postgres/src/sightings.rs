//! What was seen, on PostgreSQL: the SQLite store's sightings SQL in
//! PostgreSQL's dialect (`ON CONFLICT` for `OR IGNORE` / `OR REPLACE`,
//! `LEAST` / `GREATEST` for `min` / `max`, `contents.seq` for `rowid`).

use async_trait::async_trait;
use deadpool_postgres::Object;
use hashscan_hash::Digests;
use hashscan_pdq::PdqHash;
use hashscan_store::{
    Assessment, CachedFetch, FetchRecord, ImageRecord, PdqResult, SightingStore, StoreError, StoredContent,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use crate::{db, PgStore};

/// How often a write transaction that PostgreSQL aborted as a deadlock is
/// run again. SQLite serialises writers, so its store never sees one; here
/// two batches that touch the same contents in another order can, and
/// failing the caller for it would be a difference the caller cannot act on.
const TX_ATTEMPTS: usize = 5;

/// Whether PostgreSQL aborted a transaction only because of another one
/// (deadlock, serialisation failure): running it again will do.
pub(crate) fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(e.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
}

/// Column `i` of a row, as a store error (not a panic) when its type is not `T`.
pub(crate) fn get<'a, T: FromSql<'a>>(r: &'a Row, i: usize) -> Result<T, StoreError> {
    r.try_get(i).map_err(db)
}

/// A stored BIGINT in a narrower type; out of range means the row was not
/// written by hashscan, reported as [`StoreError::Corrupt`] (SQLite's
/// store refuses it too).
pub(crate) fn narrow<T: TryFrom<i64>>(v: i64, table: &'static str, column: &'static str) -> Result<T, StoreError> {
    T::try_from(v).map_err(|_| StoreError::Corrupt { table, column, detail: format!("{v} out of range") })
}

/// [`narrow`] of a nullable column.
pub(crate) fn narrow_opt<T: TryFrom<i64>>(
    v: Option<i64>,
    table: &'static str,
    column: &'static str,
) -> Result<Option<T>, StoreError> {
    v.map(|v| narrow(v, table, column)).transpose()
}

/// How `contents.match_kind` spells a match kind (as the SQLite store does).
/// Columns of a stored content, for [`stored_content`]; the scan is the
/// one whose image of it was fetched first.
pub(crate) const CONTENT_SELECT: &str =
    "SELECT ct.blake3, ct.md5, ct.sha1, ct.sha256, ct.bytes, ct.pdq, ct.pdq_quality,
        ct.width, ct.height, ct.pdq_scale, ct.pdq_error, ct.first_seen,
        (SELECT i.scan FROM images i WHERE i.blake3 = ct.blake3 ORDER BY i.fetched_at LIMIT 1)
     FROM contents ct";

/// A row of [`CONTENT_SELECT`] (columns 0 to 12).
pub(crate) fn stored_content(r: &Row) -> Result<StoredContent, StoreError> {
    fn fixed<const N: usize>(r: &Row, i: usize, column: &'static str) -> Result<[u8; N], StoreError> {
        let v: Vec<u8> = get(r, i)?;
        <[u8; N]>::try_from(v.as_slice()).map_err(|_| StoreError::Corrupt {
            table: "contents",
            column,
            detail: format!("{} bytes, not {N}", v.len()),
        })
    }
    let digests = Digests {
        bytes: narrow(get(r, 4)?, "contents", "bytes")?,
        blake3: fixed(r, 0, "blake3")?,
        md5: fixed(r, 1, "md5")?,
        sha1: fixed(r, 2, "sha1")?,
        sha256: fixed(r, 3, "sha256")?,
    };
    // As in SQLite: a PDQ column that is not 32 bytes counts as no hash.
    let pdq = match get::<Option<Vec<u8>>>(r, 5)?.and_then(|b| <[u8; 32]>::try_from(b).ok()) {
        Some(bytes) => PdqResult::Hashed {
            hash: PdqHash::from_bytes(bytes),
            quality: narrow_opt(get(r, 6)?, "contents", "pdq_quality")?.unwrap_or(0),
            width: narrow_opt(get(r, 7)?, "contents", "width")?.unwrap_or(0),
            height: narrow_opt(get(r, 8)?, "contents", "height")?.unwrap_or(0),
            scale: narrow_opt(get(r, 9)?, "contents", "pdq_scale")?.unwrap_or(1),
        },
        None => {
            let err: String = get::<Option<String>>(r, 10)?.unwrap_or_default();
            let (reason, detail) = err.split_once(": ").unwrap_or((err.as_str(), ""));
            PdqResult::Failed { reason: reason.to_string(), detail: detail.to_string() }
        }
    };
    Ok(StoredContent {
        digests,
        pdq,
        first_seen_ms: get(r, 11)?,
        scan: get::<Option<String>>(r, 12)?.unwrap_or_default(),
    })
}

/// A `LIMIT` for `limit`: PostgreSQL refuses a negative one, where SQLite
/// reads it as "no limit", so a huge `usize` becomes `i64::MAX`.
pub(crate) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

const INSERT_IMAGE: &str = "INSERT INTO images (scan, image_id, blake3, host, ip, fetched_at)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";

/// The same bytes give the same PDQ: the first record stands, but a hash
/// fills in where an earlier attempt failed (e.g. on budget).
const UPSERT_CONTENT: &str =
    "INSERT INTO contents (blake3, md5, sha1, sha256, bytes, pdq, pdq_quality, pdq_error, width,
                           height, pdq_scale, first_seen, last_seen)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
     ON CONFLICT (blake3) DO UPDATE SET
       first_seen = LEAST(contents.first_seen, excluded.first_seen),
       last_seen = GREATEST(contents.last_seen, excluded.last_seen),
       pdq = coalesce(contents.pdq, excluded.pdq),
       pdq_quality = coalesce(contents.pdq_quality, excluded.pdq_quality),
       width = coalesce(contents.width, excluded.width),
       height = coalesce(contents.height, excluded.height),
       pdq_scale = coalesce(contents.pdq_scale, excluded.pdq_scale),
       pdq_error = CASE WHEN coalesce(contents.pdq, excluded.pdq) IS NULL THEN contents.pdq_error ELSE NULL END";

const INSERT_EDGE: &str =
    "INSERT INTO edges (scan, page_url, image_id, seen_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";

/// Image records in one transaction (see [`SightingStore::record_image`]).
async fn insert_images(client: &mut Object, recs: &[ImageRecord]) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let images = tx.prepare_cached(INSERT_IMAGE).await?;
    let contents = tx.prepare_cached(UPSERT_CONTENT).await?;
    let edges = tx.prepare_cached(INSERT_EDGE).await?;
    for rec in recs {
        let d = &rec.digests;
        tx.execute(&images, &[&rec.scan, &rec.image_id, &&d.blake3[..], &rec.host, &rec.ip, &rec.fetched_at_ms])
            .await?;
        let (pdq, quality, error, width, height, scale) = match &rec.pdq {
            PdqResult::Hashed { hash, quality, width, height, scale } => (
                Some(hash.as_bytes().to_vec()),
                Some(i64::from(*quality)),
                None,
                Some(i64::from(*width)),
                Some(i64::from(*height)),
                Some(i64::from(*scale)),
            ),
            PdqResult::Failed { reason, detail } => (None, None, Some(format!("{reason}: {detail}")), None, None, None),
        };
        let bytes = d.bytes as i64;
        tx.execute(
            &contents,
            &[
                &&d.blake3[..],
                &&d.md5[..],
                &&d.sha1[..],
                &&d.sha256[..],
                &bytes,
                &pdq,
                &quality,
                &error,
                &width,
                &height,
                &scale,
                &rec.fetched_at_ms,
            ],
        )
        .await?;
        if let Some(page) = &rec.page_url {
            tx.execute(&edges, &[&rec.scan, page, &rec.image_id, &rec.fetched_at_ms]).await?;
        }
    }
    tx.commit().await
}

/// A page's edges in one transaction (see [`SightingStore::record_edges`]).
async fn insert_edges(
    client: &mut Object,
    scan: &str,
    page_url: &str,
    images: &[String],
    at_ms: i64,
) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let st = tx.prepare_cached(INSERT_EDGE).await?;
    for img in images {
        tx.execute(&st, &[&scan, &page_url, img, &at_ms]).await?;
    }
    tx.commit().await
}

#[async_trait]
impl SightingStore for PgStore {
    async fn cached_fetch(&self, url: &str) -> Result<Option<CachedFetch>, StoreError> {
        let client = self.client().await?;
        let st = client.prepare_cached("SELECT data FROM cached_fetches WHERE url = $1").await.map_err(db)?;
        let row = client.query_opt(&st, &[&url]).await.map_err(db)?;
        row.map(|r| {
            let data: String = get(&r, 0)?;
            serde_json::from_str(&data).map_err(|e| StoreError::Corrupt {
                table: "cached_fetches",
                column: "data",
                detail: e.to_string(),
            })
        })
        .transpose()
    }

    async fn record_cached_fetch(&self, url: &str, cached: CachedFetch, at_ms: i64) -> Result<(), StoreError> {
        let data = serde_json::to_string(&cached).map_err(|e| StoreError::Worker(e.to_string()))?;
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "INSERT INTO cached_fetches (url, data, at) VALUES ($1, $2, $3)
                 ON CONFLICT (url) DO UPDATE SET data = excluded.data, at = excluded.at",
            )
            .await
            .map_err(db)?;
        client.execute(&st, &[&url, &data, &at_ms]).await.map_err(db)?;
        Ok(())
    }

    async fn content(&self, blake3: [u8; 32]) -> Result<Option<StoredContent>, StoreError> {
        let client = self.client().await?;
        let st = client.prepare_cached(&format!("{CONTENT_SELECT} WHERE ct.blake3 = $1")).await.map_err(db)?;
        let row = client.query_opt(&st, &[&&blake3[..]]).await.map_err(db)?;
        row.as_ref().map(stored_content).transpose()
    }

    async fn contents_page(&self, after: Option<i64>, limit: usize) -> Result<Vec<(i64, StoredContent)>, StoreError> {
        let client = self.client().await?;
        // In `seq` order (SQLite's rowid): the order rows were first stored,
        // which a re-sighting does not change.
        let st = client
            .prepare_cached(
                "SELECT ct.blake3, ct.md5, ct.sha1, ct.sha256, ct.bytes, ct.pdq, ct.pdq_quality, ct.width,
                        ct.height, ct.pdq_scale, ct.pdq_error, ct.first_seen, NULL::text, ct.seq
                 FROM contents ct WHERE ct.seq > $1 ORDER BY ct.seq LIMIT $2",
            )
            .await
            .map_err(db)?;
        let rows = client.query(&st, &[&after.unwrap_or(i64::MIN), &sql_limit(limit)]).await.map_err(db)?;
        rows.iter().map(|r| Ok((get(r, 13)?, stored_content(r)?))).collect()
    }

    async fn reference_applied(&self) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let row = client.query_opt("SELECT version FROM reference_state WHERE id = 1", &[]).await.map_err(db)?;
        row.map(|r| get(&r, 0)).transpose()
    }

    async fn set_reference_applied(&self, version: &str, at_ms: i64) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO reference_state (id, version, applied_at) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, applied_at = excluded.applied_at",
                &[&version, &at_ms],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn record_image(&self, rec: ImageRecord) -> Result<(), StoreError> {
        self.record_images(vec![rec]).await
    }

    async fn record_images(&self, recs: Vec<ImageRecord>) -> Result<(), StoreError> {
        if recs.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let mut attempt = 1;
        loop {
            match insert_images(&mut client, &recs).await {
                Err(e) if attempt < TX_ATTEMPTS && is_retryable(&e) => attempt += 1,
                other => return other.map_err(db),
            }
        }
    }

    async fn record_edges(&self, scan: &str, page_url: &str, images: &[String], at_ms: i64) -> Result<(), StoreError> {
        if images.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let mut attempt = 1;
        loop {
            match insert_edges(&mut client, scan, page_url, images, at_ms).await {
                Err(e) if attempt < TX_ATTEMPTS && is_retryable(&e) => attempt += 1,
                other => return other.map_err(db),
            }
        }
    }

    async fn record_fetch(&self, rec: FetchRecord) -> Result<(), StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "INSERT INTO fetches (scan, url, kind, depth, outcome, reason, detail, ip, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (scan, url) DO UPDATE SET kind = excluded.kind, depth = excluded.depth,
                   outcome = excluded.outcome, reason = excluded.reason, detail = excluded.detail,
                   ip = excluded.ip, at = excluded.at",
            )
            .await
            .map_err(db)?;
        let depth = i64::from(rec.depth);
        client
            .execute(
                &st,
                &[&rec.scan, &rec.url, &rec.kind, &depth, &rec.outcome, &rec.reason, &rec.detail, &rec.ip, &rec.at_ms],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn record_assessment(&self, blake3: [u8; 32], a: Assessment) -> Result<(), StoreError> {
        let reasons = serde_json::to_string(&a.reasons).map_err(|e| StoreError::Worker(e.to_string()))?;
        let ignored = a.reasons.iter().any(|r| r.factor == "ignore_list");
        let distance = a.distance.map(i64::from);
        let client = self.client().await?;
        // The final score follows the reference score only while no
        // circumstance factors were recorded (`EvidenceStore::record_score`).
        let st = client
            .prepare_cached(
                "UPDATE contents SET ref_score = $2, match_kind = $3, match_algo = $4, distance = $5,
                   reference_version = $6, reasons = $7, ignored = $8,
                   score = CASE WHEN factors = '[]' THEN $2 ELSE score END
                 WHERE blake3 = $1",
            )
            .await
            .map_err(db)?;
        client
            .execute(
                &st,
                &[
                    &&blake3[..],
                    &a.score,
                    &a.match_kind.as_str(),
                    &a.match_algo,
                    &distance,
                    &a.reference_version,
                    &reasons,
                    &ignored,
                ],
            )
            .await
            .map_err(db)?;
        Ok(())
    }
}
