//! Image decoding in front of PDQ: safe against hostile files, compatible
//! with the pixels Meta's reference hashes, and fast where it can be.
//!
//! The fetcher hands every downloaded image to an [`ImageHasher`], which
//! decodes it and returns its PDQ hash ([`PdqImage`]) or a typed
//! [`DecodeError`] that says why not (the reason is recorded with the
//! image). `hashscan hash` uses the same code, so a file on disk and the
//! same file on the web hash alike.
//!
//! Decisions a reader would question:
//! * **Limits from the header, before any pixel buffer.** The format's
//!   header gives the dimensions; width, height and pixel count are checked
//!   against [`DecodeLimits`] before the decoder is asked for a single
//!   pixel, so a decompression bomb (a few hundred bytes claiming 100 000 ×
//!   100 000 pixels) costs a header parse and a clear error.
//! * **Pillow's pixels, not "the best" pixels.** Reference hashes in hotline
//!   lists come from Meta's tools on pixels as Pillow's `convert("RGB")`
//!   gives them: alpha dropped (not composited), grey as R = G = B, 16-bit
//!   grey clipped to 0..=255, 16-bit colour reduced to its high byte, EXIF
//!   orientation **not** applied, the first frame of an animation. We do the
//!   same, so a listed image gives the listed hash.
//! * **Two modes.** [`Mode::Exact`] decodes every pixel (JPEG with
//!   zune-jpeg through the `image` crate) and is what the conformance tests
//!   hold to the reference. [`Mode::Fast`] decodes large JPEGs at 1/2, 1/4
//!   or 1/8 scale in the DCT domain (jpeg-decoder), which skips most of the
//!   work: PDQ only looks at a 64×64 summary. But it moves hashes: median 8
//!   bits, up to 28 on quality ≥ 80 images (`docs/benchmarks.md`), which
//!   eats into a 31-bit match radius, so exact is the default and fast is a
//!   choice, never a silent shortcut.
//! * **Buffers are reused.** One hasher per thread keeps its pixel buffer
//!   and PDQ scratch between images; buffers above [`MAX_RETAINED_BYTES`]
//!   are released after use so one huge image does not stay pinned.
#![deny(missing_docs)]

use std::io::Cursor;

use hashscan_pdq::{PdqDihedral, PdqError, PdqHasher, PdqOutput, Pixels};
use image::{ColorType, ImageDecoder, ImageFormat, ImageReader};
use serde::{Deserialize, Serialize};

/// Pixel buffers larger than this are freed after each image instead of
/// being kept for the next one.
pub const MAX_RETAINED_BYTES: usize = 64 << 20;

/// Hard limits on what an image may cost to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecodeLimits {
    /// Most pixels (width × height). Default 64 megapixels.
    pub max_pixels: u64,
    /// Widest image. Default 32 768.
    pub max_width: u32,
    /// Tallest image. Default 32 768.
    pub max_height: u32,
    /// Largest encoded file. Default 32 MiB, the fetcher's image cap.
    pub max_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self { max_pixels: 64_000_000, max_width: 32_768, max_height: 32_768, max_bytes: 32 << 20 }
    }
}

/// How images are decoded for PDQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every pixel decoded: the hash the reference gives for the same pixels.
    #[default]
    Exact,
    /// Large JPEGs decoded at reduced scale (1/2 to 1/8) in the DCT domain;
    /// other images as in `Exact`.
    Fast,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "exact" => Ok(Mode::Exact),
            "fast" => Ok(Mode::Fast),
            other => Err(format!("unknown PDQ mode {other:?} (expected exact or fast)")),
        }
    }
}

/// The image formats decoded for PDQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JPEG: baseline, progressive, grey, YCbCr, CMYK.
    Jpeg,
    /// PNG: every bit depth, palette, alpha.
    Png,
    /// GIF: the first frame.
    Gif,
    /// WebP: lossy and lossless, first frame.
    Webp,
    /// Windows bitmap.
    Bmp,
}

