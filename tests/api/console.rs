//! The admin console, as a person uses it: in a real headless browser for the flows,
//! over plain HTTP for headers, cookies and CSRF.

use std::path::Path;

use serde_json::json;

use crate::helpers::browser::Browser;
use crate::helpers::stub::{Answer, Stub};
use crate::helpers::{ALL_SCOPES, Cli, Client, ServerProcess, test_config, write_config};

const TOKEN: &str = "console-admin-token-0123456789abcdef";

/// A server with an admin token, and its CLI.
fn server(dir: &Path) -> (ServerProcess, Cli) {
    let mut config = test_config(dir);
    config.rate_limit.unauthenticated_burst = 5;
    config.rate_limit.unauthenticated_per_minute = 6;
    config.actions.allow_private_networks = true;
    let path = write_config(dir, &config);
    let server = ServerProcess::start("serve", &path, dir, &[("THREADA_ADMIN_TOKEN", TOKEN)]);
    (server, Cli::new(path))
}

fn sign_in(browser: &Browser, base: &str) {
    browser.goto(&format!("{base}/admin"));
    assert_eq!(browser.path(), "/admin/sign-in");
    browser.fill("input[name=token]", TOKEN);
    browser.submit("[data-testid=sign-in]");
    assert_eq!(browser.path(), "/admin");
}

#[test]
fn keys_are_created_rotated_and_revoked_from_the_console() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = server(dir.path());
    let base = server.base.clone();
    sign_in(&browser, &base);
    // A tenant.
    browser.goto(&format!("{base}/admin/tenants"));
    browser.fill("input[name=name]", "Acme Console");
    browser.fill("input[name=action_base_url]", "https://hooks.acme.example");
    browser.submit("[data-testid=create-tenant]");
    let signing_secret = browser.text("[data-testid=secret]");
    assert!(signing_secret.starts_with("whsec_"), "{signing_secret}");
    browser.goto(&format!("{base}/admin/tenants"));
    let tenant_id = browser
        .attr("tr[data-tenant-id]", "data-tenant-id")
        .unwrap();
    // A key with two scopes; its secret works against the public API.
    browser.goto(&format!("{base}/admin/tenants/{tenant_id}"));
    browser.fill("input[name=name]#key-name", "zapier");
    browser.click("input[name=scopes][value='support.write']");
    browser.submit("[data-testid=create-key]");
    let secret = browser.text("[data-testid=secret]");
    assert!(secret.starts_with("thr_"), "{secret}");
    assert!(browser.text(".warning").contains("will not be shown again"));
    assert_eq!(server.list_tickets(&secret, "").status, 200);
    browser.goto(&format!("{base}/admin/tenants/{tenant_id}"));
    assert_eq!(
        browser.text("tr[data-key-id] [data-testid=key-status]"),
        "active"
    );
    // Rotation with no grace: the old secret stops, the new one works.
    browser.select("select[name=grace]", "0s");
    browser.submit("[data-testid=rotate-key]");
    let rotated = browser.text("[data-testid=secret]");
    assert_ne!(rotated, secret);
    assert_eq!(server.list_tickets(&secret, "").status, 401);
    assert_eq!(server.list_tickets(&rotated, "").status, 200);
    // Revocation, after a confirmation step.
    browser.goto(&format!("{base}/admin/tenants/{tenant_id}"));
    browser.submit("[data-testid=revoke-key]");
    assert_eq!(
        server.list_tickets(&rotated, "").status,
        200,
        "not before confirming"
    );
    browser.submit("[data-testid=confirm-revoke]");
    assert_eq!(
        browser.text("tr[data-key-id] [data-testid=key-status]"),
        "revoked"
    );
    assert_eq!(server.list_tickets(&rotated, "").status, 401);
    // Signing out ends the session.
    browser.submit("[data-testid=sign-out]");
    assert_eq!(browser.path(), "/admin/sign-in");
    browser.goto(&format!("{base}/admin/tenants/{tenant_id}"));
    assert_eq!(browser.path(), "/admin/sign-in");
    assert!(browser.console_errors().is_empty());
}

