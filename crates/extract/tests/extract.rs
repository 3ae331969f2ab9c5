//! Behaviour of `hashscan_extract::extract` through its public API.

use hashscan_extract::{extract, EncodingSource, ExtractError, ExtractLimits, Extracted, ImageRef, ImageSource};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use url::Url;

const PAGE: &str = "https://example.com/a/b/page.html";

fn page() -> Url {
    Url::parse(PAGE).unwrap()
}

fn run(html: &str) -> Extracted {
    extract(html.as_bytes(), &page(), None, &ExtractLimits::default()).unwrap()
}

fn links(ex: &Extracted) -> Vec<&str> {
    ex.links.iter().map(Url::as_str).collect()
}

fn image_urls(ex: &Extracted) -> Vec<&str> {
    ex.images
        .iter()
        .filter_map(|i| match i {
            ImageRef::Url { url, .. } => Some(url.as_str()),
            ImageRef::Data { .. } => None,
        })
        .collect()
}

fn data_images(ex: &Extracted) -> Vec<(&str, &[u8])> {
    ex.images
        .iter()
        .filter_map(|i| match i {
            ImageRef::Data { media_type, bytes, .. } => Some((media_type.as_str(), bytes.as_slice())),
            ImageRef::Url { .. } => None,
        })
        .collect()
}

// ---------------------------------------------------------------- resolution

