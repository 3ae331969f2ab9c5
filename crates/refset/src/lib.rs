//! The reference set: the hash lists crawled images are matched against.
//!
//! A hotline matches against several lists at once — its own confirmed
//! material, police and international lists, each trusted differently, and
//! `ignore` lists of benign hashes that keep causing false alarms. A
//! [`ReferenceSet`] is a named collection of such lists ([`SetSpec`],
//! [`ListSpec`]): every item knows its list, and a lookup returns every
//! list that has the image, exactly (MD5, SHA-1, SHA-256, BLAKE3) or within
//! the list's PDQ radius.
//!
//! Users: the **matcher** ([`ReferenceSet::match_image`]), `hashscan refset
//! check` ([`check`]), `hashscan refset build` ([`ReferenceSet::write_index`])
//! and `hashscan match`.
//!
//! Decisions a reader might question:
//!
//! * **One representation.** A set is always the byte image of the index
//!   file (see `layout.rs`): sorted digest arrays searched in place, a PDQ
//!   multi-index, items of 16 bytes, interned strings. `refset build` writes
//!   it; loading memory-maps it, so ten million hashes load in the time it
//!   takes to check them; a CSV given directly is built into the same image
//!   in memory. Lookups never care which.
//! * **The version is a content hash** of that image (BLAKE3, first 16 hex
//!   digits): every hit records it, and the same lists with the same settings
//!   give the same version however they were loaded.
//! * **The lists are sensitive.** This crate logs nothing; no error,
//!   warning or `Debug` output shows a hash from a list; index files are
//!   written readable by their owner only, and loading one that others can
//!   read gives a [`Warning::WorldReadable`].
//!
//! # List formats
//!
//! Any list file may be gzip-compressed. Formats ([`Format`], detected from
//! the content unless given):
//!
//! * **CSV/TSV** with a header naming at least one of `md5`, `sha1`,
//!   `sha256`, `blake3`, `pdq`, and optionally `id`, `label`, `pdq_quality`
//!   (case-insensitive; TSV when the header has a tab). Unknown columns are
//!   ignored with one [`Warning`] naming them. One item per row, empty cells
//!   allowed, at least one hash per row. Lines starting with `#` and blank
//!   lines are skipped (line numbers still count them).
//! * **JSON Lines**: one object per line with the same keys (the output of
//!   `hashscan hash --format jsonl` works as it is).
//! * **One hash per line** of one algorithm (`md5sum` output works; 64-digit
//!   hashes need the algorithm named).
//! * **Signal lines**: `algo,hex[,id]`, e.g. `pdq,<hex>`.
//!
//! Within a list, a digest listed again is a duplicate, counted, and the
//! first row wins. Every malformed row is a [`RowError`] naming file, line
//! and column, e.g. `refs.csv:7: column 2 (sha1): expected 40 hex digits,
//! found 39`; [`check`] reports all of them, loading refuses on any.
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
//! assert_eq!((item.id, item.line, item.list.name.as_str()), (Some("X1"), 3, "refs"));
//! assert_eq!(set.version().len(), 16);
//! # Ok::<(), hashscan_refset::LoadError>(())
//! ```
#![deny(missing_docs)]

mod algo;
mod build;
mod error;
mod formats;
mod layout;
mod pdqidx;
mod spec;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::Path;

pub use algo::{Algo, UnknownAlgo};
pub use build::ListMeta;
pub use error::{Column, ErrorKind, LoadError, RowError, Warning};
pub use formats::{Format, MAX_LIST_BYTES};
use hashscan_hash::Digests;
use hashscan_pdq::PdqHash;
pub use spec::{ListKind, ListSpec, SetSpec, DEFAULT_MIN_QUALITY, DEFAULT_PDQ_RADIUS, MAX_PDQ_RADIUS};

use crate::build::{ListInput, SetMeta};
use crate::layout::{AlignedBytes, ItemRec, Section, Sections, NO_QUALITY, NO_STRING};

/// One listed item, as found by a lookup. `Debug` leaves its PDQ hash out:
/// the lists are sensitive.
#[derive(Clone, Copy, PartialEq)]
pub struct ItemView<'a> {
    /// Position among the set's items (stable for a given version).
    pub index: u32,
    /// The list's own identifier for the item, if any.
    pub id: Option<&'a str>,
    /// A category or description, if any.
    pub label: Option<&'a str>,
    /// 1-based line in the list file.
    pub line: u64,
    /// The list it is on.
    pub list: &'a ListMeta,
    /// Its PDQ hash, if it has one.
    pub pdq: Option<PdqHash>,
    /// The quality given with its PDQ hash, if any.
    pub pdq_quality: Option<u8>,
}

