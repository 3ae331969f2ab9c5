//! The reference index file: one contiguous, 8-byte-aligned little-endian
//! image that is both what `refset build` writes and what a loaded set
//! reads from (memory-mapped from disk, or held in memory when a set is
//! built on the fly), so there is one code path for lookups.
//!
//! ```text
//! 0   magic "HSREFSET"
//! 8   format version u32 (1)      12  section count u32
//! 16  body length u64             24  BLAKE3 of the body (32 bytes)
//! 56  reserved (8 zero bytes)
//! 64  body: section table (count × 24 bytes: kind u32, 0 u32, offset u64, length u64),
//!     then the sections, each starting at a multiple of 64 from the file start
//! ```
//!
//! The set's version is the first 16 hex digits of the body's BLAKE3, so a
//! set built twice from the same lists with the same settings has the same
//! version whether it was loaded from CSV or from a built file.

use std::ops::Range;

use bytemuck::{Pod, Zeroable};

pub(crate) const MAGIC: &[u8; 8] = b"HSREFSET";
pub(crate) const FORMAT_VERSION: u32 = 1;
pub(crate) const HEADER_LEN: usize = 64;
const ENTRY_LEN: usize = 24;
const ALIGN: usize = 64;

/// What a section holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub(crate) enum Section {
    /// JSON: the set's name and its lists' metadata.
    Meta = 1,
    /// `[ItemRec]`.
    Items = 2,
    /// Id and label bytes, referenced by items.
    Strings = 3,
    /// Sorted digests, `[[u8; 16]]`.
    Md5Keys = 10,
    /// `[[u8; 20]]`.
    Sha1Keys = 11,
    /// `[[u8; 32]]`.
    Sha256Keys = 12,
    /// `[[u8; 32]]`.
    Blake3Keys = 13,
    /// Item of each MD5 key, `[u32]`.
    Md5Items = 20,
    /// `[u32]`.
    Sha1Items = 21,
    /// `[u32]`.
    Sha256Items = 22,
    /// `[u32]`.
    Blake3Items = 23,
    /// PDQ hashes, `[[u8; 32]]`; hash `i` belongs to item `i`.
    PdqHashes = 30,
    /// The PDQ multi-index (see `hashscan-pdq-index`), `[u32]`.
    PdqIndexOffsets = 31,
    /// `[u32]`.
    PdqIndexIds = 32,
    /// The multi-index's slice count, one `u32`.
    PdqIndexSlices = 33,
}

impl Section {
    pub(crate) const ALL: [Section; 15] = [
        Section::Meta,
        Section::Items,
        Section::Strings,
        Section::Md5Keys,
        Section::Sha1Keys,
        Section::Sha256Keys,
        Section::Blake3Keys,
        Section::Md5Items,
        Section::Sha1Items,
        Section::Sha256Items,
        Section::Blake3Items,
        Section::PdqHashes,
        Section::PdqIndexOffsets,
        Section::PdqIndexIds,
        Section::PdqIndexSlices,
    ];

    fn from_u32(v: u32) -> Option<Section> {
        Section::ALL.into_iter().find(|s| *s as u32 == v)
    }

    /// Size of one element, so lengths can be checked.
    pub(crate) fn element_size(self) -> usize {
        match self {
            Section::Meta | Section::Strings => 1,
            Section::Items => std::mem::size_of::<ItemRec>(),
            Section::Md5Keys => 16,
            Section::Sha1Keys => 20,
            Section::Sha256Keys | Section::Blake3Keys | Section::PdqHashes => 32,
            _ => 4,
        }
    }
}

/// No string: the id or label is absent.
pub(crate) const NO_STRING: u32 = u32::MAX;
/// No quality was given with the PDQ hash.
pub(crate) const NO_QUALITY: u8 = u8::MAX;

/// One item as stored: 16 bytes. Strings are `u32` length-prefixed in
/// [`Section::Strings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct ItemRec {
    /// Index of the list in the metadata.
    pub(crate) list: u16,
    /// PDQ quality given with the hash, or [`NO_QUALITY`].
    pub(crate) quality: u8,
    pub(crate) reserved: u8,
    /// 1-based line in the list file.
    pub(crate) line: u32,
    /// Offset of the id in the strings section, or [`NO_STRING`].
    pub(crate) id: u32,
    /// Offset of the label, or [`NO_STRING`].
    pub(crate) label: u32,
}

/// Bytes with 8-byte alignment, so sections can be viewed as `u32` arrays
/// without copying when a set is built in memory.
pub(crate) struct AlignedBytes {
    words: Vec<u64>,
    len: usize,
}

impl AlignedBytes {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(&self.words)[..self.len]
    }
}

/// Writes a file image from sections (in [`Section`] order), into one
/// buffer of exactly its size (tens of millions of hashes make a
/// gigabyte-sized image; it is never copied or grown).
pub(crate) fn write(sections: &[(Section, Vec<u8>)]) -> AlignedBytes {
    let table_end = HEADER_LEN + sections.len() * ENTRY_LEN;
    let mut offset = table_end.next_multiple_of(ALIGN);
    let mut placed = Vec::with_capacity(sections.len());
    for (_, data) in sections {
        placed.push(offset);
        offset = (offset + data.len()).next_multiple_of(ALIGN);
    }
    let total = placed.last().zip(sections.last()).map_or(table_end, |(at, (_, d))| at + d.len());
    let mut image = AlignedBytes { words: vec![0u64; total.div_ceil(8)], len: total };
    let out = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut image.words)[..total];
    for (i, ((kind, data), at)) in sections.iter().zip(&placed).enumerate() {
        let e = HEADER_LEN + i * ENTRY_LEN;
        out[e..e + 4].copy_from_slice(&(*kind as u32).to_le_bytes());
        out[e + 8..e + 16].copy_from_slice(&(*at as u64).to_le_bytes());
        out[e + 16..e + 24].copy_from_slice(&(data.len() as u64).to_le_bytes());
        out[*at..at + data.len()].copy_from_slice(data);
    }
    out[0..8].copy_from_slice(MAGIC);
    out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(sections.len() as u32).to_le_bytes());
    out[16..24].copy_from_slice(&((total - HEADER_LEN) as u64).to_le_bytes());
    let digest = blake3::hash(&out[HEADER_LEN..]);
    out[24..56].copy_from_slice(digest.as_bytes());
    image
}

