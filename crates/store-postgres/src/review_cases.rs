//! The review service's case work on PostgreSQL — queue, case page, claims,
//! decisions and undo, bulk decisions by host, exports and hotspots — as the
//! SQLite store does it (`hashscan_store::review`), with the same results.
//!
//! Decisions:
//! * Every claimed action (claim, release, decide, undo) first locks its
//!   case row (`FOR NO KEY UPDATE`), so actions on one case run one after
//!   the other across any number of connections and processes, as SQLite's
//!   single writer makes them; each later statement of the transaction
//!   (READ COMMITTED) then sees what the previous holder committed. The
//!   claim itself is still one conditional upsert, as in SQLite.
//! * Audit rows go in through `review::insert_audit` on the change's own
//!   transaction, so the log never misses a change nor records one that
//!   was rolled back.
//! * Text tie-breaks (`image_id`, `page_url`, places) sort `COLLATE "C"`:
//!   byte order, which is SQLite's, whatever the database's collation.

use deadpool_postgres::{GenericClient, Transaction};
use hashscan_pdq::PdqHash;
use hashscan_store::review::{
    host_of, Actor, CaseDetail, Changed, ClaimFilter, ClaimInfo, ClaimOutcome, ClaimedOutcome, DecisionRecord,
    ExportFilter, ExportRow, Hashes, HostSeen, HotspotCount, Hotspots, ImageSighting, NewAudit, PageSighting,
    PlaceConfirmed, PlaceKind, QueueFilter, QueueRow, DECISIONS, MAX_CASE_SIGHTINGS,
};
use hashscan_store::{rfc3339, MatchKind, Reason, StoreError};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::review::insert_audit;
use crate::{db, hash32, PgStore};

/// A bound value of a query whose text depends on which filters are set.
#[derive(Debug, Clone)]
enum Val {
    /// BIGINT.
    Int(i64),
    /// DOUBLE PRECISION.
    Real(f64),
    /// TEXT.
    Text(String),
    /// TEXT[].
    Texts(Vec<String>),
}

impl Val {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Val::Int(x) => x,
            Val::Real(x) => x,
            Val::Text(x) => x,
            Val::Texts(x) => x,
        }
    }
}

/// Values and their `$n` placeholders, numbered in the order they are added.
#[derive(Debug, Clone, Default)]
struct Args(Vec<Val>);

impl Args {
    /// Adds a value; returns its placeholder.
    fn add(&mut self, v: Val) -> String {
        self.0.push(v);
        format!("${}", self.0.len())
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0.iter().map(Val::as_sql).collect()
    }
}

/// A `usize` count as a SQL `LIMIT` (saturating: a huge limit means "all").
fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Statuses an analyst may decide (as the SQLite store checks them).
fn check_decision(status: &str) -> Result<(), StoreError> {
    if DECISIONS.contains(&status) {
        Ok(())
    } else {
        Err(StoreError::BadStatus(status.to_string()))
    }
}

/// The audit JSON of a status.
fn status_json(s: &str) -> Option<serde_json::Value> {
    Some(serde_json::json!({ "status": s }))
}

/// A stored PDQ as hex; bytes of another length read as no PDQ (as SQLite).
fn pdq_hex(b: Option<Vec<u8>>) -> Option<String> {
    b.and_then(|b| <[u8; 32]>::try_from(b).ok()).map(|b| PdqHash::from_bytes(b).to_hex())
}

/// A BIGINT column that must fit a narrower type (SQLite refuses one that does not).
fn narrow<T: TryFrom<i64>>(v: Option<i64>, table: &'static str, column: &'static str) -> Result<Option<T>, StoreError> {
    v.map(|x| T::try_from(x).map_err(|_| StoreError::Corrupt { table, column, detail: format!("{x} out of range") }))
        .transpose()
}

/// A count as `u64` (counts are never negative).
fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The live claim on a case (lease not run out at `now_ms`).
async fn live_claim<C: GenericClient>(c: &C, case_id: i64, now_ms: i64) -> Result<Option<ClaimInfo>, StoreError> {
    let st = c
        .prepare_cached(
            "SELECT cl.user_id, u.name, cl.claimed_at, cl.expires_at FROM claims cl JOIN users u ON u.id = cl.user_id
             WHERE cl.case_id = $1 AND cl.expires_at > $2",
        )
        .await
        .map_err(db)?;
    Ok(c.query_opt(&st, &[&case_id, &now_ms]).await.map_err(db)?.map(|r| ClaimInfo {
        user_id: r.get(0),
        user: r.get(1),
        claimed_at_ms: r.get(2),
        expires_at_ms: r.get(3),
    }))
}

/// The image, scan and status of a case.
async fn case_key_of<C: GenericClient>(c: &C, case_id: i64) -> Result<Option<([u8; 32], String, String)>, StoreError> {
    let st = c.prepare_cached("SELECT blake3, scan, status FROM cases WHERE id = $1").await.map_err(db)?;
    key_row(c.query_opt(&st, &[&case_id]).await.map_err(db)?)
}

/// [`case_key_of`], locking the case row until the transaction ends: every
/// claimed action on the case waits here for the one before it.
async fn lock_case(tx: &Transaction<'_>, case_id: i64) -> Result<Option<([u8; 32], String, String)>, StoreError> {
    let st = tx
        .prepare_cached("SELECT blake3, scan, status FROM cases WHERE id = $1 FOR NO KEY UPDATE")
        .await
        .map_err(db)?;
    key_row(tx.query_opt(&st, &[&case_id]).await.map_err(db)?)
}

