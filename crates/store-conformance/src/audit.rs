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
