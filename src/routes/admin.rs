//! `/api/v1/admin`: tenants and keys over HTTP, for operators.
//!
//! Authenticated with `Authorization: Bearer <token>`, the token read at startup from
//! the environment variable named by `admin.token_env`. Without it, every admin route
//! answers 401 and says how to turn the API on.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, Scope, web};
use serde::{Deserialize, Serialize};

use super::extract::{parse_json, path_param, read_json, require_json_content_type};
use super::{ADMIN, json, resource};
use crate::accounts;
use crate::crypto::{constant_time_eq, sha256};
use crate::domain::present;
use crate::domain::tenant::{
    DEFAULT_GRACE, NewKey, NewKeyBody, NewTenant, NewTenantBody, TenantPatch, parse_grace,
};
use crate::error::ApiError;
use crate::state::AppState;

pub fn scope() -> Scope {
    web::scope(ADMIN)
        .service(
            resource("/tenants", "GET, POST")
                .route(web::get().to(list_tenants))
                .route(web::post().to(create_tenant)),
        )
        .service(
            resource("/tenants/{tenant_id}", "GET, PATCH")
                .route(web::get().to(get_tenant))
                .route(web::patch().to(update_tenant)),
        )
        .service(
            resource("/tenants/{tenant_id}/rotate-signing-secret", "POST")
                .route(web::post().to(rotate_signing_secret)),
        )
        .service(
            resource("/tenants/{tenant_id}/keys", "GET, POST")
                .route(web::get().to(list_keys))
                .route(web::post().to(create_key)),
        )
        .service(
            resource("/tenants/{tenant_id}/keys/{key_id}/rotate", "POST")
                .route(web::post().to(rotate_key)),
        )
        .service(
            resource("/tenants/{tenant_id}/keys/{key_id}/revoke", "POST")
                .route(web::post().to(revoke_key)),
        )
        // Key ids are unique across tenants: like the CLI, these need only the key id.
        .service(resource("/keys/{key_id}/rotate", "POST").route(web::post().to(rotate_key)))
        .service(resource("/keys/{key_id}/revoke", "POST").route(web::post().to(revoke_key)))
}

/// Checks `Authorization: Bearer <admin token>` in constant time.
fn authorize(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(expected) = &state.admin_token_hash else {
        return Err(ApiError::unauthenticated(format!(
            "the admin API is disabled: set the {} environment variable and restart the server",
            state.config.admin.token_env
        )));
    };
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unauthenticated("missing Authorization: Bearer <admin token>"))?;
    let token = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| ApiError::unauthenticated("use Authorization: Bearer <admin token>"))?;
    if !constant_time_eq(&sha256(token.as_bytes()), expected) {
        return Err(ApiError::unauthenticated("invalid admin token"));
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct Items<T> {
    items: Vec<T>,
}

async fn create_tenant(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &req)?;
    let body = read_json::<NewTenantBody>(&req, payload, state.config.server.max_body_bytes, false)
        .await?;
    let new = NewTenant::try_from(body.value)?;
    let tenant = state
        .db
        .writer()
        .run(move |conn| accounts::create_tenant(conn, &new))
        .await?;
    json(StatusCode::CREATED, &tenant)
}

async fn list_tenants(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &req)?;
    let items = state.db.read(crate::db::tenants::list).await?;
    json(StatusCode::OK, &Items { items })
}

async fn get_tenant(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &req)?;
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let tenant = state
        .db
        .read(move |conn| accounts::get_tenant(conn, &tenant_id))
        .await?;
    json(StatusCode::OK, &tenant)
}

async fn update_tenant(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &req)?;
    let body = read_json::<NewTenantBody>(&req, payload, state.config.server.max_body_bytes, false)
        .await?;
    let patch = TenantPatch::try_from(body.value)?;
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let tenant = state
        .db
        .writer()
        .run(move |conn| accounts::update_tenant(conn, &tenant_id, &patch))
        .await?;
    json(StatusCode::OK, &tenant)
}

async fn rotate_signing_secret(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &req)?;
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let tenant = state
        .db
        .writer()
        .run(move |conn| accounts::rotate_signing_secret(conn, &tenant_id))
        .await?;
    json(StatusCode::OK, &tenant)
}

async fn create_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &req)?;
    let body =
        read_json::<NewKeyBody>(&req, payload, state.config.server.max_body_bytes, false).await?;
    let new = NewKey::try_from(body.value)?;
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let key = state
        .db
        .writer()
        .run(move |conn| accounts::create_key(conn, &tenant_id, &new))
        .await?;
    json(StatusCode::CREATED, &key)
}

async fn list_keys(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    authorize(&state, &req)?;
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let items = state
        .db
        .read(move |conn| accounts::list_keys(conn, &tenant_id))
        .await?;
    json(StatusCode::OK, &Items { items })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default, deserialize_with = "present")]
    grace: Option<String>,
}

async fn rotate_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &req)?;
    // The body is optional: without one, the default grace applies.
    let grace = if body.iter().all(u8::is_ascii_whitespace) {
        DEFAULT_GRACE
    } else {
        require_json_content_type(&req)?;
        let body = parse_json::<RotateBody>(&body, false)?;
        match body.value.grace {
            Some(grace) => parse_grace(&grace, "grace")?,
            None => DEFAULT_GRACE,
        }
    };
    let tenant_id = req.match_info().get("tenant_id").map(str::to_string);
    let key_id = path_param(&req, "key_id").to_string();
    let key = state
        .db
        .writer()
        .run(move |conn| accounts::rotate_key(conn, tenant_id.as_deref(), &key_id, grace))
        .await?;
    json(StatusCode::OK, &key)
}

async fn revoke_key(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &req)?;
    let tenant_id = req.match_info().get("tenant_id").map(str::to_string);
    let key_id = path_param(&req, "key_id").to_string();
    let key = state
        .db
        .writer()
        .run(move |conn| accounts::revoke_key(conn, tenant_id.as_deref(), &key_id))
        .await?;
    json(StatusCode::OK, &key)
}
