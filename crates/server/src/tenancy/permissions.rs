//! The one permission table: which caller may take which action inside a tenant. Every domain
//! function checks its action with [`TenantCtx::require`](super::TenantCtx::require) and
//! nothing else decides; the HTTP layer, the command line and the jobs reach the same rule.
//!
//! Rules are by caller kind: a signed-in member needs a role, an API key a scope, the operator
//! (command line, or a platform admin acting in the tenant) is allowed or not, and the two
//! callers that are nobody's credential — a widget visitor and a job acting for the tenant —
//! may only talk to the bot.

use cortex_core::credentials::ApiScope;
use cortex_core::tenancy::Role;

use super::{Caller, TenancyError};

/// Something a caller may do inside a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read documents, their chunks and search them.
    ReadKnowledge,
    /// Upload, add URLs or Q&A, reprocess and delete documents.
    WriteKnowledge,
    /// Ask the bot (chat API, test console, widget, channels).
    Chat,
    /// The OpenAI-compatible endpoint: integrations only.
    ChatCompletions,
    /// Read the bot settings.
    ReadBot,
    /// Change the bot settings.
    ManageBot,
    /// Read conversations and their messages.
    ReadConversations,
    /// List the channels connected.
    ReadChannels,
    /// Connect, change and disconnect channels.
    ManageChannels,
    /// Connect channels by signing in with Meta (needs a person).
    ConnectChannelsWithMeta,
    /// List the widget keys.
    ReadWidgetKeys,
    /// Create, change and revoke widget keys.
    ManageWidgetKeys,
    /// List the team and the pending invitations.
    ReadTeam,
    /// Invite, change roles, remove members, withdraw invitations.
    ManageTeam,
    /// Create, list and revoke API keys.
    ManageApiKeys,
    /// Read the tenant's audit log.
    ReadAuditLog,
    /// Change the company's profile (its name).
    ManageCompany,
    /// The signed-in member's own profile.
    ReadOwnProfile,
    /// The signed-in member's own password and sessions.
    ManageOwnAccount,
}

impl Action {
    pub const ALL: [Action; 19] = [
        Self::ReadKnowledge,
        Self::WriteKnowledge,
        Self::Chat,
        Self::ChatCompletions,
        Self::ReadBot,
        Self::ManageBot,
        Self::ReadConversations,
        Self::ReadChannels,
        Self::ManageChannels,
        Self::ConnectChannelsWithMeta,
        Self::ReadWidgetKeys,
        Self::ManageWidgetKeys,
        Self::ReadTeam,
        Self::ManageTeam,
        Self::ManageApiKeys,
        Self::ReadAuditLog,
        Self::ManageCompany,
        Self::ReadOwnProfile,
        Self::ManageOwnAccount,
    ];

    /// Whether it changes how the tenant is set up (everything but using the bot and
    /// reading): never for a visitor or a job.
    pub fn is_administrative(self) -> bool {
        !matches!(self, Self::Chat | Self::ChatCompletions)
    }
}

/// Said to a member whose role is too low.
const ROLE_TOO_LOW: &str = "your role does not allow this";
/// Said to an API key (and the operator) where a person is needed.
pub(super) const MEMBERS_ONLY: &str = "this needs a signed-in team member, not an API key";
/// Said to a key without the scope.
const SCOPE_MISSING: &str = "the API key lacks the scope this needs";
/// Said to members and the operator on integration endpoints.
const INTEGRATIONS_ONLY: &str =
    "this endpoint is for integrations: use an API key with the scope it needs";
const VISITORS_ONLY_CHAT: &str = "a widget visitor may only talk to the bot";
const JOBS_ONLY_CHAT: &str = "a background job may only answer for the bot";

/// Who may take one action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rule {
    /// Members with at least this role; `None`: no member.
    member: Option<Role>,
    /// API keys with this scope; `None`: no key.
    scope: Option<ApiScope>,
    /// The operator: the command line, or a platform admin acting in the tenant.
    operator: bool,
    /// A widget visitor, in their own conversation.
    visitor: bool,
    /// A job acting for the tenant.
    system: bool,
    /// Said to an API key refused for want of a person (`MEMBERS_ONLY` unless the action has
    /// words of its own).
    key_refusal: &'static str,
}

