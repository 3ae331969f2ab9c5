//! The review service's case work: the queue (order, keyset pages,
//! filters), the case page, claims (one holder, even under a race),
//! decisions and undo within a lease, bulk decisions by host, exports and
//! hotspots.

use std::sync::Arc;

use hashscan_hash::Digests;

use super::{checks, Check};
use crate::review::{
    Actor, AuditFilter, Changed, ClaimFilter, ClaimOutcome, ClaimedOutcome, ExportFilter, PlaceKind, QueueFilter,
    QueueRow,
};
use crate::{Assessment, ImageRecord, MatchKind, PdqResult, Reason, Store, StoreError};

pub(super) fn checks() -> Vec<Check> {
    checks![
        keyset_pages_visit_every_case_once_in_order,
        a_host_filter_pages_in_queue_order,
        places_follow_image_and_page_hosts_and_their_domains,
        one_claim_holds_until_it_expires,
        of_sixteen_simultaneous_claims_exactly_one_wins,
        release_and_case_key,
        decide_and_undo_need_the_callers_live_lease,
        decide_host_decides_open_unheld_cases_of_the_host,
        exports_carry_the_decision_in_force_and_page_by_id,
        exports_filter_by_host_domain_and_period,
        case_detail_shows_sightings_hosts_factors_and_decisions,
        queue_filters_narrow_the_queue,
        hotspots_count_per_place_and_bucket,
    ]
}

fn actor(name: &str) -> Actor {
    Actor { name: name.into(), ip: Some("127.0.0.1".into()) }
}

fn two_labels(h: &str) -> String {
    h.rsplitn(3, '.').take(2).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(".")
}

fn key(k: usize) -> [u8; 32] {
    Digests::of(format!("img{k}").as_bytes()).blake3
}

/// Case `k`'s score: ties of three.
fn score_of(k: usize) -> f64 {
    1.0 - (k / 3) as f64 * 0.01
}

/// `n` open cases on scan `s1` (also for a store's own plan tests): even ones on `img.a.example.com`, odd ones
/// on `cdn.b.test`, pages `www.pages.test/p{k % 3}`; scores in ties of
/// three, opened in ties of two; image `k` first seen at `1_000 + k`.
pub async fn store_with_cases(s: &dyn Store, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for k in 0..n {
        let d = Digests::of(format!("img{k}").as_bytes());
        let host = if k % 2 == 0 { "img.a.example.com" } else { "cdn.b.test" };
        s.record_image(ImageRecord {
            scan: "s1".into(),
            image_id: format!("http://{host}/{k}.png"),
            page_url: Some(format!("http://www.pages.test/p{}", k % 3)),
            host: host.into(),
            ip: None,
            digests: d,
            pdq: PdqResult::Failed { reason: "unknown_format".into(), detail: "test".into() },
            fetched_at_ms: 1_000 + k as i64,
        })
        .await
        .unwrap();
        s.record_assessment(
            d.blake3,
            Assessment {
                score: 1.0,
                match_kind: MatchKind::Exact,
                match_algo: Some("md5".into()),
                distance: Some(0),
                reference_version: Some("v".into()),
                reasons: vec![],
            },
        )
        .await
        .unwrap();
        ids.push(s.open_case(d.blake3, score_of(k), "s1", 5_000 + (k / 2) as i64).await.unwrap());
    }
    ids
}

async fn sync(s: &Arc<dyn Store>) {
    for _ in 0..100 {
        if s.sync_places(two_labels, 1_000).await.unwrap() == 0 {
            return;
        }
    }
    panic!("sync_places never caught up");
}

/// The ids of `ids` (by fixture index) whose index passes `keep`, in the
/// queue's order: score highest first, opened, id.
fn expected(ids: &[i64], keep: impl Fn(usize) -> bool) -> Vec<i64> {
    let mut v: Vec<(usize, i64)> = ids.iter().copied().enumerate().filter(|(k, _)| keep(*k)).collect();
    v.sort_by(|a, b| score_of(b.0).total_cmp(&score_of(a.0)).then((a.0 / 2).cmp(&(b.0 / 2))).then(a.1.cmp(&b.1)));
    v.into_iter().map(|x| x.1).collect()
}

async fn all_pages(s: &Arc<dyn Store>, f: QueueFilter) -> Vec<QueueRow> {
    let mut seen = Vec::new();
    let mut after = None;
    for _ in 0..200 {
        let page = s.queue(QueueFilter { after, ..f.clone() }).await.unwrap();
        assert!(page.len() <= f.limit);
        if page.is_empty() {
            return seen;
        }
        after = page.last().map(QueueRow::cursor);
        seen.extend(page);
    }
    panic!("the queue never ended");
}

async fn uid(s: &Arc<dyn Store>, name: &str) -> i64 {
    if s.user(name).await.unwrap().is_none() {
        assert!(s.add_user(name, "analyst", "x", actor("cli"), 0).await.unwrap());
    }
    s.user(name).await.unwrap().unwrap().id
}

