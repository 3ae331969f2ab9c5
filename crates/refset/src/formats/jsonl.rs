//! JSON Lines lists: one object per line.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{set_hex, Entry, ParsedList, BOM};
use crate::error::redact;
use crate::{Algo, Column, ErrorKind, RowError, Warning};

/// Keys of `hashscan hash --format jsonl` records that carry no list data:
/// accepted without a warning so that output can be listed as it is.
const HASH_OUTPUT_KEYS: [&str; 8] =
    ["file", "bytes", "width", "height", "format", "pdq_error", "pdq_dihedral", "error"];

pub(super) fn parse(source: &str, body: &[u8]) -> ParsedList {
    let body = body.strip_prefix(BOM).unwrap_or(body);
    let mut out = ParsedList::default();
    let mut unknown = BTreeSet::new();
    let mut first_unknown_line = 0;
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = i as u64 + 1;
        let raw = raw.trim_ascii();
        if raw.is_empty() || raw.starts_with(b"#") {
            continue;
        }
        out.rows += 1;
        let err = |column: Option<Column>, kind| RowError { file: source.to_string(), line, column, kind };
        let obj = match serde_json::from_slice::<Value>(raw) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                out.errors.push(err(None, ErrorKind::Json("expected an object".into())));
                continue;
            }
            Err(e) => {
                out.errors.push(err(None, ErrorKind::Json(e.to_string())));
                continue;
            }
        };
        let before = out.errors.len();
        let mut entry = Entry { line, ..Entry::default() };
        let mut file_name = None;
        for (key, value) in &obj {
            let column = || Some(Column { number: 0, name: key.clone() });
            let lower = key.to_ascii_lowercase();
            if let Ok(algo) = lower.parse::<Algo>() {
                match value {
                    Value::String(s) => {
                        if let Err(kind) = set_hex(&mut entry, algo, s.trim()) {
                            out.errors.push(err(column(), kind));
                        } else if !out.columns.contains(&algo) {
                            out.columns.push(algo);
                        }
                    }
                    Value::Null => {}
                    _ => out.errors.push(err(column(), ErrorKind::Json("expected a hex string".into()))),
                }
                continue;
            }
            match (lower.as_str(), value) {
                ("id", Value::String(s)) => entry.id = Some(s.clone()),
                ("id", Value::Number(n)) => entry.id = Some(n.to_string()),
                ("label", Value::String(s)) => entry.label = Some(s.clone()),
                ("pdq_quality", Value::Number(n)) => match n.as_u64().filter(|q| *q <= 100) {
                    Some(q) => entry.quality = Some(q as u8),
                    None => out.errors.push(err(column(), ErrorKind::Quality { value: redact(&n.to_string()) })),
                },
                ("file", Value::String(s)) => file_name = Some(s.clone()),
                ("id" | "label" | "pdq_quality", Value::Null) => {}
                ("id" | "label" | "pdq_quality", _) => {
                    out.errors.push(err(column(), ErrorKind::Json("unexpected value type".into())))
                }
                (k, _) if HASH_OUTPUT_KEYS.contains(&k) => {}
                _ => {
                    if unknown.is_empty() {
                        first_unknown_line = line;
                    }
                    unknown.insert(redact(key));
                }
            }
        }
        if out.errors.len() > before {
            continue;
        }
        if !entry.has_hash() {
            out.errors.push(err(None, ErrorKind::NoHash));
            continue;
        }
        if entry.quality.is_some() && entry.pdq.is_none() {
            out.errors.push(err(Some(Column { number: 0, name: "pdq_quality".into() }), ErrorKind::QualityWithoutPdq));
            continue;
        }
        if entry.label.is_none() {
            entry.label = file_name;
        }
        out.entries.push(entry);
    }
    if !unknown.is_empty() {
        let columns = unknown.into_iter().map(|name| Column { number: 0, name }).collect();
        out.warnings.push(Warning::UnknownColumns { file: source.to_string(), line: first_unknown_line, columns });
    }
    out.columns.sort();
    out
}
