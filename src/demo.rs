//! `threada demo`: a "Demo" tenant with a full-scope key, sample tickets and actions
//! pointed at the server's own hook receiver, so that the public documentation's three
//! curl examples work as printed.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;
use serde_json::{Value, json};

use crate::accounts;
use crate::clock::Timestamp;
use crate::crypto;
use crate::db::{self, Writer};
use crate::domain::listing::{TicketFilter, TicketSort};
use crate::domain::scope::Scopes;
use crate::domain::tenant::{NewKey, NewTenant, TenantPatch};
use crate::domain::ticket::{
    NewMessage, NewMessageBody, NewTicket, NewTicketBody, Status, TicketPatch,
};
use crate::error::ApiError;
use crate::tickets::{add_message, create_ticket, update_ticket};

/// The demo tenant's name.
pub const TENANT_NAME: &str = "Demo";
/// The demo key's name.
pub const KEY_NAME: &str = "demo";
/// Requests the hook receiver keeps.
const KEPT_HOOKS: usize = 100;

/// One request the demo's hook receiver saw; credential-like header values are
/// redacted as the API redacts them.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedHook {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub received_at: Timestamp,
}

/// What the demo's hook receiver saw: the last 100 requests, newest last.
#[derive(Debug, Default)]
pub struct DemoHooks {
    received: Mutex<VecDeque<ReceivedHook>>,
}

impl DemoHooks {
    /// Keeps a request, dropping the oldest past the limit.
    pub fn record(&self, hook: ReceivedHook) {
        let mut received = match self.received.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if received.len() == KEPT_HOOKS {
            received.pop_front();
        }
        received.push_back(hook);
    }

    /// What was kept, oldest first.
    pub fn list(&self) -> Vec<ReceivedHook> {
        match self.received.lock() {
            Ok(guard) => guard.iter().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().iter().cloned().collect(),
        }
    }
}

/// What the banner prints.
#[derive(Debug, Clone)]
pub struct DemoInfo {
    pub tenant_id: String,
    pub api_key: String,
    pub ticket_id: String,
    /// Makes the printed create example's external_message_id unique to this run.
    pub run_tag: String,
    /// How to sign in to the console.
    pub console: Option<ConsoleSignIn>,
}

/// The console's address and how to sign in to it.
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleSignIn {
    pub url: String,
    /// The token the demo made up, or `None` when the operator set one.
    pub admin_token: Option<String>,
    /// Where the token comes from.
    pub token_from: String,
}

/// Refuses, before the server starts, a database that holds tenants `demo` did not
/// create: demo changes its own tenant's key and base URL, and must never touch a real
/// deployment's data.
pub fn check_database(path: &Path) -> Result<(), String> {
    match db::tenants::count_not_demo_in(path)? {
        0 => Ok(()),
        foreign => Err(format!("database {}: {}", path.display(), refusal(foreign))),
    }
}

fn refusal(foreign: u64) -> String {
    format!(
        "threada demo refuses this database: it holds {foreign} tenant(s) that demo did not \
         create; run the demo on its own file (for example THREADA_DATABASE_PATH=threada-demo.db)"
    )
}

/// Checks a hook's `X-Threada-Signature` (`t=<unix seconds>,v1=<hex HMAC>`) against
/// the demo tenant's signing secret, within five minutes of `now`.
pub fn signature_is_valid(secret: &str, header: &str, body: &[u8], now: Timestamp) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let fresh = (now.unix_seconds() - t).abs() <= 300;
    fresh
        && crypto::constant_time_eq(
            crypto::signature_v1(secret, t, body).as_bytes(),
            v1.as_bytes(),
        )
}

/// Ensures the demo tenant, a fresh key (the previous demo key's secret is replaced:
/// only its digest was stored) and, once, the sample tickets.
pub async fn prepare(writer: &Writer, address: &str) -> Result<DemoInfo, ApiError> {
    let base_url = format!("http://{address}/demo");
    writer.run(move |conn| prepare_in(conn, &base_url)).await
}

