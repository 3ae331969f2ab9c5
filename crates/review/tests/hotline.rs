//! The hotline's output, end to end on loopback: notice-and-takedown
//! exports of decided cases, and the hotspot view with its SVG chart and
//! time-to-removal figures.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{image_url, Auth, Server, T0};
use hashscan_hash::Digests;
use hashscan_store::{Assessment, CaseStore, ImageRecord, MatchKind, PdqResult, SightingStore, SqliteStore};
use serde_json::json;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2026-01-05T00:00:00Z, a Monday.
const MON: i64 = T0 + 4 * DAY;
/// A host name no crawler should meet, but a store could hold.
const EVIL_HOST: &str = "evil\"<script>alert(1)</script>.test";

async fn decide(s: &Server, who: &Auth, name: &str, status: &str, note: &str) {
    let id = s.case(name);
    let r = s.post_json(&format!("/api/cases/{id}/claim"), who, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.post_json(&format!("/api/cases/{id}/decision"), who, json!({"status": status, "note": note})).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

fn jsonl(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[tokio::test]
async fn leads_export_decided_cases_for_takedown_as_csv_and_json_lines() {
    let s = Server::start().await;
    let (ann, lea, adm) = (s.token("ann").await, s.token("lea").await, s.token("adm").await);
    decide(&s, &ann, "L1", "confirmed", "=HYPERLINK(\"http://x.test\")").await;
    s.advance(Duration::from_secs(3_600));
    decide(&s, &ann, "L3", "not_abuse", "a drawing").await;
    decide(&s, &ann, "U", "escalate", "+ask the lead").await;
    // A re-check found L1 gone.
    let gone = T0 + 2 * HOUR;
    s.store.record_check(Digests::of(b"L1").blake3, gone, false).await.unwrap();

    // Who may: leads and admins; analysts 403; nobody without a login.
    assert_eq!(s.get("/api/export/cases", &Auth::None).await.status, 401);
    let r = s.get("/api/export/cases?format=csv", &ann).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.json()["error"].as_str().is_some());

    // JSON Lines: confirmed by default, with every field a notice needs.
    let r = s.get("/api/export/cases?format=jsonl", &lea).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("content-type").starts_with("application/x-ndjson"));
    assert!(r.header("content-disposition").contains("attachment"));
    assert_eq!(r.header("x-hashscan-rows"), "1");
    assert_eq!(r.header("x-hashscan-next"), "", "nothing more");
    let rows = jsonl(&r.text);
    assert_eq!(rows.len(), 1, "{}", r.text);
    let c = &rows[0];
    assert_eq!(c["case_id"], s.case("L1"));
    assert_eq!(c["status"], "confirmed");
    assert_eq!(c["image_urls"], json!([image_url("L1")]));
    assert_eq!(c["page_urls"], json!(["http://www.bad.test/1"]));
    assert_eq!(c["host"], "img.test");
    assert_eq!(c["hosts"], json!(["img.test", "www.bad.test"]));
    assert_eq!(c["ips"], json!(["127.77.0.9"]));
    assert_eq!(c["first_seen"], "2025-12-31T23:59:50.000Z");
    assert_eq!(c["last_seen"], "2025-12-31T23:59:50.000Z");
    let d = Digests::of(b"L1");
    assert_eq!(c["md5"], hex::encode(d.md5));
    assert_eq!(c["sha1"], hex::encode(d.sha1));
    assert_eq!(c["sha256"], hex::encode(d.sha256));
    assert_eq!(c["blake3"], hex::encode(d.blake3));
    assert!(c["pdq"].is_null(), "no PDQ for these test bytes");
    assert_eq!(c["analyst"], "ann");
    assert_eq!(c["decided_at"], "2026-01-01T00:00:00.000Z");
    assert_eq!(c["note"], "=HYPERLINK(\"http://x.test\")", "JSON is not a spreadsheet: verbatim");
    assert_eq!(c["online"], false);
    assert_eq!(c["offline_since"], "2026-01-01T02:00:00.000Z");
    assert!(c["score"].as_f64().unwrap() >= 0.5);

    // CSV: the same columns, formulas defused with the audit export's rule.
    let r = s.get("/api/export/cases?status=any_decided&format=csv", &adm).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("content-type").starts_with("text/csv"));
    let mut reader = csv::Reader::from_reader(r.text.as_bytes());
    let head: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    for col in [
        "case_id",
        "image_urls",
        "page_urls",
        "host",
        "ips",
        "first_seen",
        "last_seen",
        "md5",
        "sha1",
        "sha256",
        "blake3",
        "pdq",
        "status",
        "analyst",
        "decided_at",
        "note",
        "online",
        "offline_since",
        "score",
    ] {
        assert!(head.iter().any(|h| h == col), "{col} in {head:?}");
    }
    let recs: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(recs.len(), 3, "{}", r.text);
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let ids: Vec<i64> = recs.iter().map(|r| r[col("case_id")].parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "by case id: {ids:?}");
    let notes: Vec<&str> = recs.iter().map(|r| &r[col("note")]).collect();
    assert!(notes.contains(&"'=HYPERLINK(\"http://x.test\")"), "{notes:?}");
    assert!(notes.contains(&"'+ask the lead"), "{notes:?}");
    assert!(!r.text.contains(",=") && !r.text.contains(",+"), "no cell starts a formula: {}", r.text);
    let l2 = recs.iter().find(|r| r[col("case_id")] == s.case("L1").to_string()).unwrap();
    assert_eq!(&l2[col("page_urls")], "http://www.bad.test/1");
    assert_eq!(&l2[col("online")], "false");

    // Filters: status, host, domain, the decision's time, paging.
    for (q, n) in [
        ("status=not_abuse", 1),
        ("status=escalate", 1),
        ("status=any_decided&host=www.bad.test", 3),
        ("status=any_decided&host=www.good.test", 0),
        ("status=any_decided&domain=bad.test", 3),
        ("status=any_decided&domain=nowhere.test", 0),
        ("status=any_decided&since=2026-01-01T00:30:00Z", 2),
        ("status=any_decided&until=2026-01-01T00:30:00Z", 1),
        ("status=any_decided&since=2026-01-01T00:30:00%2B01:00", 3),
    ] {
        let r = s.get(&format!("/api/export/cases?format=jsonl&{q}"), &lea).await;
        assert_eq!(r.status, 200, "{q}: {}", r.text);
        assert_eq!(jsonl(&r.text).len(), n, "{q}: {}", r.text);
    }
    let r = s.get("/api/export/cases?format=jsonl&status=any_decided&limit=2", &lea).await;
    let first = jsonl(&r.text);
    assert_eq!(first.len(), 2);
    let next = r.header("x-hashscan-next");
    assert!(next.starts_with("/api/export/cases?") && next.contains("after="), "{next}");
    assert!(r.header("link").contains("rel=\"next\""));
    let rest = s.get(&next, &lea).await;
    let rest = jsonl(&rest.text);
    assert_eq!(rest.len(), 1);
    assert!(rest[0]["case_id"].as_i64() > first[1]["case_id"].as_i64());

    // Bad parameters: 400 naming the field.
    for (q, field) in [
        ("status=open", "status"),
        ("status=maybe", "status"),
        ("format=xml", "format"),
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
        ("limit=0", "limit"),
        ("after=-3", "after"),
        ("host=a%20b", "host"),
        ("colour=red", "colour"),
        ("format=csv&format=jsonl", "format"),
    ] {
        let r = s.get(&format!("/api/export/cases?{q}"), &lea).await;
        assert_eq!((r.status, r.field()), (400, field.to_string()), "{q}: {}", r.text);
    }

    // Every export is in the audit log: who, filters, rows.
    let log = s.get("/api/audit?actor=lea&limit=500", &adm).await.json();
    let exports: Vec<&serde_json::Value> =
        log["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "export").collect();
    assert_eq!(exports.len(), 1 + 9 + 2, "refused requests are not exports");
    let first_export = exports.last().unwrap();
    assert_eq!(first_export["after"]["export"], "cases");
    assert_eq!(first_export["after"]["status"], "confirmed");
    assert_eq!(first_export["after"]["rows"], 1);
    let by_host = exports.iter().find(|e| e["after"]["filters"]["host"] == "www.bad.test").expect("host export");
    assert_eq!((by_host["after"]["rows"].clone(), by_host["actor"].clone()), (json!(3), json!("lea")));
    assert!(by_host["detail"].as_str().unwrap().contains("3 cases"));
    let paged: Vec<_> = exports.iter().filter(|e| e["after"]["filters"]["limit"] == "2").collect();
    assert_eq!(paged.len(), 2, "the first page and the rest");
    assert_eq!((paged[1]["after"]["more"].clone(), paged[1]["after"]["rows"].clone()), (json!(true), json!(2)));
    assert_eq!((paged[0]["after"]["more"].clone(), paged[0]["after"]["rows"].clone()), (json!(false), json!(1)));
    assert!(paged[0]["after"]["filters"]["after"].is_string(), "the cursor is recorded");
    let log = s.get("/api/audit?actor=adm", &adm).await.json();
    assert!(log["entries"].as_array().unwrap().iter().any(|e| e["action"] == "export" && e["after"]["rows"] == 3));
    let log = s.get("/api/audit?actor=ann&limit=500", &adm).await.json();
    assert!(!log["entries"].as_array().unwrap().iter().any(|e| e["action"] == "export"), "a 403 exports nothing");
}

#[tokio::test]
async fn the_export_page_is_for_leads_and_links_the_download() {
    let s = Server::start().await;
    let lea = s.login("lea").await;
    let r = s.get("/export", &lea).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("action=\"/api/export/cases\""), "{}", r.text);
    for name in ["status", "host", "domain", "since", "until", "format"] {
        assert!(r.text.contains(&format!("name=\"{name}\"")), "{name}");
    }
    assert!(r.text.contains("href=\"/export\"") && r.text.contains("href=\"/hotspots\""), "navigation");
    // A browser submitting the form (empty fields included) downloads a CSV by its session cookie.
    let r = s.get("/api/export/cases?status=confirmed&host=&domain=&since=&until=&format=csv", &lea).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.starts_with("case_id,"));
    let ann = s.login("ann").await;
    let r = s.get("/export", &ann).await;
    assert_eq!(r.status, 403);
    assert!(!r.text.contains("href=\"/export\""), "analysts are not offered the export");
    let r = s.get("/export", &Auth::None).await;
    assert_eq!((r.status, r.header("location")), (303, "/login".to_string()));
}

