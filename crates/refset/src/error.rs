//! Errors and warnings about a reference file, each naming its place.
//!
//! Messages never contain a hash from the file: a header that turns out to
//! be a data row, or a misplaced value, is shown as `<hex value>`, so an error printed to a terminal or a log does not leak
//! part of the list.

use std::fmt;
use std::path::PathBuf;

use hashscan_hash::HexError;

/// The column names a header may use, for error messages.
pub(crate) const ACCEPTED: &str = "md5, sha1, sha256, blake3, pdq (at least one), plus optional id, label, pdq_quality";

/// Why a reference set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file (or reader) could not be read at all.
    #[error("cannot read reference file {}", file.display())]
    Io {
        /// The file as named by the caller.
        file: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but has malformed content; every problem is listed,
    /// in file order.
    #[error("{}", invalid_summary(errors))]
    Invalid {
        /// All problems found (never empty when built by this crate).
        errors: Vec<RowError>,
    },
    /// A built index file is damaged, truncated, or of another format version.
    #[error("{}: not a usable reference index: {detail}", file.display())]
    Index {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A reference-set definition (list options, TOML) is wrong; names the key.
    #[error("{context}: {detail}")]
    Spec {
        /// Where: the file and key, or the option.
        context: String,
        /// What is wrong and what is accepted.
        detail: String,
    },
    /// The set would have more items than an index can address.
    #[error("too many items for one reference set (at most {})", u32::MAX - 1)]
    TooManyItems,
}

fn invalid_summary(errors: &[RowError]) -> String {
    match errors.first() {
        Some(first) => format!("{} error(s) in reference file, the first: {first}", errors.len()),
        None => "invalid reference file".to_string(),
    }
}

/// One problem at a place in a reference file: a malformed row, or a header
/// that cannot be used (then the error's line is the header line).
#[derive(Debug, PartialEq, Eq)]
pub struct RowError {
    /// The file as named by the caller.
    pub file: String,
    /// 1-based line where the row starts (a quoted field may span lines).
    pub line: u64,
    /// The cell at fault, when there is one.
    pub column: Option<Column>,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// A column of a reference file, by position and header name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// 1-based position in the row.
    pub number: usize,
    /// The header name as written (trimmed).
    pub name: String,
}

/// What is wrong at a [`RowError`]'s place.
// Not `Clone`: `hashscan_hash::HexError` is not.
#[derive(Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// No header line: the file is empty or holds only comments and blank lines.
    NoHeader,
    /// The header names no hash column.
    NoHashColumn {
        /// The header cells found (values that look like digests replaced by `<hex value>`).
        found: Vec<String>,
        /// True when a header cell looks like a digest: the file probably
        /// starts with data and lacks its header line.
        looks_like_data: bool,
    },
    /// A known column name appears twice (case-insensitively).
    DuplicateColumn {
        /// 1-based position of the first column with that name.
        first: usize,
    },
    /// The row has a different number of fields than the header.
    FieldCount {
        /// Fields in the header.
        expected: usize,
        /// Fields in this row.
        found: usize,
    },
    /// A hash cell is not hex of the algorithm's length.
    Hex(HexError),
    /// None of the row's hash cells is filled in.
    NoHash,
    /// `pdq_quality` is not an integer in 0..=100.
    Quality {
        /// The value given (`<hex value>` if it looks like a digest, cut if long).
        value: String,
    },
    /// `pdq_quality` is given on a row without a PDQ hash.
    QualityWithoutPdq,
    /// A cell this crate reads is not valid UTF-8.
    NotUtf8,
    /// The file has more items than an in-memory set can index (2³² − 1).
    TooManyItems,
    /// The CSV reader failed on this row (message from the `csv` crate).
    Csv(String),
    /// A JSON Lines row is not a JSON object of the expected shape.
    Json(String),
    /// The file looks gzip-compressed but does not decompress.
    Gzip(String),
    /// A hash-per-line file whose hashes could be of several algorithms
    /// (64 hex digits: SHA-256, BLAKE3 or PDQ) needs its algorithm named.
    AlgoNeeded,
    /// A signal line names a hash type we do not know.
    UnknownSignalType {
        /// The name given (redacted, cut).
        name: String,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoHeader => write!(
                f,
                "no header line (the file is empty or holds only comments and blank lines); accepted columns: {ACCEPTED}"
            ),
            Self::NoHashColumn { found, looks_like_data } => {
                let found: Vec<String> = found.iter().map(|n| format!("{n:?}")).collect();
                write!(f, "header names no hash column (found {}); accepted columns: {ACCEPTED}", found.join(", "))?;
                if *looks_like_data {
                    write!(f, "; the first line looks like data: a header line is required")?;
                }
                Ok(())
            }
            Self::DuplicateColumn { first } => write!(f, "duplicate column (same name as column {first})"),
            Self::FieldCount { expected, found } => {
                write!(f, "expected {expected} fields as in the header, found {found}")
            }
            Self::Hex(e) => write!(f, "{e}"),
            Self::NoHash => write!(f, "row has no hash (every hash cell is empty)"),
            Self::Quality { value } => write!(f, "expected an integer from 0 to 100, found {value:?}"),
            Self::QualityWithoutPdq => write!(f, "pdq_quality given on a row without a pdq hash"),
            Self::NotUtf8 => write!(f, "not valid UTF-8 (reference files must be UTF-8)"),
            Self::TooManyItems => write!(f, "too many items for one reference set (at most {})", u32::MAX),
            Self::Csv(msg) => write!(f, "cannot read row: {msg}"),
            Self::Json(msg) => write!(f, "not a valid JSON Lines row: {msg}"),
            Self::Gzip(msg) => write!(f, "cannot decompress: {msg}"),
            Self::AlgoNeeded => {
                write!(f, "one hash per line, but which algorithm? name it (algo = \"sha256\", \"blake3\" or \"pdq\")")
            }
            Self::UnknownSignalType { name } => {
                write!(f, "unknown signal type {name:?} (expected md5, sha1, sha256, blake3 or pdq)")
            }
        }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: ", self.file)?;
        } else {
            write!(f, "{}:{}: ", self.file, self.line)?;
        }
        match &self.column {
            // JSON Lines: a key, not a position.
            Some(c) if c.number == 0 => write!(f, "key {:?}: ", c.name)?,
            Some(c) => write!(f, "column {} ({}): ", c.number, c.name)?,
            None => {}
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for RowError {}

/// Something worth telling the operator that does not stop loading.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// Header columns this crate does not know; their cells are ignored.
    /// Given once per file, naming all of them.
    UnknownColumns {
        /// The file as named by the caller.
        file: String,
        /// 1-based line of the header.
        line: u64,
        /// The ignored columns, by position and (redacted) name.
        columns: Vec<Column>,
    },
    /// A reference file or index that any local user can read.
    WorldReadable {
        /// The file.
        file: String,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WorldReadable { file } => write!(
                f,
                "{file} is readable by every user of this machine; reference sets are sensitive (chmod 600 it)"
            ),
            Self::UnknownColumns { file, line, columns } => {
                let names: Vec<String> = columns
                    .iter()
                    .map(|c| {
                        if c.name.is_empty() {
                            format!("column {} (unnamed)", c.number)
                        } else {
                            format!("{:?}", c.name)
                        }
                    })
                    .collect();
                write!(
                    f,
                    "{file}:{line}: ignoring {} unknown column(s): {} (known: md5, sha1, sha256, blake3, pdq, id, label, pdq_quality)",
                    columns.len(),
                    names.join(", ")
                )
            }
        }
    }
}

/// True when `s` looks like a hex digest (16 or more hex digits).
pub(crate) fn looks_like_digest(s: &str) -> bool {
    s.len() >= 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A cell value made safe to print: anything that looks like a digest
/// becomes `<hex value>`, so no message leaks a listed hash, and long values
/// are cut to 24 characters.
pub(crate) fn redact(s: &str) -> String {
    if looks_like_digest(s) {
        return "<hex value>".to_string();
    }
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(24).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}
