//! Building the server from a `Config`: state, listener, routes. Port 0 works, so
//! tests can start as many servers as they like, each with its own database.

use std::fmt;
use std::net::TcpListener;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use crate::config::Config;
use crate::routes;
use crate::routes::middleware::request_context;
pub use crate::state::{AppState, Mode};

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
        let listener = TcpListener::bind(address)
            .map_err(|e| StartupError(format!("cannot listen on {address}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| StartupError(format!("cannot listen on {address}: {e}")))?;
        let port = local.port();
        let state = web::Data::new(AppState::open(config, mode, local).map_err(StartupError)?);
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

    /// The server's shared state.
    pub fn state(&self) -> &web::Data<AppState> {
        &self.state
    }

    /// A handle to stop the server.
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
