//! `/tickets/{ticket_id}/messages`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::access::write_as;
use super::extract::{path_param, read_keyed};
use super::{respond, ticket_children};
use crate::auth::Credentials;
use crate::db;
use crate::domain::scope::Scope;
use crate::domain::ticket::{NewMessage, NewMessageBody};
use crate::error::ApiError;
use crate::idempotency;
use crate::state::AppState;
use crate::tickets::{self, MessageEnvelope};

/// `GET /tickets/{ticket_id}/messages`: oldest first, paginated.
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
) -> Result<HttpResponse, ApiError> {
    ticket_children(
        state,
        req,
        credentials,
        &[Scope::Read],
        "messages",
        db::messages::list,
        db::messages::cursor_after,
    )
    .await
}

/// `POST /tickets/{ticket_id}/messages`: 201 with the message.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input = read_keyed::<NewMessageBody>(&req, payload, state.config.server.max_body_bytes)
        .await
        .and_then(|(body, key)| Ok((NewMessage::try_from(body)?, key)));
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let outcome = write_as(
        &state,
        &req,
        credentials,
        &[Scope::Write],
        input,
        move |cx, (new, key)| {
            idempotency::run(cx.conn, cx.tenant_id(), key.as_ref(), 201, |conn| {
                tickets::add_message(conn, cx.tenant_id(), &ticket_id, &new)
                    .map(|message| MessageEnvelope { message })
            })
        },
    )
    .await?;
    respond(outcome, StatusCode::CREATED)
}
