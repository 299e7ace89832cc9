//! Actions against a local stub receiver. Every destination is on loopback; the ranges
//! that must never be reached are proven by unit tests of the classifier and the
//! resolver hook (src/actions/guard.rs), never by sending traffic to them.

use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::stub::{Answer, Stub};
use crate::helpers::{
    ALL_SCOPES, Reply, ServerProcess, Tenant, TestApp, ticket_body, write_config,
};

const SEED_ACTION: &str = r#"{
    "payload": {
      "type": "custom_http",
      "method": "POST",
      "url": "/hooks/zapier",
      "headers": {
        "X-Source": "threada"
      },
      "body_json": "{\"event\":\"ticket_updated\"}"
    }
  }"#;

/// A server that may reach loopback, a tenant whose base URL is the stub, a ticket.
fn setup(adjust: impl FnOnce(&mut threada::config::Config)) -> (TestApp, Stub, Tenant, String) {
    let stub = Stub::start();
    let app = TestApp::spawn_with(|c| {
        c.actions.allow_private_networks = true;
        adjust(c);
    });
    let tenant = app.tenant_with(ALL_SCOPES, Some(&stub.origin()), &[]);
    let ticket = app.new_ticket(&tenant.key, &ticket_body("action"));
    (app, stub, tenant, ticket)
}

fn run(app: &TestApp, tenant: &Tenant, ticket: &str, body: &Value) -> Reply {
    app.run_action(&tenant.key, ticket, body)
}

fn action(url: &str) -> Value {
    json!({"payload": {"type": "custom_http", "method": "POST", "url": url, "body_json": "{\"a\":1}"}})
}

#[test]
fn the_seed_action_example_works_verbatim() {
    let (app, stub, tenant, ticket) = setup(|_| {});
    let reply = app.send(
        "POST",
        &app.actions_path(&ticket),
        &[
            ("X-Api-Key", &tenant.key),
            ("Content-Type", "application/json"),
        ],
        Some(SEED_ACTION),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    let body = reply.json();
    let action = &body["action"];
    let seed: Value = serde_json::from_str(
        r#"{"action_id": "ACTION_ID", "tenant_id": "TENANT_ID", "ticket_id": "TICKET_ID",
            "action_type": "custom_http", "status": "succeeded", "requested_by": "api_key:API_KEY_ID",
            "payload": {"type": "custom_http", "method": "POST", "url": "/hooks/zapier",
                        "headers": {"X-Source": "threada"}, "body_json": "{\"event\":\"ticket_updated\"}"}}"#,
    )
    .unwrap();
    for (name, value) in seed.as_object().unwrap() {
        let found = &action[name];
        assert!(!found.is_null(), "missing {name}");
        if name != "action_id"
            && name != "tenant_id"
            && name != "ticket_id"
            && name != "requested_by"
        {
            assert_eq!(found, value, "{name}");
        }
    }
    let action_id = action["action_id"].as_str().unwrap();
    assert!(action_id.starts_with("act_"));
    assert_eq!(action["tenant_id"], tenant.tenant_id.as_str());
    assert_eq!(action["ticket_id"], ticket.as_str());
    assert_eq!(action["requested_by"], format!("api_key:{}", tenant.key_id));
    assert_eq!(action["result"]["http_status"], 200);
    assert_eq!(action["result"]["response_truncated"], false);
    assert!(action["result"]["error"].is_null());
    assert!(action["completed_at"].is_string());

    let received = stub.received();
    assert_eq!(received.len(), 1);
    let hook = &received[0];
    assert_eq!(hook.method, "POST");
    assert_eq!(hook.path, "/hooks/zapier");
    assert_eq!(hook.body, "{\"event\":\"ticket_updated\"}");
    assert_eq!(hook.headers["x-source"], "threada");
    assert_eq!(hook.headers["content-type"], "application/json");
    assert!(hook.headers["user-agent"].starts_with("threada/"));
    assert_eq!(hook.headers["x-threada-action-id"], action_id);
    assert_eq!(hook.headers["x-threada-ticket-id"], ticket.as_str());
    // t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
    let signature = &hook.headers["x-threada-signature"];
    let (t, v1) = signature
        .strip_prefix("t=")
        .and_then(|s| s.split_once(",v1="))
        .unwrap_or_else(|| panic!("bad signature header {signature}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - t.parse::<i64>().unwrap()).abs() < 60);
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(tenant.signing_secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", hook.body).as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, expected);

    // The action reads back the same.
    let got = app.get_action(&tenant.key, &ticket, action_id);
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["action"], *action);
}

#[test]
fn a_500_answer_is_a_failed_action() {
    let (app, stub, tenant, ticket) = setup(|_| {});
    stub.answer(Answer::Status(500, "{\"error\":\"boom\"}".into()));
    let reply = run(&app, &tenant, &ticket, &action("/fail"));
    assert_eq!(reply.status, 201, "{}", reply.text);
    let action = &reply.json()["action"];
    assert_eq!(action["status"], "failed");
    assert_eq!(action["result"]["http_status"], 500);
    assert_eq!(action["result"]["response_body"], "{\"error\":\"boom\"}");
}

#[test]
fn a_slow_hook_times_out_within_the_configured_time() {
    let (app, stub, tenant, ticket) = setup(|c| c.actions.timeout_ms = 800);
    stub.answer(Answer::Slow(Duration::from_secs(3)));
    let started = Instant::now();
    let reply = run(&app, &tenant, &ticket, &action("/slow"));
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 201, "{}", reply.text);
    let action = &reply.json()["action"];
    assert_eq!(action["status"], "failed");
    assert_eq!(action["result"]["error"]["code"], "timeout");
    assert!(action["result"]["http_status"].is_null());
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
    assert!(action["result"]["duration_ms"].as_u64().unwrap() >= 700);
}

#[test]
fn an_oversized_answer_is_truncated() {
    let (app, stub, tenant, ticket) = setup(|c| c.actions.max_response_bytes = 1000);
    stub.answer(Answer::Large(5000));
    let reply = run(&app, &tenant, &ticket, &action("/big"));
    let done = &reply.json()["action"];
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["result"]["response_truncated"], true);
    assert_eq!(
        done["result"]["response_body"].as_str().unwrap().len(),
        1000
    );
    stub.answer(Answer::Large(1000));
    let reply = run(&app, &tenant, &ticket, &action("/exact"));
    assert_eq!(
        reply.json()["action"]["result"]["response_truncated"],
        false
    );
}

