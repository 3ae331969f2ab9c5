//! The index against brute force: every query returns exactly the hashes
//! (and distances) a naive scan with `PdqHash::hamming` finds, on random and
//! clustered sets, and malformed arrays are refused with a precise error.

use hashscan_pdq::PdqHash;
use hashscan_pdq_index::{
    IndexError, Match, OwnedPdqIndex, PdqIndex, PdqIndexBuilder, PdqIndexParts, SliceLayout, Strategy,
};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_hash(rng: &mut ChaCha8Rng) -> [u8; 32] {
    let mut h = [0u8; 32];
    rng.fill_bytes(&mut h);
    h
}

/// `h` with `k` distinct random bits flipped: a hash at distance exactly `k`.
fn flip_bits(rng: &mut ChaCha8Rng, h: &[u8; 32], k: u32) -> [u8; 32] {
    let mut out = *h;
    let mut flipped = [false; 256];
    let mut left = k;
    while left > 0 {
        let bit = rng.random_range(0..256usize);
        if !std::mem::replace(&mut flipped[bit], true) {
            out[bit / 8] ^= 1 << (bit % 8);
            left -= 1;
        }
    }
    out
}

fn random_set(rng: &mut ChaCha8Rng, n: usize) -> Vec<[u8; 32]> {
    (0..n).map(|_| random_hash(rng)).collect()
}

/// A few centres, each with near duplicates at distances 0..=40: what a real
/// list looks like around one image.
fn clustered_set(rng: &mut ChaCha8Rng, centres: usize, per_centre: usize) -> Vec<[u8; 32]> {
    let centres: Vec<[u8; 32]> = (0..centres).map(|_| random_hash(rng)).collect();
    let mut out = Vec::new();
    for c in &centres {
        for _ in 0..per_centre {
            let k = rng.random_range(0..=40);
            out.push(flip_bits(rng, c, k));
        }
    }
    out
}

fn brute_force(hashes: &[[u8; 32]], q: &[u8; 32], radius: u32) -> Vec<Match> {
    let q = PdqHash::from_bytes(*q);
    hashes
        .iter()
        .enumerate()
        .map(|(i, h)| Match { index: i as u32, distance: q.hamming(&PdqHash::from_bytes(*h)) })
        .filter(|m| m.distance <= radius)
        .collect()
}

fn brute_nearest(hashes: &[[u8; 32]], q: &[u8; 32], max: u32) -> Option<Match> {
    brute_force(hashes, q, max).into_iter().min_by_key(|m| (m.distance, m.index))
}

fn sorted(mut v: Vec<Match>) -> Vec<Match> {
    v.sort_by_key(|m| (m.index, m.distance));
    v
}

/// Runs every query form against brute force for one query.
fn check_query(index: &PdqIndex<'_>, hashes: &[[u8; 32]], q: &[u8; 32], radius: u32) {
    let expected = brute_force(hashes, q, radius);
    let qh = PdqHash::from_bytes(*q);
    let mut out = vec![Match { index: 999, distance: 999 }]; // must be cleared
    index.query(&qh, radius, &mut out);
    assert_eq!(sorted(out.clone()), expected, "query radius {radius}, n {}", hashes.len());
    index.query_mih(&qh, radius, &mut out);
    let mih = out.clone();
    assert_eq!(mih.len(), expected.len(), "MIH reported a hash twice or missed one (radius {radius})");
    assert_eq!(sorted(mih), expected, "query_mih radius {radius}");
    index.query_linear(&qh, radius, &mut out);
    assert_eq!(out, expected, "query_linear radius {radius}");
}

fn check_nearest(index: &PdqIndex<'_>, hashes: &[[u8; 32]], q: &[u8; 32], max: u32) {
    let qh = PdqHash::from_bytes(*q);
    let expected = brute_nearest(hashes, q, max);
    assert_eq!(index.nearest_within(&qh, max), expected, "nearest_within {max}");
    assert_eq!(index.nearest_linear(&qh, max), expected, "nearest_linear {max}");
    assert_eq!(index.nearest(&qh), brute_nearest(hashes, q, 256), "nearest");
}

