//! The hash algorithms a reference file may carry.

use std::fmt;
use std::str::FromStr;

use hashscan_hash::CryptoAlgo;
use serde::{Deserialize, Serialize};

/// A hash algorithm of a reference-file column: the four cryptographic ones
/// the fetcher computes, and PDQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algo {
    /// MD5 (16 bytes, 32 hex digits).
    Md5,
    /// SHA-1 (20 bytes, 40 hex digits).
    Sha1,
    /// SHA-256 (32 bytes, 64 hex digits).
    Sha256,
    /// BLAKE3 (32 bytes, 64 hex digits).
    Blake3,
    /// PDQ perceptual hash (256 bits, 64 hex digits), matched by Hamming radius.
    Pdq,
}

impl Algo {
    /// All algorithms, in the order reports print them (the column order of
    /// [`Algo::ALL`] is also the `Ord` order).
    pub const ALL: [Algo; 5] = [Self::Md5, Self::Sha1, Self::Sha256, Self::Blake3, Self::Pdq];

    /// The lowercase name used as column header, in flags and in JSON.
    pub fn name(self) -> &'static str {
        self.crypto().map_or("pdq", CryptoAlgo::name)
    }

    /// The cryptographic algorithm, or `None` for PDQ.
    pub fn crypto(self) -> Option<CryptoAlgo> {
        match self {
            Self::Md5 => Some(CryptoAlgo::Md5),
            Self::Sha1 => Some(CryptoAlgo::Sha1),
            Self::Sha256 => Some(CryptoAlgo::Sha256),
            Self::Blake3 => Some(CryptoAlgo::Blake3),
            Self::Pdq => None,
        }
    }

    /// Length of a digest in bytes.
    pub fn len_bytes(self) -> usize {
        match self {
            Self::Md5 => 16,
            Self::Sha1 => 20,
            Self::Sha256 | Self::Blake3 | Self::Pdq => 32,
        }
    }
}

impl From<CryptoAlgo> for Algo {
    fn from(a: CryptoAlgo) -> Self {
        match a {
            CryptoAlgo::Md5 => Self::Md5,
            CryptoAlgo::Sha1 => Self::Sha1,
            CryptoAlgo::Sha256 => Self::Sha256,
            CryptoAlgo::Blake3 => Self::Blake3,
        }
    }
}

impl fmt::Display for Algo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`Algo::ALL`]; names what was given.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("unknown hash algorithm {0:?} (expected md5, sha1, sha256, blake3 or pdq)")]
pub struct UnknownAlgo(pub String);

impl FromStr for Algo {
    type Err = UnknownAlgo;

    /// Case-insensitive, surrounding whitespace ignored; also accepts the
    /// spellings `sha-1` and `sha-256`, as [`CryptoAlgo`] does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("pdq") {
            return Ok(Self::Pdq);
        }
        s.parse::<CryptoAlgo>().map(Self::from).map_err(|_| UnknownAlgo(s.to_string()))
    }
}