#[test]
fn redirects_are_not_followed() {
    let (app, stub, tenant, ticket) = setup(|_| {});
    stub.answer(Answer::Redirect(format!("{}/elsewhere", stub.origin())));
    let reply = run(&app, &tenant, &ticket, &action("/moved"));
    let action = &reply.json()["action"];
    assert_eq!(action["status"], "failed");
    assert_eq!(action["result"]["http_status"], 302);
    assert_eq!(stub.received().len(), 1);
}

#[test]
fn credentials_are_redacted_in_responses_and_storage() {
    let (app, stub, tenant, ticket) = setup(|_| {});
    let secrets = [
        "Bearer sk_live_s3cr3t",
        "apikey-9f8e7d",
        "tok-123456789",
        "session=abc987",
    ];
    let body = json!({"payload": {"type": "custom_http", "url": "/secure", "headers": {
        "Authorization": secrets[0], "X-Api-Key": secrets[1], "X-Auth-Token": secrets[2],
        "Cookie": secrets[3], "X-Source": "threada"}}});
    let reply = run(&app, &tenant, &ticket, &body);
    assert_eq!(reply.status, 201, "{}", reply.text);
    let headers = &reply.json()["action"]["payload"]["headers"];
    for name in ["Authorization", "X-Api-Key", "X-Auth-Token", "Cookie"] {
        assert_eq!(headers[name], "[redacted]", "{name}");
    }
    assert_eq!(headers["X-Source"], "threada");
    let listed = app.list_actions(&tenant.key, &ticket, "");
    for text in [&reply.text, &listed.text] {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} leaked");
        }
    }
    let mut stored = Vec::new();
    for suffix in ["", "-wal"] {
        stored.extend(
            std::fs::read(format!("{}{suffix}", app.db_path().display())).unwrap_or_default(),
        );
    }
    for secret in secrets {
        assert!(
            !stored.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} stored"
        );
    }
    // The hook itself got the real values.
    let hook = &stub.received()[0];
    assert_eq!(hook.headers["authorization"], secrets[0]);
    assert_eq!(hook.headers["cookie"], secrets[3]);
}

