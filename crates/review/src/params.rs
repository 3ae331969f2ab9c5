//! Reading what clients send — query strings, forms, JSON bodies — into
//! checked values, with a 400 naming the field for anything wrong. An empty
//! value counts as absent (HTML forms send every field).

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hashscan_store::review::{ClaimFilter, QueueCursor, QueueFilter, DECISIONS};
use hashscan_store::{MatchKind, CASE_STATUSES};

use crate::error::ApiError;

/// Largest page of the queue or the audit log.
pub(crate) const MAX_LIMIT: usize = 500;
/// Longest decision note (characters).
pub(crate) const MAX_NOTE: usize = 4_000;

/// Name/value pairs of a query string or form, each name at most once and
/// only from `allowed`.
pub(crate) fn pairs(raw: &[u8], allowed: &[&str]) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if !allowed.contains(&k.as_ref()) {
            let name: String = k.chars().take(50).collect();
            return Err(ApiError::field(&name, format!("unknown parameter (use {})", allowed.join(", "))));
        }
        if out.insert(k.to_string(), v.trim().to_string()).is_some() {
            return Err(ApiError::field(&k, "given more than once"));
        }
    }
    out.retain(|_, v| !v.is_empty());
    Ok(out)
}

/// Parses an RFC 3339 time (`2026-05-01T12:00:00Z`, fractions and offsets
/// like `+02:00` allowed) to Unix ms.
pub(crate) fn rfc3339_ms(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_uppercase();
    let (base, offset_min) = if let Some(b) = s.strip_suffix('Z') {
        (b.to_string(), 0i64)
    } else {
        let split = s.len().checked_sub(6)?;
        let (b, off) = s.split_at(split);
        let sign = match off.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (h, m) = off[1..].split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
        if h > 23 || m > 59 {
            return None;
        }
        (b.to_string(), sign * (h * 60 + m))
    };
    if !base.contains('T') {
        return None;
    }
    let t = humantime::parse_rfc3339(&format!("{base}Z")).ok()?;
    let ms = i64::try_from(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis()).ok()?;
    Some(ms - offset_min * 60_000)
}

fn score(m: &BTreeMap<String, String>, name: &str) -> Result<Option<f64>, ApiError> {
    m.get(name)
        .map(|v| match v.parse::<f64>() {
            Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
            _ => Err(ApiError::field(name, "a score between 0 and 1")),
        })
        .transpose()
}

pub(crate) fn time(m: &BTreeMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    m.get(name)
        .map(|v| rfc3339_ms(v).ok_or_else(|| ApiError::field(name, "an RFC 3339 time, e.g. 2026-05-01T00:00:00Z")))
        .transpose()
}

/// A host name or address as it appears in URLs: letters, digits, `.-_:`
/// and brackets, at most 253 bytes.
pub(crate) fn host(name: &str, v: &str) -> Result<String, ApiError> {
    let ok = !v.is_empty()
        && v.len() <= 253
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']'));
    if ok {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(ApiError::field(name, "a host name (letters, digits, dots and hyphens)"))
    }
}

/// Page size: 1..=[`MAX_LIMIT`], default 50.
pub(crate) fn limit(m: &BTreeMap<String, String>) -> Result<usize, ApiError> {
    match m.get("limit") {
        None => Ok(50),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::field("limit", format!("a whole number from 1 to {MAX_LIMIT}"))),
        },
    }
}

/// The opaque queue cursor of a row.
pub(crate) fn encode_cursor(c: &QueueCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{:016x}.{}.{}", c.score.to_bits(), c.opened_at_ms, c.id))
}

pub(crate) fn decode_cursor(s: &str) -> Option<QueueCursor> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
    let mut it = raw.split('.');
    let score = f64::from_bits(u64::from_str_radix(it.next()?, 16).ok()?);
    let opened_at_ms = it.next()?.parse().ok()?;
    let id = it.next()?.parse().ok()?;
    (it.next().is_none() && score.is_finite()).then_some(QueueCursor { score, opened_at_ms, id })
}

/// The parameters of the queue.
pub(crate) const QUEUE_PARAMS: [&str; 12] = [
    "status",
    "scan",
    "host",
    "domain",
    "match",
    "min_score",
    "max_score",
    "since",
    "until",
    "claim",
    "limit",
    "after",
];

/// The queue's filter from a query string; `user_id` is the caller (for `claim=mine`).
pub(crate) fn queue_filter(raw: &[u8], user_id: i64, now_ms: i64) -> Result<QueueFilter, ApiError> {
    let m = pairs(raw, &QUEUE_PARAMS)?;
    let status = m.get("status").cloned().unwrap_or_else(|| "open".into());
    if !CASE_STATUSES.contains(&status.as_str()) {
        return Err(ApiError::field("status", format!("one of {}", CASE_STATUSES.join(", "))));
    }
    let scan = m.get("scan").cloned();
    if scan.as_ref().is_some_and(|s| s.len() > 200) {
        return Err(ApiError::field("scan", "a scan id (at most 200 bytes)"));
    }
    let match_kind = m
        .get("match")
        .map(|v| match v.as_str() {
            "exact" => Ok(MatchKind::Exact),
            "near" => Ok(MatchKind::Near),
            "none" => Ok(MatchKind::None),
            _ => Err(ApiError::field("match", "one of exact, near, none")),
        })
        .transpose()?;
    let (min_score, max_score) = (score(&m, "min_score")?, score(&m, "max_score")?);
    if let (Some(lo), Some(hi)) = (min_score, max_score) {
        if lo > hi {
            return Err(ApiError::field("max_score", "must not be below min_score"));
        }
    }
    let (since_ms, until_ms) = (time(&m, "since")?, time(&m, "until")?);
    if let (Some(a), Some(b)) = (since_ms, until_ms) {
        if a >= b {
            return Err(ApiError::field("until", "must be after since"));
        }
    }
    let claim = match m.get("claim").map(String::as_str) {
        None | Some("any") => ClaimFilter::Any,
        Some("free") => ClaimFilter::Free,
        Some("mine") => ClaimFilter::Mine(user_id),
        Some(_) => return Err(ApiError::field("claim", "one of any, free, mine")),
    };
    let after = m
        .get("after")
        .map(|v| decode_cursor(v).ok_or_else(|| ApiError::field("after", "not a cursor from this queue")))
        .transpose()?;
    Ok(QueueFilter {
        status,
        scan,
        host: m.get("host").map(|v| host("host", v)).transpose()?,
        domain: m.get("domain").map(|v| host("domain", v)).transpose()?,
        match_kind,
        min_score,
        max_score,
        since_ms,
        until_ms,
        claim,
        after,
        limit: limit(&m)?,
        now_ms,
    })
}

