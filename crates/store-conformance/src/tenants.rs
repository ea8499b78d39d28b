//! Conformance: Tenants, members, invitations and pending signups.

use chrono::Duration;
use cortex_core::StoreError;
use cortex_core::audit::{Actor, NewAuditEvent, action};
use cortex_core::credentials::ApiScope;
use cortex_core::ids::{EmailChangeId, PlatformAdminId, SignupId, TenantId, TokenFamilyId, UserId};
use cortex_core::store::{Page, RefreshUse, conflict};
use cortex_core::tenancy::{
    CompanyName, NewEmailChange, NewPendingSignup, NewTenant, Role, TenantStatus,
};

use crate::{
    DynStore, add_member, assert_conflict, assert_not_found, audit, email, invite, new_key,
    new_refresh, new_user, now, tenant_with_owner,
};

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
        .list_audit_events(
            tenant,
            &cortex_core::audit::AuditFilter::default(),
            Page::first(10),
        )
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
        .list_audit_events(
            b,
            &cortex_core::audit::AuditFilter::default(),
            Page::first(50),
        )
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
        .list_audit_events(
            t,
            &cortex_core::audit::AuditFilter::default(),
            Page::first(10),
        )
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
        .list_audit_events(
            t,
            &cortex_core::audit::AuditFilter::default(),
            Page::first(10),
        )
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

pub async fn the_operator_lists_tenants_by_name_plan_and_status_with_their_counts(store: DynStore) {
    use cortex_core::ids::ConversationId;
    use cortex_core::tenancy::{TenantFilter, TenantStatus};
    let (acme, _) = tenant_with_owner(&store, "acme").await;
    let (beta, _) = tenant_with_owner(&store, "beta_shop").await;
    let (gamma, _) = tenant_with_owner(&store, "gamma100").await;
    crate::knowledge::create(&store, acme, "Guide").await;
    crate::knowledge::create(&store, acme, "FAQ").await;
    let c = ConversationId::new();
    store
        .record_turn(acme, crate::conversations::turn(acme, c, true, "refunds?"))
        .await
        .expect("turn");
    store
        .set_tenant_plan(beta, "growth", audit(action::TENANT_PLAN_CHANGED))
        .await
        .expect("plan");
    store
        .set_tenant_suspended(gamma, true, audit(action::TENANT_SUSPENDED))
        .await
        .expect("suspend");
    let since = now() - chrono::Duration::days(1);
    let list = |filter: TenantFilter, since| {
        let store = store.clone();
        async move {
            store
                .list_tenant_summaries(&filter, since, Page::first(50))
                .await
                .expect("list")
        }
    };
    let all = list(TenantFilter::default(), since).await;
    assert_eq!(
        all.iter().map(|s| s.tenant.id).collect::<Vec<_>>(),
        [gamma, beta, acme],
        "newest first"
    );
    let a = &all[2];
    assert_eq!((a.documents, a.conversations_since), (2, 1));
    assert_eq!((all[0].documents, all[0].conversations_since), (0, 0));
    let later = list(
        TenantFilter::default(),
        now() + chrono::Duration::minutes(1),
    )
    .await;
    assert_eq!(
        later[2].conversations_since, 0,
        "only conversations since the time asked"
    );

    let named = |n: &str| TenantFilter {
        name_contains: Some(n.into()),
        ..TenantFilter::default()
    };
    let ids = |v: Vec<cortex_core::tenancy::TenantSummary>| {
        v.into_iter().map(|s| s.tenant.id).collect::<Vec<_>>()
    };
    assert_eq!(ids(list(named("ACME"), since).await), [acme], "any case");
    assert_eq!(
        ids(list(named("_"), since).await),
        [beta],
        "an underscore is itself, not a wildcard"
    );
    assert_eq!(ids(list(named("%"), since).await), Vec::<TenantId>::new());
    let growth = TenantFilter {
        plan: Some("growth".into()),
        ..TenantFilter::default()
    };
    assert_eq!(ids(list(growth, since).await), [beta]);
    let suspended = TenantFilter {
        status: Some(TenantStatus::Suspended),
        ..TenantFilter::default()
    };
    assert_eq!(ids(list(suspended, since).await), [gamma]);
    let one = TenantFilter {
        id: Some(acme),
        ..TenantFilter::default()
    };
    assert_eq!(ids(list(one, since).await), [acme]);
    let page = store
        .list_tenant_summaries(&TenantFilter::default(), since, Page::first(1))
        .await
        .expect("page");
    let rest = store
        .list_tenant_summaries(
            &TenantFilter::default(),
            since,
            Page {
                limit: 10,
                before: Some(page[0].tenant.id.0),
            },
        )
        .await
        .expect("rest");
    assert_eq!(ids(rest), [beta, acme]);
}

