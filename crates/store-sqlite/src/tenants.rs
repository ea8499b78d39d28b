//! Tenants, their members, invitations and pending signups, on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cortex_core::StoreError;
use cortex_core::audit::NewAuditEvent;
use cortex_core::ids::{EmailChangeId, InvitationId, SignupId, TenantId, UserId};
use cortex_core::store::{Page, Result, TenantStore, conflict};
use cortex_core::tenancy::{
    CompanyName, Email, EmailChange, Invitation, NewEmailChange, NewInvitation, NewPendingSignup,
    NewTenant, NewUser, PendingSignup, Role, Tenant, TenantStatus, User,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use crate::{
    SqliteStore, db, email_from, insert_audit, is_unique_violation, ms, opt_ts, parse_enum, ts,
};

fn tenant_from(row: &SqliteRow) -> Result<Tenant> {
    Ok(Tenant {
        id: TenantId(row.try_get("id").map_err(db)?),
        name: row.try_get("name").map_err(db)?,
        plan: row.try_get("plan").map_err(db)?,
        status: parse_enum("tenant status", row.try_get("status").map_err(db)?)?,
        status_before_suspension: row
            .try_get::<Option<String>, _>("status_before_suspension")
            .map_err(db)?
            .map(|s| parse_enum("tenant status", s))
            .transpose()?,
        created_at: ts(row.try_get("created_at").map_err(db)?),
        updated_at: ts(row.try_get("updated_at").map_err(db)?),
    })
}

fn user_from(row: &SqliteRow) -> Result<User> {
    Ok(User {
        id: UserId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        email: email_from(row.try_get("email").map_err(db)?)?,
        name: row.try_get("name").map_err(db)?,
        role: parse_enum("role", row.try_get("role").map_err(db)?)?,
        password_hash: row.try_get("password_hash").map_err(db)?,
        email_verified_at: opt_ts(row.try_get("email_verified_at").map_err(db)?),
        created_at: ts(row.try_get("created_at").map_err(db)?),
    })
}

fn email_change_from(row: &SqliteRow) -> Result<EmailChange> {
    Ok(EmailChange {
        id: EmailChangeId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        user_id: UserId(row.try_get("user_id").map_err(db)?),
        new_email: email_from(row.try_get("new_email").map_err(db)?)?,
        code_hash: row.try_get("code_hash").map_err(db)?,
        attempts: row
            .try_get::<i64, _>("attempts")
            .map_err(db)?
            .try_into()
            .unwrap_or(u32::MAX),
        expires_at: ts(row.try_get("expires_at").map_err(db)?),
        created_at: ts(row.try_get("created_at").map_err(db)?),
    })
}

fn pending_signup_from(row: &SqliteRow) -> Result<PendingSignup> {
    let company: String = row.try_get("company_name").map_err(db)?;
    Ok(PendingSignup {
        id: SignupId(row.try_get("id").map_err(db)?),
        email: email_from(row.try_get("email").map_err(db)?)?,
        company_name: CompanyName::parse(&company).map_err(StoreError::other)?,
        name: row.try_get("name").map_err(db)?,
        password_hash: row.try_get("password_hash").map_err(db)?,
        code_hash: row.try_get("code_hash").map_err(db)?,
        attempts: row
            .try_get::<i64, _>("attempts")
            .map_err(db)?
            .try_into()
            .unwrap_or(u32::MAX),
        expires_at: ts(row.try_get("expires_at").map_err(db)?),
        created_at: ts(row.try_get("created_at").map_err(db)?),
    })
}

fn invitation_from(row: &SqliteRow) -> Result<Invitation> {
    Ok(Invitation {
        id: InvitationId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        email: email_from(row.try_get("email").map_err(db)?)?,
        role: parse_enum("role", row.try_get("role").map_err(db)?)?,
        invited_by: UserId(row.try_get("invited_by").map_err(db)?),
        token_hash: row.try_get("token_hash").map_err(db)?,
        expires_at: ts(row.try_get("expires_at").map_err(db)?),
        accepted_at: opt_ts(row.try_get("accepted_at").map_err(db)?),
        created_at: ts(row.try_get("created_at").map_err(db)?),
    })
}

async fn insert_tenant_with_owner(
    tx: &mut Transaction<'_, Sqlite>,
    tenant: &NewTenant,
    owner: &NewUser,
    audit: &NewAuditEvent,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tenants (id, name, plan, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(tenant.id.0)
    .bind(tenant.name.as_str())
    .bind(&tenant.plan)
    .bind(tenant.status.as_str())
    .bind(ms(tenant.created_at))
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    insert_user(tx, tenant.id, owner).await?;
    insert_audit(tx, tenant.id, audit).await
}

async fn insert_user(
    tx: &mut Transaction<'_, Sqlite>,
    tenant: TenantId,
    u: &NewUser,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, tenant_id, email, name, role, password_hash, email_verified_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(u.id.0)
    .bind(tenant.0)
    .bind(u.email.as_str())
    .bind(u.name.as_deref())
    .bind(u.role.as_str())
    .bind(&u.password_hash)
    .bind(u.email_verified_at.map(ms))
    .bind(ms(u.created_at))
    .execute(&mut **tx)
    .await
    .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict(conflict::EMAIL_TAKEN) } else { db(e) })?;
    Ok(())
}

