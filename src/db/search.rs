//! The full-text index: one FTS5 document per ticket subject and per message, written
//! in the same transaction as the rows they come from.
//!
//! A document's rowid is `search_key << 24 | n`: `n` is 0 for the subject and the
//! message's number in its ticket (1, 2, …) for a message, so a match names its ticket
//! without a lookup. The index is contentless (the text lives in `tickets` and
//! `messages` only) with secure-delete, so removed text leaves no token behind.

use rusqlite::{Connection, params};

use super::DbError;
use super::tickets::SEARCH_SHIFT;

/// Messages of one ticket the index can hold (later ones are not indexed).
pub const MAX_INDEXED_MESSAGES: i64 = (1 << SEARCH_SHIFT) - 1;

fn rowid(search_key: i64, n: i64) -> i64 {
    (search_key << SEARCH_SHIFT) + n
}

/// A new ticket's search key, from the counter in `meta`.
pub fn next_key(conn: &Connection) -> Result<i64, DbError> {
    Ok(conn
        .prepare_cached(
            "UPDATE meta SET value = value + 1 WHERE name = 'next_search_key' RETURNING value - 1",
        )?
        .query_row([], |row| row.get(0))?)
}

/// Indexes a subject (`n` = 0) or the `n`th message of the ticket with `search_key`.
pub fn index(conn: &Connection, search_key: i64, n: i64, text: &str) -> Result<(), DbError> {
    if n > MAX_INDEXED_MESSAGES {
        return Ok(());
    }
    conn.prepare_cached("INSERT INTO ticket_search (rowid, body) VALUES (?1, ?2)")?
        .execute(params![rowid(search_key, n), text])?;
    Ok(())
}

/// Replaces an indexed subject.
pub fn reindex_subject(conn: &Connection, search_key: i64, subject: &str) -> Result<(), DbError> {
    remove(conn, search_key, 0)?;
    index(conn, search_key, 0, subject)
}

/// Removes one document.
fn remove(conn: &Connection, search_key: i64, n: i64) -> Result<(), DbError> {
    conn.prepare_cached("DELETE FROM ticket_search WHERE rowid = ?1")?
        .execute([rowid(search_key, n)])?;
    Ok(())
}

/// Removes a ticket's documents: its subject and its `message_count` messages.
pub fn remove_ticket(
    conn: &Connection,
    search_key: i64,
    message_count: i64,
) -> Result<(), DbError> {
    for n in 0..=message_count.min(MAX_INDEXED_MESSAGES) {
        remove(conn, search_key, n)?;
    }
    Ok(())
}
