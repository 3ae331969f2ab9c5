//! Decode + PDQ on arbitrary bytes: never a panic, never an unbounded
//! allocation, and the limits always hold.
#![no_main]

use hashscan_decode::{DecodeLimits, ImageHasher, Mode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small pixel limits keep each run fast; the checks are the same.
    let limits = DecodeLimits { max_pixels: 4_000_000, max_width: 8192, max_height: 8192, max_bytes: 1 << 20 };
    for mode in [Mode::Exact, Mode::Fast] {
        let mut hasher = ImageHasher::new(limits, mode);
        let probe = hasher.probe(data);
        match hasher.pdq(data) {
            Ok(img) => {
                assert!(img.pdq.quality <= 100);
                assert!(u64::from(img.probe.width) * u64::from(img.probe.height) <= limits.max_pixels);
                assert!(matches!(img.scale, 1 | 2 | 4 | 8));
                assert_eq!(probe.ok(), Some(img.probe), "probe and decode agree on the header");
            }
            Err(e) => {
                assert!(!e.code().is_empty());
            }
        }
    }
});