#[test]
fn bad_payloads_are_400_and_nothing_is_sent_or_recorded() {
    let (app, stub, tenant, ticket) = setup(|_| {});
    let payload = |extra: Value| {
        let mut base = json!({"type": "custom_http", "method": "POST", "url": "/hooks/x"});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        json!({ "payload": base })
    };
    let many: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("X-H{i}"), json!("v"))).collect();
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "payload"),
        (json!({"payload": "x"}), "payload"),
        (
            json!({"payload": {"method": "POST", "url": "/x"}}),
            "payload.type",
        ),
        (payload(json!({"type": "zapier"})), "payload.type"),
        (payload(json!({"method": "TRACE"})), "payload.method"),
        (payload(json!({"method": "post"})), "payload.method"),
        (payload(json!({"url": "ftp://127.0.0.1/x"})), "payload.url"),
        (payload(json!({"url": "file:///etc/passwd"})), "payload.url"),
        (
            payload(json!({"url": format!("http://user:pw@127.0.0.1:{}/x", stub.port)})),
            "payload.url",
        ),
        (
            payload(json!({"url": "https://evil.example.net/x"})),
            "payload.url",
        ),
        (
            payload(json!({"url": "//evil.example.net/x"})),
            "payload.url",
        ),
        (payload(json!({"url": "/../../etc"})), "payload.url"),
        (payload(json!({"url": "relative/path"})), "payload.url"),
        (payload(json!({"url": 5})), "payload.url"),
        (
            payload(json!({"headers": {"Host": "evil"}})),
            "payload.headers",
        ),
        (
            payload(json!({"headers": {"Content-Length": "5"}})),
            "payload.headers",
        ),
        (
            payload(json!({"headers": {"Connection": "close"}})),
            "payload.headers",
        ),
        (
            payload(json!({"headers": {"Transfer-Encoding": "chunked"}})),
            "payload.headers",
        ),
        (
            payload(json!({"headers": {"X-Threada-Signature": "forged"}})),
            "payload.headers",
        ),
        (
            payload(json!({"headers": {"X-Evil": "a\r\nInjected: yes"}})),
            "payload.headers",
        ),
        (
            payload(json!({"headers": {"Bad Name": "x"}})),
            "payload.headers",
        ),
        (
            payload(json!({"headers": Value::Object(many)})),
            "payload.headers",
        ),
        (
            payload(json!({"headers": {"X-Number": 5}})),
            "payload.headers.X-Number",
        ),
        (
            payload(json!({"body_json": "{not json"})),
            "payload.body_json",
        ),
        (payload(json!({"body_json": {"a": 1}})), "payload.body_json"),
        (payload(json!({"extra": true})), "payload.extra"),
        (
            json!({"payload": {"type": "custom_http", "url": "/x"}, "tenant_id": "ten_x"}),
            "tenant_id",
        ),
    ];
    for (body, param) in cases {
        run(&app, &tenant, &ticket, &body).assert_invalid(param);
    }
    assert!(stub.received().is_empty());
    assert_eq!(app.count("SELECT count(*) FROM actions"), 0);
    // A tenant without a base URL cannot use paths.
    let bare = app.tenant(ALL_SCOPES);
    let theirs = app.new_ticket(&bare.key, &ticket_body("x"));
    run(&app, &bare, &theirs, &action("/hooks/zapier")).assert_invalid("payload.url");
    assert_eq!(app.count("SELECT count(*) FROM actions"), 0);
}

#[test]
fn absolute_urls_may_target_allowed_origins() {
    let stub = Stub::start();
    let other = Stub::start();
    let app = TestApp::spawn_with(|c| c.actions.allow_private_networks = true);
    let tenant = app.tenant_with(
        ALL_SCOPES,
        Some(&format!("{}/base", stub.origin())),
        &[&other.origin()],
    );
    let ticket = app.new_ticket(&tenant.key, &ticket_body("x"));
    let same = run(
        &app,
        &tenant,
        &ticket,
        &action(&format!("{}/direct?q=1", stub.origin())),
    );
    assert_eq!(
        same.json()["action"]["status"],
        "succeeded",
        "{}",
        same.text
    );
    let allowed = run(
        &app,
        &tenant,
        &ticket,
        &action(&format!("{}/other", other.origin())),
    );
    assert_eq!(
        allowed.json()["action"]["status"],
        "succeeded",
        "{}",
        allowed.text
    );
    let joined = run(&app, &tenant, &ticket, &action("/hooks/zapier"));
    assert_eq!(joined.json()["action"]["status"], "succeeded");
    assert_eq!(stub.received()[0].path, "/direct?q=1");
    assert_eq!(stub.received()[1].path, "/base/hooks/zapier");
    assert_eq!(other.received()[0].path, "/other");
}

