//! Least privilege and fairness: what a key sees is what its scopes allow, tenants
//! cannot starve each other's actions, the demo never weakens a real database, and the
//! hardening around secrets (file modes, redaction, logs, throttling).

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::stub::{Answer, Stub};
use crate::helpers::{
    ALL_SCOPES, Cli, ServerProcess, TestApp, binary, test_config, ticket_body, write_config,
};

fn action(url: &str) -> Value {
    json!({"payload": {"type": "custom_http", "method": "POST", "url": url}})
}

#[test]
fn a_write_only_key_cannot_read_through_patch() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    let ticket = app.new_ticket(&tenant.key, &ticket_body("private"));
    app.add_message(
        &tenant.key,
        &ticket,
        &json!({"role": "note", "content": "internal: refund approved"}),
    );
    let gateway = app.key(&tenant.tenant_id, "support.write");
    let reply = app.update_ticket(&gateway, &ticket, &json!({"add_tags": []}));
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["ticket"]["summary"]["ticket_id"], ticket.as_str());
    assert!(body["ticket"].get("contact").is_none(), "{body}");
    assert!(body["ticket"].get("messages").is_none(), "{body}");
    assert!(!reply.text.contains("customer@example.com"));
    assert!(!reply.text.contains("refund approved"));
    // A key with support.read as well sees the whole ticket, as before.
    let full = app.update_ticket(&tenant.key, &ticket, &json!({"add_tags": []}));
    assert_eq!(
        full.json()["ticket"]["contact"]["email"],
        "customer@example.com"
    );
}

#[test]
fn a_write_only_key_cannot_read_a_reused_contact() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    let mut known = ticket_body("known");
    known["contact"] = json!({"name": "Jane Known", "email": "known@example.com",
                              "phone": "+33 6 12 34 56 78", "external_id": "crm-1"});
    app.new_ticket(&tenant.key, &known);
    let gateway = app.key(&tenant.tenant_id, "support.write");
    let mut probe = ticket_body("probe");
    probe["contact"] = json!({"email": "known@example.com"});
    let reply = app.create_ticket(&gateway, &probe);
    assert_eq!(reply.status, 201, "{}", reply.text);
    let contact = &reply.json()["ticket"]["contact"];
    assert_eq!(contact["email"], "known@example.com");
    assert!(
        contact["name"].is_null() && contact["phone"].is_null(),
        "{contact}"
    );
    assert!(contact["external_id"].is_null(), "{contact}");
    for secret in ["Jane Known", "+33612345678", "crm-1"] {
        assert!(
            !reply.text.contains(secret),
            "{secret} leaked: {}",
            reply.text
        );
    }
    // What it sent comes back, with ids and timestamps.
    let ticket = &reply.json()["ticket"];
    assert_eq!(
        ticket["messages"][0]["content"],
        "Hello, where is my parcel?"
    );
    assert!(ticket["summary"]["created_at"].is_string());
    // A replay of a full key's answer under the same Idempotency-Key shows no more.
    let tickets = format!("{}/tickets", crate::helpers::client::PUBLIC);
    let first = app.post_keyed(&tickets, &tenant.key, "same-key", &known);
    assert_eq!(first.json()["ticket"]["contact"]["name"], "Jane Known");
    let replay = app.post_keyed(&tickets, &gateway, "same-key", &known);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let contact = &replay.json()["ticket"]["contact"];
    assert_eq!(contact["name"], "Jane Known", "it sent the name itself");
    let mut less = known.clone();
    less["contact"] = json!({"email": "known@example.com"});
    let fresh = app.post_keyed(&tickets, &gateway, "other-key", &less);
    assert!(fresh.json()["ticket"]["contact"]["phone"].is_null());
}