const fn rule(action: Action) -> Rule {
    use Action::*;
    const NOBODY: Rule = Rule {
        member: None,
        scope: None,
        operator: false,
        visitor: false,
        system: false,
        key_refusal: MEMBERS_ONLY,
    };
    const fn members(role: Role) -> Rule {
        Rule {
            member: Some(role),
            ..NOBODY
        }
    }
    const fn admins_or_operator(key_refusal: &'static str) -> Rule {
        Rule {
            member: Some(Role::Admin),
            operator: true,
            key_refusal,
            ..NOBODY
        }
    }
    const fn members_keys_operator(role: Role, scope: ApiScope) -> Rule {
        Rule {
            member: Some(role),
            scope: Some(scope),
            operator: true,
            ..NOBODY
        }
    }
    match action {
        ReadKnowledge => members_keys_operator(Role::Agent, ApiScope::KnowledgeRead),
        WriteKnowledge => members_keys_operator(Role::Admin, ApiScope::KnowledgeWrite),
        Chat => Rule {
            visitor: true,
            system: true,
            ..members_keys_operator(Role::Agent, ApiScope::Chat)
        },
        ChatCompletions => Rule {
            scope: Some(ApiScope::Chat),
            ..NOBODY
        },
        ReadBot => members_keys_operator(Role::Agent, ApiScope::Chat),
        ManageBot => admins_or_operator("bot settings are changed by admins"),
        ReadConversations => members_keys_operator(Role::Agent, ApiScope::ConversationsRead),
        ReadChannels => members(Role::Agent),
        ManageChannels => admins_or_operator("channels are connected by owners and admins"),
        ConnectChannelsWithMeta => members(Role::Admin),
        ReadWidgetKeys => members(Role::Agent),
        ManageWidgetKeys => admins_or_operator("widget keys are managed by owners and admins"),
        ReadTeam => members(Role::Agent),
        ManageTeam => members(Role::Admin),
        ManageApiKeys => members(Role::Admin),
        ReadAuditLog => members(Role::Admin),
        ManageCompany => admins_or_operator("the company profile is changed by owners and admins"),
        ReadOwnProfile => members(Role::Agent),
        ManageOwnAccount => members(Role::Agent),
    }
}

