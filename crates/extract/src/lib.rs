//! Link and image extraction from HTML pages.
//!
//! This crate holds one function, [`extract`]: given a page body, its URL and
//! the charset from its `Content-Type` header, it returns the pages the page
//! links to ([`Extracted::links`], for the scheduler's frontier) and the
//! images it shows or links to ([`Extracted::images`], for hashing). The
//! fetcher (`hashscan-fetch`) calls it on a blocking thread for every page it
//! downloads; nothing else in it does I/O.
//!
//! # Decisions a reader may question
//!
//! * **A streaming tokenizer (lol_html), not a DOM.** We need a handful of
//!   attributes, not a tree. lol_html reads the page once, in bounded memory
//!   (its own limiter, [`ExtractLimits::max_parser_memory`], turns a
//!   pathological page into [`ExtractError::ParserMemory`] instead of an
//!   out-of-memory kill), and is the parser Cloudflare runs on untrusted
//!   pages at scale. What a tree would add, such as knowing that an `<img>`
//!   sits in a `<template>` a browser would never render, does not matter for
//!   finding images. lol_html hands attribute values over with character
//!   references undecoded; `htmlize` decodes them with the attribute-value
//!   rules of the HTML tokenizer.
//! * **`<base href>` applies to the whole document.** As in browsers, the
//!   *first* `<base>` with an `href` (resolved against the page URL) is the
//!   base for every URL in the document, also for URLs that come *before*
//!   it: a browser resolves `<a href>` when it is followed and re-fetches an
//!   image when the base changes, so what it ends up with is the first base
//!   applied everywhere. Because lol_html streams, the values are collected
//!   raw during the one pass and resolved once the pass has ended. A base
//!   that fails to parse, or is `data:` or `javascript:`, is ignored (the page
//!   URL stays the base), as the HTML spec says. Later `<base>` elements are
//!   ignored.
//! * **`data:` images are returned as bytes.** An image inlined as a `data:`
//!   URI has no URL to fetch, so the only way to hash it is here, from the
//!   page. [`ImageRef::Data`] carries the decoded payload to the caller,
//!   which hashes it at once and drops it; the bytes never leave the fetch
//!   process (the project's no-retention invariant), and [`ImageRef`]'s
//!   `Debug` prints only the media type and length so they cannot reach a log
//!   by accident. Size caps are enforced while decoding.
//! * **The document's encoding is used for query strings.** URLs are
//!   resolved as the HTML spec says: the path is UTF-8 percent-encoded, the
//!   query is encoded in the page's encoding (a windows-1252 page's `?q=é`
//!   becomes `?q=%E9`), so the crawler requests what a browser would.
//! * **Dropped references are counted, not logged.** [`ExtractStats`] says
//!   how many references were skipped and why, so the fetcher can export
//!   them as metrics without this crate logging anything.
//!
//! Nothing in this crate panics on any input; the property test and the
//! fuzz target in `fuzz/` hold it to that.

#![deny(missing_docs)]

mod charref;
mod charset;
mod data;
mod scan;
mod srcset;

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use encoding_rs::{Encoding, UTF_8};
use url::Url;

pub use charset::EncodingSource;

use crate::data::DataOutcome;
use crate::scan::Target;

/// Caps on what one page may produce, so a hostile or broken page costs a
/// bounded amount of memory and frontier space.
///
/// The defaults fit the fetcher's 5 MiB page cap; a page over a limit still
/// gives a result, with the excess counted in [`ExtractStats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Most links returned per page; later distinct links are counted in
    /// [`ExtractStats::links_over_limit`]. Default 10,000.
    pub max_links: usize,
    /// Most images (URL and `data:` together) returned per page; later
    /// distinct images are counted in [`ExtractStats::images_over_limit`].
    /// Default 5,000.
    pub max_images: usize,
    /// Longest serialized URL kept, in bytes; longer ones are counted in
    /// [`ExtractStats::too_long`]. `data:` URIs are bounded by the two data
    /// limits instead. Default 4,096.
    pub max_url_len: usize,
    /// Largest decoded payload of one `data:` image, in bytes; larger ones
    /// are counted in [`ExtractStats::data_oversized`]. Default 4 MiB.
    pub max_data_bytes: usize,
    /// Most decoded `data:` image bytes per page; images past it are counted
    /// in [`ExtractStats::data_over_budget`]. Default 8 MiB.
    pub max_total_data_bytes: usize,
    /// Memory cap for the HTML parser's own buffers (lol_html's
    /// `MemorySettings`), in bytes. Exceeding it fails the page with
    /// [`ExtractError::ParserMemory`]; it takes extreme nesting or a single
    /// tag of many megabytes. Default 16 MiB.
    pub max_parser_memory: usize,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        Self {
            max_links: 10_000,
            max_images: 5_000,
            max_url_len: 4096,
            max_data_bytes: 4 << 20,
            max_total_data_bytes: 8 << 20,
            max_parser_memory: 16 << 20,
        }
    }
}

