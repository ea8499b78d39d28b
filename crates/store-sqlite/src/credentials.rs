//! Credentials: refresh tokens, API keys, platform admins and sealed secrets, on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cortex_core::StoreError;
use cortex_core::audit::NewAuditEvent;
use cortex_core::channels::SealedSecret;
use cortex_core::credentials::{
    ApiKey, ApiScope, NewApiKey, NewPasswordReset, NewRefreshToken, PasswordReset, PlatformAdmin,
    RefreshToken, SessionSummary,
};
use cortex_core::ids::{
    ApiKeyId, ChannelConnectionId, PasswordResetId, PlatformAdminId, TenantId, TokenFamilyId,
    UserId,
};
use cortex_core::store::{CredentialStore, RefreshUse, Result, conflict};
use cortex_core::tenancy::Email;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use crate::{
    SqliteStore, corrupt, db, email_from, insert_audit, is_unique_violation, ms, opt_ts,
    parse_enum, ts,
};

fn refresh_from(row: &SqliteRow) -> Result<RefreshToken> {
    Ok(RefreshToken {
        id: row.try_get::<Uuid, _>("id").map_err(db)?.into(),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        user_id: UserId(row.try_get("user_id").map_err(db)?),
        family_id: TokenFamilyId(row.try_get("family_id").map_err(db)?),
        token_hash: row.try_get("token_hash").map_err(db)?,
        expires_at: ts(row.try_get("expires_at").map_err(db)?),
        used_at: opt_ts(row.try_get("used_at").map_err(db)?),
        revoked_at: opt_ts(row.try_get("revoked_at").map_err(db)?),
        created_at: ts(row.try_get("created_at").map_err(db)?),
    })
}

fn reset_from(row: &SqliteRow) -> Result<PasswordReset> {
    Ok(PasswordReset {
        id: PasswordResetId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        user_id: UserId(row.try_get("user_id").map_err(db)?),
        token_hash: row.try_get("token_hash").map_err(db)?,
        expires_at: ts(row.try_get("expires_at").map_err(db)?),
        used_at: opt_ts(row.try_get("used_at").map_err(db)?),
        created_at: ts(row.try_get("created_at").map_err(db)?),
    })
}

fn api_key_from(row: &SqliteRow) -> Result<ApiKey> {
    let scopes_json: String = row.try_get("scopes").map_err(db)?;
    let names: Vec<String> =
        serde_json::from_str(&scopes_json).map_err(|_| corrupt("api key scopes", &scopes_json))?;
    let scopes = names
        .into_iter()
        .map(|s| parse_enum::<ApiScope>("api key scope", s))
        .collect::<Result<Vec<_>>>()?;
    Ok(ApiKey {
        id: ApiKeyId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        name: row.try_get("name").map_err(db)?,
        prefix: row.try_get("prefix").map_err(db)?,
        key_hash: row.try_get("key_hash").map_err(db)?,
        scopes,
        created_by: row
            .try_get::<Option<Uuid>, _>("created_by")
            .map_err(db)?
            .map(UserId),
        created_at: ts(row.try_get("created_at").map_err(db)?),
        last_used_at: opt_ts(row.try_get("last_used_at").map_err(db)?),
        revoked_at: opt_ts(row.try_get("revoked_at").map_err(db)?),
    })
}

fn admin_from(row: &SqliteRow) -> Result<PlatformAdmin> {
    Ok(PlatformAdmin {
        id: PlatformAdminId(row.try_get("id").map_err(db)?),
        email: email_from(row.try_get("email").map_err(db)?)?,
        password_hash: row.try_get("password_hash").map_err(db)?,
        created_at: ts(row.try_get("created_at").map_err(db)?),
    })
}