fn key_row(r: Option<Row>) -> Result<Option<([u8; 32], String, String)>, StoreError> {
    r.map(|r| Ok((hash32(r.get::<_, &[u8]>(0), "cases", "blake3")?, r.get(1), r.get(2)))).transpose()
}

/// Sets a case's status (the same update as `CaseStore::decide`), records
/// the decision and audits it, inside the caller's transaction.
#[allow(clippy::too_many_arguments)]
async fn decide_in(
    tx: &Transaction<'_>,
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
    let st = tx.prepare_cached("UPDATE cases SET status = $2, updated_at = $3 WHERE id = $1").await.map_err(db)?;
    tx.execute(&st, &[&case_id, &status, &at_ms]).await.map_err(db)?;
    let st = tx
        .prepare_cached(
            "INSERT INTO decisions (case_id, actor, at, before_status, after_status, note)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await
        .map_err(db)?;
    tx.execute(&st, &[&case_id, &actor.name, &at_ms, &before, &status, &note]).await.map_err(db)?;
    insert_audit(
        tx,
        &NewAudit {
            actor: actor.clone(),
            action: action.into(),
            case_id: Some(case_id),
            before: status_json(before),
            after: status_json(status),
            detail: Some(note.to_string()),
            at_ms,
        },
    )
    .await?;
    Ok(Changed { case_id, blake3: key, scan: scan.to_string(), before: before.to_string(), after: status.to_string() })
}

/// Whether a scan's recorded options (JSON text) say it ignored robots.txt:
/// `ignore_robots` true or a non-zero number, as SQLite's `json_extract`
/// reads it; absent or null is false.
const ROBOTS_IGNORED: &str = "coalesce((SELECT CASE jsonb_typeof(s.config::jsonb -> 'ignore_robots')
         WHEN 'boolean' THEN (s.config::jsonb -> 'ignore_robots')::boolean
         WHEN 'number' THEN (s.config::jsonb -> 'ignore_robots')::numeric <> 0 END
       FROM scans s WHERE s.id = cs.scan), false)";