impl fmt::Debug for ItemView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemView")
            .field("index", &self.index)
            .field("id", &self.id)
            .field("label", &self.label)
            .field("line", &self.line)
            .field("list", &self.list.name)
            .field("has_pdq", &self.pdq.is_some())
            .field("pdq_quality", &self.pdq_quality)
            .finish()
    }
}

/// One way an image matched an item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match<'a> {
    /// The item.
    pub item: ItemView<'a>,
    /// The algorithm that matched.
    pub algo: Algo,
    /// 0 for cryptographic matches, the Hamming distance for PDQ.
    pub distance: u32,
}

/// Everything a set says about one image.
#[derive(Debug, Clone, Default)]
pub struct MatchReport<'a> {
    /// Every match in every list: exact ones first, then PDQ by distance.
    pub matches: Vec<Match<'a>>,
    /// Lists whose PDQ radius could not be applied because the image's PDQ
    /// quality is below the list's minimum: (list, quality, minimum).
    pub low_quality: Vec<(&'a ListMeta, u8, u8)>,
}

impl MatchReport<'_> {
    /// True when an `ignore` list has the image.
    pub fn ignored(&self) -> bool {
        self.matches.iter().any(|m| m.item.list.kind == ListKind::Ignore)
    }
}

enum Backing {
    Memory(AlignedBytes),
    Mapped(memmap2::Mmap),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Memory(b) => b.as_bytes(),
            Backing::Mapped(m) => m,
        }
    }
}

/// A loaded reference set.
///
/// Invariant (checked when loading): every section is in bounds and aligned,
/// digest arrays are sorted and their item numbers valid, every item's list
/// and strings are valid, and the PDQ index is consistent with the hashes.
pub struct ReferenceSet {
    source: String,
    version: String,
    backing: Backing,
    sections: Sections,
    meta: SetMeta,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> LoadError + '_ {
    move |source| LoadError::Io { file: path.to_path_buf(), source }
}

/// The version string of a file image: BLAKE3 of the body, 16 hex digits.
fn version_of(digest: &[u8; 32]) -> String {
    hex::encode(&digest[..8])
}

