//! Configuration: built-in defaults, then the TOML file, then `THREADA_<SECTION>_<KEY>`
//! environment variables, then `validate()`. Every error names the key and where its
//! value came from (file and line, or environment variable).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Environment variable that names the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "THREADA_CONFIG";
/// File used when neither `--config` nor `THREADA_CONFIG` is given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "threada.toml";

/// The whole configuration, one struct per TOML section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub admin: AdminConfig,
    pub actions: ActionsConfig,
    pub rate_limit: RateLimitConfig,
    pub events: EventsConfig,
    pub webhooks: WebhooksConfig,
    pub retention: RetentionConfig,
    pub backup: BackupConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
}

/// `[retention]`: how long data is kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Closed tickets are erased this many days after they were closed; 0 = kept.
    pub closed_tickets_days: u64,
}

/// `[backup]`: scheduled online backups.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// How often, e.g. `6h`; "" = no scheduled backups.
    pub schedule: String,
    /// Where they go; "" = a `backups` directory beside the database.
    pub dir: PathBuf,
    /// How many scheduled backups are kept; older ones are removed.
    pub keep: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            schedule: String::new(),
            dir: PathBuf::new(),
            keep: 7,
        }
    }
}

impl BackupConfig {
    /// The schedule's interval, or `None` when off (validated by `load`).
    pub fn interval(&self) -> Option<std::time::Duration> {
        if self.schedule.trim().is_empty() {
            return None;
        }
        crate::clock::parse_duration(&self.schedule).ok()
    }

