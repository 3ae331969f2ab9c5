//! The public API: hash values, errors, small and odd-shaped images.

use hashscan_pdq::{Dihedral, ParseHashError, PdqError, PdqHash, PdqHasher, Pixels, HEX_LEN, MIN_DIMENSION};

const BRIDGE_HEX: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

/// Deterministic RGB8 content (xorshift32 noise over a gradient).
fn generated(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let mut s = seed.max(1);
    let mut out = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            for c in 0..3 {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let base = (x * 7 + y * 3 + c * 50) % 256;
                out.push(((base + s % 64) % 256) as u8);
            }
        }
    }
    out
}

/// Luma the way the reference computes it, for the luma entry points.
fn luma(rgb: &[u8]) -> Vec<f32> {
    rgb.chunks_exact(3)
        .map(|p| 0.299f32 * f32::from(p[0]) + 0.587f32 * f32::from(p[1]) + 0.114f32 * f32::from(p[2]))
        .collect()
}

#[test]
fn hex_round_trips_and_bytes_are_big_endian() {
    let h = PdqHash::from_hex(BRIDGE_HEX).unwrap();
    assert_eq!(h.to_hex(), BRIDGE_HEX);
    assert_eq!(h.to_string(), BRIDGE_HEX);
    assert_eq!(BRIDGE_HEX.parse::<PdqHash>().unwrap(), h);
    assert_eq!(h.as_bytes()[0], 0xf8);
    assert_eq!(h.as_bytes()[31], 0x22);
    assert_eq!(PdqHash::from_bytes(*h.as_bytes()), h);
    // Upper case is accepted (the C++ parser accepts it), output is lower case.
    let upper = PdqHash::from_hex(&BRIDGE_HEX.to_uppercase()).unwrap();
    assert_eq!(upper, h);
    // Bit 0 is the lowest bit of the last byte; 0x22 has bit 1 set, not bit 0.
    assert!(!h.bit(0) && h.bit(1) && h.bit(255));
    assert!(!h.bit(256));
    assert_eq!(format!("{h:?}"), format!("PdqHash({BRIDGE_HEX})"));
}

#[test]
fn serde_uses_the_hex_string() {
    let h = PdqHash::from_hex(BRIDGE_HEX).unwrap();
    let json = serde_json::to_string(&h).unwrap();
    assert_eq!(json, format!("\"{BRIDGE_HEX}\""));
    assert_eq!(serde_json::from_str::<PdqHash>(&json).unwrap(), h);
    assert!(serde_json::from_str::<PdqHash>("\"abc\"").is_err());
}

#[test]
fn hamming_counts_differing_bits() {
    let a = PdqHash::from_hex(BRIDGE_HEX).unwrap();
    assert_eq!(a.hamming(&a), 0);
    assert_eq!(PdqHash::ZERO.hamming(&a), a.count_ones());
    let all_ones = PdqHash::from_bytes([0xff; 32]);
    assert_eq!(PdqHash::ZERO.hamming(&all_ones), 256);
    let mut bytes = *a.as_bytes();
    bytes[0] ^= 0b1000_0001;
    bytes[17] ^= 0b0001_0000;
    bytes[31] ^= 0b0000_0001;
    let b = PdqHash::from_bytes(bytes);
    assert_eq!(a.hamming(&b), 4);
    assert_eq!(b.hamming(&a), 4);
    // A published pair from the conformance README: 8 bits apart.
    let published = PdqHash::from_hex("f8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22").unwrap();
    assert_eq!(a.hamming(&published), 8);
}

#[test]
fn bad_hex_is_a_typed_error() {
    assert_eq!(PdqHash::from_hex(""), Err(ParseHashError::WrongLength { len: 0 }));
    assert_eq!(PdqHash::from_hex(&BRIDGE_HEX[..63]), Err(ParseHashError::WrongLength { len: 63 }));
    assert_eq!(PdqHash::from_hex(&format!("{BRIDGE_HEX}0")), Err(ParseHashError::WrongLength { len: HEX_LEN + 1 }));
    let mut s = BRIDGE_HEX.to_owned();
    s.replace_range(10..11, "g");
    assert_eq!(PdqHash::from_hex(&s), Err(ParseHashError::InvalidChar { index: 10, ch: 'g' }));
    // Whitespace and prefixes are not silently accepted.
    let padded = format!(" {}", &BRIDGE_HEX[1..]);
    assert_eq!(PdqHash::from_hex(&padded), Err(ParseHashError::InvalidChar { index: 0, ch: ' ' }));
    // A multi-byte character is reported whole, without panicking.
    let s = format!("é{}", &BRIDGE_HEX[2..]);
    assert_eq!(s.len(), 64);
    assert_eq!(PdqHash::from_hex(&s), Err(ParseHashError::InvalidChar { index: 0, ch: 'é' }));
    let s = format!("{}é", &BRIDGE_HEX[..62]);
    assert_eq!(PdqHash::from_hex(&s), Err(ParseHashError::InvalidChar { index: 62, ch: 'é' }));
    assert!(PdqHash::from_hex(&s).unwrap_err().to_string().contains("position 62"));
}