/// Queries near indexed hashes (0..=45 bits away) and far from everything,
/// at random radii 0..=64 and the edge radii.
fn check_set(seed: u64, hashes: &[[u8; 32]], queries: usize) {
    check_set_with(seed, hashes, queries, PdqIndexBuilder::new());
}

fn check_set_with(seed: u64, hashes: &[[u8; 32]], queries: usize, builder: PdqIndexBuilder) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let owned = OwnedPdqIndex::from_parts(builder.build(hashes).unwrap()).unwrap();
    let index = owned.index();
    owned.parts().index().unwrap().verify_contents().unwrap();
    assert_eq!(index.len(), hashes.len());
    for i in 0..queries {
        let q = if i % 2 == 0 && !hashes.is_empty() {
            let base = hashes[rng.random_range(0..hashes.len())];
            let k = rng.random_range(0..=45);
            flip_bits(&mut rng, &base, k)
        } else {
            random_hash(&mut rng)
        };
        let radius = match i % 10 {
            0 => 0,
            1 => 31,
            2 => 256,
            3 => 300,
            _ => rng.random_range(0..=64),
        };
        check_query(&index, hashes, &q, radius);
        if i % 3 == 0 {
            check_nearest(&index, hashes, &q, rng.random_range(0..=80));
        }
    }
}

#[test]
fn random_sets_match_brute_force() {
    for (seed, n) in [(1u64, 10usize), (2, 500), (3, 3000)] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let hashes = random_set(&mut rng, n);
        check_set(seed + 100, &hashes, 120);
    }
}

#[test]
fn clustered_sets_match_brute_force() {
    for (seed, centres, per) in [(4u64, 3usize, 40usize), (5, 50, 20), (6, 200, 10)] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let hashes = clustered_set(&mut rng, centres, per);
        check_set(seed + 100, &hashes, 150);
    }
}

/// Hashes that differ from one another only in the first slices, so that
/// buckets are shared across slices and a match is seen on many slices.
#[test]
fn hashes_sharing_most_slices_are_reported_once() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let base = random_hash(&mut rng);
    let hashes: Vec<[u8; 32]> = (0..400)
        .map(|_| {
            let mut h = base;
            let k = rng.random_range(0..=3);
            for _ in 0..k {
                h[rng.random_range(0..4usize)] ^= 1 << rng.random_range(0..8);
            }
            h
        })
        .collect();
    check_set(8, &hashes, 100);
}

#[test]
fn duplicate_hashes_are_all_returned() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let a = random_hash(&mut rng);
    let b = random_hash(&mut rng);
    let mut hashes = vec![a; 50];
    hashes.extend(std::iter::repeat_n(b, 7));
    hashes.push(a);
    let owned = OwnedPdqIndex::build(&hashes).unwrap();
    let index = owned.index();
    let mut out = Vec::new();
    index.query_mih(&PdqHash::from_bytes(a), 0, &mut out);
    assert_eq!(out.len(), 51);
    assert!(out.iter().all(|m| m.distance == 0));
    assert_eq!(index.nearest(&PdqHash::from_bytes(b)), Some(Match { index: 50, distance: 0 }));
    check_set(10, &hashes, 60);
}

#[test]
fn empty_index_finds_nothing() {
    let owned = OwnedPdqIndex::build(&[]).unwrap();
    let index = owned.index();
    assert!(index.is_empty());
    let q = PdqHash::from_bytes([0xa5; 32]);
    let mut out = vec![Match { index: 1, distance: 1 }];
    for radius in [0, 31, 256] {
        index.query(&q, radius, &mut out);
        assert!(out.is_empty());
        index.query_mih(&q, radius, &mut out);
        assert!(out.is_empty());
    }
    assert_eq!(index.nearest(&q), None);
    assert_eq!(index.strategy(&q, 31), Strategy::Scan);
    assert_eq!(owned.parts().offsets.len(), 16 * 65537);
    index.verify_contents().unwrap();
}

