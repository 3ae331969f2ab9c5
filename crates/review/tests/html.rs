//! The web UI: forms with CSRF fields, escaped values, no image anywhere,
//! strict headers, and the source URL only behind a warning.

mod common;

use common::{cookie_of, Auth, Server, PASSWORD};

/// Logs in through the form, as a browser does; returns the session and
/// the CSRF token read from a page.
async fn browser_login(s: &Server, user: &str) -> Auth {
    let r = s.post_login_form(&[("name", user), ("password", PASSWORD)]).await;
    assert_eq!((r.status, r.header("location")), (303, "/".to_string()), "{}", r.text);
    let cookie = cookie_of(&r);
    let page = s.get("/", &Auth::Session { cookie: cookie.clone(), csrf: String::new() }).await;
    let csrf = csrf_of(&page.text);
    Auth::Session { cookie, csrf }
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap_or_default().to_string()
}

fn csrf(auth: &Auth) -> &str {
    match auth {
        Auth::Session { csrf, .. } => csrf,
        _ => "",
    }
}

fn assert_safe_page(r: &common::Reply) {
    assert!(r.header("content-type").starts_with("text/html"), "{}", r.header("content-type"));
    assert_eq!(
        r.header("content-security-policy"),
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    );
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    assert_eq!(r.header("referrer-policy"), "no-referrer");
    assert_eq!(r.header("cache-control"), "no-store");
    let lower = r.text.to_ascii_lowercase();
    assert!(!lower.contains("<img"), "an image tag in the page");
    assert!(!lower.contains("<script"), "a script in the page");
    assert!(!lower.contains("src="), "something loaded from somewhere");
}

