//! The test harness: servers on port 0 with a fresh temp database each, talked to
//! over real HTTP; CLI runs of the real binary; a tenant/key setup that goes through
//! the CLI's own code.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use serde_json::{Value, json};
use tempfile::TempDir;
use threada::domain::scope::Scopes;
use threada::config::Config;
use threada::domain::tenant::{NewKey, NewTenant};
use threada::startup::{Application, Mode};

pub const ALL_SCOPES: &str = "support.read,support.write,support.actions";

/// An HTTP answer as a test sees it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Asserts the error envelope: status, type, `code` equal to the status.
    pub fn assert_error(&self, status: u16, kind: &str) -> Value {
        assert_eq!(self.status, status, "body: {}", self.text);
        let body = self.json();
        assert_eq!(body["error"]["type"], kind, "body: {}", self.text);
        assert_eq!(body["error"]["code"], status, "body: {}", self.text);
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{:?}",
            self.headers
        );
        assert!(self.header("x-request-id").is_some());
        body["error"].clone()
    }

    /// Asserts a 400 naming `param`.
    pub fn assert_invalid(&self, param: &str) {
        let error = self.assert_error(400, "invalid_request");
        assert_eq!(error["param"], param, "body: {}", self.text);
    }
}

/// A tiny blocking HTTP client over ureq (the project's one HTTP client).
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    pub base: String,
}

impl Client {
    pub fn new(base: impl Into<String>) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Client {
            agent,
            base: base.into(),
        }
    }

    /// Any request: `headers` as pairs, `body` sent as given (no content type added).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let result = match body {
            Some(body) => self
                .agent
                .run(builder.body(body.as_bytes().to_vec()).unwrap()),
            None => self.agent.run(builder.body(()).unwrap()),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let mut text = String::new();
        response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .reader()
            .read_to_string(&mut text)
            .unwrap();
        Reply {
            status,
            headers,
            text,
        }
    }

    pub fn get(&self, path: &str, key: &str) -> Reply {
        self.send("GET", path, &[("X-Api-Key", key)], None)
    }

    pub fn post(&self, path: &str, key: &str, body: &Value) -> Reply {
        self.send(
            "POST",
            path,
            &[("X-Api-Key", key), ("Content-Type", "application/json")],
            Some(&body.to_string()),
        )
    }

    pub fn post_with_key(
        &self,
        path: &str,
        key: &str,
        idempotency_key: &str,
        body: &Value,
    ) -> Reply {
        self.send(
            "POST",
            path,
            &[
                ("X-Api-Key", key),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", idempotency_key),
            ],
            Some(&body.to_string()),
        )
    }

    pub fn patch(&self, path: &str, key: &str, body: &Value) -> Reply {
        self.send(
            "PATCH",
            path,
            &[("X-Api-Key", key), ("Content-Type", "application/json")],
            Some(&body.to_string()),
        )
    }

    /// `POST /tickets`, asserting 201; returns the ticket id.
    pub fn create_ticket(&self, key: &str, body: &Value) -> String {
        let reply = self.post("/api/v1/public/tickets", key, body);
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.json()["ticket"]["summary"]["ticket_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn add_message(&self, key: &str, ticket_id: &str, body: &Value) -> Reply {
        self.post(
            &format!("/api/v1/public/tickets/{ticket_id}/messages"),
            key,
            body,
        )
    }

    pub fn ticket(&self, key: &str, ticket_id: &str) -> Reply {
        self.get(&format!("/api/v1/public/tickets/{ticket_id}"), key)
    }
}

/// A ticket body like the seed's, with a subject of choice.
pub fn ticket_body(subject: &str) -> Value {
    json!({
        "subject": subject,
        "priority": "normal",
        "channel": "email",
        "contact": {"name": "Jane Customer", "email": "customer@example.com"},
        "tags": ["returns"],
        "initial_message": {"role": "user", "content": "Hello, where is my parcel?"}
    })
}

/// The seed's create request body, verbatim.
pub fn seed_create_body() -> Value {
    json!({
        "subject": "SUBJECT",
        "priority": "normal",
        "channel": "email",
        "contact": {"name": "CUSTOMER_NAME", "email": "customer@example.com"},
        "tags": ["returns"],
        "initial_message": {"role": "user", "content": "MESSAGE_BODY", "external_message_id": "EXT_MSG_ID"}
    })
}

