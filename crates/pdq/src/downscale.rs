//! Luma, the two-pass Jarosz tent filter and the decimation to 64×64, as one
//! streaming pipeline.
//!
//! The reference filters two whole-image buffers in four passes (rows,
//! columns, rows, columns) and then samples 64×64 points. Every output value
//! is a chain of f32 adds, subtracts and one divide whose order is fixed by
//! the pass it belongs to; values in different rows (row passes) or columns
//! (column passes) never mix. That leaves freedom in *when* each value is
//! computed, which this module uses without touching a single rounding:
//!
//! 1. luma + row pass 1, eight rows at a time (the eight running sums are
//!    independent, so they run as one vector), into a ring of rows just
//!    large enough for the column window;
//! 2. column pass 2, all columns at once, one output row at a time, pulling
//!    rows from the ring as the window advances;
//! 3. row pass 3 on eight output rows at a time, keeping only the 64 columns
//!    the decimation reads (the running sums still visit every column; the
//!    divide happens only where a value is used, giving the same quotient);
//! 4. column pass 4 on those 64 columns, dividing only at the 64 sampled rows.
//!
//! The working set is (column window + 8) rows instead of two full images.
//! `reference.rs` (tests only) is a direct port of the C++ that the tests
//! compare this against, bit for bit.

use crate::dct::BLOCK;
use crate::isa::{kernel, Isa};

/// Luma weights, rounded from the f64 literals to f32 exactly as the C++
/// `const float luma_from_R_coeff = 0.299;` does.
pub(crate) const LUMA_R: f32 = 0.299f64 as f32;
/// Green weight (see [`LUMA_R`]).
pub(crate) const LUMA_G: f32 = 0.587f64 as f32;
/// Blue weight (see [`LUMA_R`]).
pub(crate) const LUMA_B: f32 = 0.114f64 as f32;

/// Rows filtered together in the row passes.
const LANES: usize = 8;

/// A block of eight values, one per row of a strip.
type Lane = [f32; LANES];

/// Luma of one pixel, in the reference's order: `(r*R + g*G) + b*B` in f32.
#[inline(always)]
pub(crate) fn luma(r: u8, g: u8, b: u8) -> f32 {
    LUMA_R * f32::from(r) + LUMA_G * f32::from(g) + LUMA_B * f32::from(b)
}

/// Box window for one tent-filter pass: half of `dim / 64`, rounded up, so
/// two passes cover one 64th of the image.
pub(crate) fn window_size(dim: usize) -> usize {
    dim.div_ceil(2 * BLOCK)
}

/// The input row (or column) the decimation samples for output `out`: the
/// centre of its 64th, computed in f64 and truncated as the reference does.
pub(crate) fn sample_index(out: usize, dim: usize) -> usize {
    (((out as f64 + 0.5) * dim as f64) / BLOCK as f64) as usize
}

/// The four phases of the reference's running box sum over `n` values with a
/// window of `window`: adds only; adds with growing window; add and subtract;
/// subtracts with shrinking window.
#[derive(Debug, Clone, Copy)]
struct Phases {
    p1: usize,
    p2: usize,
    p3: usize,
    p4: usize,
}

impl Phases {
    fn new(n: usize, window: usize) -> Self {
        // The window is derived from `n` by `window_size`, so 1 <= window <= n;
        // clamp anyway so no caller can make the phases read out of bounds.
        let window = window.clamp(1, n.max(1));
        let half = (window + 2) / 2;
        Phases { p1: half - 1, p2: window - half + 1, p3: n - window, p4: half - 1 }
    }

    /// The divisor the reference uses for output position `j`.
    fn count_at(&self, j: usize) -> usize {
        let window = self.p1 + self.p2;
        if j < self.p2 {
            self.p1 + 1 + j
        } else if j < self.p2 + self.p3 {
            window
        } else {
            window - 1 - (j - self.p2 - self.p3)
        }
    }
}

