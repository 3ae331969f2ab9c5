//! Where a scan's results live: sightings, fetch outcomes, scores and cases.
//!
//! The matcher writes through two seams, [`SightingStore`] (what was seen,
//! where, when, and what every fetch came to) and [`CaseStore`] (images whose
//! score crossed the review threshold). The CLI's `hits` and later the review
//! service read through [`CaseStore::hits`].
//!
//! Decisions:
//! * Only hashes, URLs, addresses, times and reasons are stored — never image
//!   bytes (`data:` images are stored under a synthetic id, see `hashscan-bus`).
//! * A sighting is the join of an **edge** (page shows image id) and an
//!   **image record** (image id has these digests). The two arrive in any
//!   order, from different messages; keeping them apart makes both writes
//!   idempotent and order-independent, which redelivery needs.
//! * Embedded mode uses one SQLite file ([`SqliteStore`]) in WAL mode; its
//!   calls run on the blocking pool so the async reactor never waits on disk.
#![deny(missing_docs)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
pub use hashscan_bus::PdqResult;
use hashscan_hash::Digests;
use hashscan_pdq::PdqHash;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// Stored data could not be decoded (e.g. an edited database).
    #[error("corrupt stored value in {table}.{column}: {detail}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// Column.
        column: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The store's worker thread failed.
    #[error("store worker: {0}")]
    Worker(String),
    /// The database was made by another version of hashscan.
    #[error("the results database has schema version {found}, this hashscan uses {expected}; move it aside (or use another --data-dir) to start afresh")]
    Schema {
        /// Version in the file.
        found: i64,
        /// Version this build writes.
        expected: i64,
    },
}

/// Version of the SQLite schema, kept in `PRAGMA user_version`; a file of
/// another version is refused with [`StoreError::Schema`] rather than misread.
pub const SCHEMA_VERSION: i64 = 3;

/// One hashed image, as the fetcher saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// Scan id.
    pub scan: String,
    /// Image URL, or the synthetic id of a `data:` image.
    pub image_id: String,
    /// The page that led to it, if known (also recorded as an edge).
    pub page_url: Option<String>,
    /// Host that served it.
    pub host: String,
    /// Address it was fetched from.
    pub ip: Option<String>,
    /// Its digests.
    pub digests: Digests,
    /// Its PDQ hash, or why there is none.
    pub pdq: PdqResult,
    /// When (Unix ms).
    pub fetched_at_ms: i64,
}

/// What one fetch came to; every task gets one, so nothing is lost silently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRecord {
    /// Scan id.
    pub scan: String,
    /// The URL fetched.
    pub url: String,
    /// `page` or `image`.
    pub kind: String,
    /// Link depth.
    pub depth: u32,
    /// `page`, `image`, `redirect` or `failed`.
    pub outcome: String,
    /// Failure reason code, when failed.
    pub reason: Option<String>,
    /// Detail: failure message or redirect target.
    pub detail: Option<String>,
    /// Address connected to.
    pub ip: Option<String>,
    /// When (Unix ms).
    pub at_ms: i64,
}

/// How an image relates to the reference set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchKind {
    /// A cryptographic hash is listed.
    Exact,
    /// The PDQ hash is within a list's radius.
    Near,
    /// Not listed.
    None,
}

impl MatchKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Near => "near",
            Self::None => "none",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "exact" => Ok(Self::Exact),
            "near" => Ok(Self::Near),
            "none" => Ok(Self::None),
            other => Err(StoreError::Corrupt { table: "contents", column: "match_kind", detail: other.to_string() }),
        }
    }
}

/// One named factor of a score, shown to the analyst.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Factor name (e.g. `exact_match`).
    pub factor: String,
    /// Its value in [0, 1].
    pub value: f64,
    /// Its weight in the score.
    pub weight: f64,
    /// A human sentence (which list, which algorithm, which version).
    pub note: String,
}

