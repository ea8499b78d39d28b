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
use cortex_core::credentials::{ApiScope, NewApiKey, NewRefreshToken, PlatformAdmin};
use cortex_core::ids::{
    ApiKeyId, InvitationId, PlatformAdminId, RefreshTokenId, SignupId, TenantId, TokenFamilyId,
    UserId,
};
use cortex_core::jobs::{JobStatus, NewJob};
use cortex_core::store::{Page, RefreshUse, conflict};
use cortex_core::tenancy::{
    CompanyName, Email, NewInvitation, NewPendingSignup, NewTenant, NewUser, Role, TenantStatus,
};
use cortex_core::{Store, StoreError};

mod answer;
mod channels;
mod knowledge;
mod widget;

pub use answer::*;
pub use channels::*;
pub use knowledge::*;
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
            invitations_are_accepted_once,
            accepting_an_invitation_for_a_taken_email_leaves_it_pending,
            api_keys_are_created_listed_touched_and_revoked_once,
            platform_admins_have_unique_emails,
            suspension_remembers_and_restores_the_previous_status,
            a_tenant_moves_to_another_plan_with_an_audit_entry,
            audit_events_page_newest_first,
            tenants_page_newest_first,
            the_store_reports_ready,
            jobs_are_leased_once_and_completed_once,
            unique_keys_make_enqueueing_idempotent,
            failed_attempts_wait_for_their_retry_time_then_fail_for_good,
            an_expired_lease_passes_to_the_next_worker,
            a_lease_running_out_on_the_last_attempt_fails_the_job,
            concurrent_workers_never_share_a_job,
            documents_are_created_with_their_first_job_and_listed_newest_first,
            the_document_limit_holds_under_concurrent_uploads,
            chunks_replace_atomically_and_are_found_lexically,
            chunks_list_in_order_from_an_offset,
            vectors_are_stored_once_per_text_and_searched_by_cosine,
            windows_are_stored_with_their_chunk_and_added_to_vectors_from_before,
            another_tenants_documents_chunks_and_vectors_are_out_of_reach,
            deleting_a_document_removes_its_chunks_index_entries_and_unused_vectors,
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

pub async fn signup_creates_the_tenant_its_owner_and_the_audit_entry(store: DynStore) {
    let (tenant, owner) = tenant_with_owner(&store, "alice").await;

    let t = store.get_tenant(tenant).await.expect("tenant");
    assert_eq!(t.name, "alice Inc");
    assert_eq!(t.plan, "starter");
    assert_eq!(t.status, TenantStatus::Trial);
    let u = store.get_user(tenant, owner).await.expect("owner");
    assert_eq!(
        (u.role, u.email.as_str()),
        (Role::Owner, "alice@example.com")
    );
    let found = store
        .find_user_by_email(&email("alice"))
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(found.id, owner);
    let events = store
        .list_audit_events(tenant, Page::first(10))
        .await
        .expect("audit");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, action::TENANT_CREATED);
}

fn pending_signup(local: &str, code_hash: &str, expires_in: Duration) -> NewPendingSignup {
    NewPendingSignup {
        id: SignupId::new(),
        email: email(local),
        company_name: CompanyName::parse(&format!("{local} pending")).expect("valid"),
        name: None,
        password_hash: format!("hash-of-{code_hash}"),
        code_hash: code_hash.to_owned(),
        expires_at: now() + expires_in,
        created_at: now(),
    }
}

fn new_tenant(name: &str) -> NewTenant {
    NewTenant {
        id: TenantId::new(),
        name: CompanyName::parse(name).expect("valid"),
        plan: "starter".into(),
        status: TenantStatus::Trial,
        created_at: now(),
    }
}

pub async fn a_newer_pending_signup_replaces_the_earlier_one(store: DynStore) {
    let first = pending_signup("dana", "first", Duration::minutes(15));
    let second = pending_signup("dana", "second", Duration::minutes(15));
    let (first_id, second_id) = (first.id, second.id);
    store.put_pending_signup(first).await.expect("first");
    store
        .record_pending_signup_failure(first_id)
        .await
        .expect("fail");
    store.put_pending_signup(second).await.expect("second");

    let found = store
        .find_pending_signup(&email("dana"), now())
        .await
        .expect("lookup")
        .expect("pending");
    assert_eq!(
        (found.id, found.code_hash.as_str(), found.attempts),
        (second_id, "second", 0)
    );
    assert_eq!(found.password_hash, "hash-of-second");
    assert_eq!(found.company_name.as_str(), "dana pending");
    assert_not_found(
        store.record_pending_signup_failure(first_id).await,
        "the replaced signup",
    );
    assert_not_found(
        store
            .complete_pending_signup(
                first_id,
                new_tenant("First"),
                new_user("dana", Role::Owner),
                audit(action::TENANT_CREATED),
            )
            .await,
        "completing the replaced signup",
    );
    assert!(
        store
            .find_user_by_email(&email("dana"))
            .await
            .expect("lookup")
            .is_none(),
        "no account from the replaced signup"
    );
}

