//! Conformance cases of the answer engine: bot settings, conversations, messages, usage and
//! conversation events.

use cortex_core::answer::{
    BotSettings, Channel, Citation, Conversation, ConversationEvent, ConversationEventKind,
    ConversationStatus, Message, MessageRole, RetrievedChunk, Turn, UsageEvent, UsageKind,
};
use cortex_core::audit::action;
use cortex_core::ids::{
    ChunkId, ConversationEventId, ConversationId, DocumentId, MessageId, TenantId, UsageEventId,
};
use cortex_core::store::{Page, conflict};

use super::{DynStore, assert_conflict, assert_not_found, audit, now, tenant_with_owner};

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
fn turn(tenant: TenantId, c: ConversationId, new: bool, question_text: &str) -> Turn {
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
            reason: "customer_asked".into(),
            created_at: now(),
        }],
    }
}

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
        .list_audit_events(a, Page::first(10))
        .await
        .expect("audit");
    assert_eq!(
        log.iter()
            .filter(|e| e.action == action::BOT_SETTINGS_UPDATED)
            .count(),
        2
    );
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