/// A tenant with a key.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub tenant_id: String,
    pub key: String,
    pub key_id: String,
    pub signing_secret: String,
}

/// Settings for test servers: port 0, a temp database, few threads, no rate limit.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::default();
    config.server.bind = "127.0.0.1:0".into();
    config.server.workers = 2;
    config.database.path = dir.join("threada.db");
    config.database.pool_size = 4;
    config.actions.threads = 4;
    config.actions.queue = 8;
    config.actions.connect_timeout_ms = 1000;
    config.actions.timeout_ms = 3000;
    config.rate_limit.requests_per_minute = 6_000_000;
    config.rate_limit.burst = 1_000_000;
    config.log.level = "warn".into();
    config
}

/// A server running in this process.
pub struct TestApp {
    pub client: Client,
    pub config: Config,
    pub dir: TempDir,
    handle: Option<ServerHandle>,
    thread: Option<JoinHandle<()>>,
}

impl TestApp {
    pub fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {})
    }

    pub fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::spawn_full(adjust, Mode::Serve, |_| {})
    }

    /// A server with extra routes (mounted with the app's own middleware).
    pub fn spawn_full<F>(adjust: impl FnOnce(&mut Config), mode: Mode, extra: F) -> TestApp
    where
        F: Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static,
    {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        adjust(&mut config);
        TestApp::start_in(dir, config, mode, extra)
    }

    /// Starts a server on an existing directory and configuration (restarts).
    pub fn start_in<F>(dir: TempDir, config: Config, mode: Mode, extra: F) -> TestApp
    where
        F: Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static,
    {
        let (sender, receiver) = mpsc::channel();
        let server_config = config.clone();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                match Application::build_with(server_config, mode, extra) {
                    Ok(app) => {
                        sender.send(Ok((app.port(), app.handle()))).unwrap();
                        let _ = app.run().await;
                    }
                    Err(e) => sender.send(Err(e)).unwrap(),
                }
            });
        });
        let (port, handle) = receiver
            .recv_timeout(Duration::from_secs(30))
            .unwrap()
            .unwrap_or_else(|e| panic!("server did not start: {e}"));
        TestApp {
            client: Client::new(format!("http://127.0.0.1:{port}")),
            config,
            dir,
            handle: Some(handle),
            thread: Some(thread),
        }
    }

    /// Stops the server (gracefully) and gives back its directory, to restart on it.
    pub fn stop(mut self) -> (TempDir, Config) {
        self.shutdown();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (dir, self.config.clone())
    }

    fn shutdown(&mut self) {
        if let Some(handle) = self.handle.take() {
            actix_web::rt::System::new().block_on(handle.stop(true));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.config.database.path.clone()
    }

    /// Creates a tenant and a key with the given scopes, as the CLI does.
    pub fn tenant(&self, scopes: &str) -> Tenant {
        self.tenant_with(scopes, None, &[])
    }

    pub fn tenant_with(&self, scopes: &str, base_url: Option<&str>, origins: &[&str]) -> Tenant {
        let conn = threada::db::open_connection(&self.config.database).unwrap();
        threada::db::in_transaction(&conn, |conn| {
            let tenant = threada::accounts::create_tenant(
                conn,
                &NewTenant {
                    name: "Acme".into(),
                    action_base_url: base_url.map(|u| u.trim_end_matches('/').to_string()),
                    allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
                },
            )?;
            let key = threada::accounts::create_key(
                conn,
                &tenant.tenant.tenant_id,
                &NewKey {
                    name: "test".into(),
                    scopes: Scopes::parse_list(scopes.split(','), "scopes")?,
                    expires_in: None,
                },
            )?;
            Ok::<_, threada::error::ApiError>(Tenant {
                tenant_id: tenant.tenant.tenant_id,
                key: key.api_key,
                key_id: key.key.key_id,
                signing_secret: tenant.signing_secret,
            })
        })
        .unwrap()
    }

    /// Another key for an existing tenant.
    pub fn key(&self, tenant_id: &str, scopes: &str) -> String {
        let conn = threada::db::open_connection(&self.config.database).unwrap();
        threada::db::in_transaction(&conn, |conn| {
            threada::accounts::create_key(
                conn,
                tenant_id,
                &NewKey {
                    name: "another".into(),
                    scopes: Scopes::parse_list(scopes.split(','), "scopes")?,
                    expires_in: None,
                },
            )
        })
        .unwrap()
        .api_key
    }

    /// Runs SQL against the database file (read-only checks of what was stored).
    pub fn count(&self, sql: &str) -> i64 {
        let conn = rusqlite::Connection::open(self.db_path()).unwrap();
        conn.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    /// The `threada` binary with this server's config file.
    pub fn cli(&self) -> Cli {
        Cli::new(write_config(self.dir.path(), &self.config))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Writes `config` as TOML into `dir` and returns the file's path.
pub fn write_config(dir: &Path, config: &Config) -> PathBuf {
    let path = dir.join("threada.toml");
    std::fs::write(&path, toml::to_string(config).unwrap()).unwrap();
    path
}

/// The real binary.
pub fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_threada"));
    command.env_remove("RUST_LOG").env_remove("THREADA_CONFIG");
    for (name, _) in std::env::vars() {
        if name.starts_with("THREADA_") {
            command.env_remove(name);
        }
    }
    command
}

/// What a CLI run printed.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn json(&self) -> Value {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        let lines: Vec<&str> = self.stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "one JSON object expected: {:?}",
            self.stdout
        );
        serde_json::from_str(lines[0]).unwrap()
    }
}

