//! The PDQ radius index over the set's PDQ hashes: `hashscan-pdq-index`'s
//! multi-index arrays, stored as sections of the index image.
//!
//! Sets with few PDQ hashes get no multi-index (slice count 0): its fixed
//! tables (megabytes of bucket offsets) would dwarf the hashes, and a flat
//! popcount scan over a few thousand hashes is faster than probing anyway.

use hashscan_pdq::PdqHash;
use hashscan_pdq_index::{PdqIndex, PdqIndexBuilder};

/// Below this many hashes, no multi-index is built.
pub(crate) const MIN_INDEXED: usize = 4096;

/// The index arrays for `hashes`: slice count (0: none), offsets, ids.
pub(crate) fn build(hashes: &[[u8; 32]]) -> Result<(u32, Vec<u32>, Vec<u32>), String> {
    if hashes.len() < MIN_INDEXED {
        return Ok((0, Vec::new(), Vec::new()));
    }
    let parts = PdqIndexBuilder::new().build(hashes).map_err(|e| e.to_string())?;
    Ok((parts.slices as u32, parts.offsets, parts.ids))
}

/// A radius query over a set's hashes, with or without a multi-index.
/// Built per query on the stack and never stored, so the size difference
/// between the two is of no consequence.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Radius<'a> {
    /// Few hashes: a flat scan.
    Flat(&'a [[u8; 32]]),
    /// The multi-index.
    Indexed(PdqIndex<'a>),
}

/// The query structure over arrays read from an image: fully checked when
/// `full` (at load), else only their shape (per query, O(1)).
pub(crate) fn open<'a>(
    slices: u32,
    hashes: &'a [[u8; 32]],
    offsets: &'a [u32],
    ids: &'a [u32],
    full: bool,
) -> Result<Radius<'a>, String> {
    if slices == 0 {
        if !offsets.is_empty() || !ids.is_empty() {
            return Err("PDQ index arrays without a slice count".into());
        }
        return Ok(Radius::Flat(hashes));
    }
    let index = if full {
        PdqIndex::new(slices as usize, hashes, offsets, ids)
    } else {
        PdqIndex::new_checked_before(slices as usize, hashes, offsets, ids)
    };
    index.map(Radius::Indexed).map_err(|e| format!("PDQ index: {e}"))
}

/// Every hash within `radius` of `q`: (position, distance).
pub(crate) fn query(index: &Radius<'_>, q: &[u8; 32], radius: u32, out: &mut Vec<(u32, u32)>) {
    match index {
        Radius::Flat(hashes) => {
            for (i, h) in hashes.iter().enumerate() {
                let d: u32 = h.iter().zip(q).map(|(a, b)| (a ^ b).count_ones()).sum();
                if d <= radius {
                    out.push((i as u32, d));
                }
            }
        }
        Radius::Indexed(index) => {
            let mut found = Vec::new();
            index.query(&PdqHash::from_bytes(*q), radius, &mut found);
            out.extend(found.into_iter().map(|m| (m.index, m.distance)));
        }
    }
}
