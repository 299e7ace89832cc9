//! `Idempotency-Key` on POSTs.
//!
//! The key, a fingerprint of the request (method, path, canonical body) and the
//! response are stored in the same write transaction as the change they protect, so a
//! replay can never disagree with what was committed. Since every write runs on the
//! one writer thread, two requests with the same key cannot both pass the lookup: the
//! second one waits its turn and replays the first. Only successful requests are
//! stored; one that fails validation leaves no trace.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use rusqlite::Connection;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::Timestamp;
use crate::crypto::sha256;
use crate::db::idempotency::{self, Earlier};
use crate::error::ApiError;
use crate::extract::read_json;

pub const HEADER: &str = "Idempotency-Key";
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";
pub const MAX_KEY_CHARS: usize = 255;

/// A request's idempotency key and fingerprint.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: [u8; 32],
}

/// The header's value, checked: 1–255 visible ASCII characters.
pub fn key_from(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    let valid =
        !key.is_empty() && key.len() <= MAX_KEY_CHARS && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(ApiError::invalid(
            HEADER,
            format!("{HEADER} must be 1-{MAX_KEY_CHARS} visible ASCII characters"),
        ));
    }
    Ok(Some(key.to_string()))
}

impl Idempotency {
    /// Binds `key` to this request: method, path and canonical body.
    pub fn new(key: String, req: &HttpRequest, canonical_body: &[u8]) -> Idempotency {
        let mut data = Vec::with_capacity(canonical_body.len() + 64);
        data.extend_from_slice(req.method().as_str().as_bytes());
        data.push(b' ');
        data.extend_from_slice(req.path().as_bytes());
        data.push(b'\n');
        data.extend_from_slice(canonical_body);
        Idempotency {
            key,
            fingerprint: sha256(&data),
        }
    }

    /// Inside a write job: what an earlier request with this key decides.
    /// `Ok(Some(..))` is a response to replay.
    pub fn check<T>(
        &self,
        conn: &Connection,
        tenant_id: &str,
    ) -> Result<Option<Outcome<T>>, ApiError> {
        match idempotency::lookup(
            conn,
            tenant_id,
            &self.key,
            &self.fingerprint,
            Timestamp::now(),
        )? {
            None => Ok(None),
            Some(Earlier::Response { status, body }) => Ok(Some(Outcome::Stored {
                status,
                body,
                replayed: true,
            })),
            Some(Earlier::InFlight) => Err(ApiError::conflict(
                "a request with this Idempotency-Key is still in progress; retry later",
            )
            .with_param(HEADER)),
            Some(Earlier::Mismatch) => Err(ApiError::unprocessable(
                "this Idempotency-Key was already used with a different request \
                 (another body or endpoint); use a new key",
            )
            .with_param(HEADER)),
        }
    }
}

/// Reads a POST's JSON body and its optional `Idempotency-Key` (fingerprinted with the
/// canonical body). The result is kept, not returned early, so that the handler can
/// report it after authentication.
pub async fn read_keyed<B: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<(B, Option<Idempotency>), ApiError> {
    let key = key_from(req)?;
    let body = read_json::<B>(req, payload, limit, key.is_some()).await?;
    let guard =
        key.map(|k| Idempotency::new(k, req, body.canonical.as_deref().unwrap_or_default()));
    Ok((body.value, guard))
}

/// What a POST answers: a fresh value (serialised outside the writer thread) or
/// stored bytes (fresh and stored under a key, or replayed).
#[derive(Debug)]
pub enum Outcome<T> {
    Fresh(T),
    Stored {
        status: u16,
        body: Vec<u8>,
        replayed: bool,
    },
}

/// Runs `work` inside a write job under an optional idempotency key: replays an
/// earlier response, or runs `work` and, with a key, stores its response.
pub fn run<T: Serialize>(
    conn: &Connection,
    tenant_id: &str,
    idempotency: Option<&Idempotency>,
    status: StatusCode,
    work: impl FnOnce(&Connection) -> Result<T, ApiError>,
) -> Result<Outcome<T>, ApiError> {
    let Some(idempotency) = idempotency else {
        return work(conn).map(Outcome::Fresh);
    };
    if let Some(earlier) = idempotency.check(conn, tenant_id)? {
        return Ok(earlier);
    }
    let value = work(conn)?;
    let body = serde_json::to_vec(&value).map_err(ApiError::internal)?;
    idempotency::insert(
        conn,
        tenant_id,
        &idempotency.key,
        &idempotency.fingerprint,
        Some((status.as_u16(), &body)),
        None,
        Timestamp::now(),
    )?;
    Ok(Outcome::Stored {
        status: status.as_u16(),
        body,
        replayed: false,
    })
}

/// The HTTP response for an outcome.
pub fn respond<T: Serialize>(
    outcome: Outcome<T>,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    match outcome {
        Outcome::Fresh(value) => {
            let body = serde_json::to_vec(&value).map_err(ApiError::internal)?;
            Ok(HttpResponse::build(status)
                .content_type("application/json")
                .body(body))
        }
        Outcome::Stored {
            status,
            body,
            replayed,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = HttpResponse::build(status);
            if replayed {
                response.insert_header((REPLAYED_HEADER, "true"));
            }
            Ok(response.content_type("application/json").body(body))
        }
    }
}
