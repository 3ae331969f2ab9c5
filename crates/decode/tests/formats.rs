//! Every supported format and pixel layout decodes to the pixels Pillow's
//! `convert("RGB")` gives, and hashes like them; broken files give typed
//! errors, never panics.

use hashscan_decode::{fast_scale, DecodeError, DecodeLimits, Format, ImageHasher, Mode};
use hashscan_pdq::PdqHasher;
use image::codecs::bmp::BmpEncoder;
use image::codecs::gif::{GifEncoder, Repeat};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, Frame, ImageEncoder, RgbaImage};

/// A benign test picture, deterministic: two octaves of smooth value noise
/// per channel, so it has structure at every frequency PDQ looks at (a
/// plain gradient has almost none, and its hash bits would be noise).
fn picture(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let mut grid = |n: usize| -> Vec<f32> {
        (0..n * n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state % 1000) as f32 / 1000.0
            })
            .collect()
    };
    let octaves: Vec<[(usize, Vec<f32>); 2]> = (0..3).map(|_| [(9, grid(9)), (33, grid(33))]).collect();
    let sample = |(n, g): &(usize, Vec<f32>), fx: f32, fy: f32| {
        let (x, y) = (fx * (n - 1) as f32, fy * (n - 1) as f32);
        let (x0, y0) = ((x as usize).min(n - 2), (y as usize).min(n - 2));
        let (tx, ty) = (x - x0 as f32, y - y0 as f32);
        let at = |i: usize, j: usize| g[j * n + i];
        let top = at(x0, y0) * (1.0 - tx) + at(x0 + 1, y0) * tx;
        let bottom = at(x0, y0 + 1) * (1.0 - tx) + at(x0 + 1, y0 + 1) * tx;
        top * (1.0 - ty) + bottom * ty
    };
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            for o in &octaves {
                let v = 0.65 * sample(&o[0], fx, fy) + 0.35 * sample(&o[1], fx, fy);
                out.push((v * 255.0) as u8);
            }
        }
    }
    out
}

fn encode_png(w: u32, h: u32, data: &[u8], color: ExtendedColorType) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out).write_image(data, w, h, color).unwrap();
    out
}

fn exact() -> ImageHasher {
    ImageHasher::new(DecodeLimits::default(), Mode::Exact)
}

fn pdq_of_rgb(w: u32, h: u32, rgb: &[u8]) -> hashscan_pdq::PdqOutput {
    PdqHasher::new().hash_rgb8(w, h, rgb).unwrap()
}

#[test]
fn png_of_every_8_and_16_bit_layout_decodes_like_pillow() {
    let (w, h) = (97, 61);
    let rgb = picture(w, h, 3);
    let grey: Vec<u8> = rgb.iter().step_by(3).copied().collect();
    let grey_rgb: Vec<u8> = grey.iter().flat_map(|&g| [g, g, g]).collect();
    let rgba: Vec<u8> = rgb.chunks(3).enumerate().flat_map(|(i, c)| [c[0], c[1], c[2], (i % 256) as u8]).collect();
    let la: Vec<u8> = grey.iter().flat_map(|&g| [g, 17]).collect();
    // 16-bit: Pillow keeps the high byte of colour and clips grey at 255.
    let rgb16: Vec<u8> = rgb.iter().flat_map(|&v| ((u16::from(v) << 8) | 0x7f).to_be_bytes()).collect();
    let grey16: Vec<u8> = grey.iter().flat_map(|&g| (u16::from(g) * 2).to_be_bytes()).collect();
    let grey16_clipped: Vec<u8> = grey.iter().flat_map(|&g| [(u16::from(g) * 2).min(255) as u8; 3]).collect();
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        ("rgb8", encode_png(w, h, &rgb, ExtendedColorType::Rgb8), rgb.clone()),
        ("rgba8", encode_png(w, h, &rgba, ExtendedColorType::Rgba8), rgb.clone()),
        ("l8", encode_png(w, h, &grey, ExtendedColorType::L8), grey_rgb.clone()),
        ("la8", encode_png(w, h, &la, ExtendedColorType::La8), grey_rgb.clone()),
        ("rgb16", png_raw(w, h, png::ColorType::Rgb, png::BitDepth::Sixteen, &rgb16, None), rgb.clone()),
        ("l16", png_raw(w, h, png::ColorType::Grayscale, png::BitDepth::Sixteen, &grey16, None), grey16_clipped),
    ];
    let mut hasher = exact();
    for (name, file, want) in cases {
        let (dw, dh, got) = hasher.rgb8(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((dw, dh), (w, h), "{name}");
        assert!(got == want, "{name}: pixels differ from Pillow's conversion");
        let img = hasher.pdq(&file).unwrap();
        assert_eq!(img.pdq, pdq_of_rgb(w, h, &want), "{name}");
        assert_eq!((img.probe.format, img.scale), (Format::Png, 1));
    }
}

