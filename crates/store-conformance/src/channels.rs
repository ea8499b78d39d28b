//! Conformance cases of channel connections.

use cortex_core::answer::{Channel, UsageKind};
use cortex_core::audit::action;
use cortex_core::channels::{ChannelConnection, Provider};
use cortex_core::ids::{ChannelConnectionId, TenantId};
use cortex_core::store::{Page, conflict};

use super::{DynStore, assert_conflict, assert_not_found, audit, now, tenant_with_owner};

/// A Meta connection; a Twilio one for a `+number`, a ManyChat one for that kind.
fn connection(tenant: TenantId, kind: Channel, asset: &str) -> ChannelConnection {
    let twilio = asset.starts_with('+');
    ChannelConnection {
        id: ChannelConnectionId::new(),
        tenant_id: tenant,
        kind,
        provider: match kind {
            Channel::ManyChat => Provider::ManyChat,
            _ if twilio => Provider::Twilio,
            _ => Provider::Meta,
        },
        asset_id: asset.to_owned(),
        account_id: twilio.then(|| "AC0123456789abcdef0123456789abcdef".to_owned()),
        name: format!("{kind} {asset}"),
        sealed_token: format!("v1.abcd1234.sealed-{asset}"),
        token_hint: "…wxyz".into(),
        template: (kind == Channel::WhatsApp)
            .then(|| ("order_update".to_owned(), "en_US".to_owned())),
        ack_text: (kind == Channel::ManyChat).then(|| "OK, bien reçu".to_owned()),
        verified_at: Some(now()),
        webhook_target: matches!(kind, Channel::Messenger | Channel::Instagram)
            .then(|| format!("page-of-{asset}")),
        token_invalid_at: None,
        created_by: None,
        created_at: now(),
        updated_at: now(),
    }
}

/// Connects a channel of `tenant` (see [`connection`]) and returns the stored row.
async fn connected(
    store: &DynStore,
    tenant: TenantId,
    kind: Channel,
    asset: &str,
) -> ChannelConnection {
    store
        .create_channel_connection(
            tenant,
            connection(tenant, kind, asset),
            audit(action::CHANNEL_CONNECTED),
        )
        .await
        .expect("connect")
}

pub async fn a_channel_asset_belongs_to_one_tenant_and_routes_to_it(store: DynStore) {
    let (a, _) = tenant_with_owner(&store, "chan-a").await;
    let (b, _) = tenant_with_owner(&store, "chan-b").await;
    let wa = connected(&store, a, Channel::WhatsApp, "1065").await;
    assert_eq!(wa.sealed_token, "v1.abcd1234.sealed-1065");
    assert_eq!(
        wa.template,
        Some(("order_update".to_owned(), "en_US".to_owned()))
    );
    assert_conflict(
        store
            .create_channel_connection(
                b,
                connection(b, Channel::WhatsApp, "1065"),
                audit(action::CHANNEL_CONNECTED),
            )
            .await,
        conflict::CHANNEL_TAKEN,
    );
    store
        .create_channel_connection(
            b,
            connection(b, Channel::Messenger, "1065"),
            audit(action::CHANNEL_CONNECTED),
        )
        .await
        .expect("the same id of another kind is another asset");

    // Twilio's and ManyChat's connections keep their account and acknowledgement.
    for (kind, asset) in [
        (Channel::WhatsApp, "+14155238886"),
        (Channel::ManyChat, "1065"),
    ] {
        let given = connection(a, kind, asset);
        let c = store
            .create_channel_connection(a, given.clone(), audit(action::CHANNEL_CONNECTED))
            .await
            .expect("connect");
        let found = store
            .find_channel_connection(kind, asset)
            .await
            .expect("find")
            .expect("routed");
        assert_eq!(found, c);
        assert_eq!(
            (found.provider, &found.account_id, &found.ack_text),
            (given.provider, &given.account_id, &given.ack_text)
        );
        store
            .delete_channel_connection(a, c.id, audit(action::CHANNEL_DISCONNECTED))
            .await
            .expect("disconnect");
    }

    let found = store
        .find_channel_connection(Channel::WhatsApp, "1065")
        .await
        .expect("find")
        .expect("routed");
    assert_eq!((found.tenant_id, found.id), (a, wa.id));
    assert!(
        store
            .find_channel_connection(Channel::Instagram, "1065")
            .await
            .expect("find")
            .is_none()
    );
    assert_eq!(
        store.list_channel_connections(a).await.expect("list"),
        std::slice::from_ref(&wa)
    );
    assert_eq!(
        store.list_channel_connections(b).await.expect("list").len(),
        1
    );

    assert_not_found(
        store
            .delete_channel_connection(b, wa.id, audit(action::CHANNEL_DISCONNECTED))
            .await,
        "B disconnects A's channel",
    );
    store
        .delete_channel_connection(a, wa.id, audit(action::CHANNEL_DISCONNECTED))
        .await
        .expect("disconnect");
    assert!(
        store
            .find_channel_connection(Channel::WhatsApp, "1065")
            .await
            .expect("find")
            .is_none()
    );
    let log = store
        .list_audit_events(a, Page::first(20))
        .await
        .expect("audit");
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&action::CHANNEL_CONNECTED));
    assert!(actions.contains(&action::CHANNEL_DISCONNECTED));
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

