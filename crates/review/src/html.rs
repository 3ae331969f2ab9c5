//! The web UI: server-rendered HTML with `maud`, which escapes every
//! spliced value; no script, no external asset, inline CSS only, and never
//! an image: URLs are text, and a source URL becomes a link only on a page
//! that warns first.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use hashscan_store::review::{AuditEntry, CaseDetail, QueueRow, DECISIONS};
use hashscan_store::{Reason, CASE_STATUSES};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::auth::{
    clear_cookie, cookie, random_token, same, set_cookie, set_login_cookie, Caller, ClientIp, LOGIN_COOKIE,
};
use crate::error::ApiError;
use crate::params::{self, case_id, decision, encode_cursor, pairs, QUEUE_PARAMS};
use crate::App;

const CSS: &str = "
body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}
header{background:#233;color:#fff;padding:.5em 1em;display:flex;gap:1em;align-items:center}
header a{color:#fff}header form{margin-left:auto}
main{padding:1em;max-width:80em}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top;font-size:.9em}
th{background:#eee}
.url,.hash{font-family:ui-monospace,monospace;word-break:break-all}
.warn{background:#fff3cd;border:2px solid #b58100;padding:1em}
.err{background:#fde2e2;border:1px solid #b00;padding:.5em 1em}
form.filters{display:flex;flex-wrap:wrap;gap:.5em;margin-bottom:1em}
form.filters label{display:flex;flex-direction:column;font-size:.8em}
.actions{display:flex;flex-wrap:wrap;gap:1em;margin:1em 0}
.actions form{background:#fff;border:1px solid #ccc;padding:.5em}
textarea{width:30em;height:5em}
svg.chart{background:#fff;border:1px solid #ccc}
svg .open{fill:#9bb7d4}svg .confirmed{fill:#a33}
";

/// An HTML answer.
pub(crate) fn page(status: StatusCode, m: Markup) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], m.into_string()).into_response()
}

pub(crate) fn layout(title: &str, caller: Option<&Caller>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="referrer" content="no-referrer";
                title { (title) " · hashscan review" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    strong { "hashscan review" }
                    @if let Some(c) = caller {
                        a href="/" { "Queue" }
                        @if c.is_lead() { a href="/audit" { "Audit log" } }
                        a href="/hotspots" { "Hotspots" }
                        @if c.is_lead() { a href="/export" { "Export" } }
                        span { (c.user.name) " (" (c.user.role) ")" }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(c.csrf());
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (content) }
            }
        }
    }
}

/// An error as a page; 401 sends the browser to the login page.
pub(crate) fn error_page(caller: Option<&Caller>, e: &ApiError) -> Response {
    if e.status == StatusCode::UNAUTHORIZED {
        return Redirect::to("/login").into_response();
    }
    let body = layout(
        "Error",
        caller,
        html! {
            h1 { "Error " (e.status.as_u16()) }
            p.err {
                (e.message)
                @if let Some(f) = &e.field { " (field " code { (f) } ")" }
            }
            p { a href="/" { "Back to the queue" } }
        },
    );
    page(e.status, body)
}

/// Who is asking, for a page: no session sends the browser to log in.
pub(crate) async fn caller_or_login(app: &App, headers: &HeaderMap, ip: &ClientIp) -> Result<Caller, Response> {
    match app.caller(headers, ip).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(Redirect::to("/login").into_response()),
        Err(e) => Err(error_page(None, &e)),
    }
}

fn login_markup(message: Option<&str>, csrf: &str) -> Markup {
    layout(
        "Log in",
        None,
        html! {
            h1 { "Log in" }
            @if let Some(m) = message { p.err { (m) } }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                p { label { "User name " input type="text" name="name" autocomplete="username" required; } }
                p { label { "Password " input type="password" name="password" autocomplete="current-password" required; } }
                p { button type="submit" { "Log in" } }
            }
        },
    )
}

