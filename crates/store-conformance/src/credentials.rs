//! Conformance: Refresh tokens, API keys, platform admins and sealed secrets.

use cortex_core::audit::action;
use cortex_core::conversations::Channel;
use cortex_core::credentials::{ApiScope, PlatformAdmin};
use cortex_core::ids::{PlatformAdminId, TokenFamilyId};
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
