//! `AppState`: everything the handlers share, built once per server from its `Config`.
//! No globals: tests run several servers in one process, each with its own state.

use crate::actions::ActionRunner;
use crate::config::Config;
use crate::crypto::sha256;
use crate::db::{self, Db, DbError};
use crate::demo::DemoHooks;
use crate::pagination::PageTokens;
use crate::ratelimit::RateLimiter;

/// How the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Serve,
    /// Also mounts `/demo/hooks` and lets actions reach private networks.
    Demo,
}

/// Everything handlers share.
pub struct AppState {
    pub config: Config,
    pub db: Db,
    pub tokens: PageTokens,
    pub limiter: RateLimiter,
    pub actions: ActionRunner,
    /// SHA-256 of the admin token; `None` turns the admin API off.
    pub admin_token_hash: Option<[u8; 32]>,
    /// The demo's hook receiver, in demo mode only.
    pub demo_hooks: Option<DemoHooks>,
}

impl AppState {
    /// Opens the database and starts the writer, maintenance and action threads.
    pub fn open(config: Config, mode: Mode) -> Result<AppState, String> {
        let db = Db::open(&config.database)?;
        let secret = db
            .read_blocking(|conn| db::meta::page_token_key(conn).map_err(DbError::from))
            .map_err(|e| format!("database: {e}"))?
            .ok_or_else(|| "database: the page token key is missing".to_string())?;
        let allow_private_networks = config.actions.allow_private_networks || mode == Mode::Demo;
        Ok(AppState {
            tokens: PageTokens::new(secret),
            limiter: RateLimiter::new(
                config.rate_limit.requests_per_minute,
                config.rate_limit.burst,
            ),
            actions: ActionRunner::new(&config.actions, allow_private_networks),
            admin_token_hash: admin_token_hash(&config),
            demo_hooks: (mode == Mode::Demo).then(DemoHooks::default),
            db,
            config,
        })
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