/// Records one image on `host` (shown by `page`), first seen at `at`, and opens its case.
async fn add_case(store: &SqliteStore, name: &str, host: &str, page: &str, at: i64) -> [u8; 32] {
    let d = Digests::of(name.as_bytes());
    store
        .record_image(ImageRecord {
            scan: "s2".into(),
            image_id: format!("http://{host}/{name}.png"),
            page_url: Some(page.to_string()),
            host: host.into(),
            ip: Some("127.0.0.2".into()),
            digests: d,
            pdq: PdqResult::Failed { reason: "unknown_format".into(), detail: "test".into() },
            fetched_at_ms: at,
        })
        .await
        .unwrap();
    store
        .record_assessment(
            d.blake3,
            Assessment {
                score: 0.9,
                match_kind: MatchKind::Exact,
                match_algo: Some("md5".into()),
                distance: Some(0),
                reference_version: Some("v".into()),
                reasons: vec![],
            },
        )
        .await
        .unwrap();
    store.open_case(d.blake3, 0.9, "s2", at).await.unwrap();
    d.blake3
}

/// Hosts with known cases: on a.test two confirmed that went offline after
/// 2 h and 6 h, one confirmed still online; on cdn.a.test one confirmed
/// offline after 10 h; on b.test one open; and one open on a hostile host.
async fn hotspot_store() -> Arc<SqliteStore> {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let st = &store;
    let page = "http://a.test/gallery";
    let c1 = add_case(st, "c1", "a.test", page, MON + HOUR).await;
    let c2 = add_case(st, "c2", "a.test", page, MON + 2 * HOUR).await;
    let c3 = add_case(st, "c3", "cdn.a.test", "http://cdn.a.test/p", MON + DAY + HOUR).await;
    let c4 = add_case(st, "c4", "a.test", page, MON + DAY + 3 * HOUR).await;
    add_case(st, "c5", "b.test", "http://b.test/p", MON + DAY + 5 * HOUR).await;
    add_case(st, "c6", "b.test", "http://b.test/p", MON + 2 * DAY + HOUR).await;
    add_case(st, "c7", EVIL_HOST, "http://b.test/q", MON + 2 * DAY + 2 * HOUR).await;
    for (key, first, gone) in [
        (c1, MON + HOUR, Some(2 * HOUR)),
        (c2, MON + 2 * HOUR, Some(6 * HOUR)),
        (c3, MON + DAY + HOUR, Some(10 * HOUR)),
        (c4, MON + DAY + 3 * HOUR, None),
    ] {
        store.decide(key, "confirmed", MON + 3 * DAY).await.unwrap();
        // Seen online first, then (maybe) gone: offline_since is the first check that missed it.
        store.record_check(key, first + HOUR / 2, true).await.unwrap();
        if let Some(after) = gone {
            store.record_check(key, first + after, false).await.unwrap();
            store.record_check(key, first + after + DAY, false).await.unwrap();
        } else {
            store.record_check(key, first + DAY, true).await.unwrap();
        }
    }
    store
}