#[test]
fn tickets_show_their_messages_and_failed_actions_and_tenant_data_stays_text() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let stub = Stub::start();
    stub.answer(Answer::Status(500, "{\"oops\":true}".into()));
    let dir = tempfile::tempdir().unwrap();
    let (server, cli) = server(dir.path());
    let (tenant_id, key) = cli.tenant_with_hooks("<b>Bold</b> Co", &stub.origin());
    let key = key.as_str();
    let xss = "<img src=x onerror=alert(1)>";
    let ticket = server.new_ticket(
        key,
        &json!({"subject": xss, "channel": "chat", "contact": {"name": "<script>alert(2)</script>", "email": "x@example.com"},
                "initial_message": {"role": "user", "content": format!("hello {xss}")}}),
    );
    server.add_message(
        key,
        &ticket,
        &json!({"role": "note", "content": "internal <i>only</i>"}),
    );
    let failed = server.run_action(
        key,
        &ticket,
        &json!({"payload": {"type": "custom_http", "url": "/hook"}}),
    );
    assert_eq!(failed.json()["action"]["status"], "failed");
    sign_in(&browser, &server.base);
    browser.goto(&format!(
        "{}/admin/tenants/{tenant_id}/tickets",
        server.base
    ));
    assert_eq!(browser.count("tr[data-ticket-id]"), 1);
    browser.submit(&format!("tr[data-ticket-id='{ticket}'] a"));
    assert_eq!(browser.text("[data-testid=subject]"), xss);
    assert!(browser.text("article.message.user").contains(xss));
    assert!(
        browser
            .text("article.message.note")
            .contains("internal <i>only</i>")
    );
    assert!(
        browser
            .text("article.message.note")
            .contains("internal note")
    );
    assert!(browser.text("tr.status-failed").contains("500"));
    assert_eq!(browser.count("img"), 0, "the subject became markup");
    assert!(!browser.alert_open(), "a script ran");
    browser.goto(&format!(
        "{}/admin/tenants/{tenant_id}/actions",
        server.base
    ));
    assert_eq!(browser.count("tr.status-failed"), 1);
    browser.goto(&format!("{}/admin", server.base));
    assert!(browser.text("main").contains("<b>Bold</b> Co"));
    assert!(!browser.alert_open());
    let errors = browser.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