/// An image's score and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// Risk in [0, 1].
    pub score: f64,
    /// How it matched.
    pub match_kind: MatchKind,
    /// Which algorithm matched (`md5`, `sha1`, `sha256`, `blake3`, `pdq`).
    pub match_algo: Option<String>,
    /// PDQ Hamming distance of a near match (0 for exact).
    pub distance: Option<u32>,
    /// Version of the reference set the match was made against.
    pub reference_version: Option<String>,
    /// The factors.
    pub reasons: Vec<Reason>,
}

/// A scan's definition as recorded when it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRecord {
    /// Scan id.
    pub id: String,
    /// Start time (Unix ms).
    pub started_at_ms: i64,
    /// The scan's options as JSON (seeds, scope, budgets, allow-list …).
    pub config_json: String,
    /// Reference set version.
    pub reference_version: String,
}

/// What `hits` prints: one image (by content) with its circumstances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// First URL the image was seen at.
    pub image_url: String,
    /// Every URL it was seen at.
    pub image_urls: Vec<String>,
    /// Pages that showed or linked it.
    pub page_urls: Vec<String>,
    /// Host of the first image URL.
    pub host: String,
    /// Addresses it was fetched from.
    pub ips: Vec<String>,
    /// Risk score.
    pub score: f64,
    /// Match kind.
    #[serde(rename = "match")]
    pub match_kind: MatchKind,
    /// Algorithm of the match.
    pub match_algo: Option<String>,
    /// PDQ distance.
    pub distance: Option<u32>,
    /// Reference set version.
    pub reference_version: Option<String>,
    /// MD5, hex.
    pub md5: String,
    /// SHA-1, hex.
    pub sha1: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// BLAKE3, hex.
    pub blake3: String,
    /// Size in bytes.
    pub bytes: u64,
    /// PDQ hash, hex.
    pub pdq: Option<String>,
    /// PDQ quality, 0..=100.
    pub pdq_quality: Option<u8>,
    /// Why there is no PDQ hash (`code: detail`), when there is none.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pdq_error: Option<String>,
    /// Pixel width from the image header.
    pub width: Option<u32>,
    /// Pixel height from the image header.
    pub height: Option<u32>,
    /// Score factors.
    pub reasons: Vec<Reason>,
    /// Case status (`open`, …), or `none` for an image that is not a case.
    pub status: String,
    /// First seen (RFC 3339).
    pub first_seen: String,
    /// Last seen (RFC 3339).
    pub last_seen: String,
    /// Scan(s) it was seen in (first one first).
    pub scan: String,
}

/// Which images `hits` returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HitFilter {
    /// Every image seen, not only cases.
    pub all: bool,
    /// Only scores at or above this.
    pub min_score: Option<f64>,
    /// Only this scan.
    pub scan: Option<String>,
}

/// Counts of what a scan stored, for summaries and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreCounts {
    /// Distinct image ids hashed.
    pub images: u64,
    /// Distinct contents (BLAKE3).
    pub contents: u64,
    /// Page→image edges.
    pub edges: u64,
    /// Sightings (edges whose image is hashed).
    pub sightings: u64,
    /// Cases.
    pub cases: u64,
    /// Fetch outcomes recorded.
    pub fetches: u64,
}

/// A stored content's hashes, for matching it again against a new
/// reference version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredContent {
    /// Its digests.
    pub digests: Digests,
    /// Its PDQ, or why there is none.
    pub pdq: PdqResult,
    /// The scan that saw it first.
    pub scan: String,
    /// When it was first seen (Unix ms).
    pub first_seen_ms: i64,
}

