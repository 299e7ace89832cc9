//! The maintenance thread: WAL checkpoints beside the writer, and the hourly purge of
//! expired idempotency keys and rotated-out key secrets.
//!
//! Checkpoints are PASSIVE (never TRUNCATE): they copy committed pages from the WAL
//! into the database file without blocking the writer or readers, on their own
//! connection, so a commit never waits for one.

use std::sync::Weak;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{DbError, Writer};
use crate::clock::Timestamp;
use crate::config::DatabaseConfig;

const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Starts the thread; it stops by itself once the writer is gone.
pub fn start(config: &DatabaseConfig, writer: Weak<Writer>) {
    let config = config.clone();
    let spawned = std::thread::Builder::new()
        .name("threada-maintenance".into())
        .spawn(move || run(&config, &writer));
    if let Err(e) = spawned {
        log::warn!("cannot start the maintenance thread: {e}");
    }
}

fn run(config: &DatabaseConfig, writer: &Weak<Writer>) {
    let conn = match Connection::open(&config.path).and_then(|c| {
        c.busy_timeout(Duration::from_millis(config.busy_timeout_ms))?;
        Ok(c)
    }) {
        Ok(conn) => conn,
        Err(e) => {
            log::warn!("maintenance thread: cannot open the database: {e}");
            return;
        }
    };
    let mut last_purge = Instant::now();
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        let Some(writer) = writer.upgrade() else {
            return;
        };
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            log::debug!("checkpoint skipped: {e}");
        }
        if last_purge.elapsed() >= PURGE_EVERY {
            last_purge = Instant::now();
            match writer.run_blocking(|conn| purge_expired(conn, Timestamp::now())) {
                Ok(purged) if purged > 0 => log::info!("purged {purged} expired records"),
                Ok(_) => {}
                Err(e) => log::warn!("purging expired records failed: {e}"),
            }
        }
    }
}

/// Deletes expired idempotency keys and key secrets, tenant by tenant.
pub fn purge_expired(conn: &Connection, now: Timestamp) -> Result<usize, DbError> {
    let mut purged = 0;
    for tenant_id in super::tenants::ids(conn)? {
        purged += super::idempotency::purge_expired(conn, &tenant_id, now)?;
        purged += super::keys::purge_expired_secrets(conn, &tenant_id, now)?;
    }
    Ok(purged)
}
