//! The storage port. One trait, implemented by `cortex-store-sqlite` and
//! `cortex-store-postgres` and checked by the shared conformance suite.
//!
//! Every method on tenant data takes the [`TenantId`] first, and a row of another tenant is
//! `NotFound`, never "forbidden": a tenant cannot even learn that another tenant's id exists.
//! The few methods without a tenant are the *credential lookups* (an email at login, the hash
//! of an API key, refresh token or invitation token): the credential is what tells us the
//! tenant, and each returns the row with its `tenant_id` so the caller continues scoped.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::answer::{BotSettings, Conversation, ConversationEvent, Message, Turn, UsageEvent};
use crate::audit::{AuditEvent, NewAuditEvent};
use crate::channels::{
    ChannelConnection, DeliveryStatus, InboundMessage, OutboundMessage, SealedSecret,
};
use crate::credentials::{ApiKey, NewApiKey, NewRefreshToken, PlatformAdmin, RefreshToken};
use crate::ids::{
    ApiKeyId, ChannelConnectionId, ConversationId, DocumentId, InboundMessageId, InvitationId,
    JobId, PlatformAdminId, SignupId, TenantId, TokenFamilyId, UserId,
};
use crate::jobs::{Job, Lease, NewJob};
use crate::knowledge::{
    Chunk, ChunkHit, ChunkVectors, Document, DocumentStage, NewChunk, NewDocument, Original,
    PendingEmbedding,
};
use crate::tenancy::{
    Email, Invitation, NewInvitation, NewPendingSignup, NewTenant, NewUser, PendingSignup, Role,
    Tenant, TenantStatus, User,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist, or belongs to another tenant.
    #[error("not found")]
    NotFound,
    /// A rule held by the store refused the change; the code is stable (e.g. `email_taken`,
    /// `last_owner`, `invitation_used`).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// Anything else: connection loss, a bug, corrupt data. Logged, shown as a 500.
    #[error("storage failure")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn other(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Other(Box::new(e))
    }
}

/// Conflict codes the stores emit.
pub mod conflict {
    pub const EMAIL_TAKEN: &str = "email_taken";
    pub const LAST_OWNER: &str = "last_owner";
    pub const INVITATION_USED: &str = "invitation_used";
    pub const ALREADY_REVOKED: &str = "already_revoked";
    pub const LEASE_LOST: &str = "lease_lost";
    pub const DOCUMENT_LIMIT_REACHED: &str = "document_limit_reached";
    /// A job of an older generation of a document tried to change it after reprocessing
    /// started a newer one.
    pub const STALE_GENERATION: &str = "stale_generation";
    /// A document with this id exists already (crawls create their pages idempotently).
    pub const DOCUMENT_EXISTS: &str = "document_exists";
    /// A new conversation's id is taken.
    pub const CONVERSATION_EXISTS: &str = "conversation_exists";
    /// The channel asset (a WhatsApp number, a page) is connected already, here or elsewhere.
    pub const CHANNEL_TAKEN: &str = "channel_taken";
    pub const DELETION_CODE_TAKEN: &str = "deletion_code_taken";
}

/// A page of a list ordered by creation, newest first.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub limit: u32,
    /// Only rows created strictly before this one (cursor of the previous page's last row).
    pub before: Option<uuid::Uuid>,
}

impl Page {
    pub const MAX_LIMIT: u32 = 200;

    pub fn first(limit: u32) -> Self {
        Self {
            limit: limit.clamp(1, Self::MAX_LIMIT),
            before: None,
        }
    }
}

/// What consuming a refresh token found.
#[derive(Clone, Debug, PartialEq)]
pub enum RefreshUse {
    /// The token was fresh and is now used; issue its successor.
    Fresh(RefreshToken),
    /// The token had been used before (or revoked): a stolen copy may be in play.
    Reused(RefreshToken),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Backend name for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// Database reachable and every migration this binary knows applied.
    async fn readiness(&self) -> Result<()>;