impl ReferenceSet {
    /// Loads a reference: a built index file (memory-mapped), a set
    /// definition (`.toml`, see [`SetSpec::from_toml_file`]), or a single
    /// list file of any format, built in memory as a `match` list named
    /// after the file. `Err(LoadError::Invalid)` carries every malformed row.
    pub fn load(path: &Path) -> Result<(ReferenceSet, Vec<Warning>), LoadError> {
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml")) {
            return Self::from_spec(&SetSpec::from_toml_file(path)?);
        }
        let mut head = [0u8; 8];
        let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).map_err(io_error(path))?;
        if n == 8 && &head == layout::MAGIC {
            return Self::open_index(path).map(|s| (s, world_readable(path)));
        }
        let spec = SetSpec::new("reference", vec![ListSpec::for_file(path)])?;
        Self::from_spec(&spec)
    }

    /// Reads every list of a definition and builds the set in memory.
    /// Errors of all lists are collected before giving up.
    pub fn from_spec(spec: &SetSpec) -> Result<(ReferenceSet, Vec<Warning>), LoadError> {
        let mut inputs = Vec::new();
        let mut warnings = Vec::new();
        let mut errors = Vec::new();
        for list in &spec.lists {
            warnings.extend(world_readable(&list.file));
            let bytes = std::fs::read(&list.file).map_err(io_error(&list.file))?;
            let source = list.file.display().to_string();
            let (input, parsed_warnings, parsed_errors) = read_list(&source, bytes, list);
            warnings.extend(parsed_warnings);
            errors.extend(parsed_errors);
            inputs.extend(input);
        }
        if !errors.is_empty() {
            return Err(LoadError::Invalid { errors });
        }
        let name =
            spec.lists.first().filter(|_| spec.lists.len() == 1).map_or(spec.name.clone(), |_| spec.name.clone());
        let set = Self::build(&name, inputs, &describe(spec))?;
        Ok((set, warnings))
    }

    /// Parses one list from a reader into a set of that one `match` list
    /// (named after `source_name`'s file stem).
    pub fn parse(source_name: &str, mut reader: impl Read) -> Result<(ReferenceSet, Vec<Warning>), LoadError> {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).map_err(|source| LoadError::Io { file: source_name.into(), source })?;
        Self::from_bytes(source_name, &bytes)
    }

    /// [`parse`](Self::parse) for bytes in memory.
    pub fn from_bytes(source_name: &str, bytes: &[u8]) -> Result<(ReferenceSet, Vec<Warning>), LoadError> {
        let list = ListSpec::for_file(Path::new(source_name));
        let (input, warnings, errors) = read_list(source_name, bytes.to_vec(), &list);
        if !errors.is_empty() {
            return Err(LoadError::Invalid { errors });
        }
        let set = Self::build("reference", input.into_iter().collect(), source_name)?;
        Ok((set, warnings))
    }

    fn build(name: &str, inputs: Vec<ListInput>, source: &str) -> Result<ReferenceSet, LoadError> {
        let (image, _) = build::build(name, inputs)?;
        Self::from_image(source, Backing::Memory(image), false)
    }

    /// Opens a built index file by memory-mapping it, and checks it
    /// (including its checksum) before any lookup.
    pub fn open_index(path: &Path) -> Result<ReferenceSet, LoadError> {
        let file = std::fs::File::open(path).map_err(io_error(path))?;
        // SAFETY: the map is read-only and private to this process; a file
        // changed underneath would give wrong answers, not memory unsafety
        // in our code, since every access is bounds-checked against the
        // validated section table. `refset build` replaces files by rename,
        // never in place.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_error(path))?;
        Self::from_image(&path.display().to_string(), Backing::Mapped(map), true)
    }

    fn from_image(source: &str, backing: Backing, verify: bool) -> Result<ReferenceSet, LoadError> {
        let bad = |detail: String| LoadError::Index { file: source.into(), detail };
        let bytes = backing.bytes();
        let (sections, digest) = layout::read(bytes, verify).map_err(bad)?;
        let meta: SetMeta =
            serde_json::from_slice(&bytes[sections.get(Section::Meta)]).map_err(|e| bad(format!("metadata: {e}")))?;
        let set = ReferenceSet { source: source.to_string(), version: version_of(&digest), backing, sections, meta };
        set.validate().map_err(bad)?;
        Ok(set)
    }

    /// Checks everything lookups rely on, once.
    fn validate(&self) -> Result<(), String> {
        let items = self.items_raw();
        let strings = self.section(Section::Strings);
        let lists = self.meta.lists.len();
        let string_ok = |at: u32| -> bool {
            if at == NO_STRING {
                return true;
            }
            let at = at as usize;
            let Some(len) = strings.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            else {
                return false;
            };
            strings.get(at + 4..at + 4 + len).is_some_and(|s| std::str::from_utf8(s).is_ok())
        };
        for (i, it) in items.iter().enumerate() {
            if usize::from(it.list) >= lists || !string_ok(it.id) || !string_ok(it.label) {
                return Err(format!("item {i} refers to a missing list or string"));
            }
        }
        for algo in [Algo::Md5, Algo::Sha1, Algo::Sha256, Algo::Blake3] {
            let (keys, key_len, ids) = self.exact_arrays(algo);
            if keys.len() / key_len != ids.len() {
                return Err(format!("{algo} digests and items differ in number"));
            }
            if keys.chunks_exact(key_len).zip(keys.chunks_exact(key_len).skip(1)).any(|(a, b)| a > b) {
                return Err(format!("{algo} digests are not sorted"));
            }
            if ids.iter().any(|&i| i as usize >= items.len()) {
                return Err(format!("{algo} digests refer to missing items"));
            }
        }
        let hashes = self.pdq_hashes();
        if hashes.len() > items.len() {
            return Err("more PDQ hashes than items".into());
        }
        self.pdq_index(true).map(|_| ())
    }

    /// The PDQ radius structure over the image's arrays: checked in full
    /// once when the set is loaded, then only for shape on each query.
    fn pdq_index(&self, full: bool) -> Result<pdqidx::Radius<'_>, String> {
        let slices = self.u32s(Section::PdqIndexSlices).first().copied().ok_or("PDQ index slice count missing")?;
        let (offsets, ids) = (self.u32s(Section::PdqIndexOffsets), self.u32s(Section::PdqIndexIds));
        pdqidx::open(slices, self.pdq_hashes(), offsets, ids, full)
    }

    fn section(&self, s: Section) -> &[u8] {
        &self.backing.bytes()[self.sections.get(s)]
    }

    fn u32s(&self, s: Section) -> &[u32] {
        // Sections start 64-aligned in an 8-aligned image and were checked
        // to hold whole elements when loaded.
        bytemuck::cast_slice(self.section(s))
    }

    fn items_raw(&self) -> &[ItemRec] {
        bytemuck::cast_slice(self.section(Section::Items))
    }

    /// The set's PDQ hashes; hash `i` belongs to item `i`.
    fn pdq_hashes(&self) -> &[[u8; 32]] {
        bytemuck::cast_slice(self.section(Section::PdqHashes))
    }

    fn exact_arrays(&self, algo: Algo) -> (&[u8], usize, &[u32]) {
        let (keys, items) = match algo {
            Algo::Md5 => (Section::Md5Keys, Section::Md5Items),
            Algo::Sha1 => (Section::Sha1Keys, Section::Sha1Items),
            Algo::Sha256 => (Section::Sha256Keys, Section::Sha256Items),
            Algo::Blake3 | Algo::Pdq => (Section::Blake3Keys, Section::Blake3Items),
        };
        (self.section(keys), algo.len_bytes(), self.u32s(items))
    }

    fn string(&self, at: u32) -> Option<&str> {
        if at == NO_STRING {
            return None;
        }
        let s = self.section(Section::Strings);
        let at = at as usize;
        let len = s.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)?;
        s.get(at + 4..at + 4 + len).and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The item at `index`, if there is one.
    pub fn item(&self, index: u32) -> Option<ItemView<'_>> {
        let rec = self.items_raw().get(index as usize)?;
        let pdq = self.pdq_hashes().get(index as usize).map(|h| PdqHash::from_bytes(*h));
        Some(ItemView {
            index,
            id: self.string(rec.id),
            label: self.string(rec.label),
            line: u64::from(rec.line),
            list: self.meta.lists.get(usize::from(rec.list))?,
            pdq,
            pdq_quality: (pdq.is_some() && rec.quality != NO_QUALITY).then_some(rec.quality),
        })
    }

    /// Every item, in index order: those with a PDQ hash first, each group
    /// in list and file order.
    pub fn items(&self) -> impl Iterator<Item = ItemView<'_>> {
        (0..self.len() as u32).filter_map(|i| self.item(i))
    }

    /// Positions of `digest` in the sorted array of `algo`.
    fn exact_range(&self, algo: Algo, digest: &[u8]) -> Range<usize> {
        let (keys, len, _) = self.exact_arrays(algo);
        if algo == Algo::Pdq || digest.len() != len || keys.is_empty() {
            return 0..0;
        }
        let n = keys.len() / len;
        let at = |i: usize| &keys[i * len..(i + 1) * len];
        let lo = partition_point(n, |i| at(i) < digest);
        let hi = lo + partition_point(n - lo, |i| at(lo + i) <= digest);
        lo..hi
    }

    /// Every item listing `digest` for a cryptographic algorithm, in list
    /// order. Empty for [`Algo::Pdq`] (PDQ matches by radius) and for a
    /// digest of the wrong length.
    pub fn lookup(&self, algo: Algo, digest: &[u8]) -> Vec<ItemView<'_>> {
        let (_, _, ids) = self.exact_arrays(algo);
        self.exact_range(algo, digest).filter_map(|i| self.item(ids[i])).collect()
    }

    /// The first item listing `digest` (see [`lookup`](Self::lookup)).
    pub fn find(&self, algo: Algo, digest: &[u8]) -> Option<ItemView<'_>> {
        self.lookup(algo, digest).into_iter().next()
    }

    /// Every PDQ item within `radius` of `hash`, nearest first, whatever the
    /// lists' own radii.
    pub fn near(&self, hash: &PdqHash, radius: u32) -> Vec<(ItemView<'_>, u32)> {
        let mut raw = Vec::new();
        // Checked when the set was loaded; an error here cannot happen.
        if let Ok(index) = self.pdq_index(false) {
            pdqidx::query(&index, hash.as_bytes(), radius, &mut raw);
        }
        raw.sort_unstable_by_key(|&(i, d)| (d, i));
        raw.into_iter().filter_map(|(i, d)| self.item(i).map(|it| (it, d))).collect()
    }

    /// Everything the set says about an image: exact matches on its digests
    /// in every list, and PDQ matches within each list's radius when the
    /// image's PDQ quality reaches the list's minimum.
    pub fn match_image(&self, digests: &Digests, pdq: Option<(&PdqHash, u8)>) -> MatchReport<'_> {
        let exact: Vec<(Algo, &[u8])> = [Algo::Sha256, Algo::Blake3, Algo::Sha1, Algo::Md5]
            .into_iter()
            .filter_map(|a| a.crypto().map(|c| (a, digests.get(c))))
            .collect();
        self.match_hashes(&exact, pdq)
    }

    /// [`match_image`](Self::match_image) for whatever hashes are known:
    /// `(algorithm, digest)` pairs (a PDQ pair here is ignored; give PDQ with
    /// its quality as `pdq`).
    pub fn match_hashes(&self, exact: &[(Algo, &[u8])], pdq: Option<(&PdqHash, u8)>) -> MatchReport<'_> {
        let mut report = MatchReport::default();
        for &(algo, digest) in exact {
            for item in self.lookup(algo, digest) {
                report.matches.push(Match { item, algo, distance: 0 });
            }
        }
        let Some((hash, quality)) = pdq else { return report };
        let usable: Vec<&ListMeta> = self
            .meta
            .lists
            .iter()
            .filter(|l| l.counts.get(&Algo::Pdq).copied().unwrap_or(0) > 0)
            .filter(|l| {
                let ok = quality >= l.min_quality;
                if !ok {
                    report.low_quality.push((*l, quality, l.min_quality));
                }
                ok
            })
            .collect();
        let Some(radius) = usable.iter().map(|l| l.pdq_radius).max() else { return report };
        for (item, distance) in self.near(hash, radius) {
            if distance <= item.list.pdq_radius && usable.iter().any(|l| std::ptr::eq(*l, item.list)) {
                report.matches.push(Match { item, algo: Algo::Pdq, distance });
            }
        }
        report
    }

    /// The content version: 16 hex digits of the BLAKE3 of the index image.
    /// Recorded on every hit.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The set's name.
    pub fn name(&self) -> &str {
        &self.meta.name
    }

    /// Where the set came from (a file path, or the names of its lists).
    pub fn source_name(&self) -> &str {
        &self.source
    }

    /// The lists, in priority order, with their counts.
    pub fn lists(&self) -> &[ListMeta] {
        &self.meta.lists
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items_raw().len()
    }

    /// True when the set has no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of distinct listed digests for `algo`, over all lists.
    pub fn count(&self, algo: Algo) -> usize {
        self.meta.lists.iter().map(|l| l.counts.get(&algo).copied().unwrap_or(0) as usize).sum()
    }

    /// The index image (what [`write_index`](Self::write_index) writes).
    pub fn image(&self) -> &[u8] {
        self.backing.bytes()
    }

    /// Writes the set as an index file readable by its owner only, replacing
    /// `path` atomically (a temporary file, then a rename).
    pub fn write_index(&self, path: &Path) -> Result<(), LoadError> {
        use std::io::Write as _;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("index")));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp).map_err(io_error(&tmp))?;
        f.write_all(self.image()).and_then(|()| f.sync_all()).map_err(io_error(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io_error(path))
    }
}