fn prepare_in(conn: &Connection, base_url: &str) -> Result<DemoInfo, ApiError> {
    // Checked again inside the transaction: a tenant created since startup counts too.
    let foreign = db::tenants::count_not_demo(conn)?;
    if foreign > 0 {
        return Err(ApiError::conflict(refusal(foreign)));
    }
    let tenant = match db::tenants::find_demo(conn)? {
        Some(tenant) => {
            let patch = TenantPatch {
                action_base_url: Some(Some(base_url.to_string())),
                ..TenantPatch::default()
            };
            accounts::update_tenant(conn, &tenant.tenant_id, &patch)?
        }
        None => {
            let new = NewTenant {
                name: TENANT_NAME.into(),
                action_base_url: Some(base_url.to_string()),
                allowed_origins: Vec::new(),
            };
            let tenant = accounts::create_tenant(conn, &new)?.tenant;
            db::tenants::mark_demo(conn, &tenant.tenant_id)?;
            tenant
        }
    };
    let tenant_id = tenant.tenant_id;
    let existing_key = db::keys::list(conn, &tenant_id)?
        .into_iter()
        .find(|k| k.name == KEY_NAME && !k.is_revoked());
    let key = match existing_key {
        Some(key) => accounts::rotate_key(conn, Some(&tenant_id), &key.key_id, Duration::ZERO)?,
        None => {
            let new = NewKey {
                name: KEY_NAME.into(),
                scopes: Scopes::all(),
                expires_in: None,
            };
            accounts::create_key(conn, &tenant_id, &new)?
        }
    };
    let newest = |conn: &Connection| {
        db::tickets::list(
            conn,
            &tenant_id,
            &TicketFilter::default(),
            TicketSort::LastMessageDesc,
            None,
            1,
        )
        .map(|(items, _)| items.into_iter().next())
    };
    if newest(conn)?.is_none() {
        create_samples(conn, &tenant_id)?;
    }
    let ticket = newest(conn)?.ok_or_else(|| ApiError::internal("demo samples are missing"))?;
    Ok(DemoInfo {
        tenant_id,
        api_key: key.api_key,
        ticket_id: ticket.ticket_id,
        run_tag: crypto::new_id("run")[4..14].to_string(),
        console: None,
    })
}

/// Sample tickets on several channels, each followed by replies.
fn create_samples(conn: &Connection, tenant_id: &str) -> Result<(), ApiError> {
    /// A ticket body, its replies (role, content) and the status it ends in.
    type Sample = (
        Value,
        &'static [(&'static str, &'static str)],
        Option<Status>,
    );
    let samples: [Sample; 6] = [
        (
            json!({"subject": "Blender arrived with a cracked jug", "priority": "high", "channel": "email",
                   "contact": {"name": "Camille Martin", "email": "camille.martin@example.com"},
                   "tags": ["returns", "vip"],
                   "initial_message": {"role": "user", "content": "Hello, my order #1042 arrived today and the blender jug is cracked. Can I get a replacement?"}}),
            &[
                (
                    "agent",
                    "So sorry about that, Camille! A replacement jug ships tomorrow; no need to send the old one back.",
                ),
                ("user", "Perfect, thank you for the quick answer."),
            ],
            Some(Status::Resolved),
        ),
        (
            json!({"subject": "Cannot log in after resetting my password", "channel": "chat",
                   "contact": {"name": "Noah Schmidt", "email": "noah.schmidt@example.com"},
                   "tags": ["login", "mobile"],
                   "initial_message": {"role": "user", "content": "Since this morning the mobile app says my password is wrong, the website works fine."}}),
            &[
                (
                    "assistant",
                    "Could you try signing out of the app, then signing in again with your new password?",
                ),
                ("user", "Still the same error on Android 14."),
            ],
            None,
        ),
        (
            json!({"subject": "Change the delivery address for order 1187", "channel": "whatsapp",
                   "contact": {"name": "Aisha Khan", "phone": "+44 7700 900123"},
                   "tags": ["shipping"],
                   "initial_message": {"role": "user", "content": "Hi! Can you deliver order 1187 to my office instead? 10 Example Street, London."}}),
            &[(
                "agent",
                "Done: order 1187 now goes to 10 Example Street. Anything else?",
            )],
            Some(Status::Pending),
        ),
        (
            json!({"subject": "Reply to appointment reminder", "priority": "low", "channel": "sms",
                   "contact": {"phone": "+1 202 555 0147"},
                   "initial_message": {"role": "user", "content": "Can we move Thursday's appointment to 3pm?"}}),
            &[("note", "Calendar updated; confirm by SMS.")],
            None,
        ),
        (
            json!({"subject": "Feature request: dark mode for the dashboard", "priority": "low", "channel": "web",
                   "contact": {"name": "Lea Dubois", "email": "lea.dubois@example.com"},
                   "tags": ["feedback"],
                   "initial_message": {"role": "user", "content": "Love the product! A dark mode would make late shifts much easier on the eyes."}}),
            &[],
            None,
        ),
        (
            json!({"subject": "Callback requested about invoice INV-2291", "priority": "urgent", "channel": "voice",
                   "contact": {"name": "Marco Rossi", "external_id": "crm-58213"},
                   "tags": ["billing"],
                   "initial_message": {"role": "system", "content": "Voicemail transcript: the customer was charged twice for invoice INV-2291 and asks for a callback."}}),
            &[(
                "agent",
                "Called back, refund of the duplicate charge issued.",
            )],
            None,
        ),
    ];
    for (ticket, replies, status) in samples {
        let body: NewTicketBody = serde_json::from_value(ticket).map_err(ApiError::internal)?;
        let view = create_ticket(conn, tenant_id, &NewTicket::try_from(body)?)?;
        let ticket_id = view.summary.ticket_id;
        for (role, content) in replies {
            let body: NewMessageBody =
                serde_json::from_value(json!({"role": role, "content": content}))
                    .map_err(ApiError::internal)?;
            add_message(conn, tenant_id, &ticket_id, &NewMessage::try_from(body)?)?;
        }
        if let Some(status) = status {
            let patch = TicketPatch {
                status: Some(status),
                ..TicketPatch::default()
            };
            update_ticket(conn, tenant_id, &ticket_id, &patch)?;
        }
    }
    Ok(())
}

