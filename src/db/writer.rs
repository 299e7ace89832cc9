//! Group commit: one connection on its own thread runs every write of the server.
//!
//! Jobs queue on a channel. The thread takes whatever has queued up (up to
//! `MAX_BATCH`), opens one `BEGIN IMMEDIATE` transaction, runs each job inside its own
//! `SAVEPOINT` (a failing job rolls back only itself), then issues one `COMMIT` — one
//! fsync for the whole group. Callers hear back only after that COMMIT returned, so a
//! reply still means "durable". While one group commits, the next one queues up, which
//! is where the throughput comes from.
//!
//! With `database.wal_autocheckpoint = 0` checkpoints belong to an external replicator
//! (Litestream), which copies the WAL, checkpoints it and then restarts it with a
//! write of its own. Under a steady stream of writes that never works: the WAL keeps
//! growing, and a commit slipped in between the replicator's checkpoint and its
//! restart can leave its copy inconsistent. So once the WAL holds `YIELD_PAGES` pages
//! the writer holds its next group back until the WAL has restarted (its header's
//! salt changes), for at most `YIELD_WAIT`. When nothing restarts it for `YIELD_FOR`
//! (no replicator runs, or a long reader holds the WAL), the writer logs why, stops
//! waiting, and runs a PASSIVE checkpoint itself every `YIELD_PAUSE` while the WAL is
//! large (safe beside Litestream: a checkpoint never passes its read lock), until the
//! WAL has restarted.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};
use tokio::sync::oneshot;

use super::DbError;
use crate::metrics::Metrics;

/// Most jobs in one transaction: bounds the latency one commit adds to its first job.
const MAX_BATCH: usize = 256;
/// Jobs that may wait for the writer before new writes are answered 503.
const QUEUE_CAPACITY: usize = 4096;
/// WAL pages (16 MiB) past which the writer waits for a replicator's checkpoint;
/// docs/litestream.yml has Litestream force its checkpoint at the same size.
const YIELD_PAGES: i32 = 4000;
/// The longest one wait: a replicator that checks the WAL every 500 ms comes by.
const YIELD_WAIT: Duration = Duration::from_millis(600);
/// How often the WAL header is looked at while waiting.
const YIELD_POLL: Duration = Duration::from_millis(2);
/// How long the writer keeps waiting before concluding that no one checkpoints...
const YIELD_FOR: Duration = Duration::from_secs(3);
/// ...and how often it then checkpoints itself while the WAL stays large.
const YIELD_PAUSE: Duration = Duration::from_secs(1);

thread_local! {
    /// Pages in the WAL after the writer thread's last commit (its WAL hook's count).
    static WAL_PAGES: Cell<i32> = const { Cell::new(0) };
}

fn count_wal_pages(_: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|count| count.set(pages));
    Ok(())
}

/// The salts of a WAL file's header: they change whenever the WAL restarts.
fn wal_salts(wal: &Path) -> Option<[u8; 8]> {
    use std::os::unix::fs::FileExt;
    let mut salts = [0u8; 8];
    std::fs::File::open(wal)
        .and_then(|file| file.read_exact_at(&mut salts, 16))
        .ok()?;
    Some(salts)
}

/// The writer's side of checkpoints left to a replicator.
#[derive(Debug)]
struct GiveWay {
    wal: PathBuf,
    /// Since when the writer has been waiting for a restart.
    since: Option<Instant>,
    /// Set once waiting gave nothing: the writer's last own checkpoint.
    fallback: Option<Instant>,
}

impl GiveWay {
    /// After a group that left `pages` in the WAL: waits, when the WAL is large, for
    /// the replicator to checkpoint and restart it.
    fn after_group(&mut self, conn: &Connection, pages: i32) {
        let now = Instant::now();
        if pages < YIELD_PAGES {
            self.since = None;
            self.fallback = None;
            return;
        }
        if let Some(last) = self.fallback {
            if now.duration_since(last) >= YIELD_PAUSE {
                self.fallback = Some(now);
                if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                    log::warn!("checkpoint: {e}");
                }
            }
            return;
        }
        let since = *self.since.get_or_insert(now);
        if now.duration_since(since) >= YIELD_FOR {
            log::warn!(
                "the WAL holds {pages} pages and nothing restarted it for {} s \
                 (database.wal_autocheckpoint is 0: is Litestream running, with \
                 max-checkpoint-page-count set as in docs/litestream.yml?); writing on, \
                 with checkpoints of threada's own until it restarts",
                YIELD_FOR.as_secs()
            );
            self.since = None;
            self.fallback = Some(now - YIELD_PAUSE);
            return;
        }
        let before = wal_salts(&self.wal);
        while now.elapsed() < YIELD_WAIT {
            std::thread::sleep(YIELD_POLL);
            if wal_salts(&self.wal) != before {
                WAL_PAGES.with(|count| count.set(0));
                self.since = None;
                return;
            }
        }
    }
}

