//! The one place where errors become HTTP responses. Every error body has the same envelope,
//! `{"error": {"code", "message", "request_id"}}` (plus `field` for validation), with a stable
//! snake_case code documented in `docs/API.md`. A 5xx body never carries the cause: that is
//! logged once here, next to the request id the client sees.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::tenancy::TenancyError;

tokio::task_local! {
    /// The id of the request being served, set by the request-id middleware.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// Every stable error code the API answers with; `docs/API.md` lists each (a test checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    AlreadyRevoked,
    BotDisabled,
    ChannelNotVerified,
    ChannelTaken,
    CsrfFailed,
    DocumentLimitReached,
    EmailNotVerified,
    EmailTaken,
    FileTooLarge,
    Forbidden,
    InternalError,
    InvalidBody,
    InvalidCode,
    InvalidCredentials,
    InvalidJson,
    InvalidMultipart,
    InvalidPayload,
    InvalidQuery,
    InvalidRefreshToken,
    InvalidResetToken,
    InvalidSignature,
    InvalidState,
    InvalidWidgetKey,
    InvitationInvalid,
    LastOwner,
    MethodNotAllowed,
    NotConfigured,
    NotFound,
    OauthDenied,
    OauthPending,
    OriginNotAllowed,
    OriginalMissing,
    PayloadTooLarge,
    PlanFeatureUnavailable,
    ProviderError,
    RateLimited,
    RefreshTokenReused,
    RouteNotFound,
    TenantSuspended,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 42] = [
        Self::AlreadyRevoked,
        Self::BotDisabled,
        Self::ChannelNotVerified,
        Self::ChannelTaken,
        Self::CsrfFailed,
        Self::DocumentLimitReached,
        Self::EmailNotVerified,
        Self::EmailTaken,
        Self::FileTooLarge,
        Self::Forbidden,
        Self::InternalError,
        Self::InvalidBody,
        Self::InvalidCode,
        Self::InvalidCredentials,
        Self::InvalidJson,
        Self::InvalidMultipart,
        Self::InvalidPayload,
        Self::InvalidQuery,
        Self::InvalidRefreshToken,
        Self::InvalidResetToken,
        Self::InvalidSignature,
        Self::InvalidState,
        Self::InvalidWidgetKey,
        Self::InvitationInvalid,
        Self::LastOwner,
        Self::MethodNotAllowed,
        Self::NotConfigured,
        Self::NotFound,
        Self::OauthDenied,
        Self::OauthPending,
        Self::OriginNotAllowed,
        Self::OriginalMissing,
        Self::PayloadTooLarge,
        Self::PlanFeatureUnavailable,
        Self::ProviderError,
        Self::RateLimited,
        Self::RefreshTokenReused,
        Self::RouteNotFound,
        Self::TenantSuspended,
        Self::Unauthenticated,
        Self::UnsupportedMediaType,
        Self::ValidationFailed,
    ];

    /// The code as clients see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlreadyRevoked => "already_revoked",
            Self::BotDisabled => "bot_disabled",
            Self::ChannelNotVerified => "channel_not_verified",
            Self::ChannelTaken => "channel_taken",
            Self::DocumentLimitReached => "document_limit_reached",
            Self::EmailNotVerified => "email_not_verified",
            Self::EmailTaken => "email_taken",
            Self::FileTooLarge => "file_too_large",
            Self::Forbidden => "forbidden",
            Self::InternalError => "internal_error",
            Self::InvalidBody => "invalid_body",
            Self::InvalidCode => "invalid_code",
            Self::InvalidResetToken => "invalid_reset_token",
            Self::CsrfFailed => "csrf_failed",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidJson => "invalid_json",
            Self::InvalidMultipart => "invalid_multipart",
            Self::InvalidPayload => "invalid_payload",
            Self::InvalidQuery => "invalid_query",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::InvalidSignature => "invalid_signature",
            Self::InvalidState => "invalid_state",
            Self::InvalidWidgetKey => "invalid_widget_key",
            Self::InvitationInvalid => "invitation_invalid",
            Self::LastOwner => "last_owner",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NotConfigured => "not_configured",
            Self::NotFound => "not_found",
            Self::OauthDenied => "oauth_denied",
            Self::OauthPending => "oauth_pending",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::OriginalMissing => "original_missing",
            Self::PayloadTooLarge => "payload_too_large",
            Self::PlanFeatureUnavailable => "plan_feature_unavailable",
            Self::ProviderError => "provider_error",
            Self::RateLimited => "rate_limited",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::RouteNotFound => "route_not_found",
            Self::TenantSuspended => "tenant_suspended",
            Self::Unauthenticated => "unauthenticated",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ValidationFailed => "validation_failed",
        }
    }
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    pub retry_after_secs: Option<u64>,
    /// For 5xx: the cause, logged and never sent.
    pub cause: Option<anyhow::Error>,
}