impl PgStore {
    /// One page of the queue, in SQLite's order (score highest first, case
    /// opened, case id) and with its filters, split into the same keyset
    /// ranges so each reads the queue index from the cursor on.
    pub(crate) async fn rc_queue(&self, f: QueueFilter) -> Result<Vec<QueueRow>, StoreError> {
        let c = self.client().await?;
        let mut args = Args::default();
        // A host or domain filter drives the query from its few places.
        let driver = match (&f.host, &f.domain) {
            (Some(host), _) => format!(
                "(SELECT DISTINCT blake3 FROM review_places WHERE host = {}) p JOIN cases cs ON cs.blake3 = p.blake3",
                args.add(Val::Text(host.to_ascii_lowercase()))
            ),
            (None, Some(domain)) => format!(
                "(SELECT DISTINCT blake3 FROM review_places WHERE domain = {}) p JOIN cases cs ON cs.blake3 = p.blake3",
                args.add(Val::Text(domain.to_ascii_lowercase()))
            ),
            (None, None) => "cases cs".to_string(),
        };
        let now = args.add(Val::Int(f.now_ms));
        let mut filters = format!("cs.status = {}", args.add(Val::Text(f.status.clone())));
        if let Some(scan) = &f.scan {
            filters.push_str(&format!(" AND cs.scan = {}", args.add(Val::Text(scan.clone()))));
        }
        if let (Some(_), Some(domain)) = (&f.host, &f.domain) {
            filters.push_str(&format!(
                " AND cs.blake3 IN (SELECT blake3 FROM review_places WHERE domain = {})",
                args.add(Val::Text(domain.to_ascii_lowercase()))
            ));
        }
        if let Some(m) = f.match_kind {
            filters.push_str(&format!(" AND ct.match_kind = {}", args.add(Val::Text(m.as_str().into()))));
        }
        if let Some(x) = f.min_score {
            filters.push_str(&format!(" AND cs.score >= {}", args.add(Val::Real(x))));
        }
        if let Some(x) = f.max_score {
            filters.push_str(&format!(" AND cs.score <= {}", args.add(Val::Real(x))));
        }
        if let Some(x) = f.since_ms {
            filters.push_str(&format!(" AND ct.first_seen >= {}", args.add(Val::Int(x))));
        }
        if let Some(x) = f.until_ms {
            filters.push_str(&format!(" AND ct.first_seen < {}", args.add(Val::Int(x))));
        }
        match f.claim {
            ClaimFilter::Any => {}
            ClaimFilter::Free => filters.push_str(" AND cl.case_id IS NULL"),
            ClaimFilter::Mine(uid) => filters.push_str(&format!(" AND cl.user_id = {}", args.add(Val::Int(uid)))),
        }
        // The keyset split into index ranges: the rest of the cursor's
        // (score, opened_at) group, the rest of its score, then lower scores.
        // Every sort column is NOT NULL, so NULL ordering never matters.
        let segments: Vec<(Vec<(&str, Val)>, &str)> = match f.after {
            None => vec![(vec![], "cs.score DESC, cs.opened_at, cs.id")],
            Some(k) => vec![
                (
                    vec![
                        ("cs.score = ", Val::Real(k.score)),
                        ("cs.opened_at = ", Val::Int(k.opened_at_ms)),
                        ("cs.id > ", Val::Int(k.id)),
                    ],
                    "cs.id",
                ),
                (
                    vec![("cs.score = ", Val::Real(k.score)), ("cs.opened_at > ", Val::Int(k.opened_at_ms))],
                    "cs.opened_at, cs.id",
                ),
                (vec![("cs.score < ", Val::Real(k.score))], "cs.score DESC, cs.opened_at, cs.id"),
            ],
        };
        let mut out: Vec<QueueRow> = Vec::new();
        for (keyset, order) in segments {
            if out.len() >= f.limit {
                break;
            }
            let mut all = args.clone();
            let mut conds = String::new();
            for (expr, v) in keyset {
                conds.push_str(&format!(" AND {expr}{}", all.add(v)));
            }
            let lim = all.add(Val::Int(limit(f.limit - out.len())));
            // The first fetch of the image is a scalar subquery, which
            // PostgreSQL evaluates only for the rows the LIMIT keeps.
            let sql = format!(
                "SELECT cs.id, cs.blake3, cs.status, cs.score, ct.score, ct.match_kind, cs.scan, cs.opened_at,
                        ct.first_seen, ct.last_seen,
                        (SELECT ARRAY[i.image_id, i.host] FROM images i WHERE i.blake3 = cs.blake3
                         ORDER BY i.fetched_at, i.image_id COLLATE \"C\" LIMIT 1),
                        cl.user_id, u.name, cl.claimed_at, cl.expires_at, cs.online, cs.offline_since
                 FROM {driver} JOIN contents ct ON ct.blake3 = cs.blake3
                      LEFT JOIN claims cl ON cl.case_id = cs.id AND cl.expires_at > {now}
                      LEFT JOIN users u ON u.id = cl.user_id
                 WHERE {filters}{conds}
                 ORDER BY {order} LIMIT {lim}"
            );
            let st = c.prepare_cached(&sql).await.map_err(db)?;
            for r in c.query(&st, &all.refs()).await.map_err(db)? {
                let first: Option<Vec<String>> = r.get(10);
                let (image_url, host) = match first.as_deref() {
                    Some([u, h]) => (u.clone(), h.clone()),
                    _ => (String::new(), String::new()),
                };
                let claim = r.get::<_, Option<i64>>(11).map(|uid| ClaimInfo {
                    user_id: uid,
                    user: r.get::<_, Option<String>>(12).unwrap_or_default(),
                    claimed_at_ms: r.get(13),
                    expires_at_ms: r.get(14),
                });
                out.push(QueueRow {
                    id: r.get(0),
                    blake3: hex::encode(r.get::<_, &[u8]>(1)),
                    status: r.get(2),
                    score: r.get(3),
                    current_score: r.get(4),
                    match_kind: MatchKind::parse(r.get(5))?,
                    scan: r.get(6),
                    opened_at_ms: r.get(7),
                    opened_at: rfc3339(r.get(7)),
                    first_seen: rfc3339(r.get(8)),
                    last_seen: rfc3339(r.get(9)),
                    image_url,
                    host,
                    claim,
                    online: r.get(15),
                    offline_since: r.get::<_, Option<i64>>(16).map(rfc3339),
                });
            }
        }
        Ok(out)
    }

    /// Everything the case page shows, read as the SQLite store reads it
    /// (the first [`MAX_CASE_SIGHTINGS`] fetches and pages, hosts of those).
    pub(crate) async fn rc_case_detail(&self, case_id: i64, now_ms: i64) -> Result<Option<CaseDetail>, StoreError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(&format!(
                "SELECT cs.blake3, cs.status, cs.score, cs.scan, cs.opened_at, cs.updated_at, cs.online,
                        cs.last_checked_at, cs.last_online_at, cs.offline_since,
                        ct.md5, ct.sha1, ct.sha256, ct.bytes, ct.pdq, ct.pdq_quality, ct.pdq_error, ct.width,
                        ct.height, ct.first_seen, ct.last_seen, ct.score, ct.match_kind, ct.match_algo, ct.distance,
                        ct.reference_version, ct.reasons, ct.factors, {ROBOTS_IGNORED}
                 FROM cases cs JOIN contents ct ON ct.blake3 = cs.blake3 WHERE cs.id = $1"
            ))
            .await
            .map_err(db)?;
        let Some(r) = c.query_opt(&st, &[&case_id]).await.map_err(db)? else { return Ok(None) };
        let key: Vec<u8> = r.get(0);
        let json = |i: usize, column: &'static str| -> Result<Vec<Reason>, StoreError> {
            serde_json::from_str(r.get(i)).map_err(|e| StoreError::Corrupt {
                table: "contents",
                column,
                detail: e.to_string(),
            })
        };
        let mut d = CaseDetail {
            id: case_id,
            status: r.get(1),
            score: r.get(2),
            scan: r.get(3),
            opened_at: rfc3339(r.get(4)),
            updated_at: rfc3339(r.get(5)),
            online: r.get(6),
            last_checked: r.get::<_, Option<i64>>(7).map(rfc3339),
            last_online: r.get::<_, Option<i64>>(8).map(rfc3339),
            offline_since: r.get::<_, Option<i64>>(9).map(rfc3339),
            hashes: Hashes {
                md5: hex::encode(r.get::<_, &[u8]>(10)),
                sha1: hex::encode(r.get::<_, &[u8]>(11)),
                sha256: hex::encode(r.get::<_, &[u8]>(12)),
                blake3: hex::encode(&key),
                bytes: count(r.get(13)),
                pdq: pdq_hex(r.get(14)),
                pdq_quality: narrow(r.get(15), "contents", "pdq_quality")?,
                pdq_error: r.get(16),
                width: narrow(r.get(17), "contents", "width")?,
                height: narrow(r.get(18), "contents", "height")?,
            },
            first_seen: rfc3339(r.get(19)),
            last_seen: rfc3339(r.get(20)),
            current_score: r.get(21),
            match_kind: MatchKind::parse(r.get(22))?,
            match_algo: r.get(23),
            distance: narrow(r.get(24), "contents", "distance")?,
            reference_version: r.get(25),
            reasons: json(26, "reasons")?,
            factors: json(27, "factors")?,
            robots_ignored: r.get(28),
            image_urls: Vec::new(),
            images: Vec::new(),
            images_total: 0,
            pages: Vec::new(),
            pages_total: 0,
            hosts: Vec::new(),
            claim: None,
            decisions: Vec::new(),
        };
        let cap = limit(MAX_CASE_SIGHTINGS);
        // Per host: served the image, showed it, sightings, first, last.
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
        let st = c
            .prepare_cached(
                "SELECT image_id, host, ip, scan, fetched_at FROM images WHERE blake3 = $1
                 ORDER BY fetched_at, image_id COLLATE \"C\" LIMIT $2",
            )
            .await
            .map_err(db)?;
        for r in c.query(&st, &[&key, &cap]).await.map_err(db)? {
            let (url, host, ip, scan, at): (String, String, Option<String>, String, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            seen(&host, true, at);
            if !d.image_urls.contains(&url) {
                d.image_urls.push(url.clone());
            }
            d.images.push(ImageSighting { image_url: url, host, ip, scan, fetched_at: rfc3339(at) });
        }
        let st = c.prepare_cached("SELECT count(*) FROM images WHERE blake3 = $1").await.map_err(db)?;
        d.images_total = count(c.query_one(&st, &[&key]).await.map_err(db)?.get(0));
        let st = c
            .prepare_cached(
                "SELECT e.page_url, e.image_id, e.scan, e.seen_at FROM images i
                 JOIN edges e ON e.scan = i.scan AND e.image_id = i.image_id
                 WHERE i.blake3 = $1 ORDER BY e.seen_at, e.page_url COLLATE \"C\" LIMIT $2",
            )
            .await
            .map_err(db)?;
        for r in c.query(&st, &[&key, &cap]).await.map_err(db)? {
            let (page, image_url, scan, at): (String, String, String, i64) = (r.get(0), r.get(1), r.get(2), r.get(3));
            let host = host_of(&page).unwrap_or_default();
            if !host.is_empty() {
                seen(&host, false, at);
            }
            d.pages.push(PageSighting { page_url: page, host, image_url, scan, seen_at: rfc3339(at) });
        }
        let st = c
            .prepare_cached(
                "SELECT count(*) FROM images i JOIN edges e ON e.scan = i.scan AND e.image_id = i.image_id
                 WHERE i.blake3 = $1",
            )
            .await
            .map_err(db)?;
        d.pages_total = count(c.query_one(&st, &[&key]).await.map_err(db)?.get(0));
        d.hosts = hosts
            .into_iter()
            .map(|(host, image, page, n, first, last)| HostSeen::new(host, image, page, n, first, last))
            .collect();
        d.claim = live_claim(&c, case_id, now_ms).await?;
        let st = c
            .prepare_cached(
                "SELECT id, actor, at, before_status, after_status, note, undone_at FROM decisions
                 WHERE case_id = $1 ORDER BY id",
            )
            .await
            .map_err(db)?;
        d.decisions = c
            .query(&st, &[&case_id])
            .await
            .map_err(db)?
            .into_iter()
            .map(|r| DecisionRecord {
                id: r.get(0),
                actor: r.get(1),
                at: rfc3339(r.get(2)),
                before: r.get(3),
                after: r.get(4),
                note: r.get(5),
                undone_at: r.get::<_, Option<i64>>(6).map(rfc3339),
            })
            .collect();
        Ok(Some(d))
    }

