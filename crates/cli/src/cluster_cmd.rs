//! Cluster commands: `worker` runs one role; `scan submit` and `scan status`
//! define and follow scans on a running cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use hashscan_cluster::config::WorkerConfig;
use hashscan_cluster::registry::{check_scan_id, Registry, ScanSpec};
use hashscan_cluster::roles::{self, Role};

use crate::scan_cmd::{collect_seeds, crawl_plan, CommonScanArgs, SeedArgs};

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Scheduler,
    Fetcher,
    Matcher,
}

/// `hashscan worker ROLE`.
#[derive(Args)]
pub struct WorkerArgs {
    /// Which role this process plays.
    #[arg(value_enum)]
    role: RoleArg,
    /// Worker configuration (TOML); `HASHSCAN_*` variables override it.
    #[arg(long, value_name = "FILE", env = "HASHSCAN_CONFIG")]
    config: Option<PathBuf>,
    /// Address of /metrics, /healthz and /readyz (overrides http.listen).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
}

/// Cluster scan actions.
#[derive(Subcommand)]
pub enum ScanAction {
    /// Define a scan on a running cluster (a scheduler worker picks it up).
    Submit(Box<SubmitArgs>),
    /// Progress of the cluster's scans, or of one.
    Status(StatusArgs),
    /// Recurring scans of a data directory with their next run, and its latest scans.
    List(crate::schedule_cmd::ListArgs),
    /// Pause a recurring scan: it waits (a run under way finishes).
    Pause(crate::schedule_cmd::ScheduleArgs),
    /// Resume a paused recurring scan (a due run starts at once).
    Resume(crate::schedule_cmd::ScheduleArgs),
    /// Stop a recurring scan: its process ends after the run under way.
    Stop(crate::schedule_cmd::ScheduleArgs),
}

#[derive(Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    seeds: SeedArgs,
    /// Run again every DURATION (e.g. `1d`) until `hashscan scan stop ID
    /// --config FILE`; run n > 1 is scan `ID-n`, submitted by the scheduler
    /// that finished the run before, learning where to look.
    #[arg(long, value_name = "DURATION")]
    every: Option<humantime::Duration>,
    /// With --every: stop after this many runs.
    #[arg(long, requires = "every")]
    runs: Option<u64>,
    /// Worker configuration (for the Redis address).
    #[arg(long, value_name = "FILE", env = "HASHSCAN_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    common: CommonScanArgs,
}

