//! `hashscan decide`: record an analyst's decision on a case from the
//! command line, and let it move the scores around it at once.
//!
//! The review service (`hashscan serve`) is where analysts normally decide;
//! this is the same step for scripts and for a hotline without the service.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use hashscan_matcher::rescore::Rescorer;
use hashscan_store::{HitFilter, CASE_STATUSES};

use crate::store_args::StoreArgs;

#[derive(Args)]
pub struct DecideArgs {
    /// The image's BLAKE3 (hex), as `hashscan hits` prints it.
    image: String,
    /// The decision: confirmed, not_abuse, escalate, or open (undo).
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(CASE_STATUSES))]
    status: String,
    #[command(flatten)]
    store: StoreArgs,
    /// The review threshold for the rescoring that follows.
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
}

pub async fn run(args: DecideArgs) -> anyhow::Result<ExitCode> {
    let key: [u8; 32] = hex::decode(args.image.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("{:?} is not a BLAKE3 hash (64 hex digits)", args.image))?;
    if !(0.0..=1.0).contains(&args.threshold) {
        anyhow::bail!("--threshold must be between 0 and 1, got {}", args.threshold);
    }
    if !args.store.exists() {
        anyhow::bail!("no results in {} (run `hashscan scan` first)", args.store.describe());
    }
    let store = args.store.open().await?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    store.decide(key, &args.status, now).await?;
    let scan = store
        .hits(HitFilter::default())
        .await?
        .into_iter()
        .find(|h| h.blake3 == hex::encode(key))
        .map(|h| h.scan)
        .unwrap_or_default();
    let rescorer = Rescorer::new(store.clone(), store, args.threshold);
    let done = rescorer.after_decision(key, &scan, now).await?;
    eprintln!(
        "{} is {}; {} image(s) around it rescored, {} at or above the threshold",
        hex::encode(key),
        args.status,
        done.scored,
        done.cases
    );
    Ok(ExitCode::SUCCESS)
}