#[test]
fn single_hash_index() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let h = random_hash(&mut rng);
    let index_owned = OwnedPdqIndex::build(&[h]).unwrap();
    let index = index_owned.index();
    let mut out = Vec::new();
    for k in [0u32, 1, 15, 16, 17, 31, 32, 100, 256] {
        let q = flip_bits(&mut rng, &h, k);
        for radius in [k.saturating_sub(1), k, k + 1, 256] {
            index.query_mih(&PdqHash::from_bytes(q), radius, &mut out);
            let expected = if k <= radius { vec![Match { index: 0, distance: k }] } else { vec![] };
            assert_eq!(out, expected, "k {k} radius {radius}");
            index.query(&PdqHash::from_bytes(q), radius, &mut out);
            assert_eq!(out, expected);
        }
        assert_eq!(index.nearest(&PdqHash::from_bytes(q)), Some(Match { index: 0, distance: k }));
    }
}

#[test]
fn radius_256_returns_everything_and_radius_0_only_equal_hashes() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut hashes = random_set(&mut rng, 200);
    hashes.push([0; 32]);
    hashes.push([0xff; 32]);
    hashes.push(hashes[3]);
    let owned = OwnedPdqIndex::build(&hashes).unwrap();
    let index = owned.index();
    let mut out = Vec::new();
    let q = PdqHash::from_bytes([0; 32]);
    for radius in [256, 257, u32::MAX] {
        index.query(&q, radius, &mut out);
        assert_eq!(out.len(), hashes.len());
        index.query_mih(&q, radius, &mut out);
        assert_eq!(sorted(out.clone()), brute_force(&hashes, q.as_bytes(), 256));
    }
    index.query_mih(&PdqHash::from_bytes(hashes[3]), 0, &mut out);
    assert_eq!(sorted(out.clone()), vec![Match { index: 3, distance: 0 }, Match { index: 202, distance: 0 }]);
    assert_eq!(index.nearest(&PdqHash::from_bytes([0xff; 32])), Some(Match { index: 201, distance: 0 }));
}

/// Large enough that radius-31 queries probe rather than scan.
#[test]
fn large_random_set_probes_at_radius_31_and_matches_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut hashes = random_set(&mut rng, 60_000);
    hashes.extend(clustered_set(&mut rng, 2000, 10));
    let owned = OwnedPdqIndex::build(&hashes).unwrap();
    let index = owned.index();
    let q = flip_bits(&mut rng, &hashes[12345], 20);
    assert!(matches!(index.strategy(&PdqHash::from_bytes(q), 31), Strategy::Mih { buckets: 272, .. }));
    assert_eq!(index.strategy(&PdqHash::from_bytes(q), 100), Strategy::Scan);
    check_set(14, &hashes, 60);
}

/// A pile of identical hashes fills one bucket per slice: probing near it
/// costs more than scanning, and the index notices from the real bucket
/// sizes although the uniform estimate says "probe".
#[test]
fn a_pile_of_identical_hashes_makes_nearby_queries_scan() {
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let mut hashes = random_set(&mut rng, 40_000);
    let pile = random_hash(&mut rng);
    hashes.extend(std::iter::repeat_n(pile, 40_000));
    let owned = OwnedPdqIndex::build(&hashes).unwrap();
    let index = owned.index();
    let near = PdqHash::from_bytes(flip_bits(&mut rng, &pile, 3));
    let far = PdqHash::from_bytes(random_hash(&mut rng));
    assert_eq!(index.strategy(&near, 31), Strategy::Scan);
    assert!(matches!(index.strategy(&far, 31), Strategy::Mih { .. }));
    let mut out = Vec::new();
    index.query(&near, 31, &mut out);
    assert_eq!(sorted(out), brute_force(&hashes, near.as_bytes(), 31));
    assert_eq!(index.nearest(&near), Some(Match { index: 40_000, distance: 3 }));
}

