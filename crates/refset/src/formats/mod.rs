//! The list file formats: CSV/TSV with a header, JSON Lines, one hash per
//! line, and `algo,hex` signal lines; gzip-compressed files of any of them.
//!
//! Every format yields the same [`ParsedList`]: entries in file order with
//! their line numbers, plus every error and warning. De-duplication and
//! indexing happen later, in the set builder, the same for every format.

mod csv;
mod jsonl;
mod lines;

use std::io::Read;

use hashscan_pdq::PdqHash;
use serde::{Deserialize, Serialize};

use crate::{Algo, ErrorKind, RowError, Warning};

pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decompressed lists larger than this are refused: a gzip bomb in a
/// reference file must not take the machine down.
pub const MAX_LIST_BYTES: u64 = 64 << 30;

/// One listed item as a file states it: at least one hash.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) md5: Option<[u8; 16]>,
    pub(crate) sha1: Option<[u8; 20]>,
    pub(crate) sha256: Option<[u8; 32]>,
    pub(crate) blake3: Option<[u8; 32]>,
    pub(crate) pdq: Option<PdqHash>,
    pub(crate) quality: Option<u8>,
    pub(crate) id: Option<String>,
    pub(crate) label: Option<String>,
    pub(crate) line: u64,
}

impl Entry {
    pub(crate) fn has_hash(&self) -> bool {
        self.md5.is_some()
            || self.sha1.is_some()
            || self.sha256.is_some()
            || self.blake3.is_some()
            || self.pdq.is_some()
    }
}

/// A list's entries, stored by column so that tens of millions of them fit:
/// each digest with its entry number, and per entry only its line, quality
/// and interned strings (about 30 bytes an MD5 entry instead of 200).
#[derive(Default)]
pub(crate) struct Entries {
    pub(crate) md5: Vec<([u8; 16], u32)>,
    pub(crate) sha1: Vec<([u8; 20], u32)>,
    pub(crate) sha256: Vec<([u8; 32], u32)>,
    pub(crate) blake3: Vec<([u8; 32], u32)>,
    pub(crate) pdq: Vec<([u8; 32], u32)>,
    pub(crate) meta: Vec<EntryMeta>,
    pub(crate) strings: Strings,
}

/// What an entry has besides its digests.
#[derive(Clone, Copy)]
pub(crate) struct EntryMeta {
    pub(crate) line: u32,
    pub(crate) quality: Option<u8>,
    pub(crate) id: Option<u32>,
    pub(crate) label: Option<u32>,
}

/// Interned strings: each distinct string stored once.
#[derive(Default)]
pub(crate) struct Strings {
    text: String,
    spans: Vec<(u32, u32)>,
    index: std::collections::HashMap<String, u32>,
}

impl Strings {
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.spans.len() as u32;
        self.spans.push((self.text.len() as u32, s.len() as u32));
        self.text.push_str(s);
        self.index.insert(s.to_string(), i);
        i
    }

    pub(crate) fn get(&self, i: u32) -> &str {
        let (at, len) = self.spans[i as usize];
        &self.text[at as usize..(at + len) as usize]
    }
}

impl Entries {
    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.meta.len()
    }

    /// Adds one entry.
    pub(crate) fn push(&mut self, e: Entry) {
        let n = self.meta.len() as u32;
        if let Some(d) = e.md5 {
            self.md5.push((d, n));
        }
        if let Some(d) = e.sha1 {
            self.sha1.push((d, n));
        }
        if let Some(d) = e.sha256 {
            self.sha256.push((d, n));
        }
        if let Some(d) = e.blake3 {
            self.blake3.push((d, n));
        }
        if let Some(h) = e.pdq {
            self.pdq.push((*h.as_bytes(), n));
        }
        let id = e.id.as_deref().map(|s| self.strings.intern(s));
        let label = e.label.as_deref().map(|s| self.strings.intern(s));
        self.meta.push(EntryMeta { line: u32::try_from(e.line).unwrap_or(u32::MAX), quality: e.quality, id, label });
    }
}

/// One list file read: its entries, and everything wrong with it.
#[derive(Default)]
pub(crate) struct ParsedList {
    pub(crate) entries: Entries,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) errors: Vec<RowError>,
    /// Data rows read, malformed ones included.
    pub(crate) rows: u64,
    /// The algorithms the file can carry (header columns, or the one algorithm).
    pub(crate) columns: Vec<Algo>,
}