/// `partition_point` over indices `0..n`.
fn partition_point(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

fn describe(spec: &SetSpec) -> String {
    spec.lists.iter().map(|l| l.file.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// A warning when `path` can be read by any user.
fn world_readable(path: &Path) -> Vec<Warning> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path) {
            if m.permissions().mode() & 0o004 != 0 {
                return vec![Warning::WorldReadable { file: path.display().to_string() }];
            }
        }
    }
    Vec::new()
}

/// Reads one list (decompressing it if needed) into builder input, with its
/// warnings and errors.
fn read_list(source: &str, bytes: Vec<u8>, spec: &ListSpec) -> (Option<ListInput>, Vec<Warning>, Vec<RowError>) {
    let bytes = match formats::gunzip_if_needed(source, bytes) {
        Ok(b) => b,
        Err(e) => return (None, Vec::new(), vec![e]),
    };
    let parsed = formats::parse(source, &bytes, spec.format, spec.algo);
    let meta = ListMeta {
        name: spec.name.clone(),
        kind: spec.kind,
        pdq_radius: spec.pdq_radius,
        min_quality: spec.min_quality,
        weight: spec.weight,
        source: Path::new(source).file_name().and_then(|n| n.to_str()).unwrap_or(source).to_string(),
        source_version: hex::encode(&blake3::hash(&bytes).as_bytes()[..8]),
        rows: parsed.rows,
        items: 0,
        duplicates: 0,
        counts: parsed.columns.iter().map(|&a| (a, 0)).collect(),
    };
    (Some(ListInput { meta, entries: parsed.entries }), parsed.warnings, parsed.errors)
}

