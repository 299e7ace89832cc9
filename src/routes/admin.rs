//! `/api/v1/admin`: tenants and keys over HTTP, for operators.
//!
//! Authenticated with `Authorization: Bearer <token>`, the token read at startup from
//! the environment variable named by `admin.token_env`. Without it, every admin route
//! answers 401 and says how to turn the API on.

use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, Scope, web};
use rusqlite::Connection;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::extract::{
    no_query, parse_json, path_param, read_body, read_json, require_json_content_type,
};
use super::{ADMIN, ListPage, json, resource};
use crate::accounts;
use crate::domain::erasure::{ContactSelector, ContactSelectorBody};
use crate::domain::event::{SubscriptionBody, SubscriptionChange};
use crate::domain::listing::{Cursor, Page, QueryParams};
use crate::domain::present;
use crate::domain::tenant::{
    DEFAULT_GRACE, NewKey, NewKeyBody, NewTenant, NewTenantBody, TenantPatch, parse_grace,
};
use crate::error::ApiError;
use crate::lifecycle;
use crate::state::AppState;
use crate::webhooks;

/// Every admin route, under `/api/v1/admin`.
pub fn scope() -> Scope {
    web::scope(ADMIN)
        .service(
            resource("/tenants", "GET, POST")
                .route(super::get().to(list_tenants))
                .route(web::post().to(create_tenant)),
        )
        .service(
            resource("/tenants/{tenant_id}", "GET, PATCH")
                .route(super::get().to(get_tenant))
                .route(web::patch().to(update_tenant)),
        )
        .service(
            resource("/tenants/{tenant_id}/rotate-signing-secret", "POST")
                .route(web::post().to(rotate_signing_secret)),
        )
        .service(
            resource("/tenants/{tenant_id}/keys", "GET, POST")
                .route(super::get().to(list_keys))
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
        .service(
            resource("/tenants/{tenant_id}/webhooks", "GET, POST")
                .route(super::get().to(list_webhooks))
                .route(web::post().to(create_webhook)),
        )
        .service(
            resource(
                "/tenants/{tenant_id}/webhooks/{subscription_id}",
                "GET, PATCH, DELETE",
            )
            .route(super::get().to(get_webhook))
            .route(web::patch().to(update_webhook))
            .route(web::delete().to(delete_webhook)),
        )
        .service(
            resource(
                "/tenants/{tenant_id}/webhooks/{subscription_id}/deliveries",
                "GET",
            )
            .route(super::get().to(list_deliveries)),
        )
        .service(
            resource(
                "/tenants/{tenant_id}/deliveries/{delivery_id}/replay",
                "POST",
            )
            .route(web::post().to(replay_delivery)),
        )
        .service(
            resource("/tenants/{tenant_id}/contacts/erase", "POST")
                .route(web::post().to(erase_contact)),
        )
        .service(resource("/tenants/{tenant_id}/audit", "GET").route(super::get().to(audit_log)))
}

/// Proof that a request carries the admin token: handlers take it as their first
/// extractor, so a request without it is refused before its body is read.
#[derive(Debug)]
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let checked = match req.app_data::<web::Data<AppState>>() {
            Some(state) => not_throttled(state, req)
                .and_then(|()| authorize(state, req))
                .and_then(|()| known_query(req))
                .map(|()| Admin),
            None => Err(ApiError::internal("the admin API has no state")),
        };
        std::future::ready(checked)
    }
}

/// The admin token check of every admin route, for routes outside `/api/v1/admin`
/// (`/metrics`): throttling first, then `Authorization: Bearer <admin token>`.
pub fn require_admin(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    not_throttled(state, req).and_then(|()| authorize(state, req))
}

/// While an address is throttled for failed authentications, its admin requests are
/// refused without looking at the token, so that guessing it gains nothing.
pub fn not_throttled(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    state.refuse_if_throttled(&client_address(req))
}