#[test]
fn relative_urls_resolve_against_the_page_url() {
    let ex = run(r#"<a href="../x">1</a><a href="/x">2</a><a href="//other.example/x">3</a>
        <a href="?q=1">4</a><a href="y">5</a><a href="HTTP://Example.COM:443/z">6</a>"#);
    assert_eq!(
        links(&ex),
        [
            "https://example.com/a/x",
            "https://example.com/x",
            "https://other.example/x",
            "https://example.com/a/b/page.html?q=1",
            "https://example.com/a/b/y",
            "http://example.com:443/z",
        ]
    );
    assert_eq!(ex.base_url.as_str(), PAGE);
}

#[test]
fn absolute_base_href_applies_to_every_url_also_before_it() {
    let ex = run(r#"<a href="early">0</a><head><base href="https://cdn.example/root/"></head>
        <a href="x">1</a><img src="/i.png">"#);
    assert_eq!(links(&ex), ["https://cdn.example/root/early", "https://cdn.example/root/x"]);
    assert_eq!(image_urls(&ex), ["https://cdn.example/i.png"]);
    assert_eq!(ex.base_url.as_str(), "https://cdn.example/root/");
}

#[test]
fn relative_base_href_resolves_against_the_page_url() {
    let ex = run(r#"<base href="../c/"><a href="x">1</a>"#);
    assert_eq!(links(&ex), ["https://example.com/a/c/x"]);
}

#[test]
fn second_base_href_is_ignored() {
    let ex = run(r#"<base target="_blank"><base href="/one/"><base href="/two/"><a href="x">1</a>"#);
    assert_eq!(links(&ex), ["https://example.com/one/x"]);
}

#[test]
fn javascript_or_unparsable_base_href_keeps_the_page_url() {
    let ex = run(r#"<base href="javascript:alert(1)"><a href="x">1</a>"#);
    assert_eq!(links(&ex), ["https://example.com/a/b/x"]);
    let ex = run(r#"<base href="http://[broken/"><a href="x">1</a>"#);
    assert_eq!(links(&ex), ["https://example.com/a/b/x"]);
}

#[test]
fn fragments_are_stripped_and_fragment_only_links_skipped() {
    let ex = run(r##"<a href="#top">1</a><a href="page.html#x">2</a><a href="other.html#sec">3</a>
        <a href="#">4</a>"##);
    assert_eq!(links(&ex), ["https://example.com/a/b/other.html"]);
    assert_eq!(ex.stats.self_links, 3);
}

#[test]
fn javascript_mailto_tel_and_other_schemes_are_skipped() {
    let ex = run(r#"<a href="javascript:void(0)">1</a><a href="mailto:a@example.com">2</a>
        <a href="tel:+123">3</a><a href="ftp://example.com/f">4</a><a href=" JavaScript:x">5</a>
        <img src="blob:https://example.com/1"><a href="/ok">ok</a>"#);
    assert_eq!(links(&ex), ["https://example.com/ok"]);
    assert!(ex.images.is_empty());
    assert_eq!(ex.stats.skipped_scheme, 6);
}

#[test]
fn empty_hrefs_are_skipped() {
    let ex = run(r#"<a href="">1</a><a href="   ">2</a><a>3</a><img src="">"#);
    assert!(ex.links.is_empty() && ex.images.is_empty());
    assert_eq!(ex.stats.empty, 3);
}

#[test]
fn character_references_in_attributes_are_decoded() {
    let ex = run(r#"<a href="/s?a=1&amp;b=2&#38;c=3">1</a><a href="/t?x=1&copy=2">2</a>"#);
    assert_eq!(links(&ex), ["https://example.com/s?a=1&b=2&c=3", "https://example.com/t?x=1&copy=2"]);
}

#[test]
fn area_href_is_a_link_and_uppercase_markup_works() {
    let ex = run(r#"<MAP><AREA HREF="/area"></MAP><A HREF='/upper'>x</A><IMG SRC=/i.gif>"#);
    assert_eq!(links(&ex), ["https://example.com/area", "https://example.com/upper"]);
    assert_eq!(image_urls(&ex), ["https://example.com/i.gif"]);
}

#[test]
fn overlong_urls_are_skipped_and_counted() {
    let limits = ExtractLimits { max_url_len: 60, ..ExtractLimits::default() };
    let html = format!(r#"<a href="/short">1</a><a href="/{}">2</a>"#, "x".repeat(100));
    let ex = extract(html.as_bytes(), &page(), None, &limits).unwrap();
    assert_eq!(links(&ex), ["https://example.com/short"]);
    assert_eq!(ex.stats.too_long, 1);
}

#[test]
fn invalid_urls_are_counted() {
    let ex = run(r#"<a href="http://exa mple.com/">1</a><a href="https://[::1">2</a><a href="/ok">3</a>"#);
    assert_eq!(links(&ex), ["https://example.com/ok"]);
    assert_eq!(ex.stats.invalid, 2);
}

// ---------------------------------------------------------------- images

#[test]
fn img_src_and_srcset_with_descriptors_and_commas_in_urls() {
    let ex = run(r#"<img src="a.jpg" srcset="/w_300,h_200/b.jpg 300w, /w_600,h_400/b.jpg 600w,c.jpg 2x">"#);
    assert_eq!(
        image_urls(&ex),
        [
            "https://example.com/a/b/a.jpg",
            "https://example.com/w_300,h_200/b.jpg",
            "https://example.com/w_600,h_400/b.jpg",
            "https://example.com/a/b/c.jpg",
        ]
    );
    assert_eq!(ex.images[0].source(), ImageSource::Img);
    assert_eq!(ex.images[1].source(), ImageSource::ImgSrcset);
}

#[test]
fn picture_sources_are_images_but_video_sources_are_not() {
    let ex = run(r#"<picture><source srcset="/p.avif 1x, /p2.avif 2x" type="image/avif">
        <source src="/legacy.webp"><img src="/p.jpg"></picture>
        <video><source src="/movie.mp4"></video><audio><source src="/a.mp3"></audio>"#);
    assert_eq!(
        image_urls(&ex),
        [
            "https://example.com/p.avif",
            "https://example.com/p2.avif",
            "https://example.com/legacy.webp",
            "https://example.com/p.jpg",
        ]
    );
    assert!(ex.images[..3].iter().all(|i| i.source() == ImageSource::PictureSource));
}

#[test]
fn lazy_load_attributes_are_images() {
    let ex = run(r#"<img src="placeholder.gif" data-src="/real.jpg" data-srcset="/r1.jpg 1x, /r2.jpg 2x">
        <img data-lazy-src="/wp.jpg"><img data-original="/jq.jpg">"#);
    assert_eq!(
        image_urls(&ex),
        [
            "https://example.com/a/b/placeholder.gif",
            "https://example.com/real.jpg",
            "https://example.com/r1.jpg",
            "https://example.com/r2.jpg",
            "https://example.com/wp.jpg",
            "https://example.com/jq.jpg",
        ]
    );
    assert_eq!(ex.images[1].source(), ImageSource::LazyLoad);
}

#[test]
fn input_type_image_src_is_an_image() {
    let ex = run(r#"<input type="IMAGE" src="/btn.png"><input type="text" src="/not.png">"#);
    assert_eq!(image_urls(&ex), ["https://example.com/btn.png"]);
    assert_eq!(ex.images[0].source(), ImageSource::InputImage);
}

#[test]
fn anchor_to_image_goes_to_images_not_links() {
    let ex = run(r#"<a href="/full/photo.JPG?w=1200#zoom">1</a><a href="/x.webp">2</a><a href="/y.avif">3</a>
        <a href="/doc.jpg.html">4</a><a href="/jpg">5</a><a href="/gallery/">6</a><a href="/q?f=x.png">7</a>"#);
    assert_eq!(
        image_urls(&ex),
        ["https://example.com/full/photo.JPG?w=1200", "https://example.com/x.webp", "https://example.com/y.avif"]
    );
    assert!(ex.images.iter().all(|i| i.source() == ImageSource::Anchor));
    assert_eq!(
        links(&ex),
        [
            "https://example.com/doc.jpg.html",
            "https://example.com/jpg",
            "https://example.com/gallery/",
            "https://example.com/q?f=x.png",
        ]
    );
}

#[test]
fn noscript_fallback_images_are_found_in_document_order() {
    let ex = run(r#"<img data-src="/lazy.jpg"><noscript><img src="/lazy.jpg"><img src="/only.jpg">
        <a href="/ns-link">x</a><base href="/ignored/"></noscript><img src="/after.jpg"><a href="rel">y</a>"#);
    assert_eq!(
        image_urls(&ex),
        ["https://example.com/lazy.jpg", "https://example.com/only.jpg", "https://example.com/after.jpg"]
    );
    assert_eq!(links(&ex), ["https://example.com/ns-link", "https://example.com/a/b/rel"]);
}

#[test]
fn unclosed_noscript_is_parsed_to_the_end() {
    let ex = run(r#"<noscript><img src="/in.jpg"><a href="/in">x</a>"#);
    assert_eq!(image_urls(&ex), ["https://example.com/in.jpg"]);
    assert_eq!(links(&ex), ["https://example.com/in"]);
}

// ---------------------------------------------------------------- data: URIs

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

#[test]
fn base64_png_data_uri_is_decoded() {
    let ex = run(r#"<img src="data:image/png;base64,iVBORw0KGgo=">"#);
    assert_eq!(data_images(&ex), [("image/png", PNG_SIGNATURE)]);
    assert_eq!(ex.stats.data_bytes, 8);
}

#[test]
fn percent_encoded_data_uri_is_decoded() {
    let ex = run(r#"<img src="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'%2F%3E">"#);
    assert_eq!(data_images(&ex), [("image/svg+xml", &b"<svg xmlns='http://www.w3.org/2000/svg'/>"[..])]);
}

#[test]
fn data_uri_in_srcset_and_anchor_is_decoded() {
    let ex = run(r#"<img srcset="data:image/png;base64,iVBORw0KGgo= 1x, /big.png 2x">
        <a href="data:image/gif;base64,R0lGODlh">gif</a>"#);
    assert_eq!(data_images(&ex), [("image/png", PNG_SIGNATURE), ("image/gif", &b"GIF89a"[..])]);
    assert_eq!(image_urls(&ex), ["https://example.com/big.png"]);
    assert_eq!(ex.images[2].source(), ImageSource::Anchor);
}

#[test]
fn non_image_data_uri_is_ignored_and_counted() {
    let ex = run(r#"<img src="data:text/html,<script>x</script>"><a href="data:,plain">t</a>"#);
    assert!(ex.images.is_empty() && ex.links.is_empty());
    assert_eq!(ex.stats.data_not_image, 2);
}

#[test]
fn malformed_data_uri_is_counted() {
    let ex = run(r#"<img src="data:image/png;base64"><img src="data:image/png;base64,a">
        <img src="data:image/png;base64,!!!!"><img src="data:image/png,">"#);
    assert!(ex.images.is_empty());
    assert_eq!(ex.stats.data_malformed, 4);
}

#[test]
fn oversized_data_uri_is_skipped_and_page_budget_is_enforced() {
    let limits = ExtractLimits { max_data_bytes: 10, max_total_data_bytes: 15, ..ExtractLimits::default() };
    let html = r#"<img src="data:image/png,0123456789X">
        <img src="data:image/png,0123456789"><img src="data:image/png,abcdefghij"><img src="data:image/png,abcde">"#;
    let ex = extract(html.as_bytes(), &page(), None, &limits).unwrap();
    assert_eq!(data_images(&ex), [("image/png", &b"0123456789"[..]), ("image/png", &b"abcde"[..])]);
    assert_eq!(ex.stats.data_oversized, 1);
    assert_eq!(ex.stats.data_over_budget, 1);
    assert_eq!(ex.stats.data_bytes, 15);
}

#[test]
fn image_ref_debug_never_prints_data_bytes() {
    let ex = run(r#"<img src="data:image/png;base64,iVBORw0KGgo=">"#);
    let shown = format!("{:?} {:#?} {:?}", ex.images[0], ex.images, ex);
    assert!(shown.contains("image/png") && shown.contains("len: 8"), "{shown}");
    assert!(!shown.contains("137, 80") && !shown.contains("bytes: ["), "{shown}");
}

// ---------------------------------------------------------------- charsets

#[test]
fn header_charset_windows_1252_path_is_utf8_and_query_is_1252() {
    let body = b"<a href=\"/caf\xe9/men\xfc?q=\xe9\">x</a>";
    let ex = extract(body, &page(), Some("windows-1252"), &ExtractLimits::default()).unwrap();
    assert_eq!(links(&ex), ["https://example.com/caf%C3%A9/men%C3%BC?q=%E9"]);
    assert_eq!((ex.encoding, ex.encoding_source), ("windows-1252", EncodingSource::Header));
}

#[test]
fn meta_charset_iso_8859_1_is_used_without_header() {
    let body = b"<html><head><meta charset=\"ISO-8859-1\"></head><a href=\"/\xe9t\xe9\">x</a>";
    let ex = extract(body, &page(), None, &ExtractLimits::default()).unwrap();
    assert_eq!(links(&ex), ["https://example.com/%C3%A9t%C3%A9"]);
    assert_eq!((ex.encoding, ex.encoding_source), ("windows-1252", EncodingSource::Meta));
}

#[test]
fn header_charset_wins_over_meta() {
    let body = "<meta charset=windows-1251><a href=\"/é\">x</a>".as_bytes();
    let ex = extract(body, &page(), Some("utf-8"), &ExtractLimits::default()).unwrap();
    assert_eq!(links(&ex), ["https://example.com/%C3%A9"]);
    assert_eq!(ex.encoding_source, EncodingSource::Header);
}

#[test]
fn meta_http_equiv_content_type_is_used() {
    let body = b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1251\"><a href=\"/\xe4\">x</a>";
    let ex = extract(body, &page(), None, &ExtractLimits::default()).unwrap();
    // 0xE4 is Cyrillic small letter de (U+0434) in windows-1251.
    assert_eq!(links(&ex), ["https://example.com/%D0%B4"]);
}

#[test]
fn utf8_bom_wins_over_header() {
    let body = "\u{feff}<a href=\"/é\">x</a>".as_bytes();
    let ex = extract(body, &page(), Some("iso-8859-1"), &ExtractLimits::default()).unwrap();
    assert_eq!(links(&ex), ["https://example.com/%C3%A9"]);
    assert_eq!(ex.encoding_source, EncodingSource::Bom);
}

#[test]
fn invalid_utf8_without_declaration_becomes_replacement_characters() {
    let body = b"<a href=\"/bad\xff\xfe\">x</a><a href=\"/good\">y</a>";
    let ex = extract(body, &page(), None, &ExtractLimits::default()).unwrap();
    assert_eq!(links(&ex), ["https://example.com/bad%EF%BF%BD%EF%BF%BD", "https://example.com/good"]);
    assert_eq!((ex.encoding, ex.encoding_source), ("UTF-8", EncodingSource::Default));
}

#[test]
fn utf16_body_with_bom_is_decoded() {
    let text = "<a href=\"/utf16\">x</a>";
    let mut body = vec![0xFF, 0xFE];
    body.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let ex = extract(&body, &page(), None, &ExtractLimits::default()).unwrap();
    assert_eq!(links(&ex), ["https://example.com/utf16"]);
}

// ---------------------------------------------------------------- dedup and limits

#[test]
fn duplicates_are_removed_keeping_first_seen_order() {
    let ex = run(r#"<a href="/b">1</a><a href="/a">2</a><a href="/b#frag">3</a><a href="https://example.com/a">4</a>
        <img src="/i2.png"><img src="/i1.png" srcset="/i2.png 2x"><a href="/i1.png">5</a>
        <img src="data:image/gif;base64,R0lGODlh"><img src="data:image/gif;base64,R0lGODlh">"#);
    assert_eq!(links(&ex), ["https://example.com/b", "https://example.com/a"]);
    assert_eq!(image_urls(&ex), ["https://example.com/i2.png", "https://example.com/i1.png"]);
    assert_eq!(data_images(&ex).len(), 1);
    assert_eq!(ex.stats.duplicate_links, 2);
    assert_eq!(ex.stats.duplicate_images, 3);
}

#[test]
fn link_and_image_limits_keep_the_first_and_count_the_rest() {
    let limits = ExtractLimits { max_links: 3, max_images: 2, ..ExtractLimits::default() };
    let mut html = String::new();
    for i in 0..10 {
        html.push_str(&format!(r#"<a href="/p{i}">p</a><img src="/i{i}.png"><a href="/p{i}">again</a>"#));
    }
    html.push_str(r#"<img src="data:image/png,xyz">"#);
    let ex = extract(html.as_bytes(), &page(), None, &limits).unwrap();
    assert_eq!(links(&ex), ["https://example.com/p0", "https://example.com/p1", "https://example.com/p2"]);
    assert_eq!(image_urls(&ex), ["https://example.com/i0.png", "https://example.com/i1.png"]);
    assert_eq!(ex.stats.links_over_limit, 7);
    assert_eq!(ex.stats.images_over_limit, 9);
    assert_eq!(ex.stats.duplicate_links, 10);
}

// ---------------------------------------------------------------- robustness

#[test]
fn broken_html_gives_a_result_not_a_panic() {
    let cases: &[&[u8]] = &[
        b"<html><body><div><a href=/one>unclosed <img src=/i.png <a href=/two>",
        b"<a href=\"/unterminated",
        b"<a href='/x'</a><img src=/y.png/>",
        b"\x00\x01<a\x00 href=\"/n\x00ul\">\x00</a>",
        b"\xff\xfe\xfd<<<>>>&&&;;;<img src=\"/garbage\xc3\x28.png\">",
        b"<select><xmp><script>\"use strict\";</script></select><a href=/after>",
        b"<!-- <a href=/commented> --><a href=/real>",
        b"<script>document.write('<a href=/in-script>')</script><a href=/outside>",
        b"<svg><a href=/svg-link></a><image href=/svg.png /></svg>",
        b"</a></img></base><base><base href>",
        b"",
    ];
    for html in cases {
        let ex = extract(html, &page(), None, &ExtractLimits::default());
        assert!(ex.is_ok(), "{:?} on {:?}", ex.err(), String::from_utf8_lossy(html));
    }
    let ex = run("<html><body><div><a href=/one>unclosed <img src=/i.png <a href=/two>");
    assert_eq!(links(&ex), ["https://example.com/one"]);
    let ex = run("<!-- <a href=/commented> --><a href=/real>");
    assert_eq!(links(&ex), ["https://example.com/real"]);
    let ex = run("<script>document.write('<a href=/in-script>')</script><a href=/outside>");
    assert_eq!(links(&ex), ["https://example.com/outside"]);
}

#[test]
fn huge_attribute_is_handled() {
    let html = format!(r#"<a href="/{}">x</a><a href="/after">y</a>"#, "z".repeat(3 << 20));
    let ex = run(&html);
    assert_eq!(links(&ex), ["https://example.com/after"]);
    assert_eq!(ex.stats.too_long, 1);
}

#[test]
fn parser_memory_limit_gives_a_typed_error() {
    let limits = ExtractLimits { max_parser_memory: 16 << 10, ..ExtractLimits::default() };
    let html = "<div>".repeat(100_000);
    match extract(html.as_bytes(), &page(), None, &limits) {
        Err(e @ ExtractError::ParserMemory { limit }) => {
            assert_eq!(limit, 16 << 10);
            assert!(e.to_string().contains("memory limit"), "{e}");
        }
        other => panic!("expected ParserMemory, got {other:?}"),
    }
    // A limit smaller than lol_html's preallocation is an error, not a panic.
    let tiny = ExtractLimits { max_parser_memory: 0, ..ExtractLimits::default() };
    let _ = extract(b"<a href=/x>", &page(), None, &tiny);
}

#[test]
fn deep_nesting_fits_the_default_parser_memory() {
    let html = format!("{}<a href=/deep>x</a>", "<div><span>".repeat(50_000));
    let ex = run(&html);
    assert_eq!(links(&ex), ["https://example.com/deep"]);
}

/// Fragments that make random input look like HTML often enough to reach
/// every handler.
const TOKENS: &[&str] = &[
    "<a href=\"",
    "<img src=",
    "<img srcset=\"",
    "<picture><source srcset='",
    "<base href=",
    "<meta charset=",
    "<input type=image src=",
    "<area href=",
    "data:image/png;base64,",
    "data:image/svg+xml,%3C",
    "data:text/plain,",
    " 1x, ",
    " 300w,",
    ",",
    "\"",
    "'",
    ">",
    "<",
    "</a>",
    "&amp;",
    "&#x",
    "&#",
    ";",
    "../",
    "//",
    "?q=",
    "#",
    "javascript:",
    "http://",
    "https://h.example/",
    "\u{0}",
    "é",
    "<!--",
    "-->",
    "<script>",
    "</script>",
    "<select><xmp>",
    "=",
    " ",
];

#[test]
fn extract_never_panics_on_random_input() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x6861_7368_7363_616e);
    let charsets = [None, Some("utf-8"), Some("windows-1252"), Some("shift_jis"), Some("utf-16le"), Some("bogus")];
    let small = ExtractLimits {
        max_links: 5,
        max_images: 5,
        max_url_len: 64,
        max_data_bytes: 16,
        max_total_data_bytes: 32,
        max_parser_memory: 64 << 10,
    };
    for round in 0..3000 {
        let len = rng.random_range(0..600);
        let mut body = Vec::with_capacity(len);
        while body.len() < len {
            if rng.random_bool(0.5) {
                body.extend_from_slice(TOKENS[rng.random_range(0..TOKENS.len())].as_bytes());
            } else {
                body.push(rng.random());
            }
        }
        let charset = charsets[round % charsets.len()];
        let limits = if round % 2 == 0 { ExtractLimits::default() } else { small.clone() };
        if let Ok(ex) = extract(&body, &page(), charset, &limits) {
            assert!(ex.links.len() <= limits.max_links && ex.images.len() <= limits.max_images);
            assert!(ex.stats.data_bytes <= limits.max_total_data_bytes);
            for link in &ex.links {
                assert!(matches!(link.scheme(), "http" | "https") && link.fragment().is_none());
                assert!(link.as_str().len() <= limits.max_url_len);
            }
        }
    }
}
