//! Every layer answers with the JSON envelope.

use actix_web::{HttpResponse, web};
use serde_json::json;
use threada::startup::Mode;

use crate::helpers::{ALL_SCOPES, TestApp, ticket_body};

#[test]
fn unknown_route_is_a_404_envelope() {
    let app = TestApp::spawn();
    let reply = app.send("GET", "/nope", &[], None);
    reply.assert_error(404, "not_found");
    let reply = app.send("GET", "/api/v1/public/nothing", &[], None);
    reply.assert_error(404, "not_found");
}

#[test]
fn wrong_method_is_a_405_with_allow() {
    let app = TestApp::spawn();
    let reply = app.send("DELETE", "/api/v1/public/tickets", &[], None);
    reply.assert_error(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("GET, HEAD, POST"));
    let reply = app.send("PUT", "/api/v1/public/tickets/tkt_x", &[], None);
    reply.assert_error(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("GET, HEAD, PATCH, DELETE"));
    let reply = app.send("POST", "/healthz", &[], None);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
}

#[test]
fn json_syntax_type_and_unknown_field_errors() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    let post = |body: &str| {
        app.send(
            "POST",
            "/api/v1/public/tickets",
            &[
                ("X-Api-Key", &tenant.key),
                ("Content-Type", "application/json"),
            ],
            Some(body),
        )
    };
    let syntax = post("{\"subject\": ");
    let error = syntax.assert_error(400, "invalid_request");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    post("[]").assert_error(400, "invalid_request");
    post("").assert_error(400, "invalid_request");
    post(r#"{"subject": 42}"#).assert_invalid("subject");
    post(r#"{"contact": {"email": ["a"]}}"#).assert_invalid("contact.email");
    post(r#"{"subject": "x", "colour": "red"}"#).assert_invalid("colour");
    post(r#"{"initial_message": {"role": "user", "mood": "sad"}}"#)
        .assert_invalid("initial_message.mood");
    assert_eq!(app.count("SELECT count(*) FROM tickets"), 0);
}

#[test]
fn query_and_path_errors() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    app.get("/api/v1/public/tickets?limit=abc", &tenant.key)
        .assert_invalid("limit");
    app.get("/api/v1/public/tickets?unknown=1", &tenant.key)
        .assert_invalid("unknown");
    let missing = app.get("/api/v1/public/tickets/tkt_doesnotexist", &tenant.key);
    let error = missing.assert_error(404, "not_found");
    assert_eq!(error["param"], "ticket_id");
    let odd = app.get("/api/v1/public/tickets/%00%ff", &tenant.key);
    odd.assert_error(404, "not_found");
}

#[test]
fn payload_too_large_is_413() {
    let app = TestApp::spawn_with(|c| c.server.max_body_bytes = 2048);
    let tenant = app.tenant(ALL_SCOPES);
    let mut body = ticket_body("big");
    body["initial_message"]["content"] = json!("x".repeat(4000));
    let reply = app.create_ticket(&tenant.key, &body);
    reply.assert_error(413, "payload_too_large");
    assert_eq!(app.count("SELECT count(*) FROM tickets"), 0);
}

#[test]
fn wrong_content_type_is_415() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    let body = ticket_body("x").to_string();
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let reply = app.send(
            "POST",
            "/api/v1/public/tickets",
            &[("X-Api-Key", &tenant.key), ("Content-Type", content_type)],
            Some(&body),
        );
        reply.assert_error(415, "unsupported_media_type");
    }
    let reply = app.send(
        "POST",
        "/api/v1/public/tickets",
        &[("X-Api-Key", &tenant.key)],
        Some(&body),
    );
    reply.assert_error(415, "unsupported_media_type");
    let ok = app.send(
        "POST",
        "/api/v1/public/tickets",
        &[
            ("X-Api-Key", &tenant.key),
            ("Content-Type", "application/json; charset=utf-8"),
        ],
        Some(&body),
    );
    assert_eq!(ok.status, 201, "{}", ok.text);
}

#[test]
fn a_panicking_handler_is_a_500_without_details() {
    let app = TestApp::spawn_full(
        |_| {},
        Mode::Serve,
        |cfg: &mut web::ServiceConfig| {
            cfg.service(
                threada::routes::resource("/test/panic", "GET").route(web::get().to(|| async {
                    if std::hint::black_box(true) {
                        panic!("secret internal detail");
                    }
                    HttpResponse::Ok().finish()
                })),
            );
        },
    );
    let reply = app.send("GET", "/test/panic", &[], None);
    let error = reply.assert_error(500, "internal");
    assert!(!reply.text.contains("secret internal detail"));
    assert!(error["request_id"].is_string());
    // The worker survived.
    assert_eq!(app.send("GET", "/healthz", &[], None).status, 200);
}

#[test]
fn request_ids_are_echoed_when_sane() {
    let app = TestApp::spawn();
    let reply = app.send(
        "GET",
        "/healthz",
        &[("X-Request-Id", "abc-123.x:y_z")],
        None,
    );
    assert_eq!(reply.header("x-request-id"), Some("abc-123.x:y_z"));
    let reply = app.send(
        "GET",
        "/healthz",
        &[("X-Request-Id", "bad id <script>")],
        None,
    );
    let generated = reply.header("x-request-id").unwrap();
    assert!(generated.starts_with("req_"), "{generated}");
    let error = app.send("GET", "/nope", &[("X-Request-Id", "trace-1")], None);
    assert_eq!(
        error.assert_error(404, "not_found")["request_id"],
        "trace-1"
    );
}

#[test]
fn health_and_readiness() {
    let app = TestApp::spawn();
    let health = app.send("GET", "/healthz", &[], None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let ready = app.send("GET", "/readyz", &[], None);
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "ready");
}

#[test]
fn a_locked_database_is_a_503_with_retry_after() {
    let app = TestApp::spawn_with(|c| c.database.busy_timeout_ms = 200);
    let tenant = app.tenant(ALL_SCOPES);
    let blocker = rusqlite::Connection::open(app.db_path()).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let reply = app.create_ticket(&tenant.key, &ticket_body("blocked"));
    reply.assert_error(503, "service_unavailable");
    assert_eq!(reply.header("retry-after"), Some("1"));
    blocker.execute_batch("ROLLBACK").unwrap();
    let reply = app.create_ticket(&tenant.key, &ticket_body("after"));
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(app.count("SELECT count(*) FROM tickets"), 1);
}
