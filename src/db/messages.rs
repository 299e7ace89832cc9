//! Messages of a ticket, oldest first.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::DbError;
use crate::clock::Timestamp;
use crate::crypto;
use crate::domain::listing::Cursor;
use crate::domain::ticket::{Channel, Role};

/// A message as stored and shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub message_id: String,
    pub ticket_id: String,
    pub role: Role,
    pub content: String,
    pub channel: Channel,
    pub external_message_id: Option<String>,
    pub created_at: Timestamp,
}

const COLUMNS: &str =
    "message_id, ticket_id, role, content, channel, external_message_id, created_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        message_id: row.get(0)?,
        ticket_id: row.get(1)?,
        role: row.get(2)?,
        content: row.get(3)?,
        channel: row.get(4)?,
        external_message_id: row.get(5)?,
        created_at: row.get(6)?,
    })
}

/// A message to insert.
#[derive(Debug, Clone, Copy)]
pub struct NewRow<'a> {
    pub ticket_id: &'a str,
    /// The ticket's search key, and this message's number in the ticket (1, 2, …).
    pub search: (i64, i64),
    pub role: Role,
    pub content: &'a str,
    pub channel: Channel,
    pub external_message_id: Option<&'a str>,
}

/// Inserts a message and its search document. A duplicate `external_message_id`
/// fails on the UNIQUE index (`is_unique_violation`); `find_external` then names the
/// existing message.
pub fn insert(
    conn: &Connection,
    tenant_id: &str,
    new: NewRow<'_>,
    now: Timestamp,
) -> Result<Message, DbError> {
    let message = Message {
        message_id: crypto::id_at("msg", now),
        ticket_id: new.ticket_id.to_string(),
        role: new.role,
        content: new.content.to_string(),
        channel: new.channel,
        external_message_id: new.external_message_id.map(str::to_string),
        created_at: now,
    };
    let (search_key, number) = new.search;
    conn.prepare_cached(
        "INSERT INTO messages (tenant_id, message_id, ticket_id, role, content, channel,
                               external_message_id, created_at, search_n)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        tenant_id,
        message.message_id,
        message.ticket_id,
        message.role,
        message.content,
        message.channel,
        message.external_message_id,
        now,
        number
    ])?;
    super::search::index(search_key, number, new.content);
    Ok(message)
}

/// The `(ticket_id, message_id)` that already uses an external id.
pub fn find_external(
    conn: &Connection,
    tenant_id: &str,
    external_message_id: &str,
) -> Result<Option<(String, String)>, DbError> {
    Ok(conn
        .prepare_cached(
            "SELECT ticket_id, message_id FROM messages
             WHERE tenant_id = ?1 AND external_message_id = ?2",
        )?
        .query_row([tenant_id, external_message_id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?)
}

/// Removes a ticket's messages from the search index (each with its text, as the
/// index needs it), before they are deleted.
pub fn unindex_of_ticket(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
    search_key: i64,
) -> Result<i64, DbError> {
    let mut statement = conn.prepare_cached(
        "SELECT search_n, content FROM messages WHERE tenant_id = ?1 AND ticket_id = ?2",
    )?;
    let mut rows = statement.query([tenant_id, ticket_id])?;
    let mut removed = 0;
    while let Some(row) = rows.next()? {
        let content: String = row.get(1)?;
        removed += super::search::remove(search_key, row.get(0)?, &content);
    }
    Ok(removed)
}

/// Deletes a ticket's messages; returns how many.
pub fn delete_of_ticket(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
) -> Result<usize, DbError> {
    Ok(conn
        .prepare_cached("DELETE FROM messages WHERE tenant_id = ?1 AND ticket_id = ?2")?
        .execute([tenant_id, ticket_id])?)
}

/// Up to `limit` messages of a ticket after `after`, oldest first, plus whether more follow.
pub fn list(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<(Vec<Message>, bool), DbError> {
    // Ids start with their creation time: ordering by id is ordering by creation.
    let id = after.map_or("", |c| c.id.as_str());
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages
         WHERE tenant_id = ?1 AND ticket_id = ?2 AND message_id > ?3
         ORDER BY message_id
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

/// Where a walk continues after `message`.
pub fn cursor_after(message: &Message) -> Cursor {
    Cursor {
        key: 0,
        id: message.message_id.clone(),
    }
}
