//! Queries over borrowed arrays.

use std::fmt;

use hashscan_pdq::PdqHash;

use crate::kernels::{self, slice_values, Isa, Plan};
use crate::layout::{validate, IndexError, SliceLayout};
use crate::masks;

/// One hash found by a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Match {
    /// Position of the hash in the index (its position in the builder's
    /// input), always below [`PdqIndex::len`].
    pub index: u32,
    /// Hamming distance to the query, 0..=256.
    pub distance: u32,
}

/// How [`PdqIndex::query`] answers a query, from [`PdqIndex::strategy`].
///
/// The rule: the radius's pigeonhole plan (see [`PdqIndex::query`]) probes
/// `B` buckets holding `C` ids in all; the index probes when
/// `B·BUCKET + C·CANDIDATE < n·SCAN` and scans otherwise. The costs are
/// nanoseconds measured on the benchmark machine (docs/pdq-index.md): a
/// bucket about 25 ns (two cache misses, its offsets and the start of its
/// ids, overlapped with other buckets'), a candidate about 20 ns (a cache
/// miss on its hash at a random address, overlapped by prefetching), a
/// scanned hash 1.25 ns with AVX-512 VPOPCNTDQ, 2.5 ns with POPCNT, 5 ns
/// without (sequential reads; the scan is compiled for each and picked at
/// run time).
///
/// `C` is first estimated as if hashes were spread evenly over the buckets;
/// when that already favours scanning, the query scans at once. Otherwise
/// it probes with a budget of `(n·SCAN − B·BUCKET) / CANDIDATE` ids and, if
/// the real buckets turn out fuller (a pile of identical hashes, say),
/// abandons the probe and scans: at worst about twice a scan, never
/// unbounded. Measured with AVX-512 (docs/pdq-index.md), the rule picked
/// the faster way at every set size from 1,000 to 10 M hashes and radius
/// 15 to 63 (one tie aside): radius 31 probes from about 6,000 hashes,
/// radius 47 from about 100,000, and radius 63 scans up to at least 10 M.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Probe `buckets` buckets holding `candidates` ids.
    Mih {
        /// Buckets probed.
        buckets: u64,
        /// Ids in those buckets (a hash can be counted on several slices).
        candidates: u64,
    },
    /// Read every hash.
    Scan,
}

/// Cost of probing one bucket, in nanoseconds (see [`Strategy`]).
pub(crate) const BUCKET_COST: f64 = 25.0;
/// Cost of checking one candidate from a bucket.
pub(crate) const CANDIDATE_COST: f64 = 20.0;

/// A PDQ index over borrowed arrays (layout in the crate docs): cheap to
/// copy, `Send + Sync`, and safe to query however the arrays were produced,
/// since [`PdqIndex::new`] checks everything the queries rely on.
#[derive(Clone, Copy)]
pub struct PdqIndex<'a> {
    hashes: &'a [[u8; 32]],
    offsets: &'a [u32],
    ids: &'a [u32],
    layout: SliceLayout,
    isa: Isa,
}

impl fmt::Debug for PdqIndex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PdqIndex")
            .field("len", &self.len())
            .field("slices", &self.layout.slices())
            .field("isa", &self.isa)
            .finish_non_exhaustive()
    }
}

impl<'a> PdqIndex<'a> {
    /// Borrows the three arrays of an index with `slices` slices, after
    /// checking the slice count, the lengths, that each slice's offsets start
    /// at 0, never decrease and end at n, and that every id is below n: one
    /// sequential pass over offsets and ids (about 0.1 s for 10 M hashes),
    /// not over the hashes. Arrays that pass can still be *wrong* (an id in
    /// the wrong bucket) if the file was damaged in a way that keeps that
    /// structure; queries then stay memory-safe and panic-free but may miss
    /// hashes, and [`PdqIndex::verify_contents`] finds it.
    pub fn new(slices: usize, hashes: &'a [[u8; 32]], offsets: &'a [u32], ids: &'a [u32]) -> Result<Self, IndexError> {
        let layout = validate(slices, hashes.len(), offsets, ids)?;
        Ok(PdqIndex::new_prevalidated(layout, hashes, offsets, ids))
    }

    /// Borrows arrays that were checked by [`PdqIndex::new`] before (when a
    /// file was loaded, say), re-checking only the slice count and the
    /// lengths, in O(1), so a view can be made per query. Arrays whose
    /// contents changed since can at worst make a query panic on an id out
    /// of range (every access is bounds-checked); they cannot make it read
    /// out of bounds.
    pub fn new_checked_before(
        slices: usize,
        hashes: &'a [[u8; 32]],
        offsets: &'a [u32],
        ids: &'a [u32],
    ) -> Result<Self, IndexError> {
        let layout = crate::layout::validate_lengths(slices, hashes.len(), offsets, ids)?;
        Ok(PdqIndex::new_prevalidated(layout, hashes, offsets, ids))
    }

    /// For arrays already validated (the owned index).
    pub(crate) fn new_prevalidated(
        layout: SliceLayout,
        hashes: &'a [[u8; 32]],
        offsets: &'a [u32],
        ids: &'a [u32],
    ) -> Self {
        PdqIndex { hashes, offsets, ids, layout, isa: Isa::detect() }
    }

