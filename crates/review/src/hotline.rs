//! The hotline's output: notice-and-takedown exports of decided cases
//! (CSV, JSON Lines) and the hotspot view (open and confirmed cases per
//! host or registrable domain over time, a server-drawn SVG chart, and the
//! time to removal per host).

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hashscan_store::review::{ExportFilter, ExportRow, NewAudit, PlaceKind, DECISIONS};
use maud::{html, Markup};
use serde::Serialize;
use serde_json::json;

use crate::api::{cell, jsonl};
use crate::auth::{Caller, ClientIp};
use crate::error::{json_response, ApiError};
use crate::html::{caller_or_login, error_page, layout, ms_rfc3339, page, select};
use crate::params::{self, pairs};
use crate::App;

/// Most cases one export request returns; more are fetched with `after`.
pub(crate) const MAX_EXPORT_ROWS: usize = 100_000;
/// Cases read from the store per step of an export.
const EXPORT_STEP: usize = 1_000;
/// The parameters of `GET /api/export/cases`.
const EXPORT_PARAMS: [&str; 8] = ["status", "host", "domain", "since", "until", "format", "limit", "after"];
/// The statuses an export may ask for.
const EXPORT_STATUSES: [&str; 4] = ["confirmed", "not_abuse", "escalate", "any_decided"];

/// A checked export request.
#[derive(Debug, Clone)]
struct ExportQuery {
    status: String,
    format: &'static str,
    filter: ExportFilter,
    /// The parameters as given (for the audit entry and the next page).
    given: BTreeMap<String, String>,
}

fn export_query(raw: &str) -> Result<ExportQuery, ApiError> {
    let m = pairs(raw.as_bytes(), &EXPORT_PARAMS)?;
    let status = m.get("status").cloned().unwrap_or_else(|| "confirmed".into());
    let statuses = match status.as_str() {
        "any_decided" => DECISIONS.iter().map(|s| s.to_string()).collect(),
        s if DECISIONS.contains(&s) => vec![s.to_string()],
        _ => return Err(ApiError::field("status", format!("one of {}", EXPORT_STATUSES.join(", ")))),
    };
    let format = match m.get("format").map(String::as_str) {
        None | Some("csv") => "csv",
        Some("jsonl") => "jsonl",
        Some(_) => return Err(ApiError::field("format", "csv or jsonl")),
    };
    let (since_ms, until_ms) = (params::time(&m, "since")?, params::time(&m, "until")?);
    if let (Some(a), Some(b)) = (since_ms, until_ms) {
        if a >= b {
            return Err(ApiError::field("until", "must be after since"));
        }
    }
    let limit = match m.get("limit") {
        None => MAX_EXPORT_ROWS,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_EXPORT_ROWS).contains(&n) => n,
            _ => return Err(ApiError::field("limit", format!("a whole number from 1 to {MAX_EXPORT_ROWS}"))),
        },
    };
    let after_id = m
        .get("after")
        .map(|v| v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| ApiError::field("after", "a case id")))
        .transpose()?;
    let filter = ExportFilter {
        statuses,
        host: m.get("host").map(|v| params::host("host", v)).transpose()?,
        domain: m.get("domain").map(|v| params::host("domain", v)).transpose()?,
        since_ms,
        until_ms,
        after_id,
        limit,
    };
    Ok(ExportQuery { status, format, filter, given: m })
}

/// The columns of the CSV export; lists are joined by single spaces.
const EXPORT_COLUMNS: [&str; 21] = [
    "case_id",
    "status",
    "score",
    "image_urls",
    "page_urls",
    "host",
    "hosts",
    "ips",
    "first_seen",
    "last_seen",
    "md5",
    "sha1",
    "sha256",
    "blake3",
    "pdq",
    "analyst",
    "decided_at",
    "note",
    "online",
    "last_checked",
    "offline_since",
];