/// The login form with a fresh token, and the cookie that carries it.
fn login_page_with(status: StatusCode, message: Option<&str>) -> Response {
    let token = random_token();
    let mut res = page(status, login_markup(message, &token));
    if let Ok(v) = HeaderValue::from_str(&set_login_cookie(&token)) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

/// `GET /login`.
pub(crate) async fn login_page(State(app): State<App>, ip: ClientIp, headers: HeaderMap) -> Response {
    if let Ok(Some(_)) = app.caller(&headers, &ip).await {
        return Redirect::to("/").into_response();
    }
    login_page_with(StatusCode::OK, None)
}

/// `POST /login` (form): a session cookie and the queue, or the form again.
/// The form's `csrf` field must match the cookie its page set.
pub(crate) async fn login_form(State(app): State<App>, ip: ClientIp, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let m = pairs(&body, &["name", "password", "csrf"])?;
        let sent = m.get("csrf").map(String::as_str).unwrap_or_default();
        match cookie(&headers, LOGIN_COOKIE) {
            Some(c) if !sent.is_empty() && same(&c, sent) => {}
            _ => {
                return Err(ApiError {
                    field: Some("csrf".into()),
                    ..ApiError::forbidden(
                        "the login form has expired or came from another site: log in again from this page",
                    )
                })
            }
        }
        let name = m.get("name").map(String::as_str).unwrap_or_default();
        let password = m.get("password").map(String::as_str).unwrap_or_default();
        app.login(name, password, &ip).await
    }
    .await;
    match result {
        Ok((_, token, _)) => {
            let mut res = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&set_cookie(&token)) {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
            res
        }
        Err(e) => {
            let mut res = login_page_with(e.status, Some(&e.message));
            if let Some(secs) = e.retry_after {
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            res
        }
    }
}

/// `POST /logout` (form with `csrf`).
pub(crate) async fn logout_form(State(app): State<App>, ip: ClientIp, headers: HeaderMap, body: Bytes) -> Response {
    let caller = match caller_or_login(&app, &headers, &ip).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let result = async {
        let m = pairs(&body, &["csrf"])?;
        caller.check_csrf(m.get("csrf").map(String::as_str))?;
        app.logout(&caller).await
    }
    .await;
    match result {
        Ok(()) => {
            let mut res = Redirect::to("/login").into_response();
            if let Ok(v) = HeaderValue::from_str(&clear_cookie()) {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
            res
        }
        Err(e) => error_page(Some(&caller), &e),
    }
}

pub(crate) fn select(name: &str, current: Option<&str>, options: &[&str]) -> Markup {
    html! {
        select name=(name) {
            option value="" selected[current.is_none()] { "(any)" }
            @for o in options { option value=(o) selected[current == Some(*o)] { (o) } }
        }
    }
}

fn score(x: f64) -> String {
    format!("{x:.3}")
}

/// `GET /`: the queue with its filter form and a link to the next page.
pub(crate) async fn queue_page(State(app): State<App>, ip: ClientIp, headers: HeaderMap, uri: Uri) -> Response {
    let caller = match caller_or_login(&app, &headers, &ip).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let raw = uri.query().unwrap_or_default();
    let result = async {
        let f = params::queue_filter(raw.as_bytes(), caller.user.id, app.now())?;
        let limit = f.limit;
        let rows = app.queue(f).await?;
        Ok::<_, ApiError>((rows, limit))
    }
    .await;
    let (rows, limit) = match result {
        Ok(x) => x,
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            let m = pairs(raw.as_bytes(), &QUEUE_PARAMS).unwrap_or_default();
            let body = layout(
                "Queue",
                Some(&caller),
                html! { (filter_form(&m)) p.err { (e.message) " (field " code { (e.field.clone().unwrap_or_default()) } ")" } },
            );
            return page(StatusCode::BAD_REQUEST, body);
        }
        Err(e) => return error_page(Some(&caller), &e),
    };
    let m = pairs(raw.as_bytes(), &QUEUE_PARAMS).unwrap_or_default();
    let next = (rows.len() == limit).then(|| rows.last().map(|r| encode_cursor(&r.cursor()))).flatten().map(|cursor| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in m.iter().filter(|(k, _)| k.as_str() != "after") {
            s.append_pair(k, v);
        }
        s.append_pair("after", &cursor);
        format!("/?{}", s.finish())
    });
    let body = layout(
        "Queue",
        Some(&caller),
        html! {
            h1 { "Queue" }
            (filter_form(&m))
            @if rows.is_empty() { p { "No cases match." } } @else { (queue_table(&rows)) }
            @if let Some(n) = next { p { a href=(n) { "Next page →" } } }
        },
    );
    page(StatusCode::OK, body)
}

