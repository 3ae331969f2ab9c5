//! The review service's users, credentials, sessions, login throttling,
//! audit log and host index on PostgreSQL: the SQLite store's statements
//! (`hashscan_store::review`) in PostgreSQL's dialect, with the same
//! results. The case work (queue, claims, decisions) is in `review_cases`.

use std::collections::HashSet;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use hashscan_store::review::{
    disable_audit, host_of, reset_audit, revoke_audit, role_audit, token_audit, user_add_audit, Actor, AuditEntry,
    AuditFilter, CaseDetail, Changed, ClaimOutcome, ClaimedOutcome, ExportFilter, ExportRow, Hotspots, NewAudit,
    PlaceKind, QueueFilter, QueueRow, ReviewStore, TokenInfo, User, ROLES,
};
use hashscan_store::{rfc3339, StoreError};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::{db, PgStore};

/// Key of the advisory lock that serialises [`ReviewStore::sync_places`]
/// across processes, so two of them never insert the same places in
/// different orders (a deadlock) nor redo each other's batch. The bytes
/// spell "places".
const PLACES_LOCK: i64 = 0x7069_6163_6573;

/// How long [`settled_upto`] waits for the writers of a table before it
/// gives up for this round. Just above PostgreSQL's default
/// `deadlock_timeout` (1 s): by then a (non-wraparound) autovacuum of the
/// table has been cancelled in our favour, and in the rare lock cycle
/// through writers queued behind us our own deadlock check, the first to
/// run, ends our wait rather than a writer's transaction. Writers that
/// queue behind the barrier wait at most this long.
const SETTLE_TIMEOUT: &str = "1500ms";

/// Sessions idle for longer than this are deleted whatever the configured
/// limits (as the SQLite store does), so the table stays small.
const SESSION_PURGE_MS: i64 = 7 * 86_400_000;

/// The columns [`user_row`] reads, in its order.
const USER_COLS: &str = "u.id, u.name, u.role, u.password_hash, u.disabled, u.created_at";

/// Appends one audit row on `c` (a pooled client or, to audit a change in
/// the change's own transaction, a `deadpool_postgres::Transaction`) and
/// returns its id. JSON goes in as text, as the SQLite store writes it, so
/// both stores hold the same strings.
pub(crate) async fn insert_audit<C: GenericClient>(c: &C, entry: &NewAudit) -> Result<i64, StoreError> {
    let js = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
    let (before, after) = (js(&entry.before), js(&entry.after));
    let st = c
        .prepare_cached(
            "INSERT INTO audit (at, actor, action, case_id, before, after, detail, client_ip)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .await
        .map_err(db)?;
    let row = c
        .query_one(
            &st,
            &[
                &entry.at_ms,
                &entry.actor.name,
                &entry.action,
                &entry.case_id,
                &before,
                &after,
                &entry.detail,
                &entry.actor.ip,
            ],
        )
        .await
        .map_err(db)?;
    Ok(row.get(0))
}

/// A row of [`USER_COLS`] (from column 0).
fn user_row(r: &Row) -> User {
    User {
        id: r.get(0),
        name: r.get(1),
        role: r.get(2),
        password_hash: r.get(3),
        disabled: r.get(4),
        created_at_ms: r.get(5),
    }
}

/// A `usize` count as a SQL `LIMIT` (saturating: no caller asks for more
/// than `i64::MAX` rows, and a huge limit means "all").
fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The highest `column` of `table` below which no row can still appear:
/// it takes a SHARE lock, which waits for every transaction that is
/// inserting into the table, reads the maximum and lets go at once.
///
/// PostgreSQL hands out identity values before the inserting transaction
/// commits, so a row with a lower id may become visible after one with a
/// higher id (SQLite, with one writer, never does this). A watermark that
/// moved past the higher one would skip the lower row for good; bounding
/// each round by this settled maximum means it never does. `None` when the
/// writers did not finish within [`SETTLE_TIMEOUT`] (a long transaction, a
/// vacuum that would not yield): the caller reads nothing new of that table
/// this round, and a later round catches up; nothing is lost. The lock
/// needs UPDATE, DELETE or TRUNCATE rights on the table, which the store's
/// role has (it creates and writes the tables).
async fn settled_upto(
    c: &mut deadpool_postgres::Object,
    table: &'static str,
    column: &'static str,
) -> Result<Option<i64>, StoreError> {
    let tx = c.transaction().await.map_err(db)?;
    // Identifiers and a constant, never caller data: safe to format.
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{SETTLE_TIMEOUT}'")).await.map_err(db)?;
    match tx.batch_execute(&format!("LOCK TABLE {table} IN SHARE MODE")).await {
        Ok(()) => {}
        Err(e)
            if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
                || e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) =>
        {
            tx.rollback().await.map_err(db)?;
            return Ok(None);
        }
        Err(e) => return Err(db(e)),
    }
    let max: i64 =
        tx.query_one(&format!("SELECT COALESCE(max({column}), 0) FROM {table}"), &[]).await.map_err(db)?.get(0);
    tx.commit().await.map_err(db)?;
    Ok(Some(max))
}

