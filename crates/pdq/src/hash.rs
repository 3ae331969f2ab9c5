//! The 256-bit PDQ hash value, its hex form and Hamming distance.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Number of hex characters in a PDQ hash.
pub const HEX_LEN: usize = 64;

/// A 256-bit PDQ hash.
///
/// Bit `k` (0..=255) is set when DCT coefficient `k = 16*i + j` (vertical
/// frequency `i`, horizontal frequency `j`) lies above the median of the 256
/// coefficients. The bytes are the **big-endian** form of the 256-bit number
/// `sum(bit_k << k)`, which is exactly what the hex shows: byte 0 is the first
/// two hex characters (bits 255..248), byte 31 the last two (bits 7..0). This
/// matches the C++ reference's `Hash256::format()` (`w[15]` first, `%04x`
/// each), so hex strings move between implementations unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PdqHash([u8; 32]);

/// Why a string is not a PDQ hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseHashError {
    /// The string is not 64 characters long.
    #[error("a PDQ hash is 64 hex characters, got {len}")]
    WrongLength {
        /// Length of the input in bytes.
        len: usize,
    },
    /// A character is not a hex digit.
    #[error("invalid hex character {ch:?} at position {index} of a PDQ hash")]
    InvalidChar {
        /// Byte offset of the first bad character.
        index: usize,
        /// The offending character.
        ch: char,
    },
}

impl PdqHash {
    /// The all-zero hash: what the reference returns for images smaller than
    /// 5 pixels on a side (and for perfectly flat black images).
    pub const ZERO: PdqHash = PdqHash([0; 32]);

    /// Wraps 32 bytes in the big-endian layout described on [`PdqHash`].
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        PdqHash(bytes)
    }

    /// The 32 bytes, big-endian (byte 0 = first two hex characters); the form
    /// to store in binary columns and indexes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses the 64-character hex form (either case, no whitespace, no
    /// prefix), as printed by the C++ reference and by [`PdqHash::to_hex`].
    pub fn from_hex(s: &str) -> Result<Self, ParseHashError> {
        let raw = s.as_bytes();
        if raw.len() != HEX_LEN {
            return Err(ParseHashError::WrongLength { len: raw.len() });
        }
        let mut out = [0u8; 32];
        for (i, pair) in raw.chunks_exact(2).enumerate() {
            let hi = hex_value(s, 2 * i, pair[0])?;
            let lo = hex_value(s, 2 * i + 1, pair[1])?;
            out[i] = (hi << 4) | lo;
        }
        Ok(PdqHash(out))
    }

    /// The canonical 64-character lowercase hex form.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(HEX_LEN);
        for b in self.0 {
            s.push(DIGITS[usize::from(b >> 4)] as char);
            s.push(DIGITS[usize::from(b & 0x0f)] as char);
        }
        s
    }

    /// Number of differing bits (0..=256): PDQ's similarity measure; Meta
    /// suggests treating ≤ 31 as a match.
    pub fn hamming(&self, other: &Self) -> u32 {
        let (a, b) = (self.words(), other.words());
        (a[0] ^ b[0]).count_ones()
            + (a[1] ^ b[1]).count_ones()
            + (a[2] ^ b[2]).count_ones()
            + (a[3] ^ b[3]).count_ones()
    }

    /// The hash as four big-endian 64-bit words, for fast XOR/popcount.
    fn words(&self) -> [u64; 4] {
        let w = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.0[8 * i..8 * i + 8]);
            u64::from_be_bytes(b)
        };
        [w(0), w(1), w(2), w(3)]
    }

    /// Bit `k` (0..=255) in the reference's numbering (`w[k>>4] >> (k&15)`).
    /// Returns `false` for `k >= 256`.
    pub fn bit(&self, k: usize) -> bool {
        k < 256 && (self.0[31 - (k >> 3)] >> (k & 7)) & 1 == 1
    }

    /// Number of set bits; a well-formed hash of a non-flat image has about
    /// 128 (the median split), so a value far from that flags a degenerate input.
    pub fn count_ones(&self) -> u32 {
        self.0.iter().map(|b| b.count_ones()).sum()
    }

    /// Sets bit `k` (0..=255); internal because hashes are only built by
    /// hashing or parsing.
    pub(crate) fn set_bit(&mut self, k: usize) {
        self.0[31 - (k >> 3)] |= 1 << (k & 7);
    }
}

