//! Internal checks; the behaviour against brute force is in tests/properties.rs.

use crate::kernels::{self, Isa, Plan};
use crate::layout::{extract, SliceLayout, MAX_SLICES, MIN_SLICES};
use crate::{Match, PdqIndexBuilder};

/// The plan's pigeonhole argument, checked arithmetically for every radius
/// and slice count: if every probed slice's distance exceeds its flips (and
/// unprobed slices count from 0), the total exceeds the radius.
#[test]
fn plan_covers_every_radius() {
    for m in MIN_SLICES..=MAX_SLICES {
        let layout = SliceLayout::new(m).unwrap();
        for radius in 0..=256u32 {
            let plan = Plan::for_radius(radius, &layout);
            let probed: Vec<usize> = (0..m).filter(|&s| plan.flips(s).is_some()).collect();
            // A slice probed with flips ≥ its width finds every hash.
            if probed.iter().any(|&s| plan.flips(s).unwrap() >= layout.width(s)) {
                assert_eq!(probed.len(), 1, "m {m} radius {radius}");
                assert!(plan.buckets(&layout) <= 1 << 24);
                continue;
            }
            let smallest_missed: u32 = (0..m).map(|s| plan.flips(s).map_or(0, |f| f + 1)).sum();
            assert_eq!(smallest_missed, radius + 1, "m {m} radius {radius}: {plan:?}");
        }
    }
}

#[test]
fn plan_for_31() {
    let l16 = SliceLayout::new(16).unwrap();
    let plan = Plan::for_radius(31, &l16);
    assert!((0..16).all(|s| plan.flips(s) == Some(1)));
    assert_eq!(plan.buckets(&l16), 16 * 17);
    let l12 = SliceLayout::new(12).unwrap();
    let plan = Plan::for_radius(31, &l12);
    assert_eq!((0..12).filter(|&s| plan.flips(s) == Some(2)).count(), 8);
    assert_eq!((0..12).filter(|&s| plan.flips(s) == Some(1)).count(), 4);
    let plan = Plan::for_radius(5, &l16);
    assert_eq!((0..16).filter(|&s| plan.flips(s) == Some(0)).count(), 6);
    assert_eq!((0..16).filter(|&s| plan.flips(s).is_none()).count(), 10);
    assert_eq!(Plan::for_radius(1000, &l16).radius, 256);
}

#[test]
fn slice_layouts_tile_the_hash() {
    for m in MIN_SLICES..=MAX_SLICES {
        let layout = SliceLayout::new(m).unwrap();
        let mut bit = 0;
        for s in 0..m {
            assert_eq!(layout.start(s), bit);
            assert!((16..=24).contains(&layout.width(s)));
            if s > 0 {
                assert!(layout.width(s) <= layout.width(s - 1), "wider slices first");
            }
            bit += layout.width(s);
        }
        assert_eq!(bit, 256);
    }
    assert!(SliceLayout::new(10).is_none() && SliceLayout::new(17).is_none());
    assert_eq!(SliceLayout::new(16).unwrap().offsets_len(), 16 * 65537);
    assert_eq!(SliceLayout::new(12).unwrap().offsets_len(), 4 * ((1 << 22) + 1) + 8 * ((1 << 21) + 1));
}

#[test]
fn extract_reads_big_endian_bit_ranges() {
    let mut h = [0u8; 32];
    h[0] = 0xab;
    h[1] = 0xcd;
    h[31] = 0x5a;
    assert_eq!(extract(&h, 0, 16), 0xabcd);
    assert_eq!(extract(&h, 4, 8), 0xbc);
    assert_eq!(extract(&h, 0, 3), 0b101);
    assert_eq!(extract(&h, 248, 8), 0x5a);
    assert_eq!(extract(&h, 232, 24), 0x5a);
    // Every bit, one at a time, at every width.
    for bit in 0..256u32 {
        let mut h = [0u8; 32];
        h[(bit / 8) as usize] = 0x80 >> (bit % 8);
        for width in 1..=24u32 {
            for start in bit.saturating_sub(width - 1)..=bit.min(256 - width) {
                assert_eq!(
                    extract(&h, start, width),
                    1 << (start + width - 1 - bit),
                    "bit {bit} start {start} width {width}"
                );
            }
        }
    }
}

