//! The fast pipeline against the literal port of the C++ (`reference.rs`),
//! bit for bit, on generated images of many shapes.

use crate::dct::{self, BLOCK, OUT};
use crate::downscale::{Downscaler, Source};
use crate::isa::Isa;
use crate::reference;
use crate::{Dihedral, PdqHash, PdqHasher};

/// Deterministic pseudo-random bytes (xorshift32), so failures reproduce.
struct Gen(u32);

impl Gen {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

/// An RGB8 image mixing a gradient, a few blocks and noise, so both smooth
/// and sharp structure reach the filter.
fn image(width: usize, height: usize, seed: u32) -> Vec<u8> {
    image_with_noise(width, height, seed, 24)
}

/// [`image`] with noise of amplitude `noise` (0 for a piecewise-smooth image).
fn image_with_noise(width: usize, height: usize, seed: u32, noise: u32) -> Vec<u8> {
    let mut g = Gen(seed.wrapping_mul(2_654_435_761).max(1));
    let blocks: Vec<(usize, usize, u8)> =
        (0..4).map(|_| (g.next() as usize % width.max(1), g.next() as usize % height.max(1), g.next() as u8)).collect();
    let mut out = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        for x in 0..width {
            let mut base = ((x * 255) / width.max(1) + (y * 128) / height.max(1)) as u32;
            for &(bx, by, v) in &blocks {
                if x >= bx && y >= by && x < bx + width / 3 + 1 && y < by + height / 4 + 1 {
                    base = base.wrapping_add(u32::from(v));
                }
            }
            for c in 0..3u32 {
                let noise = g.next() % noise.max(1);
                out.push((base.wrapping_add(c * 40 + noise) % 256) as u8);
            }
        }
    }
    out
}

fn assert_same_block(a: &[[f32; BLOCK]; BLOCK], b: &[[f32; BLOCK]; BLOCK], what: &str) {
    for i in 0..BLOCK {
        for j in 0..BLOCK {
            assert_eq!(a[i][j].to_bits(), b[i][j].to_bits(), "{what}: [{i}][{j}] {} vs {}", a[i][j], b[i][j]);
        }
    }
}

fn fast_downsample(ds: &mut Downscaler, rgb: &[u8], w: usize, h: usize) -> [[f32; BLOCK]; BLOCK] {
    let mut block = [[0.0f32; BLOCK]; BLOCK];
    ds.run(Isa::detect(), Source::Rgb(rgb), w, h, &mut block);
    block
}

#[test]
fn streaming_downsample_equals_reference_bit_for_bit() {
    let sizes = [
        (1, 1),
        (2, 3),
        (5, 5),
        (7, 300),
        (300, 7),
        (63, 65),
        (64, 64),
        (100, 100),
        (127, 129),
        (128, 128),
        (129, 257),
        (250, 250),
        (256, 385),
        (640, 480),
        (1000, 9),
        (9, 1000),
        (1031, 517),
        (13, 2600),
    ];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        assert!(matches!(Isa::detect(), Isa::Avx2(_)), "AVX2 kernels not selected");
    }
    let mut ds = Downscaler::default();
    for (seed, &(w, h)) in sizes.iter().enumerate() {
        let rgb = image(w, h, seed as u32 + 1);
        let want = reference::downsample(&reference::luma_of(&rgb), w, h);
        let got = fast_downsample(&mut ds, &rgb, w, h);
        assert_same_block(&got, &want, &format!("{w}x{h}"));
        // The baseline build of the kernels too (`detect` may pick AVX2).
        let mut portable = [[0.0f32; BLOCK]; BLOCK];
        ds.run(Isa::Portable, Source::Rgb(&rgb), w, h, &mut portable);
        assert_same_block(&portable, &want, &format!("{w}x{h} portable"));
    }
}

#[test]
fn luma_source_equals_rgb_source() {
    let (w, h) = (333, 211);
    let rgb = image(w, h, 99);
    let luma = reference::luma_of(&rgb);
    let mut ds = Downscaler::default();
    let a = fast_downsample(&mut ds, &rgb, w, h);
    let mut b = [[0.0f32; BLOCK]; BLOCK];
    ds.run(Isa::detect(), Source::Luma(&luma), w, h, &mut b);
    assert_same_block(&a, &b, "luma vs rgb");
}

