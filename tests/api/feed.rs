//! Search (`GET /tickets?q=`), the event feed (`GET /events`) and event webhooks.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::stub::{Answer, Stub};
use crate::helpers::{
    ALL_SCOPES, Cli, PUBLIC, ServerProcess, Tenant, TestApp, test_config, ticket_body, write_config,
};

fn ticket(app: &TestApp, tenant: &Tenant, subject: &str, content: &str) -> String {
    let mut body = ticket_body(subject);
    body["initial_message"]["content"] = json!(content);
    app.new_ticket(&tenant.key, &body)
}

fn found(app: &TestApp, tenant: &Tenant, query: &str) -> Vec<String> {
    let reply = app.list_tickets(&tenant.key, query);
    assert_eq!(reply.status, 200, "{query}: {}", reply.text);
    reply.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["subject"].as_str().unwrap().to_string())
        .collect()
}

fn q(text: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
    format!("q={encoded}")
}

#[test]
fn search_finds_subjects_and_messages_by_word_prefix_and_phrase() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    ticket(
        &app,
        &tenant,
        "Remboursé en attente",
        "Bonjour, où en est mon remboursement ?",
    );
    ticket(
        &app,
        &tenant,
        "Cracked blender jug",
        "The jug arrived cracked, please help",
    );
    let later = ticket(
        &app,
        &tenant,
        "Delivery address",
        "Please deliver to the office",
    );
    app.add_message(
        &tenant.key,
        &later,
        &json!({"role": "agent", "content": "The parcel with the CRACKED lid is on its way"}),
    );
    // A subject, ignoring case and accents.
    assert_eq!(
        found(&app, &tenant, &q("rembourse")),
        vec!["Remboursé en attente"]
    );
    assert_eq!(
        found(&app, &tenant, &q("REMBOURSÉ")),
        vec!["Remboursé en attente"]
    );
    // A message, and a later message.
    assert_eq!(found(&app, &tenant, &q("office")), vec!["Delivery address"]);
    let cracked: HashSet<String> = found(&app, &tenant, &q("cracked")).into_iter().collect();
    assert_eq!(
        cracked,
        HashSet::from(["Cracked blender jug".into(), "Delivery address".into()])
    );
    // A prefix covers both words.
    assert_eq!(
        found(&app, &tenant, &q("rembours*")),
        vec!["Remboursé en attente"]
    );
    // A phrase, and words that must all match.
    assert_eq!(
        found(&app, &tenant, &q("\"jug arrived\"")),
        vec!["Cracked blender jug"]
    );
    assert!(found(&app, &tenant, &q("\"arrived jug\"")).is_empty());
    assert_eq!(
        found(&app, &tenant, &q("cracked lid")),
        vec!["Delivery address"]
    );
    // The words of a query may be in different texts of one ticket: its subject and
    // one message, or two messages; best first and in a column order alike.
    for order in ["", "&sort=-created_at"] {
        assert_eq!(
            found(&app, &tenant, &format!("{}{order}", q("delivery lid"))),
            vec!["Delivery address"]
        );
        assert_eq!(
            found(&app, &tenant, &format!("{}{order}", q("office parcel"))),
            vec!["Delivery address"]
        );
        assert!(found(&app, &tenant, &format!("{}{order}", q("blender lid"))).is_empty());
    }
    // Filters apply to search results; another tenant finds nothing of these.
    app.update_ticket(&tenant.key, &later, &json!({"status": "pending"}));
    assert_eq!(
        found(&app, &tenant, &format!("{}&status=pending", q("cracked"))),
        vec!["Delivery address"]
    );
    let other = app.tenant(ALL_SCOPES);
    assert!(found(&app, &other, &q("cracked")).is_empty());
    // A refused write leaves nothing in the index (its documents are written with
    // its transaction's others, and forgotten when it is rolled back).
    let mut ghost = ticket_body("Ghostly duplicate");
    ghost["initial_message"]["external_message_id"] = json!("ext-ghost");
    app.new_ticket(&tenant.key, &ghost);
    ghost["subject"] = json!("Phantom duplicate");
    app.create_ticket(&tenant.key, &ghost)
        .assert_error(409, "conflict");
    assert_eq!(
        app.count("SELECT count(*) FROM ticket_search WHERE ticket_search MATCH 'phantom'"),
        0
    );
    assert_eq!(
        app.count("SELECT count(*) FROM ticket_search WHERE ticket_search MATCH 'ghostly'"),
        1
    );
    // A renamed subject is found by its new words only.
    app.update_ticket(&tenant.key, &later, &json!({"subject": "Office move"}));
    assert_eq!(found(&app, &tenant, &q("move")), vec!["Office move"]);
    assert!(found(&app, &tenant, &q("address")).is_empty());
}

