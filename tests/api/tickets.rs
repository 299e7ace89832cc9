//! Tickets and messages: the seed's examples, validation, pagination, filters, tenant
//! isolation, idempotency.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{ALL_SCOPES, Client, Tenant, TestApp, seed_create_body, ticket_body};

const TICKETS: &str = "/api/v1/public/tickets";

/// `actual` has every field of `expected`, with the same JSON type, recursively
/// (arrays: the first element's shape).
fn assert_superset(actual: &Value, expected: &Value, path: &str) {
    match (expected, actual) {
        (Value::Object(expected), Value::Object(actual)) => {
            for (name, value) in expected {
                let found = actual
                    .get(name)
                    .unwrap_or_else(|| panic!("missing field {path}.{name}"));
                assert_superset(found, value, &format!("{path}.{name}"));
            }
        }
        (Value::Array(expected), Value::Array(actual)) => {
            if let Some(first) = expected.first() {
                let item = actual.first().unwrap_or_else(|| panic!("{path} is empty"));
                assert_superset(item, first, &format!("{path}[0]"));
            }
        }
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => {}
        _ => panic!("{path}: expected {expected}, got {actual}"),
    }
}

fn setup() -> (TestApp, Tenant) {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    (app, tenant)
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ticket_id"].as_str().unwrap().to_string())
        .collect()
}

/// Walks every page of `query` with `limit`; `between` runs after each page.
fn walk(client: &Client, key: &str, query: &str, mut between: impl FnMut()) -> Vec<String> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(t) => format!("{TICKETS}?{query}&page_token={t}"),
            None => format!("{TICKETS}?{query}"),
        };
        let reply = client.get(&path, key);
        assert_eq!(reply.status, 200, "{}", reply.text);
        let page = reply.json();
        all.extend(ids(&page));
        between();
        match page["next_page_token"].as_str() {
            Some(next) => token = Some(next.to_string()),
            None => {
                assert!(page["next_page_token"].is_null());
                return all;
            }
        }
    }
}

#[test]
fn the_seed_create_example_works_verbatim() {
    let (app, tenant) = setup();
    // The request exactly as the documentation's curl sends it.
    let body = r#"{
    "subject": "SUBJECT",
    "priority": "normal",
    "channel": "email",
    "contact": {
      "name": "CUSTOMER_NAME",
      "email": "customer@example.com"
    },
    "tags": ["returns"],
    "initial_message": {
      "role": "user",
      "content": "MESSAGE_BODY",
      "external_message_id": "EXT_MSG_ID"
    }
  }"#;
    let reply = app.send(
        "POST",
        "/api/v1/public/tickets",
        &[
            ("X-Api-Key", &tenant.key),
            ("Content-Type", "application/json"),
        ],
        Some(body),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    let seed: Value = serde_json::from_str(
        r#"{"ticket": {"summary": {"ticket_id": "TICKET_ID", "tenant_id": "TENANT_ID", "subject": "SUBJECT",
            "status": "open", "priority": "normal", "channel": "email", "tags": ["returns"],
            "created_at": "2026-02-04T18:32:11Z"},
          "contact": {"name": "CUSTOMER_NAME", "email": "customer@example.com"},
          "messages": [{"message_id": "MESSAGE_ID", "role": "user", "content": "MESSAGE_BODY",
            "channel": "email", "created_at": "2026-02-04T18:32:11Z"}]}}"#,
    )
    .unwrap();
    let created = reply.json();
    assert_superset(&created, &seed, "");
    let ticket = &created["ticket"];
    let summary = &ticket["summary"];
    assert!(summary["ticket_id"].as_str().unwrap().starts_with("tkt_"));
    assert_eq!(summary["tenant_id"], tenant.tenant_id.as_str());
    assert_eq!(summary["subject"], "SUBJECT");
    assert_eq!(summary["status"], "open");
    assert_eq!(summary["priority"], "normal");
    assert_eq!(summary["channel"], "email");
    assert_eq!(summary["tags"], json!(["returns"]));
    let created_at = summary["created_at"].as_str().unwrap();
    assert_eq!(created_at.len(), 20, "{created_at}");
    assert!(created_at.ends_with('Z') && created_at.contains('T'));
    assert_eq!(ticket["contact"]["name"], "CUSTOMER_NAME");
    assert_eq!(ticket["contact"]["email"], "customer@example.com");
    let message = &ticket["messages"][0];
    assert!(message["message_id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["role"], "user");
    assert_eq!(message["content"], "MESSAGE_BODY");
    assert_eq!(message["channel"], "email");
    assert_eq!(message["external_message_id"], "EXT_MSG_ID");
    assert_eq!(ticket["has_more_messages"], false);
    // GET answers the same shape.
    let fetched = app.get_ticket(&tenant.key, summary["ticket_id"].as_str().unwrap());
    assert_superset(&fetched.json(), &seed, "");
}

#[test]
fn the_seed_list_example_works_verbatim() {
    let (app, tenant) = setup();
    for n in 0..26 {
        app.new_ticket(&tenant.key, &ticket_body(&format!("Ticket {n}")));
    }
    let reply = app.send(
        "GET",
        "/api/v1/public/tickets?limit=25",
        &[("X-Api-Key", &tenant.key)],
        None,
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let seed: Value = serde_json::from_str(
        r#"{"items": [{"ticket_id": "TICKET_ID", "tenant_id": "TENANT_ID", "subject": "SUBJECT",
            "status": "open", "priority": "normal", "channel": "email", "tags": ["vip", "returns"],
            "last_message_at": "2026-02-04T18:32:11Z"}], "next_page_token": "NEXT_PAGE_TOKEN"}"#,
    )
    .unwrap();
    let page = reply.json();
    assert_superset(&page, &seed, "");
    assert_eq!(page["items"].as_array().unwrap().len(), 25);
    let first = &page["items"][0];
    assert_eq!(first["subject"], "Ticket 25");
    assert_eq!(first["tenant_id"], tenant.tenant_id.as_str());
    for field in ["created_at", "updated_at", "last_message_at"] {
        assert!(first[field].is_string(), "{field}");
    }
}

