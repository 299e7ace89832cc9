//! Online backup through SQLite's backup API.
//!
//! The copy is taken in one step, inside one read transaction, so it is a consistent
//! snapshot that holds every write committed before it started, while the server
//! keeps writing (WAL readers never block the writer). It is written to a temporary
//! file beside the destination, checked with `PRAGMA integrity_check`, fsynced, and
//! only then renamed into place.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};

/// Copies the database behind `source` to `dest`; returns the copy's size in bytes.
pub fn copy_to(source: &Connection, dest: &Path, force: bool) -> Result<u64, String> {
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
    let result = write_copy(source, &temp).and_then(|()| {
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

/// Creates (owner-only, empty) and locks the temporary file of a backup.
fn lock_partial(temp: &Path) -> Result<File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(temp)
        .map_err(|e| format!("cannot create {}: {e}", temp.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
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

fn write_copy(source: &Connection, temp: &Path) -> Result<(), String> {
    let describe = |e: rusqlite::Error| format!("backup failed: {e}");
    // `lock_partial` created it owner-only: the copy holds every secret the database holds.
    let mut target =
        Connection::open(temp).map_err(|e| format!("cannot create {}: {e}", temp.display()))?;
    {
        let backup = Backup::new(source, &mut target).map_err(describe)?;
        let mut attempts = 0;
        loop {
            match backup.step(-1).map_err(describe)? {
                StepResult::Done => break,
                StepResult::More => continue,
                StepResult::Busy | StepResult::Locked if attempts < 100 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => return Err("backup failed: the database stayed locked".into()),
            }
        }
    }
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
