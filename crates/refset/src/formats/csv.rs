//! CSV and TSV lists: header, rows; collects every error.

use std::collections::HashMap;

use hashscan_hash::parse_hex;
use hashscan_pdq::PdqHash;

use super::{Entries, Entry, ParsedList, BOM};
use crate::error::{looks_like_digest, redact};
use crate::{Algo, Column, ErrorKind, RowError, Warning};

/// What a header column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Hash(Algo),
    Id,
    Label,
    Quality,
    Unknown,
}

struct HeaderCol {
    kind: Kind,
    name: String,
}

/// The cells of one row that this crate reads, parsed.
#[derive(Default)]
struct Row {
    md5: Option<[u8; 16]>,
    sha1: Option<[u8; 20]>,
    sha256: Option<[u8; 32]>,
    blake3: Option<[u8; 32]>,
    pdq: Option<PdqHash>,
    quality: Option<(u8, Column)>,
    id: Option<String>,
    label: Option<String>,
}

impl Row {
    fn has_hash(&self) -> bool {
        self.md5.is_some()
            || self.sha1.is_some()
            || self.sha256.is_some()
            || self.blake3.is_some()
            || self.pdq.is_some()
    }
}

struct Builder<'a> {
    source: &'a str,
    errors: Vec<RowError>,
    entries: Entries,
    rows: u64,
}

impl Builder<'_> {
    fn error(&mut self, line: u64, column: Option<Column>, kind: ErrorKind) {
        self.errors.push(RowError { file: self.source.to_string(), line, column, kind });
    }

    fn row(&mut self, header: &[HeaderCol], rec: &csv::ByteRecord, line: u64) {
        self.rows += 1;
        if rec.len() != header.len() {
            self.error(line, None, ErrorKind::FieldCount { expected: header.len(), found: rec.len() });
            return;
        }
        let before = self.errors.len();
        let mut row = Row::default();
        for (i, (col, raw)) in header.iter().zip(rec.iter()).enumerate() {
            if col.kind == Kind::Unknown {
                continue;
            }
            let column = || Column { number: i + 1, name: col.name.clone() };
            let Ok(text) = std::str::from_utf8(raw) else {
                self.error(line, Some(column()), ErrorKind::NotUtf8);
                continue;
            };
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let hex_err = |e| (Some(column()), ErrorKind::Hex(e));
            let result = match col.kind {
                Kind::Hash(Algo::Md5) => parse_hex(text).map(|d| row.md5 = Some(d)).map_err(hex_err),
                Kind::Hash(Algo::Sha1) => parse_hex(text).map(|d| row.sha1 = Some(d)).map_err(hex_err),
                Kind::Hash(Algo::Sha256) => parse_hex(text).map(|d| row.sha256 = Some(d)).map_err(hex_err),
                Kind::Hash(Algo::Blake3) => parse_hex(text).map(|d| row.blake3 = Some(d)).map_err(hex_err),
                Kind::Hash(Algo::Pdq) => {
                    parse_hex(text).map(|d| row.pdq = Some(PdqHash::from_bytes(d))).map_err(hex_err)
                }
                Kind::Id => {
                    row.id = Some(text.to_string());
                    Ok(())
                }
                Kind::Label => {
                    row.label = Some(text.to_string());
                    Ok(())
                }
                Kind::Quality => match text.parse::<u8>() {
                    Ok(q) if q <= 100 => {
                        row.quality = Some((q, column()));
                        Ok(())
                    }
                    _ => Err((Some(column()), ErrorKind::Quality { value: redact(text) })),
                },
                Kind::Unknown => Ok(()),
            };
            if let Err((column, kind)) = result {
                self.error(line, column, kind);
            }
        }
        if self.errors.len() > before {
            return;
        }
        if !row.has_hash() {
            self.error(line, None, ErrorKind::NoHash);
            return;
        }
        if let (Some((_, column)), None) = (&row.quality, &row.pdq) {
            self.error(line, Some(column.clone()), ErrorKind::QualityWithoutPdq);
            return;
        }
        self.entries.push(Entry {
            md5: row.md5,
            sha1: row.sha1,
            sha256: row.sha256,
            blake3: row.blake3,
            pdq: row.pdq,
            quality: row.quality.map(|(q, _)| q),
            id: row.id,
            label: row.label,
            line,
        });
    }
}

/// True when the header line (the first line that is neither blank nor a
/// comment) contains a tab.
fn is_tsv(body: &[u8]) -> bool {
    body.split(|&b| b == b'\n')
        .find(|line| !line.starts_with(b"#") && !line.iter().all(u8::is_ascii_whitespace))
        .is_some_and(|line| line.contains(&b'\t'))
}

