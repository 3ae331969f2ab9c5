//! [`PdqHasher`]: validation, the small-image rules and the glue between the
//! downsample and the DCT.

use crate::dct::{self, BLOCK, OUT};
use crate::downscale::{Downscaler, Source};
use crate::error::PdqError;
use crate::hash::{PdqDihedral, PdqHash, PdqOutput};
use crate::isa::Isa;

/// Images with a side shorter than this get the all-zero hash and quality 0,
/// as in the reference (which calls it `MIN_HASHABLE_DIM`).
pub const MIN_DIMENSION: u32 = 5;

/// Scratch memory kept between calls is capped at this many bytes; anything
/// larger is released after the call so one extreme image does not stay
/// pinned in a long-lived hasher. Scratch grows with the image's width times
/// its column window (about height / 128 rows), so ordinary images (a
/// 4032×3024 photo needs about 1 MiB) never reach the cap.
pub const MAX_RETAINED_SCRATCH: usize = 64 << 20;

/// Computes PDQ hashes, reusing its scratch buffers between images.
///
/// One hasher per thread: hashing takes `&mut self`. Once an image of a
/// given size has been hashed, images no wider and no taller allocate
/// nothing. Results do not depend on what was hashed before.
pub struct PdqHasher {
    isa: Isa,
    downscaler: Downscaler,
    block: Box<[[f32; BLOCK]; BLOCK]>,
    dct_tmp: Box<[[f32; BLOCK]; OUT]>,
    dct: [[f32; OUT]; OUT],
    dct_aux: [[f32; OUT]; OUT],
}

impl Default for PdqHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for PdqHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdqHasher")
            .field("isa", &self.isa)
            .field("scratch_bytes", &self.downscaler.footprint())
            .finish_non_exhaustive()
    }
}

/// Which reference entry point to mirror: they differ for exactly-64×64
/// inputs, where only the plain hash skips the tent filter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Dihedral,
}

impl PdqHasher {
    /// A hasher with empty scratch; the shared DCT matrix is built here if
    /// this is the first hasher of the process.
    pub fn new() -> Self {
        dct::warm_up();
        PdqHasher {
            isa: Isa::detect(),
            downscaler: Downscaler::default(),
            block: Box::new([[0.0; BLOCK]; BLOCK]),
            dct_tmp: Box::new([[0.0; BLOCK]; OUT]),
            dct: [[0.0; OUT]; OUT],
            dct_aux: [[0.0; OUT]; OUT],
        }
    }

    /// PDQ of an interleaved RGB8 image (`rgb.len() == width * height * 3`,
    /// row-major, no padding), as the reference's `fillFloatLumaFromRGB` then
    /// `pdqHash256FromFloatLuma`. Alpha must already be dropped; grey images
    /// must be expanded to R = G = B (that is what Meta's tools do).
    pub fn hash_rgb8(&mut self, width: u32, height: u32, rgb: &[u8]) -> Result<PdqOutput, PdqError> {
        check_len(width, height, 3, rgb.len())?;
        Ok(self.hash_source(Source::Rgb(rgb), width, height))
    }

    /// PDQ of a luma image (`luma.len() == width * height`, row-major,
    /// values normally 0..=255), as the reference's `pdqHash256FromFloatLuma`.
    /// For callers with their own colour conversion, and for tests.
    pub fn hash_luma_f32(&mut self, width: u32, height: u32, luma: &[f32]) -> Result<PdqOutput, PdqError> {
        check_len(width, height, 1, luma.len())?;
        check_finite(luma)?;
        Ok(self.hash_source(Source::Luma(luma), width, height))
    }

    /// The eight dihedral hashes of an RGB8 image (same layout as
    /// [`PdqHasher::hash_rgb8`]), as the reference's
    /// `pdqDihedralHash256esFromFloatLuma`.
    ///
    /// `hashes[0]` equals [`PdqHasher::hash_rgb8`]'s hash for every size
    /// except exactly 64×64, where the reference's plain hash skips the tent
    /// filter and its dihedral function does not (the window is 1 there, so
    /// the two differ only by rounding).
    pub fn dihedral_rgb8(&mut self, width: u32, height: u32, rgb: &[u8]) -> Result<PdqDihedral, PdqError> {
        check_len(width, height, 3, rgb.len())?;
        Ok(self.dihedral_source(Source::Rgb(rgb), width, height))
    }

    /// The eight dihedral hashes of a luma image (see
    /// [`PdqHasher::hash_luma_f32`] and [`PdqHasher::dihedral_rgb8`]).
    pub fn dihedral_luma_f32(&mut self, width: u32, height: u32, luma: &[f32]) -> Result<PdqDihedral, PdqError> {
        check_len(width, height, 1, luma.len())?;
        check_finite(luma)?;
        Ok(self.dihedral_source(Source::Luma(luma), width, height))
    }

