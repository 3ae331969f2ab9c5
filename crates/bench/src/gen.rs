//! Benign generated pictures for the benchmark, deterministic from a seed.
//!
//! [`photo`] imitates what matters about a photograph for decoding cost: a
//! few large smooth regions (sky, ground), objects with soft edges, textured
//! areas with detail down to the pixel, and sensor-like grain, so that a
//! JPEG of it costs 1.5–3 bits per pixel at quality 85–90 like a camera
//! or web photo does. The other [`Texture`]s vary the content for the
//! fast-vs-exact distance study (flat shapes, fine gratings that alias when
//! downscaled, clouds, line art, checkers).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// An RGB picture, 3 bytes a pixel, row-major.
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// Kinds of content in the distance corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Texture {
    /// Photo-like: regions, soft objects, texture and grain.
    Photo,
    /// Gradient background and flat-coloured shapes (like the test web's).
    Flat,
    /// Fine sinusoidal gratings at random angles over a photo-like base.
    Gratings,
    /// Multi-octave noise only.
    Clouds,
    /// Thin dark lines and outlines on a light background.
    LineArt,
    /// Checkerboards of a few pixels' period in regions.
    Checkers,
}

impl Texture {
    pub const ALL: [Texture; 6] =
        [Texture::Photo, Texture::Flat, Texture::Gratings, Texture::Clouds, Texture::LineArt, Texture::Checkers];

    pub fn name(self) -> &'static str {
        match self {
            Texture::Photo => "photo",
            Texture::Flat => "flat",
            Texture::Gratings => "gratings",
            Texture::Clouds => "clouds",
            Texture::LineArt => "lineart",
            Texture::Checkers => "checkers",
        }
    }
}

/// Draws a picture of the given texture.
pub fn draw(texture: Texture, seed: u64, width: u32, height: u32) -> Picture {
    match texture {
        Texture::Photo => photo(seed, width, height),
        Texture::Flat => flat(seed, width, height),
        Texture::Gratings => gratings(seed, width, height),
        Texture::Clouds => clouds(seed, width, height),
        Texture::LineArt => line_art(seed, width, height),
        Texture::Checkers => checkers(seed, width, height),
    }
}

/// Value noise summed over octaves, periods from `coarse` down to `fine`
/// pixels, each octave's amplitude `persistence` times the previous one.
/// Output roughly in -1..1.
fn fractal(rng: &mut ChaCha8Rng, w: usize, h: usize, coarse: f32, fine: f32, persistence: f32) -> Vec<f32> {
    let mut out = vec![0f32; w * h];
    let mut period = coarse.max(fine);
    let mut amp = 1.0f32;
    let mut total = 0.0f32;
    let mut xi = vec![0usize; w];
    let mut xt = vec![0f32; w];
    let mut top = vec![0f32; w];
    let mut bottom = vec![0f32; w];
    loop {
        let gw = (w as f32 / period) as usize + 2;
        let gh = (h as f32 / period) as usize + 2;
        let grid: Vec<f32> = (0..gw * gh).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
        let off_x: f32 = rng.random();
        let off_y: f32 = rng.random();
        for x in 0..w {
            let g = x as f32 / period + off_x;
            let i = (g as usize).min(gw - 2);
            let t = g - i as f32;
            xi[x] = i;
            xt[x] = t * t * (3.0 - 2.0 * t);
        }
        for y in 0..h {
            let g = y as f32 / period + off_y;
            let j = (g as usize).min(gh - 2);
            let t = g - j as f32;
            let yt = t * t * (3.0 - 2.0 * t);
            let (r0, r1) = (&grid[j * gw..(j + 1) * gw], &grid[(j + 1) * gw..(j + 2) * gw]);
            for x in 0..w {
                let (i, t) = (xi[x], xt[x]);
                top[x] = r0[i] + (r0[i + 1] - r0[i]) * t;
                bottom[x] = r1[i] + (r1[i + 1] - r1[i]) * t;
            }
            let row = &mut out[y * w..(y + 1) * w];
            for x in 0..w {
                row[x] += amp * (top[x] + (bottom[x] - top[x]) * yt);
            }
        }
        total += amp;
        if period <= fine {
            break;
        }
        period = (period / 2.0).max(fine);
        amp *= persistence;
    }
    let norm = 1.0 / total.max(1e-6);
    out.iter_mut().for_each(|v| *v *= norm * 1.6);
    out
}

/// A fast per-pixel grain source (xorshift), triangular in -1..1.
struct Grain(u64);