fn place<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["places"].as_array().unwrap().iter().find(|p| p["place"] == name).unwrap_or_else(|| panic!("{name} in {v}"))
}

#[tokio::test]
async fn hotspots_count_cases_per_host_and_bucket_with_time_to_removal() {
    let s = Server::start_on(hotspot_store().await, false, |_| {}).await;
    let ann = s.token("ann").await;
    assert_eq!(s.get("/api/hotspots", &Auth::None).await.status, 401);
    let period = "since=2026-01-05T00:00:00Z&until=2026-01-08T00:00:00Z";
    let r = s.get(&format!("/api/hotspots?{period}&bucket=day"), &ann).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["by"], "host");
    assert_eq!(v["buckets"], json!(["2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z", "2026-01-07T00:00:00Z"]));
    assert_eq!(v["total"]["confirmed"], json!([2, 2, 0]));
    assert_eq!(v["total"]["open"], json!([0, 1, 2]));
    // Ranked by confirmed cases.
    let order: Vec<&str> = v["places"].as_array().unwrap().iter().map(|p| p["place"].as_str().unwrap()).collect();
    assert_eq!(&order[..2], ["a.test", "cdn.a.test"], "{order:?}");
    let a = place(&v, "a.test");
    assert_eq!((a["open"].clone(), a["confirmed"].clone()), (json!(0), json!(3)));
    assert_eq!(
        (a["offline"].clone(), a["still_online"].clone(), a["unchecked"].clone()),
        (json!(2), json!(1), json!(0))
    );
    assert_eq!(a["series"]["confirmed"], json!([2, 1, 0]));
    assert_eq!(a["time_to_removal"]["cases"], 2);
    assert_eq!(a["time_to_removal"]["median_ms"], 4 * HOUR, "median of 2 h and 6 h");
    assert_eq!(a["time_to_removal"]["max_ms"], 6 * HOUR);
    assert_eq!(a["time_to_removal"]["median"], "4h");
    let b = place(&v, "b.test");
    assert_eq!((b["open"].clone(), b["confirmed"].clone()), (json!(3), json!(0)), "c7's page is on b.test too");
    assert_eq!(b["series"]["open"], json!([0, 1, 2]));
    assert!(b["time_to_removal"]["median_ms"].is_null());
    assert_eq!(place(&v, EVIL_HOST)["open"], 1);

    // By registrable domain, a.test and cdn.a.test are one: 2 h, 6 h, 10 h.
    let v = s.get(&format!("/api/hotspots?{period}&by=domain"), &ann).await.json();
    let a = place(&v, "a.test");
    assert_eq!((a["confirmed"].clone(), a["offline"].clone()), (json!(4), json!(3)));
    assert_eq!(a["series"]["confirmed"], json!([2, 2, 0]));
    assert_eq!(
        (a["time_to_removal"]["median_ms"].clone(), a["time_to_removal"]["max_ms"].clone()),
        (json!(6 * HOUR), json!(10 * HOUR))
    );
    assert_eq!(v["places"][0]["place"], "a.test");

    // Weeks start on Monday; top cuts the list.
    let v = s
        .get("/api/hotspots?since=2026-01-07T00:00:00Z&until=2026-01-08T00:00:00Z&bucket=week&top=1", &ann)
        .await
        .json();
    assert_eq!(v["buckets"], json!(["2026-01-05T00:00:00Z"]));
    assert_eq!(v["total"]["confirmed"], json!([4]));
    assert_eq!(v["places"].as_array().unwrap().len(), 1);
    assert!(v["places_total"].as_u64().unwrap() >= 4);

    for (q, field) in [
        ("by=ip", "by"),
        ("bucket=month", "bucket"),
        ("since=monday", "since"),
        ("until=2026-01-01", "until"),
        ("top=0", "top"),
        ("top=201", "top"),
        ("since=2020-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", "since"),
        ("since=2026-01-08T00:00:00Z&until=2026-01-05T00:00:00Z", "until"),
        ("color=red", "color"),
    ] {
        let r = s.get(&format!("/api/hotspots?{q}"), &ann).await;
        assert_eq!((r.status, r.field()), (400, field.to_string()), "{q}: {}", r.text);
    }
}