#[test]
fn pagination_walks_every_sort_exactly() {
    let (app, tenant) = setup();
    let created: Vec<String> = (0..130)
        .map(|n| app.new_ticket(&tenant.key, &ticket_body(&format!("T{n}"))))
        .collect();
    // Activity on a few old tickets moves them to the front of the default sort.
    let active = [created[3].clone(), created[70].clone(), created[10].clone()];
    for id in &active {
        let reply = app.add_message(
            &tenant.key,
            id,
            &json!({"role": "agent", "content": "On it"}),
        );
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    let updated = [created[50].clone(), created[0].clone()];
    for id in &updated {
        let reply = app.update_ticket(&tenant.key, id, &json!({"priority": "high"}));
        assert_eq!(reply.status, 200, "{}", reply.text);
    }

    let ascending = walk(&app.client, &tenant.key, "limit=25&sort=created_at", || {});
    assert_eq!(ascending, created);
    let descending = walk(&app.client, &tenant.key, "limit=25&sort=-created_at", || {});
    assert_eq!(
        descending,
        created.iter().rev().cloned().collect::<Vec<_>>()
    );

    let mut by_activity: Vec<String> = active.iter().rev().cloned().collect();
    by_activity.extend(
        created
            .iter()
            .rev()
            .filter(|id| !active.contains(id))
            .cloned(),
    );
    assert_eq!(
        walk(&app.client, &tenant.key, "limit=25", || {}),
        by_activity
    );
    assert_eq!(
        walk(
            &app.client,
            &tenant.key,
            "limit=25&sort=-last_message_at",
            || {}
        ),
        by_activity
    );

    // Ascending by last update: untouched tickets by creation, then messages, then patches.
    let mut by_update: Vec<String> = created
        .iter()
        .filter(|id| !active.contains(id) && !updated.contains(id))
        .cloned()
        .collect();
    by_update.extend(active.iter().cloned());
    by_update.extend(updated.iter().cloned());
    assert_eq!(
        walk(&app.client, &tenant.key, "limit=25&sort=updated_at", || {}),
        by_update
    );

    let limited = walk(&app.client, &tenant.key, "limit=100&sort=created_at", || {});
    assert_eq!(limited.len(), 130);
    let unique: HashSet<&String> = limited.iter().collect();
    assert_eq!(unique.len(), 130);
}

#[test]
fn an_ascending_walk_stays_exact_while_tickets_arrive() {
    let (app, tenant) = setup();
    let created: Vec<String> = (0..130)
        .map(|n| app.new_ticket(&tenant.key, &ticket_body(&format!("T{n}"))))
        .collect();
    let mut arrived = Vec::new();
    let walked = walk(&app.client, &tenant.key, "limit=25&sort=created_at", || {
        for _ in 0..2 {
            arrived.push(app.new_ticket(&tenant.key, &ticket_body("late")));
        }
    });
    assert_eq!(walked[..130], created[..]);
    // What arrived during the walk comes after, in order, never twice.
    assert_eq!(walked[130..], arrived[..walked.len() - 130]);
}

#[test]
fn page_tokens_are_bound_and_tamper_evident() {
    let (app, tenant) = setup();
    for n in 0..30 {
        app.new_ticket(&tenant.key, &ticket_body(&format!("T{n}")));
    }
    let page = app.list_tickets(&tenant.key, "limit=10&status=open").json();
    let token = page["next_page_token"].as_str().unwrap().to_string();
    assert_eq!(
        app.list_tickets(
            &tenant.key,
            &format!("limit=10&status=open&page_token={token}")
        )
        .status,
        200
    );
    // The limit may change between pages; filters and sort may not.
    assert_eq!(
        app.list_tickets(
            &tenant.key,
            &format!("limit=20&status=open&page_token={token}")
        )
        .status,
        200
    );
    for query in [
        format!("status=pending&page_token={token}"),
        format!("page_token={token}"),
        format!("status=open&sort=created_at&page_token={token}"),
        format!("status=open&tag=vip&page_token={token}"),
    ] {
        app.list_tickets(&tenant.key, &query)
            .assert_invalid("page_token");
    }
    // Another tenant cannot use it.
    let other = app.tenant(ALL_SCOPES);
    app.list_tickets(
        &other.key,
        &format!("limit=10&status=open&page_token={token}"),
    )
    .assert_invalid("page_token");
    // Any altered character is caught.
    let mut tampered = token.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [tampered.as_str(), "garbage", "AAAA", "%00"] {
        app.list_tickets(
            &tenant.key,
            &format!("limit=10&status=open&page_token={bad}"),
        )
        .assert_invalid("page_token");
    }
}

#[test]
fn limits_outside_1_to_100_are_refused() {
    let (app, tenant) = setup();
    for limit in ["0", "101", "-1", "abc", "1.5", ""] {
        app.list_tickets(&tenant.key, &format!("limit={limit}"))
            .assert_invalid("limit");
    }
    for limit in ["1", "100"] {
        assert_eq!(
            app.list_tickets(&tenant.key, &format!("limit={limit}"))
                .status,
            200
        );
    }
    app.list_tickets(&tenant.key, "sort=subject")
        .assert_invalid("sort");
    app.list_tickets(&tenant.key, "status=new")
        .assert_invalid("status");
    app.list_tickets(&tenant.key, "channel=fax")
        .assert_invalid("channel");
    app.list_tickets(&tenant.key, "priority=p1")
        .assert_invalid("priority");
    app.list_tickets(&tenant.key, "tag=a%20b")
        .assert_invalid("tag");
    app.list_tickets(&tenant.key, "updated_since=yesterday")
        .assert_invalid("updated_since");
}

#[test]
fn filters_alone_and_combined() {
    let (app, tenant) = setup();
    let make = |subject: &str, channel: &str, priority: &str, tags: Value| {
        let mut body = ticket_body(subject);
        body["channel"] = json!(channel);
        body["priority"] = json!(priority);
        body["tags"] = tags;
        app.new_ticket(&tenant.key, &body)
    };
    let a = make("a", "email", "low", json!(["vip", "returns"]));
    let b = make("b", "chat", "high", json!(["vip"]));
    let c = make("c", "sms", "urgent", json!(["returns"]));
    let d = make("d", "chat", "low", json!([]));
    app.update_ticket(&tenant.key, &b, &json!({"status": "pending"}));
    app.update_ticket(&tenant.key, &d, &json!({"status": "closed"}));
    let query = |q: &str| -> HashSet<String> {
        let reply = app.list_tickets(&tenant.key, q);
        assert_eq!(reply.status, 200, "{q}: {}", reply.text);
        ids(&reply.json()).into_iter().collect()
    };
    let set = |items: &[&String]| items.iter().map(|s| s.to_string()).collect::<HashSet<_>>();
    assert_eq!(query("status=open"), set(&[&a, &c]));
    assert_eq!(query("status=pending,closed"), set(&[&b, &d]));
    assert_eq!(query("channel=chat"), set(&[&b, &d]));
    assert_eq!(query("channel=email,sms"), set(&[&a, &c]));
    // Repeated, as generated clients send arrays (style form, explode), or both ways.
    assert_eq!(query("status=pending&status=closed"), set(&[&b, &d]));
    assert_eq!(query("channel=email&channel=sms"), set(&[&a, &c]));
    assert_eq!(
        query("priority=high&priority=urgent,low"),
        set(&[&a, &b, &c, &d])
    );
    app.list_tickets(&tenant.key, "status=open&status=bogus")
        .assert_invalid("status");
    assert_eq!(query("priority=low"), set(&[&a, &d]));
    assert_eq!(query("tag=vip"), set(&[&a, &b]));
    assert_eq!(query("tag=vip&tag=returns"), set(&[&a]));
    assert_eq!(query("tag=VIP"), set(&[&a, &b]));
    assert_eq!(query("tag=nothing"), set(&[]));
    assert_eq!(
        query("channel=chat&priority=high&tag=vip&status=pending"),
        set(&[&b])
    );
    assert_eq!(query("channel=chat&priority=urgent"), set(&[]));
    assert_eq!(
        query("updated_since=2000-01-01T00:00:00Z"),
        set(&[&a, &b, &c, &d])
    );
    assert_eq!(query("updated_since=2999-01-01T00:00:00Z"), set(&[]));
    assert_eq!(
        query("updated_since=2000-01-01T01:00:00%2B01:00&status=open&sort=updated_at"),
        set(&[&a, &c])
    );
}

#[test]
fn every_validation_rule_names_its_field_and_writes_nothing() {
    let (app, tenant) = setup();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = seed_create_body();
        change(&mut body);
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&|b| {
                b.as_object_mut().unwrap().remove("subject");
            }),
            "subject",
        ),
        (with(&|b| b["subject"] = json!("   ")), "subject"),
        (with(&|b| b["subject"] = json!("x".repeat(501))), "subject"),
        (with(&|b| b["subject"] = json!(12)), "subject"),
        (with(&|b| b["subject"] = json!(null)), "subject"),
        (with(&|b| b["subject"] = json!("two\nlines")), "subject"),
        (
            with(&|b| b["subject"] = json!(format!(" {} ", "x".repeat(499)))),
            "subject",
        ),
        (
            with(&|b| b["contact"]["email"] = json!(" customer@example.com")),
            "contact.email",
        ),
        (with(&|b| b["priority"] = json!("asap")), "priority"),
        (with(&|b| b["priority"] = json!(1)), "priority"),
        (
            with(&|b| {
                b.as_object_mut().unwrap().remove("channel");
            }),
            "channel",
        ),
        (with(&|b| b["channel"] = json!("fax")), "channel"),
        (
            with(&|b| b["contact"]["email"] = json!("not-an-email")),
            "contact.email",
        ),
        (
            with(&|b| b["contact"]["email"] = json!("a@b")),
            "contact.email",
        ),
        (
            with(&|b| b["contact"] = json!({"name": "No Identifier"})),
            "contact",
        ),
        (
            with(&|b| b["contact"]["phone"] = json!("call me")),
            "contact.phone",
        ),
        (
            with(&|b| b["contact"]["name"] = json!("x".repeat(201))),
            "contact.name",
        ),
        (with(&|b| b["contact"]["age"] = json!(3)), "contact.age"),
        (
            with(&|b| b["contact"] = json!("customer@example.com")),
            "contact",
        ),
        (with(&|b| b["tags"] = json!(["ok", "not ok"])), "tags"),
        (with(&|b| b["tags"] = json!(["x".repeat(65)])), "tags"),
        (
            with(&|b| b["tags"] = json!((0..51).map(|i| format!("t{i}")).collect::<Vec<_>>())),
            "tags",
        ),
        (with(&|b| b["tags"] = json!("returns")), "tags"),
        (with(&|b| b["tags"] = json!([1])), "tags"),
        (
            with(&|b| {
                b.as_object_mut().unwrap().remove("initial_message");
            }),
            "initial_message",
        ),
        (
            with(&|b| b["initial_message"]["role"] = json!("customer")),
            "initial_message.role",
        ),
        (
            with(&|b| {
                b["initial_message"].as_object_mut().unwrap().remove("role");
            }),
            "initial_message.role",
        ),
        (
            with(&|b| b["initial_message"]["content"] = json!("")),
            "initial_message.content",
        ),
        (
            with(&|b| b["initial_message"]["content"] = json!("x".repeat(100_001))),
            "initial_message.content",
        ),
        (
            with(&|b| b["initial_message"]["external_message_id"] = json!("x".repeat(256))),
            "initial_message.external_message_id",
        ),
        (with(&|b| b["tenant_id"] = json!("ten_other")), "tenant_id"),
        (with(&|b| b["status"] = json!("closed")), "status"),
    ];
    for (body, param) in cases {
        let reply = app.create_ticket(&tenant.key, &body);
        reply.assert_invalid(param);
    }
    assert_eq!(app.count("SELECT count(*) FROM tickets"), 0);
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
    assert_eq!(app.count("SELECT count(*) FROM contacts"), 0);
    // Boundaries that are allowed.
    let ok = with(&|b| {
        b["subject"] = json!(format!("  {}  ", "é".repeat(496)));
        b["tags"] = json!((0..50).map(|i| format!("T{i}")).collect::<Vec<_>>());
        b["initial_message"]["content"] = json!("x".repeat(100_000));
        b.as_object_mut().unwrap().remove("priority");
        b.as_object_mut().unwrap().remove("contact");
    });
    let reply = app.create_ticket(&tenant.key, &ok);
    assert_eq!(reply.status, 201, "{}", reply.text);
    let summary = &reply.json()["ticket"]["summary"];
    assert_eq!(summary["priority"], "normal");
    assert_eq!(summary["subject"].as_str().unwrap().chars().count(), 496);
    assert_eq!(summary["tags"][0], "t0");
    assert!(reply.json()["ticket"]["contact"].is_null());
}

