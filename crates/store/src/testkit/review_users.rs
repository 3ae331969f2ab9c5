//! The review service's people and paper trail: users, API tokens,
//! sessions, login throttling, the audit log, and the host index
//! (`sync_places`) that the queue's host filters read.

use std::sync::Arc;

use hashscan_hash::Digests;
use serde_json::json;

use super::{checks, image, Check};
use crate::review::{Actor, AuditEntry, AuditFilter, NewAudit, QueueFilter};
use crate::{Store, StoreError};

pub(super) fn checks() -> Vec<Check> {
    checks![
        a_user_is_added_once_with_a_known_role,
        users_are_listed_by_name_in_byte_order,
        disabling_a_user_ends_their_sessions_and_tokens_and_is_audited,
        a_password_reset_ends_sessions_and_is_audited_without_the_hash,
        api_tokens_belong_to_their_user,
        a_role_change_holds_at_once_and_is_audited,
        api_tokens_are_listed_without_secrets_and_revoked_for_good,
        sessions_end_when_idle_too_long_too_old_or_deleted,
        old_idle_sessions_are_purged_when_one_starts,
        login_failures_are_counted_per_key_and_forgotten,
        the_audit_log_keeps_what_was_appended,
        the_audit_log_filters_and_pages_both_ways,
        sync_places_reads_each_new_row_once,
        places_follow_image_and_page_hosts_and_their_domains,
    ]
}

fn actor(name: &str) -> Actor {
    Actor { name: name.into(), ip: Some("192.0.2.7".into()) }
}

/// Every audit row, oldest first.
async fn all_audit(s: &Arc<dyn Store>) -> Vec<AuditEntry> {
    s.audit(AuditFilter { limit: 1_000, oldest_first: true, ..AuditFilter::default() }).await.unwrap()
}

/// A user's id (the user must exist).
async fn uid(s: &Arc<dyn Store>, name: &str) -> i64 {
    s.user(name).await.unwrap().unwrap_or_else(|| panic!("no user {name}")).id
}

async fn a_user_is_added_once_with_a_known_role(s: Arc<dyn Store>) {
    assert!(s.add_user("ann", "analyst", "$argon2id$ann", actor("cli:root"), 1_000).await.unwrap());
    // Taken: nothing changes, not even the role, and nothing is audited.
    assert!(!s.add_user("ann", "admin", "$argon2id$other", actor("cli:root"), 2_000).await.unwrap());
    match s.add_user("eve", "root", "x", actor("cli:root"), 3_000).await {
        Err(StoreError::BadStatus(r)) => assert_eq!(r, "root"),
        other => panic!("an unknown role must be refused as BadStatus, got {other:?}"),
    }
    assert_eq!(s.user("eve").await.unwrap(), None);
    assert_eq!(s.user("nobody").await.unwrap(), None);
    let ann = s.user("ann").await.unwrap().unwrap();
    assert_eq!(
        (ann.name.as_str(), ann.role.as_str(), ann.password_hash.as_str(), ann.disabled, ann.created_at_ms),
        ("ann", "analyst", "$argon2id$ann", false, 1_000)
    );
    let log = all_audit(&s).await;
    assert_eq!(log.len(), 1, "{log:?}");
    let e = &log[0];
    assert_eq!((e.action.as_str(), e.actor.as_str(), e.at_ms), ("user_add", "cli:root", 1_000));
    assert_eq!(e.after, Some(json!({ "user": "ann", "role": "analyst" })));
    assert_eq!((e.before.clone(), e.case_id, e.detail.clone()), (None, None, None));
    assert_eq!(e.client_ip.as_deref(), Some("192.0.2.7"));
    // Every role of ROLES is accepted.
    assert!(s.add_user("lee", "lead", "x", actor("cli:root"), 4_000).await.unwrap());
    assert!(s.add_user("ada", "admin", "x", actor("cli:root"), 5_000).await.unwrap());
    assert_eq!(s.user("lee").await.unwrap().unwrap().role, "lead");
    assert_eq!(s.user("ada").await.unwrap().unwrap().role, "admin");
}

