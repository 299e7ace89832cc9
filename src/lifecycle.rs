//! The end of data: erasing a contact with everything of theirs, deleting a ticket
//! created by mistake, expiring closed tickets past retention.
//!
//! Each is one unit of work in one transaction that removes every copy of what it
//! erases: the rows (contact, tickets, tags, messages, actions with their payloads and
//! responses), the search documents, the data of the tickets' events (the events stay
//! in the feed as `{}` tombstones, so feed positions do not move) and the stored
//! answers of their `Idempotency-Key` requests. Each deleted ticket gets a
//! `ticket.deleted` event, and each erasure an audit record (counts and ids only).
//! With `secure_delete` on every connection, the freed bytes are zeroed in the file.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::accounts;
use crate::clock::Timestamp;
use crate::db::contacts::{self, Contact};
use crate::db::{actions, audit, events, idempotency, messages, tickets};
use crate::domain::erasure::ContactSelector;
use crate::domain::event::EventType;
use crate::error::ApiError;

/// Who asks for an erasure, as the audit log names them.
pub mod actor {
    /// The admin HTTP API.
    pub const ADMIN_API: &str = "admin_api";
    /// The admin console.
    pub const CONSOLE: &str = "console";
    /// The command line.
    pub const CLI: &str = "cli";
    /// The maintenance thread, applying `retention.closed_tickets_days`.
    pub const RETENTION: &str = "retention";
}

/// What an erasure removed, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    pub contacts: u64,
    pub tickets: u64,
    pub messages: u64,
    pub actions: u64,
    pub search_documents: u64,
    /// Events of the removed tickets whose data was emptied.
    pub events_cleared: u64,
    /// Stored answers of `Idempotency-Key` requests on the removed tickets.
    pub idempotency_answers: u64,
}

impl std::ops::AddAssign for Removed {
    fn add_assign(&mut self, other: Removed) {
        self.contacts += other.contacts;
        self.tickets += other.tickets;
        self.messages += other.messages;
        self.actions += other.actions;
        self.search_documents += other.search_documents;
        self.events_cleared += other.events_cleared;
        self.idempotency_answers += other.idempotency_answers;
    }
}

/// The answer to an erasure: its audit record's id and what it removed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Erasure {
    pub audit_id: String,
    pub tenant_id: String,
    /// The erased contact, if one was.
    pub contact_id: Option<String>,
    /// The deleted ticket, for a ticket deletion.
    pub ticket_id: Option<String>,
    pub removed: Removed,
}

/// Why a ticket went, as its `ticket.deleted` event says.
#[derive(Debug, Clone, Copy)]
enum Reason {
    Deleted,
    ContactErased,
    Expired,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Deleted => "deleted",
            Reason::ContactErased => "contact_erased",
            Reason::Expired => "expired",
        }
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Removes one ticket and every copy of its data, and writes its `ticket.deleted`
/// event. Returns what went and the ticket's contact, or `None` for no such ticket.
fn remove_ticket(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
    reason: Reason,
    now: Timestamp,
) -> Result<Option<(Removed, Option<String>)>, ApiError> {
    let Some(row) = tickets::get(conn, tenant_id, ticket_id)? else {
        return Ok(None);
    };
    // Its events first: the ticket's row leads to them. Then the ticket: its search
    // documents need its messages' text.
    let events_cleared = count(events::clear_ticket(conn, tenant_id, ticket_id)?);
    let search_documents = u64::try_from(tickets::delete(conn, &row)?).unwrap_or(0);
    let removed = Removed {
        tickets: 1,
        messages: count(messages::delete_of_ticket(conn, tenant_id, ticket_id)?),
        actions: count(actions::delete_of_ticket(conn, tenant_id, ticket_id)?),
        search_documents,
        events_cleared,
        idempotency_answers: count(idempotency::erase_ticket(conn, tenant_id, ticket_id)?),
        contacts: 0,
    };
    events::append(
        conn,
        tenant_id,
        EventType::TicketDeleted,
        Some(ticket_id),
        &json!({ "reason": reason.as_str() }),
        now,
    )?;
    Ok(Some((removed, row.contact_id)))
}

/// Deletes a contact that no ticket refers to any more; returns how many (0 or 1).
fn remove_orphan(
    conn: &Connection,
    tenant_id: &str,
    contact_id: Option<&str>,
) -> Result<u64, ApiError> {
    let Some(contact_id) = contact_id else {
        return Ok(0);
    };
    if !tickets::of_contact(conn, tenant_id, contact_id)?.is_empty() {
        return Ok(0);
    }
    Ok(u64::from(contacts::delete(conn, tenant_id, contact_id)?))
}