impl fmt::Debug for ReferenceSet {
    /// Names the set and its sizes, never its hashes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts: BTreeMap<Algo, usize> =
            Algo::ALL.into_iter().map(|a| (a, self.count(a))).filter(|&(_, n)| n > 0).collect();
        f.debug_struct("ReferenceSet")
            .field("source", &self.source)
            .field("version", &self.version)
            .field("lists", &self.meta.lists.iter().map(|l| &l.name).collect::<Vec<_>>())
            .field("items", &self.len())
            .field("counts", &counts)
            .finish_non_exhaustive()
    }
}

/// What `hashscan refset check` prints for one list: the whole file
/// examined, every problem listed.
#[derive(Debug)]
pub struct CheckReport {
    /// The file as named by the caller.
    pub source: String,
    /// The list's name.
    pub list: String,
    /// The version a set of this one list would have (empty when it does not load).
    pub version: String,
    /// Data rows read, malformed ones included.
    pub rows: u64,
    /// Items the list would hold.
    pub items: u64,
    /// Distinct digests per algorithm the file can carry.
    pub counts: BTreeMap<Algo, u64>,
    /// Digests already listed by an earlier row.
    pub duplicates: u64,
    /// Warnings (unknown columns, permissions).
    pub warnings: Vec<Warning>,
    /// Every problem found, in file order; empty means the list loads.
    pub errors: Vec<RowError>,
}