/// Where on the page an image reference was found; part of the
/// circumstances the risk score may weigh (an image linked to is not the
/// same as one shown inline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageSource {
    /// `<img src>`.
    Img,
    /// A candidate of `<img srcset>`.
    ImgSrcset,
    /// `<source srcset>` or `<source src>` inside `<picture>`.
    PictureSource,
    /// A lazy-loading attribute: `data-src`, `data-srcset`, `data-lazy-src`,
    /// `data-lazy-srcset`, `data-original`.
    LazyLoad,
    /// `<input type=image src>`.
    InputImage,
    /// `<a href>` or `<area href>` whose path ends in an image extension, or
    /// whose target is a `data:image/…` URI.
    Anchor,
}

/// One image the page shows or links to.
///
/// `Debug` never prints the bytes of a `data:` image, only its media type and
/// length: image content must not reach a log.
#[derive(Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// An image to fetch: absolute http(s) URL, fragment removed.
    Url {
        /// The resolved image URL.
        url: Url,
        /// Where the reference was found.
        source: ImageSource,
    },
    /// An image inlined as a `data:` URI, already decoded. The caller hashes
    /// `bytes` and drops them; they must not be stored, sent or logged.
    Data {
        /// The declared media type, lowercase, without parameters
        /// (`image/png`, `image/svg+xml`). Not sniffed from the bytes.
        media_type: String,
        /// The decoded payload (never empty).
        bytes: Vec<u8>,
        /// Where the reference was found.
        source: ImageSource,
    },
}

impl ImageRef {
    /// Where on the page the reference was found.
    pub fn source(&self) -> ImageSource {
        match self {
            ImageRef::Url { source, .. } | ImageRef::Data { source, .. } => *source,
        }
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Url { url, source } => {
                f.debug_struct("Url").field("url", &url.as_str()).field("source", source).finish()
            }
            ImageRef::Data { media_type, bytes, source } => f
                .debug_struct("Data")
                .field("media_type", media_type)
                .field("len", &bytes.len())
                .field("source", source)
                .finish(),
        }
    }
}

/// Counts of references found but not returned, by reason, plus the `data:`
/// bytes returned; for the fetcher's metrics (a dropped reference is counted,
/// never silently lost).
///
/// The `*_over_limit` counts are of distinct URLs; every other count is of
/// occurrences in the page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Links seen again after their first occurrence.
    pub duplicate_links: usize,
    /// Images (URL or identical `data:` URI) seen again.
    pub duplicate_images: usize,
    /// Distinct links past [`ExtractLimits::max_links`].
    pub links_over_limit: usize,
    /// Distinct images past [`ExtractLimits::max_images`].
    pub images_over_limit: usize,
    /// Attributes that were empty or only whitespace.
    pub empty: usize,
    /// Values that are not a URL even relative to the base.
    pub invalid: usize,
    /// URLs longer than [`ExtractLimits::max_url_len`].
    pub too_long: usize,
    /// URLs with a scheme other than http(s) or data: `javascript:`,
    /// `mailto:`, `tel:`, `ftp:`, `blob:` …
    pub skipped_scheme: usize,
    /// Links back to the page itself, such as fragment-only `href="#top"`.
    pub self_links: usize,
    /// `data:` URIs of a type other than `image/*`.
    pub data_not_image: usize,
    /// `data:` URIs that cannot be parsed or decoded, or have no payload.
    pub data_malformed: usize,
    /// `data:` images larger than [`ExtractLimits::max_data_bytes`].
    pub data_oversized: usize,
    /// `data:` images that did not fit [`ExtractLimits::max_total_data_bytes`].
    pub data_over_budget: usize,
    /// Decoded `data:` image bytes returned in [`Extracted::images`].
    pub data_bytes: usize,
}

