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
pub use hashscan_bus::{PdqResult, Validators};
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
    /// Another backend's database reported an error (its message): lets a
    /// store other than SQLite report without this crate depending on it.
    #[error("database: {0}")]
    Backend(String),
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
    /// No recurring scan of this id.
    #[error("no recurring scan {0:?} in this data directory (see `hashscan scan list`)")]
    NoSchedule(String),
    /// No case for this image (BLAKE3, hex).
    #[error("no case for image {0}")]
    NoCase(String),
    /// Not a case status.
    #[error("unknown case status {0:?} (use one of open, confirmed, not_abuse, escalate)")]
    BadStatus(String),
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

/// What a case can be: waiting, or decided by an analyst.
pub const CASE_STATUSES: [&str; 4] = ["open", "confirmed", "not_abuse", "escalate"];

/// Version of the SQLite schema, kept in `PRAGMA user_version`; a file of
/// another version is refused with [`StoreError::Schema`] rather than misread.
pub const SCHEMA_VERSION: i64 = 5;

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
    /// The stored name (`exact`, `near`, `none`), the same in every store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Near => "near",
            Self::None => "none",
        }
    }

    /// The kind of a stored name; anything else is a corrupt store.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
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

/// A case whose image a re-check asks for again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecheckItem {
    /// The image's BLAKE3.
    pub blake3: [u8; 32],
    /// Every http(s) URL it was fetched from.
    pub urls: Vec<String>,
}

impl Hit {
    /// Adds one stored image of this content (URL, host, address, scan):
    /// the first one names the hit; URLs and addresses are kept once each.
    pub fn add_image(&mut self, id: String, host: String, ip: Option<String>, scan: String) {
        if self.image_urls.is_empty() {
            self.image_url = id.clone();
            self.host = host;
            if self.scan.is_empty() {
                self.scan = scan;
            }
        }
        if !self.image_urls.contains(&id) {
            self.image_urls.push(id);
        }
        if let Some(ip) = ip.filter(|ip| !self.ips.contains(ip)) {
            self.ips.push(ip);
        }
    }
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
    /// What the reference set said about the image itself.
    pub reasons: Vec<Reason>,
    /// The factors of its risk score: the circumstances where it was seen
    /// (see `hashscan-score`), each with value and weight.
    #[serde(default)]
    pub factors: Vec<Reason>,
    /// Case status (`open`, …), or `none` for an image that is not a case.
    pub status: String,
    /// First seen (RFC 3339).
    pub first_seen: String,
    /// Last seen (RFC 3339).
    pub last_seen: String,
    /// Scan(s) it was seen in (first one first).
    pub scan: String,
    /// The case was found by a scan that was told to ignore robots.txt.
    #[serde(default)]
    pub robots_ignored: bool,
    /// Whether the last re-check found the image still served (absent
    /// when never re-checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<bool>,
    /// The last re-check (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked: Option<String>,
    /// The first re-check that found it gone (RFC 3339); it went between
    /// `last_online` and this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_since: Option<String>,
    /// The last re-check that found it served (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_online: Option<String>,
    /// Seconds from first seen to `offline_since`: time to removal, as far
    /// as the re-checks can tell (an upper bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removal_secs: Option<f64>,
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

/// What an earlier fetch of a URL learned, kept across scans so the next
/// fetch can be conditional and a 304 can stand for the same result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedFetch {
    /// The response's validators.
    pub validators: Validators,
    /// An image's BLAKE3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// A page's links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// A page's image URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// A page's `data:` image ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_ids: Vec<String>,
}

/// The record of what was seen.
#[async_trait]
pub trait SightingStore: Send + Sync {
    /// What the last fetch of `url` (in any scan) learned, if it sent validators.
    async fn cached_fetch(&self, url: &str) -> Result<Option<CachedFetch>, StoreError>;
    /// Keeps what a fetch of `url` learned, for the next scan.
    async fn record_cached_fetch(&self, url: &str, cached: CachedFetch, at_ms: i64) -> Result<(), StoreError>;
    /// A stored content's hashes, by BLAKE3.
    async fn content(&self, blake3: [u8; 32]) -> Result<Option<StoredContent>, StoreError>;
    /// Stored contents in storage order after the position `after` (the one
    /// returned with the last content of the previous page), at most
    /// `limit`: a sequential walk over everything ever seen, for
    /// retro-matching. `scan` is left empty (finding it costs a random read
    /// per row); ask [`SightingStore::content`] for the few that match.
    async fn contents_page(&self, after: Option<i64>, limit: usize) -> Result<Vec<(i64, StoredContent)>, StoreError>;
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
    /// Records an analyst's decision on the case of an image: `confirmed`,
    /// `not_abuse`, `escalate` or back to `open`. Fails with
    /// [`StoreError::NoCase`] when the image has no case.
    async fn decide(&self, blake3: [u8; 32], status: &str, at_ms: i64) -> Result<(), StoreError>;
    /// Cases in one of `statuses` with the http(s) URLs their image was
    /// fetched from: what a re-check asks for.
    async fn cases_to_recheck(&self, statuses: &[String]) -> Result<Vec<RecheckItem>, StoreError>;
    /// Records a re-check: the image was still served (`online`) or no
    /// longer (removed or replaced) at `at_ms`. The first check that finds
    /// it gone sets `offline_since`; one that finds it back clears it.
    async fn record_check(&self, blake3: [u8; 32], at_ms: i64, online: bool) -> Result<(), StoreError>;
}