/// The client's address as seen on the socket.
pub fn client_address(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

/// Admin endpoints take no query parameters, but for the lists of deliveries.
fn known_query(req: &HttpRequest) -> Result<(), ApiError> {
    if req.path().ends_with("/deliveries") {
        QueryParams::parse(req.query_string(), &["limit", "page_token"]).map(|_| ())
    } else {
        no_query(req)
    }
}

/// Checks `Authorization: Bearer <admin token>` in constant time.
fn authorize(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    // Disabled before anything else, so that the answer says so whatever was sent.
    if state.admin_token_hash.is_none() {
        return state.check_admin_token("");
    }
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
    state.check_admin_token(token)
}

#[derive(Debug, Serialize)]
struct Items<T> {
    items: Vec<T>,
}

/// Runs `work` on a pooled read connection.
async fn read<T, F>(state: &AppState, work: F) -> Result<T, ApiError>
where
    F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    state.db.read(work).await
}

/// Opens the input, then runs `work` as one writer job.
async fn write<I, T, F>(
    state: &AppState,
    input: Result<I, ApiError>,
    work: F,
) -> Result<T, ApiError>
where
    F: FnOnce(&Connection, I) -> Result<T, ApiError> + Send + 'static,
    I: Send + 'static,
    T: Send + 'static,
{
    let input = input?;
    state.db.writer().run(move |conn| work(conn, input)).await
}

/// A JSON body parsed into a domain value.
async fn body<B, T>(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<T, ApiError>
where
    B: DeserializeOwned,
    T: TryFrom<B, Error = ApiError>,
{
    let body = read_json::<B>(req, payload, state.config.server.max_body_bytes, false).await?;
    T::try_from(body.value)
}

async fn create_tenant(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let new = body::<NewTenantBody, NewTenant>(&state, &req, payload).await;
    let tenant = write(&state, new, |conn, new| accounts::create_tenant(conn, &new)).await?;
    json(StatusCode::CREATED, &tenant)
}

async fn list_tenants(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let items = read(&state, |conn| Ok(crate::db::tenants::list(conn)?)).await?;
    json(StatusCode::OK, &Items { items })
}

async fn get_tenant(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let tenant = read(&state, move |conn| accounts::get_tenant(conn, &tenant_id)).await?;
    json(StatusCode::OK, &tenant)
}

async fn update_tenant(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let patch = body::<NewTenantBody, TenantPatch>(&state, &req, payload).await;
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let tenant = write(&state, patch, move |conn, patch| {
        accounts::update_tenant(conn, &tenant_id, &patch)
    })
    .await?;
    json(StatusCode::OK, &tenant)
}

async fn rotate_signing_secret(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let tenant = write(&state, Ok(()), move |conn, ()| {
        accounts::rotate_signing_secret(conn, &tenant_id)
    })
    .await?;
    json(StatusCode::OK, &tenant)
}

async fn create_key(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let new = body::<NewKeyBody, NewKey>(&state, &req, payload).await;
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let key = write(&state, new, move |conn, new| {
        accounts::create_key(conn, &tenant_id, &new)
    })
    .await?;
    json(StatusCode::CREATED, &key)
}

async fn list_keys(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let items = read(&state, move |conn| accounts::list_keys(conn, &tenant_id)).await?;
    json(StatusCode::OK, &Items { items })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default, deserialize_with = "present")]
    grace: Option<String>,
}

/// The optional rotation body: without one, the default grace applies.
fn parse_grace_body(req: &HttpRequest, body: &[u8]) -> Result<Duration, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DEFAULT_GRACE);
    }
    require_json_content_type(req)?;
    match parse_json::<RotateBody>(body, false)?.value.grace {
        Some(grace) => parse_grace(&grace, "grace"),
        None => Ok(DEFAULT_GRACE),
    }
}

async fn rotate_key(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, state.config.server.max_body_bytes).await;
    let grace = body.and_then(|body| parse_grace_body(&req, &body));
    let tenant_id = req.match_info().get("tenant_id").map(str::to_string);
    let key_id = path_param(&req, "key_id").to_string();
    let key = write(&state, grace, move |conn, grace| {
        accounts::rotate_key(conn, tenant_id.as_deref(), &key_id, grace)
    })
    .await?;
    json(StatusCode::OK, &key)
}