pub async fn pending_signups_count_failures_renew_expire_and_complete_once(store: DynStore) {
    let signup = pending_signup("erin", "code", Duration::minutes(15));
    let id = signup.id;
    store.put_pending_signup(signup).await.expect("put");
    for expected in 1..=2 {
        assert_eq!(
            store.record_pending_signup_failure(id).await.expect("fail"),
            expected
        );
    }
    store
        .renew_pending_signup_code(id, "renewed", now() + Duration::minutes(15))
        .await
        .expect("renew");
    let found = store
        .find_pending_signup(&email("erin"), now())
        .await
        .expect("lookup")
        .expect("pending");
    assert_eq!((found.attempts, found.code_hash.as_str()), (0, "renewed"));
    assert!(
        store
            .find_pending_signup(&email("erin"), now() + Duration::minutes(16))
            .await
            .expect("lookup")
            .is_none(),
        "expired with its code"
    );

    let tenant = new_tenant("Erin Co");
    let tenant_id = tenant.id;
    let mut owner = new_user("erin", Role::Owner);
    owner.email_verified_at = Some(now());
    let owner_id = owner.id;
    store
        .complete_pending_signup(id, tenant, owner, audit(action::TENANT_CREATED))
        .await
        .expect("complete");
    let user = store.get_user(tenant_id, owner_id).await.expect("owner");
    assert!(user.email_verified_at.is_some());
    assert!(
        store
            .find_pending_signup(&email("erin"), now())
            .await
            .expect("lookup")
            .is_none()
    );
    assert_not_found(
        store
            .complete_pending_signup(
                id,
                new_tenant("Again"),
                new_user("erin2", Role::Owner),
                audit(action::TENANT_CREATED),
            )
            .await,
        "second completion",
    );
    assert_not_found(
        store
            .renew_pending_signup_code(id, "x", now() + Duration::minutes(15))
            .await,
        "renewing a completed signup",
    );

    // Expired signups are deleted when the next one is kept.
    let stale = pending_signup("frank", "stale", Duration::minutes(-1));
    let stale_id = stale.id;
    store.put_pending_signup(stale).await.expect("stale");
    store
        .put_pending_signup(pending_signup("gina", "fresh", Duration::minutes(15)))
        .await
        .expect("fresh");
    assert_not_found(
        store.record_pending_signup_failure(stale_id).await,
        "the expired signup is gone",
    );
}

pub async fn completing_a_signup_for_a_taken_address_writes_nothing(store: DynStore) {
    let signup = pending_signup("taken2", "code", Duration::minutes(15));
    let id = signup.id;
    store.put_pending_signup(signup).await.expect("put");
    tenant_with_owner(&store, "taken2").await;
    let tenant = new_tenant("Squat");
    let tenant_id = tenant.id;
    assert_conflict(
        store
            .complete_pending_signup(
                id,
                tenant,
                new_user("taken2", Role::Owner),
                audit(action::TENANT_CREATED),
            )
            .await,
        conflict::EMAIL_TAKEN,
    );
    assert_not_found(store.get_tenant(tenant_id).await, "the half-made tenant");
}

pub async fn signup_with_a_taken_email_writes_nothing(store: DynStore) {
    tenant_with_owner(&store, "taken").await;
    let tenant = TenantId::new();
    let owner = new_user("taken", Role::Owner);
    let r = store
        .create_tenant_with_owner(
            NewTenant {
                id: tenant,
                name: CompanyName::parse("Second").expect("valid"),
                plan: "starter".into(),
                status: TenantStatus::Trial,
                created_at: now(),
            },
            owner,
            audit(action::TENANT_CREATED),
        )
        .await;
    assert_conflict(r, conflict::EMAIL_TAKEN);
    assert_not_found(store.get_tenant(tenant).await, "the half-made tenant");
    assert_eq!(
        store
            .list_tenants(Page::first(10))
            .await
            .expect("list")
            .len(),
        1
    );
}

