//! `/tickets/{ticket_id}/actions`: run a `custom_http` call and read past ones.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use tokio::sync::oneshot;

use super::{json, ticket_children};
use crate::actions::CallContext;
use crate::actions::Permit;
use crate::auth::{Credentials, Needs, Scope, read_as, write_as};
use crate::clock::Timestamp;
use crate::crypto;
use crate::db;
use crate::db::actions::{Action, ActionEnvelope, ActionStatus};
use crate::db::idempotency as stored_keys;
use crate::domain::action::{ActionBody, ActionRequest};
use crate::error::ApiError;
use crate::extract::path_param;
use crate::idempotency::{self, Outcome};
use crate::startup::AppState;

/// Reading actions takes `support.read` or `support.actions`.
const READERS: Needs = &[Scope::Read, Scope::Actions];

/// What the first write decides: run the call, or replay an earlier answer.
enum Start {
    Run(Box<Run>),
    Replay(Outcome<()>),
}

/// A recorded, running action and what its call needs.
struct Run {
    action: Action,
    request: ActionRequest,
    signing_secret: String,
    permit: Permit,
}

/// `POST /tickets/{ticket_id}/actions`: records the action as running, makes the call
/// on the action pool, records the outcome, and answers 201 with it (also when the
/// call failed: `status` says so).
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input =
        idempotency::read_keyed::<ActionBody>(&req, payload, state.config.server.max_body_bytes)
            .await;
    let keyed = matches!(input, Ok((_, Some(_))));
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let start = write_as(
        &state,
        &req,
        credentials,
        &[Scope::Actions],
        move |conn, caller, state| {
            let (body, guard) = input?;
            let settings =
                db::tenants::action_settings(conn, &caller.tenant_id)?.ok_or_else(|| {
                    ApiError::internal("the tenant of an authenticated key is missing")
                })?;
            let request = ActionRequest::parse(body, &settings, state.allow_private_networks)?;
            if let Some(guard) = &guard
                && let Some(earlier) = guard.check(conn, &caller.tenant_id)?
            {
                return Ok(Start::Replay(earlier));
            }
            if !db::tickets::exists(conn, &caller.tenant_id, &ticket_id)? {
                return Err(ApiError::not_found("ticket_id", "ticket"));
            }
            let permit = state.actions.try_reserve().ok_or_else(|| {
                ApiError::unavailable(
                    "every action thread is busy and the action queue is full; retry shortly",
                    1,
                )
            })?;
            let now = Timestamp::now();
            let action = Action {
                action_id: crypto::id_at("act", now),
                tenant_id: caller.tenant_id.clone(),
                ticket_id,
                action_type: "custom_http".into(),
                status: ActionStatus::Running,
                requested_by: caller.requested_by(),
                payload: request.redacted_payload(),
                result: None,
                created_at: now,
                completed_at: None,
            };
            db::actions::insert(conn, &action)?;
            if let Some(guard) = &guard {
                stored_keys::insert(
                    conn,
                    &action.tenant_id,
                    &guard.key,
                    &guard.fingerprint,
                    None,
                    Some(&action.action_id),
                    now,
                )?;
            }
            Ok(Start::Run(Box::new(Run {
                action,
                request,
                signing_secret: settings.signing_secret,
                permit,
            })))
        },
    )
    .await?;
    let run = match start {
        Start::Replay(earlier) => return idempotency::respond(earlier, StatusCode::CREATED),
        Start::Run(run) => *run,
    };

    let (reply, answer) = oneshot::channel();
    let writer = state.db.writer().clone();
    let outbound = state.actions.outbound().clone();
    let Run {
        action,
        request,
        signing_secret,
        permit,
    } = run;
    state.actions.submit(permit, move || {
        let result = outbound.call(
            &request,
            CallContext {
                action_id: &action.action_id,
                ticket_id: &action.ticket_id,
                signing_secret: &signing_secret,
            },
        );
        let succeeded =
            result.error.is_none() && result.http_status.is_some_and(|s| (200..300).contains(&s));
        let mut done = action;
        done.status = if succeeded {
            ActionStatus::Succeeded
        } else {
            ActionStatus::Failed
        };
        done.result = Some(result);
        done.completed_at = Some(Timestamp::now());
        // The outcome is recorded here, not in the handler, so that it is written
        // even if the client has gone away.
        let recorded = writer.run_blocking(move |conn| {
            db::actions::complete(conn, &done)?;
            if keyed {
                let body = db::actions::response_body(&done)?;
                stored_keys::complete_action(conn, &done.tenant_id, &done.action_id, 201, &body)?;
            }
            Ok::<_, ApiError>(done)
        });
        let _ = reply.send(recorded);
    });
    let action = answer
        .await
        .map_err(|_| ApiError::internal("an action task ended without an answer"))??;
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
        move |conn, caller, _| {
            db::actions::get(conn, &caller.tenant_id, &ticket_id, &action_id)?
                .ok_or_else(|| ApiError::not_found("action_id", "action"))
        },
    )
    .await?;
    json(StatusCode::OK, &ActionEnvelope { action: &action })
}