/// Decided cases as CSV; every text cell goes through [`cell`], so that a
/// spreadsheet runs nothing.
fn export_csv(rows: &[ExportRow]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(EXPORT_COLUMNS)?;
    let opt = |v: &Option<String>| cell(v.as_deref().unwrap_or_default());
    for r in rows {
        w.write_record([
            r.case_id.to_string(),
            cell(&r.status),
            format!("{:.4}", r.score),
            cell(&r.image_urls.join(" ")),
            cell(&r.page_urls.join(" ")),
            cell(&r.host),
            cell(&r.hosts.join(" ")),
            cell(&r.ips.join(" ")),
            r.first_seen.clone(),
            r.last_seen.clone(),
            r.md5.clone(),
            r.sha1.clone(),
            r.sha256.clone(),
            r.blake3.clone(),
            r.pdq.clone().unwrap_or_default(),
            opt(&r.analyst),
            r.decided_at.clone(),
            opt(&r.note),
            r.online.map(|o| o.to_string()).unwrap_or_default(),
            r.last_checked.clone().unwrap_or_default(),
            r.offline_since.clone().unwrap_or_default(),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `GET /api/export/cases?status=&host=&domain=&since=&until=&format=&limit=&after=`
/// (lead, admin): decided cases for notices and takedowns, by case id, at
/// most [`MAX_EXPORT_ROWS`] per request. When more are left, the headers
/// `X-Hashscan-Next` (and `Link: rel="next"`) give the request for the rest.
/// Every export is audited as `export` with its filters and row count.
pub(crate) async fn export_cases(
    State(app): State<App>,
    ip: ClientIp,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let caller = app.require_caller(&headers, &ip).await?;
    caller.require(&["lead", "admin"])?;
    let q = export_query(uri.query().unwrap_or_default())?;
    if q.filter.host.is_some() || q.filter.domain.is_some() {
        app.sync_places().await?;
    }
    let mut f = q.filter.clone();
    let mut rows: Vec<ExportRow> = Vec::new();
    while rows.len() < q.filter.limit {
        f.limit = EXPORT_STEP.min(q.filter.limit - rows.len());
        let part = app.store().export_cases(f.clone()).await?;
        let Some(last) = part.last() else { break };
        f.after_id = Some(last.case_id);
        let done = part.len() < f.limit;
        rows.extend(part);
        if done {
            break;
        }
    }
    // A full page may have more behind it.
    let next = (rows.len() == q.filter.limit).then(|| rows.last().map(|r| r.case_id)).flatten().map(|after| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in q.given.iter().filter(|(k, _)| k.as_str() != "after") {
            s.append_pair(k, v);
        }
        s.append_pair("after", &after.to_string());
        format!("/api/export/cases?{}", s.finish())
    });
    let filters: serde_json::Map<String, serde_json::Value> =
        q.given.iter().filter(|(k, _)| k.as_str() != "format").map(|(k, v)| (k.clone(), json!(v))).collect();
    app.store()
        .append_audit(NewAudit {
            actor: caller.actor(),
            action: "export".into(),
            after: Some(json!({
                "export": "cases", "status": q.status, "format": q.format, "filters": filters,
                "rows": rows.len(), "more": next.is_some(),
            })),
            detail: Some(format!("{} cases ({}) as {}", rows.len(), q.status, q.format)),
            at_ms: app.now(),
            ..NewAudit::default()
        })
        .await?;
    let (body, ctype) = match q.format {
        "csv" => (export_csv(&rows).map_err(ApiError::internal)?, "text/csv; charset=utf-8"),
        _ => (jsonl(&rows)?, "application/x-ndjson"),
    };
    let disposition = format!("attachment; filename=\"hashscan-cases-{}.{}\"", q.status, q.format);
    let mut res =
        (StatusCode::OK, [(header::CONTENT_TYPE, ctype.to_string()), (header::CONTENT_DISPOSITION, disposition)], body)
            .into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&rows.len().to_string()) {
        h.insert("x-hashscan-rows", v);
    }
    if let Some(n) = next {
        if let Ok(v) = HeaderValue::from_str(&n) {
            h.insert("x-hashscan-next", v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!("<{n}>; rel=\"next\"")) {
            h.insert(header::LINK, v);
        }
    }
    Ok(res)
}

/// `GET /export` (lead, admin): the form that downloads an export.
pub(crate) async fn export_page(State(app): State<App>, ip: ClientIp, headers: HeaderMap) -> Response {
    let caller = match caller_or_login(&app, &headers, &ip).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(e) = caller.require(&["lead", "admin"]) {
        return error_page(Some(&caller), &e);
    }
    let body = layout(
        "Export",
        Some(&caller),
        html! {
            h1 { "Export decided cases" }
            p { "For notices and takedowns: one row per case with its image URLs, pages, hosts, addresses at fetch time, first and last sighting, hashes, the decision in force (who, when, note) and whether the image is still online. Every export is written to the audit log." }
            form.filters method="get" action="/api/export/cases" {
                label { "status" select name="status" {
                    @for s in EXPORT_STATUSES { option value=(s) selected[s == "confirmed"] { (s) } }
                } }
                label { "host" input type="text" name="host"; }
                label { "domain" input type="text" name="domain"; }
                label { "decided since (RFC 3339)" input type="text" name="since"; }
                label { "until" input type="text" name="until"; }
                label { "format" select name="format" { option value="csv" selected { "CSV" } option value="jsonl" { "JSON Lines" } } }
                button type="submit" { "Download" }
            }
            p { "At most " (MAX_EXPORT_ROWS) " cases per download, by case id. When there are more, the response's "
                code { "X-Hashscan-Next" } " header holds the request for the rest (the same filters with "
                code { "after=" } "the last case id)." }
        },
    );
    page(StatusCode::OK, body)
}

// ---------------------------------------------------------------- hotspots

const DAY_MS: i64 = 86_400_000;
/// Weeks start on Monday; 1970-01-05 was one.
const MONDAY_MS: i64 = 4 * DAY_MS;
/// Most buckets one view covers.
pub(crate) const MAX_BUCKETS: i64 = 400;
/// Most places one view lists.
const MAX_TOP: usize = 200;
const HOTSPOT_PARAMS: [&str; 5] = ["by", "since", "until", "bucket", "top"];

#[derive(Debug, Clone)]
struct HotspotQuery {
    by: PlaceKind,
    bucket: &'static str,
    width_ms: i64,
    start_ms: i64,
    end_ms: i64,
    top: usize,
}

fn align_down(t: i64, origin: i64, w: i64) -> i64 {
    origin + (t - origin).div_euclid(w) * w
}

fn hotspot_query(m: &BTreeMap<String, String>, now_ms: i64) -> Result<HotspotQuery, ApiError> {
    let by = match m.get("by").map(String::as_str) {
        None | Some("host") => PlaceKind::Host,
        Some("domain") => PlaceKind::Domain,
        Some(_) => return Err(ApiError::field("by", "host or domain")),
    };
    let (bucket, width_ms, origin, default_span) = match m.get("bucket").map(String::as_str) {
        None | Some("day") => ("day", DAY_MS, 0, 30 * DAY_MS),
        Some("week") => ("week", 7 * DAY_MS, MONDAY_MS, 26 * 7 * DAY_MS),
        Some(_) => return Err(ApiError::field("bucket", "day or week")),
    };
    let (since, until) = (params::time(m, "since")?, params::time(m, "until")?);
    let until = until.unwrap_or(now_ms);
    let since = since.unwrap_or(until.saturating_sub(default_span));
    if since >= until {
        return Err(ApiError::field("until", "must be after since"));
    }
    let start_ms = align_down(since, origin, width_ms);
    let end_ms = align_down(until - 1, origin, width_ms) + width_ms;
    if (end_ms - start_ms) / width_ms > MAX_BUCKETS {
        return Err(ApiError::field(
            "since",
            format!("at most {MAX_BUCKETS} buckets: narrow the period or use bucket=week"),
        ));
    }
    let top = match m.get("top") {
        None => 20,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_TOP).contains(&n) => n,
            _ => return Err(ApiError::field("top", format!("a whole number from 1 to {MAX_TOP}"))),
        },
    };
    Ok(HotspotQuery { by, bucket, width_ms, start_ms, end_ms, top })
}

/// Open and confirmed cases per bucket.
#[derive(Debug, Clone, Default, Serialize)]
struct Series {
    open: Vec<u64>,
    confirmed: Vec<u64>,
}

impl Series {
    fn new(n: usize) -> Self {
        Self { open: vec![0; n], confirmed: vec![0; n] }
    }

    fn add(&mut self, bucket: i64, status: &str, n: u64) {
        let v = if status == "confirmed" { &mut self.confirmed } else { &mut self.open };
        if let Some(x) = usize::try_from(bucket).ok().and_then(|b| v.get_mut(b)) {
            *x += n;
        }
    }
}

/// How long confirmed images stayed online after they were first seen.
#[derive(Debug, Clone, Default, Serialize)]
struct Removal {
    /// Confirmed cases that went offline (the figures are over these).
    cases: u64,
    median_ms: Option<i64>,
    max_ms: Option<i64>,
    median: Option<String>,
    max: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Place {
    place: String,
    open: u64,
    confirmed: u64,
    /// Confirmed and found gone by a re-check (removed).
    offline: u64,
    /// Confirmed and still served at the last re-check.
    still_online: u64,
    /// Confirmed and never re-checked.
    unchecked: u64,
    time_to_removal: Removal,
    series: Series,
}

#[derive(Debug, Clone, Serialize)]
struct HotspotView {
    by: &'static str,
    bucket: &'static str,
    since: String,
    until: String,
    top: usize,
    /// Start of each bucket.
    buckets: Vec<String>,
    /// Distinct cases over all places.
    total: Series,
    /// Places with open or confirmed cases in the period.
    places_total: usize,
    places: Vec<Place>,
}

fn duration_text(ms: i64) -> String {
    let secs = u64::try_from(ms / 1000).unwrap_or(0);
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

fn median(sorted: &[i64]) -> Option<i64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some(sorted[n / 2 - 1] + (sorted[n / 2] - sorted[n / 2 - 1]) / 2),
    }
}

async fn hotspot_view(app: &App, q: &HotspotQuery) -> Result<HotspotView, ApiError> {
    app.sync_places().await?;
    let h = app.store().hotspots(q.by, q.start_ms, q.end_ms, q.width_ms).await?;
    let n = usize::try_from((q.end_ms - q.start_ms) / q.width_ms).unwrap_or(0);
    let mut total = Series::new(n);
    let mut places: HashMap<String, Place> = HashMap::new();
    let new_place = |name: &str| Place {
        place: name.to_string(),
        open: 0,
        confirmed: 0,
        offline: 0,
        still_online: 0,
        unchecked: 0,
        time_to_removal: Removal::default(),
        series: Series::new(n),
    };
    for c in &h.counts {
        match &c.place {
            None => total.add(c.bucket, &c.status, c.cases),
            Some(p) => places.entry(p.clone()).or_insert_with(|| new_place(p)).series.add(c.bucket, &c.status, c.cases),
        }
    }
    for (p, open) in &h.open {
        places.entry(p.clone()).or_insert_with(|| new_place(p)).open = *open;
    }
    let mut removals: HashMap<String, Vec<i64>> = HashMap::new();
    for c in &h.confirmed {
        let p = places.entry(c.place.clone()).or_insert_with(|| new_place(&c.place));
        p.confirmed += 1;
        match (c.online, c.offline_since_ms) {
            (Some(false), Some(gone)) => {
                p.offline += 1;
                removals.entry(c.place.clone()).or_default().push((gone - c.first_seen_ms).max(0));
            }
            (Some(false), None) => p.offline += 1,
            (Some(true), _) => p.still_online += 1,
            (None, _) => p.unchecked += 1,
        }
    }
    for (name, mut v) in removals {
        v.sort_unstable();
        if let Some(p) = places.get_mut(&name) {
            let (med, max) = (median(&v), v.last().copied());
            p.time_to_removal = Removal {
                cases: v.len() as u64,
                median_ms: med,
                max_ms: max,
                median: med.map(duration_text),
                max: max.map(duration_text),
            };
        }
    }
    let mut list: Vec<Place> = places.into_values().collect();
    list.sort_by(|a, b| b.confirmed.cmp(&a.confirmed).then(b.open.cmp(&a.open)).then(a.place.cmp(&b.place)));
    let places_total = list.len();
    list.truncate(q.top);
    Ok(HotspotView {
        by: match q.by {
            PlaceKind::Host => "host",
            PlaceKind::Domain => "domain",
        },
        bucket: q.bucket,
        since: ms_rfc3339(q.start_ms),
        until: ms_rfc3339(q.end_ms),
        top: q.top,
        buckets: (0..n as i64).map(|i| ms_rfc3339(q.start_ms + i * q.width_ms)).collect(),
        total,
        places_total,
        places: list,
    })
}

/// `GET /api/hotspots?by=host|domain&since=&until=&bucket=day|week&top=` (any role).
pub(crate) async fn hotspots_api(
    State(app): State<App>,
    ip: ClientIp,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    app.require_caller(&headers, &ip).await?;
    let m = pairs(uri.query().unwrap_or_default().as_bytes(), &HOTSPOT_PARAMS)?;
    let q = hotspot_query(&m, app.now())?;
    Ok(json_response(StatusCode::OK, &hotspot_view(&app, &q).await?))
}

/// Stacked bars, one group (`<g class="bucket">`) per bucket: confirmed at
/// the bottom, open above. Every text is escaped by maud; elements are
/// always closed, so the SVG is well-formed XML as well as HTML.
fn bars_svg(label: &str, s: &Series, buckets: &[String], width: u32, height: u32, axis: bool) -> Markup {
    let n = s.open.len().max(1);
    let (left, bottom, top) = if axis { (40u32, 20u32, 10u32) } else { (0, 0, 0) };
    let plot_w = f64::from(width.saturating_sub(left + 4));
    let plot_h = f64::from(height.saturating_sub(bottom + top));
    let max = s.open.iter().zip(&s.confirmed).map(|(o, c)| o + c).max().unwrap_or(0).max(1);
    let step = plot_w / n as f64;
    let bar = (step * 0.8).max(1.0);
    let y_of = |v: u64| f64::from(top) + plot_h - plot_h * v as f64 / max as f64;
    let px = |x: f64| format!("{x:.1}");
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" width=(width) height=(height)
            viewBox={ "0 0 " (width) " " (height) } role="img" aria-label=(label) {
            title { (label) }
            @if axis {
                line x1=(left) y1=(top + plot_h as u32) x2=(width - 4) y2=(top + plot_h as u32) stroke="#666" {}
                text x=(left - 4) y=(top + 8) text-anchor="end" font-size="10" { (max) }
                text x=(left - 4) y=(top + plot_h as u32) text-anchor="end" font-size="10" { "0" }
            }
            @for (i, (o, c)) in s.open.iter().zip(&s.confirmed).enumerate() {
                @let x = f64::from(left) + step * i as f64 + (step - bar) / 2.0;
                @let when = buckets.get(i).map(String::as_str).unwrap_or_default();
                g class="bucket" {
                    title { (when) ": " (c) " confirmed, " (o) " open" }
                    rect.confirmed x=(px(x)) y=(px(y_of(*c))) width=(px(bar)) height=(px(y_of(0) - y_of(*c))) fill="#a33" {}
                    rect.open x=(px(x)) y=(px(y_of(c + o))) width=(px(bar)) height=(px(y_of(*c) - y_of(c + o))) fill="#9bb7d4" {}
                }
            }
            @if axis && !buckets.is_empty() {
                text x=(left) y=(height - 4) font-size="10" { (buckets[0].get(..10).unwrap_or_default()) }
                text x=(width - 4) y=(height - 4) font-size="10" text-anchor="end" {
                    (buckets[buckets.len() - 1].get(..10).unwrap_or_default())
                }
            }
        }
    }
}

