//! A multi-index-hashing (MIH) index that answers PDQ Hamming-radius queries
//! ("every listed hash within 31 bits of this one") over tens of millions of
//! hashes without reading them all, and exact nearest-neighbour queries.
//!
//! The matcher uses it through `hashscan-refset`: the reference set is a
//! memory-mapped file, and this index lives inside it as three plain arrays
//! and a slice count (see [Array layout](#array-layout)). Building
//! ([`PdqIndexBuilder`]) is therefore separate from querying: [`PdqIndex`]
//! only *borrows* the arrays, so a matcher can cast them straight out of the
//! mapping ([`PdqIndex::from_le_bytes`]), validate them once (a typed
//! [`IndexError`], never a panic, on a bad file) and share the index between
//! threads. [`OwnedPdqIndex`] is the convenience form that owns its arrays.
//!
//! Key decision: the hash is cut into m slices (11 to 16) of 16 to 24 bits,
//! each with a bucket table indexed directly by the slice value (a CSR
//! array: 2^width + 1 offsets and n ids per slice), not a hash map. By the
//! pigeonhole principle a hash within radius r of the query agrees with it
//! to within about r/m bits on at least one slice, so a query probes the
//! buckets of every slice value that close to the query's and checks each
//! id found with a full 256-bit popcount. Every candidate is a cache miss at
//! a random address, so the design minimises candidates: the slice width
//! follows log2(n) ([`PdqIndexBuilder::auto_slices`]; 16 slices of 16 bits
//! for small sets, 12 of 21–22 bits at 10 M hashes, 7,300 candidates per
//! radius-31 query instead of 41,500 with 16-bit slices). Direct tables cost
//! 32 + 4m bytes per hash plus the offsets (93 bytes per hash at 10 M), need
//! no pointer chasing and are written to disk as they are. Each match is
//! reported once without a per-query "visited" set: a candidate is reported
//! only from the first slice that would have found it (see
//! [`PdqIndex::query`]), so queries need no scratch memory and no locking.
//! When the buckets to probe would cost more than reading every hash (small
//! sets, large radii, a pile of identical hashes), the query scans instead;
//! the rule is on [`Strategy`].
//!
//! # Array layout
//!
//! For n hashes (n ≤ [`MAX_HASHES`]) and m slices ([`SliceLayout`]; store m
//! with the arrays), three arrays, all little-endian:
//!
//! | array | element | count | content |
//! |---|---|---|---|
//! | `hashes` | `[u8; 32]` | n | hash `i` in the big-endian byte order of [`PdqHash::as_bytes`](hashscan_pdq::PdqHash::as_bytes), in the caller's order (never reordered: item `i` is the builder's input `i`) |
//! | `offsets` | `u32` | Σₛ (2^wₛ + 1) | slice `s`'s 2^wₛ + 1 offsets follow slice `s − 1`'s ([`SliceLayout::offsets_range`]); within them, `offsets[v] .. offsets[v + 1]` is the range of slice `s`'s ids whose hashes have value `v` on slice `s`; each run starts at 0, never decreases and ends at n |
//! | `ids` | `u32` | m × n | slice `s`'s ids are `ids[s·n .. (s+1)·n]`, a permutation of `0..n` grouped by bucket, ascending within a bucket |
//!
//! Slice `s` is bits `start(s) .. start(s) + wₛ` of the hash counted from its
//! most significant bit (bit 0 = top bit of byte 0), read as a big-endian
//! number; slices are contiguous, the first `256 mod m` are ⌈256/m⌉ bits
//! wide and the rest ⌊256/m⌋. With m = 16, slice `s` is bytes `2s, 2s + 1`
//! (offsets: 16 × 65,537 entries, 4 MiB); with m = 12, four slices of 22
//! bits then eight of 21 (offsets: 33,554,444 entries, 128 MiB).
//!
//! ```
//! use hashscan_pdq::PdqHash;
//! use hashscan_pdq_index::{PdqIndex, PdqIndexBuilder};
//!
//! let hashes = [[0x11; 32], [0x22; 32], [0x11; 32]];
//! let parts = PdqIndexBuilder::new().build(&hashes).unwrap();
//! // What a reference-set writer stores: parts.slices and the three arrays.
//! let [h, o, i] = parts.as_le_bytes();
//! // What a matcher does with the mapped file's sections (4-byte aligned).
//! let index = PdqIndex::from_le_bytes(parts.slices, h, o, i).unwrap();
//! let mut out = Vec::new();
//! index.query(&PdqHash::from_bytes([0x11; 32]), 31, &mut out);
//! assert_eq!(out.len(), 2);
//! assert_eq!(index.nearest(&PdqHash::from_bytes([0x23; 32])).unwrap().index, 1);
//! ```
#![deny(missing_docs)]

mod build;
mod index;
mod kernels;
mod layout;
mod masks;

pub use build::{OwnedPdqIndex, PdqIndexBuilder, PdqIndexParts};
pub use index::{Match, PdqIndex, Strategy};
pub use layout::{IndexError, SliceLayout, MAX_HASHES, MAX_SLICES, MIN_SLICES};

#[cfg(test)]
mod tests;
