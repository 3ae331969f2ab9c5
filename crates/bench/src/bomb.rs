//! Decompression bombs: tiny files whose headers claim huge images.

use image::{ExtendedColorType, ImageEncoder};

/// CRC-32 (IEEE), as PNG chunks use.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A valid 16×16 PNG whose IHDR is rewritten to claim `width`×`height`
/// (with a correct chunk CRC, so only the size is wrong).
pub fn png(width: u32, height: u32) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out).write_image(
        &[128u8; 16 * 16 * 3],
        16,
        16,
        ExtendedColorType::Rgb8,
    )?;
    anyhow::ensure!(&out[12..16] == b"IHDR", "unexpected PNG layout");
    out[16..20].copy_from_slice(&width.to_be_bytes());
    out[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&out[12..29]);
    out[29..33].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// A valid 16×16 baseline JPEG whose SOF0 is rewritten to claim
/// `width`×`height`; its tables and scan stay in place.
pub fn jpeg(width: u16, height: u16) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90).encode(&[128u8; 16 * 16 * 3], 16, 16, jpeg_encoder::ColorType::Rgb)?;
    let sof = out.windows(2).position(|w| w == [0xff, 0xc0]).ok_or_else(|| anyhow::anyhow!("no SOF0"))?;
    // FF C0, length (2), precision (1), height (2), width (2)
    out[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    out[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn bombs_are_refused_from_the_header() {
        use hashscan_decode::{DecodeLimits, ImageHasher, Mode};
        for mode in [Mode::Exact, Mode::Fast] {
            let mut h = ImageHasher::new(DecodeLimits::default(), mode);
            for bytes in [png(100_000, 100_000).unwrap(), jpeg(65_000, 65_000).unwrap()] {
                assert_eq!(h.pdq(&bytes).unwrap_err().code(), "too_many_pixels");
            }
        }
    }
}
