//! Conformance of decode + PDQ, exactly as the fetcher runs them, against
//! hashes from Meta's C++ reference (`shared/conformance/pdq`, see its README).
//!
//! * Lossless inputs (PNG): the same hash bits and quality as `reference.tsv`.
//! * JPEG/WebP through our decoder: within 4 bits when the reference quality
//!   is at least 80 (decoders differ slightly from the libjpeg-turbo that
//!   made the reference).
//! * `dihedral.tsv`: all eight transforms, with the same two rules.
//! * Fast mode: its distance to exact mode is measured and bounded.
//!
//! Run with `--nocapture` to see the per-file distance table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hashscan_decode::{DecodeLimits, ImageHasher, Mode};
use hashscan_pdq::{Dihedral, PdqDihedral, PdqHash, PdqOutput};

/// Lossy inputs may differ from the reference by this many bits…
const LOSSY_TOLERANCE: u32 = 4;
/// …when the reference quality is at least this.
const LOSSY_MIN_QUALITY: u8 = 80;

fn conformance_dir() -> PathBuf {
    let dir = match std::env::var_os("HASHSCAN_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/pdq"),
    };
    assert!(
        dir.join("reference.tsv").is_file(),
        "PDQ conformance data not found at {} (set HASHSCAN_CONFORMANCE_DIR, or put the \
         `shared/` folder beside the repository); refusing to pass without it",
        dir.display()
    );
    dir
}

/// Rows of a TSV with a header, as maps from column name to value.
fn read_tsv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> =
        lines.next().unwrap_or_else(|| panic!("{} is empty", path.display())).split('\t').map(str::to_owned).collect();
    lines
        .map(|line| {
            header
                .iter()
                .cloned()
                .zip(line.split('\t').map(str::to_owned).chain(std::iter::repeat(String::new())))
                .collect()
        })
        .collect()
}

struct FileResult {
    file: String,
    lossless: bool,
    width: u32,
    height: u32,
    ref_hash: PdqHash,
    ref_quality: u8,
    ours: PdqOutput,
    dihedral: PdqDihedral,
    /// Fast mode's hash and the DCT scale it decoded at.
    fast: PdqOutput,
    fast_scale: u8,
}

impl FileResult {
    fn distance(&self) -> u32 {
        self.ours.hash.hamming(&self.ref_hash)
    }
}

