//! Where a command finds the results store: the SQLite file of a data
//! directory (the default), or a PostgreSQL server by URL, as the cluster
//! workers do (`[store] url`). One definition, so `serve` and `user` agree.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use hashscan_store::Store;

use crate::hits_cmd::db_path;

#[derive(Args, Clone, Debug)]
pub struct StoreArgs {
    /// Where the scan results (and the review users) are.
    #[arg(long, default_value = crate::DEFAULT_DATA_DIR, env = "HASHSCAN_DATA_DIR")]
    pub data_dir: PathBuf,
    /// A PostgreSQL URL (postgres://user:password@host/db) to use instead of
    /// the data directory's SQLite file; best given in the environment, so
    /// the password stays out of the process list.
    #[arg(long, env = "HASHSCAN_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl StoreArgs {
    /// Where the results are, for messages (never the URL: it may hold a password).
    pub fn describe(&self) -> String {
        match &self.database_url {
            Some(_) => "the PostgreSQL database of --database-url".to_string(),
            None => self.data_dir.display().to_string(),
        }
    }

    /// Whether the store is there already (a PostgreSQL database is
    /// created on first use, as a data directory is by `user add`).
    pub fn exists(&self) -> bool {
        self.database_url.is_some() || db_path(&self.data_dir).exists()
    }

    /// Opens (creating if need be) the store.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        let section =
            hashscan_cluster::config::StoreSection { data_dir: self.data_dir.clone(), url: self.database_url.clone() };
        hashscan_cluster::roles::open_results_store(&section)
            .await
            .with_context(|| format!("cannot open the results store in {}", self.describe()))
    }
}
