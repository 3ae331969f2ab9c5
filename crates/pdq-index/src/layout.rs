//! The array layout (described in the crate docs): how a hash is cut into
//! slices, the sizes of the arrays, and the checks that make borrowed arrays
//! from a file safe to query.

/// Fewest slices an index may use: 11 slices are 23 or 24 bits wide, whose
/// bucket tables (448 MiB of offsets) only pay off from about 30 M hashes.
pub const MIN_SLICES: usize = 11;

/// Most slices an index may use: 16 slices of 16 bits, 4 MiB of offsets, the
/// right choice up to about 0.7 M hashes.
pub const MAX_SLICES: usize = 16;

/// Most hashes one index can hold: ids and offsets are `u32`, and an offset
/// can equal n.
pub const MAX_HASHES: usize = u32::MAX as usize;

/// How a 256-bit hash is cut into `m` slices: slice `s` is bits
/// `start(s) .. start(s) + width(s)` counted from the most significant bit
/// of the big-endian hash (bit 0 = top bit of byte 0). The first
/// `256 mod m` slices are ⌈256/m⌉ bits wide, the others ⌊256/m⌋; slices are
/// contiguous and in order. With 16 slices, slice `s` is bytes `2s, 2s+1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceLayout {
    slices: usize,
    start: [u32; MAX_SLICES],
    width: [u32; MAX_SLICES],
    /// Where each slice's offsets begin in the `offsets` array.
    offsets_start: [usize; MAX_SLICES + 1],
}

impl SliceLayout {
    /// The layout with `slices` slices, or `None` outside
    /// [`MIN_SLICES`]`..=`[`MAX_SLICES`].
    pub const fn new(slices: usize) -> Option<SliceLayout> {
        if slices < MIN_SLICES || slices > MAX_SLICES {
            return None;
        }
        let mut start = [0u32; MAX_SLICES];
        let mut width = [0u32; MAX_SLICES];
        let mut offsets_start = [0usize; MAX_SLICES + 1];
        let wide = 256 % slices;
        let mut s = 0;
        let mut bit = 0u32;
        while s < slices {
            let w = (256 / slices + if s < wide { 1 } else { 0 }) as u32;
            start[s] = bit;
            width[s] = w;
            offsets_start[s + 1] = offsets_start[s] + (1usize << w) + 1;
            bit += w;
            s += 1;
        }
        let mut s2 = slices;
        while s2 < MAX_SLICES {
            offsets_start[s2 + 1] = offsets_start[s2];
            s2 += 1;
        }
        Some(SliceLayout { slices, start, width, offsets_start })
    }

    /// Number of slices, m.
    pub const fn slices(&self) -> usize {
        self.slices
    }

    /// First bit of slice `s` (0 = most significant bit of byte 0).
    pub const fn start(&self, s: usize) -> u32 {
        self.start[s]
    }

    /// Width of slice `s` in bits (16..=24).
    pub const fn width(&self, s: usize) -> u32 {
        self.width[s]
    }

    /// Number of buckets of slice `s`: 2^width.
    pub const fn buckets(&self, s: usize) -> usize {
        1 << self.width[s]
    }

    /// Range of slice `s`'s offsets (2^width + 1 of them) in `offsets`.
    pub fn offsets_range(&self, s: usize) -> std::ops::Range<usize> {
        self.offsets_start[s]..self.offsets_start[s + 1]
    }

    /// Length of the whole `offsets` array: Σ (2^width + 1) over the slices
    /// (16 slices: 1,048,592 = 4 MiB; 12 slices: 33,554,444 = 128 MiB).
    pub const fn offsets_len(&self) -> usize {
        self.offsets_start[self.slices]
    }

    /// Value of slice `s` of `hash`.
    #[inline(always)]
    pub fn value(&self, hash: &[u8; 32], s: usize) -> u32 {
        extract(hash, self.start[s], self.width[s])
    }
}