    // ----- tenants -------------------------------------------------------------------------

    /// A tenant, its first owner and the audit entry, all or nothing.
    /// `Conflict(email_taken)` if the email already has an account.
    async fn create_tenant_with_owner(
        &self,
        tenant: NewTenant,
        owner: NewUser,
        audit: NewAuditEvent,
    ) -> Result<()>;

    async fn get_tenant(&self, tenant: TenantId) -> Result<Tenant>;

    /// Operator view: every tenant, newest first.
    async fn list_tenants(&self, page: Page) -> Result<Vec<Tenant>>;

    /// Suspends (remembering the status to return to) or reactivates a tenant.
    /// Reactivating restores the remembered status. `Conflict(already_revoked)` is not used
    /// here; setting the status it already has is a no-op that still returns the tenant.
    async fn set_tenant_suspended(
        &self,
        tenant: TenantId,
        suspended: bool,
        audit: NewAuditEvent,
    ) -> Result<Tenant>;

    /// Moves the tenant to another plan of the catalogue, with the audit entry, atomically.
    async fn set_tenant_plan(
        &self,
        tenant: TenantId,
        plan: &str,
        audit: NewAuditEvent,
    ) -> Result<Tenant>;

    /// Sets the commercial status directly (billing moves trial → active → past_due).
    async fn set_tenant_status(&self, tenant: TenantId, status: TenantStatus) -> Result<Tenant>;

    // ----- users ---------------------------------------------------------------------------

    /// Credential lookup for login and signup deduplication.
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>>;

    async fn get_user(&self, tenant: TenantId, user: UserId) -> Result<User>;

    /// Team members, oldest first.
    async fn list_users(&self, tenant: TenantId) -> Result<Vec<User>>;

    /// Changes a member's role. `Conflict(last_owner)` if it would leave no owner.
    async fn change_role(
        &self,
        tenant: TenantId,
        user: UserId,
        role: Role,
        audit: NewAuditEvent,
    ) -> Result<User>;

    /// Removes a member and every refresh token they hold. `Conflict(last_owner)` if they are
    /// the only owner.
    async fn remove_user(&self, tenant: TenantId, user: UserId, audit: NewAuditEvent)
    -> Result<()>;

    // ----- pending signups -----------------------------------------------------------------

    /// Keeps a signup until its code is verified, replacing any pending signup of the same
    /// address (its code stops working); pending signups past their expiry are deleted.
    async fn put_pending_signup(&self, signup: NewPendingSignup) -> Result<()>;

