//! Startup errors, config layering, graceful shutdown: the real binary.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::helpers::stub::{Answer, Stub};
use crate::helpers::{ALL_SCOPES, Cli, ServerProcess, TestApp, binary, test_config, write_config};

/// Runs `threada serve` with a config text; returns (exit code, stderr).
fn serve_with(dir: &Path, config_text: &str) -> (i32, String) {
    let path = dir.join("threada.toml");
    std::fs::write(&path, config_text).unwrap();
    let output = binary()
        .args(["serve", "--config"])
        .arg(&path)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_one_line_error(code: i32, stderr: &str, needles: &[&str]) {
    assert_ne!(code, 0, "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    for needle in needles {
        assert!(lines[0].contains(needle), "{needle:?} not in {stderr}");
    }
}

#[test]
fn config_errors_stop_startup_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("[database]\npath = \"{}/t.db\"\n", dir.path().display());
    let cases: [(String, &[&str]); 5] = [
        (
            format!("{db}[server]\nbind = \"127.0.0.1:0\"\nlisten = 1\n"),
            &["listen", "threada.toml:5"],
        ),
        (
            format!("{db}[server]\nbind = \"localhost\"\n"),
            &["server.bind", "threada.toml:4"],
        ),
        (
            format!("{db}pool_size = 0\n"),
            &["database.pool_size", "threada.toml:3"],
        ),
        (
            format!("{db}synchronous = \"extra\"\n"),
            &["extra", "threada.toml:3"],
        ),
        (format!("{db}[log]\nlevel = \"chatty\"\n"), &["log.level"]),
    ];
    for (text, needles) in cases {
        let (code, stderr) = serve_with(dir.path(), &text);
        assert_one_line_error(code, &stderr, needles);
    }
}

#[test]
fn an_unreadable_config_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = binary()
        .args(["serve", "--config", "/nonexistent/threada.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_one_line_error(
        output.status.code().unwrap(),
        &stderr,
        &["/nonexistent/threada.toml"],
    );
}

#[test]
fn unwritable_database_paths_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (path, needle) in [
        ("/proc/threada.db", "/proc/threada.db"),
        ("/nonexistent-dir/threada.db", "does not exist"),
    ] {
        let text = format!("[server]\nbind = \"127.0.0.1:0\"\n[database]\npath = \"{path}\"\n");
        let (code, stderr) = serve_with(dir.path(), &text);
        assert_one_line_error(code, &stderr, &[needle]);
    }
}

#[test]
fn a_port_in_use_is_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nbind = \"127.0.0.1:{port}\"\n[database]\npath = \"{}/t.db\"\n",
        dir.path().display()
    );
    let (code, stderr) = serve_with(dir.path(), &text);
    assert_one_line_error(code, &stderr, &[&format!("127.0.0.1:{port}"), "in use"]);
}

#[test]
fn a_database_newer_than_the_binary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let text = format!(
        "[server]\nbind = \"127.0.0.1:0\"\n[database]\npath = \"{}\"\n",
        db.display()
    );
    let (code, stderr) = serve_with(dir.path(), &text);
    assert_one_line_error(code, &stderr, &["schema version 99", "newer"]);
}

/// A newer CLI never upgrades a database that an older server is serving: the server
/// would go on writing the older schema's way.
#[test]
fn the_cli_does_not_upgrade_a_database_a_server_holds() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let cli = Cli::new(write_config(dir.path(), &config));
    assert_eq!(cli.run(&["tenant", "list"]).code, 0);
    let db = config.database.path.clone();
    let version = |conn: &rusqlite::Connection| -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    };
    let conn = rusqlite::Connection::open(&db).unwrap();
    let current = version(&conn);
    // As the file was before the last step (which only sets an FTS5 option, and may
    // run again), held by a server of that version.
    conn.pragma_update(None, "user_version", current - 1)
        .unwrap();
    let lock = std::fs::File::create(format!("{}.lock", db.display())).unwrap();
    lock.lock().unwrap();
    let refused = cli.run(&["tenant", "list"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("served by a running threada")
            && refused
                .stderr
                .contains(&format!("schema version {}", current - 1)),
        "{}",
        refused.stderr
    );
    assert_eq!(version(&conn), current - 1);
    // Once that server is gone, the CLI upgrades the file.
    drop(lock);
    assert_eq!(cli.run(&["tenant", "list"]).code, 0);
    assert_eq!(version(&conn), current);
}

