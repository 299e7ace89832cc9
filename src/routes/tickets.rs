//! `/tickets` and `/tickets/{ticket_id}`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{ListPage, json};
use crate::auth::{Scope, authenticate};
use crate::db;
use crate::db::tickets::cursor_after;
use crate::domain::listing::TicketQuery;
use crate::domain::ticket::{NewTicket, NewTicketBody, TicketPatch, TicketPatchBody};
use crate::error::ApiError;
use crate::extract::{path_param, read_json};
use crate::idempotency::{self, Idempotency};
use crate::startup::AppState;
use crate::tickets::{TicketEnvelope, create_ticket, update_ticket};

/// `GET /tickets`: one keyset page of the tenant's tickets.
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req).await?;
    caller.require(Scope::Read)?;
    let query = TicketQuery::parse(req.query_string())?;
    let binding = format!("tickets|{}|{}", caller.tenant_id, query.binding());
    let after = query
        .page
        .token
        .as_deref()
        .map(|token| state.tokens.open(&binding, token))
        .transpose()?;
    let sort = query.sort;
    let tenant_id = caller.tenant_id;
    let (items, more) = state
        .db
        .read(move |conn| {
            db::tickets::list(
                conn,
                &tenant_id,
                &query.filter,
                query.sort,
                after.as_ref(),
                query.page.limit,
            )
        })
        .await?;
    let next_page_token = match items.last() {
        Some(last) if more => Some(state.tokens.issue(&binding, &cursor_after(last, sort))),
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

/// `POST /tickets`: 201 with the new ticket, its contact and first message.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req).await?;
    caller.require(Scope::Write)?;
    let key = idempotency::key_from(&req)?;
    let body = read_json::<NewTicketBody>(
        &req,
        payload,
        state.config.server.max_body_bytes,
        key.is_some(),
    )
    .await?;
    let new = NewTicket::try_from(body.value)?;
    let guard =
        key.map(|k| Idempotency::new(k, &req, body.canonical.as_deref().unwrap_or_default()));
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
                    create_ticket(conn, &tenant_id, &new).map(|ticket| TicketEnvelope { ticket })
                },
            )
        })
        .await?;
    idempotency::respond(outcome, StatusCode::CREATED)
}

/// `GET /tickets/{ticket_id}`: the ticket, its contact and first 100 messages.
pub async fn get(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req).await?;
    caller.require(Scope::Read)?;
    view_response(
        &state,
        caller.tenant_id,
        path_param(&req, "ticket_id").to_string(),
    )
    .await
}

/// `PATCH /tickets/{ticket_id}`: 200 with the updated ticket.
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req).await?;
    caller.require(Scope::Write)?;
    let body =
        read_json::<TicketPatchBody>(&req, payload, state.config.server.max_body_bytes, false)
            .await?;
    let patch = TicketPatch::try_from(body.value)?;
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let (tenant_id, id) = (caller.tenant_id.clone(), ticket_id.clone());
    state
        .db
        .writer()
        .run(move |conn| update_ticket(conn, &tenant_id, &id, &patch))
        .await?;
    view_response(&state, caller.tenant_id, ticket_id).await
}

async fn view_response(
    state: &AppState,
    tenant_id: String,
    ticket_id: String,
) -> Result<HttpResponse, ApiError> {
    let ticket = state
        .db
        .read(move |conn| db::tickets::view(conn, &tenant_id, &ticket_id))
        .await?
        .ok_or_else(|| ApiError::not_found("ticket_id", "ticket"))?;
    json(StatusCode::OK, &TicketEnvelope { ticket })
}
