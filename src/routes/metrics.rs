//! `GET /metrics`: what the server is doing, in the Prometheus (OpenMetrics) text
//! format, when `metrics.enabled`. Served on the `admin.bind` listener when one is
//! configured (without a token: that listener is the operator's), else on the main
//! listener behind the admin token. Off, or on the main listener while an admin
//! listener exists, it is an unknown route.

use actix_web::{HttpRequest, HttpResponse, web};

use super::admin::require_admin;
use super::extract::no_query;
use super::{no_route, on_admin_listener};
use crate::error::ApiError;
use crate::metrics::{CONTENT_TYPE, Snapshot};
use crate::state::AppState;

/// `GET /metrics`.
pub async fn metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if !state.metrics.enabled() {
        return no_route().await;
    }
    if !on_admin_listener(&req) {
        if !state.config.admin.bind.is_empty() {
            return no_route().await;
        }
        require_admin(&state, &req)?;
    }
    no_query(&req)?;
    let path = &state.config.database.path;
    let size = |suffix: &str| {
        std::fs::metadata(format!("{}{suffix}", path.display())).map_or(0, |m| m.len())
    };
    let (running, queued) = state.actions.load();
    let snapshot = Snapshot {
        database_bytes: size(""),
        wal_bytes: size("-wal"),
        actions_running: running as u64,
        actions_queued: queued as u64,
    };
    let body = state
        .metrics
        .render(snapshot)
        .ok_or_else(|| ApiError::internal("the metrics could not be written"))?;
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(body))
}