/// Every slice count, forced, on a clustered set, at the radii where the
/// plan changes shape (r = m·q + a with a = 0 or m − 1): the plan and the
/// reporting rule hold whatever the slice widths.
#[test]
fn every_slice_count_matches_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(20);
    let mut hashes = clustered_set(&mut rng, 60, 10);
    hashes.extend(random_set(&mut rng, 300));
    for slices in [16usize, 15, 14, 13, 12, 11] {
        let owned = OwnedPdqIndex::from_parts(PdqIndexBuilder::new().slices(slices).build(&hashes).unwrap()).unwrap();
        let index = owned.index();
        assert_eq!(index.layout().slices(), slices);
        let m = slices as u32;
        for (i, radius) in [0, 1, m - 1, m, 2 * m - 1, 2 * m, 31, 3 * m, 47, 64].into_iter().enumerate() {
            let base = hashes[rng.random_range(0..hashes.len())];
            let k = rng.random_range(0..=40);
            let near = flip_bits(&mut rng, &base, k);
            check_query(&index, &hashes, &near, radius);
            if i % 3 == 0 {
                check_query(&index, &hashes, &random_hash(&mut rng), radius);
                check_nearest(&index, &hashes, &near, radius);
            }
        }
    }
    assert_eq!(PdqIndexBuilder::new().slices(10).build(&hashes), Err(IndexError::SliceCount { slices: 10 }));
}

#[test]
fn builder_output_round_trips_through_le_bytes() {
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    let hashes = random_set(&mut rng, 1000);
    let parts = PdqIndexBuilder::new().build(&hashes).unwrap();
    assert_eq!(parts.slices, 16);
    assert_eq!(parts.size_bytes(), 1000 * 96 + 16 * 65537 * 4);
    // Copy into u32-aligned buffers, as a file reader would.
    let [h, o, i] = parts.as_le_bytes();
    let (h, o, i) = (h.to_vec(), aligned(o), aligned(i));
    let index = PdqIndex::from_le_bytes(16, &h, bytemuck::cast_slice(&o), bytemuck::cast_slice(&i)).unwrap();
    let q = PdqHash::from_bytes(hashes[5]);
    let mut out = Vec::new();
    index.query(&q, 31, &mut out);
    assert_eq!(out, vec![Match { index: 5, distance: 0 }]);
    // Bucket layout: slice 0 of hash 5 is its first two bytes, big-endian.
    let v = usize::from(u16::from_be_bytes([hashes[5][0], hashes[5][1]]));
    let ids = &parts.ids[parts.offsets[v] as usize..parts.offsets[v + 1] as usize];
    assert!(ids.contains(&5));
    // Slice 15: bytes 30 and 31, its offsets after 15 × 65537 others.
    let v = usize::from(u16::from_be_bytes([hashes[5][30], hashes[5][31]]));
    let base = 15 * 65537;
    let ids = &parts.ids[15 * 1000..][parts.offsets[base + v] as usize..parts.offsets[base + v + 1] as usize];
    assert!(ids.contains(&5));
}

/// The documented layout for 12 slices: 4 slices of 22 bits, then 8 of 21,
/// from the most significant bit.
#[test]
fn twelve_slice_layout_is_as_documented() {
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let hashes = random_set(&mut rng, 50);
    let parts = PdqIndexBuilder::new().slices(12).build(&hashes).unwrap();
    let layout = SliceLayout::new(12).unwrap();
    assert_eq!(parts.offsets.len(), 4 * ((1 << 22) + 1) + 8 * ((1 << 21) + 1));
    assert_eq!(parts.ids.len(), 12 * 50);
    let h = hashes[7];
    let top = u64::from_be_bytes(h[..8].try_into().unwrap());
    assert_eq!(layout.value(&h, 0), (top >> 42) as u32); // bits 0..22
    assert_eq!(layout.value(&h, 1), ((top >> 20) & 0x3f_ffff) as u32); // bits 22..44
    let last = u32::from_be_bytes(h[28..].try_into().unwrap());
    assert_eq!(layout.value(&h, 11), last & 0x1f_ffff); // bits 235..256
                                                        // Slice 4 starts at bit 88 = byte 11.
    assert_eq!(layout.start(4), 88);
    let r = layout.offsets_range(4);
    assert_eq!(r.start, 4 * ((1 << 22) + 1));
    let v = layout.value(&h, 4) as usize;
    let offs = &parts.offsets[r];
    assert!(parts.ids[4 * 50..5 * 50][offs[v] as usize..offs[v + 1] as usize].contains(&7));
}