/// Runs CLI commands against one config file.
pub struct Cli {
    pub config: PathBuf,
}

impl Cli {
    pub fn new(config: PathBuf) -> Cli {
        Cli { config }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let output = binary()
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap();
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        self.run(&all).json()
    }

    /// A tenant and a key with `scopes`, made with the CLI: the key's `--json` output.
    pub fn tenant_and_key(&self, scopes: &str) -> Value {
        let tenant = self.json(&["tenant", "create", "--name", "Acme"]);
        let tenant_id = tenant["tenant_id"].as_str().unwrap();
        self.json(&[
            "key", "create", "--tenant", tenant_id, "--name", "k", "--scopes", scopes,
        ])
    }
}

/// The server as a separate process (for signals, kill -9, environment variables).
pub struct ServerProcess {
    pub child: Child,
    pub client: Client,
    pub stdout: std::sync::Arc<std::sync::Mutex<String>>,
    /// What the server logged.
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl ServerProcess {
    /// Starts `threada <command> --config <file>` and waits for it to listen.
    pub fn start(command: &str, config: &Path, dir: &Path, envs: &[(&str, &str)]) -> ServerProcess {
        ServerProcess::start_args(
            &[command, "--config", &config.display().to_string()],
            dir,
            envs,
        )
    }

    /// Starts `threada <args>` in `dir` and waits for it to listen.
    pub fn start_args(args: &[&str], dir: &Path, envs: &[(&str, &str)]) -> ServerProcess {
        let mut child = binary()
            .args(args)
            .current_dir(dir)
            .envs(envs.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = capture(child.stdout.take().unwrap());
        let stderr = capture(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            let log = stderr.lock().unwrap().clone();
            if let Some(port) = log
                .lines()
                .find_map(|l| l.split("listening on http://").nth(1))
                .and_then(|rest| rest.rsplit(':').next())
                .and_then(|p| p.trim().parse::<u16>().ok())
            {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("server exited early ({status}): {log}");
            }
            assert!(Instant::now() < deadline, "server did not start: {log}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let client = Client::new(format!("http://127.0.0.1:{port}"));
        // Ready once the database answers.
        while client.send("GET", "/readyz", &[], None).status != 200 {
            assert!(Instant::now() < deadline, "server not ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        ServerProcess {
            child,
            client,
            stdout,
            stderr,
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until standard output contains `needle`; returns all of it.
    pub fn wait_for_stdout(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.stdout.lock().unwrap().clone();
            if out.contains(needle) {
                return out;
            }
            assert!(Instant::now() < deadline, "{needle:?} never printed: {out}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill_9(&mut self) {
        self.signal("KILL");
        let _ = self.wait(Duration::from_secs(10));
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn capture(mut stream: impl Read + Send + 'static) -> std::sync::Arc<std::sync::Mutex<String>> {
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buffer) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    text
}
