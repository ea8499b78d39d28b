//! Conformance: Conversations, turns and feedback.

use cortex_core::conversations::{
    Channel, Citation, Conversation, ConversationEvent, ConversationEventKind, ConversationStatus,
    HandoffReason, Message, MessageRole, RetrievedChunk, Turn,
};
use cortex_core::ids::{
    ChunkId, ConversationEventId, ConversationId, DocumentId, MessageId, TenantId, UsageEventId,
};
use cortex_core::store::conflict;
use cortex_core::usage::{UsageEvent, UsageKind};
use cortex_core::widget::Feedback;

use crate::channels::connected;
use crate::{DynStore, assert_conflict, assert_not_found, now, tenant_with_owner};

pub(crate) fn message(
    tenant: TenantId,
    c: ConversationId,
    role: MessageRole,
    text: &str,
) -> Message {
    Message {
        id: MessageId::new(),
        tenant_id: tenant,
        conversation_id: c,
        role,
        content: text.to_owned(),
        citations: Vec::new(),
        context: Vec::new(),
        confidence: None,
        abstained: false,
        model: None,
        prompt_tokens: 0,
        completion_tokens: 0,
        latency_ms: 0,
        created_at: now(),
    }
}

/// A question and a cited answer; opens the conversation when `new`.
pub(crate) fn turn(tenant: TenantId, c: ConversationId, new: bool, question_text: &str) -> Turn {
    let doc = DocumentId::new();
    let chunk = ChunkId::new();
    // Ids are time-ordered: the question is made first, as the answer engine does.
    let question = message(tenant, c, MessageRole::User, question_text);
    let mut answer = message(
        tenant,
        c,
        MessageRole::Assistant,
        &format!("About {question_text} [1]"),
    );
    answer.citations = vec![Citation {
        index: 1,
        document_id: doc,
        chunk_id: chunk,
        title: "Guide".into(),
        heading_path: vec!["Billing".into(), "Refunds".into()],
        page: Some(3),
        snippet: "Refunds within 30 days.".into(),
        score: 0.5,
    }];
    answer.context = vec![RetrievedChunk {
        chunk_id: chunk,
        document_id: doc,
        score: 0.03,
        similarity: Some(0.61),
    }];
    answer.confidence = Some(0.75);
    answer.model = Some("extractive".into());
    answer.prompt_tokens = 120;
    answer.completion_tokens = 30;
    answer.latency_ms = 42;
    Turn {
        new_conversation: new.then(|| Conversation {
            id: c,
            tenant_id: tenant,
            channel: Channel::Api,
            status: ConversationStatus::Bot,
            connection_id: None,
            customer: None,
            created_at: now(),
            updated_at: now(),
        }),
        conversation_id: c,
        question,
        answer: Some(answer),
        usage: vec![UsageEvent {
            id: UsageEventId::new(),
            tenant_id: tenant,
            kind: UsageKind::PromptTokens,
            subject: "gpt-4o-mini".into(),
            quantity: 120,
            conversation_id: Some(c),
            created_at: now(),
        }],
        events: vec![ConversationEvent {
            id: ConversationEventId::new(),
            tenant_id: tenant,
            conversation_id: c,
            kind: ConversationEventKind::HandoffRequested,
            reason: HandoffReason::CustomerAsked,
            created_at: now(),
        }],
    }
}