#[async_trait]
impl CredentialStore for SqliteStore {
    async fn insert_refresh_token(&self, tenant: TenantId, t: NewRefreshToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, tenant_id, user_id, family_id, token_hash, expires_at, created_at)
             SELECT $2, $1, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM users WHERE tenant_id = $1 AND id = $3)",
        )
        .bind(tenant.0)
        .bind(t.id.as_uuid())
        .bind(t.user_id.0)
        .bind(t.family_id.0)
        .bind(&t.token_hash)
        .bind(ms(t.expires_at))
        .bind(ms(t.created_at))
        .execute(&self.pool)
        .await
        .map_err(db)
        .and_then(|r| if r.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) })
    }

    async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>> {
        let row = sqlx::query("SELECT * FROM refresh_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(refresh_from).transpose()
    }

    async fn use_refresh_token(
        &self,
        tenant: TenantId,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<RefreshUse> {
        let fresh = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $3
             WHERE tenant_id = $1 AND token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL
             RETURNING *",
        )
        .bind(tenant.0)
        .bind(token_hash)
        .bind(ms(at))
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        if let Some(row) = fresh {
            return Ok(RefreshUse::Fresh(refresh_from(&row)?));
        }
        let row =
            sqlx::query("SELECT * FROM refresh_tokens WHERE tenant_id = $1 AND token_hash = $2")
                .bind(tenant.0)
                .bind(token_hash)
                .fetch_one(&self.pool)
                .await
                .map_err(db)?;
        Ok(RefreshUse::Reused(refresh_from(&row)?))
    }

    async fn revoke_token_family(
        &self,
        tenant: TenantId,
        family: TokenFamilyId,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $3
             WHERE tenant_id = $1 AND family_id = $2 AND revoked_at IS NULL",
        )
        .bind(tenant.0)
        .bind(family.0)
        .bind(ms(at))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn revoke_user_tokens(
        &self,
        tenant: TenantId,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $3
             WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL",
        )
        .bind(tenant.0)
        .bind(user.0)
        .bind(ms(at))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn list_sessions(
        &self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionSummary>> {
        let rows = sqlx::query(
            "SELECT family_id, MIN(created_at) AS started_at, MAX(created_at) AS refreshed_at,
                    MAX(expires_at) AS expires_at
             FROM refresh_tokens WHERE tenant_id = $1 AND user_id = $2
             GROUP BY family_id
             HAVING SUM(CASE WHEN used_at IS NULL AND revoked_at IS NULL AND expires_at > $3
                        THEN 1 ELSE 0 END) > 0
             ORDER BY refreshed_at DESC, family_id",
        )
        .bind(tenant.0)
        .bind(user.0)
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                Ok(SessionSummary {
                    family_id: TokenFamilyId(row.try_get("family_id").map_err(db)?),
                    started_at: ts(row.try_get("started_at").map_err(db)?),
                    refreshed_at: ts(row.try_get("refreshed_at").map_err(db)?),
                    expires_at: ts(row.try_get("expires_at").map_err(db)?),
                })
            })
            .collect()
    }

    async fn insert_password_reset(&self, tenant: TenantId, r: NewPasswordReset) -> Result<()> {
        sqlx::query(
            "INSERT INTO password_resets (id, tenant_id, user_id, token_hash, expires_at, created_at)
             SELECT $2, $1, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM users WHERE tenant_id = $1 AND id = $3)",
        )
        .bind(tenant.0)
        .bind(r.id.0)
        .bind(r.user_id.0)
        .bind(&r.token_hash)
        .bind(ms(r.expires_at))
        .bind(ms(r.created_at))
        .execute(&self.pool)
        .await
        .map_err(db)
        .and_then(|r| if r.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) })
    }

    async fn find_password_reset(&self, token_hash: &str) -> Result<Option<PasswordReset>> {
        let row = sqlx::query("SELECT * FROM password_resets WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(reset_from).transpose()
    }

    async fn complete_password_reset(
        &self,
        tenant: TenantId,
        reset: PasswordResetId,
        password_hash: &str,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let used = sqlx::query(
            "UPDATE password_resets SET used_at = $3
             WHERE tenant_id = $1 AND id = $2 AND used_at IS NULL AND expires_at > $3
             RETURNING user_id",
        )
        .bind(tenant.0)
        .bind(reset.0)
        .bind(ms(at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound)?;
        let user: Uuid = used.try_get("user_id").map_err(db)?;
        set_password(&mut tx, tenant, UserId(user), password_hash, None, at).await?;
        sqlx::query(
            "UPDATE password_resets SET used_at = $3
             WHERE tenant_id = $1 AND user_id = $2 AND used_at IS NULL",
        )
        .bind(tenant.0)
        .bind(user)
        .bind(ms(at))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn change_password(
        &self,
        tenant: TenantId,
        user: UserId,
        password_hash: &str,
        keep: Option<TokenFamilyId>,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        set_password(&mut tx, tenant, user, password_hash, keep, at).await?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn create_api_key(
        &self,
        tenant: TenantId,
        key: NewApiKey,
        audit: NewAuditEvent,
    ) -> Result<ApiKey> {
        let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
        let scopes = serde_json::to_string(&scopes).map_err(StoreError::other)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row = sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
        )
        .bind(key.id.0)
        .bind(tenant.0)
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.key_hash)
        .bind(scopes)
        .bind(key.created_by.map(|u| u.0))
        .bind(ms(key.created_at))
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let created = api_key_from(&row)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(created)
    }

    async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query("SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY id DESC")
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(api_key_from).collect()
    }

    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        key: ApiKeyId,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<ApiKey> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row = sqlx::query(
            "UPDATE api_keys SET revoked_at = $3
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL RETURNING *",
        )
        .bind(tenant.0)
        .bind(key.0)
        .bind(ms(at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            drop(tx);
            return Err(self
                .refused("api_keys", tenant, key.0, conflict::ALREADY_REVOKED)
                .await);
        };
        let revoked = api_key_from(&row)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(revoked)
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = $1")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(api_key_from).transpose()
    }

    async fn touch_api_key(
        &self,
        tenant: TenantId,
        key: ApiKeyId,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let done =
            sqlx::query("UPDATE api_keys SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(key.0)
                .bind(ms(at))
                .execute(&self.pool)
                .await
                .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn create_platform_admin(&self, admin: PlatformAdmin) -> Result<()> {
        sqlx::query(
            "INSERT INTO platform_admins (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(admin.id.0)
        .bind(admin.email.as_str())
        .bind(&admin.password_hash)
        .bind(ms(admin.created_at))
        .execute(&self.pool)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict(conflict::EMAIL_TAKEN) } else { db(e) })?;
        Ok(())
    }

    async fn find_platform_admin(&self, email: &Email) -> Result<Option<PlatformAdmin>> {
        let row = sqlx::query("SELECT * FROM platform_admins WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(admin_from).transpose()
    }

    async fn get_platform_admin(&self, id: PlatformAdminId) -> Result<PlatformAdmin> {
        let row = sqlx::query("SELECT * FROM platform_admins WHERE id = $1")
            .bind(id.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        admin_from(&row)
    }

    async fn list_sealed_secrets(&self) -> Result<Vec<SealedSecret>> {
        let rows =
            sqlx::query("SELECT tenant_id, id, sealed_token FROM channel_connections ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(SealedSecret {
                    tenant_id: TenantId(r.try_get("tenant_id").map_err(db)?),
                    connection: ChannelConnectionId(r.try_get("id").map_err(db)?),
                    sealed: r.try_get("sealed_token").map_err(db)?,
                })
            })
            .collect()
    }

    async fn reseal_secret(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        old: &str,
        new: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE channel_connections SET sealed_token = $4
             WHERE id = $1 AND tenant_id = $2 AND sealed_token = $3",
        )
        .bind(connection.0)
        .bind(tenant.0)
        .bind(old)
        .bind(new)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }
}

/// Sets a member's password hash and revokes their tokens outside `keep`; `NotFound` if the
/// member is not in the tenant.
async fn set_password(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    tenant: TenantId,
    user: UserId,
    password_hash: &str,
    keep: Option<TokenFamilyId>,
    at: DateTime<Utc>,
) -> Result<()> {
    let done = sqlx::query("UPDATE users SET password_hash = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.0)
        .bind(user.0)
        .bind(password_hash)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $3
         WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL
           AND ($4 IS NULL OR family_id <> $4)",
    )
    .bind(tenant.0)
    .bind(user.0)
    .bind(ms(at))
    .bind(keep.map(|f| f.0))
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}
