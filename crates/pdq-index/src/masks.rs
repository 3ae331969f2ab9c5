//! Enumerating the bucket values near a slice value: every `width`-bit mask
//! with a given number of set bits, XORed onto the query's slice value.

/// C(n, k), for bucket counts and cost estimates.
pub(crate) fn binomial(n: u32, k: u32) -> u64 {
    if k > n {
        return 0;
    }
    let k = k.min(n - k);
    (0..k).fold(1u64, |acc, i| acc * u64::from(n - i) / u64::from(i + 1))
}

/// Size of a Hamming ball of radius `r` in `width` bits: Σ C(width, k), k ≤ r.
pub(crate) fn ball(width: u32, r: u32) -> u64 {
    (0..=r.min(width)).map(|k| binomial(width, k)).sum()
}

/// The `width`-bit masks with exactly `k` bits set, in increasing order
/// (Gosper's hack, with a shift by the lowest set bit's position instead of
/// a division).
#[derive(Clone, Debug)]
pub(crate) struct Exactly {
    next: Option<u32>,
    end: u32,
}

impl Exactly {
    pub(crate) fn new(width: u32, k: u32) -> Exactly {
        debug_assert!(width <= 31);
        let end = 1u32 << width;
        let next = if k > width { None } else { Some((1u32 << k) - 1) };
        Exactly { next, end }
    }
}

impl Iterator for Exactly {
    type Item = u32;

    #[inline(always)]
    fn next(&mut self) -> Option<u32> {
        let x = self.next?;
        self.next = if x == 0 {
            None
        } else {
            let low = x & x.wrapping_neg();
            let r = x + low;
            let n = r | (((x ^ r) >> 2) >> low.trailing_zeros());
            (n < self.end).then_some(n)
        };
        Some(x)
    }
}

/// The `width`-bit masks with at most `r` bits set, by number of bits.
pub(crate) fn up_to(width: u32, r: u32) -> impl Iterator<Item = u32> {
    (0..=r.min(width)).flat_map(move |k| Exactly::new(width, k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enumerates_every_mask_once_by_popcount() {
        for width in [1u32, 5, 16] {
            let mut seen = vec![false; 1 << width];
            for k in 0..=width {
                let masks: Vec<u32> = Exactly::new(width, k).collect();
                assert_eq!(masks.len() as u64, binomial(width, k), "width {width} k {k}");
                assert!(masks.windows(2).all(|w| w[0] < w[1]));
                for m in masks {
                    assert_eq!(m.count_ones(), k);
                    assert!(!std::mem::replace(&mut seen[m as usize], true));
                }
            }
            assert!(seen.iter().all(|&s| s));
        }
        assert_eq!(Exactly::new(3, 4).count(), 0);
        assert_eq!(up_to(22, 2).count() as u64, ball(22, 2));
        assert_eq!(ball(22, 2), 1 + 22 + 231);
        assert_eq!(ball(16, 1), 17);
    }
}