/// How a list file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Decide from the content: JSON Lines when the first data line starts
    /// with `{`, signal lines when it is `algo,hex`, hash lines when it is a
    /// lone 32- or 40-digit hex value, CSV/TSV otherwise.
    #[default]
    Auto,
    /// CSV or TSV with a header line.
    Csv,
    /// One JSON object per line with `md5`, `sha1`, `sha256`, `blake3`,
    /// `pdq`, `pdq_quality`, `id`, `label` (the output of `hashscan hash
    /// --format jsonl` is accepted).
    Jsonl,
    /// One hash per line of one algorithm (`md5sum` output works: the first
    /// field is the hash, the rest of the line its label).
    Lines,
    /// `algo,hex[,id]` per line, as ThreatExchange signal exports
    /// (`pdq,<hex>`).
    Signals,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Format::Auto),
            "csv" | "tsv" => Ok(Format::Csv),
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            "lines" | "hashes" => Ok(Format::Lines),
            "signals" => Ok(Format::Signals),
            other => Err(format!("unknown list format {other:?} (expected auto, csv, jsonl, lines or signals)")),
        }
    }
}

/// Undoes gzip when the bytes start with its magic; the cap bounds a bomb.
pub(crate) fn gunzip_if_needed(source: &str, bytes: Vec<u8>) -> Result<Vec<u8>, RowError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    let decoder = flate2::read::MultiGzDecoder::new(&bytes[..]);
    match decoder.take(MAX_LIST_BYTES + 1).read_to_end(&mut out) {
        Ok(n) if n as u64 > MAX_LIST_BYTES => Err(RowError {
            file: source.to_string(),
            line: 0,
            column: None,
            kind: ErrorKind::Gzip(format!("decompresses to more than {MAX_LIST_BYTES} bytes")),
        }),
        Ok(_) => Ok(out),
        Err(e) => {
            Err(RowError { file: source.to_string(), line: 0, column: None, kind: ErrorKind::Gzip(e.to_string()) })
        }
    }
}

/// The first line that is neither blank nor a comment, trimmed.
fn first_data_line(body: &[u8]) -> Option<&[u8]> {
    body.split(|&b| b == b'\n').map(|l| l.trim_ascii()).find(|l| !l.is_empty() && !l.starts_with(b"#"))
}

/// Picks a format from the content (see [`Format::Auto`]).
pub(crate) fn detect(body: &[u8]) -> Format {
    let body = body.strip_prefix(BOM).unwrap_or(body);
    let Some(line) = first_data_line(body) else { return Format::Csv };
    if line.starts_with(b"{") {
        return Format::Jsonl;
    }
    if lines::is_signal_line(line) {
        return Format::Signals;
    }
    let first = line.split(|b| b.is_ascii_whitespace()).next().unwrap_or_default();
    if (first.len() == 32 || first.len() == 40) && first.iter().all(u8::is_ascii_hexdigit) {
        return Format::Lines;
    }
    Format::Csv
}

/// The algorithm a hash-lines file holds when none was given: MD5 and SHA-1
/// have unique lengths; 64 digits could be SHA-256, BLAKE3 or PDQ.
pub(crate) fn guess_lines_algo(body: &[u8]) -> Option<Algo> {
    let line = first_data_line(body.strip_prefix(BOM).unwrap_or(body))?;
    match line.split(|b| b.is_ascii_whitespace()).next()?.len() {
        32 => Some(Algo::Md5),
        40 => Some(Algo::Sha1),
        _ => None,
    }
}

/// Parses a (decompressed) list in `format`; `algo` is needed by
/// [`Format::Lines`] when the hash length is ambiguous.
pub(crate) fn parse(source: &str, body: &[u8], format: Format, algo: Option<Algo>) -> ParsedList {
    let format = if format == Format::Auto { detect(body) } else { format };
    match format {
        Format::Auto | Format::Csv => csv::parse(source, body),
        Format::Jsonl => jsonl::parse(source, body),
        Format::Signals => lines::parse_signals(source, body),
        Format::Lines => match algo.or_else(|| guess_lines_algo(body)) {
            Some(algo) => lines::parse_hashes(source, body, algo),
            None => ParsedList {
                entries: Entries::default(),
                warnings: Vec::new(),
                errors: vec![RowError { file: source.to_string(), line: 1, column: None, kind: ErrorKind::AlgoNeeded }],
                rows: 0,
                columns: Vec::new(),
            },
        },
    }
}

/// Sets one algorithm's digest on an entry from hex; the error names the problem.
pub(crate) fn set_hex(entry: &mut Entry, algo: Algo, text: &str) -> Result<(), ErrorKind> {
    use hashscan_hash::parse_hex;
    match algo {
        Algo::Md5 => entry.md5 = Some(parse_hex(text).map_err(ErrorKind::Hex)?),
        Algo::Sha1 => entry.sha1 = Some(parse_hex(text).map_err(ErrorKind::Hex)?),
        Algo::Sha256 => entry.sha256 = Some(parse_hex(text).map_err(ErrorKind::Hex)?),
        Algo::Blake3 => entry.blake3 = Some(parse_hex(text).map_err(ErrorKind::Hex)?),
        Algo::Pdq => entry.pdq = Some(PdqHash::from_bytes(parse_hex(text).map_err(ErrorKind::Hex)?)),
    }
    Ok(())
}
