//! Hostile and unlucky clients: slow bodies and heads, connection bursts, a full disk,
//! signals with requests in flight, a second server, killed backups, and the odd
//! requests (unknown query parameters, repeated JSON keys, HEAD).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use threada::routes::PUBLIC_API;

use crate::helpers::stub::{Answer, Stub};
use crate::helpers::{
    ALL_SCOPES, Cli, ServerProcess, TestApp, test_config, ticket_body, write_config,
};

/// The `host:port` a client talks to.
fn address(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

/// Reads until the peer closes the connection or `limit` passes; returns what came
/// and whether the connection was closed in time.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return (String::from_utf8_lossy(&seen).into_owned(), true),
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return (String::from_utf8_lossy(&seen).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&seen).into_owned(), false)
}

fn quick_deadlines() -> TestApp {
    TestApp::spawn_with(|c| {
        c.server.request_head_timeout_ms = 1000;
        c.server.request_body_timeout_ms = 1000;
    })
}

#[test]
fn a_body_that_stops_arriving_is_cut_with_a_408() {
    let app = quick_deadlines();
    let tenant = app.tenant(ALL_SCOPES);
    let heads = [
        format!("Content-Length: 100\r\nX-Api-Key: {}\r\n", tenant.key),
        format!(
            "Transfer-Encoding: chunked\r\nX-Api-Key: {}\r\n",
            tenant.key
        ),
    ];
    for (head, first_bytes) in heads.iter().zip(["{", "5\r\n{\"a\":"]) {
        let mut stream = TcpStream::connect(address(&app.base)).unwrap();
        let started = Instant::now();
        write!(
            stream,
            "POST /api/v1/public/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{head}\r\n{first_bytes}"
        )
        .unwrap();
        let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(4));
        assert!(closed, "the connection stayed open: {answer:?}");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("\"request_timeout\""), "{answer}");
        assert!(
            started.elapsed() < Duration::from_millis(3000),
            "{:?}",
            started.elapsed()
        );
    }
    // Without a valid key the answer comes at once, and the connection closes too.
    let mut stream = TcpStream::connect(address(&app.base)).unwrap();
    write!(
        stream,
        "POST /api/v1/public/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    )
    .unwrap();
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(3));
    assert!(closed && answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert_eq!(app.count("SELECT count(*) FROM tickets"), 0);
}

#[test]
fn a_trickled_head_on_a_kept_alive_connection_is_cut() {
    let app = quick_deadlines();
    let mut stream = TcpStream::connect(address(&app.base)).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 512];
    let n = stream.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    // The second request's head, one byte every 150 ms (it would take ~5 s).
    let started = Instant::now();
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n\r\n";
    let mut cut = false;
    for byte in head {
        if stream.write_all(&[*byte]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(150));
        stream.set_nonblocking(true).unwrap();
        let mut probe = [0u8; 256];
        let read = stream.read(&mut probe);
        stream.set_nonblocking(false).unwrap();
        match read {
            Ok(0) => {
                cut = true;
                break;
            }
            Ok(n) => assert!(String::from_utf8_lossy(&probe[..n]).starts_with("HTTP/1.1 408")),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => {
                cut = true;
                break;
            }
        }
    }
    assert!(cut, "the trickled head was never cut");
    assert!(
        started.elapsed() < Duration::from_millis(3000),
        "{:?}",
        started.elapsed()
    );
    // The server still answers everyone else.
    assert_eq!(app.send("GET", "/healthz", &[], None).status, 200);
}

#[test]
fn a_thousand_clients_connecting_at_once_are_all_answered_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &test_config(dir.path()));
    let server = ServerProcess::start("serve", &path, dir.path(), &[]);
    let target = address(&server.base);
    let clients = 1000;
    let barrier = Arc::new(Barrier::new(clients));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (barrier, target) = (barrier.clone(), target.clone());
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    barrier.wait();
                    let started = Instant::now();
                    let mut stream = TcpStream::connect(&target).ok()?;
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .ok()?;
                    stream
                        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .ok()?;
                    let mut answer = Vec::new();
                    stream.read_to_end(&mut answer).ok()?;
                    String::from_utf8_lossy(&answer)
                        .starts_with("HTTP/1.1 200")
                        .then(|| started.elapsed())
                })
                .unwrap()
        })
        .collect();
    let times: Vec<Option<Duration>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let failed = times.iter().filter(|t| t.is_none()).count();
    let slow = times
        .iter()
        .flatten()
        .filter(|t| **t >= Duration::from_secs(1))
        .count();
    assert_eq!(failed, 0, "{failed} clients got no answer");
    assert_eq!(
        slow, 0,
        "{slow} of {clients} clients waited a second or more"
    );
}