#[test]
fn zero_size_images_are_errors() {
    let mut h = PdqHasher::new();
    assert_eq!(h.hash_rgb8(0, 10, &[]), Err(PdqError::Empty { width: 0, height: 10 }));
    assert_eq!(h.hash_rgb8(10, 0, &[]), Err(PdqError::Empty { width: 10, height: 0 }));
    assert_eq!(h.hash_luma_f32(0, 0, &[]), Err(PdqError::Empty { width: 0, height: 0 }));
    assert!(matches!(h.dihedral_rgb8(0, 3, &[]), Err(PdqError::Empty { .. })));
}

#[test]
fn mismatched_buffers_are_errors() {
    let mut h = PdqHasher::new();
    let rgb = vec![0u8; 10 * 10 * 3];
    assert_eq!(
        h.hash_rgb8(10, 11, &rgb),
        Err(PdqError::BufferLength { width: 10, height: 11, channels: 3, expected: 330, actual: 300 })
    );
    assert!(matches!(h.hash_rgb8(10, 10, &rgb[..299]), Err(PdqError::BufferLength { .. })));
    assert!(matches!(h.dihedral_rgb8(9, 10, &rgb), Err(PdqError::BufferLength { .. })));
    // A luma buffer is one value per pixel, not three.
    let l = vec![0.0f32; 300];
    assert!(matches!(
        h.hash_luma_f32(10, 10, &l),
        Err(PdqError::BufferLength { channels: 1, expected: 100, actual: 300, .. })
    ));
    // Sizes whose byte count overflows are refused before any arithmetic on them.
    assert_eq!(h.hash_rgb8(u32::MAX, u32::MAX, &[]), Err(PdqError::TooLarge { width: u32::MAX, height: u32::MAX }));
    // The error message names the numbers.
    let msg = h.hash_rgb8(10, 11, &rgb).unwrap_err().to_string();
    assert!(msg.contains("300") && msg.contains("330") && msg.contains("10x11"), "{msg}");
}

#[test]
fn non_finite_luma_is_an_error() {
    let mut h = PdqHasher::new();
    let mut l = vec![1.0f32; 100];
    l[42] = f32::NAN;
    assert!(matches!(h.hash_luma_f32(10, 10, &l), Err(PdqError::NonFiniteLuma { index: 42, .. })));
    l[42] = f32::INFINITY;
    assert!(matches!(h.dihedral_luma_f32(10, 10, &l), Err(PdqError::NonFiniteLuma { index: 42, .. })));
}

#[test]
fn flat_images_have_quality_zero_and_black_hashes_to_zero() {
    let mut h = PdqHasher::new();
    // All-black: every value is 0.0 exactly, so every DCT coefficient is 0,
    // the median is 0 and no coefficient is strictly above it.
    let black = vec![0u8; 300 * 200 * 3];
    let out = h.hash_rgb8(300, 200, &black).unwrap();
    assert_eq!(out.quality, 0);
    assert_eq!(out.hash, PdqHash::ZERO);
    // Any flat colour: no gradient, so quality 0 (the hash bits are then
    // rounding noise, as in the reference, and must not be trusted).
    for (w, hgt, v) in [(300u32, 200u32, 128u8), (64, 64, 77), (1000, 17, 255), (5, 5, 3)] {
        let img = vec![v; (w * hgt * 3) as usize];
        let out = h.hash_rgb8(w, hgt, &img).unwrap();
        assert_eq!(out.quality, 0, "{w}x{hgt} value {v}");
        assert_eq!(h.dihedral_rgb8(w, hgt, &img).unwrap().quality, 0);
    }
}

#[test]
fn images_below_five_pixels_get_the_zero_hash() {
    let mut h = PdqHasher::new();
    for (w, hgt) in [(1u32, 1u32), (2, 3), (4, 4), (4, 1000), (1000, 4), (1, 5)] {
        let img = generated(w, hgt, w * 31 + hgt);
        let out = h.hash_rgb8(w, hgt, &img).unwrap();
        assert_eq!((out.hash, out.quality), (PdqHash::ZERO, 0), "{w}x{hgt}");
        let d = h.dihedral_rgb8(w, hgt, &img).unwrap();
        assert!(d.hashes.iter().all(|x| *x == PdqHash::ZERO));
        assert_eq!(d.quality, 0);
    }
    // From MIN_DIMENSION on, images are really hashed.
    let img = generated(MIN_DIMENSION, MIN_DIMENSION, 9);
    let out = h.hash_rgb8(MIN_DIMENSION, MIN_DIMENSION, &img).unwrap();
    assert_ne!(out.hash, PdqHash::ZERO);
}

