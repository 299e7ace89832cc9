//! The command line: `serve`, `demo`, `tenant …`, `key …`, `webhook …`, `contact erase`,
//! `backup`, `check`, `bulk-load`.
//!
//! Tenant and key commands work on the database file directly, also while the server
//! runs (SQLite's locking and the busy timeout keep them safe); the server sees a
//! revocation on the very next request because it reads keys from the database.

use std::path::{Path, PathBuf};

use std::io::IsTerminal;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rusqlite::Connection;
use serde::Serialize;

use crate::accounts;
use crate::config::Config;
use crate::db;
use crate::db::webhooks::Subscription;
use crate::domain::action::ActionPolicy;
use crate::domain::erasure::ContactSelector;
use crate::domain::event::{SubscriptionChange, SubscriptionStatus, parse_types};
use crate::domain::scope::Scopes;
use crate::domain::tenant::{
    DEFAULT_GRACE, MAX_KEY_NAME_CHARS, MAX_TENANT_NAME_CHARS, NewKey, NewTenant, TenantPatch,
    parse_base_url, parse_expiry, parse_grace, parse_name, parse_origins,
};
use crate::error::ApiError;
use crate::lifecycle;
use crate::startup::{Application, Mode};
use crate::webhooks;

#[derive(Debug, Parser)]
#[command(
    name = "threada",
    version,
    about = "Self-hosted multi-tenant support-ticket API"
)]
/// The whole command line.
pub struct Cli {
    /// Config file [default: $THREADA_CONFIG, else ./threada.toml if present, else built-in defaults]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print one JSON object on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server
    Serve,
    /// Run the server with a ready-to-use demo tenant, key, sample tickets and hook receiver
    Demo,
    /// Manage tenants
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage event webhook subscriptions
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Erase a customer's data
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Write a consistent copy of the database (safe while the server runs)
    Backup {
        /// Where to write the copy
        dest: PathBuf,
        /// Replace DEST if it exists
        #[arg(long)]
        force: bool,
    },
    /// Check that a database file (a restored replica, a copy, a backup) can be served:
    /// integrity, foreign keys, schema version; read-only
    Check {
        /// The file to check [default: database.path]
        db: Option<PathBuf>,
    },
    /// Insert generated tickets through the same code as POST /tickets (benchmarks)
    BulkLoad(BulkLoad),
}

/// `bulk-load` arguments.
#[derive(Debug, Args)]
pub struct BulkLoad {
    /// Tenant to fill
    #[arg(long, value_name = "TENANT_ID")]
    tenant: String,
    /// How many tickets to create
    #[arg(long)]
    count: u64,
    /// Tickets per transaction
    #[arg(long, default_value_t = 5000)]
    batch: u64,
}

/// `tenant …` subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; prints its signing secret once
    Create {
        #[arg(long)]
        name: String,
        /// Base URL that relative action URLs are joined to
        #[arg(long, value_name = "URL")]
        action_base_url: Option<String>,
        /// Extra origin absolute action URLs may target (repeatable)
        #[arg(long = "allowed-origin", value_name = "URL")]
        allowed_origins: Vec<String>,
    },
    /// List tenants
    List,
    /// Change a tenant's name, base URL or allowed origins
    Update {
        tenant_id: String,
        #[arg(long)]
        name: Option<String>,
        /// New base URL; an empty string removes it
        #[arg(long, value_name = "URL")]
        action_base_url: Option<String>,
        /// Replaces the allowed origins (repeatable)
        #[arg(long = "allowed-origin", value_name = "URL")]
        allowed_origins: Vec<String>,
        /// Removes every allowed origin
        #[arg(long, conflicts_with = "allowed_origins")]
        clear_allowed_origins: bool,
    },
    /// Replace a tenant's action signing secret; prints the new one once
    RotateSigningSecret { tenant_id: String },
}

/// `key …` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key; prints its secret once
    Create(KeyCreate),
    /// List a tenant's keys (never their secrets)
    List {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: String,
    },
    /// Give a key a new secret; the old one keeps working for the grace period
    Rotate {
        key_id: String,
        /// How long the previous secret keeps working (s, m, h, d; 0s stops it now)
        #[arg(long, default_value = "24h")]
        grace: String,
    },
    /// Revoke a key; it stops working on the next request
    Revoke { key_id: String },
}

