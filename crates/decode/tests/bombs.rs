//! Decompression bombs are refused from the header, before any pixel
//! buffer exists: this test binary counts every byte the decoder allocates.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use hashscan_decode::{DecodeError, DecodeLimits, ImageHasher, Mode};
use image::codecs::bmp::BmpEncoder;
use image::codecs::gif::GifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, Frame, ImageEncoder, RgbaImage};

/// Counts this thread's live heap bytes and their peak.
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn on_alloc(n: usize) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + n;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

fn on_free(n: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(n)));
}

// SAFETY: delegates to the system allocator; the counters are plain
// thread-local cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        on_alloc(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        on_free(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        on_free(layout.size());
        on_alloc(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak extra heap bytes while `f` runs.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(Cell::get) - base)
}

fn small_rgb(w: u32, h: u32) -> Vec<u8> {
    (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect()
}

fn png_with_size(width: u32, height: u32) -> Vec<u8> {
    let mut png = Vec::new();
    PngEncoder::new(&mut png).write_image(&small_rgb(8, 8), 8, 8, ExtendedColorType::Rgb8).unwrap();
    // IHDR data starts at 16 (8 signature + 4 length + 4 type); its CRC follows the 13 data bytes.
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&png[12..29]);
    png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    png
}

fn jpeg_with_size(width: u16, height: u16) -> Vec<u8> {
    let mut jpeg = Vec::new();
    JpegEncoder::new(&mut jpeg).write_image(&small_rgb(16, 16), 16, 16, ExtendedColorType::Rgb8).unwrap();
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("baseline SOF0");
    // FF C0, length (2), precision (1), height (2), width (2).
    jpeg[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    jpeg
}

fn gif_with_size(width: u16, height: u16) -> Vec<u8> {
    let mut gif = Vec::new();
    let frame = RgbaImage::from_pixel(8, 8, image::Rgba([1, 2, 3, 255]));
    GifEncoder::new(&mut gif).encode_frame(Frame::new(frame)).unwrap();
    gif[6..8].copy_from_slice(&width.to_le_bytes());
    gif[8..10].copy_from_slice(&height.to_le_bytes());
    gif
}

fn bmp_with_size(width: i32, height: i32) -> Vec<u8> {
    let mut bmp = Vec::new();
    BmpEncoder::new(&mut bmp).write_image(&small_rgb(8, 8), 8, 8, ExtendedColorType::Rgb8).unwrap();
    bmp[18..22].copy_from_slice(&width.to_le_bytes());
    bmp[22..26].copy_from_slice(&height.to_le_bytes());
    bmp
}

fn webp_with_max_size() -> Vec<u8> {
    let mut webp = Vec::new();
    let rgba: Vec<u8> = small_rgb(8, 8).chunks(3).flat_map(|c| [c[0], c[1], c[2], 255]).collect();
    WebPEncoder::new_lossless(&mut webp).write_image(&rgba, 8, 8, ExtendedColorType::Rgba8).unwrap();
    let vp8l = webp.windows(4).position(|w| w == b"VP8L").expect("lossless chunk");
    // Chunk data: signature 0x2f, then width-1 (14 bits), height-1 (14 bits), alpha, version.
    let at = vp8l + 9;
    let old = u32::from_le_bytes(webp[at..at + 4].try_into().unwrap());
    let dims = 16383 | (16383 << 14) | (old & 0xF000_0000);
    webp[at..at + 4].copy_from_slice(&dims.to_le_bytes());
    if let Some(vp8x) = webp.windows(4).position(|w| w == b"VP8X") {
        let canvas = vp8x + 12;
        webp[canvas..canvas + 3].copy_from_slice(&16383u32.to_le_bytes()[..3]);
        webp[canvas + 3..canvas + 6].copy_from_slice(&16383u32.to_le_bytes()[..3]);
    }
    webp
}

#[test]
fn bombs_are_refused_from_the_header_without_allocating_pixels() {
    let bombs: Vec<(&str, Vec<u8>)> = vec![
        ("png 100000x100000", png_with_size(100_000, 100_000)),
        ("png 30000x30000", png_with_size(30_000, 30_000)),
        ("jpeg 65000x65000", jpeg_with_size(65_000, 65_000)),
        ("jpeg 16000x16000", jpeg_with_size(16_000, 16_000)),
        ("gif 65535x65535", gif_with_size(65_535, 65_535)),
        ("bmp 30000x30000", bmp_with_size(30_000, 30_000)),
        // image-webp rejects this one itself while reading the header
        // ("inconsistent image sizes"); what matters is that nothing was allocated.
        ("webp 16384x16384 (any error)", webp_with_max_size()),
    ];
    for mode in [Mode::Exact, Mode::Fast] {
        let mut hasher = ImageHasher::new(DecodeLimits::default(), mode);
        for (name, file) in &bombs {
            let (result, peak) = peak_during(|| hasher.pdq(file));
            let err = result.expect_err(name);
            let any_error = name.ends_with("(any error)");
            assert!(any_error || matches!(err, DecodeError::TooLarge { .. }), "{name} ({mode:?}): {err}");
            assert!(peak < 1 << 20, "{name} ({mode:?}): {peak} bytes allocated before refusing");
            let (probe, peak) = peak_during(|| hasher.probe(file));
            assert!(probe.is_err(), "{name}: probe refuses too");
            assert!(peak < 1 << 20, "{name}: probe allocated {peak} bytes");
        }
    }
}

#[test]
fn the_error_names_the_declared_size_and_the_limit() {
    let mut hasher = ImageHasher::new(DecodeLimits::default(), Mode::Exact);
    let err = hasher.pdq(&png_with_size(100_000, 100_000)).unwrap_err();
    assert_eq!(err.to_string(), "100000x100000 exceeds the decode limit (at most 32768x32768 pixels)");
    let err = hasher.pdq(&png_with_size(10_000, 10_000)).unwrap_err();
    assert_eq!(err.to_string(), "10000x10000 exceeds the decode limit (at most 64000000 pixels)");
    assert_eq!(err.code(), "too_many_pixels");
}

#[test]
fn limits_are_inclusive_and_configurable() {
    let limits = DecodeLimits { max_pixels: 64 * 48, max_width: 64, max_height: 48, ..DecodeLimits::default() };
    let mut hasher = ImageHasher::new(limits, Mode::Exact);
    let mut at_limit = Vec::new();
    PngEncoder::new(&mut at_limit).write_image(&small_rgb(64, 48), 64, 48, ExtendedColorType::Rgb8).unwrap();
    assert!(hasher.pdq(&at_limit).is_ok(), "exactly at the limit is allowed");
    let mut over = Vec::new();
    PngEncoder::new(&mut over).write_image(&small_rgb(65, 48), 65, 48, ExtendedColorType::Rgb8).unwrap();
    assert!(matches!(hasher.pdq(&over), Err(DecodeError::TooLarge { width: 65, height: 48, .. })));
}