fn png_raw(w: u32, h: u32, c: png::ColorType, d: png::BitDepth, data: &[u8], palette: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(c);
        enc.set_depth(d);
        if let Some(p) = palette {
            enc.set_palette(p);
            enc.set_trns(vec![0u8, 255]);
        }
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(data).unwrap();
    }
    out
}

#[test]
fn palette_and_one_bit_png_expand_to_their_colours() {
    let (w, h) = (16, 8);
    // Palette: index = (x + y) % 3, with a transparent entry that must not be composited.
    let palette = vec![10, 20, 30, 200, 100, 50, 0, 255, 0];
    let idx: Vec<u8> = (0..h).flat_map(|y| (0..w).map(move |x| ((x + y) % 3) as u8)).collect();
    let file = png_raw(w, h, png::ColorType::Indexed, png::BitDepth::Eight, &idx, Some(palette.clone()));
    let want: Vec<u8> = idx.iter().flat_map(|&i| palette[i as usize * 3..i as usize * 3 + 3].to_vec()).collect();
    let (_, _, got) = exact().rgb8(&file).unwrap();
    assert_eq!(got, want, "palette colours, alpha dropped");
    // 1-bit grey: a row of alternating bits.
    let bits: Vec<u8> = [0b1010_1010u8, 0b0101_0101].repeat(h as usize);
    let file = png_raw(w, h, png::ColorType::Grayscale, png::BitDepth::One, &bits, None);
    let (_, _, got) = exact().rgb8(&file).unwrap();
    assert_eq!(&got[..6], &[255, 255, 255, 0, 0, 0]);
}

#[test]
fn jpeg_gif_webp_and_bmp_decode_and_hash_their_own_pixels() {
    let (w, h) = (120, 90);
    let rgb = picture(w, h, 9);
    let rgba: Vec<u8> = rgb.chunks(3).flat_map(|c| [c[0], c[1], c[2], 255]).collect();
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, 90).write_image(&rgb, w, h, ExtendedColorType::Rgb8).unwrap();
    let mut grey_jpeg = Vec::new();
    let grey: Vec<u8> = rgb.iter().step_by(3).copied().collect();
    JpegEncoder::new_with_quality(&mut grey_jpeg, 90).write_image(&grey, w, h, ExtendedColorType::L8).unwrap();
    let mut webp = Vec::new();
    WebPEncoder::new_lossless(&mut webp).write_image(&rgba, w, h, ExtendedColorType::Rgba8).unwrap();
    let mut bmp = Vec::new();
    BmpEncoder::new(&mut bmp).write_image(&rgb, w, h, ExtendedColorType::Rgb8).unwrap();
    let mut gif = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut gif);
        enc.set_repeat(Repeat::Infinite).unwrap();
        let first = RgbaImage::from_raw(w, h, rgba.clone()).unwrap();
        let second = RgbaImage::from_pixel(w, h, image::Rgba([255, 0, 0, 255]));
        enc.encode_frames([Frame::new(first), Frame::new(second)]).unwrap();
    }
    let grey_rgb: Vec<u8> = grey.iter().flat_map(|&g| [g, g, g]).collect();
    let mut hasher = exact();
    for (format, file, source, lossless) in [
        (Format::Jpeg, jpeg, &rgb, false),
        (Format::Jpeg, grey_jpeg, &grey_rgb, false),
        (Format::Webp, webp, &rgb, true),
        (Format::Bmp, bmp, &rgb, true),
        (Format::Gif, gif, &rgb, false),
    ] {
        let img = hasher.pdq(&file).unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!((img.probe.format, img.probe.width, img.probe.height), (format, w, h));
        let (_, _, px) = hasher.rgb8(&file).unwrap();
        assert_eq!(img.pdq, pdq_of_rgb(w, h, &px), "{format:?}: the hash is the hash of the decoded pixels");
        if lossless {
            assert!(&px == source, "{format:?}: lossless pixels come back unchanged");
        } else {
            // Lossy or palette-quantised: the picture is still the picture.
            let d = img.pdq.hash.hamming(&pdq_of_rgb(w, h, source).hash);
            assert!(d <= 16, "{format:?}: {d} bits from the source picture");
        }
    }
}

