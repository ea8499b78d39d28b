//! Tenants, their team members and how people join a team: signup verification codes and
//! invitations. Input types follow "parse, don't validate": an [`Email`] or [`CompanyName`]
//! that exists is already valid.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{EmailChangeId, InvitationId, SignupId, TenantId, UserId};

/// Where a tenant stands commercially. Only `suspended` blocks access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Trial,
    Active,
    PastDue,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trial => "trial",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Suspended => "suspended",
        }
    }
}

impl FromStr for TenantStatus {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "trial" => Self::Trial,
            "active" => Self::Active,
            "past_due" => Self::PastDue,
            "suspended" => Self::Suspended,
            _ => return Err(UnknownVariant(s.to_owned())),
        })
    }
}

/// A stored value that no variant of the enum matches: the database holds something this
/// version of the code does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownVariant(pub String);

/// A business using CortexLayer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// Key into the plan catalogue (`starter`, `growth`, `scale` by default).
    pub plan: String,
    pub status: TenantStatus,
    /// The status to return to when a suspension is lifted.
    pub status_before_suspension: Option<TenantStatus>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which tenants the operator's list shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TenantFilter {
    /// This tenant only.
    pub id: Option<TenantId>,
    /// Part of the name, any case.
    pub name_contains: Option<String>,
    pub plan: Option<String>,
    pub status: Option<TenantStatus>,
}

/// A tenant as the operator lists it, with what it holds and how busy it is.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantSummary {
    pub tenant: Tenant,
    pub documents: u64,
    /// Conversations opened since the time the list was asked for (the month's start).
    pub conversations_since: u64,
}

#[derive(Clone, Debug)]
pub struct NewTenant {
    pub id: TenantId,
    pub name: CompanyName,
    pub plan: String,
    pub status: TenantStatus,
    pub created_at: DateTime<Utc>,
}

/// A team member's role inside a tenant. Ordered by power: owner > admin > agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Agent => "agent",
        }
    }

    fn rank(self) -> u8 {
        match self {
            Self::Owner => 3,
            Self::Admin => 2,
            Self::Agent => 1,
        }
    }

    /// Whether this role is at least as powerful as `other`.
    pub fn at_least(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }

    /// Whether someone with this role may give `target` to a member, or invite with it, or
    /// change or remove a member who holds `target`. Only owners touch owners.
    pub fn may_manage(self, target: Role) -> bool {
        match self {
            Self::Owner => true,
            Self::Admin => target != Role::Owner,
            Self::Agent => false,
        }
    }
}

impl FromStr for Role {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "owner" => Self::Owner,
            "admin" => Self::Admin,
            "agent" => Self::Agent,
            _ => return Err(UnknownVariant(s.to_owned())),
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A syntactically valid, normalised (trimmed, lower-cased) email address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    #[error("is not a valid email address")]
    Email,
    #[error("must be between {min} and {max} characters")]
    Length { min: usize, max: usize },
    #[error("contains control characters")]
    ControlCharacters,
}

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(InvalidInput::Email);
        }
        let (local, domain) = s.split_once('@').ok_or(InvalidInput::Email)?;
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2 && labels.iter().all(|l| label_ok(l));
        if local_ok && domain_ok {
            Ok(Self(s))
        } else {
            Err(InvalidInput::Email)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A trimmed, printable name of 1–200 characters (company or person).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompanyName(String);

impl CompanyName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let s = raw.trim();
        let n = s.chars().count();
        if n == 0 || n > Self::MAX_CHARS {
            return Err(InvalidInput::Length {
                min: 1,
                max: Self::MAX_CHARS,
            });
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidInput::ControlCharacters);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Password rules shared by signup and invitation acceptance. The upper bound keeps a
/// hashing request from becoming a denial of service.
pub fn check_password(password: &str) -> Result<(), InvalidInput> {
    let n = password.chars().count();
    if !(12..=1024).contains(&n) {
        return Err(InvalidInput::Length { min: 12, max: 1024 });
    }
    Ok(())
}

/// A member of a tenant's team. One account per email address across the platform.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: Email,
    pub name: Option<String>,
    pub role: Role,
    /// argon2id PHC string; never serialised to clients (the API has its own views).
    #[serde(skip)]
    pub password_hash: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: UserId,
    pub email: Email,
    pub name: Option<String>,
    pub role: Role,
    pub password_hash: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A signup waiting for its emailed code. Nothing of it is an account: no tenant, no user and
/// no credential exist until the code is verified, and a newer signup for the same address
/// replaces it, so whatever someone else chose for an address they do not control never
/// becomes the address's account. The code itself is never stored, only its hash.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingSignup {
    pub id: SignupId,
    pub email: Email,
    pub company_name: CompanyName,
    pub name: Option<String>,
    pub password_hash: String,
    pub code_hash: String,
    pub attempts: u32,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewPendingSignup {
    pub id: SignupId,
    pub email: Email,
    pub company_name: CompanyName,
    pub name: Option<String>,
    pub password_hash: String,
    pub code_hash: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// A member's new sign-in address, waiting for the code mailed to it. A member has at most
/// one; a newer request replaces it. The code itself is never stored, only its hash.
#[derive(Clone, Debug, PartialEq)]
pub struct EmailChange {
    pub id: EmailChangeId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub new_email: Email,
    pub code_hash: String,
    pub attempts: u32,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewEmailChange {
    pub id: EmailChangeId,
    pub user_id: UserId,
    pub new_email: Email,
    pub code_hash: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// An invitation to join a tenant with a role. The token is stored hashed and works once.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Invitation {
    pub id: InvitationId,
    pub tenant_id: TenantId,
    pub email: Email,
    pub role: Role,
    pub invited_by: UserId,
    #[serde(skip)]
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewInvitation {
    pub id: InvitationId,
    pub email: Email,
    pub role: Role,
    pub invited_by: UserId,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        let e = Email::parse("  Jane.Doe+help@Example.COM ").expect("valid");
        assert_eq!(e.as_str(), "jane.doe+help@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@-b.com",
            "a..b@c.com",
            ".a@c.com",
            "a@b..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn passwords_need_twelve_characters() {
        assert!(check_password("short-pass1").is_err());
        assert!(check_password("long-enough-1").is_ok());
        assert!(
            check_password("ééééééééééé").is_err(),
            "counted in characters, not bytes"
        );
        assert!(check_password(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn admins_cannot_touch_owners_and_agents_touch_nobody() {
        assert!(Role::Owner.may_manage(Role::Owner));
        assert!(Role::Admin.may_manage(Role::Agent));
        assert!(Role::Admin.may_manage(Role::Admin));
        assert!(!Role::Admin.may_manage(Role::Owner));
        assert!(!Role::Agent.may_manage(Role::Agent));
    }

    #[test]
    fn company_names_are_bounded_and_printable() {
        assert_eq!(CompanyName::parse("  Acme  ").expect("ok").as_str(), "Acme");
        assert!(CompanyName::parse("   ").is_err());
        assert!(CompanyName::parse("Ac\u{0}me").is_err());
        assert!(CompanyName::parse(&"x".repeat(201)).is_err());
    }
}