/// Where each section lies in a checked file image.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sections {
    ranges: Vec<(Section, Range<usize>)>,
}

impl Sections {
    pub(crate) fn get(&self, s: Section) -> Range<usize> {
        self.ranges.iter().find(|(k, _)| *k == s).map_or(0..0, |(_, r)| r.clone())
    }
}

/// Reads the header and section table of a file image and checks every
/// bound; `verify` also recomputes the body's BLAKE3. Returns the sections
/// and the body digest.
pub(crate) fn read(bytes: &[u8], verify: bool) -> Result<(Sections, [u8; 32]), String> {
    if cfg!(target_endian = "big") {
        return Err("index files are little-endian; this machine is big-endian".into());
    }
    if bytes.len() < HEADER_LEN || &bytes[0..8] != MAGIC {
        return Err("not a hashscan reference index (bad magic)".into());
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default());
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
    let version = u32_at(8);
    if version != FORMAT_VERSION {
        return Err(format!("format version {version}, this hashscan reads {FORMAT_VERSION}; rebuild the index"));
    }
    let count = u32_at(12) as usize;
    let body_len = u64_at(16);
    if body_len != (bytes.len() - HEADER_LEN) as u64 {
        return Err(format!(
            "truncated or padded: header says {} body bytes, file has {}",
            body_len,
            bytes.len() - HEADER_LEN
        ));
    }
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&bytes[24..56]);
    if verify && blake3::hash(&bytes[HEADER_LEN..]).as_bytes() != &digest {
        return Err("checksum mismatch: the file is damaged".into());
    }
    let table_end = count.checked_mul(ENTRY_LEN).and_then(|n| n.checked_add(HEADER_LEN)).filter(|&e| e <= bytes.len());
    let Some(table_end) = table_end else {
        return Err(format!("section table of {count} entries does not fit"));
    };
    let mut ranges: Vec<(Section, Range<usize>)> = Vec::with_capacity(count);
    let mut last_end = table_end;
    for i in 0..count {
        let at = HEADER_LEN + i * ENTRY_LEN;
        let kind_raw = u32_at(at);
        let Some(kind) = Section::from_u32(kind_raw) else {
            return Err(format!("unknown section kind {kind_raw}"));
        };
        let (offset, len) = (u64_at(at + 8), u64_at(at + 16));
        let start = usize::try_from(offset).map_err(|_| "section offset too large".to_string())?;
        let end = usize::try_from(offset.saturating_add(len)).map_err(|_| "section too large".to_string())?;
        if start < last_end || end > bytes.len() || start % ALIGN != 0 {
            return Err(format!("section {kind:?} at {start}..{end} is out of bounds, misaligned or overlapping"));
        }
        if ranges.iter().any(|(k, _)| *k == kind) {
            return Err(format!("section {kind:?} appears twice"));
        }
        if (end - start) % kind.element_size() != 0 {
            return Err(format!("section {kind:?} length {} is not a whole number of elements", end - start));
        }
        last_end = end;
        ranges.push((kind, start..end));
    }
    Ok((Sections { ranges }, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_images_read_back_and_damage_is_caught() {
        let image = write(&[(Section::Meta, b"{}".to_vec()), (Section::Md5Keys, vec![7u8; 32])]).as_bytes().to_vec();
        let (s, _) = read(&image, true).unwrap();
        assert_eq!(&image[s.get(Section::Meta)], b"{}");
        assert_eq!(s.get(Section::Md5Keys).len(), 32);
        assert_eq!(s.get(Section::Items), 0..0);
        let mut damaged = image.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(read(&damaged, true).unwrap_err().contains("checksum"));
        assert!(read(&image[..image.len() - 1], false).unwrap_err().contains("truncated"));
        assert!(read(b"GIF89a", false).unwrap_err().contains("magic"));
        let mut future = image.clone();
        future[8] = 9;
        assert!(read(&future, false).unwrap_err().contains("format version 9"));
    }

    #[test]
    fn section_bounds_are_checked_without_trusting_the_table() {
        let mut image = write(&[(Section::Md5Keys, vec![1u8; 16])]).as_bytes().to_vec();
        // Point the section past the end of the file.
        image[HEADER_LEN + 8..HEADER_LEN + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(read(&image, false).unwrap_err().contains("out of bounds"));
        let mut image = write(&[(Section::Md5Keys, vec![1u8; 16])]).as_bytes().to_vec();
        image[HEADER_LEN + 16..HEADER_LEN + 24].copy_from_slice(&15u64.to_le_bytes());
        let err = read(&image, false).unwrap_err();
        assert!(err.contains("whole number"), "{err}");
        let mut image = write(&[(Section::Md5Keys, vec![1u8; 16])]).as_bytes().to_vec();
        image[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read(&image, false).unwrap_err().contains("does not fit"));
    }
}