#[derive(Args)]
pub struct StatusArgs {
    /// One scan (default: every scan, one line each).
    scan: Option<String>,
    /// Worker configuration (for the Redis address).
    #[arg(long, value_name = "FILE", env = "HASHSCAN_CONFIG")]
    config: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn load(config: Option<&PathBuf>) -> anyhow::Result<WorkerConfig> {
    Ok(WorkerConfig::load(config.map(|p| p.as_path()))?)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

pub async fn worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let mut config = load(args.config.as_ref())?;
    if let Some(listen) = args.listen {
        config.http.listen = listen;
    }
    let role = match args.role {
        RoleArg::Scheduler => Role::Scheduler,
        RoleArg::Fetcher => Role::Fetcher,
        RoleArg::Matcher => Role::Matcher,
    };
    roles::run(role, config, shutdown_signal(), |addr| {
        eprintln!("hashscan worker {}: metrics on http://{addr}/metrics", role.name());
    })
    .await
    .with_context(|| format!("{} worker", role.name()))?;
    Ok(ExitCode::SUCCESS)
}

pub async fn scan(action: ScanAction) -> anyhow::Result<ExitCode> {
    match action {
        ScanAction::Submit(args) => submit(*args).await,
        ScanAction::Status(args) => status(args).await,
        ScanAction::List(args) => crate::schedule_cmd::list(args).await,
        ScanAction::Pause(args) => crate::schedule_cmd::steer(args, "paused").await,
        ScanAction::Resume(args) => crate::schedule_cmd::steer(args, "active").await,
        ScanAction::Stop(args) => crate::schedule_cmd::steer(args, "stopped").await,
    }
}

async fn submit(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let config = load(args.config.as_ref())?;
    let seeds = collect_seeds(&args.seeds)?;
    let plan = crawl_plan(&args.common, seeds)?;
    let id = args.common.scan_id.clone().unwrap_or_else(crate::scan_cmd::default_scan_id);
    check_scan_id(&id)?;
    if args.runs == Some(0) {
        bail!("--runs must be at least 1");
    }
    let recurring = args.every.map(|every| hashscan_cluster::registry::Recurring {
        schedule: id.clone(),
        every_ms: std::time::Duration::from(every).as_millis().min(u64::MAX as u128) as u64,
        max_runs: args.runs,
        runs: vec![],
        base: plan.clone(),
    });
    let spec = ScanSpec { id: id.clone(), plan, recurring };
    let registry = Registry::connect(&config.redis.url, &config.redis.prefix)
        .await
        .with_context(|| format!("cannot reach Redis at {}", config.redis.url))?;
    registry.submit(&spec).await?;
    if args.common.json {
        println!("{}", serde_json::json!({ "scan": id, "status": "queued" }));
    } else {
        println!("{id}");
        eprintln!("submitted scan {id}; follow it with `hashscan scan status {id}`");
    }
    Ok(ExitCode::SUCCESS)
}

/// `scan list --config`: the cluster's recurring scans, then every scan.
pub async fn list(config: &PathBuf, json: bool) -> anyhow::Result<ExitCode> {
    let cfg = load(Some(config))?;
    let registry = Registry::connect(&cfg.redis.url, &cfg.redis.prefix)
        .await
        .with_context(|| format!("cannot reach Redis at {}", cfg.redis.url))?;
    let schedules = registry.schedules().await?;
    if json {
        println!("{}", serde_json::json!({ "schedules": schedules }));
    } else {
        for (name, state) in &schedules {
            println!("recurring {name}\t{state}");
        }
    }
    status(StatusArgs { scan: None, config: Some(config.clone()), json }).await
}

/// `scan pause|resume|stop ID --config`.
pub async fn steer(config: &PathBuf, id: &str, state: &str) -> anyhow::Result<ExitCode> {
    let cfg = load(Some(config))?;
    let registry = Registry::connect(&cfg.redis.url, &cfg.redis.prefix)
        .await
        .with_context(|| format!("cannot reach Redis at {}", cfg.redis.url))?;
    registry.set_schedule(id, state).await?;
    eprintln!("recurring scan {id}: {state}");
    Ok(ExitCode::SUCCESS)
}

async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let config = load(args.config.as_ref())?;
    let registry = Registry::connect(&config.redis.url, &config.redis.prefix)
        .await
        .with_context(|| format!("cannot reach Redis at {}", config.redis.url))?;
    let ids = match &args.scan {
        Some(id) => vec![id.clone()],
        None => registry.scans().await?,
    };
    let mut out = Vec::new();
    for id in ids {
        let Some(state) = registry.state(&id).await? else {
            bail!("no scan {id:?} on this cluster (prefix {})", config.redis.prefix);
        };
        out.push((id, state));
    }
    if args.json {
        for (id, state) in &out {
            let mut v = serde_json::json!({ "scan": id, "status": state.status });
            for (k, val) in &state.fields {
                // The summary is JSON already; counters are numbers.
                let parsed = serde_json::from_str::<serde_json::Value>(val).unwrap_or_else(|_| val.clone().into());
                v[k] = parsed;
            }
            println!("{v}");
        }
    } else {
        for (id, state) in &out {
            let f = |k: &str| state.fields.get(k).cloned().unwrap_or_else(|| "-".into());
            println!(
                "{id}\t{}\tpages {}\timages {}\tfailed {}\tqueued {}\tin flight {}",
                state.status,
                f("pages"),
                f("images"),
                f("failed"),
                f("queued"),
                f("in_flight")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
