//! The store contract (`hashscan_store::testkit`) on the embedded SQLite
//! store, each check on a new database file.

use std::sync::Arc;

use async_trait::async_trait;
use hashscan_store::testkit::{run_all, Backend};
use hashscan_store::{SqliteStore, Store};

struct Sqlite {
    dir: tempfile::TempDir,
}

#[async_trait]
impl Backend for Sqlite {
    async fn fresh(&self, check: &'static str) -> Arc<dyn Store> {
        let path = self.dir.path().join(format!("{}.db", check.replace("::", "_")));
        Arc::new(SqliteStore::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sqlite_store_keeps_the_store_contract() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    run_all(&Sqlite { dir }).await;
}