impl Format {
    /// Lowercase name for messages and records.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Gif => "gif",
            Format::Webp => "webp",
            Format::Bmp => "bmp",
        }
    }

    fn from_image(f: ImageFormat) -> Option<Self> {
        Some(match f {
            ImageFormat::Jpeg => Format::Jpeg,
            ImageFormat::Png => Format::Png,
            ImageFormat::Gif => Format::Gif,
            ImageFormat::WebP => Format::Webp,
            ImageFormat::Bmp => Format::Bmp,
            _ => return None,
        })
    }
}

/// Why an image has no PDQ hash. [`DecodeError::code`] is the stable short
/// form recorded with the image and counted in metrics.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// Not an image format we recognise.
    #[error("not a recognised image format")]
    UnknownFormat,
    /// A recognised format we do not decode (e.g. AVIF, TIFF).
    #[error("{format} images are not decoded for PDQ")]
    Unsupported {
        /// The format's name.
        format: String,
    },
    /// The encoded file is larger than [`DecodeLimits::max_bytes`].
    #[error("file of {bytes} bytes exceeds the decode limit of {limit} bytes")]
    FileTooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The header declares more pixels or larger sides than the limits allow;
    /// refused before decoding.
    #[error("{width}x{height} exceeds the decode limit ({limit})")]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Which limit, in words.
        limit: String,
    },
    /// Truncated or corrupt data.
    #[error("corrupt {format}: {detail}")]
    Corrupt {
        /// The format.
        format: &'static str,
        /// What the decoder said.
        detail: String,
    },
    /// The decoded pixels could not be hashed.
    #[error("pdq: {0}")]
    Pdq(#[from] PdqError),
}

impl DecodeError {
    /// Stable short code.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::UnknownFormat => "unknown_format",
            DecodeError::Unsupported { .. } => "unsupported_format",
            DecodeError::FileTooLarge { .. } => "file_too_large",
            DecodeError::TooLarge { .. } => "too_many_pixels",
            DecodeError::Corrupt { .. } => "corrupt",
            DecodeError::Pdq(_) => "pdq",
        }
    }
}

/// What the header says, read without decoding pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// The format.
    pub format: Format,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Probe {
    /// An upper bound of the pixel memory decoding in `mode` allocates, so a
    /// caller can reserve it from a memory budget before decoding.
    pub fn decode_bytes(&self, mode: Mode) -> u64 {
        let (w, h) = (u64::from(self.width), u64::from(self.height));
        match (mode, self.format, fast_scale(self.width, self.height)) {
            // The scaled output plus jpeg-decoder's scaled component planes.
            (Mode::Fast, Format::Jpeg, k) if k > 1 => {
                let (sw, sh) = (w.div_ceil(u64::from(k)), h.div_ceil(u64::from(k)));
                sw * sh * 3 * 3
            }
            // The decoder's output (at most RGBA 16-bit) and one 8-bit conversion.
            _ => w * h * (8 + 4),
        }
    }
}

/// A decoded image's PDQ hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PdqImage {
    /// Hash and quality.
    pub pdq: PdqOutput,
    /// What the header said.
    pub probe: Probe,
    /// The scale the pixels were decoded at: 1 (full), 2, 4 or 8.
    pub scale: u8,
}

/// Smaller scaled sides than this are not used in fast mode: the scaled
/// image keeps at least this many pixels on its shorter side, four times the
/// 64 rows and columns PDQ samples.
pub const FAST_MIN_SIDE: u32 = 256;

/// The DCT scale denominator fast mode uses for a `width`×`height` JPEG.
pub fn fast_scale(width: u32, height: u32) -> u8 {
    let short = width.min(height);
    [8u8, 4, 2].into_iter().find(|&k| short / u32::from(k) >= FAST_MIN_SIDE).unwrap_or(1)
}

/// Decodes images and hashes them with PDQ, reusing its buffers.
///
/// One per thread: hashing takes `&mut self`.
pub struct ImageHasher {
    limits: DecodeLimits,
    mode: Mode,
    pdq: PdqHasher,
    raw: Vec<u8>,
    converted: Vec<u8>,
}

impl std::fmt::Debug for ImageHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageHasher").field("limits", &self.limits).field("mode", &self.mode).finish_non_exhaustive()
    }
}

