//! API keys and the SHA-256 digests of their secrets.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::DbError;
use crate::clock::Timestamp;
use crate::domain::scope::Scopes;

/// A key as listings show it. The secret is never stored, so never shown here.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    pub key_id: String,
    pub tenant_id: String,
    pub name: String,
    pub scopes: Scopes,
    pub status: &'static str,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl ApiKey {
    pub fn is_revoked(&self) -> bool {
        self.status == "revoked"
    }
}

/// What authentication needs for one secret.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub tenant_id: String,
    pub key_id: String,
    pub scopes: Scopes,
    pub revoked: bool,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    /// Set for a previous secret whose grace period ends then.
    pub secret_expires_at: Option<Timestamp>,
}

const COLUMNS: &str = "key_id, tenant_id, name, scopes, status, created_at, expires_at,
                       last_used_at, revoked_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    let scopes: String = row.get(3)?;
    let status: String = row.get(4)?;
    Ok(ApiKey {
        key_id: row.get(0)?,
        tenant_id: row.get(1)?,
        name: row.get(2)?,
        scopes: Scopes::from_stored(&scopes),
        status: if status == "active" {
            "active"
        } else {
            "revoked"
        },
        created_at: row.get(5)?,
        expires_at: row.get(6)?,
        last_used_at: row.get(7)?,
        revoked_at: row.get(8)?,
    })
}

/// Looks a secret's digest up. This is the one lookup that cannot be tenant-scoped:
/// the key is what names the tenant.
pub fn authenticate(
    conn: &Connection,
    secret_hash: &[u8; 32],
) -> Result<Option<KeyRecord>, DbError> {
    Ok(conn
        .prepare_cached(
            "SELECT k.tenant_id, k.key_id, k.scopes, k.status, k.expires_at, k.last_used_at,
                    s.expires_at
             FROM api_key_secrets s
             JOIN api_keys k ON k.tenant_id = s.tenant_id AND k.key_id = s.key_id
             WHERE s.secret_hash = ?1",
        )?
        .query_row([&secret_hash[..]], |row| {
            let scopes: String = row.get(2)?;
            let status: String = row.get(3)?;
            Ok(KeyRecord {
                tenant_id: row.get(0)?,
                key_id: row.get(1)?,
                scopes: Scopes::from_stored(&scopes),
                revoked: status != "active",
                expires_at: row.get(4)?,
                last_used_at: row.get(5)?,
                secret_expires_at: row.get(6)?,
            })
        })
        .optional()?)
}

/// Inserts a key and the digest of its first secret.
#[allow(clippy::too_many_arguments)]
pub fn insert(
    conn: &Connection,
    tenant_id: &str,
    key_id: &str,
    name: &str,
    scopes: Scopes,
    expires_at: Option<Timestamp>,
    secret_hash: &[u8; 32],
    now: Timestamp,
) -> Result<ApiKey, DbError> {
    conn.prepare_cached(
        "INSERT INTO api_keys (tenant_id, key_id, name, scopes, status, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?6)",
    )?
    .execute(params![
        tenant_id,
        key_id,
        name,
        scopes.to_stored(),
        now,
        expires_at
    ])?;
    insert_secret(conn, tenant_id, key_id, secret_hash)?;
    Ok(ApiKey {
        key_id: key_id.to_string(),
        tenant_id: tenant_id.to_string(),
        name: name.to_string(),
        scopes,
        status: "active",
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    })
}

fn insert_secret(
    conn: &Connection,
    tenant_id: &str,
    key_id: &str,
    secret_hash: &[u8; 32],
) -> Result<(), DbError> {
    conn.prepare_cached(
        "INSERT INTO api_key_secrets (secret_hash, tenant_id, key_id, expires_at)
         VALUES (?1, ?2, ?3, NULL)",
    )?
    .execute(params![&secret_hash[..], tenant_id, key_id])?;
    Ok(())
}

pub fn list(conn: &Connection, tenant_id: &str) -> Result<Vec<ApiKey>, DbError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = ?1 ORDER BY key_id"
    ))?;
    let keys = statement
        .query_map([tenant_id], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(keys)
}

pub fn get(conn: &Connection, tenant_id: &str, key_id: &str) -> Result<Option<ApiKey>, DbError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = ?1 AND key_id = ?2"
        ))?
        .query_row([tenant_id, key_id], from_row)
        .optional()?)
}

/// Finds a key by id alone (the CLI's `key rotate KEY_ID`). Key ids are random, so
/// they are unique across tenants; the table is small, so a scan is fine.
pub fn find(conn: &Connection, key_id: &str) -> Result<Option<ApiKey>, DbError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM api_keys WHERE key_id = ?1"))?
        .query_row([key_id], from_row)
        .optional()?)
}

/// Gives the key a new current secret. The previous secrets keep working until
/// `now + grace` (or until their own, earlier, end); with a zero grace they stop now.
pub fn rotate(
    conn: &Connection,
    tenant_id: &str,
    key_id: &str,
    new_hash: &[u8; 32],
    grace: Duration,
    now: Timestamp,
) -> Result<(), DbError> {
    let until = now.plus(grace);
    conn.prepare_cached(
        "DELETE FROM api_key_secrets
         WHERE tenant_id = ?1 AND key_id = ?2 AND expires_at IS NOT NULL AND expires_at <= ?3",
    )?
    .execute(params![tenant_id, key_id, now])?;
    if grace.is_zero() {
        conn.prepare_cached("DELETE FROM api_key_secrets WHERE tenant_id = ?1 AND key_id = ?2")?
            .execute(params![tenant_id, key_id])?;
    } else {
        conn.prepare_cached(
            "UPDATE api_key_secrets SET expires_at = min(coalesce(expires_at, ?3), ?3)
             WHERE tenant_id = ?1 AND key_id = ?2",
        )?
        .execute(params![tenant_id, key_id, until])?;
    }
    insert_secret(conn, tenant_id, key_id, new_hash)
}

/// Revokes a key: every secret of it stops working at once. The digests stay, so
/// that a revoked key is told apart from an unknown one.
pub fn revoke(
    conn: &Connection,
    tenant_id: &str,
    key_id: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    conn.prepare_cached(
        "UPDATE api_keys SET status = 'revoked', revoked_at = coalesce(revoked_at, ?3)
         WHERE tenant_id = ?1 AND key_id = ?2",
    )?
    .execute(params![tenant_id, key_id, now])?;
    Ok(())
}

/// Records use, at most once per `resolution` microseconds.
pub fn touch(
    conn: &Connection,
    tenant_id: &str,
    key_id: &str,
    now: Timestamp,
    resolution_micros: i64,
) -> Result<(), DbError> {
    conn.prepare_cached(
        "UPDATE api_keys SET last_used_at = ?3
         WHERE tenant_id = ?1 AND key_id = ?2
           AND (last_used_at IS NULL OR last_used_at <= ?3 - ?4)",
    )?
    .execute(params![tenant_id, key_id, now, resolution_micros])?;
    Ok(())
}

/// Deletes one tenant's previous secrets whose grace period is over.
pub fn purge_expired_secrets(
    conn: &Connection,
    tenant_id: &str,
    now: Timestamp,
) -> Result<usize, DbError> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM api_key_secrets
             WHERE tenant_id = ?1 AND expires_at IS NOT NULL AND expires_at <= ?2",
        )?
        .execute(params![tenant_id, now])?)
}