/// Line numbers of records, computed from byte offsets.
///
/// The `csv` crate gives each record the position where it *started looking*
/// for it, i.e. before any blank and comment lines it skipped, and its line
/// count misses comment lines. So the line is found here: skip what the csv
/// reader skips at the start of a record (`\r`, `\n`, and `#` up to the next
/// `\n`), then count newlines. Offsets only grow, so the count is incremental.
struct Lines<'a> {
    body: &'a [u8],
    /// A byte offset and the 1-based line it is on.
    at: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(body: &'a [u8]) -> Self {
        Lines { body, at: 0, line: 1 }
    }

    /// The line of the record whose scan started at byte `start`.
    fn record_line(&mut self, start: u64) -> u64 {
        let mut p = usize::try_from(start).unwrap_or(usize::MAX).clamp(self.at, self.body.len());
        while let Some(&b) = self.body.get(p) {
            match b {
                b'\r' | b'\n' => p += 1,
                b'#' => {
                    p = self.body[p..].iter().position(|&c| c == b'\n').map_or(self.body.len(), |i| p + i + 1);
                }
                _ => break,
            }
        }
        self.line += self.body[self.at..p].iter().filter(|&&c| c == b'\n').count() as u64;
        self.at = p;
        self.line
    }
}

/// Reads the header: its columns, the unknown-columns warning, and the
/// errors that make the rows unreadable (no hash column, duplicate names).
fn header(source: &str, rec: &csv::ByteRecord, line: u64) -> (Vec<HeaderCol>, Option<Warning>, Vec<RowError>) {
    let mut cols = Vec::with_capacity(rec.len());
    let mut errors = Vec::new();
    let mut first_of: HashMap<Kind, usize> = HashMap::new();
    for (i, raw) in rec.iter().enumerate() {
        let name = String::from_utf8_lossy(raw).trim().to_string();
        let kind = match name.to_ascii_lowercase().as_str() {
            "id" => Kind::Id,
            "label" => Kind::Label,
            "pdq_quality" => Kind::Quality,
            other => other.parse::<Algo>().map_or(Kind::Unknown, Kind::Hash),
        };
        if kind != Kind::Unknown {
            if let Some(&first) = first_of.get(&kind) {
                errors.push(RowError {
                    file: source.to_string(),
                    line,
                    column: Some(Column { number: i + 1, name: name.clone() }),
                    kind: ErrorKind::DuplicateColumn { first },
                });
            } else {
                first_of.insert(kind, i + 1);
            }
        }
        cols.push(HeaderCol { kind, name });
    }
    if !cols.iter().any(|c| matches!(c.kind, Kind::Hash(_))) {
        errors.push(RowError {
            file: source.to_string(),
            line,
            column: None,
            kind: ErrorKind::NoHashColumn {
                found: cols.iter().map(|c| redact(&c.name)).collect(),
                looks_like_data: cols.iter().any(|c| looks_like_digest(&c.name)),
            },
        });
        return (cols, None, errors);
    }
    let unknown: Vec<Column> = cols
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == Kind::Unknown)
        .map(|(i, c)| Column { number: i + 1, name: redact(&c.name) })
        .collect();
    let warning =
        (!unknown.is_empty()).then(|| Warning::UnknownColumns { file: source.to_string(), line, columns: unknown });
    (cols, warning, errors)
}

/// Parses a whole CSV/TSV list, collecting every error.
pub(crate) fn parse(source: &str, bytes: &[u8]) -> ParsedList {
    let body = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .delimiter(if is_tsv(body) { b'\t' } else { b',' })
        .from_reader(body);

    let mut b = Builder { source, errors: Vec::new(), entries: Entries::default(), rows: 0 };
    let mut warnings = Vec::new();
    let mut cols: Option<Vec<HeaderCol>> = None;
    let mut rec = csv::ByteRecord::new();
    let mut lines = Lines::new(body);
    loop {
        match reader.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // Reading from memory, with flexible records, the csv crate
                // has no error left to give; if it ever does, report and stop
                // rather than risk looping on the same error.
                let line = lines.record_line(e.position().map_or(0, |p| p.byte()));
                b.error(line, None, ErrorKind::Csv(format!("{e}; reading stopped here")));
                break;
            }
        }
        if rec.iter().all(|f| f.trim_ascii().is_empty()) {
            continue;
        }
        let line = lines.record_line(rec.position().map_or(0, |p| p.byte()));
        match &cols {
            Some(cols) => b.row(cols, &rec, line),
            None => {
                let (parsed, warning, errors) = header(source, &rec, line);
                if !errors.is_empty() {
                    b.errors.extend(errors);
                    break;
                }
                warnings.extend(warning);
                cols = Some(parsed);
            }
        }
    }
    if cols.is_none() && b.errors.is_empty() {
        b.error(1, None, ErrorKind::NoHeader);
    }
    let columns =
        cols.iter().flatten().filter_map(|c| if let Kind::Hash(a) = c.kind { Some(a) } else { None }).collect();
    ParsedList { entries: b.entries, warnings, errors: b.errors, rows: b.rows, columns }
}
