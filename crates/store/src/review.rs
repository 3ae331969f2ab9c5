//! What the review service keeps: users, sessions, API tokens, claims on
//! cases, the analysts' decisions and the append-only audit log, plus the
//! queries behind the queue and the case page.
//!
//! Decisions:
//! * Every state change is one transaction that also appends its audit row,
//!   so the log can never miss an action that happened, nor record one that
//!   did not.
//! * A claim is one row per case ([`ReviewStore::claim`]): taking it is a
//!   single conditional upsert, so two analysts — in one process or in
//!   several — can never hold the same case. An expired lease is simply
//!   ignored by every query; nothing has to clean it up.
//! * The audit table is append-only in the database itself: triggers raise
//!   on any UPDATE or DELETE, whoever runs them.
//! * The queue pages by keyset on `(score DESC, opened_at, id)` of the
//!   `cases` table, split into at most three index ranges, so page 10,000 of
//!   a million cases costs what page 1 does. Host and registrable-domain
//!   filters read [`ReviewStore::sync_places`]' table, which is derived
//!   incrementally from the sightings because the hosts of a case live in
//!   two other tables (image hosts, page URLs) that cannot be indexed by
//!   domain.
//! * Secrets are never stored: passwords as Argon2id PHC strings (made by
//!   the caller), session and API tokens as their SHA-256.

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use crate::evidence::origin_of;
use crate::{hex_col, rfc3339, MatchKind, Reason, SqliteStore, StoreError};

/// Roles of review users, least to most trusted: an `analyst` works the
/// queue; a `lead` may also decide in bulk and read the audit log; an
/// `admin` may do everything (user management is on the command line).
pub const ROLES: [&str; 3] = ["analyst", "lead", "admin"];

/// What an analyst may decide on a case (`open` is reached only by undo).
pub const DECISIONS: [&str; 3] = ["confirmed", "not_abuse", "escalate"];

/// A review user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Login name, unique.
    pub name: String,
    /// One of [`ROLES`].
    pub role: String,
    /// Argon2id PHC string; never serialised.
    #[serde(skip)]
    pub password_hash: String,
    /// A disabled user can neither log in nor use a token or session.
    pub disabled: bool,
    /// When the user was added (Unix ms).
    pub created_at_ms: i64,
}

/// An API token as an admin sees it: never the token, only what tells one
/// from another, so a leaked or unused one can be found and revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Row id, what `user revoke` takes.
    pub id: i64,
    /// The user it acts as.
    pub user: String,
    /// What it is for.
    pub label: String,
    /// When it was made (Unix ms).
    pub created_at_ms: i64,
    /// When it was last used (Unix ms), if ever.
    pub last_used_at_ms: Option<i64>,
}

/// Who does something, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Actor {
    /// User name (or `cli:NAME` for the command line).
    pub name: String,
    /// Client address, when the action came over HTTP.
    pub ip: Option<String>,
}

/// An audit entry to append.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewAudit {
    /// Who.
    pub actor: Actor,
    /// What (`login_ok`, `claim`, `decision` …).
    pub action: String,
    /// Which case, if one.
    pub case_id: Option<i64>,
    /// State before, as JSON.
    pub before: Option<serde_json::Value>,
    /// State after, as JSON.
    pub after: Option<serde_json::Value>,
    /// Free text (a note, a reason for a failure).
    pub detail: Option<String>,
    /// When (Unix ms).
    pub at_ms: i64,
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Increasing id; the log's order.
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// When (Unix ms).
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Which case.
    pub case_id: Option<i64>,
    /// State before.
    pub before: Option<serde_json::Value>,
    /// State after.
    pub after: Option<serde_json::Value>,
    /// Free text.
    pub detail: Option<String>,
    /// Client address.
    pub client_ip: Option<String>,
}

/// Which audit rows to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this case.
    pub case_id: Option<i64>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Keyset cursor: rows after this id in the reading order.
    pub after_id: Option<i64>,
    /// At most this many.
    pub limit: usize,
    /// Oldest first (exports) instead of newest first (the viewer).
    pub oldest_first: bool,
}

/// A live claim on a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimInfo {
    /// Holder's user id.
    pub user_id: i64,
    /// Holder's name.
    pub user: String,
    /// When the lease began (Unix ms).
    pub claimed_at_ms: i64,
    /// When it ends (Unix ms).
    pub expires_at_ms: i64,
}

/// Where the queue resumes: the sort key of the last row of a page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueCursor {
    /// The case's score.
    pub score: f64,
    /// When the case was opened (Unix ms).
    pub opened_at_ms: i64,
    /// The case id.
    pub id: i64,
}

/// Which claims the queue shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClaimFilter {
    /// Claimed or not.
    #[default]
    Any,
    /// Only cases nobody holds.
    Free,
    /// Only cases this user holds.
    Mine(i64),
}

/// The queue's filters (all optional but `status`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueFilter {
    /// Case status.
    pub status: String,
    /// Scan that opened the case.
    pub scan: Option<String>,
    /// A host of the image or of one of its pages.
    pub host: Option<String>,
    /// A registrable domain of the image or of one of its pages.
    pub domain: Option<String>,
    /// Match kind.
    pub match_kind: Option<MatchKind>,
    /// Case score at least.
    pub min_score: Option<f64>,
    /// Case score at most.
    pub max_score: Option<f64>,
    /// Image first seen at or after (Unix ms).
    pub since_ms: Option<i64>,
    /// Image first seen before (Unix ms).
    pub until_ms: Option<i64>,
    /// Claims.
    pub claim: ClaimFilter,
    /// Resume after this row.
    pub after: Option<QueueCursor>,
    /// At most this many rows.
    pub limit: usize,
    /// Now (Unix ms), to tell live claims from expired ones.
    pub now_ms: i64,
}

impl Default for QueueFilter {
    fn default() -> Self {
        Self {
            status: "open".into(),
            scan: None,
            host: None,
            domain: None,
            match_kind: None,
            min_score: None,
            max_score: None,
            since_ms: None,
            until_ms: None,
            claim: ClaimFilter::Any,
            after: None,
            limit: 50,
            now_ms: 0,
        }
    }
}

/// One row of the queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueRow {
    /// Case id.
    pub id: i64,
    /// The image's BLAKE3, hex.
    pub blake3: String,
    /// Case status.
    pub status: String,
    /// The case's score: the highest the image reached; orders the queue.
    pub score: f64,
    /// The image's score now (it moves with the evidence).
    pub current_score: f64,
    /// Match kind.
    #[serde(rename = "match")]
    pub match_kind: MatchKind,
    /// Scan that opened the case.
    pub scan: String,
    /// First URL of the image.
    pub image_url: String,
    /// Host of that URL.
    pub host: String,
    /// Image first seen (RFC 3339).
    pub first_seen: String,
    /// Image last seen (RFC 3339).
    pub last_seen: String,
    /// Case opened (RFC 3339).
    pub opened_at: String,
    /// Case opened (Unix ms), part of the sort key.
    #[serde(skip)]
    pub opened_at_ms: i64,
    /// The live claim, if any.
    pub claim: Option<ClaimInfo>,
    /// Whether the last re-check found the image still served.
    pub online: Option<bool>,
    /// The first re-check that found it gone (RFC 3339).
    pub offline_since: Option<String>,
}

impl QueueRow {
    /// The cursor that resumes the queue after this row.
    pub fn cursor(&self) -> QueueCursor {
        QueueCursor { score: self.score, opened_at_ms: self.opened_at_ms, id: self.id }
    }
}

/// One fetch of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSighting {
    /// Image URL.
    pub image_url: String,
    /// Host that served it.
    pub host: String,
    /// Address it came from.
    pub ip: Option<String>,
    /// Scan.
    pub scan: String,
    /// When (RFC 3339).
    pub fetched_at: String,
}

/// One page that showed the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageSighting {
    /// Page URL.
    pub page_url: String,
    /// Its host.
    pub host: String,
    /// The image URL the page showed.
    pub image_url: String,
    /// Scan.
    pub scan: String,
    /// When (RFC 3339).
    pub seen_at: String,
}

/// A host where the image or one of its pages lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostSeen {
    /// Host name.
    pub host: String,
    /// `image` (it served the image), `page` (it showed it) or `both`.
    pub role: String,
    /// Sightings there (of those listed).
    pub sightings: u64,
    /// First (RFC 3339).
    pub first_seen: String,
    /// Last (RFC 3339).
    pub last_seen: String,
}

impl HostSeen {
    /// A host of a case page from what both stores read: whether it served
    /// the image, whether it showed it, sightings, first and last (Unix ms).
    pub fn new(host: String, image: bool, page: bool, sightings: u64, first_ms: i64, last_ms: i64) -> Self {
        let role = match (image, page) {
            (true, true) => "both",
            (true, false) => "image",
            _ => "page",
        };
        HostSeen { host, role: role.into(), sightings, first_seen: rfc3339(first_ms), last_seen: rfc3339(last_ms) }
    }
}

/// One decision on a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionRecord {
    /// Row id.
    pub id: i64,
    /// Who.
    pub actor: String,
    /// When (RFC 3339).
    pub at: String,
    /// Status before.
    pub before: String,
    /// Status after.
    pub after: String,
    /// The analyst's note.
    pub note: String,
    /// When it was undone (RFC 3339), if it was.
    pub undone_at: Option<String>,
}