async fn users_are_listed_by_name_in_byte_order(s: Arc<dyn Store>) {
    assert!(s.users().await.unwrap().is_empty());
    for (i, n) in ["bob", "carol", "Zed", "alice"].into_iter().enumerate() {
        assert!(s.add_user(n, "analyst", &format!("h-{n}"), actor("cli:root"), i as i64).await.unwrap());
    }
    let users = s.users().await.unwrap();
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    // Byte order: upper case before lower case, whatever the collation.
    assert_eq!(names, ["Zed", "alice", "bob", "carol"]);
    let mut ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "ids are distinct");
    for u in &users {
        assert_eq!(Some(u), s.user(&u.name).await.unwrap().as_ref(), "users() and user() agree");
        assert_eq!(u.password_hash, format!("h-{}", u.name));
    }
}

async fn disabling_a_user_ends_their_sessions_and_tokens_and_is_audited(s: Arc<dyn Store>) {
    s.add_user("ann", "analyst", "x", actor("cli:root"), 0).await.unwrap();
    s.add_user("bob", "analyst", "x", actor("cli:root"), 0).await.unwrap();
    let (ann, bob) = (uid(&s, "ann").await, uid(&s, "bob").await);
    s.create_session([1; 32], ann, "csrf-ann", None, 100).await.unwrap();
    s.create_session([2; 32], bob, "csrf-bob", None, 100).await.unwrap();
    s.add_token("ann", "ci", [9; 32], actor("cli:root"), 100).await.unwrap().unwrap();
    assert!(s.session([1; 32], 200, 10_000, 100_000).await.unwrap().is_some());
    assert!(s.user_for_token([9; 32], 200).await.unwrap().is_some());

    assert!(s.set_user_disabled("ann", true, actor("cli:root"), 300).await.unwrap());
    assert!(s.user("ann").await.unwrap().unwrap().disabled);
    assert_eq!(s.session([1; 32], 400, 10_000, 100_000).await.unwrap(), None, "session ended");
    assert_eq!(s.user_for_token([9; 32], 400).await.unwrap(), None, "a disabled user's token is refused");
    let (bob_user, csrf) = s.session([2; 32], 400, 10_000, 100_000).await.unwrap().unwrap();
    assert_eq!((bob_user.name.as_str(), csrf.as_str()), ("bob", "csrf-bob"), "others' sessions stay");
    assert!(!s.set_user_disabled("nobody", true, actor("cli:root"), 500).await.unwrap());

    assert!(s.set_user_disabled("ann", false, actor("cli:root"), 600).await.unwrap());
    assert!(!s.user("ann").await.unwrap().unwrap().disabled);
    // The ended session stays ended; the token works again; a new session does.
    assert_eq!(s.session([1; 32], 700, 10_000, 100_000).await.unwrap(), None);
    assert_eq!(s.user_for_token([9; 32], 700).await.unwrap().map(|u| u.name), Some("ann".into()));
    s.create_session([3; 32], ann, "csrf-new", None, 800).await.unwrap();
    assert_eq!(s.session([3; 32], 900, 10_000, 100_000).await.unwrap().map(|(_, c)| c), Some("csrf-new".into()));

    // A session whose user is disabled without going through
    // set_user_disabled's cleanup is refused all the same: disable, then a
    // session made afterwards.
    s.set_user_disabled("bob", true, actor("cli:root"), 1_000).await.unwrap();
    s.create_session([4; 32], bob, "csrf-late", None, 1_100).await.unwrap();
    assert_eq!(s.session([4; 32], 1_200, 10_000, 100_000).await.unwrap(), None);
    s.set_user_disabled("bob", false, actor("cli:root"), 1_300).await.unwrap();
    assert_eq!(s.session([4; 32], 1_400, 10_000, 100_000).await.unwrap(), None, "refused means deleted");

    let log: Vec<AuditEntry> =
        all_audit(&s).await.into_iter().filter(|e| e.action.starts_with("user_") && e.action != "user_add").collect();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["user_token", "user_disable", "user_enable", "user_disable", "user_enable"]);
    assert_eq!(log[1].before, Some(json!({ "user": "ann", "disabled": false })));
    assert_eq!(log[1].after, Some(json!({ "user": "ann", "disabled": true })));
    assert_eq!(log[2].before, Some(json!({ "user": "ann", "disabled": true })));
    assert_eq!(log[2].after, Some(json!({ "user": "ann", "disabled": false })));
    assert_eq!((log[1].at_ms, log[1].actor.as_str()), (300, "cli:root"));
}

