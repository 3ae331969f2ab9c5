//! `hashscan serve`: the analysts' review service (queue, cases, claims,
//! decisions, audit log) over HTTP on the data directory, until SIGTERM or
//! Ctrl-C. See docs/review.md.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hashscan_review::{ReviewConfig, ReviewError};

use crate::store_args::StoreArgs;

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on. The service speaks plain HTTP and its cookie
    /// is `Secure`: anywhere but loopback, put a TLS proxy in front.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// How long a claim holds a case, in minutes.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=24 * 60))]
    lease_minutes: u64,
    /// The review threshold for the rescoring after each decision.
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
    /// A reverse proxy (CIDR) whose `X-Forwarded-For` is believed, so that
    /// the login rate limit and the audit log see analysts' addresses
    /// (repeatable; none by default).
    #[arg(long = "trust-proxy", value_name = "CIDR")]
    trust_proxy: Vec<ipnet::IpNet>,
}

/// The config `serve` runs with.
fn config(args: &ServeArgs) -> anyhow::Result<ReviewConfig> {
    if !(0.0..=1.0).contains(&args.threshold) {
        anyhow::bail!("--threshold must be between 0 and 1, got {}", args.threshold);
    }
    Ok(ReviewConfig {
        lease: Duration::from_secs(args.lease_minutes * 60),
        threshold: args.threshold,
        trusted_proxies: args.trust_proxy.clone(),
        ..ReviewConfig::default()
    })
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = config(&args)?;
    let add_hint = match &args.store.database_url {
        Some(_) => "add a user first: `hashscan user add NAME --role admin` with the same HASHSCAN_DATABASE_URL (reads the password from stdin)".to_string(),
        None => format!(
            "add a user first: `hashscan user add NAME --role admin --data-dir {}` (reads the password from stdin)",
            args.store.data_dir.display()
        ),
    };
    if !args.store.exists() {
        anyhow::bail!("no results database in {}; {add_hint}", args.store.describe());
    }
    let store = args.store.open().await?;
    if !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "listening beyond loopback: serve it only behind a TLS proxy (the session cookie is Secure)");
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!("review service on http://{} (data in {})", listener.local_addr()?, args.store.describe());
    match hashscan_review::serve(listener, store, config, shutdown()).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(ReviewError::NoUsers) => anyhow::bail!("no review users in {}; {add_hint}", args.store.describe()),
        Err(e) => Err(e.into()),
    }
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hits_cmd::db_path;
    use hashscan_store::SqliteStore;

    fn args(dir: &std::path::Path) -> ServeArgs {
        ServeArgs {
            store: StoreArgs { data_dir: dir.to_path_buf(), database_url: None },
            listen: "127.0.0.1:0".parse().unwrap(),
            lease_minutes: 15,
            threshold: 0.5,
            trust_proxy: vec![],
        }
    }

    #[tokio::test]
    async fn serve_refuses_to_start_without_a_database_or_users_and_says_how_to_add_one() {
        let d = tempfile::tempdir().unwrap();
        let err = run(args(d.path())).await.unwrap_err().to_string();
        assert!(err.contains("hashscan user add NAME --role admin --data-dir"), "{err}");
        SqliteStore::open(&db_path(d.path())).unwrap();
        let err = run(args(d.path())).await.unwrap_err().to_string();
        assert!(err.contains("no review users") && err.contains("hashscan user add"), "{err}");
        let err = run(ServeArgs { threshold: 2.0, ..args(d.path()) }).await.unwrap_err().to_string();
        assert!(err.contains("--threshold"), "{err}");
    }

    #[test]
    fn the_lease_comes_from_minutes() {
        let d = tempfile::tempdir().unwrap();
        let c = config(&ServeArgs { lease_minutes: 3, ..args(d.path()) }).unwrap();
        assert_eq!((c.lease, c.threshold), (Duration::from_secs(180), 0.5));
    }
}
