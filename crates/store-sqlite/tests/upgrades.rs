//! Data migrations on a database made by an earlier release: it is brought to the migration
//! before the one under test with the same files, filled as that release would have, then
//! opened and migrated the way `cortexlayer` does at start.

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;

use cortex_core::Store;
use cortex_store_sqlite::SqliteStore;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Row, SqlitePool};

/// A fresh database with the migrations up to and including `last` applied.
async fn database_at(last: i64) -> (String, SqlitePool) {
    let dir = std::env::temp_dir().join(format!("cortex-upgrade-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("dir");
    let url = format!("sqlite://{}", dir.join("old.db").display());
    let options = SqliteConnectOptions::from_str(&url)
        .expect("url")
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePool::connect_with(options).await.expect("open");
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

fn id() -> Vec<u8> {
    uuid::Uuid::now_v7().as_bytes().to_vec()
}

#[tokio::test]
async fn never_verified_accounts_go_and_verified_ones_stay_when_signups_become_pending() {
    let (url, pool) = database_at(18).await;
    let (squatted, squatter, real, owner, invited) = (id(), id(), id(), id(), id());
    for (tenant, name) in [(&squatted, "Squatted"), (&real, "Real")] {
        sqlx::query("INSERT INTO tenants (id, name, plan, status, created_at, updated_at) VALUES ($1, $2, 'starter', 'trial', 0, 0)")
            .bind(tenant)
            .bind(name)
            .execute(&pool)
            .await
            .expect("tenant");
    }
    for (user, tenant, email, verified) in [
        (&squatter, &squatted, "victim@shop.test", None),
        (&owner, &real, "owner@real.test", Some(1_i64)),
        (&invited, &real, "late@real.test", None),
    ] {
        sqlx::query("INSERT INTO users (id, tenant_id, email, role, password_hash, email_verified_at, created_at) VALUES ($1, $2, $3, 'owner', 'x', $4, 0)")
            .bind(user)
            .bind(tenant)
            .bind(email)
            .bind(verified)
            .execute(&pool)
            .await
            .expect("user");
    }
    sqlx::query("INSERT INTO email_verifications (user_id, tenant_id, code_hash, attempts, expires_at, created_at) VALUES ($1, $2, 'h', 0, 0, 0)")
        .bind(&squatter)
        .bind(&squatted)
        .execute(&pool)
        .await
        .expect("code");
    sqlx::query("INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_at) VALUES ($1, $2, 'crm', 'ck_abcd', 'hash', '[\"chat\",\"conversations:write\",\"conversations:read\"]', 0)")
        .bind(id())
        .bind(&real)
        .execute(&pool)
        .await
        .expect("key");
    pool.close().await;

    let store = SqliteStore::connect(&url).await.expect("open");
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
    let pool = SqlitePool::connect(&url).await.expect("reopen");
    let left: i64 =
        sqlx::query("SELECT count(*) AS n FROM sqlite_master WHERE name = 'email_verifications'")
            .fetch_one(&pool)
            .await
            .expect("count")
            .get("n");
    assert_eq!(left, 0);
}
