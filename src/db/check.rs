//! `threada check`: can this file (a restored replica, a copy, a backup) be served?
//! Read-only: it opens the file without creating, migrating or writing anything.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use super::SCHEMA_VERSION;

/// What the check found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub path: String,
    /// Whether `threada serve` can start on it.
    pub servable: bool,
    /// One line: why not, or what was checked.
    pub verdict: String,
    pub schema_version: i64,
    /// The schema version this binary writes (an older file is upgraded at start).
    pub binary_schema_version: i64,
    /// `ok`, or the first problems `PRAGMA integrity_check` reported.
    pub integrity: String,
    pub foreign_key_violations: u64,
    pub tenants: u64,
    pub tickets: u64,
}

/// Checks the database at `path`: integrity, foreign keys and schema version.
pub fn check(path: &Path) -> Result<Report, String> {
    if !path.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let fail = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => {
            format!("{} is not a SQLite database", path.display())
        }
        _ => format!("{}: {e}", path.display()),
    };
    let schema_version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(fail)?;
    let problems: Vec<String> = conn
        .prepare("PRAGMA integrity_check(5)")
        .and_then(|mut s| {
            s.query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(fail)?;
    let integrity = problems.join("; ");
    let foreign_key_violations: u64 = conn
        .prepare("PRAGMA foreign_key_check")
        .and_then(|mut s| {
            s.query_map([], |_| Ok(()))?
                .try_fold(0u64, |n, r| r.map(|()| n + 1))
        })
        .map_err(fail)?;
    let count = |table: &str| -> u64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get::<_, i64>(0)
        })
        .map_or(0, |n| u64::try_from(n).unwrap_or(0))
    };
    let (tenants, tickets) = if schema_version > 0 {
        (count("tenants"), count("tickets"))
    } else {
        (0, 0)
    };
    let verdict = if integrity != "ok" {
        format!("it is damaged: {integrity}")
    } else if foreign_key_violations > 0 {
        format!("{foreign_key_violations} row(s) break foreign keys")
    } else if schema_version > SCHEMA_VERSION {
        format!(
            "its schema version {schema_version} is newer than this threada's \
             ({SCHEMA_VERSION}); use a newer binary"
        )
    } else if schema_version == 0 && count("sqlite_schema") > 0 {
        "it is not a threada database (no schema version)".to_string()
    } else {
        let upgrade = if schema_version < SCHEMA_VERSION {
            format!(", upgraded to {SCHEMA_VERSION} at start")
        } else {
            String::new()
        };
        format!(
            "schema {schema_version}{upgrade}, integrity ok, foreign keys ok, \
             {tenants} tenant(s), {tickets} ticket(s)"
        )
    };
    let servable = integrity == "ok"
        && foreign_key_violations == 0
        && schema_version <= SCHEMA_VERSION
        && !(schema_version == 0 && count("sqlite_schema") > 0);
    Ok(Report {
        path: path.display().to_string(),
        servable,
        verdict,
        schema_version,
        binary_schema_version: SCHEMA_VERSION,
        integrity,
        foreign_key_violations,
        tenants,
        tickets,
    })
}
