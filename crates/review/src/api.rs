//! The JSON API under `/api`: login, the queue, the case, claims and
//! decisions, bulk decisions on a host, the audit log and its export.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use hashscan_store::review::{AuditEntry, AuditFilter};
use serde_json::json;

use crate::auth::{clear_cookie, set_cookie, Caller, ClientIp};
use crate::error::{json_response, ApiError};
use crate::params::{self, case_id, decision, encode_cursor, json_strings, pairs, MAX_LIMIT};
use crate::App;

type ApiResult = Result<Response, ApiError>;

fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token").and_then(|v| v.to_str().ok())
}

/// `POST /api/login` `{"name", "password"}`: starts a session (cookie) and
/// returns the CSRF token for the requests that follow.
/// Only `Content-Type: application/json` is accepted: a browser sends that
/// cross-site only after a CORS preflight, which this service never
/// grants, so another site cannot log a visitor in (login CSRF).
pub(crate) async fn login(State(app): State<App>, ip: ClientIp, headers: HeaderMap, body: Bytes) -> ApiResult {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ..ApiError::field("content-type", "send the login as Content-Type: application/json")
        });
    }
    let m = json_strings(&body, &["name", "password"])?;
    let name = m.get("name").map(String::as_str).unwrap_or_default();
    let password = m.get("password").map(String::as_str).unwrap_or_default();
    let (user, token, csrf) = app.login(name, password, &ip).await?;
    let mut res = json_response(StatusCode::OK, &json!({ "user": user.name, "role": user.role, "csrf": csrf }));
    if let Ok(v) = set_cookie(&token).parse() {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

/// `POST /api/logout`.
pub(crate) async fn logout(State(app): State<App>, ip: ClientIp, headers: HeaderMap) -> ApiResult {
    let caller = app.require_caller(&headers, &ip).await?;
    caller.check_csrf(csrf_header(&headers))?;
    app.logout(&caller).await?;
    let mut res = json_response(StatusCode::OK, &json!({ "logged_out": true }));
    if let Ok(v) = clear_cookie().parse() {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

/// `GET /api/me`: who the caller is, and the session's CSRF token.
pub(crate) async fn me(State(app): State<App>, ip: ClientIp, headers: HeaderMap) -> ApiResult {
    let c = app.require_caller(&headers, &ip).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "user": c.user.name, "role": c.user.role, "csrf": c.session.as_ref().map(|s| &s.0) }),
    ))
}

/// `GET /api/cases`: a page of the queue.
pub(crate) async fn queue(State(app): State<App>, ip: ClientIp, headers: HeaderMap, uri: Uri) -> ApiResult {
    let caller = app.require_caller(&headers, &ip).await?;
    let f = params::queue_filter(uri.query().unwrap_or_default().as_bytes(), caller.user.id, app.now())?;
    let limit = f.limit;
    let rows = app.queue(f).await?;
    let next = (rows.len() == limit).then(|| rows.last().map(|r| encode_cursor(&r.cursor()))).flatten();
    Ok(json_response(StatusCode::OK, &json!({ "cases": rows, "next": next })))
}

/// `GET /api/cases/{id}`: everything about a case.
pub(crate) async fn case(
    State(app): State<App>,
    ip: ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    app.require_caller(&headers, &ip).await?;
    let id = case_id(&id)?;
    match app.store().case_detail(id, app.now()).await? {
        Some(d) => Ok(json_response(StatusCode::OK, &d)),
        None => Err(ApiError::not_found(format!("no case {id}"))),
    }
}

/// `POST /api/cases/{id}/claim|release|decision|undo`.
pub(crate) async fn case_action(
    State(app): State<App>,
    ip: ClientIp,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let caller = app.require_caller(&headers, &ip).await?;
    if !matches!(action.as_str(), "claim" | "release" | "decision" | "undo") {
        return Err(ApiError::not_found("no such action (claim, release, decision, undo)"));
    }
    caller.check_csrf(csrf_header(&headers))?;
    let id = case_id(&id)?;
    match action.as_str() {
        "claim" => {
            let claim = app.claim(&caller, id).await?;
            Ok(json_response(StatusCode::OK, &json!({ "case_id": id, "claim": claim })))
        }
        "release" => {
            app.release(&caller, id).await?;
            Ok(json_response(StatusCode::OK, &json!({ "case_id": id, "claim": null })))
        }
        "decision" => {
            let m = json_strings(&body, &["status", "note"])?;
            let d = decision(m.get("status").map(String::as_str), m.get("note").map(String::as_str))?;
            Ok(json_response(StatusCode::OK, &app.decide(&caller, id, &d).await?))
        }
        _ => Ok(json_response(StatusCode::OK, &app.undo(&caller, id).await?)),
    }
}

/// `POST /api/hosts/{host}/decision` `{"status", "note"}` (lead, admin).
pub(crate) async fn host_decision(
    State(app): State<App>,
    ip: ClientIp,
    headers: HeaderMap,
    Path(host): Path<String>,
    body: Bytes,
) -> ApiResult {
    let caller = app.require_caller(&headers, &ip).await?;
    caller.require(&["lead", "admin"])?;
    caller.check_csrf(csrf_header(&headers))?;
    let host = params::host("host", &host)?;
    let m = json_strings(&body, &["status", "note"])?;
    let d = decision(m.get("status").map(String::as_str), m.get("note").map(String::as_str))?;
    let (done, more) = app.decide_host(&caller, &host, &d).await?;
    Ok(json_response(StatusCode::OK, &json!({ "host": host, "decided": done, "more": more })))
}

