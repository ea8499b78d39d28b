//! The shared store conformance suite on SQLite: a fresh database file per test.

use std::sync::Arc;

use cortex_store_conformance::{DynStore, conformance_tests};
use cortex_store_sqlite::SqliteStore;

async fn open() -> DynStore {
    let dir = std::env::temp_dir().join(format!("cortex-store-{}", uuid::Uuid::now_v7()));
    let url = format!("sqlite://{}", dir.join("test.db").display());
    let store = SqliteStore::connect(&url).await.expect("open sqlite");
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

conformance_tests!(open, "sqlite");
