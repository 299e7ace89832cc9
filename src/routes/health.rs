//! Liveness and readiness probes; no key needed.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::json;
use crate::db::DbError;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Result<HttpResponse, ApiError> {
    json(StatusCode::OK, &json!({ "status": "ok" }))
}

/// `GET /readyz`: the database answers a query.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state
        .db
        .read(|conn| {
            conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
                .map_err(DbError::from)
        })
        .await
        .map_err(|e: DbError| {
            log::warn!("readiness check failed: {e}");
            ApiError::unavailable("the database is not answering", 1)
        })?;
    json(StatusCode::OK, &json!({ "status": "ready" }))
}