/// Audit filters from a query string.
fn audit_filter(
    raw: &str,
    extra: &[&str],
) -> Result<(AuditFilter, std::collections::BTreeMap<String, String>), ApiError> {
    let mut allowed = vec!["case", "actor", "limit", "after"];
    allowed.extend_from_slice(extra);
    let m = pairs(raw.as_bytes(), &allowed)?;
    let case_id = m.get("case").map(|v| case_id(v).map_err(|_| ApiError::field("case", "a case id"))).transpose()?;
    let actor = m.get("actor").cloned();
    if actor.as_ref().is_some_and(|a| a.len() > 100) {
        return Err(ApiError::field("actor", "a user name (at most 100 bytes)"));
    }
    let after_id = m
        .get("after")
        .map(|v| {
            v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| ApiError::field("after", "a cursor from this log"))
        })
        .transpose()?;
    Ok((AuditFilter { case_id, actor, after_id, limit: params::limit(&m)?, oldest_first: false }, m))
}

/// `GET /api/audit?case=&actor=&limit=&after=` (lead, admin): newest first.
pub(crate) async fn audit(State(app): State<App>, ip: ClientIp, headers: HeaderMap, uri: Uri) -> ApiResult {
    let caller = app.require_caller(&headers, &ip).await?;
    caller.require(&["lead", "admin"])?;
    let (f, _) = audit_filter(uri.query().unwrap_or_default(), &[])?;
    let limit = f.limit;
    let rows = app.store().audit(f).await?;
    let next = (rows.len() == limit).then(|| rows.last().map(|r| r.id.to_string())).flatten();
    Ok(json_response(StatusCode::OK, &json!({ "entries": rows, "next": next })))
}

/// Most audit rows one export holds; a larger log is exported in parts
/// with `case`/`actor` filters (or straight from the database).
const MAX_EXPORT: usize = 1_000_000;

/// `GET /api/audit/export?format=csv|jsonl[&case=&actor=]` (lead, admin):
/// the whole (filtered) log, oldest first. The export itself is audited.
pub(crate) async fn audit_export(State(app): State<App>, ip: ClientIp, headers: HeaderMap, uri: Uri) -> ApiResult {
    let caller = app.require_caller(&headers, &ip).await?;
    caller.require(&["lead", "admin"])?;
    let raw = uri.query().unwrap_or_default();
    let m = pairs(raw.as_bytes(), &["format", "case", "actor"])?;
    let format = match m.get("format").map(String::as_str) {
        None | Some("jsonl") => "jsonl",
        Some("csv") => "csv",
        Some(_) => return Err(ApiError::field("format", "csv or jsonl")),
    };
    let (mut f, _) = audit_filter(raw, &["format"])?;
    f.oldest_first = true;
    f.limit = MAX_LIMIT;
    let mut rows: Vec<AuditEntry> = Vec::new();
    for _ in 0..MAX_EXPORT.div_ceil(MAX_LIMIT) {
        let page = app.store().audit(f.clone()).await?;
        let Some(last) = page.last() else { break };
        f.after_id = Some(last.id);
        rows.extend(page);
    }
    app.audit(&caller.actor(), "export", None, Some(&format!("audit log as {format}, {} entries", rows.len()))).await?;
    let (body, ctype) = match format {
        "csv" => (audit_csv(&rows).map_err(ApiError::internal)?, "text/csv; charset=utf-8"),
        _ => (jsonl(&rows)?, "application/x-ndjson"),
    };
    let disposition = format!("attachment; filename=\"hashscan-audit.{format}\"");
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, ctype.to_string()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

/// A cell that a spreadsheet would run as a formula gets a leading `'`.
pub(crate) fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// The audit log as CSV.
pub(crate) fn audit_csv(rows: &[AuditEntry]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["id", "at", "actor", "action", "case_id", "before", "after", "detail", "client_ip"])?;
    for r in rows {
        let js = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
        w.write_record([
            r.id.to_string(),
            r.at.clone(),
            cell(&r.actor),
            cell(&r.action),
            r.case_id.map(|c| c.to_string()).unwrap_or_default(),
            js(&r.before),
            js(&r.after),
            cell(r.detail.as_deref().unwrap_or_default()),
            r.client_ip.clone().unwrap_or_default(),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Anything else: 401 (or the login page) before 404, so that nothing,
/// not even which paths exist, is told to an anonymous client.
pub(crate) async fn fallback(State(app): State<App>, ip: ClientIp, headers: HeaderMap, uri: Uri) -> Response {
    let api = uri.path().starts_with("/api");
    let caller: Option<Caller> = match app.caller(&headers, &ip).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match (caller, api) {
        (None, true) => ApiError::unauthorized().into_response(),
        (None, false) => Redirect::to("/login").into_response(),
        (Some(_), true) => ApiError::not_found("no such endpoint").into_response(),
        (Some(c), false) => crate::html::error_page(Some(&c), &ApiError::not_found("no such page")),
    }
}

/// Rows as JSON Lines (the audit and case exports).
pub(crate) fn jsonl<T: serde::Serialize>(rows: &[T]) -> Result<String, ApiError> {
    let mut out = String::new();
    for r in rows {
        out.push_str(&serde_json::to_string(r).map_err(ApiError::internal)?);
        out.push('\n');
    }
    Ok(out)
}
