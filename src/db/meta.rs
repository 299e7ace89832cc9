//! Instance-wide settings (not tenant data): the key that signs page tokens.

use rusqlite::{Connection, OptionalExtension, params};

const PAGE_TOKEN_KEY: &str = "page_token_key";

/// Runs the smallest query there is: the database answers.
pub fn ping(conn: &Connection) -> Result<(), super::DbError> {
    conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))?;
    Ok(())
}

/// Creates the instance secrets on first start.
pub fn ensure_secrets(conn: &Connection) -> rusqlite::Result<()> {
    if page_token_key(conn)?.is_some() {
        return Ok(());
    }
    let key = crate::crypto::random_key()
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.execute(
        "INSERT OR IGNORE INTO meta (name, value) VALUES (?1, ?2)",
        params![PAGE_TOKEN_KEY, &key[..]],
    )?;
    Ok(())
}

/// The per-database key that makes page tokens tamper-evident.
pub fn page_token_key(conn: &Connection) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.query_row(
        "SELECT value FROM meta WHERE name = ?1",
        [PAGE_TOKEN_KEY],
        |row| row.get(0),
    )
    .optional()
}