    /// The image, scan and status of a case.
    pub(crate) async fn rc_case_key(&self, case_id: i64) -> Result<Option<([u8; 32], String, String)>, StoreError> {
        let c = self.client().await?;
        case_key_of(&c, case_id).await
    }

    /// Claims a case: wins when nobody holds it or the lease ran out, renews
    /// (keeping the lease's start) when the user holds it. The case row is
    /// locked first and the upsert is conditional, so of any number of
    /// simultaneous claims exactly one wins; the win is audited as `claim`.
    pub(crate) async fn rc_claim(
        &self,
        case_id: i64,
        user_id: i64,
        lease_ms: i64,
        actor: Actor,
        at_ms: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let outcome = if lock_case(&tx, case_id).await?.is_none() {
            ClaimOutcome::NoCase
        } else {
            let before = live_claim(&tx, case_id, at_ms).await?;
            let expires = at_ms + lease_ms;
            let st = tx
                .prepare_cached(
                    "INSERT INTO claims (case_id, user_id, claimed_at, expires_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (case_id) DO UPDATE SET
                       user_id = excluded.user_id,
                       claimed_at = CASE WHEN claims.user_id = excluded.user_id
                                          AND claims.expires_at > excluded.claimed_at
                                         THEN claims.claimed_at ELSE excluded.claimed_at END,
                       expires_at = excluded.expires_at
                     WHERE claims.expires_at <= excluded.claimed_at OR claims.user_id = excluded.user_id",
                )
                .await
                .map_err(db)?;
            let n = tx.execute(&st, &[&case_id, &user_id, &at_ms, &expires]).await.map_err(db)?;
            if n == 1 {
                let now = live_claim(&tx, case_id, at_ms)
                    .await?
                    .ok_or_else(|| StoreError::Worker("claim vanished".into()))?;
                insert_audit(
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
                )
                .await?;
                ClaimOutcome::Won(now)
            } else {
                match before {
                    Some(held) => ClaimOutcome::Held(held),
                    None => return Err(StoreError::Worker("claim refused with no holder".into())),
                }
            }
        };
        tx.commit().await.map_err(db)?;
        Ok(outcome)
    }