pub async fn another_tenants_rows_are_invisible(store: DynStore) {
    let (a, a_owner) = tenant_with_owner(&store, "a-owner").await;
    let (b, b_owner) = tenant_with_owner(&store, "b-owner").await;
    let a_member = add_member(&store, a, a_owner, "a-member", Role::Agent).await;
    invite(&store, a, a_owner, "a-pending", Role::Admin).await;
    store
        .create_api_key(
            a,
            new_key("a key", vec![ApiScope::Chat], a_owner),
            audit(action::API_KEY_CREATED),
        )
        .await
        .expect("key");

    assert_not_found(
        store.get_user(b, a_member).await,
        "A's member read through B",
    );
    assert_not_found(store.get_user(b, a_owner).await, "A's owner read through B");
    let b_users = store.list_users(b).await.expect("list");
    assert_eq!(
        b_users.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![b_owner]
    );
    assert!(
        store
            .list_pending_invitations(b)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(store.list_api_keys(b).await.expect("list").is_empty());
    let b_audit = store
        .list_audit_events(b, Page::first(50))
        .await
        .expect("audit");
    assert!(
        b_audit.iter().all(|e| e.tenant_id == b),
        "B sees only its own audit events"
    );
    assert_eq!(
        store.list_api_keys(a).await.expect("list").len(),
        1,
        "A still sees its key"
    );
}

pub async fn another_tenants_rows_cannot_be_changed_or_deleted(store: DynStore) {
    let (a, a_owner) = tenant_with_owner(&store, "a-owner").await;
    let (b, b_owner) = tenant_with_owner(&store, "b-owner").await;
    let a_member = add_member(&store, a, a_owner, "a-member", Role::Agent).await;
    let inv = invite(&store, a, a_owner, "a-pending", Role::Admin).await;
    let key = store
        .create_api_key(
            a,
            new_key("a key", vec![ApiScope::Chat], a_owner),
            audit(action::API_KEY_CREATED),
        )
        .await
        .expect("key");
    let family = TokenFamilyId::new();
    let rt = new_refresh(a_member, family);
    let rt_hash = rt.token_hash.clone();
    store.insert_refresh_token(a, rt).await.expect("refresh");

    assert_not_found(
        store
            .change_role(b, a_member, Role::Owner, audit(action::MEMBER_ROLE_CHANGED))
            .await,
        "role change through B",
    );
    assert_not_found(
        store
            .remove_user(b, a_member, audit(action::MEMBER_REMOVED))
            .await,
        "removal through B",
    );
    assert_not_found(
        store.delete_invitation(b, inv).await,
        "invitation deletion through B",
    );
    assert_not_found(
        store
            .accept_invitation(
                b,
                inv,
                new_user("sneaky", Role::Admin),
                audit(action::MEMBER_JOINED),
            )
            .await,
        "acceptance through B",
    );
    assert_not_found(
        store
            .revoke_api_key(b, key.id, now(), audit(action::API_KEY_REVOKED))
            .await,
        "key revocation through B",
    );
    assert_not_found(
        store.touch_api_key(b, key.id, now()).await,
        "key touch through B",
    );
    assert_not_found(
        store.use_refresh_token(b, &rt_hash, now()).await,
        "refresh through B",
    );
    assert_eq!(
        store
            .revoke_token_family(b, family, now())
            .await
            .expect("revoke"),
        0
    );
    assert_not_found(
        store
            .insert_refresh_token(b, new_refresh(a_member, TokenFamilyId::new()))
            .await,
        "token for A's user under B",
    );

    // Everything of A is as it was.
    assert_eq!(
        store.get_user(a, a_member).await.expect("member").role,
        Role::Agent
    );
    assert_eq!(
        store.list_pending_invitations(a).await.expect("list").len(),
        1
    );
    let k = &store.list_api_keys(a).await.expect("keys")[0];
    assert!(k.revoked_at.is_none() && k.last_used_at.is_none());
    assert!(matches!(
        store.use_refresh_token(a, &rt_hash, now()).await,
        Ok(RefreshUse::Fresh(_))
    ));
    assert!(
        store
            .find_user_by_email(&email("sneaky"))
            .await
            .expect("lookup")
            .is_none()
    );
    assert_eq!(store.list_users(b).await.expect("list").len(), 1);
    let _ = b_owner;
}

pub async fn the_last_owner_can_be_neither_demoted_nor_removed(store: DynStore) {
    let (t, owner) = tenant_with_owner(&store, "solo").await;
    assert_conflict(
        store
            .change_role(t, owner, Role::Admin, audit(action::MEMBER_ROLE_CHANGED))
            .await,
        conflict::LAST_OWNER,
    );
    assert_conflict(
        store
            .remove_user(t, owner, audit(action::MEMBER_REMOVED))
            .await,
        conflict::LAST_OWNER,
    );
    assert_eq!(
        store.get_user(t, owner).await.expect("still there").role,
        Role::Owner
    );

    let second = add_member(&store, t, owner, "second", Role::Admin).await;
    let promoted = store
        .change_role(t, second, Role::Owner, audit(action::MEMBER_ROLE_CHANGED))
        .await
        .expect("promote");
    assert_eq!(promoted.role, Role::Owner);
    store
        .change_role(t, owner, Role::Agent, audit(action::MEMBER_ROLE_CHANGED))
        .await
        .expect("demote one of two owners");
    assert_conflict(
        store
            .remove_user(t, second, audit(action::MEMBER_REMOVED))
            .await,
        conflict::LAST_OWNER,
    );
    store
        .remove_user(t, owner, audit(action::MEMBER_REMOVED))
        .await
        .expect("remove the agent");
    assert_not_found(store.get_user(t, owner).await, "removed member");
    assert_not_found(
        store
            .change_role(
                t,
                UserId::new(),
                Role::Agent,
                audit(action::MEMBER_ROLE_CHANGED),
            )
            .await,
        "unknown member",
    );

    // Two owners demoting each other at once: one wins, one owner remains.
    let third = add_member(&store, t, second, "third", Role::Owner).await;
    let (s1, s2) = (store.clone(), store.clone());
    let h1 = tokio::spawn(async move {
        s1.change_role(t, second, Role::Admin, audit(action::MEMBER_ROLE_CHANGED))
            .await
    });
    let h2 = tokio::spawn(async move {
        s2.change_role(t, third, Role::Admin, audit(action::MEMBER_ROLE_CHANGED))
            .await
    });
    let (r1, r2) = (h1.await.expect("join"), h2.await.expect("join"));
    assert!(
        r1.is_ok() != r2.is_ok(),
        "exactly one demotion succeeds: {r1:?} / {r2:?}"
    );
    let owners = store
        .list_users(t)
        .await
        .expect("list")
        .into_iter()
        .filter(|u| u.role == Role::Owner)
        .count();
    assert_eq!(owners, 1);
}

pub async fn a_removed_member_loses_their_refresh_tokens(store: DynStore) {
    let (t, owner) = tenant_with_owner(&store, "owner").await;
    let member = add_member(&store, t, owner, "leaver", Role::Agent).await;
    let rt = new_refresh(member, TokenFamilyId::new());
    let hash = rt.token_hash.clone();
    store.insert_refresh_token(t, rt).await.expect("insert");
    store
        .remove_user(t, member, audit(action::MEMBER_REMOVED))
        .await
        .expect("remove");
    assert!(
        store
            .find_refresh_token(&hash)
            .await
            .expect("lookup")
            .is_none()
    );
    let events = store
        .list_audit_events(t, Page::first(10))
        .await
        .expect("audit");
    assert_eq!(events[0].action, action::MEMBER_REMOVED);
}

pub async fn refresh_tokens_are_used_once_and_families_revoke_together(store: DynStore) {
    let (t, owner) = tenant_with_owner(&store, "owner").await;
    let family = TokenFamilyId::new();
    let first = new_refresh(owner, family);
    let (first_hash, first_id) = (first.token_hash.clone(), first.id);
    store.insert_refresh_token(t, first).await.expect("insert");
    let found = store
        .find_refresh_token(&first_hash)
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(
        (found.id, found.tenant_id, found.user_id, found.family_id),
        (first_id, t, owner, family)
    );
    assert!(found.used_at.is_none());

    match store
        .use_refresh_token(t, &first_hash, now())
        .await
        .expect("use")
    {
        RefreshUse::Fresh(tok) => assert!(tok.used_at.is_some()),
        other => panic!("first use must be fresh: {other:?}"),
    }
    let second = new_refresh(owner, family);
    let second_hash = second.token_hash.clone();
    store
        .insert_refresh_token(t, second)
        .await
        .expect("insert successor");
    assert!(matches!(
        store.use_refresh_token(t, &first_hash, now()).await,
        Ok(RefreshUse::Reused(_))
    ));

    assert_eq!(
        store
            .revoke_token_family(t, family, now())
            .await
            .expect("revoke"),
        2
    );
    assert!(matches!(
        store.use_refresh_token(t, &second_hash, now()).await,
        Ok(RefreshUse::Reused(_))
    ));
    let other_family = new_refresh(owner, TokenFamilyId::new());
    let other_hash = other_family.token_hash.clone();
    store
        .insert_refresh_token(t, other_family)
        .await
        .expect("insert");
    assert!(
        matches!(
            store.use_refresh_token(t, &other_hash, now()).await,
            Ok(RefreshUse::Fresh(_))
        ),
        "other families untouched"
    );
    assert_not_found(
        store.use_refresh_token(t, "no-such-token", now()).await,
        "unknown token",
    );
}

pub async fn concurrent_refreshes_let_exactly_one_through(store: DynStore) {
    let (t, owner) = tenant_with_owner(&store, "owner").await;
    let rt = new_refresh(owner, TokenFamilyId::new());
    let hash = rt.token_hash.clone();
    store.insert_refresh_token(t, rt).await.expect("insert");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (s, h) = (store.clone(), hash.clone());
            tokio::spawn(async move { s.use_refresh_token(t, &h, now()).await })
        })
        .collect();
    let mut fresh = 0;
    for h in handles {
        if let RefreshUse::Fresh(_) = h.await.expect("join").expect("use") {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
}

pub async fn invitations_are_accepted_once(store: DynStore) {
    let (t, owner) = tenant_with_owner(&store, "owner").await;
    let inv = invite(&store, t, owner, "newbie", Role::Admin).await;
    let pending = store.list_pending_invitations(t).await.expect("list");
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (
            pending[0].role,
            pending[0].email.as_str(),
            pending[0].invited_by
        ),
        (Role::Admin, "newbie@example.com", owner)
    );
    let found = store
        .find_invitation(&format!("inv-{inv}"))
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!((found.id, found.tenant_id), (inv, t));

    let user = store
        .accept_invitation(
            t,
            inv,
            new_user("newbie", Role::Admin),
            audit(action::MEMBER_JOINED),
        )
        .await
        .expect("accept");
    assert_eq!((user.role, user.tenant_id), (Role::Admin, t));
    assert!(
        store
            .list_pending_invitations(t)
            .await
            .expect("list")
            .is_empty()
    );
    assert_conflict(
        store
            .accept_invitation(
                t,
                inv,
                new_user("newbie2", Role::Admin),
                audit(action::MEMBER_JOINED),
            )
            .await,
        conflict::INVITATION_USED,
    );
    assert!(
        store
            .find_user_by_email(&email("newbie2"))
            .await
            .expect("lookup")
            .is_none()
    );
    assert_not_found(
        store.delete_invitation(t, inv).await,
        "deleting an accepted invitation",
    );

    let other = invite(&store, t, owner, "maybe", Role::Agent).await;
    store.delete_invitation(t, other).await.expect("delete");
    assert!(
        store
            .find_invitation(&format!("inv-{other}"))
            .await
            .expect("lookup")
            .is_none()
    );
}

