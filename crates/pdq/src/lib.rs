//! PDQ, Meta's 256-bit perceptual image hash, computed bit for bit as Meta's
//! C++ reference does.
//!
//! The fetcher hashes every downloaded image with a [`PdqHasher`] and sends
//! the [`PdqHash`] (with its quality) to the matcher, which compares it with
//! the reference set by Hamming distance ([`PdqHash::hamming`]). Hotlines
//! exchange PDQ hashes made by Meta's tools, so our hash must be the *same*
//! bits, not merely a similar hash: a systematic difference of a few bits
//! would silently eat into every list's match radius.
//!
//! Key decision: exactness over convenience. Every step is f32 arithmetic in
//! the reference's order (luma `0.299·R + 0.587·G + 0.114·B`, the two-pass
//! Jarosz tent filter, decimation to 64×64, the 64→16 DCT, Torben's median),
//! with no fused multiply-add and no reassociation. Speed comes only from
//! reorganisations that leave every individual rounding unchanged: the tent
//! filter runs as a streaming pipeline over a small ring of rows, running
//! sums that are independent run side by side, and divisions happen only
//! for values that are used. A literal port of the C++ lives in the tests and
//! must agree bit for bit; the conformance tests compare against hashes from
//! Meta's own C++ (`shared/conformance/pdq`).
//!
//! Decoding is not this crate's job: callers hand over RGB8 pixels with alpha
//! dropped (not composited) and greyscale expanded to R = G = B, the way
//! Pillow's `convert("RGB")` does, which is what the reference values use.
//! EXIF orientation is *not* applied, also as in the reference.
#![deny(missing_docs)]

mod dct;
mod downscale;
mod error;
mod hash;
mod hasher;
mod isa;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

pub use error::PdqError;
pub use hash::{Dihedral, ParseHashError, PdqDihedral, PdqHash, PdqOutput, HEX_LEN};
pub use hasher::{PdqHasher, Pixels, MAX_RETAINED_SCRATCH, MIN_DIMENSION};
