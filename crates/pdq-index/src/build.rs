//! Building the arrays, and the owned form of the index.

use hashscan_pdq::PdqHash;

use crate::index::{PdqIndex, BUCKET_COST, CANDIDATE_COST};
use crate::kernels::Plan;
use crate::layout::{validate, IndexError, SliceLayout, MAX_HASHES, MAX_SLICES, MIN_SLICES};

/// Builds the index arrays from a list of hashes.
#[derive(Debug, Clone, Copy, Default)]
pub struct PdqIndexBuilder {
    slices: Option<usize>,
}

impl PdqIndexBuilder {
    /// A builder that picks the slice count from the number of hashes
    /// ([`PdqIndexBuilder::auto_slices`]).
    pub fn new() -> Self {
        PdqIndexBuilder { slices: None }
    }

    /// Uses `slices` slices (11..=16) whatever the set size; `build` fails
    /// with [`IndexError::SliceCount`] outside that range.
    pub fn slices(self, slices: usize) -> Self {
        PdqIndexBuilder { slices: Some(slices) }
    }

    /// The slice count for `n` hashes: the one with the lowest expected cost
    /// of a radius-31 query (buckets probed × bucket cost + expected ids in
    /// them × candidate cost, the model on [`crate::Strategy`]) among those
    /// whose offsets take at most 16 bytes per hash — or 16 slices, whose
    /// 4 MiB of offsets are the floor. Wider slices mean fewer ids per
    /// bucket but more buckets within a radius and bigger offset tables;
    /// the optimum width is near log2(n) (Norouzi et al., "Fast exact search
    /// in Hamming space with multi-index hashing", 2014). In practice: 16
    /// slices below 0.68 M hashes, 15 from there, 14 from 1.2 M, 13 from
    /// 2.9 M, 12 from 8.5 M (about 7,300 candidates per radius-31 query at
    /// 10 M instead of 41,500 with 16), 11 from 29.5 M.
    pub fn auto_slices(n: usize) -> usize {
        let cost = |m: usize| {
            let layout = SliceLayout::new(m).expect("11..=16");
            let plan = Plan::for_radius(31, &layout);
            plan.buckets(&layout) as f64 * BUCKET_COST + plan.expected_candidates(&layout, n) * CANDIDATE_COST
        };
        (MIN_SLICES..=MAX_SLICES)
            .filter(|&m| m == MAX_SLICES || 4 * SliceLayout::new(m).expect("11..=16").offsets_len() <= 16 * n)
            .min_by(|&a, &b| cost(a).total_cmp(&cost(b)))
            .unwrap_or(MAX_SLICES)
    }

    /// The arrays for `hashes`, in the layout described in the crate docs;
    /// item `i` of the index is `hashes[i]`. A counting sort per slice: two
    /// passes over the hashes for each slice, O(n), no comparison sort
    /// (about 3 s for 10 M hashes on one core).
    pub fn build(&self, hashes: &[[u8; 32]]) -> Result<PdqIndexParts, IndexError> {
        let n = hashes.len();
        if n > MAX_HASHES {
            return Err(IndexError::TooManyHashes { n });
        }
        let slices = self.slices.unwrap_or_else(|| PdqIndexBuilder::auto_slices(n));
        let layout = SliceLayout::new(slices).ok_or(IndexError::SliceCount { slices })?;
        let mut offsets = vec![0u32; layout.offsets_len()];
        let mut ids = vec![0u32; slices * n];
        let mut cursor = Vec::new();
        for s in 0..slices {
            let offs = &mut offsets[layout.offsets_range(s)];
            for h in hashes {
                offs[layout.value(h, s) as usize + 1] += 1;
            }
            for v in 0..layout.buckets(s) {
                offs[v + 1] += offs[v];
            }
            cursor.clear();
            cursor.extend_from_slice(&offs[..layout.buckets(s)]);
            let slice_ids = &mut ids[s * n..(s + 1) * n];
            for (id, h) in hashes.iter().enumerate() {
                let c = &mut cursor[layout.value(h, s) as usize];
                slice_ids[*c as usize] = id as u32;
                *c += 1;
            }
        }
        Ok(PdqIndexParts { slices, hashes: hashes.to_vec(), offsets, ids })
    }
}

