//! Content sniffing by magic bytes.

/// Image formats recognised by their signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG.
    Png,
    /// GIF87a / GIF89a.
    Gif,
    /// WebP (RIFF container).
    Webp,
    /// Windows bitmap.
    Bmp,
    /// AVIF / HEIF (ISO BMFF `ftyp` box with an image brand).
    Avif,
    /// TIFF, either byte order.
    Tiff,
    /// Windows icon.
    Ico,
}

impl ImageFormat {
    /// The media type to record.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
            Self::Bmp => "image/bmp",
            Self::Avif => "image/avif",
            Self::Tiff => "image/tiff",
            Self::Ico => "image/x-icon",
        }
    }
}

/// Recognises an image by its first bytes. The Content-Type header is not
/// trusted: servers mislabel, and an HTML page labelled `image/jpeg` must not
/// be hashed as an image.
pub fn sniff_image(b: &[u8]) -> Option<ImageFormat> {
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Some(ImageFormat::Gif)
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some(ImageFormat::Webp)
    } else if b.len() >= 14 && b.starts_with(b"BM") {
        Some(ImageFormat::Bmp)
    } else if b.len() >= 12
        && &b[4..8] == b"ftyp"
        && matches!(&b[8..12], b"avif" | b"avis" | b"heic" | b"heix" | b"mif1")
    {
        Some(ImageFormat::Avif)
    } else if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
        Some(ImageFormat::Tiff)
    } else if b.starts_with(&[0, 0, 1, 0]) && b.len() >= 6 {
        Some(ImageFormat::Ico)
    } else {
        None
    }
}

/// Whether a body looks like HTML: by Content-Type, or by a leading tag
/// when the type is missing or generic.
pub(crate) fn looks_like_html(content_type: Option<&str>, body: &[u8]) -> bool {
    if let Some(ct) = content_type {
        let ct = ct.to_ascii_lowercase();
        if ct.starts_with("text/html") || ct.starts_with("application/xhtml") {
            return true;
        }
    }
    let head = &body[..body.len().min(512)];
    let text = String::from_utf8_lossy(head);
    let t = text.trim_start_matches('\u{feff}').trim_start().to_ascii_lowercase();
    t.starts_with("<!doctype html") || t.starts_with("<html") || t.starts_with("<head") || t.starts_with("<body")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_common_formats_and_refuses_html() {
        assert_eq!(sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some(ImageFormat::Jpeg));
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\n...."), Some(ImageFormat::Png));
        assert_eq!(sniff_image(b"GIF89a......"), Some(ImageFormat::Gif));
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WEBPVP8 "), Some(ImageFormat::Webp));
        assert_eq!(sniff_image(b"BM\0\0\0\0\0\0\0\0\0\0\0\0"), Some(ImageFormat::Bmp));
        assert_eq!(sniff_image(b"\0\0\0\x1cftypavif\0\0"), Some(ImageFormat::Avif));
        assert_eq!(sniff_image(b"<html><body>"), None);
        assert_eq!(sniff_image(b""), None);
        assert_eq!(sniff_image(b"\xFF\xD8"), None, "truncated signature");
    }

    #[test]
    fn html_by_type_or_leading_tag() {
        assert!(looks_like_html(Some("text/html; charset=utf-8"), b"x"));
        assert!(looks_like_html(None, b"\n  <!DOCTYPE html><p>"));
        assert!(looks_like_html(Some("application/octet-stream"), b"<html>"));
        assert!(!looks_like_html(Some("text/plain"), b"hello"));
        assert!(!looks_like_html(None, b"\x89PNG"));
    }
}