#[test]
fn vectorised_dct_equals_reference_bit_for_bit() {
    for seed in 1..20u32 {
        let rgb = image(64, 64, seed);
        let luma = reference::luma_of(&rgb);
        let mut a = [[0.0f32; BLOCK]; BLOCK];
        for (dst, src) in a.as_flattened_mut().iter_mut().zip(&luma) {
            *dst = *src;
        }
        let want = reference::dct(&a);
        for isa in [Isa::Portable, Isa::detect()] {
            let mut t = [[0.0f32; BLOCK]; OUT];
            let mut got = [[0.0f32; OUT]; OUT];
            dct::dct64_to_16(isa, &a, &mut t, &mut got);
            for i in 0..OUT {
                for j in 0..OUT {
                    assert_eq!(got[i][j].to_bits(), want[i][j].to_bits(), "seed {seed} [{i}][{j}] {isa:?}");
                }
            }
        }
    }
}

#[test]
fn hasher_equals_reference_pipeline() {
    let mut hasher = PdqHasher::new();
    for (seed, &(w, h)) in [(320usize, 240usize), (64, 64), (65, 64), (17, 999)].iter().enumerate() {
        let rgb = image(w, h, seed as u32 + 7);
        let luma = reference::luma_of(&rgb);
        let block = if (w, h) == (64, 64) {
            let mut b = [[0.0f32; BLOCK]; BLOCK];
            b.as_flattened_mut().copy_from_slice(&luma);
            b
        } else {
            reference::downsample(&luma, w, h)
        };
        let dct_out = reference::dct(&block);
        let want = dct::bits_from_dct(&dct_out);
        let got = hasher.hash_rgb8(w as u32, h as u32, &rgb).unwrap();
        assert_eq!(got.hash, want, "{w}x{h}");
        assert_eq!(got.quality, reference::quality(&block), "{w}x{h}");
    }
}

#[test]
fn dihedral_of_64x64_filters_but_plain_hash_does_not() {
    // The reference's plain entry point skips the tent filter for 64×64
    // input; its dihedral entry point does not. Check we mirror both.
    let rgb = image(64, 64, 5);
    let luma = reference::luma_of(&rgb);
    let filtered = reference::downsample(&luma, 64, 64);
    let mut hasher = PdqHasher::new();
    let dih = hasher.dihedral_rgb8(64, 64, &rgb).unwrap();
    assert_eq!(dih.hashes[0], dct::bits_from_dct(&reference::dct(&filtered)));
    let mut raw = [[0.0f32; BLOCK]; BLOCK];
    raw.as_flattened_mut().copy_from_slice(&luma);
    let plain = hasher.hash_rgb8(64, 64, &rgb).unwrap();
    assert_eq!(plain.hash, dct::bits_from_dct(&reference::dct(&raw)));
}

#[test]
fn dihedral_hashes_match_hashing_the_transformed_image() {
    // Transforming pixels and re-hashing must land close to the DCT-domain
    // transform (not bit-exact: the filter's rounding differs by direction).
    // Odd windows (5 and 3) keep the box filter symmetric, so what remains
    // is the one-pixel asymmetry of the decimation's sample points.
    let (w, h) = (640usize, 384usize);
    // Many soft blobs: structure at every scale the hash sees, but no
    // pixel-level noise, so the filter's half-pixel asymmetry moves few bits.
    let mut g = Gen(77);
    let blobs: Vec<(f64, f64, f64, f64)> = (0..80)
        .map(|_| {
            let x = f64::from(g.next() % 640);
            let y = f64::from(g.next() % 384);
            let r = 12.0 + f64::from(g.next() % 40);
            let a = f64::from(g.next() % 120) - 60.0;
            (x, y, r * r, a)
        })
        .collect();
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let mut v = 128.0;
            for &(bx, by, r2, a) in &blobs {
                let d2 = (x as f64 - bx).powi(2) + (y as f64 - by).powi(2);
                v += a * (-d2 / r2).exp();
            }
            let v = v.clamp(0.0, 255.0) as u8;
            rgb.extend_from_slice(&[v, v / 2, 255 - v]);
        }
    }
    let px = |x: usize, y: usize| &rgb[(y * w + x) * 3..(y * w + x) * 3 + 3];
    let mut hasher = PdqHasher::new();
    let dih = hasher.dihedral_rgb8(w as u32, h as u32, &rgb).unwrap();
    // Pixel-domain transforms, each with the dihedral hash it must land on.
    // out(x, y) = src(f(x, y)).
    type Map = Box<dyn Fn(usize, usize) -> (usize, usize)>;
    let transforms: Vec<(usize, usize, Map, Dihedral)> = vec![
        (w, h, Box::new(|x, y| (x, y)), Dihedral::Original),
        (w, h, Box::new(move |x, y| (w - 1 - x, h - 1 - y)), Dihedral::Rotate180),
        (w, h, Box::new(move |x, y| (w - 1 - x, y)), Dihedral::FlipY),
        (w, h, Box::new(move |x, y| (x, h - 1 - y)), Dihedral::FlipX),
        (h, w, Box::new(|x, y| (y, x)), Dihedral::FlipPlus1),
        (h, w, Box::new(move |x, y| (w - 1 - y, h - 1 - x)), Dihedral::FlipMinus1),
        // Right edge becomes the top: counter-clockwise.
        (h, w, Box::new(move |x, y| (w - 1 - y, x)), Dihedral::Rotate90),
        (h, w, Box::new(move |x, y| (y, h - 1 - x)), Dihedral::Rotate270),
    ];
    for (tw, th, f, want) in &transforms {
        let mut out = Vec::with_capacity(tw * th * 3);
        for y in 0..*th {
            for x in 0..*tw {
                let (sx, sy) = f(x, y);
                out.extend_from_slice(px(sx, sy));
            }
        }
        let got = hasher.hash_rgb8(*tw as u32, *th as u32, &out).unwrap().hash;
        for t in Dihedral::ALL {
            let d = dih.get(t).hamming(&got);
            if t == *want {
                assert!(d <= 16, "{}: {d} bits from its dihedral hash", t.name());
            } else {
                assert!(d >= 64, "{} landed {d} bits from {}", want.name(), t.name());
            }
        }
    }
}