#[test]
fn private_destinations_are_refused_by_default() {
    let stub = Stub::start();
    let app = TestApp::spawn(); // allow_private_networks = false
    let port = stub.port;
    let origins = [
        format!("http://127.0.0.1:{port}"),
        format!("http://[::1]:{port}"),
        format!("http://[::ffff:7f00:1]:{port}"),
        format!("http://0.0.0.0:{port}"),
    ];
    let origin_refs: Vec<&str> = origins.iter().map(String::as_str).collect();
    let tenant = app.tenant_with(
        ALL_SCOPES,
        Some(&format!("http://localhost:{port}")),
        &origin_refs,
    );
    let ticket = app.new_ticket(&tenant.key, &ticket_body("x"));
    // URLs that name a blocked address, however spelt: 400, nothing recorded.
    for url in [
        format!("http://127.0.0.1:{port}/x"),
        format!("http://2130706433:{port}/x"),
        format!("http://0x7f.1:{port}/x"),
        format!("http://127.1:{port}/x"),
        format!("http://0177.0.0.1:{port}/x"),
        format!("http://[::1]:{port}/x"),
        format!("http://[::ffff:127.0.0.1]:{port}/x"),
        format!("http://0.0.0.0:{port}/x"),
    ] {
        let reply = run(&app, &tenant, &ticket, &action(&url));
        reply.assert_invalid("payload.url");
        assert!(reply.text.contains("non-public"), "{url}: {}", reply.text);
    }
    assert_eq!(app.count("SELECT count(*) FROM actions"), 0);
    // A name that resolves to loopback: recorded as failed, destination_blocked.
    for url in ["/hooks/zapier", &format!("http://localhost:{port}/direct")] {
        let reply = run(&app, &tenant, &ticket, &action(url));
        assert_eq!(reply.status, 201, "{}", reply.text);
        let done = &reply.json()["action"];
        assert_eq!(done["status"], "failed");
        assert_eq!(done["result"]["error"]["code"], "destination_blocked");
        assert!(done["result"]["http_status"].is_null());
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(stub.received().is_empty(), "the stub was reached");
}

#[test]
fn workers_never_wait_on_outbound_calls() {
    let (app, stub, tenant, ticket) = setup(|c| c.server.workers = 1);
    stub.answer(Answer::Slow(Duration::from_secs(2)));
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let client = app.clone();
            let (key, ticket) = (tenant.key.clone(), ticket.clone());
            std::thread::spawn(move || client.run_action(&key, &ticket, &action("/slow")))
        })
        .collect();
    while stub.received().len() < 2 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    assert_eq!(app.send("GET", "/healthz", &[], None).status, 200);
    assert_eq!(app.list_tickets(&tenant.key, "").status, 200);
    assert_eq!(app.get_ticket(&tenant.key, &ticket).status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    for handle in slow {
        assert_eq!(
            handle.join().unwrap().json()["action"]["status"],
            "succeeded"
        );
    }
}

#[test]
fn a_full_pool_answers_503_and_records_nothing() {
    let (app, stub, tenant, ticket) = setup(|c| {
        c.actions.threads = 1;
        c.actions.queue = 1;
        c.actions.per_tenant = 2;
    });
    stub.answer(Answer::Slow(Duration::from_millis(1500)));
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let client = app.clone();
            let (key, ticket) = (tenant.key.clone(), ticket.clone());
            std::thread::spawn(move || client.run_action(&key, &ticket, &action("/slow")))
        })
        .collect();
    while app.count("SELECT count(*) FROM actions") < 2 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let reply = run(&app, &tenant, &ticket, &action("/third"));
    reply.assert_error(503, "service_unavailable");
    assert!(reply.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(app.count("SELECT count(*) FROM actions"), 2);
    for handle in busy {
        assert_eq!(handle.join().unwrap().status, 201);
    }
    // Room again once they are done.
    stub.answer(Answer::Status(200, "{}".into()));
    assert_eq!(run(&app, &tenant, &ticket, &action("/later")).status, 201);
}