/// `webhook …` subcommands.
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Subscribe a URL to a tenant's events (every type unless --event is given)
    Create {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: String,
        /// A path joined to the tenant's action base URL, or a URL on its origins
        #[arg(long)]
        url: String,
        /// An event type to send (repeatable): ticket.created, ticket.updated, …
        #[arg(long = "event", value_name = "TYPE")]
        events: Vec<String>,
    },
    /// List a tenant's subscriptions
    List {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: String,
    },
    /// Stop sending a subscription's deliveries (they wait until resumed)
    Pause { subscription_id: String },
    /// Send a paused subscription's deliveries again, starting now
    Resume { subscription_id: String },
    /// Delete a subscription and its deliveries
    Delete { subscription_id: String },
    /// A subscription's recent deliveries and their attempts, newest first
    Deliveries {
        subscription_id: String,
        #[arg(long, default_value_t = 25)]
        limit: u32,
    },
    /// Send a delivery again (same event, same event id)
    Replay {
        delivery_id: String,
        #[arg(long, value_name = "TENANT_ID")]
        tenant: String,
    },
}

/// `contact …` subcommands.
#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Erase a contact with all its tickets, messages and actions, and every copy of
    /// them (search index, event data, stored idempotent answers); prints the counts
    Erase(ContactErase),
}

/// `contact erase` arguments: the tenant and one identifier of the contact.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).multiple(false)))]
pub struct ContactErase {
    #[arg(long, value_name = "TENANT_ID")]
    tenant: String,
    #[arg(long, group = "which")]
    email: Option<String>,
    #[arg(long, group = "which")]
    phone: Option<String>,
    #[arg(long, group = "which", value_name = "ID")]
    external_id: Option<String>,
    #[arg(long, group = "which", value_name = "CONTACT_ID")]
    contact_id: Option<String>,
}

/// `key create` arguments.
#[derive(Debug, Args)]
pub struct KeyCreate {
    #[arg(long, value_name = "TENANT_ID")]
    tenant: String,
    #[arg(long)]
    name: String,
    /// Comma-separated: support.read, support.write, support.actions
    #[arg(long)]
    scopes: String,
    /// Expire the key after this long (s, m, h, d), e.g. 90d
    #[arg(long, value_name = "DURATION")]
    expires_in: Option<String>,
}

/// A failed command: the message printed after `error: `.
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ApiError> for CliError {
    fn from(error: ApiError) -> CliError {
        match error.param {
            Some(param) if !error.message.contains(param.as_str()) => {
                CliError(format!("{param}: {}", error.message))
            }
            _ => CliError(error.message.into_owned()),
        }
    }
}

impl From<String> for CliError {
    fn from(message: String) -> CliError {
        CliError(message)
    }
}

impl From<crate::startup::StartupError> for CliError {
    fn from(error: crate::startup::StartupError) -> CliError {
        CliError(error.0)
    }
}

impl From<crate::config::ConfigError> for CliError {
    fn from(error: crate::config::ConfigError) -> CliError {
        CliError(error.to_string())
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let config = Config::load(cli.config.as_deref())?;
    init_logging(
        &config,
        matches!(cli.command, Command::Serve | Command::Demo),
    );
    let json = cli.json;
    match cli.command {
        Command::Serve => serve(config, Mode::Serve, json),
        Command::Demo => serve(config, Mode::Demo, json),
        Command::Tenant(command) => tenant(&config, command, json),
        Command::Key(command) => key(&config, command, json),
        Command::Webhook(command) => webhook(&config, command, json),
        Command::Contact(ContactCommand::Erase(erase)) => erase_contact(&config, &erase, json),
        Command::Backup { dest, force } => backup(&config, &dest, force, json),
        Command::Check { db } => check(db.as_deref().unwrap_or(&config.database.path), json),
        Command::BulkLoad(load) => bulk_load(&config, &load, json),
    }
}

fn init_logging(config: &Config, server: bool) {
    // Commands other than the server stay quiet unless RUST_LOG says otherwise.
    let default = if server {
        config.log.level.as_str()
    } else {
        "warn"
    };
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| default.to_string());
    crate::logging::init(&filter, config.log.format);
}

