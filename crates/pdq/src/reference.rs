//! A literal, unoptimised transcription of the C++ reference pipeline, kept
//! for tests only: the fast code in `downscale.rs` and `dct.rs` must produce
//! exactly the same f32 values on any input.

// Index loops on purpose: the point is to read like the C++.
#![allow(clippy::needless_range_loop)]

use crate::dct::{BLOCK, OUT};
use crate::downscale::{luma, sample_index, window_size};

/// One 1-D box pass with the reference's four phases over `n` values spaced
/// `stride` apart.
fn box_1d(input: &[f32], output: &mut [f32], n: usize, stride: usize, window: usize) {
    let half = (window + 2) / 2;
    let p1 = half - 1;
    let p2 = window - half + 1;
    let p3 = n as isize - window as isize;
    let p4 = half - 1;
    let (mut li, mut ri, mut oi) = (0usize, 0usize, 0usize);
    let mut sum = 0.0f32;
    let mut count = 0i32;
    for _ in 0..p1 {
        sum += input[ri];
        count += 1;
        ri += stride;
    }
    for _ in 0..p2 {
        sum += input[ri];
        count += 1;
        output[oi] = sum / count as f32;
        ri += stride;
        oi += stride;
    }
    for _ in 0..p3.max(0) {
        sum += input[ri];
        sum -= input[li];
        output[oi] = sum / count as f32;
        li += stride;
        ri += stride;
        oi += stride;
    }
    for _ in 0..p4 {
        sum -= input[li];
        count -= 1;
        output[oi] = sum / count as f32;
        li += stride;
        oi += stride;
    }
}

/// Full-image filter and decimation, two whole buffers, as in the reference.
pub(crate) fn downsample(luma_in: &[f32], width: usize, height: usize) -> [[f32; BLOCK]; BLOCK] {
    let mut buf1 = luma_in.to_vec();
    let mut buf2 = vec![0.0f32; width * height];
    let win_rows = window_size(width);
    let win_cols = window_size(height);
    for _ in 0..2 {
        for i in 0..height {
            let r = i * width..(i + 1) * width;
            box_1d(&buf1[r.clone()], &mut buf2[r], width, 1, win_rows);
        }
        for j in 0..width {
            box_1d(&buf2[j..], &mut buf1[j..], height, width, win_cols);
        }
    }
    let mut out = [[0.0f32; BLOCK]; BLOCK];
    for (oi, row) in out.iter_mut().enumerate() {
        let ii = sample_index(oi, height);
        for (oj, v) in row.iter_mut().enumerate() {
            let jj = sample_index(oj, width);
            *v = buf1[ii * width + jj];
        }
    }
    out
}

/// Luma of an RGB8 buffer, pixel by pixel.
pub(crate) fn luma_of(rgb: &[u8]) -> Vec<f32> {
    rgb.chunks_exact(3).map(|c| luma(c[0], c[1], c[2])).collect()
}

/// The DCT with the reference's loop order (one dot product at a time).
pub(crate) fn dct(a: &[[f32; BLOCK]; BLOCK]) -> [[f32; OUT]; OUT] {
    let scale = (2.0f64 / 64.0).sqrt() as f32;
    let mut d = [[0.0f32; BLOCK]; OUT];
    for (i, row) in d.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (f64::from(scale) * ((std::f64::consts::PI / 2.0 / 64.0) * (i + 1) as f64 * (2 * j + 1) as f64).cos())
                as f32;
        }
    }
    let mut t = [[0.0f32; BLOCK]; OUT];
    for i in 0..OUT {
        for j in 0..BLOCK {
            let mut sum = 0.0f32;
            for k in 0..BLOCK {
                sum += d[i][k] * a[k][j];
            }
            t[i][j] = sum;
        }
    }
    let mut b = [[0.0f32; OUT]; OUT];
    for i in 0..OUT {
        for j in 0..OUT {
            let mut sum = 0.0f32;
            for k in 0..BLOCK {
                sum += t[i][k] * d[j][k];
            }
            b[i][j] = sum;
        }
    }
    b
}

/// The quality heuristic exactly as written in the reference (int
/// truncation, then `abs`, int sum).
pub(crate) fn quality(a: &[[f32; BLOCK]; BLOCK]) -> u8 {
    let mut sum = 0i32;
    for i in 0..BLOCK - 1 {
        for j in 0..BLOCK {
            let d = (((a[i][j] - a[i + 1][j]) * 100.0) / 255.0) as i32;
            sum += d.abs();
        }
    }
    for i in 0..BLOCK {
        for j in 0..BLOCK - 1 {
            let d = (((a[i][j] - a[i][j + 1]) * 100.0) / 255.0) as i32;
            sum += d.abs();
        }
    }
    (sum / 90).min(100) as u8
}
