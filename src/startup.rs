//! Building the server from a `Config`: listener, state, HTTP service, routes. Port 0
//! works, so tests can start as many servers as they like, each with its own database.
//!
//! The server is assembled from actix's parts (actix-server for the listener, workers
//! and shutdown; actix-http's HTTP/1 service; the actix-web `App`) rather than with
//! `HttpServer`, for two things `HttpServer` cannot do: a listen backlog on a socket
//! bound to port 0, and a deadline on the head of every request of a connection
//! (`deadline::GuardedStream`).

use std::fmt;
use std::future::ready;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_http::{Extensions, HttpService, KeepAlive};
use actix_rt::net::TcpStream;
use actix_service::{IntoServiceFactory, ServiceFactoryExt, fn_service, map_config};
use actix_web::dev::{AppConfig, Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, web};
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::Config;
use crate::console;
use crate::deadline::GuardedStream;
use crate::routes;
use crate::routes::AdminListener;
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
    admin_port: Option<u16>,
    state: web::Data<AppState>,
}

impl Application {
    /// Binds the listener, opens the database and builds the server. Must be called
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
        let listener = bind(address, config.server.backlog)
            .map_err(|e| StartupError(format!("cannot listen on {address}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| StartupError(format!("cannot listen on {address}: {e}")))?;
        let admin_listener = match config.admin_bind_addr()? {
            Some(admin) => Some(bind(admin, config.server.backlog).map_err(|e| {
                StartupError(format!("cannot listen on {admin} (admin.bind): {e}"))
            })?),
            None => None,
        };
        let state = web::Data::new(AppState::open(config, mode, local).map_err(StartupError)?);
        let server = &state.config.server;
        let head_timeout = Duration::from_millis(server.request_head_timeout_ms);
        let keep_alive = Duration::from_millis(server.keep_alive_ms);
        let mut builder = Server::build()
            .max_concurrent_connections(server.max_connections)
            .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
            .shutdown_signal(stop_signal());
        if server.workers > 0 {
            builder = builder.workers(server.workers);
        }
        // Idle kept-alive connections close as soon as a graceful stop begins.
        let shutdown = builder.graceful_shutdown_signal();
        // The same application on each listener; the admin one marks its connections.
        let factory = |admin: bool, local: SocketAddr| {
            let (app_state, shutdown, extra) = (state.clone(), shutdown.clone(), extra.clone());
            move || {
                let shutdown = shutdown.clone();
                let extra = extra.clone();
                let app = App::new()
                    .app_data(app_state.clone())
                    .wrap(from_fn(request_context))
                    .configure(routes::configure)
                    .service(console::scope())
                    .configure(|cfg| {
                        if mode == Mode::Demo {
                            routes::demo::configure(cfg);
                        }
                    })
                    .configure(extra)
                    .default_service(web::to(routes::no_route))
                    .into_factory()
                    .map_err(|error: actix_web::Error| error.as_response_error().error_response());
                let http = HttpService::build()
                    .graceful_shutdown_signal(move || {
                        let shutdown = shutdown.clone();
                        async move { shutdown.notified().await }
                    })
                    .keep_alive(KeepAlive::Timeout(keep_alive))
                    .client_request_timeout(head_timeout)
                    .local_addr(local)
                    .on_connect_ext(move |_: &GuardedStream, extensions: &mut Extensions| {
                        if admin {
                            extensions.insert(AdminListener);
                        }
                    })
                    .h1(map_config(app, |_| AppConfig::default()));
                fn_service(move |io: TcpStream| {
                    let peer = io.peer_addr().ok();
                    ready(Ok((GuardedStream::new(io, head_timeout), peer)))
                })
                .and_then(http)
            }
        };
        let mut builder = builder
            .listen("threada", listener, factory(false, local))
            .map_err(|e| StartupError(format!("cannot listen on {address}: {e}")))?;
        let mut admin_port = None;
        if let Some(admin) = admin_listener {
            let admin_local = admin
                .local_addr()
                .map_err(|e| StartupError(format!("cannot listen on admin.bind: {e}")))?;
            admin_port = Some(admin_local.port());
            builder = builder
                .listen("threada-admin", admin, factory(true, admin_local))
                .map_err(|e| StartupError(format!("cannot listen on admin.bind: {e}")))?;
        }
        let server = builder.run();
        Ok(Application {
            server,
            port: local.port(),
            admin_port,
            state,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the `admin.bind` listener, when there is one.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin_port
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
        let lock = state.stop_serving();
        drop(state);
        drop(lock);
        result
    }
}

/// A listening socket with the configured backlog (std's `bind` always asks for 128).
fn bind(address: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// Resolves at the first SIGINT or SIGTERM: both stop accepting and let in-flight
/// requests finish. A second one exits at once.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        log::warn!("cannot listen for SIGINT/SIGTERM; stop the server with SIGKILL");
        return std::future::pending().await;
    };
    let name = {
        let first =
            futures_util::future::select(Box::pin(interrupt.recv()), Box::pin(terminate.recv()));
        match first.await {
            futures_util::future::Either::Left(_) => "SIGINT",
            futures_util::future::Either::Right(_) => "SIGTERM",
        }
    };
    log::info!(
        "{name} received: finishing in-flight requests (up to {SHUTDOWN_TIMEOUT_SECS} s); \
         send it again to stop at once"
    );
    actix_rt::spawn(async move {
        futures_util::future::select(Box::pin(interrupt.recv()), Box::pin(terminate.recv())).await;
        log::warn!("second stop signal: exiting without waiting for in-flight requests");
        std::process::exit(130);
    });
}