#[test]
fn search_pages_without_duplicates_and_refuses_bad_queries() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    for n in 0..23 {
        let word = if n % 2 == 0 {
            "refund refund"
        } else {
            "refund"
        };
        ticket(
            &app,
            &tenant,
            &format!("Ticket {n}"),
            &format!("Asking for a {word} of order {n}"),
        );
    }
    ticket(&app, &tenant, "Unrelated", "Nothing to see");
    for sort in [
        "",
        "&sort=-created_at",
        "&sort=updated_at",
        "&sort=relevance",
    ] {
        let items = app.walk(
            &tenant.key,
            &format!("{PUBLIC}/tickets"),
            &format!("{}&limit=5{sort}", q("refund")),
        );
        let ids: HashSet<String> = items
            .iter()
            .map(|t| t["ticket_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(items.len(), 23, "{sort}");
        assert_eq!(ids.len(), 23, "duplicates with {sort:?}");
    }
    // Best match first: the tickets that say it twice come before the others.
    let first = found(&app, &tenant, &format!("{}&limit=12", q("refund")));
    let even = |s: &String| s.trim_start_matches("Ticket ").parse::<u32>().unwrap() % 2 == 0;
    assert!(first.iter().all(even), "{first:?}");
    // A token is bound to its q.
    let page = app
        .list_tickets(&tenant.key, &format!("{}&limit=5", q("refund")))
        .json();
    let token = page["next_page_token"].as_str().unwrap();
    app.list_tickets(&tenant.key, &format!("{}&page_token={token}", q("order")))
        .assert_invalid("page_token");
    for bad in ["\"unclosed", "*", "", "!!", "\"\""] {
        app.list_tickets(&tenant.key, &q(bad)).assert_invalid("q");
    }
    app.list_tickets(&tenant.key, "sort=relevance")
        .assert_invalid("sort");
}

fn events(app: &TestApp, tenant: &Tenant, query: &str) -> Vec<Value> {
    app.walk(&tenant.key, &format!("{PUBLIC}/events"), query)
}

#[test]
fn the_feed_holds_every_change_in_commit_order_and_nothing_rolled_back() {
    let stub = Stub::start();
    let app = TestApp::spawn_with(|c| c.actions.allow_private_networks = true);
    let tenant = app.tenant_with(ALL_SCOPES, Some(&stub.origin()), &[]);
    let a = app.new_ticket(&tenant.key, &ticket_body("a"));
    app.add_message(&tenant.key, &a, &json!({"role": "agent", "content": "hi"}));
    app.update_ticket(
        &tenant.key,
        &a,
        &json!({"status": "pending", "add_tags": ["x"]}),
    );
    app.add_message(&tenant.key, &a, &json!({"role": "user", "content": "back"}));
    app.update_ticket(&tenant.key, &a, &json!({"add_tags": []}));
    app.run_action(
        &tenant.key,
        &a,
        &json!({"payload": {"type": "custom_http", "url": "/hook"}}),
    );
    // Failed writes leave no event.
    let mut bad = ticket_body("bad");
    bad["channel"] = json!("fax");
    app.create_ticket(&tenant.key, &bad)
        .assert_invalid("channel");
    let mut dup = ticket_body("dup");
    dup["initial_message"]["external_message_id"] = json!("m-1");
    app.new_ticket(&tenant.key, &dup);
    app.create_ticket(&tenant.key, &dup)
        .assert_error(409, "conflict");
    let all = events(&app, &tenant, "limit=3");
    let types: Vec<&str> = all.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        vec![
            "ticket.created",
            "message.created",
            "ticket.updated",
            "message.created",
            "ticket.updated",
            "action.completed",
            "ticket.created"
        ]
    );
    let update = &all[2];
    assert_eq!(
        update["data"]["changes"]["status"],
        json!({"from": "open", "to": "pending"})
    );
    assert_eq!(
        update["data"]["changes"]["tags"]["to"],
        json!(["returns", "x"])
    );
    assert_eq!(
        all[4]["data"]["changes"]["status"]["to"], "open",
        "the customer reopened it"
    );
    assert_eq!(all[5]["data"]["action"]["status"], "succeeded");
    for event in &all {
        assert!(event["event_id"].as_str().unwrap().starts_with("evt_"));
        assert!(event["created_at"].is_string() && event["data"].is_object());
    }
    let messages = events(&app, &tenant, "type=message.created");
    assert_eq!(messages.len(), 2);
    assert!(
        events(&app, &app.tenant(ALL_SCOPES), "").is_empty(),
        "another tenant"
    );
    app.get(&format!("{PUBLIC}/events?type=ticket.closed"), &tenant.key)
        .assert_invalid("type");
    let reader = app.key(&tenant.tenant_id, "support.write");
    app.get(&format!("{PUBLIC}/events"), &reader)
        .assert_error(403, "permission_denied");
}