    /// Gives a claim back, when the caller holds it. Audited as `release`.
    pub(crate) async fn rc_release(
        &self,
        case_id: i64,
        user_id: i64,
        actor: Actor,
        at_ms: i64,
    ) -> Result<ClaimedOutcome, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        if lock_case(&tx, case_id).await?.is_none() {
            return Ok(ClaimedOutcome::NoCase);
        }
        let held = live_claim(&tx, case_id, at_ms).await?;
        if held.as_ref().map(|h| h.user_id) != Some(user_id) {
            return Ok(ClaimedOutcome::NotHolder(held));
        }
        let st = tx.prepare_cached("DELETE FROM claims WHERE case_id = $1").await.map_err(db)?;
        tx.execute(&st, &[&case_id]).await.map_err(db)?;
        insert_audit(
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
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(ClaimedOutcome::Done(None))
    }

    /// Records a decision by the holder of a live claim: status, decision
    /// row and audit entry (`decision`) in one transaction.
    pub(crate) async fn rc_decide_claimed(
        &self,
        case_id: i64,
        user_id: i64,
        status: &str,
        note: &str,
        actor: Actor,
        at_ms: i64,
    ) -> Result<ClaimedOutcome, StoreError> {
        check_decision(status)?;
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let Some((key, scan, before)) = lock_case(&tx, case_id).await? else { return Ok(ClaimedOutcome::NoCase) };
        let held = live_claim(&tx, case_id, at_ms).await?;
        if held.as_ref().map(|h| h.user_id) != Some(user_id) {
            return Ok(ClaimedOutcome::NotHolder(held));
        }
        let changed = decide_in(&tx, case_id, key, &scan, &before, status, note, &actor, "decision", at_ms).await?;
        tx.commit().await.map_err(db)?;
        Ok(ClaimedOutcome::Done(Some(changed)))
    }

    /// Undoes the caller's last decision on a case within their current
    /// lease, unless the status moved since. Audited as `undo`.
    pub(crate) async fn rc_undo_claimed(
        &self,
        case_id: i64,
        user_id: i64,
        actor: Actor,
        at_ms: i64,
    ) -> Result<ClaimedOutcome, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let Some((key, scan, current)) = lock_case(&tx, case_id).await? else { return Ok(ClaimedOutcome::NoCase) };
        let held = live_claim(&tx, case_id, at_ms).await?;
        let Some(lease) = held.clone().filter(|h| h.user_id == user_id) else {
            return Ok(ClaimedOutcome::NotHolder(held));
        };
        let st = tx
            .prepare_cached(
                "SELECT id, before_status, after_status FROM decisions
                 WHERE case_id = $1 AND actor = $2 AND at >= $3 AND undone_at IS NULL ORDER BY id DESC LIMIT 1",
            )
            .await
            .map_err(db)?;
        let last = tx.query_opt(&st, &[&case_id, &actor.name, &lease.claimed_at_ms]).await.map_err(db)?;
        let Some(last) = last else { return Ok(ClaimedOutcome::NothingToUndo) };
        let (did, before, after): (i64, String, String) = (last.get(0), last.get(1), last.get(2));
        if after != current {
            return Ok(ClaimedOutcome::Conflict(current));
        }
        let st = tx.prepare_cached("UPDATE cases SET status = $2, updated_at = $3 WHERE id = $1").await.map_err(db)?;
        tx.execute(&st, &[&case_id, &before, &at_ms]).await.map_err(db)?;
        let st = tx.prepare_cached("UPDATE decisions SET undone_at = $2 WHERE id = $1").await.map_err(db)?;
        tx.execute(&st, &[&did, &at_ms]).await.map_err(db)?;
        insert_audit(
            &tx,
            &NewAudit {
                actor,
                action: "undo".into(),
                case_id: Some(case_id),
                before: status_json(&current),
                after: status_json(&before),
                detail: Some(format!("undid decision {did}")),
                at_ms,
            },
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(ClaimedOutcome::Done(Some(Changed { case_id, blake3: key, scan, before: current, after: before })))
    }

