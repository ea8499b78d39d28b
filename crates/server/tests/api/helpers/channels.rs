//! Messaging channels: connecting one, moving a tenant to a plan, the guide the bot answers
//! from, what a provider stand-in was sent, and what waits for a person.

use serde_json::{Value, json};

use super::{Member, TestApp};

/// What a provider stand-in was sent: (path, authorization, body).
pub type SentLog = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Value)>>>;

impl TestApp {
    pub async fn connect(&self, token: &str, body: Value) -> reqwest::Response {
        self.post_as("/api/v1/channels", token, &body).await
    }

    pub async fn on_plan(&self, operator: &str, member: &Member, plan: &str) {
        let r = self
            .post_as(
                &format!("/api/v1/admin/tenants/{}/plan", member.tenant_id),
                operator,
                &json!({ "plan": plan }),
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    }

    pub async fn upload_guide(&self, owner: &Member) {
        let doc = self
            .upload_one(
                &owner.access,
                "guide.md",
                crate::helpers::knowledge::GUIDE.as_bytes(),
            )
            .await;
        assert_eq!(self.settled(&owner.access, &doc).await["status"], "ready");
    }

    /// Runs the due jobs, then returns what the provider stand-in was sent, which must be `n`
    /// messages in all by then (a duplicate would make it more).
    pub async fn wait_for_sent(&self, sent: &SentLog, n: usize) -> Vec<(String, String, Value)> {
        self.run_pending_jobs().await;
        let sent = sent.lock().expect("lock").clone();
        assert_eq!(sent.len(), n, "replies sent: {sent:?}");
        sent
    }

    /// Runs the due jobs, then returns the conversations of `channel` whose last message is the
    /// customer's (kept for a person) — `n` of them — with the reasons of their handoff events.
    pub async fn queued_for_agents(
        &self,
        owner: &Member,
        channel: &str,
        n: usize,
    ) -> Vec<(Value, Vec<String>)> {
        let tenant: cortex_core::ids::TenantId = owner.tenant_id.parse().expect("tenant");
        self.run_pending_jobs().await;
        let list: Value = self
            .get_as(
                &format!("/api/v1/conversations?channel={channel}"),
                &owner.access,
            )
            .await
            .json()
            .await
            .expect("json");
        let mut out = Vec::new();
        for c in list["data"].as_array().into_iter().flatten() {
            if c["last_message"]["role"] != "user" {
                continue;
            }
            let id = c["id"].as_str().expect("id").parse().expect("uuid");
            let reasons = self
                .state
                .store
                .list_conversation_events(tenant, id)
                .await
                .expect("events")
                .into_iter()
                .map(|e| e.reason.to_string())
                .collect();
            out.push((c.clone(), reasons));
        }
        assert_eq!(
            out.len(),
            n,
            "{n} conversation(s) queued for a person expected: {list}"
        );
        out
    }

    /// A connection as one made before control was checked: stored as is, never proven.
    pub async fn legacy_claim(&self, tenant: &Member, kind: &str, asset: &str, token: &str) {
        use cortex_core::channels::{ChannelConnection, Provider};
        use cortex_core::ids::{ChannelConnectionId, TenantId};
        let tenant_id: TenantId = tenant.tenant_id.parse().expect("tenant");
        let id = ChannelConnectionId::new();
        let now = chrono::Utc::now();
        self.state
            .store
            .create_channel_connection(
                tenant_id,
                ChannelConnection {
                    id,
                    tenant_id,
                    kind: kind.parse().expect("kind"),
                    provider: Provider::Meta,
                    asset_id: asset.into(),
                    account_id: None,
                    name: format!("squatted {asset}"),
                    sealed_token: self.state.secrets.seal(
                        token,
                        &cortexlayer_server::channels::token_context(tenant_id, id),
                    ),
                    token_hint: "…0000".into(),
                    template: None,
                    ack_text: None,
                    verified_at: None,
                    webhook_target: None,
                    token_invalid_at: None,
                    created_by: None,
                    created_at: now,
                    updated_at: now,
                },
                cortex_core::audit::NewAuditEvent::new(
                    cortex_core::audit::Actor::System,
                    cortex_core::audit::action::CHANNEL_CONNECTED,
                    now,
                ),
            )
            .await
            .expect("legacy claim");
    }
}