fn filter_form(m: &std::collections::BTreeMap<String, String>) -> Markup {
    let v = |k: &str| m.get(k).cloned().unwrap_or_default();
    html! {
        form.filters method="get" action="/" {
            label { "status" (select("status", m.get("status").map(String::as_str), &CASE_STATUSES)) }
            label { "match" (select("match", m.get("match").map(String::as_str), &["exact", "near", "none"])) }
            label { "claim" (select("claim", m.get("claim").map(String::as_str), &["free", "mine"])) }
            label { "scan" input type="text" name="scan" value=(v("scan")); }
            label { "host" input type="text" name="host" value=(v("host")); }
            label { "domain" input type="text" name="domain" value=(v("domain")); }
            label { "min score" input type="text" name="min_score" size="5" value=(v("min_score")); }
            label { "max score" input type="text" name="max_score" size="5" value=(v("max_score")); }
            label { "first seen since (RFC 3339)" input type="text" name="since" value=(v("since")); }
            label { "until" input type="text" name="until" value=(v("until")); }
            label { "per page" input type="text" name="limit" size="4" value=(v("limit")); }
            button type="submit" { "Filter" }
        }
    }
}

fn queue_table(rows: &[QueueRow]) -> Markup {
    html! {
        table {
            thead { tr {
                th { "case" } th { "score" } th { "now" } th { "match" } th { "image URL (text only)" }
                th { "host" } th { "first seen" } th { "scan" } th { "status" } th { "claim" } th { "online" }
            } }
            tbody {
                @for r in rows {
                    tr {
                        td { a href={ "/cases/" (r.id) } { "#" (r.id) } }
                        td { (score(r.score)) }
                        td { (score(r.current_score)) }
                        td { (format!("{:?}", r.match_kind).to_lowercase()) }
                        td.url { (r.image_url) }
                        td { (r.host) }
                        td { (r.first_seen) }
                        td { (r.scan) }
                        td { (r.status) }
                        td { @if let Some(c) = &r.claim { (c.user) } }
                        td { (online(r.online, r.offline_since.as_deref())) }
                    }
                }
            }
        }
    }
}

fn online(online: Option<bool>, offline_since: Option<&str>) -> String {
    match (online, offline_since) {
        (None, _) => "not checked".into(),
        (Some(true), _) => "online".into(),
        (Some(false), Some(t)) => format!("offline since {t}"),
        (Some(false), None) => "offline".into(),
    }
}

fn reasons_table(title: &str, rs: &[Reason]) -> Markup {
    html! {
        h3 { (title) }
        @if rs.is_empty() { p { "none" } } @else {
            table {
                thead { tr { th { "factor" } th { "value" } th { "weight" } th { "note" } } }
                tbody { @for r in rs { tr { td { (r.factor) } td { (score(r.value)) } td { (score(r.weight)) } td { (r.note) } } } }
            }
        }
    }
}

pub(crate) fn ms_rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

