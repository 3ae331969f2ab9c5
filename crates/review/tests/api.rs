//! The JSON API of the review service, end to end on loopback: auth,
//! queue, case, claims, decisions flowing back into scores, the audit log.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{cookie_of, Auth, Server, PASSWORD};
use hashscan_store::{ReviewStore, SqliteStore};
use serde_json::json;

#[tokio::test]
async fn healthz_is_open_and_everything_else_needs_a_login() {
    let s = Server::start().await;
    let r = s.get("/healthz", &Auth::None).await;
    assert_eq!((r.status, r.text.as_str()), (200, "ok\n"));
    assert_eq!(s.get("/login", &Auth::None).await.status, 200);
    let id = s.case("U");
    for path in [
        "/api/cases".to_string(),
        format!("/api/cases/{id}"),
        "/api/audit".into(),
        "/api/audit/export?format=csv".into(),
        "/api/me".into(),
        "/api/no/such/thing".into(),
    ] {
        let r = s.get(&path, &Auth::None).await;
        assert_eq!(r.status, 401, "{path}: {}", r.text);
        assert!(r.json()["error"].as_str().is_some_and(|e| !e.is_empty()), "{path}");
    }
    for action in ["claim", "release", "decision", "undo"] {
        let r = s.post_json(&format!("/api/cases/{id}/{action}"), &Auth::None, json!({})).await;
        assert_eq!(r.status, 401, "{action}");
    }
    let r = s.post_json("/api/hosts/www.bad.test/decision", &Auth::None, json!({"status": "escalate"})).await;
    assert_eq!(r.status, 401);
    for path in
        ["/".to_string(), format!("/cases/{id}"), format!("/cases/{id}/source"), "/audit".into(), "/nowhere".into()]
    {
        let r = s.get(&path, &Auth::None).await;
        assert_eq!((r.status, r.header("location")), (303, "/login".to_string()), "{path}");
    }
    // A wrong token is refused, not taken for anonymous.
    let r = s.get("/api/cases", &Auth::Token("hst_nope".into())).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn login_gives_a_locked_down_cookie_and_a_csrf_token() {
    let s = Server::start().await;
    let r = s.post_json("/api/login", &Auth::None, json!({"name": "ann", "password": PASSWORD})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let set = r.header("set-cookie");
    assert!(set.contains("HttpOnly") && set.contains("Secure") && set.contains("SameSite=Strict"), "{set}");
    assert!(set.contains("Path=/"), "{set}");
    let body = r.json();
    assert_eq!((body["user"].as_str(), body["role"].as_str()), (Some("ann"), Some("analyst")));
    let auth = Auth::Session { cookie: cookie_of(&r), csrf: body["csrf"].as_str().unwrap().into() };
    let me = s.get("/api/me", &auth).await;
    assert_eq!(me.json()["user"], "ann");
    // Bad input names the field; a wrong password is 401.
    let r = s.post_json("/api/login", &Auth::None, json!({"name": "ann"})).await;
    assert_eq!((r.status, r.field()), (400, "password".into()));
    let r = s.post_json("/api/login", &Auth::None, json!({"name": "ann", "password": PASSWORD, "x": "1"})).await;
    assert_eq!((r.status, r.field()), (400, "x".into()));
    let r = s.post_json("/api/login", &Auth::None, json!({"name": 5, "password": PASSWORD})).await;
    assert_eq!((r.status, r.field()), (400, "name".into()));
    let r = s.post_json("/api/login", &Auth::None, json!({"name": "ann", "password": "wrong password!"})).await;
    assert_eq!(r.status, 401);
    let r = s.post_json("/api/login", &Auth::None, json!({"name": "nobody", "password": "wrong password!"})).await;
    assert_eq!(r.status, 401);
    // Only JSON: a cross-site form (text/plain, no preflight) cannot log a
    // browser in, even with the right password.
    let body = json!({"name": "ann", "password": PASSWORD}).to_string();
    for ct in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
        let mut rb = s.http.post(format!("{}/api/login", s.base)).body(body.clone());
        if let Some(ct) = ct {
            rb = rb.header("Content-Type", ct);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 415, "{ct:?}");
        assert!(r.headers().get("set-cookie").is_none(), "{ct:?}");
        let err: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(err["field"], "content-type", "{ct:?}");
    }
    // Logout ends the session (and needs the CSRF token).
    assert_eq!(s.post_json_no_csrf("/api/logout", &auth, json!({})).await.status, 403);
    assert_eq!(s.post_json("/api/logout", &auth, json!({})).await.status, 200);
    assert_eq!(s.get("/api/me", &auth).await.status, 401);
    // A disabled user's sessions end and they cannot log in.
    let bob = s.login("bob").await;
    s.store.set_user_disabled("bob", true, Default::default(), 0).await.unwrap();
    assert_eq!(s.get("/api/me", &bob).await.status, 401);
    let r = s.post_json("/api/login", &Auth::None, json!({"name": "bob", "password": PASSWORD})).await;
    assert_eq!(r.status, 401);
    let lea = s.token("lea").await;
    let log = s.get("/api/audit?limit=500", &lea).await.json();
    let actions: Vec<&str> = log["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for a in ["login_ok", "login_failed", "logout", "user_disable"] {
        assert!(actions.contains(&a), "{a} not in {actions:?}");
    }
}

#[tokio::test]
async fn sessions_end_after_eight_idle_hours() {
    let s = Server::start().await;
    let ann = s.login("ann").await;
    s.advance(Duration::from_secs(7 * 3600));
    assert_eq!(s.get("/api/me", &ann).await.status, 200, "used within 8 h: kept alive");
    s.advance(Duration::from_secs(8 * 3600 + 1));
    assert_eq!(s.get("/api/me", &ann).await.status, 401);
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_name_and_per_address() {
    let s = Server::start().await;
    for _ in 0..5 {
        let r = s.post_json("/api/login", &Auth::None, json!({"name": "ann", "password": "not the password"})).await;
        assert_eq!(r.status, 401);
    }
    // Now even the right password waits.
    let r = s.post_json("/api/login", &Auth::None, json!({"name": "ann", "password": PASSWORD})).await;
    assert_eq!(r.status, 429, "{}", r.text);
    let wait: u64 = r.header("retry-after").parse().expect("Retry-After in seconds");
    assert!((1..=300).contains(&wait), "{wait}");
    // The address is limited too: another name from it waits as well.
    let r = s.post_json("/api/login", &Auth::None, json!({"name": "bob", "password": PASSWORD})).await;
    assert_eq!(r.status, 429);
    s.advance(Duration::from_secs(wait));
    let r = s.post_json("/api/login", &Auth::None, json!({"name": "ann", "password": PASSWORD})).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn the_queue_is_ordered_filtered_and_paged_by_cursor() {
    let s = Server::start().await;
    let ann = s.token("ann").await;
    let all = s.get("/api/cases", &ann).await.json();
    let cases = all["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5, "{all}");
    assert!(all["next"].is_null());
    let scores: Vec<f64> = cases.iter().map(|c| c["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    // The listed images first; then the cases by circumstances alone.
    assert_eq!(cases[3]["blake3"], common::blake3_hex("U"));
    assert_eq!(cases[4]["blake3"], common::blake3_hex("N2"));
    let ids = |v: &serde_json::Value| -> Vec<i64> {
        v["cases"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect()
    };
    let count = |q: &str| {
        let q = q.to_string();
        let s = &s;
        let ann = ann.clone();
        async move {
            let r = s.get(&format!("/api/cases?{q}"), &ann).await;
            assert_eq!(r.status, 200, "{q}: {}", r.text);
            r.json()["cases"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("match=exact").await, 3);
    assert_eq!(count("match=none").await, 2);
    assert_eq!(count("match=near").await, 0);
    assert_eq!(count("host=www.bad.test").await, 5);
    assert_eq!(count("host=img.test").await, 5);
    assert_eq!(count("host=www.good.test").await, 0);
    assert_eq!(count("domain=bad.test").await, 5);
    assert_eq!(count("domain=good.test").await, 0);
    assert_eq!(count("scan=s1").await, 5);
    assert_eq!(count("scan=s2").await, 0);
    assert_eq!(count("min_score=0.99").await, 3);
    assert_eq!(count("max_score=0.99").await, 2);
    assert_eq!(count("status=confirmed").await, 0);
    assert_eq!(count("since=2025-12-31T00:00:00Z&until=2026-01-01T01:00:00%2B01:00").await, 5);
    assert_eq!(count("since=2026-01-02T00:00:00Z").await, 0);
    assert_eq!(count("claim=free").await, 5);
    assert_eq!(count("claim=mine").await, 0);
    // Cursor paging visits each case once, in the same order.
    let mut paged = Vec::new();
    let mut path = "/api/cases?limit=1".to_string();
    for _ in 0..10 {
        let page = s.get(&path, &ann).await.json();
        paged.extend(ids(&page));
        match page["next"].as_str() {
            Some(n) => path = format!("/api/cases?limit=1&after={n}"),
            None => break,
        }
    }
    assert_eq!(paged, ids(&all));
    // Every bad parameter is a 400 naming it.
    for (q, field) in [
        ("status=nope", "status"),
        ("match=maybe", "match"),
        ("min_score=x", "min_score"),
        ("max_score=1.5", "max_score"),
        ("since=yesterday", "since"),
        ("until=2026", "until"),
        ("limit=1000", "limit"),
        ("after=garbage", "after"),
        ("host=a/b", "host"),
        ("domain=%00", "domain"),
        ("claim=all", "claim"),
        ("sort=score", "sort"),
    ] {
        let r = s.get(&format!("/api/cases?{q}"), &ann).await;
        assert_eq!((r.status, r.field()), (400, field.to_string()), "{q}: {}", r.text);
    }
}

#[tokio::test]
async fn a_case_shows_its_circumstances_hashes_and_history() {
    let s = Server::start().await;
    let ann = s.token("ann").await;
    let d = s.get(&format!("/api/cases/{}", s.case("U")), &ann).await.json();
    assert_eq!(d["status"], "open");
    assert_eq!(d["scan"], "s1");
    assert_eq!(d["match"], "none");
    assert_eq!(d["hashes"]["blake3"], common::blake3_hex("U"));
    for h in ["md5", "sha1", "sha256"] {
        assert!(d["hashes"][h].as_str().is_some_and(|x| x.len() >= 32), "{h}");
    }
    assert!(d["hashes"]["pdq"].is_null() && d["hashes"]["pdq_error"].as_str().is_some());
    let factors = d["factors"].as_array().unwrap();
    assert!(!factors.is_empty());
    for f in factors {
        assert!(f["value"].is_number() && f["weight"].is_number() && f["note"].is_string(), "{f}");
    }
    let pages: Vec<&str> = d["pages"].as_array().unwrap().iter().map(|p| p["page_url"].as_str().unwrap()).collect();
    assert_eq!(pages, ["http://www.bad.test/1", "http://www.bad.test/2"]);
    assert_eq!(d["pages_total"], 2);
    assert_eq!(d["image_urls"], json!(["http://img.test/U.png"]));
    assert_eq!(d["images"][0]["ip"], "127.77.0.9");
    let hosts: Vec<&str> = d["hosts"].as_array().unwrap().iter().map(|h| h["host"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["img.test", "www.bad.test"]);
    assert!(d["claim"].is_null() && d["decisions"] == json!([]) && d["online"].is_null());
    let l1 = s.get(&format!("/api/cases/{}", s.case("L1")), &ann).await.json();
    assert_eq!(l1["match"], "exact");
    assert!(l1["reference_version"].as_str().is_some_and(|v| !v.is_empty()));
    assert_eq!(l1["reasons"][0]["factor"], "exact_match");
    let r = s.get("/api/cases/999999", &ann).await;
    assert_eq!(r.status, 404);
    let r = s.get("/api/cases/abc", &ann).await;
    assert_eq!((r.status, r.field()), (400, "id".into()));
}

#[tokio::test]
async fn one_analyst_holds_a_case_until_release_or_expiry() {
    let s = Server::start().await;
    let (ann, bob) = (s.token("ann").await, s.token("bob").await);
    let id = s.case("L1");
    let r = s.post_json(&format!("/api/cases/{id}/claim"), &ann, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["claim"]["user"], "ann");
    let r = s.post_json(&format!("/api/cases/{id}/claim"), &bob, json!({})).await;
    assert_eq!(r.status, 409);
    assert!(r.text.contains("ann"), "{}", r.text);
    // Bob can neither decide nor release what Ann holds.
    let r = s.post_json(&format!("/api/cases/{id}/decision"), &bob, json!({"status": "confirmed"})).await;
    assert_eq!(r.status, 409);
    assert_eq!(s.post_json(&format!("/api/cases/{id}/release"), &bob, json!({})).await.status, 409);
    // The queue shows the claim; `claim=free` hides it.
    let q = s.get("/api/cases?claim=free", &bob).await.json();
    assert!(q["cases"].as_array().unwrap().iter().all(|c| c["id"] != id));
    let q = s.get("/api/cases?claim=mine", &ann).await.json();
    assert_eq!(q["cases"][0]["id"], id);
    // The lease runs out after 15 minutes and the case is free again.
    s.advance(Duration::from_secs(15 * 60));
    let r = s.post_json(&format!("/api/cases/{id}/decision"), &ann, json!({"status": "confirmed"})).await;
    assert_eq!(r.status, 409, "an expired lease decides nothing");
    let r = s.post_json(&format!("/api/cases/{id}/claim"), &bob, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.post_json(&format!("/api/cases/{id}/release"), &bob, json!({})).await.status, 200);
    assert_eq!(s.post_json(&format!("/api/cases/{id}/claim"), &ann, json!({})).await.status, 200);
    assert_eq!(s.post_json("/api/cases/999999/claim", &ann, json!({})).await.status, 404);
    let r = s.post_json("/api/cases/x/claim", &ann, json!({})).await;
    assert_eq!((r.status, r.field()), (400, "id".into()));
    assert_eq!(s.post_json(&format!("/api/cases/{id}/steal"), &ann, json!({})).await.status, 404);
}

#[tokio::test]
async fn a_configured_lease_is_used() {
    let s = Server::start_with(|c| c.lease = Duration::from_secs(60)).await;
    let (ann, bob) = (s.token("ann").await, s.token("bob").await);
    let id = s.case("L2");
    assert_eq!(s.post_json(&format!("/api/cases/{id}/claim"), &ann, json!({})).await.status, 200);
    s.advance(Duration::from_secs(59));
    assert_eq!(s.post_json(&format!("/api/cases/{id}/claim"), &bob, json!({})).await.status, 409);
    s.advance(Duration::from_secs(1));
    assert_eq!(s.post_json(&format!("/api/cases/{id}/claim"), &bob, json!({})).await.status, 200);
}

#[tokio::test]
async fn of_many_simultaneous_claims_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("hashscan.db")).unwrap());
    let s = Server::start_on(store, true, |_| {}).await;
    let hash = hashscan_review::hash_password(PASSWORD).unwrap();
    let mut tokens = Vec::new();
    for k in 0..24 {
        let name = format!("analyst{k}");
        s.store.add_user(&name, "analyst", &hash, Default::default(), 0).await.unwrap();
        tokens.push(s.token(&name).await);
    }
    let id = s.case("U");
    let barrier = Arc::new(tokio::sync::Barrier::new(tokens.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for t in tokens {
        let (http, url, barrier) = (s.http.clone(), format!("{}/api/cases/{id}/claim", s.base), barrier.clone());
        let Auth::Token(t) = t else { unreachable!() };
        tasks.spawn(async move {
            barrier.wait().await;
            http.post(url).header("Authorization", format!("Bearer {t}")).send().await.map(|r| r.status().as_u16())
        });
    }
    let mut statuses = Vec::new();
    while let Some(r) = tasks.join_next().await {
        statuses.push(r.unwrap().unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), statuses.len() - 1, "{statuses:?}");
    let lea = s.token("lea").await;
    let log = s.get(&format!("/api/audit?case={id}"), &lea).await.json();
    let claims = log["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "claim").count();
    assert_eq!(claims, 1);
}

#[tokio::test]
async fn a_decision_is_audited_and_raises_the_images_around_it() {
    let s = Server::start().await;
    let ann = s.login("ann").await;
    let id = s.case("U");
    let before = s.score("N2").await;
    assert_eq!(s.post_json(&format!("/api/cases/{id}/claim"), &ann, json!({})).await.status, 200);
    let r = s
        .post_json(
            &format!("/api/cases/{id}/decision"),
            &ann,
            json!({"status": "confirmed", "note": "seen on two bad pages"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = r.json();
    assert_eq!((d["before"].as_str(), d["after"].as_str()), (Some("open"), Some("confirmed")));
    assert!(d["rescored"].as_u64().unwrap() > 1, "{d}");
    let after = s.score("N2").await;
    assert!(after > before, "the neighbour N2 rises: {before} → {after}");
    assert_eq!(s.score("U").await, 1.0);
    // The audit log has who, what, before and after.
    let lea = s.token("lea").await;
    let log = s.get(&format!("/api/audit?case={id}"), &lea).await.json();
    let e = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "decision")
        .expect("decision audited")
        .clone();
    assert_eq!(e["actor"], "ann");
    assert_eq!(e["before"], json!({"status": "open"}));
    assert_eq!(e["after"], json!({"status": "confirmed"}));
    assert_eq!(e["detail"], "seen on two bad pages");
    assert_eq!(e["client_ip"], "127.0.0.1");
    let c = s.get(&format!("/api/cases/{id}"), &ann).await.json();
    assert_eq!(c["status"], "confirmed");
    assert_eq!(c["decisions"][0]["actor"], "ann");
    assert_eq!(c["decisions"][0]["note"], "seen on two bad pages");
    // Undo within the lease restores the status and lowers N2 again.
    let r = s.post_json(&format!("/api/cases/{id}/undo"), &ann, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["after"], "open");
    assert!(s.score("N2").await < after);
    let c = s.get(&format!("/api/cases/{id}"), &ann).await.json();
    assert_eq!(c["status"], "open");
    assert!(c["decisions"][0]["undone_at"].is_string());
    assert_eq!(s.post_json(&format!("/api/cases/{id}/undo"), &ann, json!({})).await.status, 409, "nothing left");
    let log = s.get(&format!("/api/audit?case={id}"), &lea).await.json();
    let undo = log["entries"].as_array().unwrap().iter().find(|e| e["action"] == "undo").expect("undo audited").clone();
    assert_eq!(
        (undo["before"].clone(), undo["after"].clone()),
        (json!({"status": "confirmed"}), json!({"status": "open"}))
    );
    // After the lease, a decision cannot be undone.
    let r = s.post_json(&format!("/api/cases/{id}/decision"), &ann, json!({"status": "escalate"})).await;
    assert_eq!(r.status, 200);
    s.advance(Duration::from_secs(16 * 60));
    assert_eq!(s.post_json(&format!("/api/cases/{id}/undo"), &ann, json!({})).await.status, 409);
}

#[tokio::test]
async fn decisions_need_a_valid_status_and_note() {
    let s = Server::start().await;
    let ann = s.token("ann").await;
    let id = s.case("L3");
    let r = s.post_json(&format!("/api/cases/{id}/decision"), &ann, json!({"status": "confirmed"})).await;
    assert_eq!(r.status, 409, "unclaimed");
    assert_eq!(s.post_json(&format!("/api/cases/{id}/claim"), &ann, json!({})).await.status, 200);
    for (body, field) in [
        (json!({"status": "open"}), "status"),
        (json!({}), "status"),
        (json!({"status": 1}), "status"),
        (json!({"status": "confirmed", "note": "x".repeat(4_001)}), "note"),
        (json!({"status": "confirmed", "why": "x"}), "why"),
        (json!(["confirmed"]), "body"),
    ] {
        let r = s.post_json(&format!("/api/cases/{id}/decision"), &ann, body.clone()).await;
        assert_eq!((r.status, r.field()), (400, field.to_string()), "{body}: {}", r.text);
    }
    let r = s.http.post(format!("{}/api/cases/{id}/decision", s.base)).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 401, "anonymous first");
}

#[tokio::test]
async fn state_changes_by_cookie_need_the_csrf_token() {
    let s = Server::start().await;
    let ann = s.login("ann").await;
    let id = s.case("L1");
    let r = s.post_json_no_csrf(&format!("/api/cases/{id}/claim"), &ann, json!({})).await;
    assert_eq!((r.status, r.field()), (403, "csrf".into()));
    let Auth::Session { cookie, .. } = &ann else { unreachable!() };
    let forged = Auth::Session { cookie: cookie.clone(), csrf: "0".repeat(64) };
    assert_eq!(s.post_json(&format!("/api/cases/{id}/claim"), &forged, json!({})).await.status, 403);
    assert_eq!(s.post_json(&format!("/api/cases/{id}/claim"), &ann, json!({})).await.status, 200);
    // An API token needs none: a browser never sends it by itself.
    let bob = s.token("bob").await;
    assert_eq!(s.post_json_no_csrf(&format!("/api/cases/{}/claim", s.case("L2")), &bob, json!({})).await.status, 200);
    // Reading needs none either.
    assert_eq!(s.get("/api/cases", &ann).await.status, 200);
}

#[tokio::test]
async fn leads_decide_a_host_in_bulk_and_analysts_may_not() {
    let s = Server::start().await;
    let (ann, lea) = (s.token("ann").await, s.login("lea").await);
    let r = s.post_json("/api/hosts/www.bad.test/decision", &ann, json!({"status": "escalate"})).await;
    assert_eq!(r.status, 403);
    // A case an analyst holds is left alone.
    let held = s.case("L1");
    assert_eq!(s.post_json(&format!("/api/cases/{held}/claim"), &ann, json!({})).await.status, 200);
    let r = s.post_json_no_csrf("/api/hosts/www.bad.test/decision", &lea, json!({"status": "escalate"})).await;
    assert_eq!(r.status, 403, "cookie without CSRF");
    for (path, body, field) in [
        ("/api/hosts/www.bad.test/decision", json!({"status": "open"}), "status"),
        ("/api/hosts/bad%20host/decision", json!({"status": "escalate"}), "host"),
        ("/api/hosts/www.bad.test/decision", json!({"status": "escalate", "x": "y"}), "x"),
    ] {
        let r = s.post_json(path, &lea, body).await;
        assert_eq!((r.status, r.field()), (400, field.to_string()), "{path}: {}", r.text);
    }
    let r = s
        .post_json("/api/hosts/WWW.BAD.TEST/decision", &lea, json!({"status": "escalate", "note": "whole site"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    let decided: Vec<i64> =
        body["decided"].as_array().unwrap().iter().map(|d| d["case_id"].as_i64().unwrap()).collect();
    assert_eq!(decided.len(), 4, "{body}");
    assert!(!decided.contains(&held));
    assert_eq!(body["more"], false);
    let q = s.get("/api/cases?status=escalate", &ann).await.json();
    assert_eq!(q["cases"].as_array().unwrap().len(), 4);
    let log = s.get("/api/audit?actor=lea", &lea).await.json();
    let actions: Vec<&str> = log["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "bulk_decision_case").count(), 4, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == "bulk_decision").count(), 1, "{actions:?}");
    // Nothing open is left there but the held case.
    let r = s.post_json("/api/hosts/www.bad.test/decision", &lea, json!({"status": "escalate"})).await;
    assert_eq!(r.json()["decided"], json!([]));
}

#[tokio::test]
async fn the_audit_log_is_for_leads_and_exports_as_csv_and_json_lines() {
    let s = Server::start().await;
    let (ann, lea, adm) = (s.token("ann").await, s.token("lea").await, s.token("adm").await);
    let id = s.case("L1");
    s.post_json(&format!("/api/cases/{id}/claim"), &ann, json!({})).await;
    s.post_json(
        &format!("/api/cases/{id}/decision"),
        &ann,
        json!({"status": "not_abuse", "note": "=cmd|' /C calc'!A0"}),
    )
    .await;
    for path in ["/api/audit", "/api/audit/export?format=csv"] {
        assert_eq!(s.get(path, &ann).await.status, 403, "{path}");
    }
    let r = s.get("/api/audit?actor=ann&limit=1", &adm).await;
    assert_eq!(r.status, 200);
    let page = r.json();
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    assert_eq!(page["entries"][0]["action"], "decision", "newest first");
    let next = page["next"].as_str().expect("a next cursor").to_string();
    let older = s.get(&format!("/api/audit?actor=ann&limit=1&after={next}"), &adm).await.json();
    assert_eq!(older["entries"][0]["action"], "claim");
    for (q, field) in [("limit=0", "limit"), ("case=x", "case"), ("after=-1", "after"), ("who=ann", "who")] {
        let r = s.get(&format!("/api/audit?{q}"), &lea).await;
        assert_eq!((r.status, r.field()), (400, field.to_string()), "{q}");
    }
    let csv = s.get("/api/audit/export?format=csv", &lea).await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").starts_with("text/csv"));
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines[0], "id,at,actor,action,case_id,before,after,detail,client_ip");
    assert!(lines.iter().any(|l| l.contains(",decision,")), "{}", csv.text);
    assert!(csv.text.contains("'=cmd"), "a formula is defused: {}", csv.text);
    let jsonl = s.get(&format!("/api/audit/export?format=jsonl&case={id}"), &lea).await;
    assert_eq!(jsonl.status, 200);
    let rows: Vec<serde_json::Value> = jsonl.text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert!(rows[0]["id"].as_i64() < rows[1]["id"].as_i64(), "oldest first");
    let r = s.get("/api/audit/export?format=xml", &lea).await;
    assert_eq!((r.status, r.field()), (400, "format".into()));
    // The exports themselves are in the log.
    let log = s.get("/api/audit?actor=lea", &lea).await.json();
    assert_eq!(log["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "export").count(), 2);
}

#[tokio::test]
async fn audit_rows_cannot_be_updated_or_deleted_even_by_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hashscan.db");
    let s = Server::start_on(Arc::new(SqliteStore::open(&path).unwrap()), true, |_| {}).await;
    let ann = s.token("ann").await;
    assert_eq!(s.post_json(&format!("/api/cases/{}/claim", s.case("L1")), &ann, json!({})).await.status, 200);
    let c = rusqlite::Connection::open(&path).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let n: i64 = c.query_row("SELECT count(*) FROM audit", [], |r| r.get(0)).unwrap();
    assert!(n >= 1);
    let e = c.execute("UPDATE audit SET actor = 'mallory'", []).unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    let e = c.execute("DELETE FROM audit", []).unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    let after: i64 = c.query_row("SELECT count(*) FROM audit WHERE actor != 'mallory'", [], |r| r.get(0)).unwrap();
    assert_eq!(after, n);
}

#[tokio::test]
async fn the_service_refuses_to_start_without_users() {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = hashscan_review::serve(listener, store, Default::default(), async {}).await.unwrap_err();
    assert!(err.to_string().contains("hashscan user add"), "{err}");
}