impl CheckReport {
    /// True when the list would load.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Examines one list file (as a `match` list with default settings) and
/// reports everything about it. Fails only when it cannot be read.
pub fn check(path: &Path) -> Result<CheckReport, LoadError> {
    check_list(&ListSpec::for_file(path))
}

/// Examines one list of a definition, with its format and algorithm.
pub fn check_list(spec: &ListSpec) -> Result<CheckReport, LoadError> {
    let bytes = std::fs::read(&spec.file).map_err(io_error(&spec.file))?;
    let mut report = check_list_bytes(&spec.file.display().to_string(), bytes, spec);
    report.warnings.splice(0..0, world_readable(&spec.file));
    Ok(report)
}

/// [`check`] for a list held in memory.
pub fn check_bytes(source_name: &str, bytes: &[u8]) -> CheckReport {
    check_list_bytes(source_name, bytes.to_vec(), &ListSpec::for_file(Path::new(source_name)))
}

fn check_list_bytes(source: &str, bytes: Vec<u8>, spec: &ListSpec) -> CheckReport {
    let (input, warnings, errors) = read_list(source, bytes, spec);
    let mut report = CheckReport {
        source: source.to_string(),
        list: spec.name.clone(),
        version: String::new(),
        rows: 0,
        items: 0,
        counts: BTreeMap::new(),
        duplicates: 0,
        warnings,
        errors,
    };
    let Some(input) = input else { return report };
    report.rows = input.meta.rows;
    report.counts = input.meta.counts.clone();
    // Build even with errors: counts and duplicates of the good rows are
    // what an operator fixing the file wants to see.
    if let Ok((image, meta)) = build::build("reference", vec![input]) {
        if let Some(m) = meta.lists.first() {
            report.items = m.items;
            report.duplicates = m.duplicates;
            report.counts.extend(m.counts.iter().map(|(a, n)| (*a, *n)));
        }
        if report.errors.is_empty() {
            if let Ok((_, digest)) = layout::read(image.as_bytes(), false) {
                report.version = version_of(&digest);
            }
        }
    }
    report
}

impl ReferenceSet {
    /// The part of this set that `old` lacks: every digest of a list whose
    /// name and settings `old` has too is left out when `old` has the same
    /// digest in that list; lists that are new or whose settings changed
    /// come whole. Matching stored images against the difference finds
    /// exactly the hits that a new version adds (retro-matching).
    pub fn difference(&self, old: &ReferenceSet) -> Result<ReferenceSet, LoadError> {
        let same_list = |meta: &ListMeta| {
            old.lists().iter().position(|o| {
                o.name == meta.name
                    && o.kind == meta.kind
                    && o.pdq_radius == meta.pdq_radius
                    && o.min_quality == meta.min_quality
                    && o.weight == meta.weight
            })
        };
        let old_index: Vec<Option<usize>> = self.lists().iter().map(same_list).collect();
        let mut inputs: Vec<ListInput> = self
            .lists()
            .iter()
            .map(|m| ListInput {
                meta: ListMeta { items: 0, duplicates: 0, counts: BTreeMap::new(), ..m.clone() },
                entries: formats::Entries::default(),
            })
            .collect();
        // Only changed items get an entry: item → (list, entry in that list).
        let mut slot: HashMap<u32, (usize, u32)> = HashMap::new();
        let mut entry_of = |item: u32, inputs: &mut Vec<ListInput>| -> Option<(usize, u32)> {
            if let Some(&s) = slot.get(&item) {
                return Some(s);
            }
            let rec = *self.items_raw().get(item as usize)?;
            let list = usize::from(rec.list);
            let e = &mut inputs[list].entries;
            let n = e.meta.len() as u32;
            let id = self.string(rec.id).map(|s| e.strings.intern(s));
            let label = self.string(rec.label).map(|s| e.strings.intern(s));
            let quality = (rec.quality != NO_QUALITY).then_some(rec.quality);
            e.meta.push(formats::EntryMeta { line: rec.line, quality, id, label });
            slot.insert(item, (list, n));
            Some((list, n))
        };
        let unchanged = |item: u32, old_has: &dyn Fn(&ListMeta) -> bool| -> bool {
            let Some(rec) = self.items_raw().get(item as usize) else { return false };
            old_index[usize::from(rec.list)].is_some_and(|o| old_has(&old.lists()[o]))
        };
        for algo in [Algo::Md5, Algo::Sha1, Algo::Sha256, Algo::Blake3] {
            let (keys, len, ids) = self.exact_arrays(algo);
            for (digest, &item) in keys.chunks_exact(len).zip(ids) {
                let in_old = |l: &ListMeta| old.lookup(algo, digest).iter().any(|v| std::ptr::eq(v.list, l));
                if unchanged(item, &in_old) {
                    continue;
                }
                let Some((list, n)) = entry_of(item, &mut inputs) else { continue };
                let e = &mut inputs[list].entries;
                match algo {
                    Algo::Md5 => e.md5.extend(<[u8; 16]>::try_from(digest).ok().map(|d| (d, n))),
                    Algo::Sha1 => e.sha1.extend(<[u8; 20]>::try_from(digest).ok().map(|d| (d, n))),
                    Algo::Sha256 => e.sha256.extend(<[u8; 32]>::try_from(digest).ok().map(|d| (d, n))),
                    _ => e.blake3.extend(<[u8; 32]>::try_from(digest).ok().map(|d| (d, n))),
                }
            }
        }
        // The old set's PDQ hashes with their lists, sorted: "is this hash in
        // the old set, in the same list" is then a binary search. (A radius-0
        // query per hash through the index costs a bucket scan each: hours
        // at 10 million hashes; this is seconds.)
        let mut old_pdq: Vec<([u8; 32], u16)> = old
            .pdq_hashes()
            .iter()
            .enumerate()
            .filter_map(|(i, h)| old.items_raw().get(i).map(|rec| (*h, rec.list)))
            .collect();
        old_pdq.sort_unstable();
        for (item, hash) in self.pdq_hashes().iter().enumerate() {
            let item = item as u32;
            let in_old = |l: &ListMeta| {
                let start = old_pdq.partition_point(|(h, _)| h < hash);
                old_pdq[start..]
                    .iter()
                    .take_while(|(h, _)| h == hash)
                    .any(|(_, list)| old.lists().get(usize::from(*list)).is_some_and(|o| std::ptr::eq(o, l)))
            };
            if unchanged(item, &in_old) {
                continue;
            }
            if let Some((list, n)) = entry_of(item, &mut inputs) {
                inputs[list].entries.pdq.push((*hash, n));
            }
        }
        let source = format!("{} minus {}", self.version(), old.version());
        Self::build(self.name(), inputs, &source)
    }
}