/// Scans and recurring scans: what the CLI, the scheduler and the
/// cluster record about a run, and what an earlier run teaches the next.
#[async_trait]
pub trait ScanStore: Send + Sync {
    /// Records the start of a scan.
    async fn begin_scan(&self, scan: ScanRecord) -> Result<(), StoreError>;
    /// Records the end of a scan with its summary (JSON).
    async fn finish_scan(&self, id: &str, at_ms: i64, summary_json: String) -> Result<(), StoreError>;
    /// Row counts, optionally for one scan.
    async fn counts(&self, scan: Option<String>) -> Result<StoreCounts, StoreError>;
    /// Every fetch outcome of a scan, for summaries and tests.
    async fn fetches(&self, scan: &str) -> Result<Vec<FetchRecord>, StoreError>;
    /// The most recent scan id, so `hits` can default to it.
    async fn latest_scan(&self) -> Result<Option<String>, StoreError>;
    /// Defines (or redefines, from run 0) a recurring scan, active and due now.
    async fn put_schedule(&self, id: &str, every_ms: i64, max_runs: Option<i64>, now_ms: i64)
        -> Result<(), StoreError>;
    /// One schedule.
    async fn schedule(&self, id: &str) -> Result<Option<Schedule>, StoreError>;
    /// Every schedule, by id.
    async fn schedules(&self) -> Result<Vec<Schedule>, StoreError>;
    /// Pauses, resumes (`active`), stops or finishes a schedule.
    async fn set_schedule_state(&self, id: &str, state: &str) -> Result<(), StoreError>;
    /// Records that run `run_id` of a schedule finished; the next is due at `next_run_at`.
    async fn schedule_ran(&self, id: &str, run_id: &str, next_run_at: i64) -> Result<(), StoreError>;
    /// Every scan recorded here: id, start, end (Unix ms) and summary JSON,
    /// newest first, at most `limit`.
    async fn scan_list(&self, limit: usize) -> Result<Vec<(String, i64, Option<i64>, Option<String>)>, StoreError>;
    /// Pages where listed or confirmed material was seen, most such images
    /// first, at most `limit`: where a recurring scan looks first.
    async fn hotspot_pages(&self, limit: usize) -> Result<Vec<String>, StoreError>;
    /// Per host of the pages a scan saw: pages, and pages with listed or
    /// confirmed material (as known now).
    async fn host_findings(&self, scan: &str) -> Result<Vec<HostFindings>, StoreError>;
}

/// Everything the rest of hashscan needs from a results store, so a
/// process can hold one `Arc<dyn Store>` whatever the backend (SQLite
/// here, PostgreSQL in `hashscan-store-postgres`). An `Arc<dyn Store>`
/// coerces to `Arc<dyn CaseStore>` and the other parts (trait upcasting).
pub trait Store: SightingStore + CaseStore + EvidenceStore + ReviewStore + ScanStore {}

