//! The backend itself: its name and readiness.

use async_trait::async_trait;

use super::Result;

#[async_trait]
pub trait Backend: Send + Sync {
    /// Backend name for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// Database reachable and every migration this binary knows applied.
    async fn readiness(&self) -> Result<()>;
}
