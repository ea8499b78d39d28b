//! The vector cases of the conformance suite again with every tenant searched through
//! pgvector's HNSW index (the path of tenants too large to scan in memory).

use std::sync::Arc;

use cortex_store_conformance::DynStore;
use cortex_store_postgres::PgStore;

async fn open() -> DynStore {
    open_with(0).await
}

async fn open_with(max_in_memory: i64) -> DynStore {
    let base = std::env::var("TEST_DATABASE_URL").expect(
        "TEST_DATABASE_URL must point at a PostgreSQL 16 server; run ./scripts/test.sh, which starts one",
    );
    let url = cortex_store_postgres::testing::fresh_database(&base)
        .await
        .expect("create test database");
    let store = PgStore::connect(&url)
        .await
        .expect("connect")
        .with_max_in_memory_vectors(max_in_memory);
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

cortex_store_conformance::conformance_tests!(@cases open;
    vectors_are_stored_once_per_text_and_searched_by_cosine,
    another_tenants_documents_chunks_and_vectors_are_out_of_reach,
    deleting_a_document_removes_its_chunks_index_entries_and_unused_vectors,
    reprocessing_a_document_drops_only_the_vectors_nothing_else_uses,
    a_tenant_gets_its_k_best_vectors_however_many_others_hold,
    vector_search_sees_vectors_added_and_deleted_after_a_search,
    vectors_added_between_searches_join_the_results_and_deletions_leave_them,
);

/// A tenant that grows past the in-memory bound while its matrix is being appended to moves
/// to the index, with the same hits.
mod crossing_the_bound {
    use super::*;

    async fn open() -> DynStore {
        open_with(12).await
    }

    cortex_store_conformance::conformance_tests!(@cases open;
        vectors_added_between_searches_join_the_results_and_deletions_leave_them,
    );
}
