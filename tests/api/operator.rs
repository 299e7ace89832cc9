//! Running it: the demo, the admin API, rate limits, backups, and durability under
//! kill -9.

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    ALL_SCOPES, Reply, ServerProcess, TestApp, test_config, ticket_body, write_config,
};

/// Runs one printed curl command through the shell, exactly as printed.
fn run_printed(command: &str) -> Value {
    let output = Command::new("sh").arg("-c").arg(command).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{command}\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The curl commands of the demo banner, in order.
fn printed_commands(banner: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut current: Option<String> = None;
    for line in banner.lines() {
        if line.starts_with("curl ") {
            current = Some(String::new());
        }
        if let Some(command) = current.as_mut() {
            if line.trim().is_empty() {
                commands.push(current.take().unwrap());
                continue;
            }
            command.push_str(line);
            command.push('\n');
        }
    }
    if let Some(command) = current {
        commands.push(command);
    }
    commands
}

fn printed_key(banner: &str) -> String {
    banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("API key"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn the_demo_prints_commands_that_work_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let envs = [("THREADA_SERVER_BIND", "127.0.0.1:0")];
    let server = ServerProcess::start_args(&["demo"], dir.path(), &envs);
    server.wait_for_stdout("\"body_json\"");
    let banner = {
        std::thread::sleep(Duration::from_millis(200));
        server.stdout.lock().unwrap().clone()
    };
    assert!(dir.path().join("threada.db").exists());
    let commands = printed_commands(&banner);
    assert_eq!(commands.len(), 3, "{banner}");
    let listed = run_printed(&commands[0]);
    assert!(listed["items"].as_array().unwrap().len() >= 5);
    let channels: HashSet<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["channel"].as_str().unwrap())
        .collect();
    assert!(channels.len() >= 4, "{channels:?}");
    let created = run_printed(&commands[1]);
    assert_eq!(created["ticket"]["summary"]["status"], "open");
    let action = run_printed(&commands[2]);
    assert_eq!(action["action"]["status"], "succeeded", "{action}");
    assert_eq!(action["action"]["payload"]["url"], "/hooks/zapier");
    let first_key = printed_key(&banner);
    let hooks = server.get("/demo/hooks", &first_key).json();
    assert_eq!(hooks["items"][0]["path"], "/hooks/zapier");
    assert_eq!(hooks["items"][0]["headers"]["x-source"], "threada");
    let tenant_id = action["action"]["tenant_id"].clone();
    server.signal("TERM");
    drop(server);

    // A second run reuses the database and tenant, adds no samples, prints a working key.
    let server = ServerProcess::start_args(&["demo"], dir.path(), &envs);
    server.wait_for_stdout("\"body_json\"");
    std::thread::sleep(Duration::from_millis(200));
    let banner = server.stdout.lock().unwrap().clone();
    let commands = printed_commands(&banner);
    let listed = run_printed(&commands[0]);
    assert_eq!(listed["items"][0]["tenant_id"], tenant_id);
    let count = listed["items"].as_array().unwrap().len();
    assert_eq!(count, 7, "samples were duplicated");
    let key = printed_key(&banner);
    assert_ne!(key, first_key);
    assert_eq!(run_printed(&commands[2])["action"]["status"], "succeeded");
    let old = server.list_tickets(&first_key, "");
    assert_eq!(old.status, 401);
}

const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789";

fn admin(client: &crate::helpers::Client, method: &str, path: &str, body: Option<&Value>) -> Reply {
    client.admin(method, path, ADMIN_TOKEN, body)
}

#[test]
fn the_admin_api_manages_tenants_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &test_config(dir.path()));
    let server = ServerProcess::start(
        "serve",
        &config,
        dir.path(),
        &[("THREADA_ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    let client = &server.client;

    let created = admin(
        client,
        "POST",
        "/tenants",
        Some(&json!({"name": "Acme", "action_base_url": "https://hooks.example.com"})),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let tenant = created.json();
    let tenant_id = tenant["tenant_id"].as_str().unwrap();
    assert!(
        tenant["signing_secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );

    let listed = admin(client, "GET", "/tenants", None).json();
    assert_eq!(listed["items"][0]["tenant_id"], tenant_id);
    assert!(listed["items"][0].get("signing_secret").is_none());
    let got = admin(client, "GET", &format!("/tenants/{tenant_id}"), None);
    assert_eq!(got.json()["name"], "Acme");
    admin(client, "GET", "/tenants/ten_missing", None).assert_error(404, "not_found");

    let patched = admin(
        client,
        "PATCH",
        &format!("/tenants/{tenant_id}"),
        Some(
            &json!({"name": "Acme Inc", "action_base_url": null, "allowed_origins": ["https://a.example.com"]}),
        ),
    );
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json()["name"], "Acme Inc");
    assert!(patched.json()["action_base_url"].is_null());
    assert_eq!(
        patched.json()["allowed_origins"],
        json!(["https://a.example.com"])
    );
    admin(
        client,
        "PATCH",
        &format!("/tenants/{tenant_id}"),
        Some(&json!({})),
    )
    .assert_error(400, "invalid_request");
    admin(
        client,
        "PATCH",
        &format!("/tenants/{tenant_id}"),
        Some(&json!({"action_base_url": "gopher://x"})),
    )
    .assert_invalid("action_base_url");
    admin(client, "POST", "/tenants", Some(&json!({"name": ""}))).assert_invalid("name");
    admin(
        client,
        "POST",
        "/tenants",
        Some(&json!({"name": "x", "plan": "gold"})),
    )
    .assert_invalid("plan");

    let rotated = admin(
        client,
        "POST",
        &format!("/tenants/{tenant_id}/rotate-signing-secret"),
        None,
    );
    assert_eq!(rotated.status, 200);
    assert_ne!(rotated.json()["signing_secret"], tenant["signing_secret"]);

    let key = admin(
        client,
        "POST",
        &format!("/tenants/{tenant_id}/keys"),
        Some(&json!({"name": "zapier", "scopes": ["support.read"], "expires_in": "30d"})),
    );
    assert_eq!(key.status, 201, "{}", key.text);
    let key = key.json();
    let key_id = key["key_id"].as_str().unwrap();
    let secret = key["api_key"].as_str().unwrap();
    assert_eq!(client.list_tickets(secret, "").status, 200);
    admin(
        client,
        "POST",
        &format!("/tenants/{tenant_id}/keys"),
        Some(&json!({"name": "x", "scopes": ["root"]})),
    )
    .assert_invalid("scopes");
    admin(
        client,
        "POST",
        "/tenants/ten_missing/keys",
        Some(&json!({"name": "x", "scopes": ["support.read"]})),
    )
    .assert_error(404, "not_found");

    let keys = admin(client, "GET", &format!("/tenants/{tenant_id}/keys"), None);
    assert_eq!(keys.json()["items"][0]["key_id"], key_id);
    assert!(!keys.text.contains(secret));

    let rotated = admin(
        client,
        "POST",
        &format!("/tenants/{tenant_id}/keys/{key_id}/rotate"),
        Some(&json!({"grace": "0s"})),
    );
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_secret = rotated.json()["api_key"].as_str().unwrap().to_string();
    assert_eq!(client.list_tickets(secret, "").status, 401);
    assert_eq!(client.list_tickets(&new_secret, "").status, 200);
    let default_grace = admin(
        client,
        "POST",
        &format!("/tenants/{tenant_id}/keys/{key_id}/rotate"),
        None,
    );
    assert_eq!(default_grace.status, 200, "{}", default_grace.text);
    assert_eq!(client.list_tickets(&new_secret, "").status, 200);

    let revoked = admin(
        client,
        "POST",
        &format!("/tenants/{tenant_id}/keys/{key_id}/revoke"),
        None,
    );
    assert_eq!(revoked.json()["status"], "revoked");
    assert_eq!(client.list_tickets(&new_secret, "").status, 401);
    admin(
        client,
        "POST",
        &format!("/tenants/ten_other/keys/{key_id}/revoke"),
        None,
    )
    .assert_error(404, "not_found");
    // By key id alone, like the CLI.
    let another = admin(
        client,
        "POST",
        &format!("/tenants/{tenant_id}/keys"),
        Some(&json!({"name": "second", "scopes": ["support.read"]})),
    )
    .json();
    let another_id = another["key_id"].as_str().unwrap();
    let rotated = admin(
        client,
        "POST",
        &format!("/keys/{another_id}/rotate"),
        Some(&json!({"grace": "0s"})),
    );
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let secret = rotated.json()["api_key"].as_str().unwrap().to_string();
    assert_eq!(client.list_tickets(&secret, "").status, 200);
    let revoked = admin(client, "POST", &format!("/keys/{another_id}/revoke"), None);
    assert_eq!(revoked.json()["status"], "revoked");
    assert_eq!(client.list_tickets(&secret, "").status, 401);
    admin(client, "POST", "/keys/key_missing/revoke", None).assert_error(404, "not_found");

    // Wrong, missing, and misplaced credentials.
    let tenants = "/api/v1/admin/tenants";
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong-token")],
        vec![("Authorization", ADMIN_TOKEN)],
        vec![("X-Api-Key", ADMIN_TOKEN)],
        vec![("Authorization", "Basic YWRtaW46YWRtaW4=")],
    ] {
        client
            .send("GET", tenants, &headers, None)
            .assert_error(401, "authentication_failed");
    }
    let bearer = format!("Bearer {new_secret}");
    client
        .send("GET", tenants, &[("Authorization", &bearer)], None)
        .assert_error(401, "authentication_failed");
    client
        .send("DELETE", tenants, &[], None)
        .assert_error(405, "method_not_allowed");
}

#[test]
fn without_a_token_the_admin_api_is_off_and_says_why() {
    let app = TestApp::spawn_with(|c| c.admin.token_env = "THREADA_TEST_UNSET_ADMIN_TOKEN".into());
    let reply = app.send(
        "GET",
        "/api/v1/admin/tenants",
        &[("Authorization", "Bearer anything")],
        None,
    );
    let error = reply.assert_error(401, "authentication_failed");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("THREADA_TEST_UNSET_ADMIN_TOKEN")
    );
}

#[test]
fn rate_limits_are_per_key() {
    let app = TestApp::spawn_with(|c| {
        c.rate_limit.requests_per_minute = 60;
        c.rate_limit.burst = 5;
    });
    let tenant = app.tenant(ALL_SCOPES);
    let other = app.key(&tenant.tenant_id, "support.read");
    for remaining in (0..5).rev() {
        let reply = app.list_tickets(&tenant.key, "");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("ratelimit-limit"), Some("5"));
        assert_eq!(
            reply.header("ratelimit-remaining"),
            Some(remaining.to_string().as_str())
        );
        assert!(reply.header("ratelimit-reset").is_some());
    }
    let limited = app.list_tickets(&tenant.key, "");
    limited.assert_error(429, "rate_limited");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert_eq!(limited.header("ratelimit-remaining"), Some("0"));
    // Writes count against the same bucket.
    app.create_ticket(&tenant.key, &ticket_body("x"))
        .assert_error(429, "rate_limited");
    assert_eq!(app.count("SELECT count(*) FROM tickets"), 0);
    // Another key of the same tenant is not slowed down.
    let reply = app.list_tickets(&other, "");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("ratelimit-remaining"), Some("4"));
    // Unauthenticated answers carry no rate limit headers.
    let anonymous = app.send("GET", "/api/v1/public/tickets", &[], None);
    assert!(anonymous.header("ratelimit-limit").is_none());
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(app.list_tickets(&tenant.key, "").status, 200);
}

