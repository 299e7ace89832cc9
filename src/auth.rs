//! API keys: their format, hashing, scopes, and turning `X-Api-Key` into the caller.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use rusqlite::Connection;

use crate::clock::Timestamp;
use crate::crypto;
use crate::db::{self, Writer};
use crate::domain::scope::{Scope, Scopes};
use crate::error::ApiError;
use crate::ratelimit::{RateInfo, RateLimiter};

/// Prefix of every API key secret.
pub const KEY_PREFIX: &str = "thr_";
/// Random base62 characters after the prefix (43 × log2(62) ≈ 256 bits).
pub const KEY_RANDOM_CHARS: usize = 43;
/// `last_used_at` is written at most this often per key.
const LAST_USED_RESOLUTION_MICROS: i64 = 60_000_000;

/// A new secret: `thr_` + 43 base62 characters from the OS RNG.
pub fn new_key_secret() -> std::io::Result<String> {
    crypto::random_secret(KEY_PREFIX, KEY_RANDOM_CHARS)
}

/// What is stored for a secret: its SHA-256.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    crypto::sha256(secret.as_bytes())
}

fn looks_like_key(secret: &str) -> bool {
    secret.len() >= KEY_PREFIX.len() + 40
        && secret.len() <= 128
        && secret.starts_with(KEY_PREFIX)
        && secret[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

/// The authenticated caller of a public API request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: String,
    pub key_id: String,
    pub scopes: Scopes,
}

impl Caller {
    /// 403 naming the scope(s) unless the key holds at least one of `scopes`.
    pub fn require_any(&self, scopes: &[Scope]) -> Result<(), ApiError> {
        if scopes.iter().any(|s| self.scopes.contains(*s)) {
            return Ok(());
        }
        let message = match scopes {
            [one] => format!("this API key lacks the {} scope", one.as_str()),
            _ => {
                let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
                format!(
                    "this API key needs one of these scopes: {}",
                    names.join(", ")
                )
            }
        };
        Err(ApiError::forbidden(message))
    }

    /// Whether the key may read tickets, messages and contacts (`support.read`); a key
    /// without it sees only what it sent of its own writes.
    pub fn can_read(&self) -> bool {
        self.scopes.contains(Scope::Read)
    }

    /// `requested_by` of an action: `api_key:<key_id>`.
    pub fn requested_by(&self) -> String {
        format!("api_key:{}", self.key_id)
    }
}

/// What the request middleware logs and turns into `RateLimit-*` headers.
#[derive(Debug, Clone)]
pub struct CallerInfo {
    pub key_id: String,
    pub rate: RateInfo,
}

/// A presented `X-Api-Key`, checked for form on the worker thread (no database): its
/// SHA-256, looked up later inside the request's one database call.
#[derive(Debug, Clone)]
pub struct Credentials {
    hash: [u8; 32],
}

/// The extractor: handlers take `Credentials` and get a 401 before anything else
/// when the header is missing or malformed. The key itself is looked up later, in the
/// request's one database call (`authenticate`).
impl FromRequest for Credentials {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Credentials, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(credentials(req))
    }
}

/// Reads `X-Api-Key`: 401 when missing or not shaped like a key.
fn credentials(req: &HttpRequest) -> Result<Credentials, ApiError> {
    let secret = match req.headers().get("x-api-key") {
        None => return Err(ApiError::unauthenticated("missing X-Api-Key header")),
        Some(value) => value.to_str().unwrap_or_default().trim(),
    };
    if !looks_like_key(secret) {
        return Err(ApiError::unauthenticated("invalid API key"));
    }
    Ok(Credentials {
        hash: hash_secret(secret),
    })
}

/// The scopes a route accepts: any one of them will do.
pub type Needs = &'static [Scope];

/// Where `last_used_at` is recorded: inline when the request already runs in a write
/// job, else as a background job of the writer.
#[derive(Clone, Copy)]
pub enum Touch<'a> {
    Inline,
    Queue(&'a Writer),
}

/// Inside a request's database call: key lookup, expiry and revocation, rate limit,
/// then scope. Returns what the middleware needs (the key id and the rate) even when
/// the request is refused, so that 401, 429 and 403 come before anything the handler
/// would report.
pub fn authenticate(
    conn: &Connection,
    credentials: &Credentials,
    needs: Needs,
    limiter: &RateLimiter,
    touch: Touch<'_>,
) -> (Option<CallerInfo>, Result<Caller, ApiError>) {
    let now = Timestamp::now();
    let key = match db::keys::authenticate(conn, &credentials.hash) {
        Ok(Some(key)) => key,
        Ok(None) => return (None, Err(ApiError::unauthenticated("invalid API key"))),
        Err(e) => return (None, Err(e.into())),
    };
    let refused = if key.revoked {
        Some("this API key has been revoked")
    } else if key.expires_at.is_some_and(|t| t <= now) {
        Some("this API key has expired")
    } else if key.secret_expires_at.is_some_and(|t| t <= now) {
        Some("this API key was rotated and its previous secret no longer works")
    } else {
        None
    };
    if let Some(message) = refused {
        return (None, Err(ApiError::unauthenticated(message)));
    }
    let rate = limiter.check(&key.key_id);
    let info = CallerInfo {
        key_id: key.key_id.clone(),
        rate: rate.clone(),
    };
    if let Some(retry_after) = rate.retry_after {
        return (Some(info), Err(ApiError::rate_limited(retry_after)));
    }
    let stale = key
        .last_used_at
        .is_none_or(|t| now.micros() - t.micros() >= LAST_USED_RESOLUTION_MICROS);
    if stale {
        record_use(conn, &key.tenant_id, &key.key_id, now, touch);
    }
    let caller = Caller {
        tenant_id: key.tenant_id,
        key_id: key.key_id,
        scopes: key.scopes,
    };
    let allowed = caller.require_any(needs).map(|()| caller);
    (Some(info), allowed)
}

/// Records `last_used_at`; a failure only costs that bookkeeping.
fn record_use(conn: &Connection, tenant_id: &str, key_id: &str, now: Timestamp, touch: Touch) {
    match touch {
        Touch::Inline => {
            if let Err(e) =
                db::keys::touch(conn, tenant_id, key_id, now, LAST_USED_RESOLUTION_MICROS)
            {
                log::debug!("recording last_used_at failed: {e}");
            }
        }
        Touch::Queue(writer) => {
            let (tenant_id, key_id) = (tenant_id.to_string(), key_id.to_string());
            writer.spawn(move |conn| {
                db::keys::touch(conn, &tenant_id, &key_id, now, LAST_USED_RESOLUTION_MICROS)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_format() {
        let secret = new_key_secret().unwrap();
        assert!(looks_like_key(&secret));
        assert!(!looks_like_key("thr_short"));
        assert!(!looks_like_key(&format!("xyz_{}", &secret[4..])));
        assert_ne!(
            hash_secret(&secret),
            hash_secret(&new_key_secret().unwrap())
        );
    }
}
