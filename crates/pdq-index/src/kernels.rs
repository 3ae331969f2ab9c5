//! The hot loops, each compiled three times: for the target's baseline and,
//! on x86-64, with POPCNT and with AVX-512 VPOPCNTDQ, chosen at run time.
//!
//! Rust's default x86-64 target predates POPCNT, so `u64::count_ones` there
//! is a dozen shift-and-add instructions; with POPCNT it is one, which makes
//! the linear scan about 2× faster. With AVX-512 VPOPCNTDQ the compiler
//! vectorises the scan's blocks of eight hashes, another 2× (measured:
//! docs/pdq-index.md; AVX2 alone was slower than POPCNT, so there is no AVX2
//! variant). The probe loops wait on memory instead: their speed comes from
//! keeping many independent loads in flight (bucket offsets of a whole batch
//! first, then software prefetches of the hashes a few candidates ahead),
//! since every candidate is a cache miss at a random address.

use crate::index::{Match, PdqIndex};
use crate::layout::{SliceLayout, MAX_SLICES};
use crate::masks;

/// Which instruction set the kernels run with.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Isa {
    /// The target's baseline.
    Portable,
    /// POPCNT, proven available by the token.
    #[cfg(target_arch = "x86_64")]
    Popcnt(PopcntToken),
    /// AVX-512 F/VL/BW with VPOPCNTDQ, AVX2 and POPCNT, proven available by
    /// the token.
    #[cfg(target_arch = "x86_64")]
    Avx512(Avx512Token),
}

/// Proof that the running CPU has the AVX-512 features of [`Isa::Avx512`].
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512Token(());

/// Proof that the running CPU has POPCNT; only [`Isa::detect`] makes one.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct PopcntToken(());

impl Isa {
    /// Every variant the running CPU supports, best last (for tests).
    #[cfg(test)]
    pub(crate) fn all_supported() -> Vec<Isa> {
        let mut all = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("popcnt") {
            all.push(Isa::Popcnt(PopcntToken(())));
        }
        #[cfg(target_arch = "x86_64")]
        if let best @ Isa::Avx512(_) = Isa::detect() {
            all.push(best);
        }
        all
    }

    /// Nanoseconds per hash of a linear scan with this variant, for the
    /// strategy rule (measured at 10 M hashes: docs/pdq-index.md).
    pub(crate) fn scan_cost(self) -> f64 {
        match self {
            Isa::Portable => 5.0,
            #[cfg(target_arch = "x86_64")]
            Isa::Popcnt(_) => 2.5,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512(_) => 1.25,
        }
    }

    /// The best variant the running CPU supports.
    pub(crate) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("popcnt")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
        {
            return Isa::Avx512(Avx512Token(()));
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("popcnt") {
            return Isa::Popcnt(PopcntToken(()));
        }
        Isa::Portable
    }
}

/// Defines `fn $name(isa: Isa, args…)` that runs `$body` compiled for the
/// instruction set `isa` names; the helpers the body calls are
/// `#[inline(always)]` so they are compiled with the same features.
macro_rules! kernel {
    (
        $(#[$doc:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name(isa: Isa, $($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body

            #[inline(never)]
            fn portable($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "popcnt")]
            #[inline(never)]
            fn popcnt($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "popcnt,avx2,avx512f,avx512vl,avx512bw,avx512vpopcntdq")]
            #[inline(never)]
            fn avx512($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }

            match isa {
                Isa::Portable => portable($($arg),*),
                // SAFETY: `avx512` requires exactly the features the token's
                // detection checked.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512(_) => unsafe { avx512($($arg),*) },
                // SAFETY: `popcnt` only requires POPCNT, and a `PopcntToken`
                // exists only when the CPU reported it.
                #[cfg(target_arch = "x86_64")]
                Isa::Popcnt(_) => unsafe { popcnt($($arg),*) },
            }
        }
    };
}

/// A hash as four 64-bit words for XOR and popcount (native byte order: only
/// the number of differing bits matters).
#[inline(always)]
pub(crate) fn words(h: &[u8; 32]) -> [u64; 4] {
    bytemuck::cast(*h)
}

/// Hamming distance between a query (as words) and a stored hash.
#[inline(always)]
pub(crate) fn distance(q: &[u64; 4], h: &[u8; 32]) -> u32 {
    let w = words(h);
    (q[0] ^ w[0]).count_ones() + (q[1] ^ w[1]).count_ones() + (q[2] ^ w[2]).count_ones() + (q[3] ^ w[3]).count_ones()
}

/// All slice values of a hash (unused slices are 0).
#[inline(always)]
pub(crate) fn slice_values(layout: &SliceLayout, h: &[u8; 32]) -> [u32; MAX_SLICES] {
    std::array::from_fn(|s| if s < layout.slices() { layout.value(h, s) } else { 0 })
}