/// Pixels ready for PDQ: a layout and the buffer that holds them.
enum Decoded {
    /// In `raw` or `converted`, as described.
    Held { width: u32, height: u32, layout: Layout, in_converted: bool, scale: u8 },
    /// Owned by the scaled JPEG decoder.
    Owned { width: u32, height: u32, layout: Layout, pixels: Vec<u8>, scale: u8 },
}

#[derive(Clone, Copy)]
enum Layout {
    Rgb,
    Rgba,
    Gray,
    GrayAlpha,
}

fn pixels(layout: Layout, data: &[u8]) -> Pixels<'_> {
    match layout {
        Layout::Rgb => Pixels::Rgb8(data),
        Layout::Rgba => Pixels::Rgba8(data),
        Layout::Gray => Pixels::Gray8(data),
        Layout::GrayAlpha => Pixels::GrayAlpha8(data),
    }
}

impl ImageHasher {
    /// A hasher with the given limits and mode.
    pub fn new(limits: DecodeLimits, mode: Mode) -> Self {
        Self { limits, mode, pdq: PdqHasher::new(), raw: Vec::new(), converted: Vec::new() }
    }

    /// The limits in force.
    pub fn limits(&self) -> &DecodeLimits {
        &self.limits
    }

    /// The mode in force.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Reads the header only and checks it against the limits.
    pub fn probe(&self, bytes: &[u8]) -> Result<Probe, DecodeError> {
        probe(bytes, &self.limits)
    }

    /// PDQ of an encoded image.
    pub fn pdq(&mut self, bytes: &[u8]) -> Result<PdqImage, DecodeError> {
        let (probe, decoded) = self.decode(bytes)?;
        let result = match &decoded {
            Decoded::Held { width, height, layout, in_converted, scale } => {
                let buf = if *in_converted { &self.converted } else { &self.raw };
                self.pdq.hash_pixels(*width, *height, pixels(*layout, buf)).map(|pdq| (pdq, *scale))
            }
            Decoded::Owned { width, height, layout, pixels: px, scale } => {
                self.pdq.hash_pixels(*width, *height, pixels(*layout, px)).map(|pdq| (pdq, *scale))
            }
        };
        self.trim();
        let (pdq, scale) = result?;
        Ok(PdqImage { pdq, probe, scale })
    }

    /// The eight dihedral PDQ hashes of an encoded image.
    pub fn dihedral(&mut self, bytes: &[u8]) -> Result<(PdqDihedral, Probe), DecodeError> {
        let (probe, decoded) = self.decode(bytes)?;
        let result = match &decoded {
            Decoded::Held { width, height, layout, in_converted, .. } => {
                let buf = if *in_converted { &self.converted } else { &self.raw };
                self.pdq.dihedral_pixels(*width, *height, pixels(*layout, buf))
            }
            Decoded::Owned { width, height, layout, pixels: px, .. } => {
                self.pdq.dihedral_pixels(*width, *height, pixels(*layout, px))
            }
        };
        self.trim();
        Ok((result?, probe))
    }