fn serve(config: Config, mode: Mode, json: bool) -> Result<(), CliError> {
    if mode == Mode::Demo {
        crate::demo::check_database(&config.database.path)?;
    }
    actix_web::rt::System::new().block_on(async move {
        let sync = db::describe_sync(config.database.synchronous);
        let app = Application::build(config, mode)?;
        let state = app.state().clone();
        let address = format!(
            "{}:{}",
            state.config.bind_addr().map(|a| a.ip())?,
            app.port()
        );
        log::info!(
            "threada {} listening on http://{address}",
            env!("CARGO_PKG_VERSION")
        );
        if let (Some(port), Ok(Some(admin))) = (app.admin_port(), state.config.admin_bind_addr()) {
            log::info!(
                "admin API, console and metrics also on http://{}:{port}",
                admin.ip()
            );
        }
        log::info!(
            "database {}, synchronous={sync}",
            state.config.database.path.display()
        );
        if mode == Mode::Demo {
            let mut demo = crate::demo::prepare(state.db.writer(), &address).await?;
            demo.console = Some(crate::demo::ConsoleSignIn {
                url: format!("http://{address}/admin"),
                admin_token: state.generated_admin_token.clone(),
                token_from: format!("${}", state.config.admin.token_env),
            });
            print(json, &demo.summary(&address), || demo.banner(&address))?;
        }
        drop(state);
        app.run()
            .await
            .map_err(|e| CliError(format!("server stopped with an error: {e}")))
    })
}

/// Opens the database for a CLI command (creating and migrating it if needed, unless
/// an older server is serving it).
fn open(config: &Config) -> Result<Connection, CliError> {
    Ok(db::open_beside_server(&config.database)?)
}

fn write<T>(
    config: &Config,
    f: impl FnOnce(&Connection) -> Result<T, ApiError>,
) -> Result<T, CliError> {
    let conn = open(config)?;
    Ok(db::in_transaction(&conn, f)?)
}

/// Prints `value` as one JSON object, or as `text` lines.
fn print<T: Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce() -> String,
) -> Result<(), CliError> {
    if json {
        let line = serde_json::to_string(value).map_err(|e| CliError(e.to_string()))?;
        println!("{line}");
    } else {
        println!("{}", text());
    }
    Ok(())
}

#[derive(Serialize)]
struct Items<T> {
    items: Vec<T>,
}

