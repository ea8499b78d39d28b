//! HTTP: the only module that speaks axum. It owns the router, the middleware stack, the
//! error envelope, the extractors that authenticate callers, the OpenAPI document (generated
//! from the handlers' annotations, so it cannot drift from the routes) and the docs page.

pub mod api;
pub mod assets;
pub mod dashboard;
pub mod docs;
pub mod error;
pub mod extract;
pub mod health;
pub mod middleware;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::http::error::ErrorCode;
use error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CortexLayer API",
        description = "Self-hostable support agent platform. Errors share one envelope: \
            `{\"error\": {\"code\", \"message\", \"request_id\"}}`; codes are listed in docs/API.md.",
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Signup, verification, sessions"),
        (name = "tenant", description = "The caller's tenant and audit log"),
        (name = "team", description = "Members and invitations"),
        (name = "api keys", description = "Server-to-server credentials"),
        (name = "knowledge", description = "Documents and search"),
        (name = "chat", description = "The bot: answers, settings, OpenAI-compatible API"),
        (name = "conversations", description = "Every channel's conversations, for the team"),
        (name = "channels", description = "WhatsApp, Messenger, Instagram and ManyChat connections"),
        (name = "webhooks", description = "Deliveries from messaging providers"),
        (name = "widget", description = "The web widget: keys for tenants, endpoints for visitors' pages"),
        (name = "admin", description = "Platform operators"),
        (name = "operations", description = "Health and documentation"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A member's access token (JWT) or a tenant API key (`ck_…`)",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every route with its OpenAPI description.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::auth::signup))
        .routes(routes!(api::auth::verify_email))
        .routes(routes!(api::auth::resend_verification))
        .routes(routes!(api::auth::request_password_reset))
        .routes(routes!(api::auth::reset_password))
        .routes(routes!(api::auth::login))
        .routes(routes!(api::auth::refresh))
        .routes(routes!(api::auth::logout))
        .routes(routes!(api::auth::accept_invitation))
        .routes(routes!(api::auth::admin_login))
        .routes(routes!(api::tenant::get_tenant, api::tenant::update_tenant))
        .routes(routes!(api::tenant::get_me))
        .routes(routes!(api::tenant::change_password))
        .routes(routes!(
            api::tenant::request_email_change,
            api::tenant::get_email_change,
            api::tenant::cancel_email_change
        ))
        .routes(routes!(api::tenant::confirm_email_change))
        .routes(routes!(
            api::tenant::list_sessions,
            api::tenant::sign_out_everywhere
        ))
        .routes(routes!(api::tenant::list_audit_events))
        .routes(routes!(api::members::list_members))
        .routes(routes!(
            api::members::change_role,
            api::members::remove_member
        ))
        .routes(routes!(
            api::members::create_invitation,
            api::members::list_invitations
        ))
        .routes(routes!(api::members::delete_invitation))
        .routes(routes!(
            api::api_keys::create_api_key,
            api::api_keys::list_api_keys
        ))
        .routes(routes!(api::api_keys::revoke_api_key))
        .merge(
            // Uploads stream through their own size checks (plan limit per file, request
            // allowance overall), so the general body limit does not apply here.
            OpenApiRouter::new()
                .routes(routes!(
                    api::documents::upload_documents,
                    api::documents::list_documents
                ))
                .routes(routes!(api::documents::import_qa))
                .layer(DefaultBodyLimit::disable()),
        )
        .routes(routes!(
            api::documents::get_document,
            api::documents::delete_document
        ))
        .routes(routes!(api::documents::add_qa))
        .routes(routes!(api::documents::add_url))
        .routes(routes!(api::documents::reprocess_document))
        .routes(routes!(api::documents::download_original))
        .routes(routes!(api::documents::list_chunks))
        .routes(routes!(api::documents::search_chunks))
        .routes(routes!(api::chat::chat))
        .routes(routes!(api::chat::get_bot, api::chat::put_bot))
        .routes(routes!(api::chat::chat_completions))
        .routes(routes!(api::conversations::list_conversations))
        .routes(routes!(api::conversations::get_conversation))
        .routes(routes!(
            api::channels::connect_channel,
            api::channels::list_channels
        ))
        .routes(routes!(api::channels::disconnect_channel))
        .routes(routes!(api::channels::start_meta_oauth))
        .routes(routes!(api::channels::meta_oauth_callback))
        .routes(routes!(api::channels::get_meta_oauth))
        .routes(routes!(api::channels::choose_meta_assets))
        .routes(routes!(
            api::webhooks::meta_verify,
            api::webhooks::meta_deliver
        ))
        .routes(routes!(api::webhooks::meta_data_deletion))
        .routes(routes!(api::webhooks::data_deletion_status))
        .routes(routes!(api::webhooks::twilio_deliver))
        .routes(routes!(api::webhooks::twilio_status))
        .routes(routes!(api::webhooks::manychat_deliver))
        .routes(routes!(
            api::widget::create_widget_key,
            api::widget::list_widget_keys
        ))
        .routes(routes!(
            api::widget::update_widget_key,
            api::widget::revoke_widget_key
        ))
        .routes(routes!(api::widget::widget_js))
        .routes(routes!(api::widget::widget_config))
        .routes(routes!(api::widget::widget_message))
        .routes(routes!(api::widget::widget_history))
        .routes(routes!(api::widget::widget_feedback))
        .routes(routes!(api::admin::list_tenants))
        .routes(routes!(api::admin::get_tenant))
        .routes(routes!(api::admin::suspend_tenant))
        .routes(routes!(api::admin::reactivate_tenant))
        .routes(routes!(api::admin::set_tenant_plan))
        .routes(routes!(api::channels::assign_platform_number))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
}

