//! The full-text index: one FTS5 document per ticket subject and per message, written
//! in the same transaction as the rows they come from.
//!
//! A document's rowid is `search_key << 24 | n`: `n` is 0 for the subject and the
//! message's number in its ticket (1, 2, …) for a message, so a match names its ticket
//! without a lookup. The index is contentless (the text lives in `tickets` and
//! `messages` only) with secure-delete: a document is removed with its text, and its
//! tokens leave the file.

//!
//! Documents are queued and written at the end of their transaction (`flush`, called
//! by the writer before each group's COMMIT and by `db::in_transaction`): FTS5 writes
//! its pending tokens to disk at every savepoint of a transaction (each write job's,
//! and the statement savepoint of every later INSERT into a table with constraints),
//! so a document written early would cost a tiny segment, and merges, per statement.
//! Queued, a transaction's documents go in one flush (bulk-load: 3.5 times faster).
//! A write job that fails forgets what it queued (`mark`, `forget_since`).

use std::cell::RefCell;

use rusqlite::{Connection, params};

use super::DbError;
use super::tickets::SEARCH_SHIFT;

/// Messages of one ticket the index can hold (later ones are not indexed).
pub const MAX_INDEXED_MESSAGES: i64 = (1 << SEARCH_SHIFT) - 1;

fn rowid(search_key: i64, n: i64) -> i64 {
    (search_key << SEARCH_SHIFT) + n
}

/// A queued change to the index.
#[derive(Debug)]
enum Change {
    Insert {
        rowid: i64,
        text: String,
    },
    /// The text is the one the document was indexed with: a contentless index needs it
    /// to find the document's tokens (with secure-delete, they then leave the file).
    Delete {
        rowid: i64,
        text: String,
    },
}

thread_local! {
    /// This thread's transaction's queued changes (one writing thread per connection:
    /// the writer's, or the CLI's).
    static QUEUE: RefCell<Vec<Change>> = const { RefCell::new(Vec::new()) };
}

fn queue(change: Change) {
    QUEUE.with(|queue| queue.borrow_mut().push(change));
}

/// Where the queue stands: a write job that fails forgets what it queued since.
pub fn mark() -> usize {
    QUEUE.with(|queue| queue.borrow().len())
}

/// Forgets the changes queued since `mark` (their job was rolled back).
pub fn forget_since(mark: usize) {
    QUEUE.with(|queue| queue.borrow_mut().truncate(mark));
}

/// Writes the queued changes in the order they were made, inside the transaction
/// that made them (called just before it commits).
pub fn flush(conn: &Connection) -> Result<(), DbError> {
    let changes = QUEUE.with(|queue| std::mem::take(&mut *queue.borrow_mut()));
    if changes.is_empty() {
        return Ok(());
    }
    let mut insert =
        conn.prepare_cached("INSERT INTO ticket_search (rowid, body) VALUES (?1, ?2)")?;
    let mut delete = conn.prepare_cached(
        "INSERT INTO ticket_search (ticket_search, rowid, body) VALUES ('delete', ?1, ?2)",
    )?;
    for change in &changes {
        match change {
            Change::Insert { rowid, text } => insert.execute(params![rowid, text])?,
            Change::Delete { rowid, text } => delete.execute(params![rowid, text])?,
        };
    }
    Ok(())
}

/// The lowest document rowid of the ticket with `search_key` (its subject's).
pub fn first_rowid(search_key: i64) -> i64 {
    rowid(search_key, 0)
}

/// Indexes a subject (`n` = 0) or the `n`th message of the ticket with `search_key`.
pub fn index(search_key: i64, n: i64, text: &str) {
    if n <= MAX_INDEXED_MESSAGES {
        queue(Change::Insert {
            rowid: rowid(search_key, n),
            text: text.to_string(),
        });
    }
}

/// Replaces an indexed subject: `old` is the text it was indexed with.
pub fn reindex_subject(search_key: i64, old: &str, subject: &str) {
    remove(search_key, 0, old);
    index(search_key, 0, subject);
}

/// Removes one document, given the text it was indexed with. Returns how many
/// documents that is (0 past `MAX_INDEXED_MESSAGES`).
pub fn remove(search_key: i64, n: i64, text: &str) -> i64 {
    if n > MAX_INDEXED_MESSAGES {
        return 0;
    }
    queue(Change::Delete {
        rowid: rowid(search_key, n),
        text: text.to_string(),
    });
    1
}