#[test]
fn tags_are_normalised() {
    let (app, tenant) = setup();
    let mut body = ticket_body("tags");
    body["tags"] = json!(["VIP", "vip", "Returns", "a:b.c_d-e"]);
    let reply = app.create_ticket(&tenant.key, &body);
    assert_eq!(
        reply.json()["ticket"]["summary"]["tags"],
        json!(["vip", "returns", "a:b.c_d-e"])
    );
}

#[test]
fn contacts_are_reused_per_tenant() {
    let (app, tenant) = setup();
    let contact_of = |reply: crate::helpers::Reply| reply.json()["ticket"]["contact"].clone();
    let mut first = ticket_body("one");
    first["contact"] = json!({"name": "Ann", "email": "Ann@Example.com"});
    let a = contact_of(app.create_ticket(&tenant.key, &first));
    let mut second = ticket_body("two");
    second["contact"] = json!({"email": "ann@example.com", "phone": "+33 6 12 34 56 78"});
    let b = contact_of(app.create_ticket(&tenant.key, &second));
    assert_eq!(a["contact_id"], b["contact_id"]);
    assert_eq!(b["name"], "Ann");
    assert_eq!(b["phone"], "+33612345678");
    let mut third = ticket_body("three");
    third["contact"] = json!({"phone": "+33612345678"});
    let c = contact_of(app.create_ticket(&tenant.key, &third));
    assert_eq!(c["contact_id"], a["contact_id"]);
    // Another tenant with the same email gets its own contact.
    let other = app.tenant(ALL_SCOPES);
    let d = contact_of(app.create_ticket(&other.key, &first));
    assert_ne!(d["contact_id"], a["contact_id"]);
}