    /// PDQ of 8-bit pixels in any of the layouts decoders produce, without
    /// converting them to RGB first. Grey and RGBA give exactly the hash of
    /// the same image expanded to RGB8 with alpha dropped (what Meta's tools
    /// do); [`Pixels::Luma8`] uses its values as luma directly.
    pub fn hash_pixels(&mut self, width: u32, height: u32, pixels: Pixels<'_>) -> Result<PdqOutput, PdqError> {
        let src = pixels.source(width, height)?;
        Ok(self.hash_source(src, width, height))
    }

    /// The eight dihedral hashes of 8-bit pixels (see [`PdqHasher::hash_pixels`]).
    pub fn dihedral_pixels(&mut self, width: u32, height: u32, pixels: Pixels<'_>) -> Result<PdqDihedral, PdqError> {
        let src = pixels.source(width, height)?;
        Ok(self.dihedral_source(src, width, height))
    }

    fn hash_source(&mut self, src: Source<'_>, width: u32, height: u32) -> PdqOutput {
        if width < MIN_DIMENSION || height < MIN_DIMENSION {
            return PdqOutput { hash: PdqHash::ZERO, quality: 0 };
        }
        let quality = self.dct_of(src, width, height, Mode::Plain);
        PdqOutput { hash: dct::bits_from_dct(&self.dct), quality }
    }

    fn dihedral_source(&mut self, src: Source<'_>, width: u32, height: u32) -> PdqDihedral {
        if width < MIN_DIMENSION || height < MIN_DIMENSION {
            return PdqDihedral { hashes: [PdqHash::ZERO; 8], quality: 0 };
        }
        let quality = self.dct_of(src, width, height, Mode::Dihedral);
        PdqDihedral { hashes: dct::dihedral_bits(&self.dct, &mut self.dct_aux), quality }
    }

    /// Downsample, quality, DCT into `self.dct`; returns the quality.
    fn dct_of(&mut self, src: Source<'_>, width: u32, height: u32, mode: Mode) -> u8 {
        // Lengths were checked against width * height, so these fit usize.
        let (w, h) = (width as usize, height as usize);
        if mode == Mode::Plain && w == BLOCK && h == BLOCK {
            src.copy_64(&mut self.block);
        } else {
            self.downscaler.run(self.isa, src, w, h, &mut self.block);
            if self.downscaler.footprint() > MAX_RETAINED_SCRATCH {
                self.downscaler = Downscaler::default();
            }
        }
        let quality = dct::quality(self.isa, &self.block);
        dct::dct64_to_16(self.isa, &self.block, &mut self.dct_tmp, &mut self.dct);
        quality
    }
}

/// 8-bit pixels, interleaved, row-major, no padding: what image decoders
/// hand over.
#[derive(Debug, Clone, Copy)]
pub enum Pixels<'a> {
    /// R, G, B.
    Rgb8(&'a [u8]),
    /// R, G, B, A; alpha is dropped, not composited, as the reference's tools do.
    Rgba8(&'a [u8]),
    /// Grey, hashed as R = G = B.
    Gray8(&'a [u8]),
    /// Grey and alpha; alpha dropped.
    GrayAlpha8(&'a [u8]),
    /// Luma values used as they are (a JPEG's Y plane, say). Not what the
    /// reference computes from RGB: close, but not bit-exact.
    Luma8(&'a [u8]),
}

impl<'a> Pixels<'a> {
    fn source(self, width: u32, height: u32) -> Result<Source<'a>, PdqError> {
        let (channels, data, src) = match self {
            Pixels::Rgb8(d) => (3, d, Source::Rgb(d)),
            Pixels::Rgba8(d) => (4, d, Source::Rgba(d)),
            Pixels::Gray8(d) => (1, d, Source::Gray(d)),
            Pixels::GrayAlpha8(d) => (2, d, Source::GrayAlpha(d)),
            Pixels::Luma8(d) => (1, d, Source::Luma8(d)),
        };
        check_len(width, height, channels, data.len())?;
        Ok(src)
    }
}

fn check_len(width: u32, height: u32, channels: u8, actual: usize) -> Result<(), PdqError> {
    if width == 0 || height == 0 {
        return Err(PdqError::Empty { width, height });
    }
    // u128: u32::MAX² · 3 overflows u64.
    let expected = u128::from(width) * u128::from(height) * u128::from(channels);
    let Ok(expected) = u64::try_from(expected) else {
        return Err(PdqError::TooLarge { width, height });
    };
    if usize::try_from(expected).is_err() {
        return Err(PdqError::TooLarge { width, height });
    }
    if expected != actual as u64 {
        return Err(PdqError::BufferLength { width, height, channels, expected, actual });
    }
    Ok(())
}

fn check_finite(luma: &[f32]) -> Result<(), PdqError> {
    match luma.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(PdqError::NonFiniteLuma { index, value: luma[index] }),
        None => Ok(()),
    }
}
