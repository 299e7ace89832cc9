//! The maintenance thread: work that runs on a clock rather than on a request, always
//! through the writer and in small batches, so that it never holds the writer for
//! more than a few milliseconds at a time.
//!
//! - hourly (and at startup): expired idempotency keys and rotated-out key secrets;
//!   events older than `events.retention_days`, and finished webhook deliveries as
//!   old; closed tickets past `retention.closed_tickets_days`, erased a few at a time;
//! - on `backup.schedule`: an online backup into `backup.dir`, checked, keeping the
//!   newest `backup.keep`.
//!
//! WAL checkpoints stay SQLite's automatic PASSIVE ones, run by the writer every
//! `database.wal_autocheckpoint` pages: checkpointing from this thread instead was
//! measured (docs/PERFORMANCE.md) to cost throughput and add latency spikes, its
//! database fsyncs colliding with the writer's WAL fsyncs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use rusqlite::Connection;
use serde::Serialize;

use crate::clock::Timestamp;
use crate::config::Config;
use crate::db::{self, Db, DbError};
use crate::error::ApiError;
use crate::lifecycle;
use crate::metrics::Metrics;

const TICK: Duration = Duration::from_millis(500);
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// Rows one batch removes: one short writer job.
const BATCH: u32 = 500;
/// Closed tickets one retention job erases (each with its messages and actions).
const EXPIRE_BATCH: u32 = 10;
/// Scheduled backups are named `threada-<UTC time>.db`.
const BACKUP_PREFIX: &str = "threada-";
const BACKUP_SUFFIX: &str = ".db";

/// Scheduled backups: where, how often, how many.
#[derive(Debug, Clone)]
struct BackupPlan {
    every: Duration,
    dir: PathBuf,
    keep: usize,
}

/// What the thread needs to know.
#[derive(Debug, Clone)]
struct Settings {
    event_retention: Duration,
    closed_ticket_retention: Option<Duration>,
    backups: Option<BackupPlan>,
}

/// How scheduled backups are doing, for the console and `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BackupStatus {
    /// Whether `backup.schedule` is set.
    pub enabled: bool,
    pub dir: Option<String>,
    pub last_success_at: Option<Timestamp>,
    pub last_file: Option<String>,
    pub last_bytes: Option<u64>,
    pub last_error_at: Option<Timestamp>,
    pub last_error: Option<String>,
    /// Scheduled backups written and failed since the server started.
    pub successes: u64,
    pub failures: u64,
}

/// The running thread; stops when dropped.
pub struct Maintenance {
    stopping: Arc<AtomicBool>,
    backups: Arc<Mutex<BackupStatus>>,
    thread: Option<JoinHandle<()>>,
}