/// The reference's 1-D box filter along eight rows at once, stored
/// interleaved (`input[j][r]` is column `j` of row `r`).
///
/// With `DIVIDE` each output is `sum / count` as in the reference; without it
/// the raw running sum is stored and the caller divides by
/// [`Phases::count_at`] where it needs a value, which yields the same f32.
#[inline(always)]
fn box_lanes<const DIVIDE: bool>(input: &[Lane], output: &mut [Lane], window: usize) {
    let n = input.len().min(output.len());
    let ph = Phases::new(n, window);
    let mut sum: Lane = [0.0; LANES];
    let mut count = 0usize;

    let store = |o: &mut Lane, sum: &Lane, count: usize| {
        if DIVIDE {
            let c = count as f32;
            for (o, s) in o.iter_mut().zip(sum) {
                *o = s / c;
            }
        } else {
            *o = *sum;
        }
    };

    for x in &input[..ph.p1] {
        for (s, v) in sum.iter_mut().zip(x) {
            *s += v;
        }
        count += 1;
    }
    let window = ph.p1 + ph.p2;
    for (x, o) in input[ph.p1..window].iter().zip(&mut output[..ph.p2]) {
        for (s, v) in sum.iter_mut().zip(x) {
            *s += v;
        }
        count += 1;
        store(o, &sum, count);
    }
    let adds = &input[window..n];
    let subs = &input[..ph.p3];
    let outs = &mut output[ph.p2..ph.p2 + ph.p3];
    for ((a, b), o) in adds.iter().zip(subs).zip(outs) {
        for ((s, a), b) in sum.iter_mut().zip(a).zip(b) {
            *s += a;
            *s -= b;
        }
        store(o, &sum, count);
    }
    let subs = &input[ph.p3..ph.p3 + ph.p4];
    let outs = &mut output[ph.p2 + ph.p3..n];
    for (b, o) in subs.iter().zip(outs) {
        for (s, b) in sum.iter_mut().zip(b) {
            *s -= b;
        }
        count -= 1;
        store(o, &sum, count);
    }
}

