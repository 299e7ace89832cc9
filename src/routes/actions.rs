//! `/tickets/{ticket_id}/actions`: run a `custom_http` call and read past ones.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::access::{read_as, write_as};
use super::extract::{no_query, path_param, read_keyed};
use super::{json, respond, ticket_children};
use crate::actions::run::{self, Start};
use crate::auth::{Credentials, Needs};
use crate::db;
use crate::db::actions::ActionEnvelope;
use crate::domain::action::ActionBody;
use crate::domain::scope::Scope;
use crate::error::ApiError;
use crate::state::AppState;

/// Reading actions takes `support.read` or `support.actions`.
const READERS: Needs = &[Scope::Read, Scope::Actions];

/// `POST /tickets/{ticket_id}/actions`: records the action as running, makes the call
/// on the action pool, records the outcome, and answers 201 with it (also when the
/// call failed: `status` says so).
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input = read_keyed::<ActionBody>(&req, payload, state.config.server.max_body_bytes).await;
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let start = write_as(
        &state,
        &req,
        credentials,
        &[Scope::Actions],
        input,
        move |cx, (body, key)| {
            run::begin(
                cx.conn,
                cx.caller,
                &ticket_id,
                body,
                key.as_ref(),
                cx.state.action_runtime(),
            )
        },
    )
    .await?;
    let recorded = match start {
        Start::Replay(earlier) => return respond(earlier, StatusCode::CREATED),
        Start::Call(recorded) => *recorded,
    };
    let action = run::complete(recorded, &state.actions, state.db.writer()).await?;
    json(StatusCode::CREATED, &ActionEnvelope { action: &action })
}

/// `GET /tickets/{ticket_id}/actions`: newest first, paginated.
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
) -> Result<HttpResponse, ApiError> {
    ticket_children(
        state,
        req,
        credentials,
        READERS,
        "actions",
        db::actions::list,
        db::actions::cursor_after,
    )
    .await
}

/// `GET /tickets/{ticket_id}/actions/{action_id}`.
pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
) -> Result<HttpResponse, ApiError> {
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let action_id = path_param(&req, "action_id").to_string();
    let action = read_as(
        &state,
        &req,
        credentials,
        READERS,
        no_query(&req),
        move |cx, ()| {
            db::actions::get(cx.conn, cx.tenant_id(), &ticket_id, &action_id)?
                .ok_or_else(|| ApiError::not_found("action_id", "action"))
        },
    )
    .await?;
    json(StatusCode::OK, &ActionEnvelope { action: &action })
}
