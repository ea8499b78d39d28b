//! Conformance: The audit log.

use cortex_core::audit::action;
use cortex_core::store::Page;

use crate::{DynStore, audit, tenant_with_owner};

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
        .list_audit_events(
            t,
            &cortex_core::audit::AuditFilter::default(),
            Page::first(2),
        )
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
            &cortex_core::audit::AuditFilter::default(),
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

pub async fn audit_events_filter_by_action_member_and_time(store: DynStore) {
    use cortex_core::audit::{Actor, AuditFilter, NewAuditEvent};
    let (t, owner) = tenant_with_owner(&store, "owner").await;
    let (other_tenant, _) = tenant_with_owner(&store, "elsewhere").await;
    let at = |minutes_ago: i64| crate::now() - chrono::Duration::minutes(minutes_ago);
    let by_owner = |what: &'static str, minutes_ago| {
        NewAuditEvent::new(Actor::User(owner.to_string()), what, at(minutes_ago))
    };
    for event in [
        by_owner(action::MEMBER_INVITED, 30),
        by_owner(action::API_KEY_CREATED, 20),
        by_owner(action::MEMBER_INVITED, 10),
        audit(action::LOGIN_FAILURE_BURST),
    ] {
        store.record_audit(t, event).await.expect("record");
    }
    store
        .record_audit(other_tenant, by_owner(action::MEMBER_INVITED, 5))
        .await
        .expect("record");
    let list = |filter: AuditFilter| {
        let store = store.clone();
        async move {
            store
                .list_audit_events(t, &filter, Page::first(50))
                .await
                .expect("list")
                .into_iter()
                .map(|e| (e.action, e.created_at))
                .collect::<Vec<_>>()
        }
    };
    let invited = list(AuditFilter {
        action: Some(action::MEMBER_INVITED.into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(
        invited.len(),
        2,
        "this tenant's two invitations: {invited:?}"
    );
    let mine = list(AuditFilter {
        actor_user: Some(owner),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(
        mine.len(),
        3,
        "what the owner did, not the system: {mine:?}"
    );
    let window = list(AuditFilter {
        actor_user: Some(owner),
        from: Some(at(25)),
        until: Some(at(15)),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(
        window.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(),
        [action::API_KEY_CREATED]
    );
}