fn inbound(
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
        content: serde_json::json!({ "type": "text", "text": "Does it come in red?" }),
        sent_at: now(),
        received_at: now(),
        answered_at: None,
        error: None,
    }
}

fn answer_job(provider_id: &str) -> cortex_core::jobs::NewJob {
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
    assert_eq!(got.content["text"], "Does it come in red?");
    assert_not_found(store.get_inbound(b, id).await, "B reads A's message");
    assert_not_found(
        store
            .record_inbound(b, inbound(b, conn.id, "wamid.X"), answer_job("wamid.X"))
            .await,
        "B stores on A's connection",
    );
    // Finishing appends the messages sent to the ledger, once.
    let since = now() - chrono::Duration::seconds(1);
    let sent = |tenant| cortex_core::answer::UsageEvent {
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

pub async fn a_channel_customer_finds_their_open_conversation(store: DynStore) {
    use super::answer::message;
    use cortex_core::answer::{Conversation, ConversationStatus, MessageRole, Turn};
    use cortex_core::ids::ConversationId;
    let (a, _) = tenant_with_owner(&store, "customer-a").await;
    let (b, _) = tenant_with_owner(&store, "customer-b").await;
    let conn = connected(&store, a, Channel::WhatsApp, "88").await;
    let c = ConversationId::new();
    let question = message(a, c, MessageRole::User, "hi");
    let answer = message(a, c, MessageRole::Assistant, "hello");
    store
        .record_turn(
            a,
            Turn {
                new_conversation: Some(Conversation {
                    id: c,
                    tenant_id: a,
                    channel: Channel::WhatsApp,
                    status: ConversationStatus::Bot,
                    connection_id: Some(conn.id),
                    customer: Some("16505551234".into()),
                    created_at: now(),
                    updated_at: now(),
                }),
                conversation_id: c,
                question,
                answer: Some(answer),
                usage: Vec::new(),
                events: Vec::new(),
            },
        )
        .await
        .expect("turn");
    let found = store
        .find_customer_conversation(a, conn.id, "16505551234")
        .await
        .expect("find")
        .expect("their conversation");
    assert_eq!(found.id, c);
    assert_eq!(found.connection_id, Some(conn.id));
    assert_eq!(found.customer.as_deref(), Some("16505551234"));
    assert!(
        store
            .find_customer_conversation(a, conn.id, "447700900000")
            .await
            .expect("find")
            .is_none()
    );
    assert!(
        store
            .find_customer_conversation(b, conn.id, "16505551234")
            .await
            .expect("find")
            .is_none(),
        "not through another tenant"
    );
    // One open conversation per customer and connection: a second one opened at the same
    // time is refused, so the turn can join the first.
    let c2 = ConversationId::new();
    let second = Turn {
        new_conversation: Some(Conversation {
            id: c2,
            tenant_id: a,
            channel: Channel::WhatsApp,
            status: ConversationStatus::Bot,
            connection_id: Some(conn.id),
            customer: Some("16505551234".into()),
            created_at: now(),
            updated_at: now(),
        }),
        conversation_id: c2,
        question: message(a, c2, MessageRole::User, "again"),
        answer: Some(message(a, c2, MessageRole::Assistant, "hello again")),
        usage: Vec::new(),
        events: Vec::new(),
    };
    assert_conflict(
        store.record_turn(a, second.clone()).await,
        conflict::CONVERSATION_EXISTS,
    );
    // Another customer on the same connection opens their own.
    let other = Turn {
        new_conversation: second.new_conversation.clone().map(|c| Conversation {
            customer: Some("447700900000".into()),
            ..c
        }),
        ..second
    };
    store.record_turn(a, other).await.expect("another customer");
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

pub async fn conversations_of_every_channel_are_listed_latest_activity_first(store: DynStore) {
    use super::answer::message;
    use cortex_core::answer::{
        Conversation, ConversationFilter, ConversationStatus, MessageRole, Turn,
    };
    use cortex_core::ids::ConversationId;
    let (a, _) = tenant_with_owner(&store, "inbox-a").await;
    let (b, _) = tenant_with_owner(&store, "inbox-b").await;
    let wa = connected(&store, a, Channel::WhatsApp, "77").await;
    // Opens a conversation whose last activity was `minutes_ago`.
    let open = |tenant: TenantId,
                channel: Channel,
                status: ConversationStatus,
                minutes_ago: i64,
                text: &str| {
        let c = ConversationId::new();
        let at = now() - chrono::Duration::minutes(minutes_ago);
        let question = message(tenant, c, MessageRole::User, text);
        let mut answer = message(tenant, c, MessageRole::Assistant, &format!("Re: {text}"));
        answer.created_at = at;
        let on_whatsapp = channel == Channel::WhatsApp;
        let turn = Turn {
            new_conversation: Some(Conversation {
                id: c,
                tenant_id: tenant,
                channel,
                status,
                connection_id: on_whatsapp.then_some(wa.id),
                customer: on_whatsapp.then(|| "16505551234".to_owned()),
                created_at: at,
                updated_at: at,
            }),
            conversation_id: c,
            question,
            answer: Some(answer),
            usage: Vec::new(),
            events: Vec::new(),
        };
        let store = store.clone();
        async move {
            store.record_turn(tenant, turn).await.expect("turn");
            c
        }
    };
    let widget = open(a, Channel::Widget, ConversationStatus::Bot, 30, "w").await;
    let whatsapp = open(a, Channel::WhatsApp, ConversationStatus::HandedOff, 10, "x").await;
    let api = open(a, Channel::Api, ConversationStatus::Bot, 20, "y").await;
    open(b, Channel::Widget, ConversationStatus::Bot, 5, "theirs").await;

    let all = |limit| ConversationFilter {
        limit,
        ..ConversationFilter::default()
    };
    let listed = store.list_conversations(a, &all(50)).await.expect("list");
    let ids: Vec<_> = listed.iter().map(|s| s.conversation.id).collect();
    assert_eq!(
        ids,
        [whatsapp, api, widget],
        "A's only, latest activity first"
    );
    let first = &listed[0];
    assert_eq!(first.conversation.channel, Channel::WhatsApp);
    assert_eq!(first.connection_name.as_deref(), Some("whatsapp 77"));
    assert_eq!(first.message_count, 2);
    assert_eq!(
        first.last_message,
        Some((MessageRole::Assistant, "Re: x".to_owned()))
    );
    assert_eq!(listed[1].connection_name, None);

    let only = |channel, status| ConversationFilter {
        channel,
        status,
        limit: 50,
        before: None,
    };
    let ids = |v: Vec<cortex_core::answer::ConversationSummary>| -> Vec<ConversationId> {
        v.iter().map(|s| s.conversation.id).collect()
    };
    assert_eq!(
        ids(store
            .list_conversations(a, &only(Some(Channel::Widget), None))
            .await
            .expect("widget")),
        [widget]
    );
    assert_eq!(
        ids(store
            .list_conversations(a, &only(None, Some(ConversationStatus::HandedOff)))
            .await
            .expect("handed off")),
        [whatsapp]
    );
    // Pages: two, then the rest after the second's position.
    let page = store.list_conversations(a, &all(2)).await.expect("page");
    let last = &page[1].conversation;
    let rest = store
        .list_conversations(
            a,
            &ConversationFilter {
                before: Some((last.updated_at, last.id)),
                ..all(2)
            },
        )
        .await
        .expect("next page");
    assert_eq!(ids(page), [whatsapp, api]);
    assert_eq!(ids(rest), [widget]);
    assert_eq!(
        store
            .list_conversations(b, &all(50))
            .await
            .expect("b")
            .len(),
        1
    );
}

pub async fn a_persons_data_is_deleted_in_every_tenant_on_the_providers_connections(
    store: DynStore,
) {
    use super::answer::message;
    use cortex_core::answer::{Conversation, ConversationStatus, MessageRole, Turn};
    use cortex_core::ids::ConversationId;
    let (a, _) = tenant_with_owner(&store, "delete-a").await;
    let (b, _) = tenant_with_owner(&store, "delete-b").await;
    let meta_a = connected(&store, a, Channel::Messenger, "501").await;
    let meta_b = connected(&store, b, Channel::Instagram, "502").await;
    let twilio_b = connected(&store, b, Channel::WhatsApp, "+15005550006").await;
    // The person (and someone else) on each connection: a delivered message and a conversation.
    let mut conversations = Vec::new();
    for (tenant, conn, customer) in [
        (a, &meta_a, "4242"),
        (b, &meta_b, "4242"),
        (b, &twilio_b, "4242"),
        (a, &meta_a, "9999"),
    ] {
        let m = inbound(tenant, conn.id, &format!("m-{}-{customer}", conn.asset_id));
        let m = cortex_core::channels::InboundMessage {
            customer: customer.into(),
            ..m
        };
        let key = m.provider_message_id.clone();
        let inbound_id = m.id;
        store
            .record_inbound(tenant, m, answer_job(&key))
            .await
            .expect("record");
        // The reply sent to them.
        store
            .record_outbound(
                tenant,
                cortex_core::channels::OutboundMessage {
                    id: cortex_core::ids::OutboundMessageId::new(),
                    tenant_id: tenant,
                    connection_id: conn.id,
                    inbound_id: Some(inbound_id),
                    provider_message_id: format!("out-{key}"),
                    status: cortex_core::channels::DeliveryStatus::Sent,
                    error: None,
                    created_at: now(),
                    updated_at: now(),
                },
            )
            .await
            .expect("outbound");
        let c = ConversationId::new();
        store
            .record_turn(
                tenant,
                Turn {
                    new_conversation: Some(Conversation {
                        id: c,
                        tenant_id: tenant,
                        channel: conn.kind,
                        status: ConversationStatus::Bot,
                        connection_id: Some(conn.id),
                        customer: Some(customer.into()),
                        created_at: now(),
                        updated_at: now(),
                    }),
                    conversation_id: c,
                    question: message(tenant, c, MessageRole::User, "hi"),
                    answer: Some(message(tenant, c, MessageRole::Assistant, "hello")),
                    usage: Vec::new(),
                    events: Vec::new(),
                },
            )
            .await
            .expect("turn");
        conversations.push((tenant, c));
    }
    let done = store
        .delete_customer_data(Provider::Meta, "4242", "CODE0000000000000001", now())
        .await
        .expect("delete");
    assert_eq!((done.conversations, done.messages), (2, 2));
    assert!(done.completed_at.is_some());
    for (i, (tenant, c)) in conversations.iter().enumerate() {
        let kept = store.get_conversation(*tenant, *c).await.is_ok();
        // Meta's in A and B go; Twilio's and the other person's stay.
        assert_eq!(kept, i >= 2, "conversation {i}");
    }
    for (tenant, conn, key, kept) in [
        (a, &meta_a, "m-501-4242", false),
        (b, &twilio_b, "m-+15005550006-4242", true),
        (a, &meta_a, "m-501-9999", true),
    ] {
        let found = store
            .find_outbound(tenant, conn.id, &format!("out-{key}"))
            .await
            .expect("find");
        assert_eq!(found.is_some(), kept, "reply to {key}");
    }
    assert_eq!(
        store
            .get_data_deletion("CODE0000000000000001")
            .await
            .expect("get"),
        Some(done)
    );
    assert_eq!(
        store
            .get_data_deletion("CODE0000000000000002")
            .await
            .expect("get"),
        None
    );
    assert_conflict(
        store
            .delete_customer_data(Provider::Meta, "4242", "CODE0000000000000001", now())
            .await,
        conflict::DELETION_CODE_TAKEN,
    );
    let again = store
        .delete_customer_data(Provider::Meta, "4242", "CODE0000000000000003", now())
        .await
        .expect("nothing left");
    assert_eq!((again.conversations, again.messages), (0, 0));
}

pub async fn an_oauth_flow_is_claimed_once_by_its_browser_before_it_expires(store: DynStore) {
    use cortex_core::channels::OauthFlow;
    use cortex_core::ids::OauthFlowId;
    let (a, owner) = tenant_with_owner(&store, "oauth-a").await;
    let (b, _) = tenant_with_owner(&store, "oauth-b").await;
    let flow = |state: &str, minutes: i64| OauthFlow {
        id: OauthFlowId::new(),
        tenant_id: a,
        user_id: owner,
        kind: Channel::Messenger,
        state_hash: format!("state-{state}"),
        browser_hash: "browser".into(),
        return_path: "/channels".into(),
        sealed_assets: None,
        created_at: now(),
        expires_at: now() + chrono::Duration::minutes(minutes),
    };
    let live = flow("live", 10);
    let stale = flow("stale", -1);
    for f in [&live, &stale] {
        store.create_oauth_flow(a, f.clone()).await.expect("create");
    }
    let later = now() + chrono::Duration::minutes(30);
    let claim = |state: &'static str, browser: &'static str| {
        let store = store.clone();
        async move {
            store
                .claim_oauth_flow(state, browser, now(), later)
                .await
                .expect("claim")
        }
    };
    assert!(
        claim("state-live", "another-browser").await.is_none(),
        "another browser cannot claim it"
    );
    let claimed = claim("state-live", "browser").await.expect("the live flow");
    assert_eq!((claimed.id, claimed.tenant_id), (live.id, a));
    assert_eq!(claimed.sealed_assets.as_deref(), Some(""));
    assert!(
        claim("state-live", "browser").await.is_none(),
        "a state is used once"
    );
    assert!(claim("state-stale", "browser").await.is_none(), "expired");
    assert!(claim("state-unknown", "browser").await.is_none());

    assert_not_found(
        store.set_oauth_assets(b, live.id, "v1.k.assets").await,
        "B fills A's flow",
    );
    store
        .set_oauth_assets(a, live.id, "v1.k.assets")
        .await
        .expect("assets");
    let got = store.get_oauth_flow(a, live.id).await.expect("get");
    assert_eq!(got.sealed_assets.as_deref(), Some("v1.k.assets"));
    assert_eq!(got.user_id, owner);
    assert!(got.expires_at > now() + chrono::Duration::minutes(20));
    assert_not_found(store.get_oauth_flow(b, live.id).await, "B reads A's flow");
    assert!(
        !store.delete_oauth_flow(b, live.id).await.expect("delete"),
        "not B's"
    );
    assert!(store.delete_oauth_flow(a, live.id).await.expect("delete"));
    assert!(
        !store.delete_oauth_flow(a, live.id).await.expect("delete"),
        "once"
    );
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

pub async fn a_proven_claim_replaces_another_tenants_claim_and_both_are_audited(store: DynStore) {
    let (squatter, _) = tenant_with_owner(&store, "claim-squatter").await;
    let (owner, _) = tenant_with_owner(&store, "claim-owner").await;
    let mut unproven = connection(squatter, Channel::Messenger, "4242");
    unproven.verified_at = None;
    let unproven = store
        .create_channel_connection(squatter, unproven, audit(action::CHANNEL_CONNECTED))
        .await
        .expect("squat");
    assert!(unproven.verified_at.is_none());

    let mut proven = connection(owner, Channel::Messenger, "4242");
    assert_conflict(
        store
            .create_channel_connection(owner, proven.clone(), audit(action::CHANNEL_CONNECTED))
            .await,
        conflict::CHANNEL_TAKEN,
    );
    assert_not_found(
        store
            .replace_channel_claim(
                owner,
                proven.clone(),
                audit(action::CHANNEL_CONNECTED),
                owner,
                unproven.id,
                audit(action::CHANNEL_RELEASED),
            )
            .await,
        "the incumbent named under the wrong tenant",
    );
    proven.id = ChannelConnectionId::new();
    let replaced = store
        .replace_channel_claim(
            owner,
            proven.clone(),
            audit(action::CHANNEL_CONNECTED),
            squatter,
            unproven.id,
            audit(action::CHANNEL_RELEASED),
        )
        .await
        .expect("replace");
    assert_eq!((replaced.tenant_id, replaced.id), (owner, proven.id));
    let routed = store
        .find_channel_connection(Channel::Messenger, "4242")
        .await
        .expect("find")
        .expect("routed");
    assert_eq!(routed.tenant_id, owner);
    assert!(
        store
            .list_channel_connections(squatter)
            .await
            .expect("list")
            .is_empty()
    );
    let released: Vec<String> = store
        .list_audit_events(squatter, Page::first(10))
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(
        released.iter().any(|a| a == action::CHANNEL_RELEASED),
        "{released:?}"
    );
    assert_not_found(
        store
            .replace_channel_claim(
                owner,
                connection(owner, Channel::Messenger, "4242"),
                audit(action::CHANNEL_CONNECTED),
                squatter,
                unproven.id,
                audit(action::CHANNEL_RELEASED),
            )
            .await,
        "a claim released already",
    );
}

pub async fn a_refused_token_is_flagged_once_and_webhook_targets_are_counted(store: DynStore) {
    let (a, _) = tenant_with_owner(&store, "flag-a").await;
    let (b, _) = tenant_with_owner(&store, "flag-b").await;
    let page = connected(&store, a, Channel::Messenger, "777").await;
    assert_eq!(page.webhook_target.as_deref(), Some("page-of-777"));
    assert!(
        store
            .webhook_target_in_use("page-of-777")
            .await
            .expect("in use")
    );
    assert!(
        !store
            .webhook_target_in_use("page-of-778")
            .await
            .expect("unused")
    );

    assert_not_found(
        store
            .flag_channel_token_invalid(b, page.id, now(), audit(action::CHANNEL_TOKEN_INVALID))
            .await,
        "B flags A's connection",
    );
    assert!(
        store
            .flag_channel_token_invalid(a, page.id, now(), audit(action::CHANNEL_TOKEN_INVALID))
            .await
            .expect("flag")
    );
    assert!(
        !store
            .flag_channel_token_invalid(a, page.id, now(), audit(action::CHANNEL_TOKEN_INVALID))
            .await
            .expect("flag again"),
        "flagged once"
    );
    let listed = store.list_channel_connections(a).await.expect("list");
    assert!(listed[0].token_invalid_at.is_some());
    let flags = store
        .list_audit_events(a, Page::first(10))
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == action::CHANNEL_TOKEN_INVALID)
        .count();
    assert_eq!(flags, 1);

    store
        .delete_channel_connection(a, page.id, audit(action::CHANNEL_DISCONNECTED))
        .await
        .expect("disconnect");
    assert!(
        !store
            .webhook_target_in_use("page-of-777")
            .await
            .expect("gone")
    );
}