async fn keyset_pages_visit_every_case_once_in_order(s: Arc<dyn Store>) {
    let ids = store_with_cases(&*s, 23).await;
    let want = expected(&ids, |_| true);
    for limit in [1, 2, 3, 5, 50] {
        let seen = all_pages(&s, QueueFilter { limit, ..QueueFilter::default() }).await;
        assert_eq!(seen.iter().map(|r| r.id).collect::<Vec<_>>(), want, "limit {limit}");
    }
    let first = &s.queue(QueueFilter { limit: 1, ..QueueFilter::default() }).await.unwrap()[0];
    assert_eq!((first.id, first.score, first.opened_at_ms), (ids[0], 1.0, 5_000));
    assert_eq!(
        (first.image_url.as_str(), first.host.as_str()),
        ("http://img.a.example.com/0.png", "img.a.example.com")
    );
    assert_eq!((first.status.as_str(), first.scan.as_str(), first.match_kind), ("open", "s1", MatchKind::Exact));
    assert_eq!(first.blake3, hex::encode(key(0)));
    assert_eq!((first.claim.clone(), first.online, first.offline_since.clone()), (None, None, None));
    assert!(s.queue(QueueFilter { limit: 0, ..QueueFilter::default() }).await.unwrap().is_empty());
}

async fn a_host_filter_pages_in_queue_order(s: Arc<dyn Store>) {
    let ids = store_with_cases(&*s, 9).await;
    sync(&s).await;
    let f = |host: Option<&str>, domain: Option<&str>, limit| QueueFilter {
        host: host.map(Into::into),
        domain: domain.map(Into::into),
        limit,
        ..QueueFilter::default()
    };
    let got = all_pages(&s, f(Some("IMG.a.example.com"), None, 2)).await;
    assert_eq!(got.iter().map(|r| r.id).collect::<Vec<_>>(), expected(&ids, |k| k % 2 == 0));
    let got = all_pages(&s, f(Some("www.pages.test"), Some("b.test"), 1)).await;
    assert_eq!(got.iter().map(|r| r.id).collect::<Vec<_>>(), expected(&ids, |k| k % 2 == 1), "host and domain");
    assert!(s.queue(f(Some("img.test"), None, 5)).await.unwrap().is_empty());
}

async fn places_follow_image_and_page_hosts_and_their_domains(s: Arc<dyn Store>) {
    store_with_cases(&*s, 6).await;
    assert!(s.sync_places(two_labels, 2).await.unwrap() > 0);
    sync(&s).await;
    let q = |host: Option<&str>, domain: Option<&str>| QueueFilter {
        host: host.map(Into::into),
        domain: domain.map(Into::into),
        ..QueueFilter::default()
    };
    assert_eq!(s.queue(q(Some("cdn.b.test"), None)).await.unwrap().len(), 3);
    assert_eq!(s.queue(q(Some("www.pages.test"), None)).await.unwrap().len(), 6);
    assert_eq!(s.queue(q(None, Some("example.com"))).await.unwrap().len(), 3);
    // An edge that arrives later, for an existing case, is picked up.
    s.record_edges("s1", "http://late.test/x", &["http://img.a.example.com/0.png".into()], 9_000).await.unwrap();
    sync(&s).await;
    let late = s.queue(q(Some("late.test"), None)).await.unwrap();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].blake3, hex::encode(key(0)));
}

async fn one_claim_holds_until_it_expires(s: Arc<dyn Store>) {
    let ids = store_with_cases(&*s, 1).await;
    let (ann, bob) = (uid(&s, "ann").await, uid(&s, "bob").await);
    let id = ids[0];
    match s.claim(id, ann, 1_000, actor("ann"), 10_000).await.unwrap() {
        ClaimOutcome::Won(c) => {
            assert_eq!((c.user_id, c.user.as_str(), c.claimed_at_ms, c.expires_at_ms), (ann, "ann", 10_000, 11_000))
        }
        other => panic!("{other:?}"),
    }
    match s.claim(id, bob, 1_000, actor("bob"), 10_500).await.unwrap() {
        ClaimOutcome::Held(h) => assert_eq!((h.user.as_str(), h.expires_at_ms), ("ann", 11_000)),
        other => panic!("{other:?}"),
    }
    // Renewal keeps the start of the lease.
    match s.claim(id, ann, 1_000, actor("ann"), 10_600).await.unwrap() {
        ClaimOutcome::Won(c) => assert_eq!((c.claimed_at_ms, c.expires_at_ms), (10_000, 11_600)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(s.claim(id, bob, 1_000, actor("bob"), 11_600).await.unwrap(), ClaimOutcome::Won(_)));
    assert_eq!(s.claim(999, bob, 1_000, actor("bob"), 11_600).await.unwrap(), ClaimOutcome::NoCase);
    // Deciding needs the live claim.
    let r = s.decide_claimed(id, ann, "confirmed", "", actor("ann"), 11_700).await.unwrap();
    assert!(matches!(r, ClaimedOutcome::NotHolder(Some(ref h)) if h.user_id == bob), "{r:?}");
    let r = s.decide_claimed(id, bob, "confirmed", "seen", actor("bob"), 11_700).await.unwrap();
    assert!(matches!(r, ClaimedOutcome::Done(Some(Changed { ref before, .. })) if before == "open"), "{r:?}");
    let u = s.undo_claimed(id, bob, actor("bob"), 11_800).await.unwrap();
    assert!(matches!(u, ClaimedOutcome::Done(Some(Changed { ref after, .. })) if after == "open"), "{u:?}");
    assert_eq!(s.undo_claimed(id, bob, actor("bob"), 11_900).await.unwrap(), ClaimedOutcome::NothingToUndo);
    assert_eq!(s.case_key(id).await.unwrap().unwrap().2, "open");
    // Wins are audited (three: ann, ann's renewal, bob), refusals are not.
    let log = s.audit(AuditFilter { case_id: Some(id), limit: 100, oldest_first: true, ..AuditFilter::default() });
    let actions: Vec<String> = log.await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["claim", "claim", "claim", "decision", "undo"]);
}

