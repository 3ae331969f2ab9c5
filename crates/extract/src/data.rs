//! `data:` URIs: parsed and decoded by servo's `data-url` crate (the Fetch
//! spec's data-URL processor, forgiving base64 included), with size caps
//! enforced while decoding so an oversized payload is never held whole.

use data_url::forgiving_base64::DecodeError;
use data_url::DataUrl;

/// What became of one `data:` URI.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DataOutcome {
    /// An image: its media type (`image/png`, parameters dropped) and bytes.
    Image { media_type: String, bytes: Vec<u8> },
    /// A well-formed data URI of another type (`text/html`, `text/plain` …).
    NotImage,
    /// Not parseable, invalid base64, or an empty payload.
    Malformed,
    /// The payload is larger than the per-URI cap.
    Oversized,
    /// The payload fits the per-URI cap but not what is left of the page's.
    OverBudget,
}

/// Returned by the decode sink to stop decoding early.
struct TooLarge;

/// Whether `value` is a `data:` URI, judged the way the URL parser would
/// (leading C0 controls and spaces ignored, scheme case-insensitive).
pub(crate) fn is_data_uri(value: &str) -> bool {
    let v = value.trim_start_matches(|c: char| c <= ' ');
    v.len() >= 5 && v.as_bytes()[..5].eq_ignore_ascii_case(b"data:")
}

/// Decodes one data URI whose payload may be at most `max_one` bytes, with
/// `budget_left` bytes left of the page's total.
pub(crate) fn decode(uri: &str, max_one: usize, budget_left: usize) -> DataOutcome {
    let Ok(parsed) = DataUrl::process(uri) else {
        return DataOutcome::Malformed;
    };
    let mime = parsed.mime_type();
    if mime.type_ != "image" {
        return DataOutcome::NotImage;
    }
    let keep = max_one.min(budget_left);
    let mut bytes = Vec::new();
    let mut total = 0usize;
    let result = parsed.decode(|chunk: &[u8]| {
        total = total.saturating_add(chunk.len());
        if total > max_one {
            return Err(TooLarge);
        }
        if total <= keep {
            bytes.extend_from_slice(chunk);
        }
        // Past the page budget: keep counting, to tell "over budget" from
        // "oversized", but hold nothing more.
        Ok(())
    });
    match result {
        Err(DecodeError::WriteError(TooLarge)) => DataOutcome::Oversized,
        Err(DecodeError::InvalidBase64(_)) => DataOutcome::Malformed,
        Ok(_) if total > keep => DataOutcome::OverBudget,
        Ok(_) if bytes.is_empty() => DataOutcome::Malformed,
        Ok(_) => DataOutcome::Image { media_type: format!("{}/{}", mime.type_, mime.subtype), bytes },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: usize = 1 << 20;

    #[test]
    fn base64_png_decodes() {
        let out = decode("data:image/png;base64,iVBORw0KGgo=", MB, MB);
        assert_eq!(out, DataOutcome::Image { media_type: "image/png".into(), bytes: b"\x89PNG\r\n\x1a\n".to_vec() });
    }

    #[test]
    fn percent_encoded_svg_decodes() {
        let out = decode("data:image/svg+xml,%3Csvg%2F%3E", MB, MB);
        assert_eq!(out, DataOutcome::Image { media_type: "image/svg+xml".into(), bytes: b"<svg/>".to_vec() });
    }

    #[test]
    fn media_type_is_lowercased_without_parameters() {
        let out = decode("DATA:Image/GIF;foo=bar;base64,R0lGODlh", MB, MB);
        assert!(matches!(out, DataOutcome::Image { ref media_type, .. } if media_type == "image/gif"));
    }

    #[test]
    fn other_types_and_default_type_are_not_images() {
        assert_eq!(decode("data:text/html,<b>x</b>", MB, MB), DataOutcome::NotImage);
        assert_eq!(decode("data:,hello", MB, MB), DataOutcome::NotImage);
    }

    #[test]
    fn broken_uris_are_malformed() {
        assert_eq!(decode("data:image/png;base64", MB, MB), DataOutcome::Malformed);
        assert_eq!(decode("data:image/png;base64,a", MB, MB), DataOutcome::Malformed);
        assert_eq!(decode("data:image/png;base64,", MB, MB), DataOutcome::Malformed);
        assert_eq!(decode("http://x/", MB, MB), DataOutcome::Malformed);
    }

    #[test]
    fn size_caps_tell_oversized_from_over_budget() {
        let uri = format!("data:image/png,{}", "a".repeat(100));
        assert_eq!(decode(&uri, 99, 1000), DataOutcome::Oversized);
        assert_eq!(decode(&uri, 100, 99), DataOutcome::OverBudget);
        assert!(matches!(decode(&uri, 100, 100), DataOutcome::Image { .. }));
    }

    #[test]
    fn data_uri_detection() {
        assert!(is_data_uri(" \tDaTa:image/png,x"));
        assert!(!is_data_uri("dat"));
        assert!(!is_data_uri("/data:x"));
        assert!(!is_data_uri("é"));
    }
}
