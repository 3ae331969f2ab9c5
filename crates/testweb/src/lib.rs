//! The test web: a deterministic synthetic web of **benign generated
//! images**, served on loopback, with its ground truth.
//!
//! Tests, benchmarks and `hashscan demo` crawl this and nothing else. A
//! [`WebSpec`] (seed and sizes) generates sites of linked pages that embed
//! generated JPEG and PNG pictures in every way real pages do (`<img src>`,
//! `srcset`, `<picture>`, `<a href>` to an image, `data:` URIs, `<base href>`),
//! plus the awkward cases a crawler must handle: redirects, a broken link, an
//! HTML page dressed as a JPEG, an image labelled `text/html`, an image
//! mirrored on a CDN, an orphan page nobody links and an out-of-scope site.
//! Some images are "listed" in a generated reference file — hashes of benign
//! pictures we chose, never real material. The [`Manifest`] says what a full
//! scan must find.
//!
//! A second, separate [`TrapWeb`] (module [`traps`]) serves hostile and
//! broken hosts — robots rules, crawl delays, infinite URL spaces, redirect
//! loops, a gzip bomb, slow and throttling servers, ETags, aliased names —
//! with a [`TrapManifest`] of what a polite, robust crawler must do.
//!
//! A third, the evaluation web ([`EvalWeb`], module [`eval`]), gives every
//! image content a ground-truth class (listed, variant, co-occurring,
//! benign, lone neighbour, popular) so the risk score's precision and
//! recall can be measured on webs it was not tuned on.
//!
//! Decision: every host gets its own 127.x address (all of 127/8 is loopback
//! on Linux) and all hosts share one port, so URLs look like a real
//! multi-host web, politeness can be measured per host and per address, and
//! a scan reaches them with `--resolve` and `--allow-net` only. The server's
//! [`AccessEntry`] log is the evidence later tests use for politeness.
#![deny(missing_docs)]

pub mod eval;
pub mod images;
mod server;
pub mod traps;
mod web;

pub use eval::{generate_eval, EvalClass, EvalContent, EvalPage, EvalSpec, EvalTruth, EvalWeb};
pub use server::{AccessEntry, ServeError, TestWeb};
pub use traps::{TrapManifest, TrapSpec, TrapWeb};
pub use web::{generate, hosts, ContentTruth, Expected, HostInfo, Manifest, PageTruth, Resources, Web, WebSpec};