/// Everything the case page shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseDetail {
    /// Case id.
    pub id: i64,
    /// Status.
    pub status: String,
    /// The case's score (highest reached).
    pub score: f64,
    /// The image's score now.
    pub current_score: f64,
    /// The factors of the current score: value, weight, note each.
    pub factors: Vec<Reason>,
    /// What the reference set said about the image itself.
    pub reasons: Vec<Reason>,
    /// Match kind.
    #[serde(rename = "match")]
    pub match_kind: MatchKind,
    /// Matching algorithm.
    pub match_algo: Option<String>,
    /// PDQ distance of a near match.
    pub distance: Option<u32>,
    /// Reference set version.
    pub reference_version: Option<String>,
    /// Scan that opened the case.
    pub scan: String,
    /// The scan ignored robots.txt.
    pub robots_ignored: bool,
    /// Case opened (RFC 3339).
    pub opened_at: String,
    /// Case last changed (RFC 3339).
    pub updated_at: String,
    /// Image first seen (RFC 3339).
    pub first_seen: String,
    /// Image last seen (RFC 3339).
    pub last_seen: String,
    /// Hashes: `md5`, `sha1`, `sha256`, `blake3` (hex), `pdq` (hex or null),
    /// `pdq_quality`, `pdq_error`, `bytes`, `width`, `height`.
    pub hashes: Hashes,
    /// Every URL of the image (the first 500), in order of fetch.
    pub image_urls: Vec<String>,
    /// Image fetches (the first 500).
    pub images: Vec<ImageSighting>,
    /// Image fetches in all.
    pub images_total: u64,
    /// Pages that showed it (the first 500).
    pub pages: Vec<PageSighting>,
    /// Pages in all.
    pub pages_total: u64,
    /// Hosts of the listed image URLs and pages.
    pub hosts: Vec<HostSeen>,
    /// The live claim.
    pub claim: Option<ClaimInfo>,
    /// Whether the last re-check found the image still served.
    pub online: Option<bool>,
    /// Last re-check (RFC 3339).
    pub last_checked: Option<String>,
    /// Last re-check that found it (RFC 3339).
    pub last_online: Option<String>,
    /// First re-check that found it gone (RFC 3339).
    pub offline_since: Option<String>,
    /// Decisions, oldest first.
    pub decisions: Vec<DecisionRecord>,
}

/// The hashes of a case's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hashes {
    /// MD5, hex.
    pub md5: String,
    /// SHA-1, hex.
    pub sha1: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// BLAKE3, hex.
    pub blake3: String,
    /// PDQ, hex.
    pub pdq: Option<String>,
    /// PDQ quality.
    pub pdq_quality: Option<u8>,
    /// Why there is no PDQ.
    pub pdq_error: Option<String>,
    /// Size in bytes.
    pub bytes: u64,
    /// Pixel width.
    pub width: Option<u32>,
    /// Pixel height.
    pub height: Option<u32>,
}

/// What a claim attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The caller holds the case (newly, or renewed).
    Won(ClaimInfo),
    /// Someone else holds it.
    Held(ClaimInfo),
    /// No such case.
    NoCase,
}

/// A case that a decision (or undo) changed, for the rescoring after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// Case id.
    pub case_id: i64,
    /// Its image.
    pub blake3: [u8; 32],
    /// Its scan.
    pub scan: String,
    /// Status before.
    pub before: String,
    /// Status after.
    pub after: String,
}

/// What a claimed action (decide, undo, release) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimedOutcome {
    /// Done.
    Done(Option<Changed>),
    /// No such case.
    NoCase,
    /// The caller holds no live claim on it (the holder, if someone else).
    NotHolder(Option<ClaimInfo>),
    /// Undo: nothing of the caller's in this lease to undo.
    NothingToUndo,
    /// Undo: the status changed since (by someone else); the current one.
    Conflict(String),
}

fn now_json(s: &str) -> Option<serde_json::Value> {
    Some(serde_json::json!({ "status": s }))
}

fn audit_in(c: &Connection, a: &NewAudit) -> Result<i64, StoreError> {
    let js = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
    c.prepare_cached(
        "INSERT INTO audit (at, actor, action, case_id, before, after, detail, client_ip)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        a.at_ms,
        a.actor.name,
        a.action,
        a.case_id,
        js(&a.before),
        js(&a.after),
        a.detail,
        a.actor.ip
    ])?;
    Ok(c.last_insert_rowid())
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        password_hash: r.get(3)?,
        disabled: r.get(4)?,
        created_at_ms: r.get(5)?,
    })
}

const USER_COLS: &str = "u.id, u.name, u.role, u.password_hash, u.disabled, u.created_at";

fn live_claim(c: &Connection, case_id: i64, now_ms: i64) -> Result<Option<ClaimInfo>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT cl.user_id, u.name, cl.claimed_at, cl.expires_at FROM claims cl JOIN users u ON u.id = cl.user_id
             WHERE cl.case_id = ?1 AND cl.expires_at > ?2",
    )?
    .query_row(params![case_id, now_ms], |r| {
        Ok(ClaimInfo { user_id: r.get(0)?, user: r.get(1)?, claimed_at_ms: r.get(2)?, expires_at_ms: r.get(3)? })
    })
    .optional()?)
}