/// The `<svg>…</svg>` elements of a page.
fn svgs(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<svg") {
        let end = rest[i..].find("</svg>").expect("closed svg") + i + "</svg>".len();
        out.push(&rest[i..end]);
        rest = &rest[end..];
    }
    out
}

/// A small XML well-formedness check: every tag closes in order, attributes
/// are quoted, no raw `<` or unknown entity in text.
fn check_xml(doc: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = doc;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('<') {
            let end = after.find('>').unwrap_or_else(|| panic!("unclosed tag in {doc}"));
            let tag = &after[..end];
            assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name.trim()), "mismatched </{name}> in {doc}");
            } else {
                let name: String = tag.chars().take_while(|c| !c.is_whitespace() && *c != '/').collect();
                assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{tag}");
                assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes: {tag}");
                let attrs = &tag[name.len()..];
                for part in attrs.split('"').step_by(2) {
                    for token in part.split_whitespace().filter(|t| *t != "/") {
                        assert!(token.ends_with('='), "unquoted attribute {token:?} in {tag}");
                    }
                }
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &after[end + 1..];
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            let text = &rest[..end];
            let mut t = text;
            while let Some(i) = t.find('&') {
                let semi = t[i..].find(';').unwrap_or_else(|| panic!("bare & in {text}"));
                let ent = &t[i + 1..i + semi];
                assert!(["lt", "gt", "amp", "quot", "apos"].contains(&ent) || ent.starts_with('#'), "entity {ent}");
                t = &t[i + semi..];
            }
            rest = &rest[end..];
        }
    }
    assert!(stack.is_empty(), "unclosed {stack:?}");
}