/// Bits `start .. start + width` of the big-endian 256-bit `hash`, as a
/// number (width 1..=32, start + width ≤ 256): one unaligned 8-byte load.
#[inline(always)]
pub(crate) fn extract(hash: &[u8; 32], start: u32, width: u32) -> u32 {
    let byte = ((start / 8) as usize).min(24);
    let mut word = [0u8; 8];
    word.copy_from_slice(&hash[byte..byte + 8]);
    let word = u64::from_be_bytes(word);
    let skip = start - 8 * byte as u32; // bits of the word above the slice; skip + width ≤ 64
    ((word << skip) >> (64 - width)) as u32
}

/// Why arrays do not form a valid index. The arrays normally come from a
/// file, so every inconsistency is an error, never a panic; each variant
/// names the slice and position so a corrupt file can be diagnosed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// More hashes than `u32` ids can address.
    #[error("{n} hashes are more than one PDQ index can hold (at most {MAX_HASHES})")]
    TooManyHashes {
        /// Number of hashes given.
        n: usize,
    },
    /// A slice count outside 11..=16.
    #[error("a PDQ index has {MIN_SLICES} to {MAX_SLICES} slices, not {slices}")]
    SliceCount {
        /// The count given.
        slices: usize,
    },
    /// The `offsets` array has the wrong length for the slice count.
    #[error("the PDQ index offsets array has {actual} entries, expected {expected} for {slices} slices")]
    OffsetsLength {
        /// Entries found.
        actual: usize,
        /// Σ (2^width + 1) over the slices.
        expected: usize,
        /// The slice count.
        slices: usize,
    },
    /// The `ids` array is not m × n long.
    #[error("the PDQ index ids array has {actual} entries, expected {expected} ({slices} slices × {n} hashes)")]
    IdsLength {
        /// Entries found.
        actual: usize,
        /// m × n.
        expected: usize,
        /// The slice count.
        slices: usize,
        /// Number of hashes.
        n: usize,
    },
    /// A slice's offsets do not start at 0.
    #[error("PDQ index slice {slice}: first offset is {value}, expected 0")]
    OffsetsStart {
        /// Slice number.
        slice: usize,
        /// The value found.
        value: u32,
    },
    /// A slice's offsets decrease.
    #[error("PDQ index slice {slice}: offset of bucket {bucket} is {value}, below the previous offset {previous}")]
    OffsetsDecrease {
        /// Slice number.
        slice: usize,
        /// Bucket whose start offset is too small.
        bucket: usize,
        /// Its offset.
        value: u32,
        /// The previous bucket's offset.
        previous: u32,
    },
    /// A slice's last offset is not n.
    #[error("PDQ index slice {slice}: last offset is {value}, expected the number of hashes {n}")]
    OffsetsEnd {
        /// Slice number.
        slice: usize,
        /// The value found.
        value: u32,
        /// Number of hashes.
        n: usize,
    },
    /// An id is not below n.
    #[error("PDQ index slice {slice}: id {id} at position {position} is not below the number of hashes {n}")]
    IdOutOfRange {
        /// Slice number.
        slice: usize,
        /// Position within the slice's ids.
        position: usize,
        /// The id found.
        id: u32,
        /// Number of hashes.
        n: usize,
    },
    /// [`PdqIndex::verify_contents`](crate::PdqIndex::verify_contents): an id
    /// sits in a bucket its hash does not belong to.
    #[error("PDQ index slice {slice}: id {id} is in bucket {bucket:#x} but its hash's slice value is {actual:#x}")]
    WrongBucket {
        /// Slice number.
        slice: usize,
        /// The id.
        id: u32,
        /// The bucket it was found in.
        bucket: usize,
        /// The bucket its hash belongs to.
        actual: u32,
    },
    /// [`PdqIndex::verify_contents`](crate::PdqIndex::verify_contents): an id
    /// appears twice in one slice (so another is missing).
    #[error("PDQ index slice {slice}: id {id} appears more than once")]
    DuplicateId {
        /// Slice number.
        slice: usize,
        /// The id.
        id: u32,
    },
    /// [`PdqIndex::from_le_bytes`](crate::PdqIndex::from_le_bytes): a byte
    /// array's length is not a multiple of its element size.
    #[error("PDQ index {array} section is {len} bytes, not a multiple of {element} bytes")]
    ByteLength {
        /// `hashes`, `offsets` or `ids`.
        array: &'static str,
        /// Its length in bytes.
        len: usize,
        /// Size of one element.
        element: usize,
    },
    /// [`PdqIndex::from_le_bytes`](crate::PdqIndex::from_le_bytes): a `u32`
    /// array does not start on a 4-byte boundary.
    #[error("PDQ index {array} section is not 4-byte aligned in memory")]
    Misaligned {
        /// `offsets` or `ids`.
        array: &'static str,
    },
    /// [`PdqIndex::from_le_bytes`](crate::PdqIndex::from_le_bytes) on a
    /// big-endian machine, where the file's `u32`s cannot be borrowed as they are.
    #[error("the PDQ index file format is little-endian and cannot be borrowed on a big-endian machine")]
    BigEndianHost,
}