async fn revoke_key(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = req.match_info().get("tenant_id").map(str::to_string);
    let key_id = path_param(&req, "key_id").to_string();
    let key = write(&state, Ok(()), move |conn, ()| {
        accounts::revoke_key(conn, tenant_id.as_deref(), &key_id)
    })
    .await?;
    json(StatusCode::OK, &key)
}

async fn create_webhook(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body =
        read_json::<SubscriptionBody>(&req, payload, state.config.server.max_body_bytes, false)
            .await
            .and_then(|body| SubscriptionChange::new_subscription(body.value));
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let policy = state.action_policy.clone();
    let created = write(&state, body, move |conn, change| {
        webhooks::create(conn, &tenant_id, &change, &policy)
    })
    .await?;
    json(StatusCode::CREATED, &created)
}

async fn list_webhooks(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let items = read(&state, move |conn| {
        accounts::get_tenant(conn, &tenant_id)?;
        Ok(crate::db::webhooks::list(conn, &tenant_id)?)
    })
    .await?;
    json(StatusCode::OK, &Items { items })
}

async fn get_webhook(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let id = path_param(&req, "subscription_id").to_string();
    let found = read(&state, move |conn| {
        webhooks::get(conn, Some(&tenant_id), &id)
    })
    .await?;
    json(StatusCode::OK, &found)
}

async fn update_webhook(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let change = body::<SubscriptionBody, SubscriptionChange>(&state, &req, payload).await;
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let id = path_param(&req, "subscription_id").to_string();
    let policy = state.action_policy.clone();
    let updated = write(&state, change, move |conn, change| {
        webhooks::update(conn, Some(&tenant_id), &id, &change, &policy)
    })
    .await?;
    json(StatusCode::OK, &updated)
}

async fn delete_webhook(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let id = path_param(&req, "subscription_id").to_string();
    write(&state, Ok(()), move |conn, ()| {
        webhooks::delete(conn, Some(&tenant_id), &id)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list_deliveries(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let page = QueryParams::parse(req.query_string(), &["limit", "page_token"])
        .and_then(|p| Page::parse(&p))?;
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let id = path_param(&req, "subscription_id").to_string();
    let shared = state.clone();
    let listed = read(&state, move |conn| {
        webhooks::get(conn, Some(&tenant_id), &id)?;
        let binding = format!("deliveries|{tenant_id}|{id}");
        let after = page
            .token
            .as_deref()
            .map(|t| shared.tokens.open(&binding, t))
            .transpose()?;
        let (items, more) =
            crate::db::webhooks::deliveries(conn, &tenant_id, &id, after.as_ref(), page.limit)?;
        let next_page_token = match items.last() {
            Some(last) if more => {
                let cursor = Cursor {
                    key: 0,
                    id: last.delivery_id.clone(),
                };
                Some(shared.tokens.issue(&binding, &cursor))
            }
            _ => None,
        };
        Ok(ListPage {
            items,
            next_page_token,
        })
    })
    .await?;
    json(StatusCode::OK, &listed)
}

async fn replay_delivery(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let id = path_param(&req, "delivery_id").to_string();
    let replayed = write(&state, Ok(()), move |conn, ()| {
        webhooks::replay(conn, &tenant_id, &id)
    })
    .await?;
    json(StatusCode::OK, &replayed)
}

/// `POST /tenants/{tenant_id}/contacts/erase` with one of `email`, `phone`,
/// `external_id`, `contact_id`: 200 with what was removed and the audit record's id.
async fn erase_contact(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let selector = body::<ContactSelectorBody, ContactSelector>(&state, &req, payload).await;
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let erased = write(&state, selector, move |conn, selector| {
        lifecycle::erase_contact(conn, &tenant_id, &selector, lifecycle::actor::ADMIN_API)
    })
    .await?;
    json(StatusCode::OK, &erased)
}

/// `GET /tenants/{tenant_id}/audit`: the latest 100 erasures, newest first.
async fn audit_log(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let items = read(&state, move |conn| {
        accounts::get_tenant(conn, &tenant_id)?;
        Ok(crate::db::audit::recent(conn, &tenant_id, 100)?)
    })
    .await?;
    json(StatusCode::OK, &Items { items })
}