#[test]
fn one_tenant_cannot_starve_another_tenants_actions() {
    let stub = Stub::start();
    let app = TestApp::spawn_with(|c| c.actions.allow_private_networks = true);
    let a = app.tenant_with(ALL_SCOPES, Some(&stub.origin()), &[]);
    let b = app.tenant_with(ALL_SCOPES, Some(&stub.origin()), &[]);
    let a_ticket = app.new_ticket(&a.key, &ticket_body("a"));
    let b_ticket = app.new_ticket(&b.key, &ticket_body("b"));
    stub.answer(Answer::Slow(Duration::from_millis(2500)));
    // Tenant A fills its share (a quarter of 4 threads + 8 queued = 3) with slow hooks.
    let slow: Vec<_> = (0..3)
        .map(|_| {
            let (client, key, ticket) = (app.client.clone(), a.key.clone(), a_ticket.clone());
            std::thread::spawn(move || client.run_action(&key, &ticket, &action("/slow")))
        })
        .collect();
    while stub.received().len() < 3 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let refused = app.run_action(&a.key, &a_ticket, &action("/more"));
    let error = refused.assert_error(429, "rate_limited");
    assert!(
        error["message"].as_str().unwrap().contains("share"),
        "{error}"
    );
    assert!(refused.header("retry-after").is_some());
    // Tenant B's action runs at once: a thread is kept free of tenant A.
    stub.answer(Answer::Status(200, "{}".into()));
    let started = Instant::now();
    let reply = app.run_action(&b.key, &b_ticket, &action("/fast"));
    assert_eq!(
        reply.json()["action"]["status"],
        "succeeded",
        "{}",
        reply.text
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    for handle in slow {
        assert_eq!(handle.join().unwrap().status, 201);
    }
    assert_eq!(app.count("SELECT count(*) FROM actions"), 4);
}

/// A database with a tenant the demo did not create, and its CLI.
fn foreign_database() -> (tempfile::TempDir, Cli, Value) {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let cli = Cli::new(write_config(dir.path(), &config));
    let made = cli.tenant_and_key(ALL_SCOPES);
    (dir, cli, made)
}

#[test]
fn demo_refuses_a_database_with_tenants_it_did_not_create() {
    let (dir, cli, made) = foreign_database();
    let before = std::fs::read(dir.path().join("threada.db")).unwrap();
    let output = cli.run(&["demo"]);
    assert_ne!(output.code, 0);
    assert_eq!(output.stderr.lines().count(), 1, "{}", output.stderr);
    assert!(output.stderr.contains("refuses"), "{}", output.stderr);
    assert!(output.stdout.is_empty());
    assert_eq!(
        std::fs::read(dir.path().join("threada.db")).unwrap(),
        before
    );
    // The tenant's key still works the same.
    let listed = cli.json(&[
        "key",
        "list",
        "--tenant",
        made["tenant_id"].as_str().unwrap(),
    ]);
    assert_eq!(listed["items"][0]["status"], "active");
}

/// A demo server on a fresh database, and what `demo --json` printed.
fn demo_server(dir: &std::path::Path) -> (ServerProcess, Value) {
    let envs = [("THREADA_SERVER_BIND", "127.0.0.1:0")];
    let server = ServerProcess::start_args(&["demo", "--json"], dir, &envs);
    server.wait_for_stdout("\n");
    let printed = server.stdout.lock().unwrap().clone();
    assert_eq!(printed.lines().count(), 1, "{printed}");
    let summary: Value = serde_json::from_str(printed.trim()).unwrap();
    (server, summary)
}

#[test]
fn demo_lifts_the_guard_for_its_own_receiver_only() {
    let dir = tempfile::tempdir().unwrap();
    let (server, demo) = demo_server(dir.path());
    let key = demo["api_key"].as_str().unwrap();
    let ticket = demo["ticket_id"].as_str().unwrap();
    assert_eq!(
        server.run_action(key, ticket, &action("/hooks/own")).json()["action"]["status"],
        "succeeded"
    );
    // Another tenant on the same demo server, pointed at loopback, stays guarded.
    let stub = Stub::start();
    let cli = Cli::new(write_config(dir.path(), &test_config(dir.path())));
    let other = cli.json(&[
        "tenant",
        "create",
        "--name",
        "Other",
        "--action-base-url",
        &format!("http://localhost:{}", stub.port),
        "--allowed-origin",
        &stub.origin(),
    ]);
    let tenant_id = other["tenant_id"].as_str().unwrap();
    let other_key = cli.json(&[
        "key", "create", "--tenant", tenant_id, "--name", "k", "--scopes", ALL_SCOPES,
    ])["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let other_ticket = server.new_ticket(&other_key, &ticket_body("other"));
    let named = server.run_action(&other_key, &other_ticket, &action("/hook"));
    let failed = &named.json()["action"];
    assert_eq!(
        failed["result"]["error"]["code"], "destination_blocked",
        "{failed}"
    );
    let message = failed["result"]["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("127.0.0.1"),
        "the internal address leaked: {message}"
    );
    let literal = server.run_action(
        &other_key,
        &other_ticket,
        &action(&format!("{}/x", stub.origin())),
    );
    literal.assert_invalid("payload.url");
    assert!(stub.received().is_empty());
}

#[test]
fn the_demo_receiver_needs_the_demo_key_and_redacts_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let (server, demo) = demo_server(dir.path());
    let key = demo["api_key"].as_str().unwrap();
    let ticket = demo["ticket_id"].as_str().unwrap();
    let body = json!({"payload": {"type": "custom_http", "url": "/hooks/secret",
        "headers": {"Authorization": "Bearer hook-s3cret", "X-Custom-Token": "t0k3n"}}});
    server.run_action(key, ticket, &body);
    server
        .send("GET", "/demo/hooks", &[], None)
        .assert_error(401, "authentication_failed");
    let listed = server.get("/demo/hooks", key);
    assert_eq!(listed.status, 200, "{}", listed.text);
    let hook = &listed.json()["items"][0];
    assert_eq!(hook["path"], "/hooks/secret");
    assert_eq!(hook["headers"]["authorization"], "[redacted]");
    assert_eq!(hook["headers"]["x-custom-token"], "[redacted]");
    assert_eq!(hook["headers"]["x-threada-signature"], "[redacted]");
    assert!(!listed.text.contains("hook-s3cret") && !listed.text.contains("t0k3n"));
    // Forged entries are refused and not recorded.
    let forged = server.send(
        "POST",
        "/demo/hooks/forged",
        &[
            ("Content-Type", "application/json"),
            ("X-Threada-Signature", "t=1,v1=00"),
        ],
        Some("{}"),
    );
    forged.assert_error(401, "authentication_failed");
    let listed = server.get("/demo/hooks", key).json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_database_its_wal_and_backups_are_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let path = write_config(dir.path(), &config);
    let cli = Cli::new(path.clone());
    let made = cli.tenant_and_key(ALL_SCOPES);
    let db = dir.path().join("threada.db");
    assert_eq!(mode(&db), 0o600, "after create");
    let server = ServerProcess::start("serve", &path, dir.path(), &[]);
    let key = made["api_key"].as_str().unwrap();
    server.new_ticket(key, &ticket_body("wal"));
    for file in ["threada.db", "threada.db-wal", "threada.db-shm"] {
        assert_eq!(mode(&dir.path().join(file)), 0o600, "{file} after WAL use");
    }
    let copy = dir.path().join("copy.db");
    let output = cli.run(&["backup", copy.to_str().unwrap()]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert_eq!(mode(&copy), 0o600, "backup");
    // An existing database with a looser mode is tightened at the next start.
    drop(server);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    cli.json(&["tenant", "list"]);
    assert_eq!(mode(&db), 0o600, "tightened");
    let unit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/threada.service"))
            .unwrap();
    assert!(unit.contains("UMask=0077") && unit.contains("StateDirectoryMode=0700"));
}

#[test]
fn body_json_has_its_own_size_limit() {
    let stub = Stub::start();
    let app = TestApp::spawn_with(|c| {
        c.actions.allow_private_networks = true;
        c.actions.max_body_json_bytes = 1024;
    });
    let tenant = app.tenant_with(ALL_SCOPES, Some(&stub.origin()), &[]);
    let ticket = app.new_ticket(&tenant.key, &ticket_body("big"));
    let big = json!({"payload": {"type": "custom_http", "url": "/x",
        "body_json": format!("\"{}\"", "x".repeat(1100))}});
    let error = app
        .run_action(&tenant.key, &ticket, &big)
        .assert_error(400, "invalid_request");
    assert_eq!(error["param"], "payload.body_json");
    assert!(error["message"].as_str().unwrap().contains("1024"));
    assert_eq!(app.count("SELECT count(*) FROM actions"), 0);
    assert!(stub.received().is_empty());
}

#[test]
fn a_short_admin_token_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &test_config(dir.path()));
    let output = binary()
        .args(["serve", "--config", path.to_str().unwrap()])
        .env("THREADA_ADMIN_TOKEN", "too-short")
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("THREADA_ADMIN_TOKEN") && errors[0].contains("32"),
        "{stderr}"
    );
    assert!(!stderr.contains("too-short"), "the token was echoed");
}

