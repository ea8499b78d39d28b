//! Conformance: Widget keys.

use cortex_core::audit::action;
use cortex_core::ids::WidgetKeyId;
use cortex_core::store::conflict;
use cortex_core::widget::{WidgetKey, WidgetPosition, WidgetTheme};

use crate::{DynStore, assert_conflict, assert_not_found, audit, now, tenant_with_owner};

fn key(tenant: cortex_core::ids::TenantId, public: &str) -> WidgetKey {
    WidgetKey {
        id: WidgetKeyId::new(),
        tenant_id: tenant,
        public_key: public.into(),
        name: "Shop".into(),
        allowed_origins: vec![
            "https://shop.example".into(),
            "http://localhost:3000".into(),
        ],
        theme: WidgetTheme::default(),
        created_at: now(),
        revoked_at: None,
    }
}

pub async fn widget_keys_are_the_tenants_found_by_their_public_key_and_revoked_once(
    store: DynStore,
) {
    let (a, _) = tenant_with_owner(&store, "widget-a").await;
    let (b, _) = tenant_with_owner(&store, "widget-b").await;
    let created = store
        .create_widget_key(a, key(a, "wk_a1"), audit(action::WIDGET_KEY_CREATED))
        .await
        .expect("create");
    assert_eq!(created.allowed_origins.len(), 2);
    let found = store
        .find_widget_key("wk_a1")
        .await
        .expect("find")
        .expect("the key");
    assert_eq!((found.tenant_id, found.id), (a, created.id));
    assert!(
        store
            .find_widget_key("wk_none")
            .await
            .expect("find")
            .is_none()
    );

    let changed = WidgetKey {
        allowed_origins: vec!["https://www.shop.example".into()],
        theme: WidgetTheme {
            color: "#10b981".into(),
            title: "Help".into(),
            position: WidgetPosition::Left,
        },
        name: "Shop (www)".into(),
        ..created.clone()
    };
    assert_not_found(
        store
            .update_widget_key(b, changed.clone(), audit(action::WIDGET_KEY_UPDATED))
            .await,
        "B changes A's key",
    );
    let updated = store
        .update_widget_key(a, changed.clone(), audit(action::WIDGET_KEY_UPDATED))
        .await
        .expect("update");
    assert_eq!(
        (
            updated.allowed_origins.clone(),
            updated.theme.clone(),
            updated.name.clone()
        ),
        (changed.allowed_origins, changed.theme, changed.name)
    );
    assert_eq!(updated.public_key, "wk_a1", "the public key never changes");
    assert_eq!(
        store.list_widget_keys(a).await.expect("list"),
        vec![updated.clone()]
    );
    assert!(store.list_widget_keys(b).await.expect("list").is_empty());

    assert_not_found(
        store
            .revoke_widget_key(b, created.id, now(), audit(action::WIDGET_KEY_REVOKED))
            .await,
        "B revokes A's key",
    );
    store
        .revoke_widget_key(a, created.id, now(), audit(action::WIDGET_KEY_REVOKED))
        .await
        .expect("revoke");
    assert_conflict(
        store
            .revoke_widget_key(a, created.id, now(), audit(action::WIDGET_KEY_REVOKED))
            .await,
        conflict::ALREADY_REVOKED,
    );
    assert!(
        store
            .find_widget_key("wk_a1")
            .await
            .expect("find")
            .expect("still found")
            .revoked_at
            .is_some()
    );
    assert_conflict(
        store
            .update_widget_key(a, updated, audit(action::WIDGET_KEY_UPDATED))
            .await,
        conflict::ALREADY_REVOKED,
    );
}