#[async_trait]
impl TenantStore for SqliteStore {
    async fn create_tenant_with_owner(
        &self,
        tenant: NewTenant,
        owner: NewUser,
        audit: NewAuditEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        insert_tenant_with_owner(&mut tx, &tenant, &owner, &audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn get_tenant(&self, tenant: TenantId) -> Result<Tenant> {
        let row = sqlx::query("SELECT * FROM tenants WHERE id = $1")
            .bind(tenant.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        tenant_from(&row)
    }

    async fn list_tenants(&self, page: Page) -> Result<Vec<Tenant>> {
        let rows = sqlx::query(
            "SELECT * FROM tenants WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(page.before)
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(tenant_from).collect()
    }

    async fn list_tenant_summaries(
        &self,
        filter: &cortex_core::tenancy::TenantFilter,
        since: DateTime<Utc>,
        page: Page,
    ) -> Result<Vec<cortex_core::tenancy::TenantSummary>> {
        // The name's own % and _ match themselves.
        let pattern = filter.name_contains.as_deref().map(|n| {
            n.trim()
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        });
        let rows = sqlx::query(
            "SELECT t.*,
                    (SELECT COUNT(*) FROM documents d WHERE d.tenant_id = t.id) AS documents,
                    (SELECT COUNT(*) FROM conversations c
                     WHERE c.tenant_id = t.id AND c.created_at >= $4) AS conversations_since
             FROM tenants t
             WHERE ($1 IS NULL OR lower(t.name) LIKE '%' || $1 || '%' ESCAPE '\\')
               AND ($2 IS NULL OR t.plan = $2)
               AND ($3 IS NULL OR t.status = $3)
               AND ($5 IS NULL OR t.id < $5)
               AND ($7 IS NULL OR t.id = $7)
             ORDER BY t.id DESC LIMIT $6",
        )
        .bind(pattern)
        .bind(filter.plan.as_deref())
        .bind(filter.status.map(|s| s.as_str()))
        .bind(ms(since))
        .bind(page.before)
        .bind(i64::from(page.limit))
        .bind(filter.id.map(|t| t.0))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                Ok(cortex_core::tenancy::TenantSummary {
                    tenant: tenant_from(row)?,
                    documents: row.try_get::<i64, _>("documents").map_err(db)? as u64,
                    conversations_since: row.try_get::<i64, _>("conversations_since").map_err(db)?
                        as u64,
                })
            })
            .collect()
    }

    async fn set_tenant_suspended(
        &self,
        tenant: TenantId,
        suspended: bool,
        audit: NewAuditEvent,
    ) -> Result<Tenant> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let sql = if suspended {
            "UPDATE tenants SET
                 status_before_suspension = CASE WHEN status = 'suspended' THEN status_before_suspension ELSE status END,
                 status = 'suspended', updated_at = $2
             WHERE id = $1 RETURNING *"
        } else {
            "UPDATE tenants SET
                 status = CASE WHEN status = 'suspended' THEN COALESCE(status_before_suspension, 'active') ELSE status END,
                 status_before_suspension = NULL, updated_at = $2
             WHERE id = $1 RETURNING *"
        };
        let row = sqlx::query(sql)
            .bind(tenant.0)
            .bind(ms(audit.created_at))
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let updated = tenant_from(&row)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(updated)
    }

    async fn set_tenant_plan(
        &self,
        tenant: TenantId,
        plan: &str,
        audit: NewAuditEvent,
    ) -> Result<Tenant> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row =
            sqlx::query("UPDATE tenants SET plan = $2, updated_at = $3 WHERE id = $1 RETURNING *")
                .bind(tenant.0)
                .bind(plan)
                .bind(ms(Utc::now()))
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        let updated = tenant_from(&row)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(updated)
    }

