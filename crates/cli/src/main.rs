//! `hashscan`: the command line of the hash-only image scanner.
//!
//! Subcommands map to what a hotline does: `scan` a part of the web, look at
//! the `hits`, `hash` local files, `refset check` a reference file, and
//! `demo` the whole path against the bundled loopback test web.

mod cluster_cmd;
mod decide_cmd;
mod demo;
mod eval_cmd;
mod harden;
mod hash_cmd;
mod hits_cmd;
mod match_cmd;
mod progress;
mod recheck_cmd;
mod refset_cmd;
mod scan_cmd;
mod schedule_cmd;
mod serve_cmd;
mod store_args;
mod user_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Hash-only open-web image scanner for child-protection hotlines.
#[derive(Parser)]
#[command(name = "hashscan", version, about, long_about = None)]
struct Cli {
    /// Log format on stderr (default: text; JSON for `worker`).
    #[arg(long, global = true, value_enum, env = "HASHSCAN_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Start the bundled test web on loopback, scan it, and print the hits.
    Demo(demo::DemoArgs),
    /// Crawl from seeds, hash every image, match against a reference set
    /// (here, or with `submit`/`status` on a cluster).
    Scan(Box<scan_cmd::ScanCli>),
    /// Run one role of a cluster (scheduler, fetcher or matcher) until SIGTERM.
    Worker(cluster_cmd::WorkerArgs),
    /// Record an analyst's decision on a case (confirmed, not_abuse,
    /// escalate, open) and rescore the images around it.
    Decide(decide_cmd::DecideArgs),
    /// Serve the analysts' review service (queue, cases, claims, decisions,
    /// audit log) over HTTP until SIGTERM.
    Serve(serve_cmd::ServeArgs),
    /// Review users: add, disable, reset a password, make an API token.
    User {
        #[command(subcommand)]
        command: user_cmd::UserCommand,
    },
    /// Re-check whether the images of cases are still online; record when they went.
    Recheck(recheck_cmd::RecheckArgs),
    /// Measure the risk score against a web whose truth is known.
    Eval(Box<eval_cmd::EvalArgs>),
    /// List cases (or every image with --all) from the data directory.
    Hits(hits_cmd::HitsArgs),
    /// Print the hashes of local files.
    Hash(hash_cmd::HashArgs),
    /// Match hash records (JSON Lines from `hashscan hash`) against a reference set offline.
    Match(match_cmd::MatchArgs),
    /// Reference-set tools: check lists, build an index.
    Refset {
        #[command(subcommand)]
        command: refset_cmd::RefsetCommand,
    },
}

/// Default data directory: results of scans live here.
pub(crate) const DEFAULT_DATA_DIR: &str = "hashscan-data";

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HASHSCAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    // Before anything holds image bytes: no core file may ever contain them.
    if let Err(e) = harden::forbid_core_dumps() {
        eprintln!("error: cannot disable core dumps: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    // Workers are services: JSON lines at info level for the log shipper.
    let (default_format, level) = match cli.command {
        Command::Worker(_) => (LogFormat::Json, "info"),
        Command::Serve(_) => (LogFormat::Text, "info"),
        _ => (LogFormat::Text, "warn"),
    };
    init_logging(cli.log_format.unwrap_or(default_format), level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Scan(cli) => match cli.action {
                Some(action) => cluster_cmd::scan(action).await,
                None => scan_cmd::run(cli.run).await,
            },
            Command::Worker(args) => cluster_cmd::worker(args).await,
            Command::Decide(args) => decide_cmd::run(args).await,
            Command::Serve(args) => serve_cmd::run(args).await,
            Command::User { command } => user_cmd::run(command).await,
            Command::Recheck(args) => recheck_cmd::run(args).await,
            Command::Eval(args) => eval_cmd::run(*args).await,
            Command::Hits(args) => hits_cmd::run(args).await,
            Command::Hash(args) => hash_cmd::run(args).await,
            Command::Match(args) => match_cmd::run(args),
            Command::Refset { command } => refset_cmd::run(command),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
