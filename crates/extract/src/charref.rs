//! Character references in attribute values (`&amp;`, `&#47;`, `&copy`).
//!
//! lol_html hands attribute values over exactly as written, so `?a=1&amp;b=2`
//! would become a wrong URL. `htmlize` decodes them with the WHATWG rules for
//! attribute values (the full table of named references, numeric references
//! with the windows-1252 remapping of C1 code points, and legacy names
//! without `;` left alone before `=` or an alphanumeric).

use std::borrow::Cow;

/// Decodes the character references of one attribute value; borrows when
/// there is nothing to decode.
pub(crate) fn decode_attr(value: &str) -> Cow<'_, str> {
    if !value.contains('&') {
        return Cow::Borrowed(value);
    }
    htmlize::unescape_attribute(value)
}

#[cfg(test)]
mod tests {
    use super::decode_attr;

    #[test]
    fn text_without_ampersand_is_borrowed() {
        assert!(matches!(decode_attr("/a/b?c=d"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn amp_in_query_is_decoded() {
        assert_eq!(decode_attr("?a=1&amp;b=2"), "?a=1&b=2");
        assert_eq!(decode_attr("?a=1&AMP;b=2"), "?a=1&b=2");
    }

    #[test]
    fn numeric_references_decimal_and_hex() {
        assert_eq!(decode_attr("&#47;x&#x2F;y&#X2f;z"), "/x/y/z");
        assert_eq!(decode_attr("&#47x"), "/x");
    }

    #[test]
    fn numeric_reference_edge_values_become_replacement() {
        assert_eq!(decode_attr("&#0;"), "\u{fffd}");
        assert_eq!(decode_attr("&#xD800;"), "\u{fffd}");
        assert_eq!(decode_attr("&#99999999999999999999;"), "\u{fffd}");
        assert_eq!(decode_attr("&#x110000;"), "\u{fffd}");
    }

    #[test]
    fn numeric_c1_maps_through_windows_1252() {
        assert_eq!(decode_attr("&#150;&#x80;&#129;"), "\u{2013}\u{20ac}\u{81}");
    }

    #[test]
    fn ampersand_without_reference_stays() {
        assert_eq!(decode_attr("a & b &# &#x; &;"), "a & b &# &#x; &;");
        assert_eq!(decode_attr("&"), "&");
        assert_eq!(decode_attr("x&"), "x&");
    }

    #[test]
    fn legacy_name_without_semicolon_decodes_unless_followed_by_equals_or_alnum() {
        assert_eq!(decode_attr("?a=1&amp b"), "?a=1& b");
        assert_eq!(decode_attr("?a=1&copy=2"), "?a=1&copy=2");
        assert_eq!(decode_attr("?a=1&notify=1"), "?a=1&notify=1");
        assert_eq!(decode_attr("&not"), "\u{ac}");
    }

    #[test]
    fn semicolon_only_names_need_the_semicolon() {
        assert_eq!(decode_attr("a&sol;b&sol"), "a/b&sol");
        assert_eq!(decode_attr("&apos;"), "'");
    }

    #[test]
    fn unknown_and_overlong_names_stay() {
        assert_eq!(decode_attr("&bogus;"), "&bogus;");
        assert_eq!(decode_attr("&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;"), "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;");
    }

    #[test]
    fn non_ascii_around_references_is_kept() {
        assert_eq!(decode_attr("é&amp;ü&#233;"), "é&üé");
    }
}
