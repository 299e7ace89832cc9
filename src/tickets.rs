//! Units of work on tickets. Each runs inside one write transaction (a writer job on
//! the server, `db::in_transaction` in the CLI) and returns what the API answers.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::Timestamp;
use crate::db::contacts::Contact;
use crate::db::messages::{self, Message, NewRow};
use crate::db::tickets::{self, TicketSummary, TicketView};
use crate::db::{contacts, events, is_unique_violation};
use crate::domain::event::EventType;
use crate::domain::ticket::{MAX_TAGS, NewMessage, NewTicket, Role, Status, TicketPatch};
use crate::error::ApiError;
use crate::idempotency::OfTicket;

/// `{"ticket": {...}}`
#[derive(Debug, Serialize, Deserialize)]
pub struct TicketEnvelope {
    pub ticket: TicketView,
}

impl TicketEnvelope {
    /// What a key without `support.read` sees of the ticket it just created: what it
    /// sent plus ids, status and timestamps. The summary; the contact with only the
    /// fields it sent (a reused contact's stored name, phone or external id stay
    /// hidden); its own first message.
    pub fn as_written(mut self, sent: &NewTicket) -> TicketEnvelope {
        let ticket = &mut self.ticket;
        ticket.contact = match (ticket.contact.take(), &sent.contact) {
            (Some(stored), Some(sent)) => Some(Contact {
                contact_id: stored.contact_id,
                name: sent.name.clone(),
                email: sent.email.clone(),
                phone: sent.phone.clone(),
                external_id: sent.external_id.clone(),
            }),
            _ => None,
        };
        ticket.messages.truncate(1);
        ticket.has_more_messages = false;
        self
    }
}

/// `{"ticket": {"summary": {...}}}`: what a key without `support.read` sees of a
/// ticket it changed.
#[derive(Debug, Serialize)]
pub struct SummaryEnvelope {
    pub ticket: SummaryOnly,
}

/// The `ticket` of a `SummaryEnvelope`.
#[derive(Debug, Serialize)]
pub struct SummaryOnly {
    pub summary: TicketSummary,
}

/// The answer to a change: the whole ticket for a key that may read it, else its
/// summary.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Changed {
    Full(TicketEnvelope),
    Summary(SummaryEnvelope),
}

impl OfTicket for TicketEnvelope {
    fn ticket_id(&self) -> &str {
        &self.ticket.summary.ticket_id
    }
}

/// The `data` of a ticket's event, serialised straight into the outbox:
/// `{"ticket"}`, `{"message"}` or `{"ticket", "changes"}`.
#[derive(Serialize)]
struct EventData<'a, T: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket: Option<&'a T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<&'a serde_json::Map<String, Value>>,
}

/// `{"message": {...}}`
#[derive(Debug, Serialize)]
pub struct MessageEnvelope {
    pub message: Message,
}

impl OfTicket for MessageEnvelope {
    fn ticket_id(&self) -> &str {
        &self.message.ticket_id
    }
}

fn ticket_not_found() -> ApiError {
    ApiError::not_found("ticket_id", "ticket")
}

fn ticket_closed() -> ApiError {
    ApiError::conflict("this ticket is closed; a closed ticket cannot change")
        .with_param("ticket_id")
}

/// The ticket with its contact and first messages; 404 for another tenant's or an
/// unknown id.
pub fn view(conn: &Connection, tenant_id: &str, ticket_id: &str) -> Result<TicketView, ApiError> {
    tickets::view(conn, tenant_id, ticket_id)?.ok_or_else(ticket_not_found)
}

/// Creates a ticket with its contact (reused when known) and first message, its
/// search documents, and its `ticket.created` event.
pub fn create_ticket(
    conn: &Connection,
    tenant_id: &str,
    new: &NewTicket,
) -> Result<TicketView, ApiError> {
    let now = Timestamp::now();
    let contact = new
        .contact
        .as_ref()
        .map(|c| contacts::upsert(conn, tenant_id, c, now))
        .transpose()?;
    let row = tickets::insert(
        conn,
        tenant_id,
        new,
        contact.as_ref().map(|c| c.contact_id.as_str()),
        now,
    )?;
    let summary = row.summary;
    let first = &new.initial_message;
    let message = insert_message(
        conn,
        tenant_id,
        NewRow {
            ticket_id: &summary.ticket_id,
            search: (row.search_key, 1),
            role: first.role,
            content: &first.content,
            channel: summary.channel,
            external_message_id: first.external_message_id.as_deref(),
        },
        now,
        "initial_message.external_message_id",
    )?;
    let view = TicketView {
        summary,
        contact,
        messages: vec![message],
        has_more_messages: false,
    };
    events::append(
        conn,
        tenant_id,
        EventType::TicketCreated,
        Some(&view.summary.ticket_id),
        &EventData {
            ticket: Some(&view),
            message: None,
            changes: None,
        },
        now,
    )?;
    Ok(view)
}