#[test]
fn hashing_never_panics_and_rgb_equals_luma_for_many_shapes() {
    let mut h = PdqHasher::new();
    let mut shapes: Vec<(u32, u32)> = Vec::new();
    for w in 1..=300u32 {
        for hgt in [1u32, 2, 5, 7] {
            shapes.push((w, hgt));
            shapes.push((hgt, w));
        }
    }
    shapes.extend([(64, 64), (63, 64), (64, 65), (128, 129), (2000, 5), (5, 2000), (257, 131)]);
    for (i, &(w, hgt)) in shapes.iter().enumerate() {
        let img = generated(w, hgt, i as u32 + 1);
        let a = h.hash_rgb8(w, hgt, &img).unwrap();
        assert!(a.quality <= 100);
        let b = h.hash_luma_f32(w, hgt, &luma(&img)).unwrap();
        assert_eq!(a, b, "{w}x{hgt}: rgb and luma entry points differ");
        let d = h.dihedral_rgb8(w, hgt, &img).unwrap();
        if (w, hgt) != (64, 64) {
            assert_eq!(d.original(), a, "{w}x{hgt}");
        }
        assert_eq!(d, h.dihedral_luma_f32(w, hgt, &luma(&img)).unwrap());
        if w >= MIN_DIMENSION && hgt >= MIN_DIMENSION {
            // Noise images are far from flat: about half the bits are set.
            let ones = a.hash.count_ones();
            assert!((96..=160).contains(&ones), "{w}x{hgt}: {ones} bits set");
        }
    }
}

#[test]
fn dihedral_order_and_names_follow_the_reference() {
    let names: Vec<&str> = Dihedral::ALL.iter().map(|t| t.name()).collect();
    assert_eq!(names, ["orig", "rot90", "rot180", "rot270", "flipx", "flipy", "flipplus1", "flipminus1"]);
    for (i, t) in Dihedral::ALL.iter().enumerate() {
        assert_eq!(*t as usize, i);
    }
}

#[test]
fn extreme_values_in_luma_do_not_panic() {
    let mut h = PdqHasher::new();
    let mut l = vec![0.0f32; 40 * 30];
    for (i, v) in l.iter_mut().enumerate() {
        *v = if i % 3 == 0 { f32::MAX } else { -f32::MAX };
    }
    let out = h.hash_luma_f32(40, 30, &l).unwrap();
    assert!(out.quality <= 100);
}

#[test]
fn every_pixel_layout_hashes_like_its_rgb_expansion() {
    let mut h = PdqHasher::new();
    for (i, &(w, hgt)) in [(64u32, 64u32), (97, 61), (5, 300), (300, 5), (1, 1), (640, 480)].iter().enumerate() {
        let rgb = generated(w, hgt, i as u32 + 11);
        let n = (w * hgt) as usize;
        // RGBA: alpha must be ignored whatever its value.
        let rgba: Vec<u8> = rgb.chunks(3).enumerate().flat_map(|(k, c)| [c[0], c[1], c[2], (k * 37) as u8]).collect();
        assert_eq!(h.hash_pixels(w, hgt, Pixels::Rgba8(&rgba)).unwrap(), h.hash_rgb8(w, hgt, &rgb).unwrap());
        assert_eq!(h.dihedral_pixels(w, hgt, Pixels::Rgba8(&rgba)).unwrap(), h.dihedral_rgb8(w, hgt, &rgb).unwrap());
        // Grey (with or without alpha) equals R = G = B.
        let grey: Vec<u8> = rgb.iter().step_by(3).copied().collect();
        let grey_rgb: Vec<u8> = grey.iter().flat_map(|&g| [g, g, g]).collect();
        let grey_alpha: Vec<u8> = grey.iter().flat_map(|&g| [g, 200]).collect();
        let want = h.hash_rgb8(w, hgt, &grey_rgb).unwrap();
        assert_eq!(h.hash_pixels(w, hgt, Pixels::Gray8(&grey)).unwrap(), want, "{w}x{hgt}");
        assert_eq!(h.hash_pixels(w, hgt, Pixels::GrayAlpha8(&grey_alpha)).unwrap(), want, "{w}x{hgt}");
        // Luma8 is luma taken as given.
        let as_f32: Vec<f32> = grey.iter().map(|&g| f32::from(g)).collect();
        assert_eq!(h.hash_pixels(w, hgt, Pixels::Luma8(&grey)).unwrap(), h.hash_luma_f32(w, hgt, &as_f32).unwrap());
        assert_eq!(grey.len(), n);
    }
    assert!(matches!(h.hash_pixels(4, 4, Pixels::Rgba8(&[0; 48])), Err(PdqError::BufferLength { .. })));
}
