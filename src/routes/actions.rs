//! `/tickets/{ticket_id}/actions`: run a `custom_http` call and read past ones.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use tokio::sync::oneshot;

use super::{ListPage, json};
use crate::actions::CallContext;
use crate::auth::{Scope, authenticate};
use crate::clock::Timestamp;
use crate::crypto;
use crate::db;
use crate::db::actions::{Action, ActionEnvelope, ActionStatus};
use crate::db::idempotency as stored_keys;
use crate::domain::action::{ActionBody, ActionRequest};
use crate::domain::listing::{Page, QueryParams};
use crate::error::ApiError;
use crate::extract::{path_param, read_json};
use crate::idempotency::{self, Idempotency, Outcome};
use crate::startup::AppState;

/// What the first write decides: run the call, or replay an earlier answer.
enum Start {
    Run(Box<Action>),
    Replay(Outcome<()>),
}

/// `POST /tickets/{ticket_id}/actions`: records the action as running, makes the call
/// on the action pool, records the outcome, and answers 201 with it (also when the
/// call failed: `status` says so).
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req).await?;
    caller.require(Scope::Actions)?;
    let key = idempotency::key_from(&req)?;
    let body = read_json::<ActionBody>(
        &req,
        payload,
        state.config.server.max_body_bytes,
        key.is_some(),
    )
    .await?;
    let tenant_id = caller.tenant_id.clone();
    let settings = state
        .db
        .read(move |conn| db::tenants::action_settings(conn, &tenant_id))
        .await?
        .ok_or_else(|| ApiError::internal("the tenant of an authenticated key is missing"))?;
    let request = ActionRequest::parse(body.value, &settings, state.allow_private_networks)?;
    let guard =
        key.map(|k| Idempotency::new(k, &req, body.canonical.as_deref().unwrap_or_default()));
    let keyed = guard.is_some();
    let permit = state.actions.try_reserve().ok_or_else(|| {
        ApiError::unavailable(
            "every action thread is busy and the action queue is full; retry shortly",
            1,
        )
    })?;

    let now = Timestamp::now();
    let action = Action {
        action_id: crypto::new_id("act"),
        tenant_id: caller.tenant_id.clone(),
        ticket_id: path_param(&req, "ticket_id").to_string(),
        action_type: "custom_http".into(),
        status: ActionStatus::Running,
        requested_by: caller.requested_by(),
        payload: request.redacted_payload(),
        result: None,
        created_at: now,
        completed_at: None,
    };
    let start = state
        .db
        .writer()
        .run(move |conn| {
            if let Some(guard) = &guard
                && let Some(earlier) = guard.check(conn, &action.tenant_id)?
            {
                return Ok(Start::Replay(earlier));
            }
            if !db::tickets::exists(conn, &action.tenant_id, &action.ticket_id)? {
                return Err(ApiError::not_found("ticket_id", "ticket"));
            }
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
            Ok(Start::Run(Box::new(action)))
        })
        .await?;
    let action = match start {
        Start::Replay(earlier) => return idempotency::respond(earlier, StatusCode::CREATED),
        Start::Run(action) => *action,
    };

    let (reply, answer) = oneshot::channel();
    let writer = state.db.writer().clone();
    let outbound = state.actions.outbound().clone();
    state.actions.submit(permit, move || {
        let result = outbound.call(
            &request,
            CallContext {
                action_id: &action.action_id,
                ticket_id: &action.ticket_id,
                signing_secret: &settings.signing_secret,
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
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req).await?;
    caller.require_any(&[Scope::Read, Scope::Actions])?;
    let page = Page::parse(&QueryParams::parse(
        req.query_string(),
        &["limit", "page_token"],
    )?)?;
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let binding = format!("actions|{}|{ticket_id}", caller.tenant_id);
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
            Ok(db::actions::list(
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
                .issue(&binding, &db::actions::cursor_after(last)),
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

/// `GET /tickets/{ticket_id}/actions/{action_id}`.
pub async fn get(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req).await?;
    caller.require_any(&[Scope::Read, Scope::Actions])?;
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let action_id = path_param(&req, "action_id").to_string();
    let tenant_id = caller.tenant_id;
    let action = state
        .db
        .read(move |conn| db::actions::get(conn, &tenant_id, &ticket_id, &action_id))
        .await?
        .ok_or_else(|| ApiError::not_found("action_id", "action"))?;
    json(StatusCode::OK, &ActionEnvelope { action: &action })
}
