//! Seeing what the server does: `/metrics` in the OpenMetrics text format, JSON logs,
//! progress on long commands.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::helpers::stub::{Answer, Stub};
use crate::helpers::{Cli, Client, PUBLIC, ServerProcess, test_config, ticket_body, write_config};

const TOKEN: &str = "metrics-admin-token-0123456789abcdef";

/// A server with metrics on, an admin token, actions allowed to reach the stub.
fn server(dir: &Path, adjust: impl FnOnce(&mut threada::config::Config)) -> (ServerProcess, Cli) {
    let mut config = test_config(dir);
    config.metrics.enabled = true;
    config.actions.allow_private_networks = true;
    adjust(&mut config);
    let path = write_config(dir, &config);
    let server = ServerProcess::start("serve", &path, dir, &[("THREADA_ADMIN_TOKEN", TOKEN)]);
    (server, Cli::new(path))
}

/// The value of the sample named `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.split([' ', '{']).next() == Some(name)
                && labels.iter().all(|label| line.contains(label))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Parses `text` with the Python `prometheus_client` OpenMetrics parser (a real
/// parser, strict about the format); `None` when it is not installed (`.ci/run`
/// installs it into target/ci-venv).
fn parse_openmetrics(text: &str) -> Option<Result<usize, String>> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci-venv/bin/python");
    let python = if venv.exists() {
        venv.display().to_string()
    } else {
        "python3".into()
    };
    let script = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        print(len(list(text_string_to_metric_families(sys.stdin.read()))))\n";
    let probe = Command::new(&python)
        .args(["-c", "import prometheus_client"])
        .output()
        .ok()?;
    if !probe.status.success() {
        return None;
    }
    let mut child = Command::new(&python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    use std::io::Write;
    child.stdin.take()?.write_all(text.as_bytes()).ok()?;
    let output = child.wait_with_output().ok()?;
    Some(if output.status.success() {
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse::<usize>()
            .map_err(|e| e.to_string())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    })
}

fn scrape(client: &Client, token: Option<&str>) -> String {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let reply = client.send("GET", "/metrics", &headers, None);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/openmetrics-text")),
        "{:?}",
        reply.headers
    );
    reply.text
}

