//! Tickets and their tags.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde::Serialize;

use super::DbError;
use crate::clock::Timestamp;
use crate::crypto;
use crate::domain::listing::{TicketFilter, TicketSort};
use crate::domain::ticket::{Channel, NewTicket, Priority, Status, Tag, join_tags, split_tags};
use crate::pagination::Cursor;

/// The summary fields of a ticket, as list items and `ticket.summary` show them.
#[derive(Debug, Clone, Serialize)]
pub struct TicketSummary {
    pub ticket_id: String,
    pub tenant_id: String,
    pub subject: String,
    pub status: Status,
    pub priority: Priority,
    pub channel: Channel,
    pub tags: Vec<Tag>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_message_at: Timestamp,
}

/// A ticket row: its summary plus the contact it belongs to.
#[derive(Debug, Clone)]
pub struct TicketRow {
    pub summary: TicketSummary,
    pub contact_id: Option<String>,
}

const COLUMNS: &str = "ticket_id, tenant_id, subject, status, priority, channel, tags, \
                       created_at, updated_at, last_message_at, contact_id";

fn from_row(row: &Row<'_>) -> rusqlite::Result<TicketRow> {
    let tags: String = row.get(6)?;
    Ok(TicketRow {
        summary: TicketSummary {
            ticket_id: row.get(0)?,
            tenant_id: row.get(1)?,
            subject: row.get(2)?,
            status: row.get(3)?,
            priority: row.get(4)?,
            channel: row.get(5)?,
            tags: split_tags(&tags),
            created_at: row.get(7)?,
            updated_at: row.get(8)?,
            last_message_at: row.get(9)?,
        },
        contact_id: row.get(10)?,
    })
}

/// Inserts a new ticket (without its first message) and its tags.
pub fn insert(
    conn: &Connection,
    tenant_id: &str,
    new: &NewTicket,
    contact_id: Option<&str>,
    now: Timestamp,
) -> Result<TicketSummary, DbError> {
    let summary = TicketSummary {
        ticket_id: crypto::new_id("tkt"),
        tenant_id: tenant_id.to_string(),
        subject: new.subject.clone(),
        status: Status::Open,
        priority: new.priority,
        channel: new.channel,
        tags: new.tags.clone(),
        created_at: now,
        updated_at: now,
        last_message_at: now,
    };
    conn.prepare_cached(
        "INSERT INTO tickets (tenant_id, ticket_id, subject, status, priority, channel, tags,
                              contact_id, created_at, updated_at, last_message_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?9)",
    )?
    .execute(params![
        tenant_id,
        summary.ticket_id,
        summary.subject,
        summary.status,
        summary.priority,
        summary.channel,
        join_tags(&summary.tags),
        contact_id,
        now
    ])?;
    add_tags(conn, tenant_id, &summary.ticket_id, &summary.tags)?;
    Ok(summary)
}

fn add_tags(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
    tags: &[Tag],
) -> Result<(), DbError> {
    let mut statement = conn.prepare_cached(
        "INSERT OR IGNORE INTO ticket_tags (tenant_id, tag, ticket_id) VALUES (?1, ?2, ?3)",
    )?;
    for tag in tags {
        statement.execute(params![tenant_id, tag.as_str(), ticket_id])?;
    }
    Ok(())
}

fn remove_tags(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
    tags: &[Tag],
) -> Result<(), DbError> {
    let mut statement = conn.prepare_cached(
        "DELETE FROM ticket_tags WHERE tenant_id = ?1 AND tag = ?2 AND ticket_id = ?3",
    )?;
    for tag in tags {
        statement.execute(params![tenant_id, tag.as_str(), ticket_id])?;
    }
    Ok(())
}

pub fn get(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
) -> Result<Option<TicketRow>, DbError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM tickets WHERE tenant_id = ?1 AND ticket_id = ?2"
        ))?
        .query_row([tenant_id, ticket_id], from_row)
        .optional()?)
}

/// Whether the tenant has this ticket.
pub fn exists(conn: &Connection, tenant_id: &str, ticket_id: &str) -> Result<bool, DbError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM tickets WHERE tenant_id = ?1 AND ticket_id = ?2")?
        .exists([tenant_id, ticket_id])?)
}