/// Every file of `reference.tsv`, decoded and hashed once for all tests.
fn results() -> &'static Vec<FileResult> {
    static RESULTS: OnceLock<Vec<FileResult>> = OnceLock::new();
    RESULTS.get_or_init(|| {
        let dir = conformance_dir();
        let rows = read_tsv(&dir.join("reference.tsv"));
        assert!(rows.len() >= 49, "reference.tsv has only {} rows", rows.len());
        let mut exact = ImageHasher::new(DecodeLimits::default(), Mode::Exact);
        let mut fast = ImageHasher::new(DecodeLimits::default(), Mode::Fast);
        let mut out = Vec::new();
        for row in rows {
            let file = row["file"].clone();
            let path = dir.join(&file);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let img = exact.pdq(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
            let (w, h) = (img.probe.width, img.probe.height);
            assert_eq!(
                (w.to_string(), h.to_string()),
                (row["width"].clone(), row["height"].clone()),
                "{file}: decoded size differs from reference.tsv"
            );
            let ours = img.pdq;
            let (dihedral, _) = exact.dihedral(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
            let f = fast.pdq(&bytes).unwrap_or_else(|e| panic!("{file} (fast): {e}"));
            out.push(FileResult {
                lossless: file.to_ascii_lowercase().ends_with(".png"),
                width: w,
                height: h,
                ref_hash: PdqHash::from_hex(&row["pdq_hex"]).expect("reference hex"),
                ref_quality: row["quality"].parse().expect("reference quality"),
                ours,
                dihedral,
                fast: f.pdq,
                fast_scale: f.scale,
                file,
            });
        }
        print_table(&out);
        out
    })
}

fn print_table(results: &[FileResult]) {
    println!("\nPDQ conformance: distance to Meta's C++ (reference.tsv)");
    println!("{:<58} {:>11} {:>6} {:>6} {:>5} {:>10}", "file", "size", "q_ref", "q_ours", "bits", "fast(1/k)");
    for r in results {
        println!(
            "{:<58} {:>11} {:>6} {:>6} {:>5} {:>6} 1/{}{}",
            r.file,
            format!("{}x{}", r.width, r.height),
            r.ref_quality,
            r.ours.quality,
            r.distance(),
            r.fast.hash.hamming(&r.ours.hash),
            r.fast_scale,
            if r.lossless { "  (lossless: must be 0)" } else { "" }
        );
    }
    let lossless: Vec<_> = results.iter().filter(|r| r.lossless).collect();
    let lossy: Vec<_> = results.iter().filter(|r| !r.lossless).collect();
    let exact = |v: &[&FileResult]| v.iter().filter(|r| r.distance() == 0).count();
    println!(
        "lossless: {}/{} exact; lossy: {}/{} exact, max {} bits",
        exact(&lossless),
        lossless.len(),
        exact(&lossy),
        lossy.len(),
        lossy.iter().map(|r| r.distance()).max().unwrap_or(0)
    );
}

#[test]
fn lossless_inputs_match_reference_exactly() {
    let results = results();
    let lossless: Vec<_> = results.iter().filter(|r| r.lossless).collect();
    assert!(lossless.len() >= 20, "expected the PNG inputs, found {}", lossless.len());
    assert!(
        lossless.iter().any(|r| r.file.ends_with("julia-point-symmetric.png")),
        "the strict f32 case must be part of the set"
    );
    let bad: Vec<String> = lossless
        .iter()
        .filter(|r| r.distance() != 0 || r.ours.quality != r.ref_quality)
        .map(|r| {
            format!(
                "{}: {} bits, quality {} (reference {}), got {}",
                r.file,
                r.distance(),
                r.ours.quality,
                r.ref_quality,
                r.ours.hash
            )
        })
        .collect();
    assert!(bad.is_empty(), "lossless mismatches:\n{}", bad.join("\n"));
}

#[test]
fn lossy_inputs_are_within_tolerance() {
    let results = results();
    let lossy: Vec<_> = results.iter().filter(|r| !r.lossless).collect();
    assert!(lossy.len() >= 20, "expected the JPEG/WebP inputs, found {}", lossy.len());
    let bad: Vec<String> = lossy
        .iter()
        .filter(|r| r.ref_quality >= LOSSY_MIN_QUALITY && r.distance() > LOSSY_TOLERANCE)
        .map(|r| format!("{}: {} bits", r.file, r.distance()))
        .collect();
    assert!(bad.is_empty(), "lossy inputs too far from reference:\n{}", bad.join("\n"));
    // Where the reference is confident, so must we be.
    for r in &lossy {
        if r.ref_quality >= LOSSY_MIN_QUALITY {
            assert!(r.ours.quality >= LOSSY_MIN_QUALITY - 10, "{}: quality {}", r.file, r.ours.quality);
        }
    }
}

#[test]
fn plain_hash_equals_dihedral_original() {
    for r in results() {
        if (r.width, r.height) != (64, 64) {
            assert_eq!(r.dihedral.get(Dihedral::Original), r.ours.hash, "{}", r.file);
            assert_eq!(r.dihedral.quality, r.ours.quality, "{}", r.file);
        }
    }
}

#[test]
fn dihedral_hashes_match_reference() {
    let dir = conformance_dir();
    let rows = read_tsv(&dir.join("dihedral.tsv"));
    let by_file: BTreeMap<&str, &FileResult> = results().iter().map(|r| (r.file.as_str(), r)).collect();
    let mut checked_exact = 0;
    let mut bad = Vec::new();
    let mut worst_lossy = 0;
    for row in &rows {
        let file = row["file"].as_str();
        let r = by_file.get(file).unwrap_or_else(|| panic!("dihedral.tsv names {file}, not in reference.tsv"));
        let t = Dihedral::ALL
            .iter()
            .copied()
            .find(|t| t.name() == row["transform"])
            .unwrap_or_else(|| panic!("unknown transform {:?}", row["transform"]));
        let want = PdqHash::from_hex(&row["pdq_hex"]).expect("dihedral hex");
        let d = r.dihedral.get(t).hamming(&want);
        if r.lossless {
            checked_exact += 1;
            if d != 0 {
                bad.push(format!("{file} {}: {d} bits", t.name()));
            }
        } else if r.ref_quality >= LOSSY_MIN_QUALITY {
            worst_lossy = worst_lossy.max(d);
            if d > LOSSY_TOLERANCE {
                bad.push(format!("{file} {}: {d} bits (lossy)", t.name()));
            }
        }
    }
    println!("dihedral: {checked_exact} lossless transforms checked exactly; worst lossy {worst_lossy} bits");
    assert!(checked_exact >= 8 * 15, "only {checked_exact} lossless dihedral rows");
    assert!(bad.is_empty(), "dihedral mismatches:\n{}", bad.join("\n"));
}

/// Fast mode may differ from exact mode by at most this many bits on
/// images whose quality is at least [`LOSSY_MIN_QUALITY`].
const FAST_TOLERANCE: u32 = 8;

#[test]
fn fast_mode_stays_close_to_exact_mode() {
    let results = results();
    let scaled: Vec<_> = results.iter().filter(|r| r.fast_scale > 1).collect();
    assert!(scaled.len() >= 10, "the set has large JPEGs that fast mode scales: {}", scaled.len());
    let mut worst = 0;
    for r in results {
        let d = r.fast.hash.hamming(&r.ours.hash);
        if r.fast_scale == 1 {
            assert_eq!(d, 0, "{}: unscaled fast decode must equal exact", r.file);
        } else if r.ours.quality >= LOSSY_MIN_QUALITY {
            worst = worst.max(d);
            assert!(d <= FAST_TOLERANCE, "{}: fast mode {d} bits from exact", r.file);
        }
    }
    println!("fast mode: {} scaled images, worst {worst} bits from exact", scaled.len());
}
