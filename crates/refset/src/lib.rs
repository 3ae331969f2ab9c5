//! The reference set: the hash list that crawled images are matched against.
//!
//! A hotline's list arrives as a CSV or TSV file (format below). This crate
//! parses it into a [`ReferenceSet`]: items (id, label, line) stored once,
//! with one exact index per cryptographic algorithm and the PDQ hashes kept
//! with their quality for radius matching. Two users:
//!
//! * the **matcher** loads the set with [`ReferenceSet::load`] and looks
//!   digests up with [`ReferenceSet::find`]; `hashscan scan` refuses to start
//!   on a file with any malformed row;
//! * **`hashscan refset check`** calls [`check`], which reads the whole file
//!   and reports *every* problem, with counts, instead of stopping at the first.
//!
//! Decisions a reader might question:
//!
//! * The [`version`](ReferenceSet::version) is a content hash of the file's
//!   bytes (BLAKE3, first 16 hex digits), not a date or a name: every hit
//!   records it, so a hit names exactly the list it matched, and re-exporting
//!   the same list gives the same version.
//! * Everything is loaded in memory (fixed-size digest arrays as hash-map
//!   keys, items in one `Vec`). An indexed, memory-mapped compact format for
//!   lists of tens of millions of hashes comes later.
//! * The file is sensitive. This crate logs nothing, and no error, warning or
//!   `Debug` output contains a hash from the file.
//!
//! # File format
//!
//! * UTF-8, optionally starting with a byte-order mark. The first line that is
//!   not blank and not a comment is the header; the file is TSV when that line
//!   contains a tab, CSV otherwise. Fields may be quoted (`"…"`, with `""` for a
//!   quote), and a quoted field may span lines.
//! * The header names at least one hash column — `md5`, `sha1`, `sha256`,
//!   `blake3`, `pdq` — and optionally `id`, `label` and `pdq_quality`. Names
//!   are case-insensitive and trimmed (`sha-1` and `sha-256` are accepted
//!   too). A known name given twice is an error. Any other column is ignored,
//!   with one [`Warning`] naming all of them, since real lists carry extras.
//! * One item per row. Cells are trimmed; empty cells are allowed, but each
//!   row needs at least one hash. A row may carry several algorithms (e.g. the
//!   MD5 and SHA-1 of one image): it is one item, found by any of them. Hex is
//!   case-insensitive. `pdq_quality` is an integer 0..=100 and needs a `pdq`
//!   hash on the same row.
//! * Blank lines, lines of only empty cells (`,,,` from spreadsheets) and
//!   lines whose first character is `#` (comments) are skipped; line numbers
//!   in messages still count them.
//! * A digest listed by an earlier row for the same algorithm is a duplicate,
//!   not an error: it is counted and the first row's item is kept.
//!
//! Every malformed row is a [`RowError`] naming file, line, column number and
//! name, and the reason, e.g.
//! `refs.csv:7: column 2 (sha1): expected 40 hex digits, found 39`.
//!
//! ```
//! use hashscan_hash::Digests;
//! use hashscan_refset::{Algo, ReferenceSet};
//!
//! let d = Digests::of(b"listed");
//! let file = format!("# example list\nid,md5,sha1,label\nX1,{},{},cat-a\n", hex::encode(d.md5), hex::encode(d.sha1));
//! let (set, warnings) = ReferenceSet::parse("refs.csv", file.as_bytes())?;
//! assert!(warnings.is_empty());
//! let item = set.find(Algo::Sha1, &d.sha1).expect("listed");
//! assert_eq!((item.id.as_deref(), item.line), (Some("X1"), 3));
//! assert_eq!(set.version().len(), 16);
//! # Ok::<(), hashscan_refset::LoadError>(())
//! ```
#![deny(missing_docs)]

mod algo;
mod error;
mod parse;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;
use std::path::Path;

pub use algo::{Algo, UnknownAlgo};
pub use error::{Column, ErrorKind, LoadError, RowError, Warning};
use hashscan_pdq::PdqHash;

/// One listed item: a row of the reference file that added at least one new
/// digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The list's own identifier for the item (`id` column), if any.
    pub id: Option<String>,
    /// A category or description (`label` column), if any.
    pub label: Option<String>,
    /// 1-based line of the row in the file.
    pub line: u64,
}

/// Position of an [`Item`] in [`ReferenceSet::items`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemIdx(u32);

impl ItemIdx {
    /// The index into [`ReferenceSet::items`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A PDQ hash from the file, for radius matching.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PdqItem {
    /// The hash.
    pub hash: PdqHash,
    /// The `pdq_quality` given with it, if any (0..=100).
    pub quality: Option<u8>,
    /// The item the hash belongs to.
    pub item: ItemIdx,
}

impl fmt::Debug for PdqItem {
    /// Leaves the hash out: the list is sensitive.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PdqItem").field("quality", &self.quality).field("item", &self.item).finish_non_exhaustive()
    }
}

/// Exact-match indexes, one per cryptographic algorithm, keyed by the digest.
#[derive(Default)]
struct Index {
    md5: HashMap<[u8; 16], ItemIdx>,
    sha1: HashMap<[u8; 20], ItemIdx>,
    sha256: HashMap<[u8; 32], ItemIdx>,
    blake3: HashMap<[u8; 32], ItemIdx>,
}

/// A loaded reference file: its items, an exact index per cryptographic
/// algorithm, and its PDQ hashes.
///
/// Invariant: every [`ItemIdx`] in the indexes and in
/// [`pdq_items`](Self::pdq_items) is a valid index into [`items`](Self::items),
/// and every item is reachable from at least one digest.
pub struct ReferenceSet {
    source: String,
    version: String,
    items: Vec<Item>,
    index: Index,
    pdq: Vec<PdqItem>,
}

