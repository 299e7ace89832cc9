//! Every authentication outcome, and that secrets never reach the database in clear.

use std::time::Duration;

use crate::helpers::{ALL_SCOPES, TestApp, ticket_body};

const TICKETS: &str = "/api/v1/public/tickets";

#[test]
fn missing_malformed_and_unknown_keys_are_401() {
    let app = TestApp::spawn();
    app.send("GET", TICKETS, &[], None)
        .assert_error(401, "authentication_failed");
    for key in [
        "nope",
        "thr_short",
        "thr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "Bearer x",
    ] {
        app.list_tickets(key, "")
            .assert_error(401, "authentication_failed");
    }
}

#[test]
fn a_valid_key_gets_in() {
    let app = TestApp::spawn();
    let tenant = app.tenant("support.read");
    let reply = app.list_tickets(&tenant.key, "");
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["items"], serde_json::json!([]));
}

#[test]
fn a_missing_scope_is_403_naming_it() {
    let app = TestApp::spawn();
    let reader = app.tenant("support.read");
    let reply = app.create_ticket(&reader.key, &ticket_body("x"));
    let error = reply.assert_error(403, "permission_denied");
    assert!(error["message"].as_str().unwrap().contains("support.write"));
    let writer = app.key(&reader.tenant_id, "support.write");
    let error = app
        .list_tickets(&writer, "")
        .assert_error(403, "permission_denied");
    assert!(error["message"].as_str().unwrap().contains("support.read"));
    let ticket = app.new_ticket(&writer, &ticket_body("x"));
    let actions = format!("{TICKETS}/{ticket}/actions");
    let body = serde_json::json!({"payload": {"type": "custom_http", "url": "/x"}});
    let error = app
        .post(&actions, &writer, &body)
        .assert_error(403, "permission_denied");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("support.actions")
    );
    // Reading actions accepts support.read or support.actions.
    assert_eq!(app.get(&actions, &reader.key).status, 200);
    let runner = app.key(&reader.tenant_id, "support.actions");
    assert_eq!(app.get(&actions, &runner).status, 200);
    app.get(&actions, &writer)
        .assert_error(403, "permission_denied");
}

#[test]
fn revocation_by_the_cli_takes_effect_on_the_next_request() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    assert_eq!(app.list_tickets(&tenant.key, "").status, 200);
    let revoked = app.cli().json(&["key", "revoke", &tenant.key_id]);
    assert_eq!(revoked["status"], "revoked");
    let error = app
        .list_tickets(&tenant.key, "")
        .assert_error(401, "authentication_failed");
    assert!(
        error["message"].as_str().unwrap().contains("revoked"),
        "{error}"
    );
}

#[test]
fn expired_keys_are_401() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    let created = app.cli().json(&[
        "key",
        "create",
        "--tenant",
        &tenant.tenant_id,
        "--name",
        "short",
        "--scopes",
        "support.read",
        "--expires-in",
        "1s",
    ]);
    let key = created["api_key"].as_str().unwrap().to_string();
    assert!(created["expires_at"].is_string());
    assert_eq!(app.list_tickets(&key, "").status, 200);
    std::thread::sleep(Duration::from_millis(1500));
    let error = app
        .list_tickets(&key, "")
        .assert_error(401, "authentication_failed");
    assert!(error["message"].as_str().unwrap().contains("expired"));
}

#[test]
fn rotation_with_grace_keeps_the_old_secret_for_a_while() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    let rotated = app
        .cli()
        .json(&["key", "rotate", &tenant.key_id, "--grace", "2s"]);
    assert_eq!(rotated["key_id"], tenant.key_id.as_str());
    let new_key = rotated["api_key"].as_str().unwrap();
    assert_ne!(new_key, tenant.key);
    assert_eq!(app.list_tickets(&tenant.key, "").status, 200);
    assert_eq!(app.list_tickets(new_key, "").status, 200);
    std::thread::sleep(Duration::from_millis(2500));
    app.list_tickets(&tenant.key, "")
        .assert_error(401, "authentication_failed");
    assert_eq!(app.list_tickets(new_key, "").status, 200);
}

#[test]
fn rotation_without_grace_stops_the_old_secret_at_once() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    let rotated = app
        .cli()
        .json(&["key", "rotate", &tenant.key_id, "--grace", "0s"]);
    app.list_tickets(&tenant.key, "")
        .assert_error(401, "authentication_failed");
    assert_eq!(
        app.list_tickets(rotated["api_key"].as_str().unwrap(), "")
            .status,
        200
    );
}

#[test]
fn last_used_is_recorded() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    assert_eq!(
        app.count("SELECT count(*) FROM api_keys WHERE last_used_at IS NOT NULL"),
        0
    );
    for _ in 0..5 {
        assert_eq!(app.list_tickets(&tenant.key, "").status, 200);
    }
    // Recorded in the background, shortly after the first request.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while app.count("SELECT count(*) FROM api_keys WHERE last_used_at IS NOT NULL") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "last_used_at never set"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let listed = app
        .cli()
        .json(&["key", "list", "--tenant", &tenant.tenant_id]);
    assert!(listed["items"][0]["last_used_at"].is_string());
}

#[test]
fn the_database_holds_no_key_secret_in_clear() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    let rotated = app.cli().json(&["key", "rotate", &tenant.key_id]);
    assert_eq!(app.list_tickets(&tenant.key, "").status, 200);
    let secrets = [
        tenant.key.clone(),
        rotated["api_key"].as_str().unwrap().to_string(),
    ];
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", app.db_path().display());
        bytes.extend(std::fs::read(path).unwrap_or_default());
    }
    assert!(bytes.len() > 4096);
    for secret in &secrets {
        let needle = secret.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "a key secret is stored in clear"
        );
        // Not even the random part alone.
        let random = &needle[4..];
        assert!(!bytes.windows(random.len()).any(|w| w == random));
    }
}

#[test]
fn authentication_and_scope_come_before_validation() {
    let app = TestApp::spawn();
    let reader = app.tenant("support.read");
    let unknown = "thr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let bad_body = serde_json::json!({"colour": "red"});
    app.create_ticket(unknown, &bad_body)
        .assert_error(401, "authentication_failed");
    app.send(
        "POST",
        TICKETS,
        &[("Content-Type", "text/plain")],
        Some("x"),
    )
    .assert_error(401, "authentication_failed");
    app.list_tickets(unknown, "limit=0")
        .assert_error(401, "authentication_failed");
    app.create_ticket(&reader.key, &bad_body)
        .assert_error(403, "permission_denied");
    let actions = format!("{TICKETS}/tkt_x/actions");
    app.post(&actions, &reader.key, &bad_body)
        .assert_error(403, "permission_denied");
    // With the right key, the body's problem is reported.
    let writer = app.key(&reader.tenant_id, "support.write");
    app.create_ticket(&writer, &bad_body)
        .assert_invalid("colour");
}
