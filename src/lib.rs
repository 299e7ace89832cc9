//! threada: a self-hosted, multi-tenant, omnichannel support-ticket API on one SQLite
//! file. See README.md for running it and SPEC.md for the contract.
//!
//! # Map
//!
//! The modules form a stack; each imports only from the ones below it
//! (`python3 ../shared/tools/layers.py` checks it), bottom to top:
//!
//! 1. **Leaves** — `error` (`ApiError` and its JSON envelope), `clock` (timestamps,
//!    durations), `crypto` (ids, secrets, hashes, HMAC), `config` (the TOML file and
//!    its environment overrides), `metrics` (what `/metrics` shows), `logging` (the
//!    log's filter and its text or JSON lines).
//! 2. **`domain`** — parsed values: request bodies turned into types with `TryFrom`,
//!    scopes, statuses and the other closed sets (`named_enum!`), tenant action
//!    settings, list queries and cursors, the address classifier of the SSRF guard.
//! 3. **`db`** — the only place SQL lives: plain functions on a connection that take
//!    the caller's tenant and domain values; the pool, the group-commit writer, the
//!    schema steps, backups. Its error type, `DbError`, lives here too.
//! 4. **Services** — one unit of work per call, each inside one transaction:
//!    `auth` (API keys and the caller), `accounts` (tenants and keys), `tickets`,
//!    `idempotency`, `actions` (the outbound client, its guard, pool and the action
//!    unit of work), `pagination` (page tokens), `ratelimit`, `sessions` (console
//!    sign-ins), `webhooks` (subscriptions and their dispatcher), `lifecycle`
//!    (erasure of contacts and tickets, retention), `maintenance` (purges, retention
//!    and scheduled backups), `demo`, `bulk`.
//! 5. **`state`** — `AppState`, what a running server shares.
//! 6. **`routes`** — HTTP: every handler extracts, parses, makes one call as its
//!    caller (`routes::access`: authenticate first, then report the parse error) and
//!    answers; plus the middleware and the extractors. **`console`** — the admin
//!    console's pages, over the same services (it uses `routes`' extractors).
//! 7. **`startup`** binds and builds the server; **`cli`** parses the command line;
//!    `main.rs` dispatches.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod actions;
pub mod auth;
pub mod bulk;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod crypto;
pub mod db;
pub mod deadline;
pub mod demo;
pub mod domain;
pub mod error;
pub mod idempotency;
pub mod lifecycle;
pub mod logging;
pub mod maintenance;
pub mod metrics;
pub mod pagination;
pub mod ratelimit;
pub mod routes;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod tickets;
pub mod webhooks;
