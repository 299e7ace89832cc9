//! Tenants: who owns data, where their actions may go, and their signing secret.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use serde::Serialize;

use super::DbError;
use crate::clock::Timestamp;
use crate::domain::tenant::{ActionSettings, NewTenant, TenantPatch};

/// A tenant as listings show it (no signing secret).
#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    pub tenant_id: String,
    pub name: String,
    pub action_base_url: Option<String>,
    pub allowed_origins: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

const COLUMNS: &str = "tenant_id, name, action_base_url, allowed_origins, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Tenant> {
    let origins: String = row.get(3)?;
    Ok(Tenant {
        tenant_id: row.get(0)?,
        name: row.get(1)?,
        action_base_url: row.get(2)?,
        allowed_origins: serde_json::from_str(&origins).unwrap_or_default(),
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
    })
}

fn origins_json(origins: &[String]) -> String {
    serde_json::to_string(origins).unwrap_or_else(|_| "[]".into())
}

pub fn insert(
    conn: &Connection,
    tenant_id: &str,
    new: &NewTenant,
    signing_secret: &str,
    now: Timestamp,
) -> Result<Tenant, DbError> {
    conn.prepare_cached(
        "INSERT INTO tenants (tenant_id, name, action_base_url, allowed_origins, signing_secret,
                              created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?
    .execute(params![
        tenant_id,
        new.name,
        new.action_base_url,
        origins_json(&new.allowed_origins),
        signing_secret,
        now
    ])?;
    Ok(Tenant {
        tenant_id: tenant_id.to_string(),
        name: new.name.clone(),
        action_base_url: new.action_base_url.clone(),
        allowed_origins: new.allowed_origins.clone(),
        created_at: now,
        updated_at: now,
    })
}

pub fn get(conn: &Connection, tenant_id: &str) -> Result<Option<Tenant>, DbError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM tenants WHERE tenant_id = ?1"
        ))?
        .query_row([tenant_id], from_row)
        .optional()?)
}

pub fn list(conn: &Connection) -> Result<Vec<Tenant>, DbError> {
    let mut statement =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM tenants ORDER BY tenant_id"))?;
    let tenants = statement
        .query_map([], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(tenants)
}

/// The tenant `threada demo` created, if any.
pub fn find_demo(conn: &Connection) -> Result<Option<Tenant>, DbError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM tenants WHERE demo = 1 ORDER BY created_at LIMIT 1"
        ))?
        .query_row([], from_row)
        .optional()?)
}

/// Marks a tenant as created by `threada demo`.
pub fn mark_demo(conn: &Connection, tenant_id: &str) -> Result<(), DbError> {
    conn.prepare_cached("UPDATE tenants SET demo = 1 WHERE tenant_id = ?1")?
        .execute([tenant_id])?;
    Ok(())
}

/// How many tenants `threada demo` did not create.
pub fn count_not_demo(conn: &Connection) -> Result<u64, DbError> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM tenants WHERE demo = 0")?
        .query_row([], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// `count_not_demo` on a database file, read-only and without migrating it (a file
/// older than the demo mark counts every tenant). 0 when the file does not exist.
pub fn count_not_demo_in(path: &Path) -> Result<u64, String> {
    if !path.exists() {
        return Ok(0);
    }
    let describe = |e: rusqlite::Error| format!("database {}: {e}", path.display());
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(describe)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(describe)?;
    let sql = match version {
        0 => return Ok(0),
        1 => "SELECT count(*) FROM tenants",
        _ => "SELECT count(*) FROM tenants WHERE demo = 0",
    };
    let count: i64 = conn
        .query_row(sql, [], |row| row.get(0))
        .map_err(describe)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Applies a patch; `None` when the tenant does not exist.
pub fn update(
    conn: &Connection,
    tenant_id: &str,
    patch: &TenantPatch,
    now: Timestamp,
) -> Result<Option<Tenant>, DbError> {
    let Some(mut tenant) = get(conn, tenant_id)? else {
        return Ok(None);
    };
    if let Some(name) = &patch.name {
        tenant.name = name.clone();
    }
    if let Some(base) = &patch.action_base_url {
        tenant.action_base_url = base.clone();
    }
    if let Some(origins) = &patch.allowed_origins {
        tenant.allowed_origins = origins.clone();
    }
    tenant.updated_at = now;
    conn.prepare_cached(
        "UPDATE tenants SET name = ?2, action_base_url = ?3, allowed_origins = ?4, updated_at = ?5
         WHERE tenant_id = ?1",
    )?
    .execute(params![
        tenant_id,
        tenant.name,
        tenant.action_base_url,
        origins_json(&tenant.allowed_origins),
        now
    ])?;
    Ok(Some(tenant))
}

/// Replaces the signing secret; false when the tenant does not exist.
pub fn set_signing_secret(
    conn: &Connection,
    tenant_id: &str,
    secret: &str,
    now: Timestamp,
) -> Result<bool, DbError> {
    let changed = conn
        .prepare_cached(
            "UPDATE tenants SET signing_secret = ?2, updated_at = ?3 WHERE tenant_id = ?1",
        )?
        .execute(params![tenant_id, secret, now])?;
    Ok(changed == 1)
}

/// What an action of this tenant needs: base URL, allowed origins, signing secret.
pub fn action_settings(
    conn: &Connection,
    tenant_id: &str,
) -> Result<Option<ActionSettings>, DbError> {
    Ok(conn
        .prepare_cached(
            "SELECT action_base_url, allowed_origins, signing_secret, demo FROM tenants
             WHERE tenant_id = ?1",
        )?
        .query_row([tenant_id], |row| {
            let origins: String = row.get(1)?;
            Ok(ActionSettings {
                action_base_url: row.get(0)?,
                allowed_origins: serde_json::from_str(&origins).unwrap_or_default(),
                signing_secret: row.get(2)?,
                demo: row.get(3)?,
            })
        })
        .optional()?)
}

/// Every tenant id (for maintenance that walks tenants one by one).
pub fn ids(conn: &Connection) -> Result<Vec<String>, DbError> {
    let mut statement = conn.prepare_cached("SELECT tenant_id FROM tenants")?;
    let ids = statement
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}