fn hex_value(s: &str, index: usize, c: u8) -> Result<u8, ParseHashError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(ParseHashError::InvalidChar {
            index,
            // The byte may sit inside a multi-byte character: report the
            // character that contains it.
            ch: s
                .char_indices()
                .take_while(|&(start, _)| start <= index)
                .last()
                .map_or(char::REPLACEMENT_CHARACTER, |(_, ch)| ch),
        }),
    }
}

impl fmt::Display for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PdqHash({})", self.to_hex())
    }
}

impl FromStr for PdqHash {
    type Err = ParseHashError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PdqHash::from_hex(s)
    }
}

impl Serialize for PdqHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for PdqHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        PdqHash::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// A PDQ hash with the reference's quality score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PdqOutput {
    /// The 256-bit hash.
    pub hash: PdqHash,
    /// 0..=100, from the amount of gradient in the 64×64 downsample; Meta
    /// advises not to trust matches on hashes with quality below 50.
    pub quality: u8,
}

/// The eight hashes of an image's dihedral transforms, from one DCT, so a
/// rotated or mirrored copy of a listed image is found without re-hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PdqDihedral {
    /// Indexed by [`Dihedral`] (`hashes[Dihedral::Rotate90 as usize]`), in the
    /// reference's order: original, rot90, rot180, rot270, flipx, flipy,
    /// flipplus1, flipminus1.
    pub hashes: [PdqHash; 8],
    /// Quality of the image (the same for every transform).
    pub quality: u8,
}

impl PdqDihedral {
    /// The hash of one transform.
    pub fn get(&self, t: Dihedral) -> PdqHash {
        self.hashes[t as usize]
    }

    /// The plain hash and quality, as [`crate::PdqHasher::hash_rgb8`] would
    /// give them (except for exactly 64×64 inputs, see
    /// [`crate::PdqHasher::dihedral_rgb8`]).
    pub fn original(&self) -> PdqOutput {
        PdqOutput { hash: self.hashes[0], quality: self.quality }
    }
}

/// The eight dihedral transforms, in the reference's order. The hash of a
/// transform is the hash the transformed image would get (up to rounding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dihedral {
    /// The image as given.
    Original = 0,
    /// Rotated 90° counter-clockwise (the right edge becomes the top; the
    /// reference's `rot90`).
    Rotate90 = 1,
    /// Rotated 180°.
    Rotate180 = 2,
    /// Rotated 90° clockwise (`rot270`).
    Rotate270 = 3,
    /// Mirrored top to bottom (the reference's `flipx`).
    FlipX = 4,
    /// Mirrored left to right (the reference's `flipy`).
    FlipY = 5,
    /// Transposed about the main diagonal (`flipplus1`).
    FlipPlus1 = 6,
    /// Transposed about the anti-diagonal (`flipminus1`).
    FlipMinus1 = 7,
}

impl Dihedral {
    /// All transforms in the reference's order (the index into
    /// [`PdqDihedral::hashes`]).
    pub const ALL: [Dihedral; 8] = [
        Dihedral::Original,
        Dihedral::Rotate90,
        Dihedral::Rotate180,
        Dihedral::Rotate270,
        Dihedral::FlipX,
        Dihedral::FlipY,
        Dihedral::FlipPlus1,
        Dihedral::FlipMinus1,
    ];

    /// The reference's short name (`orig`, `rot90`, …, `flipminus1`), as used
    /// in its tools' output and in our conformance data.
    pub fn name(self) -> &'static str {
        match self {
            Dihedral::Original => "orig",
            Dihedral::Rotate90 => "rot90",
            Dihedral::Rotate180 => "rot180",
            Dihedral::Rotate270 => "rot270",
            Dihedral::FlipX => "flipx",
            Dihedral::FlipY => "flipy",
            Dihedral::FlipPlus1 => "flipplus1",
            Dihedral::FlipMinus1 => "flipminus1",
        }
    }
}