fn case_key(c: &Connection, case_id: i64) -> Result<Option<([u8; 32], String, String)>, StoreError> {
    let row = c
        .prepare_cached("SELECT blake3, scan, status FROM cases WHERE id = ?1")?
        .query_row(params![case_id], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
        .optional()?;
    row.map(|(b, scan, status)| {
        let key = <[u8; 32]>::try_from(b.as_slice()).map_err(|_| StoreError::Corrupt {
            table: "cases",
            column: "blake3",
            detail: format!("{} bytes, not 32", b.len()),
        })?;
        Ok((key, scan, status))
    })
    .transpose()
}

/// The host of a URL (no port, no user info, lower case), or `None`.
pub fn host_of(url: &str) -> Option<String> {
    let origin = origin_of(url)?;
    let authority = origin.split_once("://").map_or(origin, |(_, a)| a);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if authority.starts_with('[') {
        authority.split_once(']').map_or(authority, |(h, _)| h).trim_start_matches('[')
    } else {
        authority.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(authority, |x| x.0)
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Statuses a case may have after an undo or a decision.
fn check_decision(status: &str) -> Result<(), StoreError> {
    if DECISIONS.contains(&status) {
        Ok(())
    } else {
        Err(StoreError::BadStatus(status.to_string()))
    }
}

/// The tokens query of [`ReviewStore::tokens`]: `?1` is the user name, or
/// NULL for all.
const TOKENS: &str = "SELECT t.id, u.name, t.label, t.created_at, t.last_used_at
     FROM api_tokens t JOIN users u ON u.id = t.user_id
     WHERE ?1 IS NULL OR u.name = ?1 ORDER BY t.created_at, t.id";

/// The audit entry of a role change, the same on every store.
pub fn role_audit(actor: Actor, user: &str, before: &str, after: &str, at_ms: i64) -> NewAudit {
    NewAudit {
        actor,
        action: "user_role".into(),
        before: Some(serde_json::json!({ "user": user, "role": before })),
        after: Some(serde_json::json!({ "user": user, "role": after })),
        at_ms,
        ..NewAudit::default()
    }
}

/// The audit entry of a new user, the same on every store.
pub fn user_add_audit(actor: Actor, user: &str, role: &str, at_ms: i64) -> NewAudit {
    NewAudit {
        actor,
        action: "user_add".into(),
        after: Some(serde_json::json!({ "user": user, "role": role })),
        at_ms,
        ..NewAudit::default()
    }
}

/// The audit entry of a user disabled or enabled, the same on every store.
pub fn disable_audit(actor: Actor, user: &str, before: bool, disabled: bool, at_ms: i64) -> NewAudit {
    NewAudit {
        actor,
        action: if disabled { "user_disable" } else { "user_enable" }.into(),
        before: Some(serde_json::json!({ "user": user, "disabled": before })),
        after: Some(serde_json::json!({ "user": user, "disabled": disabled })),
        at_ms,
        ..NewAudit::default()
    }
}

/// The audit entry of a password reset (never the hash), the same on every store.
pub fn reset_audit(actor: Actor, user: &str, at_ms: i64) -> NewAudit {
    NewAudit {
        actor,
        action: "user_reset".into(),
        after: Some(serde_json::json!({ "user": user })),
        detail: Some("password replaced; sessions ended".into()),
        at_ms,
        ..NewAudit::default()
    }
}

/// The audit entry of a new API token (never the token), the same on every store.
pub fn token_audit(actor: Actor, id: i64, user: &str, label: &str, at_ms: i64) -> NewAudit {
    NewAudit {
        actor,
        action: "user_token".into(),
        after: Some(serde_json::json!({ "user": user, "token_id": id, "label": label })),
        at_ms,
        ..NewAudit::default()
    }
}

/// The audit entry of a revoked API token, the same on every store.
pub fn revoke_audit(actor: Actor, id: i64, user: &str, label: &str, at_ms: i64) -> NewAudit {
    NewAudit {
        actor,
        action: "token_revoke".into(),
        before: Some(serde_json::json!({ "user": user, "token_id": id, "label": label })),
        at_ms,
        ..NewAudit::default()
    }
}

/// What the review service needs from the store: users and their
/// credentials, sessions, login throttling, the audit log, the queue and
/// case page, claims and decisions, exports and hotspots.
#[async_trait]
pub trait ReviewStore: Send + Sync {
    /// Adds a user; `false` when the name is taken. Audited as `user_add`.
    async fn add_user(
        &self,
        name: &str,
        role: &str,
        password_hash: &str,
        actor: Actor,
        at_ms: i64,
    ) -> Result<bool, StoreError>;
    /// A user by name.
    async fn user(&self, name: &str) -> Result<Option<User>, StoreError>;
    /// Every user, by name.
    async fn users(&self) -> Result<Vec<User>, StoreError>;
    /// Disables (or enables) a user and ends their sessions; `false` when
    /// there is no such user. Audited as `user_disable` / `user_enable`.
    async fn set_user_disabled(&self, name: &str, disabled: bool, actor: Actor, at_ms: i64)
        -> Result<bool, StoreError>;
    /// Sets a user's password hash and ends their sessions; `false` when
    /// there is no such user. Audited as `user_reset` (without the hash).
    async fn set_password(&self, name: &str, password_hash: &str, actor: Actor, at_ms: i64)
        -> Result<bool, StoreError>;
    /// Stores an API token of a user by its hash; `None` when there is no
    /// such user, else the token's id. Audited as `user_token`.
    async fn add_token(
        &self,
        name: &str,
        label: &str,
        token_hash: [u8; 32],
        actor: Actor,
        at_ms: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// The enabled user an API token (by hash) belongs to; records its use.
    async fn user_for_token(&self, token_hash: [u8; 32], at_ms: i64) -> Result<Option<User>, StoreError>;
    /// Changes a user's role; `false` when there is no such user. Live
    /// sessions and tokens carry the new role on their next request (they
    /// read the user each time). Audited as `user_role`.
    async fn set_role(&self, name: &str, role: &str, actor: Actor, at_ms: i64) -> Result<bool, StoreError>;
    /// Every API token (of every user, or of `user`), oldest first.
    async fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>, StoreError>;
    /// Deletes an API token by id, so it authenticates no more; `false`
    /// when there is none. Audited as `token_revoke`.
    async fn revoke_token(&self, id: i64, actor: Actor, at_ms: i64) -> Result<bool, StoreError>;
    /// Starts a session (token by hash) for a user with its CSRF token.
    async fn create_session(
        &self,
        token_hash: [u8; 32],
        user_id: i64,
        csrf: &str,
        ip: Option<String>,
        at_ms: i64,
    ) -> Result<(), StoreError>;
    /// The user and CSRF token of a live session (by token hash), which is
    /// then kept alive; `None` when unknown, idle longer than `idle_ms`,
    /// older than `max_ms`, or its user is disabled (then it is deleted).
    async fn session(
        &self,
        token_hash: [u8; 32],
        at_ms: i64,
        idle_ms: i64,
        max_ms: i64,
    ) -> Result<Option<(User, String)>, StoreError>;
    /// Ends a session (by token hash).
    async fn delete_session(&self, token_hash: [u8; 32]) -> Result<(), StoreError>;
    /// Per key: failed logins after `since_ms`, and the time of the oldest
    /// of them (Unix ms).
    async fn login_failures(&self, keys: Vec<String>, since_ms: i64) -> Result<Vec<(u64, Option<i64>)>, StoreError>;
    /// Records a failed login under each key; forgets failures older than
    /// `forget_before_ms`.
    async fn record_login_failure(
        &self,
        keys: Vec<String>,
        at_ms: i64,
        forget_before_ms: i64,
    ) -> Result<(), StoreError>;
    /// Forgets the failed logins under one key (after a good login).
    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError>;
    /// Appends to the audit log; returns the entry's id.
    async fn append_audit(&self, entry: NewAudit) -> Result<i64, StoreError>;
    /// Reads the audit log.
    async fn audit(&self, f: AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;
    /// Brings the hosts-and-domains table of cases up to date with the
    /// sightings recorded since the last call, at most `batch` rows of each
    /// source per call; returns how many source rows it read (0: up to date).
    /// `domain_of` maps a host to its registrable domain.
    async fn sync_places(&self, domain_of: for<'h> fn(&'h str) -> String, batch: usize) -> Result<usize, StoreError>;
    /// One page of the queue (see [`QueueFilter`]), in the order score
    /// (highest first), case opened, case id.
    async fn queue(&self, f: QueueFilter) -> Result<Vec<QueueRow>, StoreError>;
    /// Everything about one case, or `None`.
    async fn case_detail(&self, case_id: i64, now_ms: i64) -> Result<Option<CaseDetail>, StoreError>;
    /// The image, scan and status of a case.
    async fn case_key(&self, case_id: i64) -> Result<Option<([u8; 32], String, String)>, StoreError>;
    /// Claims a case for `lease_ms` for a user: wins when nobody holds it
    /// or the lease ran out, renews when the user holds it already. One
    /// conditional statement inside an immediate transaction, so of any
    /// number of simultaneous claims (in any number of processes) exactly
    /// one wins. A win is audited as `claim`.
    async fn claim(
        &self,
        case_id: i64,
        user_id: i64,
        lease_ms: i64,
        actor: Actor,
        at_ms: i64,
    ) -> Result<ClaimOutcome, StoreError>;
    /// Gives a claim back. Audited as `release`.
    async fn release(&self, case_id: i64, user_id: i64, actor: Actor, at_ms: i64)
        -> Result<ClaimedOutcome, StoreError>;
    /// Records a decision by the holder of a live claim: the case's status
    /// (as [`crate::CaseStore::decide`] sets it), the decision with its note
    /// and the audit entry, in one transaction.
    async fn decide_claimed(
        &self,
        case_id: i64,
        user_id: i64,
        status: &str,
        note: &str,
        actor: Actor,
        at_ms: i64,
    ) -> Result<ClaimedOutcome, StoreError>;
    /// Undoes the caller's last decision on a case within their current
    /// lease: the status goes back to what it was before it. Audited as `undo`.
    async fn undo_claimed(
        &self,
        case_id: i64,
        user_id: i64,
        actor: Actor,
        at_ms: i64,
    ) -> Result<ClaimedOutcome, StoreError>;
    /// Decides every open case nobody holds whose image or one of whose
    /// pages is on `host` (as far as [`ReviewStore::sync_places`] has
    /// seen), at most `limit`; each is audited as `bulk_decision_case`,
    /// and the whole as one `bulk_decision` entry.
    async fn decide_host(
        &self,
        host: &str,
        status: &str,
        note: &str,
        actor: Actor,
        limit: usize,
        at_ms: i64,
    ) -> Result<Vec<Changed>, StoreError>;
    /// Decided cases for a notice-and-takedown export, by case id, with
    /// their URLs, pages, hosts, addresses, hashes and the decision in force.
    async fn export_cases(&self, f: ExportFilter) -> Result<Vec<ExportRow>, StoreError>;
    /// Open and confirmed cases whose image was first seen in
    /// `[start_ms, end_ms)`, counted per place and per bucket of
    /// `width_ms` from `start_ms`, and the confirmed ones per place.
    async fn hotspots(&self, by: PlaceKind, start_ms: i64, end_ms: i64, width_ms: i64) -> Result<Hotspots, StoreError>;
}

#[async_trait]
impl ReviewStore for SqliteStore {
    /// Adds a user; `false` when the name is taken. Audited as `user_add`.
    async fn add_user(
        &self,
        name: &str,
        role: &str,
        password_hash: &str,
        actor: Actor,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        if !ROLES.contains(&role) {
            return Err(StoreError::BadStatus(role.to_string()));
        }
        let (name, role, hash) = (name.to_string(), role.to_string(), password_hash.to_string());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx.execute(
                "INSERT OR IGNORE INTO users (name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![name, role, hash, at_ms],
            )?;
            if n == 1 {
                audit_in(&tx, &user_add_audit(actor, &name, &role, at_ms))?;
            }
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }

    /// A user by name.
    async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let name = name.to_string();
        self.run(move |c| {
            Ok(c.prepare_cached(&format!("SELECT {USER_COLS} FROM users u WHERE u.name = ?1"))?
                .query_row(params![name], user_row)
                .optional()?)
        })
        .await
    }

    /// Every user, by name.
    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.run(move |c| {
            let mut st = c.prepare(&format!("SELECT {USER_COLS} FROM users u ORDER BY u.name"))?;
            let rows = st.query_map([], user_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Disables (or enables) a user and ends their sessions; `false` when
    /// there is no such user. Audited as `user_disable` / `user_enable`.
    async fn set_user_disabled(
        &self,
        name: &str,
        disabled: bool,
        actor: Actor,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let before: Option<bool> =
                tx.query_row("SELECT disabled FROM users WHERE name = ?1", params![name], |r| r.get(0)).optional()?;
            let Some(before) = before else { return Ok(false) };
            tx.execute("UPDATE users SET disabled = ?2 WHERE name = ?1", params![name, disabled])?;
            tx.execute("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?1)", params![name])?;
            audit_in(&tx, &disable_audit(actor, &name, before, disabled, at_ms))?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// Sets a user's password hash and ends their sessions; `false` when
    /// there is no such user. Audited as `user_reset` (without the hash).
    async fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        actor: Actor,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let (name, hash) = (name.to_string(), password_hash.to_string());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if tx.execute("UPDATE users SET password_hash = ?2 WHERE name = ?1", params![name, hash])? == 0 {
                return Ok(false);
            }
            tx.execute("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?1)", params![name])?;
            audit_in(&tx, &reset_audit(actor, &name, at_ms))?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// Stores an API token of a user by its hash; `None` when there is no
    /// such user, else the token's id. Audited as `user_token`.
    async fn add_token(
        &self,
        name: &str,
        label: &str,
        token_hash: [u8; 32],
        actor: Actor,
        at_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let (name, label) = (name.to_string(), label.to_string());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let uid: Option<i64> =
                tx.query_row("SELECT id FROM users WHERE name = ?1", params![name], |r| r.get(0)).optional()?;
            let Some(uid) = uid else { return Ok(None) };
            tx.execute(
                "INSERT INTO api_tokens (user_id, label, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![uid, label, &token_hash[..], at_ms],
            )?;
            let id = tx.last_insert_rowid();
            audit_in(&tx, &token_audit(actor, id, &name, &label, at_ms))?;
            tx.commit()?;
            Ok(Some(id))
        })
        .await
    }

    /// The enabled user an API token (by hash) belongs to; records its use.
    async fn user_for_token(&self, token_hash: [u8; 32], at_ms: i64) -> Result<Option<User>, StoreError> {
        self.run(move |c| {
            let found = c
                .prepare_cached(&format!(
                    "SELECT {USER_COLS}, t.id FROM api_tokens t JOIN users u ON u.id = t.user_id
                     WHERE t.token_hash = ?1 AND NOT u.disabled"
                ))?
                .query_row(params![&token_hash[..]], |r| Ok((user_row(r)?, r.get::<_, i64>(6)?)))
                .optional()?;
            if let Some((_, tid)) = &found {
                c.prepare_cached("UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1")?
                    .execute(params![tid, at_ms])?;
            }
            Ok(found.map(|(u, _)| u))
        })
        .await
    }

    /// Changes a user's role; `false` when there is no such user. Audited
    /// as `user_role`.
    async fn set_role(&self, name: &str, role: &str, actor: Actor, at_ms: i64) -> Result<bool, StoreError> {
        if !ROLES.contains(&role) {
            return Err(StoreError::BadStatus(role.to_string()));
        }
        let (name, role) = (name.to_string(), role.to_string());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let before: Option<String> =
                tx.query_row("SELECT role FROM users WHERE name = ?1", params![name], |r| r.get(0)).optional()?;
            let Some(before) = before else { return Ok(false) };
            tx.execute("UPDATE users SET role = ?2 WHERE name = ?1", params![name, role])?;
            audit_in(&tx, &role_audit(actor, &name, &before, &role, at_ms))?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// Every API token (of every user, or of `user`), oldest first.
    async fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>, StoreError> {
        let user = user.map(str::to_string);
        self.run(move |c| {
            let mut st = c.prepare_cached(TOKENS)?;
            let rows = st.query_map(params![user], |r| {
                Ok(TokenInfo {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    label: r.get(2)?,
                    created_at_ms: r.get(3)?,
                    last_used_at_ms: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Deletes an API token by id; `false` when there is none. Audited as
    /// `token_revoke`.
    async fn revoke_token(&self, id: i64, actor: Actor, at_ms: i64) -> Result<bool, StoreError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let found: Option<(String, String)> = tx
                .query_row(
                    "SELECT u.name, t.label FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?1",
                    params![id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((user, label)) = found else { return Ok(false) };
            tx.execute("DELETE FROM api_tokens WHERE id = ?1", params![id])?;
            audit_in(&tx, &revoke_audit(actor, id, &user, &label, at_ms))?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// Starts a session (token by hash) for a user with its CSRF token.
    async fn create_session(
        &self,
        token_hash: [u8; 32],
        user_id: i64,
        csrf: &str,
        ip: Option<String>,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let csrf = csrf.to_string();
        self.run(move |c| {
            // Sessions idle for more than a week are gone whatever the
            // configured limits; keeps the table small.
            c.execute("DELETE FROM sessions WHERE last_seen_at < ?1", params![at_ms - 7 * 86_400_000])?;
            c.execute(
                "INSERT INTO sessions (token_hash, user_id, csrf, created_at, last_seen_at, client_ip)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
                params![&token_hash[..], user_id, csrf, at_ms, ip],
            )?;
            Ok(())
        })
        .await
    }

    /// The user and CSRF token of a live session (by token hash), which is
    /// then kept alive; `None` when unknown, idle longer than `idle_ms`,
    /// older than `max_ms`, or its user is disabled (then it is deleted).
    async fn session(
        &self,
        token_hash: [u8; 32],
        at_ms: i64,
        idle_ms: i64,
        max_ms: i64,
    ) -> Result<Option<(User, String)>, StoreError> {
        self.run(move |c| {
            let found = c
                .prepare_cached(&format!(
                    "SELECT {USER_COLS}, s.csrf, s.created_at, s.last_seen_at FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.token_hash = ?1"
                ))?
                .query_row(params![&token_hash[..]], |r| {
                    Ok((user_row(r)?, r.get::<_, String>(6)?, r.get::<_, i64>(7)?, r.get::<_, i64>(8)?))
                })
                .optional()?;
            let Some((user, csrf, created, seen)) = found else { return Ok(None) };
            if user.disabled || at_ms - seen > idle_ms || at_ms - created > max_ms {
                c.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?.execute(params![&token_hash[..]])?;
                return Ok(None);
            }
            c.prepare_cached("UPDATE sessions SET last_seen_at = ?2 WHERE token_hash = ?1")?
                .execute(params![&token_hash[..], at_ms])?;
            Ok(Some((user, csrf)))
        })
        .await
    }

    /// Ends a session (by token hash).
    async fn delete_session(&self, token_hash: [u8; 32]) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute("DELETE FROM sessions WHERE token_hash = ?1", params![&token_hash[..]])?;
            Ok(())
        })
        .await
    }

    /// Per key: failed logins after `since_ms`, and the time of the oldest
    /// of them (Unix ms).
    async fn login_failures(&self, keys: Vec<String>, since_ms: i64) -> Result<Vec<(u64, Option<i64>)>, StoreError> {
        self.run(move |c| {
            let mut st = c.prepare_cached("SELECT count(*), min(at) FROM login_failures WHERE key = ?1 AND at > ?2")?;
            let mut out = Vec::with_capacity(keys.len());
            for k in &keys {
                out.push(st.query_row(params![k, since_ms], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?);
            }
            Ok(out)
        })
        .await
    }

    /// Records a failed login under each key; forgets failures older than
    /// `forget_before_ms`.
    async fn record_login_failure(
        &self,
        keys: Vec<String>,
        at_ms: i64,
        forget_before_ms: i64,
    ) -> Result<(), StoreError> {
        self.run(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM login_failures WHERE at < ?1", params![forget_before_ms])?;
            for k in &keys {
                tx.execute("INSERT INTO login_failures (key, at) VALUES (?1, ?2)", params![k, at_ms])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Forgets the failed logins under one key (after a good login).
    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_string();
        self.run(move |c| {
            c.execute("DELETE FROM login_failures WHERE key = ?1", params![key])?;
            Ok(())
        })
        .await
    }

    /// Appends to the audit log; returns the entry's id.
    async fn append_audit(&self, entry: NewAudit) -> Result<i64, StoreError> {
        self.run(move |c| audit_in(c, &entry)).await
    }

    /// Reads the audit log.
    async fn audit(&self, f: AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        self.run(move |c| {
            let mut sql = String::from(
                "SELECT id, at, actor, action, case_id, before, after, detail, client_ip FROM audit WHERE 1",
            );
            let mut args: Vec<Value> = Vec::new();
            if let Some(case) = f.case_id {
                sql.push_str(" AND case_id = ?");
                args.push(Value::Integer(case));
            }
            if let Some(actor) = &f.actor {
                sql.push_str(" AND actor = ?");
                args.push(Value::Text(actor.clone()));
            }
            if let Some(after) = f.after_id {
                sql.push_str(if f.oldest_first { " AND id > ?" } else { " AND id < ?" });
                args.push(Value::Integer(after));
            }
            sql.push_str(if f.oldest_first { " ORDER BY id LIMIT ?" } else { " ORDER BY id DESC LIMIT ?" });
            args.push(Value::Integer(f.limit as i64));
            let mut st = c.prepare(&sql)?;
            let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
            let rows = st
                .query_map(params_from_iter(args), |r| {
                    Ok(AuditEntry {
                        id: r.get(0)?,
                        at: rfc3339(r.get(1)?),
                        at_ms: r.get(1)?,
                        actor: r.get(2)?,
                        action: r.get(3)?,
                        case_id: r.get(4)?,
                        before: parse(r.get(5)?),
                        after: parse(r.get(6)?),
                        detail: r.get(7)?,
                        client_ip: r.get(8)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Brings the hosts-and-domains table of cases up to date with the
    /// sightings recorded since the last call, at most `batch` rows of each
    /// source per call; returns how many source rows it read (0: up to date).
    /// `domain_of` maps a host to its registrable domain.
    async fn sync_places(&self, domain_of: for<'h> fn(&'h str) -> String, batch: usize) -> Result<usize, StoreError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mark = |name: &str| -> Result<i64, StoreError> {
                Ok(tx
                    .query_row("SELECT value FROM review_state WHERE name = ?1", params![name], |r| r.get(0))
                    .optional()?
                    .unwrap_or(0))
            };
            let (mut w_cases, mut w_images, mut w_edges) =
                (mark("places_cases")?, mark("places_images")?, mark("places_edges")?);
            let mut read = 0usize;
            {
                let mut put = tx.prepare_cached(
                    "INSERT OR IGNORE INTO review_places (blake3, host, domain)
                     SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM cases WHERE blake3 = ?1)",
                )?;
                let mut add = |key: &[u8], host: &str| -> Result<(), StoreError> {
                    let host = host.to_ascii_lowercase();
                    if !host.is_empty() {
                        put.execute(params![key, host, domain_of(&host)])?;
                    }
                    Ok(())
                };
                // New cases: every host their image has so far.
                let mut st = tx.prepare_cached("SELECT id, blake3 FROM cases WHERE id > ?1 ORDER BY id LIMIT ?2")?;
                let cases = st
                    .query_map(params![w_cases, batch as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut image_hosts = tx.prepare_cached("SELECT DISTINCT host FROM images WHERE blake3 = ?1")?;
                let mut page_urls = tx.prepare_cached(
                    "SELECT DISTINCT e.page_url FROM images i JOIN edges e ON e.scan = i.scan AND e.image_id = i.image_id
                     WHERE i.blake3 = ?1",
                )?;
                for (id, key) in &cases {
                    for h in image_hosts.query_map(params![key], |r| r.get::<_, String>(0))? {
                        add(key, &h?)?;
                    }
                    for p in page_urls.query_map(params![key], |r| r.get::<_, String>(0))? {
                        if let Some(h) = host_of(&p?) {
                            add(key, &h)?;
                        }
                    }
                    w_cases = *id;
                }
                read += cases.len();
                // New image records of existing cases: their host, and the
                // pages whose edges arrived before them.
                let mut st = tx.prepare_cached(
                    "SELECT rowid, blake3, host, scan, image_id FROM images WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                )?;
                let images = st
                    .query_map(params![w_images, batch as i64], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, Vec<u8>>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut edges_of =
                    tx.prepare_cached("SELECT page_url FROM edges WHERE scan = ?1 AND image_id = ?2")?;
                for (rowid, key, host, scan, image_id) in &images {
                    add(key, host)?;
                    for p in edges_of.query_map(params![scan, image_id], |r| r.get::<_, String>(0))? {
                        if let Some(h) = host_of(&p?) {
                            add(key, &h)?;
                        }
                    }
                    w_images = *rowid;
                }
                read += images.len();
                // New edges whose image is already hashed.
                let mut st = tx.prepare_cached(
                    "SELECT e.rowid, e.page_url, i.blake3 FROM edges e
                     LEFT JOIN images i ON i.scan = e.scan AND i.image_id = e.image_id
                     WHERE e.rowid > ?1 ORDER BY e.rowid LIMIT ?2",
                )?;
                let edges = st
                    .query_map(params![w_edges, batch as i64], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<Vec<u8>>>(2)?))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                for (rowid, page, key) in &edges {
                    if let (Some(key), Some(h)) = (key, host_of(page)) {
                        add(key, &h)?;
                    }
                    w_edges = *rowid;
                }
                read += edges.len();
            }
            let mut set = tx.prepare_cached(
                "INSERT INTO review_state (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )?;
            set.execute(params!["places_cases", w_cases])?;
            set.execute(params!["places_images", w_images])?;
            set.execute(params!["places_edges", w_edges])?;
            drop(set);
            tx.commit()?;
            Ok(read)
        })
        .await
    }

    /// One page of the queue (see [`QueueFilter`]), in the order score
    /// (highest first), case opened, case id.
    async fn queue(&self, f: QueueFilter) -> Result<Vec<QueueRow>, StoreError> {
        self.run(move |c| query_queue(c, &f)).await
    }

    /// Everything about one case, or `None`.
    async fn case_detail(&self, case_id: i64, now_ms: i64) -> Result<Option<CaseDetail>, StoreError> {
        self.run(move |c| query_case(c, case_id, now_ms)).await
    }

    /// The image, scan and status of a case.
    async fn case_key(&self, case_id: i64) -> Result<Option<([u8; 32], String, String)>, StoreError> {
        self.run(move |c| case_key(c, case_id)).await
    }

    /// Claims a case for `lease_ms` for a user: wins when nobody holds it
    /// or the lease ran out, renews when the user holds it already. One
    /// conditional statement inside an immediate transaction, so of any
    /// number of simultaneous claims (in any number of processes) exactly
    /// one wins. A win is audited as `claim`.
    async fn claim(
        &self,
        case_id: i64,
        user_id: i64,
        lease_ms: i64,
        actor: Actor,
        at_ms: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let before = live_claim(&tx, case_id, at_ms)?;
            let n = tx.execute(
                "INSERT INTO claims (case_id, user_id, claimed_at, expires_at)
                 SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM cases WHERE id = ?1)
                 ON CONFLICT (case_id) DO UPDATE SET
                   user_id = excluded.user_id,
                   claimed_at = CASE WHEN claims.user_id = excluded.user_id AND claims.expires_at > excluded.claimed_at
                                     THEN claims.claimed_at ELSE excluded.claimed_at END,
                   expires_at = excluded.expires_at
                 WHERE claims.expires_at <= excluded.claimed_at OR claims.user_id = excluded.user_id",
                params![case_id, user_id, at_ms, at_ms + lease_ms],
            )?;
            let outcome = if n == 1 {
                let now =
                    live_claim(&tx, case_id, at_ms)?.ok_or_else(|| StoreError::Worker("claim vanished".into()))?;
                audit_in(
                    &tx,
                    &NewAudit {
                        actor,
                        action: "claim".into(),
                        case_id: Some(case_id),
                        before: Some(serde_json::json!({ "claim": before })),
                        after: Some(serde_json::json!({ "claim": now })),
                        at_ms,
                        ..NewAudit::default()
                    },
                )?;
                ClaimOutcome::Won(now)
            } else if case_key(&tx, case_id)?.is_none() {
                ClaimOutcome::NoCase
            } else {
                match before {
                    Some(held) => ClaimOutcome::Held(held),
                    None => return Err(StoreError::Worker("claim refused with no holder".into())),
                }
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    /// Gives a claim back. Audited as `release`.
    async fn release(
        &self,
        case_id: i64,
        user_id: i64,
        actor: Actor,
        at_ms: i64,
    ) -> Result<ClaimedOutcome, StoreError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if case_key(&tx, case_id)?.is_none() {
                return Ok(ClaimedOutcome::NoCase);
            }
            let held = live_claim(&tx, case_id, at_ms)?;
            if held.as_ref().map(|h| h.user_id) != Some(user_id) {
                return Ok(ClaimedOutcome::NotHolder(held));
            }
            tx.execute("DELETE FROM claims WHERE case_id = ?1", params![case_id])?;
            audit_in(
                &tx,
                &NewAudit {
                    actor,
                    action: "release".into(),
                    case_id: Some(case_id),
                    before: Some(serde_json::json!({ "claim": held })),
                    after: Some(serde_json::json!({ "claim": null })),
                    at_ms,
                    ..NewAudit::default()
                },
            )?;
            tx.commit()?;
            Ok(ClaimedOutcome::Done(None))
        })
        .await
    }

    /// Records a decision by the holder of a live claim: the case's status
    /// (as [`crate::CaseStore::decide`] sets it), the decision with its note
    /// and the audit entry, in one transaction.
    async fn decide_claimed(
        &self,
        case_id: i64,
        user_id: i64,
        status: &str,
        note: &str,
        actor: Actor,
        at_ms: i64,
    ) -> Result<ClaimedOutcome, StoreError> {
        check_decision(status)?;
        let (status, note) = (status.to_string(), note.to_string());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some((key, scan, before)) = case_key(&tx, case_id)? else { return Ok(ClaimedOutcome::NoCase) };
            let held = live_claim(&tx, case_id, at_ms)?;
            if held.as_ref().map(|h| h.user_id) != Some(user_id) {
                return Ok(ClaimedOutcome::NotHolder(held));
            }
            let changed = decide_in(&tx, case_id, key, &scan, &before, &status, &note, &actor, "decision", at_ms)?;
            tx.commit()?;
            Ok(ClaimedOutcome::Done(Some(changed)))
        })
        .await
    }

    /// Undoes the caller's last decision on a case within their current
    /// lease: the status goes back to what it was before it. Audited as `undo`.
    async fn undo_claimed(
        &self,
        case_id: i64,
        user_id: i64,
        actor: Actor,
        at_ms: i64,
    ) -> Result<ClaimedOutcome, StoreError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some((key, scan, current)) = case_key(&tx, case_id)? else { return Ok(ClaimedOutcome::NoCase) };
            let held = live_claim(&tx, case_id, at_ms)?;
            let Some(lease) = held.filter(|h| h.user_id == user_id) else {
                return Ok(ClaimedOutcome::NotHolder(live_claim(&tx, case_id, at_ms)?));
            };
            let last = tx
                .query_row(
                    "SELECT id, before_status, after_status FROM decisions
                     WHERE case_id = ?1 AND actor = ?2 AND at >= ?3 AND undone_at IS NULL ORDER BY id DESC LIMIT 1",
                    params![case_id, actor.name, lease.claimed_at_ms],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)),
                )
                .optional()?;
            let Some((did, before, after)) = last else { return Ok(ClaimedOutcome::NothingToUndo) };
            if after != current {
                return Ok(ClaimedOutcome::Conflict(current));
            }
            tx.execute("UPDATE cases SET status = ?2, updated_at = ?3 WHERE id = ?1", params![case_id, before, at_ms])?;
            tx.execute("UPDATE decisions SET undone_at = ?2 WHERE id = ?1", params![did, at_ms])?;
            audit_in(
                &tx,
                &NewAudit {
                    actor,
                    action: "undo".into(),
                    case_id: Some(case_id),
                    before: now_json(&current),
                    after: now_json(&before),
                    detail: Some(format!("undid decision {did}")),
                    at_ms,
                },
            )?;
            tx.commit()?;
            Ok(ClaimedOutcome::Done(Some(Changed { case_id, blake3: key, scan, before: current, after: before })))
        })
        .await
    }

    /// Decides every open case nobody holds whose image or one of whose
    /// pages is on `host` (as far as [`ReviewStore::sync_places`] has
    /// seen), at most `limit`; each is audited as `bulk_decision_case`,
    /// and the whole as one `bulk_decision` entry.
    async fn decide_host(
        &self,
        host: &str,
        status: &str,
        note: &str,
        actor: Actor,
        limit: usize,
        at_ms: i64,
    ) -> Result<Vec<Changed>, StoreError> {
        check_decision(status)?;
        let (host, status, note) = (host.to_ascii_lowercase(), status.to_string(), note.to_string());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let rows = {
                let mut st = tx.prepare(
                    "SELECT cs.id, cs.blake3, cs.scan FROM cases cs
                     WHERE cs.status = 'open'
                       AND cs.blake3 IN (SELECT blake3 FROM review_places WHERE host = ?1)
                       AND NOT EXISTS (SELECT 1 FROM claims cl WHERE cl.case_id = cs.id AND cl.expires_at > ?2)
                     ORDER BY cs.id LIMIT ?3",
                )?;
                let rows = st
                    .query_map(params![host, at_ms, limit as i64], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, String>(2)?))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                rows
            };
            let mut out = Vec::with_capacity(rows.len());
            for (id, key, scan) in rows {
                let key = <[u8; 32]>::try_from(key.as_slice()).map_err(|_| StoreError::Corrupt {
                    table: "cases",
                    column: "blake3",
                    detail: format!("{} bytes, not 32", key.len()),
                })?;
                out.push(decide_in(&tx, id, key, &scan, "open", &status, &note, &actor, "bulk_decision_case", at_ms)?);
            }
            audit_in(
                &tx,
                &NewAudit {
                    actor,
                    action: "bulk_decision".into(),
                    after: Some(serde_json::json!({
                        "host": host, "status": status, "cases": out.iter().map(|c| c.case_id).collect::<Vec<_>>()
                    })),
                    detail: Some(note),
                    at_ms,
                    ..NewAudit::default()
                },
            )?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    /// Decided cases for a notice-and-takedown export, by case id, with
    /// their URLs, pages, hosts, addresses, hashes and the decision in force.
    async fn export_cases(&self, f: ExportFilter) -> Result<Vec<ExportRow>, StoreError> {
        self.run(move |c| query_export(c, &f)).await
    }

    /// Open and confirmed cases whose image was first seen in
    /// `[start_ms, end_ms)`, counted per place and per bucket of
    /// `width_ms` from `start_ms`, and the confirmed ones per place.
    async fn hotspots(&self, by: PlaceKind, start_ms: i64, end_ms: i64, width_ms: i64) -> Result<Hotspots, StoreError> {
        if width_ms <= 0 {
            return Err(StoreError::Worker("bucket width must be positive".into()));
        }
        self.run(move |c| {
            let col = by.column();
            let mut out = Hotspots::default();
            let mut st = c.prepare(&format!(
                "SELECT p.{col}, (ct.first_seen - ?1) / ?3, cs.status, count(DISTINCT cs.id)
                 FROM cases cs JOIN contents ct ON ct.blake3 = cs.blake3 JOIN review_places p ON p.blake3 = cs.blake3
                 WHERE cs.status IN ('open', 'confirmed') AND ct.first_seen >= ?1 AND ct.first_seen < ?2
                 GROUP BY 1, 2, 3"
            ))?;
            let rows = st.query_map(params![start_ms, end_ms, width_ms], |r| {
                Ok(HotspotCount {
                    place: Some(r.get(0)?),
                    bucket: r.get(1)?,
                    status: r.get(2)?,
                    cases: r.get::<_, i64>(3)? as u64,
                })
            })?;
            out.counts = rows.collect::<Result<Vec<_>, _>>()?;
            let mut st = c.prepare(
                "SELECT (ct.first_seen - ?1) / ?3, cs.status, count(*)
                 FROM cases cs JOIN contents ct ON ct.blake3 = cs.blake3
                 WHERE cs.status IN ('open', 'confirmed') AND ct.first_seen >= ?1 AND ct.first_seen < ?2
                 GROUP BY 1, 2",
            )?;
            let rows = st.query_map(params![start_ms, end_ms, width_ms], |r| {
                Ok(HotspotCount {
                    place: None,
                    bucket: r.get(0)?,
                    status: r.get(1)?,
                    cases: r.get::<_, i64>(2)? as u64,
                })
            })?;
            out.counts.extend(rows.collect::<Result<Vec<_>, _>>()?);
            out.open_from_counts();
            let mut st = c.prepare(&format!(
                "SELECT DISTINCT p.{col}, cs.id, ct.first_seen, cs.online, cs.offline_since
                 FROM cases cs JOIN contents ct ON ct.blake3 = cs.blake3 JOIN review_places p ON p.blake3 = cs.blake3
                 WHERE cs.status = 'confirmed' AND ct.first_seen >= ?1 AND ct.first_seen < ?2"
            ))?;
            out.confirmed = st
                .query_map(params![start_ms, end_ms], |r| {
                    Ok(PlaceConfirmed {
                        place: r.get(0)?,
                        first_seen_ms: r.get(2)?,
                        online: r.get(3)?,
                        offline_since_ms: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(out)
        })
        .await
    }
}

/// Sets a case's status (the same update as `CaseStore::decide`), records
/// the decision and audits it, inside the caller's transaction.
#[allow(clippy::too_many_arguments)]
fn decide_in(
    tx: &Connection,
    case_id: i64,
    key: [u8; 32],
    scan: &str,
    before: &str,
    status: &str,
    note: &str,
    actor: &Actor,
    action: &str,
    at_ms: i64,
) -> Result<Changed, StoreError> {
    tx.execute("UPDATE cases SET status = ?2, updated_at = ?3 WHERE id = ?1", params![case_id, status, at_ms])?;
    tx.execute(
        "INSERT INTO decisions (case_id, actor, at, before_status, after_status, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![case_id, actor.name, at_ms, before, status, note],
    )?;
    audit_in(
        tx,
        &NewAudit {
            actor: actor.clone(),
            action: action.into(),
            case_id: Some(case_id),
            before: now_json(before),
            after: now_json(status),
            detail: Some(note.to_string()),
            at_ms,
        },
    )?;
    Ok(Changed { case_id, blake3: key, scan: scan.to_string(), before: before.to_string(), after: status.to_string() })
}

fn query_queue(c: &Connection, f: &QueueFilter) -> Result<Vec<QueueRow>, StoreError> {
    // A host or domain filter drives the query from its few places and
    // sorts those: walking the queue index in score order and testing each
    // case against the place took 1.4 s for a host of 70 cases among a
    // million (hashscan-bench-review).
    let (driver, mut args): (&str, Vec<Value>) = match (&f.host, &f.domain) {
        (Some(host), _) => (
            "(SELECT DISTINCT blake3 FROM review_places WHERE host = ?) p CROSS JOIN cases cs ON cs.blake3 = p.blake3",
            vec![Value::Text(host.to_ascii_lowercase())],
        ),
        (None, Some(domain)) => (
            "(SELECT DISTINCT blake3 FROM review_places WHERE domain = ?) p CROSS JOIN cases cs ON cs.blake3 = p.blake3",
            vec![Value::Text(domain.to_ascii_lowercase())],
        ),
        (None, None) => ("cases cs", vec![]),
    };
    args.push(Value::Integer(f.now_ms));
    args.push(Value::Text(f.status.clone()));
    let mut filters = String::from("cs.status = ?");
    if let Some(scan) = &f.scan {
        filters.push_str(" AND cs.scan = ?");
        args.push(Value::Text(scan.clone()));
    }
    if let (Some(_), Some(domain)) = (&f.host, &f.domain) {
        filters.push_str(" AND cs.blake3 IN (SELECT blake3 FROM review_places WHERE domain = ?)");
        args.push(Value::Text(domain.to_ascii_lowercase()));
    }
    if let Some(m) = f.match_kind {
        filters.push_str(" AND ct.match_kind = ?");
        args.push(Value::Text(m.as_str().into()));
    }
    if let Some(x) = f.min_score {
        filters.push_str(" AND cs.score >= ?");
        args.push(Value::Real(x));
    }
    if let Some(x) = f.max_score {
        filters.push_str(" AND cs.score <= ?");
        args.push(Value::Real(x));
    }
    if let Some(x) = f.since_ms {
        filters.push_str(" AND ct.first_seen >= ?");
        args.push(Value::Integer(x));
    }
    if let Some(x) = f.until_ms {
        filters.push_str(" AND ct.first_seen < ?");
        args.push(Value::Integer(x));
    }
    match f.claim {
        ClaimFilter::Any => {}
        ClaimFilter::Free => filters.push_str(" AND cl.case_id IS NULL"),
        ClaimFilter::Mine(uid) => {
            filters.push_str(" AND cl.user_id = ?");
            args.push(Value::Integer(uid));
        }
    }
    // The keyset split into index ranges: the rest of the cursor's
    // (score, opened_at) group, the rest of its score, then lower scores.
    let segments: Vec<(&str, Vec<Value>, &str)> = match f.after {
        None => vec![("1", vec![], "cs.score DESC, cs.opened_at, cs.id")],
        Some(k) => vec![
            (
                "cs.score = ? AND cs.opened_at = ? AND cs.id > ?",
                vec![Value::Real(k.score), Value::Integer(k.opened_at_ms), Value::Integer(k.id)],
                "cs.id",
            ),
            (
                "cs.score = ? AND cs.opened_at > ?",
                vec![Value::Real(k.score), Value::Integer(k.opened_at_ms)],
                "cs.opened_at, cs.id",
            ),
            ("cs.score < ?", vec![Value::Real(k.score)], "cs.score DESC, cs.opened_at, cs.id"),
        ],
    };
    let mut out: Vec<QueueRow> = Vec::new();
    for (keyset, keyargs, order) in segments {
        if out.len() >= f.limit {
            break;
        }
        let sql = format!(
            "SELECT cs.id, cs.blake3, cs.status, cs.score, ct.score, ct.match_kind, cs.scan, cs.opened_at,
                    ct.first_seen, ct.last_seen,
                    (SELECT i.image_id || char(10) || i.host FROM images i WHERE i.blake3 = cs.blake3
                     ORDER BY i.fetched_at, i.image_id LIMIT 1),
                    cl.user_id, u.name, cl.claimed_at, cl.expires_at, cs.online, cs.offline_since
             FROM {driver} JOIN contents ct ON ct.blake3 = cs.blake3
                  LEFT JOIN claims cl ON cl.case_id = cs.id AND cl.expires_at > ?
                  LEFT JOIN users u ON u.id = cl.user_id
             WHERE {filters} AND {keyset}
             ORDER BY {order} LIMIT ?"
        );
        let mut all = args.clone();
        all.extend(keyargs);
        all.push(Value::Integer((f.limit - out.len()) as i64));
        let mut st = c.prepare_cached(&sql)?;
        let rows = st.query_map(params_from_iter(all), |r| {
            let first: Option<String> = r.get(10)?;
            let (image_url, host) = first
                .as_deref()
                .and_then(|s| s.split_once('\n'))
                .map(|(u, h)| (u.to_string(), h.to_string()))
                .unwrap_or_default();
            let claim = match r.get::<_, Option<i64>>(11)? {
                Some(uid) => Some(ClaimInfo {
                    user_id: uid,
                    user: r.get::<_, Option<String>>(12)?.unwrap_or_default(),
                    claimed_at_ms: r.get(13)?,
                    expires_at_ms: r.get(14)?,
                }),
                None => None,
            };
            Ok((
                r.get::<_, String>(5)?,
                QueueRow {
                    id: r.get(0)?,
                    blake3: hex_col(r, 1)?,
                    status: r.get(2)?,
                    score: r.get(3)?,
                    current_score: r.get(4)?,
                    match_kind: MatchKind::None,
                    scan: r.get(6)?,
                    opened_at_ms: r.get(7)?,
                    opened_at: rfc3339(r.get(7)?),
                    first_seen: rfc3339(r.get(8)?),
                    last_seen: rfc3339(r.get(9)?),
                    image_url,
                    host,
                    claim,
                    online: r.get(15)?,
                    offline_since: r.get::<_, Option<i64>>(16)?.map(rfc3339),
                },
            ))
        })?;
        for row in rows {
            let (kind, mut q) = row?;
            q.match_kind = MatchKind::parse(&kind)?;
            out.push(q);
        }
    }
    Ok(out)
}

/// At most this many image fetches and pages are listed on a case page.
pub const MAX_CASE_SIGHTINGS: usize = 500;

fn query_case(c: &Connection, case_id: i64, now_ms: i64) -> Result<Option<CaseDetail>, StoreError> {
    let row = c
        .prepare_cached(
            "SELECT cs.blake3, cs.status, cs.score, cs.scan, cs.opened_at, cs.updated_at, cs.online, cs.last_checked_at,
                    cs.last_online_at, cs.offline_since,
                    ct.md5, ct.sha1, ct.sha256, ct.bytes, ct.pdq, ct.pdq_quality, ct.pdq_error, ct.width, ct.height,
                    ct.first_seen, ct.last_seen, ct.score, ct.match_kind, ct.match_algo, ct.distance,
                    ct.reference_version, ct.reasons, ct.factors,
                    coalesce((SELECT json_extract(s.config, '$.ignore_robots') FROM scans s WHERE s.id = cs.scan), 0)
             FROM cases cs JOIN contents ct ON ct.blake3 = cs.blake3 WHERE cs.id = ?1",
        )?
        .query_row(params![case_id], |r| {
            let key: Vec<u8> = r.get(0)?;
            let detail = CaseDetail {
                id: case_id,
                status: r.get(1)?,
                score: r.get(2)?,
                scan: r.get(3)?,
                opened_at: rfc3339(r.get(4)?),
                updated_at: rfc3339(r.get(5)?),
                online: r.get(6)?,
                last_checked: r.get::<_, Option<i64>>(7)?.map(rfc3339),
                last_online: r.get::<_, Option<i64>>(8)?.map(rfc3339),
                offline_since: r.get::<_, Option<i64>>(9)?.map(rfc3339),
                hashes: Hashes {
                    md5: hex_col(r, 10)?,
                    sha1: hex_col(r, 11)?,
                    sha256: hex_col(r, 12)?,
                    blake3: hex::encode(&key),
                    bytes: r.get::<_, i64>(13)? as u64,
                    pdq: r
                        .get::<_, Option<Vec<u8>>>(14)?
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .map(|b| hashscan_pdq::PdqHash::from_bytes(b).to_hex()),
                    pdq_quality: r.get(15)?,
                    pdq_error: r.get(16)?,
                    width: r.get(17)?,
                    height: r.get(18)?,
                },
                first_seen: rfc3339(r.get(19)?),
                last_seen: rfc3339(r.get(20)?),
                current_score: r.get(21)?,
                match_kind: MatchKind::None,
                match_algo: r.get(23)?,
                distance: r.get(24)?,
                reference_version: r.get(25)?,
                reasons: Vec::new(),
                factors: Vec::new(),
                robots_ignored: r.get::<_, Option<bool>>(28)?.unwrap_or(false),
                image_urls: Vec::new(),
                images: Vec::new(),
                images_total: 0,
                pages: Vec::new(),
                pages_total: 0,
                hosts: Vec::new(),
                claim: None,
                decisions: Vec::new(),
            };
            Ok((key, detail, r.get::<_, String>(22)?, r.get::<_, String>(26)?, r.get::<_, String>(27)?))
        })
        .optional()?;
    let Some((key, mut d, kind, reasons, factors)) = row else { return Ok(None) };
    d.match_kind = MatchKind::parse(&kind)?;
    let json = |s: &str, column: &'static str| -> Result<Vec<Reason>, StoreError> {
        serde_json::from_str(s).map_err(|e| StoreError::Corrupt { table: "contents", column, detail: e.to_string() })
    };
    d.reasons = json(&reasons, "reasons")?;
    d.factors = json(&factors, "factors")?;
    let cap = MAX_CASE_SIGHTINGS as i64;
    let mut hosts: Vec<(String, bool, bool, u64, i64, i64)> = Vec::new();
    let mut seen = |host: &str, image: bool, at: i64| {
        if let Some(h) = hosts.iter_mut().find(|h| h.0 == host) {
            h.1 |= image;
            h.2 |= !image;
            h.3 += 1;
            h.4 = h.4.min(at);
            h.5 = h.5.max(at);
        } else {
            hosts.push((host.to_string(), image, !image, 1, at, at));
        }
    };
    {
        let mut st = c.prepare_cached(
            "SELECT image_id, host, ip, scan, fetched_at FROM images WHERE blake3 = ?1
             ORDER BY fetched_at, image_id LIMIT ?2",
        )?;
        let rows = st.query_map(params![key, cap], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        for row in rows {
            let (url, host, ip, scan, at) = row?;
            seen(&host, true, at);
            if !d.image_urls.contains(&url) {
                d.image_urls.push(url.clone());
            }
            d.images.push(ImageSighting { image_url: url, host, ip, scan, fetched_at: rfc3339(at) });
        }
        d.images_total =
            c.query_row("SELECT count(*) FROM images WHERE blake3 = ?1", params![key], |r| r.get::<_, i64>(0))? as u64;
    }
    {
        let mut st = c.prepare_cached(
            "SELECT e.page_url, e.image_id, e.scan, e.seen_at FROM images i
             JOIN edges e ON e.scan = i.scan AND e.image_id = i.image_id
             WHERE i.blake3 = ?1 ORDER BY e.seen_at, e.page_url LIMIT ?2",
        )?;
        let rows = st.query_map(params![key, cap], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
        })?;
        for row in rows {
            let (page, image_url, scan, at) = row?;
            let host = host_of(&page).unwrap_or_default();
            if !host.is_empty() {
                seen(&host, false, at);
            }
            d.pages.push(PageSighting { page_url: page, host, image_url, scan, seen_at: rfc3339(at) });
        }
        d.pages_total = c.query_row(
            "SELECT count(*) FROM images i JOIN edges e ON e.scan = i.scan AND e.image_id = i.image_id WHERE i.blake3 = ?1",
            params![key],
            |r| r.get::<_, i64>(0),
        )? as u64;
    }
    d.hosts = hosts
        .into_iter()
        .map(|(host, image, page, n, first, last)| HostSeen::new(host, image, page, n, first, last))
        .collect();
    d.claim = live_claim(c, case_id, now_ms)?;
    let mut st = c.prepare_cached(
        "SELECT id, actor, at, before_status, after_status, note, undone_at FROM decisions WHERE case_id = ?1 ORDER BY id",
    )?;
    d.decisions = st
        .query_map(params![case_id], |r| {
            Ok(DecisionRecord {
                id: r.get(0)?,
                actor: r.get(1)?,
                at: rfc3339(r.get(2)?),
                before: r.get(3)?,
                after: r.get(4)?,
                note: r.get(5)?,
                undone_at: r.get::<_, Option<i64>>(6)?.map(rfc3339),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(d))
}

/// Which decided cases a notice-and-takedown export holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExportFilter {
    /// Case statuses (from [`DECISIONS`]); empty means all of them.
    pub statuses: Vec<String>,
    /// A host of the image or of one of its pages (as [`ReviewStore::sync_places`] has seen).
    pub host: Option<String>,
    /// A registrable domain of the image or of one of its pages.
    pub domain: Option<String>,
    /// Decided at or after (Unix ms).
    pub since_ms: Option<i64>,
    /// Decided before (Unix ms).
    pub until_ms: Option<i64>,
    /// Keyset cursor: cases with a higher id.
    pub after_id: Option<i64>,
    /// At most this many.
    pub limit: usize,
}

/// One decided case, with what a notice-and-takedown needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportRow {
    /// Case id.
    pub case_id: i64,
    /// Status (the decision).
    pub status: String,
    /// The case's score.
    pub score: f64,
    /// Image URLs, in order of fetch (at most [`MAX_CASE_SIGHTINGS`]).
    pub image_urls: Vec<String>,
    /// Pages that showed the image (at most [`MAX_CASE_SIGHTINGS`]).
    pub page_urls: Vec<String>,
    /// Host of the first image URL.
    pub host: String,
    /// Every host of the image URLs and pages listed.
    pub hosts: Vec<String>,
    /// Addresses the image came from at fetch time.
    pub ips: Vec<String>,
    /// Image first seen (RFC 3339).
    pub first_seen: String,
    /// Image last seen (RFC 3339).
    pub last_seen: String,
    /// MD5, hex.
    pub md5: String,
    /// SHA-1, hex.
    pub sha1: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// BLAKE3, hex.
    pub blake3: String,
    /// PDQ, hex.
    pub pdq: Option<String>,
    /// Who made the decision in force (none when set outside the service).
    pub analyst: Option<String>,
    /// When it was made (RFC 3339; the case's last change when there is no decision row).
    pub decided_at: String,
    /// The analyst's note.
    pub note: Option<String>,
    /// Whether the last re-check found the image still served.
    pub online: Option<bool>,
    /// Last re-check (RFC 3339).
    pub last_checked: Option<String>,
    /// First re-check that found it gone (RFC 3339).
    pub offline_since: Option<String>,
}

/// What the hotspot view groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceKind {
    /// Host names (of the image or a page).
    Host,
    /// Registrable domains.
    Domain,
}

impl PlaceKind {
    fn column(self) -> &'static str {
        match self {
            PlaceKind::Host => "host",
            PlaceKind::Domain => "domain",
        }
    }
}

/// Counts of open and confirmed cases per place and time bucket, by the
/// image's first sighting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotspotCount {
    /// Host or domain; `None` for the total over all cases.
    pub place: Option<String>,
    /// Bucket number from the start of the period.
    pub bucket: i64,
    /// `open` or `confirmed`.
    pub status: String,
    /// Distinct cases.
    pub cases: u64,
}

/// A confirmed case of a place, for the time-to-removal figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceConfirmed {
    /// Host or domain.
    pub place: String,
    /// Image first seen (Unix ms).
    pub first_seen_ms: i64,
    /// Last re-check's verdict.
    pub online: Option<bool>,
    /// First re-check that found it gone (Unix ms).
    pub offline_since_ms: Option<i64>,
}

/// What [`ReviewStore::hotspots`] reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hotspots {
    /// Counts per place (and the totals, `place: None`) and bucket.
    pub counts: Vec<HotspotCount>,
    /// Open cases per place in the period.
    pub open: Vec<(String, u64)>,
    /// Every confirmed case per place in the period.
    pub confirmed: Vec<PlaceConfirmed>,
}

impl Hotspots {
    /// Open cases per place, summed from the per-bucket counts: a case has
    /// one first sighting, so it is in one bucket and the sum is exact.
    /// It saves the stores a fourth pass over every case of the period.
    pub fn open_from_counts(&mut self) {
        let mut open: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
        for c in &self.counts {
            if let (Some(p), "open") = (c.place.as_deref(), c.status.as_str()) {
                *open.entry(p).or_default() += c.cases;
            }
        }
        self.open = open.into_iter().map(|(p, n)| (p.to_string(), n)).collect();
    }
}

fn query_export(c: &Connection, f: &ExportFilter) -> Result<Vec<ExportRow>, StoreError> {
    let statuses: Vec<String> =
        if f.statuses.is_empty() { DECISIONS.iter().map(|s| s.to_string()).collect() } else { f.statuses.clone() };
    for s in &statuses {
        check_decision(s)?;
    }
    let mut filters = format!("cs.status IN ({})", vec!["?"; statuses.len()].join(", "));
    let mut args: Vec<Value> = statuses.into_iter().map(Value::Text).collect();
    if let Some(host) = &f.host {
        filters.push_str(" AND cs.blake3 IN (SELECT blake3 FROM review_places WHERE host = ?)");
        args.push(Value::Text(host.to_ascii_lowercase()));
    }
    if let Some(domain) = &f.domain {
        filters.push_str(" AND cs.blake3 IN (SELECT blake3 FROM review_places WHERE domain = ?)");
        args.push(Value::Text(domain.to_ascii_lowercase()));
    }
    // The decision in force: the newest that was not undone.
    let decided =
        "coalesce((SELECT max(d.at) FROM decisions d WHERE d.case_id = cs.id AND d.undone_at IS NULL), cs.updated_at)";
    if let Some(x) = f.since_ms {
        filters.push_str(&format!(" AND {decided} >= ?"));
        args.push(Value::Integer(x));
    }
    if let Some(x) = f.until_ms {
        filters.push_str(&format!(" AND {decided} < ?"));
        args.push(Value::Integer(x));
    }
    if let Some(x) = f.after_id {
        filters.push_str(" AND cs.id > ?");
        args.push(Value::Integer(x));
    }
    args.push(Value::Integer(f.limit as i64));
    let sql = format!(
        "SELECT cs.id, cs.blake3, cs.status, cs.score, ct.first_seen, ct.last_seen, ct.md5, ct.sha1, ct.sha256, ct.pdq,
                cs.online, cs.last_checked_at, cs.offline_since, cs.updated_at
         FROM cases cs JOIN contents ct ON ct.blake3 = cs.blake3
         WHERE {filters} ORDER BY cs.id LIMIT ?"
    );
    let mut st = c.prepare_cached(&sql)?;
    let rows = st
        .query_map(params_from_iter(args), |r| {
            Ok((
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(13)?,
                ExportRow {
                    case_id: r.get(0)?,
                    status: r.get(2)?,
                    score: r.get(3)?,
                    image_urls: Vec::new(),
                    page_urls: Vec::new(),
                    host: String::new(),
                    hosts: Vec::new(),
                    ips: Vec::new(),
                    first_seen: rfc3339(r.get(4)?),
                    last_seen: rfc3339(r.get(5)?),
                    md5: hex_col(r, 6)?,
                    sha1: hex_col(r, 7)?,
                    sha256: hex_col(r, 8)?,
                    blake3: hex_col(r, 1)?,
                    pdq: r
                        .get::<_, Option<Vec<u8>>>(9)?
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .map(|b| hashscan_pdq::PdqHash::from_bytes(b).to_hex()),
                    analyst: None,
                    decided_at: String::new(),
                    note: None,
                    online: r.get(10)?,
                    last_checked: r.get::<_, Option<i64>>(11)?.map(rfc3339),
                    offline_since: r.get::<_, Option<i64>>(12)?.map(rfc3339),
                },
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let cap = MAX_CASE_SIGHTINGS as i64;
    let mut images = c.prepare_cached(
        "SELECT image_id, host, ip FROM images WHERE blake3 = ?1 ORDER BY fetched_at, image_id LIMIT ?2",
    )?;
    let mut pages = c.prepare_cached(
        "SELECT e.page_url FROM images i JOIN edges e ON e.scan = i.scan AND e.image_id = i.image_id
         WHERE i.blake3 = ?1 GROUP BY e.page_url ORDER BY min(e.seen_at), e.page_url LIMIT ?2",
    )?;
    let mut decision = c.prepare_cached(
        "SELECT actor, at, note FROM decisions WHERE case_id = ?1 AND undone_at IS NULL ORDER BY id DESC LIMIT 1",
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for (key, updated_at, mut row) in rows {
        let push = |v: &mut Vec<String>, s: String| {
            if !s.is_empty() && !v.contains(&s) {
                v.push(s);
            }
        };
        for x in images.query_map(params![key, cap], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
        })? {
            let (url, host, ip) = x?;
            if row.host.is_empty() {
                row.host = host.to_ascii_lowercase();
            }
            push(&mut row.image_urls, url);
            push(&mut row.hosts, host.to_ascii_lowercase());
            if let Some(ip) = ip {
                push(&mut row.ips, ip);
            }
        }
        for p in pages.query_map(params![key, cap], |r| r.get::<_, String>(0))? {
            let p = p?;
            if let Some(h) = host_of(&p) {
                push(&mut row.hosts, h);
            }
            push(&mut row.page_urls, p);
        }
        let d = decision
            .query_row(params![row.case_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
            })
            .optional()?;
        match d {
            Some((who, at, note)) => {
                row.analyst = Some(who);
                row.decided_at = rfc3339(at);
                row.note = Some(note);
            }
            None => row.decided_at = rfc3339(updated_at),
        }
        out.push(row);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(name: &str) -> Actor {
        Actor { name: name.into(), ip: Some("127.0.0.1".into()) }
    }

    async fn store_with_cases(n: usize) -> SqliteStore {
        let s = SqliteStore::in_memory().unwrap();
        crate::testkit::store_with_cases(&s, n).await;
        s
    }

    #[tokio::test]
    async fn the_queue_reads_an_index_and_never_sorts() {
        let s = store_with_cases(3).await;
        let plans = s
            .run(|c| {
                let mut out = Vec::new();
                for sql in [
                    "SELECT cs.id FROM cases cs JOIN contents ct ON ct.blake3 = cs.blake3
                     LEFT JOIN claims cl ON cl.case_id = cs.id AND cl.expires_at > 0
                     WHERE cs.status = 'open' AND cs.score < 0.5 ORDER BY cs.score DESC, cs.opened_at, cs.id LIMIT 5",
                    "SELECT cs.id FROM cases cs JOIN contents ct ON ct.blake3 = cs.blake3
                     WHERE cs.status = 'open' AND cs.score = 0.5 AND cs.opened_at = 3 AND cs.id > 3 ORDER BY cs.id LIMIT 5",
                    "SELECT cs.id FROM cases cs JOIN contents ct ON ct.blake3 = cs.blake3
                     WHERE cs.status = 'open' AND cs.scan = 's' ORDER BY cs.score DESC, cs.opened_at, cs.id LIMIT 5",
                ] {
                    let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    let plan: Vec<String> =
                        st.query_map([], |r| r.get::<_, String>(3))?.collect::<Result<Vec<_>, _>>()?;
                    out.push(plan.join(" | "));
                }
                Ok(out)
            })
            .await
            .unwrap();
        for p in plans {
            assert!(p.contains("cases_queue"), "{p}");
            assert!(!p.contains("TEMP B-TREE"), "{p}");
        }
    }

    #[tokio::test]
    async fn a_host_filter_starts_from_the_hosts_places() {
        // Walking the queue index and testing each case against the host
        // took 1.4 s at a million cases; the host's few places go first.
        let s = store_with_cases(3).await;
        let f = QueueFilter { host: Some("img.test".into()), ..QueueFilter::default() };
        s.run(move |c| {
            let plan: Vec<String> = {
                let mut st = c.prepare(
                    "EXPLAIN QUERY PLAN SELECT cs.id FROM
                       (SELECT DISTINCT blake3 FROM review_places WHERE host = 'h') p
                       CROSS JOIN cases cs ON cs.blake3 = p.blake3 JOIN contents ct ON ct.blake3 = cs.blake3
                     WHERE cs.status = 'open' ORDER BY cs.score DESC, cs.opened_at, cs.id LIMIT 5",
                )?;
                let plan = st.query_map([], |r| r.get::<_, String>(3))?.collect::<Result<Vec<_>, _>>()?;
                plan
            };
            let first_scan =
                plan.iter().find(|l| l.contains("SCAN") || l.contains("SEARCH")).cloned().unwrap_or_default();
            assert!(first_scan.contains("review_places"), "{plan:?}");
            // And the built query answers (its results: testkit::review_cases).
            query_queue(c, &f)?;
            Ok(())
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn audit_rows_cannot_be_changed_or_deleted() {
        let s = SqliteStore::in_memory().unwrap();
        let id = s
            .append_audit(NewAudit { action: "login_ok".into(), actor: actor("ann"), ..NewAudit::default() })
            .await
            .unwrap();
        let err = s
            .run(move |c| Ok(c.execute("UPDATE audit SET actor = 'mallory' WHERE id = ?1", params![id])?))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        let err = s.run(|c| Ok(c.execute("DELETE FROM audit", [])?)).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        assert_eq!(s.audit(AuditFilter { limit: 10, ..AuditFilter::default() }).await.unwrap().len(), 1);
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(host_of("http://WWW.A.test:8080/x").as_deref(), Some("www.a.test"));
        assert_eq!(host_of("https://user:pw@b.test/").as_deref(), Some("b.test"));
        assert_eq!(host_of("http://[::1]:80/").as_deref(), Some("::1"));
        assert_eq!(host_of("data:image/png;blake3=00"), None);
    }
}