fn aligned(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn corrupt(parts: &PdqIndexParts, f: impl FnOnce(&mut PdqIndexParts)) -> Result<(), IndexError> {
    let mut p = parts.clone();
    f(&mut p);
    OwnedPdqIndex::from_parts(p.clone()).map(|_| ())?;
    p.index().map(|_| ())
}

const OFFS: usize = 65537; // offsets per slice with 16 slices

#[test]
fn malformed_arrays_are_refused_with_the_place() {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let hashes = random_set(&mut rng, 100);
    let parts = PdqIndexBuilder::new().build(&hashes).unwrap();
    assert_eq!(corrupt(&parts, |_| ()), Ok(()));
    assert_eq!(corrupt(&parts, |p| p.slices = 17), Err(IndexError::SliceCount { slices: 17 }));
    assert_eq!(
        corrupt(&parts, |p| p.slices = 15),
        Err(IndexError::OffsetsLength {
            actual: 16 * OFFS,
            expected: (1 << 18) + 1 + 14 * ((1 << 17) + 1),
            slices: 15
        })
    );
    assert_eq!(
        corrupt(&parts, |p| {
            p.offsets.pop();
        }),
        Err(IndexError::OffsetsLength { actual: 16 * OFFS - 1, expected: 16 * OFFS, slices: 16 })
    );
    assert_eq!(
        corrupt(&parts, |p| p.ids.push(0)),
        Err(IndexError::IdsLength { actual: 1601, expected: 1600, slices: 16, n: 100 })
    );
    assert_eq!(
        corrupt(&parts, |p| {
            p.hashes.pop();
        }),
        Err(IndexError::IdsLength { actual: 1600, expected: 1584, slices: 16, n: 99 })
    );
    assert_eq!(corrupt(&parts, |p| p.offsets[3 * OFFS] = 1), Err(IndexError::OffsetsStart { slice: 3, value: 1 }));
    let at = 2 * OFFS + 500;
    let expected = IndexError::OffsetsDecrease {
        slice: 2,
        bucket: 501,
        value: parts.offsets[at + 1],
        previous: parts.offsets[at - 1] + 50,
    };
    assert_eq!(corrupt(&parts, |p| p.offsets[at] = p.offsets[at - 1] + 50), Err(expected));
    assert_eq!(
        corrupt(&parts, |p| p.ids[7 * 100 + 42] = 100),
        Err(IndexError::IdOutOfRange { slice: 7, position: 42, id: 100, n: 100 })
    );
    assert_eq!(
        corrupt(&parts, |p| p.ids[7 * 100 + 43] = u32::MAX),
        Err(IndexError::IdOutOfRange { slice: 7, position: 43, id: u32::MAX, n: 100 })
    );
}

#[test]
fn offsets_ending_below_n_are_refused() {
    let mut rng = ChaCha8Rng::seed_from_u64(18);
    let hashes = random_set(&mut rng, 100);
    let mut parts = PdqIndexBuilder::new().build(&hashes).unwrap();
    // Lower the tail of slice 1 so it stays monotonic but ends at 99.
    for o in &mut parts.offsets[OFFS..2 * OFFS] {
        *o = (*o).min(99);
    }
    assert_eq!(parts.index().map(|_| ()), Err(IndexError::OffsetsEnd { slice: 1, value: 99, n: 100 }));
}

#[test]
fn verify_contents_finds_misplaced_and_duplicate_ids() {
    let mut rng = ChaCha8Rng::seed_from_u64(19);
    let hashes = random_set(&mut rng, 100);
    let parts = PdqIndexBuilder::new().build(&hashes).unwrap();
    parts.index().unwrap().verify_contents().unwrap();
    // Swapping two ids of different buckets passes structural validation.
    let mut swapped = parts.clone();
    swapped.ids.swap(4 * 100 + 10, 4 * 100 + 90);
    let index = swapped.index().unwrap();
    assert!(matches!(index.verify_contents(), Err(IndexError::WrongBucket { slice: 4, .. })));
    // Hashes 0 and 1 equal, so they share every bucket; then id 1 replaced
    // by a second 0 in slice 0.
    let mut hs = hashes.clone();
    hs[1] = hs[0];
    let mut dup = PdqIndexBuilder::new().build(&hs).unwrap();
    let pos = dup.ids[..100].iter().position(|&id| id == 1).unwrap();
    dup.ids[pos] = 0;
    assert_eq!(dup.index().unwrap().verify_contents(), Err(IndexError::DuplicateId { slice: 0, id: 0 }));
}

#[test]
fn le_bytes_errors_name_the_section() {
    let hashes = [[1u8; 32], [2u8; 32]];
    let parts = PdqIndexBuilder::new().build(&hashes).unwrap();
    let [hb, ob, ib] = parts.as_le_bytes();
    assert_eq!(
        PdqIndex::from_le_bytes(16, &[0u8; 63], ob, ib).unwrap_err(),
        IndexError::ByteLength { array: "hashes", len: 63, element: 32 }
    );
    assert_eq!(
        PdqIndex::from_le_bytes(16, hb, &ob[..ob.len() - 2], ib).unwrap_err(),
        IndexError::ByteLength { array: "offsets", len: ob.len() - 2, element: 4 }
    );
    // Misaligned: the ids one byte into a u32-aligned buffer.
    let mut buffer = vec![0u32; parts.ids.len() + 1];
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buffer);
    bytes[1..1 + ib.len()].copy_from_slice(ib);
    let shifted = &bytes[1..1 + ib.len()];
    assert_eq!(PdqIndex::from_le_bytes(16, hb, ob, shifted).unwrap_err(), IndexError::Misaligned { array: "ids" });
    assert!(PdqIndex::from_le_bytes(16, hb, ob, ib).is_ok());
    let err = PdqIndex::from_le_bytes(12, hb, ob, ib).unwrap_err();
    assert!(matches!(err, IndexError::OffsetsLength { slices: 12, .. }), "{err}");
    assert!(err.to_string().contains("for 12 slices"), "{err}");
}