#[test]
fn failed_authentications_are_throttled_per_address() {
    const TOKEN: &str = "admin-token-for-tests-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.rate_limit.unauthenticated_burst = 5;
    config.rate_limit.unauthenticated_per_minute = 6;
    let path = write_config(dir.path(), &config);
    let server = ServerProcess::start(
        "serve",
        &path,
        dir.path(),
        &[("THREADA_ADMIN_TOKEN", TOKEN)],
    );
    for _ in 0..5 {
        server
            .admin(
                "GET",
                "/tenants",
                "wrong-token-wrong-token-wrong-token",
                None,
            )
            .assert_error(401, "authentication_failed");
    }
    let throttled = server.admin(
        "GET",
        "/tenants",
        "wrong-token-wrong-token-wrong-token",
        None,
    );
    throttled.assert_error(429, "rate_limited");
    assert!(throttled.header("retry-after").is_some());
    // While throttled, even the right token is not checked.
    server
        .admin("GET", "/tenants", TOKEN, None)
        .assert_error(429, "rate_limited");
    // Bad API keys from the same address are throttled too.
    let bad_key = format!("thr_{}", "x".repeat(43));
    server
        .list_tickets(&bad_key, "")
        .assert_error(429, "rate_limited");
    server
        .send("GET", "/api/v1/public/tickets", &[], None)
        .assert_error(429, "rate_limited");
}