pub async fn turns_store_messages_usage_and_events_and_read_back_in_order(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "turns").await;
    let c = ConversationId::new();
    let since = now();
    let first = turn(t, c, true, "refunds");
    let stored_answer = first.answer.clone().expect("an answer");
    store.record_turn(t, first).await.expect("first turn");
    let conversation = store.get_conversation(t, c).await.expect("conversation");
    assert_eq!(conversation.channel, Channel::Api);
    assert_eq!(conversation.status, ConversationStatus::Bot);
    store
        .record_turn(t, turn(t, c, false, "shipping"))
        .await
        .expect("second turn");
    assert_conflict(
        store.record_turn(t, turn(t, c, true, "again")).await,
        conflict::CONVERSATION_EXISTS,
    );

    let all = store.recent_messages(t, c, 10).await.expect("messages");
    let texts: Vec<&str> = all.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(
        texts,
        [
            "refunds",
            "About refunds [1]",
            "shipping",
            "About shipping [1]"
        ],
        "oldest first; the refused turn stored nothing"
    );
    assert_eq!(all[1], stored_answer, "citations and context round-trip");
    let last = store.recent_messages(t, c, 3).await.expect("last three");
    assert_eq!(last.len(), 3);
    assert_eq!(last[0].content, "About refunds [1]");

    let usage = store.list_usage_events(t, since).await.expect("usage");
    assert_eq!(usage.len(), 2);
    assert!(
        usage
            .iter()
            .all(|u| u.kind == UsageKind::PromptTokens && u.quantity == 120)
    );
    let later = store
        .list_usage_events(t, now() + chrono::Duration::seconds(5))
        .await
        .expect("usage later");
    assert!(later.is_empty());
    let events = store.list_conversation_events(t, c).await.expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kind, ConversationEventKind::HandoffRequested);
}

pub async fn another_tenants_conversations_are_out_of_reach(store: DynStore) {
    let (a, _) = tenant_with_owner(&store, "conv-a").await;
    let (b, _) = tenant_with_owner(&store, "conv-b").await;
    let c = ConversationId::new();
    store
        .record_turn(a, turn(a, c, true, "secret"))
        .await
        .expect("a's turn");

    assert_not_found(
        store.get_conversation(b, c).await,
        "B reads A's conversation",
    );
    assert!(
        store
            .recent_messages(b, c, 10)
            .await
            .expect("b messages")
            .is_empty()
    );
    assert!(
        store
            .list_conversation_events(b, c)
            .await
            .expect("b events")
            .is_empty()
    );
    assert!(
        store
            .list_usage_events(b, now() - chrono::Duration::hours(1))
            .await
            .expect("b usage")
            .is_empty()
    );
    assert_not_found(
        store.record_turn(b, turn(b, c, false, "intrude")).await,
        "B appends to A's conversation",
    );
    assert_conflict(
        store.record_turn(b, turn(b, c, true, "hijack")).await,
        conflict::CONVERSATION_EXISTS,
    );
    assert_eq!(store.recent_messages(a, c, 10).await.expect("a").len(), 2);
}

