//! Tenant settings and API key requests, shared by the CLI and the admin API.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::scope::Scopes;
use super::{line, nullable, present, required};
use crate::clock::parse_duration;
use crate::error::ApiError;

/// Longest tenant name.
pub const MAX_TENANT_NAME_CHARS: usize = 200;
/// Longest key name.
pub const MAX_KEY_NAME_CHARS: usize = 200;
/// Most allowed origins a tenant may list.
pub const MAX_ALLOWED_ORIGINS: usize = 20;
/// How long a rotated-out secret keeps working unless told otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

/// A tenant's or key's display name: trimmed, 1–200 characters, one line.
pub fn parse_name(raw: &str, param: &str, max: usize) -> Result<String, ApiError> {
    Ok(line(raw, param, max)?.to_string())
}

/// The base URL that relative action URLs are joined to: absolute http(s), no
/// userinfo, query or fragment. Normalised, without a trailing slash.
pub fn parse_base_url(raw: &str, param: &str) -> Result<String, ApiError> {
    let url = parse_http_url(raw, param)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ApiError::invalid(
            param,
            format!("{param} must not have a query or fragment"),
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// An origin (`scheme://host[:port]`) that absolute action URLs may target.
pub fn parse_origin(raw: &str, param: &str) -> Result<String, ApiError> {
    let url = parse_http_url(raw, param)?;
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(ApiError::invalid(
            param,
            format!("{param}: {raw:?} must be an origin such as https://hooks.example.com"),
        ));
    }
    Ok(url.origin().ascii_serialization())
}

fn parse_http_url(raw: &str, param: &str) -> Result<Url, ApiError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| ApiError::invalid(param, format!("{param}: not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::invalid(
            param,
            format!("{param} must use http or https"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::invalid(
            param,
            format!("{param} must not contain a user name or password"),
        ));
    }
    if url.host().is_none() {
        return Err(ApiError::invalid(param, format!("{param} needs a host")));
    }
    Ok(url)
}

/// Parses and de-duplicates allowed origins.
pub fn parse_origins(raw: &[String], param: &str) -> Result<Vec<String>, ApiError> {
    if raw.len() > MAX_ALLOWED_ORIGINS {
        return Err(ApiError::invalid(
            param,
            format!("{param} may hold at most {MAX_ALLOWED_ORIGINS} origins"),
        ));
    }
    let mut origins: Vec<String> = Vec::with_capacity(raw.len());
    for origin in raw {
        let origin = parse_origin(origin, param)?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
}

/// What running an action needs to know about its tenant.
#[derive(Debug, Clone)]
pub struct ActionSettings {
    pub action_base_url: Option<String>,
    pub allowed_origins: Vec<String>,
    pub signing_secret: String,
    /// Created by `threada demo`: may reach the demo's own receiver.
    pub demo: bool,
}

/// A new tenant, parsed.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub name: String,
    pub action_base_url: Option<String>,
    pub allowed_origins: Vec<String>,
}

/// A tenant body as sent (create and patch).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenantBody {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub action_base_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub allowed_origins: Option<Vec<String>>,
}

impl TryFrom<NewTenantBody> for NewTenant {
    type Error = ApiError;

    fn try_from(body: NewTenantBody) -> Result<NewTenant, ApiError> {
        Ok(NewTenant {
            name: parse_name(&required(body.name, "name")?, "name", MAX_TENANT_NAME_CHARS)?,
            action_base_url: body
                .action_base_url
                .flatten()
                .map(|u| parse_base_url(&u, "action_base_url"))
                .transpose()?,
            allowed_origins: parse_origins(
                body.allowed_origins.as_deref().unwrap_or_default(),
                "allowed_origins",
            )?,
        })
    }
}

/// Changes to a tenant; `action_base_url: Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct TenantPatch {
    pub name: Option<String>,
    pub action_base_url: Option<Option<String>>,
    pub allowed_origins: Option<Vec<String>>,
}

impl TenantPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.action_base_url.is_none() && self.allowed_origins.is_none()
    }
}

impl TryFrom<NewTenantBody> for TenantPatch {
    type Error = ApiError;

    fn try_from(body: NewTenantBody) -> Result<TenantPatch, ApiError> {
        let patch = TenantPatch {
            name: body
                .name
                .map(|n| parse_name(&n, "name", MAX_TENANT_NAME_CHARS))
                .transpose()?,
            action_base_url: body
                .action_base_url
                .map(|u| u.map(|u| parse_base_url(&u, "action_base_url")).transpose())
                .transpose()?,
            allowed_origins: body
                .allowed_origins
                .map(|o| parse_origins(&o, "allowed_origins"))
                .transpose()?,
        };
        if patch.is_empty() {
            return Err(ApiError::new(
                crate::error::ErrorKind::InvalidRequest,
                "the body changes nothing; send name, action_base_url or allowed_origins",
            ));
        }
        Ok(patch)
    }
}

/// A new API key, parsed.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub scopes: Scopes,
    pub expires_in: Option<Duration>,
}

/// A key body as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub expires_in: Option<String>,
}

impl TryFrom<NewKeyBody> for NewKey {
    type Error = ApiError;

    fn try_from(body: NewKeyBody) -> Result<NewKey, ApiError> {
        let scopes = required(body.scopes, "scopes")?;
        Ok(NewKey {
            name: parse_name(&required(body.name, "name")?, "name", MAX_KEY_NAME_CHARS)?,
            scopes: Scopes::parse_list(scopes.iter().map(String::as_str), "scopes")?,
            expires_in: body
                .expires_in
                .map(|d| parse_expiry(&d, "expires_in"))
                .transpose()?,
        })
    }
}

/// `--expires-in` / `expires_in`: a duration of at least one second.
pub fn parse_expiry(raw: &str, param: &str) -> Result<Duration, ApiError> {
    let duration = parse_duration(raw).map_err(|e| ApiError::invalid(param, e))?;
    if duration.is_zero() {
        return Err(ApiError::invalid(
            param,
            format!("{param} must be positive"),
        ));
    }
    Ok(duration)
}

/// `--grace` / `grace`: how long the previous secret keeps working (0s allowed).
pub fn parse_grace(raw: &str, param: &str) -> Result<Duration, ApiError> {
    parse_duration(raw).map_err(|e| ApiError::invalid(param, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised() {
        assert_eq!(
            parse_base_url("http://127.0.0.1:8080/demo/", "u").unwrap(),
            "http://127.0.0.1:8080/demo"
        );
        assert_eq!(
            parse_base_url("HTTPS://Hooks.Example.com", "u").unwrap(),
            "https://hooks.example.com"
        );
        for bad in [
            "ftp://x.com",
            "http://user:pw@x.com",
            "/relative",
            "http://x.com/?q=1",
            "javascript:alert(1)",
        ] {
            assert!(parse_base_url(bad, "u").is_err(), "{bad}");
        }
    }

    #[test]
    fn origins() {
        assert_eq!(
            parse_origin("https://hooks.example.com:443", "o").unwrap(),
            "https://hooks.example.com"
        );
        assert_eq!(
            parse_origin("http://localhost:9000/", "o").unwrap(),
            "http://localhost:9000"
        );
        assert!(parse_origin("https://hooks.example.com/path", "o").is_err());
    }
}