pub async fn a_tenant_is_renamed_with_an_audit_entry(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "renamer").await;
    let (other, _) = tenant_with_owner(&store, "bystander").await;
    let name = CompanyName::parse("Renamed & Sons").expect("valid");
    let renamed = store
        .rename_tenant(t, &name, audit(action::TENANT_RENAMED))
        .await
        .expect("rename");
    assert_eq!(renamed.name, "Renamed & Sons");
    assert_eq!(
        store.get_tenant(t).await.expect("get").name,
        "Renamed & Sons"
    );
    assert_eq!(
        store.get_tenant(other).await.expect("get").name,
        "bystander Inc"
    );
    let log = store
        .list_audit_events(
            t,
            &cortex_core::audit::AuditFilter::default(),
            Page::first(10),
        )
        .await
        .expect("audit");
    assert_eq!(log[0].action, action::TENANT_RENAMED);
    assert_not_found(
        store
            .rename_tenant(TenantId::new(), &name, audit(action::TENANT_RENAMED))
            .await,
        "unknown tenant",
    );
}

fn email_change(user: UserId, to: &str, code_hash: &str, expires_in: Duration) -> NewEmailChange {
    NewEmailChange {
        id: EmailChangeId::new(),
        user_id: user,
        new_email: email(to),
        code_hash: code_hash.to_owned(),
        expires_at: now() + expires_in,
        created_at: now(),
    }
}

pub async fn an_email_change_replaces_the_pending_one_and_completes_once(store: DynStore) {
    let (t, owner) = tenant_with_owner(&store, "mover").await;
    let (other, stranger) = tenant_with_owner(&store, "stranger").await;
    let first = email_change(owner, "mover-old-plan", "first", Duration::minutes(15));
    let first_id = first.id;
    store.put_email_change(t, first).await.expect("first");
    assert_eq!(
        store
            .record_email_change_failure(t, first_id)
            .await
            .expect("fail"),
        1
    );
    assert_not_found(
        store.record_email_change_failure(other, first_id).await,
        "another tenant's change",
    );
    let second = email_change(owner, "mover-new", "second", Duration::minutes(15));
    let second_id = second.id;
    store.put_email_change(t, second).await.expect("second");
    let found = store
        .find_email_change(t, owner, now())
        .await
        .expect("find")
        .expect("pending");
    assert_eq!(
        (
            found.id,
            found.new_email.as_str(),
            found.code_hash.as_str(),
            found.attempts
        ),
        (second_id, "mover-new@example.com", "second", 0),
        "the newer request replaced the earlier one and its attempts"
    );
    assert_eq!(
        store
            .find_email_change(other, owner, now())
            .await
            .expect("find"),
        None,
        "another tenant does not see it"
    );
    assert_not_found(
        store
            .put_email_change(other, email_change(owner, "x", "x", Duration::minutes(15)))
            .await,
        "a member of another tenant",
    );
    assert_not_found(
        store
            .complete_email_change(other, second_id, now(), audit(action::EMAIL_CHANGED))
            .await,
        "completed from another tenant",
    );
    assert_not_found(
        store
            .complete_email_change(t, first_id, now(), audit(action::EMAIL_CHANGED))
            .await,
        "the replaced change",
    );

    // Someone started a signup with the address; the code proves the mailbox is the member's.
    store
        .put_pending_signup(pending_signup(
            "mover-new",
            "squatter",
            Duration::minutes(15),
        ))
        .await
        .expect("pending signup");
    let at = now();
    let user = store
        .complete_email_change(t, second_id, at, audit(action::EMAIL_CHANGED))
        .await
        .expect("complete");
    assert_eq!(user.email.as_str(), "mover-new@example.com");
    assert_eq!(user.email_verified_at, Some(at));
    assert_eq!(
        store
            .find_user_by_email(&email("mover-new"))
            .await
            .expect("lookup")
            .map(|u| u.id),
        Some(owner)
    );
    assert_eq!(
        store
            .find_user_by_email(&email("mover"))
            .await
            .expect("lookup"),
        None,
        "the old address signs in no one"
    );
    assert_eq!(
        store
            .find_pending_signup(&email("mover-new"), now())
            .await
            .expect("pending"),
        None
    );
    assert_eq!(
        store
            .find_email_change(t, owner, now())
            .await
            .expect("find"),
        None
    );
    assert_not_found(
        store
            .complete_email_change(t, second_id, now(), audit(action::EMAIL_CHANGED))
            .await,
        "used twice",
    );
    let log = store
        .list_audit_events(
            t,
            &cortex_core::audit::AuditFilter::default(),
            Page::first(10),
        )
        .await
        .expect("audit");
    assert_eq!(log[0].action, action::EMAIL_CHANGED);
    let untouched = store.get_user(other, stranger).await.expect("stranger");
    assert_eq!(untouched.email.as_str(), "stranger@example.com");
}

