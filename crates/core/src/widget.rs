//! The web widget: a public key a tenant pastes into its site with one `<script>` tag, bound
//! to the origins allowed to use it and themed, and the helpful / not-helpful feedback
//! visitors give answers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ConversationId, MessageId, TenantId, WidgetKeyId};
use crate::knowledge::string_enum;

string_enum!(
    /// Which corner the bubble sits in.
    WidgetPosition { Right => "right", Left => "left" }
);

/// How the widget looks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidgetTheme {
    /// `#rrggbb`.
    pub color: String,
    /// Shown in the panel's header.
    pub title: String,
    pub position: WidgetPosition,
}

impl Default for WidgetTheme {
    fn default() -> Self {
        Self {
            color: "#2563eb".into(),
            title: "Ask us anything".into(),
            position: WidgetPosition::Right,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WidgetKey {
    pub id: WidgetKeyId,
    pub tenant_id: TenantId,
    /// `wk_…`: public (it is in the tenant's pages), so stored as is.
    pub public_key: String,
    pub name: String,
    /// Exact origins (`https://shop.example`, `http://localhost:3000`) whose pages may use it.
    pub allowed_origins: Vec<String>,
    pub theme: WidgetTheme,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A visitor's verdict on an answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Feedback {
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub helpful: bool,
    pub at: DateTime<Utc>,
}