#[test]
fn a_contact_is_erased_and_a_ticket_deleted_after_a_confirmation() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (server, cli) = server(dir.path());
    let key = cli.tenant_and_key(ALL_SCOPES);
    let tenant_id = key["tenant_id"].as_str().unwrap();
    let key = key["api_key"].as_str().unwrap();
    let body = |subject: &str, email: &str| {
        json!({"subject": subject, "channel": "email", "contact": {"name": "Erin", "email": email},
               "initial_message": {"role": "user", "content": "please forget me"}})
    };
    let erin_1 = server.new_ticket(key, &body("Erin's first", "erin@example.com"));
    let erin_2 = server.new_ticket(key, &body("Erin's second", "erin@example.com"));
    let mistake = server.new_ticket(key, &body("Typo ticket", "sam@example.com"));
    sign_in(&browser, &server.base);
    // From a ticket of hers: erase the contact, after seeing what goes.
    browser.goto(&format!(
        "{}/admin/tenants/{tenant_id}/tickets/{erin_1}",
        server.base
    ));
    browser.submit("[data-testid=erase-contact]");
    assert_eq!(browser.text("[data-testid=erase-tickets]"), "2");
    assert!(browser.text("main").contains("erin@example.com"));
    browser.submit("[data-testid=confirm-erase]");
    assert_eq!(browser.text("[data-testid=erased-tickets]"), "2");
    for ticket in [&erin_1, &erin_2] {
        server
            .get_ticket(key, ticket)
            .assert_error(404, "not_found");
    }
    browser.goto(&format!(
        "{}/admin/tenants/{tenant_id}/tickets",
        server.base
    ));
    assert_eq!(browser.count("tr[data-ticket-id]"), 1);
    assert!(!browser.text("main").contains("Erin"));
    // The tenant page's form finds nobody by her address any more; its log shows the erasure.
    browser.goto(&format!("{}/admin/tenants/{tenant_id}", server.base));
    assert!(browser.text("tr[data-audit-id]").contains("contact.erased"));
    assert!(browser.text("tr[data-audit-id]").contains("console"));
    browser.select("select[name=by]", "email");
    browser.fill("input[name=value]", "erin@example.com");
    browser.submit("[data-testid=erase-contact]");
    assert!(
        browser
            .text("[data-testid=error]")
            .contains("contact not found")
    );
    // A ticket created by mistake, deleted from its page.
    browser.goto(&format!(
        "{}/admin/tenants/{tenant_id}/tickets/{mistake}",
        server.base
    ));
    browser.submit("[data-testid=delete-ticket]");
    browser.submit("[data-testid=confirm-delete-ticket]");
    assert_eq!(browser.text("[data-testid=erased-tickets]"), "1");
    server
        .get_ticket(key, &mistake)
        .assert_error(404, "not_found");
    // The one expected: the page that said "contact not found" came with a 404.
    let errors: Vec<String> = browser
        .console_errors()
        .into_iter()
        .filter(|e| !e.contains("/contacts/erase - Failed to load resource"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

#[test]
fn a_wrong_token_is_refused_and_then_throttled() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = server(dir.path());
    browser.goto(&format!("{}/admin/sign-in", server.base));
    for _ in 0..5 {
        browser.fill("input[name=token]", "not-the-token-not-the-token-xxxx");
        browser.submit("[data-testid=sign-in]");
        assert!(
            browser
                .text("[data-testid=error]")
                .contains("invalid admin token")
        );
    }
    browser.fill("input[name=token]", TOKEN);
    browser.submit("[data-testid=sign-in]");
    assert!(
        browser
            .text("[data-testid=error]")
            .contains("too many failed")
    );
    assert_eq!(browser.path(), "/admin/sign-in");
}

/// A signed-in session over plain HTTP: its cookie and CSRF token.
fn http_session(client: &Client) -> (String, String) {
    let form = client.send("GET", "/admin/sign-in", &[], None);
    let cookie = form
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = form
        .text
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let body = format!("csrf={csrf}&token={TOKEN}");
    let signed = client.send(
        "POST",
        "/admin/sign-in",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(&body),
    );
    assert_eq!(signed.status, 303, "{}", signed.text);
    let set = signed.header("set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let page = client.send("GET", "/admin/tenants", &[("Cookie", &cookie)], None);
    assert_eq!(page.status, 200);
    let csrf = page
        .text
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    (cookie, csrf)
}

#[test]
fn pages_carry_security_headers_and_forms_need_their_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let (server, cli) = server(dir.path());
    let (cookie, csrf) = http_session(&server);
    let page = server.send("GET", "/admin", &[("Cookie", &cookie)], None);
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let form = [
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    // Without the token, and with a wrong one: 403, nothing created.
    for body in ["name=Forged", "name=Forged&csrf=wrong"] {
        let refused = server.send("POST", "/admin/tenants", &form, Some(body));
        assert_eq!(refused.status, 403, "{}", refused.text);
        assert!(
            refused
                .header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
    }
    assert_eq!(
        cli.json(&["tenant", "list"])["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let created = server.send(
        "POST",
        "/admin/tenants",
        &form,
        Some(&format!("name=Real&csrf={csrf}")),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.header("cache-control"), Some("no-store"));
    assert!(created.text.contains("data-testid=\"secret\""));
    assert_eq!(
        cli.json(&["tenant", "list"])["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Signing out ends the session on the server, whatever the browser keeps.
    let out = server.send(
        "POST",
        "/admin/sign-out",
        &form,
        Some(&format!("csrf={csrf}")),
    );
    assert_eq!(out.status, 303);
    let after = server.send("GET", "/admin", &[("Cookie", &cookie)], None);
    assert_eq!(after.status, 303);
    assert_eq!(after.header("location"), Some("/admin/sign-in"));
}

#[test]
fn the_console_is_served_on_the_admin_listener_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.admin.bind = "127.0.0.1:0".into();
    let path = write_config(dir.path(), &config);
    let server = ServerProcess::start(
        "serve",
        &path,
        dir.path(),
        &[("THREADA_ADMIN_TOKEN", TOKEN)],
    );
    let admin = server.admin_listener();
    assert_eq!(admin.send("GET", "/admin/sign-in", &[], None).status, 200);
    assert_eq!(admin.admin("GET", "/tenants", TOKEN, None).status, 200);
    assert_eq!(server.send("GET", "/admin/sign-in", &[], None).status, 200);
}

#[test]
fn the_demo_prints_a_console_sign_in_and_no_admin_warning() {
    let dir = tempfile::tempdir().unwrap();
    let envs = [("THREADA_SERVER_BIND", "127.0.0.1:0")];
    let server = ServerProcess::start_args(&["demo", "--json"], dir.path(), &envs);
    server.wait_for_stdout("\n");
    let printed = server.stdout.lock().unwrap().clone();
    let demo: serde_json::Value = serde_json::from_str(printed.trim()).unwrap();
    let token = demo["console"]["admin_token"].as_str().unwrap();
    assert!(token.len() >= 32);
    assert!(demo["console"]["url"].as_str().unwrap().ends_with("/admin"));
    let log = server.stderr.lock().unwrap().clone();
    assert!(!log.contains("admin API"), "{log}");
    let admin = server.admin("GET", "/tenants", token, None);
    assert_eq!(admin.status, 200, "{}", admin.text);
}

/// Writes the screenshots of docs/ (`cargo test -- --ignored console_screenshots`).
#[test]
#[ignore = "writes docs/console-*.png; run by hand after changing a page"]
fn console_screenshots() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let envs = [
        ("THREADA_SERVER_BIND", "127.0.0.1:0"),
        ("THREADA_ADMIN_TOKEN", TOKEN),
        ("THREADA_BACKUP_SCHEDULE", "6h"),
    ];
    let server = ServerProcess::start_args(&["demo", "--json"], dir.path(), &envs);
    server.wait_for_stdout("\n");
    let demo: serde_json::Value =
        serde_json::from_str(server.stdout.lock().unwrap().trim()).unwrap();
    // The first scheduled backup is taken at startup; the overview shows it.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (key, ticket) = (
        demo["api_key"].as_str().unwrap(),
        demo["ticket_id"].as_str().unwrap(),
    );
    let tenant = demo["tenant_id"].as_str().unwrap();
    server.run_action(
        key,
        ticket,
        &json!({"payload": {"type": "custom_http", "url": "/hooks/zapier",
        "body_json": "{\"event\":\"ticket_updated\"}"}}),
    );
    server.run_action(
        key,
        ticket,
        &json!({"payload": {"type": "custom_http", "url": "http://127.0.0.1:9/down"}}),
    );
    sign_in(&browser, &server.base);
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    for (page, file) in [
        ("/admin".to_string(), "console-overview.png"),
        (format!("/admin/tenants/{tenant}"), "console-keys.png"),
        (
            format!("/admin/tenants/{tenant}/tickets/{ticket}"),
            "console-ticket.png",
        ),
    ] {
        browser.goto(&format!("{}{page}", server.base));
        std::fs::write(docs.join(file), browser.screenshot()).unwrap();
    }
}