async fn a_password_reset_ends_sessions_and_is_audited_without_the_hash(s: Arc<dyn Store>) {
    s.add_user("ann", "analyst", "old-hash", actor("cli:root"), 0).await.unwrap();
    let ann = uid(&s, "ann").await;
    s.create_session([1; 32], ann, "c", Some("198.51.100.1".into()), 10).await.unwrap();
    assert!(s.set_password("ann", "new-hash", actor("ada"), 20).await.unwrap());
    assert_eq!(s.user("ann").await.unwrap().unwrap().password_hash, "new-hash");
    assert_eq!(s.session([1; 32], 30, 10_000, 100_000).await.unwrap(), None, "sessions ended");
    assert!(!s.set_password("nobody", "h", actor("ada"), 40).await.unwrap());
    let log = all_audit(&s).await;
    assert_eq!(log.len(), 2, "user_add and one user_reset: {log:?}");
    let e = &log[1];
    assert_eq!((e.action.as_str(), e.actor.as_str(), e.at_ms), ("user_reset", "ada", 20));
    assert_eq!(e.after, Some(json!({ "user": "ann" })));
    assert_eq!(e.before, None);
    assert_eq!(e.detail.as_deref(), Some("password replaced; sessions ended"));
    let text = format!("{log:?}");
    assert!(!text.contains("new-hash") && !text.contains("old-hash"), "no hash in the log: {text}");
}

async fn api_tokens_belong_to_their_user(s: Arc<dyn Store>) {
    assert_eq!(s.add_token("nobody", "ci", [7; 32], actor("cli:root"), 0).await.unwrap(), None);
    s.add_user("ann", "lead", "x", actor("cli:root"), 0).await.unwrap();
    s.add_user("bob", "analyst", "x", actor("cli:root"), 0).await.unwrap();
    let t1 = s.add_token("ann", "ci", [7; 32], actor("cli:root"), 50).await.unwrap().unwrap();
    let t2 = s.add_token("bob", "laptop", [8; 32], actor("cli:root"), 60).await.unwrap().unwrap();
    assert_ne!(t1, t2);
    let ann = s.user_for_token([7; 32], 100).await.unwrap().unwrap();
    assert_eq!(ann, s.user("ann").await.unwrap().unwrap());
    assert_eq!(s.user_for_token([8; 32], 100).await.unwrap().map(|u| u.name), Some("bob".into()));
    assert_eq!(s.user_for_token([0; 32], 100).await.unwrap(), None, "unknown token");
    // Using a token again still works (its use is recorded, not consumed).
    assert_eq!(s.user_for_token([7; 32], 200).await.unwrap().map(|u| u.role), Some("lead".into()));
    // A token hash is unique.
    assert!(s.add_token("bob", "again", [7; 32], actor("cli:root"), 70).await.is_err());
    let log: Vec<AuditEntry> = all_audit(&s).await.into_iter().filter(|e| e.action == "user_token").collect();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].after, Some(json!({ "user": "ann", "token_id": t1, "label": "ci" })));
    assert_eq!(log[1].after, Some(json!({ "user": "bob", "token_id": t2, "label": "laptop" })));
    assert_eq!(log[0].at_ms, 50);
}

