//! `/tickets/{ticket_id}/messages`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::ticket_children;
use crate::auth::{Credentials, Scope, write_as};
use crate::db;
use crate::domain::ticket::{NewMessage, NewMessageBody};
use crate::error::ApiError;
use crate::extract::path_param;
use crate::idempotency;
use crate::startup::AppState;
use crate::tickets::{MessageEnvelope, add_message};

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
    let input = idempotency::read_keyed::<NewMessageBody>(
        &req,
        payload,
        state.config.server.max_body_bytes,
    )
    .await
    .and_then(|(body, guard)| Ok((NewMessage::try_from(body)?, guard)));
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let outcome = write_as(
        &state,
        &req,
        credentials,
        &[Scope::Write],
        move |conn, caller, _| {
            let (new, guard) = input?;
            idempotency::run(
                conn,
                &caller.tenant_id,
                guard.as_ref(),
                StatusCode::CREATED,
                |conn| {
                    add_message(conn, &caller.tenant_id, &ticket_id, &new)
                        .map(|message| MessageEnvelope { message })
                },
            )
        },
    )
    .await?;
    idempotency::respond(outcome, StatusCode::CREATED)
}