/// Why a whole group failed; every job of the group hears it.
#[derive(Debug, Clone, Copy)]
enum GroupFailure {
    Busy,
    Full,
    Failed,
}

impl From<GroupFailure> for DbError {
    fn from(failure: GroupFailure) -> DbError {
        match failure {
            GroupFailure::Busy => DbError::Busy,
            GroupFailure::Full => DbError::Full,
            // SQLite rolls a whole transaction back only for storage trouble (I/O,
            // full disk, out of memory): nothing of the group was written.
            GroupFailure::Failed => DbError::Io("the write transaction was rolled back".into()),
        }
    }
}

/// The error of a write job, as the writer needs to see it: when a job's failure rolls
/// back its whole group, every job of the group hears why.
pub trait JobError: From<DbError> + Send + 'static {
    /// Whether this error is the disk being full.
    fn is_disk_full(&self) -> bool;
}

impl JobError for DbError {
    fn is_disk_full(&self) -> bool {
        matches!(self, DbError::Full)
    }
}

/// How a job ended inside its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobEnd {
    Done,
    Failed,
    DiskFull,
}

impl From<rusqlite::Error> for GroupFailure {
    fn from(error: rusqlite::Error) -> GroupFailure {
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => GroupFailure::Busy,
            Some(ErrorCode::DiskFull) => GroupFailure::Full,
            _ => {
                log::error!("write transaction failed: {error}");
                GroupFailure::Failed
            }
        }
    }
}

/// A queued write, type-erased so that one channel carries every kind of job.
trait Work: Send {
    /// Runs the job inside the group's transaction.
    fn run(&mut self, conn: &Connection) -> JobEnd;
    /// Delivers the job's outcome once the group's COMMIT has succeeded or failed.
    fn finish(self: Box<Self>, group: Result<(), GroupFailure>);
}

struct Job<F, T, E> {
    work: Option<F>,
    outcome: Option<Result<T, E>>,
    reply: Option<oneshot::Sender<Result<T, E>>>,
}

impl<F, T, E> Work for Job<F, T, E>
where
    F: FnOnce(&Connection) -> Result<T, E> + Send,
    T: Send,
    E: JobError,
{
    fn run(&mut self, conn: &Connection) -> JobEnd {
        let Some(work) = self.work.take() else {
            return JobEnd::Failed;
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| work(conn))).unwrap_or_else(|_| {
            log::error!("a write job panicked; its changes were rolled back");
            Err(E::from(DbError::Panicked))
        });
        let end = match &outcome {
            Ok(_) => JobEnd::Done,
            Err(e) if e.is_disk_full() => JobEnd::DiskFull,
            Err(_) => JobEnd::Failed,
        };
        self.outcome = Some(outcome);
        end
    }

    fn finish(self: Box<Self>, group: Result<(), GroupFailure>) {
        let outcome = match (self.outcome, group) {
            // A job that failed on its own keeps its own error: nothing of it was written.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(failure)) => Err(E::from(failure.into())),
            (None, Ok(())) => Err(E::from(DbError::Closed)),
        };
        if let Some(reply) = self.reply {
            // The caller may have gone away (client disconnected); the write stands.
            let _ = reply.send(outcome);
        }
    }
}

/// Handle to the writer thread; dropping the last one drains the queue and stops it.
pub struct Writer {
    sender: Option<SyncSender<Box<dyn Work>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    metrics: Metrics,
}