async fn a_role_change_holds_at_once_and_is_audited(s: Arc<dyn Store>) {
    s.add_user("ann", "analyst", "x", actor("cli:root"), 0).await.unwrap();
    s.add_user("bob", "analyst", "x", actor("cli:root"), 0).await.unwrap();
    let ann = uid(&s, "ann").await;
    s.create_session([1; 32], ann, "c", None, 10).await.unwrap();
    s.add_token("ann", "ci", [9; 32], actor("cli:root"), 10).await.unwrap().unwrap();

    assert!(s.set_role("ann", "lead", actor("cli:root"), 20).await.unwrap());
    assert_eq!(s.user("ann").await.unwrap().unwrap().role, "lead");
    // The live session and the token carry the new role on their next use.
    let (u, _) = s.session([1; 32], 30, 10_000, 100_000).await.unwrap().unwrap();
    assert_eq!(u.role, "lead");
    assert_eq!(s.user_for_token([9; 32], 30).await.unwrap().map(|u| u.role), Some("lead".into()));
    assert_eq!(s.user("bob").await.unwrap().unwrap().role, "analyst", "others keep theirs");

    assert!(!s.set_role("nobody", "admin", actor("cli:root"), 40).await.unwrap());
    match s.set_role("ann", "root", actor("cli:root"), 50).await {
        Err(StoreError::BadStatus(r)) => assert_eq!(r, "root"),
        other => panic!("an unknown role must be refused as BadStatus, got {other:?}"),
    }
    assert_eq!(s.user("ann").await.unwrap().unwrap().role, "lead", "a refused change changes nothing");

    let log: Vec<AuditEntry> = all_audit(&s).await.into_iter().filter(|e| e.action == "user_role").collect();
    assert_eq!(log.len(), 1, "only the change that happened: {log:?}");
    assert_eq!(log[0].before, Some(json!({ "user": "ann", "role": "analyst" })));
    assert_eq!(log[0].after, Some(json!({ "user": "ann", "role": "lead" })));
    assert_eq!((log[0].at_ms, log[0].actor.as_str()), (20, "cli:root"));
}

async fn api_tokens_are_listed_without_secrets_and_revoked_for_good(s: Arc<dyn Store>) {
    assert_eq!(s.tokens(None).await.unwrap(), vec![], "no tokens yet");
    s.add_user("ann", "lead", "x", actor("cli:root"), 0).await.unwrap();
    s.add_user("bob", "analyst", "x", actor("cli:root"), 0).await.unwrap();
    let t1 = s.add_token("ann", "ci", [7; 32], actor("cli:root"), 50).await.unwrap().unwrap();
    let t2 = s.add_token("bob", "laptop", [8; 32], actor("cli:root"), 60).await.unwrap().unwrap();
    let t3 = s.add_token("ann", "export job", [6; 32], actor("cli:root"), 70).await.unwrap().unwrap();
    s.user_for_token([7; 32], 100).await.unwrap().unwrap();

    let all = s.tokens(None).await.unwrap();
    let seen: Vec<(i64, &str, &str, i64, Option<i64>)> =
        all.iter().map(|t| (t.id, t.user.as_str(), t.label.as_str(), t.created_at_ms, t.last_used_at_ms)).collect();
    assert_eq!(
        seen,
        [(t1, "ann", "ci", 50, Some(100)), (t2, "bob", "laptop", 60, None), (t3, "ann", "export job", 70, None)],
        "oldest first, with the last use"
    );
    let anns: Vec<i64> = s.tokens(Some("ann")).await.unwrap().iter().map(|t| t.id).collect();
    assert_eq!(anns, [t1, t3]);
    assert_eq!(s.tokens(Some("nobody")).await.unwrap(), vec![]);

    assert!(s.revoke_token(t1, actor("ada"), 200).await.unwrap());
    assert_eq!(s.user_for_token([7; 32], 300).await.unwrap(), None, "a revoked token authenticates no more");
    assert!(!s.revoke_token(t1, actor("ada"), 400).await.unwrap(), "revoked once");
    assert!(!s.revoke_token(999_999, actor("ada"), 400).await.unwrap(), "unknown id");
    assert_eq!(s.user_for_token([6; 32], 500).await.unwrap().map(|u| u.name), Some("ann".into()), "others stay");
    let left: Vec<i64> = s.tokens(None).await.unwrap().iter().map(|t| t.id).collect();
    assert_eq!(left, [t2, t3]);

    let log: Vec<AuditEntry> = all_audit(&s).await.into_iter().filter(|e| e.action == "token_revoke").collect();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].before, Some(json!({ "user": "ann", "token_id": t1, "label": "ci" })));
    assert_eq!((log[0].at_ms, log[0].actor.as_str(), log[0].after.clone()), (200, "ada", None));
}

