//! The end of data: erasing a contact with every copy of it, deleting a ticket,
//! retention of closed tickets, scheduled backups.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::stub::{Answer, Stub};
use crate::helpers::{
    ALL_SCOPES, Cli, PUBLIC, ServerProcess, TestApp, test_config, ticket_body, write_config,
};

const TOKEN: &str = "lifecycle-admin-token-0123456789abcdef";
const EMAIL: &str = "jane.erasable@example.com";
/// A word that appears only in the erased contact's messages.
const SECRET_WORD: &str = "zebracornium";
const SECRET_TEXT: &str = "my zebracornium order number is 88-4412-ZZ";

/// Whether `needle` occurs in the bytes of `path` (a missing file holds nothing).
fn file_holds(path: &Path, needle: &str) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    bytes
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

fn wal_of(db: &Path) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}-wal", db.display()))
}

#[test]
fn erasing_a_contact_removes_every_copy_and_nothing_else() {
    let stub = Stub::start();
    stub.answer(Answer::Status(200, format!("{{\"echo\": \"{EMAIL}\"}}")));
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.actions.allow_private_networks = true;
    let path = write_config(dir.path(), &config);
    let cli = Cli::new(path.clone());
    let mut server = ServerProcess::start(
        "serve",
        &path,
        dir.path(),
        &[("THREADA_ADMIN_TOKEN", TOKEN)],
    );
    let (tenant_id, key) = cli.tenant_with_hooks("Acme", &stub.origin());

    // Jane: two tickets (one created with an Idempotency-Key), messages, an action
    // whose payload and answer hold her address.
    let mut first = ticket_body("Broken kettle");
    first["contact"] =
        json!({"name": "Jane Erasable", "email": EMAIL, "phone": "+33 6 11 22 33 44"});
    first["initial_message"]["content"] = json!(SECRET_TEXT);
    let created = server.post_keyed(&format!("{PUBLIC}/tickets"), &key, "create-jane-1", &first);
    assert_eq!(created.status, 201, "{}", created.text);
    let jane_1 = created.json()["ticket"]["summary"]["ticket_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut second = ticket_body("Refund for the kettle");
    second["contact"] = json!({"email": EMAIL.to_uppercase()});
    let jane_2 = server.new_ticket(&key, &second);
    server.add_message(
        &key,
        &jane_2,
        &json!({"role": "user", "content": format!("{SECRET_TEXT} again")}),
    );
    server.add_message(
        &key,
        &jane_2,
        &json!({"role": "note", "content": "called her back"}),
    );
    let action = server.run_action(
        &key,
        &jane_1,
        &json!({"payload": {"type": "custom_http", "url": "/crm",
                            "body_json": format!("{{\"email\": \"{EMAIL}\"}}")}}),
    );
    assert_eq!(action.json()["action"]["status"], "succeeded");
    // Someone else, untouched by the erasure.
    let mut other = ticket_body("Someone else's parcel");
    other["contact"] = json!({"name": "Omar Other", "email": "omar@example.com"});
    let omar = server.new_ticket(&key, &other);
    server.add_message(
        &key,
        &omar,
        &json!({"role": "agent", "content": "on its way"}),
    );
    let search = |q: &str| -> Vec<String> {
        let page = server.list_tickets(&key, &format!("q={q}")).json();
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["ticket_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(search(SECRET_WORD).len(), 2);

    // Erased through the admin API, by the address in another case.
    let erased = server.admin(
        "POST",
        &format!("/tenants/{tenant_id}/contacts/erase"),
        TOKEN,
        Some(&json!({"email": "Jane.Erasable@Example.com"})),
    );
    assert_eq!(erased.status, 200, "{}", erased.text);
    let erased = erased.json();
    assert_eq!(
        erased["removed"],
        json!({"contacts": 1, "tickets": 2, "messages": 4, "actions": 1, "search_documents": 6,
               "events_cleared": 5, "idempotency_answers": 1})
    );
    assert!(!erased.to_string().contains(EMAIL));

    // Nothing of Jane through the API: tickets, search, the feed, a replayed create.
    for ticket in [&jane_1, &jane_2] {
        server
            .get_ticket(&key, ticket)
            .assert_error(404, "not_found");
    }
    let listed: Vec<Value> = server.walk(&key, &format!("{PUBLIC}/tickets"), "");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["ticket_id"], omar.as_str());
    assert!(search(SECRET_WORD).is_empty());
    assert!(search("kettle").is_empty());
    let feed = server.walk(&key, &format!("{PUBLIC}/events"), "");
    let text = serde_json::to_string(&feed).unwrap();
    assert!(!text.contains(EMAIL) && !text.contains(SECRET_WORD) && !text.contains("kettle"));
    let deleted: Vec<&Value> = feed
        .iter()
        .filter(|e| e["type"] == "ticket.deleted")
        .collect();
    assert_eq!(deleted.len(), 2);
    assert_eq!(deleted[0]["data"], json!({"reason": "contact_erased"}));
    let tombstones = feed.iter().filter(|e| e["data"] == json!({})).count();
    assert_eq!(
        tombstones, 5,
        "Jane's earlier events stay in place, emptied"
    );
    let replay = server.post_keyed(&format!("{PUBLIC}/tickets"), &key, "create-jane-1", &first);
    let error = replay.assert_error(410, "gone");
    assert_eq!(error["param"], "Idempotency-Key");
    // Omar's ticket and message are intact.
    let kept = server.get_ticket(&key, &omar).json();
    assert_eq!(kept["ticket"]["contact"]["email"], "omar@example.com");
    assert_eq!(kept["ticket"]["messages"].as_array().unwrap().len(), 2);
    assert_eq!(search("parcel"), vec![omar.clone()]);
    // The audit record: who, when, counts; no personal data.
    let audit = server
        .admin("GET", &format!("/tenants/{tenant_id}/audit"), TOKEN, None)
        .json();
    let record = &audit["items"][0];
    assert_eq!(record["action"], "contact.erased");
    assert_eq!(record["actor"], "admin_api");
    assert_eq!(record["counts"]["tickets"], 2);
    assert!(!audit.to_string().contains(EMAIL));
    // Erasing again: nothing left to find.
    server
        .admin(
            "POST",
            &format!("/tenants/{tenant_id}/contacts/erase"),
            TOKEN,
            Some(&json!({"email": EMAIL})),
        )
        .assert_error(404, "not_found");

    // Not a byte of Jane in a backup taken afterwards, nor in the database and its WAL
    // once the server has stopped (its last connection checkpoints the WAL).
    let backup = dir.path().join("after.db");
    let copied = cli.run(&["backup", &backup.display().to_string()]);
    assert_eq!(copied.code, 0, "{}", copied.stderr);
    server.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(20)), Some(0));
    let db = config.database.path.clone();
    for file in [backup.clone(), db.clone(), wal_of(&db)] {
        for needle in [
            EMAIL,
            SECRET_WORD,
            "Jane Erasable",
            "33611223344",
            "Broken kettle",
        ] {
            assert!(
                !file_holds(&file, needle),
                "{} still holds {needle:?}",
                file.display()
            );
        }
    }
    assert!(file_holds(&db, "omar@example.com"), "the search is real");
    // Event data is stored compressed, so bytes alone cannot tell: Jane's earlier
    // events hold `{}`, and each of her tickets has its `ticket.deleted`.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let events_of = |ticket: &str| -> Vec<(String, String)> {
        let mut statement = conn
            .prepare("SELECT type, quote(data) FROM events WHERE ticket_id = ?1 ORDER BY seq")
            .unwrap();
        let rows = statement
            .query_map([ticket], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap();
        rows.map(Result::unwrap).collect()
    };
    for ticket in [&jane_1, &jane_2] {
        let events = events_of(ticket);
        let (deleted, earlier) = events.split_last().unwrap();
        assert_eq!(deleted.0, "ticket.deleted");
        assert!(!earlier.is_empty());
        for (kind, data) in earlier {
            assert_eq!(data, "'{}'", "{kind} of {ticket}");
        }
    }
    assert!(
        events_of(&omar)
            .iter()
            .all(|(_, data)| data.starts_with("X'01"))
    );
    // The index stayed consistent (PRAGMA integrity_check covers FTS5 too).
    let checked = cli.json(&["check", &db.display().to_string()]);
    assert_eq!(checked["servable"], true, "{checked}");
}