    /// The image as Pillow's `convert("RGB")` would give it, at full scale
    /// (for tests and tools; the hashing paths avoid this copy).
    pub fn rgb8(&mut self, bytes: &[u8]) -> Result<(u32, u32, Vec<u8>), DecodeError> {
        let (probe, decoded) = self.decode_exact(bytes)?;
        let Decoded::Held { width, height, layout, in_converted, .. } = decoded else {
            return Err(DecodeError::Corrupt { format: probe.format.name(), detail: "unexpected layout".into() });
        };
        let buf = if in_converted { &self.converted } else { &self.raw };
        let rgb = match layout {
            Layout::Rgb => buf.clone(),
            Layout::Rgba => buf.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
            Layout::Gray => buf.iter().flat_map(|&g| [g, g, g]).collect(),
            Layout::GrayAlpha => buf.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0]]).collect(),
        };
        self.trim();
        Ok((width, height, rgb))
    }

    fn trim(&mut self) {
        for buf in [&mut self.raw, &mut self.converted] {
            if buf.capacity() > MAX_RETAINED_BYTES {
                *buf = Vec::new();
            }
        }
    }

    fn open<'a>(&self, bytes: &'a [u8]) -> Result<(Probe, impl ImageDecoder + 'a), DecodeError> {
        open(bytes, &self.limits)
    }

    fn check_dimensions(&self, width: u32, height: u32) -> Result<(), DecodeError> {
        check_dimensions(&self.limits, width, height)
    }

    fn decode(&mut self, bytes: &[u8]) -> Result<(Probe, Decoded), DecodeError> {
        if self.mode == Mode::Fast {
            if let Some(done) = self.decode_scaled_jpeg(bytes)? {
                return Ok(done);
            }
        }
        self.decode_exact(bytes)
    }

    /// Every pixel, converted the way Pillow's `convert("RGB")` does (but
    /// kept in the narrowest layout PDQ accepts).
    fn decode_exact(&mut self, bytes: &[u8]) -> Result<(Probe, Decoded), DecodeError> {
        let (probe, decoder) = self.open(bytes)?;
        let (width, height) = (probe.width, probe.height);
        let color = decoder.color_type();
        let total = usize::try_from(decoder.total_bytes()).map_err(|_| DecodeError::TooLarge {
            width,
            height,
            limit: "address space".into(),
        })?;
        // Every byte is overwritten by the decoder; only growth is zero-filled.
        self.raw.resize(total, 0);
        decoder.read_image(&mut self.raw).map_err(|e| image_error(probe.format, e))?;
        let held = |layout, in_converted| Decoded::Held { width, height, layout, in_converted, scale: 1 };
        let decoded = match color {
            ColorType::L8 => held(Layout::Gray, false),
            ColorType::La8 => held(Layout::GrayAlpha, false),
            ColorType::Rgb8 => held(Layout::Rgb, false),
            ColorType::Rgba8 => held(Layout::Rgba, false),
            // Pillow reads 16-bit grey as I;16 and clips it to 0..=255 on
            // conversion; 16-bit colour keeps the high byte.
            ColorType::L16 | ColorType::La16 => {
                let step = if color == ColorType::L16 { 2 } else { 4 };
                self.converted.clear();
                self.converted
                    .extend(self.raw.chunks_exact(step).map(|p| u16::from_ne_bytes([p[0], p[1]]).min(255) as u8));
                held(Layout::Gray, true)
            }
            ColorType::Rgb16 | ColorType::Rgba16 => {
                let channels = if color == ColorType::Rgb16 { 3 } else { 4 };
                self.converted.clear();
                self.converted.extend(
                    self.raw
                        .chunks_exact(2 * channels)
                        .flat_map(|p| [0, 1, 2].map(|c| (u16::from_ne_bytes([p[2 * c], p[2 * c + 1]]) >> 8) as u8)),
                );
                held(Layout::Rgb, true)
            }
            ColorType::Rgb32F | ColorType::Rgba32F => {
                let channels = if color == ColorType::Rgb32F { 3 } else { 4 };
                self.converted.clear();
                self.converted.extend(self.raw.chunks_exact(4 * channels).flat_map(|p| {
                    [0, 1, 2].map(|c| {
                        let v = f32::from_ne_bytes([p[4 * c], p[4 * c + 1], p[4 * c + 2], p[4 * c + 3]]);
                        (v.clamp(0.0, 1.0) * 255.0).round() as u8
                    })
                }));
                held(Layout::Rgb, true)
            }
            other => {
                return Err(DecodeError::Unsupported { format: format!("{} {other:?}", probe.format.name()) });
            }
        };
        Ok((probe, decoded))
    }

    /// Fast mode's JPEG path: `None` when it does not apply (not a JPEG,
    /// small enough to decode fully, or CMYK).
    fn decode_scaled_jpeg(&mut self, bytes: &[u8]) -> Result<Option<(Probe, Decoded)>, DecodeError> {
        if image::guess_format(bytes).ok() != Some(ImageFormat::Jpeg) {
            return Ok(None);
        }
        if bytes.len() > self.limits.max_bytes {
            return Err(DecodeError::FileTooLarge { bytes: bytes.len(), limit: self.limits.max_bytes });
        }
        let corrupt = |e: jpeg_decoder::Error| DecodeError::Corrupt { format: "jpeg", detail: e.to_string() };
        let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
        decoder.read_info().map_err(corrupt)?;
        let Some(info) = decoder.info() else { return Ok(None) };
        let (width, height) = (u32::from(info.width), u32::from(info.height));
        self.check_dimensions(width, height)?;
        let probe = Probe { format: Format::Jpeg, width, height };
        let k = fast_scale(width, height);
        if k == 1 || info.pixel_format == jpeg_decoder::PixelFormat::CMYK32 {
            return Ok(None);
        }
        let (sw, sh) = decoder
            .scale(width.div_ceil(u32::from(k)) as u16, height.div_ceil(u32::from(k)) as u16)
            .map_err(corrupt)?;
        decoder.set_max_decoding_buffer_size(usize::try_from(probe.decode_bytes(Mode::Fast)).unwrap_or(usize::MAX));
        let pixels = decoder.decode().map_err(corrupt)?;
        let (sw, sh) = (u32::from(sw), u32::from(sh));
        let layout = match info.pixel_format {
            jpeg_decoder::PixelFormat::L8 => Layout::Gray,
            jpeg_decoder::PixelFormat::RGB24 => Layout::Rgb,
            jpeg_decoder::PixelFormat::L16 => {
                let grey = pixels.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]]).min(255) as u8).collect();
                return Ok(Some((
                    probe,
                    Decoded::Owned { width: sw, height: sh, layout: Layout::Gray, pixels: grey, scale: k },
                )));
            }
            jpeg_decoder::PixelFormat::CMYK32 => return Ok(None),
        };
        Ok(Some((probe, Decoded::Owned { width: sw, height: sh, layout, pixels, scale: k })))
    }
}

