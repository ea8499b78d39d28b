//! The audit trail: who did what to which object in a tenant, appended in the same
//! transaction as the change it describes. Metadata never holds message text, passwords,
//! tokens or keys; email addresses appear only where the event is about that address
//! (an invitation), never in logs.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ids::{AuditEventId, TenantId};

/// Who caused an event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Actor {
    User(String),
    ApiKey(String),
    PlatformAdmin(String),
    /// The system itself (e.g. repeated failed logins observed by the server).
    System,
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::ApiKey(_) => "api_key",
            Self::PlatformAdmin(_) => "platform_admin",
            Self::System => "system",
        }
    }

    pub fn id(&self) -> Option<&str> {
        match self {
            Self::User(id) | Self::ApiKey(id) | Self::PlatformAdmin(id) => Some(id),
            Self::System => None,
        }
    }

    pub fn from_parts(kind: &str, id: Option<String>) -> Self {
        match (kind, id) {
            ("user", Some(id)) => Self::User(id),
            ("api_key", Some(id)) => Self::ApiKey(id),
            ("platform_admin", Some(id)) => Self::PlatformAdmin(id),
            _ => Self::System,
        }
    }
}

/// Stable action names; the API and the dashboard filter on them.
pub mod action {
    pub const TENANT_CREATED: &str = "tenant.created";
    pub const TENANT_SUSPENDED: &str = "tenant.suspended";
    pub const TENANT_REACTIVATED: &str = "tenant.reactivated";
    pub const TENANT_PLAN_CHANGED: &str = "tenant.plan_changed";
    /// The company's name changed (metadata: `from`, `to`).
    pub const TENANT_RENAMED: &str = "tenant.renamed";
    pub const LOGIN_FAILURE_BURST: &str = "auth.login_failure_burst";
    pub const REFRESH_TOKEN_REUSED: &str = "auth.refresh_token_reused";
    /// A member set a new password with an emailed reset; every session was signed out.
    pub const PASSWORD_RESET: &str = "auth.password_reset";
    /// A member changed their password in the dashboard; every other session was signed out.
    pub const PASSWORD_CHANGED: &str = "auth.password_changed";
    /// A member's sign-in address changed after the code mailed to the new one was entered.
    pub const EMAIL_CHANGED: &str = "auth.email_changed";
    /// A member signed out of every session.
    pub const SESSIONS_REVOKED: &str = "auth.sessions_revoked";
    pub const MEMBER_INVITED: &str = "member.invited";
    pub const MEMBER_JOINED: &str = "member.joined";
    pub const MEMBER_ROLE_CHANGED: &str = "member.role_changed";
    pub const MEMBER_REMOVED: &str = "member.removed";
    pub const API_KEY_CREATED: &str = "api_key.created";
    pub const API_KEY_REVOKED: &str = "api_key.revoked";
    pub const BOT_SETTINGS_UPDATED: &str = "bot.settings_updated";
    pub const CHANNEL_CONNECTED: &str = "channel.connected";
    pub const CHANNEL_DISCONNECTED: &str = "channel.disconnected";
    /// An unproven (or no longer working) claim on an asset gave way to a tenant whose
    /// credential proved control of it.
    pub const CHANNEL_RELEASED: &str = "channel.released";
    /// The provider refused the connection's credential on a send.
    pub const CHANNEL_TOKEN_INVALID: &str = "channel.token_invalid";
    pub const WIDGET_KEY_CREATED: &str = "widget_key.created";
    pub const WIDGET_KEY_UPDATED: &str = "widget_key.updated";
    pub const WIDGET_KEY_REVOKED: &str = "widget_key.revoked";
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub tenant_id: TenantId,
    pub actor: Actor,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Which entries of the audit log a list shows (every one by default).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditFilter {
    /// Exactly this action (`member.invited`).
    pub action: Option<String>,
    /// Only what this member did.
    pub actor_user: Option<crate::ids::UserId>,
    /// Only entries at or after this.
    pub from: Option<DateTime<Utc>>,
    /// Only entries strictly before this.
    pub until: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub struct NewAuditEvent {
    pub id: AuditEventId,
    pub actor: Actor,
    pub action: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

impl NewAuditEvent {
    pub fn new(actor: Actor, action: &'static str, at: DateTime<Utc>) -> Self {
        Self {
            id: AuditEventId::new(),
            actor,
            action,
            target_type: None,
            target_id: None,
            metadata: serde_json::Value::Object(Default::default()),
            created_at: at,
        }
    }

    pub fn target(mut self, kind: &'static str, id: impl ToString) -> Self {
        self.target_type = Some(kind);
        self.target_id = Some(id.to_string());
        self
    }

    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = metadata;
        self
    }
}
