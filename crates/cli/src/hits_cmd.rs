//! `hashscan hits`: cases (or every image) with their circumstances.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use hashscan_store::{Hit, HitFilter};

use crate::store_args::StoreArgs;

#[derive(Args)]
pub struct HitsArgs {
    #[command(flatten)]
    store: StoreArgs,
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
    if !args.store.exists() {
        anyhow::bail!("no results in {} (run `hashscan scan` or `hashscan demo` first)", args.store.describe());
    }
    if let Some(s) = args.min_score.filter(|s| !(0.0..=1.0).contains(s)) {
        anyhow::bail!("--min-score must be between 0 and 1, got {s}");
    }
    let store = args.store.open().await?;
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
                "factors",
                "status",
                "online",
                "offline_since",
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
                    serde_json::to_string(&h.factors)?,
                    h.status.clone(),
                    h.online.map(|o| o.to_string()).unwrap_or_default(),
                    h.offline_since.clone().unwrap_or_default(),
                    h.first_seen.clone(),
                    h.last_seen.clone(),
                    h.scan.clone(),
                ])?;
            }
            w.flush()?;
        }
        Format::Table => {
            writeln!(
                out,
                "{:<6} {:<6} {:<7} {:<6} {:<24} {:<30} IMAGE",
                "SCORE", "MATCH", "ALGO", "PAGES", "FIRST SEEN", "WHY"
            )?;
            for h in hits {
                writeln!(
                    out,
                    "{:<6.3} {:<6} {:<7} {:<6} {:<24} {:<30} {}",
                    h.score,
                    serde_json::to_value(h.match_kind)?.as_str().unwrap_or_default(),
                    h.match_algo.as_deref().unwrap_or("-"),
                    h.page_urls.len(),
                    h.first_seen,
                    why(h),
                    h.image_url
                )?;
            }
            writeln!(out, "{} image(s)", hits.len())?;
        }
    }
    Ok(())
}

/// The two factors that weigh most, e.g. `cooccurrence .62 host .58`:
/// enough for a table row; `--format jsonl` has every factor with its note.
fn why(h: &Hit) -> String {
    let mut f: Vec<_> = h.factors.iter().filter(|f| f.factor != "ubiquity").collect();
    f.sort_by(|a, b| (b.value * b.weight).total_cmp(&(a.value * a.weight)));
    let text: Vec<String> = f.iter().take(2).map(|f| format!("{} {:.2}", f.factor, f.value)).collect();
    if text.is_empty() {
        "-".into()
    } else {
        text.join(" ")
    }
}
