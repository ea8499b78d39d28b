//! Conformance: Refresh tokens, API keys, platform admins and sealed secrets.

use chrono::Duration;
use cortex_core::audit::action;
use cortex_core::conversations::Channel;
use cortex_core::credentials::{ApiScope, NewPasswordReset, PlatformAdmin};
use cortex_core::ids::{PasswordResetId, PlatformAdminId, TenantId, TokenFamilyId, UserId};
use cortex_core::store::{Page, RefreshUse, conflict};
use cortex_core::tenancy::Role;

use crate::channels::connection;
use crate::{
    DynStore, add_member, assert_conflict, assert_not_found, audit, email, new_key, new_refresh,
    now, tenant_with_owner,
};

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
        .list_audit_events(
            t,
            &cortex_core::audit::AuditFilter::default(),
            Page::first(10),
        )
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

pub async fn a_members_sessions_are_listed_and_revoked_together(store: DynStore) {
    let (t, owner) = tenant_with_owner(&store, "owner").await;
    let other = add_member(&store, t, owner, "other", Role::Agent).await;
    let (browser, api) = (TokenFamilyId::new(), TokenFamilyId::new());
    let first = new_refresh(owner, api);
    let first_hash = first.token_hash.clone();
    store.insert_refresh_token(t, first).await.expect("insert");
    store
        .insert_refresh_token(t, new_refresh(owner, browser))
        .await
        .expect("insert");
    // The API client refreshed: its family's first token is used, its successor live.
    store
        .use_refresh_token(t, &first_hash, now())
        .await
        .expect("use");
    store
        .insert_refresh_token(t, new_refresh(owner, api))
        .await
        .expect("insert successor");
    let ended = TokenFamilyId::new();
    store
        .insert_refresh_token(t, new_refresh(owner, ended))
        .await
        .expect("insert");
    store
        .revoke_token_family(t, ended, now())
        .await
        .expect("revoke");
    store
        .insert_refresh_token(t, new_refresh(other, TokenFamilyId::new()))
        .await
        .expect("insert");

    let sessions = store.list_sessions(t, owner, now()).await.expect("list");
    let mut families: Vec<_> = sessions.iter().map(|s| s.family_id).collect();
    families.sort();
    let mut expected = vec![browser, api];
    expected.sort();
    assert_eq!(families, expected, "the revoked family is no session");
    let api_session = sessions.iter().find(|s| s.family_id == api).expect("api");
    assert!(api_session.started_at <= api_session.refreshed_at);
    assert!(
        store
            .list_sessions(t, owner, now() + Duration::days(8))
            .await
            .expect("list")
            .is_empty(),
        "expired tokens are no session"
    );
    let (other_tenant, _) = tenant_with_owner(&store, "elsewhere").await;
    assert!(
        store
            .list_sessions(other_tenant, owner, now())
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        store
            .revoke_user_tokens(other_tenant, owner, now())
            .await
            .expect("revoke"),
        0,
        "another tenant cannot revoke the member's tokens"
    );

    assert_eq!(
        store
            .revoke_user_tokens(t, owner, now())
            .await
            .expect("revoke"),
        3,
        "the used token, its successor and the browser's (the revoked one stays as it was)"
    );
    assert!(
        store
            .list_sessions(t, owner, now())
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        store
            .list_sessions(t, other, now())
            .await
            .expect("list")
            .len(),
        1,
        "another member's session is untouched"
    );
}

fn new_reset(user: UserId, ttl: Duration) -> NewPasswordReset {
    let id = PasswordResetId::new();
    NewPasswordReset {
        id,
        user_id: user,
        token_hash: format!("reset-{id}"),
        expires_at: now() + ttl,
        created_at: now(),
    }
}

async fn password_hash(store: &DynStore, t: TenantId, user: UserId) -> String {
    store.get_user(t, user).await.expect("user").password_hash
}

pub async fn a_password_reset_is_used_once_and_signs_every_session_out(store: DynStore) {
    let (t, owner) = tenant_with_owner(&store, "owner").await;
    let (other_tenant, other_owner) = tenant_with_owner(&store, "elsewhere").await;
    assert_not_found(
        store
            .insert_password_reset(other_tenant, new_reset(owner, Duration::minutes(30)))
            .await,
        "a reset for a member of another tenant",
    );
    let older = new_reset(owner, Duration::minutes(30));
    let older_hash = older.token_hash.clone();
    store.insert_password_reset(t, older).await.expect("insert");
    let reset = new_reset(owner, Duration::minutes(30));
    let (hash, id) = (reset.token_hash.clone(), reset.id);
    store.insert_password_reset(t, reset).await.expect("insert");
    let found = store
        .find_password_reset(&hash)
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(
        (found.id, found.tenant_id, found.user_id, found.used_at),
        (id, t, owner, None)
    );
    for family in [TokenFamilyId::new(), TokenFamilyId::new()] {
        store
            .insert_refresh_token(t, new_refresh(owner, family))
            .await
            .expect("insert");
    }
    store
        .insert_refresh_token(other_tenant, new_refresh(other_owner, TokenFamilyId::new()))
        .await
        .expect("insert");

    assert_not_found(
        store
            .complete_password_reset(
                other_tenant,
                id,
                "new-hash",
                now(),
                audit(action::PASSWORD_RESET),
            )
            .await,
        "another tenant's reset",
    );
    store
        .complete_password_reset(t, id, "new-hash", now(), audit(action::PASSWORD_RESET))
        .await
        .expect("complete");
    assert_eq!(password_hash(&store, t, owner).await, "new-hash");
    assert!(
        store
            .list_sessions(t, owner, now())
            .await
            .expect("list")
            .is_empty(),
        "every session of the member is signed out"
    );
    assert_eq!(
        store
            .list_sessions(other_tenant, other_owner, now())
            .await
            .expect("list")
            .len(),
        1
    );
    let events = store
        .list_audit_events(
            t,
            &cortex_core::audit::AuditFilter::default(),
            Page::first(1),
        )
        .await
        .expect("audit");
    assert_eq!(events[0].action, action::PASSWORD_RESET);

    assert_not_found(
        store
            .complete_password_reset(t, id, "again", now(), audit(action::PASSWORD_RESET))
            .await,
        "a used reset",
    );
    let older = store
        .find_password_reset(&older_hash)
        .await
        .expect("lookup")
        .expect("found");
    assert!(
        older.used_at.is_some(),
        "the member's other resets are used up"
    );
    assert_not_found(
        store
            .complete_password_reset(t, older.id, "again", now(), audit(action::PASSWORD_RESET))
            .await,
        "an earlier reset after the password changed",
    );
    assert_eq!(password_hash(&store, t, owner).await, "new-hash");

    let expired = new_reset(owner, Duration::minutes(30));
    let expired_id = expired.id;
    store
        .insert_password_reset(t, expired)
        .await
        .expect("insert");
    assert_not_found(
        store
            .complete_password_reset(
                t,
                expired_id,
                "late",
                now() + Duration::minutes(31),
                audit(action::PASSWORD_RESET),
            )
            .await,
        "an expired reset",
    );
    assert_eq!(password_hash(&store, t, owner).await, "new-hash");
}