impl Writer {
    /// Starts the writer thread on `conn`, which must be configured and migrated;
    /// it records its queue and commits in `metrics`. With `give_way`, checkpoints
    /// are a replicator's and the writer gives way to them (see the module's doc).
    pub fn start(conn: Connection, metrics: Metrics, give_way: bool) -> Writer {
        let (sender, receiver) = sync_channel::<Box<dyn Work>>(QUEUE_CAPACITY);
        let recorder = metrics.clone();
        let way = give_way.then(|| {
            conn.wal_hook(Some(count_wal_pages));
            GiveWay {
                wal: PathBuf::from(format!("{}-wal", conn.path().unwrap_or_default())),
                since: None,
                fallback: None,
            }
        });
        let thread = std::thread::Builder::new()
            .name("threada-writer".into())
            .spawn(move || run_groups(&conn, &receiver, &recorder, way))
            .map_err(|e| log::error!("cannot start the writer thread: {e}"))
            .ok();
        Writer {
            sender: Some(sender),
            thread: Mutex::new(thread),
            metrics,
        }
    }

    /// Queues `f` and waits (asynchronously) until the transaction holding it commits.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: JobError,
    {
        let receiver = self.submit(f)?;
        receiver
            .await
            .unwrap_or_else(|_| Err(E::from(DbError::Closed)))
    }

    /// Like `run`, for threads that may block (action threads).
    pub fn run_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: JobError,
    {
        let receiver = self.submit(f)?;
        receiver
            .blocking_recv()
            .unwrap_or_else(|_| Err(E::from(DbError::Closed)))
    }

    /// Queues `f` without waiting for it (bookkeeping such as `last_used_at`).
    pub fn spawn<F>(&self, f: F)
    where
        F: FnOnce(&Connection) -> Result<(), DbError> + Send + 'static,
    {
        if let Err(e) = self.submit(f) {
            log::debug!("background write dropped: {e}");
        }
    }

    fn submit<T, E, F>(&self, f: F) -> Result<oneshot::Receiver<Result<T, E>>, DbError>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: JobError,
    {
        let (reply, receiver) = oneshot::channel();
        let job: Box<dyn Work> = Box::new(Job {
            work: Some(f),
            outcome: None,
            reply: Some(reply),
        });
        let sender = self.sender.as_ref().ok_or(DbError::Closed)?;
        // Counted before it can be taken, so that the gauge never dips below zero.
        self.metrics.writer_queue(1);
        match sender.try_send(job) {
            Ok(()) => Ok(receiver),
            Err(TrySendError::Full(_)) => {
                self.metrics.writer_queue(-1);
                Err(DbError::Overloaded)
            }
            Err(TrySendError::Disconnected(_)) => {
                self.metrics.writer_queue(-1);
                Err(DbError::Closed)
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel lets the thread finish what is queued, then exit.
        self.sender.take();
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            log::error!("the writer thread panicked");
        }
    }
}

fn run_groups(
    conn: &Connection,
    receiver: &Receiver<Box<dyn Work>>,
    metrics: &Metrics,
    mut way: Option<GiveWay>,
) {
    let mut group: Vec<Box<dyn Work>> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = receiver.recv() {
        group.push(first);
        while group.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        metrics.writer_queue(-(group.len() as i64));
        let outcome = commit_group(conn, &mut group);
        if outcome.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        metrics.commit(group.len(), started.elapsed().as_secs_f64());
        for job in group.drain(..) {
            job.finish(outcome);
        }
        // After the replies: a wait delays the next group, not this one.
        if let Some(way) = &mut way {
            way.after_group(conn, WAL_PAGES.with(Cell::get));
        }
    }
}

fn commit_group(conn: &Connection, group: &mut [Box<dyn Work>]) -> Result<(), GroupFailure> {
    super::search::forget_since(0);
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    for job in group.iter_mut() {
        conn.prepare_cached("SAVEPOINT job")?.execute([])?;
        let queued = super::search::mark();
        let end = job.run(conn);
        if conn.is_autocommit() {
            // A statement error (I/O, disk full) rolled back the whole transaction.
            return Err(match end {
                JobEnd::DiskFull => GroupFailure::Full,
                _ => GroupFailure::Failed,
            });
        }
        if end != JobEnd::Done {
            conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
            super::search::forget_since(queued);
        }
        conn.prepare_cached("RELEASE job")?.execute([])?;
    }
    // The group's search documents, in one go (see `search`).
    super::search::flush(conn).map_err(|e| match e {
        DbError::Full => GroupFailure::Full,
        DbError::Busy => GroupFailure::Busy,
        other => {
            log::error!("writing the search index failed: {other}");
            GroupFailure::Failed
        }
    })?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    Ok(())
}
