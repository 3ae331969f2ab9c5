//! `hashscan hash`: the digests of local files, as the fetcher computes them.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use hashscan_hash::{CryptoAlgo, Digests, MultiHasher};

#[derive(Args)]
pub struct HashArgs {
    /// Files to hash.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Jsonl,
}

fn hash_file(path: &PathBuf) -> std::io::Result<Digests> {
    let mut f = std::fs::File::open(path)?;
    let mut h = MultiHasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}

pub async fn run(args: HashArgs) -> anyhow::Result<ExitCode> {
    let out = std::io::stdout();
    let mut out = out.lock();
    let mut failed = false;
    for file in &args.files {
        let name = file.display().to_string();
        match (hash_file(file), args.format) {
            (Ok(d), Format::Jsonl) => {
                let mut obj = serde_json::json!({ "file": name, "bytes": d.bytes });
                for a in CryptoAlgo::ALL {
                    obj[a.name()] = d.hex(a).into();
                }
                writeln!(out, "{obj}")?;
            }
            (Ok(d), Format::Table) => {
                writeln!(out, "{name}")?;
                writeln!(out, "  bytes   {}", d.bytes)?;
                for a in CryptoAlgo::ALL {
                    writeln!(out, "  {:<7} {}", a.name(), d.hex(a))?;
                }
            }
            (Err(e), Format::Jsonl) => {
                failed = true;
                writeln!(out, "{}", serde_json::json!({ "file": name, "error": e.to_string() }))?;
            }
            (Err(e), Format::Table) => {
                failed = true;
                eprintln!("error: {name}: {e}");
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
