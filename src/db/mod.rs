//! The only place SQL lives.
//!
//! Reads run on pooled, read-only connections inside `web::block`; writes are jobs for
//! the single writer thread (`writer.rs`), which commits them in groups. Every table
//! module exposes plain functions on `&Connection` that take the caller's tenant.

pub mod actions;
pub mod audit;
pub mod backup;
pub mod check;
pub mod contacts;
pub mod events;
pub mod idempotency;
pub mod keys;
pub mod messages;
pub mod meta;
pub mod search;
mod spare;
pub mod stats;
pub mod tenants;
pub mod tickets;
pub mod webhooks;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::config::{DatabaseConfig, Synchronous};
use crate::error::{ApiError, ErrorKind};
use crate::metrics::Metrics;
pub use writer::{JobError, Writer};

/// `schema.sql`: the steps that build the schema, each starting with `-- @step N:`.
const SCHEMA: &str = include_str!("../../schema.sql");
/// The line that starts a step.
const STEP_MARKER: &str = "-- @step ";

/// The schema version this binary writes: how many steps `schema.sql` holds.
pub const SCHEMA_VERSION: i64 = schema_steps();

const fn schema_steps() -> i64 {
    // Counts the step markers at the start of a line (const: no iterators).
    let (text, marker) = (SCHEMA.as_bytes(), STEP_MARKER.as_bytes());
    let (mut count, mut at) = (0, 0);
    while at + marker.len() <= text.len() {
        let line_start = at == 0 || text[at - 1] == b'\n';
        let mut matched = line_start;
        let mut i = 0;
        while matched && i < marker.len() {
            matched = text[at + i] == marker[i];
            i += 1;
        }
        if matched {
            count += 1;
        }
        at += 1;
    }
    count
}

/// The SQL of each step, in order.
fn migrations() -> Vec<&'static str> {
    let mut steps: Vec<&'static str> = Vec::new();
    let mut start: Option<usize> = None;
    let mut offset = 0;
    for line in SCHEMA.split_inclusive('\n') {
        if line.starts_with(STEP_MARKER) {
            if let Some(begin) = start {
                steps.push(&SCHEMA[begin..offset]);
            }
            start = Some(offset);
        }
        offset += line.len();
    }
    if let Some(begin) = start {
        steps.push(&SCHEMA[begin..]);
    }
    steps
}

/// The pool of read-only connections.
pub type Pool = r2d2::Pool<SqliteConnectionManager>;

/// What can go wrong below the HTTP layer. SQL text and paths stay in the logs.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("the database is busy")]
    Busy,
    #[error("the write queue is full")]
    Overloaded,
    #[error("the database writer has stopped")]
    Closed,
    #[error("the database disk is full")]
    Full,
    #[error("the database could not read or write its files: {0}")]
    Io(String),
    #[error("a database job panicked")]
    Panicked,
    #[error("connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl From<rusqlite::Error> for DbError {
    fn from(error: rusqlite::Error) -> DbError {
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => DbError::Busy,
            Some(ErrorCode::DiskFull) => DbError::Full,
            Some(ErrorCode::SystemIoFailure) => DbError::Io(error.to_string()),
            _ => DbError::Sqlite(error),
        }
    }
}

/// How a storage failure reaches the client: busy, overloaded, closing and full are
/// 503s with `Retry-After`; anything else is a 500 whose cause is logged.
impl From<DbError> for ApiError {
    fn from(error: DbError) -> ApiError {
        match error {
            DbError::Busy => ApiError::unavailable("the database is busy; retry shortly", 1),
            DbError::Overloaded => {
                ApiError::unavailable("too many writes in flight; retry shortly", 1)
            }
            DbError::Closed => ApiError::unavailable("the server is shutting down", 5),
            DbError::Full => ApiError::out_of_space(30),
            DbError::Io(cause) => {
                log::error!("database I/O: {cause}");
                ApiError::unavailable(
                    "the server could not write to its disk; nothing was written; retry shortly",
                    5,
                )
            }
            DbError::Pool(e) => {
                log::warn!("database pool: {e}");
                ApiError::unavailable("no database connection available; retry shortly", 1)
            }
            other => ApiError::internal(other),
        }
    }
}