pub async fn accepting_an_invitation_drops_a_pending_signup_of_the_address(store: DynStore) {
    let (t, owner) = tenant_with_owner(&store, "owner").await;
    let squat = pending_signup("invitee", "squat", Duration::minutes(15));
    let squat_id = squat.id;
    store.put_pending_signup(squat).await.expect("pending");
    let inv = invite(&store, t, owner, "invitee", Role::Agent).await;
    let user = store
        .accept_invitation(
            t,
            inv,
            new_user("invitee", Role::Agent),
            audit(action::MEMBER_JOINED),
        )
        .await
        .expect("accept");
    assert_eq!(user.tenant_id, t);
    assert!(
        store
            .find_pending_signup(&email("invitee"), now())
            .await
            .expect("lookup")
            .is_none()
    );
    assert_not_found(
        store
            .complete_pending_signup(
                squat_id,
                new_tenant("Squat"),
                new_user("invitee", Role::Owner),
                audit(action::TENANT_CREATED),
            )
            .await,
        "the dropped signup",
    );
}

pub async fn accepting_an_invitation_for_a_taken_email_leaves_it_pending(store: DynStore) {
    let (t, owner) = tenant_with_owner(&store, "owner").await;
    tenant_with_owner(&store, "elsewhere").await;
    let inv = invite(&store, t, owner, "elsewhere", Role::Agent).await;
    assert_conflict(
        store
            .accept_invitation(
                t,
                inv,
                new_user("elsewhere", Role::Agent),
                audit(action::MEMBER_JOINED),
            )
            .await,
        conflict::EMAIL_TAKEN,
    );
    let still = store
        .find_invitation(&format!("inv-{inv}"))
        .await
        .expect("lookup")
        .expect("found");
    assert!(
        still.accepted_at.is_none(),
        "the failed acceptance rolled back"
    );
}