impl ReferenceSet {
    /// Reads and parses a reference file. `Err(LoadError::Invalid)` carries
    /// every malformed row; warnings (unknown columns) do not stop loading.
    pub fn load(path: &Path) -> Result<(ReferenceSet, Vec<Warning>), LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io { file: path.to_path_buf(), source })?;
        Self::from_bytes(&path.display().to_string(), &bytes)
    }

    /// Parses a reference file from a reader; `source_name` names it in
    /// errors, warnings and [`source_name`](Self::source_name).
    pub fn parse(source_name: &str, mut reader: impl Read) -> Result<(ReferenceSet, Vec<Warning>), LoadError> {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).map_err(|source| LoadError::Io { file: source_name.into(), source })?;
        Self::from_bytes(source_name, &bytes)
    }

    /// Parses a reference file held in memory.
    pub fn from_bytes(source_name: &str, bytes: &[u8]) -> Result<(ReferenceSet, Vec<Warning>), LoadError> {
        let parsed = parse::parse(source_name, bytes);
        if !parsed.errors.is_empty() {
            return Err(LoadError::Invalid { errors: parsed.errors });
        }
        Ok((parsed.set, parsed.warnings))
    }

    /// The file's content version: the first 16 hex digits of the BLAKE3 hash
    /// of its bytes. Recorded on every hit.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The file name as given to [`load`](Self::load) or [`parse`](Self::parse).
    pub fn source_name(&self) -> &str {
        &self.source
    }

    /// The item listed under `digest` for a cryptographic algorithm (exact
    /// match). `None` when not listed, when `digest` has the wrong length for
    /// `algo`, and always for [`Algo::Pdq`]: PDQ matches by Hamming radius,
    /// over [`pdq_items`](Self::pdq_items).
    pub fn find(&self, algo: Algo, digest: &[u8]) -> Option<&Item> {
        let idx = match algo {
            Algo::Md5 => self.index.md5.get(<&[u8; 16]>::try_from(digest).ok()?),
            Algo::Sha1 => self.index.sha1.get(<&[u8; 20]>::try_from(digest).ok()?),
            Algo::Sha256 => self.index.sha256.get(<&[u8; 32]>::try_from(digest).ok()?),
            Algo::Blake3 => self.index.blake3.get(<&[u8; 32]>::try_from(digest).ok()?),
            Algo::Pdq => None,
        }?;
        self.items.get(idx.index())
    }

    /// All items, in file order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The item at `idx`; `None` for an index from another set that is out of range.
    pub fn item(&self, idx: ItemIdx) -> Option<&Item> {
        self.items.get(idx.index())
    }

    /// The PDQ hashes with their quality and item, in file order, without
    /// duplicates.
    pub fn pdq_items(&self) -> &[PdqItem] {
        &self.pdq
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when the set has no item (a file with a header and no rows).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Number of distinct digests listed for `algo`.
    pub fn count(&self, algo: Algo) -> usize {
        match algo {
            Algo::Md5 => self.index.md5.len(),
            Algo::Sha1 => self.index.sha1.len(),
            Algo::Sha256 => self.index.sha256.len(),
            Algo::Blake3 => self.index.blake3.len(),
            Algo::Pdq => self.pdq.len(),
        }
    }
}

impl fmt::Debug for ReferenceSet {
    /// Names the set and its sizes, never its hashes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts: BTreeMap<Algo, usize> =
            Algo::ALL.into_iter().map(|a| (a, self.count(a))).filter(|&(_, n)| n > 0).collect();
        f.debug_struct("ReferenceSet")
            .field("source", &self.source)
            .field("version", &self.version)
            .field("items", &self.items.len())
            .field("counts", &counts)
            .finish_non_exhaustive()
    }
}

/// What `hashscan refset check` prints: the whole file examined, every
/// problem listed.
#[derive(Debug)]
pub struct CheckReport {
    /// The file as named by the caller.
    pub source: String,
    /// The version a set loaded from this file would have.
    pub version: String,
    /// Data rows read (not counting header, comments and blank lines),
    /// including malformed ones.
    pub rows: u64,
    /// Items the set would hold (rows that are well formed and add at least
    /// one new digest).
    pub items: u64,
    /// Distinct digests per algorithm, for every hash column of the header.
    pub counts: BTreeMap<Algo, u64>,
    /// Digests already listed by an earlier row for the same algorithm.
    pub duplicates: u64,
    /// Warnings (unknown columns).
    pub warnings: Vec<Warning>,
    /// Every problem found, in file order; empty means the file loads.
    pub errors: Vec<RowError>,
}

impl CheckReport {
    /// True when the file would load.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Examines a reference file and reports everything about it: counts,
/// duplicates, warnings and *all* errors. Fails only when the file cannot be
/// read ([`LoadError::Io`]).
pub fn check(path: &Path) -> Result<CheckReport, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io { file: path.to_path_buf(), source })?;
    Ok(check_bytes(&path.display().to_string(), &bytes))
}

/// [`check`] for a file held in memory.
pub fn check_bytes(source_name: &str, bytes: &[u8]) -> CheckReport {
    let p = parse::parse(source_name, bytes);
    let counts = p.columns.iter().map(|&a| (a, p.set.count(a) as u64)).collect();
    CheckReport {
        source: source_name.to_string(),
        version: p.set.version.clone(),
        rows: p.rows,
        items: p.set.items.len() as u64,
        counts,
        duplicates: p.duplicates,
        warnings: p.warnings,
        errors: p.errors,
    }
}
