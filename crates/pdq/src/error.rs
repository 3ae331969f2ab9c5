//! Typed errors for hashing input that cannot be an image.

/// Why an input buffer cannot be hashed.
///
/// Images that are merely *small* (under 5 pixels on a side) are not errors:
/// the reference gives them the all-zero hash with quality 0, and so do we.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PdqError {
    /// Width or height is zero: there is no image to hash.
    #[error("image has no pixels ({width}x{height})")]
    Empty {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// The buffer length does not match `width * height * channels`.
    #[error(
        "buffer holds {actual} values but a {width}x{height} image with \
         {channels} channel(s) needs {expected}"
    )]
    BufferLength {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Values per pixel (3 for RGB8, 1 for luma).
        channels: u8,
        /// `width * height * channels`.
        expected: u64,
        /// Length of the buffer given.
        actual: usize,
    },
    /// `width * height` does not fit this platform's address space.
    #[error("image of {width}x{height} pixels is too large to address")]
    TooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// A luma value is NaN or infinite; the reference's arithmetic is only
    /// meaningful for finite values (normally 0..=255).
    #[error("luma value at index {index} is not finite ({value})")]
    NonFiniteLuma {
        /// Index into the luma buffer.
        index: usize,
        /// The value found.
        value: f32,
    },
}