/// Which slices a radius query probes, and how far: slice `s` is probed at
/// every value within `flips[s]` bits of the query's (`-1`: not probed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The query radius (≤ 256).
    pub(crate) radius: u32,
    /// Bit flips per slice.
    pub(crate) flips: [i16; MAX_SLICES],
}

impl Plan {
    /// The cheapest pigeonhole cover of `radius` (clamped to 256) with m
    /// slices: write r = m·q + a with 0 ≤ a < m. A hash whose slice
    /// distances all exceed the flips — at least q + 1 on slices 0..=a and
    /// at least q on the other m − 1 − a — is at distance
    /// ≥ (a + 1)(q + 1) + (m − 1 − a)q = r + 1, so probing slices 0..=a
    /// (the wider ones, whose buckets are smaller) at q flips and the others
    /// at q − 1 finds every hash within r. For r = 31: 16 slices, 1 flip
    /// each; 12 slices, 2 flips on 8 and 1 on 4. When that would probe more
    /// buckets than one slice has, the plan is every bucket of the narrowest
    /// slice instead (all hashes are candidates; only forced probes at large
    /// radii get there, the strategy scans long before).
    pub(crate) fn for_radius(radius: u32, layout: &SliceLayout) -> Plan {
        let radius = radius.min(256);
        let m = layout.slices() as u32;
        let (q, a) = ((radius / m) as i16, (radius % m) as usize);
        let mut flips = [-1i16; MAX_SLICES];
        for (s, f) in flips.iter_mut().enumerate().take(layout.slices()) {
            *f = if s <= a { q } else { q - 1 };
        }
        let plan = Plan { radius, flips };
        // One slice probed in full also finds everything (n candidates);
        // at large radii that is fewer buckets than the pigeonhole cover.
        let narrowest = layout.slices() - 1;
        if plan.buckets(layout) >= layout.buckets(narrowest) as u64 {
            let mut only = [-1i16; MAX_SLICES];
            only[narrowest] = layout.width(narrowest) as i16;
            return Plan { radius, flips: only };
        }
        plan
    }

    /// Flips of slice `s`, if it is probed.
    #[inline(always)]
    pub(crate) fn flips(&self, s: usize) -> Option<u32> {
        u32::try_from(self.flips[s]).ok()
    }

    /// Number of buckets the plan probes.
    pub(crate) fn buckets(&self, layout: &SliceLayout) -> u64 {
        (0..layout.slices()).filter_map(|s| self.flips(s).map(|f| masks::ball(layout.width(s), f))).sum()
    }

    /// Expected ids in those buckets if hashes were spread evenly.
    pub(crate) fn expected_candidates(&self, layout: &SliceLayout, n: usize) -> f64 {
        (0..layout.slices())
            .filter_map(|s| {
                self.flips(s).map(|f| masks::ball(layout.width(s), f) as f64 * n as f64 / layout.buckets(s) as f64)
            })
            .sum()
    }
}

/// The first slice on which a plan finds hash `h`, or `MAX_SLICES` if none.
/// A match is reported only from that slice, so each hash is reported once
/// without remembering what was seen.
#[inline(always)]
fn first_probing_slice(plan: &Plan, layout: &SliceLayout, qs: &[u32; MAX_SLICES], h: &[u8; 32]) -> usize {
    (0..layout.slices())
        .find(|&s| plan.flips(s).is_some_and(|f| (qs[s] ^ layout.value(h, s)).count_ones() <= f))
        .unwrap_or(MAX_SLICES)
}

/// Buckets handled together: their offsets are loaded, then their ids
/// prefetched, then their hashes checked, so the cache misses of a batch
/// overlap instead of queueing behind each other.
const BATCH: usize = 64;

/// How many candidates ahead a hash is prefetched (measured: 8 to 24 are
/// equally good on the benchmark machine; fewer leaves misses exposed, more
/// evicts prefetched lines before use).
const PREFETCH_AHEAD: usize = 12;