/// Reads an image's header only and checks it against `limits`: the cheap
/// first step that lets a caller reserve memory before decoding.
pub fn probe(bytes: &[u8], limits: &DecodeLimits) -> Result<Probe, DecodeError> {
    let (probe, _) = open(bytes, limits)?;
    Ok(probe)
}

/// Opens a decoder on the header and checks the limits.
fn open<'a>(bytes: &'a [u8], limits: &DecodeLimits) -> Result<(Probe, impl ImageDecoder + 'a), DecodeError> {
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::FileTooLarge { bytes: bytes.len(), limit: limits.max_bytes });
    }
    let image_format = image::guess_format(bytes).map_err(|_| DecodeError::UnknownFormat)?;
    let format = Format::from_image(image_format)
        .ok_or_else(|| DecodeError::Unsupported { format: format!("{image_format:?}").to_lowercase() })?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    // Dimensions are checked below, with the numbers in the error; the
    // image crate's own cap bounds the decoders' working memory.
    let mut image_limits = image::Limits::default();
    // Output buffer (up to 8 bytes a pixel) plus decoder working memory.
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(12).max(64 << 20));
    reader.limits(image_limits);
    let decoder = reader.into_decoder().map_err(|e| image_error(format, e))?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(DecodeError::Corrupt {
            format: format.name(),
            detail: format!("header declares {width}x{height}"),
        });
    }
    check_dimensions(limits, width, height)?;
    Ok((Probe { format, width, height }, decoder))
}

fn check_dimensions(l: &DecodeLimits, width: u32, height: u32) -> Result<(), DecodeError> {
    let too_large = |limit: String| Err(DecodeError::TooLarge { width, height, limit });
    if width > l.max_width || height > l.max_height {
        return too_large(format!("at most {}x{} pixels", l.max_width, l.max_height));
    }
    if u64::from(width) * u64::from(height) > l.max_pixels {
        return too_large(format!("at most {} pixels", l.max_pixels));
    }
    Ok(())
}

fn image_error(format: Format, e: image::ImageError) -> DecodeError {
    use image::error::{ImageError, LimitErrorKind};
    match e {
        ImageError::Limits(l) => {
            let limit = match l.kind() {
                LimitErrorKind::DimensionError => "dimensions".to_string(),
                _ => format!("decoder memory: {l}"),
            };
            DecodeError::TooLarge { width: 0, height: 0, limit }
        }
        ImageError::Unsupported(u) => DecodeError::Unsupported { format: format!("{} ({u})", format.name()) },
        other => DecodeError::Corrupt { format: format.name(), detail: other.to_string() },
    }
}