#[test]
fn the_feed_continues_after_a_restart_and_old_tokens_are_gone() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    for n in 0..3 {
        app.new_ticket(&tenant.key, &ticket_body(&format!("before {n}")));
    }
    let page = app
        .get(&format!("{PUBLIC}/events?limit=2"), &tenant.key)
        .json();
    let token = page["next_page_token"].as_str().unwrap().to_string();
    let (dir, config) = app.stop();
    let app = TestApp::start_in(dir, config, threada::startup::Mode::Serve, |_| {});
    app.new_ticket(&tenant.key, &ticket_body("after"));
    let rest = app
        .get(
            &format!("{PUBLIC}/events?limit=2&page_token={token}"),
            &tenant.key,
        )
        .json();
    let subjects: Vec<&str> = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"]["ticket"]["summary"]["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, vec!["before 2", "after"]);
    // At the feed's end there is no next page, but a poll token asks for what comes later.
    assert!(rest["next_page_token"].is_null());
    let poll = rest["poll_token"].as_str().unwrap().to_string();
    let nothing_yet = app
        .get(&format!("{PUBLIC}/events?page_token={poll}"), &tenant.key)
        .json();
    assert_eq!(nothing_yet["items"], json!([]));
    app.new_ticket(&tenant.key, &ticket_body("later"));
    for token in [poll.as_str(), nothing_yet["poll_token"].as_str().unwrap()] {
        let later = app
            .get(&format!("{PUBLIC}/events?page_token={token}"), &tenant.key)
            .json();
        assert_eq!(later["items"].as_array().unwrap().len(), 1);
        assert_eq!(
            later["items"][0]["data"]["ticket"]["summary"]["subject"],
            "later"
        );
    }
    // Retention removes old events; a token from before them is a 410.
    let conn = rusqlite::Connection::open(app.db_path()).unwrap();
    conn.execute(
        "INSERT INTO event_horizons (tenant_id, purged_seq) VALUES (?1, 3)",
        [&tenant.tenant_id],
    )
    .unwrap();
    let gone = app.get(
        &format!("{PUBLIC}/events?limit=2&page_token={token}"),
        &tenant.key,
    );
    let error = gone.assert_error(410, "gone");
    assert_eq!(error["param"], "page_token");
}

