//! Worker configuration: defaults, then a TOML file, then environment
//! variables, then flags (each overriding the one before).
//!
//! Decision: figment does the layering, and its errors name the key and
//! the source ("invalid type: found string \"x\", expected u16 for key
//! `amqp.prefetch` in workers.toml"), which is what an operator needs. The
//! documented variables (`HASHSCAN_AMQP_URL`, `HASHSCAN_REDIS_URL`, …) are
//! mapped by name; any other key can be set as `HASHSCAN_SECTION__KEY`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Everything a worker process needs. Every field has a default that runs
/// against the services of a developer machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// RabbitMQ.
    pub amqp: AmqpSection,
    /// Redis.
    pub redis: RedisSection,
    /// The results store.
    pub store: StoreSection,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub http: HttpSection,
    /// The fetcher role.
    pub fetcher: FetcherSection,
    /// The matcher role.
    pub matcher: MatcherSection,
    /// The scheduler role.
    pub scheduler: SchedulerSection,
}

/// RabbitMQ connection and topology.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpSection {
    /// `amqp://user:pass@host:port/vhost`.
    pub url: String,
    /// Queue name prefix (one deployment per prefix).
    pub prefix: String,
    /// Unacked deliveries per consumer.
    pub prefetch: u16,
    /// Deliveries of one message before it is dead-lettered.
    pub delivery_limit: u32,
}

impl Default for AmqpSection {
    fn default() -> Self {
        let d = hashscan_bus_amqp::AmqpConfig::default();
        Self { url: d.url, prefix: d.prefix, prefetch: d.prefetch, delivery_limit: d.delivery_limit }
    }
}

/// Redis connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSection {
    /// `redis://host:port/db`.
    pub url: String,
    /// Key prefix (one deployment per prefix).
    pub prefix: String,
}

impl Default for RedisSection {
    fn default() -> Self {
        Self { url: "redis://127.0.0.1:6379/".into(), prefix: "hashscan".into() }
    }
}

/// Where sightings, cases and fetch records go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// The data directory: its SQLite database is shared by the workers of
    /// one host (WAL mode, busy timeout). Unused when `url` is set.
    pub data_dir: PathBuf,
    /// A PostgreSQL URL (`postgres://user:password@host/db`): workers on
    /// many hosts, and the review service, share one database server.
    /// Usually given as `HASHSCAN_DATABASE_URL`, so the password stays out
    /// of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self { data_dir: PathBuf::from("hashscan-data"), url: None }
    }
}

/// The worker's HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Address for `/metrics`, `/healthz` and `/readyz` (port 0: any free port,
    /// printed at start).
    pub listen: SocketAddr,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 0)) }
    }
}

/// Fetcher settings: the network is the deployment's, not a scan's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetcherSection {
    /// Parallel fetches in this process.
    pub concurrency: usize,
    /// Otherwise forbidden ranges this deployment may reach (CIDR).
    pub allow_net: Vec<String>,
    /// Host pins, `HOST=IP`.
    pub resolve: Vec<String>,
    /// User-Agent (default: token, contact URL, purpose).
    pub user_agent: Option<String>,
    /// Seconds to connect.
    pub connect_timeout_secs: f64,
    /// Seconds to response headers.
    pub first_byte_timeout_secs: f64,
    /// Seconds for a whole request.
    pub fetch_timeout_secs: f64,
}

impl Default for FetcherSection {
    fn default() -> Self {
        Self {
            concurrency: 16,
            allow_net: vec![],
            resolve: vec![],
            user_agent: None,
            connect_timeout_secs: 10.0,
            first_byte_timeout_secs: 20.0,
            fetch_timeout_secs: 60.0,
        }
    }
}

/// Matcher settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatcherSection {
    /// Parallel match loops in this process.
    pub concurrency: usize,
    /// The reference set (list, TOML set or built index); reloaded on change.
    pub reference: Option<PathBuf>,
    /// Score at which an image becomes a case.
    pub threshold: f64,
}

impl Default for MatcherSection {
    fn default() -> Self {
        Self { concurrency: 4, reference: None, threshold: 0.5 }
    }
}