pub async fn api_keys_are_created_listed_touched_and_revoked_once(store: DynStore) {
    let (t, owner) = tenant_with_owner(&store, "owner").await;
    let new = new_key(
        "CRM sync",
        vec![ApiScope::Chat, ApiScope::KnowledgeRead],
        owner,
    );
    let hash = new.key_hash.clone();
    let key = store
        .create_api_key(t, new, audit(action::API_KEY_CREATED))
        .await
        .expect("create");
    assert_eq!(key.scopes, vec![ApiScope::Chat, ApiScope::KnowledgeRead]);
    assert_eq!(
        (key.name.as_str(), key.created_by),
        ("CRM sync", Some(owner))
    );
    let found = store
        .find_api_key(&hash)
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!((found.id, found.tenant_id), (key.id, t));
    let at = now();
    store.touch_api_key(t, key.id, at).await.expect("touch");
    assert_eq!(
        store.list_api_keys(t).await.expect("list")[0].last_used_at,
        Some(at)
    );
    let revoked = store
        .revoke_api_key(t, key.id, at, audit(action::API_KEY_REVOKED))
        .await
        .expect("revoke");
    assert_eq!(revoked.revoked_at, Some(at));
    assert_conflict(
        store
            .revoke_api_key(t, key.id, now(), audit(action::API_KEY_REVOKED))
            .await,
        conflict::ALREADY_REVOKED,
    );
    assert!(
        store
            .find_api_key(&hash)
            .await
            .expect("lookup")
            .expect("found")
            .revoked_at
            .is_some()
    );
    let actions: Vec<String> = store
        .list_audit_events(t, Page::first(10))
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        &actions[..2],
        [action::API_KEY_REVOKED, action::API_KEY_CREATED]
    );
}

