//! The unit of work of `POST /tickets/{ticket_id}/actions`: record the action as
//! running in the request's write job, make the call on the action pool, record the
//! outcome in a second write job. No transaction is held open across the call.

use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{ActionRunner, CallContext, Permit, Refused};
use crate::auth::Caller;
use crate::clock::Timestamp;
use crate::crypto;
use crate::db::actions::{Action, ActionStatus};
use crate::db::{self, Writer};
use crate::domain::action::{ActionBody, ActionPolicy, ActionRequest};
use crate::error::ApiError;
use crate::idempotency::{Idempotency, Outcome};

/// What the first write decides: make the call, or replay an earlier answer.
pub enum Start {
    Call(Box<Recorded>),
    Replay(Outcome<()>),
}

/// An action recorded as running, with what its call needs.
pub struct Recorded {
    action: Action,
    request: ActionRequest,
    signing_secret: String,
    permit: Permit,
    keyed: bool,
}

/// Where an action runs: the pool and the rules it is checked against.
#[derive(Clone, Copy)]
pub struct Runtime<'a> {
    pub runner: &'a ActionRunner,
    pub policy: &'a ActionPolicy,
}

/// Inside the request's write job: checks the payload against the tenant's settings,
/// replays a retried key, reserves a place in the pool (503 when the pool is full,
/// 429 when the tenant holds its share; nothing recorded either way) and records the
/// action as `running`.
pub fn begin(
    conn: &Connection,
    caller: &Caller,
    ticket_id: &str,
    body: ActionBody,
    key: Option<&Idempotency>,
    runtime: Runtime<'_>,
) -> Result<Start, ApiError> {
    let settings = db::tenants::action_settings(conn, &caller.tenant_id)?
        .ok_or_else(|| ApiError::internal("the tenant of an authenticated key is missing"))?;
    let request = ActionRequest::parse(body, &settings, runtime.policy)?;
    if let Some(key) = key
        && let Some(earlier) = key.check(conn, &caller.tenant_id)?
    {
        return Ok(Start::Replay(earlier));
    }
    if !db::tickets::exists(conn, &caller.tenant_id, ticket_id)? {
        return Err(ApiError::not_found("ticket_id", "ticket"));
    }
    let permit = runtime
        .runner
        .try_reserve(&caller.tenant_id)
        .map_err(refusal)?;
    let now = Timestamp::now();
    let action = Action {
        action_id: crypto::id_at("act", now),
        tenant_id: caller.tenant_id.clone(),
        ticket_id: ticket_id.to_string(),
        action_type: "custom_http".into(),
        status: ActionStatus::Running,
        requested_by: caller.requested_by(),
        payload: request.redacted_payload(),
        result: None,
        created_at: now,
        completed_at: None,
    };
    db::actions::insert(conn, &action)?;
    if let Some(key) = key {
        db::idempotency::insert(
            conn,
            &action.tenant_id,
            db::idempotency::NewRecord {
                key: &key.key,
                fingerprint: &key.fingerprint,
                ticket_id: &action.ticket_id,
                response: None,
                action_id: Some(&action.action_id),
            },
            now,
        )?;
    }
    Ok(Start::Call(Box::new(Recorded {
        action,
        request,
        signing_secret: settings.signing_secret,
        permit,
        keyed: key.is_some(),
    })))
}

fn refusal(refused: Refused) -> ApiError {
    match refused {
        Refused::PoolFull => ApiError::unavailable(
            "every action thread is busy and the action queue is full; retry shortly",
            1,
        ),
        Refused::TenantShare(held) => ApiError::too_many(
            format!(
                "this tenant already has {held} actions running or waiting, its share of the \
                 action pool (actions.per_tenant); retry when one completes"
            ),
            2,
        ),
    }
}

/// Makes the call on the action pool and records its outcome there, so that it is
/// written even if the client has gone away; resolves to the completed action.
pub async fn complete(
    recorded: Recorded,
    runner: &ActionRunner,
    writer: &Arc<Writer>,
) -> Result<Action, ApiError> {
    let Recorded {
        action,
        request,
        signing_secret,
        permit,
        keyed,
    } = recorded;
    let (reply, answer) = oneshot::channel();
    let writer = Arc::clone(writer);
    let outbound = runner.outbound().clone();
    let metrics = runner.metrics().clone();
    runner.submit(permit, move || {
        let result = outbound.call(
            &request,
            CallContext {
                headers: &[
                    ("X-Threada-Action-Id", &action.action_id),
                    ("X-Threada-Ticket-Id", &action.ticket_id),
                ],
                signing_secret: &signing_secret,
            },
        );
        let mut done = action;
        done.status = if result.succeeded() {
            ActionStatus::Succeeded
        } else {
            ActionStatus::Failed
        };
        metrics.action(done.status.as_str());
        done.result = Some(result);
        done.completed_at = Some(Timestamp::now());
        let recorded = writer.run_blocking(move |conn| {
            db::actions::complete(conn, &done)?;
            if keyed {
                let body = db::actions::response_body(&done)?;
                db::idempotency::complete_action(
                    conn,
                    &done.tenant_id,
                    &done.action_id,
                    201,
                    &body,
                )?;
            }
            Ok::<_, ApiError>(done)
        });
        let _ = reply.send(recorded);
    });
    answer
        .await
        .map_err(|_| ApiError::internal("an action task ended without an answer"))?
}
