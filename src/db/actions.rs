//! Actions: outbound HTTP calls run for a ticket, and their outcome.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::DbError;
use crate::clock::Timestamp;
use crate::domain::event::EventType;
use crate::domain::listing::Cursor;
use crate::domain::named_enum;
use crate::error::ApiError;

named_enum!(
    /// `running` until the call completes; `succeeded` means a 2xx answer.
    ActionStatus { Running => "running", Succeeded => "succeeded", Failed => "failed" }
);

/// A transport failure: `timeout`, `connection_failed`, `destination_blocked`,
/// `invalid_response` or `interrupted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionFailure {
    pub code: String,
    pub message: String,
}

/// What the call gave back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    pub http_status: Option<u16>,
    pub duration_ms: u64,
    pub response_body: Option<String>,
    pub response_truncated: bool,
    pub error: Option<ActionFailure>,
}

impl ActionResult {
    /// A 2xx answer, read whole.
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.http_status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// An action as stored and as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub action_id: String,
    pub tenant_id: String,
    pub ticket_id: String,
    pub action_type: String,
    pub status: ActionStatus,
    pub requested_by: String,
    /// The request as sent by the client, credential-like header values redacted.
    pub payload: Value,
    pub result: Option<ActionResult>,
    pub created_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

const COLUMNS: &str = "action_id, tenant_id, ticket_id, action_type, status, requested_by, \
                       payload, result, created_at, completed_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Action> {
    let payload: String = row.get(6)?;
    let result: Option<String> = row.get(7)?;
    Ok(Action {
        action_id: row.get(0)?,
        tenant_id: row.get(1)?,
        ticket_id: row.get(2)?,
        action_type: row.get(3)?,
        status: row.get(4)?,
        requested_by: row.get(5)?,
        payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
        result: result.and_then(|r| serde_json::from_str(&r).ok()),
        created_at: row.get(8)?,
        completed_at: row.get(9)?,
    })
}

/// Records an action as `running`, before its call is made.
pub fn insert(conn: &Connection, action: &Action) -> Result<(), DbError> {
    conn.prepare_cached(
        "INSERT INTO actions (tenant_id, action_id, ticket_id, action_type, status, requested_by,
                              payload, result, created_at, completed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, NULL)",
    )?
    .execute(params![
        action.tenant_id,
        action.action_id,
        action.ticket_id,
        action.action_type,
        action.status,
        action.requested_by,
        action.payload.to_string(),
        action.created_at
    ])?;
    Ok(())
}

/// Stores the outcome of a running action, with its `action.completed` event. An
/// action whose ticket was erased while its call ran is gone: nothing is written.
pub fn complete(conn: &Connection, action: &Action) -> Result<(), DbError> {
    let result = action
        .result
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| DbError::Corrupt(e.to_string()))?;
    let updated = conn
        .prepare_cached(
            "UPDATE actions SET status = ?3, result = ?4, completed_at = ?5
             WHERE tenant_id = ?1 AND action_id = ?2",
        )?
        .execute(params![
            action.tenant_id,
            action.action_id,
            action.status,
            result,
            action.completed_at
        ])?;
    if updated == 0 {
        return Ok(());
    }
    super::events::append(
        conn,
        &action.tenant_id,
        EventType::ActionCompleted,
        Some(&action.ticket_id),
        &ActionEnvelope { action },
        action.completed_at.unwrap_or_else(Timestamp::now),
    )?;
    Ok(())
}

pub fn get(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
    action_id: &str,
) -> Result<Option<Action>, DbError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM actions
             WHERE tenant_id = ?1 AND action_id = ?2 AND ticket_id = ?3"
        ))?
        .query_row([tenant_id, action_id, ticket_id], from_row)
        .optional()?)
}

/// Deletes a ticket's actions, payloads and results with them; returns how many.
pub fn delete_of_ticket(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
) -> Result<usize, DbError> {
    Ok(conn
        .prepare_cached("DELETE FROM actions WHERE tenant_id = ?1 AND ticket_id = ?2")?
        .execute([tenant_id, ticket_id])?)
}

/// Up to `limit` actions of a ticket after `after`, newest first, plus whether more follow.
pub fn list(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<(Vec<Action>, bool), DbError> {
    // Ids start with their creation time: ordering by id is ordering by creation.
    let id = after.map_or("\u{10FFFF}", |c| c.id.as_str());
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM actions
         WHERE tenant_id = ?1 AND ticket_id = ?2 AND action_id < ?3
         ORDER BY action_id DESC
         LIMIT {}",
        limit + 1
    ))?;
    let mut items = statement
        .query_map(params![tenant_id, ticket_id, id], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    Ok((items, more))
}

/// Where a walk continues after `action`.
/// Up to `limit` actions of the tenant across its tickets after `after`, newest
/// first, plus whether more follow.
pub fn list_recent(
    conn: &Connection,
    tenant_id: &str,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<(Vec<Action>, bool), DbError> {
    let id = after.map_or("\u{10FFFF}", |c| c.id.as_str());
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM actions
         WHERE tenant_id = ?1 AND action_id < ?2
         ORDER BY action_id DESC
         LIMIT {}",
        limit + 1
    ))?;
    let mut items = statement
        .query_map(params![tenant_id, id], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    Ok((items, more))
}

pub fn cursor_after(action: &Action) -> Cursor {
    Cursor {
        key: 0,
        id: action.action_id.clone(),
    }
}

/// Marks every action left `running` (by a crash or kill) as failed with error code
/// `interrupted`, and gives the idempotency keys that protected them their final
/// response, so that a retry replays instead of calling the hook again.
pub fn interrupt_running(conn: &Connection, now: Timestamp) -> Result<Vec<Action>, DbError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM actions WHERE status = 'running'"
    ))?;
    let running = statement
        .query_map([], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut interrupted = Vec::with_capacity(running.len());
    for mut action in running {
        action.status = ActionStatus::Failed;
        action.completed_at = Some(now);
        action.result = Some(ActionResult {
            http_status: None,
            duration_ms: u64::try_from((now.micros() - action.created_at.micros()) / 1000)
                .unwrap_or(0),
            response_body: None,
            response_truncated: false,
            error: Some(ActionFailure {
                code: "interrupted".into(),
                message: "the server stopped before the call completed; it may or may not \
                          have reached the destination"
                    .into(),
            }),
        });
        complete(conn, &action)?;
        let body = response_body(&action).map_err(|e| DbError::Corrupt(e.message.to_string()))?;
        super::idempotency::complete_action(
            conn,
            &action.tenant_id,
            &action.action_id,
            201,
            &body,
        )?;
        interrupted.push(action);
    }
    Ok(interrupted)
}

/// `{"action": {...}}`
#[derive(Debug, Serialize)]
pub struct ActionEnvelope<'a> {
    pub action: &'a Action,
}

/// The JSON body of a response holding one action, byte for byte what the API answers.
pub fn response_body(action: &Action) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(&ActionEnvelope { action }).map_err(ApiError::internal)
}
