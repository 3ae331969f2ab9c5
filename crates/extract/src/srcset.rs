//! `srcset` parsing, after the WHATWG algorithm ("parse a srcset attribute",
//! HTML §4.8.4.3.10).
//!
//! Only the URLs matter here, but the descriptors still have to be tokenized:
//! that is what tells where one candidate ends, because a URL may hold commas
//! (`a,b.jpg 1x`) and a descriptor may hold them inside parentheses.
//!
//! Unlike a browser, which drops a candidate whose descriptors are invalid
//! (`img.jpg 2q`), this keeps every candidate URL: the crawler wants every
//! image a page points at, not the one a browser would pick.

/// ASCII whitespace as the HTML spec defines it.
fn is_ws(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// Returns the URL of every image candidate in a `srcset` value, in order.
pub(crate) fn candidate_urls(input: &str) -> Vec<&str> {
    let s = input.as_bytes();
    let mut urls = Vec::new();
    let mut pos = 0;
    loop {
        // Splitting loop: skip whitespace and commas between candidates.
        while pos < s.len() && (is_ws(s[pos]) || s[pos] == b',') {
            pos += 1;
        }
        if pos >= s.len() {
            return urls;
        }
        let start = pos;
        while pos < s.len() && !is_ws(s[pos]) {
            pos += 1;
        }
        // Cuts are at ASCII bytes only, so these slices are on char boundaries.
        let url = &input[start..pos];
        let url = if url.ends_with(',') {
            // "url," ends the candidate: it has no descriptors.
            url.trim_end_matches(',')
        } else {
            pos = skip_descriptors(s, pos);
            url
        };
        if !url.is_empty() {
            urls.push(url);
        }
    }
}

/// Runs the descriptor tokenizer from `pos` (just after a URL) and returns the
/// index where the next candidate starts.
fn skip_descriptors(s: &[u8], mut pos: usize) -> usize {
    #[derive(Clone, Copy)]
    enum State {
        InDescriptor,
        InParens,
        AfterDescriptor,
    }
    while pos < s.len() && is_ws(s[pos]) {
        pos += 1;
    }
    let mut state = State::InDescriptor;
    while let Some(&c) = s.get(pos) {
        match state {
            State::InDescriptor => match c {
                b',' => return pos + 1,
                b'(' => state = State::InParens,
                c if is_ws(c) => state = State::AfterDescriptor,
                _ => {}
            },
            State::InParens => {
                if c == b')' {
                    state = State::InDescriptor;
                }
            }
            State::AfterDescriptor => {
                if !is_ws(c) {
                    // Reconsume this character in the descriptor state.
                    state = State::InDescriptor;
                    continue;
                }
            }
        }
        pos += 1;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::candidate_urls;

    #[test]
    fn single_url_without_descriptor() {
        assert_eq!(candidate_urls("a.jpg"), ["a.jpg"]);
    }

    #[test]
    fn density_and_width_descriptors() {
        assert_eq!(candidate_urls("a.jpg 1x, b.jpg 2x"), ["a.jpg", "b.jpg"]);
        assert_eq!(candidate_urls("  a.jpg 300w,\n\tb.jpg   600w  , c.jpg"), ["a.jpg", "b.jpg", "c.jpg"]);
    }

    #[test]
    fn comma_inside_url_is_kept_when_not_followed_by_whitespace() {
        assert_eq!(candidate_urls("/img/a,b.jpg 1x,/img/c.jpg 2x"), ["/img/a,b.jpg", "/img/c.jpg"]);
        assert_eq!(
            candidate_urls("https://cdn.example/w_300,h_200/x.jpg 300w, https://cdn.example/w_600,h_400/x.jpg 600w"),
            ["https://cdn.example/w_300,h_200/x.jpg", "https://cdn.example/w_600,h_400/x.jpg"]
        );
    }

    #[test]
    fn trailing_commas_end_a_candidate() {
        assert_eq!(candidate_urls("a.jpg,, b.jpg,"), ["a.jpg", "b.jpg"]);
        assert_eq!(candidate_urls("a.jpg,b.jpg"), ["a.jpg,b.jpg"]);
    }

    #[test]
    fn parentheses_in_descriptors_may_hold_commas() {
        assert_eq!(candidate_urls("a.jpg foo(1, 2) 1x, b.jpg 2x"), ["a.jpg", "b.jpg"]);
        assert_eq!(candidate_urls("a.jpg (unclosed, b.jpg 2x"), ["a.jpg"]);
    }

    #[test]
    fn invalid_descriptors_keep_the_url() {
        assert_eq!(candidate_urls("a.jpg 2q, b.jpg 1x 2x"), ["a.jpg", "b.jpg"]);
    }

    #[test]
    fn data_uri_candidates_keep_their_comma() {
        assert_eq!(
            candidate_urls("data:image/png;base64,iVBORw0KGgo= 1x, big.png 2x"),
            ["data:image/png;base64,iVBORw0KGgo=", "big.png"]
        );
    }

    #[test]
    fn empty_and_separator_only_values_give_nothing() {
        assert!(candidate_urls("").is_empty());
        assert!(candidate_urls(" , ,, \t").is_empty());
    }

    #[test]
    fn non_ascii_urls_survive() {
        assert_eq!(candidate_urls("bild-ä.jpg 1x,ñ.jpg 2x"), ["bild-ä.jpg", "ñ.jpg"]);
    }
}
