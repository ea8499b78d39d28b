//! Conformance: Inbound messages and outbound deliveries.

use cortex_core::conversations::Channel;
use cortex_core::ids::{ChannelConnectionId, TenantId};
use cortex_core::usage::UsageKind;

use crate::channels::connected;
use crate::{DynStore, assert_not_found, now, tenant_with_owner};

pub(crate) fn inbound(
    tenant: TenantId,
    connection: ChannelConnectionId,
    provider_id: &str,
) -> cortex_core::channels::InboundMessage {
    cortex_core::channels::InboundMessage {
        id: cortex_core::ids::InboundMessageId::new(),
        tenant_id: tenant,
        connection_id: connection,
        provider_message_id: provider_id.to_owned(),
        customer: "16505551234".into(),
        content: cortex_core::channels::InboundContent::Text {
            text: "Does it come in red?".into(),
        },
        sent_at: now(),
        received_at: now(),
        answered_at: None,
        error: None,
    }
}

pub(crate) fn answer_job(provider_id: &str) -> cortex_core::jobs::NewJob {
    cortex_core::jobs::NewJob::now(
        "AnswerInbound",
        serde_json::json!({ "provider_id": provider_id }),
    )
    .unique(format!("AnswerInbound:{provider_id}"))
}

pub async fn a_delivery_replayed_concurrently_is_stored_once_with_one_job(store: DynStore) {
    let (a, _) = tenant_with_owner(&store, "inbound-a").await;
    let (b, _) = tenant_with_owner(&store, "inbound-b").await;
    let conn = connected(&store, a, Channel::WhatsApp, "77").await;
    let deliveries = (0..10).map(|_| {
        let store = store.clone();
        async move {
            store
                .record_inbound(a, inbound(a, conn.id, "wamid.ABC"), answer_job("wamid.ABC"))
                .await
                .expect("record")
        }
    });
    let stored = futures_join_all(deliveries).await;
    assert_eq!(
        stored.iter().filter(|s| **s).count(),
        1,
        "one delivery wins: {stored:?}"
    );
    let leased = store
        .lease_jobs(
            now() + chrono::Duration::seconds(1),
            chrono::Duration::seconds(30),
            50,
        )
        .await
        .expect("lease");
    let answers: Vec<_> = leased
        .iter()
        .filter(|l| l.job.kind == "AnswerInbound")
        .collect();
    assert_eq!(answers.len(), 1, "one answer job");

    let first = inbound(a, conn.id, "wamid.DEF");
    let id = first.id;
    assert!(
        store
            .record_inbound(a, first, answer_job("wamid.DEF"))
            .await
            .expect("record")
    );
    let got = store.get_inbound(a, id).await.expect("get");
    assert_eq!(got.customer, "16505551234");
    assert_eq!(got.content.text(), Some("Does it come in red?"));
    assert_not_found(store.get_inbound(b, id).await, "B reads A's message");
    assert_not_found(
        store
            .record_inbound(b, inbound(b, conn.id, "wamid.X"), answer_job("wamid.X"))
            .await,
        "B stores on A's connection",
    );
    // Finishing appends the messages sent to the ledger, once.
    let since = now() - chrono::Duration::seconds(1);
    let sent = |tenant| cortex_core::usage::UsageEvent {
        id: cortex_core::ids::UsageEventId::new(),
        tenant_id: tenant,
        kind: UsageKind::ChannelMessage,
        subject: "whatsapp".into(),
        quantity: 2,
        conversation_id: None,
        created_at: now(),
    };
    let whatsapp_total = |tenant| {
        let store = store.clone();
        async move {
            store
                .usage_total(tenant, UsageKind::ChannelMessage, "whatsapp", since)
                .await
                .expect("total")
        }
    };
    assert!(
        !store
            .finish_inbound(b, id, now(), None, &[sent(b)])
            .await
            .unwrap_or(false),
        "not B's"
    );
    assert_eq!(whatsapp_total(b).await, 0);
    assert!(
        store
            .finish_inbound(
                a,
                id,
                now(),
                Some("131047 Re-engagement message"),
                &[sent(a)]
            )
            .await
            .expect("finish")
    );
    assert!(
        !store
            .finish_inbound(a, id, now(), None, &[sent(a)])
            .await
            .expect("finish"),
        "once"
    );
    let done = store.get_inbound(a, id).await.expect("get");
    assert!(done.answered_at.is_some());
    assert_eq!(done.error.as_deref(), Some("131047 Re-engagement message"));
    assert_eq!(whatsapp_total(a).await, 2, "counted once");
    assert_eq!(
        store
            .usage_total(a, UsageKind::ChannelMessage, "messenger", since)
            .await
            .expect("total"),
        0
    );
}