fn tenant(config: &Config, command: TenantCommand, json: bool) -> Result<(), CliError> {
    match command {
        TenantCommand::Create {
            name,
            action_base_url,
            allowed_origins,
        } => {
            let new = NewTenant {
                name: parse_name(&name, "--name", MAX_TENANT_NAME_CHARS)?,
                action_base_url: action_base_url
                    .map(|u| parse_base_url(&u, "--action-base-url"))
                    .transpose()?,
                allowed_origins: parse_origins(&allowed_origins, "--allowed-origin")?,
            };
            let created = write(config, |conn| accounts::create_tenant(conn, &new))?;
            print(json, &created, || {
                format!(
                    "tenant_id:      {}\nname:           {}\nsigning_secret: {}\n(the signing secret is shown only now)",
                    created.tenant.tenant_id, created.tenant.name, created.signing_secret
                )
            })
        }
        TenantCommand::List => {
            let conn = open(config)?;
            let items = db::tenants::list(&conn).map_err(ApiError::from)?;
            print(
                json,
                &Items {
                    items: items.clone(),
                },
                || {
                    items
                        .iter()
                        .map(|t| {
                            format!(
                                "{}  {}  {}",
                                t.tenant_id,
                                t.name,
                                t.action_base_url.as_deref().unwrap_or("-")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            )
        }
        TenantCommand::Update {
            tenant_id,
            name,
            action_base_url,
            allowed_origins,
            clear_allowed_origins,
        } => {
            let patch = TenantPatch {
                name: name
                    .map(|n| parse_name(&n, "--name", MAX_TENANT_NAME_CHARS))
                    .transpose()?,
                action_base_url: action_base_url
                    .map(|u| match u.trim() {
                        "" => Ok(None),
                        url => parse_base_url(url, "--action-base-url").map(Some),
                    })
                    .transpose()?,
                allowed_origins: if clear_allowed_origins {
                    Some(Vec::new())
                } else if allowed_origins.is_empty() {
                    None
                } else {
                    Some(parse_origins(&allowed_origins, "--allowed-origin")?)
                },
            };
            if patch.is_empty() {
                return Err(CliError(
                    "nothing to change: give --name, --action-base-url, --allowed-origin or --clear-allowed-origins".into(),
                ));
            }
            let tenant = write(config, |conn| {
                accounts::update_tenant(conn, &tenant_id, &patch)
            })?;
            print(json, &tenant, || {
                format!("updated tenant {}", tenant.tenant_id)
            })
        }
        TenantCommand::RotateSigningSecret { tenant_id } => {
            let rotated = write(config, |conn| {
                accounts::rotate_signing_secret(conn, &tenant_id)
            })?;
            print(json, &rotated, || {
                format!(
                    "tenant_id:      {}\nsigning_secret: {}\n(the signing secret is shown only now)",
                    rotated.tenant.tenant_id, rotated.signing_secret
                )
            })
        }
    }
}

fn key(config: &Config, command: KeyCommand, json: bool) -> Result<(), CliError> {
    let show_secret = |key: &accounts::KeyWithSecret| {
        format!(
            "key_id:    {}\ntenant_id: {}\nscopes:    {}\napi_key:   {}\n(the API key is shown only now)",
            key.key.key_id,
            key.key.tenant_id,
            key.key.scopes.to_stored(),
            key.api_key
        )
    };
    match command {
        KeyCommand::Create(create) => {
            let new = NewKey {
                name: parse_name(&create.name, "--name", MAX_KEY_NAME_CHARS)?,
                scopes: Scopes::parse_list(create.scopes.split(','), "--scopes")?,
                expires_in: create
                    .expires_in
                    .map(|d| parse_expiry(&d, "--expires-in"))
                    .transpose()?,
            };
            let key = write(config, |conn| {
                accounts::create_key(conn, &create.tenant, &new)
            })?;
            print(json, &key, || show_secret(&key))
        }
        KeyCommand::List { tenant } => {
            let conn = open(config)?;
            let items = accounts::list_keys(&conn, &tenant)?;
            print(
                json,
                &Items {
                    items: items.clone(),
                },
                || {
                    items
                        .iter()
                        .map(|k| {
                            format!(
                                "{}  {}  {}  {}  last used {}",
                                k.key_id,
                                k.status,
                                k.scopes.to_stored(),
                                k.name,
                                k.last_used_at
                                    .map_or("never".to_string(), |t| t.to_string())
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            )
        }
        KeyCommand::Rotate { key_id, grace } => {
            let grace = if grace.is_empty() {
                DEFAULT_GRACE
            } else {
                parse_grace(&grace, "--grace")?
            };
            let key = write(config, |conn| {
                accounts::rotate_key(conn, None, &key_id, grace)
            })?;
            print(json, &key, || show_secret(&key))
        }
        KeyCommand::Revoke { key_id } => {
            let key = write(config, |conn| accounts::revoke_key(conn, None, &key_id))?;
            print(json, &key, || format!("revoked {}", key.key_id))
        }
    }
}

#[derive(Serialize)]
struct BackupReport {
    path: String,
    bytes: u64,
    integrity: String,
}

/// A progress bar on standard error when it is a terminal and the output is text;
/// none otherwise (scripts and `--json` see nothing extra).
fn progress_bar(json: bool, total: u64, unit: &str) -> Option<ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total);
    let template =
        format!("{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {unit} ({{eta}} left)");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

fn backup(config: &Config, dest: &Path, force: bool, json: bool) -> Result<(), CliError> {
    let source = open(config)?;
    let mut bar: Option<ProgressBar> = None;
    let bytes = db::backup::copy_with_progress(&source, dest, force, &mut |done, total| {
        let bar = bar.get_or_insert_with(|| {
            progress_bar(json, total, "pages").unwrap_or_else(ProgressBar::hidden)
        });
        bar.set_length(total);
        bar.set_position(done);
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = BackupReport {
        path: dest.display().to_string(),
        bytes,
        integrity: "ok".into(),
    };
    print(json, &report, || {
        format!(
            "backup written to {} ({bytes} bytes, integrity ok)",
            report.path
        )
    })
}

fn check(path: &Path, json: bool) -> Result<(), CliError> {
    let report = db::check::check(path)?;
    if report.servable {
        return print(json, &report, || {
            format!("ok: {} can be served ({})", report.path, report.verdict)
        });
    }
    if json {
        print(json, &report, String::new)?;
    }
    Err(CliError(format!(
        "{} cannot be served: {}",
        report.path, report.verdict
    )))
}

fn erase_contact(config: &Config, erase: &ContactErase, json: bool) -> Result<(), CliError> {
    let (column, value) = [
        ("email", &erase.email),
        ("phone", &erase.phone),
        ("external_id", &erase.external_id),
        ("contact_id", &erase.contact_id),
    ]
    .into_iter()
    .find_map(|(column, value)| value.as_ref().map(|v| (column, v)))
    .ok_or_else(|| CliError("give one of --email, --phone, --external-id, --contact-id".into()))?;
    let selector = ContactSelector::parse(column, value)?;
    let erased = write(config, |conn| {
        lifecycle::erase_contact(conn, &erase.tenant, &selector, lifecycle::actor::CLI)
    })?;
    print(json, &erased, || {
        let r = &erased.removed;
        format!(
            "erased contact {}: {} ticket(s), {} message(s), {} action(s), {} search document(s), \
             {} event(s) emptied, {} stored answer(s); audit record {}",
            erased.contact_id.as_deref().unwrap_or("-"),
            r.tickets,
            r.messages,
            r.actions,
            r.search_documents,
            r.events_cleared,
            r.idempotency_answers,
            erased.audit_id
        )
    })
}

fn bulk_load(config: &Config, load: &BulkLoad, json: bool) -> Result<(), CliError> {
    let conn = open(config)?;
    let bar = progress_bar(json, load.count, "tickets");
    let report = crate::bulk::load(&conn, &load.tenant, load.count, load.batch, |created| {
        if let Some(bar) = &bar {
            bar.set_position(created);
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    print(json, &report, || {
        format!(
            "created {} tickets in {:.1} s ({:.0}/s)",
            report.created, report.seconds, report.tickets_per_second
        )
    })
}

fn webhook(config: &Config, command: WebhookCommand, json: bool) -> Result<(), CliError> {
    // The CLI checks URLs as a server without the demo's exception would.
    let policy = ActionPolicy {
        allow_private_networks: config.actions.allow_private_networks,
        demo_origin: None,
        max_body_json_bytes: config.actions.max_body_json_bytes,
    };
    let status = |status| SubscriptionChange {
        status: Some(status),
        ..SubscriptionChange::default()
    };
    let show = |s: &Subscription| {
        let types: Vec<&str> = s.event_types.iter().map(|t| t.as_str()).collect();
        let mut line = format!(
            "{}  {}  {}  {}  {} failure(s) in a row",
            s.subscription_id,
            s.status.as_str(),
            s.url,
            if types.is_empty() {
                "all events".to_string()
            } else {
                types.join(",")
            },
            s.consecutive_failures
        );
        if let Some(reason) = &s.paused_reason {
            line.push_str(&format!("  ({reason})"));
        }
        line
    };
    match command {
        WebhookCommand::Create {
            tenant,
            url,
            events,
        } => {
            let change = SubscriptionChange {
                url: Some(url),
                event_types: Some(parse_types(events.iter().map(String::as_str), "--event")?),
                status: None,
            };
            let created = write(config, |conn| {
                webhooks::create(conn, &tenant, &change, &policy)
            })?;
            print(json, &created, || show(&created))
        }
        WebhookCommand::List { tenant } => {
            let conn = open(config)?;
            accounts::get_tenant(&conn, &tenant)?;
            let items = db::webhooks::list(&conn, &tenant).map_err(ApiError::from)?;
            print(
                json,
                &Items {
                    items: items.clone(),
                },
                || items.iter().map(show).collect::<Vec<_>>().join("\n"),
            )
        }
        WebhookCommand::Pause { subscription_id } => {
            let change = status(SubscriptionStatus::Paused);
            let paused = write(config, |conn| {
                webhooks::update(conn, None, &subscription_id, &change, &policy)
            })?;
            print(json, &paused, || show(&paused))
        }
        WebhookCommand::Resume { subscription_id } => {
            let change = status(SubscriptionStatus::Active);
            let resumed = write(config, |conn| {
                webhooks::update(conn, None, &subscription_id, &change, &policy)
            })?;
            print(json, &resumed, || show(&resumed))
        }
        WebhookCommand::Delete { subscription_id } => {
            write(config, |conn| {
                webhooks::delete(conn, None, &subscription_id)
            })?;
            print(
                json,
                &serde_json::json!({ "deleted": subscription_id }),
                || format!("deleted {subscription_id}"),
            )
        }
        WebhookCommand::Deliveries {
            subscription_id,
            limit,
        } => {
            let conn = open(config)?;
            let subscription = webhooks::get(&conn, None, &subscription_id)?;
            let (items, _) = db::webhooks::deliveries(
                &conn,
                &subscription.tenant_id,
                &subscription_id,
                None,
                limit.clamp(1, 100),
            )
            .map_err(ApiError::from)?;
            print(
                json,
                &Items {
                    items: items.clone(),
                },
                || {
                    items
                        .iter()
                        .map(|d| {
                            format!(
                                "{}  {}  {}  {} attempt(s)",
                                d.delivery_id,
                                d.status.as_str(),
                                d.event_type.map_or("-", |t| t.as_str()),
                                d.attempts
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            )
        }
        WebhookCommand::Replay {
            delivery_id,
            tenant,
        } => {
            let delivery = write(config, |conn| webhooks::replay(conn, &tenant, &delivery_id))?;
            print(json, &delivery, || {
                format!("{} will be sent again", delivery.delivery_id)
            })
        }
    }
}
