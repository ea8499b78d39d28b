//! The shared store conformance suite on a real PostgreSQL 16: a fresh database per test on
//! the server named by `TEST_DATABASE_URL` (the README's test command starts one).

use std::sync::Arc;

use cortex_store_conformance::{DynStore, conformance_tests};
use cortex_store_postgres::PgStore;

async fn open() -> DynStore {
    let base = std::env::var("TEST_DATABASE_URL").expect(
        "TEST_DATABASE_URL must point at a PostgreSQL 16 server; run ./scripts/test.sh, which starts one",
    );
    let url = cortex_store_postgres::testing::fresh_database(&base)
        .await
        .expect("create test database");
    let store = PgStore::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

conformance_tests!(open, "postgres");
