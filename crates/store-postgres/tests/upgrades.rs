//! Data migrations on a PostgreSQL database made by an earlier release: it is brought to the migration
//! before the one under test with the same files, filled as that release would have, then
//! opened and migrated the way `cortexlayer` does at start.

use std::borrow::Cow;
use std::path::Path;

use cortex_core::store::{
    BotStore, CredentialStore, JobStore, KnowledgeStore, SearchSource, TenantStore,
};
use cortex_store_postgres::PgStore;
use sqlx::{PgPool, Row};

/// A fresh database on `TEST_DATABASE_URL` with the migrations up to and including `last`.
async fn database_at(last: i64) -> (String, PgPool) {
    let base = std::env::var("TEST_DATABASE_URL").expect(
        "TEST_DATABASE_URL must point at a PostgreSQL 16 server; run ./scripts/test.sh, which starts one",
    );
    let url = cortex_store_postgres::testing::fresh_database(&base)
        .await
        .expect("create test database");
    let pool = PgPool::connect(&url).await.expect("open");
    let mut migrator =
        sqlx::migrate::Migrator::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations"))
            .await
            .expect("migrations");
    migrator.migrations = Cow::Owned(
        migrator
            .migrations
            .iter()
            .filter(|m| m.version <= last)
            .cloned()
            .collect(),
    );
    migrator.run(&pool).await.expect("old migrations");
    (url, pool)
}

fn id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

#[tokio::test]
async fn never_verified_accounts_go_and_verified_ones_stay_when_signups_become_pending() {
    let (url, pool) = database_at(18).await;
    let (squatted, squatter, real, owner, invited) = (id(), id(), id(), id(), id());
    for (tenant, name) in [(&squatted, "Squatted"), (&real, "Real")] {
        sqlx::query("INSERT INTO tenants (id, name, plan, status, created_at, updated_at) VALUES ($1, $2, 'starter', 'trial', now(), now())")
            .bind(tenant)
            .bind(name)
            .execute(&pool)
            .await
            .expect("tenant");
    }
    for (user, tenant, email, verified) in [
        (
            &squatter,
            &squatted,
            "victim@shop.test",
            None::<chrono::DateTime<chrono::Utc>>,
        ),
        (&owner, &real, "owner@real.test", Some(chrono::Utc::now())),
        (&invited, &real, "late@real.test", None),
    ] {
        sqlx::query("INSERT INTO users (id, tenant_id, email, role, password_hash, email_verified_at, created_at) VALUES ($1, $2, $3, 'owner', 'x', $4, now())")
            .bind(user)
            .bind(tenant)
            .bind(email)
            .bind(verified)
            .execute(&pool)
            .await
            .expect("user");
    }
    sqlx::query("INSERT INTO email_verifications (user_id, tenant_id, code_hash, attempts, expires_at, created_at) VALUES ($1, $2, 'h', 0, now(), now())")
        .bind(squatter)
        .bind(squatted)
        .execute(&pool)
        .await
        .expect("code");
    sqlx::query("INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_at) VALUES ($1, $2, 'crm', 'ck_abcd', 'hash', ARRAY['chat', 'conversations:write', 'conversations:read'], now())")
        .bind(id())
        .bind(real)
        .execute(&pool)
        .await
        .expect("key");
    pool.close().await;

    let store = PgStore::connect(&url).await.expect("open");
    store.migrate().await.expect("migrate");

    let email = |e: &str| cortex_core::tenancy::Email::parse(e).expect("email");
    assert!(
        store
            .find_user_by_email(&email("victim@shop.test"))
            .await
            .expect("lookup")
            .is_none(),
        "the address is free for its owner"
    );
    let kept = store
        .find_user_by_email(&email("owner@real.test"))
        .await
        .expect("lookup")
        .expect("the verified owner stays");
    assert!(
        store
            .find_user_by_email(&email("late@real.test"))
            .await
            .expect("lookup")
            .is_none()
    );
    let tenants = store
        .list_tenants(cortex_core::store::Page::first(10))
        .await
        .expect("tenants");
    assert_eq!(
        tenants.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        vec!["Real"],
        "a tenant nobody could sign in to goes; one with a verified member stays"
    );
    let keys = store.list_api_keys(kept.tenant_id).await.expect("keys");
    assert_eq!(
        keys[0]
            .scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        vec!["chat", "conversations:read"],
        "the removed scope leaves the key, the others stay"
    );
    let pool = PgPool::connect(&url).await.expect("reopen");
    let left: i64 =
        sqlx::query("SELECT count(*) AS n FROM pg_tables WHERE tablename = 'email_verifications'")
            .fetch_one(&pool)
            .await
            .expect("count")
            .get("n");
    assert_eq!(left, 0);
}

