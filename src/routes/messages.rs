//! `/tickets/{ticket_id}/messages`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{ListPage, json};
use crate::auth::{Credentials, Scope, read_as, write_as};
use crate::db;
use crate::domain::listing::{Page, QueryParams};
use crate::domain::ticket::{NewMessage, NewMessageBody};
use crate::error::ApiError;
use crate::extract::{path_param, read_json};
use crate::idempotency::{self, Idempotency};
use crate::startup::AppState;
use crate::tickets::{MessageEnvelope, add_message};

/// `GET /tickets/{ticket_id}/messages`: oldest first, paginated.
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
) -> Result<HttpResponse, ApiError> {
    let page = QueryParams::parse(req.query_string(), &["limit", "page_token"])
        .and_then(|p| Page::parse(&p));
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let list = read_as(
        &state,
        &req,
        credentials,
        &[Scope::Read],
        move |conn, caller, state| {
            let page = page?;
            let binding = format!("messages|{}|{ticket_id}", caller.tenant_id);
            let after = page
                .token
                .as_deref()
                .map(|token| state.tokens.open(&binding, token))
                .transpose()?;
            if !db::tickets::exists(conn, &caller.tenant_id, &ticket_id)? {
                return Err(ApiError::not_found("ticket_id", "ticket"));
            }
            let (items, more) = db::messages::list(
                conn,
                &caller.tenant_id,
                &ticket_id,
                after.as_ref(),
                page.limit,
            )?;
            let next_page_token = match items.last() {
                Some(last) if more => Some(
                    state
                        .tokens
                        .issue(&binding, &db::messages::cursor_after(last)),
                ),
                _ => None,
            };
            Ok(ListPage {
                items,
                next_page_token,
            })
        },
    )
    .await?;
    json(StatusCode::OK, &list)
}

/// `POST /tickets/{ticket_id}/messages`: 201 with the message.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency::key_from(&req);
    let keyed = matches!(key, Ok(Some(_)));
    let body =
        read_json::<NewMessageBody>(&req, payload, state.config.server.max_body_bytes, keyed).await;
    let input = (|| {
        let key = key?;
        let body = body?;
        let new = NewMessage::try_from(body.value)?;
        let guard =
            key.map(|k| Idempotency::new(k, &req, body.canonical.as_deref().unwrap_or_default()));
        Ok::<_, ApiError>((new, guard))
    })();
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
