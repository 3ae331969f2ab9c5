//! `hashscan hash`: the hashes of local files, exactly as the fetcher
//! computes them (same digests, same decoder, same PDQ).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use hashscan_decode::{DecodeError, DecodeLimits, ImageHasher, Mode};
use hashscan_hash::{CryptoAlgo, Digests, MultiHasher};
use hashscan_pdq::Dihedral;
use serde_json::{json, Map, Value};

#[derive(Args)]
pub struct HashArgs {
    /// Files to hash.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Also print the PDQ hashes of the 8 rotations and mirror images.
    #[arg(long)]
    dihedral: bool,
    /// How images are decoded for PDQ: `exact` decodes every pixel, `fast`
    /// decodes large JPEGs at reduced scale: ~1.8× faster on large
    /// photos, but hashes move by 8 bits (median) to 28 (measured worst); see docs/benchmarks.md.
    #[arg(long, default_value = "exact", value_parser = ["exact", "fast"])]
    pdq_mode: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Jsonl,
}

/// Streams the digests, and keeps the bytes for PDQ only when the file is
/// small enough to be decoded at all.
fn read_file(path: &PathBuf, keep_up_to: usize) -> std::io::Result<(Digests, Option<Vec<u8>>)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = MultiHasher::new();
    let mut kept = Some(Vec::new());
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        if let Some(k) = kept.as_mut() {
            if k.len() + n > keep_up_to {
                kept = None;
            } else {
                k.extend_from_slice(&buf[..n]);
            }
        }
    }
    Ok((h.finish(), kept))
}

/// The fields of one file's record, in output order.
fn record(name: &str, d: &Digests, pdq: Result<Map<String, Value>, DecodeError>) -> Map<String, Value> {
    let mut obj = Map::new();
    obj.insert("file".into(), name.into());
    obj.insert("bytes".into(), d.bytes.into());
    for a in CryptoAlgo::ALL {
        obj.insert(a.name().into(), d.hex(a).into());
    }
    match pdq {
        Ok(fields) => obj.extend(fields),
        Err(e) => {
            obj.insert("pdq_error".into(), format!("{}: {e}", e.code()).into());
        }
    }
    obj
}

fn pdq_fields(
    hasher: &mut ImageHasher,
    bytes: Option<&[u8]>,
    dihedral: bool,
) -> Result<Map<String, Value>, DecodeError> {
    let limits = *hasher.limits();
    let Some(bytes) = bytes else {
        return Err(DecodeError::FileTooLarge { bytes: limits.max_bytes + 1, limit: limits.max_bytes });
    };
    let img = hasher.pdq(bytes)?;
    let mut m = Map::new();
    m.insert("pdq".into(), img.pdq.hash.to_hex().into());
    m.insert("pdq_quality".into(), img.pdq.quality.into());
    m.insert("width".into(), img.probe.width.into());
    m.insert("height".into(), img.probe.height.into());
    m.insert("format".into(), img.probe.format.name().into());
    if dihedral {
        let (d, _) = hasher.dihedral(bytes)?;
        let all: Map<String, Value> =
            Dihedral::ALL.iter().map(|t| (t.name().to_string(), d.get(*t).to_hex().into())).collect();
        m.insert("pdq_dihedral".into(), Value::Object(all));
    }
    Ok(m)
}

pub async fn run(args: HashArgs) -> anyhow::Result<ExitCode> {
    let mode: Mode = args.pdq_mode.parse().map_err(anyhow::Error::msg)?;
    let limits = DecodeLimits::default();
    let mut hasher = ImageHasher::new(limits, mode);
    let out = std::io::stdout();
    let mut out = out.lock();
    let mut failed = false;
    for file in &args.files {
        let name = file.display().to_string();
        let (d, kept) = match read_file(file, limits.max_bytes) {
            Ok(r) => r,
            Err(e) => {
                failed = true;
                match args.format {
                    Format::Jsonl => writeln!(out, "{}", json!({ "file": name, "error": e.to_string() }))?,
                    Format::Table => eprintln!("error: {name}: {e}"),
                }
                continue;
            }
        };
        let rec = record(&name, &d, pdq_fields(&mut hasher, kept.as_deref(), args.dihedral));
        match args.format {
            Format::Jsonl => writeln!(out, "{}", Value::Object(rec))?,
            Format::Table => {
                writeln!(out, "{name}")?;
                for (k, v) in rec.iter().skip(1) {
                    match v {
                        Value::Object(inner) => {
                            for (t, h) in inner {
                                writeln!(out, "  {:<11} {}", format!("pdq:{t}"), h.as_str().unwrap_or_default())?;
                            }
                        }
                        Value::String(s) => writeln!(out, "  {k:<11} {s}")?,
                        other => writeln!(out, "  {k:<11} {other}")?,
                    }
                }
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
