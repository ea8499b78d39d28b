//! The store conformance suite: every [`Store`] method, run the same way against every
//! backend. Each backend's test file calls [`conformance_tests!`] with a function that opens a
//! fresh, migrated, empty store; the macro expands to one `#[tokio::test]` per case, so a
//! failure names the case and the backend.
//!
//! The cases that matter most are the cross-tenant ones: whatever tenant A created must be
//! invisible, unmodifiable and undeletable through tenant B.

use std::sync::Arc;

use chrono::{Duration, Utc};
use cortex_core::audit::{Actor, NewAuditEvent, action};
use cortex_core::credentials::{ApiScope, NewApiKey, NewRefreshToken};
use cortex_core::ids::{ApiKeyId, InvitationId, RefreshTokenId, TenantId, TokenFamilyId, UserId};
use cortex_core::jobs::NewJob;
use cortex_core::tenancy::{
    CompanyName, Email, NewInvitation, NewTenant, NewUser, Role, TenantStatus,
};
use cortex_core::{Store, StoreError};

mod audit;
mod bot;
mod channels;
mod conversations;
mod credentials;
mod delivery;
mod jobs;
mod knowledge;
mod search;
mod tenants;
mod widget;

pub use audit::*;
pub use bot::*;
pub use channels::*;
pub use conversations::*;
pub use credentials::*;
pub use delivery::*;
pub use jobs::*;
pub use knowledge::*;
pub use search::*;
pub use tenants::*;
pub use widget::*;

pub type DynStore = Arc<dyn Store>;

/// Expands to one test per conformance case. `$open` is an async fn returning `DynStore`;
/// `$backend` is the name the store must report.
#[macro_export]
macro_rules! conformance_tests {
    ($open:path, $backend:literal) => {
        #[tokio::test]
        async fn the_store_names_its_backend() {
            assert_eq!($open().await.backend(), $backend);
        }
        $crate::conformance_tests!(@cases $open;
            signup_creates_the_tenant_its_owner_and_the_audit_entry,
            a_newer_pending_signup_replaces_the_earlier_one,
            pending_signups_count_failures_renew_expire_and_complete_once,
            completing_a_signup_for_a_taken_address_writes_nothing,
            accepting_an_invitation_drops_a_pending_signup_of_the_address,
            signup_with_a_taken_email_writes_nothing,
            another_tenants_rows_are_invisible,
            another_tenants_rows_cannot_be_changed_or_deleted,
            the_last_owner_can_be_neither_demoted_nor_removed,
            a_removed_member_loses_their_refresh_tokens,
            refresh_tokens_are_used_once_and_families_revoke_together,
            concurrent_refreshes_let_exactly_one_through,
            a_members_sessions_are_listed_and_revoked_together,
            a_password_reset_is_used_once_and_signs_every_session_out,
            concurrent_password_resets_let_exactly_one_through,
            changing_a_password_keeps_only_the_session_that_changed_it,
            invitations_are_accepted_once,
            accepting_an_invitation_for_a_taken_email_leaves_it_pending,
            api_keys_are_created_listed_touched_and_revoked_once,
            platform_admins_have_unique_emails,
            suspension_remembers_and_restores_the_previous_status,
            a_tenant_moves_to_another_plan_with_an_audit_entry,
            a_tenant_is_renamed_with_an_audit_entry,
            an_email_change_replaces_the_pending_one_and_completes_once,
            an_email_change_to_a_taken_address_changes_nothing,
            an_email_change_expires_and_can_be_cancelled,
            concurrent_email_change_confirmations_let_exactly_one_through,
            the_operator_lists_tenants_by_name_plan_and_status_with_their_counts,
            audit_events_page_newest_first,
            audit_events_filter_by_action_member_and_time,
            tenants_page_newest_first,
            the_store_reports_ready,
            jobs_are_leased_once_and_completed_once,
            unique_keys_make_enqueueing_idempotent,
            failed_attempts_wait_for_their_retry_time_then_fail_for_good,
            an_expired_lease_passes_to_the_next_worker,
            a_lease_running_out_on_the_last_attempt_fails_the_job,
            concurrent_workers_never_share_a_job,
            a_long_line_of_one_tenants_jobs_does_not_hold_back_anothers,
            documents_are_created_with_their_first_job_and_listed_newest_first,
            the_document_limit_holds_under_concurrent_uploads,
            chunks_replace_atomically_and_are_found_lexically,
            chunks_list_in_order_from_an_offset,
            vectors_are_stored_once_per_text_and_searched_by_cosine,
            windows_are_stored_with_their_chunk_and_added_to_vectors_from_before,
            another_tenants_documents_chunks_and_vectors_are_out_of_reach,
            deleting_a_document_removes_its_chunks_index_entries_and_unused_vectors,
            reprocessing_a_document_drops_only_the_vectors_nothing_else_uses,
            a_failed_document_answers_nothing_until_reprocessed,
            a_tenant_gets_its_k_best_vectors_however_many_others_hold,
            documents_whose_job_failed_for_good_are_marked_failed,
            a_fetched_original_is_attached_once_per_run_and_ids_are_unique,
            vector_search_sees_vectors_added_and_deleted_after_a_search,
            vectors_added_between_searches_join_the_results_and_deletions_leave_them,
            chunks_added_between_lexical_searches_join_and_deleted_ones_leave,
            bot_settings_default_to_none_and_are_saved_with_an_audit_entry,
            turns_store_messages_usage_and_events_and_read_back_in_order,
            another_tenants_conversations_are_out_of_reach,
            a_channel_asset_belongs_to_one_tenant_and_routes_to_it,
            a_proven_claim_replaces_another_tenants_claim_and_both_are_audited,
            a_refused_token_is_flagged_once_and_webhook_targets_are_counted,
            sealed_secrets_are_resealed_only_while_unchanged,
            a_delivery_replayed_concurrently_is_stored_once_with_one_job,
            a_channel_customer_finds_their_open_conversation,
            delivery_statuses_only_move_forward,
            conversations_of_every_channel_are_listed_latest_activity_first,
            activity_counts_conversations_messages_answers_and_handoffs_since_a_moment,
            a_persons_data_is_deleted_in_every_tenant_on_the_providers_connections,
            an_oauth_flow_is_claimed_once_by_its_browser_before_it_expires,
            a_customers_waiting_messages_list_oldest_first,
            widget_keys_are_the_tenants_found_by_their_public_key_and_revoked_once,
            feedback_is_given_on_answers_of_the_tenants_conversation_only,
        );
    };
    (@cases $open:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store = $open().await;
                $crate::$case(store).await;
            }
        )*
    };
}