#[test]
fn fast_mode_scales_only_large_jpegs_and_stays_close() {
    assert_eq!(fast_scale(640, 480), 1);
    assert_eq!(fast_scale(1600, 1004), 2);
    assert_eq!(fast_scale(2048, 1536), 4);
    assert_eq!(fast_scale(4032, 3024), 8);
    let (w, h) = (2048, 1536);
    let rgb = picture(w, h, 5);
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, 90).write_image(&rgb, w, h, ExtendedColorType::Rgb8).unwrap();
    let e = exact().pdq(&jpeg).unwrap();
    let f = ImageHasher::new(DecodeLimits::default(), Mode::Fast).pdq(&jpeg).unwrap();
    assert_eq!((e.scale, f.scale), (1, 4));
    assert_eq!(f.probe, e.probe, "the probe reports the full size");
    let d = e.pdq.hash.hamming(&f.pdq.hash);
    assert!(d <= 16, "fast mode {d} bits from exact");
    // Small JPEGs and other formats: fast is exact.
    let small = picture(200, 150, 1);
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, 90).write_image(&small, 200, 150, ExtendedColorType::Rgb8).unwrap();
    let f = ImageHasher::new(DecodeLimits::default(), Mode::Fast).pdq(&jpeg).unwrap();
    assert_eq!((f.pdq, f.scale), (exact().pdq(&jpeg).unwrap().pdq, 1));
}

#[test]
fn unknown_and_unsupported_formats_are_named() {
    let mut h = exact();
    assert_eq!(h.pdq(b"<html>not an image</html>").unwrap_err(), DecodeError::UnknownFormat);
    assert_eq!(h.pdq(b"").unwrap_err(), DecodeError::UnknownFormat);
    let tiff = b"II*\0\x08\0\0\0\0\0\0\0";
    let err = h.pdq(tiff).unwrap_err();
    assert_eq!(err.code(), "unsupported_format", "{err}");
    assert!(err.to_string().contains("tiff"), "{err}");
}

#[test]
fn files_over_the_byte_limit_are_refused_unread() {
    let limits = DecodeLimits { max_bytes: 100, ..DecodeLimits::default() };
    let rgb = picture(64, 64, 2);
    let file = encode_png(64, 64, &rgb, ExtendedColorType::Rgb8);
    for mode in [Mode::Exact, Mode::Fast] {
        let err = ImageHasher::new(limits, mode).pdq(&file).unwrap_err();
        assert_eq!(err, DecodeError::FileTooLarge { bytes: file.len(), limit: 100 });
    }
}

#[test]
fn truncated_and_corrupted_files_never_panic() {
    let (w, h) = (300, 200);
    let rgb = picture(w, h, 4);
    let rgba: Vec<u8> = rgb.chunks(3).flat_map(|c| [c[0], c[1], c[2], 255]).collect();
    let mut files = vec![encode_png(w, h, &rgb, ExtendedColorType::Rgb8)];
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, 80).write_image(&rgb, w, h, ExtendedColorType::Rgb8).unwrap();
    files.push(jpeg);
    let mut webp = Vec::new();
    WebPEncoder::new_lossless(&mut webp).write_image(&rgba, w, h, ExtendedColorType::Rgba8).unwrap();
    files.push(webp);
    let mut bmp = Vec::new();
    BmpEncoder::new(&mut bmp).write_image(&rgb, w, h, ExtendedColorType::Rgb8).unwrap();
    files.push(bmp);
    let mut gif = Vec::new();
    GifEncoder::new(&mut gif).encode_frame(Frame::new(RgbaImage::from_raw(w, h, rgba).unwrap())).unwrap();
    files.push(gif);
    let mut exact_h = exact();
    let mut fast_h = ImageHasher::new(DecodeLimits::default(), Mode::Fast);
    let mut seed = 0x2545_f491_u32;
    for file in &files {
        for cut in [1, 8, 16, 33, 64, file.len() / 3, file.len() / 2, file.len() - 1] {
            let part = &file[..cut.min(file.len())];
            for hasher in [&mut exact_h, &mut fast_h] {
                // Ok (a decoder may render what it has) or a typed error: both fine, a panic is not.
                let _ = hasher.pdq(part);
            }
        }
        for _ in 0..40 {
            let mut bad = file.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let i = 8 + seed as usize % (bad.len() - 8);
                bad[i] = (seed >> 8) as u8;
            }
            let _ = exact_h.pdq(&bad);
            let _ = fast_h.pdq(&bad);
        }
    }
    // A truncated PNG is an error, with the format named.
    let png = &files[0];
    let err = exact_h.pdq(&png[..png.len() / 2]).unwrap_err();
    assert_eq!(err.code(), "corrupt", "{err}");
    assert!(err.to_string().starts_with("corrupt png"), "{err}");
    // The hasher is still good after all that.
    assert!(exact_h.pdq(png).is_ok());
}