fn case_markup(d: &CaseDetail, caller: &Caller, now_ms: i64) -> Markup {
    let mine = d.claim.as_ref().is_some_and(|c| c.user_id == caller.user.id);
    let csrf = caller.csrf();
    html! {
        h1 { "Case #" (d.id) " — " (d.status) }
        p { a href={ "/cases/" (d.id) "/source" } { "Open source URL…" } " (shows a warning first; no image is shown here)" }
        table {
            tr { th { "score (case)" } td { (score(d.score)) } }
            tr { th { "score now" } td { (score(d.current_score)) } }
            tr { th { "match" } td { (format!("{:?}", d.match_kind).to_lowercase()) @if let Some(a) = &d.match_algo { " (" (a) @if let Some(x) = d.distance { ", distance " (x) } ")" } } }
            tr { th { "reference version" } td.hash { (d.reference_version.clone().unwrap_or_default()) } }
            tr { th { "scan" } td { (d.scan) @if d.robots_ignored { " (robots.txt ignored by this scan)" } } }
            tr { th { "first / last seen" } td { (d.first_seen) " / " (d.last_seen) } }
            tr { th { "case opened / changed" } td { (d.opened_at) " / " (d.updated_at) } }
            tr { th { "online" } td { (online(d.online, d.offline_since.as_deref())) @if let Some(t) = &d.last_checked { " (last checked " (t) ")" } } }
            tr { th { "claim" } td {
                @if let Some(c) = &d.claim { (c.user) " until " (ms_rfc3339(c.expires_at_ms)) } @else { "nobody" }
            } }
        }
        div.actions {
            @if d.claim.is_none() || mine {
                form method="post" action={ "/cases/" (d.id) "/claim" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { @if mine { "Renew claim" } @else { "Claim" } }
                }
            }
            @if mine {
                form method="post" action={ "/cases/" (d.id) "/release" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Release" }
                }
                form method="post" action={ "/cases/" (d.id) "/decision" } {
                    input type="hidden" name="csrf" value=(csrf);
                    p { @for s in DECISIONS { label { input type="radio" name="status" value=(s) required; " " (s) } " " } }
                    p { label { "Note" br; textarea name="note" maxlength="4000" {} } }
                    button type="submit" { "Decide" }
                }
                form method="post" action={ "/cases/" (d.id) "/undo" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Undo my last decision" }
                }
            }
        }
        @if d.claim.as_ref().is_some_and(|c| c.expires_at_ms <= now_ms) { p.err { "Your lease ran out." } }
        (reasons_table("Score factors (circumstances)", &d.factors))
        (reasons_table("Reference set", &d.reasons))
        h3 { "Hashes" }
        table {
            tr { th { "MD5" } td.hash { (d.hashes.md5) } }
            tr { th { "SHA-1" } td.hash { (d.hashes.sha1) } }
            tr { th { "SHA-256" } td.hash { (d.hashes.sha256) } }
            tr { th { "BLAKE3" } td.hash { (d.hashes.blake3) } }
            tr { th { "PDQ" } td.hash { (d.hashes.pdq.clone().unwrap_or_else(|| d.hashes.pdq_error.clone().unwrap_or_default())) } }
            tr { th { "PDQ quality" } td { (d.hashes.pdq_quality.map(|q| q.to_string()).unwrap_or_default()) } }
            tr { th { "size" } td { (d.hashes.bytes) " bytes" @if let (Some(w), Some(h)) = (d.hashes.width, d.hashes.height) { ", " (w) "×" (h) } } }
        }
        h3 { "Image URLs (" (d.images_total) " fetches)" }
        table {
            thead { tr { th { "image URL (text only)" } th { "host" } th { "address" } th { "scan" } th { "fetched" } } }
            tbody { @for i in &d.images { tr { td.url { (i.image_url) } td { (i.host) } td { (i.ip.clone().unwrap_or_default()) } td { (i.scan) } td { (i.fetched_at) } } } }
        }
        h3 { "Pages (" (d.pages_total) ")" }
        table {
            thead { tr { th { "page URL" } th { "host" } th { "image URL" } th { "scan" } th { "seen" } } }
            tbody { @for p in &d.pages { tr { td.url { (p.page_url) } td { (p.host) } td.url { (p.image_url) } td { (p.scan) } td { (p.seen_at) } } } }
        }
        h3 { "Hosts" }
        table {
            thead { tr { th { "host" } th { "role" } th { "sightings" } th { "first" } th { "last" } } }
            tbody { @for h in &d.hosts { tr { td { (h.host) } td { (h.role) } td { (h.sightings) } td { (h.first_seen) } td { (h.last_seen) } } } }
        }
        h3 { "Decisions" }
        @if d.decisions.is_empty() { p { "none yet" } } @else {
            table {
                thead { tr { th { "when" } th { "who" } th { "before" } th { "after" } th { "note" } th { "undone" } } }
                tbody { @for x in &d.decisions { tr {
                    td { (x.at) } td { (x.actor) } td { (x.before) } td { (x.after) } td { (x.note) } td { (x.undone_at.clone().unwrap_or_default()) }
                } } }
            }
        }
    }
}