    /// Decides the open, unheld cases of a host (lowest ids first, at most
    /// `limit`), each audited as `bulk_decision_case` and the whole as
    /// `bulk_decision`, in one transaction.
    ///
    /// The candidates are locked and then read again: a claim committed
    /// while we waited for a lock is invisible to the locking statement's
    /// snapshot (PostgreSQL rechecks only the locked row itself), but not
    /// to the next statement, so a case claimed meanwhile is left alone and
    /// the next candidates are taken instead.
    pub(crate) async fn rc_decide_host(
        &self,
        host: &str,
        status: &str,
        note: &str,
        actor: Actor,
        limit_n: usize,
        at_ms: i64,
    ) -> Result<Vec<Changed>, StoreError> {
        check_decision(status)?;
        let host = host.to_ascii_lowercase();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let pick = tx
            .prepare_cached(
                "SELECT cs.id FROM cases cs
                 WHERE cs.status = 'open'
                   AND cs.blake3 IN (SELECT blake3 FROM review_places WHERE host = $1)
                   AND NOT EXISTS (SELECT 1 FROM claims cl WHERE cl.case_id = cs.id AND cl.expires_at > $2)
                   AND cs.id <> ALL($3)
                 ORDER BY cs.id LIMIT $4 FOR NO KEY UPDATE OF cs",
            )
            .await
            .map_err(db)?;
        let recheck = tx
            .prepare_cached(
                "SELECT cs.id, cs.blake3, cs.scan FROM cases cs
                 WHERE cs.id = ANY($1) AND cs.status = 'open'
                   AND NOT EXISTS (SELECT 1 FROM claims cl WHERE cl.case_id = cs.id AND cl.expires_at > $2)
                 ORDER BY cs.id",
            )
            .await
            .map_err(db)?;
        let mut tried: Vec<i64> = Vec::new();
        let mut rows: Vec<(i64, [u8; 32], String)> = Vec::new();
        while rows.len() < limit_n {
            let want = limit(limit_n - rows.len());
            let ids: Vec<i64> =
                tx.query(&pick, &[&host, &at_ms, &tried, &want]).await.map_err(db)?.iter().map(|r| r.get(0)).collect();
            if ids.is_empty() {
                break;
            }
            for r in tx.query(&recheck, &[&ids, &at_ms]).await.map_err(db)? {
                rows.push((r.get(0), hash32(r.get::<_, &[u8]>(1), "cases", "blake3")?, r.get(2)));
            }
            tried.extend(ids);
        }
        rows.sort_by_key(|r| r.0);
        let mut out = Vec::with_capacity(rows.len());
        for (id, key, scan) in rows {
            out.push(decide_in(&tx, id, key, &scan, "open", status, note, &actor, "bulk_decision_case", at_ms).await?);
        }
        insert_audit(
            &tx,
            &NewAudit {
                actor,
                action: "bulk_decision".into(),
                after: Some(serde_json::json!({
                    "host": host, "status": status, "cases": out.iter().map(|c| c.case_id).collect::<Vec<_>>()
                })),
                detail: Some(note.to_string()),
                at_ms,
                ..NewAudit::default()
            },
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    /// Decided cases by id, with their URLs, pages, hosts, addresses,
    /// hashes and the decision in force (the newest not undone).
    pub(crate) async fn rc_export_cases(&self, f: ExportFilter) -> Result<Vec<ExportRow>, StoreError> {
        let statuses: Vec<String> =
            if f.statuses.is_empty() { DECISIONS.iter().map(|s| s.to_string()).collect() } else { f.statuses.clone() };
        for s in &statuses {
            check_decision(s)?;
        }
        let c = self.client().await?;
        let mut args = Args::default();
        let mut filters = format!("cs.status = ANY({})", args.add(Val::Texts(statuses)));
        if let Some(host) = &f.host {
            filters.push_str(&format!(
                " AND cs.blake3 IN (SELECT blake3 FROM review_places WHERE host = {})",
                args.add(Val::Text(host.to_ascii_lowercase()))
            ));
        }
        if let Some(domain) = &f.domain {
            filters.push_str(&format!(
                " AND cs.blake3 IN (SELECT blake3 FROM review_places WHERE domain = {})",
                args.add(Val::Text(domain.to_ascii_lowercase()))
            ));
        }
        let decided = "coalesce((SELECT max(d.at) FROM decisions d WHERE d.case_id = cs.id AND d.undone_at IS NULL),
                                cs.updated_at)";
        if let Some(x) = f.since_ms {
            filters.push_str(&format!(" AND {decided} >= {}", args.add(Val::Int(x))));
        }
        if let Some(x) = f.until_ms {
            filters.push_str(&format!(" AND {decided} < {}", args.add(Val::Int(x))));
        }
        if let Some(x) = f.after_id {
            filters.push_str(&format!(" AND cs.id > {}", args.add(Val::Int(x))));
        }
        let lim = args.add(Val::Int(limit(f.limit)));
        let sql = format!(
            "SELECT cs.id, cs.blake3, cs.status, cs.score, ct.first_seen, ct.last_seen, ct.md5, ct.sha1, ct.sha256,
                    ct.pdq, cs.online, cs.last_checked_at, cs.offline_since, cs.updated_at
             FROM cases cs JOIN contents ct ON ct.blake3 = cs.blake3
             WHERE {filters} ORDER BY cs.id LIMIT {lim}"
        );
        let st = c.prepare_cached(&sql).await.map_err(db)?;
        let rows = c.query(&st, &args.refs()).await.map_err(db)?;
        let cap = limit(MAX_CASE_SIGHTINGS);
        let images = c
            .prepare_cached(
                "SELECT image_id, host, ip FROM images WHERE blake3 = $1
                 ORDER BY fetched_at, image_id COLLATE \"C\" LIMIT $2",
            )
            .await
            .map_err(db)?;
        let pages = c
            .prepare_cached(
                "SELECT e.page_url FROM images i JOIN edges e ON e.scan = i.scan AND e.image_id = i.image_id
                 WHERE i.blake3 = $1 GROUP BY e.page_url ORDER BY min(e.seen_at), e.page_url COLLATE \"C\" LIMIT $2",
            )
            .await
            .map_err(db)?;
        let decision = c
            .prepare_cached(
                "SELECT actor, at, note FROM decisions WHERE case_id = $1 AND undone_at IS NULL
                 ORDER BY id DESC LIMIT 1",
            )
            .await
            .map_err(db)?;
        let push = |v: &mut Vec<String>, s: String| {
            if !s.is_empty() && !v.contains(&s) {
                v.push(s);
            }
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let key: Vec<u8> = r.get(1);
            let updated_at: i64 = r.get(13);
            let mut row = ExportRow {
                case_id: r.get(0),
                status: r.get(2),
                score: r.get(3),
                image_urls: Vec::new(),
                page_urls: Vec::new(),
                host: String::new(),
                hosts: Vec::new(),
                ips: Vec::new(),
                first_seen: rfc3339(r.get(4)),
                last_seen: rfc3339(r.get(5)),
                md5: hex::encode(r.get::<_, &[u8]>(6)),
                sha1: hex::encode(r.get::<_, &[u8]>(7)),
                sha256: hex::encode(r.get::<_, &[u8]>(8)),
                blake3: hex::encode(&key),
                pdq: pdq_hex(r.get(9)),
                analyst: None,
                decided_at: String::new(),
                note: None,
                online: r.get(10),
                last_checked: r.get::<_, Option<i64>>(11).map(rfc3339),
                offline_since: r.get::<_, Option<i64>>(12).map(rfc3339),
            };
            for x in c.query(&images, &[&key, &cap]).await.map_err(db)? {
                let (url, host, ip): (String, String, Option<String>) = (x.get(0), x.get(1), x.get(2));
                if row.host.is_empty() {
                    row.host = host.to_ascii_lowercase();
                }
                push(&mut row.image_urls, url);
                push(&mut row.hosts, host.to_ascii_lowercase());
                if let Some(ip) = ip {
                    push(&mut row.ips, ip);
                }
            }
            for p in c.query(&pages, &[&key, &cap]).await.map_err(db)? {
                let p: String = p.get(0);
                if let Some(h) = host_of(&p) {
                    push(&mut row.hosts, h);
                }
                push(&mut row.page_urls, p);
            }
            match c.query_opt(&decision, &[&row.case_id]).await.map_err(db)? {
                Some(d) => {
                    row.analyst = Some(d.get(0));
                    row.decided_at = rfc3339(d.get(1));
                    row.note = Some(d.get(2));
                }
                None => row.decided_at = rfc3339(updated_at),
            }
            out.push(row);
        }
        Ok(out)
    }

    /// Open and confirmed cases first seen in `[start_ms, end_ms)`, per
    /// place and bucket of `width_ms`, the open ones per place and every
    /// confirmed one per place. Rows come sorted by their keys (places in
    /// byte order), the order SQLite's grouping yields.
    pub(crate) async fn rc_hotspots(
        &self,
        by: PlaceKind,
        start_ms: i64,
        end_ms: i64,
        width_ms: i64,
    ) -> Result<Hotspots, StoreError> {
        if width_ms <= 0 {
            return Err(StoreError::Worker("bucket width must be positive".into()));
        }
        // A column name from our own enum, never caller text.
        let col = match by {
            PlaceKind::Host => "host",
            PlaceKind::Domain => "domain",
        };
        let c = self.client().await?;
        let mut out = Hotspots::default();
        let st = c
            .prepare_cached(&format!(
                "SELECT p.{col}, (ct.first_seen - $1) / $3, cs.status, count(DISTINCT cs.id)
                 FROM cases cs JOIN contents ct ON ct.blake3 = cs.blake3 JOIN review_places p ON p.blake3 = cs.blake3
                 WHERE cs.status IN ('open', 'confirmed') AND ct.first_seen >= $1 AND ct.first_seen < $2
                 GROUP BY 1, 2, 3 ORDER BY p.{col} COLLATE \"C\", 2, cs.status COLLATE \"C\""
            ))
            .await
            .map_err(db)?;
        for r in c.query(&st, &[&start_ms, &end_ms, &width_ms]).await.map_err(db)? {
            out.counts.push(HotspotCount {
                place: Some(r.get(0)),
                bucket: r.get(1),
                status: r.get(2),
                cases: count(r.get(3)),
            });
        }
        let st = c
            .prepare_cached(
                "SELECT (ct.first_seen - $1) / $3, cs.status, count(*)
                 FROM cases cs JOIN contents ct ON ct.blake3 = cs.blake3
                 WHERE cs.status IN ('open', 'confirmed') AND ct.first_seen >= $1 AND ct.first_seen < $2
                 GROUP BY 1, 2 ORDER BY 1, cs.status COLLATE \"C\"",
            )
            .await
            .map_err(db)?;
        for r in c.query(&st, &[&start_ms, &end_ms, &width_ms]).await.map_err(db)? {
            out.counts.push(HotspotCount { place: None, bucket: r.get(0), status: r.get(1), cases: count(r.get(2)) });
        }
        out.open_from_counts();
        let st = c
            .prepare_cached(&format!(
                "SELECT DISTINCT p.{col} COLLATE \"C\", cs.id, ct.first_seen, cs.online, cs.offline_since
                 FROM cases cs JOIN contents ct ON ct.blake3 = cs.blake3 JOIN review_places p ON p.blake3 = cs.blake3
                 WHERE cs.status = 'confirmed' AND ct.first_seen >= $1 AND ct.first_seen < $2
                 ORDER BY 1, 2"
            ))
            .await
            .map_err(db)?;
        out.confirmed = c
            .query(&st, &[&start_ms, &end_ms])
            .await
            .map_err(db)?
            .iter()
            .map(|r| PlaceConfirmed {
                place: r.get(0),
                first_seen_ms: r.get(2),
                online: r.get(3),
                offline_since_ms: r.get(4),
            })
            .collect();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    //! Every statement of this file against a real server, on rows written
    //! by hand (the contract checks in `hashscan_store::testkit` cover the
    //! behaviour once the sighting store is ported too).
    use super::*;
    use crate::testdb::TestDb;
    use hashscan_store::review::ReviewStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_statement_runs_on_postgres() {
        let db = TestDb::create("review_cases_sql").await;
        let s = PgStore::connect(&db.url).await.unwrap();
        let c = s.client().await.unwrap();
        let k = vec![7u8; 32];
        c.batch_execute("INSERT INTO scans (id, started_at, config, reference_version) VALUES ('s1', 0, '{\"ignore_robots\": true}', 'v')")
            .await
            .unwrap();
        c.execute(
            "INSERT INTO contents (blake3, md5, sha1, sha256, bytes, first_seen, last_seen, match_kind)
             VALUES ($1, $1, $1, $1, 4, 1000, 2000, 'exact')",
            &[&k],
        )
        .await
        .unwrap();
        c.execute("INSERT INTO images (scan, image_id, blake3, host, fetched_at) VALUES ('s1', 'http://a.test/x', $1, 'a.test', 1000)", &[&k])
            .await
            .unwrap();
        c.batch_execute("INSERT INTO edges (scan, page_url, image_id, seen_at) VALUES ('s1', 'http://p.test/', 'http://a.test/x', 1000)")
            .await
            .unwrap();
        let id: i64 = c
            .query_one("INSERT INTO cases (blake3, score, scan, opened_at, updated_at) VALUES ($1, 1.0, 's1', 5, 5) RETURNING id", &[&k])
            .await
            .unwrap()
            .get(0);
        s.sync_places(|h| h.to_string(), 100).await.unwrap();
        assert!(s.add_user("ann", "analyst", "x", Actor::default(), 0).await.unwrap());
        let ann = s.user("ann").await.unwrap().unwrap().id;
        let q = s.rc_queue(QueueFilter { host: Some("a.test".into()), ..QueueFilter::default() }).await.unwrap();
        assert_eq!((q.len(), q[0].image_url.as_str(), q[0].host.as_str()), (1, "http://a.test/x", "a.test"));
        let after = Some(q[0].cursor());
        assert!(s
            .rc_queue(QueueFilter {
                after,
                min_score: Some(0.1),
                max_score: Some(2.0),
                since_ms: Some(0),
                until_ms: Some(9_999),
                match_kind: Some(MatchKind::Exact),
                scan: Some("s1".into()),
                domain: Some("a.test".into()),
                host: Some("a.test".into()),
                claim: ClaimFilter::Mine(ann),
                ..QueueFilter::default()
            })
            .await
            .unwrap()
            .is_empty());
        assert!(matches!(s.rc_claim(id, ann, 1_000, Actor::default(), 10).await.unwrap(), ClaimOutcome::Won(_)));
        let d = s.rc_decide_claimed(id, ann, "confirmed", "n", Actor::default(), 11).await.unwrap();
        assert!(matches!(d, ClaimedOutcome::Done(Some(_))), "{d:?}");
        assert!(matches!(
            s.rc_undo_claimed(id, ann, Actor::default(), 12).await.unwrap(),
            ClaimedOutcome::Done(Some(_))
        ));
        let detail = s.rc_case_detail(id, 13).await.unwrap().unwrap();
        assert!(detail.robots_ignored);
        assert_eq!((detail.images.len(), detail.pages.len(), detail.hosts.len(), detail.decisions.len()), (1, 1, 2, 1));
        assert_eq!(s.rc_release(id, ann, Actor::default(), 14).await.unwrap(), ClaimedOutcome::Done(None));
        let out = s.rc_decide_host("a.test", "confirmed", "bulk", Actor::default(), 10, 15).await.unwrap();
        assert_eq!(out.len(), 1);
        let f = ExportFilter {
            host: Some("a.test".into()),
            domain: Some("p.test".into()),
            since_ms: Some(0),
            until_ms: Some(99),
            after_id: Some(0),
            limit: 10,
            ..ExportFilter::default()
        };
        let e = s.rc_export_cases(f).await.unwrap();
        assert_eq!((e.len(), e[0].hosts.len(), e[0].note.as_deref()), (1, 2, Some("bulk")));
        let h = s.rc_hotspots(PlaceKind::Host, 0, 10_000, 500).await.unwrap();
        assert_eq!((h.counts.len(), h.open.len(), h.confirmed.len()), (3, 0, 2));
        assert_eq!(s.rc_case_key(id).await.unwrap().map(|x| x.2), Some("confirmed".into()));
        // Sixteen analysts claim at the same instant on their own connections: one wins.
        let s = std::sync::Arc::new(s);
        let mut users = Vec::new();
        for i in 0..16 {
            let name = format!("u{i}");
            assert!(s.add_user(&name, "analyst", "x", Actor::default(), 0).await.unwrap());
            users.push(s.user(&name).await.unwrap().unwrap().id);
        }
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(16));
        let tasks: Vec<_> = users
            .into_iter()
            .map(|u| {
                let (s, start) = (s.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    s.rc_claim(id, u, 1_000, Actor::default(), 100).await.unwrap()
                })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            won += usize::from(matches!(t.await.unwrap(), ClaimOutcome::Won(_)));
        }
        assert_eq!(won, 1);
        drop(c);
        db.drop_now().await;
    }
}