    async fn rename_tenant(
        &self,
        tenant: TenantId,
        name: &CompanyName,
        audit: NewAuditEvent,
    ) -> Result<Tenant> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row =
            sqlx::query("UPDATE tenants SET name = $2, updated_at = $3 WHERE id = $1 RETURNING *")
                .bind(tenant.0)
                .bind(name.as_str())
                .bind(ms(Utc::now()))
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        let updated = tenant_from(&row)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(updated)
    }

    async fn set_tenant_status(&self, tenant: TenantId, status: TenantStatus) -> Result<Tenant> {
        let row = sqlx::query(
            "UPDATE tenants SET status = $2, updated_at = $3 WHERE id = $1 RETURNING *",
        )
        .bind(tenant.0)
        .bind(status.as_str())
        .bind(ms(Utc::now()))
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        tenant_from(&row)
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(user_from).transpose()
    }

    async fn get_user(&self, tenant: TenantId, user: UserId) -> Result<User> {
        let row = sqlx::query("SELECT * FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(user.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        user_from(&row)
    }

    async fn list_users(&self, tenant: TenantId) -> Result<Vec<User>> {
        let rows = sqlx::query("SELECT * FROM users WHERE tenant_id = $1 ORDER BY id")
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(user_from).collect()
    }

    async fn change_role(
        &self,
        tenant: TenantId,
        user: UserId,
        role: Role,
        audit: NewAuditEvent,
    ) -> Result<User> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // One statement: the owner count it reads is the one it writes against.
        let row = sqlx::query(
            "UPDATE users SET role = $3
             WHERE tenant_id = $1 AND id = $2
               AND ($3 = 'owner' OR role <> 'owner'
                    OR (SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND role = 'owner') > 1)
             RETURNING *",
        )
        .bind(tenant.0)
        .bind(user.0)
        .bind(role.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            drop(tx);
            return Err(self
                .refused("users", tenant, user.0, conflict::LAST_OWNER)
                .await);
        };
        let updated = user_from(&row)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(updated)
    }

    async fn remove_user(
        &self,
        tenant: TenantId,
        user: UserId,
        audit: NewAuditEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let done = sqlx::query(
            "DELETE FROM users
             WHERE tenant_id = $1 AND id = $2
               AND (role <> 'owner'
                    OR (SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND role = 'owner') > 1)",
        )
        .bind(tenant.0)
        .bind(user.0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            drop(tx);
            return Err(self
                .refused("users", tenant, user.0, conflict::LAST_OWNER)
                .await);
        }
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn put_pending_signup(&self, p: NewPendingSignup) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM pending_signups WHERE expires_at <= $1")
            .bind(ms(p.created_at))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO pending_signups
                 (id, email, company_name, name, password_hash, code_hash, attempts, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)
             ON CONFLICT (email) DO UPDATE SET
                 id = excluded.id, company_name = excluded.company_name, name = excluded.name,
                 password_hash = excluded.password_hash, code_hash = excluded.code_hash,
                 attempts = 0, expires_at = excluded.expires_at, created_at = excluded.created_at",
        )
        .bind(p.id.0)
        .bind(p.email.as_str())
        .bind(p.company_name.as_str())
        .bind(p.name.as_deref())
        .bind(&p.password_hash)
        .bind(&p.code_hash)
        .bind(ms(p.expires_at))
        .bind(ms(p.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn find_pending_signup(
        &self,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingSignup>> {
        let row = sqlx::query("SELECT * FROM pending_signups WHERE email = $1 AND expires_at > $2")
            .bind(email.as_str())
            .bind(ms(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(pending_signup_from).transpose()
    }

    async fn renew_pending_signup_code(
        &self,
        signup: SignupId,
        code_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE pending_signups SET code_hash = $2, attempts = 0, expires_at = $3 WHERE id = $1",
        )
        .bind(signup.0)
        .bind(code_hash)
        .bind(ms(expires_at))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn record_pending_signup_failure(&self, signup: SignupId) -> Result<u32> {
        let attempts: Option<i64> = sqlx::query_scalar(
            "UPDATE pending_signups SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
        )
        .bind(signup.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let attempts = attempts.ok_or(StoreError::NotFound)?;
        Ok(attempts.try_into().unwrap_or(u32::MAX))
    }

    async fn complete_pending_signup(
        &self,
        signup: SignupId,
        tenant: NewTenant,
        owner: NewUser,
        audit: NewAuditEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let gone = sqlx::query("DELETE FROM pending_signups WHERE id = $1")
            .bind(signup.0)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_tenant_with_owner(&mut tx, &tenant, &owner, &audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn create_invitation(
        &self,
        tenant: TenantId,
        inv: NewInvitation,
        audit: NewAuditEvent,
    ) -> Result<Invitation> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row = sqlx::query(
            "INSERT INTO invitations (id, tenant_id, email, role, invited_by, token_hash, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
        )
        .bind(inv.id.0)
        .bind(tenant.0)
        .bind(inv.email.as_str())
        .bind(inv.role.as_str())
        .bind(inv.invited_by.0)
        .bind(&inv.token_hash)
        .bind(ms(inv.expires_at))
        .bind(ms(inv.created_at))
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let invitation = invitation_from(&row)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(invitation)
    }

    async fn list_pending_invitations(&self, tenant: TenantId) -> Result<Vec<Invitation>> {
        let rows = sqlx::query(
            "SELECT * FROM invitations WHERE tenant_id = $1 AND accepted_at IS NULL ORDER BY id DESC",
        )
        .bind(tenant.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(invitation_from).collect()
    }

    async fn delete_invitation(&self, tenant: TenantId, invitation: InvitationId) -> Result<()> {
        let done = sqlx::query(
            "DELETE FROM invitations WHERE tenant_id = $1 AND id = $2 AND accepted_at IS NULL",
        )
        .bind(tenant.0)
        .bind(invitation.0)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn find_invitation(&self, token_hash: &str) -> Result<Option<Invitation>> {
        let row = sqlx::query("SELECT * FROM invitations WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(invitation_from).transpose()
    }

    async fn accept_invitation(
        &self,
        tenant: TenantId,
        invitation: InvitationId,
        user: NewUser,
        audit: NewAuditEvent,
    ) -> Result<User> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let accepted = sqlx::query(
            "UPDATE invitations SET accepted_at = $3 WHERE tenant_id = $1 AND id = $2 AND accepted_at IS NULL",
        )
        .bind(tenant.0)
        .bind(invitation.0)
        .bind(ms(user.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if accepted.rows_affected() == 0 {
            drop(tx);
            return Err(self
                .refused(
                    "invitations",
                    tenant,
                    invitation.0,
                    conflict::INVITATION_USED,
                )
                .await);
        }
        insert_user(&mut tx, tenant, &user).await?;
        sqlx::query("DELETE FROM pending_signups WHERE email = $1")
            .bind(user.email.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        let row = sqlx::query("SELECT * FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(user.id.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let created = user_from(&row)?;
        tx.commit().await.map_err(db)?;
        Ok(created)
    }

    async fn put_email_change(&self, tenant: TenantId, c: NewEmailChange) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM email_changes WHERE expires_at <= $1")
            .bind(ms(c.created_at))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let put = sqlx::query(
            "INSERT INTO email_changes (id, tenant_id, user_id, new_email, code_hash, attempts, expires_at, created_at)
             SELECT $2, $1, $3, $4, $5, 0, $6, $7 WHERE EXISTS (SELECT 1 FROM users WHERE tenant_id = $1 AND id = $3)
             ON CONFLICT (user_id) DO UPDATE SET
                 id = excluded.id, new_email = excluded.new_email, code_hash = excluded.code_hash,
                 attempts = 0, expires_at = excluded.expires_at, created_at = excluded.created_at",
        )
        .bind(tenant.0)
        .bind(c.id.0)
        .bind(c.user_id.0)
        .bind(c.new_email.as_str())
        .bind(&c.code_hash)
        .bind(ms(c.expires_at))
        .bind(ms(c.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if put.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(db)
    }

    async fn find_email_change(
        &self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<EmailChange>> {
        let row = sqlx::query(
            "SELECT * FROM email_changes WHERE tenant_id = $1 AND user_id = $2 AND expires_at > $3",
        )
        .bind(tenant.0)
        .bind(user.0)
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(email_change_from).transpose()
    }

    async fn record_email_change_failure(
        &self,
        tenant: TenantId,
        change: EmailChangeId,
    ) -> Result<u32> {
        let attempts: Option<i64> = sqlx::query_scalar(
            "UPDATE email_changes SET attempts = attempts + 1 WHERE tenant_id = $1 AND id = $2 RETURNING attempts",
        )
        .bind(tenant.0)
        .bind(change.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let attempts = attempts.ok_or(StoreError::NotFound)?;
        Ok(attempts.try_into().unwrap_or(u32::MAX))
    }

    async fn cancel_email_change(&self, tenant: TenantId, user: UserId) -> Result<()> {
        sqlx::query("DELETE FROM email_changes WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant.0)
            .bind(user.0)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn complete_email_change(
        &self,
        tenant: TenantId,
        change: EmailChangeId,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<User> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let used = sqlx::query(
            "DELETE FROM email_changes WHERE tenant_id = $1 AND id = $2 AND expires_at > $3
             RETURNING user_id, new_email",
        )
        .bind(tenant.0)
        .bind(change.0)
        .bind(ms(at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound)?;
        let user: uuid::Uuid = used.try_get("user_id").map_err(db)?;
        let email: String = used.try_get("new_email").map_err(db)?;
        let row = sqlx::query(
            "UPDATE users SET email = $3, email_verified_at = $4 WHERE tenant_id = $1 AND id = $2 RETURNING *",
        )
        .bind(tenant.0)
        .bind(user)
        .bind(&email)
        .bind(ms(at))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict(conflict::EMAIL_TAKEN) } else { db(e) })?;
        let updated = user_from(&row)?;
        sqlx::query("DELETE FROM pending_signups WHERE email = $1")
            .bind(&email)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(updated)
    }
}