async fn sessions_end_when_idle_too_long_too_old_or_deleted(s: Arc<dyn Store>) {
    s.add_user("ann", "analyst", "x", actor("cli:root"), 0).await.unwrap();
    let ann = uid(&s, "ann").await;
    let user = s.user("ann").await.unwrap().unwrap();
    let (idle, max) = (100, 1_000);
    assert_eq!(s.session([1; 32], 0, idle, max).await.unwrap(), None, "unknown token");

    // Idle: exactly `idle_ms` since the last use is still alive, and each
    // use keeps it alive.
    s.create_session([1; 32], ann, "csrf-1", Some("192.0.2.1".into()), 1_000).await.unwrap();
    assert_eq!(s.session([1; 32], 1_100, idle, max).await.unwrap(), Some((user.clone(), "csrf-1".into())));
    assert!(s.session([1; 32], 1_200, idle, max).await.unwrap().is_some(), "kept alive at 1100");
    assert_eq!(s.session([1; 32], 1_301, idle, max).await.unwrap(), None, "idle 101 ms");
    assert_eq!(s.session([1; 32], 1_302, 1_000_000, 1_000_000).await.unwrap(), None, "and deleted");

    // Too old: used often enough, but `max_ms` after it began it ends;
    // exactly `max_ms` is still alive.
    s.create_session([2; 32], ann, "csrf-2", None, 10_000).await.unwrap();
    for at in (10_090..=11_000).step_by(90) {
        assert!(s.session([2; 32], at, idle, max).await.unwrap().is_some(), "alive at {at}");
    }
    assert!(s.session([2; 32], 11_000, idle, max).await.unwrap().is_some(), "exactly max_ms old");
    assert_eq!(s.session([2; 32], 11_001, idle, max).await.unwrap(), None, "older than max_ms");
    assert_eq!(s.session([2; 32], 11_002, 1_000_000, 1_000_000).await.unwrap(), None, "and deleted");

    // Deleted: gone at once; deleting an unknown session is no error.
    s.create_session([3; 32], ann, "csrf-3", None, 20_000).await.unwrap();
    s.create_session([4; 32], ann, "csrf-4", None, 20_000).await.unwrap();
    s.delete_session([3; 32]).await.unwrap();
    s.delete_session([3; 32]).await.unwrap();
    assert_eq!(s.session([3; 32], 20_001, idle, max).await.unwrap(), None);
    assert_eq!(s.session([4; 32], 20_001, idle, max).await.unwrap().map(|(_, c)| c), Some("csrf-4".into()));
    // One token, one session.
    assert!(s.create_session([4; 32], ann, "dup", None, 20_002).await.is_err());
}

async fn old_idle_sessions_are_purged_when_one_starts(s: Arc<dyn Store>) {
    const WEEK: i64 = 7 * 86_400_000;
    s.add_user("ann", "analyst", "x", actor("cli:root"), 0).await.unwrap();
    let ann = uid(&s, "ann").await;
    s.create_session([1; 32], ann, "a", None, 0).await.unwrap();
    s.create_session([2; 32], ann, "b", None, 1).await.unwrap();
    // A week and a millisecond after the first was last used, a new
    // session purges it; the second (exactly a week idle) stays.
    s.create_session([3; 32], ann, "c", None, WEEK + 1).await.unwrap();
    let forever = i64::MAX / 4;
    assert_eq!(s.session([1; 32], WEEK + 2, forever, forever).await.unwrap(), None);
    assert_eq!(s.session([2; 32], WEEK + 2, forever, forever).await.unwrap().map(|(_, c)| c), Some("b".into()));
    assert_eq!(s.session([3; 32], WEEK + 2, forever, forever).await.unwrap().map(|(_, c)| c), Some("c".into()));
}