/// `GET /hotspots` (any role): the chart, and the table of the top places.
pub(crate) async fn hotspots_page(State(app): State<App>, ip: ClientIp, headers: HeaderMap, uri: Uri) -> Response {
    let caller = match caller_or_login(&app, &headers, &ip).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let raw = uri.query().unwrap_or_default();
    let result = async {
        let m = pairs(raw.as_bytes(), &HOTSPOT_PARAMS)?;
        let q = hotspot_query(&m, app.now())?;
        Ok::<_, ApiError>((m, hotspot_view(&app, &q).await?))
    }
    .await;
    match result {
        Ok((m, v)) => page(StatusCode::OK, hotspots_markup(&caller, &m, &v)),
        Err(e) => error_page(Some(&caller), &e),
    }
}

fn hotspots_markup(caller: &Caller, m: &BTreeMap<String, String>, v: &HotspotView) -> Markup {
    let val = |k: &str| m.get(k).cloned().unwrap_or_default();
    let what = if v.by == "host" { "host" } else { "registrable domain" };
    let n_buckets = v.buckets.len() as u32;
    let sparkline_w = (n_buckets * 4).clamp(60, 240);
    layout(
        "Hotspots",
        Some(caller),
        html! {
            h1 { "Hotspots" }
            form.filters method="get" action="/hotspots" {
                label { "by" (select("by", m.get("by").map(String::as_str), &["host", "domain"])) }
                label { "bucket" (select("bucket", m.get("bucket").map(String::as_str), &["day", "week"])) }
                label { "first seen since (RFC 3339)" input type="text" name="since" value=(val("since")); }
                label { "until" input type="text" name="until" value=(val("until")); }
                label { "top" input type="text" name="top" size="4" value=(val("top")); }
                button type="submit" { "Show" }
            }
            p { "Cases whose image was first seen from " (v.since) " to " (v.until) ", by " (v.bucket)
                ", counted by their status now: " span style="color:#a33" { "■ confirmed" } " "
                span style="color:#5b7ea4" { "■ open" } "." }
            (bars_svg(&format!("All cases per {}, {} to {}", v.bucket, v.since, v.until), &v.total, &v.buckets, 720, 200, true))
            h2 { "Top " (v.places.len()) " of " (v.places_total) " by " (what) ", by confirmed cases" }
            @if v.places.is_empty() { p { "No open or confirmed cases in this period." } } @else {
                table.hotspots {
                    thead { tr {
                        th { (what) } th { "open" } th { "confirmed" } th { "offline (removed)" }
                        th { "confirmed still online" } th { "not re-checked" }
                        th { "time to removal: median" } th { "max" } th { "per " (v.bucket) }
                    } }
                    tbody { @for p in &v.places { tr {
                        td.url { (p.place) }
                        td { (p.open) } td { (p.confirmed) } td { (p.offline) }
                        td { (p.still_online) } td { (p.unchecked) }
                        td { (p.time_to_removal.median.clone().unwrap_or_else(|| "–".into())) }
                        td { (p.time_to_removal.max.clone().unwrap_or_else(|| "–".into())) }
                        td { (bars_svg(&p.place, &p.series, &v.buckets, sparkline_w, 24, false)) }
                    } } }
                }
            }
            p { "Time to removal: from the image's first sighting to the first re-check (" code { "hashscan recheck" }
                ") that found it gone, over the confirmed cases that went offline. Cases on several "
                (what) "s count at each. Also as JSON: " code { "/api/hotspots" } "." }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_align_to_days_and_mondays() {
        let m = |q: &str| pairs(q.as_bytes(), &HOTSPOT_PARAMS).unwrap();
        // 2026-01-07 is a Wednesday; its week starts on Monday 2026-01-05.
        let q = hotspot_query(&m("bucket=week&since=2026-01-07T12:00:00Z&until=2026-01-08T00:00:00Z"), 0).unwrap();
        assert_eq!(ms_rfc3339(q.start_ms), "2026-01-05T00:00:00Z");
        assert_eq!((q.end_ms - q.start_ms) / q.width_ms, 1);
        let q = hotspot_query(&m("since=2026-01-07T12:00:00Z&until=2026-01-09T00:00:00Z"), 0).unwrap();
        assert_eq!((ms_rfc3339(q.start_ms), (q.end_ms - q.start_ms) / DAY_MS), ("2026-01-07T00:00:00Z".into(), 2));
        for (q, field) in [
            ("by=ip", "by"),
            ("bucket=month", "bucket"),
            ("since=x", "since"),
            ("top=0", "top"),
            ("since=2020-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", "since"),
            ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
        ] {
            assert_eq!(hotspot_query(&m(q), 0).unwrap_err().field.as_deref(), Some(field), "{q}");
        }
    }

    #[test]
    fn medians_of_even_and_odd_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5]), Some(5));
        assert_eq!(median(&[2, 6]), Some(4));
        assert_eq!(median(&[2, 6, 10]), Some(6));
    }

    #[test]
    fn bad_export_parameters_name_themselves() {
        for (q, field) in [
            ("status=open", "status"),
            ("format=xml", "format"),
            ("since=yesterday", "since"),
            ("limit=0", "limit"),
            ("limit=100001", "limit"),
            ("after=x", "after"),
            ("host=%3Cb%3E", "host"),
            ("who=me", "who"),
        ] {
            assert_eq!(export_query(q).unwrap_err().field.as_deref(), Some(field), "{q}");
        }
        let q = export_query("status=any_decided&format=jsonl").unwrap();
        assert_eq!((q.filter.statuses.len(), q.format, q.filter.limit), (3, "jsonl", MAX_EXPORT_ROWS));
    }
}
