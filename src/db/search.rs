//! The full-text index: one FTS5 document per ticket subject and per message, written
//! in the same transaction as the rows they come from.
//!
//! A document's rowid is `search_key << 24 | n`: `n` is 0 for the subject and the
//! message's number in its ticket (1, 2, …) for a message, so a match names its ticket
//! without a lookup. The index is contentless (the text lives in `tickets` and
//! `messages` only) with secure-delete: a document is removed with its text, and its
//! tokens leave the file.

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

/// Replaces an indexed subject: `old` is the text it was indexed with.
pub fn reindex_subject(
    conn: &Connection,
    search_key: i64,
    old: &str,
    subject: &str,
) -> Result<(), DbError> {
    remove(conn, search_key, 0, old)?;
    index(conn, search_key, 0, subject)
}

/// Removes one document, given the text it was indexed with (a contentless index
/// needs it to find the document's tokens; with secure-delete they leave the file).
/// Returns how many documents were removed (0 past `MAX_INDEXED_MESSAGES`).
pub fn remove(conn: &Connection, search_key: i64, n: i64, text: &str) -> Result<i64, DbError> {
    if n > MAX_INDEXED_MESSAGES {
        return Ok(0);
    }
    conn.prepare_cached(
        "INSERT INTO ticket_search (ticket_search, rowid, body) VALUES ('delete', ?1, ?2)",
    )?
    .execute(params![rowid(search_key, n), text])?;
    Ok(1)
}