async fn login_failures_are_counted_per_key_and_forgotten(s: Arc<dyn Store>) {
    let keys = |k: &[&str]| k.iter().map(|k| k.to_string()).collect::<Vec<_>>();
    assert_eq!(s.login_failures(keys(&["ip:a"]), 0).await.unwrap(), [(0, None)]);
    assert_eq!(s.login_failures(Vec::new(), 0).await.unwrap(), []);
    s.record_login_failure(keys(&["ip:a", "user:ann"]), 100, 0).await.unwrap();
    s.record_login_failure(keys(&["ip:a"]), 200, 0).await.unwrap();
    s.record_login_failure(keys(&["ip:a"]), 200, 0).await.unwrap();
    assert_eq!(
        s.login_failures(keys(&["ip:a", "user:ann", "ip:b"]), 0).await.unwrap(),
        [(3, Some(100)), (1, Some(100)), (0, None)]
    );
    // `since_ms` is exclusive.
    assert_eq!(s.login_failures(keys(&["ip:a", "user:ann"]), 100).await.unwrap(), [(2, Some(200)), (0, None)]);
    assert_eq!(s.login_failures(keys(&["ip:a"]), 200).await.unwrap(), [(0, None)]);
    // Recording forgets failures older than `forget_before_ms` (under any
    // key); one exactly that old stays.
    s.record_login_failure(keys(&["ip:b"]), 300, 200).await.unwrap();
    assert_eq!(
        s.login_failures(keys(&["ip:a", "user:ann", "ip:b"]), 0).await.unwrap(),
        [(2, Some(200)), (0, None), (1, Some(300))]
    );
    // Clearing is per key.
    s.clear_login_failures("ip:a").await.unwrap();
    s.clear_login_failures("never-failed").await.unwrap();
    assert_eq!(s.login_failures(keys(&["ip:a", "ip:b"]), 0).await.unwrap(), [(0, None), (1, Some(300))]);
}

async fn the_audit_log_keeps_what_was_appended(s: Arc<dyn Store>) {
    let entry = NewAudit {
        actor: actor("ann"),
        action: "decision".into(),
        case_id: Some(42),
        before: Some(json!({ "status": "open" })),
        after: Some(json!({ "status": "confirmed", "n": [1, 2.5, null], "deep": { "ü": "ß" } })),
        detail: Some("note: it's \"bad\"".into()),
        at_ms: 1_700_000_000_123,
    };
    let id = s.append_audit(entry.clone()).await.unwrap();
    let bare = NewAudit {
        actor: Actor { name: "cli:root".into(), ip: None },
        action: "login_fail".into(),
        at_ms: 0,
        ..NewAudit::default()
    };
    let id2 = s.append_audit(bare).await.unwrap();
    assert!(id2 > id, "ids increase: {id} then {id2}");
    let log = all_audit(&s).await;
    assert_eq!(log.len(), 2);
    assert_eq!(
        log[0],
        AuditEntry {
            id,
            at: "2023-11-14T22:13:20.123Z".into(),
            at_ms: 1_700_000_000_123,
            actor: "ann".into(),
            action: "decision".into(),
            case_id: Some(42),
            before: entry.before.clone(),
            after: entry.after.clone(),
            detail: entry.detail.clone(),
            client_ip: Some("192.0.2.7".into()),
        }
    );
    assert_eq!(
        log[1],
        AuditEntry {
            id: id2,
            at: "1970-01-01T00:00:00.000Z".into(),
            at_ms: 0,
            actor: "cli:root".into(),
            action: "login_fail".into(),
            case_id: None,
            before: None,
            after: None,
            detail: None,
            client_ip: None,
        }
    );
}

