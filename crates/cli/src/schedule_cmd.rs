//! Recurring scans in embedded mode: `hashscan scan --every DURATION`, and
//! `hashscan scan list|pause|resume|stop` to see and steer them from
//! another terminal.
//!
//! Each run after the first learns from the ones before: pages where
//! listed or confirmed material was found become the first seeds (so they
//! are visited first, and their surroundings are explored the full depth
//! from them), and a host where no run found any gets half the pages it
//! had last time. After each run the images of open and decided cases are
//! re-checked (`hashscan-recheck`), so removals are dated run by run. The
//! schedule lives in the data directory's store, which is how the other
//! commands reach the running process.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hashscan_embedded::ScanOptions;
use hashscan_recheck::RecheckOptions;
use hashscan_store::{ScanStore, SqliteStore, StoreError};

use crate::hits_cmd::db_path;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn open(data_dir: &Path) -> anyhow::Result<SqliteStore> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let db = db_path(data_dir);
    SqliteStore::open(&db).with_context(|| format!("cannot open {}", db.display()))
}

/// Runs `make(run_id)` every `every`, at most `max_runs` times, while the
/// schedule `id` is not paused or stopped.
pub async fn recurring(
    id: &str,
    every: Duration,
    max_runs: Option<u64>,
    data_dir: &Path,
    json: bool,
    make: impl Fn(&str) -> anyhow::Result<ScanOptions>,
) -> anyhow::Result<()> {
    let store = open(data_dir)?;
    let every_ms = every.as_millis().clamp(1, i64::MAX as u128) as i64;
    store.put_schedule(id, every_ms, max_runs.map(|n| n as i64), now_ms()).await?;
    eprintln!("recurring scan {id}: every {}, see `hashscan scan list`", humantime::format_duration(every));
    let mut runs: Vec<String> = Vec::new();
    loop {
        // Wait until due, honouring pause and stop from other processes.
        loop {
            let s = store.schedule(id).await?.ok_or_else(|| StoreError::NoSchedule(id.to_string()))?;
            match s.state.as_str() {
                "stopped" | "finished" => {
                    eprintln!("recurring scan {id}: {} after {} run(s)", s.state, s.runs);
                    return Ok(());
                }
                "paused" => tokio::time::sleep(Duration::from_millis(500)).await,
                _ => {
                    let wait = s.next_run_at.unwrap_or(0) - now_ms();
                    if wait <= 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(wait.min(500) as u64)).await;
                }
            }
        }
        let run_id = if runs.is_empty() { id.to_string() } else { format!("{id}-{}", runs.len() + 1) };
        let started = now_ms();
        let mut options = make(&run_id)?;
        if !runs.is_empty() {
            learn(&store, &runs, &mut options).await?;
        }
        let (fetch, interval) = (options.fetch.clone(), options.plan.crawl.host_interval);
        crate::scan_cmd::execute(options, data_dir, json).await?;
        // Then ask whether the images of open and decided cases are still
        // online, at the scan's pace: time to removal per host.
        let fetcher = hashscan_fetch::Fetcher::new(fetch).map_err(|e| anyhow::anyhow!("HTTP client: {e}"))?;
        let recheck = RecheckOptions { host_interval: interval, ..RecheckOptions::default() };
        let r = hashscan_recheck::recheck(std::sync::Arc::new(store.clone()), std::sync::Arc::new(fetcher), &recheck)
            .await?;
        eprintln!(
            "run {run_id}: {} case(s) re-checked: {} online, {} offline, {} unknown",
            r.cases, r.online, r.offline, r.unknown
        );
        runs.push(run_id.clone());
        store.schedule_ran(id, &run_id, started + every_ms).await?;
        if max_runs.is_some_and(|n| runs.len() as u64 >= n) {
            store.set_schedule_state(id, "finished").await?;
        }
    }
}

/// Looks first where earlier runs found listed material; spends less
/// where none ever did (`hashscan_scheduler::revisit`).
async fn learn(store: &SqliteStore, runs: &[String], options: &mut ScanOptions) -> anyhow::Result<()> {
    let l = hashscan_scheduler::revisit::learn(store, runs, &mut options.plan).await?;
    eprintln!(
        "run {}: {} page(s) with listed material first; {} host(s) without any get half their pages",
        options.scan_id, l.hot_seeds, l.capped_hosts
    );
    Ok(())
}

#[derive(Args)]
pub struct ListArgs {
    /// Where the scans are.
    #[arg(long, default_value = crate::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// A cluster's worker configuration: list the cluster's scans instead.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ScheduleArgs {
    /// The recurring scan's id (as `hashscan scan list` shows it).
    id: String,
    /// Where the scans are.
    #[arg(long, default_value = crate::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// A cluster's worker configuration: steer the cluster's schedule instead.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn when(ms: i64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)).to_string()
}

/// `scan list`: recurring scans with their next run, and the latest scans.
pub async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    if let Some(config) = &args.config {
        return crate::cluster_cmd::list(config, args.json).await;
    }
    if !db_path(&args.data_dir).exists() {
        anyhow::bail!("no scans in {} (run `hashscan scan` first)", args.data_dir.display());
    }
    let store = open(&args.data_dir)?;
    let schedules = store.schedules().await?;
    let scans = store.scan_list(50).await?;
    if args.json {
        let scans: Vec<serde_json::Value> = scans
            .iter()
            .map(|(id, started, finished, summary)| {
                serde_json::json!({
                    "id": id, "started_at": when(*started), "finished_at": finished.map(when),
                    "summary": summary.as_deref().and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()),
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "schedules": schedules, "scans": scans }));
        return Ok(ExitCode::SUCCESS);
    }
    if !schedules.is_empty() {
        println!("{:<28} {:<9} {:>10} {:>5}  {:<28} NEXT RUN", "RECURRING", "STATE", "EVERY", "RUNS", "LAST RUN");
        for s in &schedules {
            let next = match s.state.as_str() {
                "active" | "paused" => s.next_run_at.map(when).unwrap_or_default(),
                _ => "-".into(),
            };
            let every = humantime::format_duration(Duration::from_millis(s.every_ms.max(0) as u64)).to_string();
            println!(
                "{:<28} {:<9} {:>10} {:>5}  {:<28} {next}",
                s.id,
                s.state,
                every,
                s.runs,
                s.last_run.as_deref().unwrap_or("-")
            );
        }
        println!();
    }
    println!("{:<28} {:<22} {:<22} {:>6} {:>7} {:>6}", "SCAN", "STARTED", "FINISHED", "PAGES", "IMAGES", "CASES");
    for (id, started, finished, summary) in &scans {
        let v: serde_json::Value = summary.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
        let n = |k: &str| v["summary"][k].as_u64().map_or("-".into(), |n| n.to_string());
        println!(
            "{id:<28} {:<22} {:<22} {:>6} {:>7} {:>6}",
            when(*started),
            finished.map_or("running".into(), when),
            n("pages"),
            n("images"),
            v["cases"].as_u64().map_or("-".into(), |n| n.to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `scan pause|resume|stop ID`.
pub async fn steer(args: ScheduleArgs, state: &str) -> anyhow::Result<ExitCode> {
    if let Some(config) = &args.config {
        return crate::cluster_cmd::steer(config, &args.id, state).await;
    }
    if !db_path(&args.data_dir).exists() {
        anyhow::bail!("no scans in {} (run `hashscan scan` first)", args.data_dir.display());
    }
    let store = open(&args.data_dir)?;
    store.set_schedule_state(&args.id, state).await?;
    eprintln!("recurring scan {}: {state}", args.id);
    Ok(ExitCode::SUCCESS)
}