/// The record of what was seen.
#[async_trait]
pub trait SightingStore: Send + Sync {
    /// Stored contents in BLAKE3 order, after `after`, at most `limit`: a
    /// cursor over everything ever seen, for retro-matching.
    async fn contents_page(&self, after: Option<[u8; 32]>, limit: usize) -> Result<Vec<StoredContent>, StoreError>;
    /// The reference version every stored content was last matched against.
    async fn reference_applied(&self) -> Result<Option<String>, StoreError>;
    /// Records that every stored content has been matched against `version`.
    async fn set_reference_applied(&self, version: &str, at_ms: i64) -> Result<(), StoreError>;
    /// Records a hashed image; idempotent per (scan, image id).
    async fn record_image(&self, rec: ImageRecord) -> Result<(), StoreError>;
    /// Records many hashed images in one write (as [`record_image`](Self::record_image) each).
    async fn record_images(&self, recs: Vec<ImageRecord>) -> Result<(), StoreError>;
    /// Records that a page shows these images; idempotent.
    async fn record_edges(&self, scan: &str, page_url: &str, images: &[String], at_ms: i64) -> Result<(), StoreError>;
    /// Records a fetch outcome; idempotent per (scan, url).
    async fn record_fetch(&self, rec: FetchRecord) -> Result<(), StoreError>;
    /// Stores an image's current score.
    async fn record_assessment(&self, blake3: [u8; 32], a: Assessment) -> Result<(), StoreError>;
}

