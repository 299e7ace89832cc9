//! The demo's own hook receiver, mounted only by `threada demo`: it records the calls
//! signed with the demo tenant's secret that arrive at `/demo/hooks/...`, and
//! `GET /demo/hooks` lists them to a demo key, credentials redacted.

use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::access::read_as;
use super::extract::{no_query, read_body};
use super::middleware::catch_panic;
use super::{json, resource};
use crate::auth::Credentials;
use crate::clock::Timestamp;
use crate::db;
use crate::demo::{ReceivedHook, signature_is_valid};
use crate::domain::action::{REDACTED, is_credential_header};
use crate::domain::scope::Scope;
use crate::error::ApiError;
use crate::state::AppState;

const MAX_BODY_BYTES: usize = 65_536;

/// The demo's hook receiver routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/demo/hooks", "GET").route(super::get().to(list)))
        .service(
            web::resource("/demo/hooks/{tail:.*}")
                .to(receive)
                .wrap(from_fn(catch_panic)),
        );
}

/// Records a signed call; anything else is a 401 and is not recorded.
async fn receive(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let Some(hooks) = &state.demo_hooks else {
        return super::no_route().await;
    };
    let body = read_body(&req, payload, MAX_BODY_BYTES).await?;
    let signature = req
        .headers()
        .get("x-threada-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let signed = body.clone();
    let valid = state
        .db
        .read(move |conn| {
            let secret = db::tenants::find_demo(conn)?
                .map(|tenant| db::tenants::action_settings(conn, &tenant.tenant_id))
                .transpose()?
                .flatten()
                .map(|settings| settings.signing_secret);
            Ok::<_, ApiError>(secret.is_some_and(|secret| {
                signature_is_valid(&secret, &signature, &signed, Timestamp::now())
            }))
        })
        .await?;
    if !valid {
        return Err(ApiError::unauthenticated(
            "the demo receiver records only calls signed with the demo tenant's signing secret \
             (X-Threada-Signature)",
        ));
    }
    let headers = req
        .headers()
        .iter()
        .map(|(name, value)| {
            let shown = if is_credential_header(name.as_str()) {
                REDACTED.to_string()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_string(), shown)
        })
        .collect();
    let kept = &body[..];
    hooks.record(ReceivedHook {
        method: req.method().to_string(),
        path: req.path().trim_start_matches("/demo").to_string(),
        headers,
        body: String::from_utf8_lossy(kept).into_owned(),
        received_at: Timestamp::now(),
    });
    json(StatusCode::OK, &json!({ "received": true }))
}

/// What arrived, for a key of the demo tenant.
async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
) -> Result<HttpResponse, ApiError> {
    read_as(
        &state,
        &req,
        credentials,
        &[Scope::Read],
        no_query(&req),
        |cx, ()| {
            let demo =
                db::tenants::action_settings(cx.conn, cx.tenant_id())?.is_some_and(|s| s.demo);
            if !demo {
                return Err(ApiError::forbidden(
                    "only keys of the demo tenant can read the demo receiver",
                ));
            }
            Ok(())
        },
    )
    .await?;
    let items = state
        .demo_hooks
        .as_ref()
        .map(|h| h.list())
        .unwrap_or_default();
    json(StatusCode::OK, &json!({ "items": items }))
}