#[tokio::test]
async fn documents_embedded_before_windows_existed_run_their_embedding_once_more() {
    let (url, pool) = database_at(21).await;
    let (tenant, ready, failed) = (id(), id(), id());
    sqlx::query("INSERT INTO tenants (id, name, plan, status, created_at, updated_at) VALUES ($1, 'Shop', 'starter', 'trial', now(), now())")
        .bind(tenant)
        .execute(&pool)
        .await
        .expect("tenant");
    for (doc, status) in [(ready, "ready"), (failed, "failed")] {
        sqlx::query("INSERT INTO documents (id, tenant_id, title, source, kind, size_bytes, sha256, status, stage, generation, created_at, updated_at) VALUES ($1, $2, 'guide', 'upload', 'md', 10, 'x', $3, 'done', 2, now(), now())")
            .bind(doc)
            .bind(tenant)
            .bind(status)
            .execute(&pool)
            .await
            .expect("document");
    }
    sqlx::query("INSERT INTO chunks (id, tenant_id, document_id, ordinal, text, heading_path, token_count, content_hash, created_at) VALUES ($1, $2, $3, 0, 'Opened packets are fine.', '{}', 5, 'h1', now())")
        .bind(id())
        .bind(tenant)
        .bind(ready)
        .execute(&pool)
        .await
        .expect("chunk");
    sqlx::query("INSERT INTO embeddings (tenant_id, model, content_hash, dims, embedding, created_at, added_version) VALUES ($1, 'm', 'h1', 3, '[1,0,0]', now(), 1)")
        .bind(tenant)
        .execute(&pool)
        .await
        .expect("embedding");
    pool.close().await;

    let store = PgStore::connect(&url).await.expect("open");
    store.migrate().await.expect("migrate");

    let tenant_id = cortex_core::ids::TenantId(tenant);
    let doc_id = cortex_core::ids::DocumentId(ready);
    let stored = store
        .chunk_vectors(tenant_id, "m", &["h1".to_owned()])
        .await
        .expect("vectors");
    assert_eq!(stored[0].vector, vec![1.0, 0.0, 0.0], "the vector stays");
    assert_eq!(stored[0].windows, None);
    let pending = store
        .pending_embeddings(tenant_id, doc_id, "m", 10)
        .await
        .expect("pending");
    assert_eq!(pending.len(), 1, "its windows are still to embed");
    let leases = store
        .lease_jobs(chrono::Utc::now(), chrono::Duration::minutes(1), 10)
        .await
        .expect("lease");
    assert_eq!(leases.len(), 1, "one job, for the ready document only");
    let job = &leases[0].job;
    assert_eq!(job.kind, "EmbedChunks");
    assert_eq!(job.tenant_id, Some(tenant_id));
    assert_eq!(job.payload["document_id"], doc_id.0.to_string());
    assert_eq!(job.payload["generation"], 2);
}

#[tokio::test]
async fn bots_left_at_the_old_abstention_default_move_to_the_calibrated_one() {
    let (url, pool) = database_at(22).await;
    let (kept, moved) = (id(), id());
    for (tenant, threshold) in [(kept, 0.6), (moved, 0.3)] {
        sqlx::query("INSERT INTO tenants (id, name, plan, status, created_at, updated_at) VALUES ($1, 'Shop', 'starter', 'trial', now(), now())")
            .bind(tenant)
            .execute(&pool)
            .await
            .expect("tenant");
        let settings = serde_json::to_value(cortex_core::answer::BotSettings {
            abstention_threshold: threshold,
            ..Default::default()
        })
        .expect("json");
        sqlx::query(
            "INSERT INTO bot_settings (tenant_id, settings, updated_at) VALUES ($1, $2, now())",
        )
        .bind(tenant)
        .bind(settings)
        .execute(&pool)
        .await
        .expect("settings");
    }
    pool.close().await;
    let store = PgStore::connect(&url).await.expect("open");
    store.migrate().await.expect("migrate");
    for (tenant, expected) in [
        (kept, 0.6),
        (
            moved,
            cortex_core::answer::BotSettings::CALIBRATED_THRESHOLD,
        ),
    ] {
        let got = store
            .get_bot_settings(cortex_core::ids::TenantId(tenant))
            .await
            .expect("settings")
            .expect("saved")
            .abstention_threshold;
        assert_eq!(got, expected);
    }
}
