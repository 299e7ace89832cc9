//! `threada bulk-load`: fills a tenant with generated tickets for benchmarks, through
//! the same parsing and the same unit of work as `POST /tickets`, in large
//! transactions (one fsync per batch).

use std::time::Instant;

use rusqlite::Connection;
use serde_json::json;

use crate::db;
use crate::domain::ticket::{NewTicket, NewTicketBody};
use crate::error::ApiError;
use crate::tickets::create_ticket;

const CHANNELS: [&str; 5] = ["email", "chat", "web", "sms", "whatsapp"];
const PRIORITIES: [&str; 4] = ["low", "normal", "normal", "high"];

/// Messages of generated tickets: one in ten asks for a refund (a search term in about
/// 10 % of tickets); the order number in the subject is a term of one ticket.
const MESSAGES: [&str; 2] = [
    "Hello, my order has not arrived yet. Could you check where it is? Thanks",
    "Hello, the parcel arrived damaged and I would like a refund for it. Thanks",
];

/// The seed's create body, varied by `n` (a tenth of the contacts repeat).
fn sample(n: u64, run: &str) -> Result<NewTicket, ApiError> {
    let content = MESSAGES[usize::from(n.is_multiple_of(10))];
    let body: NewTicketBody = serde_json::from_value(json!({
        "subject": format!("Order question #{n}"),
        "priority": PRIORITIES[(n % 4) as usize],
        "channel": CHANNELS[(n % 5) as usize],
        "contact": {"name": format!("Customer {}", n % 100_000), "email": format!("customer{}@example.com", n % 100_000)},
        "tags": ["returns", if n.is_multiple_of(3) { "vip" } else { "standard" }],
        "initial_message": {"role": "user", "content": content,
                            "external_message_id": format!("bulk-{run}-{n}")}
    }))
    .map_err(ApiError::internal)?;
    NewTicket::try_from(body)
}

/// What a bulk load did.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub tenant_id: String,
    pub created: u64,
    pub seconds: f64,
    pub tickets_per_second: f64,
}

/// Creates `count` generated tickets for `tenant_id`, `batch` per transaction;
/// `progress` hears the running total after each batch.
pub fn load(
    conn: &Connection,
    tenant_id: &str,
    count: u64,
    batch: u64,
    mut progress: impl FnMut(u64),
) -> Result<Report, ApiError> {
    crate::accounts::get_tenant(conn, tenant_id)?;
    // Whatever database.wal_autocheckpoint says (0 under Litestream), a load of many
    // transactions checkpoints as it goes: PASSIVE checkpoints are safe beside a
    // replicator, and the WAL stays small.
    conn.pragma_update(None, "wal_autocheckpoint", 1000)
        .map_err(crate::db::DbError::from)?;
    let run = crate::crypto::new_id("run")[4..16].to_string();
    let started = Instant::now();
    let mut created = 0;
    while created < count {
        let size = batch.max(1).min(count - created);
        db::in_transaction(conn, |tx| {
            for n in created..created + size {
                create_ticket(tx, tenant_id, &sample(n, &run)?)?;
            }
            Ok::<_, ApiError>(())
        })?;
        created += size;
        progress(created);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Report {
        tenant_id: tenant_id.to_string(),
        created,
        seconds,
        tickets_per_second: created as f64 / seconds.max(1e-9),
    })
}