#[test]
fn a_backup_under_concurrent_writes_holds_every_earlier_ticket() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (client, key) = (app.clone(), tenant.key.clone());
            let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let reply = client.create_ticket(&key, &ticket_body("backup"));
                    assert_eq!(reply.status, 201);
                    let id = reply.json()["ticket"]["summary"]["ticket_id"]
                        .as_str()
                        .unwrap()
                        .to_string();
                    acknowledged.lock().unwrap().push(id);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    let dest = app.dir.path().join("copy.db");
    let report = app.cli().json(&["backup", dest.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(report["integrity"], "ok");
    assert!(
        before.len() > 10,
        "only {} tickets before the backup",
        before.len()
    );
    let copy = rusqlite::Connection::open(&dest).unwrap();
    let integrity: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let mut statement = copy.prepare("SELECT ticket_id FROM tickets").unwrap();
    let stored: HashSet<String> = statement
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for id in &before {
        assert!(stored.contains(id), "{id} missing from the backup");
    }
    // An existing file is kept unless --force.
    let again = app.cli().run(&["backup", dest.to_str().unwrap()]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    let forced = app
        .cli()
        .json(&["backup", dest.to_str().unwrap(), "--force"]);
    assert_eq!(forced["integrity"], "ok");
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let path = write_config(dir.path(), &config);
    let cli = crate::helpers::Cli::new(path.clone());
    let key = cli.tenant_and_key(ALL_SCOPES);
    let key = key["api_key"].as_str().unwrap().to_string();
    let mut acknowledged: Vec<String> = Vec::new();
    for round in 0..2 {
        let mut server = ServerProcess::start("serve", &path, dir.path(), &[]);
        let got = Arc::new(Mutex::new(Vec::<String>::new()));
        let writers: Vec<_> = (0..16)
            .map(|n| {
                let (client, key, got) = (server.clone(), key.clone(), got.clone());
                std::thread::spawn(move || {
                    let mut i = 0;
                    loop {
                        i += 1;
                        let mut body = ticket_body(&format!("round {round} writer {n} #{i}"));
                        body["initial_message"]["external_message_id"] =
                            json!(format!("r{round}-w{n}-{i}"));
                        let text = body.to_string();
                        // Any failure (connection reset by the kill) ends this writer.
                        let Some(reply) = try_post(&client, &key, &text) else {
                            return;
                        };
                        if reply.0 != 201 {
                            return;
                        }
                        got.lock().unwrap().push(reply.1);
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1500));
        server.kill_9();
        for writer in writers {
            let _ = writer.join();
        }
        let got = got.lock().unwrap().clone();
        assert!(got.len() > 50, "only {} writes acknowledged", got.len());
        acknowledged.extend(got);
        let conn = rusqlite::Connection::open(dir.path().join("threada.db")).unwrap();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        let mut statement = conn.prepare("SELECT ticket_id FROM tickets").unwrap();
        let stored: HashSet<String> = statement
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let lost: Vec<&String> = acknowledged
            .iter()
            .filter(|id| !stored.contains(*id))
            .collect();
        assert!(lost.is_empty(), "{} acknowledged tickets lost", lost.len());
    }
}

/// A POST that gives up quietly when the server dies under it.
fn try_post(client: &crate::helpers::Client, key: &str, body: &str) -> Option<(u16, String)> {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    let mut response = agent
        .post(format!("{}/api/v1/public/tickets", client.base))
        .header("X-Api-Key", key)
        .header("Content-Type", "application/json")
        .send(body)
        .ok()?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().ok()?;
    let id = serde_json::from_str::<Value>(&text)
        .ok()?
        .pointer("/ticket/summary/ticket_id")?
        .as_str()?
        .to_string();
    Some((status, id))
}

#[test]
fn expired_idempotency_keys_and_secrets_are_purged() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    let fresh = app.post_keyed(
        "/api/v1/public/tickets",
        &tenant.key,
        "fresh",
        &ticket_body("x"),
    );
    assert_eq!(fresh.status, 201);
    app.cli()
        .json(&["key", "rotate", &tenant.key_id, "--grace", "1s"]);
    let conn = rusqlite::Connection::open(app.db_path()).unwrap();
    conn.execute(
        "INSERT INTO idempotency_keys (tenant_id, idem_key, fingerprint, status_code, response, created_at, expires_at)
         VALUES (?1, 'old', x'00', 201, x'7b7d', 0, 1)",
        [&tenant.tenant_id],
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let purged =
        threada::maintenance::purge_expired(&conn, threada::clock::Timestamp::now()).unwrap();
    assert_eq!(purged, 2, "one idempotency key and one rotated-out secret");
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys"), 1);
    assert_eq!(app.count("SELECT count(*) FROM api_key_secrets"), 1);
}
