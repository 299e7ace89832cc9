//! The maintenance thread: the hourly purge of expired idempotency keys and
//! rotated-out key secrets, through the writer.
//!
//! WAL checkpoints stay SQLite's automatic PASSIVE ones, run by the writer every 1000
//! pages: checkpointing from this thread instead was measured (docs/PERFORMANCE.md)
//! to cost throughput and add latency spikes, its database fsyncs colliding with the
//! writer's WAL fsyncs.

use std::sync::Weak;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{DbError, Writer};
use crate::clock::Timestamp;

const TICK: Duration = Duration::from_secs(1);
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Starts the thread; it stops by itself once the writer is gone.
pub fn start(writer: Weak<Writer>) {
    let spawned = std::thread::Builder::new()
        .name("threada-maintenance".into())
        .spawn(move || run(&writer));
    if let Err(e) = spawned {
        log::warn!("cannot start the maintenance thread: {e}");
    }
}

fn run(writer: &Weak<Writer>) {
    let mut last_purge = Instant::now();
    loop {
        std::thread::sleep(TICK);
        let Some(writer) = writer.upgrade() else {
            return;
        };
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
