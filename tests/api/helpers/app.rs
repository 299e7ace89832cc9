//! `TestApp`: a server running in this test's process, on port 0, with a fresh
//! temporary database; tenants and keys made through the CLI's own code.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use tempfile::TempDir;
use threada::config::Config;
use threada::domain::scope::Scopes;
use threada::domain::tenant::{NewKey, NewTenant};
use threada::startup::{Application, Mode};

use super::cli::{Cli, write_config};
use super::client::Client;

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
    config.rate_limit.unauthenticated_per_minute = 6_000_000;
    config.rate_limit.unauthenticated_burst = 1_000_000;
    config.log.level = "warn".into();
    config
}

/// A server running in this process; it derefs to its `Client`, so tests read
/// `app.create_ticket(&key, &body)`.
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

impl Deref for TestApp {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}
