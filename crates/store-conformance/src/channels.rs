//! Conformance: Channel connections, sign-in flows and data deletions.

use cortex_core::audit::action;
use cortex_core::channels::{ChannelConnection, Provider};
use cortex_core::conversations::Channel;
use cortex_core::ids::{ChannelConnectionId, TenantId};
use cortex_core::store::{Page, conflict};

use crate::conversations::message;
use crate::delivery::{answer_job, inbound};
use crate::{DynStore, assert_conflict, assert_not_found, audit, now, tenant_with_owner};

/// A Meta connection; a Twilio one for a `+number`, a ManyChat one for that kind.
pub(crate) fn connection(tenant: TenantId, kind: Channel, asset: &str) -> ChannelConnection {
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
pub(crate) async fn connected(
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
        .list_audit_events(
            a,
            &cortex_core::audit::AuditFilter::default(),
            Page::first(20),
        )
        .await
        .expect("audit");
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&action::CHANNEL_CONNECTED));
    assert!(actions.contains(&action::CHANNEL_DISCONNECTED));
}

pub async fn a_persons_data_is_deleted_in_every_tenant_on_the_providers_connections(
    store: DynStore,
) {
    use cortex_core::conversations::{Conversation, ConversationStatus, MessageRole, Turn};
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
        .list_audit_events(
            squatter,
            &cortex_core::audit::AuditFilter::default(),
            Page::first(10),
        )
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
        .list_audit_events(
            a,
            &cortex_core::audit::AuditFilter::default(),
            Page::first(10),
        )
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