async fn the_audit_log_filters_and_pages_both_ways(s: Arc<dyn Store>) {
    // Ten entries: actors ann/bob alternating, cases 1, 2, none in turn.
    let mut ids = Vec::new();
    for k in 0..10i64 {
        let e = NewAudit {
            actor: actor(if k % 2 == 0 { "ann" } else { "bob" }),
            action: format!("a{k}"),
            case_id: [Some(1), Some(2), None][(k % 3) as usize],
            at_ms: 1_000 + k,
            ..NewAudit::default()
        };
        ids.push(s.append_audit(e).await.unwrap());
    }
    let read = |f: AuditFilter| {
        let s = s.clone();
        async move { s.audit(f).await.unwrap().into_iter().map(|e| e.action).collect::<Vec<_>>() }
    };
    let f = |limit: usize| AuditFilter { limit, ..AuditFilter::default() };
    assert_eq!(read(f(3)).await, ["a9", "a8", "a7"], "newest first");
    assert_eq!(read(AuditFilter { oldest_first: true, ..f(3) }).await, ["a0", "a1", "a2"]);
    assert_eq!(read(f(0)).await, Vec::<String>::new());
    assert_eq!(read(AuditFilter { after_id: Some(ids[7]), ..f(3) }).await, ["a6", "a5", "a4"]);
    assert_eq!(read(AuditFilter { after_id: Some(ids[7]), oldest_first: true, ..f(3) }).await, ["a8", "a9"]);
    assert_eq!(read(AuditFilter { after_id: Some(ids[0]), ..f(3) }).await, Vec::<String>::new());
    assert_eq!(read(AuditFilter { actor: Some("bob".into()), ..f(10) }).await, ["a9", "a7", "a5", "a3", "a1"]);
    assert_eq!(read(AuditFilter { actor: Some("Bob".into()), ..f(10) }).await, Vec::<String>::new(), "exact");
    assert_eq!(read(AuditFilter { case_id: Some(1), oldest_first: true, ..f(10) }).await, ["a0", "a3", "a6", "a9"]);
    assert_eq!(
        read(AuditFilter { case_id: Some(1), actor: Some("ann".into()), oldest_first: true, ..f(10) }).await,
        ["a0", "a6"]
    );
    assert_eq!(read(AuditFilter { case_id: Some(3), ..f(10) }).await, Vec::<String>::new());
    // Paging by the last id visits every row once.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.audit(AuditFilter { after_id: after, case_id: Some(2), ..f(2) }).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.into_iter().map(|e| e.action));
        assert!(seen.len() <= 10, "paging does not end: {seen:?}");
    }
    assert_eq!(seen, ["a7", "a4", "a1"]);
}

/// The registrable domain as the checks define it: the last two labels.
fn two_labels(h: &str) -> String {
    let labels: Vec<&str> = h.rsplitn(3, '.').take(2).collect();
    labels.into_iter().rev().collect::<Vec<_>>().join(".")
}

/// Records an image of bytes `data` at `url` on `host` (seen on `page`).
async fn sighting(s: &Arc<dyn Store>, url: &str, host: &str, page: Option<&str>, data: &[u8], at: i64) {
    let mut rec = image("s1", url, page, data, at);
    rec.host = host.into();
    s.record_image(rec).await.unwrap();
}

async fn sync_places_reads_each_new_row_once(s: Arc<dyn Store>) {
    assert_eq!(s.sync_places(two_labels, 10).await.unwrap(), 0, "nothing to read");
    let (a, b) = (Digests::of(b"a").blake3, Digests::of(b"b").blake3);
    // Three image records (one with a page, so one edge), two cases.
    sighting(&s, "http://img.a.test/1.png", "img.a.test", Some("http://pages.test/1"), b"a", 1_000).await;
    sighting(&s, "http://img.b.test/2.png", "img.b.test", None, b"b", 1_001).await;
    sighting(&s, "http://img.c.test/3.png", "img.c.test", None, b"c", 1_002).await;
    s.open_case(a, 1.0, "s1", 2_000).await.unwrap();
    s.open_case(b, 0.9, "s1", 2_001).await.unwrap();
    // At most `batch` of each source per call: (1 case, 1 image, 1 edge),
    // then (1, 1, 0), then (0, 1, 0), then nothing.
    assert_eq!(s.sync_places(two_labels, 1).await.unwrap(), 3);
    assert_eq!(s.sync_places(two_labels, 1).await.unwrap(), 2);
    assert_eq!(s.sync_places(two_labels, 1).await.unwrap(), 1);
    assert_eq!(s.sync_places(two_labels, 1).await.unwrap(), 0);
    assert_eq!(s.sync_places(two_labels, 100).await.unwrap(), 0, "up to date");
    // New rows only: one edge, then one image with its edge.
    s.record_edges("s1", "http://late.test/x", &["http://img.b.test/2.png".into()], 3_000).await.unwrap();
    assert_eq!(s.sync_places(two_labels, 100).await.unwrap(), 1);
    sighting(&s, "http://mirror.test/1.png", "mirror.test", Some("http://m.test/"), b"a", 4_000).await;
    assert_eq!(s.sync_places(two_labels, 100).await.unwrap(), 2);
    assert_eq!(s.sync_places(two_labels, 100).await.unwrap(), 0);
}

