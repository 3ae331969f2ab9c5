//! Small statistics helpers.

/// The `q`-quantile (0..=1) by nearest rank on a sorted copy.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = (q * (s.len() - 1) as f64).round() as usize;
    s[rank.min(s.len() - 1)]
}

pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

pub fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

pub fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// Per-image times (one vector of repetitions per image) summarised as a
/// set: images per second from each image's median time, and from each
/// image's best time, and the median per-image time in ms.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Rate {
    /// images/s = n / Σ median_i
    pub median_ips: f64,
    /// images/s = n / Σ min_i
    pub best_ips: f64,
    /// mean over images of each image's median time, ms
    pub median_ms: f64,
    /// mean over images of each image's best time, ms
    pub best_ms: f64,
    /// repetitions per image
    pub reps: usize,
}

pub fn rate(per_image: &[Vec<f64>]) -> Rate {
    let n = per_image.len() as f64;
    let med: f64 = per_image.iter().map(|t| median(t)).sum();
    let best: f64 = per_image.iter().map(|t| min(t)).sum();
    Rate {
        median_ips: n / med,
        best_ips: n / best,
        median_ms: med / n * 1e3,
        best_ms: best / n * 1e3,
        reps: per_image.iter().map(Vec::len).min().unwrap_or(0),
    }
}

/// Distances summarised.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DistSummary {
    pub n: usize,
    pub min: u32,
    pub median: f64,
    pub p90: u32,
    pub max: u32,
    /// counts for buckets 0, 1, 2, 3, 4, 5–8, 9–16, 17–32, > 32
    pub histogram: [usize; 9],
}

pub const BUCKETS: [&str; 9] = ["0", "1", "2", "3", "4", "5–8", "9–16", "17–32", ">32"];

pub fn distances(d: &[u32]) -> DistSummary {
    let f: Vec<f64> = d.iter().map(|&x| f64::from(x)).collect();
    let mut histogram = [0usize; 9];
    for &x in d {
        let b = match x {
            0..=4 => x as usize,
            5..=8 => 5,
            9..=16 => 6,
            17..=32 => 7,
            _ => 8,
        };
        histogram[b] += 1;
    }
    DistSummary {
        n: d.len(),
        min: d.iter().copied().min().unwrap_or(0),
        median: median(&f),
        p90: quantile(&f, 0.9) as u32,
        max: d.iter().copied().max().unwrap_or(0),
        histogram,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
        let r = rate(&[vec![0.1, 0.2, 0.3], vec![0.3, 0.2, 0.1]]);
        assert!((r.median_ips - 5.0).abs() < 1e-9 && (r.best_ips - 10.0).abs() < 1e-9);
        let d = distances(&[0, 2, 2, 6, 40]);
        assert_eq!((d.min, d.median, d.max, d.histogram), (0, 2.0, 40, [1, 0, 2, 0, 0, 1, 0, 0, 1]));
    }
}