pub async fn platform_admins_have_unique_emails(store: DynStore) {
    let admin = PlatformAdmin {
        id: PlatformAdminId::new(),
        email: email("ops"),
        password_hash: "h".into(),
        created_at: now(),
    };
    store
        .create_platform_admin(admin.clone())
        .await
        .expect("create");
    assert_eq!(
        store
            .find_platform_admin(&email("ops"))
            .await
            .expect("lookup"),
        Some(admin.clone())
    );
    assert_eq!(
        store.get_platform_admin(admin.id).await.expect("get"),
        admin
    );
    let twin = PlatformAdmin {
        id: PlatformAdminId::new(),
        ..admin
    };
    assert_conflict(
        store.create_platform_admin(twin).await,
        conflict::EMAIL_TAKEN,
    );
    assert!(
        store
            .find_platform_admin(&email("nobody"))
            .await
            .expect("lookup")
            .is_none()
    );
    assert_not_found(
        store.get_platform_admin(PlatformAdminId::new()).await,
        "unknown admin",
    );
}

pub async fn suspension_remembers_and_restores_the_previous_status(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "owner").await;
    let who = Actor::PlatformAdmin(PlatformAdminId::new().to_string());
    let s = store
        .set_tenant_suspended(
            t,
            true,
            NewAuditEvent::new(who.clone(), action::TENANT_SUSPENDED, now()),
        )
        .await
        .expect("suspend");
    assert_eq!(
        (s.status, s.status_before_suspension),
        (TenantStatus::Suspended, Some(TenantStatus::Trial))
    );
    let s = store
        .set_tenant_suspended(
            t,
            true,
            NewAuditEvent::new(who.clone(), action::TENANT_SUSPENDED, now()),
        )
        .await
        .expect("suspend again");
    assert_eq!(
        s.status_before_suspension,
        Some(TenantStatus::Trial),
        "a second suspension keeps the remembered status"
    );
    let r = store
        .set_tenant_suspended(
            t,
            false,
            NewAuditEvent::new(who.clone(), action::TENANT_REACTIVATED, now()),
        )
        .await
        .expect("reactivate");
    assert_eq!(
        (r.status, r.status_before_suspension),
        (TenantStatus::Trial, None)
    );
    store
        .set_tenant_status(t, TenantStatus::PastDue)
        .await
        .expect("past due");
    store
        .set_tenant_suspended(
            t,
            true,
            NewAuditEvent::new(who.clone(), action::TENANT_SUSPENDED, now()),
        )
        .await
        .expect("suspend");
    let r = store
        .set_tenant_suspended(
            t,
            false,
            NewAuditEvent::new(who.clone(), action::TENANT_REACTIVATED, now()),
        )
        .await
        .expect("reactivate");
    assert_eq!(r.status, TenantStatus::PastDue);
    let events = store
        .list_audit_events(t, Page::first(10))
        .await
        .expect("audit");
    assert_eq!(events[0].action, action::TENANT_REACTIVATED);
    assert_eq!(events[0].actor, who);
    assert_not_found(
        store
            .set_tenant_suspended(
                TenantId::new(),
                true,
                NewAuditEvent::new(who, action::TENANT_SUSPENDED, now()),
            )
            .await,
        "unknown tenant",
    );
}

pub async fn audit_events_page_newest_first(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "owner").await;
    for i in 0..5 {
        store
            .record_audit(
                t,
                audit(action::LOGIN_FAILURE_BURST).metadata(serde_json::json!({ "n": i })),
            )
            .await
            .expect("record");
    }
    let first = store
        .list_audit_events(t, Page::first(2))
        .await
        .expect("page 1");
    assert_eq!(
        first
            .iter()
            .map(|e| e.metadata["n"].as_i64())
            .collect::<Vec<_>>(),
        vec![Some(4), Some(3)]
    );
    let next = store
        .list_audit_events(
            t,
            Page {
                limit: 10,
                before: Some(first[1].id.as_uuid()),
            },
        )
        .await
        .expect("page 2");
    // Three remaining failures plus the signup event.
    assert_eq!(next.len(), 4);
    assert_eq!(next[0].metadata["n"], 2);
    assert_eq!(next[3].action, action::TENANT_CREATED);
}

