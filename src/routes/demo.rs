//! The demo's own hook receiver, mounted only by `threada demo`: it records what
//! actions send to `/demo/hooks/...`, and `GET /demo/hooks` lists it.

use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::middleware::catch_panic;
use super::{json, resource};
use crate::clock::Timestamp;
use crate::demo::ReceivedHook;
use crate::error::ApiError;
use crate::state::AppState;

const MAX_BODY_BYTES: usize = 65_536;

/// The demo's hook receiver routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/demo/hooks", "GET").route(web::get().to(list)))
        .service(
            web::resource("/demo/hooks/{tail:.*}")
                .to(receive)
                .wrap(from_fn(catch_panic)),
        );
}

async fn receive(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let Some(hooks) = &state.demo_hooks else {
        return super::no_route().await;
    };
    let headers = req
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let kept = &body[..body.len().min(MAX_BODY_BYTES)];
    hooks.record(ReceivedHook {
        method: req.method().to_string(),
        path: req.path().trim_start_matches("/demo").to_string(),
        headers,
        body: String::from_utf8_lossy(kept).into_owned(),
        received_at: Timestamp::now(),
    });
    json(StatusCode::OK, &json!({ "received": true }))
}

async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let items = state
        .demo_hooks
        .as_ref()
        .map(|h| h.list())
        .unwrap_or_default();
    json(StatusCode::OK, &json!({ "items": items }))
}
