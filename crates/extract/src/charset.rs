//! Choosing the character encoding of a page, as a browser would.
//!
//! The order is the WHATWG encoding-sniffing algorithm without the
//! locale-dependent guess:
//!
//! 1. a byte order mark (a BOM beats everything, also the HTTP header; this is
//!    what browsers do and the BOM cannot be an accident);
//! 2. the `charset` parameter of the HTTP `Content-Type` header;
//! 3. a `<meta charset>` or `<meta http-equiv=content-type content=…>` in the
//!    first 1024 bytes (the "prescan", done with lol_html on that prefix);
//! 4. UTF-8, with U+FFFD for invalid bytes.
//!
//! encoding_rs does the decoding and knows every label the web uses.

use std::cell::Cell;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252, X_USER_DEFINED};
use lol_html::{element, HtmlRewriter, MemorySettings, Settings};

use crate::charref::decode_attr;

/// How many bytes the `<meta>` prescan looks at (the spec's number).
const PRESCAN_BYTES: usize = 1024;

/// Memory cap for the prescan parser; 1 KiB of input needs far less.
const PRESCAN_MEMORY: usize = 64 * 1024;

/// Where the chosen encoding came from; reported in [`crate::Extracted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncodingSource {
    /// A byte order mark at the start of the body.
    Bom,
    /// The `charset` the caller passed from the HTTP `Content-Type` header.
    Header,
    /// A `<meta>` element in the first 1024 bytes.
    Meta,
    /// Nothing said anything; UTF-8 was assumed.
    Default,
}

/// Picks the encoding to decode `body` with.
///
/// The returned encoding is the one to hand to [`Encoding::decode`], which
/// repeats the BOM check itself.
pub(crate) fn choose(body: &[u8], header: Option<&str>) -> (&'static Encoding, EncodingSource) {
    if let Some((enc, _)) = Encoding::for_bom(body) {
        return (enc, EncodingSource::Bom);
    }
    if let Some(enc) = header.and_then(from_header) {
        return (enc, EncodingSource::Header);
    }
    if let Some(enc) = prescan(&body[..body.len().min(PRESCAN_BYTES)]) {
        return (enc, EncodingSource::Meta);
    }
    (UTF_8, EncodingSource::Default)
}

/// Reads a header charset label, tolerating quotes around it.
fn from_header(label: &str) -> Option<&'static Encoding> {
    let label = label.trim().trim_matches(|c| c == '"' || c == '\'');
    Encoding::for_label(label.as_bytes())
}

/// Finds a charset declared by a `<meta>` element in `prefix`.
///
/// Runs lol_html over the prefix as if it were UTF-8 (every charset label is
/// ASCII, so that is enough) and stops caring after the first declaration.
fn prescan(prefix: &[u8]) -> Option<&'static Encoding> {
    let found: Cell<Option<&'static Encoding>> = Cell::new(None);
    let settings = Settings::new()
        .with_strict(false)
        .with_memory_settings(
            MemorySettings::new()
                .with_preallocated_parsing_buffer_size(1024)
                .with_max_allowed_memory_usage(PRESCAN_MEMORY),
        )
        .append_element_content_handler(element!("meta", |el| {
            if found.get().is_some() {
                return Ok(());
            }
            let label = if let Some(charset) = el.get_attribute("charset") {
                Some(decode_attr(&charset).into_owned())
            } else {
                let is_content_type =
                    el.get_attribute("http-equiv").is_some_and(|v| v.trim().eq_ignore_ascii_case("content-type"));
                match (is_content_type, el.get_attribute("content")) {
                    (true, Some(content)) => charset_from_content(&decode_attr(&content)).map(str::to_string),
                    _ => None,
                }
            };
            if let Some(enc) = label.and_then(|l| Encoding::for_label(l.as_bytes())) {
                found.set(Some(from_meta(enc)));
            }
            Ok(())
        }));
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    // A prefix the parser cannot handle simply declares nothing.
    if rewriter.write(prefix).is_ok() {
        let _ = rewriter.end();
    }
    found.get()
}