    /// The directory scheduled backups are written to.
    pub fn directory(&self, database: &Path) -> PathBuf {
        if !self.dir.as_os_str().is_empty() {
            return self.dir.clone();
        }
        match database.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.join("backups"),
            _ => PathBuf::from("backups"),
        }
    }
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` (on `admin.bind` if set, else behind the admin token).
    pub enabled: bool,
}

/// `[events]`: the event feed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Events older than this many days are removed; older page tokens get 410.
    pub retention_days: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig { retention_days: 30 }
    }
}

/// `[webhooks]`: delivery of events to subscribers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// A delivery is retried for this many hours after its event, then fails.
    pub retry_for_hours: u64,
    /// The first retry waits this long; each next one twice as long (with jitter).
    pub retry_base_ms: u64,
    /// The longest wait between two attempts.
    pub retry_max_ms: u64,
    /// A subscription is paused after this many failed attempts in a row.
    pub pause_after_failures: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            retry_for_hours: 24,
            retry_base_ms: 10_000,
            retry_max_ms: 3_600_000,
            pause_after_failures: 20,
        }
    }
}

/// `[server]`: the listener and request limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address, `host:port`; port 0 picks a free port.
    pub bind: String,
    /// Actix workers; 0 means one per core.
    pub workers: usize,
    /// Larger request bodies are answered 413.
    pub max_body_bytes: usize,
    /// Listen backlog: connections the kernel queues before the server accepts them.
    pub backlog: u32,
    /// Open connections per worker; past it new connections wait in the backlog.
    pub max_connections: usize,
    /// Every request head must arrive within this of its first byte (the first
    /// request's, of the connection opening).
    pub request_head_timeout_ms: u64,
    /// A request body must arrive within this of its head.
    pub request_body_timeout_ms: u64,
    /// An idle kept-alive connection is closed after this.
    pub keep_alive_ms: u64,
}

/// `[database]`: the SQLite file and how it is opened.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub path: PathBuf,
    pub pool_size: u32,
    pub busy_timeout_ms: u64,
    pub synchronous: Synchronous,
    /// The writer checkpoints the WAL (PASSIVE) once it holds this many pages; 0 =
    /// never: an external replicator such as Litestream checkpoints.
    pub wal_autocheckpoint: u32,
    /// After a checkpoint resets the WAL, it is truncated to at most this many bytes;
    /// -1 = never truncated.
    pub journal_size_limit: i64,
}

/// `database.synchronous`: how commits reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Every commit is fsynced: an acknowledged write survives a power cut.
    Full,
    /// WAL is fsynced at checkpoints only: a power cut may lose the last commits.
    Normal,
}

impl Synchronous {
    /// The value for `PRAGMA synchronous`.
    pub fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// `[admin]`: the admin API and console.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Name of the environment variable that holds the admin token.
    pub token_env: String,
    /// A second listen address for the admin API, console and metrics; "" = none.
    pub bind: String,
    /// Mark the console's session cookie `Secure` even over plain HTTP (behind TLS).
    pub secure_cookies: bool,
    /// A console session ends after this many minutes without a request.
    pub session_idle_minutes: u64,
    /// A console session ends this many hours after sign-in.
    pub session_max_hours: u64,
}

/// `[actions]`: the outbound call pool and its limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActionsConfig {
    pub threads: usize,
    pub queue: usize,
    pub connect_timeout_ms: u64,
    pub timeout_ms: u64,
    pub max_response_bytes: usize,
    pub allow_private_networks: bool,
    /// Places (running or waiting) one tenant may hold; 0 = a quarter of threads + queue.
    pub per_tenant: usize,
    /// Largest `body_json` an action may send.
    pub max_body_json_bytes: usize,
}

/// `[rate_limit]`: the per-key token bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub requests_per_minute: u32,
    pub burst: u32,
    /// Failed authentications per minute per client address (API keys, admin token).
    pub unauthenticated_per_minute: u32,
    /// Failed authentications a client address may make at once.
    pub unauthenticated_burst: u32,
}

/// `[log]`: what is logged.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// env_logger filter, e.g. `info` or `warn,threada=info`; `RUST_LOG` wins.
    pub level: String,
    /// `text` (one readable line per record) or `json` (one JSON object per line).
    pub format: LogFormat,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            workers: 0,
            max_body_bytes: 1_048_576,
            backlog: 2048,
            max_connections: 25_000,
            request_head_timeout_ms: 5000,
            request_body_timeout_ms: 10_000,
            keep_alive_ms: 5000,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            path: PathBuf::from("threada.db"),
            pool_size: 8,
            busy_timeout_ms: 5000,
            synchronous: Synchronous::Full,
            wal_autocheckpoint: 1000,
            journal_size_limit: 67_108_864,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            token_env: "THREADA_ADMIN_TOKEN".into(),
            bind: String::new(),
            secure_cookies: false,
            session_idle_minutes: 30,
            session_max_hours: 12,
        }
    }
}

impl Default for ActionsConfig {
    fn default() -> Self {
        ActionsConfig {
            threads: 16,
            queue: 64,
            connect_timeout_ms: 3000,
            timeout_ms: 10_000,
            max_response_bytes: 65_536,
            allow_private_networks: false,
            per_tenant: 0,
            max_body_json_bytes: 65_536,
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            requests_per_minute: 600,
            burst: 60,
            unauthenticated_per_minute: 60,
            unauthenticated_burst: 30,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// A configuration problem, already phrased as the one line shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config error: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Where a setting's value came from, for error messages.
#[derive(Debug, Clone)]
enum Origin {
    File { path: PathBuf, line: Option<usize> },
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "{}:{line}", path.display()),
            Origin::File { path, line: None } => write!(f, "{}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
        }
    }
}

/// Which file `load` reads: `--config`, else `THREADA_CONFIG`, else `./threada.toml` if
/// it exists, else none (built-in defaults).
pub fn locate(cli_path: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = cli_path {
        return Some(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let local = PathBuf::from(DEFAULT_CONFIG_FILE);
    local.is_file().then_some(local)
}

impl Config {
    /// Loads the configuration from `locate(cli_path)` and the process environment.
    pub fn load(cli_path: Option<&Path>) -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars()
            .filter(|(name, _)| name.starts_with("THREADA_"))
            .collect();
        Config::load_from(locate(cli_path).as_deref(), &env)
    }

    /// Loads from an optional file and an explicit environment (testable without
    /// touching the process environment).
    pub fn load_from(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let mut origins: BTreeMap<String, Origin> = BTreeMap::new();
        let mut config = match file {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(format!("cannot read config file {}: {e}", path.display()))
                })?;
                let config = parse_file(path, &text)?;
                for key in Config::keys() {
                    if let Some(line) = find_key_line(&text, &key) {
                        origins.insert(
                            key,
                            Origin::File {
                                path: path.to_path_buf(),
                                line: Some(line),
                            },
                        );
                    }
                }
                config
            }
        };
        config.apply_env(env, &mut origins)?;
        config.validate(&origins)?;
        Ok(config)
    }

    /// Every `section.key` this configuration has, in file order.
    pub fn keys() -> Vec<String> {
        let mut keys = Vec::new();
        if let Ok(toml::Value::Table(sections)) = toml::Value::try_from(Config::default()) {
            for (section, value) in sections {
                if let toml::Value::Table(table) = value {
                    keys.extend(table.keys().map(|key| format!("{section}.{key}")));
                }
            }
        }
        keys
    }

    /// The environment variable that overrides `section.key`.
    pub fn env_var_for(key: &str) -> String {
        format!("THREADA_{}", key.replace('.', "_").to_ascii_uppercase())
    }

    fn apply_env(
        &mut self,
        env: &BTreeMap<String, String>,
        origins: &mut BTreeMap<String, Origin>,
    ) -> Result<(), ConfigError> {
        for key in Config::keys() {
            let var = Config::env_var_for(&key);
            let Some(raw) = env.get(&var) else { continue };
            let Some((section, name)) = key.split_once('.') else {
                continue;
            };
            let mut tree = toml::Value::try_from(&*self)
                .map_err(|e| ConfigError(format!("cannot apply {var}: {e}")))?;
            let slot = tree
                .get_mut(section)
                .and_then(|s| s.get_mut(name))
                .ok_or_else(|| ConfigError(format!("cannot apply {var}")))?;
            *slot = match slot {
                toml::Value::Integer(_) => raw.trim().parse::<i64>().map(toml::Value::Integer).map_err(
                    |_| ConfigError(format!("{key}: expected a whole number, got {raw:?} (environment variable {var})")),
                )?,
                toml::Value::Boolean(_) => match raw.trim() {
                    "true" | "1" => toml::Value::Boolean(true),
                    "false" | "0" => toml::Value::Boolean(false),
                    _ => {
                        return Err(ConfigError(format!(
                            "{key}: expected true or false, got {raw:?} (environment variable {var})"
                        )));
                    }
                },
                _ => toml::Value::String(raw.clone()),
            };
            *self = tree.try_into().map_err(|e: toml::de::Error| {
                ConfigError(format!(
                    "{key}: {} (environment variable {var})",
                    e.message().trim()
                ))
            })?;
            origins.insert(key, Origin::Env(var));
        }
        Ok(())
    }

    fn validate(&self, origins: &BTreeMap<String, Origin>) -> Result<(), ConfigError> {
        let fail = |key: &str, problem: String| {
            let at = origins
                .get(key)
                .map(|o| format!(" ({o})"))
                .unwrap_or_default();
            Err(ConfigError(format!("{key}: {problem}{at}")))
        };
        if self.server.bind.parse::<SocketAddr>().is_err() {
            return fail(
                "server.bind",
                format!(
                    "{:?} is not a valid listen address (expected IP:PORT, e.g. 127.0.0.1:8080)",
                    self.server.bind
                ),
            );
        }
        if self.server.workers > 1024 {
            return fail("server.workers", "must be between 0 and 1024".into());
        }
        if self.server.max_body_bytes < 1024 {
            return fail("server.max_body_bytes", "must be at least 1024".into());
        }
        if !(16..=65_535).contains(&self.server.backlog) {
            return fail("server.backlog", "must be between 16 and 65535".into());
        }
        if !(1..=1_000_000).contains(&self.server.max_connections) {
            return fail(
                "server.max_connections",
                "must be between 1 and 1000000".into(),
            );
        }
        for (key, value) in [
            (
                "server.request_head_timeout_ms",
                self.server.request_head_timeout_ms,
            ),
            (
                "server.request_body_timeout_ms",
                self.server.request_body_timeout_ms,
            ),
            ("server.keep_alive_ms", self.server.keep_alive_ms),
        ] {
            if !(100..=600_000).contains(&value) {
                return fail(key, "must be between 100 and 600000".into());
            }
        }
        if self.database.path.as_os_str().is_empty() {
            return fail("database.path", "must not be empty".into());
        }
        if !(1..=256).contains(&self.database.pool_size) {
            return fail("database.pool_size", "must be between 1 and 256".into());
        }
        if self.database.busy_timeout_ms > 600_000 {
            return fail("database.busy_timeout_ms", "must be at most 600000".into());
        }
        if self.admin.token_env.trim().is_empty() {
            return fail(
                "admin.token_env",
                "must name an environment variable".into(),
            );
        }
        if !self.admin.bind.is_empty() && self.admin.bind.parse::<SocketAddr>().is_err() {
            return fail(
                "admin.bind",
                format!(
                    "{:?} is not a valid listen address (IP:PORT, or empty for none)",
                    self.admin.bind
                ),
            );
        }
        if !(1..=1440).contains(&self.admin.session_idle_minutes) {
            return fail(
                "admin.session_idle_minutes",
                "must be between 1 and 1440".into(),
            );
        }
        if !(1..=720).contains(&self.admin.session_max_hours) {
            return fail(
                "admin.session_max_hours",
                "must be between 1 and 720".into(),
            );
        }
        if !(1..=1024).contains(&self.actions.threads) {
            return fail("actions.threads", "must be between 1 and 1024".into());
        }
        if self.actions.queue > 100_000 {
            return fail("actions.queue", "must be at most 100000".into());
        }
        if !(1..=600_000).contains(&self.actions.connect_timeout_ms) {
            return fail(
                "actions.connect_timeout_ms",
                "must be between 1 and 600000".into(),
            );
        }
        if !(1..=600_000).contains(&self.actions.timeout_ms) {
            return fail("actions.timeout_ms", "must be between 1 and 600000".into());
        }
        if self.actions.max_response_bytes > 16 * 1024 * 1024 {
            return fail(
                "actions.max_response_bytes",
                "must be at most 16777216".into(),
            );
        }
        if self.actions.per_tenant > self.actions.threads + self.actions.queue {
            return fail(
                "actions.per_tenant",
                "must be at most actions.threads + actions.queue (0 = a quarter of them)".into(),
            );
        }
        if !(2..=16 * 1024 * 1024).contains(&self.actions.max_body_json_bytes) {
            return fail(
                "actions.max_body_json_bytes",
                "must be between 2 and 16777216".into(),
            );
        }
        if self.rate_limit.unauthenticated_per_minute == 0
            || self.rate_limit.unauthenticated_burst == 0
        {
            let key = if self.rate_limit.unauthenticated_per_minute == 0 {
                "rate_limit.unauthenticated_per_minute"
            } else {
                "rate_limit.unauthenticated_burst"
            };
            return fail(key, "must be at least 1".into());
        }
        if self.rate_limit.requests_per_minute == 0 {
            return fail(
                "rate_limit.requests_per_minute",
                "must be at least 1".into(),
            );
        }
        if self.rate_limit.burst == 0 {
            return fail("rate_limit.burst", "must be at least 1".into());
        }
        if !(1..=3650).contains(&self.events.retention_days) {
            return fail("events.retention_days", "must be between 1 and 3650".into());
        }
        if !(1..=720).contains(&self.webhooks.retry_for_hours) {
            return fail(
                "webhooks.retry_for_hours",
                "must be between 1 and 720".into(),
            );
        }
        if !(10..=3_600_000).contains(&self.webhooks.retry_base_ms) {
            return fail(
                "webhooks.retry_base_ms",
                "must be between 10 and 3600000".into(),
            );
        }
        if self.webhooks.retry_max_ms < self.webhooks.retry_base_ms {
            return fail(
                "webhooks.retry_max_ms",
                "must be at least webhooks.retry_base_ms".into(),
            );
        }
        if !(1..=10_000).contains(&self.webhooks.pause_after_failures) {
            return fail(
                "webhooks.pause_after_failures",
                "must be between 1 and 10000".into(),
            );
        }
        if self.database.wal_autocheckpoint > 1_000_000 {
            return fail(
                "database.wal_autocheckpoint",
                "must be between 0 (checkpoints left to a replicator) and 1000000 pages".into(),
            );
        }
        if self.database.journal_size_limit < -1 {
            return fail(
                "database.journal_size_limit",
                "must be -1 (no limit) or a number of bytes".into(),
            );
        }
        if self.retention.closed_tickets_days > 36_500 {
            return fail(
                "retention.closed_tickets_days",
                "must be between 0 (kept) and 36500".into(),
            );
        }
        if !self.backup.schedule.trim().is_empty() {
            match crate::clock::parse_duration(&self.backup.schedule) {
                Ok(every) if every.as_secs() >= 1 => {}
                Ok(_) => return fail("backup.schedule", "must be at least 1s".into()),
                Err(problem) => {
                    return fail(
                        "backup.schedule",
                        format!("{problem}; \"\" turns scheduled backups off"),
                    );
                }
            }
        }
        if !(1..=10_000).contains(&self.backup.keep) {
            return fail("backup.keep", "must be between 1 and 10000".into());
        }
        if let Err(problem) = check_log_filter(&self.log.level) {
            return fail("log.level", problem);
        }
        Ok(())
    }

    /// The admin listener's address, when `admin.bind` is set (validated by `load`).
    pub fn admin_bind_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if self.admin.bind.is_empty() {
            return Ok(None);
        }
        self.admin.bind.parse().map(Some).map_err(|_| {
            ConfigError(format!(
                "admin.bind: {:?} is not a valid listen address",
                self.admin.bind
            ))
        })
    }

    /// The listen address (validated by `load`).
    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.bind.parse().map_err(|_| {
            ConfigError(format!(
                "server.bind: {:?} is not a valid listen address",
                self.server.bind
            ))
        })
    }
}

fn parse_file(path: &Path, text: &str) -> Result<Config, ConfigError> {
    toml::from_str(text).map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let mut message = e.message().trim().replace('\n', " ");
        // serde names the unknown key but not its section; the line points at it.
        if let Some(line) = line
            && let Some(content) = text.lines().nth(line - 1)
        {
            let content = content.trim();
            if message.starts_with("unknown field") && !content.is_empty() {
                message = format!("{message} in `{content}`");
            }
        }
        let origin = Origin::File {
            path: path.to_path_buf(),
            line,
        };
        ConfigError(format!("{origin}: {message}"))
    })
}

/// The 1-based line where `section.key` is set in a TOML text, if it is.
fn find_key_line(text: &str, dotted: &str) -> Option<usize> {
    let (section, key) = dotted.split_once('.')?;
    let mut current = String::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim().to_string();
            continue;
        }
        let Some((name, _)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim().trim_matches('"');
        if (current == section && name == key) || (current.is_empty() && name == dotted) {
            return Some(index + 1);
        }
    }
    None
}

/// Checks an env_logger filter the way env_logger would read it, but loudly.
fn check_log_filter(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    if filter.trim().is_empty() {
        return Err("must not be empty (e.g. \"info\")".into());
    }
    for directive in filter.split(',').map(str::trim) {
        // `level` or `target=level`; a bare target (env_logger's "everything for it")
        // is refused, so that a misspelt level cannot pass for one.
        let level = directive.rsplit_once('=').map_or(directive, |(_, l)| l);
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "{directive:?} is not a log level (expected off, error, warn, info, debug or trace)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("threada.toml");
        std::fs::write(&path, text).unwrap();
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load_from(Some(&path), &env)
    }

    #[test]
    fn defaults_match_the_spec() {
        let config = Config::load_from(None, &BTreeMap::new()).unwrap();
        assert_eq!(config.server.bind, "127.0.0.1:8080");
        assert_eq!(config.database.path, PathBuf::from("threada.db"));
        assert_eq!(config.database.synchronous, Synchronous::Full);
        assert_eq!(config.actions.threads, 16);
        assert_eq!(config.rate_limit.burst, 60);
    }

    #[test]
    fn every_key_has_an_env_override() {
        let keys = Config::keys();
        assert!(keys.contains(&"server.bind".to_string()));
        assert!(keys.contains(&"actions.allow_private_networks".to_string()));
        assert_eq!(keys.len(), 43);
        assert_eq!(Config::env_var_for("server.bind"), "THREADA_SERVER_BIND");
    }

    #[test]
    fn env_wins_over_file() {
        let config = load_text(
            "[server]\nbind = \"127.0.0.1:9000\"\n[database]\npool_size = 3\n",
            &[("THREADA_SERVER_BIND", "127.0.0.1:9100")],
        )
        .unwrap();
        assert_eq!(config.server.bind, "127.0.0.1:9100");
        assert_eq!(config.database.pool_size, 3);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = load_text("[server]\nbind = \"127.0.0.1:1\"\nbnid = 3\n", &[]).unwrap_err();
        assert!(err.0.contains("bnid"), "{err}");
        assert!(err.0.contains("threada.toml:3"), "{err}");
    }

    #[test]
    fn wrong_type_names_line() {
        let err = load_text("[database]\npool_size = \"eight\"\n", &[]).unwrap_err();
        assert!(err.0.contains("threada.toml:2"), "{err}");
    }

    #[test]
    fn invalid_values_are_refused() {
        let err = load_text("[database]\npool_size = 0\n", &[]).unwrap_err();
        assert!(err.0.contains("database.pool_size"), "{err}");
        assert!(err.0.contains("threada.toml:2"), "{err}");
        let err = load_text("[server]\nbind = \"nowhere\"\n", &[]).unwrap_err();
        assert!(err.0.contains("server.bind"), "{err}");
        let err = load_text("[database]\nsynchronous = \"fast\"\n", &[]).unwrap_err();
        assert!(err.0.contains("fast"), "{err}");
        let err = load_text("", &[("THREADA_DATABASE_SYNCHRONOUS", "off")]).unwrap_err();
        assert!(err.0.contains("THREADA_DATABASE_SYNCHRONOUS"), "{err}");
        let err = load_text("", &[("THREADA_DATABASE_POOL_SIZE", "many")]).unwrap_err();
        assert!(err.0.contains("THREADA_DATABASE_POOL_SIZE"), "{err}");
        let err = load_text("[log]\nlevel = \"loud\"\n", &[]).unwrap_err();
        assert!(err.0.contains("log.level"), "{err}");
    }

    #[test]
    fn the_example_file_documents_every_key_with_its_default() {
        let text = include_str!("../config.example.toml");
        let parsed: Config = toml::from_str(text).unwrap();
        assert_eq!(
            toml::to_string(&parsed).unwrap(),
            toml::to_string(&Config::default()).unwrap()
        );
        for key in Config::keys() {
            assert!(
                find_key_line(text, &key).is_some(),
                "{key} is not documented"
            );
        }
    }

    #[test]
    fn log_filters() {
        assert!(check_log_filter("info").is_ok());
        assert!(check_log_filter("warn,threada=debug").is_ok());
        assert!(check_log_filter("threada").is_err());
        assert!(check_log_filter("warn,actix_web=verbose").is_err());
    }
}