impl Grain {
    fn next(&mut self) -> f32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        let a = (x & 0xffff) as f32 / 65535.0;
        let b = ((x >> 16) & 0xffff) as f32 / 65535.0;
        a + b - 1.0
    }
}

fn colour(rng: &mut ChaCha8Rng) -> [f32; 3] {
    std::array::from_fn(|_| rng.random_range(20.0..235.0))
}

fn to_picture(width: u32, height: u32, f: &[[f32; 3]]) -> Picture {
    let rgb = f.iter().flat_map(|p| p.map(|v| v.clamp(0.0, 255.0).round() as u8)).collect();
    Picture { width, height, rgb }
}

/// Soft-edged object mask: 1 inside, 0 outside, a ramp `edge` pixels wide.
fn soft(d: f32, edge: f32) -> f32 {
    (0.5 - d / edge).clamp(0.0, 1.0)
}

/// A photo-like picture.
pub fn photo(seed: u64, width: u32, height: u32) -> Picture {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (w, h) = (width as usize, height as usize);
    let big = w.max(h) as f32;
    // Scene: sky above a horizon, ground below.
    let sky_top = colour(&mut rng);
    let sky_low = colour(&mut rng);
    let ground = colour(&mut rng);
    let horizon = rng.random_range(0.3..0.7) * h as f32;
    let coarse = fractal(&mut rng, w, h, big / 3.0, big / 48.0, 0.55);
    let chroma_a = fractal(&mut rng, w, h, big / 2.0, big / 24.0, 0.5);
    let chroma_b = fractal(&mut rng, w, h, big / 2.0, big / 24.0, 0.5);
    // Fine texture, in pixels, where the `mask` field says (foliage, fabric…).
    let texture = fractal(&mut rng, w, h, 24.0, 1.0, 0.9);
    let mask = fractal(&mut rng, w, h, big / 4.0, big / 16.0, 0.5);
    let texture_amp = rng.random_range(55.0..80.0f32);
    let grain_amp = rng.random_range(5.0..8.0f32);

    let mut px: Vec<[f32; 3]> = Vec::with_capacity(w * h);
    for y in 0..h {
        let yf = y as f32;
        for x in 0..w {
            let i = y * w + x;
            let base = if yf < horizon {
                let t = yf / horizon;
                std::array::from_fn(|c| sky_top[c] * (1.0 - t) + sky_low[c] * t)
            } else {
                ground
            };
            let m = ((mask[i] + 0.2) * 2.5).clamp(0.0, 1.0) * if yf < horizon { 0.3 } else { 1.0 };
            let l = coarse[i] * 45.0 + texture[i] * texture_amp * m;
            px.push([base[0] + l + chroma_a[i] * 18.0, base[1] + l, base[2] + l + chroma_b[i] * 18.0]);
        }
    }
    // Objects: soft ellipses and rectangles with their own shading.
    let objects = rng.random_range(6..16);
    for _ in 0..objects {
        let c = colour(&mut rng);
        let cx = rng.random_range(0.0..w as f32);
        let cy = rng.random_range(horizon * 0.8..h as f32);
        let rx = rng.random_range(0.03..0.2) * big;
        let ry = rx * rng.random_range(0.4..1.6);
        let edge = rng.random_range(1.0..6.0f32);
        let ellipse = rng.random_bool(0.6);
        let shade = rng.random_range(10.0..40.0f32);
        let (x0, x1) = (((cx - rx - edge).max(0.0)) as usize, ((cx + rx + edge) as usize).min(w));
        let (y0, y1) = (((cy - ry - edge).max(0.0)) as usize, ((cy + ry + edge) as usize).min(h));
        for y in y0..y1 {
            for x in x0..x1 {
                let (dx, dy) = (x as f32 - cx, y as f32 - cy);
                let d = if ellipse {
                    ((dx / rx).powi(2) + (dy / ry).powi(2)).sqrt() * rx.min(ry) - rx.min(ry)
                } else {
                    (dx.abs() - rx).max(dy.abs() - ry)
                };
                let a = soft(d, edge);
                if a <= 0.0 {
                    continue;
                }
                let i = y * w + x;
                let light = -dy / ry * shade + texture[i] * texture_amp * 0.6;
                let p = &mut px[i];
                for ch in 0..3 {
                    p[ch] = p[ch] * (1.0 - a) + (c[ch] + light) * a;
                }
            }
        }
    }
    let mut grain = Grain(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    for p in &mut px {
        let g = grain.next() * grain_amp;
        for ch in p.iter_mut() {
            *ch += g + grain.next() * grain_amp * 0.5;
        }
    }
    to_picture(width, height, &px)
}

fn flat(seed: u64, width: u32, height: u32) -> Picture {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (w, h) = (width as usize, height as usize);
    let a = colour(&mut rng);
    let b = colour(&mut rng);
    let vertical = rng.random_bool(0.5);
    let mut px: Vec<[f32; 3]> = (0..w * h)
        .map(|i| {
            let t = if vertical { (i / w) as f32 / h as f32 } else { (i % w) as f32 / w as f32 };
            std::array::from_fn(|c| a[c] * (1.0 - t) + b[c] * t)
        })
        .collect();
    let shapes = rng.random_range(3..12);
    for _ in 0..shapes {
        let c = colour(&mut rng);
        let cx = rng.random_range(0.0..w as f32);
        let cy = rng.random_range(0.0..h as f32);
        let r = rng.random_range(0.05..0.3) * w.min(h) as f32;
        let kind = rng.random_range(0..2);
        for y in ((cy - r).max(0.0) as usize)..((cy + r) as usize).min(h) {
            for x in ((cx - r).max(0.0) as usize)..((cx + r) as usize).min(w) {
                let (dx, dy) = (x as f32 - cx, y as f32 - cy);
                let inside = if kind == 0 { dx.abs() <= r && dy.abs() <= r / 2.0 } else { dx * dx + dy * dy <= r * r };
                if inside {
                    px[y * w + x] = c;
                }
            }
        }
    }
    to_picture(width, height, &px)
}

fn gratings(seed: u64, width: u32, height: u32) -> Picture {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let base = photo(seed ^ 0x5eed, width, height);
    let (w, h) = (width as usize, height as usize);
    let mut px: Vec<[f32; 3]> = base.rgb.chunks_exact(3).map(|p| [p[0], p[1], p[2]].map(f32::from)).collect();
    let patches = rng.random_range(2..6);
    for _ in 0..patches {
        let angle: f32 = rng.random_range(0.0..std::f32::consts::PI);
        let period = rng.random_range(2.2..12.0f32);
        let amp = rng.random_range(30.0..90.0f32);
        let (kx, ky) = (angle.cos() * std::f32::consts::TAU / period, angle.sin() * std::f32::consts::TAU / period);
        let x0 = rng.random_range(0..w / 2);
        let y0 = rng.random_range(0..h / 2);
        let (x1, y1) = ((x0 + rng.random_range(w / 6..w / 2)).min(w), (y0 + rng.random_range(h / 6..h / 2)).min(h));
        for y in y0..y1 {
            for x in x0..x1 {
                let v = (kx * x as f32 + ky * y as f32).sin() * amp;
                px[y * w + x].iter_mut().for_each(|c| *c += v);
            }
        }
    }
    to_picture(width, height, &px)
}

fn clouds(seed: u64, width: u32, height: u32) -> Picture {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (w, h) = (width as usize, height as usize);
    let big = w.max(h) as f32;
    let persistence = rng.random_range(0.45..0.75);
    let l = fractal(&mut rng, w, h, big / 2.0, 2.0, persistence);
    let ca = fractal(&mut rng, w, h, big / 2.0, big / 32.0, 0.5);
    let a = colour(&mut rng);
    let px: Vec<[f32; 3]> = (0..w * h)
        .map(|i| [a[0] + l[i] * 90.0 + ca[i] * 30.0, a[1] + l[i] * 90.0, a[2] + l[i] * 90.0 - ca[i] * 30.0])
        .collect();
    to_picture(width, height, &px)
}

fn line_art(seed: u64, width: u32, height: u32) -> Picture {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (w, h) = (width as usize, height as usize);
    let paper = rng.random_range(225.0..250.0f32);
    let mut px = vec![[paper; 3]; w * h];
    let ink = [rng.random_range(0.0..60.0f32), rng.random_range(0.0..60.0), rng.random_range(0.0..80.0)];
    let scale = w.min(h) as f32 / 512.0;
    let lines = rng.random_range(30..120);
    for _ in 0..lines {
        let thick = rng.random_range(1.0..3.0f32) * scale.max(1.0).sqrt();
        let (x0, y0) = (rng.random_range(0.0..w as f32), rng.random_range(0.0..h as f32));
        let len = rng.random_range(0.05..0.6) * w.max(h) as f32;
        let a: f32 = rng.random_range(0.0..std::f32::consts::TAU);
        let steps = (len * 2.0) as usize;
        for s in 0..steps {
            let t = s as f32 / 2.0;
            let (cx, cy) = (x0 + a.cos() * t, y0 + a.sin() * t);
            let r = thick.ceil() as i64;
            for dy in -r..=r {
                for dx in -r..=r {
                    let (x, y) = (cx as i64 + dx, cy as i64 + dy);
                    if x >= 0
                        && y >= 0
                        && (x as usize) < w
                        && (y as usize) < h
                        && ((dx * dx + dy * dy) as f32) <= thick * thick
                    {
                        px[y as usize * w + x as usize] = ink;
                    }
                }
            }
        }
    }
    // "Text": rows of small dark blocks.
    let rows = rng.random_range(0..12);
    let glyph = (8.0 * scale.max(1.0)) as usize;
    for _ in 0..rows {
        let y0 = rng.random_range(0..h.saturating_sub(glyph).max(1));
        let mut x = rng.random_range(0..w / 3);
        let end = (x + rng.random_range(w / 4..w / 2)).min(w);
        while x + glyph < end {
            let gw = rng.random_range(glyph / 2..=glyph);
            if rng.random_bool(0.85) {
                for y in y0..(y0 + glyph).min(h) {
                    for xx in x..x + gw {
                        if (xx + y) % 3 != 0 {
                            px[y * w + xx] = ink;
                        }
                    }
                }
            }
            x += gw + glyph / 3 + 1;
        }
    }
    to_picture(width, height, &px)
}

fn checkers(seed: u64, width: u32, height: u32) -> Picture {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let base = flat(seed ^ 0xc4ec, width, height);
    let (w, h) = (width as usize, height as usize);
    let mut px: Vec<[f32; 3]> = base.rgb.chunks_exact(3).map(|p| [p[0], p[1], p[2]].map(f32::from)).collect();
    let patches = rng.random_range(2..7);
    for _ in 0..patches {
        let cell = rng.random_range(1..6usize);
        let c = colour(&mut rng);
        let x0 = rng.random_range(0..w * 2 / 3);
        let y0 = rng.random_range(0..h * 2 / 3);
        let (x1, y1) = ((x0 + rng.random_range(w / 8..w / 3)).min(w), (y0 + rng.random_range(h / 8..h / 3)).min(h));
        for y in y0..y1 {
            for x in x0..x1 {
                if ((x / cell) + (y / cell)) % 2 == 0 {
                    px[y * w + x] = c;
                }
            }
        }
    }
    to_picture(width, height, &px)
}

/// How a picture is encoded as JPEG.
#[derive(Debug, Clone, Copy)]
pub struct JpegSettings {
    pub quality: u8,
    /// (horizontal, vertical) chroma subsampling: (2,2) is 4:2:0, (1,1) 4:4:4.
    pub subsampling: (u8, u8),
    pub progressive: bool,
    pub grey: bool,
}

impl JpegSettings {
    pub fn describe(&self) -> String {
        let s = match self.subsampling {
            (1, 1) => "4:4:4",
            (2, 1) => "4:2:2",
            (2, 2) => "4:2:0",
            _ => "other",
        };
        format!(
            "q{} {}{}",
            self.quality,
            if self.grey { "grey" } else { s },
            if self.progressive { " progressive" } else { "" }
        )
    }
}

/// Encodes with jpeg-encoder (libjpeg-style box-averaged chroma).
pub fn encode_jpeg(p: &Picture, s: JpegSettings) -> anyhow::Result<Vec<u8>> {
    use jpeg_encoder::{ChromaSubsamplingMethod, ColorType, Encoder, SamplingFactor};
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out, s.quality);
    enc.set_sampling_factor(
        SamplingFactor::from_factors(s.subsampling.0, s.subsampling.1)
            .ok_or_else(|| anyhow::anyhow!("bad sampling {:?}", s.subsampling))?,
    );
    enc.set_chroma_subsampling_method(ChromaSubsamplingMethod::Average);
    enc.set_progressive(s.progressive);
    let (w, h) = (u16::try_from(p.width)?, u16::try_from(p.height)?);
    if s.grey {
        let luma: Vec<u8> = p
            .rgb
            .chunks_exact(3)
            .map(|c| (0.299 * f32::from(c[0]) + 0.587 * f32::from(c[1]) + 0.114 * f32::from(c[2])).round() as u8)
            .collect();
        enc.encode(&luma, w, h, ColorType::Luma)?;
    } else {
        enc.encode(&p.rgb, w, h, ColorType::Rgb)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_are_deterministic_and_encode() {
        for t in Texture::ALL {
            let a = draw(t, 7, 96, 64);
            assert_eq!(a.rgb, draw(t, 7, 96, 64).rgb, "{}", t.name());
            let s = JpegSettings { quality: 85, subsampling: (2, 2), progressive: true, grey: false };
            let jpeg = encode_jpeg(&a, s).unwrap();
            assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
        }
    }
}
