//! The one pass over the HTML: collects raw attribute values, unresolved.
//!
//! Values are kept as written (character references decoded) and resolved
//! only after the whole document has been seen, because the first
//! `<base href>` applies to every URL in the document, also to those before
//! it (see the crate docs).
//!
//! `<noscript>` content is raw text to lol_html (as to a browser running
//! scripts), but a crawler is a client without scripts, and lazy-loading
//! pages put their real `<img>` there. So the text of each `<noscript>` is
//! parsed again as a fragment, in place, with the same handlers (bar
//! `<base>` and `<noscript>` itself), holding at most the parser memory
//! limit of it.

use std::cell::RefCell;

use lol_html::html_content::Element;
use lol_html::{element, text, HtmlRewriter, MemorySettings, Settings};

use crate::charref::decode_attr;
use crate::srcset::candidate_urls;
use crate::{ExtractError, ImageSource};

/// What a raw value was found as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A hyperlink (`<a href>`, `<area href>`): a page, or an image if it
    /// looks like one.
    Link,
    /// An image reference from the given place.
    Image(ImageSource),
}

/// One attribute value (or one `srcset` candidate), not yet resolved.
#[derive(Debug)]
pub(crate) struct RawRef {
    pub target: Target,
    pub value: String,
}

/// Everything the pass found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// References in document order.
    pub refs: Vec<RawRef>,
    /// The `href` of the first `<base>` element that has one.
    pub base_href: Option<String>,
}

impl Scan {
    fn push(&mut self, target: Target, value: String) {
        self.refs.push(RawRef { target, value });
    }

    fn push_srcset(&mut self, source: ImageSource, value: &str) {
        for url in candidate_urls(value) {
            self.push(Target::Image(source), url.to_string());
        }
    }
}

/// Reads an attribute with its character references decoded.
fn attr<H: lol_html::HandlerTypes>(el: &Element<'_, '_, H>, name: &str) -> Option<String> {
    let raw = el.get_attribute(name)?;
    Some(match decode_attr(&raw) {
        std::borrow::Cow::Borrowed(_) => raw,
        std::borrow::Cow::Owned(decoded) => decoded,
    })
}

/// Lazy-loading attributes on `<img>` holding one URL (lazysizes, lozad,
/// jQuery lazyload, WordPress).
const LAZY_SRC: &[&str] = &["data-src", "data-lazy-src", "data-original"];

/// Lazy-loading attributes on `<img>` and `<source>` holding a srcset.
const LAZY_SRCSET: &[&str] = &["data-srcset", "data-lazy-srcset"];

/// Parses `html` and returns its references.
///
/// `memory_limit` caps lol_html's own buffers (see
/// [`crate::ExtractLimits::max_parser_memory`]).
pub(crate) fn scan(html: &str, memory_limit: usize) -> Result<Scan, ExtractError> {
    scan_inner(html, memory_limit, false)
}

/// [`scan`] for a whole document (`fragment == false`) or for the content
/// of a `<noscript>` (`fragment == true`: no `<base>`, no nested pass).
fn scan_inner(html: &str, memory_limit: usize, fragment: bool) -> Result<Scan, ExtractError> {
    let found = RefCell::new(Scan::default());
    let noscript = RefCell::new(String::new());
    let mut settings = Settings::new()
        // Strict mode refuses some malformed markup (e.g. `<select><xmp>`);
        // we only read, so a rare misparse beats losing the whole page.
        .with_strict(false)
        .with_memory_settings(
            MemorySettings::new()
                .with_preallocated_parsing_buffer_size(memory_limit.min(1024))
                .with_max_allowed_memory_usage(memory_limit),
        )
        .append_element_content_handler(element!("a[href], area[href]", |el| {
            if let Some(href) = attr(el, "href") {
                found.borrow_mut().push(Target::Link, href);
            }
            Ok(())
        }))
        .append_element_content_handler(element!("img", |el| {
            let mut found = found.borrow_mut();
            if let Some(src) = attr(el, "src") {
                found.push(Target::Image(ImageSource::Img), src);
            }
            if let Some(srcset) = attr(el, "srcset") {
                found.push_srcset(ImageSource::ImgSrcset, &srcset);
            }
            for name in LAZY_SRC {
                if let Some(src) = attr(el, name) {
                    found.push(Target::Image(ImageSource::LazyLoad), src);
                }
            }
            for name in LAZY_SRCSET {
                if let Some(srcset) = attr(el, name) {
                    found.push_srcset(ImageSource::LazyLoad, &srcset);
                }
            }
            Ok(())
        }))
        .append_element_content_handler(element!("picture > source", |el| {
            let mut found = found.borrow_mut();
            if let Some(srcset) = attr(el, "srcset") {
                found.push_srcset(ImageSource::PictureSource, &srcset);
            }
            // Not valid HTML inside <picture>, but pages do it.
            if let Some(src) = attr(el, "src") {
                found.push(Target::Image(ImageSource::PictureSource), src);
            }
            for name in LAZY_SRCSET {
                if let Some(srcset) = attr(el, name) {
                    found.push_srcset(ImageSource::LazyLoad, &srcset);
                }
            }
            Ok(())
        }))
        .append_element_content_handler(element!("input[src]", |el| {
            let is_image = el.get_attribute("type").is_some_and(|t| t.eq_ignore_ascii_case("image"));
            if is_image {
                if let Some(src) = attr(el, "src") {
                    found.borrow_mut().push(Target::Image(ImageSource::InputImage), src);
                }
            }
            Ok(())
        }));
    if !fragment {
        settings = settings
            .append_element_content_handler(element!("base[href]", |el| {
                let mut found = found.borrow_mut();
                if found.base_href.is_none() {
                    found.base_href = attr(el, "href");
                }
                Ok(())
            }))
            .append_element_content_handler(text!("noscript", |chunk| {
                let mut buf = noscript.borrow_mut();
                if buf.len().saturating_add(chunk.as_str().len()) <= memory_limit {
                    buf.push_str(chunk.as_str());
                }
                if chunk.last_in_text_node() {
                    let inner = scan_inner(&buf, memory_limit, true)?;
                    buf.clear();
                    found.borrow_mut().refs.extend(inner.refs);
                }
                Ok(())
            }));
    }

    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    // One write: the decoded page is in memory already, and feeding it whole
    // means lol_html only buffers what its limiter accounts for (attribute
    // and element stacks), never a re-parse of a tag split across chunks.
    rewriter.write(html.as_bytes()).map_err(|e| ExtractError::from_lol(e, memory_limit))?;
    rewriter.end().map_err(|e| ExtractError::from_lol(e, memory_limit))?;
    Ok(found.into_inner())
}