/// The prescan's fix-ups: a page cannot declare itself UTF-16 from inside
/// an ASCII-compatible prefix, and x-user-defined means windows-1252.
fn from_meta(enc: &'static Encoding) -> &'static Encoding {
    if enc == UTF_16BE || enc == UTF_16LE {
        UTF_8
    } else if enc == X_USER_DEFINED {
        WINDOWS_1252
    } else {
        enc
    }
}

/// The WHATWG "algorithm for extracting a character encoding from a meta
/// element": finds `charset=` in a `content` value and returns its label.
pub(crate) fn charset_from_content(content: &str) -> Option<&str> {
    let bytes = content.as_bytes();
    let mut pos = 0;
    loop {
        let found = find_ascii_ci(&bytes[pos..], b"charset")?;
        pos += found + b"charset".len();
        while pos < bytes.len() && is_ws(bytes[pos]) {
            pos += 1;
        }
        if bytes.get(pos) != Some(&b'=') {
            // Not "charset=": look for the next occurrence from here.
            continue;
        }
        pos += 1;
        while pos < bytes.len() && is_ws(bytes[pos]) {
            pos += 1;
        }
        // All cuts below are at ASCII bytes, so on char boundaries.
        return match bytes.get(pos) {
            Some(&q @ (b'"' | b'\'')) => {
                let rest = &content[pos + 1..];
                rest.find(q as char).map(|end| &rest[..end])
            }
            Some(_) => {
                let rest = &content[pos..];
                let end = rest.find(|c: char| c == ';' || c.is_ascii_whitespace()).unwrap_or(rest.len());
                Some(&rest[..end])
            }
            None => None,
        };
    }
}

/// ASCII whitespace as the HTML spec defines it.
fn is_ws(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// Index of the first ASCII-case-insensitive occurrence of `needle`.
fn find_ascii_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use encoding_rs::{ISO_8859_2, SHIFT_JIS, WINDOWS_1251};

    #[test]
    fn bom_beats_header_and_meta() {
        let body = b"\xEF\xBB\xBF<meta charset=windows-1251>";
        assert_eq!(choose(body, Some("iso-8859-2")), (UTF_8, EncodingSource::Bom));
    }

    #[test]
    fn header_beats_meta() {
        assert_eq!(choose(b"<meta charset=windows-1251>", Some("ISO-8859-2")), (ISO_8859_2, EncodingSource::Header));
        assert_eq!(choose(b"", Some("\"Shift_JIS\"")), (SHIFT_JIS, EncodingSource::Header));
    }

    #[test]
    fn unknown_header_label_falls_through_to_meta() {
        assert_eq!(choose(b"<meta charset=windows-1251>", Some("nonsense")), (WINDOWS_1251, EncodingSource::Meta));
    }

    #[test]
    fn meta_charset_and_http_equiv() {
        assert_eq!(choose(b"<html><head><meta charset=\"KOI8-R\">", None).1, EncodingSource::Meta);
        let body =
            b"<!-- <meta charset=utf-8> --><meta http-equiv=Content-Type content='text/html; charset=windows-1251'>";
        assert_eq!(choose(body, None), (WINDOWS_1251, EncodingSource::Meta));
    }

    #[test]
    fn content_without_http_equiv_is_ignored() {
        assert_eq!(choose(b"<meta content='text/html; charset=windows-1251'>", None), (UTF_8, EncodingSource::Default));
    }

    #[test]
    fn first_meta_declaration_wins() {
        assert_eq!(choose(b"<meta charset=windows-1251><meta charset=iso-8859-2>", None).0, WINDOWS_1251);
    }

    #[test]
    fn meta_after_first_1024_bytes_is_ignored() {
        let mut body = vec![b' '; 1100];
        body.extend_from_slice(b"<meta charset=windows-1251>");
        assert_eq!(choose(&body, None), (UTF_8, EncodingSource::Default));
    }

    #[test]
    fn meta_utf16_means_utf8_and_x_user_defined_means_windows_1252() {
        assert_eq!(choose(b"<meta charset=utf-16le>", None).0, UTF_8);
        assert_eq!(choose(b"<meta charset=x-user-defined>", None).0, WINDOWS_1252);
    }

    #[test]
    fn charset_from_content_forms() {
        assert_eq!(charset_from_content("text/html; charset=utf-8"), Some("utf-8"));
        assert_eq!(charset_from_content("text/html;CHARSET = \"koi8-r\" ;x"), Some("koi8-r"));
        assert_eq!(charset_from_content("charset='unterminated"), None);
        assert_eq!(charset_from_content("charsetx; charset=latin1 x"), Some("latin1"));
        assert_eq!(charset_from_content("text/html"), None);
        assert_eq!(charset_from_content("charset="), None);
    }
}