/// Checks everything a query relies on to stay in bounds and to see every
/// hash: slice count, lengths, offsets starting at 0, non-decreasing and
/// ending at n, ids below n. One sequential pass over `offsets` and `ids`
/// (about 0.1 s for 10 M hashes); it does not read the hashes (see
/// [`crate::PdqIndex::verify_contents`] for that).
/// The O(1) part of [`validate`]: slice count and array lengths.
pub(crate) fn validate_lengths(
    slices: usize,
    n: usize,
    offsets: &[u32],
    ids: &[u32],
) -> Result<SliceLayout, IndexError> {
    let layout = SliceLayout::new(slices).ok_or(IndexError::SliceCount { slices })?;
    if n > MAX_HASHES {
        return Err(IndexError::TooManyHashes { n });
    }
    if offsets.len() != layout.offsets_len() {
        return Err(IndexError::OffsetsLength { actual: offsets.len(), expected: layout.offsets_len(), slices });
    }
    if ids.len() != slices * n {
        return Err(IndexError::IdsLength { actual: ids.len(), expected: slices * n, slices, n });
    }
    Ok(layout)
}

pub(crate) fn validate(slices: usize, n: usize, offsets: &[u32], ids: &[u32]) -> Result<SliceLayout, IndexError> {
    let layout = SliceLayout::new(slices).ok_or(IndexError::SliceCount { slices })?;
    if n > MAX_HASHES {
        return Err(IndexError::TooManyHashes { n });
    }
    if offsets.len() != layout.offsets_len() {
        return Err(IndexError::OffsetsLength { actual: offsets.len(), expected: layout.offsets_len(), slices });
    }
    let expected = slices * n;
    if ids.len() != expected {
        return Err(IndexError::IdsLength { actual: ids.len(), expected, slices, n });
    }
    for slice in 0..slices {
        let offs = &offsets[layout.offsets_range(slice)];
        if offs[0] != 0 {
            return Err(IndexError::OffsetsStart { slice, value: offs[0] });
        }
        // Branch-free "is sorted" first: the error path below finds the place.
        if !offs.windows(2).fold(true, |ok, w| ok & (w[0] <= w[1])) {
            let bucket = offs.windows(2).position(|w| w[0] > w[1]).map_or(0, |p| p + 1);
            return Err(IndexError::OffsetsDecrease { slice, bucket, value: offs[bucket], previous: offs[bucket - 1] });
        }
        let last = offs[offs.len() - 1];
        if last as usize != n {
            return Err(IndexError::OffsetsEnd { slice, value: last, n });
        }
    }
    if n > 0 {
        for (slice, slice_ids) in ids.chunks_exact(n).enumerate() {
            let max = slice_ids.iter().copied().fold(0u32, u32::max);
            if max as usize >= n {
                let position = slice_ids.iter().position(|&id| id as usize >= n).unwrap_or(0);
                return Err(IndexError::IdOutOfRange { slice, position, id: slice_ids[position], n });
            }
        }
    }
    Ok(layout)
}
