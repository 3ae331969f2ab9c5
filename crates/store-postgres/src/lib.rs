//! The results store on PostgreSQL, for deployments that need a database
//! server (high availability, several review servers, backups by the DBA).
//!
//! It implements every part of [`hashscan_store::Store`] with the same
//! behaviour as the embedded [`hashscan_store::SqliteStore`]; both run the
//! same contract tests (`hashscan_store::testkit`). The tables are the
//! SQLite store's, in PostgreSQL types (`schema.sql`).
//!
//! Connections come from a `deadpool-postgres` pool, so a broken connection
//! (a server restart, a fail-over) is replaced on the next call instead of
//! failing the process; a call that was cut off reports
//! [`StoreError::Backend`] and the caller's retry (message redelivery,
//! HTTP retry) repeats it against the new connection.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use hashscan_store::{StoreError, SCHEMA_VERSION};
use tokio_postgres::NoTls;

mod cases;
mod evidence;
mod review;
mod review_cases;
mod scans;
mod sightings;
#[cfg(any(test, feature = "testkit"))]
pub mod testdb;

/// The DDL, idempotent (`IF NOT EXISTS` throughout).
const SCHEMA: &str = include_str!("schema.sql");

/// Any key: serialises schema creation across processes
/// (`pg_advisory_xact_lock`). The bytes spell "hashscan".
const SCHEMA_LOCK: i64 = 0x6861_7368_7363_616e;

/// Connections kept open per process, at most.
const POOL_SIZE: usize = 16;

/// The results store on a PostgreSQL server. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may carry a password.
        f.debug_struct("PgStore").field("pool", &self.pool.status()).finish()
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`, or the
    /// key=value form) and creates or checks the schema. Fails when the
    /// server cannot be reached within 10 s or holds another schema version.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| StoreError::Backend(format!("bad PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("hashscan");
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Backend(format!("PostgreSQL pool: {e}")))?;
        let store = Self { pool };
        store.init().await?;
        Ok(store)
    }

    async fn init(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK]).await.map_err(db)?;
        let exists: bool = tx.query_one("SELECT to_regclass('store_meta') IS NOT NULL", &[]).await.map_err(db)?.get(0);
        if exists {
            let found: Option<i64> = tx
                .query_opt("SELECT schema_version FROM store_meta WHERE id = 1", &[])
                .await
                .map_err(db)?
                .map(|r| r.get(0));
            if let Some(found) = found {
                if found != SCHEMA_VERSION {
                    return Err(StoreError::Schema { found, expected: SCHEMA_VERSION });
                }
            }
        }
        tx.batch_execute(SCHEMA).await.map_err(db)?;
        tx.execute(
            "INSERT INTO store_meta (id, schema_version) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
            &[&SCHEMA_VERSION],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Backend(format!("PostgreSQL connection: {e}")))
    }
}

/// A PostgreSQL error as a store error, with the server's message (and
/// its detail, which names the constraint or the value).
pub(crate) fn db(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(d) => match d.detail() {
            Some(detail) => StoreError::Backend(format!("{}: {detail}", d.message())),
            None => StoreError::Backend(d.message().to_string()),
        },
        None => StoreError::Backend(e.to_string()),
    }
}

/// A stored BYTEA that must be a 32-byte hash.
pub(crate) fn hash32(v: &[u8], table: &'static str, column: &'static str) -> Result<[u8; 32], StoreError> {
    v.try_into().map_err(|_| StoreError::Corrupt { table, column, detail: format!("{} bytes, not 32", v.len()) })
}
