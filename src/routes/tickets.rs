//! `/tickets` and `/tickets/{ticket_id}`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::access::{read_as, write_as};
use super::extract::{no_query, path_param, read_json, read_keyed};
use super::{PageWriter, json, respond};
use crate::auth::Credentials;
use crate::db;
use crate::domain::listing::TicketQuery;
use crate::domain::scope::Scope;
use crate::domain::ticket::{NewTicket, NewTicketBody, TicketPatch, TicketPatchBody};
use crate::error::ApiError;
use crate::idempotency;
use crate::lifecycle;
use crate::state::AppState;
use crate::tickets::{self, TicketEnvelope};

/// `GET /tickets`: one keyset page of the tenant's tickets, written to JSON straight
/// from the result rows.
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
) -> Result<HttpResponse, ApiError> {
    let query = TicketQuery::parse(req.query_string());
    let body = read_as(
        &state,
        &req,
        credentials,
        &[Scope::Read],
        query,
        |cx, query| {
            let binding = format!("tickets|{}|{}", cx.tenant_id(), query.binding());
            let after = query
                .page
                .token
                .as_deref()
                .map(|token| cx.state.tokens.open(&binding, token))
                .transpose()?;
            let mut page = PageWriter::new();
            let next = db::tickets::list_each(
                cx.conn,
                cx.tenant_id(),
                &query.filter,
                query.sort,
                after.as_ref(),
                query.page.limit,
                |row| page.push(row),
            )?;
            page.finish(next.map(|cursor| cx.state.tokens.issue(&binding, &cursor)))
        },
    )
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// `POST /tickets`: 201 with the new ticket, its contact and first message (for a key
/// without `support.read`: only what it sent, plus ids, status and timestamps).
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input = read_keyed::<NewTicketBody>(&req, payload, state.config.server.max_body_bytes)
        .await
        .and_then(|(body, key)| Ok((NewTicket::try_from(body)?, key)));
    let outcome = write_as(
        &state,
        &req,
        credentials,
        &[Scope::Write],
        input,
        |cx, (new, key)| {
            let outcome = idempotency::run(cx.conn, cx.tenant_id(), key.as_ref(), 201, |conn| {
                tickets::create_ticket(conn, cx.tenant_id(), &new)
                    .map(|ticket| TicketEnvelope { ticket })
            })?;
            if cx.caller.can_read() {
                return Ok(outcome);
            }
            outcome.map(|created| created.as_written(&new))
        },
    )
    .await?;
    respond(outcome, StatusCode::CREATED)
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
        no_query(&req),
        move |cx, ()| tickets::view(cx.conn, cx.tenant_id(), &ticket_id),
    )
    .await?;
    json(StatusCode::OK, &TicketEnvelope { ticket })
}

/// `PATCH /tickets/{ticket_id}`: 200 with the updated ticket (for a key without
/// `support.read`: its summary only).
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let patch =
        read_json::<TicketPatchBody>(&req, payload, state.config.server.max_body_bytes, false)
            .await
            .and_then(|body| TicketPatch::try_from(body.value));
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let changed = write_as(
        &state,
        &req,
        credentials,
        &[Scope::Write],
        patch,
        move |cx, patch| {
            let can_read = cx.caller.can_read();
            tickets::update(cx.conn, cx.tenant_id(), &ticket_id, &patch, can_read)
        },
    )
    .await?;
    json(StatusCode::OK, &changed)
}

/// `DELETE /tickets/{ticket_id}`: 204; the ticket, its messages and actions and every
/// copy of them are gone (its events stay as tombstones, a `ticket.deleted` follows).
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
) -> Result<HttpResponse, ApiError> {
    let ticket_id = path_param(&req, "ticket_id").to_string();
    write_as(
        &state,
        &req,
        credentials,
        &[Scope::Write],
        no_query(&req),
        move |cx, ()| {
            let actor = cx.caller.requested_by();
            lifecycle::delete_ticket(cx.conn, cx.tenant_id(), &ticket_id, &actor)
        },
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