#[test]
fn auto_slices_grow_wider_with_the_set() {
    assert_eq!(PdqIndexBuilder::auto_slices(0), 16);
    assert_eq!(PdqIndexBuilder::auto_slices(10_000), 16);
    assert_eq!(PdqIndexBuilder::auto_slices(10_000_000), 12);
    let mut last = 16;
    for n in [1usize << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24, 1 << 26, 1 << 28, u32::MAX as usize] {
        let m = PdqIndexBuilder::auto_slices(n);
        assert!(m <= last, "n {n}");
        last = m;
        let layout = SliceLayout::new(m).unwrap();
        assert!(m == 16 || 4 * layout.offsets_len() <= 16 * n);
    }
}

#[test]
fn popcnt_and_portable_kernels_agree() {
    let hashes: Vec<[u8; 32]> = (0..300u32)
        .map(|i| std::array::from_fn(|j| (i.wrapping_mul(2654435761) >> (j % 24)) as u8 ^ j as u8))
        .collect();
    let q = hashes[7];
    for isa in Isa::all_supported() {
        for radius in [0, 60, 120, 128, 140, 256] {
            let mut a = Vec::new();
            let mut b = Vec::new();
            kernels::scan(Isa::Portable, &hashes, &q, radius, &mut a);
            kernels::scan(isa, &hashes, &q, radius, &mut b);
            assert_eq!(a, b, "{isa:?}");
            // Not a multiple of the scan block: the remainder path.
            a.clear();
            b.clear();
            kernels::scan(Isa::Portable, &hashes[3..], &q, radius, &mut a);
            kernels::scan(isa, &hashes[3..], &q, radius, &mut b);
            assert_eq!(a, b, "{isa:?}");
            assert_eq!(
                kernels::scan_nearest(Isa::Portable, &hashes[8..], &q, radius),
                kernels::scan_nearest(isa, &hashes[8..], &q, radius)
            );
        }
    }
}

#[test]
fn probe_kernels_agree_on_every_isa() {
    let hashes: Vec<[u8; 32]> = (0..2000u32)
        .map(|i| std::array::from_fn(|j| (i.wrapping_mul(2654435761).rotate_left(j as u32) >> 3) as u8 ^ (i % 7) as u8))
        .collect();
    for slices in [16, 12] {
        let parts = PdqIndexBuilder::new().slices(slices).build(&hashes).unwrap();
        let index = parts.index().unwrap();
        let layout = index.layout();
        for (qi, q) in hashes.iter().step_by(97).enumerate() {
            let radius = [0, 9, 31, 40, 64][qi % 5];
            let mut expected = Vec::new();
            kernels::scan(Isa::Portable, &hashes, q, radius, &mut expected);
            for isa in Isa::all_supported() {
                let mut out = Vec::new();
                assert!(kernels::probe(isa, &index, q, &Plan::for_radius(radius, &layout), usize::MAX, &mut out));
                out.sort_by_key(|m: &Match| m.index);
                assert_eq!(out, expected, "{isa:?} slices {slices} radius {radius}");
                let mut best = None;
                for depth in 0..=2 {
                    assert!(kernels::probe_nearest(isa, &index, q, depth, radius, usize::MAX, &mut best));
                }
                let mut portable_best = None;
                for depth in 0..=2 {
                    kernels::probe_nearest(Isa::Portable, &index, q, depth, radius, usize::MAX, &mut portable_best);
                }
                assert_eq!(best, portable_best, "{isa:?}");
            }
        }
    }
}