async fn load_case(app: &App, caller: &Caller, id: &str) -> Result<CaseDetail, Response> {
    let id = case_id(id).map_err(|e| error_page(Some(caller), &e))?;
    match app.store().case_detail(id, app.now()).await {
        Ok(Some(d)) => Ok(d),
        Ok(None) => Err(error_page(Some(caller), &ApiError::not_found(format!("no case {id}")))),
        Err(e) => Err(error_page(Some(caller), &ApiError::from(e))),
    }
}

/// `GET /cases/{id}`.
pub(crate) async fn case_page(
    State(app): State<App>,
    ip: ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let caller = match caller_or_login(&app, &headers, &ip).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match load_case(&app, &caller, &id).await {
        Ok(d) => {
            page(StatusCode::OK, layout(&format!("Case #{}", d.id), Some(&caller), case_markup(&d, &caller, app.now())))
        }
        Err(r) => r,
    }
}

/// Only web URLs become links; anything else (`javascript:`, `data:`) stays text.
fn linkable(url: &str) -> bool {
    let l = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// `GET /cases/{id}/source`: a warning, then plain links to the image URLs.
/// Audited, since it is where an analyst may go on to see the material.
pub(crate) async fn source_page(
    State(app): State<App>,
    ip: ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let caller = match caller_or_login(&app, &headers, &ip).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let d = match load_case(&app, &caller, &id).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    if let Err(e) = app.audit(&caller.actor(), "source_page", Some(d.id), None).await {
        return error_page(Some(&caller), &e);
    }
    let body = layout(
        "Source URL",
        Some(&caller),
        html! {
            h1 { "Source URL of case #" (d.id) }
            div.warn {
                p { strong { "Warning: " } "the link below opens the original location of a suspected abuse image in your browser, outside this service. It may show illegal material." }
                p { "Open it only if your work requires it, on a workstation approved for it. hashscan does not fetch, show, proxy or cache the image; no referrer is sent." }
            }
            ul {
                @for u in &d.image_urls {
                    li.url {
                        @if linkable(u) { a href=(u) rel="noopener noreferrer" referrerpolicy="no-referrer" target="_blank" { (u) } }
                        @else { (u) " (not a web URL; not linked)" }
                    }
                }
            }
            p { a href={ "/cases/" (d.id) } { "← Back to the case" } }
        },
    );
    page(StatusCode::OK, body)
}

/// `POST /cases/{id}/claim|release|decision|undo` (form with `csrf`; a
/// decision also `status` and `note`): then back to the case page.
pub(crate) async fn case_form(
    State(app): State<App>,
    ip: ClientIp,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let caller = match caller_or_login(&app, &headers, &ip).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let result = async {
        if !matches!(action.as_str(), "claim" | "release" | "decision" | "undo") {
            return Err(ApiError::not_found("no such action"));
        }
        let m = pairs(&body, &["csrf", "status", "note"])?;
        caller.check_csrf(m.get("csrf").map(String::as_str))?;
        let id = case_id(&id)?;
        match action.as_str() {
            "claim" => app.claim(&caller, id).await.map(|_| ()),
            "release" => app.release(&caller, id).await,
            "decision" => {
                let d = decision(m.get("status").map(String::as_str), m.get("note").map(String::as_str))?;
                app.decide(&caller, id, &d).await.map(|_| ())
            }
            _ => app.undo(&caller, id).await.map(|_| ()),
        }?;
        Ok(id)
    }
    .await;
    match result {
        Ok(id) => Redirect::to(&format!("/cases/{id}")).into_response(),
        Err(e) => error_page(Some(&caller), &e),
    }
}

/// `GET /audit` (lead, admin): the log, newest first, with filters and export links.
pub(crate) async fn audit_page(State(app): State<App>, ip: ClientIp, headers: HeaderMap, uri: Uri) -> Response {
    let caller = match caller_or_login(&app, &headers, &ip).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(e) = caller.require(&["lead", "admin"]) {
        return error_page(Some(&caller), &e);
    }
    let raw = uri.query().unwrap_or_default();
    let result = async {
        let m = pairs(raw.as_bytes(), &["case", "actor", "limit", "after"])?;
        let mut f = hashscan_store::review::AuditFilter { limit: params::limit(&m)?, ..Default::default() };
        f.case_id = m.get("case").map(|v| case_id(v).map_err(|_| ApiError::field("case", "a case id"))).transpose()?;
        f.actor = m.get("actor").cloned();
        f.after_id = m
            .get("after")
            .map(|v| v.parse::<i64>().map_err(|_| ApiError::field("after", "a cursor from this log")))
            .transpose()?;
        let limit = f.limit;
        let rows = app.store().audit(f).await?;
        Ok::<_, ApiError>((m, rows, limit))
    }
    .await;
    let (m, rows, limit) = match result {
        Ok(x) => x,
        Err(e) => return error_page(Some(&caller), &e),
    };
    let next = (rows.len() == limit).then(|| rows.last().map(|r| r.id)).flatten().map(|after| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in m.iter().filter(|(k, _)| k.as_str() != "after") {
            s.append_pair(k, v);
        }
        s.append_pair("after", &after.to_string());
        format!("/audit?{}", s.finish())
    });
    let v = |k: &str| m.get(k).cloned().unwrap_or_default();
    let body = layout(
        "Audit log",
        Some(&caller),
        html! {
            h1 { "Audit log" }
            form.filters method="get" action="/audit" {
                label { "case" input type="text" name="case" size="8" value=(v("case")); }
                label { "actor" input type="text" name="actor" value=(v("actor")); }
                label { "per page" input type="text" name="limit" size="4" value=(v("limit")); }
                button type="submit" { "Filter" }
            }
            p { "Export: " a href="/api/audit/export?format=csv" { "CSV" } " · " a href="/api/audit/export?format=jsonl" { "JSON Lines" } }
            (audit_table(&rows))
            @if let Some(n) = next { p { a href=(n) { "Older entries →" } } }
        },
    );
    page(StatusCode::OK, body)
}

