//! robots.txt per RFC 9309: what an origin's file says, and what to do
//! while it cannot be had.
//!
//! Decision: the state is per **origin** (scheme, host, port), as the RFC
//! scopes a robots.txt; politeness timing is per host and per address
//! elsewhere. Parsing is texting_robots' (a well-kept RFC 9309 parser with
//! Crawl-delay); only the state machine around it is ours.

use std::time::{Duration, Instant};

use hashscan_bus::FailReason;
use texting_robots::Robot;
use url::Url;

/// What is known of one origin's robots.txt.
pub(crate) enum RobotsState {
    /// A request for it is on its way.
    Fetching {
        /// Failed attempts before this one.
        attempts: u32,
    },
    /// Known: rules (`None`: allow everything) until `expires`.
    Ready { rules: Option<Box<Robot>>, crawl_delay: Option<Duration>, expires: Instant },
    /// 5xx, 429 or unreachable: everything is disallowed until `retry_at`.
    Unavailable { attempts: u32, retry_at: Instant },
    /// Given up: every URL of the origin fails with this reason, unrequested.
    GaveUp { reason: FailReason, detail: String },
}

/// What the scheduler does with a dequeued task, by its origin's robots state.
pub(crate) enum Verdict {
    /// Fetch robots.txt first (the task goes back to the front of its queue).
    FetchRobots { attempts: u32 },
    /// Wait: robots.txt is on its way or its retry is not due.
    Wait { until: Option<Instant> },
    /// Fetch the task.
    Allowed,
    /// Do not request it; record this failure.
    Refused { reason: FailReason, detail: String },
}

/// The robots.txt URL of a URL's origin.
pub(crate) fn robots_url(url: &Url) -> Option<Url> {
    let mut u = url.clone();
    u.set_path("/robots.txt");
    u.set_query(None);
    u.set_fragment(None);
    (!u.cannot_be_a_base() && u.host_str().is_some()).then_some(u)
}

/// The origin key of a URL.
pub(crate) fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

impl RobotsState {
    /// Parses a 2xx body. A file that cannot be parsed at all allows
    /// everything: RFC 9309 asks crawlers to use what they can parse.
    pub(crate) fn from_body(agent: &str, body: &str, ttl: Duration) -> Self {
        let (rules, crawl_delay) = match Robot::new(agent, body.as_bytes()) {
            Ok(r) => {
                let delay =
                    r.delay.filter(|d| d.is_finite() && *d > 0.0).map(|d| Duration::from_secs_f32(d.min(86_400.0)));
                (Some(Box::new(r)), delay)
            }
            Err(e) => {
                tracing::warn!(error = %e, "robots.txt not parsable; allowing all");
                (None, None)
            }
        };
        Self::Ready { rules, crawl_delay, expires: Instant::now() + ttl }
    }

    /// Allow everything (a 4xx robots.txt, or a scan that ignores robots).
    pub(crate) fn allow_all(ttl: Duration) -> Self {
        Self::Ready { rules: None, crawl_delay: None, expires: Instant::now() + ttl }
    }

    /// The verdict for `url` now. `ignore_rules`: the scan ignores
    /// Allow/Disallow (Crawl-delay still holds).
    pub(crate) fn verdict(&self, url: &Url, ignore_rules: bool, now: Instant) -> Verdict {
        match self {
            Self::Fetching { .. } => Verdict::Wait { until: None },
            Self::Ready { expires, .. } if *expires <= now => Verdict::FetchRobots { attempts: 0 },
            Self::Ready { rules, .. } => match rules {
                Some(r) if !ignore_rules && !r.allowed(url.as_str()) => Verdict::Refused {
                    reason: FailReason::Robots,
                    detail: "robots.txt disallows it; not requested".into(),
                },
                _ => Verdict::Allowed,
            },
            Self::Unavailable { attempts, retry_at } if *retry_at <= now => {
                Verdict::FetchRobots { attempts: *attempts }
            }
            Self::Unavailable { retry_at, .. } => Verdict::Wait { until: Some(*retry_at) },
            Self::GaveUp { reason, detail } => Verdict::Refused { reason: *reason, detail: detail.clone() },
        }
    }

    /// The Crawl-delay in force, if any.
    pub(crate) fn crawl_delay(&self) -> Option<Duration> {
        match self {
            Self::Ready { crawl_delay, .. } => *crawl_delay,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn rules_for_our_agent_and_crawl_delay() {
        let txt = "User-agent: otherbot\nDisallow: /\n\nUser-agent: *\nDisallow: /private/\nCrawl-delay: 2\n";
        let s = RobotsState::from_body("hashscan", txt, Duration::from_secs(60));
        let now = Instant::now();
        assert!(matches!(s.verdict(&u("http://a.test/public.html"), false, now), Verdict::Allowed));
        assert!(matches!(
            s.verdict(&u("http://a.test/private/x.png"), false, now),
            Verdict::Refused { reason: FailReason::Robots, .. }
        ));
        assert!(matches!(s.verdict(&u("http://a.test/private/x.png"), true, now), Verdict::Allowed));
        assert_eq!(s.crawl_delay(), Some(Duration::from_secs(2)));
        let other = RobotsState::from_body("otherbot", txt, Duration::from_secs(60));
        assert!(matches!(other.verdict(&u("http://a.test/public.html"), false, now), Verdict::Refused { .. }));
    }

    #[test]
    fn expiry_unavailability_and_giving_up() {
        let now = Instant::now();
        let s = RobotsState::from_body("hashscan", "User-agent: *\nDisallow:\n", Duration::ZERO);
        assert!(matches!(
            s.verdict(&u("http://a.test/"), false, now + Duration::from_millis(1)),
            Verdict::FetchRobots { .. }
        ));
        let s = RobotsState::Unavailable { attempts: 2, retry_at: now + Duration::from_secs(5) };
        assert!(matches!(s.verdict(&u("http://a.test/"), false, now), Verdict::Wait { until: Some(_) }));
        assert!(matches!(
            s.verdict(&u("http://a.test/"), true, now + Duration::from_secs(6)),
            Verdict::FetchRobots { attempts: 2 }
        ));
        let s = RobotsState::GaveUp { reason: FailReason::RobotsUnavailable, detail: "x".into() };
        assert!(matches!(
            s.verdict(&u("http://a.test/"), false, now),
            Verdict::Refused { reason: FailReason::RobotsUnavailable, .. }
        ));
        assert!(matches!(
            RobotsState::allow_all(Duration::from_secs(9)).verdict(&u("http://a.test/x"), false, now),
            Verdict::Allowed
        ));
    }

    #[test]
    fn garbage_allows_all_and_urls_are_per_origin() {
        let s = RobotsState::from_body("hashscan", "\u{0}\u{1}<html>not robots</html>", Duration::from_secs(60));
        assert!(matches!(s.verdict(&u("http://a.test/x"), false, Instant::now()), Verdict::Allowed));
        assert_eq!(robots_url(&u("http://a.test:8080/x/y?z#f")).unwrap().as_str(), "http://a.test:8080/robots.txt");
        assert_eq!(origin(&u("http://a.test:8080/x")), "http://a.test:8080");
        assert_ne!(origin(&u("https://a.test/x")), origin(&u("http://a.test/x")));
    }
}
