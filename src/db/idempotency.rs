//! Stored responses of POSTs sent with an `Idempotency-Key`.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::DbError;
use crate::clock::Timestamp;

/// How long a key is remembered.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);

/// What an earlier request with the same key left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Earlier {
    /// Same request, finished: replay this.
    Response { status: u16, body: Vec<u8> },
    /// Same request, still running (an action waiting for its hook).
    InFlight,
    /// The key was used for a different request.
    Mismatch,
    /// Same request, but the ticket it created or changed was erased since, and its
    /// stored answer with it.
    Erased,
}

/// The status of a record whose answer was erased (its response is then NULL).
const ERASED: u16 = 410;

/// The live record for `key`, if any; an expired one is deleted and ignored.
pub fn lookup(
    conn: &Connection,
    tenant_id: &str,
    key: &str,
    fingerprint: &[u8; 32],
    now: Timestamp,
) -> Result<Option<Earlier>, DbError> {
    type Row = (Vec<u8>, Option<u16>, Option<Vec<u8>>, Timestamp);
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT fingerprint, status_code, response, expires_at FROM idempotency_keys
             WHERE tenant_id = ?1 AND idem_key = ?2",
        )?
        .query_row([tenant_id, key], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()?;
    let Some((stored, status, body, expires_at)) = row else {
        return Ok(None);
    };
    if expires_at <= now {
        conn.prepare_cached("DELETE FROM idempotency_keys WHERE tenant_id = ?1 AND idem_key = ?2")?
            .execute([tenant_id, key])?;
        return Ok(None);
    }
    if stored.as_slice() != fingerprint.as_slice() {
        return Ok(Some(Earlier::Mismatch));
    }
    Ok(Some(match (status, body) {
        (Some(ERASED), None) => Earlier::Erased,
        (Some(status), Some(body)) => Earlier::Response { status, body },
        _ => Earlier::InFlight,
    }))
}

/// A key to record: its request's fingerprint, the ticket the request created or
/// changed, and its response, or none while in flight (an action, `action_id` set).
#[derive(Debug, Clone, Copy)]
pub struct NewRecord<'a> {
    pub key: &'a str,
    pub fingerprint: &'a [u8; 32],
    pub ticket_id: &'a str,
    pub response: Option<(u16, &'a [u8])>,
    pub action_id: Option<&'a str>,
}

/// Records a key.
pub fn insert(
    conn: &Connection,
    tenant_id: &str,
    record: NewRecord<'_>,
    now: Timestamp,
) -> Result<(), DbError> {
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (tenant_id, idem_key, fingerprint, status_code, response,
                                       action_id, ticket_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        tenant_id,
        record.key,
        &record.fingerprint[..],
        record.response.map(|(status, _)| status),
        record.response.map(|(_, body)| body),
        record.action_id,
        record.ticket_id,
        now,
        now.plus(RETENTION)
    ])?;
    Ok(())
}

/// Erases the stored answers of the requests that created or changed a ticket: the
/// keys stay (a retry is told the ticket is gone rather than creating it again), their
/// answers do not. Returns how many.
pub fn erase_ticket(conn: &Connection, tenant_id: &str, ticket_id: &str) -> Result<usize, DbError> {
    Ok(conn
        .prepare_cached(
            "UPDATE idempotency_keys SET status_code = ?3, response = NULL
             WHERE tenant_id = ?1 AND ticket_id = ?2",
        )?
        .execute(params![tenant_id, ticket_id, ERASED])?)
}

/// Stores the final response of the in-flight key that protects `action_id`.
pub fn complete_action(
    conn: &Connection,
    tenant_id: &str,
    action_id: &str,
    status: u16,
    body: &[u8],
) -> Result<(), DbError> {
    conn.prepare_cached(
        "UPDATE idempotency_keys SET status_code = ?3, response = ?4
         WHERE tenant_id = ?1 AND action_id = ?2 AND status_code IS NULL",
    )?
    .execute(params![tenant_id, action_id, status, body])?;
    Ok(())
}

/// Deletes one tenant's expired keys.
pub fn purge_expired(conn: &Connection, tenant_id: &str, now: Timestamp) -> Result<usize, DbError> {
    Ok(conn
        .prepare_cached("DELETE FROM idempotency_keys WHERE tenant_id = ?1 AND expires_at <= ?2")?
        .execute(params![tenant_id, now])?)
}