    /// Credential lookup: the address's pending signup, if one has not expired.
    async fn find_pending_signup(
        &self,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingSignup>>;

    /// A fresh code for the same signup (resend): attempts start again. `NotFound` if the
    /// signup was replaced or completed meanwhile.
    async fn renew_pending_signup_code(
        &self,
        signup: SignupId,
        code_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;

    /// Counts a wrong guess; returns the attempts made so far. `NotFound` if it is gone.
    async fn record_pending_signup_failure(&self, signup: SignupId) -> Result<u32>;

    /// Verification: deletes the pending signup and creates its tenant and owner with the
    /// audit entry, all or nothing. `NotFound` if the signup was replaced or completed
    /// meanwhile, `Conflict(email_taken)` if the address got an account.
    async fn complete_pending_signup(
        &self,
        signup: SignupId,
        tenant: NewTenant,
        owner: NewUser,
        audit: NewAuditEvent,
    ) -> Result<()>;

    // ----- refresh tokens ------------------------------------------------------------------

    async fn insert_refresh_token(&self, tenant: TenantId, token: NewRefreshToken) -> Result<()>;

    /// Credential lookup by the token's hash.
    async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>>;

    /// Atomically marks the token used. Exactly one of any number of concurrent callers gets
    /// `Fresh`; every other (and every later) caller gets `Reused`.
    async fn use_refresh_token(
        &self,
        tenant: TenantId,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<RefreshUse>;

    /// Revokes every token of the family; returns how many were still live.
    async fn revoke_token_family(
        &self,
        tenant: TenantId,
        family: TokenFamilyId,
        at: DateTime<Utc>,
    ) -> Result<u64>;

    // ----- invitations ---------------------------------------------------------------------

    async fn create_invitation(
        &self,
        tenant: TenantId,
        invitation: NewInvitation,
        audit: NewAuditEvent,
    ) -> Result<Invitation>;

    /// Invitations not yet accepted, newest first (expired ones included, marked by date).
    async fn list_pending_invitations(&self, tenant: TenantId) -> Result<Vec<Invitation>>;

    async fn delete_invitation(&self, tenant: TenantId, invitation: InvitationId) -> Result<()>;

    /// Credential lookup by the token's hash.
    async fn find_invitation(&self, token_hash: &str) -> Result<Option<Invitation>>;

    /// Marks the invitation accepted and creates the member, atomically; a pending signup of
    /// the same address goes (the invitation proved the mailbox).
    /// `Conflict(invitation_used)` if it was accepted already, `Conflict(email_taken)` if the
    /// email got an account meanwhile.
    async fn accept_invitation(
        &self,
        tenant: TenantId,
        invitation: InvitationId,
        user: NewUser,
        audit: NewAuditEvent,
    ) -> Result<User>;

    // ----- API keys ------------------------------------------------------------------------

    async fn create_api_key(
        &self,
        tenant: TenantId,
        key: NewApiKey,
        audit: NewAuditEvent,
    ) -> Result<ApiKey>;

    /// Every key of the tenant, revoked ones included, newest first.
    async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>>;

    /// `Conflict(already_revoked)` if it was revoked before.
    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        key: ApiKeyId,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<ApiKey>;

    /// Credential lookup by the key's hash (revoked keys are returned too; the caller refuses).
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>>;

    async fn touch_api_key(&self, tenant: TenantId, key: ApiKeyId, at: DateTime<Utc>)
    -> Result<()>;

    // ----- platform admins -----------------------------------------------------------------

    /// `Conflict(email_taken)` if an operator with this email exists.
    async fn create_platform_admin(&self, admin: PlatformAdmin) -> Result<()>;

    async fn find_platform_admin(&self, email: &Email) -> Result<Option<PlatformAdmin>>;

    async fn get_platform_admin(&self, id: PlatformAdminId) -> Result<PlatformAdmin>;

    // ----- job queue ----------------------------------------------------------------------
    // Jobs are leased across all tenants by the workers, so the queue methods are platform
    // methods; each job carries its tenant and the job body continues scoped to it.

    /// Enqueues a job (for `tenant`, or a platform job with `None`). Returns `false`, and
    /// changes nothing, when a job with the same unique key exists.
    async fn enqueue_job(&self, tenant: Option<TenantId>, job: NewJob) -> Result<bool>;

    /// Leases up to `limit` jobs that are due (queued with `run_at <= now`, or running with a
    /// lease that ran out) until `now + lease_for`, counting an attempt for each. Jobs whose
    /// lease ran out on their last attempt are marked failed instead. Concurrent callers never
    /// get the same job.
    async fn lease_jobs(
        &self,
        now: DateTime<Utc>,
        lease_for: chrono::Duration,
        limit: u32,
    ) -> Result<Vec<Lease>>;

    /// Extends a lease still held (a heartbeat for long jobs). `Conflict(lease_lost)` otherwise.
    async fn extend_lease(&self, job: JobId, token: uuid::Uuid, until: DateTime<Utc>)
    -> Result<()>;

    /// Marks a leased job done. `Conflict(lease_lost)` if the lease is no longer this token's.
    async fn complete_job(&self, job: JobId, token: uuid::Uuid, at: DateTime<Utc>) -> Result<()>;

    /// Records a failed attempt: back to `queued` at `retry_at` while attempts remain,
    /// otherwise `failed` for good. `Conflict(lease_lost)` if the lease is gone.
    async fn fail_job(
        &self,
        job: JobId,
        token: uuid::Uuid,
        error: &str,
        retry_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Job>;

    /// One job, for the worker runtime and operators.
    async fn get_job(&self, job: JobId) -> Result<Job>;

    // ----- knowledge base -----------------------------------------------------------------

    /// Creates the document and enqueues its first job, atomically. With `max_documents`,
    /// refuses with `Conflict(document_limit_reached)` when the tenant already has that many
    /// (checked under a lock, so concurrent uploads cannot overshoot);
    /// `Conflict(document_exists)` when the id is taken.
    async fn create_document(
        &self,
        tenant: TenantId,
        document: NewDocument,
        job: NewJob,
        max_documents: Option<u32>,
    ) -> Result<Document>;

    async fn get_document(&self, tenant: TenantId, document: DocumentId) -> Result<Document>;

    /// Records the original of a document that came without one (a fetched URL): its type,
    /// size, hash and blob, the final URL and title when known, and enqueues `next` (the parse
    /// job), atomically. `Conflict(stale_generation)` when a newer run started.
    async fn attach_original(
        &self,
        tenant: TenantId,
        document: DocumentId,
        generation: u32,
        original: Original,
        next: NewJob,
    ) -> Result<()>;

    /// Newest first.
    async fn list_documents(&self, tenant: TenantId, page: Page) -> Result<Vec<Document>>;

    async fn count_documents(&self, tenant: TenantId) -> Result<u64>;

    /// Deletes the document with its chunks, their lexical entries and every vector no other
    /// chunk of the tenant still uses, in one transaction. Returns the deleted row (the caller
    /// removes the original from the blob store).
    async fn delete_document(&self, tenant: TenantId, document: DocumentId) -> Result<Document>;

    /// Starts processing again under the next generation (status `pending`, stage `queued`)
    /// and enqueues `job`, atomically. The current chunks stay searchable until the new run
    /// replaces them.
    async fn restart_document(
        &self,
        tenant: TenantId,
        document: DocumentId,
        job: NewJob,
    ) -> Result<Document>;

    /// Records progress of the run of `generation` (status `processing`).
    /// `Conflict(stale_generation)` when a newer run started, `NotFound` when it was deleted.
    async fn set_document_stage(
        &self,
        tenant: TenantId,
        document: DocumentId,
        generation: u32,
        stage: DocumentStage,
        progress: u8,
    ) -> Result<()>;

    /// Replaces the document's chunks (and their lexical entries) with `chunks`, marks it
    /// lexically searchable at stage `embedding`, drops vectors no chunk uses any more and
    /// enqueues `next` (the embedding job), all in one transaction: a run that dies halfway
    /// leaves the previous chunks, never a mix. `Conflict(stale_generation)` as above.
    async fn replace_chunks(
        &self,
        tenant: TenantId,
        document: DocumentId,
        generation: u32,
        chunks: Vec<NewChunk>,
        next: NewJob,
        at: DateTime<Utc>,
    ) -> Result<()>;

    /// Marks the run failed with a stable code and a readable message and removes the
    /// document's chunks: a failed document answers nothing.
    async fn fail_document(
        &self,
        tenant: TenantId,
        document: DocumentId,
        generation: u32,
        code: &str,
        message: &str,
    ) -> Result<()>;

    /// Up to `limit` distinct chunk texts of the document that have no vector for `model`, or
    /// whose windows have none.
    async fn pending_embeddings(
        &self,
        tenant: TenantId,
        document: DocumentId,
        model: &str,
        limit: u32,
    ) -> Result<Vec<PendingEmbedding>>;

    /// Stores vectors by content hash; a hash that has one already keeps it (and gets the
    /// windows given when it had none).
    async fn put_embeddings(
        &self,
        tenant: TenantId,
        model: &str,
        vectors: &[ChunkVectors],
    ) -> Result<()>;

    /// The stored vectors of these chunk texts (by content hash) of `model`, with their
    /// windows' when computed; hashes without a vector are left out.
    async fn chunk_vectors(
        &self,
        tenant: TenantId,
        model: &str,
        hashes: &[String],
    ) -> Result<Vec<ChunkVectors>>;

    /// Marks the run of `generation` ready (every chunk has a vector of `model`).
    async fn finish_document(
        &self,
        tenant: TenantId,
        document: DocumentId,
        generation: u32,
        model: &str,
        at: DateTime<Utc>,
    ) -> Result<Document>;

    /// The document's chunks in order, from `offset`.
    async fn list_chunks(
        &self,
        tenant: TenantId,
        document: DocumentId,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<Chunk>>;

    /// Full-text search of the tenant's chunks by BM25, best first, with the tenant's own
    /// [`crate::lexical`] index (any query term may match; rarer terms weigh more).
    async fn lexical_search(&self, tenant: TenantId, query: &str, k: u32) -> Result<Vec<ChunkHit>> {
        Ok(self.lexical_search_weighed(tenant, query, k).await?.0)
    }

    /// [`Store::lexical_search`], with how much word evidence `query` can carry in the same
    /// index ([`crate::lexical::LexicalIndex::search_weighed`]): a hit's score divided by it
    /// is the share of the question's words the chunk carries.
    async fn lexical_search_weighed(
        &self,
        tenant: TenantId,
        query: &str,
        k: u32,
    ) -> Result<(Vec<ChunkHit>, f32)>;

    /// The `k` chunks of the tenant whose `model` vectors are closest (cosine) to `vector`,
    /// best first. The tenant always gets its own `k` best, however many other tenants hold.
    async fn vector_search(
        &self,
        tenant: TenantId,
        model: &str,
        vector: &[f32],
        k: u32,
    ) -> Result<Vec<ChunkHit>>;

    /// Maintenance: documents still pending or processing whose job failed for good (e.g. a
    /// worker died on the last attempt) become `failed`. Returns how many.
    async fn fail_abandoned_documents(&self, at: DateTime<Utc>) -> Result<u64>;

    // ----- answer engine ------------------------------------------------------------------

    /// The tenant's bot settings; `None` until an admin saves some (the defaults apply).
    async fn get_bot_settings(&self, tenant: TenantId) -> Result<Option<BotSettings>>;

    /// Replaces the bot settings and records the audit entry, atomically.
    async fn put_bot_settings(
        &self,
        tenant: TenantId,
        settings: &BotSettings,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;

    async fn get_conversation(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<Conversation>;

    /// The tenant's conversations on every channel, latest activity first.
    async fn list_conversations(
        &self,
        tenant: TenantId,
        filter: &crate::answer::ConversationFilter,
    ) -> Result<Vec<crate::answer::ConversationSummary>>;

    /// The customer's latest conversation on a channel connection that is not resolved.
    async fn find_customer_conversation(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        customer: &str,
    ) -> Result<Option<Conversation>>;

    /// The conversation's last `limit` messages, oldest first.
    async fn recent_messages(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        limit: u32,
    ) -> Result<Vec<Message>>;

    /// Stores a question with its answer (opening the conversation when the turn says so),
    /// their usage events and conversation events, in one transaction. `NotFound` when the
    /// conversation is not the tenant's; `Conflict(conversation_exists)` when a new
    /// conversation's id is taken.
    async fn record_turn(&self, tenant: TenantId, turn: Turn) -> Result<()>;

    /// The tenant's usage events since `since`, oldest first.
    async fn list_usage_events(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
    ) -> Result<Vec<UsageEvent>>;

    /// A conversation's events, oldest first.
    async fn list_conversation_events(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<Vec<ConversationEvent>>;

    // ----- channels ----------------------------------------------------------------------

    /// Connects a channel and records the audit entry, atomically.
    /// `Conflict(channel_taken)` when its (kind, asset id) is connected to any tenant.
    async fn create_channel_connection(
        &self,
        tenant: TenantId,
        connection: ChannelConnection,
        audit: NewAuditEvent,
    ) -> Result<ChannelConnection>;

    /// Connects a channel in place of another tenant's claim on the same asset, which is
    /// released: the incumbent row goes (its messages with it) and each tenant gets its audit
    /// entry, atomically. `NotFound` if the incumbent is no longer that row.
    async fn replace_channel_claim(
        &self,
        tenant: TenantId,
        connection: ChannelConnection,
        audit: NewAuditEvent,
        incumbent_tenant: TenantId,
        incumbent: ChannelConnectionId,
        release_audit: NewAuditEvent,
    ) -> Result<ChannelConnection>;

    /// Marks the connection's credential as refused by its provider, once, with the audit
    /// entry; `true` if this call marked it (`false`: marked already).
    async fn flag_channel_token_invalid(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<bool>;

    /// Whether any connection, of any tenant, still has its webhook subscription at `target`
    /// (so disconnecting one does not unsubscribe another's page or business account).
    async fn webhook_target_in_use(&self, target: &str) -> Result<bool>;

    /// Oldest first.
    async fn list_channel_connections(&self, tenant: TenantId) -> Result<Vec<ChannelConnection>>;

    async fn delete_channel_connection(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        audit: NewAuditEvent,
    ) -> Result<()>;

    /// Routing lookup for webhooks (the asset id says which tenant); returns the row with its
    /// `tenant_id`.
    async fn find_channel_connection(
        &self,
        kind: crate::answer::Channel,
        asset_id: &str,
    ) -> Result<Option<ChannelConnection>>;

    /// A provider's request on behalf of a person: deletes, in every tenant, the conversations
    /// and delivered messages of `customer` on the provider's connections, and records what
    /// was deleted under `code`, atomically.
    async fn delete_customer_data(
        &self,
        provider: crate::channels::Provider,
        customer: &str,
        code: &str,
        at: DateTime<Utc>,
    ) -> Result<crate::channels::DataDeletion>;

    async fn get_data_deletion(&self, code: &str) -> Result<Option<crate::channels::DataDeletion>>;

    async fn create_oauth_flow(
        &self,
        tenant: TenantId,
        flow: crate::channels::OauthFlow,
    ) -> Result<()>;

    /// Meta sent the member back: claims the flow whose state and browser cookie hash to
    /// these, if still unclaimed and not expired at `at` (once: a second callback finds
    /// nothing; another browser finds nothing and leaves it), with an empty asset list, and
    /// lets it live until `expires_at`. Returns it, with its tenant.
    async fn claim_oauth_flow(
        &self,
        state_hash: &str,
        browser_hash: &str,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<crate::channels::OauthFlow>>;

    /// The assets Meta's token reaches, sealed, on a claimed flow.
    async fn set_oauth_assets(
        &self,
        tenant: TenantId,
        flow: crate::ids::OauthFlowId,
        sealed_assets: &str,
    ) -> Result<()>;

    /// The tenant's flow, authorized or not, expired or not.
    async fn get_oauth_flow(
        &self,
        tenant: TenantId,
        flow: crate::ids::OauthFlowId,
    ) -> Result<crate::channels::OauthFlow>;

    /// Consumes the flow: returns whether this call deleted it.
    async fn delete_oauth_flow(
        &self,
        tenant: TenantId,
        flow: crate::ids::OauthFlowId,
    ) -> Result<bool>;

    // ----- widget ------------------------------------------------------------------------

    /// Creates the key and records the audit entry, atomically.
    async fn create_widget_key(
        &self,
        tenant: TenantId,
        key: crate::widget::WidgetKey,
        audit: NewAuditEvent,
    ) -> Result<crate::widget::WidgetKey>;

    /// Oldest first, revoked ones included.
    async fn list_widget_keys(&self, tenant: TenantId) -> Result<Vec<crate::widget::WidgetKey>>;

    /// Replaces the name, origins and theme of a key not revoked, with the audit entry.
    async fn update_widget_key(
        &self,
        tenant: TenantId,
        key: crate::widget::WidgetKey,
        audit: NewAuditEvent,
    ) -> Result<crate::widget::WidgetKey>;

    /// `NotFound` for another tenant's key; `Conflict(already_revoked)` the second time.
    async fn revoke_widget_key(
        &self,
        tenant: TenantId,
        key: crate::ids::WidgetKeyId,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;

    /// Lookup of a public key from a visitor's page (revoked keys included; the caller
    /// refuses them); returns the row with its `tenant_id`.
    async fn find_widget_key(&self, public_key: &str) -> Result<Option<crate::widget::WidgetKey>>;

    /// Records (or changes) the verdict on an assistant message of the conversation.
    /// `NotFound` when the message is not an answer in that conversation of the tenant.
    async fn set_feedback(&self, tenant: TenantId, feedback: crate::widget::Feedback)
    -> Result<()>;

    /// The verdicts given in a conversation, by message.
    async fn list_feedback(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<Vec<crate::widget::Feedback>>;

    /// Platform maintenance (key rotation): every sealed secret, of every tenant.
    async fn list_sealed_secrets(&self) -> Result<Vec<SealedSecret>>;

    /// Replaces a sealed secret if it is still `old` (a concurrent change wins); returns
    /// whether it was replaced.
    async fn reseal_secret(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        old: &str,
        new: &str,
    ) -> Result<bool>;

    /// Stores a customer's message and enqueues `job` (its answer) in one transaction — unless
    /// a message with the same provider id arrived on this connection before, in which case
    /// nothing changes. Returns whether it was new. Any number of concurrent deliveries of one
    /// message store it once.
    async fn record_inbound(
        &self,
        tenant: TenantId,
        message: InboundMessage,
        job: NewJob,
    ) -> Result<bool>;

    async fn get_inbound(
        &self,
        tenant: TenantId,
        message: InboundMessageId,
    ) -> Result<InboundMessage>;

    /// The customer's messages on the connection not answered yet, oldest first (by the
    /// provider's time, then arrival), at most `limit`.
    async fn unanswered_inbound(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        customer: &str,
        limit: u32,
    ) -> Result<Vec<InboundMessage>>;

    /// Marks the message answered (with the delivery error, if any) unless it was already, and
    /// then appends `usage` (the messages sent) in the same transaction; returns whether this
    /// call did.
    async fn finish_inbound(
        &self,
        tenant: TenantId,
        message: InboundMessageId,
        at: DateTime<Utc>,
        error: Option<&str>,
        usage: &[crate::answer::UsageEvent],
    ) -> Result<bool>;

    /// The sum of the tenant's usage events of `kind` about `subject` (a model, a channel)
    /// since `since`.
    async fn usage_total(
        &self,
        tenant: TenantId,
        kind: crate::answer::UsageKind,
        subject: &str,
        since: DateTime<Utc>,
    ) -> Result<u64>;

    async fn record_outbound(&self, tenant: TenantId, message: OutboundMessage) -> Result<()>;

    /// Applies a delivery status to the sent message with this provider id, only forward
    /// (a late `delivered` after `read` changes nothing); returns whether it changed.
    async fn update_outbound_status(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        provider_message_id: &str,
        status: DeliveryStatus,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool>;

    async fn find_outbound(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        provider_message_id: &str,
    ) -> Result<Option<OutboundMessage>>;

    // ----- audit log -----------------------------------------------------------------------

    async fn record_audit(&self, tenant: TenantId, event: NewAuditEvent) -> Result<()>;

    /// Newest first.
    async fn list_audit_events(&self, tenant: TenantId, page: Page) -> Result<Vec<AuditEvent>>;
}
