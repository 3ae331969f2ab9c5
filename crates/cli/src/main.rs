//! `hashscan`: the command line of the hash-only image scanner.
//!
//! Subcommands map to what a hotline does: `scan` a part of the web, look at
//! the `hits`, `hash` local files, `refset check` a reference file, and
//! `demo` the whole path against the bundled loopback test web.

mod demo;
mod hash_cmd;
mod hits_cmd;
mod match_cmd;
mod progress;
mod refset_cmd;
mod scan_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Hash-only open-web image scanner for child-protection hotlines.
#[derive(Parser)]
#[command(name = "hashscan", version, about, long_about = None)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "HASHSCAN_LOG_FORMAT")]
    log_format: LogFormat,
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
    /// Crawl from seeds, hash every image, match against a reference set.
    Scan(Box<scan_cmd::ScanArgs>),
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

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HASHSCAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
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
            Command::Scan(args) => scan_cmd::run(*args).await,
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
