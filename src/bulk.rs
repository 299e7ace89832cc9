//! `threada bulk-load`: fills a tenant with generated tickets for benchmarks, through
//! the same parsing and the same unit of work as `POST /tickets`, in large
//! transactions (one fsync per batch).

use std::time::Instant;

use clap::Args;
use serde_json::json;

use crate::cli::CliError;
use crate::config::Config;
use crate::db;
use crate::domain::ticket::{NewTicket, NewTicketBody};
use crate::error::ApiError;
use crate::tickets::create_ticket;

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

const CHANNELS: [&str; 5] = ["email", "chat", "web", "sms", "whatsapp"];
const PRIORITIES: [&str; 4] = ["low", "normal", "normal", "high"];

/// The seed's create body, varied by `n` (a tenth of the contacts repeat).
fn sample(n: u64, run: &str) -> Result<NewTicket, ApiError> {
    let body: NewTicketBody = serde_json::from_value(json!({
        "subject": format!("Order question #{n}"),
        "priority": PRIORITIES[(n % 4) as usize],
        "channel": CHANNELS[(n % 5) as usize],
        "contact": {"name": format!("Customer {}", n % 100_000), "email": format!("customer{}@example.com", n % 100_000)},
        "tags": ["returns", if n.is_multiple_of(3) { "vip" } else { "standard" }],
        "initial_message": {"role": "user", "content": "Hello, my order has not arrived yet. Could you check where it is? Thanks",
                            "external_message_id": format!("bulk-{run}-{n}")}
    }))
    .map_err(ApiError::internal)?;
    NewTicket::try_from(body)
}

#[derive(serde::Serialize)]
struct Report {
    tenant_id: String,
    created: u64,
    seconds: f64,
    tickets_per_second: f64,
}

pub fn run(config: &Config, load: &BulkLoad, json: bool) -> Result<(), CliError> {
    let conn = db::open_connection(&config.database)?;
    crate::accounts::get_tenant(&conn, &load.tenant)?;
    let run = crate::crypto::new_id("run")[4..16].to_string();
    let started = Instant::now();
    let mut created = 0;
    while created < load.count {
        let batch = load.batch.max(1).min(load.count - created);
        db::in_transaction(&conn, |tx| {
            for n in created..created + batch {
                create_ticket(tx, &load.tenant, &sample(n, &run)?)?;
            }
            Ok::<_, ApiError>(())
        })?;
        created += batch;
        if !json && created.is_multiple_of(100_000) {
            eprintln!("{created} tickets");
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let report = Report {
        tenant_id: load.tenant.clone(),
        created,
        seconds,
        tickets_per_second: created as f64 / seconds.max(1e-9),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| CliError(e.to_string()))?
        );
    } else {
        println!(
            "created {created} tickets in {seconds:.1} s ({:.0}/s)",
            report.tickets_per_second
        );
    }
    Ok(())
}
