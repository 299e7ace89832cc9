//! `GET /api/v1/public/openapi.json`: the OpenAPI 3.1 description of the public API,
//! embedded from `docs/openapi.json` at build time. No key needed.

use actix_web::{HttpRequest, HttpResponse};

use super::extract::no_query;
use crate::error::ApiError;

/// The document, as kept in the repository.
pub const DOCUMENT: &str = include_str!("../../docs/openapi.json");

/// The served document.
pub async fn document(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    no_query(&req)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT))
}