/// Writes a ticket's changed fields and brings `ticket_tags` in line with `tags`.
pub fn save(
    conn: &Connection,
    summary: &TicketSummary,
    previous_tags: &[Tag],
) -> Result<(), DbError> {
    conn.prepare_cached(
        "UPDATE tickets SET subject = ?3, status = ?4, priority = ?5, tags = ?6,
                            updated_at = ?7, last_message_at = ?8
         WHERE tenant_id = ?1 AND ticket_id = ?2",
    )?
    .execute(params![
        summary.tenant_id,
        summary.ticket_id,
        summary.subject,
        summary.status,
        summary.priority,
        join_tags(&summary.tags),
        summary.updated_at,
        summary.last_message_at
    ])?;
    if summary.tags != previous_tags {
        let removed: Vec<Tag> = previous_tags
            .iter()
            .filter(|t| !summary.tags.contains(t))
            .cloned()
            .collect();
        remove_tags(conn, &summary.tenant_id, &summary.ticket_id, &removed)?;
        add_tags(conn, &summary.tenant_id, &summary.ticket_id, &summary.tags)?;
    }
    Ok(())
}

/// One page of the tenant's tickets: at most `limit` items after `after`, plus whether
/// more follow. Keyset only: every page is an index range scan from its cursor.
pub fn list(
    conn: &Connection,
    tenant_id: &str,
    filter: &TicketFilter,
    sort: TicketSort,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<(Vec<TicketSummary>, bool), DbError> {
    let mut sql = format!("SELECT {COLUMNS} FROM tickets t WHERE tenant_id = ?");
    let mut args: Vec<Value> = vec![Value::Text(tenant_id.to_string())];
    let mut any_of = |column: &str, values: Vec<&'static str>, args: &mut Vec<Value>| {
        if values.is_empty() {
            return;
        }
        let marks = vec!["?"; values.len()].join(", ");
        sql.push_str(&format!(" AND {column} IN ({marks})"));
        args.extend(values.into_iter().map(|v| Value::Text(v.to_string())));
    };
    any_of(
        "status",
        filter.statuses.iter().map(|s| s.as_str()).collect(),
        &mut args,
    );
    any_of(
        "channel",
        filter.channels.iter().map(|c| c.as_str()).collect(),
        &mut args,
    );
    any_of(
        "priority",
        filter.priorities.iter().map(|p| p.as_str()).collect(),
        &mut args,
    );
    if let Some(since) = filter.updated_since {
        sql.push_str(" AND updated_at >= ?");
        args.push(Value::Integer(since.micros()));
    }
    for tag in &filter.tags {
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM ticket_tags g \
             WHERE g.tenant_id = t.tenant_id AND g.tag = ? AND g.ticket_id = t.ticket_id)",
        );
        args.push(Value::Text(tag.as_str().to_string()));
    }
    let column = sort.column();
    let (direction, comparison) = if sort.descending() {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    if let Some(cursor) = after {
        sql.push_str(&format!(" AND ({column}, ticket_id) {comparison} (?, ?)"));
        args.push(Value::Integer(cursor.key));
        args.push(Value::Text(cursor.id.clone()));
    }
    sql.push_str(&format!(
        " ORDER BY {column} {direction}, ticket_id {direction} LIMIT ?"
    ));
    args.push(Value::Integer(i64::from(limit) + 1));

    let mut statement = conn.prepare_cached(&sql)?;
    let mut items = statement
        .query_map(params_from_iter(args), |row| {
            from_row(row).map(|r| r.summary)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    Ok((items, more))
}

/// The cursor after `summary` in `sort` order.
pub fn cursor_after(summary: &TicketSummary, sort: TicketSort) -> Cursor {
    let key = match sort {
        TicketSort::LastMessageDesc => summary.last_message_at,
        TicketSort::CreatedDesc | TicketSort::CreatedAsc => summary.created_at,
        TicketSort::UpdatedAsc => summary.updated_at,
    };
    Cursor {
        key: key.micros(),
        id: summary.ticket_id.clone(),
    }
}

/// Messages shown inline in a ticket view.
pub const VIEW_MESSAGES: u32 = 100;

/// A ticket as `GET /tickets/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    pub summary: TicketSummary,
    pub contact: Option<super::contacts::Contact>,
    pub messages: Vec<super::messages::Message>,
    pub has_more_messages: bool,
}

/// The ticket with its contact and first 100 messages, oldest first.
pub fn view(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
) -> Result<Option<TicketView>, DbError> {
    let Some(row) = get(conn, tenant_id, ticket_id)? else {
        return Ok(None);
    };
    let contact = match &row.contact_id {
        Some(id) => super::contacts::get(conn, tenant_id, id)?,
        None => None,
    };
    let (messages, has_more_messages) =
        super::messages::list(conn, tenant_id, ticket_id, None, VIEW_MESSAGES)?;
    Ok(Some(TicketView {
        summary: row.summary,
        contact,
        messages,
        has_more_messages,
    }))
}