async fn of_sixteen_simultaneous_claims_exactly_one_wins(s: Arc<dyn Store>) {
    let ids = store_with_cases(&*s, 1).await;
    let mut users = Vec::new();
    for i in 0..16 {
        users.push(uid(&s, &format!("u{i:02}")).await);
    }
    let start = Arc::new(tokio::sync::Barrier::new(users.len()));
    let tasks: Vec<_> = users
        .iter()
        .map(|&u| {
            let (s, start, id) = (s.clone(), start.clone(), ids[0]);
            tokio::spawn(async move {
                start.wait().await;
                s.claim(id, u, 60_000, actor(&format!("user{u}")), 10_000).await.unwrap()
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut held = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            ClaimOutcome::Won(c) => winners.push(c.user_id),
            ClaimOutcome::Held(h) => held.push(h.user_id),
            ClaimOutcome::NoCase => panic!("the case exists"),
        }
    }
    assert_eq!(winners.len(), 1, "winners {winners:?}");
    assert_eq!(held, vec![winners[0]; 15], "every loser sees the winner");
    let q = s.queue(QueueFilter { now_ms: 10_001, ..QueueFilter::default() }).await.unwrap();
    assert_eq!(q[0].claim.as_ref().map(|c| c.user_id), Some(winners[0]));
    let log = s.audit(AuditFilter { case_id: Some(ids[0]), limit: 100, ..AuditFilter::default() }).await.unwrap();
    assert_eq!(log.len(), 1, "one claim audited");
}

async fn release_and_case_key(s: Arc<dyn Store>) {
    let ids = store_with_cases(&*s, 2).await;
    let (ann, bob) = (uid(&s, "ann").await, uid(&s, "bob").await);
    assert_eq!(s.case_key(ids[1]).await.unwrap(), Some((key(1), "s1".to_string(), "open".to_string())));
    assert_eq!(s.case_key(9_999).await.unwrap(), None);
    let id = ids[0];
    assert_eq!(s.release(9_999, ann, actor("ann"), 1).await.unwrap(), ClaimedOutcome::NoCase);
    assert_eq!(s.release(id, ann, actor("ann"), 1).await.unwrap(), ClaimedOutcome::NotHolder(None));
    assert!(matches!(s.claim(id, ann, 1_000, actor("ann"), 10_000).await.unwrap(), ClaimOutcome::Won(_)));
    match s.release(id, bob, actor("bob"), 10_100).await.unwrap() {
        ClaimedOutcome::NotHolder(Some(h)) => assert_eq!(h.user_id, ann),
        other => panic!("{other:?}"),
    }
    let mine = |u| QueueFilter { claim: ClaimFilter::Mine(u), now_ms: 10_200, ..QueueFilter::default() };
    assert_eq!(s.queue(mine(ann)).await.unwrap().len(), 1);
    assert_eq!(s.release(id, ann, actor("ann"), 10_200).await.unwrap(), ClaimedOutcome::Done(None));
    assert!(s.queue(mine(ann)).await.unwrap().is_empty());
    // Released: the next analyst wins at once.
    assert!(matches!(s.claim(id, bob, 1_000, actor("bob"), 10_300).await.unwrap(), ClaimOutcome::Won(_)));
    let log = s.audit(AuditFilter { case_id: Some(id), limit: 100, oldest_first: true, ..AuditFilter::default() });
    let log = log.await.unwrap();
    let rel = log.iter().find(|e| e.action == "release").unwrap();
    assert_eq!((rel.actor.as_str(), rel.at_ms), ("ann", 10_200));
    assert_eq!(rel.after, Some(serde_json::json!({ "claim": null })));
    assert_eq!(rel.before.as_ref().and_then(|b| b["claim"]["user"].as_str()), Some("ann"));
    // An expired lease cannot be released either.
    assert_eq!(s.release(id, bob, actor("bob"), 20_000).await.unwrap(), ClaimedOutcome::NotHolder(None));
}

async fn decide_and_undo_need_the_callers_live_lease(s: Arc<dyn Store>) {
    let ids = store_with_cases(&*s, 1).await;
    let (ann, bob) = (uid(&s, "ann").await, uid(&s, "bob").await);
    let id = ids[0];
    assert_eq!(
        s.decide_claimed(id, ann, "confirmed", "", actor("ann"), 1).await.unwrap(),
        ClaimedOutcome::NotHolder(None)
    );
    assert_eq!(s.decide_claimed(9_999, ann, "confirmed", "", actor("ann"), 1).await.unwrap(), ClaimedOutcome::NoCase);
    assert_eq!(s.undo_claimed(9_999, ann, actor("ann"), 1).await.unwrap(), ClaimedOutcome::NoCase);
    assert!(
        matches!(s.decide_claimed(id, ann, "open", "", actor("ann"), 1).await, Err(StoreError::BadStatus(b)) if b == "open")
    );
    assert!(matches!(s.claim(id, ann, 1_000, actor("ann"), 10_000).await.unwrap(), ClaimOutcome::Won(_)));
    assert_eq!(s.undo_claimed(id, ann, actor("ann"), 10_050).await.unwrap(), ClaimedOutcome::NothingToUndo);
    let d = s.decide_claimed(id, ann, "escalate", "look", actor("ann"), 10_100).await.unwrap();
    assert_eq!(
        d,
        ClaimedOutcome::Done(Some(Changed {
            case_id: id,
            blake3: key(0),
            scan: "s1".into(),
            before: "open".into(),
            after: "escalate".into()
        }))
    );
    match s.undo_claimed(id, bob, actor("bob"), 10_200).await.unwrap() {
        ClaimedOutcome::NotHolder(Some(h)) => assert_eq!(h.user_id, ann),
        other => panic!("{other:?}"),
    }
    // The status moved outside the service: undo refuses.
    s.decide(key(0), "not_abuse", 10_300).await.unwrap();
    assert_eq!(
        s.undo_claimed(id, ann, actor("ann"), 10_400).await.unwrap(),
        ClaimedOutcome::Conflict("not_abuse".into())
    );
    let d = s.decide_claimed(id, ann, "confirmed", "sure", actor("ann"), 10_500).await.unwrap();
    assert!(matches!(d, ClaimedOutcome::Done(Some(ref c)) if c.before == "not_abuse"), "{d:?}");
    // After the lease ran out, neither deciding nor undoing is allowed.
    assert_eq!(s.undo_claimed(id, ann, actor("ann"), 11_000).await.unwrap(), ClaimedOutcome::NotHolder(None));
    assert_eq!(
        s.decide_claimed(id, ann, "escalate", "", actor("ann"), 11_000).await.unwrap(),
        ClaimedOutcome::NotHolder(None)
    );
    // A new lease cannot undo the decisions of the old one.
    assert!(matches!(s.claim(id, ann, 1_000, actor("ann"), 12_000).await.unwrap(), ClaimOutcome::Won(_)));
    assert_eq!(s.undo_claimed(id, ann, actor("ann"), 12_100).await.unwrap(), ClaimedOutcome::NothingToUndo);
    assert_eq!(s.case_key(id).await.unwrap().unwrap().2, "confirmed");
    let log = s.audit(AuditFilter { case_id: Some(id), limit: 100, oldest_first: true, ..AuditFilter::default() });
    let log = log.await.unwrap();
    let dec: Vec<_> = log.iter().filter(|e| e.action == "decision").collect();
    assert_eq!(dec.len(), 2);
    assert_eq!(
        (dec[0].before.clone(), dec[0].after.clone(), dec[0].detail.as_deref()),
        (Some(serde_json::json!({"status": "open"})), Some(serde_json::json!({"status": "escalate"})), Some("look"))
    );
}

async fn decide_host_decides_open_unheld_cases_of_the_host(s: Arc<dyn Store>) {
    let ids = store_with_cases(&*s, 8).await;
    sync(&s).await;
    let ann = uid(&s, "ann").await;
    // Even cases are on img.a.example.com: 0 is held, 2 already decided.
    assert!(matches!(s.claim(ids[0], ann, 60_000, actor("ann"), 10_000).await.unwrap(), ClaimOutcome::Won(_)));
    s.decide(key(2), "escalate", 10_000).await.unwrap();
    assert!(matches!(s.decide_host("x", "open", "", actor("lee"), 10, 1).await, Err(StoreError::BadStatus(_))));
    let out = s.decide_host("IMG.A.example.com", "confirmed", "csam host", actor("lee"), 1, 20_000).await.unwrap();
    assert_eq!(out.iter().map(|c| c.case_id).collect::<Vec<_>>(), vec![ids[4]], "limit, lowest id first");
    let out = s.decide_host("img.a.example.com", "confirmed", "csam host", actor("lee"), 10, 20_100).await.unwrap();
    assert_eq!(out.iter().map(|c| c.case_id).collect::<Vec<_>>(), vec![ids[6]]);
    assert_eq!(
        (out[0].blake3, out[0].before.as_str(), out[0].after.as_str(), out[0].scan.as_str()),
        (key(6), "open", "confirmed", "s1")
    );
    for (k, want) in [(0, "open"), (2, "escalate"), (4, "confirmed"), (6, "confirmed"), (1, "open")] {
        assert_eq!(s.case_key(ids[k]).await.unwrap().unwrap().2, want, "case {k}");
    }
    let log =
        s.audit(AuditFilter { actor: Some("lee".into()), limit: 100, oldest_first: true, ..AuditFilter::default() });
    let log = log.await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["bulk_decision_case", "bulk_decision", "bulk_decision_case", "bulk_decision"]);
    assert_eq!(log[0].case_id, Some(ids[4]));
    assert_eq!(
        log[1].after,
        Some(serde_json::json!({ "host": "img.a.example.com", "status": "confirmed", "cases": [ids[4]] }))
    );
    assert_eq!(log[1].detail.as_deref(), Some("csam host"));
    let detail = s.case_detail(ids[4], 0).await.unwrap().unwrap();
    assert_eq!(detail.decisions.len(), 1);
    assert_eq!((detail.decisions[0].actor.as_str(), detail.decisions[0].note.as_str()), ("lee", "csam host"));
}

async fn exports_carry_the_decision_in_force_and_page_by_id(s: Arc<dyn Store>) {
    let ids = store_with_cases(&*s, 4).await;
    let ann = uid(&s, "ann").await;
    let id = ids[0];
    assert!(matches!(s.claim(id, ann, 10_000, actor("ann"), 10_000).await.unwrap(), ClaimOutcome::Won(_)));
    s.decide_claimed(id, ann, "confirmed", "first", actor("ann"), 10_100).await.unwrap();
    s.decide_claimed(id, ann, "escalate", "second", actor("ann"), 10_200).await.unwrap();
    s.undo_claimed(id, ann, actor("ann"), 10_300).await.unwrap();
    // Decided outside the service: no analyst, the case's change time.
    s.decide(key(1), "not_abuse", 20_000).await.unwrap();
    s.decide(key(2), "confirmed", 30_000).await.unwrap();
    let f = |statuses: &[&str], limit: usize| ExportFilter {
        statuses: statuses.iter().map(|s| s.to_string()).collect(),
        limit,
        ..ExportFilter::default()
    };
    let rows = s.export_cases(f(&["confirmed"], 10)).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.case_id).collect::<Vec<_>>(), vec![ids[0], ids[2]]);
    let r = &rows[0];
    assert_eq!((r.analyst.as_deref(), r.note.as_deref(), r.status.as_str()), (Some("ann"), Some("first"), "confirmed"));
    assert_eq!(r.decided_at, "1970-01-01T00:00:10.100Z");
    assert_eq!(r.image_urls, vec!["http://img.a.example.com/0.png".to_string()]);
    assert_eq!(r.page_urls, vec!["http://www.pages.test/p0".to_string()]);
    assert_eq!(r.hosts, vec!["img.a.example.com".to_string(), "www.pages.test".into()]);
    assert_eq!((r.host.as_str(), r.blake3.clone(), r.ips.clone()), ("img.a.example.com", hex::encode(key(0)), vec![]));
    assert_eq!((r.first_seen.as_str(), r.pdq.clone()), ("1970-01-01T00:00:01.000Z", None));
    assert_eq!((rows[1].analyst.clone(), rows[1].decided_at.as_str()), (None, "1970-01-01T00:00:30.000Z"));
    assert_eq!(s.export_cases(f(&[], 10)).await.unwrap().len(), 3, "every decision");
    let page = s.export_cases(ExportFilter { after_id: Some(ids[0]), ..f(&[], 1) }).await.unwrap();
    assert_eq!(page.iter().map(|r| r.case_id).collect::<Vec<_>>(), vec![ids[1]]);
    let since = s.export_cases(ExportFilter { since_ms: Some(20_000), ..f(&[], 10) }).await.unwrap();
    assert_eq!(since.len(), 2);
    assert!(matches!(s.export_cases(f(&["open"], 10)).await, Err(StoreError::BadStatus(_))), "open is no decision");
}