/// Whether `caller` may take `action`; the refusal says why not.
pub fn check(caller: &Caller, action: Action) -> Result<(), TenancyError> {
    let r = rule(action);
    let refused = |why| Err(TenancyError::Forbidden(why));
    match caller {
        Caller::User(u) => match r.member {
            Some(min) if u.role.at_least(min) => Ok(()),
            Some(_) => refused(ROLE_TOO_LOW),
            None => refused(INTEGRATIONS_ONLY),
        },
        Caller::ApiKey(k) => match r.scope {
            Some(scope) if k.scopes.contains(&scope) => Ok(()),
            Some(_) => refused(SCOPE_MISSING),
            None => refused(r.key_refusal),
        },
        Caller::Operator | Caller::PlatformAdmin(_) => match (r.operator, r.member) {
            (true, _) => Ok(()),
            (false, Some(_)) => refused(MEMBERS_ONLY),
            (false, None) => refused(INTEGRATIONS_ONLY),
        },
        Caller::Visitor { .. } if r.visitor => Ok(()),
        Caller::Visitor { .. } => refused(VISITORS_ONLY_CHAT),
        Caller::System { .. } if r.system => Ok(()),
        Caller::System { .. } => refused(JOBS_ONLY_CHAT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use cortex_core::credentials::ApiKey;
    use cortex_core::ids::{ApiKeyId, PlatformAdminId, TenantId, UserId, WidgetKeyId};
    use cortex_core::tenancy::{Email, User};

    fn user(role: Role) -> Caller {
        Caller::User(User {
            id: UserId::new(),
            tenant_id: TenantId::new(),
            email: Email::parse("a@b.example").expect("email"),
            name: None,
            role,
            password_hash: String::new(),
            email_verified_at: Some(Utc::now()),
            created_at: Utc::now(),
        })
    }

    fn key(scopes: Vec<ApiScope>) -> Caller {
        Caller::ApiKey(ApiKey {
            id: ApiKeyId::new(),
            tenant_id: TenantId::new(),
            name: "k".into(),
            prefix: "ck_live_abcd".into(),
            key_hash: String::new(),
            scopes,
            created_by: None,
            created_at: Utc::now(),
            last_used_at: None,
            revoked_at: None,
        })
    }

    /// The whole table, caller by caller: `Y` allowed, `.` refused. Columns: owner, admin,
    /// agent, a key with every scope, a key with none, the operator, a platform admin, a
    /// widget visitor, a job.
    #[test]
    fn the_permission_table_is_this() {
        let callers = [
            user(Role::Owner),
            user(Role::Admin),
            user(Role::Agent),
            key(ApiScope::ALL.to_vec()),
            key(vec![]),
            Caller::Operator,
            Caller::PlatformAdmin(PlatformAdminId::new()),
            Caller::Visitor {
                key: WidgetKeyId::new(),
            },
            Caller::System {
                job: "AnswerInbound",
            },
        ];
        let table: Vec<String> = Action::ALL
            .iter()
            .map(|a| {
                let row: String = callers
                    .iter()
                    .map(|c| if check(c, *a).is_ok() { 'Y' } else { '.' })
                    .collect();
                format!("{a:?} {row}")
            })
            .collect();
        assert_eq!(
            table,
            [
                "ReadKnowledge YYYY.YY..",
                "WriteKnowledge YY.Y.YY..",
                "Chat YYYY.YYYY",
                "ChatCompletions ...Y.....",
                "ReadBot YYYY.YY..",
                "ManageBot YY...YY..",
                "ReadConversations YYYY.YY..",
                "ReadChannels YYY......",
                "ManageChannels YY...YY..",
                "ConnectChannelsWithMeta YY.......",
                "ReadWidgetKeys YYY......",
                "ManageWidgetKeys YY...YY..",
                "ReadTeam YYY......",
                "ManageTeam YY.......",
                "ManageApiKeys YY.......",
                "ReadAuditLog YY.......",
                "ManageCompany YY...YY..",
                "ReadOwnProfile YYY......",
                "ManageOwnAccount YYY......",
            ]
        );
    }

    #[test]
    fn visitors_and_jobs_are_refused_every_administrative_action() {
        let visitor = Caller::Visitor {
            key: WidgetKeyId::new(),
        };
        let job = Caller::System {
            job: "AnswerInbound",
        };
        for action in Action::ALL.into_iter().filter(|a| a.is_administrative()) {
            assert!(check(&visitor, action).is_err(), "{action:?}");
            assert!(check(&job, action).is_err(), "{action:?}");
        }
        assert!(check(&visitor, Action::Chat).is_ok());
        assert!(check(&job, Action::Chat).is_ok());
    }

    #[test]
    fn refusals_say_why() {
        let why = |c: &Caller, a| match check(c, a) {
            Err(TenancyError::Forbidden(w)) => w,
            other => panic!("{other:?}"),
        };
        assert_eq!(why(&user(Role::Agent), Action::ManageTeam), ROLE_TOO_LOW);
        assert_eq!(
            why(&key(ApiScope::ALL.to_vec()), Action::ManageBot),
            "bot settings are changed by admins"
        );
        assert_eq!(why(&key(vec![]), Action::Chat), SCOPE_MISSING);
        assert_eq!(
            why(&user(Role::Owner), Action::ChatCompletions),
            INTEGRATIONS_ONLY
        );
        assert_eq!(why(&Caller::Operator, Action::ReadTeam), MEMBERS_ONLY);
    }
}