async fn places_follow_image_and_page_hosts_and_their_domains(s: Arc<dyn Store>) {
    let (a, b, c) = (Digests::of(b"a").blake3, Digests::of(b"b").blake3, Digests::of(b"c").blake3);
    sighting(&s, "http://img.a.example.com/1.png", "img.a.example.com", Some("http://www.pages.test/p1"), b"a", 1_000)
        .await;
    sighting(&s, "http://CDN.B.test/2.png", "CDN.B.test", None, b"b", 1_001).await;
    // No case for this one (yet): its host is nobody's place.
    sighting(&s, "http://orphan.test/3.png", "orphan.test", None, b"c", 1_002).await;
    let case_a = s.open_case(a, 1.0, "s1", 2_000).await.unwrap();
    let case_b = s.open_case(b, 0.9, "s1", 2_001).await.unwrap();
    assert_eq!(s.sync_places(two_labels, 100).await.unwrap(), 6, "2 cases, 3 images, 1 edge");
    assert_eq!(s.sync_places(two_labels, 100).await.unwrap(), 0, "a second run adds nothing");
    let q = |host: Option<&str>, domain: Option<&str>| {
        let s = s.clone();
        let f = QueueFilter {
            host: host.map(Into::into),
            domain: domain.map(Into::into),
            limit: 100,
            ..QueueFilter::default()
        };
        async move { s.queue(f).await.unwrap().into_iter().map(|r| r.id).collect::<Vec<_>>() }
    };
    assert_eq!(q(Some("img.a.example.com"), None).await, [case_a], "image host");
    assert_eq!(q(Some("www.pages.test"), None).await, [case_a], "page host");
    assert_eq!(q(Some("cdn.b.test"), None).await, [case_b], "hosts in lower case");
    assert_eq!(q(None, Some("example.com")).await, [case_a], "domain of the image host");
    assert_eq!(q(None, Some("pages.test")).await, [case_a], "domain of the page host");
    assert_eq!(q(None, Some("b.test")).await, [case_b]);
    assert_eq!(q(Some("orphan.test"), None).await, Vec::<i64>::new(), "no case, no place");
    assert_eq!(q(None, None).await, [case_a, case_b]);

    // Later rows of existing cases are picked up: an edge, an image with a page.
    s.record_edges("s1", "http://Late.test:8080/x", &["http://CDN.B.test/2.png".into()], 3_000).await.unwrap();
    sighting(&s, "http://mirror.test/1.png", "mirror.test", Some("http://m.pages.test/"), b"a", 3_001).await;
    assert_eq!(s.sync_places(two_labels, 100).await.unwrap(), 3, "2 edges, 1 image");
    assert_eq!(q(Some("late.test"), None).await, [case_b]);
    assert_eq!(q(Some("mirror.test"), None).await, [case_a]);
    assert_eq!(q(Some("m.pages.test"), None).await, [case_a]);
    assert_eq!(q(None, Some("pages.test")).await, [case_a], "two hosts of one domain: one case");
    // A case opened later gets the hosts its image already had.
    let case_c = s.open_case(c, 0.5, "s1", 4_000).await.unwrap();
    assert_eq!(s.sync_places(two_labels, 100).await.unwrap(), 1);
    assert_eq!(q(Some("orphan.test"), None).await, [case_c]);
    assert_eq!(s.sync_places(two_labels, 100).await.unwrap(), 0);
}
