//! `Idempotency-Key` on POSTs.
//!
//! The key, a fingerprint of the request (method, path, canonical body) and the
//! response are stored in the same write transaction as the change they protect, so a
//! replay can never disagree with what was committed. Since every write runs on the
//! one writer thread, two requests with the same key cannot both pass the lookup: the
//! second one waits its turn and replays the first. Only successful requests are
//! stored; one that fails validation leaves no trace.

use rusqlite::Connection;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::Timestamp;
use crate::crypto::sha256;
use crate::db::idempotency::{self, Earlier, NewRecord};
use crate::error::{ApiError, ErrorKind};

/// The request header that carries the key.
pub const HEADER: &str = "Idempotency-Key";
/// The response header that marks a replay.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";
/// Longest key accepted.
pub const MAX_KEY_CHARS: usize = 255;

/// A request's idempotency key and fingerprint.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: [u8; 32],
}

impl Idempotency {
    /// Binds `key` to one request: method, path and canonical body.
    pub fn new(key: String, method: &str, path: &str, canonical_body: &[u8]) -> Idempotency {
        let mut data = Vec::with_capacity(canonical_body.len() + 64);
        data.extend_from_slice(method.as_bytes());
        data.push(b' ');
        data.extend_from_slice(path.as_bytes());
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
            Some(Earlier::Erased) => Err(ApiError::new(
                ErrorKind::Gone,
                "the ticket this Idempotency-Key's request created or changed has been \
                 deleted since, with its stored answer; use a new key",
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

impl<T: Serialize + DeserializeOwned> Outcome<T> {
    /// Applies `f` to the answer, fresh or stored (a stored body is read back, changed
    /// and written again; the stored record itself is not touched).
    pub fn map(self, f: impl FnOnce(T) -> T) -> Result<Outcome<T>, ApiError> {
        match self {
            Outcome::Fresh(value) => Ok(Outcome::Fresh(f(value))),
            Outcome::Stored {
                status,
                body,
                replayed,
            } => {
                let value: T = serde_json::from_slice(&body).map_err(ApiError::internal)?;
                let body = serde_json::to_vec(&f(value)).map_err(ApiError::internal)?;
                Ok(Outcome::Stored {
                    status,
                    body,
                    replayed,
                })
            }
        }
    }
}

/// An answer that belongs to one ticket: its stored copy is erased with the ticket.
pub trait OfTicket {
    /// The ticket the answer shows.
    fn ticket_id(&self) -> &str;
}

/// Runs `work` inside a write job under an optional idempotency key: replays an
/// earlier response, or runs `work` and, with a key, stores its response.
pub fn run<T: Serialize + OfTicket>(
    conn: &Connection,
    tenant_id: &str,
    idempotency: Option<&Idempotency>,
    status: u16,
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
        NewRecord {
            key: &idempotency.key,
            fingerprint: &idempotency.fingerprint,
            ticket_id: value.ticket_id(),
            response: Some((status, &body)),
            action_id: None,
        },
        Timestamp::now(),
    )?;
    Ok(Outcome::Stored {
        status,
        body,
        replayed: false,
    })
}
