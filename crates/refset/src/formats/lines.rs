//! Line formats: one hash per line of one algorithm, and `algo,hex[,id]`
//! signal lines.

use super::{set_hex, Entries, Entry, ParsedList, BOM};
use crate::{Algo, Column, ErrorKind, RowError};

/// Non-blank, non-comment lines with their 1-based numbers.
fn data_lines(body: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    let body = body.strip_prefix(BOM).unwrap_or(body);
    body.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.trim_ascii()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with(b"#"))
}

/// True for `algo,hex…` where `algo` is a known name and `hex` has its
/// length (so a CSV header such as `md5,sha1` is not taken for one).
pub(super) fn is_signal_line(line: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(line) else { return false };
    let mut fields = text.split(',').map(str::trim);
    let (Some(name), Some(hash)) = (fields.next(), fields.next()) else { return false };
    name.parse::<Algo>().is_ok_and(|a| hash.len() == 2 * a.len_bytes() && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn error(source: &str, line: u64, column: Option<Column>, kind: ErrorKind) -> RowError {
    RowError { file: source.to_string(), line, column, kind }
}

/// One hash of `algo` per line; anything after the first whitespace is the
/// label (so `md5sum` output can be used as it is).
pub(super) fn parse_hashes(source: &str, body: &[u8], algo: Algo) -> ParsedList {
    let mut out = ParsedList {
        entries: Entries::default(),
        warnings: Vec::new(),
        errors: Vec::new(),
        rows: 0,
        columns: vec![algo],
    };
    for (line, raw) in data_lines(body) {
        out.rows += 1;
        let Ok(text) = std::str::from_utf8(raw) else {
            out.errors.push(error(source, line, None, ErrorKind::NotUtf8));
            continue;
        };
        let (hash, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let mut entry = Entry { line, ..Entry::default() };
        if let Err(kind) = set_hex(&mut entry, algo, hash) {
            let column = Column { number: 1, name: algo.name().to_string() };
            out.errors.push(error(source, line, Some(column), kind));
            continue;
        }
        // md5sum marks binary mode with '*' before the file name.
        let label = rest.trim().trim_start_matches('*').trim();
        entry.label = (!label.is_empty()).then(|| label.to_string());
        out.entries.push(entry);
    }
    out
}

/// `algo,hex[,id]` per line: signal exports (`pdq,<hex>`), any mix of algorithms.
pub(super) fn parse_signals(source: &str, body: &[u8]) -> ParsedList {
    let mut out = ParsedList::default();
    for (line, raw) in data_lines(body) {
        out.rows += 1;
        let Ok(text) = std::str::from_utf8(raw) else {
            out.errors.push(error(source, line, None, ErrorKind::NotUtf8));
            continue;
        };
        let mut fields = text.splitn(3, ',').map(str::trim);
        let (name, hash, id) = (fields.next().unwrap_or(""), fields.next(), fields.next());
        let algo = match name.parse::<Algo>() {
            Ok(a) => a,
            Err(_) => {
                let column = Column { number: 1, name: "type".into() };
                out.errors.push(error(
                    source,
                    line,
                    Some(column),
                    ErrorKind::UnknownSignalType { name: crate::error::redact(name) },
                ));
                continue;
            }
        };
        let Some(hash) = hash else {
            out.errors.push(error(source, line, None, ErrorKind::FieldCount { expected: 2, found: 1 }));
            continue;
        };
        let mut entry = Entry { line, ..Entry::default() };
        if let Err(kind) = set_hex(&mut entry, algo, hash) {
            out.errors.push(error(source, line, Some(Column { number: 2, name: algo.name().to_string() }), kind));
            continue;
        }
        entry.id = id.filter(|s| !s.is_empty()).map(str::to_string);
        if !out.columns.contains(&algo) {
            out.columns.push(algo);
        }
        out.entries.push(entry);
    }
    out.columns.sort();
    out
}