/// The arrays of an index and its slice count, as plain values: what
/// [`PdqIndexBuilder::build`] produces and what a reference-set writer
/// serialises (layout in the crate docs). Nothing here is trusted: turn it
/// into an [`OwnedPdqIndex`] or borrow it with [`PdqIndexParts::index`], both
/// of which validate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PdqIndexParts {
    /// Number of slices, 11..=16 (store it with the arrays).
    pub slices: usize,
    /// n hashes, big-endian bytes as [`PdqHash::as_bytes`].
    pub hashes: Vec<[u8; 32]>,
    /// Bucket offsets, Σ (2^width + 1) over the slices.
    pub offsets: Vec<u32>,
    /// slices × n ids.
    pub ids: Vec<u32>,
}

impl PdqIndexParts {
    /// Validates and borrows the arrays.
    pub fn index(&self) -> Result<PdqIndex<'_>, IndexError> {
        PdqIndex::new(self.slices, &self.hashes, &self.offsets, &self.ids)
    }

    /// Total size of the three arrays in bytes (what they take in memory and
    /// on disk): 32 + 4 × slices bytes per hash, plus the offsets.
    pub fn size_bytes(&self) -> usize {
        size_of_val(self.hashes.as_slice()) + size_of_val(self.offsets.as_slice()) + size_of_val(self.ids.as_slice())
    }

    /// The arrays as little-endian bytes, ready to write: `[hashes, offsets,
    /// ids]`. Only on little-endian machines, where this is a free cast.
    #[cfg(target_endian = "little")]
    pub fn as_le_bytes(&self) -> [&[u8]; 3] {
        [bytemuck::cast_slice(&self.hashes), bytemuck::cast_slice(&self.offsets), bytemuck::cast_slice(&self.ids)]
    }
}

/// An index that owns its arrays, for tests, tools and sets that are not
/// memory-mapped. Its arrays were validated once, so [`OwnedPdqIndex::index`]
/// is free.
#[derive(Debug, Clone)]
pub struct OwnedPdqIndex {
    parts: PdqIndexParts,
    layout: SliceLayout,
}

impl OwnedPdqIndex {
    /// Builds the index of `hashes` (item `i` is `hashes[i]`), with the slice
    /// count [`PdqIndexBuilder::auto_slices`] picks.
    pub fn build(hashes: &[[u8; 32]]) -> Result<Self, IndexError> {
        OwnedPdqIndex::from_parts(PdqIndexBuilder::new().build(hashes)?)
    }

    /// Builds the index of PDQ hashes, in iteration order.
    pub fn from_hashes<I: IntoIterator<Item = PdqHash>>(hashes: I) -> Result<Self, IndexError> {
        let bytes: Vec<[u8; 32]> = hashes.into_iter().map(|h| *h.as_bytes()).collect();
        OwnedPdqIndex::build(&bytes)
    }

    /// Takes arrays from elsewhere (e.g. read from a file), after validating them.
    pub fn from_parts(parts: PdqIndexParts) -> Result<Self, IndexError> {
        let layout = validate(parts.slices, parts.hashes.len(), &parts.offsets, &parts.ids)?;
        Ok(OwnedPdqIndex { parts, layout })
    }

    /// The index, borrowing this value's arrays.
    pub fn index(&self) -> PdqIndex<'_> {
        PdqIndex::new_prevalidated(self.layout, &self.parts.hashes, &self.parts.offsets, &self.parts.ids)
    }

    /// The arrays, e.g. to write them to a file.
    pub fn parts(&self) -> &PdqIndexParts {
        &self.parts
    }

    /// Gives the arrays back.
    pub fn into_parts(self) -> PdqIndexParts {
        self.parts
    }
}