pub async fn tenants_page_newest_first(store: DynStore) {
    let (a, _) = tenant_with_owner(&store, "first").await;
    let (b, _) = tenant_with_owner(&store, "second").await;
    let (c, _) = tenant_with_owner(&store, "third").await;
    let page = store.list_tenants(Page::first(2)).await.expect("page");
    assert_eq!(page.iter().map(|t| t.id).collect::<Vec<_>>(), vec![c, b]);
    let rest = store
        .list_tenants(Page {
            limit: 2,
            before: Some(b.0),
        })
        .await
        .expect("page 2");
    assert_eq!(rest.iter().map(|t| t.id).collect::<Vec<_>>(), vec![a]);
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

pub async fn jobs_are_leased_once_and_completed_once(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "owner").await;
    let t0 = now();
    for n in 0..3 {
        assert!(
            store
                .enqueue_job(Some(t), job("ParseDocument", n, t0))
                .await
                .expect("enqueue")
        );
    }
    let lease = Duration::seconds(60);
    let first = store.lease_jobs(t0, lease, 2).await.expect("lease");
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|l| l.job.status == JobStatus::Running
        && l.job.attempts == 1
        && l.job.tenant_id == Some(t)));
    assert_eq!(
        first
            .iter()
            .map(|l| l.job.payload["n"].as_i64())
            .collect::<Vec<_>>(),
        vec![Some(0), Some(1)],
        "oldest first"
    );
    let second = store.lease_jobs(t0, lease, 10).await.expect("lease");
    assert_eq!(second.len(), 1);
    assert!(
        store
            .lease_jobs(t0, lease, 10)
            .await
            .expect("lease")
            .is_empty(),
        "nothing left to lease"
    );

    let l = &first[0];
    store
        .complete_job(l.job.id, l.token, now())
        .await
        .expect("complete");
    let done = store.get_job(l.job.id).await.expect("get");
    assert_eq!(done.status, JobStatus::Done);
    assert!(done.finished_at.is_some());
    assert_conflict(
        store.complete_job(l.job.id, l.token, now()).await,
        conflict::LEASE_LOST,
    );
    assert_conflict(
        store
            .complete_job(second[0].job.id, uuid::Uuid::now_v7(), now())
            .await,
        conflict::LEASE_LOST,
    );
    assert_not_found(
        store.get_job(cortex_core::ids::JobId::new()).await,
        "unknown job",
    );
}

pub async fn unique_keys_make_enqueueing_idempotent(store: DynStore) {
    let t0 = now();
    assert!(
        store
            .enqueue_job(
                None,
                job("DailyRollup", 1, t0).unique("DailyRollup:2026-11-22")
            )
            .await
            .expect("enqueue")
    );
    assert!(
        !store
            .enqueue_job(
                None,
                job("DailyRollup", 2, t0).unique("DailyRollup:2026-11-22")
            )
            .await
            .expect("enqueue")
    );
    let leased = store
        .lease_jobs(t0, Duration::seconds(60), 10)
        .await
        .expect("lease");
    assert_eq!(leased.len(), 1);
    assert_eq!(
        (leased[0].job.tenant_id, leased[0].job.payload["n"].as_i64()),
        (None, Some(1))
    );
    store
        .complete_job(leased[0].job.id, leased[0].token, now())
        .await
        .expect("complete");
    assert!(
        !store
            .enqueue_job(
                None,
                job("DailyRollup", 3, t0).unique("DailyRollup:2026-11-22")
            )
            .await
            .expect("enqueue"),
        "a key that ran stays used: scheduled work runs once"
    );
    assert!(
        store
            .enqueue_job(
                None,
                job("DailyRollup", 4, t0).unique("DailyRollup:2026-11-23")
            )
            .await
            .expect("enqueue")
    );
}