/// `join_all` without a futures dependency: each future on its own task.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

pub async fn delivery_statuses_only_move_forward(store: DynStore) {
    use cortex_core::channels::{DeliveryStatus, OutboundMessage};
    let (a, _) = tenant_with_owner(&store, "outbound-a").await;
    let (b, _) = tenant_with_owner(&store, "outbound-b").await;
    let conn = connected(&store, a, Channel::WhatsApp, "99").await;
    let sent = |provider_id: &str| OutboundMessage {
        id: cortex_core::ids::OutboundMessageId::new(),
        tenant_id: a,
        connection_id: conn.id,
        inbound_id: None,
        provider_message_id: provider_id.to_owned(),
        status: DeliveryStatus::Sent,
        error: None,
        created_at: now(),
        updated_at: now(),
    };
    store
        .record_outbound(a, sent("wamid.out1"))
        .await
        .expect("record");
    store
        .record_outbound(a, sent("wamid.out1"))
        .await
        .expect("recording twice is harmless");
    assert_not_found(
        store.record_outbound(b, sent("wamid.out9")).await,
        "B records on A's connection",
    );
    let update = |tenant, status, error: Option<&'static str>| {
        let store = store.clone();
        async move {
            store
                .update_outbound_status(tenant, conn.id, "wamid.out1", status, error, now())
                .await
                .expect("update")
        }
    };
    assert!(update(a, DeliveryStatus::Read, None).await);
    assert!(
        !update(a, DeliveryStatus::Delivered, None).await,
        "a late delivered after read"
    );
    assert!(
        !update(b, DeliveryStatus::Failed, Some("x")).await,
        "not through another tenant"
    );
    let got = store
        .find_outbound(a, conn.id, "wamid.out1")
        .await
        .expect("find")
        .expect("there");
    assert_eq!(got.status, DeliveryStatus::Read);
    store
        .record_outbound(a, sent("wamid.out2"))
        .await
        .expect("record");
    assert!(update_failed(&store, a, conn.id).await);
    let failed = store
        .find_outbound(a, conn.id, "wamid.out2")
        .await
        .expect("find")
        .expect("there");
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert_eq!(
        failed.error.as_deref(),
        Some("131047 Re-engagement message")
    );
    assert!(
        store
            .find_outbound(b, conn.id, "wamid.out2")
            .await
            .expect("find")
            .is_none()
    );
}

async fn update_failed(store: &DynStore, tenant: TenantId, conn: ChannelConnectionId) -> bool {
    store
        .update_outbound_status(
            tenant,
            conn,
            "wamid.out2",
            cortex_core::channels::DeliveryStatus::Failed,
            Some("131047 Re-engagement message"),
            now(),
        )
        .await
        .expect("update")
}

pub async fn a_customers_waiting_messages_list_oldest_first(store: DynStore) {
    let (a, _) = tenant_with_owner(&store, "waiting-a").await;
    let (b, _) = tenant_with_owner(&store, "waiting-b").await;
    let conn = connected(&store, a, Channel::WhatsApp, "66").await;
    let at = |secs: i64| now() - chrono::Duration::seconds(secs);
    let mut ids = Vec::new();
    // Arriving out of order: the provider's time decides.
    for (key, sent, customer) in [
        ("w-2", at(10), "16505551234"),
        ("w-1", at(30), "16505551234"),
        ("w-3", at(5), "16505551234"),
        ("other", at(40), "447700900000"),
    ] {
        let m = cortex_core::channels::InboundMessage {
            sent_at: sent,
            customer: customer.into(),
            ..inbound(a, conn.id, key)
        };
        ids.push(m.id);
        store
            .record_inbound(a, m, answer_job(key))
            .await
            .expect("record");
    }
    store
        .finish_inbound(a, ids[2], now(), None, &[])
        .await
        .expect("finish w-3");
    let waiting = store
        .unanswered_inbound(a, conn.id, "16505551234", 10)
        .await
        .expect("waiting");
    let keys: Vec<&str> = waiting
        .iter()
        .map(|m| m.provider_message_id.as_str())
        .collect();
    assert_eq!(keys, ["w-1", "w-2"], "oldest first, answered ones left out");
    assert_eq!(
        store
            .unanswered_inbound(a, conn.id, "16505551234", 1)
            .await
            .expect("one")
            .len(),
        1
    );
    assert!(
        store
            .unanswered_inbound(b, conn.id, "16505551234", 10)
            .await
            .expect("b")
            .is_empty(),
        "not through another tenant"
    );
}