#[test]
fn the_cli_erases_a_contact_by_phone_and_refuses_an_unknown_one() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    let mut body = ticket_body("By phone");
    body["contact"] = json!({"phone": "+1 (555) 010-9999"});
    let ticket = app.new_ticket(&tenant.key, &body);
    let cli = app.cli();
    let erased = cli.json(&[
        "contact",
        "erase",
        "--tenant",
        &tenant.tenant_id,
        "--phone",
        "+15550109999",
    ]);
    assert_eq!(erased["removed"]["tickets"], 1);
    assert_eq!(erased["removed"]["contacts"], 1);
    app.get_ticket(&tenant.key, &ticket)
        .assert_error(404, "not_found");
    let again = cli.run(&[
        "contact",
        "erase",
        "--tenant",
        &tenant.tenant_id,
        "--phone",
        "+15550109999",
    ]);
    assert_ne!(again.code, 0);
    assert!(
        again.stderr.contains("contact not found"),
        "{}",
        again.stderr
    );
    let bad = cli.run(&[
        "contact",
        "erase",
        "--tenant",
        &tenant.tenant_id,
        "--email",
        "not-an-email",
    ]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("email"), "{}", bad.stderr);
    let none = cli.run(&["contact", "erase", "--tenant", &tenant.tenant_id]);
    assert_ne!(none.code, 0);
}