#[async_trait]
impl ReviewStore for PgStore {
    /// Adds a user; `false` when the name is taken. Audited as `user_add`
    /// in the same transaction.
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
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let n = tx
            .execute(
                "INSERT INTO users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &role, &password_hash, &at_ms],
            )
            .await
            .map_err(db)?;
        if n == 1 {
            insert_audit(&tx, &user_add_audit(actor, name, role, at_ms)).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(n == 1)
    }

    /// A user by name.
    async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let c = self.client().await?;
        let st = c.prepare_cached(&format!("SELECT {USER_COLS} FROM users u WHERE u.name = $1")).await.map_err(db)?;
        Ok(c.query_opt(&st, &[&name]).await.map_err(db)?.as_ref().map(user_row))
    }

    /// Every user, by name in byte order (`COLLATE "C"`), which is SQLite's
    /// order, whatever the database's collation.
    async fn users(&self) -> Result<Vec<User>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(&format!("SELECT {USER_COLS} FROM users u ORDER BY u.name COLLATE \"C\""), &[])
            .await
            .map_err(db)?;
        Ok(rows.iter().map(user_row).collect())
    }

    /// Disables (or enables) a user and ends their sessions; `false` when
    /// there is no such user. Audited as `user_disable` / `user_enable`.
    /// The user's row is locked first, so the audit's "before" is the
    /// state this change replaced even when two admins act at once.
    async fn set_user_disabled(
        &self,
        name: &str,
        disabled: bool,
        actor: Actor,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let Some(row) =
            tx.query_opt("SELECT id, disabled FROM users WHERE name = $1 FOR UPDATE", &[&name]).await.map_err(db)?
        else {
            return Ok(false);
        };
        let (id, before): (i64, bool) = (row.get(0), row.get(1));
        tx.execute("UPDATE users SET disabled = $2 WHERE id = $1", &[&id, &disabled]).await.map_err(db)?;
        tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&id]).await.map_err(db)?;
        insert_audit(&tx, &disable_audit(actor, name, before, disabled, at_ms)).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
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
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let Some(row) = tx
            .query_opt("UPDATE users SET password_hash = $2 WHERE name = $1 RETURNING id", &[&name, &password_hash])
            .await
            .map_err(db)?
        else {
            return Ok(false);
        };
        let id: i64 = row.get(0);
        tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&id]).await.map_err(db)?;
        insert_audit(&tx, &reset_audit(actor, name, at_ms)).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
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
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let Some(row) = tx.query_opt("SELECT id FROM users WHERE name = $1", &[&name]).await.map_err(db)? else {
            return Ok(None);
        };
        let uid: i64 = row.get(0);
        let id: i64 = tx
            .query_one(
                "INSERT INTO api_tokens (user_id, label, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                &[&uid, &label, &&token_hash[..], &at_ms],
            )
            .await
            .map_err(db)?
            .get(0);
        insert_audit(&tx, &token_audit(actor, id, name, label, at_ms)).await?;
        tx.commit().await.map_err(db)?;
        Ok(Some(id))
    }

    /// The enabled user an API token (by hash) belongs to; records its use.
    /// On every API request, hence the cached statements.
    async fn user_for_token(&self, token_hash: [u8; 32], at_ms: i64) -> Result<Option<User>, StoreError> {
        let c = self.client().await?;
        let find = c
            .prepare_cached(&format!(
                "SELECT {USER_COLS}, t.id FROM api_tokens t JOIN users u ON u.id = t.user_id
                 WHERE t.token_hash = $1 AND NOT u.disabled"
            ))
            .await
            .map_err(db)?;
        let Some(row) = c.query_opt(&find, &[&&token_hash[..]]).await.map_err(db)? else { return Ok(None) };
        let tid: i64 = row.get(6);
        let used = c.prepare_cached("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1").await.map_err(db)?;
        c.execute(&used, &[&tid, &at_ms]).await.map_err(db)?;
        Ok(Some(user_row(&row)))
    }

    /// Changes a user's role (row locked); `false` when there is no such
    /// user. Audited as `user_role` in the same transaction.
    async fn set_role(&self, name: &str, role: &str, actor: Actor, at_ms: i64) -> Result<bool, StoreError> {
        if !ROLES.contains(&role) {
            return Err(StoreError::BadStatus(role.to_string()));
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let Some(row) =
            tx.query_opt("SELECT id, role FROM users WHERE name = $1 FOR UPDATE", &[&name]).await.map_err(db)?
        else {
            return Ok(false);
        };
        let (id, before): (i64, String) = (row.get(0), row.get(1));
        tx.execute("UPDATE users SET role = $2 WHERE id = $1", &[&id, &role]).await.map_err(db)?;
        insert_audit(&tx, &role_audit(actor, name, &before, role, at_ms)).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    /// Every API token (of every user, or of `user`), oldest first.
    async fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT t.id, u.name, t.label, t.created_at, t.last_used_at
                 FROM api_tokens t JOIN users u ON u.id = t.user_id
                 WHERE $1::text IS NULL OR u.name = $1 ORDER BY t.created_at, t.id",
                &[&user],
            )
            .await
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| TokenInfo {
                id: r.get(0),
                user: r.get(1),
                label: r.get(2),
                created_at_ms: r.get(3),
                last_used_at_ms: r.get(4),
            })
            .collect())
    }

    /// Deletes an API token by id; `false` when there is none. Audited as
    /// `token_revoke` in the same transaction.
    async fn revoke_token(&self, id: i64, actor: Actor, at_ms: i64) -> Result<bool, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let Some(row) = tx
            .query_opt(
                "DELETE FROM api_tokens t USING users u WHERE t.id = $1 AND u.id = t.user_id RETURNING u.name, t.label",
                &[&id],
            )
            .await
            .map_err(db)?
        else {
            return Ok(false);
        };
        let (user, label): (String, String) = (row.get(0), row.get(1));
        insert_audit(&tx, &revoke_audit(actor, id, &user, &label, at_ms)).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    /// Starts a session (token by hash) for a user with its CSRF token;
    /// first forgets sessions idle for over a week.
    async fn create_session(
        &self,
        token_hash: [u8; 32],
        user_id: i64,
        csrf: &str,
        ip: Option<String>,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute("DELETE FROM sessions WHERE last_seen_at < $1", &[&(at_ms - SESSION_PURGE_MS)]).await.map_err(db)?;
        c.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf, created_at, last_seen_at, client_ip)
             VALUES ($1, $2, $3, $4, $4, $5)",
            &[&&token_hash[..], &user_id, &csrf, &at_ms, &ip],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    /// The user and CSRF token of a live session (by token hash), which is
    /// then kept alive; `None` when unknown, idle longer than `idle_ms`,
    /// older than `max_ms`, or its user is disabled (then it is deleted).
    /// On every page request, hence the cached statements.
    async fn session(
        &self,
        token_hash: [u8; 32],
        at_ms: i64,
        idle_ms: i64,
        max_ms: i64,
    ) -> Result<Option<(User, String)>, StoreError> {
        let c = self.client().await?;
        let key = &token_hash[..];
        let find = c
            .prepare_cached(&format!(
                "SELECT {USER_COLS}, s.csrf, s.created_at, s.last_seen_at FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = $1"
            ))
            .await
            .map_err(db)?;
        let Some(row) = c.query_opt(&find, &[&key]).await.map_err(db)? else { return Ok(None) };
        let (user, csrf, created, seen): (User, String, i64, i64) =
            (user_row(&row), row.get(6), row.get(7), row.get(8));
        if user.disabled || at_ms - seen > idle_ms || at_ms - created > max_ms {
            let gone = c.prepare_cached("DELETE FROM sessions WHERE token_hash = $1").await.map_err(db)?;
            c.execute(&gone, &[&key]).await.map_err(db)?;
            return Ok(None);
        }
        let touch =
            c.prepare_cached("UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1").await.map_err(db)?;
        c.execute(&touch, &[&key, &at_ms]).await.map_err(db)?;
        Ok(Some((user, csrf)))
    }

    /// Ends a session (by token hash).
    async fn delete_session(&self, token_hash: [u8; 32]) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute("DELETE FROM sessions WHERE token_hash = $1", &[&&token_hash[..]]).await.map_err(db)?;
        Ok(())
    }

    /// Per key: failed logins after `since_ms`, and the time of the oldest
    /// of them (Unix ms).
    async fn login_failures(&self, keys: Vec<String>, since_ms: i64) -> Result<Vec<(u64, Option<i64>)>, StoreError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached("SELECT count(*), min(at) FROM login_failures WHERE key = $1 AND at > $2")
            .await
            .map_err(db)?;
        let mut out = Vec::with_capacity(keys.len());
        for k in &keys {
            let row = c.query_one(&st, &[k, &since_ms]).await.map_err(db)?;
            let n: i64 = row.get(0);
            out.push((n.max(0) as u64, row.get(1)));
        }
        Ok(out)
    }

    /// Records a failed login under each key; forgets failures older than
    /// `forget_before_ms`. One transaction, so a reader sees all the keys
    /// of one failure or none.
    async fn record_login_failure(
        &self,
        keys: Vec<String>,
        at_ms: i64,
        forget_before_ms: i64,
    ) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        tx.execute("DELETE FROM login_failures WHERE at < $1", &[&forget_before_ms]).await.map_err(db)?;
        let st = tx.prepare_cached("INSERT INTO login_failures (key, at) VALUES ($1, $2)").await.map_err(db)?;
        for k in &keys {
            tx.execute(&st, &[k, &at_ms]).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    /// Forgets the failed logins under one key (after a good login).
    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute("DELETE FROM login_failures WHERE key = $1", &[&key]).await.map_err(db)?;
        Ok(())
    }

    /// Appends to the audit log; returns the entry's id.
    async fn append_audit(&self, entry: NewAudit) -> Result<i64, StoreError> {
        let c = self.client().await?;
        insert_audit(&c, &entry).await
    }

    /// Reads the audit log, newest first or oldest first, by keyset on the
    /// id. Stored JSON that does not parse reads as null, as in SQLite.
    async fn audit(&self, f: AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let mut sql = String::from(
            "SELECT id, at, actor, action, case_id, before, after, detail, client_ip FROM audit WHERE TRUE",
        );
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        if let Some(case) = f.case_id {
            args.push(Box::new(case));
            sql.push_str(&format!(" AND case_id = ${}", args.len()));
        }
        if let Some(actor) = f.actor {
            args.push(Box::new(actor));
            sql.push_str(&format!(" AND actor = ${}", args.len()));
        }
        if let Some(after) = f.after_id {
            args.push(Box::new(after));
            sql.push_str(&format!(" AND id {} ${}", if f.oldest_first { ">" } else { "<" }, args.len()));
        }
        args.push(Box::new(limit(f.limit)));
        sql.push_str(&format!(" ORDER BY id {} LIMIT ${}", if f.oldest_first { "" } else { "DESC" }, args.len()));
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect();
        let c = self.client().await?;
        let rows = c.query(&sql, &params).await.map_err(db)?;
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        Ok(rows
            .iter()
            .map(|r| {
                let at: i64 = r.get(1);
                AuditEntry {
                    id: r.get(0),
                    at: rfc3339(at),
                    at_ms: at,
                    actor: r.get(2),
                    action: r.get(3),
                    case_id: r.get(4),
                    before: parse(r.get(5)),
                    after: parse(r.get(6)),
                    detail: r.get(7),
                    client_ip: r.get(8),
                }
            })
            .collect())
    }

    /// Brings the hosts-and-domains table of cases up to date with the
    /// sightings recorded since the last call, at most `batch` rows of each
    /// source per call; returns how many source rows it read (0: up to date).
    /// `domain_of` maps a host to its registrable domain.
    ///
    /// Safe to run in several processes at once: each source is read only
    /// up to its settled maximum ([`settled_upto`]), the rounds are
    /// serialised by an advisory lock (a second round waits, then starts
    /// from the first one's watermarks), places are inserted with
    /// `ON CONFLICT DO NOTHING`, and a watermark is only ever raised.
    async fn sync_places(&self, domain_of: for<'h> fn(&'h str) -> String, batch: usize) -> Result<usize, StoreError> {
        let mut c = self.client().await?;
        let top_cases = settled_upto(&mut c, "cases", "id").await?;
        let top_images = settled_upto(&mut c, "images", "seq").await?;
        let top_edges = settled_upto(&mut c, "edges", "seq").await?;
        let tx = c.transaction().await.map_err(db)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PLACES_LOCK]).await.map_err(db)?;
        let mark = tx.prepare_cached("SELECT value FROM review_state WHERE name = $1").await.map_err(db)?;
        let mut marks = [0i64; 3];
        for (m, name) in marks.iter_mut().zip(["places_cases", "places_images", "places_edges"]) {
            *m = tx.query_opt(&mark, &[&name]).await.map_err(db)?.map_or(0, |r| r.get(0));
        }
        let [mut w_cases, mut w_images, mut w_edges] = marks;
        let n = limit(batch);
        // Places are gathered per round and written in one statement: a
        // round trip per sighting made a million-case catch-up take minutes.
        let mut places: HashSet<(Vec<u8>, String)> = HashSet::new();
        let mut add = |key: Vec<u8>, host: String| {
            let host = host.to_ascii_lowercase();
            if !host.is_empty() {
                places.insert((key, host));
            }
        };
        let mut read = 0usize;
        // New cases: every host their image has so far.
        if let Some(top) = top_cases {
            let ids: Vec<i64> = tx
                .query("SELECT id FROM cases WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3", &[&w_cases, &top, &n])
                .await
                .map_err(db)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let rows = tx
                .query(
                    "SELECT k.blake3, i.host, e.page_url FROM cases k
                     JOIN images i ON i.blake3 = k.blake3
                     LEFT JOIN edges e ON e.scan = i.scan AND e.image_id = i.image_id
                     WHERE k.id = ANY($1)",
                    &[&ids],
                )
                .await
                .map_err(db)?;
            for r in &rows {
                let key: Vec<u8> = r.get(0);
                if let Some(h) = r.get::<_, Option<&str>>(2).and_then(host_of) {
                    add(key.clone(), h);
                }
                add(key, r.get(1));
            }
            if let Some(&last) = ids.last() {
                w_cases = last;
            }
            read += ids.len();
        }
        // New image records of existing cases: their host, and the pages
        // whose edges arrived before them.
        if let Some(top) = top_images {
            let rows = tx
                .query(
                    "WITH im AS (SELECT seq, blake3, host, scan, image_id FROM images
                                 WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3)
                     SELECT im.seq, im.blake3, im.host, e.page_url FROM im
                     LEFT JOIN edges e ON e.scan = im.scan AND e.image_id = im.image_id",
                    &[&w_images, &top, &n],
                )
                .await
                .map_err(db)?;
            let mut seqs = HashSet::new();
            for r in &rows {
                let (seq, key): (i64, Vec<u8>) = (r.get(0), r.get(1));
                seqs.insert(seq);
                w_images = w_images.max(seq);
                if let Some(h) = r.get::<_, Option<&str>>(3).and_then(host_of) {
                    add(key.clone(), h);
                }
                add(key, r.get(2));
            }
            read += seqs.len();
        }
        // New edges whose image is already hashed.
        if let Some(top) = top_edges {
            let edges = tx
                .query(
                    "SELECT e.seq, e.page_url, i.blake3 FROM edges e
                     LEFT JOIN images i ON i.scan = e.scan AND i.image_id = e.image_id
                     WHERE e.seq > $1 AND e.seq <= $2 ORDER BY e.seq LIMIT $3",
                    &[&w_edges, &top, &n],
                )
                .await
                .map_err(db)?;
            for r in &edges {
                let key: Option<Vec<u8>> = r.get(2);
                if let (Some(key), Some(h)) = (key, host_of(r.get(1))) {
                    add(key, h);
                }
                w_edges = r.get(0);
            }
            read += edges.len();
        }
        if !places.is_empty() {
            let (mut keys, mut hosts, mut domains) = (Vec::new(), Vec::new(), Vec::new());
            for (key, host) in places {
                domains.push(domain_of(&host));
                keys.push(key);
                hosts.push(host);
            }
            tx.execute(
                "INSERT INTO review_places (blake3, host, domain)
                 SELECT u.b, u.h, u.d FROM unnest($1::bytea[], $2::text[], $3::text[]) AS u(b, h, d)
                 WHERE EXISTS (SELECT 1 FROM cases WHERE blake3 = u.b)
                 ON CONFLICT DO NOTHING",
                &[&keys, &hosts, &domains],
            )
            .await
            .map_err(db)?;
        }
        let set = tx
            .prepare_cached(
                "INSERT INTO review_state (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET value = GREATEST(review_state.value, excluded.value)",
            )
            .await
            .map_err(db)?;
        for (name, value) in [("places_cases", w_cases), ("places_images", w_images), ("places_edges", w_edges)] {
            tx.execute(&set, &[&name, &value]).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(read)
    }

    async fn queue(&self, f: QueueFilter) -> Result<Vec<QueueRow>, StoreError> {
        self.rc_queue(f).await
    }
    async fn case_detail(&self, case_id: i64, now_ms: i64) -> Result<Option<CaseDetail>, StoreError> {
        self.rc_case_detail(case_id, now_ms).await
    }
    async fn case_key(&self, case_id: i64) -> Result<Option<([u8; 32], String, String)>, StoreError> {
        self.rc_case_key(case_id).await
    }
    async fn claim(
        &self,
        case_id: i64,
        user_id: i64,
        lease_ms: i64,
        actor: Actor,
        at_ms: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        self.rc_claim(case_id, user_id, lease_ms, actor, at_ms).await
    }
    async fn release(
        &self,
        case_id: i64,
        user_id: i64,
        actor: Actor,
        at_ms: i64,
    ) -> Result<ClaimedOutcome, StoreError> {
        self.rc_release(case_id, user_id, actor, at_ms).await
    }
    async fn decide_claimed(
        &self,
        case_id: i64,
        user_id: i64,
        status: &str,
        note: &str,
        actor: Actor,
        at_ms: i64,
    ) -> Result<ClaimedOutcome, StoreError> {
        self.rc_decide_claimed(case_id, user_id, status, note, actor, at_ms).await
    }
    async fn undo_claimed(
        &self,
        case_id: i64,
        user_id: i64,
        actor: Actor,
        at_ms: i64,
    ) -> Result<ClaimedOutcome, StoreError> {
        self.rc_undo_claimed(case_id, user_id, actor, at_ms).await
    }
    async fn decide_host(
        &self,
        host: &str,
        status: &str,
        note: &str,
        actor: Actor,
        limit: usize,
        at_ms: i64,
    ) -> Result<Vec<Changed>, StoreError> {
        self.rc_decide_host(host, status, note, actor, limit, at_ms).await
    }
    async fn export_cases(&self, f: ExportFilter) -> Result<Vec<ExportRow>, StoreError> {
        self.rc_export_cases(f).await
    }
    async fn hotspots(&self, by: PlaceKind, start_ms: i64, end_ms: i64, width_ms: i64) -> Result<Hotspots, StoreError> {
        self.rc_hotspots(by, start_ms, end_ms, width_ms).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use hashscan_store::review::{Actor, AuditFilter, NewAudit, ReviewStore};
    use tokio_postgres::NoTls;

    use crate::testdb::TestDb;
    use crate::PgStore;

    fn actor(name: &str) -> Actor {
        Actor { name: name.into(), ip: Some("127.0.0.1".into()) }
    }

    /// A plain connection to the test database, for raw SQL.
    async fn raw(db: &TestDb) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&db.url, NoTls).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }

    fn dom(h: &str) -> String {
        let labels: Vec<&str> = h.rsplitn(3, '.').take(2).collect();
        labels.into_iter().rev().collect::<Vec<_>>().join(".")
    }

    async fn places(c: &tokio_postgres::Client) -> BTreeSet<(u8, String, String)> {
        c.query("SELECT blake3, host, domain FROM review_places", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, Vec<u8>>(0)[0], r.get(1), r.get(2)))
            .collect()
    }

    async fn add_case(c: &tokio_postgres::Client, key: u8) {
        c.execute(
            "INSERT INTO cases (blake3, score, scan, opened_at, updated_at) VALUES ($1, 1.0, 's', 0, 0)",
            &[&vec![key; 32]],
        )
        .await
        .unwrap();
    }

    async fn add_image(c: &tokio_postgres::Client, key: u8, url: &str, host: &str) {
        c.execute(
            "INSERT INTO images (scan, image_id, blake3, host, fetched_at) VALUES ('s', $1, $2, $3, 0)",
            &[&url, &vec![key; 32], &host],
        )
        .await
        .unwrap();
    }

    async fn add_edge(c: &tokio_postgres::Client, page: &str, image: &str) {
        c.execute("INSERT INTO edges (scan, page_url, image_id, seen_at) VALUES ('s', $1, $2, 0)", &[&page, &image])
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn audit_rows_cannot_be_changed_or_deleted() {
        let db = TestDb::create("audit_append_only").await;
        let s = PgStore::connect(&db.url).await.unwrap();
        let id = s
            .append_audit(NewAudit { action: "login_ok".into(), actor: actor("ann"), ..NewAudit::default() })
            .await
            .unwrap();
        let c = raw(&db).await;
        let err = c.execute("UPDATE audit SET actor = 'mallory' WHERE id = $1", &[&id]).await.unwrap_err();
        assert!(crate::db(err).to_string().contains("append-only"));
        let err = c.execute("DELETE FROM audit", &[]).await.unwrap_err();
        assert!(crate::db(err).to_string().contains("append-only"));
        let log = s.audit(AuditFilter { limit: 10, ..AuditFilter::default() }).await.unwrap();
        assert_eq!((log.len(), log[0].actor.as_str()), (1, "ann"));
        drop(s);
        db.drop_now().await;
    }

    #[tokio::test]
    async fn a_token_records_its_last_use() {
        let db = TestDb::create("token_last_use").await;
        let s = PgStore::connect(&db.url).await.unwrap();
        s.add_user("ann", "analyst", "x", actor("cli"), 0).await.unwrap();
        let id = s.add_token("ann", "ci", [5; 32], actor("cli"), 10).await.unwrap().unwrap();
        let c = raw(&db).await;
        let used = || {
            let c = &c;
            async move {
                c.query_one("SELECT last_used_at FROM api_tokens WHERE id = $1", &[&id])
                    .await
                    .unwrap()
                    .get::<_, Option<i64>>(0)
            }
        };
        assert_eq!(used().await, None);
        assert!(s.user_for_token([5; 32], 555).await.unwrap().is_some());
        assert_eq!(used().await, Some(555));
        // A refused token is not recorded as used.
        s.set_user_disabled("ann", true, actor("cli"), 600).await.unwrap();
        assert!(s.user_for_token([5; 32], 700).await.unwrap().is_none());
        assert_eq!(used().await, Some(555));
        drop(s);
        db.drop_now().await;
    }

    #[tokio::test]
    async fn concurrent_place_syncs_agree_and_miss_nothing() {
        let db = TestDb::create("places_concurrent").await;
        let (s1, s2) = (PgStore::connect(&db.url).await.unwrap(), PgStore::connect(&db.url).await.unwrap());
        let c = raw(&db).await;
        let mut want = BTreeSet::new();
        for k in 1..=12u8 {
            add_case(&c, k).await;
            let url = format!("http://img{k}.a.test/{k}.png");
            add_image(&c, k, &url, &format!("IMG{k}.a.test")).await;
            add_edge(&c, &format!("http://p{k}.pages.test/x"), &url).await;
            want.insert((k, format!("img{k}.a.test"), "a.test".to_string()));
            want.insert((k, format!("p{k}.pages.test"), "pages.test".to_string()));
        }
        // An image without a case yields no place.
        add_image(&c, 99, "http://none.test/1.png", "none.test").await;
        let run = |s: PgStore| async move {
            let mut total = 0;
            loop {
                match s.sync_places(dom, 2).await.unwrap() {
                    0 => return total,
                    n => total += n,
                }
            }
        };
        let (a, b) = tokio::join!(tokio::spawn(run(s1.clone())), tokio::spawn(run(s2.clone())));
        // Serialised rounds: every source row is read once in all.
        assert_eq!(a.unwrap() + b.unwrap(), 12 + 13 + 12);
        assert_eq!(places(&c).await, want);
        let marks: Vec<(String, i64)> = c
            .query("SELECT name, value FROM review_state ORDER BY name", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let top = |sql: &'static str| {
            let c = &c;
            async move { c.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
        };
        let (cases, images, edges) = (
            top("SELECT max(id) FROM cases").await,
            top("SELECT max(seq) FROM images").await,
            top("SELECT max(seq) FROM edges").await,
        );
        assert_eq!(
            marks,
            [("places_cases".into(), cases), ("places_edges".into(), edges), ("places_images".into(), images)]
        );
        drop((s1, s2));
        db.drop_now().await;
    }

    #[tokio::test]
    async fn a_row_committed_late_with_a_lower_id_is_not_skipped() {
        let db = TestDb::create("places_late_commit").await;
        let s = PgStore::connect(&db.url).await.unwrap();
        let c = raw(&db).await;
        add_case(&c, 1).await;
        add_case(&c, 2).await;
        // A writer takes the lower image seq and has not committed ...
        let mut slow = raw(&db).await;
        let tx = slow.transaction().await.unwrap();
        tx.execute(
            "INSERT INTO images (scan, image_id, blake3, host, fetched_at) VALUES ('s', 'slow', $1, 'slow.test', 0)",
            &[&vec![1u8; 32]],
        )
        .await
        .unwrap();
        // ... while a later one commits a higher seq.
        add_image(&c, 2, "fast", "fast.test").await;
        while s.sync_places(dom, 100).await.unwrap() > 0 {}
        tx.commit().await.unwrap();
        while s.sync_places(dom, 100).await.unwrap() > 0 {}
        let hosts: BTreeSet<String> = places(&c).await.into_iter().map(|(_, h, _)| h).collect();
        assert_eq!(hosts, ["fast.test".to_string(), "slow.test".into()].into_iter().collect());
        drop(s);
        db.drop_now().await;
    }
}
