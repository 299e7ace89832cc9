//! `/tickets/{ticket_id}/messages`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{ListPage, json};
use crate::auth::{Scope, authenticate};
use crate::db;
use crate::domain::listing::{Page, QueryParams};
use crate::domain::ticket::{NewMessage, NewMessageBody};
use crate::error::ApiError;
use crate::extract::{path_param, read_json};
use crate::idempotency::{self, Idempotency};
use crate::startup::AppState;
use crate::tickets::{MessageEnvelope, add_message};

/// `GET /tickets/{ticket_id}/messages`: oldest first, paginated.
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req).await?;
    caller.require(Scope::Read)?;
    let page = Page::parse(&QueryParams::parse(
        req.query_string(),
        &["limit", "page_token"],
    )?)?;
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let binding = format!("messages|{}|{ticket_id}", caller.tenant_id);
    let after = page
        .token
        .as_deref()
        .map(|token| state.tokens.open(&binding, token))
        .transpose()?;
    let tenant_id = caller.tenant_id;
    let (items, more) = state
        .db
        .read(move |conn| {
            if !db::tickets::exists(conn, &tenant_id, &ticket_id)? {
                return Err(ApiError::not_found("ticket_id", "ticket"));
            }
            Ok(db::messages::list(
                conn,
                &tenant_id,
                &ticket_id,
                after.as_ref(),
                page.limit,
            )?)
        })
        .await?;
    let next_page_token = match items.last() {
        Some(last) if more => Some(
            state
                .tokens
                .issue(&binding, &db::messages::cursor_after(last)),
        ),
        _ => None,
    };
    json(
        StatusCode::OK,
        &ListPage {
            items,
            next_page_token,
        },
    )
}

/// `POST /tickets/{ticket_id}/messages`: 201 with the message.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req).await?;
    caller.require(Scope::Write)?;
    let key = idempotency::key_from(&req)?;
    let body = read_json::<NewMessageBody>(
        &req,
        payload,
        state.config.server.max_body_bytes,
        key.is_some(),
    )
    .await?;
    let new = NewMessage::try_from(body.value)?;
    let guard =
        key.map(|k| Idempotency::new(k, &req, body.canonical.as_deref().unwrap_or_default()));
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let tenant_id = caller.tenant_id;
    let outcome = state
        .db
        .writer()
        .run(move |conn| {
            idempotency::run(
                conn,
                &tenant_id,
                guard.as_ref(),
                StatusCode::CREATED,
                |conn| {
                    add_message(conn, &tenant_id, &ticket_id, &new)
                        .map(|message| MessageEnvelope { message })
                },
            )
        })
        .await?;
    idempotency::respond(outcome, StatusCode::CREATED)
}
