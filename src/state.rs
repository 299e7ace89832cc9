//! `AppState`: everything the handlers share, built once per server from its `Config`.
//! No globals: tests run several servers in one process, each with its own state.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::actions::ActionRunner;
use crate::actions::run::Runtime;
use crate::config::Config;
use crate::crypto::{constant_time_eq, sha256};
use crate::db::{self, Db, DbError};
use crate::demo::DemoHooks;
use crate::domain::action::ActionPolicy;
use crate::error::ApiError;
use crate::maintenance::Maintenance;
use crate::metrics::Metrics;
use crate::pagination::PageTokens;
use crate::ratelimit::RateLimiter;
use crate::sessions::Sessions;
use crate::webhooks::Dispatcher;

/// Shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// How the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Serve,
    /// Also mounts `/demo/hooks`; the demo tenant may call it on a private address.
    Demo,
}

/// Everything handlers share.
pub struct AppState {
    pub config: Config,
    pub db: Arc<Db>,
    pub tokens: PageTokens,
    /// Per API key.
    pub limiter: RateLimiter,
    /// Failed authentications, per client address.
    pub auth_failures: RateLimiter,
    pub actions: Arc<ActionRunner>,
    pub action_policy: ActionPolicy,
    /// Sends webhook deliveries.
    pub webhooks: Dispatcher,
    /// Purges and schedules on a clock.
    pub maintenance: Maintenance,
    /// What `/metrics` shows (empty unless `metrics.enabled`).
    pub metrics: Metrics,
    /// SHA-256 of the admin token; `None` turns the admin API off.
    pub admin_token_hash: Option<[u8; 32]>,
    /// The demo's hook receiver, in demo mode only.
    pub demo_hooks: Option<DemoHooks>,
    /// Console sessions.
    pub console: Sessions,
    /// The admin token `threada demo` made up because none was set (printed once).
    pub generated_admin_token: Option<String>,
    /// This process serves the database, until `stop_serving`.
    serving: Mutex<Option<db::ServeLock>>,
}

impl AppState {
    /// Opens the database and starts the writer, maintenance and action threads, for
    /// a server listening on `local` (the demo's receiver lives there).
    pub fn open(config: Config, mode: Mode, local: SocketAddr) -> Result<AppState, String> {
        let mut admin_token_hash = admin_token_hash(&config, mode)?;
        // The demo signs its console in with a token of its own when none is set.
        let generated_admin_token = match (mode, admin_token_hash) {
            (Mode::Demo, None) => {
                let token = crate::crypto::random_secret("", 43).map_err(|e| e.to_string())?;
                admin_token_hash = Some(sha256(token.as_bytes()));
                Some(token)
            }
            _ => None,
        };
        // Before anything touches the database (Db::open marks interrupted actions).
        let serving = db::lock_for_serving(&config.database.path)?;
        let metrics = Metrics::new(config.metrics.enabled);
        let db = Arc::new(Db::open(&config.database, metrics.clone())?);
        let secret = db
            .read_blocking(|conn| db::meta::page_token_key(conn).map_err(DbError::from))
            .map_err(|e| format!("database: {e}"))?
            .ok_or_else(|| "database: the page token key is missing".to_string())?;
        if config.actions.allow_private_networks {
            log::warn!(
                "actions.allow_private_networks is on: every tenant's actions may reach \
                 loopback, private and link-local addresses (cloud metadata included)"
            );
        }
        let rates = &config.rate_limit;
        let actions = Arc::new(ActionRunner::new(&config.actions, metrics.clone()));
        let action_policy = ActionPolicy {
            allow_private_networks: config.actions.allow_private_networks,
            demo_origin: (mode == Mode::Demo).then(|| format!("http://{local}")),
            max_body_json_bytes: config.actions.max_body_json_bytes,
        };
        let webhooks = Dispatcher::start(
            Arc::clone(&db),
            Arc::clone(&actions),
            action_policy.clone(),
            config.webhooks.clone(),
            &config.actions,
        );
        Ok(AppState {
            tokens: PageTokens::new(secret),
            limiter: RateLimiter::new(rates.requests_per_minute, rates.burst),
            auth_failures: RateLimiter::new(
                rates.unauthenticated_per_minute,
                rates.unauthenticated_burst,
            ),
            maintenance: Maintenance::start(Arc::clone(&db), &config, metrics.clone()),
            metrics,
            actions,
            action_policy,
            webhooks,
            admin_token_hash,
            demo_hooks: (mode == Mode::Demo).then(DemoHooks::default),
            console: Sessions::new(
                Duration::from_secs(config.admin.session_idle_minutes * 60),
                Duration::from_secs(config.admin.session_max_hours * 3600),
            ),
            generated_admin_token,
            db,
            config,
            serving: Mutex::new(Some(serving)),
        })
    }

    /// Once the server has stopped: stops the background threads and hands over the
    /// serving lock, for the caller to release after dropping the state (so that the
    /// writer has finished before another server may open the database).
    pub fn stop_serving(&self) -> Option<db::ServeLock> {
        self.webhooks.stop();
        self.maintenance.stop();
        match self.serving.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }

    /// Checks an admin token against the configured one, in constant time.
    pub fn check_admin_token(&self, token: &str) -> Result<(), ApiError> {
        let Some(expected) = &self.admin_token_hash else {
            return Err(ApiError::unauthenticated(format!(
                "the admin API and console are disabled: set the {} environment variable \
                 and restart the server",
                self.config.admin.token_env
            )));
        };
        if !constant_time_eq(&sha256(token.trim().as_bytes()), expected) {
            return Err(ApiError::unauthenticated("invalid admin token"));
        }
        Ok(())
    }

    /// 429 while `address` has used up its failed authentications.
    pub fn refuse_if_throttled(&self, address: &str) -> Result<(), ApiError> {
        match self.auth_failures.exhausted(address) {
            Some(seconds) => Err(ApiError::too_many(
                format!("too many failed authentications from this address; retry in {seconds} s"),
                seconds,
            )),
            None => Ok(()),
        }
    }

    /// Counts a failed authentication from `address`; 429 once past its burst.
    pub fn count_failed_auth(&self, address: &str) -> Result<(), ApiError> {
        match self.auth_failures.check(address).retry_after {
            Some(seconds) => Err(ApiError::too_many(
                format!("too many failed authentications from this address; retry in {seconds} s"),
                seconds,
            )),
            None => Ok(()),
        }
    }

    /// The pool and rules actions run with.
    pub fn action_runtime(&self) -> Runtime<'_> {
        Runtime {
            runner: &self.actions,
            policy: &self.action_policy,
        }
    }
}

/// The admin token's digest; `None` (the admin API off) when the variable is unset,
/// an error when the token is too short to resist guessing.
fn admin_token_hash(config: &Config, mode: Mode) -> Result<Option<[u8; 32]>, String> {
    let name = &config.admin.token_env;
    let token = match std::env::var(name) {
        Ok(token) if !token.trim().is_empty() => token,
        _ => {
            if mode == Mode::Serve {
                log::warn!(
                    "admin API and console disabled: the environment variable {name} is not set"
                );
            }
            return Ok(None);
        }
    };
    let token = token.trim();
    let chars = token.chars().count();
    if chars < MIN_ADMIN_TOKEN_CHARS {
        return Err(format!(
            "the admin token in {name} is {chars} characters long; it must be at least \
             {MIN_ADMIN_TOKEN_CHARS} (for example: openssl rand -hex 32)"
        ));
    }
    Ok(Some(sha256(token.as_bytes())))
}