/// The record of what goes to review.
#[async_trait]
pub trait CaseStore: Send + Sync {
    /// Opens the case of an image (or raises its score); idempotent per image.
    async fn open_case(&self, blake3: [u8; 32], score: f64, scan: &str, at_ms: i64) -> Result<i64, StoreError>;
    /// Images with their circumstances, cases first by score.
    async fn hits(&self, filter: HitFilter) -> Result<Vec<Hit>, StoreError>;
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS scans (
    id TEXT PRIMARY KEY,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    config TEXT NOT NULL,
    reference_version TEXT NOT NULL,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS images (
    scan TEXT NOT NULL,
    image_id TEXT NOT NULL,
    blake3 BLOB NOT NULL,
    host TEXT NOT NULL,
    ip TEXT,
    fetched_at INTEGER NOT NULL,
    PRIMARY KEY (scan, image_id)
);
CREATE INDEX IF NOT EXISTS images_by_content ON images (blake3);
CREATE TABLE IF NOT EXISTS edges (
    scan TEXT NOT NULL,
    page_url TEXT NOT NULL,
    image_id TEXT NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (scan, image_id, page_url)
);
CREATE TABLE IF NOT EXISTS contents (
    blake3 BLOB PRIMARY KEY,
    md5 BLOB NOT NULL,
    sha1 BLOB NOT NULL,
    sha256 BLOB NOT NULL,
    bytes INTEGER NOT NULL,
    pdq BLOB,
    pdq_quality INTEGER,
    pdq_error TEXT,
    width INTEGER,
    height INTEGER,
    pdq_scale INTEGER,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    score REAL NOT NULL DEFAULT 0,
    match_kind TEXT NOT NULL DEFAULT 'none',
    match_algo TEXT,
    distance INTEGER,
    reference_version TEXT,
    reasons TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS fetches (
    scan TEXT NOT NULL,
    url TEXT NOT NULL,
    kind TEXT NOT NULL,
    depth INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    detail TEXT,
    ip TEXT,
    at INTEGER NOT NULL,
    PRIMARY KEY (scan, url)
);
CREATE TABLE IF NOT EXISTS reference_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version TEXT NOT NULL,
    applied_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cases (
    id INTEGER PRIMARY KEY,
    blake3 BLOB NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'open',
    score REAL NOT NULL,
    scan TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
"#;

/// The embedded store: one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::init(Connection::open(path)?)
    }

    /// A throw-away store in memory (tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let existing: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))?;
        if existing > 0 && found != SCHEMA_VERSION {
            return Err(StoreError::Schema { found, expected: SCHEMA_VERSION });
        }
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().map_err(|_| StoreError::Worker("connection mutex poisoned".into()))?;
            f(&mut c)
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))?
    }

    /// Records the start of a scan.
    pub async fn begin_scan(&self, scan: ScanRecord) -> Result<(), StoreError> {
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
    pub async fn finish_scan(&self, id: &str, at_ms: i64, summary_json: String) -> Result<(), StoreError> {
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
    pub async fn counts(&self, scan: Option<String>) -> Result<StoreCounts, StoreError> {
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
    pub async fn fetches(&self, scan: &str) -> Result<Vec<FetchRecord>, StoreError> {
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
    pub async fn latest_scan(&self) -> Result<Option<String>, StoreError> {
        self.run(|c| {
            Ok(c.query_row("SELECT id FROM scans ORDER BY started_at DESC LIMIT 1", [], |r| r.get(0)).optional()?)
        })
        .await
    }
}

#[async_trait]
impl SightingStore for SqliteStore {
    async fn contents_page(&self, after: Option<[u8; 32]>, limit: usize) -> Result<Vec<StoredContent>, StoreError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "SELECT ct.blake3, ct.md5, ct.sha1, ct.sha256, ct.bytes, ct.pdq, ct.pdq_quality, ct.width, ct.height,
                        ct.pdq_scale, ct.pdq_error, ct.first_seen,
                        (SELECT i.scan FROM images i WHERE i.blake3 = ct.blake3 ORDER BY i.fetched_at LIMIT 1)
                 FROM contents ct WHERE ?1 IS NULL OR ct.blake3 > ?1 ORDER BY ct.blake3 LIMIT ?2",
            )?;
            let after = after.map(|a| a.to_vec());
            let rows = st.query_map(params![after, limit as i64], |r| {
                let fixed = |i: usize, len: usize| -> rusqlite::Result<Vec<u8>> {
                    let v: Vec<u8> = r.get(i)?;
                    if v.len() == len {
                        Ok(v)
                    } else {
                        Err(rusqlite::Error::InvalidColumnType(i, "digest".into(), rusqlite::types::Type::Blob))
                    }
                };
                let mut d = Digests {
                    bytes: r.get::<_, i64>(4)? as u64,
                    md5: [0; 16],
                    sha1: [0; 20],
                    sha256: [0; 32],
                    blake3: [0; 32],
                };
                d.blake3.copy_from_slice(&fixed(0, 32)?);
                d.md5.copy_from_slice(&fixed(1, 16)?);
                d.sha1.copy_from_slice(&fixed(2, 20)?);
                d.sha256.copy_from_slice(&fixed(3, 32)?);
                let pdq = match r.get::<_, Option<Vec<u8>>>(5)?.and_then(|b| <[u8; 32]>::try_from(b).ok()) {
                    Some(bytes) => PdqResult::Hashed {
                        hash: PdqHash::from_bytes(bytes),
                        quality: r.get::<_, Option<u8>>(6)?.unwrap_or(0),
                        width: r.get::<_, Option<u32>>(7)?.unwrap_or(0),
                        height: r.get::<_, Option<u32>>(8)?.unwrap_or(0),
                        scale: r.get::<_, Option<u8>>(9)?.unwrap_or(1),
                    },
                    None => {
                        let err: String = r.get::<_, Option<String>>(10)?.unwrap_or_default();
                        let (reason, detail) = err.split_once(": ").unwrap_or((err.as_str(), ""));
                        PdqResult::Failed { reason: reason.to_string(), detail: detail.to_string() }
                    }
                };
                Ok(StoredContent {
                    digests: d,
                    pdq,
                    first_seen_ms: r.get(11)?,
                    scan: r.get::<_, Option<String>>(12)?.unwrap_or_default(),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn reference_applied(&self) -> Result<Option<String>, StoreError> {
        self.run(|c| {
            Ok(c.query_row("SELECT version FROM reference_state WHERE id = 1", [], |r| r.get(0)).optional()?)
        })
        .await
    }

    async fn set_reference_applied(&self, version: &str, at_ms: i64) -> Result<(), StoreError> {
        let version = version.to_string();
        self.run(move |c| {
            c.execute(
                "INSERT INTO reference_state (id, version, applied_at) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, applied_at = excluded.applied_at",
                params![version, at_ms],
            )?;
            Ok(())
        })
        .await
    }

    async fn record_image(&self, rec: ImageRecord) -> Result<(), StoreError> {
        self.record_images(vec![rec]).await
    }

    async fn record_images(&self, recs: Vec<ImageRecord>) -> Result<(), StoreError> {
        self.run(move |c| {
            let tx = c.transaction()?;
            for rec in &recs {
                insert_image(&tx, rec)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn record_edges(&self, scan: &str, page_url: &str, images: &[String], at_ms: i64) -> Result<(), StoreError> {
        let (scan, page_url, images) = (scan.to_string(), page_url.to_string(), images.to_vec());
        self.run(move |c| {
            let tx = c.transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "INSERT OR IGNORE INTO edges (scan, page_url, image_id, seen_at) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for img in &images {
                    st.execute(params![scan, page_url, img, at_ms])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn record_fetch(&self, rec: FetchRecord) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO fetches (scan, url, kind, depth, outcome, reason, detail, ip, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![rec.scan, rec.url, rec.kind, rec.depth, rec.outcome, rec.reason, rec.detail, rec.ip, rec.at_ms],
            )?;
            Ok(())
        })
        .await
    }

    async fn record_assessment(&self, blake3: [u8; 32], a: Assessment) -> Result<(), StoreError> {
        let reasons = serde_json::to_string(&a.reasons).map_err(|e| StoreError::Worker(e.to_string()))?;
        self.run(move |c| {
            c.execute(
                "UPDATE contents SET score = ?2, match_kind = ?3, match_algo = ?4, distance = ?5,
                   reference_version = ?6, reasons = ?7 WHERE blake3 = ?1",
                params![
                    &blake3[..],
                    a.score,
                    a.match_kind.as_str(),
                    a.match_algo,
                    a.distance,
                    a.reference_version,
                    reasons
                ],
            )?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl CaseStore for SqliteStore {
    async fn open_case(&self, blake3: [u8; 32], score: f64, scan: &str, at_ms: i64) -> Result<i64, StoreError> {
        let scan = scan.to_string();
        self.run(move |c| {
            c.execute(
                "INSERT INTO cases (blake3, score, scan, opened_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (blake3) DO UPDATE SET
                   score = max(score, excluded.score),
                   updated_at = CASE WHEN excluded.score > score THEN excluded.updated_at ELSE updated_at END",
                params![&blake3[..], score, scan, at_ms],
            )?;
            Ok(c.query_row("SELECT id FROM cases WHERE blake3 = ?1", params![&blake3[..]], |r| r.get(0))?)
        })
        .await
    }

    async fn hits(&self, filter: HitFilter) -> Result<Vec<Hit>, StoreError> {
        self.run(move |c| query_hits(c, &filter)).await
    }
}

/// One image record inside a transaction (see [`SightingStore::record_image`]).
fn insert_image(tx: &rusqlite::Transaction<'_>, rec: &ImageRecord) -> Result<(), StoreError> {
    let d = &rec.digests;
    tx.prepare_cached(
        "INSERT OR IGNORE INTO images (scan, image_id, blake3, host, ip, fetched_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![rec.scan, rec.image_id, &d.blake3[..], rec.host, rec.ip, rec.fetched_at_ms])?;
    let (pdq, quality, error, width, height, scale) = match &rec.pdq {
        PdqResult::Hashed { hash, quality, width, height, scale } => {
            (Some(hash.as_bytes().to_vec()), Some(*quality), None, Some(*width), Some(*height), Some(*scale))
        }
        PdqResult::Failed { reason, detail } => (None, None, Some(format!("{reason}: {detail}")), None, None, None),
    };
    // The same bytes give the same PDQ: the first record stands, but a
    // hash fills in where an earlier attempt failed (e.g. on budget).
    tx.prepare_cached(
        "INSERT INTO contents (blake3, md5, sha1, sha256, bytes, pdq, pdq_quality, pdq_error, width, height,
                               pdq_scale, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)
         ON CONFLICT (blake3) DO UPDATE SET
           first_seen = min(first_seen, excluded.first_seen),
           last_seen = max(last_seen, excluded.last_seen),
           pdq = coalesce(pdq, excluded.pdq),
           pdq_quality = coalesce(pdq_quality, excluded.pdq_quality),
           width = coalesce(width, excluded.width),
           height = coalesce(height, excluded.height),
           pdq_scale = coalesce(pdq_scale, excluded.pdq_scale),
           pdq_error = CASE WHEN coalesce(pdq, excluded.pdq) IS NULL THEN pdq_error ELSE NULL END",
    )?
    .execute(params![
        &d.blake3[..],
        &d.md5[..],
        &d.sha1[..],
        &d.sha256[..],
        d.bytes as i64,
        pdq,
        quality,
        error,
        width,
        height,
        scale,
        rec.fetched_at_ms
    ])?;
    if let Some(page) = &rec.page_url {
        tx.prepare_cached("INSERT OR IGNORE INTO edges (scan, page_url, image_id, seen_at) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![rec.scan, page, rec.image_id, rec.fetched_at_ms])?;
    }
    Ok(())
}

fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

fn hex_col(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<String> {
    Ok(hex::encode(row.get::<_, Vec<u8>>(i)?))
}

fn query_hits(c: &Connection, f: &HitFilter) -> Result<Vec<Hit>, StoreError> {
    let mut st = c.prepare(
        "SELECT ct.blake3, ct.md5, ct.sha1, ct.sha256, ct.bytes, ct.first_seen, ct.last_seen, ct.score,
                ct.match_kind, ct.match_algo, ct.distance, ct.reference_version, ct.reasons,
                cs.status, cs.scan, ct.pdq, ct.pdq_quality, ct.pdq_error, ct.width, ct.height
         FROM contents ct LEFT JOIN cases cs ON cs.blake3 = ct.blake3
         WHERE (?1 OR cs.id IS NOT NULL)
           AND (?2 IS NULL OR ct.score >= ?2)
           AND (?3 IS NULL OR EXISTS (SELECT 1 FROM images i WHERE i.blake3 = ct.blake3 AND i.scan = ?3))
         ORDER BY (cs.id IS NULL), ct.score DESC, ct.first_seen, ct.blake3",
    )?;
    let rows = st.query_map(params![f.all, f.min_score, f.scan], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            Hit {
                image_url: String::new(),
                image_urls: Vec::new(),
                page_urls: Vec::new(),
                host: String::new(),
                ips: Vec::new(),
                blake3: hex_col(r, 0)?,
                md5: hex_col(r, 1)?,
                sha1: hex_col(r, 2)?,
                sha256: hex_col(r, 3)?,
                bytes: r.get::<_, i64>(4)? as u64,
                pdq: r
                    .get::<_, Option<Vec<u8>>>(15)?
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .map(|b| PdqHash::from_bytes(b).to_hex()),
                pdq_quality: r.get(16)?,
                pdq_error: r.get(17)?,
                width: r.get(18)?,
                height: r.get(19)?,
                first_seen: rfc3339(r.get(5)?),
                last_seen: rfc3339(r.get(6)?),
                score: r.get(7)?,
                match_kind: MatchKind::None,
                match_algo: r.get(9)?,
                distance: r.get(10)?,
                reference_version: r.get(11)?,
                reasons: Vec::new(),
                status: r.get::<_, Option<String>>(13)?.unwrap_or_else(|| "none".into()),
                scan: r.get::<_, Option<String>>(14)?.unwrap_or_default(),
            },
            r.get::<_, String>(8)?,
            r.get::<_, String>(12)?,
        ))
    })?;
    let mut images = c.prepare_cached(
        "SELECT image_id, host, ip, scan FROM images WHERE blake3 = ?1 AND (?2 IS NULL OR scan = ?2) ORDER BY fetched_at, image_id",
    )?;
    let mut pages = c.prepare_cached(
        "SELECT DISTINCT e.page_url FROM edges e JOIN images i USING (scan, image_id)
         WHERE i.blake3 = ?1 AND (?2 IS NULL OR e.scan = ?2) ORDER BY e.seen_at, e.page_url",
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (key, mut hit, kind, reasons) = row?;
        hit.match_kind = MatchKind::parse(&kind)?;
        hit.reasons = serde_json::from_str(&reasons).map_err(|e| StoreError::Corrupt {
            table: "contents",
            column: "reasons",
            detail: e.to_string(),
        })?;
        let imgs = images
            .query_map(params![key, f.scan], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for (id, host, ip, scan) in imgs {
            if hit.image_urls.is_empty() {
                hit.image_url = id.clone();
                hit.host = host;
                if hit.scan.is_empty() {
                    hit.scan = scan;
                }
            }
            if !hit.image_urls.contains(&id) {
                hit.image_urls.push(id);
            }
            if let Some(ip) = ip.filter(|ip| !hit.ips.contains(ip)) {
                hit.ips.push(ip);
            }
        }
        hit.page_urls = pages.query_map(params![key, f.scan], |r| r.get(0))?.collect::<Result<Vec<_>, _>>()?;
        out.push(hit);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(scan: &str, id: &str, page: Option<&str>, data: &[u8], at: i64) -> ImageRecord {
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

    fn exact() -> Assessment {
        Assessment {
            score: 1.0,
            match_kind: MatchKind::Exact,
            match_algo: Some("sha1".into()),
            distance: Some(0),
            reference_version: Some("abcd".into()),
            reasons: vec![Reason { factor: "exact_match".into(), value: 1.0, weight: 1.0, note: "sha1 listed".into() }],
        }
    }

    #[tokio::test]
    async fn sightings_join_edges_and_images_in_any_order() {
        let s = SqliteStore::in_memory().unwrap();
        // Edge first, image later, and a second page after.
        s.record_edges("s1", "http://www.site0.test/a", &["http://img/x.png".into()], 10).await.unwrap();
        s.record_image(image("s1", "http://img/x.png", None, b"x", 20)).await.unwrap();
        s.record_edges("s1", "http://www.site0.test/b", &["http://img/x.png".into()], 30).await.unwrap();
        let c = s.counts(None).await.unwrap();
        assert_eq!((c.images, c.contents, c.edges, c.sightings, c.cases), (1, 1, 2, 2, 0));
        let hits = s.hits(HitFilter { all: true, ..Default::default() }).await.unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].page_urls, vec!["http://www.site0.test/a", "http://www.site0.test/b"]);
        assert_eq!(hits[0].status, "none");
        assert!(s.hits(HitFilter::default()).await.unwrap().is_empty(), "no case, no hit");
    }

    #[tokio::test]
    async fn redelivery_changes_nothing() {
        let s = SqliteStore::in_memory().unwrap();
        for _ in 0..3 {
            s.record_image(image("s1", "http://img/x.png", Some("http://p/1"), b"x", 5)).await.unwrap();
            s.record_assessment(Digests::of(b"x").blake3, exact()).await.unwrap();
            s.open_case(Digests::of(b"x").blake3, 1.0, "s1", 5).await.unwrap();
        }
        let c = s.counts(Some("s1".into())).await.unwrap();
        assert_eq!((c.images, c.contents, c.edges, c.sightings, c.cases), (1, 1, 1, 1, 1));
    }

    #[tokio::test]
    async fn hits_carry_hashes_reasons_and_times() {
        let s = SqliteStore::in_memory().unwrap();
        s.record_image(image("s1", "http://img/x.png", Some("http://p/1"), b"abc", 1_000)).await.unwrap();
        s.record_image(image("s1", "http://img/copy.png", Some("http://p/2"), b"abc", 2_000)).await.unwrap();
        s.record_image(image("s1", "http://img/y.png", Some("http://p/1"), b"other", 1_500)).await.unwrap();
        let key = Digests::of(b"abc").blake3;
        s.record_assessment(key, exact()).await.unwrap();
        let id = s.open_case(key, 1.0, "s1", 1_000).await.unwrap();
        assert_eq!(s.open_case(key, 0.5, "s1", 3_000).await.unwrap(), id, "one case per image");
        let hits = s.hits(HitFilter::default()).await.unwrap();
        assert_eq!(hits.len(), 1);
        let h = &hits[0];
        assert_eq!(h.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(h.image_url, "http://img/x.png");
        assert_eq!(h.image_urls, vec!["http://img/x.png", "http://img/copy.png"]);
        assert_eq!(h.page_urls, vec!["http://p/1", "http://p/2"]);
        assert_eq!(h.match_kind, MatchKind::Exact);
        assert_eq!(h.score, 1.0);
        assert_eq!(h.status, "open");
        assert_eq!(h.first_seen, "1970-01-01T00:00:01.000Z");
        assert_eq!(h.last_seen, "1970-01-01T00:00:02.000Z");
        assert_eq!(h.reasons, exact().reasons);
        let all = s.hits(HitFilter { all: true, ..Default::default() }).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].blake3, h.blake3, "cases first");
        let none = s.hits(HitFilter { all: true, min_score: Some(0.5), ..Default::default() }).await.unwrap();
        assert_eq!(none.len(), 1);
        let other = s.hits(HitFilter { all: true, scan: Some("s2".into()), ..Default::default() }).await.unwrap();
        assert!(other.is_empty());
    }

    #[tokio::test]
    async fn pdq_is_stored_and_a_later_hash_fills_an_earlier_failure() {
        let s = SqliteStore::in_memory().unwrap();
        let failed = image("s1", "http://img/x.jpg", Some("http://p/1"), b"x", 1);
        s.record_image(failed.clone()).await.unwrap();
        let all = s.hits(HitFilter { all: true, ..Default::default() }).await.unwrap();
        assert_eq!((all[0].pdq.as_deref(), all[0].pdq_error.as_deref()), (None, Some("unknown_format: test bytes")));
        let hash = PdqHash::from_bytes([0xab; 32]);
        let hashed = ImageRecord {
            image_id: "http://img/x2.jpg".into(),
            pdq: PdqResult::Hashed { hash, quality: 87, width: 640, height: 480, scale: 1 },
            ..failed
        };
        s.record_image(hashed).await.unwrap();
        let all = s.hits(HitFilter { all: true, ..Default::default() }).await.unwrap();
        let h = &all[0];
        assert_eq!(h.pdq.as_deref(), Some(hash.to_hex().as_str()));
        assert_eq!((h.pdq_quality, h.width, h.height, h.pdq_error.as_deref()), (Some(87), Some(640), Some(480), None));
        let json = serde_json::to_value(h).unwrap();
        assert!(json.get("pdq_error").is_none(), "absent, not null, when there is a hash");
    }

    #[tokio::test]
    async fn a_database_of_another_schema_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("CREATE TABLE contents (blake3 BLOB); PRAGMA user_version = 1;").unwrap();
        }
        let err = SqliteStore::open(&path).err().expect("refused");
        assert!(matches!(err, StoreError::Schema { found: 1, expected: SCHEMA_VERSION }), "{err}");
        assert!(err.to_string().contains("--data-dir"));
    }

    #[tokio::test]
    async fn store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hashscan.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            s.begin_scan(ScanRecord {
                id: "s1".into(),
                started_at_ms: 1,
                config_json: "{}".into(),
                reference_version: "v".into(),
            })
            .await
            .unwrap();
            s.record_fetch(FetchRecord {
                scan: "s1".into(),
                url: "http://p/1".into(),
                kind: "page".into(),
                depth: 0,
                outcome: "failed".into(),
                reason: Some("timeout".into()),
                detail: Some("body".into()),
                ip: None,
                at_ms: 3,
            })
            .await
            .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.latest_scan().await.unwrap().as_deref(), Some("s1"));
        let f = s.fetches("s1").await.unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].reason.as_deref(), Some("timeout"));
    }
}
