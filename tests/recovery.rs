//! Surviving a lost VM: Litestream replicates the database to a `file://` replica
//! while the API takes writes; the live files are deleted; the restored copy is
//! checked and served, and every acknowledged ticket is counted.
//!
//! A test binary of its own, so that its write load does not share the machine with
//! the timing-sensitive tests of `tests/api`. It needs Litestream: `.ci/run` installs
//! it from the npm registry into `target/tools` (or set `LITESTREAM`); without it the
//! test says so and passes.
#![allow(clippy::unwrap_used, dead_code, unused_imports)]

#[path = "api/helpers/mod.rs"]
mod helpers;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use helpers::{ALL_SCOPES, Cli, PUBLIC, ServerProcess, test_config, ticket_body, write_config};

/// The Litestream binary: `$LITESTREAM`, the one `.ci/run` installs, or `litestream`.
fn litestream() -> Option<PathBuf> {
    let installed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/tools/node_modules/@flydotio/litestream-linux-x64/litestream");
    std::env::var_os("LITESTREAM")
        .map(PathBuf::from)
        .into_iter()
        .chain([installed, PathBuf::from("litestream")])
        .find(|candidate| {
            Command::new(candidate)
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// `litestream replicate` for `db` into `replica`, as docs/litestream.yml sets it up.
fn replicate(litestream: &Path, dir: &Path, db: &Path, replica: &Path) -> (Child, PathBuf) {
    let config = dir.join(format!(
        "litestream-{}.yml",
        replica.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(
        &config,
        format!(
            "dbs:\n  - path: {}\n    monitor-interval: 500ms\n    max-checkpoint-page-count: 4000\n    replicas:\n      - type: file\n        path: {}\n        sync-interval: 500ms\n",
            db.display(),
            replica.display()
        ),
    )
    .unwrap();
    let child = Command::new(litestream)
        .args(["replicate", "-config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, config)
}

fn restore(litestream: &Path, config: &Path, db: &Path, into: &Path) {
    let output = Command::new(litestream)
        .args(["restore", "-config"])
        .arg(config)
        .arg("-o")
        .arg(into)
        .arg(db)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "restore failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn remove_live_files(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

/// Acknowledged tickets, with when each was acknowledged and how long it took.
type Acks = Arc<Mutex<Vec<(String, Instant, Duration)>>>;

/// `writers` threads creating tickets until `stop` is set or the server goes away; a
/// refused write (any status but 201) is counted in `refused` and ends its writer.
fn write_load(
    base: &str,
    key: &str,
    writers: usize,
    (stop, refused): (&Arc<AtomicBool>, &Arc<AtomicUsize>),
    acks: &Acks,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..writers)
        .map(|n| {
            let refused = refused.clone();
            let (base, key, stop, acks) = (
                base.to_string(),
                key.to_string(),
                stop.clone(),
                acks.clone(),
            );
            std::thread::spawn(move || {
                let agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(10)))
                    .build()
                    .new_agent();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let sent = Instant::now();
                    let body = ticket_body(&format!("writer {n} ticket {i}")).to_string();
                    let Ok(mut reply) = agent
                        .post(format!("{base}{PUBLIC}/tickets"))
                        .header("X-Api-Key", &key)
                        .header("Content-Type", "application/json")
                        .send(body)
                    else {
                        return; // the server is gone
                    };
                    if reply.status() != 201 {
                        refused.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    let Ok(text) = reply.body_mut().read_to_string() else {
                        return;
                    };
                    let id = serde_json::from_str::<serde_json::Value>(&text).unwrap()["ticket"]
                        ["summary"]["ticket_id"]
                        .as_str()
                        .unwrap()
                        .to_string();
                    acks.lock()
                        .unwrap()
                        .push((id, Instant::now(), sent.elapsed()));
                }
            })
        })
        .collect()
}

/// The tickets a server on `db` holds.
fn stored_tickets(dir: &Path, db: &Path, key: &str) -> HashSet<String> {
    let mut config = test_config(dir);
    config.database.path = db.to_path_buf();
    let path = dir.join("restored.toml");
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    let checked = Cli::new(path.clone()).json(&["check", &db.display().to_string()]);
    assert_eq!(checked["servable"], true, "{checked}");
    let server = ServerProcess::start("serve", &path, dir, &[]);
    let items = server.walk(
        key,
        &format!("{PUBLIC}/tickets"),
        "limit=100&sort=created_at",
    );
    items
        .iter()
        .map(|t| t["ticket_id"].as_str().unwrap().to_string())
        .collect()
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[test]
fn a_litestream_replica_restores_every_acknowledged_write() {
    let Some(litestream) = litestream() else {
        eprintln!(
            "SKIPPED a_litestream_replica_restores_every_acknowledged_write: no litestream \
             (.ci/run installs it into target/tools; or set LITESTREAM)"
        );
        return;
    };
    let dir = tempfile::Builder::new()
        .disable_cleanup(std::env::var_os("THREADA_KEEP_TEST_DIR").is_some())
        .tempdir()
        .unwrap();
    println!("directory {}", dir.path().display());
    let db = dir.path().join("live.db");
    let mut config = test_config(dir.path());
    config.database.path = db.clone();
    // The Litestream preset: checkpoints are Litestream's.
    config.database.wal_autocheckpoint = 0;
    let path = write_config(dir.path(), &config);
    let key = Cli::new(path.clone()).tenant_and_key(ALL_SCOPES);
    let key = key["api_key"].as_str().unwrap().to_string();

    // 1. A graceful stop loses nothing.
    let (mut replicator, ls_config) =
        replicate(&litestream, dir.path(), &db, &dir.path().join("replica-a"));
    let server = ServerProcess::start("serve", &path, dir.path(), &[]);
    let (stop, acks): (Arc<AtomicBool>, Acks) = Default::default();
    let refused = Arc::new(AtomicUsize::new(0));
    let writers = write_load(&server.base, &key, 4, (&stop, &refused), &acks);
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    writers.into_iter().for_each(|w| w.join().unwrap());
    let mut server = server;
    server.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(30)), Some(0));
    std::thread::sleep(Duration::from_secs(2));
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(replicator.id().to_string())
        .status();
    let _ = replicator.wait();
    let acknowledged: Vec<String> = acks
        .lock()
        .unwrap()
        .iter()
        .map(|(id, _, _)| id.clone())
        .collect();
    assert!(
        acknowledged.len() > 100,
        "only {} writes",
        acknowledged.len()
    );
    remove_live_files(&db);
    restore(&litestream, &ls_config, &db, &db);
    let stored = stored_tickets(dir.path(), &db, &key);
    let missing = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .count();
    println!(
        "graceful stop: {} acknowledged, {} restored, {missing} missing",
        acknowledged.len(),
        stored.len()
    );
    assert_eq!(missing, 0);
    assert_eq!(refused.load(Ordering::Relaxed), 0, "writes were refused");

    // 2. kill -9 of both, under 20 s of full write load: at most a second's worth lost,
    // and the WAL stays bounded while Litestream holds its read transaction.
    let (mut replicator, ls_config) =
        replicate(&litestream, dir.path(), &db, &dir.path().join("replica-b"));
    let mut server = ServerProcess::start("serve", &path, dir.path(), &[]);
    let (stop, acks): (Arc<AtomicBool>, Acks) = Default::default();
    let refused = Arc::new(AtomicUsize::new(0));
    let writers = write_load(&server.base, &key, 8, (&stop, &refused), &acks);
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let started = Instant::now();
    let mut largest_wal = 0;
    while started.elapsed() < Duration::from_secs(20) {
        largest_wal = largest_wal.max(size(&wal));
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = replicator.kill();
    server.kill_9();
    let killed = Instant::now();
    stop.store(true, Ordering::Relaxed);
    writers.into_iter().for_each(|w| w.join().unwrap());
    let _ = replicator.wait();
    let acks = acks.lock().unwrap().clone();
    remove_live_files(&db);
    let restoring = Instant::now();
    restore(&litestream, &ls_config, &db, &db);
    let stored = stored_tickets(dir.path(), &db, &key);
    println!(
        "restore of {:.1} MB, check, start and a walk of {} tickets: {:.1} s",
        size(&db) as f64 / 1_048_576.0,
        stored.len(),
        restoring.elapsed().as_secs_f64()
    );
    let missing: Vec<_> = acks
        .iter()
        .filter(|(id, _, _)| !stored.contains(id))
        .collect();
    let lag = missing
        .iter()
        .map(|(_, at, _)| killed.duration_since(*at))
        .max()
        .unwrap_or_default();
    let last_second = acks
        .iter()
        .filter(|(_, at, _)| killed.duration_since(*at) <= Duration::from_secs(1))
        .count();
    let mut latencies: Vec<Duration> = acks.iter().map(|(_, _, took)| *took).collect();
    latencies.sort();
    let p99 = latencies
        .get(latencies.len() * 99 / 100)
        .copied()
        .unwrap_or_default();
    let max = latencies.last().copied().unwrap_or_default();
    println!(
        "kill -9: {} acknowledged in 20 s (write p99 {:.0} ms, max {:.0} ms), {} missing (the \
         oldest acknowledged {:.2} s before the kill; {last_second} in the last second); \
         largest WAL {:.1} MB",
        acks.len(),
        p99.as_secs_f64() * 1000.0,
        max.as_secs_f64() * 1000.0,
        missing.len(),
        lag.as_secs_f64(),
        largest_wal as f64 / 1_048_576.0
    );
    assert!(acks.len() > 500, "only {} writes", acks.len());
    assert!(
        largest_wal < 64 * 1024 * 1024,
        "WAL grew to {largest_wal} bytes"
    );
    assert!(
        missing.len() <= last_second.max(1),
        "{} missing, more than the last second's {last_second}",
        missing.len()
    );
    assert!(
        lag <= Duration::from_secs(1),
        "a ticket acknowledged {lag:?} before the kill is missing"
    );
    assert_eq!(
        refused.load(Ordering::Relaxed),
        0,
        "writes were refused under load"
    );
}
