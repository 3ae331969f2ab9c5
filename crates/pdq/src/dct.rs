//! The 64×64 → 16×16 DCT, the quality score, the median split into bits and
//! the dihedral sign/transpose tricks: everything after the downsample.
//!
//! All arithmetic is f32 with the reference's summation order; the loops are
//! reorganised so that the *independent* sums run side by side (vectorisable),
//! but each individual sum still adds its terms one by one from k = 0 to 63.

use std::sync::OnceLock;

use crate::hash::PdqHash;
use crate::isa::kernel;

/// Side of the downsampled image the DCT reads.
pub(crate) const BLOCK: usize = 64;
/// Side of the DCT output (frequencies 1..=16 in each direction).
pub(crate) const OUT: usize = 16;

/// The DCT basis rows, `D[i][k]`, and their transpose, built once per process.
struct DctMatrix {
    /// 16 rows × 64 columns.
    rows: [[f32; BLOCK]; OUT],
    /// The same values as 64 rows × 16 columns (`cols[k][j] == rows[j][k]`),
    /// so the second product can run along contiguous memory.
    cols: [[f32; OUT]; BLOCK],
}

fn dct_matrix() -> &'static DctMatrix {
    static MATRIX: OnceLock<DctMatrix> = OnceLock::new();
    MATRIX.get_or_init(|| {
        // As the reference: the scale factor is rounded to f32 first, then
        // multiplied (in f64) by the f64 cosine, and the product rounded to f32.
        let scale = (2.0f64 / BLOCK as f64).sqrt() as f32;
        let step = std::f64::consts::PI / 2.0 / BLOCK as f64;
        let mut rows = [[0f32; BLOCK]; OUT];
        let mut cols = [[0f32; OUT]; BLOCK];
        for (i, row) in rows.iter_mut().enumerate() {
            for (k, v) in row.iter_mut().enumerate() {
                let angle = step * (i + 1) as f64 * (2 * k + 1) as f64;
                *v = (f64::from(scale) * angle.cos()) as f32;
                cols[k][i] = *v;
            }
        }
        DctMatrix { rows, cols }
    })
}

/// Forces the DCT matrix to be built now, so the first hash does not pay for it.
pub(crate) fn warm_up() {
    let _ = dct_matrix();
}

kernel! {
    /// `B = D · A · Dᵀ`, keeping only frequencies 1..=16 in each direction.
    ///
    /// `t` is scratch for the 16×64 intermediate `T = D · A`.
    pub(crate) fn dct64_to_16(
        a: &[[f32; BLOCK]; BLOCK],
        t: &mut [[f32; BLOCK]; OUT],
        b: &mut [[f32; OUT]; OUT],
    ) {
        let d = dct_matrix();
        // T[i][j] = sum_k D[i][k] * A[k][j]; the 64 sums of a row advance together.
        for (t_row, d_row) in t.iter_mut().zip(d.rows.iter()) {
            *t_row = [0.0; BLOCK];
            for (&dk, a_row) in d_row.iter().zip(a.iter()) {
                for (acc, &av) in t_row.iter_mut().zip(a_row.iter()) {
                    *acc += dk * av;
                }
            }
        }
        // B[i][j] = sum_k T[i][k] * D[j][k]; the 16 sums of a row advance together.
        for (b_row, t_row) in b.iter_mut().zip(t.iter()) {
            *b_row = [0.0; OUT];
            for (&tk, d_col) in t_row.iter().zip(d.cols.iter()) {
                for (acc, &dv) in b_row.iter_mut().zip(d_col.iter()) {
                    *acc += tk * dv;
                }
            }
        }
    }
}

/// The largest per-step gradient counted by [`quality`]. A single step of
/// 9000 already saturates the score at 100, so the cap never changes a
/// result, and it keeps the i32 sum (8064 steps) from overflowing.
const STEP_CAP: f32 = 131_072.0;

kernel! {
    /// The reference's quality heuristic: count significant steps between
    /// neighbouring pixels of the 64×64 downsample, scaled to 0..=100.
    pub(crate) fn quality(a: &[[f32; BLOCK]; BLOCK]) -> u8 {
        // Each step: f32 difference, times 100, divided by 255, truncated
        // toward zero, absolute value. Truncation commutes with `abs`, so
        // the float is made positive and capped first, which keeps the
        // conversion in range (and vectorisable).
        let step = |u: f32, v: f32| ((((u - v) * 100.0) / 255.0).abs().min(STEP_CAP)) as i32;
        let mut sum: i32 = 0;
        for (upper, lower) in a.iter().zip(a.iter().skip(1)) {
            for (&u, &v) in upper.iter().zip(lower.iter()) {
                sum += step(u, v);
            }
        }
        for row in a.iter() {
            for (&u, &v) in row.iter().zip(row.iter().skip(1)) {
                sum += step(u, v);
            }
        }
        // At most 100, so the narrowing cannot lose anything.
        (sum / 90).min(100) as u8
    }
}