/// The body of the create example, as printed (`{tag}` is the run's tag).
const CREATE_BODY: &str = r#"{
  "subject": "Where is my parcel?",
  "priority": "normal",
  "channel": "email",
  "contact": {
    "name": "Jane Customer",
    "email": "customer@example.com"
  },
  "tags": ["returns"],
  "initial_message": {
    "role": "user",
    "content": "Hello, my parcel was due yesterday and has not arrived.",
    "external_message_id": "demo-{tag}"
  }
}"#;

/// The body of the action example: the public documentation's, verbatim.
const ACTION_BODY: &str = r#"{
  "payload": {
    "type": "custom_http",
    "method": "POST",
    "url": "/hooks/zapier",
    "headers": {
      "X-Source": "threada"
    },
    "body_json": "{\"event\":\"ticket_updated\"}"
  }
}"#;

/// One of the public documentation's three requests, pointed at this server.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub name: &'static str,
    pub method: &'static str,
    pub url: String,
    /// In the order the documentation prints them.
    #[serde(serialize_with = "as_object")]
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body, as printed.
    #[serde(skip)]
    pub body_text: Option<String>,
    pub body: Option<Value>,
}

fn as_object<S: serde::Serializer>(
    headers: &[(&'static str, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(headers.iter().map(|(name, value)| (*name, value)))
}

/// What `threada demo --json` prints: one object.
#[derive(Debug, Serialize)]
pub struct DemoSummary {
    pub base_url: String,
    pub tenant_id: String,
    pub api_key: String,
    pub scopes: Scopes,
    pub ticket_id: String,
    pub hooks_url: String,
    pub console: Option<ConsoleSignIn>,
    pub examples: Vec<Example>,
}

impl DemoInfo {
    /// The documentation's three requests with this run's key and ids.
    pub fn examples(&self, address: &str) -> Vec<Example> {
        let base = format!("http://{address}");
        let example = |name, method, url: String, body: Option<String>| {
            let mut headers = vec![("X-Api-Key", self.api_key.clone())];
            if body.is_some() {
                headers.push(("Content-Type", "application/json".to_string()));
            }
            Example {
                name,
                method,
                url,
                headers,
                body: body.as_deref().and_then(|b| serde_json::from_str(b).ok()),
                body_text: body,
            }
        };
        vec![
            example(
                "list_tickets",
                "GET",
                format!("{base}/api/v1/public/tickets?limit=25"),
                None,
            ),
            example(
                "create_ticket",
                "POST",
                format!("{base}/api/v1/public/tickets"),
                Some(CREATE_BODY.replace("{tag}", &self.run_tag)),
            ),
            example(
                "run_action",
                "POST",
                format!("{base}/api/v1/public/tickets/{}/actions", self.ticket_id),
                Some(ACTION_BODY.to_string()),
            ),
        ]
    }

    /// The one JSON object of `threada demo --json`.
    pub fn summary(&self, address: &str) -> DemoSummary {
        DemoSummary {
            base_url: format!("http://{address}"),
            tenant_id: self.tenant_id.clone(),
            api_key: self.api_key.clone(),
            scopes: Scopes::all(),
            ticket_id: self.ticket_id.clone(),
            hooks_url: format!("http://{address}/demo/hooks"),
            console: self.console.clone(),
            examples: self.examples(address),
        }
    }

    /// The key and the three curl examples, ready to paste.
    pub fn banner(&self, address: &str) -> String {
        let base = format!("http://{address}");
        let key = &self.api_key;
        let titles = [
            "1. List tickets:".to_string(),
            "2. Create a ticket:".to_string(),
            format!(
                "3. Run an action (the demo's own receiver gets it; to see what arrived:\n   \
                 curl \"{base}/demo/hooks\" -H \"X-Api-Key: {key}\"):"
            ),
        ];
        let mut text = format!(
            "\nthreada demo is running on {base}\n\n  tenant   {}\n  API key  {key}\n           \
             (support.read, support.write, support.actions; a new key is printed at every start)\n",
            self.tenant_id
        );
        if let Some(console) = &self.console {
            let token = console
                .admin_token
                .as_deref()
                .unwrap_or(&console.token_from);
            text.push_str(&format!(
                "\n  console  {}  (sign in with the admin token: {token})\n",
                console.url
            ));
        }
        for (title, example) in titles.iter().zip(self.examples(address)) {
            text.push_str(&format!(
                "\n{title}\n\ncurl -X {} \"{}\"",
                example.method, example.url
            ));
            for (name, value) in &example.headers {
                text.push_str(&format!(" \\\n  -H \"{name}: {value}\""));
            }
            if let Some(body) = &example.body_text {
                text.push_str(&format!(" \\\n  -d '{}'", body.replace('\n', "\n  ")));
            }
            text.push('\n');
        }
        text
    }
}