pub async fn an_email_change_to_a_taken_address_changes_nothing(store: DynStore) {
    let (t, owner) = tenant_with_owner(&store, "keeper").await;
    let (other, _) = tenant_with_owner(&store, "holder").await;
    let change = email_change(owner, "holder", "code", Duration::minutes(15));
    let id = change.id;
    store.put_email_change(t, change).await.expect("put");
    assert_conflict(
        store
            .complete_email_change(t, id, now(), audit(action::EMAIL_CHANGED))
            .await,
        conflict::EMAIL_TAKEN,
    );
    assert_eq!(
        store.get_user(t, owner).await.expect("user").email.as_str(),
        "keeper@example.com"
    );
    for tenant in [t, other] {
        let log = store
            .list_audit_events(
                tenant,
                &cortex_core::audit::AuditFilter::default(),
                Page::first(10),
            )
            .await
            .expect("audit");
        assert!(log.iter().all(|e| e.action != action::EMAIL_CHANGED));
    }
}

pub async fn an_email_change_expires_and_can_be_cancelled(store: DynStore) {
    let (t, owner) = tenant_with_owner(&store, "waiter").await;
    let stale = email_change(owner, "waiter-late", "code", Duration::seconds(-1));
    let stale_id = stale.id;
    store.put_email_change(t, stale).await.expect("put");
    assert_eq!(
        store
            .find_email_change(t, owner, now())
            .await
            .expect("find"),
        None
    );
    assert_not_found(
        store
            .complete_email_change(t, stale_id, now(), audit(action::EMAIL_CHANGED))
            .await,
        "expired",
    );
    store
        .put_email_change(
            t,
            email_change(owner, "waiter-new", "c", Duration::minutes(15)),
        )
        .await
        .expect("put");
    store.cancel_email_change(t, owner).await.expect("cancel");
    assert_eq!(
        store
            .find_email_change(t, owner, now())
            .await
            .expect("find"),
        None
    );
    store
        .cancel_email_change(t, owner)
        .await
        .expect("cancel twice is fine");
    assert_eq!(
        store.get_user(t, owner).await.expect("user").email.as_str(),
        "waiter@example.com"
    );
}

pub async fn concurrent_email_change_confirmations_let_exactly_one_through(store: DynStore) {
    let (t, owner) = tenant_with_owner(&store, "racer").await;
    let change = email_change(owner, "racer-new", "code", Duration::minutes(15));
    let id = change.id;
    store.put_email_change(t, change).await.expect("put");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move {
                s.complete_email_change(t, id, now(), audit(action::EMAIL_CHANGED))
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for h in handles {
        match h.await.expect("join") {
            Ok(u) => {
                assert_eq!(u.email.as_str(), "racer-new@example.com");
                winners += 1;
            }
            Err(StoreError::NotFound) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(winners, 1);
    let log = store
        .list_audit_events(
            t,
            &cortex_core::audit::AuditFilter {
                action: Some(action::EMAIL_CHANGED.into()),
                ..Default::default()
            },
            Page::first(10),
        )
        .await
        .expect("audit");
    assert_eq!(log.len(), 1, "one audit entry");
}
