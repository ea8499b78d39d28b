//! Conformance: Bot settings.

use cortex_core::answer::BotSettings;
use cortex_core::audit::action;
use cortex_core::store::Page;

use crate::{DynStore, audit, now, tenant_with_owner};

pub async fn bot_settings_default_to_none_and_are_saved_with_an_audit_entry(store: DynStore) {
    let (a, _) = tenant_with_owner(&store, "bot-a").await;
    let (b, _) = tenant_with_owner(&store, "bot-b").await;
    assert_eq!(store.get_bot_settings(a).await.expect("get"), None);
    let mut settings = BotSettings {
        top_k: 7,
        system_prompt: "Be brief. Réponds en français.".into(),
        ..BotSettings::default()
    };
    store
        .put_bot_settings(a, &settings, now(), audit(action::BOT_SETTINGS_UPDATED))
        .await
        .expect("put");
    settings.temperature = 0.7;
    store
        .put_bot_settings(a, &settings, now(), audit(action::BOT_SETTINGS_UPDATED))
        .await
        .expect("put again");
    assert_eq!(
        store.get_bot_settings(a).await.expect("get"),
        Some(settings)
    );
    assert_eq!(
        store.get_bot_settings(b).await.expect("get b"),
        None,
        "another tenant's settings are not shared"
    );
    let log = store
        .list_audit_events(
            a,
            &cortex_core::audit::AuditFilter::default(),
            Page::first(10),
        )
        .await
        .expect("audit");
    assert_eq!(
        log.iter()
            .filter(|e| e.action == action::BOT_SETTINGS_UPDATED)
            .count(),
        2
    );
}
