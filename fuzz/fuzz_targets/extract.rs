//! Fuzz target: `hashscan_extract::extract` must never panic, whatever the
//! bytes, and must respect its limits.
//!
//! The first byte picks the charset the "HTTP header" claims (none, UTF-8, a
//! single-byte legacy encoding, a multi-byte one, UTF-16, or a bogus label)
//! and whether small limits are used; the rest is the page body.

#![no_main]

use hashscan_extract::{extract, ExtractLimits, ImageRef};
use libfuzzer_sys::fuzz_target;
use url::Url;

const CHARSETS: [Option<&str>; 8] = [
    None,
    Some("utf-8"),
    Some("windows-1252"),
    Some("shift_jis"),
    Some("utf-16le"),
    Some("gb18030"),
    Some("bogus"),
    None,
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let charset = CHARSETS[usize::from(first & 7)];
    let limits = if first & 8 == 0 {
        ExtractLimits::default()
    } else {
        ExtractLimits {
            max_links: 4,
            max_images: 4,
            max_url_len: 80,
            max_data_bytes: 32,
            max_total_data_bytes: 48,
            max_parser_memory: 32 << 10,
        }
    };
    let page = Url::parse("https://fuzz.example/dir/page.html?q=1").expect("static URL");
    if let Ok(ex) = extract(body, &page, charset, &limits) {
        assert!(ex.links.len() <= limits.max_links);
        assert!(ex.images.len() <= limits.max_images);
        assert!(ex.stats.data_bytes <= limits.max_total_data_bytes);
        for link in &ex.links {
            assert!(matches!(link.scheme(), "http" | "https"));
            assert!(link.fragment().is_none());
            assert!(link.as_str().len() <= limits.max_url_len);
        }
        for image in &ex.images {
            match image {
                ImageRef::Url { url, .. } => assert!(matches!(url.scheme(), "http" | "https")),
                ImageRef::Data { media_type, bytes, .. } => {
                    assert!(media_type.starts_with("image/"));
                    assert!(!bytes.is_empty() && bytes.len() <= limits.max_data_bytes);
                }
            }
        }
    }
});