/// The OpenAPI 3.1 document of every endpoint.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut spec = routes().split_for_parts().1;
    declare_common_statuses(&mut spec);
    spec
}

/// Adds to every operation the answers the shared layers give, so generated clients and
/// fuzzers see every status the server can return: authentication (401, 403) where a
/// credential is needed; body reading (400 `invalid_json` / `invalid_multipart`, 413, 415)
/// and validation (422) where a body is taken; 404 where the path holds an id; 429 where
/// attempts are counted; 500 and 503 (the request timeout) everywhere. An operation's own
/// description of a status is kept.
fn declare_common_statuses(spec: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::Operation;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    fn add(op: &mut Operation, status: &str, description: &str) {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| {
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("ErrorBody")))
                                .build(),
                        )
                        .build(),
                )
            });
    }
    for (path, item) in spec.paths.paths.iter_mut() {
        let counted = path.starts_with("/api/v1/auth/")
            || path.starts_with("/widget/v1/")
            || path == "/api/v1/chat"
            || path == "/v1/chat/completions";
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                add(
                    op,
                    "401",
                    "`unauthenticated`: no credential, or one that is invalid or expired",
                );
                add(
                    op,
                    "403",
                    "`forbidden`: the credential's role or scope does not allow this, or `tenant_suspended`",
                );
            }
            let body: Vec<String> = op
                .request_body
                .as_ref()
                .map(|b| b.content.keys().cloned().collect())
                .unwrap_or_default();
            if body.iter().any(|c| c == "application/json") {
                add(
                    op,
                    "400",
                    "`invalid_json`: the body is not JSON of the expected shape",
                );
                add(
                    op,
                    "413",
                    "`payload_too_large`: the body is larger than `CORTEX_MAX_BODY_BYTES`",
                );
                add(
                    op,
                    "415",
                    "`unsupported_media_type`: the body is not `application/json`",
                );
                add(
                    op,
                    "422",
                    "`validation_failed`: a field is missing or invalid; `field` names it",
                );
            }
            if body.iter().any(|c| c == "multipart/form-data") {
                add(
                    op,
                    "400",
                    "`invalid_multipart`: the multipart body could not be read",
                );
                add(
                    op,
                    "413",
                    "`file_too_large`: a file or the request is larger than allowed",
                );
                add(
                    op,
                    "415",
                    "`unsupported_media_type`: not `multipart/form-data`, or a file of an unsupported type",
                );
            }
            if path.contains('{') {
                add(
                    op,
                    "404",
                    "`not_found`: no such object in the caller's tenant (or a malformed id)",
                );
            }
            if counted {
                add(
                    op,
                    "429",
                    "`rate_limited`: too many attempts; `Retry-After` says when to try again",
                );
            }
            add(
                op,
                "500",
                "`internal_error`: a fault on the server; quote the request id",
            );
            add(
                op,
                "503",
                "the request took longer than `CORTEX_REQUEST_TIMEOUT_SECS`",
            );
        }
    }
}

/// The whole application: API, docs and middleware.
pub fn router(state: AppState) -> Router {
    let (api, mut spec) = routes().split_for_parts();
    declare_common_statuses(&mut spec);
    let docs = docs::Docs::new(&spec);
    let settings = state.settings.clone();
    api.merge(docs.router())
        .merge(assets::router())
        .merge(dashboard::router())
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::RouteNotFound,
                "no such route",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                "method not allowed on this route",
            )
        })
        .with_state(state)
        .layer(DefaultBodyLimit::max(settings.http.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(settings.http.request_timeout_secs),
        ))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::internal(anyhow::anyhow!(
                "handler panicked"
            )))
        }))
        .layer(axum::middleware::from_fn(middleware::request_context))
        .layer(cors(&settings.http.cors_allowed_origins))
}

fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static(middleware::REQUEST_ID_HEADER),
        ])
        .expose_headers([
            HeaderName::from_static(middleware::REQUEST_ID_HEADER),
            header::RETRY_AFTER,
        ])
        .allow_credentials(true)
        .max_age(Duration::from_secs(600))
}
