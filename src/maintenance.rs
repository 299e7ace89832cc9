//! The maintenance thread: work that runs on a clock rather than on a request, always
//! through the writer and in small batches, so that it never holds the writer for
//! more than a few milliseconds at a time.
//!
//! - hourly (and at startup): expired idempotency keys and rotated-out key secrets;
//!   events older than `events.retention_days`.
//!
//! WAL checkpoints stay SQLite's automatic PASSIVE ones, run by the writer every 1000
//! pages: checkpointing from this thread instead was measured (docs/PERFORMANCE.md)
//! to cost throughput and add latency spikes, its database fsyncs colliding with the
//! writer's WAL fsyncs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::clock::Timestamp;
use crate::config::Config;
use crate::db::{self, Db, DbError};

const TICK: Duration = Duration::from_millis(500);
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// Rows one batch removes: one short writer job.
const BATCH: u32 = 500;

/// What the thread needs to know.
#[derive(Debug, Clone)]
struct Settings {
    event_retention: Duration,
}

/// The running thread; stops when dropped.
pub struct Maintenance {
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Maintenance {
    /// Starts the thread on `db`.
    pub fn start(db: Arc<Db>, config: &Config) -> Maintenance {
        let settings = Settings {
            event_retention: Duration::from_secs(config.events.retention_days * 86_400),
        };
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stopping);
        let thread = std::thread::Builder::new()
            .name("threada-maintenance".into())
            .spawn(move || run(&db, &settings, &flag))
            .map_err(|e| log::warn!("cannot start the maintenance thread: {e}"))
            .ok();
        Maintenance { stopping, thread }
    }

    /// Stops the thread at its next tick.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }
}

impl Drop for Maintenance {
    fn drop(&mut self) {
        self.stop();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            log::error!("the maintenance thread panicked");
        }
    }
}

fn run(db: &Db, settings: &Settings, stopping: &AtomicBool) {
    let mut last_purge: Option<Instant> = None;
    while !stopping.load(Ordering::Acquire) {
        if last_purge.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
            last_purge = Some(Instant::now());
            purge(db, settings, stopping);
        }
        std::thread::sleep(TICK);
    }
}

/// One hourly round: every expired record, in batches.
fn purge(db: &Db, settings: &Settings, stopping: &AtomicBool) {
    let now = Timestamp::now();
    match db
        .writer()
        .run_blocking(move |conn| purge_expired(conn, now))
    {
        Ok(purged) if purged > 0 => log::info!("purged {purged} expired records"),
        Ok(_) => {}
        Err(e) => log::warn!("purging expired records failed: {e}"),
    }
    let tenants = match db.read_blocking(db::tenants::ids) {
        Ok(tenants) => tenants,
        Err(e) => {
            log::warn!("maintenance: {e}");
            return;
        }
    };
    let cutoff = now.minus(settings.event_retention);
    for tenant_id in tenants {
        loop {
            if stopping.load(Ordering::Acquire) {
                return;
            }
            let tenant = tenant_id.clone();
            let removed = db
                .writer()
                .run_blocking(move |conn| db::events::purge_before(conn, &tenant, cutoff, BATCH));
            match removed {
                Ok(0) => break,
                Ok(n) => log::debug!("removed {n} events of {tenant_id} past retention"),
                Err(e) => {
                    log::warn!("removing old events failed: {e}");
                    break;
                }
            }
        }
    }
}

/// Deletes expired idempotency keys and key secrets, tenant by tenant.
pub fn purge_expired(conn: &Connection, now: Timestamp) -> Result<usize, DbError> {
    let mut purged = 0;
    for tenant_id in db::tenants::ids(conn)? {
        purged += db::idempotency::purge_expired(conn, &tenant_id, now)?;
        purged += db::keys::purge_expired_secrets(conn, &tenant_id, now)?;
    }
    Ok(purged)
}