/// The error envelope.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_credentials`.
    pub code: String,
    /// Human-readable explanation; wording may change.
    pub message: String,
    /// The `X-Request-ID` of the request, for support.
    pub request_id: String,
    /// The request field at fault, for validation errors (`email`, `scopes[1]`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after_secs: None,
            cause: None,
        }
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field}: {}", message.into());
        Self {
            field: Some(field),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::ValidationFailed,
                message,
            )
        }
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no such resource",
        )
    }

    pub fn internal(cause: anyhow::Error) -> Self {
        Self {
            cause: Some(cause),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::InternalError,
                "internal error",
            )
        }
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "missing or invalid credentials",
        )
    }
}

impl From<TenancyError> for ApiError {
    fn from(e: TenancyError) -> Self {
        use StatusCode as S;
        let message = e.to_string();
        match e {
            TenancyError::Validation { field, message } => Self::validation(field, message),
            TenancyError::Unauthenticated => Self::unauthenticated(),
            TenancyError::InvalidCredentials => {
                Self::new(S::UNAUTHORIZED, ErrorCode::InvalidCredentials, message)
            }
            TenancyError::EmailNotVerified => {
                Self::new(S::FORBIDDEN, ErrorCode::EmailNotVerified, message)
            }
            TenancyError::InvalidCode => Self::new(S::BAD_REQUEST, ErrorCode::InvalidCode, message),
            TenancyError::InvalidRefreshToken => {
                Self::new(S::UNAUTHORIZED, ErrorCode::InvalidRefreshToken, message)
            }
            TenancyError::RefreshTokenReused => {
                Self::new(S::UNAUTHORIZED, ErrorCode::RefreshTokenReused, message)
            }
            TenancyError::InvalidResetToken => {
                Self::new(S::BAD_REQUEST, ErrorCode::InvalidResetToken, message)
            }
            TenancyError::InvitationInvalid => {
                Self::new(S::BAD_REQUEST, ErrorCode::InvitationInvalid, message)
            }
            TenancyError::EmailTaken => Self::new(S::CONFLICT, ErrorCode::EmailTaken, message),
            TenancyError::LastOwner => Self::new(S::CONFLICT, ErrorCode::LastOwner, message),
            TenancyError::Forbidden(_) => Self::new(S::FORBIDDEN, ErrorCode::Forbidden, message),
            TenancyError::TenantSuspended => Self::new(
                S::FORBIDDEN,
                ErrorCode::TenantSuspended,
                "this tenant is suspended; contact the operator of this service",
            ),
            TenancyError::NotFound => Self::not_found(),
            TenancyError::AlreadyRevoked => {
                Self::new(S::CONFLICT, ErrorCode::AlreadyRevoked, message)
            }
            TenancyError::RateLimited { retry_after_secs } => Self {
                retry_after_secs: Some(retry_after_secs),
                ..Self::new(
                    S::TOO_MANY_REQUESTS,
                    ErrorCode::RateLimited,
                    "too many attempts; try again later",
                )
            },
            TenancyError::Internal(cause) => Self::internal(cause),
        }
    }
}