#[tokio::test]
async fn the_hotspot_page_draws_one_bar_per_bucket_and_escapes_host_names() {
    let s = Server::start_on(hotspot_store().await, false, |_| {}).await;
    let ann = s.login("ann").await;
    let r = s.get("/hotspots?since=2026-01-05T00:00:00Z&until=2026-01-08T00:00:00Z&bucket=day", &ann).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("content-security-policy").starts_with("default-src 'none'"));
    let page = &r.text;
    assert!(!page.contains("<script"), "host names are escaped: {page}");
    assert!(page.contains("evil&quot;&lt;script&gt;alert(1)&lt;/script&gt;.test"), "{page}");
    assert!(!page.contains("<img") && !page.contains("href=\"http"), "no external asset");
    let charts = svgs(page);
    assert!(charts.len() >= 2, "the chart and one per host");
    for svg in &charts {
        check_xml(svg);
        assert!(svg.starts_with("<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\""), "{svg}");
        assert_eq!(svg.matches("<g class=\"bucket\">").count(), 3, "one bar per bucket: {svg}");
        assert_eq!(svg.matches("<rect").count(), 6, "confirmed and open in each: {svg}");
    }
    let total = charts[0];
    assert!(total.contains("2026-01-06T00:00:00Z: 2 confirmed, 1 open"), "{total}");
    // The table: the host's figures, time to removal included.
    let row = page.split("<tr>").find(|r| r.contains("<td class=\"url\">a.test</td>")).expect("a.test row");
    // open, confirmed, offline, still online, not re-checked, median, max
    assert!(row.contains("<td>0</td><td>3</td><td>2</td><td>1</td><td>0</td><td>4h</td><td>6h</td>"), "{row}");
    let r = s.get("/hotspots?by=domain&since=2026-01-05T00:00:00Z&until=2026-01-08T00:00:00Z", &ann).await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("registrable domain"));
    let r = s.get("/hotspots?bucket=month", &ann).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("bucket"));
    let r = s.get("/hotspots", &Auth::None).await;
    assert_eq!((r.status, r.header("location")), (303, "/login".to_string()));
    // The default period (the last 30 days up to now) works on an empty view too.
    let r = s.get("/hotspots", &ann).await;
    assert_eq!(r.status, 200);
    for svg in svgs(&r.text) {
        check_xml(svg);
        assert_eq!(svg.matches("<g class=\"bucket\">").count(), 30);
    }
}
