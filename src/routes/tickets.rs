//! `/tickets` and `/tickets/{ticket_id}`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{PageWriter, json};
use crate::auth::{Credentials, Scope, read_as, write_as};
use crate::db;
use crate::domain::listing::TicketQuery;
use crate::domain::ticket::{NewTicket, NewTicketBody, TicketPatch, TicketPatchBody};
use crate::error::ApiError;
use crate::extract::{path_param, read_json};
use crate::idempotency;
use crate::startup::AppState;
use crate::tickets::{TicketEnvelope, create_ticket, update_ticket};

/// `GET /tickets`: one keyset page of the tenant's tickets, written to JSON straight
/// from the result rows.
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
) -> Result<HttpResponse, ApiError> {
    // Parsed here, reported after authentication.
    let query = TicketQuery::parse(req.query_string());
    let body = read_as(
        &state,
        &req,
        credentials,
        &[Scope::Read],
        move |conn, caller, state| {
            let query = query?;
            let binding = format!("tickets|{}|{}", caller.tenant_id, query.binding());
            let after = query
                .page
                .token
                .as_deref()
                .map(|token| state.tokens.open(&binding, token))
                .transpose()?;
            let mut page = PageWriter::new();
            let next = db::tickets::list_each(
                conn,
                &caller.tenant_id,
                &query.filter,
                query.sort,
                after.as_ref(),
                query.page.limit,
                |row| page.push(row),
            )?;
            page.finish(next.map(|cursor| state.tokens.issue(&binding, &cursor)))
        },
    )
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// `POST /tickets`: 201 with the new ticket, its contact and first message.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input =
        idempotency::read_keyed::<NewTicketBody>(&req, payload, state.config.server.max_body_bytes)
            .await
            .and_then(|(body, guard)| Ok((NewTicket::try_from(body)?, guard)));
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
                    create_ticket(conn, &caller.tenant_id, &new)
                        .map(|ticket| TicketEnvelope { ticket })
                },
            )
        },
    )
    .await?;
    idempotency::respond(outcome, StatusCode::CREATED)
}

/// `GET /tickets/{ticket_id}`: the ticket, its contact and first 100 messages.
pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
) -> Result<HttpResponse, ApiError> {
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let ticket = read_as(
        &state,
        &req,
        credentials,
        &[Scope::Read],
        move |conn, caller, _| {
            db::tickets::view(conn, &caller.tenant_id, &ticket_id)?
                .ok_or_else(|| ApiError::not_found("ticket_id", "ticket"))
        },
    )
    .await?;
    json(StatusCode::OK, &TicketEnvelope { ticket })
}

/// `PATCH /tickets/{ticket_id}`: 200 with the updated ticket.
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body =
        read_json::<TicketPatchBody>(&req, payload, state.config.server.max_body_bytes, false)
            .await;
    let patch = body.and_then(|b| TicketPatch::try_from(b.value));
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let ticket = write_as(
        &state,
        &req,
        credentials,
        &[Scope::Write],
        move |conn, caller, _| {
            let patch = patch?;
            update_ticket(conn, &caller.tenant_id, &ticket_id, &patch)?;
            db::tickets::view(conn, &caller.tenant_id, &ticket_id)?
                .ok_or_else(|| ApiError::not_found("ticket_id", "ticket"))
        },
    )
    .await?;
    json(StatusCode::OK, &TicketEnvelope { ticket })
}
