//! The store contract (`hashscan_store::testkit`) on PostgreSQL, each check
//! on a database of its own (created and dropped on the server of
//! `HASHSCAN_POSTGRES_URL`; no server is a failure, never a skip).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hashscan_store::testkit::{run_all, Backend};
use hashscan_store::Store;
use hashscan_store_postgres::testdb::TestDb;
use hashscan_store_postgres::PgStore;

#[derive(Default)]
struct Postgres {
    dbs: Mutex<HashMap<&'static str, TestDb>>,
}

#[async_trait]
impl Backend for Postgres {
    async fn fresh(&self, check: &'static str) -> Arc<dyn Store> {
        let db = TestDb::create(check.rsplit("::").next().unwrap_or(check)).await;
        let store = PgStore::connect(&db.url).await.unwrap_or_else(|e| panic!("{}: {e}", db.name));
        self.dbs.lock().expect("not poisoned").insert(check, db);
        Arc::new(store)
    }

    async fn cleanup(&self, check: &'static str) {
        let db = self.dbs.lock().expect("not poisoned").remove(check);
        if let Some(db) = db {
            db.drop_now().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_postgres_store_keeps_the_store_contract() {
    run_all(&Postgres::default()).await;
}