/// What one page yielded.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// Pages to consider crawling: absolute http(s) URLs, fragments removed,
    /// de-duplicated, in first-seen order.
    pub links: Vec<Url>,
    /// Images to hash, de-duplicated, in first-seen order.
    pub images: Vec<ImageRef>,
    /// The URL relative references were resolved against: the page URL, or
    /// the first `<base href>`.
    pub base_url: Url,
    /// Name of the encoding the body was decoded with (`UTF-8`,
    /// `windows-1252` …).
    pub encoding: &'static str,
    /// Where that encoding came from.
    pub encoding_source: EncodingSource,
    /// What was found but not returned, and why.
    pub stats: ExtractStats,
}

/// Why a page could not be read at all. Dropped references are not errors;
/// they are counted in [`ExtractStats`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The HTML parser needed more memory than
    /// [`ExtractLimits::max_parser_memory`] (extreme nesting, or a single tag
    /// of many megabytes).
    #[error("HTML parser exceeded its memory limit of {limit} bytes")]
    ParserMemory {
        /// The limit in force.
        limit: usize,
    },
    /// Any other failure reported by the HTML parser.
    #[error("HTML parser failed: {message}")]
    Parser {
        /// lol_html's description of the failure.
        message: String,
    },
}

impl ExtractError {
    /// Maps a lol_html error, given the memory limit the parser ran with.
    fn from_lol(err: lol_html::errors::RewritingError, limit: usize) -> Self {
        use lol_html::errors::RewritingError;
        match err {
            RewritingError::MemoryLimitExceeded(_) => ExtractError::ParserMemory { limit },
            // Our own error, from the nested `<noscript>` pass.
            RewritingError::ContentHandlerError(inner) => match inner.downcast::<ExtractError>() {
                Ok(ours) => *ours,
                Err(other) => ExtractError::Parser { message: other.to_string() },
            },
            other => ExtractError::Parser { message: other.to_string() },
        }
    }
}

/// Extracts the links and images of one HTML page.
///
/// * `body`: the page as received (any bytes; invalid input is tolerated).
/// * `page_url`: where the page was fetched from (after redirects); the base
///   for relative URLs unless the page has a `<base href>`.
/// * `charset`: the `charset` parameter of the `Content-Type` header, if any.
///   A BOM overrides it; without either, a `<meta>` declaration in the first
///   1024 bytes is used, else UTF-8.
/// * `limits`: caps on the result; see [`ExtractLimits`].
///
/// Fails only if the HTML parser itself gives up ([`ExtractError`]); every
/// skipped reference is counted in [`Extracted::stats`] instead.
pub fn extract(
    body: &[u8],
    page_url: &Url,
    charset: Option<&str>,
    limits: &ExtractLimits,
) -> Result<Extracted, ExtractError> {
    let (encoding, encoding_source) = charset::choose(body, charset);
    // `decode` repeats the BOM check and reports the encoding really used.
    let (text, encoding, _had_errors) = encoding.decode(body);
    let found = scan::scan(&text, limits.max_parser_memory)?;
    drop(text);

    let mut page = page_url.clone();
    page.set_fragment(None);
    let resolver = Resolver::new(&page, found.base_href.as_deref(), encoding);
    let mut acc = Accumulator::new(limits, page);
    for raw in &found.refs {
        acc.add(&resolver, raw.target, &raw.value);
    }
    Ok(Extracted {
        links: acc.links,
        images: acc.images,
        base_url: resolver.base,
        encoding: encoding.name(),
        encoding_source,
        stats: acc.stats,
    })
}

/// Resolves raw values against the document's base URL, with the document's
/// encoding for query strings.
struct Resolver {
    base: Url,
    /// `None` for UTF-8 documents (the URL parser's default).
    query_encoding: Option<&'static Encoding>,
}

impl Resolver {
    fn new(page: &Url, base_href: Option<&str>, encoding: &'static Encoding) -> Self {
        let query_encoding = Some(encoding.output_encoding()).filter(|e| *e != UTF_8);
        let mut resolver = Resolver { base: page.clone(), query_encoding };
        if let Some(href) = base_href {
            // HTML "set the frozen base URL": parse against the page URL; a
            // failure, data: or javascript: leaves the page URL as the base.
            if let Ok(base) = resolver.parse(href) {
                if base.scheme() != "data" && base.scheme() != "javascript" {
                    resolver.base = base;
                }
            }
        }
        resolver
    }

    fn parse(&self, value: &str) -> Result<Url, url::ParseError> {
        match self.query_encoding {
            None => self.base.join(value),
            Some(enc) => {
                let encode: &dyn Fn(&str) -> Cow<'_, [u8]> = &|s| enc.encode(s).0;
                Url::options().base_url(Some(&self.base)).encoding_override(Some(encode)).parse(value)
            }
        }
    }
}