/// A size-limited tmpfs, unmounted (and the server stopped) when dropped.
struct SmallDisk {
    path: PathBuf,
    server: Option<ServerProcess>,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap().keep();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output();
        match mounted {
            Ok(output) if output.status.success() => Some(SmallDisk {
                path: dir,
                server: None,
            }),
            Ok(output) => {
                println!(
                    "SKIPPED: cannot mount a small tmpfs ({}); the disk-full test needs root",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                None
            }
            Err(e) => {
                println!("SKIPPED: cannot run mount ({e}); the disk-full test needs root");
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        drop(self.server.take());
        let _ = Command::new("umount").arg(&self.path).status();
        let _ = std::fs::remove_dir(&self.path);
    }
}

#[test]
fn a_full_disk_answers_507_and_recovers_without_losing_anything() {
    let Some(mut disk) = SmallDisk::mount("6m") else {
        return;
    };
    let config = test_config(&disk.path);
    let config_dir = tempfile::tempdir().unwrap();
    let path = write_config(config_dir.path(), &config);
    let made = Cli::new(path.clone()).tenant_and_key(ALL_SCOPES);
    let key = made["api_key"].as_str().unwrap().to_string();
    disk.server = Some(ServerProcess::start("serve", &path, config_dir.path(), &[]));
    let server = disk.server.as_ref().unwrap();
    // Leave about a megabyte free.
    let filler = disk.path.join("filler");
    let free = |p: &Path| {
        let output = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(p)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let room = free(&disk.path).saturating_sub(1024 * 1024);
    std::fs::write(&filler, vec![0u8; usize::try_from(room).unwrap()]).unwrap();
    let mut body = ticket_body("fill");
    body["initial_message"]["content"] = json!("x".repeat(60_000));
    let mut created = Vec::new();
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..80 {
        let reply = server.create_ticket(&key, &body);
        *statuses.entry(reply.status).or_insert(0) += 1;
        match reply.status {
            201 => created.push(
                reply.json()["ticket"]["summary"]["ticket_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
            507 => {
                let error = reply.assert_error(507, "insufficient_storage");
                assert!(
                    error["message"].as_str().unwrap().contains("disk space"),
                    "{error}"
                );
                assert!(reply.header("retry-after").is_some());
            }
            503 => {
                reply.assert_error(503, "service_unavailable");
                assert!(reply.header("retry-after").is_some());
            }
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    assert!(
        statuses.contains_key(&507),
        "the disk never filled: {statuses:?}"
    );
    assert!(!statuses.contains_key(&500), "{statuses:?}");
    // Reads still work, and after space is freed, writes again.
    assert_eq!(server.list_tickets(&key, "limit=1").status, 200);
    std::fs::remove_file(&filler).unwrap();
    let after = server.create_ticket(&key, &ticket_body("after"));
    assert_eq!(after.status, 201, "{}", after.text);
    for id in &created {
        assert_eq!(
            server.get_ticket(&key, id).status,
            200,
            "acknowledged {id} is gone"
        );
    }
    let conn = rusqlite::Connection::open(disk.path.join("threada.db")).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}

/// A server process with a tenant whose actions go to `stub`.
fn server_with_hooks(stub: &Stub, dir: &Path) -> (ServerProcess, String, String, PathBuf) {
    let mut config = test_config(dir);
    config.actions.allow_private_networks = true;
    let path = write_config(dir, &config);
    let cli = Cli::new(path.clone());
    let (_, key) = cli.tenant_with_hooks("Acme", &stub.origin());
    let server = ServerProcess::start("serve", &path, dir, &[]);
    let ticket = server.new_ticket(&key, &ticket_body("hooks"));
    (server, key, ticket, path)
}

fn slow_actions(
    server: &ServerProcess,
    key: &str,
    ticket: &str,
    count: usize,
) -> Vec<std::thread::JoinHandle<crate::helpers::Reply>> {
    (0..count)
        .map(|n| {
            let (client, key, ticket) =
                (server.client.clone(), key.to_string(), ticket.to_string());
            std::thread::spawn(move || {
                client.run_action(
                    &key,
                    &ticket,
                    &json!({"payload": {"type": "custom_http", "url": format!("/slow/{n}")}}),
                )
            })
        })
        .collect()
}

/// Waits (at most 20 s) until `done`.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigint_drains_in_flight_requests_like_sigterm() {
    let stub = Stub::start();
    stub.answer(Answer::Slow(Duration::from_millis(1500)));
    let dir = tempfile::tempdir().unwrap();
    let (mut server, key, ticket, _) = server_with_hooks(&stub, dir.path());
    let in_flight = slow_actions(&server, &key, &ticket, 3);
    wait_until("3 hooks called", || stub.received().len() >= 3);
    server.signal("INT");
    for handle in in_flight {
        let reply = handle.join().unwrap();
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert_eq!(
            reply.json()["action"]["status"],
            "succeeded",
            "{}",
            reply.text
        );
    }
    assert_eq!(server.wait(Duration::from_secs(20)), Some(0));
}

#[test]
fn a_second_sigint_stops_at_once() {
    let stub = Stub::start();
    stub.answer(Answer::Slow(Duration::from_secs(8)));
    let dir = tempfile::tempdir().unwrap();
    let (mut server, key, ticket, _) = server_with_hooks(&stub, dir.path());
    let _in_flight = slow_actions(&server, &key, &ticket, 1);
    wait_until("a hook called", || !stub.received().is_empty());
    server.signal("INT");
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    server.signal("INT");
    let code = server.wait(Duration::from_secs(5));
    assert_ne!(code, Some(0));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_second_server_on_the_same_database_is_refused_and_the_cli_still_works() {
    let stub = Stub::start();
    stub.answer(Answer::Slow(Duration::from_millis(1500)));
    let dir = tempfile::tempdir().unwrap();
    let (server, key, ticket, path) = server_with_hooks(&stub, dir.path());
    let running = slow_actions(&server, &key, &ticket, 1);
    wait_until("a hook called", || !stub.received().is_empty());
    let cli = Cli::new(path.clone());
    let second = cli.run_within(&["serve"], Duration::from_secs(20));
    assert_ne!(second.code, 0);
    let errors: Vec<&str> = second
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", second.stderr);
    assert!(
        errors[0].contains("already being served"),
        "{}",
        second.stderr
    );
    // The first server's running action was left alone.
    let action = running.into_iter().next().unwrap().join().unwrap();
    assert_eq!(
        action.json()["action"]["status"],
        "succeeded",
        "{}",
        action.text
    );
    // The CLI works beside the running server.
    assert_eq!(
        cli.json(&["tenant", "list"])["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let copy = dir.path().join("copy.db");
    assert_eq!(cli.run(&["backup", copy.to_str().unwrap()]).code, 0);
    assert_eq!(server.list_tickets(&key, "").status, 200);
}

fn partials(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".partial"))
        .collect()
}

#[test]
fn a_killed_backup_leaves_no_litter_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &test_config(dir.path()));
    let cli = Cli::new(path);
    cli.tenant_and_key(ALL_SCOPES);
    let out = tempfile::tempdir().unwrap();
    // What kill -9 during a backup leaves: this version's and an older version's files.
    std::fs::write(out.path().join(".copy.db.partial"), vec![7u8; 100_000]).unwrap();
    std::fs::write(
        out.path().join(".copy.db.tmp_0003abc.partial"),
        vec![7u8; 100_000],
    )
    .unwrap();
    let copy = out.path().join("copy.db");
    let output = cli.run(&["backup", copy.to_str().unwrap()]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(
        partials(out.path()).is_empty(),
        "{:?}",
        partials(out.path())
    );
    // A backup really killed with SIGKILL, then the next run.
    let big = tempfile::tempdir().unwrap();
    let big_config = write_config(big.path(), &test_config(big.path()));
    let big_cli = Cli::new(big_config.clone());
    let made = big_cli.tenant_and_key(ALL_SCOPES);
    let tenant = made["tenant_id"].as_str().unwrap();
    assert_eq!(
        big_cli
            .run(&["bulk-load", "--tenant", tenant, "--count", "20000"])
            .code,
        0
    );
    let dest = out.path().join("big.db");
    let mut child = crate::helpers::binary()
        .args([
            "--config",
            big_config.to_str().unwrap(),
            "backup",
            dest.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    let started = Instant::now();
    while partials(out.path()).is_empty() && started.elapsed() < Duration::from_secs(5) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&dest);
    let output = big_cli.run(&["backup", dest.to_str().unwrap()]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(
        partials(out.path()).is_empty(),
        "{:?}",
        partials(out.path())
    );
}

#[test]
fn unknown_query_parameters_are_refused_on_every_endpoint() {
    let app = TestApp::spawn_with(|_| {});
    let tenant = app.tenant(ALL_SCOPES);
    let ticket = app.new_ticket(&tenant.key, &ticket_body("query"));
    for (path, methods) in PUBLIC_API {
        let concrete = path
            .replace("{ticket_id}", &ticket)
            .replace("{action_id}", "act_0000000000000000000000000000");
        for method in methods.split(", ") {
            let body = match method {
                "POST" if path.ends_with("/tickets") => Some(ticket_body("q").to_string()),
                "POST" if path.ends_with("/messages") => {
                    Some(json!({"role": "user", "content": "hi"}).to_string())
                }
                "POST" => {
                    Some(json!({"payload": {"type": "custom_http", "url": "/x"}}).to_string())
                }
                "PATCH" => Some(json!({"status": "pending"}).to_string()),
                _ => None,
            };
            let reply = app.send(
                method,
                &format!("{concrete}?colour=red"),
                &[
                    ("X-Api-Key", &tenant.key),
                    ("Content-Type", "application/json"),
                ],
                body.as_deref(),
            );
            reply.assert_invalid("colour");
        }
    }
    assert_eq!(app.count("SELECT count(*) FROM tickets"), 1);
    assert_eq!(app.count("SELECT count(*) FROM messages"), 1);
    let view = app.get_ticket(&tenant.key, &ticket).json();
    assert_eq!(view["ticket"]["summary"]["status"], "open");
}

#[test]
fn a_repeated_json_key_is_refused_with_or_without_an_idempotency_key() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    let body = ticket_body("first").to_string();
    let repeated = body.replacen('{', "{\"subject\": \"second\", ", 1);
    for extra in [None, Some(("Idempotency-Key", "dup-1"))] {
        let mut headers = vec![
            ("X-Api-Key", tenant.key.as_str()),
            ("Content-Type", "application/json"),
        ];
        headers.extend(extra);
        let reply = app.send("POST", "/api/v1/public/tickets", &headers, Some(&repeated));
        let error = reply.assert_error(400, "invalid_request");
        assert_eq!(error["param"], "subject", "{extra:?}: {}", reply.text);
    }
    assert_eq!(app.count("SELECT count(*) FROM tickets"), 0);
}

#[test]
fn head_works_wherever_get_does() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    let ticket = app.new_ticket(&tenant.key, &ticket_body("head"));
    for (path, methods) in PUBLIC_API {
        if !methods.split(", ").any(|m| m == "GET") {
            continue;
        }
        let concrete = path
            .replace("{ticket_id}", &ticket)
            .replace("{action_id}", "act_0000000000000000000000000000");
        let get = app.get(&concrete, &tenant.key);
        let head = app.send("HEAD", &concrete, &[("X-Api-Key", &tenant.key)], None);
        assert_eq!(head.status, get.status, "HEAD {path}");
        assert!(head.text.is_empty(), "HEAD {path} sent a body");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "{path}"
        );
    }
    let missing: Value = app
        .send("HEAD", "/api/v1/public/tickets", &[], None)
        .status
        .into();
    assert_eq!(missing, 401);
}