#[test]
fn results_do_not_depend_on_previous_images() {
    let mut fresh = PdqHasher::new();
    let mut reused = PdqHasher::new();
    let big = image(900, 700, 1);
    let small = image(130, 90, 2);
    reused.hash_rgb8(900, 700, &big).unwrap();
    let a = reused.hash_rgb8(130, 90, &small).unwrap();
    let b = fresh.hash_rgb8(130, 90, &small).unwrap();
    assert_eq!(a, b);
}

#[test]
fn hash_bits_follow_reference_numbering() {
    // DCT[i][j] above the median sets bit 16*i + j; bit 0 is the lowest bit
    // of the last hex character.
    let mut d = [[0.0f32; OUT]; OUT];
    for (k, v) in d.as_flattened_mut().iter_mut().enumerate() {
        *v = if k == 0 || k == 255 || k == 17 { 1.0 } else { 0.0 };
    }
    let h = dct::bits_from_dct(&d);
    assert!(h.bit(0) && h.bit(17) && h.bit(255));
    assert_eq!(h.count_ones(), 3);
    let want = format!("8000{}00020001", "0000".repeat(13));
    assert_eq!(h.to_hex(), want);
    assert_eq!(PdqHash::from_hex(&h.to_hex()).unwrap(), h);
}

#[test]
fn vectorised_quality_equals_reference() {
    let mut g = Gen(4242);
    for round in 0..200 {
        // Scales from flat-ish to huge steps, so the cap and the saturation
        // at 100 are both exercised.
        let scale = [0.5f32, 3.0, 40.0, 255.0, 1.0e5][round % 5];
        let mut a = [[0.0f32; BLOCK]; BLOCK];
        for v in a.as_flattened_mut() {
            *v = (g.next() % 10_000) as f32 / 10_000.0 * scale;
        }
        let want = reference::quality(&a);
        for isa in [Isa::Portable, Isa::detect()] {
            assert_eq!(dct::quality(isa, &a), want, "round {round} {isa:?}");
        }
    }
}

#[test]
fn scratch_is_bounded_by_width_times_window_not_height() {
    let mut ds = Downscaler::default();
    let mut block = [[0.0f32; BLOCK]; BLOCK];
    // A 6 × 40000 strip: two full images would be ~2 MB; the ring needs
    // (40000 / 128 + 8) rows of 6 values plus as many 64-value rows.
    let (w, h) = (6usize, 40_000usize);
    let rgb = image_with_noise(w, h, 1, 8);
    ds.run(Isa::detect(), Source::Rgb(&rgb), w, h, &mut block);
    let after_first = ds.footprint();
    assert!(after_first < 120_000, "scratch {after_first} bytes");
    assert_same_block(&block, &reference::downsample(&reference::luma_of(&rgb), w, h), "6x40000");
    // Same size again: no growth (nothing is reallocated).
    ds.run(Isa::detect(), Source::Rgb(&rgb), w, h, &mut block);
    assert_eq!(ds.footprint(), after_first);
}