fn audit_table(rows: &[AuditEntry]) -> Markup {
    let js = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
    html! {
        table {
            thead { tr { th { "id" } th { "when" } th { "who" } th { "action" } th { "case" } th { "before" } th { "after" } th { "detail" } th { "address" } } }
            tbody { @for r in rows { tr {
                td { (r.id) } td { (r.at) } td { (r.actor) } td { (r.action) }
                td { @if let Some(c) = r.case_id { a href={ "/cases/" (c) } { "#" (c) } } }
                td.url { (js(&r.before)) } td.url { (js(&r.after)) } td { (r.detail.clone().unwrap_or_default()) }
                td { (r.client_ip.clone().unwrap_or_default()) }
            } } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_urls_are_linkable() {
        assert!(linkable("https://a.test/x.png") && linkable("HTTP://a.test/"));
        assert!(!linkable("javascript:alert(1)") && !linkable("data:image/png;base64,AA") && !linkable(""));
    }

    #[test]
    fn spliced_values_are_escaped() {
        let hostile = "http://x.test/<script>alert(1)</script>\"'&";
        let m = html! { td.url { (hostile) } a href=(hostile) { "x" } };
        let s = m.into_string();
        assert!(!s.contains("<script>"), "{s}");
        assert!(s.contains("&lt;script&gt;") && s.contains("&quot;") && s.contains("&amp;"), "{s}");
    }
}