pub async fn a_channel_customer_finds_their_open_conversation(store: DynStore) {
    use cortex_core::conversations::{Conversation, ConversationStatus, MessageRole, Turn};
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

pub async fn conversations_of_every_channel_are_listed_latest_activity_first(store: DynStore) {
    use cortex_core::conversations::{
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
        answer.abstained = text == "y";
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
            // The WhatsApp customer was handed to a person.
            events: if on_whatsapp {
                vec![cortex_core::conversations::ConversationEvent {
                    id: cortex_core::ids::ConversationEventId::new(),
                    tenant_id: tenant,
                    conversation_id: c,
                    kind: cortex_core::conversations::ConversationEventKind::HandoffRequested,
                    reason: cortex_core::conversations::HandoffReason::CustomerAsked,
                    created_at: at,
                }]
            } else {
                Vec::new()
            },
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
        ..ConversationFilter::default()
    };
    let ids = |v: Vec<cortex_core::conversations::ConversationSummary>| -> Vec<ConversationId> {
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
    // By when they were last active, and where the bot abstained.
    assert_eq!(
        ids(store
            .list_conversations(
                a,
                &ConversationFilter {
                    active_from: Some(now() - chrono::Duration::minutes(25)),
                    ..all(50)
                }
            )
            .await
            .expect("since")),
        [whatsapp, api]
    );
    assert_eq!(
        ids(store
            .list_conversations(
                a,
                &ConversationFilter {
                    active_until: Some(now() - chrono::Duration::minutes(15)),
                    ..all(50)
                }
            )
            .await
            .expect("until")),
        [api, widget]
    );
    assert_eq!(
        ids(store
            .list_conversations(
                a,
                &ConversationFilter {
                    abstained: true,
                    ..all(50)
                }
            )
            .await
            .expect("abstained")),
        [api]
    );
    assert_eq!(
        ids(store
            .list_conversations(
                a,
                &ConversationFilter {
                    handed_off: true,
                    ..all(50)
                }
            )
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

pub async fn feedback_is_given_on_answers_of_the_tenants_conversation_only(store: DynStore) {
    let (a, _) = tenant_with_owner(&store, "feedback-a").await;
    let (b, _) = tenant_with_owner(&store, "feedback-b").await;
    let c = ConversationId::new();
    let question = message(a, c, MessageRole::User, "hi");
    let answer = message(a, c, MessageRole::Assistant, "hello");
    let (q_id, a_id) = (question.id, answer.id);
    store
        .record_turn(
            a,
            Turn {
                new_conversation: Some(Conversation {
                    id: c,
                    tenant_id: a,
                    channel: Channel::Widget,
                    status: ConversationStatus::Bot,
                    connection_id: None,
                    customer: Some("visitor-1".into()),
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
    let verdict = |tenant, conversation, message, helpful| Feedback {
        tenant_id: tenant,
        conversation_id: conversation,
        message_id: message,
        helpful,
        at: now(),
    };
    assert_not_found(
        store.set_feedback(a, verdict(a, c, q_id, true)).await,
        "the customer's own message",
    );
    assert_not_found(
        store
            .set_feedback(a, verdict(a, ConversationId::new(), a_id, true))
            .await,
        "another conversation",
    );
    assert_not_found(
        store.set_feedback(b, verdict(b, c, a_id, true)).await,
        "B rates A's answer",
    );
    store
        .set_feedback(a, verdict(a, c, a_id, false))
        .await
        .expect("not helpful");
    store
        .set_feedback(a, verdict(a, c, a_id, true))
        .await
        .expect("changed to helpful");
    let given = store.list_feedback(a, c).await.expect("list");
    assert_eq!(given.len(), 1);
    assert_eq!((given[0].message_id, given[0].helpful), (a_id, true));
    assert!(store.list_feedback(b, c).await.expect("list").is_empty());
}

pub async fn activity_counts_conversations_messages_answers_and_handoffs_since_a_moment(
    store: DynStore,
) {
    let (a, _) = tenant_with_owner(&store, "activity-a").await;
    let (b, _) = tenant_with_owner(&store, "activity-b").await;
    // Three API conversations: one handed off (the helper's event), latencies 42, 10, 90;
    // the second continues with an abstained answer.
    let first = ConversationId::new();
    store
        .record_turn(a, turn(a, first, true, "q1"))
        .await
        .expect("turn");
    for (latency, abstained) in [(10, true), (90, false)] {
        let c = ConversationId::new();
        let mut t = turn(a, c, true, "q");
        t.events.clear();
        if let Some(answer) = t.answer.as_mut() {
            answer.latency_ms = latency;
            answer.abstained = abstained;
        }
        store.record_turn(a, t).await.expect("turn");
    }
    let mut again = turn(a, first, false, "q1 again");
    again.events.clear();
    store.record_turn(a, again).await.expect("follow-up");
    store
        .record_turn(b, turn(b, ConversationId::new(), true, "theirs"))
        .await
        .expect("other tenant");

    let since = now() - chrono::Duration::days(7);
    let stats = store.activity(a, since).await.expect("activity");
    assert_eq!(
        stats.daily.len(),
        1,
        "one day, one channel: {:?}",
        stats.daily
    );
    let today = &stats.daily[0];
    assert_eq!(today.day, now().date_naive());
    assert_eq!(today.channel, Channel::Api);
    assert_eq!(today.conversations, 3);
    assert_eq!(stats.daily_messages, [(now().date_naive(), 8)]);
    assert_eq!(
        (stats.answers, stats.abstained, stats.handed_off),
        (4, 1, 1)
    );
    assert_eq!(
        stats.median_latency_ms,
        Some(42),
        "10, 42, 42, 90: the lower middle"
    );

    let later = store
        .activity(a, now() + chrono::Duration::minutes(1))
        .await
        .expect("later");
    assert_eq!(later, cortex_core::conversations::ActivityStats::default());
}