fn now() -> chrono::DateTime<Utc> {
    // Stores keep millisecond precision at least; compare at that grain.
    let t = Utc::now();
    t - Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos() % 1_000_000))
}

fn email(local: &str) -> Email {
    Email::parse(&format!("{local}@example.com")).expect("valid test email")
}

fn audit(action: &'static str) -> NewAuditEvent {
    NewAuditEvent::new(Actor::System, action, now())
}

fn new_user(local: &str, role: Role) -> NewUser {
    NewUser {
        id: UserId::new(),
        email: email(local),
        name: Some(local.to_owned()),
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        email_verified_at: None,
        created_at: now(),
    }
}

/// A tenant with one owner; returns both ids.
async fn tenant_with_owner(store: &DynStore, owner_local: &str) -> (TenantId, UserId) {
    let tenant = TenantId::new();
    let owner = new_user(owner_local, Role::Owner);
    let owner_id = owner.id;
    store
        .create_tenant_with_owner(
            NewTenant {
                id: tenant,
                name: CompanyName::parse(&format!("{owner_local} Inc")).expect("valid"),
                plan: "starter".into(),
                status: TenantStatus::Trial,
                created_at: now(),
            },
            owner,
            audit(action::TENANT_CREATED).target("tenant", tenant),
        )
        .await
        .expect("signup");
    (tenant, owner_id)
}

/// A member joined through an invitation.
async fn add_member(
    store: &DynStore,
    tenant: TenantId,
    inviter: UserId,
    local: &str,
    role: Role,
) -> UserId {
    let inv = invite(store, tenant, inviter, local, role).await;
    let user = new_user(local, role);
    store
        .accept_invitation(tenant, inv, user, audit(action::MEMBER_JOINED))
        .await
        .expect("accept")
        .id
}

async fn invite(
    store: &DynStore,
    tenant: TenantId,
    inviter: UserId,
    local: &str,
    role: Role,
) -> InvitationId {
    let id = InvitationId::new();
    store
        .create_invitation(
            tenant,
            NewInvitation {
                id,
                email: email(local),
                role,
                invited_by: inviter,
                token_hash: format!("inv-{id}"),
                expires_at: now() + Duration::days(7),
                created_at: now(),
            },
            audit(action::MEMBER_INVITED),
        )
        .await
        .expect("invite");
    id
}

fn new_refresh(user: UserId, family: TokenFamilyId) -> NewRefreshToken {
    let id = RefreshTokenId::new();
    NewRefreshToken {
        id,
        user_id: user,
        family_id: family,
        token_hash: format!("rt-{id}"),
        expires_at: now() + Duration::days(7),
        created_at: now(),
    }
}

fn new_key(name: &str, scopes: Vec<ApiScope>, by: UserId) -> NewApiKey {
    let id = ApiKeyId::new();
    NewApiKey {
        id,
        name: name.into(),
        prefix: format!("ck_{}", &id.to_string()[..8]),
        key_hash: format!("key-{id}"),
        scopes,
        created_by: Some(by),
        created_at: now(),
    }
}

fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(r, Err(StoreError::NotFound)),
        "{what}: expected NotFound, got {r:?}"
    );
}

fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, code: &str) {
    match r {
        Err(StoreError::Conflict(c)) => assert_eq!(c, code),
        other => panic!("expected Conflict({code}), got {other:?}"),
    }
}

pub async fn the_store_reports_ready(store: DynStore) {
    store.readiness().await.expect("ready");
}

fn job(kind: &str, n: i64, at: chrono::DateTime<Utc>) -> NewJob {
    NewJob {
        run_at: at,
        created_at: at,
        ..NewJob::now(kind, serde_json::json!({ "n": n }))
    }
}