/// A server process whose tenant has a webhook on `stub`, quick retries.
fn webhook_server(stub: &Stub, dir: &std::path::Path) -> (ServerProcess, Cli, String, Value) {
    let mut config = test_config(dir);
    config.actions.allow_private_networks = true;
    config.webhooks.retry_base_ms = 300;
    config.webhooks.pause_after_failures = 4;
    let path = write_config(dir, &config);
    let cli = Cli::new(path.clone());
    let (tenant_id, key) = cli.tenant_with_hooks("Hooks", &stub.origin());
    let hook = cli.json(&[
        "webhook",
        "create",
        "--tenant",
        &tenant_id,
        "--url",
        "/events",
        "--event",
        "ticket.created",
    ]);
    let server = ServerProcess::start("serve", &path, dir, &[]);
    (server, cli, key, hook)
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_receiver_that_fails_three_times_gets_the_event_with_growing_delays() {
    let stub = Stub::start();
    stub.answer(Answer::FailFirst(3));
    let dir = tempfile::tempdir().unwrap();
    let (server, cli, key, hook) = webhook_server(&stub, dir.path());
    let ticket = server.new_ticket(&key, &ticket_body("hooked"));
    wait_for("four attempts", Duration::from_secs(20), || {
        stub.received().len() >= 4
    });
    let received = stub.received();
    let event_ids: HashSet<&str> = received
        .iter()
        .map(|r| r.headers["x-threada-event-id"].as_str())
        .collect();
    assert_eq!(event_ids.len(), 1, "one event, sent four times");
    let body: Value = serde_json::from_str(&received[3].body).unwrap();
    assert_eq!(body["type"], "ticket.created");
    assert_eq!(body["ticket_id"], ticket.as_str());
    assert_eq!(body["event_id"], *event_ids.iter().next().unwrap());
    assert_eq!(received[3].headers["x-threada-attempt"], "4");
    assert!(received[3].headers["x-threada-signature"].starts_with("t="));
    let gaps: Vec<Duration> = received.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(
        gaps[1] > gaps[0] && gaps[2] > gaps[1],
        "delays did not grow: {gaps:?}"
    );
    // The attempts are visible, the last one delivered.
    let id = hook["subscription_id"].as_str().unwrap();
    wait_for(
        "the delivery to be recorded",
        Duration::from_secs(5),
        || cli.json(&["webhook", "deliveries", id])["items"][0]["status"] == "delivered",
    );
    let deliveries = cli.json(&["webhook", "deliveries", id]);
    let delivery = &deliveries["items"][0];
    assert_eq!(delivery["attempts"], 4);
    assert_eq!(delivery["history"][0]["http_status"], 500);
    assert_eq!(delivery["history"][3]["http_status"], 200);
    // Replaying sends the same event again.
    let tenant = cli.json(&["tenant", "list"])["items"][0]["tenant_id"]
        .as_str()
        .unwrap()
        .to_string();
    cli.json(&[
        "webhook",
        "replay",
        delivery["delivery_id"].as_str().unwrap(),
        "--tenant",
        &tenant,
    ]);
    wait_for("the replay", Duration::from_secs(10), || {
        stub.received().len() >= 5
    });
    assert_eq!(
        stub.received()[4].headers["x-threada-event-id"],
        body["event_id"].as_str().unwrap()
    );
}

#[test]
fn kill_9_during_a_retry_backlog_loses_no_event_and_paused_subscriptions_resume() {
    let stub = Stub::start();
    stub.answer(Answer::Status(503, "{}".into()));
    let dir = tempfile::tempdir().unwrap();
    let (mut server, cli, key, hook) = webhook_server(&stub, dir.path());
    let mut tickets = HashSet::new();
    for n in 0..5 {
        tickets.insert(server.new_ticket(&key, &ticket_body(&format!("backlog {n}"))));
    }
    // Failing receivers pause the subscription after four failed attempts in a row.
    let id = hook["subscription_id"].as_str().unwrap();
    wait_for("the pause", Duration::from_secs(20), || {
        cli.json(&[
            "webhook",
            "list",
            "--tenant",
            hook["tenant_id"].as_str().unwrap(),
        ])["items"][0]["status"]
            == "paused"
    });
    server.kill_9();
    // The receiver recovers; the server comes back; the subscription is resumed by hand.
    stub.answer(Answer::Status(200, "{}".into()));
    let path = dir.path().join("threada.toml");
    let server = ServerProcess::start("serve", &path, dir.path(), &[]);
    tickets.insert(server.new_ticket(&key, &ticket_body("after the crash")));
    std::thread::sleep(Duration::from_millis(600));
    let before = stub
        .received()
        .iter()
        .filter(|r| r.headers.contains_key("x-threada-attempt"))
        .count();
    cli.json(&["webhook", "resume", id]);
    wait_for("every ticket delivered", Duration::from_secs(30), || {
        let delivered: HashSet<String> = stub
            .received()
            .iter()
            .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
            .filter_map(|b| b["ticket_id"].as_str().map(str::to_string))
            .collect();
        tickets.is_subset(&delivered)
    });
    assert!(stub.received().len() > before);
}
