//! Throw-away databases on a real PostgreSQL server, for tests.
//!
//! Every test gets a database of its own (so tests run in parallel and
//! leave nothing behind), on the server of `HASHSCAN_POSTGRES_URL`
//! (default: the local trust-auth server scripts/test makes sure of).
//! Without a server, creating one panics with a message naming the URL:
//! a test that needs PostgreSQL fails, it never skips.

use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::NoTls;

/// The server tests use.
pub fn admin_url() -> String {
    std::env::var("HASHSCAN_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists until [`TestDb::drop_now`] (or, if a test
/// panicked first, until someone drops it: its name says what made it).
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// A URL that connects to it.
    pub url: String,
}

impl TestDb {
    /// Creates an empty database named after `test`.
    pub async fn create(test: &str) -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let tag: String = test
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
            .take(30)
            .collect();
        let name =
            format!("hashscan_test_{tag}_{}_{}_{nanos:x}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let admin = admin_url();
        let client = connect(&admin).await;
        if let Err(e) = client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await {
            panic!("cannot create a test database on {admin}: {e}");
        }
        let mut config: tokio_postgres::Config = admin.parse().unwrap_or_else(|e| panic!("{admin}: {e}"));
        config.dbname(&name);
        let url = url_of(&config);
        TestDb { name, url }
    }

    /// Drops the database (closing whatever is still connected to it).
    pub async fn drop_now(self) {
        let admin = admin_url();
        let client = connect(&admin).await;
        if let Err(e) = client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)).await {
            panic!("cannot drop test database {}: {e}", self.name);
        }
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    match tokio_postgres::connect(url, NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        }
        Err(e) => panic!("PostgreSQL not reachable at {url} (set HASHSCAN_POSTGRES_URL; scripts/test starts one): {e}"),
    }
}

/// A key=value connection string for `config` (its host, port, user,
/// password and database).
fn url_of(config: &tokio_postgres::Config) -> String {
    let mut parts = vec![format!("dbname='{}'", config.get_dbname().unwrap_or("postgres"))];
    if let Some(tokio_postgres::config::Host::Tcp(h)) = config.get_hosts().first() {
        parts.push(format!("host='{h}'"));
    }
    if let Some(p) = config.get_ports().first() {
        parts.push(format!("port={p}"));
    }
    if let Some(u) = config.get_user() {
        parts.push(format!("user='{u}'"));
    }
    if let Some(p) = config.get_password() {
        parts.push(format!("password='{}'", String::from_utf8_lossy(p).replace('\\', "\\\\").replace('\'', "\\'")));
    }
    parts.join(" ")
}
