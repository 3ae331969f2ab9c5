//! The fetcher role: download what the scheduler hands out, within hard
//! limits, and turn it into links and hashes.
//!
//! A page yields links and image URLs (back to the scheduler) and page→image
//! edges (to the matcher). An image is streamed into **one bounded buffer**,
//! hashed off the async reactor, and dropped: only [`hashscan_hash::Digests`]
//! leave this crate. Every task yields exactly one [`FetchReport`], failures
//! included, so nothing is silently lost.
//!
//! Decisions:
//! * Redirects are not followed here. A redirect is reported to the scheduler
//!   as a new URL, so every hop is re-checked for scope, de-duplication,
//!   politeness and the network guard like any other URL.
//! * The network guard sits in the DNS resolver ([`GuardedResolver`]): the
//!   addresses a connection may use are filtered after resolution, so a name
//!   that re-resolves to a private address between checks cannot slip past.
//!   IP-literal URLs skip DNS and are checked before the request.
//! * A global byte budget (a semaphore of KiB) bounds the memory of all
//!   in-flight bodies together, whatever the web serves.
//! * What a body *is* comes from its magic bytes, not its Content-Type.
#![deny(missing_docs)]

mod client;
mod sniff;
mod worker;

pub use client::{
    parse_retry_after, user_agent, FetchConfig, FetchStats, Fetched, Fetcher, GuardedResolver, InitError,
    DEFAULT_CONTACT, MAX_RETRY_AFTER, MAX_ROBOTS_BYTES, MAX_ROBOTS_REDIRECTS,
};
pub use sniff::{sniff_image, ImageFormat};
pub use worker::run_fetcher;
