//! Liveness and readiness probes; no key needed.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::extract::no_query;
use super::json;
use crate::db::{self, DbError};
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: the process answers.
pub async fn healthz(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    no_query(&req)?;
    json(StatusCode::OK, &json!({ "status": "ok" }))
}

/// `GET /readyz`: the database answers a query.
pub async fn readyz(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    no_query(&req)?;
    state.db.read(db::meta::ping).await.map_err(|e: DbError| {
        log::warn!("readiness check failed: {e}");
        ApiError::unavailable("the database is not answering", 1)
    })?;
    json(StatusCode::OK, &json!({ "status": "ready" }))
}