/// Torben Mogensen's median (N. Devillard's formulation, as the reference
/// uses it): the value `m` such that about half the inputs exceed it, found
/// without sorting or modifying the input.
pub(crate) fn torben_median(m: &[f32]) -> f32 {
    let Some(&first) = m.first() else {
        return 0.0;
    };
    let n = m.len();
    let half = n.div_ceil(2);
    let (mut min, mut max) = (first, first);
    for &v in &m[1..] {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    let (mut less, mut equal);
    let (mut guess, mut max_lt_guess, mut min_gt_guess);
    // Each round moves `min` or `max` to an input value strictly inside the
    // previous range, so it ends within n + 1 rounds; the bound only guards
    // against inputs (NaN) the reference never sees.
    let mut rounds = 0;
    loop {
        rounds += 1;
        guess = (min + max) / 2.0;
        less = 0;
        let mut greater = 0;
        equal = 0;
        max_lt_guess = min;
        min_gt_guess = max;
        for &v in m {
            if v < guess {
                less += 1;
                if v > max_lt_guess {
                    max_lt_guess = v;
                }
            } else if v > guess {
                greater += 1;
                if v < min_gt_guess {
                    min_gt_guess = v;
                }
            } else {
                equal += 1;
            }
        }
        if (less <= half && greater <= half) || rounds > n + 1 {
            break;
        } else if less > greater {
            max = max_lt_guess;
        } else {
            min = min_gt_guess;
        }
    }
    if less >= half {
        max_lt_guess
    } else if less + equal >= half {
        guess
    } else {
        min_gt_guess
    }
}

/// Bit `16*i + j` is set when `dct[i][j]` is strictly above the median.
pub(crate) fn bits_from_dct(dct: &[[f32; OUT]; OUT]) -> PdqHash {
    let flat = dct.as_flattened();
    let median = torben_median(flat);
    let mut hash = PdqHash::ZERO;
    for (k, &v) in flat.iter().enumerate() {
        if v > median {
            hash.set_bit(k);
        }
    }
    hash
}

/// How a dihedral transform of the image acts on its DCT coefficients:
/// optionally transpose, and negate the entries picked by `negate(i, j)`
/// (indices of the *source* coefficient).
fn transform(
    a: &[[f32; OUT]; OUT],
    out: &mut [[f32; OUT]; OUT],
    transpose: bool,
    negate: impl Fn(usize, usize) -> bool,
) {
    for (i, row) in a.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            let v = if negate(i, j) { -v } else { v };
            if transpose {
                out[j][i] = v;
            } else {
                out[i][j] = v;
            }
        }
    }
}

/// Hashes of all eight dihedral transforms from one DCT, in the reference's
/// order (see [`crate::Dihedral`]). `aux` is scratch.
pub(crate) fn dihedral_bits(a: &[[f32; OUT]; OUT], aux: &mut [[f32; OUT]; OUT]) -> [PdqHash; 8] {
    let even = |x: usize| x & 1 == 0;
    let mut out = [PdqHash::ZERO; 8];
    out[0] = bits_from_dct(a);
    // rot90: transpose, negate even horizontal frequencies.
    transform(a, aux, true, |_, j| even(j));
    out[1] = bits_from_dct(aux);
    // rot180: negate where i + j is odd.
    transform(a, aux, false, |i, j| !even(i + j));
    out[2] = bits_from_dct(aux);
    // rot270: transpose, negate even vertical frequencies.
    transform(a, aux, true, |i, _| even(i));
    out[3] = bits_from_dct(aux);
    // flipx: negate even vertical frequencies.
    transform(a, aux, false, |i, _| even(i));
    out[4] = bits_from_dct(aux);
    // flipy: negate even horizontal frequencies.
    transform(a, aux, false, |_, j| even(j));
    out[5] = bits_from_dct(aux);
    // flipplus1: plain transpose.
    transform(a, aux, true, |_, _| false);
    out[6] = bits_from_dct(aux);
    // flipminus1: transpose, negate where i + j is odd.
    transform(a, aux, true, |i, j| !even(i + j));
    out[7] = bits_from_dct(aux);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torben_matches_sorting_definition_on_distinct_values() {
        // For n = 256 distinct values the reference returns the 128th smallest
        // (index 127), so exactly 128 values lie strictly above it.
        let mut state = 12345u32;
        let mut v: Vec<f32> = (0..256)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / 65536.0 - 128.0
            })
            .collect();
        let m = torben_median(&v);
        v.sort_by(f32::total_cmp);
        assert_eq!(m, v[127]);
        assert_eq!(v.iter().filter(|&&x| x > m).count(), 128);
    }

    #[test]
    fn torben_of_constant_input_is_that_value() {
        assert_eq!(torben_median(&[3.5; 256]), 3.5);
        assert_eq!(torben_median(&[]), 0.0);
    }

    #[test]
    fn torben_terminates_on_nan() {
        let mut v = [1.0f32; 256];
        v[0] = f32::NAN;
        v[7] = f32::INFINITY;
        let _ = torben_median(&v);
    }

    #[test]
    fn dct_matrix_rows_are_orthonormal_cosines() {
        let d = dct_matrix();
        for i in 0..OUT {
            let norm: f64 = d.rows[i].iter().map(|&x| f64::from(x) * f64::from(x)).sum();
            assert!((norm - 1.0).abs() < 1e-5, "row {i} norm {norm}");
            for k in 0..BLOCK {
                assert_eq!(d.rows[i][k], d.cols[k][i]);
            }
        }
    }
}