/// Builds the result: classifies, de-duplicates and caps references.
struct Accumulator<'a> {
    limits: &'a ExtractLimits,
    page: Url,
    links: Vec<Url>,
    images: Vec<ImageRef>,
    seen_links: HashSet<Url>,
    seen_images: HashSet<Url>,
    /// `data:` URIs already handled, by their text (trimmed).
    seen_data: HashSet<String>,
    stats: ExtractStats,
}

/// The extensions that make an `<a href>` an image rather than a page.
const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "gif", "webp", "bmp", "avif"];

/// Whether the last path segment of `url` ends in an image extension
/// (ASCII case-insensitive; the query does not count).
fn has_image_extension(url: &Url) -> bool {
    let path = url.path();
    let segment = path.rsplit('/').next().unwrap_or(path);
    segment
        .rsplit_once('.')
        .is_some_and(|(_, ext)| IMAGE_EXTENSIONS.iter().any(|known| known.eq_ignore_ascii_case(ext)))
}

/// Trims what the URL parser would ignore at both ends, to tell an empty
/// attribute from a relative URL.
fn trim_url(value: &str) -> &str {
    value.trim_matches(|c: char| c <= ' ')
}

impl<'a> Accumulator<'a> {
    fn new(limits: &'a ExtractLimits, page: Url) -> Self {
        Accumulator {
            limits,
            page,
            links: Vec::new(),
            images: Vec::new(),
            seen_links: HashSet::new(),
            seen_images: HashSet::new(),
            seen_data: HashSet::new(),
            stats: ExtractStats::default(),
        }
    }

    fn add(&mut self, resolver: &Resolver, target: Target, value: &str) {
        let value = trim_url(value);
        if value.is_empty() {
            self.stats.empty += 1;
            return;
        }
        let source = match target {
            Target::Link => ImageSource::Anchor,
            Target::Image(source) => source,
        };
        if data::is_data_uri(value) {
            self.add_data(value, source);
            return;
        }
        let Ok(mut url) = resolver.parse(value) else {
            self.stats.invalid += 1;
            return;
        };
        match url.scheme() {
            "http" | "https" => {}
            // A data: URI the quick check missed (e.g. a tab inside "data").
            "data" => return self.add_data(url.as_str(), source),
            _ => {
                self.stats.skipped_scheme += 1;
                return;
            }
        }
        url.set_fragment(None);
        if url.as_str().len() > self.limits.max_url_len {
            self.stats.too_long += 1;
            return;
        }
        match target {
            Target::Link if url == self.page => self.stats.self_links += 1,
            Target::Link if !has_image_extension(&url) => self.add_link(url),
            _ => self.add_image_url(url, source),
        }
    }

    fn add_link(&mut self, url: Url) {
        if self.seen_links.contains(&url) {
            self.stats.duplicate_links += 1;
        } else if self.links.len() >= self.limits.max_links {
            self.stats.links_over_limit += 1;
            self.seen_links.insert(url);
        } else {
            self.seen_links.insert(url.clone());
            self.links.push(url);
        }
    }

    fn add_image_url(&mut self, url: Url, source: ImageSource) {
        if self.seen_images.contains(&url) {
            self.stats.duplicate_images += 1;
        } else if self.images.len() >= self.limits.max_images {
            self.stats.images_over_limit += 1;
            self.seen_images.insert(url);
        } else {
            self.seen_images.insert(url.clone());
            self.images.push(ImageRef::Url { url, source });
        }
    }

    fn add_data(&mut self, uri: &str, source: ImageSource) {
        if self.seen_data.contains(uri) {
            self.stats.duplicate_images += 1;
            return;
        }
        self.seen_data.insert(uri.to_string());
        if self.images.len() >= self.limits.max_images {
            self.stats.images_over_limit += 1;
            return;
        }
        let budget_left = self.limits.max_total_data_bytes.saturating_sub(self.stats.data_bytes);
        match data::decode(uri, self.limits.max_data_bytes, budget_left) {
            DataOutcome::Image { media_type, bytes } => {
                self.stats.data_bytes += bytes.len();
                self.images.push(ImageRef::Data { media_type, bytes, source });
            }
            DataOutcome::NotImage => self.stats.data_not_image += 1,
            DataOutcome::Malformed => self.stats.data_malformed += 1,
            DataOutcome::Oversized => self.stats.data_oversized += 1,
            DataOutcome::OverBudget => self.stats.data_over_budget += 1,
        }
    }
}