/// Where the pixels come from.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    /// Interleaved RGB8, row-major.
    Rgb(&'a [u8]),
    /// Interleaved RGBA8; alpha is ignored (dropped, not composited).
    Rgba(&'a [u8]),
    /// Grey8, taken as R = G = B (so its luma is the reference's luma of
    /// that grey, which is not always exactly the grey value in f32).
    Gray(&'a [u8]),
    /// Grey8 with alpha; alpha ignored.
    GrayAlpha(&'a [u8]),
    /// One f32 luma value per pixel, row-major.
    Luma(&'a [f32]),
    /// One 8-bit luma value per pixel, used as it is (e.g. a JPEG's Y plane).
    Luma8(&'a [u8]),
}

impl Source<'_> {
    /// Luma of image row `y` into `out` (`width` values).
    #[inline(always)]
    fn luma_row(&self, width: usize, y: usize, out: &mut [f32]) {
        match *self {
            Source::Rgb(rgb) => {
                let row = &rgb[y * width * 3..(y + 1) * width * 3];
                for (o, c) in out.iter_mut().zip(row.chunks_exact(3)) {
                    *o = luma(c[0], c[1], c[2]);
                }
            }
            Source::Rgba(rgba) => {
                let row = &rgba[y * width * 4..(y + 1) * width * 4];
                for (o, c) in out.iter_mut().zip(row.chunks_exact(4)) {
                    *o = luma(c[0], c[1], c[2]);
                }
            }
            Source::Gray(g) => {
                for (o, &v) in out.iter_mut().zip(&g[y * width..(y + 1) * width]) {
                    *o = luma(v, v, v);
                }
            }
            Source::GrayAlpha(ga) => {
                let row = &ga[y * width * 2..(y + 1) * width * 2];
                for (o, c) in out.iter_mut().zip(row.chunks_exact(2)) {
                    *o = luma(c[0], c[0], c[0]);
                }
            }
            Source::Luma(l) => out.copy_from_slice(&l[y * width..(y + 1) * width]),
            Source::Luma8(l) => {
                for (o, &v) in out.iter_mut().zip(&l[y * width..(y + 1) * width]) {
                    *o = f32::from(v);
                }
            }
        }
    }

    /// The full-resolution luma of a 64×64 image, unfiltered (the reference
    /// skips the filter for inputs that are already 64×64).
    pub(crate) fn copy_64(&self, block: &mut [[f32; BLOCK]; BLOCK]) {
        for (y, row) in block.iter_mut().enumerate() {
            self.luma_row(BLOCK, y, row);
        }
    }
}

kernel! {
    /// Luma of image rows `row0..` into consecutive rows of `out`, as many
    /// as `out` holds.
    fn luma_rows(src: Source<'_>, width: usize, row0: usize, out: &mut [f32]) {
        for (k, row) in out.chunks_exact_mut(width).enumerate() {
            src.luma_row(width, row0 + k, row);
        }
    }
}

kernel! {
    /// Transposes eight row-major rows (`rows[k * width + j]`) into lanes
    /// (`lanes[j][k]`), in 8×8 tiles the compiler keeps in registers.
    fn rows_to_lanes(rows: &[f32], width: usize, lanes: &mut [Lane]) {
        let r: [&[f32]; LANES] = std::array::from_fn(|k| &rows[k * width..(k + 1) * width]);
        let full = width - width % LANES;
        for (t, out) in lanes[..full].chunks_exact_mut(LANES).enumerate() {
            let j0 = t * LANES;
            let mut tile = [[0.0f32; LANES]; LANES];
            for (k, row) in tile.iter_mut().enumerate() {
                row.copy_from_slice(&r[k][j0..j0 + LANES]);
            }
            for (c, lane) in out.iter_mut().enumerate() {
                for (k, v) in lane.iter_mut().enumerate() {
                    *v = tile[k][c];
                }
            }
        }
        for j in full..width {
            for (k, v) in lanes[j].iter_mut().enumerate() {
                *v = r[k][j];
            }
        }
    }
}

kernel! {
    /// Row pass 1 on eight rows held as lanes; the result goes back to
    /// eight row-major rows in `dst`.
    fn row_pass_1(input: &[Lane], output: &mut [Lane], window: usize, dst: &mut [f32]) {
        box_lanes::<true>(input, output, window);
        let width = output.len();
        let full = width - width % LANES;
        let mut r: [&mut [f32]; LANES] = Default::default();
        for (slot, row) in r.iter_mut().zip(dst.chunks_exact_mut(width)) {
            *slot = row;
        }
        for (t, src) in output[..full].chunks_exact(LANES).enumerate() {
            let j0 = t * LANES;
            for (k, row) in r.iter_mut().enumerate() {
                for (d, lane) in row[j0..j0 + LANES].iter_mut().zip(src) {
                    *d = lane[k];
                }
            }
        }
        for j in full..width {
            for (k, row) in r.iter_mut().enumerate() {
                row[j] = output[j][k];
            }
        }
    }
}

kernel! {
    /// Row pass 3 on up to eight rows held as lanes, kept only at the
    /// sampled columns: `sampled[k][o] = sum at cols[o] / col_div[o]`.
    fn row_pass_3(
        input: &[Lane],
        sums: &mut [Lane],
        window: usize,
        cols: &[usize; BLOCK],
        col_div: &[f32; BLOCK],
        sampled: &mut [[f32; BLOCK]],
    ) {
        box_lanes::<false>(input, sums, window);
        for (k, out) in sampled.iter_mut().enumerate() {
            for ((o, &c), &d) in out.iter_mut().zip(cols).zip(col_div) {
                *o = sums[c][k] / d;
            }
        }
    }
}

kernel! {
    /// One step of a column pass over whole rows: add row `a` (if given),
    /// then subtract row `b` (if given), then store `sums / count` in `out`
    /// (if given). Two roundings in the reference's order.
    fn col_step(
        sums: &mut [f32],
        a: Option<&[f32]>,
        b: Option<&[f32]>,
        count: usize,
        out: Option<&mut [f32]>,
    ) {
        match (a, b) {
            (Some(a), Some(b)) => {
                for ((s, a), b) in sums.iter_mut().zip(a).zip(b) {
                    *s += a;
                    *s -= b;
                }
            }
            (Some(a), None) => {
                for (s, a) in sums.iter_mut().zip(a) {
                    *s += a;
                }
            }
            (None, Some(b)) => {
                for (s, b) in sums.iter_mut().zip(b) {
                    *s -= b;
                }
            }
            (None, None) => {}
        }
        if let Some(out) = out {
            let c = count as f32;
            for (o, s) in out.iter_mut().zip(sums.iter()) {
                *o = s / c;
            }
        }
    }
}

/// The add/subtract schedule of one column box pass over `n` rows: for each
/// step, which row enters the window, which leaves, the divisor after the
/// step and the output row written (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ColStep {
    add: Option<usize>,
    sub: Option<usize>,
    count: usize,
    out: Option<usize>,
}

/// The steps of one column box pass, in order (see [`ColStep`]).
fn col_schedule(n: usize, window: usize) -> ColSchedule {
    ColSchedule { ph: Phases::new(n, window), step: 0, count: 0 }
}

/// Iterator behind [`col_schedule`].
struct ColSchedule {
    ph: Phases,
    step: usize,
    count: usize,
}

impl Iterator for ColSchedule {
    type Item = ColStep;

    fn next(&mut self) -> Option<ColStep> {
        let ph = self.ph;
        let (grow, full) = (ph.p1 + ph.p2, ph.p1 + ph.p2 + ph.p3);
        let step = self.step;
        if step >= full + ph.p4 {
            return None;
        }
        self.step += 1;
        if step < grow {
            self.count += 1;
        } else if step >= full {
            self.count -= 1;
        }
        Some(ColStep {
            add: (step < full).then_some(step),
            sub: (step >= grow).then(|| step - grow),
            count: self.count,
            out: (step >= ph.p1).then(|| step - ph.p1),
        })
    }
}

/// Scratch memory for [`Downscaler::run`]; grows to the largest image seen
/// (up to a cap, see `PdqHasher`) and is reused.
#[derive(Default)]
pub(crate) struct Downscaler {
    /// Eight rows of luma, row-major, before pass 1.
    luma_rows: Vec<f32>,
    /// Up to eight rows of pass-2 output, row-major, before pass 3.
    pending_rows: Vec<f32>,
    /// Rows as lanes, input of a row pass.
    lanes_in: Vec<Lane>,
    /// Output of a row pass, as lanes.
    lanes_out: Vec<Lane>,
    /// Ring of pass-1 rows, row-major, `ring_rows * width` values.
    ring: Vec<f32>,
    /// Column running sums of pass 2.
    col_sums: Vec<f32>,
    /// Ring of pass-3 rows at the 64 sampled columns (same depth as `ring`).
    sampled: Vec<[f32; BLOCK]>,
}

impl Downscaler {
    /// Bytes held by the scratch buffers (for the retention cap).
    pub(crate) fn footprint(&self) -> usize {
        std::mem::size_of::<Lane>() * (self.lanes_in.capacity() + self.lanes_out.capacity())
            + std::mem::size_of::<f32>()
                * (self.luma_rows.capacity()
                    + self.pending_rows.capacity()
                    + self.ring.capacity()
                    + self.col_sums.capacity())
            + std::mem::size_of::<[f32; BLOCK]>() * self.sampled.capacity()
    }

    /// Blurs `height × width` pixels from `src` with the reference's tent
    /// filter and samples them into `block`, using the kernels compiled for
    /// `isa`. Requires `width, height >= 1` and `src` holding exactly
    /// `height * width` pixels (checked by the caller).
    pub(crate) fn run(
        &mut self,
        isa: Isa,
        src: Source<'_>,
        width: usize,
        height: usize,
        block: &mut [[f32; BLOCK]; BLOCK],
    ) {
        let win_x = window_size(width);
        let win_y = window_size(height);
        // A multiple of LANES, so each strip of eight rows is one contiguous
        // block of the ring; at least win_y + LANES, so a strip never
        // overwrites a row the column window still has to subtract.
        let ring_rows = (win_y + LANES).next_multiple_of(LANES).min(height.next_multiple_of(LANES));
        let x_phases = Phases::new(width, win_x);
        let cols: [usize; BLOCK] = std::array::from_fn(|o| sample_index(o, width));
        let col_div: [f32; BLOCK] = std::array::from_fn(|o| x_phases.count_at(cols[o]) as f32);

        resize(&mut self.luma_rows, LANES * width, 0.0);
        resize(&mut self.pending_rows, LANES * width, 0.0);
        resize(&mut self.lanes_in, width, [0.0; LANES]);
        resize(&mut self.lanes_out, width, [0.0; LANES]);
        resize(&mut self.ring, ring_rows * width, 0.0);
        resize(&mut self.col_sums, width, 0.0);
        // Pass 4 reads pass-3 rows through a ring of the same depth.
        resize(&mut self.sampled, ring_rows, [0.0; BLOCK]);
        let mut pass4 = Pass4::new(height, win_y);

        // Pass 2, all columns at once, one output row at a time. Pass 1
        // fills the ring eight rows at a time just before the window needs
        // them; pass 3 runs whenever eight pass-2 rows are ready, and pass 4
        // then advances as far as those rows allow.
        let mut produced = 0usize;
        for step in col_schedule(height, win_y) {
            if let Some(r) = step.add {
                if r >= produced {
                    let n = LANES.min(height - produced);
                    luma_rows(isa, src, width, produced, &mut self.luma_rows[..n * width]);
                    // Lanes past the bottom row hold stale values: they are
                    // filtered but never read, and lanes never mix.
                    rows_to_lanes(isa, &self.luma_rows, width, &mut self.lanes_in);
                    let slot = produced % ring_rows;
                    let dst = &mut self.ring[slot * width..(slot + LANES) * width];
                    row_pass_1(isa, &self.lanes_in, &mut self.lanes_out, win_x, dst);
                    produced += LANES;
                }
            }
            let ring = &self.ring;
            let row = |r: usize| {
                let slot = r % ring_rows;
                &ring[slot * width..(slot + 1) * width]
            };
            let lane = step.out.map_or(0, |o| o % LANES);
            let out = step.out.map(|_| &mut self.pending_rows[lane * width..(lane + 1) * width]);
            col_step(isa, &mut self.col_sums, step.add.map(row), step.sub.map(row), step.count, out);
            if let Some(o) = step.out {
                if lane == LANES - 1 || o + 1 == height {
                    let first = o - lane;
                    let slot = first % ring_rows;
                    rows_to_lanes(isa, &self.pending_rows, width, &mut self.lanes_in);
                    row_pass_3(
                        isa,
                        &self.lanes_in,
                        &mut self.lanes_out,
                        win_x,
                        &cols,
                        &col_div,
                        &mut self.sampled[slot..=slot + lane],
                    );
                    pass4.advance(o, &self.sampled, block);
                }
            }
        }
    }
}

/// Column pass 4 on the 64 sampled columns, fed pass-3 rows through a ring
/// as they appear, dividing only at the 64 sampled rows.
struct Pass4 {
    steps: std::iter::Peekable<ColSchedule>,
    rows: [usize; BLOCK],
    sums: [f32; BLOCK],
    next: usize,
}

impl Pass4 {
    fn new(height: usize, window: usize) -> Self {
        Pass4 {
            steps: col_schedule(height, window).peekable(),
            rows: std::array::from_fn(|o| sample_index(o, height)),
            sums: [0.0; BLOCK],
            next: 0,
        }
    }

    /// Runs every step whose input rows are ready (rows up to `last`, held
    /// in `ring` at `row % ring.len()`), writing sampled rows of `block`.
    fn advance(&mut self, last: usize, ring: &[[f32; BLOCK]], block: &mut [[f32; BLOCK]; BLOCK]) {
        let row = |r: usize| &ring[r % ring.len()][..];
        while let Some(step) = self.steps.next_if(|s| s.add.is_none_or(|r| r <= last)) {
            col_step(Isa::Portable, &mut self.sums, step.add.map(row), step.sub.map(row), step.count, None);
            let Some(o) = step.out else { continue };
            while self.next < BLOCK && self.rows[self.next] == o {
                let c = step.count as f32;
                for (v, s) in block[self.next].iter_mut().zip(&self.sums) {
                    *v = s / c;
                }
                self.next += 1;
            }
        }
    }
}

/// Sets the length of a scratch vector, reusing its allocation.
fn resize<T: Copy>(v: &mut Vec<T>, len: usize, fill: T) {
    v.clear();
    v.resize(len, fill);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_at_matches_the_running_window() {
        for n in 1..300 {
            let w = window_size(n);
            let ph = Phases::new(n, w);
            assert_eq!(ph.p1 + ph.p2 + ph.p3 + ph.p4, n + ph.p1, "n={n}");
            // Box-filter a vector of ones without dividing: the sums are the counts.
            let ones = vec![[1.0f32; LANES]; n];
            let mut out = vec![[0.0f32; LANES]; n];
            box_lanes::<false>(&ones, &mut out, w);
            for (j, o) in out.iter().enumerate() {
                assert_eq!(o[0] as usize, ph.count_at(j), "n={n} j={j}");
            }
        }
    }

    #[test]
    fn window_sizes_follow_the_reference() {
        assert_eq!(window_size(1), 1);
        assert_eq!(window_size(128), 1);
        assert_eq!(window_size(129), 2);
        assert_eq!(window_size(1024), 8);
        assert_eq!(window_size(1600), 13);
    }

    #[test]
    fn luma_weights_are_the_f32_roundings() {
        assert_eq!(LUMA_R, 0.299f32);
        assert_eq!(LUMA_G, 0.587f32);
        assert_eq!(LUMA_B, 0.114f32);
    }
}
