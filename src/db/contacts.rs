//! Contacts: the people tickets come from, reused per tenant by email, phone or
//! external id (in that order).

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::DbError;
use crate::clock::Timestamp;
use crate::crypto;
use crate::domain::erasure::ContactSelector;
use crate::domain::ticket::ContactInput;

/// A contact as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub contact_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
}

const COLUMNS: &str = "contact_id, name, email, phone, external_id";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Contact> {
    Ok(Contact {
        contact_id: row.get(0)?,
        name: row.get(1)?,
        email: row.get(2)?,
        phone: row.get(3)?,
        external_id: row.get(4)?,
    })
}

pub fn get(
    conn: &Connection,
    tenant_id: &str,
    contact_id: &str,
) -> Result<Option<Contact>, DbError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM contacts WHERE tenant_id = ?1 AND contact_id = ?2"
        ))?
        .query_row([tenant_id, contact_id], from_row)
        .optional()?)
}

fn find_by(
    conn: &Connection,
    tenant_id: &str,
    column: &str,
    value: Option<&str>,
) -> Result<Option<Contact>, DbError> {
    let Some(value) = value else { return Ok(None) };
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM contacts WHERE tenant_id = ?1 AND {column} = ?2"
        ))?
        .query_row([tenant_id, value], from_row)
        .optional()?)
}

/// Returns the tenant's contact matching the input (by email, else phone, else
/// external id), filling in fields it lacked, or creates one. Existing values are
/// kept; an identifier already held by another contact is not copied over.
pub fn upsert(
    conn: &Connection,
    tenant_id: &str,
    input: &ContactInput,
    now: Timestamp,
) -> Result<Contact, DbError> {
    let by_email = find_by(conn, tenant_id, "email", input.email.as_deref())?;
    let by_phone = find_by(conn, tenant_id, "phone", input.phone.as_deref())?;
    let by_external = find_by(conn, tenant_id, "external_id", input.external_id.as_deref())?;
    let Some(found) = by_email
        .clone()
        .or_else(|| by_phone.clone())
        .or_else(|| by_external.clone())
    else {
        let contact = Contact {
            contact_id: crypto::new_id("ctc"),
            name: input.name.clone(),
            email: input.email.clone(),
            phone: input.phone.clone(),
            external_id: input.external_id.clone(),
        };
        conn.prepare_cached(
            "INSERT INTO contacts (tenant_id, contact_id, name, email, phone, external_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            tenant_id,
            contact.contact_id,
            contact.name,
            contact.email,
            contact.phone,
            contact.external_id,
            now
        ])?;
        return Ok(contact);
    };
    let free = |other: &Option<Contact>| other.is_none();
    let mut updated = found.clone();
    if updated.name.is_none() {
        updated.name = input.name.clone();
    }
    if updated.email.is_none() && free(&by_email) {
        updated.email = input.email.clone();
    }
    if updated.phone.is_none() && free(&by_phone) {
        updated.phone = input.phone.clone();
    }
    if updated.external_id.is_none() && free(&by_external) {
        updated.external_id = input.external_id.clone();
    }
    if updated != found {
        conn.prepare_cached(
            "UPDATE contacts SET name = ?3, email = ?4, phone = ?5, external_id = ?6
             WHERE tenant_id = ?1 AND contact_id = ?2",
        )?
        .execute(params![
            tenant_id,
            updated.contact_id,
            updated.name,
            updated.email,
            updated.phone,
            updated.external_id
        ])?;
    }
    Ok(updated)
}

/// The tenant's contact that `selector` names.
pub fn find(
    conn: &Connection,
    tenant_id: &str,
    selector: &ContactSelector,
) -> Result<Option<Contact>, DbError> {
    // The column comes from a closed set.
    find_by(conn, tenant_id, selector.column(), Some(selector.value()))
}

/// Deletes a contact; returns whether it existed.
pub fn delete(conn: &Connection, tenant_id: &str, contact_id: &str) -> Result<bool, DbError> {
    Ok(conn
        .prepare_cached("DELETE FROM contacts WHERE tenant_id = ?1 AND contact_id = ?2")?
        .execute([tenant_id, contact_id])?
        > 0)
}