/// Scheduler settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerSection {
    /// Tasks in flight across the cluster.
    pub max_in_flight: usize,
    /// After a scheduler restart, how long tasks handed out before it may
    /// still report before they are handed out again.
    pub resume_grace_secs: f64,
    /// How long a task may go without a report before it is handed out
    /// again (a fetcher died with it, or it was dead-lettered).
    pub task_lease_secs: f64,
}

impl Default for SchedulerSection {
    fn default() -> Self {
        Self { max_in_flight: 64, resume_grace_secs: 60.0, task_lease_secs: 300.0 }
    }
}

/// The configuration could not be read; the message names key and source.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

/// Environment variables with documented names, and the keys they set.
pub const ENV_KEYS: &[(&str, &str)] = &[
    ("AMQP_URL", "amqp.url"),
    ("AMQP_PREFIX", "amqp.prefix"),
    ("REDIS_URL", "redis.url"),
    ("REDIS_PREFIX", "redis.prefix"),
    ("DATA_DIR", "store.data_dir"),
    ("DATABASE_URL", "store.url"),
    ("HTTP_LISTEN", "http.listen"),
    ("REFERENCE", "matcher.reference"),
];

impl WorkerConfig {
    /// Defaults, then `file` (if given), then `HASHSCAN_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::figment(file).extract().map_err(|e| ConfigError(e.to_string()))
    }

    /// The layered sources, for callers that add flags on top.
    pub fn figment(file: Option<&Path>) -> Figment {
        let mut f = Figment::from(Serialized::defaults(WorkerConfig::default()));
        if let Some(file) = file {
            f = f.merge(Toml::file_exact(file));
        }
        let named = Env::prefixed("HASHSCAN_")
            .filter_map(|k| {
                ENV_KEYS.iter().find(|(env, _)| k.as_str().eq_ignore_ascii_case(env)).map(|(_, key)| (*key).into())
            })
            .lowercase(false);
        // Anything else: HASHSCAN_SECTION__KEY (double underscore nests).
        let nested = Env::prefixed("HASHSCAN_").filter(|k| k.as_str().contains("__")).split("__");
        f.merge(nested).merge(named)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    // figment's Jail fixes the closure's error type.
    #[allow(clippy::result_large_err)]
    fn file_then_environment_and_errors_name_the_key() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "workers.toml",
                "[amqp]\nprefix = \"dep1\"\nprefetch = 4\n[fetcher]\nallow_net = [\"127.77.0.0/16\"]\n",
            )?;
            jail.set_env("HASHSCAN_REDIS_URL", "redis://10.0.0.5:6379/");
            jail.set_env("HASHSCAN_MATCHER__THRESHOLD", "0.7");
            let c = WorkerConfig::load(Some(Path::new("workers.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.amqp.prefix, "dep1");
            assert_eq!(c.amqp.prefetch, 4);
            assert_eq!(c.redis.url, "redis://10.0.0.5:6379/");
            assert_eq!(c.matcher.threshold, 0.7);
            assert_eq!(c.fetcher.allow_net, vec!["127.77.0.0/16".to_string()]);
            assert_eq!(c.fetcher.concurrency, 16, "defaults fill the rest");

            jail.create_file("bad.toml", "[amqp]\nprefetch = \"many\"\n")?;
            let err = WorkerConfig::load(Some(Path::new("bad.toml"))).unwrap_err().to_string();
            assert!(err.contains("amqp.prefetch"), "{err}");
            jail.create_file("typo.toml", "[amqp]\nprefech = 3\n")?;
            let err = WorkerConfig::load(Some(Path::new("typo.toml"))).unwrap_err().to_string();
            assert!(err.contains("prefech"), "{err}");
            let err = WorkerConfig::load(Some(Path::new("missing.toml"))).unwrap_err().to_string();
            assert!(err.contains("missing.toml"), "{err}");
            jail.set_env("HASHSCAN_AMQP__PREFETCH", "x");
            let err = WorkerConfig::load(None).unwrap_err().to_string();
            assert!(err.to_lowercase().contains("amqp.prefetch") && err.contains("HASHSCAN_"), "{err}");
            Ok(())
        });
    }
}