impl Maintenance {
    /// Starts the thread on `db`; scheduled backups are counted in `metrics`.
    pub fn start(db: Arc<Db>, config: &Config, metrics: Metrics) -> Maintenance {
        let days = |n: u64| Duration::from_secs(n * 86_400);
        let settings = Settings {
            event_retention: days(config.events.retention_days),
            closed_ticket_retention: (config.retention.closed_tickets_days > 0)
                .then(|| days(config.retention.closed_tickets_days)),
            backups: config.backup.interval().map(|every| BackupPlan {
                every,
                dir: config.backup.directory(&config.database.path),
                keep: config.backup.keep as usize,
            }),
        };
        let backups = Arc::new(Mutex::new(BackupStatus {
            enabled: settings.backups.is_some(),
            dir: settings
                .backups
                .as_ref()
                .map(|plan| plan.dir.display().to_string()),
            ..BackupStatus::default()
        }));
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stopping);
        let status = Arc::clone(&backups);
        let thread = std::thread::Builder::new()
            .name("threada-maintenance".into())
            .spawn(move || run(&db, &settings, (&status, &metrics), &flag))
            .map_err(|e| log::warn!("cannot start the maintenance thread: {e}"))
            .ok();
        Maintenance {
            stopping,
            backups,
            thread,
        }
    }

    /// Stops the thread at its next tick.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// How scheduled backups are doing.
    pub fn backup_status(&self) -> BackupStatus {
        self.backups
            .lock()
            .map(|status| status.clone())
            .unwrap_or_default()
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

fn run(
    db: &Db,
    settings: &Settings,
    backups: (&Mutex<BackupStatus>, &Metrics),
    stopping: &AtomicBool,
) {
    let mut last_purge: Option<Instant> = None;
    let mut next_backup = settings.backups.as_ref().map(first_backup_at);
    while !stopping.load(Ordering::Acquire) {
        if last_purge.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
            last_purge = Some(Instant::now());
            purge(db, settings, stopping);
        }
        if let (Some(plan), Some(at)) = (&settings.backups, next_backup)
            && Instant::now() >= at
        {
            next_backup = Some(Instant::now() + plan.every);
            scheduled_backup(db, plan, backups);
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
    for tenant_id in &tenants {
        let tenant = tenant_id.clone();
        in_batches("old events", stopping, || {
            let tenant = tenant.clone();
            db.writer().run_blocking(move |conn| {
                Ok::<_, DbError>(
                    db::events::purge_before(conn, &tenant, cutoff, BATCH)?
                        + db::webhooks::purge_finished(conn, &tenant, cutoff, BATCH)?,
                )
            })
        });
    }
    if let Some(retention) = settings.closed_ticket_retention {
        let cutoff = now.minus(retention);
        for tenant_id in &tenants {
            expire_closed_tickets(db, tenant_id, cutoff, stopping);
        }
    }
}

/// Runs `batch` until it removes nothing, fails, or the thread is asked to stop.
fn in_batches<E: std::fmt::Display>(
    what: &str,
    stopping: &AtomicBool,
    mut batch: impl FnMut() -> Result<usize, E>,
) {
    while !stopping.load(Ordering::Acquire) {
        match batch() {
            Ok(0) => break,
            Ok(n) => log::debug!("removed {n} {what}"),
            Err(e) => {
                log::warn!("removing {what} failed: {e}");
                break;
            }
        }
    }
}

/// Erases the tenant's closed tickets closed before `cutoff`, a few per writer job.
fn expire_closed_tickets(db: &Db, tenant_id: &str, cutoff: Timestamp, stopping: &AtomicBool) {
    let mut total = lifecycle::Removed::default();
    in_batches("closed tickets past retention", stopping, || {
        let tenant = tenant_id.to_string();
        let ids = db.read_blocking(|conn| {
            db::tickets::closed_before(conn, &tenant, cutoff, EXPIRE_BATCH)
        })?;
        if ids.is_empty() {
            return Ok::<_, ApiError>(0);
        }
        let removed = db
            .writer()
            .run_blocking(move |conn| lifecycle::expire_closed(conn, &tenant, &ids, cutoff))?;
        total += removed;
        Ok(usize::try_from(removed.tickets).unwrap_or(0))
    });
    if total.tickets > 0 {
        log::info!(
            "retention erased {} closed ticket(s) of {tenant_id} ({} messages, {} actions)",
            total.tickets,
            total.messages,
            total.actions
        );
    }
}

/// When the first scheduled backup is due: one `every` after the newest backup in the
/// directory, or now when there is none (or it is older).
fn first_backup_at(plan: &BackupPlan) -> Instant {
    let newest = backups_in(&plan.dir)
        .last()
        .and_then(|path| std::fs::metadata(path).ok())
        .and_then(|m| m.modified().ok());
    let age = newest
        .and_then(|at| SystemTime::now().duration_since(at).ok())
        .unwrap_or(plan.every);
    Instant::now() + plan.every.saturating_sub(age)
}

/// Whether `name` is one a scheduled backup gets: `threada-20261202T181253Z.db`.
fn is_backup_name(name: &str) -> bool {
    let Some(stamp) = name
        .strip_prefix(BACKUP_PREFIX)
        .and_then(|rest| rest.strip_suffix(BACKUP_SUFFIX))
    else {
        return false;
    };
    let bytes = stamp.as_bytes();
    bytes.len() == 16
        && bytes[8] == b'T'
        && bytes[15] == b'Z'
        && bytes[..8]
            .iter()
            .chain(&bytes[9..15])
            .all(u8::is_ascii_digit)
}

/// The scheduled backups in `dir`, oldest first (their names sort by time).
fn backups_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_backup_name)
        })
        .collect();
    found.sort();
    found
}

/// Takes one scheduled backup, removes the oldest beyond `keep`, and records how it went.
fn scheduled_backup(
    db: &Db,
    plan: &BackupPlan,
    (status, metrics): (&Mutex<BackupStatus>, &Metrics),
) {
    let now = Timestamp::now();
    let stamp: String = now
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let dest = plan
        .dir
        .join(format!("{BACKUP_PREFIX}{stamp}{BACKUP_SUFFIX}"));
    let result = db::backup::private_dir(&plan.dir).and_then(|()| {
        db.read_blocking(|conn| Ok::<_, DbError>(db::backup::copy_to(conn, &dest, false)))
            .map_err(|e| e.to_string())?
    });
    metrics.backup(result.as_ref().ok().map(|_| now.unix_seconds()));
    let Ok(mut status) = status.lock() else {
        return;
    };
    match result {
        Ok(bytes) => {
            log::info!(
                "scheduled backup written to {} ({bytes} bytes)",
                dest.display()
            );
            status.last_success_at = Some(now);
            status.last_file = Some(dest.display().to_string());
            status.last_bytes = Some(bytes);
            status.successes += 1;
            let all = backups_in(&plan.dir);
            for old in all.iter().take(all.len().saturating_sub(plan.keep)) {
                match std::fs::remove_file(old) {
                    Ok(()) => log::info!("removed old backup {}", old.display()),
                    Err(e) => log::warn!("cannot remove old backup {}: {e}", old.display()),
                }
            }
        }
        Err(e) => {
            log::error!("scheduled backup to {} failed: {e}", dest.display());
            status.last_error_at = Some(now);
            status.last_error = Some(e);
            status.failures += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_scheduled_backups_are_pruned() {
        assert!(is_backup_name("threada-20261202T181253Z.db"));
        for other in [
            "threada.db",
            "threada-1.db",
            "threada-20261202T181253Z.db-wal",
            ".threada-20261202T181253Z.db.partial",
            "threada-2026120xT181253Z.db",
            "mine-20261202T181253Z.db",
        ] {
            assert!(!is_backup_name(other), "{other}");
        }
    }
}