#[test]
fn an_idempotent_retry_does_not_call_the_hook_again() {
    let (app, stub, tenant, ticket) = setup(|_| {});
    let path = app.actions_path(&ticket);
    let first = app.post_keyed(&path, &tenant.key, "act-1", &action("/once"));
    let second = app.post_keyed(&path, &tenant.key, "act-1", &action("/once"));
    assert_eq!((first.status, second.status), (201, 201));
    assert_eq!(first.text, second.text);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(stub.received().len(), 1);
    app.post_keyed(&path, &tenant.key, "act-1", &action("/other"))
        .assert_error(422, "unprocessable");
    assert_eq!(app.count("SELECT count(*) FROM actions"), 1);
}

#[test]
fn a_retry_while_the_first_call_runs_is_a_conflict() {
    let (app, stub, tenant, ticket) = setup(|_| {});
    stub.answer(Answer::Slow(Duration::from_millis(1000)));
    let path = app.actions_path(&ticket);
    let client = app.clone();
    let (key, first_path) = (tenant.key.clone(), path.clone());
    let first =
        std::thread::spawn(move || client.post_keyed(&first_path, &key, "act-2", &action("/slow")));
    while stub.received().is_empty() {
        std::thread::sleep(Duration::from_millis(10));
    }
    app.post_keyed(&path, &tenant.key, "act-2", &action("/slow"))
        .assert_error(409, "conflict");
    assert_eq!(first.join().unwrap().status, 201);
    let replay = app.post_keyed(&path, &tenant.key, "act-2", &action("/slow"));
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(stub.received().len(), 1);
}

#[test]
fn actions_list_newest_first_with_pages() {
    let (app, _stub, tenant, ticket) = setup(|_| {});
    let ids: Vec<String> = (0..7)
        .map(|n| {
            let reply = run(&app, &tenant, &ticket, &action(&format!("/n{n}")));
            reply.json()["action"]["action_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let walked: Vec<String> = app
        .walk(&tenant.key, &app.actions_path(&ticket), "limit=3")
        .iter()
        .map(|item| item["action_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(walked, ids.iter().rev().cloned().collect::<Vec<_>>());
    let missing = app.get_action(&tenant.key, &ticket, "act_missing");
    assert_eq!(missing.assert_error(404, "not_found")["param"], "action_id");
}

#[test]
fn an_action_cut_by_kill_9_reads_as_interrupted_after_restart() {
    let stub = Stub::start();
    stub.answer(Answer::Slow(Duration::from_secs(5)));
    let app = TestApp::spawn_with(|c| c.actions.allow_private_networks = true);
    let tenant = app.tenant_with(ALL_SCOPES, Some(&stub.origin()), &[]);
    let ticket = app.new_ticket(&tenant.key, &ticket_body("doomed"));
    let (dir, config) = app.stop();
    let path = write_config(dir.path(), &config);

    let mut server = ServerProcess::start("serve", &path, dir.path(), &[]);
    let client = server.clone();
    let (key, t) = (tenant.key.clone(), ticket.clone());
    let pending = std::thread::spawn(move || {
        client.post_keyed(&client.actions_path(&t), &key, "doomed-1", &action("/slow"))
    });
    while stub.received().is_empty() {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill_9();
    let _ = pending.join();

    let server = ServerProcess::start("serve", &path, dir.path(), &[]);
    let listed = server.list_actions(&tenant.key, &ticket, "").json();
    let cut = &listed["items"][0];
    assert_eq!(cut["status"], "failed");
    assert_eq!(cut["result"]["error"]["code"], "interrupted");
    assert!(cut["completed_at"].is_string());
    // A retry with the same key replays the outcome instead of calling again.
    let retry = server.post_keyed(
        &server.actions_path(&ticket),
        &tenant.key,
        "doomed-1",
        &action("/slow"),
    );
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        retry.json()["action"]["result"]["error"]["code"],
        "interrupted"
    );
    assert_eq!(stub.received().len(), 1);
}
