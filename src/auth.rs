//! API keys: their format, hashing, scopes, and turning `X-Api-Key` into the caller.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use rusqlite::Connection;
use serde::{Serialize, Serializer};

use crate::clock::Timestamp;
use crate::crypto;
use crate::db::{self, DbError};
use crate::error::ApiError;
use crate::ratelimit::RateInfo;
use crate::startup::AppState;

/// Prefix of every API key secret.
pub const KEY_PREFIX: &str = "thr_";
/// Random base62 characters after the prefix (43 × log2(62) ≈ 256 bits).
pub const KEY_RANDOM_CHARS: usize = 43;
/// `last_used_at` is written at most this often per key.
const LAST_USED_RESOLUTION_MICROS: i64 = 60_000_000;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Read,
    Write,
    Actions,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Actions];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "support.read",
            Scope::Write => "support.write",
            Scope::Actions => "support.actions",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Scope::Read => 1,
            Scope::Write => 2,
            Scope::Actions => 4,
        }
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub fn all() -> Scopes {
        Scopes(7)
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// Parses scope names; at least one, each known.
    pub fn parse_list<'a>(
        names: impl IntoIterator<Item = &'a str>,
        param: &str,
    ) -> Result<Scopes, ApiError> {
        let mut scopes = Scopes::default();
        for name in names {
            let name = name.trim();
            let scope = Scope::ALL
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| {
                    ApiError::invalid(
                        param,
                        format!(
                            "{param}: unknown scope {:?} (expected support.read, support.write, support.actions)",
                            name.chars().take(64).collect::<String>()
                        ),
                    )
                })?;
            scopes.0 |= scope.bit();
        }
        if scopes.0 == 0 {
            return Err(ApiError::invalid(
                param,
                format!("{param} needs at least one scope"),
            ));
        }
        Ok(scopes)
    }

    /// The storage form: names joined by ','.
    pub fn to_stored(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(",")
    }

    /// Reads the storage form; unknown names are ignored (never widen access).
    pub fn from_stored(text: &str) -> Scopes {
        let mut scopes = Scopes::default();
        for name in text.split(',') {
            if let Some(scope) = Scope::ALL.into_iter().find(|s| s.as_str() == name) {
                scopes.0 |= scope.bit();
            }
        }
        scopes
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(Scope::as_str))
    }
}

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
/// request's one database call (`read_as`, `write_as`).
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

/// Authenticates and runs `work` in one read call on the pool: a single hop off the
/// worker thread per request. 401 (unknown, revoked, expired), 429 (rate limit) and
/// 403 (scope) come before anything `work` reports.
pub async fn read_as<T, F>(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    credentials: Credentials,
    needs: Needs,
    work: F,
) -> Result<T, ApiError>
where
    F: FnOnce(&Connection, &Caller, &AppState) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let shared = state.clone();
    let (info, result) = state
        .db
        .read(move |conn| {
            Ok::<_, DbError>(authorized(&shared, conn, &credentials, needs, false, work))
        })
        .await?;
    remember(req, info);
    result
}

/// Authenticates and runs `work` as one job of the writer: one hop, one savepoint of
/// a group commit. When the request fails, its job is rolled back: nothing of it
/// stays behind.
pub async fn write_as<T, F>(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    credentials: Credentials,
    needs: Needs,
    work: F,
) -> Result<T, ApiError>
where
    F: FnOnce(&Connection, &Caller, &AppState) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let shared = state.clone();
    let outcome = state
        .db
        .writer()
        .run(
            move |conn| match authorized(&shared, conn, &credentials, needs, true, work) {
                (info, Ok(value)) => Ok((info, value)),
                (info, Err(error)) => Err(Box::new(Refusal { info, error })),
            },
        )
        .await;
    match outcome {
        Ok((info, value)) => {
            remember(req, info);
            Ok(value)
        }
        Err(refusal) => {
            remember(req, refusal.info);
            Err(refusal.error)
        }
    }
}

/// A failed write job: its error, and what the middleware still needs to know.
struct Refusal {
    info: Option<CallerInfo>,
    error: ApiError,
}

impl From<DbError> for Box<Refusal> {
    fn from(error: DbError) -> Box<Refusal> {
        Box::new(Refusal {
            info: None,
            error: error.into(),
        })
    }
}

fn remember(req: &HttpRequest, info: Option<CallerInfo>) {
    if let Some(info) = info {
        req.extensions_mut().insert(info);
    }
}

/// Inside a database call: key lookup, expiry and revocation, rate limit, scope, then
/// `work`. Returns what the middleware needs even when the request is refused.
fn authorized<T>(
    state: &AppState,
    conn: &Connection,
    credentials: &Credentials,
    needs: Needs,
    in_writer: bool,
    work: impl FnOnce(&Connection, &Caller, &AppState) -> Result<T, ApiError>,
) -> (Option<CallerInfo>, Result<T, ApiError>) {
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
    let rate = state.limiter.check(&key.key_id);
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
        let (tenant_id, key_id) = (key.tenant_id.clone(), key.key_id.clone());
        let touch = move |conn: &Connection| {
            db::keys::touch(conn, &tenant_id, &key_id, now, LAST_USED_RESOLUTION_MICROS)
        };
        if in_writer {
            if let Err(e) = touch(conn) {
                log::debug!("recording last_used_at failed: {e}");
            }
        } else {
            state.db.writer().spawn(touch);
        }
    }
    let caller = Caller {
        tenant_id: key.tenant_id,
        key_id: key.key_id,
        scopes: key.scopes,
    };
    let result = caller
        .require_any(needs)
        .and_then(|()| work(conn, &caller, state));
    (Some(info), result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_store() {
        let scopes = Scopes::parse_list(["support.read", "support.actions"], "scopes").unwrap();
        assert!(scopes.contains(Scope::Read) && !scopes.contains(Scope::Write));
        assert_eq!(scopes.to_stored(), "support.read,support.actions");
        assert_eq!(Scopes::from_stored(&scopes.to_stored()), scopes);
        assert!(Scopes::parse_list(["support.admin"], "scopes").is_err());
        assert!(Scopes::parse_list([], "scopes").is_err());
    }

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