async fn exports_filter_by_host_domain_and_period(s: Arc<dyn Store>) {
    let ids = store_with_cases(&*s, 6).await;
    sync(&s).await;
    for k in 0..6 {
        s.decide(key(k), if k < 3 { "confirmed" } else { "escalate" }, 10_000 + k as i64 * 1_000).await.unwrap();
    }
    let f = |host: Option<&str>, domain: Option<&str>, since, until| ExportFilter {
        host: host.map(Into::into),
        domain: domain.map(Into::into),
        since_ms: since,
        until_ms: until,
        limit: 100,
        ..ExportFilter::default()
    };
    let got = |rows: Vec<crate::review::ExportRow>| rows.into_iter().map(|r| r.case_id).collect::<Vec<_>>();
    assert_eq!(got(s.export_cases(f(Some("CDN.b.test"), None, None, None)).await.unwrap()), [ids[1], ids[3], ids[5]]);
    assert_eq!(got(s.export_cases(f(None, Some("example.com"), None, None)).await.unwrap()), [ids[0], ids[2], ids[4]]);
    assert_eq!(got(s.export_cases(f(None, None, Some(11_000), Some(13_000))).await.unwrap()), [ids[1], ids[2]]);
    let esc = ExportFilter { statuses: vec!["escalate".into()], ..f(Some("www.pages.test"), None, None, None) };
    assert_eq!(got(s.export_cases(esc).await.unwrap()), [ids[3], ids[4], ids[5]]);
    assert_eq!(
        got(s.export_cases(ExportFilter { limit: 2, ..f(None, None, None, None) }).await.unwrap()),
        [ids[0], ids[1]]
    );
}

