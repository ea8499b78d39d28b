//! Liveness and readiness probes for load balancers and orchestrators.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;

#[derive(Serialize, ToSchema)]
pub struct HealthView {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// Storage backend: `sqlite` or `postgres`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
}

/// Liveness: the process is up
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Up", body = HealthView)))]
pub async fn healthz() -> Json<HealthView> {
    Json(HealthView {
        status: "ok",
        database: None,
    })
}

/// Readiness: the database answers and every migration is applied
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = HealthView),
        (status = 503, description = "Not ready", body = HealthView),
    ))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<HealthView>) {
    let (backend, ready) = state.readiness().await;
    let database = Some(backend);
    match ready {
        Ok(()) => (
            StatusCode::OK,
            Json(HealthView {
                status: "ok",
                database,
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(HealthView {
                    status: "unavailable",
                    database,
                }),
            )
        }
    }
}