#[tokio::test]
async fn the_login_page_logs_in_and_a_wrong_password_shows_the_form_again() {
    let s = Server::start().await;
    let r = s.get("/login", &Auth::None).await;
    assert_eq!(r.status, 200);
    assert_safe_page(&r);
    assert!(r.text.contains("name=\"password\""));
    let r = s.post_login_form(&[("name", "ann"), ("password", "not the password")]).await;
    assert_eq!(r.status, 401);
    assert!(r.text.contains("wrong user name or password"));
    let r = s.post_login_form(&[("name", "ann"), ("password", PASSWORD), ("admin", "1")]).await;
    assert_eq!(r.status, 400);
    // Login CSRF: a form posted from elsewhere has no token, or a token
    // without its cookie, or a cookie with another token: refused, with
    // the right password, before it is even checked.
    let r = s.post_form("/login", &Auth::None, &[("name", "ann"), ("password", PASSWORD)]).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("log in again from this page"), "{}", r.text);
    assert!(r.header("set-cookie").starts_with("hashscan_login="), "the form comes back with a fresh token");
    let r = s.post_form("/login", &Auth::None, &[("csrf", "guess"), ("name", "ann"), ("password", PASSWORD)]).await;
    assert_eq!(r.status, 403);
    let r = s
        .post_form_with_cookie(
            "/login",
            "hashscan_login=one",
            &[("csrf", "another"), ("name", "ann"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(!r.header("set-cookie").contains("hashscan_session="), "no session from a forged login");
    for _ in 0..5 {
        s.post_login_form(&[("name", "bob"), ("password", "not the password")]).await;
    }
    let r = s.post_login_form(&[("name", "bob"), ("password", PASSWORD)]).await;
    assert_eq!(r.status, 429);
    assert!(!r.header("retry-after").is_empty());
}

#[tokio::test]
async fn the_queue_page_lists_cases_with_filters_and_a_next_page_link() {
    let s = Server::start().await;
    let ann = browser_login(&s, "ann").await;
    let r = s.get("/", &ann).await;
    assert_eq!(r.status, 200);
    assert_safe_page(&r);
    assert!(r.text.contains("<form class=\"filters\" method=\"get\" action=\"/\">"), "{}", r.text);
    for name in ["L1", "L3", "U"] {
        assert!(r.text.contains(&format!("http://img.test/{name}.png")), "{name}");
    }
    assert!(r.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the hostile URL is escaped");
    let r = s.get("/?limit=2&match=exact", &ann).await;
    assert_eq!(r.status, 200);
    let at = r.text.find("href=\"/?").expect("a next-page link") + "href=\"".len();
    let next = r.text[at..].split('"').next().unwrap().replace("&amp;", "&");
    assert!(next.contains("match=exact") && next.contains("after="), "{next}");
    let r2 = s.get(&next, &ann).await;
    assert_eq!(r2.status, 200);
    assert_eq!(r2.text.matches("href=\"/cases/").count(), 1, "the third exact case");
    let r = s.get("/?min_score=7", &ann).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("min_score"));
    assert_safe_page(&r);
}

#[tokio::test]
async fn the_case_page_escapes_a_hostile_url_and_shows_no_image() {
    let s = Server::start().await;
    let ann = browser_login(&s, "ann").await;
    let id = s.case("L2");
    let r = s.get(&format!("/cases/{id}"), &ann).await;
    assert_eq!(r.status, 200);
    assert_safe_page(&r);
    assert!(r.text.contains("http://img.test/&lt;script&gt;alert(1)&lt;/script&gt;.png"), "{}", r.text);
    for what in ["exact_match", "MD5", "BLAKE3", "Score factors", "http://www.bad.test/1", "Decisions"] {
        assert!(r.text.contains(what), "{what}");
    }
    assert!(r.text.contains(&format!("action=\"/cases/{id}/claim\"")));
    assert!(!r.text.contains("<textarea"), "no decision form before a claim");
    assert!(r.text.contains(&format!("href=\"/cases/{id}/source\"")));
    // The source page warns, then links without a referrer.
    let r = s.get(&format!("/cases/{id}/source"), &ann).await;
    assert_eq!(r.status, 200);
    assert_safe_page(&r);
    assert!(r.text.contains("Warning"));
    assert!(r.text.contains("rel=\"noopener noreferrer\"") && r.text.contains("referrerpolicy=\"no-referrer\""));
    assert!(r.text.contains("href=\"http://img.test/&lt;script&gt;alert(1)&lt;/script&gt;.png\""), "{}", r.text);
    assert_eq!(s.get("/cases/999999", &ann).await.status, 404);
    assert_eq!(s.get("/cases/nope", &ann).await.status, 400);
}

#[tokio::test]
async fn forms_claim_decide_and_undo_with_the_csrf_field() {
    let s = Server::start().await;
    let ann = browser_login(&s, "ann").await;
    let id = s.case("U");
    let path = |a: &str| format!("/cases/{id}/{a}");
    let r = s.post_form(&path("claim"), &ann, &[]).await;
    assert_eq!(r.status, 403, "no CSRF field");
    let r = s.post_form(&path("claim"), &ann, &[("csrf", "forged")]).await;
    assert_eq!(r.status, 403);
    let r = s.post_form(&path("claim"), &ann, &[("csrf", csrf(&ann))]).await;
    assert_eq!((r.status, r.header("location")), (303, path("").trim_end_matches('/').to_string()));
    let page = s.get(&format!("/cases/{id}"), &ann).await;
    assert!(page.text.contains("<textarea"), "the decision form once claimed");
    assert_eq!(csrf_of(&page.text), csrf(&ann));
    let r = s.post_form(&path("decision"), &ann, &[("csrf", csrf(&ann)), ("status", "maybe")]).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("status"));
    let note = "<b>bold</b> claim";
    let r = s.post_form(&path("decision"), &ann, &[("csrf", csrf(&ann)), ("status", "escalate"), ("note", note)]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let page = s.get(&format!("/cases/{id}"), &ann).await;
    assert!(page.text.contains("Case #") && page.text.contains("escalate"));
    assert!(page.text.contains("&lt;b&gt;bold&lt;/b&gt; claim") && !page.text.contains("<b>bold"));
    let r = s.post_form(&path("undo"), &ann, &[("csrf", csrf(&ann))]).await;
    assert_eq!(r.status, 303);
    let r = s.post_form(&path("undo"), &ann, &[("csrf", csrf(&ann))]).await;
    assert_eq!(r.status, 409);
    let r = s.post_form(&path("release"), &ann, &[("csrf", csrf(&ann))]).await;
    assert_eq!(r.status, 303);
    let r = s.post_form(&format!("/cases/{id}/burn"), &ann, &[("csrf", csrf(&ann))]).await;
    assert_eq!(r.status, 404);
    // Log out with the form; the session is gone.
    let r = s.post_form("/logout", &ann, &[("csrf", csrf(&ann))]).await;
    assert_eq!((r.status, r.header("location")), (303, "/login".to_string()));
    assert_eq!(s.get("/", &ann).await.status, 303);
}

#[tokio::test]
async fn the_audit_page_is_for_leads() {
    let s = Server::start().await;
    let ann = browser_login(&s, "ann").await;
    let r = s.get("/audit", &ann).await;
    assert_eq!(r.status, 403);
    assert!(!s.get("/", &ann).await.text.contains("href=\"/audit\""), "no link for analysts");
    let lea = browser_login(&s, "lea").await;
    let r = s.get("/audit?actor=ann", &lea).await;
    assert_eq!(r.status, 200);
    assert_safe_page(&r);
    assert!(r.text.contains("login_ok"));
    assert!(r.text.contains("/api/audit/export?format=csv"));
    assert_eq!(s.get("/audit?limit=x", &lea).await.status, 400);
}