    /// Borrows the three arrays from raw little-endian bytes, as they sit in
    /// a file or a memory mapping; `offsets` and `ids` must start on a 4-byte
    /// boundary (page-aligned mappings and 4-aligned sections are). Then
    /// validates as [`PdqIndex::new`].
    pub fn from_le_bytes(
        slices: usize,
        hashes: &'a [u8],
        offsets: &'a [u8],
        ids: &'a [u8],
    ) -> Result<Self, IndexError> {
        if cfg!(target_endian = "big") {
            return Err(IndexError::BigEndianHost);
        }
        if !hashes.len().is_multiple_of(32) {
            return Err(IndexError::ByteLength { array: "hashes", len: hashes.len(), element: 32 });
        }
        let hashes: &[[u8; 32]] = bytemuck::cast_slice(hashes);
        let cast = |array: &'static str, bytes: &'a [u8]| -> Result<&'a [u32], IndexError> {
            bytemuck::try_cast_slice(bytes).map_err(|e| match e {
                bytemuck::PodCastError::TargetAlignmentGreaterAndInputNotAligned => IndexError::Misaligned { array },
                _ => IndexError::ByteLength { array, len: bytes.len(), element: 4 },
            })
        };
        PdqIndex::new(slices, hashes, cast("offsets", offsets)?, cast("ids", ids)?)
    }

    /// Number of hashes.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether the index holds no hash.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// How hashes are cut into slices.
    pub fn layout(&self) -> SliceLayout {
        self.layout
    }

    /// All hashes, in index order.
    pub fn hashes(&self) -> &'a [[u8; 32]] {
        self.hashes
    }

    /// The hash at `index`, if there is one.
    pub fn hash(&self, index: u32) -> Option<PdqHash> {
        self.hashes.get(index as usize).map(|h| PdqHash::from_bytes(*h))
    }

    /// Bytes the three arrays take: 32 + 4 × slices per hash plus the offsets.
    pub fn size_bytes(&self) -> usize {
        size_of_val(self.hashes) + size_of_val(self.offsets) + size_of_val(self.ids)
    }

    /// Slice `s`'s offsets (2^width + 1) and ids (n).
    #[inline(always)]
    pub(crate) fn slice_tables(&self, s: usize) -> (&'a [u32], &'a [u32]) {
        let n = self.hashes.len();
        (&self.offsets[self.layout.offsets_range(s)], &self.ids[s * n..(s + 1) * n])
    }

    /// Fills `out` (cleared first) with every hash within `radius` bits of
    /// `q` (distance ≤ radius; any radius ≥ 256 matches everything), each
    /// exactly once, in no particular order: the same set as a linear scan.
    ///
    /// How: with m slices, write radius = m·q + a (0 ≤ a < m). A hash within
    /// the radius differs from the query by at most q bits on one of slices
    /// 0..=a, or by at most q − 1 on one of the others (pigeonhole), so the
    /// query probes, on each slice, every bucket that close to the query's
    /// slice value (radius 31 with 12 slices: 2 flips on 8 slices, 1 on 4,
    /// about 2,000 buckets) and checks each id found with a full 256-bit
    /// popcount. A hash can turn up on several slices; it is reported from
    /// the first slice that finds it, which is recomputed from the hash
    /// itself, so no visited set is needed and queries allocate nothing
    /// beyond `out`. When probing would cost more than reading everything,
    /// the query scans ([`Strategy`]).
    pub fn query(&self, q: &PdqHash, radius: u32, out: &mut Vec<Match>) {
        let q = q.as_bytes();
        out.clear();
        if self.is_empty() {
            return;
        }
        if radius < 256 {
            let plan = Plan::for_radius(radius, &self.layout);
            if let Some(budget) = self.candidate_budget(&plan) {
                if kernels::probe(self.isa, self, q, &plan, budget, out) {
                    return;
                }
                out.clear();
            }
        }
        kernels::scan(self.isa, self.hashes, q, radius.min(256), out);
    }

    /// [`PdqIndex::query`] by probing buckets, whatever it costs; for
    /// tests and benchmarks.
    pub fn query_mih(&self, q: &PdqHash, radius: u32, out: &mut Vec<Match>) {
        out.clear();
        let plan = Plan::for_radius(radius, &self.layout);
        kernels::probe(self.isa, self, q.as_bytes(), &plan, usize::MAX, out);
    }

    /// [`PdqIndex::query`] by a linear popcount scan over all hashes; the
    /// baseline the index is measured against. Results in index order.
    pub fn query_linear(&self, q: &PdqHash, radius: u32, out: &mut Vec<Match>) {
        out.clear();
        kernels::scan(self.isa, self.hashes, q.as_bytes(), radius.min(256), out);
    }

    /// How [`PdqIndex::query`] answers this query (the rule is on
    /// [`Strategy`]). Counts the ids in the buckets, so it costs about as
    /// much as the offsets part of a probe.
    pub fn strategy(&self, q: &PdqHash, radius: u32) -> Strategy {
        if self.is_empty() || radius >= 256 {
            return Strategy::Scan;
        }
        let plan = Plan::for_radius(radius, &self.layout);
        let Some(budget) = self.candidate_budget(&plan) else { return Strategy::Scan };
        let qs = slice_values(&self.layout, q.as_bytes());
        let mut candidates = 0u64;
        for (s, &qv) in qs.iter().enumerate().take(self.layout.slices()) {
            let Some(f) = plan.flips(s) else { continue };
            let (offs, _) = self.slice_tables(s);
            for mask in masks::up_to(self.layout.width(s), f) {
                let v = (qv ^ mask) as usize;
                candidates += u64::from(offs[v + 1] - offs[v]);
            }
        }
        if candidates > budget as u64 {
            return Strategy::Scan;
        }
        Strategy::Mih { buckets: plan.buckets(&self.layout), candidates }
    }

    /// Most ids a probe of `plan` may check before a scan is cheaper, or
    /// `None` if even evenly filled buckets would cost more than a scan.
    fn candidate_budget(&self, plan: &Plan) -> Option<usize> {
        self.budget_for(plan.buckets(&self.layout), plan.expected_candidates(&self.layout, self.len()))
    }

    fn budget_for(&self, buckets: u64, expected_candidates: f64) -> Option<usize> {
        let scan = self.len() as f64 * self.isa.scan_cost();
        let bucket_cost = buckets as f64 * BUCKET_COST;
        if bucket_cost + expected_candidates * CANDIDATE_COST >= scan {
            return None;
        }
        Some(((scan - bucket_cost) / CANDIDATE_COST) as usize)
    }

    /// The nearest hash to `q` (smallest distance; lowest index among equals),
    /// or `None` if the index is empty.
    pub fn nearest(&self, q: &PdqHash) -> Option<Match> {
        self.nearest_within(q, 256)
    }

    /// The nearest hash to `q` within `max_distance` bits (lowest index
    /// among equals), or `None` if there is none; exact.
    ///
    /// How: once, on every slice, the buckets at up to `k` bits from the
    /// query's value have been checked, every hash within m(k + 1) − 1 bits
    /// has been seen (pigeonhole), so the search checks the buckets at
    /// exactly k = 0, 1, 2, … bits in turn and stops once the best distance
    /// so far, or `max_distance`, is at most m(k + 1) − 1. A round that
    /// would cost more than a scan (see [`Strategy`]) is replaced by a scan.
    /// Near duplicates are found in one to three rounds; for a hash with
    /// nothing within ~40 bits, typical of a random query against millions
    /// of hashes, `nearest` ends in a scan, while `nearest_within(q, 31)`
    /// costs about what `query(q, 31)` does.
    pub fn nearest_within(&self, q: &PdqHash, max_distance: u32) -> Option<Match> {
        if self.is_empty() {
            return None;
        }
        let qb = q.as_bytes();
        let max = max_distance.min(256);
        let m = self.layout.slices() as u32;
        let mut best = None;
        for depth in 0u32.. {
            let per_slice = |s: usize| masks::binomial(self.layout.width(s), depth);
            let buckets: u64 = (0..m as usize).map(per_slice).sum();
            let expected: f64 =
                (0..m as usize).map(|s| per_slice(s) as f64 * self.len() as f64 / self.layout.buckets(s) as f64).sum();
            let done = match self.budget_for(buckets, expected) {
                Some(budget) => kernels::probe_nearest(self.isa, self, qb, depth, max, budget, &mut best),
                None => false,
            };
            if !done {
                return kernels::scan_nearest(self.isa, self.hashes, qb, max);
            }
            let covered = m * (depth + 1) - 1;
            if max <= covered || best.is_some_and(|b: Match| b.distance <= covered) {
                break;
            }
        }
        best
    }

    /// [`PdqIndex::nearest_within`] by a linear scan; for tests and benchmarks.
    pub fn nearest_linear(&self, q: &PdqHash, max_distance: u32) -> Option<Match> {
        kernels::scan_nearest(self.isa, self.hashes, q.as_bytes(), max_distance.min(256))
    }

    /// Checks what [`PdqIndex::new`] does not: that every id sits in the
    /// bucket of its hash's slice value and appears once per slice. Reads
    /// every hash once per slice in random order (a few seconds for 10 M
    /// hashes, like building); for a file whose provenance is in doubt, or a
    /// test.
    pub fn verify_contents(&self) -> Result<(), IndexError> {
        let n = self.len();
        let mut seen = vec![false; n];
        for s in 0..self.layout.slices() {
            seen.fill(false);
            let (offs, ids) = self.slice_tables(s);
            for bucket in 0..self.layout.buckets(s) {
                for &id in &ids[offs[bucket] as usize..offs[bucket + 1] as usize] {
                    let actual = self.layout.value(&self.hashes[id as usize], s);
                    if actual as usize != bucket {
                        return Err(IndexError::WrongBucket { slice: s, id, bucket, actual });
                    }
                    if std::mem::replace(&mut seen[id as usize], true) {
                        return Err(IndexError::DuplicateId { slice: s, id });
                    }
                }
            }
        }
        Ok(())
    }
}
