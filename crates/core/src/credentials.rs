//! Credentials other than passwords: tenant API keys with scopes, rotating refresh tokens and
//! operator (platform admin) accounts. Secrets are stored only as hashes.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{
    ApiKeyId, PasswordResetId, PlatformAdminId, RefreshTokenId, TenantId, TokenFamilyId, UserId,
};
use crate::tenancy::{Email, UnknownVariant};

/// What an API key may do. Keys get the narrowest set their integration needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ApiScope {
    /// Ask the bot questions (chat API, OpenAI-compatible endpoint).
    #[serde(rename = "chat")]
    Chat,
    /// Read the knowledge base.
    #[serde(rename = "knowledge:read")]
    KnowledgeRead,
    /// Add, reprocess and delete documents.
    #[serde(rename = "knowledge:write")]
    KnowledgeWrite,
    /// Read conversations and their messages (`GET /api/v1/conversations…`), e.g. to copy
    /// them into a CRM.
    #[serde(rename = "conversations:read")]
    ConversationsRead,
}

impl ApiScope {
    /// Every scope; each is accepted by at least one endpoint (replying to conversations
    /// gets its scope with the endpoints that do it).
    pub const ALL: [ApiScope; 4] = [
        Self::Chat,
        Self::KnowledgeRead,
        Self::KnowledgeWrite,
        Self::ConversationsRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::KnowledgeRead => "knowledge:read",
            Self::KnowledgeWrite => "knowledge:write",
            Self::ConversationsRead => "conversations:read",
        }
    }
}

impl FromStr for ApiScope {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownVariant(s.to_owned()))
    }
}

impl fmt::Display for ApiScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tenant API key. The full key is shown once at creation; afterwards only `prefix` is
/// visible, so people can tell their keys apart.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: String,
    pub prefix: String,
    #[serde(skip)]
    pub key_hash: String,
    pub scopes: Vec<ApiScope>,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub scopes: Vec<ApiScope>,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
}

/// One refresh token of a family. A token is used once; its successor joins the same family.
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshToken {
    pub id: RefreshTokenId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub family_id: TokenFamilyId,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewRefreshToken {
    pub id: RefreshTokenId,
    pub user_id: UserId,
    pub family_id: TokenFamilyId,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// A signed-in session as its member sees it: one refresh-token family with a live token
/// (a browser's cookie or an API client's refresh token).
#[derive(Clone, Debug, PartialEq)]
pub struct SessionSummary {
    pub family_id: TokenFamilyId,
    /// When the member signed in.
    pub started_at: DateTime<Utc>,
    /// When its newest token was issued (sign-in or the latest refresh).
    pub refreshed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A password reset mailed to a member: single use, short-lived, stored as the token's hash.
#[derive(Clone, Debug, PartialEq)]
pub struct PasswordReset {
    pub id: PasswordResetId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewPasswordReset {
    pub id: PasswordResetId,
    pub user_id: UserId,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// An operator account. Created from the command line only.
#[derive(Clone, Debug, PartialEq)]
pub struct PlatformAdmin {
    pub id: PlatformAdminId,
    pub email: Email,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_through_their_names() {
        for scope in ApiScope::ALL {
            assert_eq!(scope.as_str().parse::<ApiScope>().expect("known"), scope);
            let json = serde_json::to_string(&scope).expect("serialises");
            assert_eq!(json, format!("\"{}\"", scope.as_str()));
        }
        assert!("admin".parse::<ApiScope>().is_err());
    }
}