async fn case_detail_shows_sightings_hosts_factors_and_decisions(s: Arc<dyn Store>) {
    let ids = store_with_cases(&*s, 1).await;
    let id = ids[0];
    assert_eq!(s.case_detail(9_999, 0).await.unwrap(), None);
    // A second fetch from another host, with its page; and a third page.
    let d0 = Digests::of(b"img0");
    s.record_image(ImageRecord {
        scan: "s2".into(),
        image_id: "http://mirror.test/0.png".into(),
        page_url: Some("http://Blog.TEST:8080/post".into()),
        host: "mirror.test".into(),
        ip: Some("192.0.2.9".into()),
        digests: d0,
        pdq: PdqResult::Failed { reason: "unknown_format".into(), detail: "test".into() },
        fetched_at_ms: 3_000,
    })
    .await
    .unwrap();
    s.record_edges("s1", "http://www.pages.test/other", &["http://img.a.example.com/0.png".into()], 4_000)
        .await
        .unwrap();
    let factors = vec![Reason { factor: "host_history".into(), value: 0.5, weight: 0.25, note: "seen before".into() }];
    s.record_score(d0.blake3, 0.7, factors.clone()).await.unwrap();
    s.record_check(d0.blake3, 6_000, false).await.unwrap();
    let ann = uid(&s, "ann").await;
    assert!(matches!(s.claim(id, ann, 10_000, actor("ann"), 7_000).await.unwrap(), ClaimOutcome::Won(_)));
    s.decide_claimed(id, ann, "confirmed", "clear", actor("ann"), 7_100).await.unwrap();
    s.undo_claimed(id, ann, actor("ann"), 7_200).await.unwrap();
    s.decide_claimed(id, ann, "escalate", "unsure", actor("ann"), 7_300).await.unwrap();
    let d = s.case_detail(id, 7_400).await.unwrap().unwrap();
    assert_eq!((d.id, d.status.as_str(), d.score, d.current_score), (id, "escalate", 1.0, 0.7));
    assert_eq!(d.factors, factors);
    assert_eq!(d.reasons, vec![]);
    assert_eq!((d.match_kind, d.match_algo.as_deref(), d.distance), (MatchKind::Exact, Some("md5"), Some(0)));
    assert_eq!((d.reference_version.as_deref(), d.scan.as_str(), d.robots_ignored), (Some("v"), "s1", false));
    assert_eq!((d.opened_at.as_str(), d.updated_at.as_str()), ("1970-01-01T00:00:05.000Z", "1970-01-01T00:00:07.300Z"));
    assert_eq!((d.first_seen.as_str(), d.last_seen.as_str()), ("1970-01-01T00:00:01.000Z", "1970-01-01T00:00:03.000Z"));
    assert_eq!(
        (d.hashes.md5.clone(), d.hashes.sha1.clone(), d.hashes.sha256.clone(), d.hashes.blake3.clone()),
        (hex::encode(d0.md5), hex::encode(d0.sha1), hex::encode(d0.sha256), hex::encode(d0.blake3))
    );
    assert_eq!((d.hashes.pdq.clone(), d.hashes.pdq_quality, d.hashes.bytes), (None, None, 4));
    assert_eq!(d.hashes.pdq_error.as_deref(), Some("unknown_format: test"));
    assert_eq!(d.image_urls, vec!["http://img.a.example.com/0.png".to_string(), "http://mirror.test/0.png".into()]);
    assert_eq!((d.images.len(), d.images_total, d.pages.len(), d.pages_total), (2, 2, 3, 3));
    assert_eq!((d.images[1].ip.as_deref(), d.images[1].scan.as_str()), (Some("192.0.2.9"), "s2"));
    let pages: Vec<(&str, &str)> = d.pages.iter().map(|p| (p.page_url.as_str(), p.host.as_str())).collect();
    assert_eq!(
        pages,
        [
            ("http://www.pages.test/p0", "www.pages.test"),
            ("http://Blog.TEST:8080/post", "blog.test"),
            ("http://www.pages.test/other", "www.pages.test")
        ]
    );
    let hosts: Vec<(&str, &str, u64, &str, &str)> = d
        .hosts
        .iter()
        .map(|h| (h.host.as_str(), h.role.as_str(), h.sightings, h.first_seen.as_str(), h.last_seen.as_str()))
        .collect();
    assert_eq!(
        hosts,
        [
            ("img.a.example.com", "image", 1, "1970-01-01T00:00:01.000Z", "1970-01-01T00:00:01.000Z"),
            ("mirror.test", "image", 1, "1970-01-01T00:00:03.000Z", "1970-01-01T00:00:03.000Z"),
            ("www.pages.test", "page", 2, "1970-01-01T00:00:01.000Z", "1970-01-01T00:00:04.000Z"),
            ("blog.test", "page", 1, "1970-01-01T00:00:03.000Z", "1970-01-01T00:00:03.000Z"),
        ]
    );
    assert_eq!(d.claim.as_ref().map(|c| (c.user.as_str(), c.expires_at_ms)), Some(("ann", 17_000)));
    assert_eq!(s.case_detail(id, 17_000).await.unwrap().unwrap().claim, None, "expired");
    assert_eq!((d.online, d.offline_since.as_deref()), (Some(false), Some("1970-01-01T00:00:06.000Z")));
    assert_eq!((d.last_checked.as_deref(), d.last_online.clone()), (Some("1970-01-01T00:00:06.000Z"), None));
    let decs: Vec<(&str, &str, &str, &str, Option<&str>)> = d
        .decisions
        .iter()
        .map(|x| (x.actor.as_str(), x.before.as_str(), x.after.as_str(), x.note.as_str(), x.undone_at.as_deref()))
        .collect();
    assert_eq!(
        decs,
        [
            ("ann", "open", "confirmed", "clear", Some("1970-01-01T00:00:07.200Z")),
            ("ann", "open", "escalate", "unsure", None)
        ]
    );
    assert!(d.decisions[0].id < d.decisions[1].id);
    assert_eq!(d.decisions[1].at, "1970-01-01T00:00:07.300Z");
}