/// Writes the audit record of an erasure and returns the answer.
fn audited(
    conn: &Connection,
    tenant_id: &str,
    action: &str,
    actor: &str,
    subject: (Option<String>, Option<String>),
    removed: Removed,
    now: Timestamp,
) -> Result<Erasure, ApiError> {
    let (contact_id, ticket_id) = subject;
    let record = audit::Record {
        audit_id: audit::new_id(now),
        tenant_id: tenant_id.to_string(),
        action: action.to_string(),
        actor: actor.to_string(),
        subject_id: contact_id.clone().or_else(|| ticket_id.clone()),
        counts: serde_json::to_value(removed).map_err(ApiError::internal)?,
        created_at: now,
    };
    audit::insert(conn, &record)?;
    Ok(Erasure {
        audit_id: record.audit_id,
        tenant_id: tenant_id.to_string(),
        contact_id,
        ticket_id,
        removed,
    })
}

/// The tenant's contact that `selector` names, and how many tickets it has: what an
/// erasure would remove, for a confirmation step. 404 when there is none.
pub fn find_contact(
    conn: &Connection,
    tenant_id: &str,
    selector: &ContactSelector,
) -> Result<(Contact, usize), ApiError> {
    accounts::get_tenant(conn, tenant_id)?;
    let contact = contacts::find(conn, tenant_id, selector)?
        .ok_or_else(|| ApiError::not_found(selector.column(), "contact"))?;
    let tickets = tickets::of_contact(conn, tenant_id, &contact.contact_id)?.len();
    Ok((contact, tickets))
}

/// Erases a contact: the contact, all its tickets with their messages and actions,
/// and every copy of them. 404 when the tenant or the contact does not exist.
pub fn erase_contact(
    conn: &Connection,
    tenant_id: &str,
    selector: &ContactSelector,
    actor: &str,
) -> Result<Erasure, ApiError> {
    let (contact, _) = find_contact(conn, tenant_id, selector)?;
    let now = Timestamp::now();
    let mut removed = Removed::default();
    for ticket_id in tickets::of_contact(conn, tenant_id, &contact.contact_id)? {
        if let Some((gone, _)) =
            remove_ticket(conn, tenant_id, &ticket_id, Reason::ContactErased, now)?
        {
            removed += gone;
        }
    }
    removed.contacts = u64::from(contacts::delete(conn, tenant_id, &contact.contact_id)?);
    audited(
        conn,
        tenant_id,
        "contact.erased",
        actor,
        (Some(contact.contact_id), None),
        removed,
        now,
    )
}

/// Deletes one ticket (created by mistake) and every copy of it; its contact too when
/// no other ticket refers to it. 404 for an unknown or another tenant's ticket.
pub fn delete_ticket(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
    actor: &str,
) -> Result<Erasure, ApiError> {
    let now = Timestamp::now();
    let (mut removed, contact_id) =
        remove_ticket(conn, tenant_id, ticket_id, Reason::Deleted, now)?
            .ok_or_else(|| ApiError::not_found("ticket_id", "ticket"))?;
    removed.contacts = remove_orphan(conn, tenant_id, contact_id.as_deref())?;
    audited(
        conn,
        tenant_id,
        "ticket.deleted",
        actor,
        (None, Some(ticket_id.to_string())),
        removed,
        now,
    )
}

/// Expires the given tickets that are still closed since before `cutoff` (checked
/// again inside the transaction), with the contacts they leave without tickets; one
/// audit record for the batch. Returns what went.
pub fn expire_closed(
    conn: &Connection,
    tenant_id: &str,
    ticket_ids: &[String],
    cutoff: Timestamp,
) -> Result<Removed, ApiError> {
    let now = Timestamp::now();
    let mut removed = Removed::default();
    for ticket_id in ticket_ids {
        let still_expired = tickets::get(conn, tenant_id, ticket_id)?.is_some_and(|row| {
            row.summary.status == crate::domain::ticket::Status::Closed
                && row.summary.updated_at < cutoff
        });
        if !still_expired {
            continue;
        }
        if let Some((gone, contact_id)) =
            remove_ticket(conn, tenant_id, ticket_id, Reason::Expired, now)?
        {
            removed += gone;
            removed.contacts += remove_orphan(conn, tenant_id, contact_id.as_deref())?;
        }
    }
    if removed.tickets > 0 {
        audited(
            conn,
            tenant_id,
            "tickets.expired",
            actor::RETENTION,
            (None, None),
            removed,
            now,
        )?;
    }
    Ok(removed)
}
