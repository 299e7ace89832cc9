//! Building the server from a `Config`: state, listener, routes. Port 0 works, so
//! tests can start as many servers as they like, each with its own database.

use std::fmt;
use std::net::TcpListener;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use crate::actions::ActionRunner;
use crate::config::Config;
use crate::crypto::sha256;
use crate::db::{self, Db, DbError};
use crate::middleware::request_context;
use crate::pagination::PageTokens;
use crate::ratelimit::RateLimiter;
use crate::routes;
use crate::routes::demo::DemoHooks;

/// How long in-flight requests may take to finish after SIGTERM/SIGINT.
const SHUTDOWN_TIMEOUT_SECS: u64 = 30;

/// A startup problem, phrased as the one line shown to the operator.
#[derive(Debug, Clone)]
pub struct StartupError(pub String);

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartupError {}

impl From<crate::config::ConfigError> for StartupError {
    fn from(error: crate::config::ConfigError) -> StartupError {
        StartupError(error.to_string())
    }
}

/// How the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Serve,
    /// Also mounts `/demo/hooks` and lets actions reach private networks.
    Demo,
}

/// Everything handlers share; built once, no globals.
pub struct AppState {
    pub config: Config,
    pub db: Db,
    pub tokens: PageTokens,
    pub limiter: RateLimiter,
    pub actions: ActionRunner,
    pub allow_private_networks: bool,
    /// SHA-256 of the admin token; `None` turns the admin API off.
    pub admin_token_hash: Option<[u8; 32]>,
    pub demo_hooks: Option<DemoHooks>,
}

/// A bound, not yet running server.
pub struct Application {
    server: Server,
    port: u16,
    state: web::Data<AppState>,
}

impl Application {
    /// Opens the database, binds the listener and builds the server. Must be called
    /// inside an actix system (as `main` and the test harness do).
    pub fn build(config: Config, mode: Mode) -> Result<Application, StartupError> {
        Application::build_with(config, mode, |_| {})
    }

    /// Like `build`, with extra routes (tests mount a panicking route this way).
    pub fn build_with<F>(config: Config, mode: Mode, extra: F) -> Result<Application, StartupError>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let address = config.bind_addr()?;
        let db = Db::open(&config.database).map_err(StartupError)?;
        let secret = db
            .read_blocking(|conn| db::meta::page_token_key(conn).map_err(DbError::from))
            .map_err(|e| StartupError(format!("database: {e}")))?
            .ok_or_else(|| StartupError("database: the page token key is missing".into()))?;
        let allow_private_networks = config.actions.allow_private_networks || mode == Mode::Demo;
        let admin_token_hash = admin_token_hash(&config);
        let state = web::Data::new(AppState {
            tokens: PageTokens::new(secret),
            limiter: RateLimiter::new(
                config.rate_limit.requests_per_minute,
                config.rate_limit.burst,
            ),
            actions: ActionRunner::new(&config.actions, allow_private_networks),
            allow_private_networks,
            admin_token_hash,
            demo_hooks: (mode == Mode::Demo).then(DemoHooks::default),
            db,
            config,
        });
        let listener = TcpListener::bind(address)
            .map_err(|e| StartupError(format!("cannot listen on {address}: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| StartupError(format!("cannot listen on {address}: {e}")))?
            .port();
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            let extra = extra.clone();
            App::new()
                .app_data(app_state.clone())
                .wrap(from_fn(request_context))
                .configure(routes::configure)
                .configure(|cfg| {
                    if mode == Mode::Demo {
                        routes::demo::configure(cfg);
                    }
                })
                .configure(extra)
                .default_service(web::to(routes::no_route))
        })
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS);
        if state.config.server.workers > 0 {
            server = server.workers(state.config.server.workers);
        }
        let server = server
            .listen(listener)
            .map_err(|e| StartupError(format!("cannot listen on {address}: {e}")))?
            .run();
        Ok(Application {
            server,
            port,
            state,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &web::Data<AppState> {
        &self.state
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT (or `handle().stop()`), letting in-flight requests
    /// finish; the database closes when the last reference to the state goes.
    pub async fn run(self) -> std::io::Result<()> {
        let Application { server, state, .. } = self;
        let result = server.await;
        drop(state);
        result
    }
}

fn admin_token_hash(config: &Config) -> Option<[u8; 32]> {
    let name = &config.admin.token_env;
    match std::env::var(name) {
        Ok(token) if !token.trim().is_empty() => Some(sha256(token.trim().as_bytes())),
        _ => {
            log::warn!("admin API disabled: the environment variable {name} is not set");
            None
        }
    }
}
