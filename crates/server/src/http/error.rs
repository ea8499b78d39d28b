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

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
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
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
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
                "validation_failed",
                message,
            )
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn internal(cause: anyhow::Error) -> Self {
        Self {
            cause: Some(cause),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error",
            )
        }
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
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
                Self::new(S::UNAUTHORIZED, "invalid_credentials", message)
            }
            TenancyError::EmailNotVerified => {
                Self::new(S::FORBIDDEN, "email_not_verified", message)
            }
            TenancyError::InvalidCode => Self::new(S::BAD_REQUEST, "invalid_code", message),
            TenancyError::InvalidRefreshToken => {
                Self::new(S::UNAUTHORIZED, "invalid_refresh_token", message)
            }
            TenancyError::RefreshTokenReused => {
                Self::new(S::UNAUTHORIZED, "refresh_token_reused", message)
            }
            TenancyError::InvitationInvalid => {
                Self::new(S::BAD_REQUEST, "invitation_invalid", message)
            }
            TenancyError::EmailTaken => Self::new(S::CONFLICT, "email_taken", message),
            TenancyError::LastOwner => Self::new(S::CONFLICT, "last_owner", message),
            TenancyError::Forbidden(_) => Self::new(S::FORBIDDEN, "forbidden", message),
            TenancyError::TenantSuspended => Self::new(
                S::FORBIDDEN,
                "tenant_suspended",
                "this tenant is suspended; contact the operator of this service",
            ),
            TenancyError::NotFound => Self::not_found(),
            TenancyError::AlreadyRevoked => Self::new(S::CONFLICT, "already_revoked", message),
            TenancyError::RateLimited { retry_after_secs } => Self {
                retry_after_secs: Some(retry_after_secs),
                ..Self::new(
                    S::TOO_MANY_REQUESTS,
                    "rate_limited",
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
                code: self.code.to_owned(),
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
                Self::new(S::PAYLOAD_TOO_LARGE, "file_too_large", message)
            }
            K::DocumentLimitReached { .. } => {
                Self::new(S::CONFLICT, "document_limit_reached", message)
            }
            K::UnsupportedMediaType { .. } => {
                Self::new(S::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message)
            }
            K::OriginalMissing => Self::new(S::NOT_FOUND, "original_missing", message),
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
            A::BotDisabled => Self::new(StatusCode::CONFLICT, "bot_disabled", message),
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
            C::PlanFeatureUnavailable { .. } => {
                Self::new(StatusCode::FORBIDDEN, "plan_feature_unavailable", message)
            }
            C::ChannelTaken { .. } => Self::new(StatusCode::CONFLICT, "channel_taken", message),
            C::OauthNotConfigured => Self::new(StatusCode::NOT_FOUND, "not_configured", message),
            C::OauthInvalidState => Self::new(StatusCode::BAD_REQUEST, "invalid_state", message),
            C::OauthPending => Self::new(StatusCode::CONFLICT, "oauth_pending", message),
            C::Provider(_) => Self::new(StatusCode::BAD_GATEWAY, "provider_error", message),
            C::ProviderUnavailable(_) => {
                Self::new(StatusCode::BAD_GATEWAY, "provider_error", message)
            }
            C::NotVerified(_) => Self {
                field: Some("access_token".into()),
                ..Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "channel_not_verified",
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
            W::InvalidKey => Self::new(StatusCode::UNAUTHORIZED, "invalid_widget_key", message),
            W::OriginNotAllowed => Self::new(StatusCode::FORBIDDEN, "origin_not_allowed", message),
            W::RateLimited { retry_after_secs } => Self {
                retry_after_secs: Some(retry_after_secs),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            },
            W::Tenancy(t) => t.into(),
        }
    }
}
