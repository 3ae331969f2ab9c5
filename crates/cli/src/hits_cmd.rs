//! `hashscan hits`: cases (or every image) with their circumstances.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use hashscan_store::{CaseStore, Hit, HitFilter, SqliteStore};

#[derive(Args)]
pub struct HitsArgs {
    /// Where scan results live.
    #[arg(long, default_value = crate::DEFAULT_DATA_DIR, env = "HASHSCAN_DATA_DIR")]
    data_dir: PathBuf,
    /// List every image seen with its score, not only cases.
    #[arg(long)]
    all: bool,
    /// Only images scoring at least this.
    #[arg(long)]
    min_score: Option<f64>,
    /// Only this scan.
    #[arg(long)]
    scan: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Jsonl,
    Csv,
}

/// The path of the results database inside a data directory.
pub fn db_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("hashscan.db")
}

pub async fn run(args: HitsArgs) -> anyhow::Result<ExitCode> {
    let db = db_path(&args.data_dir);
    if !db.exists() {
        anyhow::bail!("no results in {} (run `hashscan scan` or `hashscan demo` first)", args.data_dir.display());
    }
    if let Some(s) = args.min_score.filter(|s| !(0.0..=1.0).contains(s)) {
        anyhow::bail!("--min-score must be between 0 and 1, got {s}");
    }
    let store = SqliteStore::open(&db).with_context(|| format!("cannot open {}", db.display()))?;
    let hits = store.hits(HitFilter { all: args.all, min_score: args.min_score, scan: args.scan }).await?;
    print_hits(&hits, args.format)?;
    Ok(ExitCode::SUCCESS)
}

pub fn print_hits(hits: &[Hit], format: Format) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Jsonl => {
            for h in hits {
                writeln!(out, "{}", serde_json::to_string(h)?)?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "image_url",
                "page_urls",
                "host",
                "score",
                "match",
                "match_algo",
                "distance",
                "reference_version",
                "md5",
                "sha1",
                "sha256",
                "blake3",
                "pdq",
                "pdq_quality",
                "reasons",
                "status",
                "first_seen",
                "last_seen",
                "scan",
            ])?;
            for h in hits {
                w.write_record([
                    h.image_url.clone(),
                    h.page_urls.join(" "),
                    h.host.clone(),
                    format!("{:.3}", h.score),
                    serde_json::to_value(h.match_kind)?.as_str().unwrap_or_default().to_string(),
                    h.match_algo.clone().unwrap_or_default(),
                    h.distance.map(|d| d.to_string()).unwrap_or_default(),
                    h.reference_version.clone().unwrap_or_default(),
                    h.md5.clone(),
                    h.sha1.clone(),
                    h.sha256.clone(),
                    h.blake3.clone(),
                    h.pdq.clone().unwrap_or_default(),
                    h.pdq_quality.map(|q| q.to_string()).unwrap_or_default(),
                    serde_json::to_string(&h.reasons)?,
                    h.status.clone(),
                    h.first_seen.clone(),
                    h.last_seen.clone(),
                    h.scan.clone(),
                ])?;
            }
            w.flush()?;
        }
        Format::Table => {
            writeln!(out, "{:<6} {:<6} {:<7} {:<6} {:<24} IMAGE", "SCORE", "MATCH", "ALGO", "PAGES", "FIRST SEEN")?;
            for h in hits {
                writeln!(
                    out,
                    "{:<6.3} {:<6} {:<7} {:<6} {:<24} {}",
                    h.score,
                    serde_json::to_value(h.match_kind)?.as_str().unwrap_or_default(),
                    h.match_algo.as_deref().unwrap_or("-"),
                    h.page_urls.len(),
                    h.first_seen,
                    h.image_url
                )?;
            }
            writeln!(out, "{} image(s)", hits.len())?;
        }
    }
    Ok(())
}