impl<T: SightingStore + CaseStore + EvidenceStore + ReviewStore + ScanStore + ?Sized> Store for T {}

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
    reasons TEXT NOT NULL DEFAULT '[]',
    ref_score REAL NOT NULL DEFAULT 0,
    ignored INTEGER NOT NULL DEFAULT 0,
    factors TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS edges_by_page ON edges (page_url);
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
CREATE TABLE IF NOT EXISTS cached_fetches (
    url TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reference_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version TEXT NOT NULL,
    applied_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS schedules (
    id TEXT PRIMARY KEY,
    every_ms INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'active',
    runs INTEGER NOT NULL DEFAULT 0,
    max_runs INTEGER,
    last_run TEXT,
    next_run_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cases (
    id INTEGER PRIMARY KEY,
    blake3 BLOB NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'open',
    score REAL NOT NULL,
    scan TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_checked_at INTEGER,
    online INTEGER,
    last_online_at INTEGER,
    offline_since INTEGER
);
-- The review service (module `review`): users, sessions, API tokens,
-- claims, decisions, the append-only audit log, and the queue's indexes.
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('analyst', 'lead', 'admin')),
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    label TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash BLOB PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    client_ip TEXT
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id);
CREATE TABLE IF NOT EXISTS claims (
    case_id INTEGER PRIMARY KEY REFERENCES cases (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    claimed_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases (id),
    actor TEXT NOT NULL,
    at INTEGER NOT NULL,
    before_status TEXT NOT NULL,
    after_status TEXT NOT NULL,
    note TEXT NOT NULL,
    undone_at INTEGER
);
CREATE INDEX IF NOT EXISTS decisions_by_case ON decisions (case_id, id);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    case_id INTEGER,
    before TEXT,
    after TEXT,
    detail TEXT,
    client_ip TEXT
);
CREATE INDEX IF NOT EXISTS audit_by_case ON audit (case_id, id);
CREATE INDEX IF NOT EXISTS audit_by_actor ON audit (actor, id);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_by_key ON login_failures (key, at);
CREATE TABLE IF NOT EXISTS review_places (
    blake3 BLOB NOT NULL,
    host TEXT NOT NULL,
    domain TEXT NOT NULL,
    PRIMARY KEY (blake3, host)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS review_places_by_host ON review_places (host, blake3);
CREATE INDEX IF NOT EXISTS review_places_by_domain ON review_places (domain, blake3);
CREATE TABLE IF NOT EXISTS review_state (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS cases_queue ON cases (status, score DESC, opened_at, id);
CREATE INDEX IF NOT EXISTS cases_queue_by_scan ON cases (scan, status, score DESC, opened_at, id);
"#;

/// Whether SQLite gave up on a lock held by another connection.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked))
}

/// From schema 4 to 5: the reference value and the circumstance factors
/// are kept apart from the final score; cases record whether their image
/// is still online.
const MIGRATE_4_TO_5: &str = "
ALTER TABLE contents ADD COLUMN ref_score REAL NOT NULL DEFAULT 0;
ALTER TABLE contents ADD COLUMN ignored INTEGER NOT NULL DEFAULT 0;
ALTER TABLE contents ADD COLUMN factors TEXT NOT NULL DEFAULT '[]';
UPDATE contents SET ref_score = score;
ALTER TABLE cases ADD COLUMN last_checked_at INTEGER;
ALTER TABLE cases ADD COLUMN online INTEGER;
ALTER TABLE cases ADD COLUMN last_online_at INTEGER;
ALTER TABLE cases ADD COLUMN offline_since INTEGER;
";

/// The embedded store: one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (or creates) the store at `path`.
    ///
    /// Several cluster workers may open a new file at the same moment. Turning
    /// a fresh file to WAL takes an exclusive lock for which SQLite does not
    /// always call its busy handler, so a "database is locked" here is
    /// retried (for up to 30 s) instead of failing the worker's start.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut pause = Duration::from_millis(20);
        loop {
            match Connection::open(path).map_err(StoreError::from).and_then(Self::init) {
                Err(StoreError::Db(e)) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                other => return other,
            }
        }
    }

    /// A throw-away store in memory (tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Several processes (cluster workers) may open a new file at once:
        // check and create the schema under the write lock, so none sees
        // another's half-made schema.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let created = (|| {
            let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            let existing: i64 =
                conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))?;
            if existing > 0 && found == 4 {
                // v5 added the risk score's columns; older scores are the
                // reference set's own.
                conn.execute_batch(MIGRATE_4_TO_5)?;
            } else if existing > 0 && found != SCHEMA_VERSION {
                return Err(StoreError::Schema { found, expected: SCHEMA_VERSION });
            }
            conn.execute_batch(SCHEMA)?;
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            Ok(())
        })();
        match created {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
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
}

#[async_trait]
impl SightingStore for SqliteStore {
    async fn cached_fetch(&self, url: &str) -> Result<Option<CachedFetch>, StoreError> {
        let url = url.to_string();
        self.run(move |c| {
            let data: Option<String> = c
                .prepare_cached("SELECT data FROM cached_fetches WHERE url = ?1")?
                .query_row(params![url], |r| r.get(0))
                .optional()?;
            data.map(|d| {
                serde_json::from_str(&d).map_err(|e| StoreError::Corrupt {
                    table: "cached_fetches",
                    column: "data",
                    detail: e.to_string(),
                })
            })
            .transpose()
        })
        .await
    }

