//! The audit log of erasures: who removed what, when, and how much. It holds counts
//! and ids, never personal data.

use rusqlite::{Connection, Row, params};
use serde::Serialize;
use serde_json::Value;

use super::DbError;
use crate::clock::Timestamp;
use crate::crypto;

/// One audit record.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub audit_id: String,
    pub tenant_id: String,
    /// `contact.erased`, `ticket.deleted` or `tickets.expired`.
    pub action: String,
    /// `admin_api`, `console`, `cli`, `api_key:<key_id>` or `retention`.
    pub actor: String,
    /// The erased contact's or deleted ticket's id.
    pub subject_id: Option<String>,
    /// What was removed, by kind.
    pub counts: Value,
    pub created_at: Timestamp,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Record> {
    let counts: String = row.get(5)?;
    Ok(Record {
        audit_id: row.get(0)?,
        tenant_id: row.get(1)?,
        action: row.get(2)?,
        actor: row.get(3)?,
        subject_id: row.get(4)?,
        counts: serde_json::from_str(&counts).unwrap_or(Value::Null),
        created_at: row.get(6)?,
    })
}

/// Writes a record.
pub fn insert(conn: &Connection, record: &Record) -> Result<(), DbError> {
    conn.prepare_cached(
        "INSERT INTO audit_log (tenant_id, audit_id, action, actor, subject_id, counts, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        record.tenant_id,
        record.audit_id,
        record.action,
        record.actor,
        record.subject_id,
        record.counts.to_string(),
        record.created_at
    ])?;
    Ok(())
}

/// A new record's id, ordered by time.
pub fn new_id(now: Timestamp) -> String {
    crypto::id_at("aud", now)
}

/// The tenant's latest `limit` records, newest first.
pub fn recent(conn: &Connection, tenant_id: &str, limit: u32) -> Result<Vec<Record>, DbError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT audit_id, tenant_id, action, actor, subject_id, counts, created_at
         FROM audit_log WHERE tenant_id = ?1 ORDER BY audit_id DESC LIMIT {limit}"
    ))?;
    let items = statement
        .query_map([tenant_id], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(items)
}
