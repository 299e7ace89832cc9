//! Tenant and key operations, shared by the CLI and the admin HTTP API. Each function
//! runs inside the caller's write transaction.

use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

use crate::auth::{hash_secret, new_key_secret};
use crate::clock::Timestamp;
use crate::crypto;
use crate::db::keys::{self, ApiKey};
use crate::db::tenants::{self, Tenant};
use crate::domain::tenant::{NewKey, NewTenant, TenantPatch};
use crate::error::ApiError;

/// Prefix of tenant signing secrets.
pub const SIGNING_SECRET_PREFIX: &str = "whsec_";

/// A tenant with its signing secret: only `tenant create` and the rotation show it.
#[derive(Debug, Clone, Serialize)]
pub struct TenantWithSecret {
    #[serde(flatten)]
    pub tenant: Tenant,
    pub signing_secret: String,
}

/// A key with its secret: only creation and rotation show it, once.
#[derive(Debug, Clone, Serialize)]
pub struct KeyWithSecret {
    #[serde(flatten)]
    pub key: ApiKey,
    pub api_key: String,
}

fn new_signing_secret() -> Result<String, ApiError> {
    crypto::random_secret(SIGNING_SECRET_PREFIX, 40).map_err(ApiError::internal)
}

fn tenant_not_found() -> ApiError {
    ApiError::not_found("tenant_id", "tenant")
}

fn key_not_found() -> ApiError {
    ApiError::not_found("key_id", "API key")
}

/// A new tenant with a fresh signing secret.
pub fn create_tenant(conn: &Connection, new: &NewTenant) -> Result<TenantWithSecret, ApiError> {
    let secret = new_signing_secret()?;
    let tenant = tenants::insert(conn, &crypto::new_id("ten"), new, &secret, Timestamp::now())?;
    Ok(TenantWithSecret {
        tenant,
        signing_secret: secret,
    })
}

/// The tenant, or 404.
pub fn get_tenant(conn: &Connection, tenant_id: &str) -> Result<Tenant, ApiError> {
    tenants::get(conn, tenant_id)?.ok_or_else(tenant_not_found)
}

/// Applies a patch to a tenant; 404 when it does not exist.
pub fn update_tenant(
    conn: &Connection,
    tenant_id: &str,
    patch: &TenantPatch,
) -> Result<Tenant, ApiError> {
    tenants::update(conn, tenant_id, patch, Timestamp::now())?.ok_or_else(tenant_not_found)
}

/// Replaces the signing secret at once; the new one is in the answer only.
pub fn rotate_signing_secret(
    conn: &Connection,
    tenant_id: &str,
) -> Result<TenantWithSecret, ApiError> {
    let secret = new_signing_secret()?;
    if !tenants::set_signing_secret(conn, tenant_id, &secret, Timestamp::now())? {
        return Err(tenant_not_found());
    }
    Ok(TenantWithSecret {
        tenant: get_tenant(conn, tenant_id)?,
        signing_secret: secret,
    })
}

/// A new key for an existing tenant; the secret is in the answer only.
pub fn create_key(
    conn: &Connection,
    tenant_id: &str,
    new: &NewKey,
) -> Result<KeyWithSecret, ApiError> {
    get_tenant(conn, tenant_id)?;
    let secret = new_key_secret().map_err(ApiError::internal)?;
    let now = Timestamp::now();
    let key = keys::insert(
        conn,
        tenant_id,
        &crypto::new_id("key"),
        &new.name,
        new.scopes,
        new.expires_in.map(|d| now.plus(d)),
        &hash_secret(&secret),
        now,
    )?;
    Ok(KeyWithSecret {
        key,
        api_key: secret,
    })
}

/// The tenant's keys, never their secrets; 404 for an unknown tenant.
pub fn list_keys(conn: &Connection, tenant_id: &str) -> Result<Vec<ApiKey>, ApiError> {
    get_tenant(conn, tenant_id)?;
    Ok(keys::list(conn, tenant_id)?)
}

/// Finds a key, within one tenant when `tenant_id` is given.
fn find_key(conn: &Connection, tenant_id: Option<&str>, key_id: &str) -> Result<ApiKey, ApiError> {
    let key = match tenant_id {
        Some(tenant_id) => keys::get(conn, tenant_id, key_id)?,
        None => keys::find(conn, key_id)?,
    };
    key.ok_or_else(key_not_found)
}

/// Gives a key a new secret; the previous one works for `grace`. A revoked key is a 409.
pub fn rotate_key(
    conn: &Connection,
    tenant_id: Option<&str>,
    key_id: &str,
    grace: Duration,
) -> Result<KeyWithSecret, ApiError> {
    let key = find_key(conn, tenant_id, key_id)?;
    if key.is_revoked() {
        return Err(
            ApiError::conflict("this API key is revoked and cannot be rotated")
                .with_param("key_id"),
        );
    }
    let secret = new_key_secret().map_err(ApiError::internal)?;
    keys::rotate(
        conn,
        &key.tenant_id,
        &key.key_id,
        &hash_secret(&secret),
        grace,
        Timestamp::now(),
    )?;
    Ok(KeyWithSecret {
        key,
        api_key: secret,
    })
}

/// Revokes a key: every secret of it stops working on the next request.
pub fn revoke_key(
    conn: &Connection,
    tenant_id: Option<&str>,
    key_id: &str,
) -> Result<ApiKey, ApiError> {
    let key = find_key(conn, tenant_id, key_id)?;
    keys::revoke(conn, &key.tenant_id, &key.key_id, Timestamp::now())?;
    find_key(conn, Some(&key.tenant_id), &key.key_id)
}