impl JobError for ApiError {
    fn is_disk_full(&self) -> bool {
        self.kind == ErrorKind::InsufficientStorage
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(error: rusqlite::Error) -> ApiError {
        ApiError::from(DbError::from(error))
    }
}

/// Whether an error is a UNIQUE constraint violation.
pub fn is_unique_violation(error: &DbError) -> bool {
    matches!(
        error,
        DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// Pooled readers plus the one writer: everything the server needs from SQLite.
pub struct Db {
    pool: Pool,
    writer: Arc<Writer>,
}

impl Db {
    /// Opens (creating if needed) and migrates the database, marks actions a crash
    /// left running as interrupted, then starts the pool and the writer thread (which
    /// records in `metrics`).
    pub fn open(config: &DatabaseConfig, metrics: Metrics) -> Result<Db, String> {
        let conn = open_connection(config)?;
        let interrupted = in_transaction(&conn, |tx| {
            actions::interrupt_running(tx, crate::clock::Timestamp::now())
        })
        .map_err(|e: DbError| format!("database {}: {e}", config.path.display()))?;
        if !interrupted.is_empty() {
            log::warn!(
                "{} action(s) left running by an earlier stop were marked failed (interrupted)",
                interrupted.len()
            );
        }
        let manager = {
            let config = config.clone();
            SqliteConnectionManager::file(&config.path)
                .with_flags(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .with_init(move |c| {
                    configure(c, &config)?;
                    // Readers never write: a bug cannot bypass the writer's transactions.
                    c.pragma_update(None, "query_only", true)
                })
        };
        let pool = r2d2::Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(1))
            // A checkout test would parse and run a statement per request.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_millis(config.busy_timeout_ms.max(1000)))
            .build(manager)
            .map_err(|e| format!("cannot open database {}: {e}", config.path.display()))?;
        let writer = Arc::new(Writer::start(conn, metrics, config.wal_autocheckpoint == 0));
        Ok(Db { pool, writer })
    }

    /// Runs `f` on a pooled read-only connection, off the actix workers.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::web::block(move || {
            let conn = pool.get().map_err(DbError::Pool)?;
            let _spares = spare::lend(&pool);
            f(&conn)
        })
        .await
        .map_err(|_| E::from(DbError::Panicked))?
    }

    /// Runs `f` on a pooled connection from a thread that may block (CLI-style callers,
    /// action threads).
    pub fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E>,
        E: From<DbError>,
    {
        let conn = self.pool.get().map_err(DbError::Pool)?;
        let _spares = spare::lend(&self.pool);
        f(&conn)
    }

    /// The group-commit writer, for write jobs.
    pub fn writer(&self) -> &Arc<Writer> {
        &self.writer
    }
}

/// Held while a server serves a database: an OS lock on `<database>.lock`, so that a
/// second server on the same file is refused (the CLI does not take it and works
/// beside a running server). The OS releases it when the process ends, however it ends.
#[derive(Debug)]
pub struct ServeLock {
    _file: std::fs::File,
}

/// Takes the serving lock of the database at `path`, or says who holds it.
pub fn lock_for_serving(path: &Path) -> Result<ServeLock, String> {
    use std::os::unix::fs::OpenOptionsExt;
    check_location(path)?;
    let lock_path = PathBuf::from(format!("{}.lock", path.display()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| format!("database {} is not writable: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(ServeLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "database {} is already being served by another threada process (it holds {}); \
             stop that one first (the tenant, key and backup commands work beside it)",
            path.display(),
            lock_path.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!(
            "cannot lock {} to serve the database: {e}",
            lock_path.display()
        )),
    }
}

/// Whether another process serves the database at `path` (holds its serving lock).
/// Never asked by a server about its own database: a second lock from the same
/// process would be refused too.
fn served_elsewhere(path: &Path) -> bool {
    let lock_path = PathBuf::from(format!("{}.lock", path.display()));
    let Ok(file) = std::fs::OpenOptions::new().write(true).open(&lock_path) else {
        return false;
    };
    matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

/// Opens the database for a CLI command, as `open_connection` does, except that a
/// database a running server holds is never upgraded under it: that server's binary
/// would go on writing the older schema's way (its events outside their tickets'
/// chains, for one). The new binary's `serve` upgrades it once the old one stops.
pub fn open_beside_server(config: &DatabaseConfig) -> Result<Connection, String> {
    let path = &config.path;
    if path.exists() && served_elsewhere(path) {
        let version: i64 = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|conn| conn.pragma_query_value(None, "user_version", |row| row.get(0)))
            .map_err(|e| describe_open_error(path, e))?;
        if (1..SCHEMA_VERSION).contains(&version) {
            return Err(format!(
                "database {} is served by a running threada with schema version {version}; \
                 this binary would upgrade it to {SCHEMA_VERSION} under that server: stop the \
                 server and start this binary's serve (it upgrades the file), then run the \
                 command again",
                path.display()
            ));
        }
    }
    open_connection(config)
}

/// Every row of a one-column query, for tests.
#[cfg(test)]
fn column<T: rusqlite::types::FromSql>(conn: &Connection, sql: &str) -> Vec<T> {
    let mut statement = conn.prepare(sql).unwrap();
    let values = statement.query_map([], |row| row.get(0)).unwrap();
    values.map(Result::unwrap).collect()
}

/// Sets the per-connection pragmas every connection needs.
fn configure(conn: &Connection, config: &DatabaseConfig) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_millis(config.busy_timeout_ms))?;
    conn.pragma_update(None, "synchronous", config.synchronous.pragma_value())?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Savepoint journals (one per write job) stay in memory instead of temp files.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Deleted and overwritten content is zeroed in the file (erasure must leave no
    // trace of a contact once the WAL is checkpointed).
    conn.pragma_update(None, "secure_delete", true)?;
    // The checkpoint policy: SQLite's PASSIVE autocheckpoint after this many WAL pages
    // (0 = none: Litestream or another replicator checkpoints), and how far a reset WAL
    // is truncated.
    conn.pragma_update(None, "wal_autocheckpoint", config.wal_autocheckpoint)?;
    conn.pragma_update(None, "journal_size_limit", config.journal_size_limit)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Opens a read-write connection with the pragmas set, in WAL mode, with the schema
/// migrated to `SCHEMA_VERSION`. Used by the writer and by the CLI.
pub fn open_connection(config: &DatabaseConfig) -> Result<Connection, String> {
    let path = &config.path;
    check_location(path)?;
    make_private(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open database {}: {e}", path.display()))?;
    let describe = |e: rusqlite::Error| describe_open_error(path, e);
    configure(&conn, config).map_err(describe)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(describe)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!(
            "database {}: cannot switch to WAL mode (got {mode})",
            path.display()
        ));
    }
    migrate(&conn).map_err(|e| match e {
        MigrateError::TooNew(version) => format!(
            "database {} has schema version {version}, newer than this threada supports \
             ({SCHEMA_VERSION}); use a newer threada binary",
            path.display()
        ),
        MigrateError::Sql(e) => describe_open_error(path, e),
    })?;
    meta::ensure_secrets(&conn).map_err(describe)?;
    Ok(conn)
}