/// A case id from the path.
pub(crate) fn case_id(v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| ApiError::field("id", "a case id (a positive whole number)"))
}

/// A decision and its note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecisionInput {
    pub status: String,
    pub note: String,
}

pub(crate) fn decision(status: Option<&str>, note: Option<&str>) -> Result<DecisionInput, ApiError> {
    let status = status.unwrap_or_default();
    if !DECISIONS.contains(&status) {
        return Err(ApiError::field("status", format!("one of {}", DECISIONS.join(", "))));
    }
    let note = note.unwrap_or_default().trim();
    if note.chars().count() > MAX_NOTE {
        return Err(ApiError::field("note", format!("at most {MAX_NOTE} characters")));
    }
    Ok(DecisionInput { status: status.to_string(), note: note.to_string() })
}

/// A JSON object body with only `allowed` keys, each a string.
pub(crate) fn json_strings(body: &[u8], allowed: &[&str]) -> Result<BTreeMap<String, String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(BTreeMap::new());
    }
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::field("body", format!("not JSON: {e}")))?;
    let serde_json::Value::Object(obj) = v else { return Err(ApiError::field("body", "a JSON object")) };
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        if !allowed.contains(&k.as_str()) {
            let name: String = k.chars().take(50).collect();
            return Err(ApiError::field(&name, format!("unknown field (use {})", allowed.join(", "))));
        }
        match v {
            serde_json::Value::String(s) => {
                out.insert(k, s);
            }
            serde_json::Value::Null => {}
            _ => return Err(ApiError::field(&k, "a string")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_zone_and_offsets() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:01Z"), Some(1_000));
        assert_eq!(rfc3339_ms("1970-01-01T00:00:01.5z"), Some(1_500));
        assert_eq!(rfc3339_ms("1970-01-01T02:00:00+02:00"), Some(0));
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00-01:00"), Some(3_600_000));
        for bad in
            ["", "yesterday", "1970-01-01", "1970-01-01T00:00:00", "1970-01-01T00:00:00+2:00", "1970-13-01T00:00:00Z"]
        {
            assert_eq!(rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = QueueCursor { score: 0.123456789, opened_at_ms: 42, id: 7 };
        assert_eq!(decode_cursor(&encode_cursor(&c)), Some(c));
        assert_eq!(decode_cursor("!!"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("1.2")), None);
    }

    #[test]
    fn every_bad_queue_parameter_names_itself() {
        for (q, field) in [
            ("status=maybe", "status"),
            ("match=fuzzy", "match"),
            ("min_score=2", "min_score"),
            ("max_score=nan", "max_score"),
            ("min_score=0.8&max_score=0.2", "max_score"),
            ("since=today", "since"),
            ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
            ("limit=0", "limit"),
            ("limit=501", "limit"),
            ("after=xyz", "after"),
            ("host=a%20b", "host"),
            ("domain=%3Cscript%3E", "domain"),
            ("claim=theirs", "claim"),
            ("color=red", "color"),
            ("limit=1&limit=2", "limit"),
        ] {
            let e = queue_filter(q.as_bytes(), 1, 0).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{q}: {e:?}");
        }
        let f = queue_filter(b"status=&host=WWW.A.test&limit=10&claim=mine", 9, 5).unwrap();
        assert_eq!((f.status.as_str(), f.host.as_deref(), f.limit), ("open", Some("www.a.test"), 10));
        assert_eq!(f.claim, ClaimFilter::Mine(9));
    }

    #[test]
    fn json_bodies_are_checked_field_by_field() {
        assert_eq!(json_strings(b"{\"status\": 1}", &["status"]).unwrap_err().field.as_deref(), Some("status"));
        assert_eq!(json_strings(b"{\"x\": \"1\"}", &["status"]).unwrap_err().field.as_deref(), Some("x"));
        assert_eq!(json_strings(b"[1]", &["status"]).unwrap_err().field.as_deref(), Some("body"));
        assert_eq!(json_strings(b"{", &["status"]).unwrap_err().field.as_deref(), Some("body"));
        assert!(json_strings(b"", &["status"]).unwrap().is_empty());
        assert_eq!(decision(Some("confirmed"), Some(&"x".repeat(4_001))).unwrap_err().field.as_deref(), Some("note"));
        assert_eq!(decision(Some("open"), None).unwrap_err().field.as_deref(), Some("status"));
    }
}
