//! Every CLI command, with and without `--json`.

use crate::helpers::{ALL_SCOPES, Cli, TestApp, test_config, write_config};

fn cli() -> (tempfile::TempDir, Cli) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &test_config(dir.path()));
    (dir, Cli::new(path))
}

#[test]
fn tenant_commands() {
    let (_dir, cli) = cli();
    let created = cli.json(&[
        "tenant",
        "create",
        "--name",
        "Acme",
        "--action-base-url",
        "https://hooks.example.com/acme/",
        "--allowed-origin",
        "https://other.example.com",
    ]);
    let tenant_id = created["tenant_id"].as_str().unwrap();
    assert!(tenant_id.starts_with("ten_"));
    assert_eq!(created["name"], "Acme");
    assert_eq!(created["action_base_url"], "https://hooks.example.com/acme");
    assert_eq!(created["allowed_origins"][0], "https://other.example.com");
    let secret = created["signing_secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_") && secret.len() >= 40);

    let listed = cli.json(&["tenant", "list"]);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(listed["items"][0].get("signing_secret").is_none());

    let updated = cli.json(&[
        "tenant",
        "update",
        tenant_id,
        "--name",
        "Acme Inc",
        "--action-base-url",
        "",
    ]);
    assert_eq!(updated["name"], "Acme Inc");
    assert!(updated["action_base_url"].is_null());

    let rotated = cli.json(&["tenant", "rotate-signing-secret", tenant_id]);
    assert!(
        rotated["signing_secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    assert_ne!(rotated["signing_secret"], created["signing_secret"]);

    let text = cli.run(&["tenant", "list"]);
    assert_eq!(text.code, 0);
    assert!(text.stdout.contains("Acme Inc"));
}

#[test]
fn key_commands() {
    let (_dir, cli) = cli();
    let tenant = cli.json(&["tenant", "create", "--name", "Acme"]);
    let tenant_id = tenant["tenant_id"].as_str().unwrap();
    let key = cli.json(&[
        "key",
        "create",
        "--tenant",
        tenant_id,
        "--name",
        "zapier",
        "--scopes",
        ALL_SCOPES,
        "--expires-in",
        "90d",
    ]);
    let key_id = key["key_id"].as_str().unwrap();
    assert!(key_id.starts_with("key_"));
    assert_eq!(key["tenant_id"], tenant_id);
    let secret = key["api_key"].as_str().unwrap();
    assert!(secret.starts_with("thr_") && secret.len() >= 44);
    assert!(secret[4..].chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(
        key["scopes"],
        serde_json::json!(["support.read", "support.write", "support.actions"])
    );
    assert!(key["expires_at"].is_string());

    let listed = cli.json(&["key", "list", "--tenant", tenant_id]);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert!(items[0].get("api_key").is_none());
    assert!(!listed.to_string().contains(secret));
    assert_eq!(items[0]["status"], "active");

    let rotated = cli.json(&["key", "rotate", key_id, "--grace", "1h"]);
    assert_eq!(rotated["key_id"], key_id);
    assert_ne!(rotated["api_key"], secret);

    let revoked = cli.json(&["key", "revoke", key_id]);
    assert_eq!(revoked["status"], "revoked");
    assert!(revoked["revoked_at"].is_string());
    let again = cli.run(&["key", "rotate", key_id]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("revoked"), "{}", again.stderr);
}

#[test]
fn cli_errors_go_to_stderr_with_a_non_zero_exit() {
    let (_dir, cli) = cli();
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "key",
                "create",
                "--tenant",
                "ten_missing",
                "--name",
                "x",
                "--scopes",
                "support.read",
            ],
            "tenant not found",
        ),
        (&["key", "rotate", "key_missing"], "not found"),
        (&["key", "revoke", "key_missing"], "not found"),
        (&["tenant", "create", "--name", "  "], "blank"),
        (
            &[
                "tenant",
                "create",
                "--name",
                "x",
                "--action-base-url",
                "ftp://x",
            ],
            "http",
        ),
        (
            &["tenant", "update", "ten_missing", "--name", "x"],
            "tenant not found",
        ),
    ];
    for (args, needle) in cases {
        let output = cli.run(args);
        assert_ne!(output.code, 0, "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}: {}", output.stdout);
        assert!(
            output.stderr.contains(needle),
            "{args:?}: {}",
            output.stderr
        );
    }
    let tenant = cli.json(&["tenant", "create", "--name", "Acme"]);
    let tenant_id = tenant["tenant_id"].as_str().unwrap();
    for (scopes, expires, needle) in [
        ("support.admin", "1d", "unknown scope"),
        ("support.read", "5 weeks", "unit"),
        ("support.read", "0s", "positive"),
    ] {
        let output = cli.run(&[
            "key",
            "create",
            "--tenant",
            tenant_id,
            "--name",
            "x",
            "--scopes",
            scopes,
            "--expires-in",
            expires,
        ]);
        assert_ne!(output.code, 0);
        assert!(output.stderr.contains(needle), "{}", output.stderr);
    }
}

#[test]
fn the_cli_works_while_the_server_runs() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    for n in 0..20 {
        app.new_ticket(&tenant.key, &crate::helpers::ticket_body(&format!("t{n}")));
        let made = app.cli().json(&[
            "key",
            "create",
            "--tenant",
            &tenant.tenant_id,
            "--name",
            "k",
            "--scopes",
            "support.read",
        ]);
        assert_eq!(
            app.list_tickets(made["api_key"].as_str().unwrap(), "")
                .status,
            200
        );
    }
}
