//! Cryptographic digests of an image, computed in one pass over memory.
//!
//! The fetcher streams each image body into a bounded buffer and hands the
//! chunks to a [`MultiHasher`]; the resulting [`Digests`] are all that leaves
//! the fetcher (the bytes are dropped). Hotline lists carry MD5 and SHA-1,
//! SHA-256 is the modern exchange format and BLAKE3 is our internal content
//! id, so every image gets all four.
//!
//! Design decision: one pass, four hash states fed the same chunk while it is
//! hot in cache. Feeding in chunks of [`CHUNK`] bytes keeps each chunk in L1/L2
//! across the four functions, so the pass over memory costs nothing beyond the
//! hash functions themselves.
#![deny(missing_docs)]

use std::fmt;
use std::str::FromStr;

use md5::Digest as _;
use serde::{Deserialize, Serialize};

/// Bytes fed to all four hash states before moving on: small enough to stay
/// in L1/L2 cache while four functions read it.
pub const CHUNK: usize = 16 * 1024;

/// The cryptographic hash algorithms hashscan computes for every image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CryptoAlgo {
    /// MD5: still the most common format of hotline lists.
    Md5,
    /// SHA-1: the other legacy list format.
    Sha1,
    /// SHA-256: modern exchange format.
    Sha256,
    /// BLAKE3: hashscan's internal content id.
    Blake3,
}

impl CryptoAlgo {
    /// All algorithms, in the order reports print them.
    pub const ALL: [CryptoAlgo; 4] = [Self::Md5, Self::Sha1, Self::Sha256, Self::Blake3];

    /// The lowercase name used in files, flags and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Blake3 => "blake3",
        }
    }
}

impl fmt::Display for CryptoAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown algorithm name: names what was given so a flag or file error is precise.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown hash algorithm {0:?} (expected md5, sha1, sha256 or blake3)")]
pub struct UnknownAlgo(pub String);

impl FromStr for CryptoAlgo {
    type Err = UnknownAlgo;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "md5" => Ok(Self::Md5),
            "sha1" | "sha-1" => Ok(Self::Sha1),
            "sha256" | "sha-256" => Ok(Self::Sha256),
            "blake3" => Ok(Self::Blake3),
            _ => Err(UnknownAlgo(s.to_string())),
        }
    }
}

/// The four digests of one byte string, plus its length.
///
/// Serialised as lowercase hex so JSON output agrees with `md5sum` & co.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Digests {
    /// Number of bytes hashed.
    pub bytes: u64,
    /// MD5 digest.
    #[serde(with = "hex_array")]
    pub md5: [u8; 16],
    /// SHA-1 digest.
    #[serde(with = "hex_array")]
    pub sha1: [u8; 20],
    /// SHA-256 digest.
    #[serde(with = "hex_array")]
    pub sha256: [u8; 32],
    /// BLAKE3 digest (the internal content id).
    #[serde(with = "hex_array")]
    pub blake3: [u8; 32],
}

impl Digests {
    /// Digests of a byte string held in memory.
    pub fn of(data: &[u8]) -> Self {
        let mut h = MultiHasher::new();
        h.update(data);
        h.finish()
    }

    /// The digest for one algorithm, as bytes (for index lookups).
    pub fn get(&self, algo: CryptoAlgo) -> &[u8] {
        match algo {
            CryptoAlgo::Md5 => &self.md5,
            CryptoAlgo::Sha1 => &self.sha1,
            CryptoAlgo::Sha256 => &self.sha256,
            CryptoAlgo::Blake3 => &self.blake3,
        }
    }

    /// The digest for one algorithm as lowercase hex.
    pub fn hex(&self, algo: CryptoAlgo) -> String {
        hex::encode(self.get(algo))
    }
}

impl fmt::Debug for Digests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Digests")
            .field("bytes", &self.bytes)
            .field("sha256", &hex::encode(self.sha256))
            .finish_non_exhaustive()
    }
}

/// Feeds the same bytes to MD5, SHA-1, SHA-256 and BLAKE3.
///
/// Chunks are split into [`CHUNK`]-sized pieces so that each piece is read
/// from cache by the four functions rather than from memory four times.
#[derive(Clone, Default)]
pub struct MultiHasher {
    md5: md5::Md5,
    sha1: sha1::Sha1,
    sha256: sha2::Sha256,
    blake3: blake3::Hasher,
    bytes: u64,
}