#[test]
fn config_file_lookup_and_env_overrides() {
    let dir = tempfile::tempdir().unwrap();
    // ./threada.toml is found without --config; env overrides it.
    let config = test_config(dir.path());
    write_config(dir.path(), &config);
    let output = binary()
        .args(["tenant", "list", "--json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir.path().join("threada.db").exists());
    let other = dir.path().join("other.db");
    let output = binary()
        .args(["tenant", "list", "--json"])
        .current_dir(dir.path())
        .env("THREADA_DATABASE_PATH", &other)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(other.exists(), "THREADA_DATABASE_PATH was not applied");
    // THREADA_CONFIG names the file when --config is absent.
    let elsewhere = tempfile::tempdir().unwrap();
    let output = binary()
        .args(["tenant", "list", "--json"])
        .current_dir(elsewhere.path())
        .env("THREADA_CONFIG", dir.path().join("threada.toml"))
        .env("THREADA_DATABASE_POOL_SIZE", "zero")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("THREADA_DATABASE_POOL_SIZE"), "{stderr}");
}

#[test]
fn sigterm_lets_in_flight_requests_finish_and_exits_0() {
    let stub = Stub::start();
    stub.answer(Answer::Slow(Duration::from_millis(1500)));
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.actions.allow_private_networks = true;
    let path = write_config(dir.path(), &config);
    // The tenant and key are made with the CLI before the server starts.
    let cli = Cli::new(path.clone());
    let tenant = cli.json(&[
        "tenant",
        "create",
        "--name",
        "Acme",
        "--action-base-url",
        &stub.origin(),
    ]);
    let tenant_id = tenant["tenant_id"].as_str().unwrap();
    let key = cli.json(&[
        "key", "create", "--tenant", tenant_id, "--name", "k", "--scopes", ALL_SCOPES,
    ]);
    let key = key["api_key"].as_str().unwrap().to_string();
    let mut server = ServerProcess::start("serve", &path, dir.path(), &[]);
    let ticket = server.new_ticket(&key, &crate::helpers::ticket_body("slow"));
    let client = server.clone();
    let in_flight = std::thread::spawn(move || {
        client.run_action(
            &key,
            &ticket,
            &json!({"payload": {"type": "custom_http", "url": "/hook"}}),
        )
    });
    std::thread::sleep(Duration::from_millis(400));
    server.signal("TERM");
    let reply = in_flight.join().unwrap();
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        reply.json()["action"]["status"],
        "succeeded",
        "{}",
        reply.text
    );
    assert_eq!(server.wait(Duration::from_secs(20)), Some(0));
}

#[test]
fn sigint_exits_0() {
    let app = TestApp::spawn();
    let (dir, config) = app.stop();
    let path = write_config(dir.path(), &config);
    let mut server = ServerProcess::start("serve", &path, dir.path(), &[]);
    server.signal("INT");
    assert_eq!(server.wait(Duration::from_secs(20)), Some(0));
}

#[test]
fn the_access_log_names_the_request_never_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &test_config(dir.path()));
    let cli = Cli::new(path.clone());
    let key = cli.tenant_and_key(ALL_SCOPES);
    let (secret, key_id) = (
        key["api_key"].as_str().unwrap(),
        key["key_id"].as_str().unwrap(),
    );
    let server = ServerProcess::start("serve", &path, dir.path(), &[]);
    let reply = server.send(
        "GET",
        "/api/v1/public/tickets?limit=5",
        &[("X-Api-Key", secret), ("X-Request-Id", "log-check-1")],
        None,
    );
    assert_eq!(reply.status, 200);
    server.list_tickets("thr_wrongwrongwrongwrongwrongwrongwrongwrong", "");
    std::thread::sleep(Duration::from_millis(200));
    let log = server.stderr.lock().unwrap().clone();
    let line = log
        .lines()
        .find(|l| l.contains("request_id=log-check-1"))
        .unwrap_or_else(|| panic!("no access log line: {log}"));
    assert!(line.contains("GET /api/v1/public/tickets 200"), "{line}");
    assert!(line.contains(&format!("key_id={key_id}")), "{line}");
    assert!(line.contains("ms"), "{line}");
    assert!(!log.contains(secret), "the secret was logged");
    assert!(!log.contains("thr_wrong"), "a presented key was logged");
    assert!(log.contains("GET /api/v1/public/tickets 401"), "{log}");
}