/// Creates the database file owner-only (0600) if it is new, and takes group and
/// other access away from an existing one and its `-wal` and `-shm` files: they hold
/// signing secrets and every tenant's contacts. SQLite creates the `-wal` and `-shm`
/// files with the database file's mode.
fn make_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("database {} is not writable: {e}", path.display())),
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        let Ok(metadata) = std::fs::metadata(&file) else {
            continue;
        };
        if metadata.permissions().mode() & 0o077 != 0 {
            // Not the owner (a CLI run by another user): leave it, SQLite still works.
            if let Err(e) = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            {
                log::warn!("cannot make {} owner-only: {e}", file.display());
            }
        }
    }
    Ok(())
}

fn check_location(path: &Path) -> Result<(), String> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(format!(
            "database {}: directory {} does not exist",
            path.display(),
            parent.display()
        ));
    }
    if path.is_dir() {
        return Err(format!("database {} is a directory", path.display()));
    }
    Ok(())
}

fn describe_open_error(path: &Path, error: rusqlite::Error) -> String {
    match error.sqlite_error_code() {
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            format!("database {} is not writable: {error}", path.display())
        }
        Some(ErrorCode::NotADatabase) => {
            format!("{} is not a SQLite database", path.display())
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => format!(
            "database {} stayed locked past busy_timeout_ms",
            path.display()
        ),
        _ => format!("database {}: {error}", path.display()),
    }
}

enum MigrateError {
    TooNew(i64),
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(error: rusqlite::Error) -> MigrateError {
        MigrateError::Sql(error)
    }
}

/// Applies the missing schema steps, each in its own `BEGIN IMMEDIATE` transaction.
/// The version is read inside the transaction, so two processes starting at once
/// cannot apply a step twice.
fn migrate(conn: &Connection) -> Result<(), MigrateError> {
    loop {
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(MigrateError::TooNew(version));
        }
        let Some(step) = usize::try_from(version)
            .ok()
            .and_then(|v| migrations().get(v).copied())
        else {
            tx.commit()?;
            return Ok(());
        };
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
        log::info!("database schema migrated to version {}", version + 1);
    }
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction on a plain connection (the CLI's path).
pub fn in_transaction<T, E, F>(conn: &Connection, f: F) -> Result<T, E>
where
    F: FnOnce(&Connection) -> Result<T, E>,
    E: From<DbError>,
{
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
        .map_err(DbError::from)?;
    search::forget_since(0);
    let value = match f(&tx) {
        Ok(value) => value,
        Err(error) => {
            search::forget_since(0);
            return Err(error);
        }
    };
    search::flush(&tx)?;
    tx.commit().map_err(DbError::from)?;
    Ok(value)
}

/// Default synchronous mode name, for docs and logs.
pub fn describe_sync(mode: Synchronous) -> &'static str {
    match mode {
        Synchronous::Full => "full (every acknowledged write survives a power cut)",
        Synchronous::Normal => "normal (a power cut may lose the last commits)",
    }
}