pub async fn concurrent_password_resets_let_exactly_one_through(store: DynStore) {
    let (t, owner) = tenant_with_owner(&store, "owner").await;
    let reset = new_reset(owner, Duration::minutes(30));
    let id = reset.id;
    store.insert_password_reset(t, reset).await.expect("insert");
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let s = store.clone();
            tokio::spawn(async move {
                s.complete_password_reset(
                    t,
                    id,
                    &format!("hash-{i}"),
                    now(),
                    audit(action::PASSWORD_RESET),
                )
                .await
                .map(|()| i)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for h in handles {
        match h.await.expect("join") {
            Ok(i) => winners.push(i),
            Err(cortex_core::StoreError::NotFound) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(
        password_hash(&store, t, owner).await,
        format!("hash-{}", winners[0]),
        "the winner's password is the one set"
    );
}

pub async fn changing_a_password_keeps_only_the_session_that_changed_it(store: DynStore) {
    let (t, owner) = tenant_with_owner(&store, "owner").await;
    let (here, elsewhere) = (TokenFamilyId::new(), TokenFamilyId::new());
    for family in [here, elsewhere] {
        store
            .insert_refresh_token(t, new_refresh(owner, family))
            .await
            .expect("insert");
    }
    let (other_tenant, _) = tenant_with_owner(&store, "elsewhere").await;
    assert_not_found(
        store
            .change_password(
                other_tenant,
                owner,
                "x",
                None,
                now(),
                audit(action::PASSWORD_CHANGED),
            )
            .await,
        "a member of another tenant",
    );
    store
        .change_password(
            t,
            owner,
            "changed",
            Some(here),
            now(),
            audit(action::PASSWORD_CHANGED),
        )
        .await
        .expect("change");
    assert_eq!(password_hash(&store, t, owner).await, "changed");
    let sessions = store.list_sessions(t, owner, now()).await.expect("list");
    assert_eq!(
        sessions.iter().map(|s| s.family_id).collect::<Vec<_>>(),
        vec![here]
    );
    let events = store
        .list_audit_events(
            t,
            &cortex_core::audit::AuditFilter::default(),
            Page::first(1),
        )
        .await
        .expect("audit");
    assert_eq!(events[0].action, action::PASSWORD_CHANGED);
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
        .list_audit_events(
            t,
            &cortex_core::audit::AuditFilter::default(),
            Page::first(10),
        )
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

pub async fn sealed_secrets_are_resealed_only_while_unchanged(store: DynStore) {
    let (a, _) = tenant_with_owner(&store, "seal-a").await;
    let (b, _) = tenant_with_owner(&store, "seal-b").await;
    let ca = store
        .create_channel_connection(
            a,
            connection(a, Channel::WhatsApp, "1"),
            audit(action::CHANNEL_CONNECTED),
        )
        .await
        .expect("a");
    store
        .create_channel_connection(
            b,
            connection(b, Channel::Instagram, "2"),
            audit(action::CHANNEL_CONNECTED),
        )
        .await
        .expect("b");
    let all = store.list_sealed_secrets().await.expect("sealed");
    assert_eq!(all.len(), 2, "every tenant's");
    let mine = all.iter().find(|s| s.connection == ca.id).expect("a's");
    assert_eq!(mine.tenant_id, a);
    assert!(
        !store
            .reseal_secret(b, ca.id, &mine.sealed, "v1.new.x")
            .await
            .expect("reseal"),
        "not through another tenant"
    );
    assert!(
        store
            .reseal_secret(a, ca.id, &mine.sealed, "v1.new.x")
            .await
            .expect("reseal")
    );
    assert!(
        !store
            .reseal_secret(a, ca.id, &mine.sealed, "v1.newer.y")
            .await
            .expect("reseal"),
        "a stale value does not overwrite"
    );
    let now_listed = store.list_channel_connections(a).await.expect("list");
    assert_eq!(now_listed[0].sealed_token, "v1.new.x");
}
