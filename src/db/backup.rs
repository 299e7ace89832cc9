//! Online backup through SQLite's backup API.
//!
//! The copy is taken inside one read transaction held on the source for its whole
//! length, so it is a consistent snapshot that holds every write committed before it
//! started, while the server keeps writing (WAL readers never block the writer); it is
//! copied a few pages at a time, so that a caller can show progress. It is written to
//! a temporary file beside the destination, checked with `PRAGMA integrity_check`,
//! fsynced, and only then renamed into place.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};

/// Pages copied per step (4 MiB with 4 KiB pages).
const PAGES_PER_STEP: i32 = 1024;

/// Copies the database behind `source` to `dest`; returns the copy's size in bytes.
pub fn copy_to(source: &Connection, dest: &Path, force: bool) -> Result<u64, String> {
    copy_with_progress(source, dest, force, &mut |_, _| {})
}

/// `copy_to`, telling `progress` (pages copied, pages in all) after each step.
pub fn copy_with_progress(
    source: &Connection,
    dest: &Path,
    force: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, String> {
    if dest.is_dir() {
        return Err(format!("{} is a directory", dest.display()));
    }
    if dest.exists() && !force {
        return Err(format!(
            "{} already exists; pass --force to replace it",
            dest.display()
        ));
    }
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!("directory {} does not exist", dir.display()));
    }
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    remove_stale_partials(dir, &name);
    // One temporary file per destination, locked while a backup writes it: a second
    // backup to the same place is refused, and a killed one's file is reused, then
    // removed, by the next run.
    let temp = dir.join(format!(".{name}.partial"));
    let guard = lock_partial(&temp)?;
    let result = write_copy(source, &temp, progress).and_then(|()| {
        std::fs::rename(&temp, dest)
            .map_err(|e| format!("cannot move the copy to {}: {e}", dest.display()))?;
        // Make the rename itself durable.
        if let Ok(directory) = File::open(dir) {
            let _ = directory.sync_all();
        }
        std::fs::metadata(dest)
            .map(|m| m.len())
            .map_err(|e| format!("cannot read {}: {e}", dest.display()))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    drop(guard);
    result
}

/// Makes sure `dir` exists, creating it (and its parents) owner-only (0700).
pub fn private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))
}

/// Creates (owner-only) and locks the temporary file of a backup, then empties it: a
/// file another backup is writing is refused before it is touched.
fn lock_partial(temp: &Path) -> Result<File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(temp)
        .map_err(|e| format!("cannot create {}: {e}", temp.display()))?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)
                .map_err(|e| format!("cannot empty {}: {e}", temp.display()))?;
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "another backup is writing {} right now",
            temp.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", temp.display())),
    }
}

/// Removes the temporary files that killed backups to `name` left in `dir` (named
/// `.<name>.partial`, or `.<name>.<id>.partial` by older versions), unless a running
/// backup holds them.
fn remove_stale_partials(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if !file_name.starts_with(&prefix) || !file_name.ends_with(".partial") {
            continue;
        }
        let path = entry.path();
        let unused = File::options()
            .write(true)
            .open(&path)
            .is_ok_and(|file| file.try_lock().is_ok());
        if unused && std::fs::remove_file(&path).is_ok() {
            log::info!("removed {} left by an interrupted backup", path.display());
        }
    }
}

fn write_copy(
    source: &Connection,
    temp: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), String> {
    let describe = |e: rusqlite::Error| format!("backup failed: {e}");
    // `lock_partial` created it owner-only: the copy holds every secret the database holds.
    let mut target =
        Connection::open(temp).map_err(|e| format!("cannot create {}: {e}", temp.display()))?;
    // One read transaction for the whole copy: every step reads the same snapshot, and
    // the server's commits meanwhile neither show up in the copy nor restart it.
    let copied = source
        .execute_batch("BEGIN DEFERRED; SELECT count(*) FROM sqlite_schema;")
        .map_err(describe)
        .and_then(|()| copy_pages(source, &mut target, progress));
    if !source.is_autocommit() {
        let _ = source.execute_batch("ROLLBACK");
    }
    copied?;
    // A self-contained single file: no -wal beside the copy.
    let _: String = target
        .pragma_update_and_check(None, "journal_mode", "DELETE", |row| row.get(0))
        .map_err(describe)?;
    let integrity: String = target
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(describe)?;
    if integrity != "ok" {
        return Err(format!("the copy failed its integrity check: {integrity}"));
    }
    target.close().map_err(|(_, e)| describe(e))?;
    File::open(temp)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("cannot sync {}: {e}", temp.display()))
}

/// Steps the backup API through every page of `source` into `target`.
fn copy_pages(
    source: &Connection,
    target: &mut Connection,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), String> {
    let describe = |e: rusqlite::Error| format!("backup failed: {e}");
    let backup = Backup::new(source, target).map_err(describe)?;
    let mut attempts = 0;
    loop {
        let step = backup.step(PAGES_PER_STEP).map_err(describe)?;
        let done = backup.progress();
        let total = u64::try_from(done.pagecount).unwrap_or(0);
        progress(
            total.saturating_sub(u64::try_from(done.remaining).unwrap_or(0)),
            total,
        );
        match step {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked if attempts < 100 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => return Err("backup failed: the database stayed locked".into()),
        }
    }
}