impl MultiHasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hashes more bytes.
    pub fn update(&mut self, data: &[u8]) {
        for piece in data.chunks(CHUNK) {
            self.md5.update(piece);
            self.sha1.update(piece);
            self.sha256.update(piece);
            self.blake3.update(piece);
        }
        self.bytes += data.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.bytes
    }

    /// True when nothing was hashed yet.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// The four digests.
    pub fn finish(self) -> Digests {
        Digests {
            bytes: self.bytes,
            md5: self.md5.finalize().into(),
            sha1: self.sha1.finalize().into(),
            sha256: self.sha256.finalize().into(),
            blake3: *self.blake3.finalize().as_bytes(),
        }
    }
}

/// Error for a hex string that is not a digest of the expected length.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HexError {
    /// Wrong number of hex digits.
    #[error("expected {expected} hex digits, found {found}")]
    Length {
        /// Digits the algorithm needs.
        expected: usize,
        /// Digits given.
        found: usize,
    },
    /// A character that is not a hex digit.
    #[error("not a hex digit {ch:?} at position {position}")]
    NotHex {
        /// The offending character.
        ch: char,
        /// 1-based position in the string.
        position: usize,
    },
}

/// Parses a fixed-length lowercase or uppercase hex digest.
///
/// Shared by every parser of hash lists so that all report the same errors.
pub fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    if let Some((i, ch)) = s.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(HexError::NotHex { ch, position: s[..i].chars().count() + 1 });
    }
    if s.len() != N * 2 {
        return Err(HexError::Length { expected: N * 2, found: s.len() });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| HexError::Length { expected: N * 2, found: s.len() })?;
    Ok(out)
}

mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse_hex::<N>(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known vectors: RFC 1321 (MD5), FIPS 180 (SHA-1, SHA-256), BLAKE3 reference.
    #[test]
    fn known_vectors_for_abc() {
        let d = Digests::of(b"abc");
        assert_eq!(d.hex(CryptoAlgo::Md5), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d.hex(CryptoAlgo::Sha1), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(d.hex(CryptoAlgo::Sha256), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(d.hex(CryptoAlgo::Blake3), "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");
        assert_eq!(d.bytes, 3);
    }

    #[test]
    fn known_vectors_for_empty_input() {
        let d = Digests::of(b"");
        assert_eq!(d.hex(CryptoAlgo::Md5), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(d.hex(CryptoAlgo::Sha1), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(d.hex(CryptoAlgo::Sha256), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(d.hex(CryptoAlgo::Blake3), "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
    }

    #[test]
    fn chunked_updates_equal_one_update() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let whole = Digests::of(&data);
        for split in [1usize, 7, CHUNK - 1, CHUNK, CHUNK + 1, 99_999] {
            let mut h = MultiHasher::new();
            for part in data.chunks(split) {
                h.update(part);
            }
            assert_eq!(h.finish(), whole, "split {split}");
        }
    }

    #[test]
    fn json_round_trip_uses_lowercase_hex() {
        let d = Digests::of(b"abc");
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.contains("\"md5\":\"900150983cd24fb0d6963f7d28e17f72\""), "{json}");
        let back: Digests = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn parse_hex_reports_length_and_bad_character() {
        assert_eq!(
            parse_hex::<16>("900150983cd24fb0d6963f7d28e17f7"),
            Err(HexError::Length { expected: 32, found: 31 })
        );
        assert_eq!(parse_hex::<2>("0g12"), Err(HexError::NotHex { ch: 'g', position: 2 }));
        assert_eq!(parse_hex::<2>("ABcd"), Ok([0xab, 0xcd]));
        assert!(matches!(parse_hex::<2>("ab\u{e9}d"), Err(HexError::NotHex { ch: '\u{e9}', position: 3 })));
    }

    #[test]
    fn algo_names_round_trip() {
        for a in CryptoAlgo::ALL {
            assert_eq!(a.name().parse::<CryptoAlgo>(), Ok(a));
        }
        assert!("crc32".parse::<CryptoAlgo>().is_err());
    }
}