    async fn record_cached_fetch(&self, url: &str, cached: CachedFetch, at_ms: i64) -> Result<(), StoreError> {
        let url = url.to_string();
        let data = serde_json::to_string(&cached).map_err(|e| StoreError::Worker(e.to_string()))?;
        self.run(move |c| {
            c.prepare_cached(
                "INSERT INTO cached_fetches (url, data, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (url) DO UPDATE SET data = excluded.data, at = excluded.at",
            )?
            .execute(params![url, data, at_ms])?;
            Ok(())
        })
        .await
    }

    async fn content(&self, blake3: [u8; 32]) -> Result<Option<StoredContent>, StoreError> {
        self.run(move |c| {
            let mut st = c.prepare_cached(&format!("{CONTENT_SELECT} WHERE ct.blake3 = ?1"))?;
            Ok(st.query_row(params![&blake3[..]], stored_content).optional()?)
        })
        .await
    }

    async fn contents_page(&self, after: Option<i64>, limit: usize) -> Result<Vec<(i64, StoredContent)>, StoreError> {
        self.run(move |c| {
            // In rowid order: a sequential read of the table, not one random
            // read per row as the BLAKE3 order (through its index) would be.
            let mut st = c.prepare_cached(
                "SELECT ct.blake3, ct.md5, ct.sha1, ct.sha256, ct.bytes, ct.pdq, ct.pdq_quality, ct.width,
                        ct.height, ct.pdq_scale, ct.pdq_error, ct.first_seen, NULL, ct.rowid
                 FROM contents ct WHERE ct.rowid > ?1 ORDER BY ct.rowid LIMIT ?2",
            )?;
            let rows = st.query_map(params![after.unwrap_or(i64::MIN), limit as i64], |r| {
                Ok((r.get::<_, i64>(13)?, stored_content(r)?))
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
        let ignored = a.reasons.iter().any(|r| r.factor == "ignore_list");
        self.run(move |c| {
            c.execute(
                "UPDATE contents SET ref_score = ?2, match_kind = ?3, match_algo = ?4, distance = ?5,
                   reference_version = ?6, reasons = ?7, ignored = ?8,
                   score = CASE WHEN factors = '[]' THEN ?2 ELSE score END
                 WHERE blake3 = ?1",
                params![
                    &blake3[..],
                    a.score,
                    a.match_kind.as_str(),
                    a.match_algo,
                    a.distance,
                    a.reference_version,
                    reasons,
                    ignored
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

    async fn cases_to_recheck(&self, statuses: &[String]) -> Result<Vec<RecheckItem>, StoreError> {
        let statuses = statuses.to_vec();
        self.run(move |c| {
            let mut cases = c.prepare_cached("SELECT blake3, status FROM cases ORDER BY id")?;
            let mut urls = c.prepare_cached(
                "SELECT DISTINCT image_id FROM images WHERE blake3 = ?1
                   AND (image_id LIKE 'http://%' OR image_id LIKE 'https://%') ORDER BY image_id",
            )?;
            let rows = cases.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (key, status) = row?;
                if !statuses.contains(&status) {
                    continue;
                }
                let blake3 = <[u8; 32]>::try_from(key.as_slice()).map_err(|_| StoreError::Corrupt {
                    table: "cases",
                    column: "blake3",
                    detail: format!("{} bytes, not 32", key.len()),
                })?;
                let urls = urls.query_map(params![key], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
                if !urls.is_empty() {
                    out.push(RecheckItem { blake3, urls });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn record_check(&self, blake3: [u8; 32], at_ms: i64, online: bool) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "UPDATE cases SET last_checked_at = ?2, online = ?3,
                   last_online_at = CASE WHEN ?3 THEN ?2 ELSE last_online_at END,
                   offline_since = CASE WHEN ?3 THEN NULL ELSE coalesce(offline_since, ?2) END
                 WHERE blake3 = ?1",
                params![&blake3[..], at_ms, online],
            )?;
            Ok(())
        })
        .await
    }

    async fn decide(&self, blake3: [u8; 32], status: &str, at_ms: i64) -> Result<(), StoreError> {
        if !CASE_STATUSES.contains(&status) {
            return Err(StoreError::BadStatus(status.to_string()));
        }
        let status = status.to_string();
        self.run(move |c| {
            let n = c.execute(
                "UPDATE cases SET status = ?2, updated_at = ?3 WHERE blake3 = ?1",
                params![&blake3[..], status, at_ms],
            )?;
            if n == 0 {
                return Err(StoreError::NoCase(hex::encode(blake3)));
            }
            Ok(())
        })
        .await
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

/// Columns of a stored content, for [`stored_content`].
const CONTENT_SELECT: &str = "SELECT ct.blake3, ct.md5, ct.sha1, ct.sha256, ct.bytes, ct.pdq, ct.pdq_quality, ct.width,
        ct.height, ct.pdq_scale, ct.pdq_error, ct.first_seen,
        (SELECT i.scan FROM images i WHERE i.blake3 = ct.blake3 ORDER BY i.fetched_at LIMIT 1)
     FROM contents ct";

/// A row of [`CONTENT_SELECT`].
fn stored_content(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredContent> {
    let fixed = |i: usize, len: usize| -> rusqlite::Result<Vec<u8>> {
        let v: Vec<u8> = r.get(i)?;
        if v.len() == len {
            Ok(v)
        } else {
            Err(rusqlite::Error::InvalidColumnType(i, "digest".into(), rusqlite::types::Type::Blob))
        }
    };
    let mut d =
        Digests { bytes: r.get::<_, i64>(4)? as u64, md5: [0; 16], sha1: [0; 20], sha256: [0; 32], blake3: [0; 32] };
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
}

/// Unix milliseconds as RFC 3339 (UTC, milliseconds), as every store
/// shows times; negative times as the epoch.
pub fn rfc3339(ms: i64) -> String {
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
                cs.status, cs.scan, ct.pdq, ct.pdq_quality, ct.pdq_error, ct.width, ct.height,
                coalesce((SELECT json_extract(s.config, '$.ignore_robots') FROM scans s WHERE s.id = cs.scan), 0),
                ct.factors, cs.online, cs.last_checked_at, cs.offline_since, cs.last_online_at
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
                robots_ignored: r.get::<_, Option<bool>>(20)?.unwrap_or(false),
                online: r.get(22)?,
                last_checked: r.get::<_, Option<i64>>(23)?.map(rfc3339),
                offline_since: r.get::<_, Option<i64>>(24)?.map(rfc3339),
                last_online: r.get::<_, Option<i64>>(25)?.map(rfc3339),
                removal_secs: r
                    .get::<_, Option<i64>>(24)?
                    .map(|off| (off - r.get::<_, i64>(5).unwrap_or(off)).max(0) as f64 / 1000.0),
                first_seen: rfc3339(r.get(5)?),
                last_seen: rfc3339(r.get(6)?),
                score: r.get(7)?,
                match_kind: MatchKind::None,
                match_algo: r.get(9)?,
                distance: r.get(10)?,
                reference_version: r.get(11)?,
                reasons: Vec::new(),
                factors: Vec::new(),
                status: r.get::<_, Option<String>>(13)?.unwrap_or_else(|| "none".into()),
                scan: r.get::<_, Option<String>>(14)?.unwrap_or_default(),
            },
            r.get::<_, String>(8)?,
            r.get::<_, String>(12)?,
            r.get::<_, String>(21)?,
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
        let (key, mut hit, kind, reasons, factors) = row?;
        hit.match_kind = MatchKind::parse(&kind)?;
        hit.reasons = serde_json::from_str(&reasons).map_err(|e| StoreError::Corrupt {
            table: "contents",
            column: "reasons",
            detail: e.to_string(),
        })?;
        hit.factors = serde_json::from_str(&factors).map_err(|e| StoreError::Corrupt {
            table: "contents",
            column: "factors",
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
            hit.add_image(id, host, ip, scan);
        }
        hit.page_urls = pages.query_map(params![key, f.scan], |r| r.get(0))?.collect::<Result<Vec<_>, _>>()?;
        out.push(hit);
    }
    Ok(out)
}

mod evidence;
pub mod review;
pub use review::ReviewStore;
mod schedule;
#[cfg(feature = "testkit")]
pub mod testkit;
pub use evidence::{origin_of, EvidenceStore, HostEvidence, PageEvidence, RawEvidence, MAX_HOSTS, MAX_LISTED_PAGES};
pub use schedule::{HostFindings, Schedule, SCHEDULE_STATES};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_rfc3339_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
    }

    #[test]
    fn many_workers_opening_a_new_file_at_once_all_succeed() {
        // Cluster workers start together on one new file (CI once saw a
        // matcher die with "database is locked" here).
        for round in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("hashscan.db");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(12));
            let openers: Vec<_> = (0..12)
                .map(|_| {
                    let (path, barrier) = (path.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        SqliteStore::open(&path).map(|_| ())
                    })
                })
                .collect();
            for o in openers {
                o.join().unwrap().unwrap_or_else(|e| panic!("round {round}: {e}"));
            }
        }
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
