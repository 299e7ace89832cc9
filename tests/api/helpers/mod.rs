//! The test harness, by concern: `client` (HTTP and API-named calls), `app` (a server
//! in this process), `process` (the real binary as a server), `cli` (CLI runs), and
//! `stub` (a local receiver for actions).

pub mod app;
pub mod browser;
pub mod cli;
pub mod client;
pub mod process;
pub mod stub;

use serde_json::{Value, json};

pub use app::{Tenant, TestApp, test_config};
pub use cli::{Cli, binary, write_config};
pub use client::{Client, PUBLIC, Reply};
pub use process::ServerProcess;

pub const ALL_SCOPES: &str = "support.read,support.write,support.actions";

/// A ticket body like the seed's, with a subject of choice.
pub fn ticket_body(subject: &str) -> Value {
    json!({
        "subject": subject,
        "priority": "normal",
        "channel": "email",
        "contact": {"name": "Jane Customer", "email": "customer@example.com"},
        "tags": ["returns"],
        "initial_message": {"role": "user", "content": "Hello, where is my parcel?"}
    })
}

/// The seed's create request body, verbatim.
pub fn seed_create_body() -> Value {
    json!({
        "subject": "SUBJECT",
        "priority": "normal",
        "channel": "email",
        "contact": {"name": "CUSTOMER_NAME", "email": "customer@example.com"},
        "tags": ["returns"],
        "initial_message": {"role": "user", "content": "MESSAGE_BODY", "external_message_id": "EXT_MSG_ID"}
    })
}
