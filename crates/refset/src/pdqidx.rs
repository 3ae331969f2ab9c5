//! The PDQ radius index over the set's PDQ hashes (placeholder until the
//! multi-index lands: a flat scan, which gives the same answers).

/// Index arrays for `hashes` (offsets, ids).
pub(crate) fn build(_hashes: &[[u8; 32]]) -> (Vec<u32>, Vec<u32>) {
    (Vec::new(), Vec::new())
}

/// Checks index arrays read from a file.
pub(crate) fn validate(_hashes: &[[u8; 32]], _offsets: &[u32], _ids: &[u32]) -> Result<(), String> {
    Ok(())
}

/// Every hash within `radius` of `q`: (position, distance).
pub(crate) fn query(
    hashes: &[[u8; 32]],
    _offsets: &[u32],
    _ids: &[u32],
    q: &[u8; 32],
    radius: u32,
    out: &mut Vec<(u32, u32)>,
) {
    for (i, h) in hashes.iter().enumerate() {
        let d: u32 = h.iter().zip(q).map(|(a, b)| (a ^ b).count_ones()).sum();
        if d <= radius {
            out.push((i as u32, d));
        }
    }
}