#[test]
fn checked_before_views_answer_like_the_checked_index_and_refuse_wrong_shapes() {
    use hashscan_pdq_index::{PdqIndex, PdqIndexBuilder};
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(77);
    let hashes: Vec<[u8; 32]> = (0..3000).map(|_| rng.random()).collect();
    let parts = PdqIndexBuilder::new().build(&hashes).unwrap();
    let full = PdqIndex::new(parts.slices, &parts.hashes, &parts.offsets, &parts.ids).unwrap();
    let view = PdqIndex::new_checked_before(parts.slices, &parts.hashes, &parts.offsets, &parts.ids).unwrap();
    for h in hashes.iter().take(50) {
        let q = hashscan_pdq::PdqHash::from_bytes(*h);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        full.query(&q, 31, &mut a);
        view.query(&q, 31, &mut b);
        a.sort_by_key(|m| m.index);
        b.sort_by_key(|m| m.index);
        assert_eq!(a, b);
    }
    assert!(PdqIndex::new_checked_before(parts.slices, &parts.hashes, &parts.offsets[1..], &parts.ids).is_err());
    assert!(PdqIndex::new_checked_before(parts.slices, &parts.hashes[1..], &parts.offsets, &parts.ids).is_err());
    assert!(PdqIndex::new_checked_before(99, &parts.hashes, &parts.offsets, &parts.ids).is_err());
}