async fn queue_filters_narrow_the_queue(s: Arc<dyn Store>) {
    let ids = store_with_cases(&*s, 6).await;
    // Case 5 comes from scan s2 with a near match.
    let d = Digests::of(b"near");
    s.record_image(ImageRecord {
        scan: "s2".into(),
        image_id: "http://n.test/x.png".into(),
        page_url: None,
        host: "n.test".into(),
        ip: None,
        digests: d,
        pdq: PdqResult::Failed { reason: "unknown_format".into(), detail: "test".into() },
        fetched_at_ms: 2_000,
    })
    .await
    .unwrap();
    let near = Assessment {
        score: 0.5,
        match_kind: MatchKind::Near,
        match_algo: Some("pdq".into()),
        distance: Some(9),
        reference_version: Some("v".into()),
        reasons: vec![],
    };
    s.record_assessment(d.blake3, near).await.unwrap();
    let nid = s.open_case(d.blake3, 0.5, "s2", 6_000).await.unwrap();
    s.decide(key(1), "escalate", 7_000).await.unwrap();
    let ann = uid(&s, "ann").await;
    assert!(matches!(s.claim(ids[0], ann, 1_000, actor("ann"), 8_000).await.unwrap(), ClaimOutcome::Won(_)));
    let q = |f: QueueFilter| {
        let s = s.clone();
        async move {
            s.queue(QueueFilter { limit: 100, now_ms: 8_500, ..f })
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    let open = expected(&ids, |k| k != 1);
    let mut all_open = open.clone();
    all_open.push(nid);
    assert_eq!(q(QueueFilter::default()).await, all_open);
    assert_eq!(q(QueueFilter { status: "escalate".into(), ..QueueFilter::default() }).await, [ids[1]]);
    assert_eq!(q(QueueFilter { scan: Some("s2".into()), ..QueueFilter::default() }).await, [nid]);
    assert_eq!(q(QueueFilter { scan: Some("s1".into()), ..QueueFilter::default() }).await, open);
    assert_eq!(q(QueueFilter { match_kind: Some(MatchKind::Near), ..QueueFilter::default() }).await, [nid]);
    assert_eq!(q(QueueFilter { match_kind: Some(MatchKind::None), ..QueueFilter::default() }).await, Vec::<i64>::new());
    assert_eq!(
        q(QueueFilter { min_score: Some(0.995), ..QueueFilter::default() }).await,
        expected(&ids, |k| k == 0 || k == 2)
    );
    assert_eq!(q(QueueFilter { max_score: Some(0.99), ..QueueFilter::default() }).await, [ids[3], ids[4], ids[5], nid]);
    assert_eq!(
        q(QueueFilter { min_score: Some(0.6), max_score: Some(0.99), ..QueueFilter::default() }).await,
        [ids[3], ids[4], ids[5]]
    );
    assert_eq!(
        q(QueueFilter { since_ms: Some(1_002), until_ms: Some(1_005), ..QueueFilter::default() }).await,
        expected(&ids, |k| (2..5).contains(&k))
    );
    assert_eq!(q(QueueFilter { since_ms: Some(2_000), ..QueueFilter::default() }).await, [nid]);
    assert_eq!(q(QueueFilter { claim: ClaimFilter::Mine(ann), ..QueueFilter::default() }).await, [ids[0]]);
    let free: Vec<i64> = all_open.iter().copied().filter(|&i| i != ids[0]).collect();
    assert_eq!(q(QueueFilter { claim: ClaimFilter::Free, ..QueueFilter::default() }).await, free);
    // The claim shows on its row while it lasts.
    let rows = s.queue(QueueFilter { now_ms: 8_500, limit: 1, ..QueueFilter::default() }).await.unwrap();
    let c = rows[0].claim.clone().unwrap();
    assert_eq!((c.user_id, c.user.as_str(), c.claimed_at_ms, c.expires_at_ms), (ann, "ann", 8_000, 9_000));
    let rows = s.queue(QueueFilter { now_ms: 9_000, limit: 1, ..QueueFilter::default() }).await.unwrap();
    assert_eq!(rows[0].claim, None, "expired");
    let n = s.queue(QueueFilter { scan: Some("s2".into()), ..QueueFilter::default() }).await.unwrap();
    assert_eq!((n[0].match_kind, n[0].current_score, n[0].host.as_str()), (MatchKind::Near, 0.5, "n.test"));
}

async fn hotspots_count_per_place_and_bucket(s: Arc<dyn Store>) {
    // Images first seen at 1_000 + k; buckets of 2 ms from 1_000.
    let ids = store_with_cases(&*s, 6).await;
    sync(&s).await;
    s.decide(key(2), "confirmed", 9_000).await.unwrap();
    s.decide(key(3), "confirmed", 9_000).await.unwrap();
    s.decide(key(4), "not_abuse", 9_000).await.unwrap();
    s.record_check(key(2), 9_500, false).await.unwrap();
    assert!(matches!(s.hotspots(PlaceKind::Host, 0, 1, 0).await, Err(StoreError::Worker(_))));
    let h = s.hotspots(PlaceKind::Domain, 1_000, 1_005, 2).await.unwrap();
    let mut counts: Vec<(Option<String>, i64, String, u64)> =
        h.counts.iter().map(|c| (c.place.clone(), c.bucket, c.status.clone(), c.cases)).collect();
    counts.sort();
    let c = |p: Option<&str>, b, st: &str, n| (p.map(String::from), b, st.to_string(), n);
    assert_eq!(
        counts,
        [
            c(None, 0, "open", 2),
            c(None, 1, "confirmed", 2),
            c(Some("b.test"), 0, "open", 1),
            c(Some("b.test"), 1, "confirmed", 1),
            c(Some("example.com"), 0, "open", 1),
            c(Some("example.com"), 1, "confirmed", 1),
            c(Some("pages.test"), 0, "open", 2),
            c(Some("pages.test"), 1, "confirmed", 2),
        ]
    );
    let mut open = h.open.clone();
    open.sort();
    assert_eq!(open, [("b.test".to_string(), 1), ("example.com".into(), 1), ("pages.test".into(), 2)]);
    let mut conf: Vec<(String, i64, Option<bool>, Option<i64>)> =
        h.confirmed.iter().map(|x| (x.place.clone(), x.first_seen_ms, x.online, x.offline_since_ms)).collect();
    conf.sort();
    assert_eq!(
        conf,
        [
            ("b.test".to_string(), 1_003, None, None),
            ("example.com".into(), 1_002, Some(false), Some(9_500)),
            ("pages.test".into(), 1_002, Some(false), Some(9_500)),
            ("pages.test".into(), 1_003, None, None),
        ]
    );
    let by_host = s.hotspots(PlaceKind::Host, 1_000, 1_006, 10).await.unwrap();
    let mut open = by_host.open.clone();
    open.sort();
    assert_eq!(open, [("cdn.b.test".to_string(), 2), ("img.a.example.com".into(), 1), ("www.pages.test".into(), 3)]);
    assert_eq!(ids.len(), 6);
}