#[test]
fn credential_headers_and_query_parameters_are_redacted() {
    let stub = Stub::start();
    let app = TestApp::spawn_with(|c| c.actions.allow_private_networks = true);
    let tenant = app.tenant_with(ALL_SCOPES, Some(&stub.origin()), &[]);
    let ticket = app.new_ticket(&tenant.key, &ticket_body("redact"));
    let body = json!({"payload": {"type": "custom_http", "url": "/hook?access_token=q-s3cret&page=2",
        "headers": {"X-Custom-Auth": "h-s3cret", "X-Session-Id": "s-s3cret",
                    "X-Hub-Signature": "sig-s3cret", "X-Partner-Key": "k-s3cret", "X-Source": "ok"}}});
    let reply = app.run_action(&tenant.key, &ticket, &body);
    let payload = &reply.json()["action"]["payload"];
    assert_eq!(payload["url"], "/hook?access_token=[redacted]&page=2");
    for name in [
        "X-Custom-Auth",
        "X-Session-Id",
        "X-Hub-Signature",
        "X-Partner-Key",
    ] {
        assert_eq!(payload["headers"][name], "[redacted]", "{name}");
    }
    assert_eq!(payload["headers"]["X-Source"], "ok");
    assert!(!reply.text.contains("s3cret"));
    // The destination still gets the real values.
    let received = &stub.received()[0];
    assert_eq!(received.path, "/hook?access_token=q-s3cret&page=2");
    assert_eq!(received.headers["x-custom-auth"], "h-s3cret");
    let stored = std::fs::read(app.db_path()).unwrap_or_default();
    let wal = std::fs::read(format!("{}-wal", app.db_path().display())).unwrap_or_default();
    for bytes in [stored, wal] {
        assert!(!String::from_utf8_lossy(&bytes).contains("s3cret"));
    }
    app.run_action(
        &tenant.key,
        &ticket,
        &json!({"payload": {"type": "custom_http", "url": "/x", "headers": {"Proxy-Authorization": "Basic eA=="}}}),
    )
    .assert_invalid("payload.headers");
}

#[test]
fn trace_logs_hold_no_outbound_secret_and_the_open_guard_is_warned_about() {
    let stub = Stub::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.actions.allow_private_networks = true;
    config.log.level = "trace".into();
    let path = write_config(dir.path(), &config);
    let cli = Cli::new(path.clone());
    let tenant = cli.json(&[
        "tenant",
        "create",
        "--name",
        "Logs",
        "--action-base-url",
        &stub.origin(),
    ]);
    let tenant_id = tenant["tenant_id"].as_str().unwrap();
    let key = cli.json(&[
        "key", "create", "--tenant", tenant_id, "--name", "k", "--scopes", ALL_SCOPES,
    ]);
    let key = key["api_key"].as_str().unwrap();
    // RUST_LOG is set to "info" by the harness; the config's trace needs it unset.
    let server = ServerProcess::start("serve", &path, dir.path(), &[("RUST_LOG", "trace")]);
    let ticket = server.new_ticket(key, &ticket_body("logs"));
    let body = json!({"payload": {"type": "custom_http", "url": "/hook?token=q-s3cret",
        "headers": {"Authorization": "Bearer h-s3cret"}, "body_json": "{\"a\":1}"}});
    assert_eq!(server.run_action(key, &ticket, &body).status, 201);
    std::thread::sleep(Duration::from_millis(200));
    let log = server.stderr.lock().unwrap().clone();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "trace logging is on"
    );
    assert!(!log.contains("s3cret"), "a secret reached the log");
    assert!(!log.contains(key), "an API key reached the log");
    assert!(log.contains("allow_private_networks is on"), "{log}");
}