/// Inserts a message; a duplicate external id is a 409 naming the message that has it.
fn insert_message(
    conn: &Connection,
    tenant_id: &str,
    new: NewRow<'_>,
    now: Timestamp,
    param: &str,
) -> Result<Message, ApiError> {
    match messages::insert(conn, tenant_id, new, now) {
        Ok(message) => Ok(message),
        Err(error) if is_unique_violation(&error) => {
            let external = new.external_message_id.unwrap_or_default();
            let Some((ticket_id, message_id)) = messages::find_external(conn, tenant_id, external)?
            else {
                return Err(error.into());
            };
            Err(ApiError::conflict(format!(
                "external_message_id is already used by message {message_id} on ticket {ticket_id}"
            ))
            .with_param(param)
            .with_detail("ticket_id", ticket_id)
            .with_detail("message_id", message_id))
        }
        Err(error) => Err(error.into()),
    }
}

/// Adds a message: moves `last_message_at` and `updated_at`, and a customer (`user`)
/// message reopens a pending or resolved ticket. Closed tickets answer 409.
pub fn add_message(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
    new: &NewMessage,
) -> Result<Message, ApiError> {
    let row = tickets::get(conn, tenant_id, ticket_id)?.ok_or_else(ticket_not_found)?;
    let mut summary = row.summary.clone();
    if summary.status == Status::Closed {
        return Err(ticket_closed());
    }
    let now = Timestamp::now();
    let number = row.message_count + 1;
    let message = insert_message(
        conn,
        tenant_id,
        NewRow {
            ticket_id,
            search: (row.search_key, number),
            role: new.role,
            content: &new.content,
            channel: new.channel.unwrap_or(summary.channel),
            external_message_id: new.external_message_id.as_deref(),
        },
        now,
        "external_message_id",
    )?;
    summary.last_message_at = now;
    summary.updated_at = now;
    if new.role == Role::User && matches!(summary.status, Status::Pending | Status::Resolved) {
        summary.status = Status::Open;
    }
    tickets::save(conn, &row, &summary, number)?;
    events::append(
        conn,
        tenant_id,
        EventType::MessageCreated,
        Some(ticket_id),
        &EventData::<()> {
            ticket: None,
            message: Some(&message),
            changes: None,
        },
        now,
    )?;
    announce_changes(conn, &row.summary, &summary, now)?;
    Ok(message)
}

/// Writes a `ticket.updated` event naming the fields that changed (subject, status,
/// priority, tags), if any did.
fn announce_changes(
    conn: &Connection,
    before: &TicketSummary,
    after: &TicketSummary,
    now: Timestamp,
) -> Result<(), ApiError> {
    let mut changes = serde_json::Map::new();
    let mut note = |field: &str, from: Value, to: Value| {
        if from != to {
            changes.insert(field.to_string(), json!({ "from": from, "to": to }));
        }
    };
    note("subject", json!(before.subject), json!(after.subject));
    note("status", json!(before.status), json!(after.status));
    note("priority", json!(before.priority), json!(after.priority));
    note("tags", json!(before.tags), json!(after.tags));
    if changes.is_empty() {
        return Ok(());
    }
    events::append(
        conn,
        &after.tenant_id,
        EventType::TicketUpdated,
        Some(&after.ticket_id),
        &EventData {
            ticket: Some(after),
            message: None,
            changes: Some(&changes),
        },
        now,
    )?;
    Ok(())
}

/// Applies a PATCH and answers with what `can_read` allows: the whole ticket, or
/// only its summary.
pub fn update(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
    patch: &TicketPatch,
    can_read: bool,
) -> Result<Changed, ApiError> {
    let summary = update_ticket(conn, tenant_id, ticket_id, patch)?;
    if !can_read {
        return Ok(Changed::Summary(SummaryEnvelope {
            ticket: SummaryOnly { summary },
        }));
    }
    let ticket = view(conn, tenant_id, ticket_id)?;
    Ok(Changed::Full(TicketEnvelope { ticket }))
}

/// Applies a PATCH. A closed ticket is final: any change is a 409.
pub fn update_ticket(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
    patch: &TicketPatch,
) -> Result<TicketSummary, ApiError> {
    let row = tickets::get(conn, tenant_id, ticket_id)?.ok_or_else(ticket_not_found)?;
    let mut summary = row.summary.clone();
    if summary.status == Status::Closed {
        return Err(ticket_closed());
    }
    if let Some(subject) = &patch.subject {
        summary.subject = subject.clone();
    }
    if let Some(status) = patch.status {
        summary.status = status;
    }
    if let Some(priority) = patch.priority {
        summary.priority = priority;
    }
    if let Some(tags) = &patch.tags {
        summary.tags = tags.clone();
    }
    summary.tags.retain(|t| !patch.remove_tags.contains(t));
    for tag in &patch.add_tags {
        if !summary.tags.contains(tag) {
            summary.tags.push(tag.clone());
        }
    }
    if summary.tags.len() > MAX_TAGS {
        // The request is well formed; it is the ticket that would end up over the limit.
        return Err(ApiError::conflict(format!(
            "a ticket may hold at most {MAX_TAGS} tags; this change would leave it with {}",
            summary.tags.len()
        ))
        .with_param("add_tags"));
    }
    let now = Timestamp::now();
    summary.updated_at = now;
    tickets::save(conn, &row, &summary, row.message_count)?;
    announce_changes(conn, &row.summary, &summary, now)?;
    Ok(summary)
}