#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Calls `visit(slice, id, hash)` for every id in the buckets
/// `masks(slice)` names around the query's slice values `qs` (slices where
/// `masks` returns `None` are skipped). Returns `false`, having stopped
/// early, as soon as the ids seen would exceed `budget`.
#[inline(always)]
fn visit_buckets<M: Iterator<Item = u32>>(
    index: &PdqIndex<'_>,
    qs: &[u32; MAX_SLICES],
    budget: usize,
    mut masks: impl FnMut(usize) -> Option<M>,
    mut visit: impl FnMut(usize, u32, &[u8; 32]),
) -> bool {
    let hashes = index.hashes();
    let layout = index.layout();
    let mut seen = 0usize;
    let mut ranges = [(0u32, 0u32); BATCH];
    for (s, &qv) in qs.iter().enumerate().take(layout.slices()) {
        let Some(mut slice_masks) = masks(s) else { continue };
        let (offs, ids) = index.slice_tables(s);
        loop {
            // Offsets of a batch of buckets: independent loads.
            let mut len = 0;
            let mut batch_ids = 0usize;
            for mask in slice_masks.by_ref() {
                let v = (qv ^ mask) as usize;
                let (a, b) = (offs[v], offs[v + 1]);
                ranges[len] = (a, b);
                batch_ids += (b - a) as usize;
                len += 1;
                if len == BATCH {
                    break;
                }
            }
            if len == 0 {
                break;
            }
            seen += batch_ids;
            if seen > budget {
                return false;
            }
            let ranges = &ranges[..len];
            for &(a, _) in ranges {
                prefetch(ids.as_ptr().wrapping_add(a as usize));
            }
            // The ids of the batch in order, with the hash PREFETCH_AHEAD
            // ids further on requested before each one is checked.
            let mut ahead = ranges.iter().flat_map(|&(a, b)| &ids[a as usize..b as usize]);
            for &id in ahead.by_ref().take(PREFETCH_AHEAD) {
                prefetch(hashes.as_ptr().wrapping_add(id as usize));
            }
            for &id in ranges.iter().flat_map(|&(a, b)| &ids[a as usize..b as usize]) {
                if let Some(&next) = ahead.next() {
                    prefetch(hashes.as_ptr().wrapping_add(next as usize));
                }
                visit(s, id, &hashes[id as usize]);
            }
            if len < BATCH {
                break;
            }
        }
    }
    true
}

kernel! {
    /// Appends every hash within `radius` of `q` to `out`, reading all hashes.
    /// Eight hashes at a time with one branch per block: matches are rare,
    /// and a branch per hash costs more than the popcounts.
    pub(crate) fn scan(hashes: &[[u8; 32]], q: &[u8; 32], radius: u32, out: &mut Vec<Match>) {
        let qw = words(q);
        let mut blocks = hashes.chunks_exact(SCAN_BLOCK);
        let mut base = 0u32;
        for block in &mut blocks {
            let d: [u32; SCAN_BLOCK] = std::array::from_fn(|j| distance(&qw, &block[j]));
            if d.iter().fold(u32::MAX, |a, &b| a.min(b)) <= radius {
                for (j, &dj) in d.iter().enumerate() {
                    if dj <= radius {
                        out.push(Match { index: base + j as u32, distance: dj });
                    }
                }
            }
            base += SCAN_BLOCK as u32;
        }
        for (j, h) in blocks.remainder().iter().enumerate() {
            let d = distance(&qw, h);
            if d <= radius {
                out.push(Match { index: base + j as u32, distance: d });
            }
        }
    }
}

/// Hashes per block of the linear scan.
const SCAN_BLOCK: usize = 8;

kernel! {
    /// The nearest hash within `max` (lowest index on ties), reading all hashes.
    pub(crate) fn scan_nearest(hashes: &[[u8; 32]], q: &[u8; 32], max: u32) -> Option<Match> {
        let qw = words(q);
        let mut best: Option<Match> = None;
        let mut limit = max;
        for (i, h) in hashes.iter().enumerate() {
            let d = distance(&qw, h);
            if d <= limit && best.is_none_or(|b| d < b.distance) {
                best = Some(Match { index: i as u32, distance: d });
                if d == 0 {
                    break;
                }
                limit = d;
            }
        }
        best
    }
}

kernel! {
    /// Appends every hash within `plan.radius` of `q` to `out`, probing the
    /// buckets `plan` names. Returns `false` (with `out` incomplete) if the
    /// buckets hold more than `budget` ids.
    pub(crate) fn probe(index: &PdqIndex<'_>, q: &[u8; 32], plan: &Plan, budget: usize, out: &mut Vec<Match>) -> bool {
        let qw = words(q);
        let layout = index.layout();
        let qs = slice_values(&layout, q);
        visit_buckets(
            index,
            &qs,
            budget,
            |s| plan.flips(s).map(|f| masks::up_to(layout.width(s), f)),
            |s, id, h| {
                let d = distance(&qw, h);
                if d <= plan.radius && first_probing_slice(plan, &layout, &qs, h) == s {
                    out.push(Match { index: id, distance: d });
                }
            },
        )
    }
}

kernel! {
    /// Checks every hash in the buckets at exactly `depth` bits from `q` on
    /// every slice, keeping in `best` the nearest within `max` (lowest index
    /// on ties). Returns `false` (having checked only some) if the buckets
    /// hold more than `budget` ids.
    pub(crate) fn probe_nearest(
        index: &PdqIndex<'_>,
        q: &[u8; 32],
        depth: u32,
        max: u32,
        budget: usize,
        best: &mut Option<Match>,
    ) -> bool {
        let qw = words(q);
        let layout = index.layout();
        let qs = slice_values(&layout, q);
        visit_buckets(
            index,
            &qs,
            budget,
            |s| Some(masks::Exactly::new(layout.width(s), depth)),
            |_, id, h| {
                let d = distance(&qw, h);
                if d <= max && best.is_none_or(|b| (d, id) < (b.distance, b.index)) {
                    *best = Some(Match { index: id, distance: d });
                }
            },
        )
    }
}