#[test]
fn messages_move_the_ticket_and_reopen_it() {
    let (app, tenant) = setup();
    let older = app.new_ticket(&tenant.key, &ticket_body("older"));
    let newer = app.new_ticket(&tenant.key, &ticket_body("newer"));
    let first = |app: &TestApp| ids(&app.list_tickets(&tenant.key, "").json())[0].clone();
    assert_eq!(first(&app), newer);
    let reply = app.add_message(
        &tenant.key,
        &older,
        &json!({"role": "agent", "content": "Looking into it"}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    let message = &reply.json()["message"];
    assert!(message["message_id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["ticket_id"], older.as_str());
    assert_eq!(message["role"], "agent");
    assert_eq!(message["channel"], "email");
    assert!(message["created_at"].is_string());
    assert_eq!(first(&app), older);

    // pending/resolved + customer message -> open; agent messages leave status alone.
    for status in ["pending", "resolved"] {
        app.update_ticket(&tenant.key, &older, &json!({"status": status}));
        app.add_message(
            &tenant.key,
            &older,
            &json!({"role": "note", "content": "internal"}),
        );
        let view = app.get_ticket(&tenant.key, &older).json();
        assert_eq!(view["ticket"]["summary"]["status"], status);
        let reply = app.add_message(
            &tenant.key,
            &older,
            &json!({"role": "user", "content": "Any news?", "channel": "chat"}),
        );
        assert_eq!(reply.json()["message"]["channel"], "chat");
        let view = app.get_ticket(&tenant.key, &older).json();
        assert_eq!(view["ticket"]["summary"]["status"], "open");
    }

    // Closed is final.
    app.update_ticket(&tenant.key, &older, &json!({"status": "closed"}));
    let reply = app.add_message(
        &tenant.key,
        &older,
        &json!({"role": "user", "content": "Hello?"}),
    );
    reply.assert_error(409, "conflict");
    let reply = app.update_ticket(&tenant.key, &older, &json!({"status": "open"}));
    reply.assert_error(409, "conflict");
    let view = app.get_ticket(&tenant.key, &older).json();
    assert_eq!(view["ticket"]["summary"]["status"], "closed");
    assert_eq!(view["ticket"]["messages"].as_array().unwrap().len(), 6);

    // Message validation.
    for (body, param) in [
        (json!({"content": "x"}), "role"),
        (json!({"role": "robot", "content": "x"}), "role"),
        (json!({"role": "user"}), "content"),
        (json!({"role": "user", "content": " "}), "content"),
        (
            json!({"role": "user", "content": "x", "channel": "pigeon"}),
            "channel",
        ),
        (
            json!({"role": "user", "content": "x", "ticket_id": "tkt_x"}),
            "ticket_id",
        ),
    ] {
        app.add_message(&tenant.key, &newer, &body)
            .assert_invalid(param);
    }
}

#[test]
fn patch_changes_fields_and_tags() {
    let (app, tenant) = setup();
    let id = app.new_ticket(&tenant.key, &ticket_body("before"));
    let reply = app.update_ticket(&tenant.key, &id,
        &json!({"subject": " after ", "priority": "urgent", "status": "pending", "add_tags": ["VIP", "returns"]}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let summary = &reply.json()["ticket"]["summary"];
    assert_eq!(summary["subject"], "after");
    assert_eq!(summary["priority"], "urgent");
    assert_eq!(summary["status"], "pending");
    assert_eq!(summary["tags"], json!(["returns", "vip"]));
    let reply = app.update_ticket(&tenant.key, &id, &json!({"remove_tags": ["returns"]}));
    assert_eq!(reply.json()["ticket"]["summary"]["tags"], json!(["vip"]));
    let reply = app.update_ticket(&tenant.key, &id, &json!({"tags": ["a", "b"]}));
    assert_eq!(reply.json()["ticket"]["summary"]["tags"], json!(["a", "b"]));
    let filtered = app.list_tickets(&tenant.key, "tag=a").json();
    assert_eq!(ids(&filtered), vec![id.clone()]);
    assert!(ids(&app.list_tickets(&tenant.key, "tag=vip").json()).is_empty());

    app.update_ticket(&tenant.key, &id, &json!({}))
        .assert_error(400, "invalid_request");
    for (body, param) in [
        (json!({"status": "done"}), "status"),
        (json!({"priority": "p0"}), "priority"),
        (json!({"subject": ""}), "subject"),
        (json!({"add_tags": ["bad tag"]}), "add_tags"),
        (json!({"channel": "sms"}), "channel"),
        (
            json!({"add_tags": (0..51).map(|i| format!("n{i}")).collect::<Vec<_>>()}),
            "add_tags",
        ),
    ] {
        app.update_ticket(&tenant.key, &id, &body)
            .assert_invalid(param);
    }
    // Well formed, but the ticket would hold more than 50 tags: a conflict with its state.
    let too_many = json!({"add_tags": (0..49).map(|i| format!("n{i}")).collect::<Vec<_>>()});
    let error = app
        .update_ticket(&tenant.key, &id, &too_many)
        .assert_error(409, "conflict");
    assert_eq!(error["param"], "add_tags");
    let view = app.get_ticket(&tenant.key, &id).json();
    assert_eq!(view["ticket"]["summary"]["tags"], json!(["a", "b"]));
    // tags replaces, then remove_tags and add_tags apply.
    let reply = app.update_ticket(
        &tenant.key,
        &id,
        &json!({"tags": ["x", "y"], "remove_tags": ["y"], "add_tags": ["z"]}),
    );
    assert_eq!(reply.json()["ticket"]["summary"]["tags"], json!(["x", "z"]));
}

#[test]
fn external_message_ids_are_unique_per_tenant() {
    let (app, tenant) = setup();
    let first = app.create_ticket(&tenant.key, &seed_create_body());
    assert_eq!(first.status, 201);
    let ticket_id = first.json()["ticket"]["summary"]["ticket_id"].clone();
    let message_id = first.json()["ticket"]["messages"][0]["message_id"].clone();
    let again = app.create_ticket(&tenant.key, &seed_create_body());
    let error = again.assert_error(409, "conflict");
    assert_eq!(error["ticket_id"], ticket_id);
    assert_eq!(error["message_id"], message_id);
    assert_eq!(error["param"], "initial_message.external_message_id");
    assert_eq!(app.count("SELECT count(*) FROM tickets"), 1);
    let other_ticket = app.new_ticket(&tenant.key, &ticket_body("other"));
    let reply = app.add_message(
        &tenant.key,
        &other_ticket,
        &json!({"role": "user", "content": "dup", "external_message_id": "EXT_MSG_ID"}),
    );
    let error = reply.assert_error(409, "conflict");
    assert_eq!(error["ticket_id"], ticket_id);
    assert_eq!(error["message_id"], message_id);
    // Another tenant may use the same external id.
    let other = app.tenant(ALL_SCOPES);
    assert_eq!(
        app.create_ticket(&other.key, &seed_create_body()).status,
        201
    );
}

#[test]
fn another_tenants_ids_answer_like_unknown_ids() {
    let (app, tenant) = setup();
    let intruder = app.tenant_with(ALL_SCOPES, Some("https://hooks.example.com"), &[]);
    let id = app.new_ticket(&tenant.key, &ticket_body("private"));
    let strip = |mut error: Value| {
        error.as_object_mut().unwrap().remove("request_id");
        error
    };
    let unknown = "tkt_01aaaaaaaaaaaaaaaaaaaaaaaa";
    let message = json!({"role": "user", "content": "hi"});
    let action = json!({"payload": {"type": "custom_http", "url": "/x"}});
    type Call<'a> = Box<dyn Fn(&str) -> crate::helpers::Reply + 'a>;
    let calls: Vec<(&str, Call)> = vec![
        ("get", Box::new(|t| app.get_ticket(&intruder.key, t))),
        (
            "patch",
            Box::new(|t| app.update_ticket(&intruder.key, t, &json!({"status": "closed"}))),
        ),
        (
            "messages",
            Box::new(|t| app.list_messages(&intruder.key, t, "")),
        ),
        (
            "add message",
            Box::new(|t| app.add_message(&intruder.key, t, &message)),
        ),
        (
            "actions",
            Box::new(|t| app.list_actions(&intruder.key, t, "")),
        ),
        (
            "run action",
            Box::new(|t| app.run_action(&intruder.key, t, &action)),
        ),
        (
            "get action",
            Box::new(|t| app.get_action(&intruder.key, t, "act_x")),
        ),
    ];
    for (name, call) in calls {
        let theirs = call(&id);
        let nobody = call(unknown);
        assert_eq!(theirs.status, 404, "{name}: {}", theirs.text);
        assert_eq!(
            strip(theirs.assert_error(404, "not_found")),
            strip(nobody.assert_error(404, "not_found")),
            "{name}"
        );
    }
    let listed = app.list_tickets(&intruder.key, "").json();
    assert!(ids(&listed).is_empty());
    let view = app.get_ticket(&tenant.key, &id).json();
    assert_eq!(view["ticket"]["summary"]["status"], "open");
    assert_eq!(view["ticket"]["messages"].as_array().unwrap().len(), 1);
    assert_eq!(app.count("SELECT count(*) FROM actions"), 0);
}

#[test]
fn idempotent_replay_and_mismatch() {
    let (app, tenant) = setup();
    let body = ticket_body("once");
    let first = app.post_keyed(TICKETS, &tenant.key, "key-1", &body);
    assert_eq!(first.status, 201);
    assert!(first.header("idempotent-replayed").is_none());
    let again = app.post_keyed(TICKETS, &tenant.key, "key-1", &body);
    assert_eq!(again.status, 201);
    assert_eq!(again.text, first.text);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    // The same body with keys in another order and other spacing is the same request.
    let reordered = format!(
        "{{\"initial_message\": {}, \"tags\": [\"returns\"], \"contact\": {}, \"channel\": \"email\", \"priority\": \"normal\", \"subject\": \"once\"}}",
        body["initial_message"], body["contact"]
    );
    let replay = app.send(
        "POST",
        TICKETS,
        &[
            ("X-Api-Key", &tenant.key),
            ("Content-Type", "application/json"),
            ("Idempotency-Key", "key-1"),
        ],
        Some(&reordered),
    );
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.count("SELECT count(*) FROM tickets"), 1);

    let other_body = app.post_keyed(TICKETS, &tenant.key, "key-1", &ticket_body("twice"));
    let error = other_body.assert_error(422, "unprocessable");
    assert_eq!(error["param"], "Idempotency-Key");
    let ticket = first.json()["ticket"]["summary"]["ticket_id"]
        .as_str()
        .unwrap()
        .to_string();
    let other_endpoint = app.post_keyed(
        &app.messages_path(&ticket),
        &tenant.key,
        "key-1",
        &json!({"role": "user", "content": "hi"}),
    );
    other_endpoint.assert_error(422, "unprocessable");
    assert_eq!(app.count("SELECT count(*) FROM tickets"), 1);
    assert_eq!(app.count("SELECT count(*) FROM messages"), 1);

    // Requests that fail validation are not stored.
    let mut bad = ticket_body("x");
    bad["channel"] = json!("fax");
    app.post_keyed(TICKETS, &tenant.key, "key-2", &bad)
        .assert_invalid("channel");
    let good = app.post_keyed(TICKETS, &tenant.key, "key-2", &ticket_body("fresh"));
    assert_eq!(good.status, 201);
    assert!(good.header("idempotent-replayed").is_none());

    // Messages replay too.
    let path = app.messages_path(&ticket);
    let message = json!({"role": "agent", "content": "once"});
    let a = app.post_keyed(&path, &tenant.key, "msg-1", &message);
    let b = app.post_keyed(&path, &tenant.key, "msg-1", &message);
    assert_eq!((a.status, b.status), (201, 201));
    assert_eq!(a.text, b.text);
    assert_eq!(app.count("SELECT count(*) FROM messages"), 3);

    for bad_key in ["", &"k".repeat(256), "with space"] {
        let reply = app.send(
            "POST",
            TICKETS,
            &[
                ("X-Api-Key", &tenant.key),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", bad_key),
            ],
            Some(&ticket_body("x").to_string()),
        );
        reply.assert_invalid("Idempotency-Key");
    }
    let longest = "k".repeat(255);
    assert_eq!(
        app.post_keyed(TICKETS, &tenant.key, &longest, &ticket_body("x"))
            .status,
        201
    );
}

#[test]
fn concurrent_requests_with_one_key_create_one_ticket() {
    let (app, tenant) = setup();
    let other = app.tenant(ALL_SCOPES);
    let body = ticket_body("concurrent");
    let replies: Vec<crate::helpers::Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|_| scope.spawn(|| app.post_keyed(TICKETS, &tenant.key, "same", &body)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created: HashSet<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", r.text);
            r.json()["ticket"]["summary"]["ticket_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.header("idempotent-replayed").is_none())
            .count(),
        1
    );
    // The same key in another tenant is another ticket.
    let theirs = app.post_keyed(TICKETS, &other.key, "same", &body);
    assert_eq!(theirs.status, 201);
    assert!(theirs.header("idempotent-replayed").is_none());
    assert_eq!(app.count("SELECT count(*) FROM tickets"), 2);
}

#[test]
fn a_ticket_with_105_messages() {
    let (app, tenant) = setup();
    let id = app.new_ticket(&tenant.key, &ticket_body("chatty"));
    let mut expected = vec!["Hello, where is my parcel?".to_string()];
    for n in 1..105 {
        let content = format!("message {n}");
        let reply = app.add_message(
            &tenant.key,
            &id,
            &json!({"role": "user", "content": content}),
        );
        assert_eq!(reply.status, 201);
        expected.push(content);
    }
    let view = app.get_ticket(&tenant.key, &id).json();
    let inline: Vec<&str> = view["ticket"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(inline.len(), 100);
    assert_eq!(inline, expected[..100]);
    assert_eq!(view["ticket"]["has_more_messages"], true);

    let walked: Vec<String> = app
        .walk(&tenant.key, &app.messages_path(&id), "limit=25")
        .iter()
        .map(|message| message["content"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(walked, expected);
    let default_page = app.list_messages(&tenant.key, &id, "").json();
    assert_eq!(default_page["items"].as_array().unwrap().len(), 25);
    app.list_messages(&tenant.key, &id, "limit=0")
        .assert_invalid("limit");
    app.list_messages(&tenant.key, &id, "sort=created_at")
        .assert_invalid("sort");
}