#[test]
fn the_admin_api_refuses_bad_erasure_requests_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &test_config(dir.path()));
    let cli = Cli::new(path.clone());
    let server = ServerProcess::start(
        "serve",
        &path,
        dir.path(),
        &[("THREADA_ADMIN_TOKEN", TOKEN)],
    );
    let key = cli.tenant_and_key(ALL_SCOPES);
    let tenant_id = key["tenant_id"].as_str().unwrap();
    let key = key["api_key"].as_str().unwrap();
    server.new_ticket(key, &ticket_body("Stays"));
    let erase = |body: Value| {
        server.admin(
            "POST",
            &format!("/tenants/{tenant_id}/contacts/erase"),
            TOKEN,
            Some(&body),
        )
    };
    erase(json!({})).assert_invalid("email");
    erase(json!({"email": "customer@example.com", "phone": "+3312345"})).assert_invalid("phone");
    erase(json!({"email": "nope"})).assert_invalid("email");
    erase(json!({"name": "Jane Customer"})).assert_invalid("name");
    erase(json!({"email": "nobody@example.com"})).assert_error(404, "not_found");
    server
        .admin(
            "POST",
            "/tenants/ten_unknown/contacts/erase",
            TOKEN,
            Some(&json!({"email": "customer@example.com"})),
        )
        .assert_error(404, "not_found");
    server
        .admin(
            "POST",
            &format!("/tenants/{tenant_id}/contacts/erase"),
            "wrong-token-wrong-token-wrong-token",
            Some(&json!({"email": "customer@example.com"})),
        )
        .assert_error(401, "authentication_failed");
    assert_eq!(server.walk(key, &format!("{PUBLIC}/tickets"), "").len(), 1);
}