#[test]
fn metrics_move_with_requests_writes_and_actions_and_parse_as_openmetrics() {
    let stub = Stub::start();
    stub.answer(Answer::Status(200, "{}".into()));
    let dir = tempfile::tempdir().unwrap();
    let (server, cli) = server(dir.path(), |_| {});
    let (_, key) = cli.tenant_with_hooks("Acme", &stub.origin());
    // Behind the admin token on the main listener.
    server
        .send("GET", "/metrics", &[], None)
        .assert_error(401, "authentication_failed");
    let before = scrape(&server, Some(TOKEN));
    let ticket = server.new_ticket(&key, &ticket_body("Counted"));
    server.list_tickets(&key, "").json();
    server
        .get_ticket(&key, "tkt_nope")
        .assert_error(404, "not_found");
    let action = server.run_action(
        &key,
        &ticket,
        &json!({"payload": {"type": "custom_http", "url": "/hook"}}),
    );
    assert_eq!(action.json()["action"]["status"], "succeeded");
    let after = scrape(&server, Some(TOKEN));
    let moved =
        |name: &str, labels: &[&str]| sample(&after, name, labels) - sample(&before, name, labels);
    let created = [
        r#"method="POST""#,
        r#"route="/api/v1/public/tickets""#,
        r#"status="201""#,
    ];
    assert_eq!(
        moved("threada_http_requests_total", &created),
        1.0,
        "{after}"
    );
    let missing = [
        r#"route="/api/v1/public/tickets/{ticket_id}""#,
        r#"status="404""#,
    ];
    assert_eq!(moved("threada_http_requests_total", &missing), 1.0);
    assert!(!after.contains("tkt_nope"), "raw paths never become labels");
    assert!(
        moved(
            "threada_http_request_duration_seconds_count",
            &[r#"route="/api/v1/public/tickets""#]
        ) >= 2.0
    );
    assert!(
        moved("threada_writer_group_size_count", &[]) >= 2.0,
        "the create and the action"
    );
    assert!(moved("threada_writer_commit_duration_seconds_count", &[]) >= 2.0);
    assert_eq!(
        moved("threada_actions_total", &[r#"outcome="succeeded""#]),
        1.0
    );
    assert!(sample(&after, "threada_database_size_bytes", &[]) > 0.0);
    for family in [
        "threada_writer_queue_depth",
        "threada_action_pool_running",
        "threada_action_pool_queued",
        "threada_wal_size_bytes",
    ] {
        assert!(
            after.contains(&format!("# TYPE {family} gauge")),
            "{family} missing: {after}"
        );
    }
    match parse_openmetrics(&after) {
        Some(Ok(families)) => assert!(families >= 10, "{families} families"),
        Some(Err(error)) => panic!("prometheus_client could not parse /metrics: {error}\n{after}"),
        None => eprintln!(
            "NOTE: python prometheus_client is not installed (.ci/run installs it); \
             /metrics was checked without a parser"
        ),
    }
}

#[test]
fn metrics_live_on_the_admin_listener_when_there_is_one_and_are_off_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = server(dir.path(), |c| c.admin.bind = "127.0.0.1:0".into());
    let admin = server.admin_listener();
    assert!(scrape(&admin, None).contains("# EOF"));
    let main = server.send(
        "GET",
        "/metrics",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        None,
    );
    main.assert_error(404, "not_found");
    let off = tempfile::tempdir().unwrap();
    let (plain, _) = server_off(off.path());
    plain
        .send(
            "GET",
            "/metrics",
            &[("Authorization", &format!("Bearer {TOKEN}"))],
            None,
        )
        .assert_error(404, "not_found");
}

fn server_off(dir: &Path) -> (ServerProcess, Cli) {
    let path = write_config(dir, &test_config(dir));
    let server = ServerProcess::start("serve", &path, dir, &[("THREADA_ADMIN_TOKEN", TOKEN)]);
    (server, Cli::new(path))
}

#[test]
fn json_logs_are_one_object_per_line_and_never_hold_outbound_secrets() {
    let stub = Stub::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.log.format = threada::config::LogFormat::Json;
    config.actions.allow_private_networks = true;
    let path = write_config(dir.path(), &config);
    let cli = Cli::new(path.clone());
    let (_, key) = cli.tenant_with_hooks("Acme", &stub.origin());
    let key = key.as_str();
    // Even when asked for the HTTP client's trace, through a more specific target.
    let trace = [(
        "RUST_LOG",
        "info,ureq=trace,ureq::unversioned=trace,ureq_proto::client=trace,rustls=trace",
    )];
    let server = ServerProcess::start("serve", &path, dir.path(), &trace);
    let ticket = server.new_ticket(key, &ticket_body("Logged"));
    server.run_action(
        key,
        &ticket,
        &json!({"payload": {"type": "custom_http", "url": "/hook",
                            "headers": {"Authorization": "Bearer outbound-secret-4711"}}}),
    );
    server.send(
        "GET",
        &format!("{PUBLIC}/tickets"),
        &[("X-Request-Id", "json-log-1"), ("X-Api-Key", key)],
        None,
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = server.stderr.lock().unwrap().clone();
    assert!(
        !log.contains("outbound-secret-4711"),
        "a secret reached the log"
    );
    assert!(!log.contains(key), "an API key reached the log");
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    for line in &lines {
        for field in ["time", "level", "target", "message"] {
            assert!(line[field].is_string(), "{field} missing: {line}");
        }
    }
    let access = lines
        .iter()
        .find(|l| l["request_id"] == "json-log-1")
        .unwrap_or_else(|| panic!("no request line: {log}"));
    assert_eq!(access["target"], "threada::access");
    assert_eq!(access["method"], "GET");
    assert_eq!(access["path"], "/api/v1/public/tickets");
    assert_eq!(access["status"], 200);
    assert!(access["duration_ms"].is_number());
    assert!(access["key_id"].as_str().unwrap().starts_with("key_"));
}

#[test]
fn long_commands_show_progress_only_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &test_config(dir.path()));
    let cli = Cli::new(path.clone());
    let tenant = cli.json(&["tenant", "create", "--name", "Load"]);
    let tenant_id = tenant["tenant_id"].as_str().unwrap();
    let piped = cli.run(&[
        "bulk-load",
        "--tenant",
        tenant_id,
        "--count",
        "300",
        "--batch",
        "100",
    ]);
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert!(
        piped.stderr.is_empty(),
        "progress on a pipe: {:?}",
        piped.stderr
    );
    let backup = dir.path().join("copy.db");
    let copied = cli.run(&["backup", &backup.display().to_string(), "--json"]);
    assert!(copied.stderr.is_empty(), "{:?}", copied.stderr);
    copied.json();
    // On a terminal (util-linux `script` gives the command one), a bar.
    let command = format!(
        "{} --config {} bulk-load --tenant {tenant_id} --count 300 --batch 100",
        env!("CARGO_BIN_EXE_threada"),
        path.display()
    );
    match Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
    {
        Ok(output) => {
            let text = String::from_utf8_lossy(&output.stdout);
            assert!(
                text.contains("300/300 tickets"),
                "no progress bar: {text:?}"
            );
        }
        Err(e) => eprintln!("NOTE: no `script` to fake a terminal ({e}); the bar was not seen"),
    }
}