pub async fn failed_attempts_wait_for_their_retry_time_then_fail_for_good(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "owner").await;
    let t0 = now();
    let mut new = job("EmbedChunks", 1, t0);
    new.max_attempts = 2;
    store.enqueue_job(Some(t), new).await.expect("enqueue");
    let lease = Duration::seconds(60);
    let l = store
        .lease_jobs(t0, lease, 1)
        .await
        .expect("lease")
        .remove(0);
    let retry_at = t0 + Duration::seconds(2);
    let after = store
        .fail_job(l.job.id, l.token, "model timed out", retry_at, t0)
        .await
        .expect("fail");
    assert_eq!(
        (after.status, after.run_at, after.last_error.as_deref()),
        (JobStatus::Queued, retry_at, Some("model timed out"))
    );
    assert!(
        store
            .lease_jobs(t0 + Duration::seconds(1), lease, 1)
            .await
            .expect("lease")
            .is_empty(),
        "not due yet"
    );
    let l2 = store
        .lease_jobs(retry_at, lease, 1)
        .await
        .expect("lease")
        .remove(0);
    assert_eq!(l2.job.attempts, 2);
    assert_conflict(
        store
            .fail_job(l.job.id, l.token, "stale", retry_at, retry_at)
            .await,
        conflict::LEASE_LOST,
    );
    let last = store
        .fail_job(
            l2.job.id,
            l2.token,
            "model timed out again",
            retry_at + Duration::seconds(9),
            retry_at,
        )
        .await
        .expect("fail");
    assert_eq!(
        (last.status, last.last_error.as_deref()),
        (JobStatus::Failed, Some("model timed out again"))
    );
    assert!(last.finished_at.is_some());
    assert!(
        store
            .lease_jobs(retry_at + Duration::hours(1), lease, 1)
            .await
            .expect("lease")
            .is_empty(),
        "failed jobs stay failed"
    );
}

pub async fn an_expired_lease_passes_to_the_next_worker(store: DynStore) {
    let t0 = now();
    store
        .enqueue_job(None, job("ParseDocument", 1, t0))
        .await
        .expect("enqueue");
    let crashed = store
        .lease_jobs(t0, Duration::seconds(30), 1)
        .await
        .expect("lease")
        .remove(0);
    store
        .extend_lease(crashed.job.id, crashed.token, t0 + Duration::seconds(60))
        .await
        .expect("heartbeat");
    assert!(
        store
            .lease_jobs(t0 + Duration::seconds(45), Duration::seconds(30), 1)
            .await
            .expect("lease")
            .is_empty(),
        "the heartbeat kept it"
    );
    let taken = store
        .lease_jobs(t0 + Duration::seconds(61), Duration::seconds(30), 1)
        .await
        .expect("lease")
        .remove(0);
    assert_eq!((taken.job.id, taken.job.attempts), (crashed.job.id, 2));
    assert_ne!(taken.token, crashed.token);
    assert_conflict(
        store
            .complete_job(crashed.job.id, crashed.token, now())
            .await,
        conflict::LEASE_LOST,
    );
    assert_conflict(
        store
            .extend_lease(crashed.job.id, crashed.token, t0 + Duration::hours(1))
            .await,
        conflict::LEASE_LOST,
    );
    store
        .complete_job(taken.job.id, taken.token, now())
        .await
        .expect("the new holder completes");
}

pub async fn a_lease_running_out_on_the_last_attempt_fails_the_job(store: DynStore) {
    let t0 = now();
    let mut new = job("ParseDocument", 1, t0);
    new.max_attempts = 1;
    let id = new.id;
    store.enqueue_job(None, new).await.expect("enqueue");
    store
        .lease_jobs(t0, Duration::seconds(10), 1)
        .await
        .expect("lease");
    assert!(
        store
            .lease_jobs(t0 + Duration::seconds(11), Duration::seconds(10), 1)
            .await
            .expect("lease")
            .is_empty()
    );
    let j = store.get_job(id).await.expect("get");
    assert_eq!(j.status, JobStatus::Failed);
    assert!(j.last_error.expect("reason").contains("lease expired"));
}

pub async fn concurrent_workers_never_share_a_job(store: DynStore) {
    let t0 = now();
    for n in 0..20 {
        store
            .enqueue_job(None, job("ParseDocument", n, t0))
            .await
            .expect("enqueue");
    }
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = s
                        .lease_jobs(t0, Duration::seconds(60), 3)
                        .await
                        .expect("lease");
                    if got.is_empty() {
                        break mine;
                    }
                    mine.extend(got.into_iter().map(|l| l.job.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.expect("join"));
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        (total, all.len()),
        (20, 20),
        "every job leased exactly once"
    );
}

pub async fn a_tenant_moves_to_another_plan_with_an_audit_entry(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "plan-mover").await;
    let (other, _) = tenant_with_owner(&store, "plan-stayer").await;
    let moved = store
        .set_tenant_plan(t, "growth", audit(action::TENANT_PLAN_CHANGED))
        .await
        .expect("move");
    assert_eq!(moved.plan, "growth");
    assert_eq!(store.get_tenant(t).await.expect("get").plan, "growth");
    assert_eq!(store.get_tenant(other).await.expect("get").plan, "starter");
    let log = store
        .list_audit_events(t, Page::first(10))
        .await
        .expect("audit");
    assert!(log.iter().any(|e| e.action == action::TENANT_PLAN_CHANGED));
    assert!(matches!(
        store
            .set_tenant_plan(
                TenantId::new(),
                "growth",
                audit(action::TENANT_PLAN_CHANGED)
            )
            .await,
        Err(StoreError::NotFound)
    ));
}