#[test]
fn a_ticket_is_deleted_by_its_tenant_only() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    let other = app.tenant(ALL_SCOPES);
    let mistaken = app.new_ticket(&tenant.key, &ticket_body("Created by mistake"));
    let kept = app.new_ticket(&tenant.key, &ticket_body("Same contact, kept"));
    let path = format!("{PUBLIC}/tickets/{mistaken}");
    app.send("DELETE", &path, &[("X-Api-Key", other.key.as_str())], None)
        .assert_error(404, "not_found");
    let reader = app.key(&tenant.tenant_id, "support.read");
    app.send("DELETE", &path, &[("X-Api-Key", reader.as_str())], None)
        .assert_error(403, "permission_denied");
    app.send(
        "DELETE",
        &format!("{path}?force=1"),
        &[("X-Api-Key", tenant.key.as_str())],
        None,
    )
    .assert_invalid("force");
    app.send("DELETE", &path, &[], None)
        .assert_error(401, "authentication_failed");
    let writer = app.key(&tenant.tenant_id, "support.write");
    let deleted = app.send("DELETE", &path, &[("X-Api-Key", writer.as_str())], None);
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert!(deleted.text.is_empty());
    app.get_ticket(&tenant.key, &mistaken)
        .assert_error(404, "not_found");
    app.send("DELETE", &path, &[("X-Api-Key", writer.as_str())], None)
        .assert_error(404, "not_found");
    // The contact stays: another ticket still refers to it.
    let view = app.get_ticket(&tenant.key, &kept).json();
    assert_eq!(view["ticket"]["contact"]["email"], "customer@example.com");
    let events = app.walk(
        &tenant.key,
        &format!("{PUBLIC}/events"),
        "type=ticket.deleted",
    );
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["ticket_id"], mistaken.as_str());
    assert_eq!(events[0]["data"], json!({"reason": "deleted"}));
    assert_eq!(app.count("SELECT count(*) FROM contacts"), 1);
    // The last ticket of a contact takes the contact with it.
    let deleted = app.send(
        "DELETE",
        &format!("{PUBLIC}/tickets/{kept}"),
        &[("X-Api-Key", writer.as_str())],
        None,
    );
    assert_eq!(deleted.status, 204);
    assert_eq!(app.count("SELECT count(*) FROM contacts"), 0);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'ticket.deleted' AND actor LIKE 'api_key:key_%'"),
        2
    );
}

#[test]
fn retention_erases_only_closed_tickets_past_the_age() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    let old_closed = app.new_ticket(&tenant.key, &ticket_body("Old and closed"));
    let new_closed = app.new_ticket(&tenant.key, &ticket_body("Recently closed"));
    let old_open = app.new_ticket(&tenant.key, &ticket_body("Old but open"));
    for ticket in [&old_closed, &new_closed] {
        app.update_ticket(&tenant.key, ticket, &json!({"status": "closed"}));
    }
    let (dir, mut config) = app.stop();
    // Two of them last changed 40 days ago.
    let conn = rusqlite::Connection::open(&config.database.path).unwrap();
    let long_ago = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64)
        - 40 * 86_400 * 1_000_000;
    for ticket in [&old_closed, &old_open] {
        conn.execute(
            "UPDATE tickets SET updated_at = ?1 WHERE ticket_id = ?2",
            rusqlite::params![long_ago, ticket],
        )
        .unwrap();
    }
    drop(conn);
    config.retention.closed_tickets_days = 30;
    let app = TestApp::start_in(dir, config, threada::startup::Mode::Serve, |_| {});
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.get_ticket(&tenant.key, &old_closed).status != 404 {
        assert!(Instant::now() < deadline, "retention never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(app.get_ticket(&tenant.key, &new_closed).status, 200);
    assert_eq!(app.get_ticket(&tenant.key, &old_open).status, 200);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'tickets.expired' AND actor = 'retention'"),
        1
    );
    let deleted = app.walk(
        &tenant.key,
        &format!("{PUBLIC}/events"),
        "type=ticket.deleted",
    );
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["data"]["reason"], "expired");
}

#[test]
fn scheduled_backups_are_written_kept_and_checked() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("nightly");
    let app = TestApp::spawn_with(|c| {
        c.database.path = dir.path().join("live.db");
        c.backup.schedule = "1s".into();
        c.backup.keep = 2;
        c.backup.dir = backups.clone();
    });
    let tenant = app.tenant(ALL_SCOPES);
    app.new_ticket(&tenant.key, &ticket_body("In every backup"));
    let list = || -> Vec<std::path::PathBuf> {
        let mut found: Vec<_> = std::fs::read_dir(&backups)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .unwrap()
                            .to_string_lossy()
                            .starts_with("threada-")
                    })
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 4 {
        assert!(Instant::now() < deadline, "backups: {seen:?}");
        seen.extend(list());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let kept = list();
    assert!(kept.len() <= 2, "{kept:?}");
    let cli = app.cli();
    for file in &kept {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("threada-") && name.ends_with("Z.db"),
            "{name}"
        );
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
        let checked = cli.json(&["check", &file.display().to_string()]);
        assert_eq!(checked["servable"], true, "{checked}");
        assert_eq!(checked["tickets"], 1, "{name}: {checked} of {seen:?}");
    }
    let mode = std::fs::metadata(&backups).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}