impl ApiError {
    /// The envelope, with the cause of a 5xx logged (once, here).
    fn envelope(&mut self) -> ErrorBody {
        let request_id = current_request_id();
        if let Some(cause) = self.cause.take() {
            tracing::error!(request.id = %request_id, error = format!("{cause:#}"), "request failed");
        }
        ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: std::mem::take(&mut self.message),
                request_id,
                field: self.field.take(),
            },
        }
    }

    /// The envelope as JSON, for errors that travel inside a stream that already started.
    pub fn into_body_json(mut self) -> serde_json::Value {
        serde_json::to_value(self.envelope()).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(mut self) -> Response {
        let body = self.envelope();
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<cortex_core::StoreError> for ApiError {
    fn from(e: cortex_core::StoreError) -> Self {
        TenancyError::from(e).into()
    }
}

impl From<crate::knowledge::KnowledgeError> for ApiError {
    fn from(e: crate::knowledge::KnowledgeError) -> Self {
        use crate::knowledge::KnowledgeError as K;
        use StatusCode as S;
        let message = e.to_string();
        match e {
            K::FileTooLarge { .. } | K::UploadTooLarge { .. } => {
                Self::new(S::PAYLOAD_TOO_LARGE, ErrorCode::FileTooLarge, message)
            }
            K::DocumentLimitReached { .. } => {
                Self::new(S::CONFLICT, ErrorCode::DocumentLimitReached, message)
            }
            K::UnsupportedMediaType { .. } => Self::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                message,
            ),
            K::OriginalMissing => Self::new(S::NOT_FOUND, ErrorCode::OriginalMissing, message),
            K::Tenancy(t) => t.into(),
            K::Internal(cause) => Self::internal(cause),
        }
    }
}

impl From<crate::answer::AnswerError> for ApiError {
    fn from(e: crate::answer::AnswerError) -> Self {
        use crate::answer::AnswerError as A;
        let message = e.to_string();
        match e {
            A::BotDisabled => Self::new(StatusCode::CONFLICT, ErrorCode::BotDisabled, message),
            A::Tenancy(t) => t.into(),
            A::Internal(cause) => Self::internal(cause),
        }
    }
}

impl From<crate::channels::ChannelError> for ApiError {
    fn from(e: crate::channels::ChannelError) -> Self {
        use crate::channels::ChannelError as C;
        let message = e.to_string();
        match e {
            C::PlanFeatureUnavailable { .. } => Self::new(
                StatusCode::FORBIDDEN,
                ErrorCode::PlanFeatureUnavailable,
                message,
            ),
            C::ChannelTaken { .. } => {
                Self::new(StatusCode::CONFLICT, ErrorCode::ChannelTaken, message)
            }
            C::OauthNotConfigured => {
                Self::new(StatusCode::NOT_FOUND, ErrorCode::NotConfigured, message)
            }
            C::OauthInvalidState => {
                Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidState, message)
            }
            C::OauthPending => Self::new(StatusCode::CONFLICT, ErrorCode::OauthPending, message),
            C::Provider(_) => Self::new(StatusCode::BAD_GATEWAY, ErrorCode::ProviderError, message),
            C::ProviderUnavailable(_) => {
                Self::new(StatusCode::BAD_GATEWAY, ErrorCode::ProviderError, message)
            }
            C::NotVerified(_) => Self {
                field: Some("access_token".into()),
                ..Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::ChannelNotVerified,
                    message,
                )
            },
            C::Tenancy(t) => t.into(),
            C::Internal(cause) => Self::internal(cause),
        }
    }
}

impl From<crate::widget::WidgetError> for ApiError {
    fn from(e: crate::widget::WidgetError) -> Self {
        use crate::widget::WidgetError as W;
        let message = e.to_string();
        match e {
            W::InvalidKey => Self::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidWidgetKey,
                message,
            ),
            W::OriginNotAllowed => {
                Self::new(StatusCode::FORBIDDEN, ErrorCode::OriginNotAllowed, message)
            }
            W::RateLimited { retry_after_secs } => Self {
                retry_after_secs: Some(retry_after_secs),
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorCode::RateLimited,
                    message,
                )
            },
            W::Tenancy(t) => t.into(),
        }
    }
}
