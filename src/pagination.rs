//! Opaque keyset page tokens.
//!
//! A token carries the sort key and id of the last item of a page, plus an HMAC (keyed
//! by a per-database secret) over that cursor and a binding string naming the tenant,
//! the list and its filters and sort. A token that was altered, or that is replayed
//! with other filters or by another tenant, fails the HMAC and is a 400.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::{constant_time_eq, hmac_sha256};
use crate::domain::listing::Cursor;
use crate::error::ApiError;

const VERSION: u8 = 1;
const MAC_LEN: usize = 16;
const MAX_TOKEN_CHARS: usize = 512;

/// Issues and checks page tokens with the database's secret.
#[derive(Clone)]
pub struct PageTokens {
    secret: Vec<u8>,
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens")
    }
}

impl PageTokens {
    pub fn new(secret: Vec<u8>) -> PageTokens {
        PageTokens { secret }
    }

    fn mac(&self, binding: &str, payload: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.secret, &[binding.as_bytes(), &[0], payload])
    }

    /// A token for the page after `cursor`, valid only with the same `binding`.
    pub fn issue(&self, binding: &str, cursor: &Cursor) -> String {
        let mut data = Vec::with_capacity(1 + 8 + cursor.id.len() + MAC_LEN);
        data.push(VERSION);
        data.extend_from_slice(&cursor.key.to_be_bytes());
        data.extend_from_slice(cursor.id.as_bytes());
        let mac = self.mac(binding, &data);
        data.extend_from_slice(&mac[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(data)
    }

    /// The cursor inside `token`, or a 400 naming `page_token`.
    pub fn open(&self, binding: &str, token: &str) -> Result<Cursor, ApiError> {
        let invalid = || {
            ApiError::invalid(
                "page_token",
                "page_token is not valid for this list: it was altered, or it was issued \
                 with other filters or sort (keep them the same while paging)",
            )
        };
        if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
            return Err(invalid());
        }
        let data = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        if data.len() < 1 + 8 + MAC_LEN || data[0] != VERSION {
            return Err(invalid());
        }
        let (payload, mac) = data.split_at(data.len() - MAC_LEN);
        if !constant_time_eq(&self.mac(binding, payload)[..MAC_LEN], mac) {
            return Err(invalid());
        }
        let mut key = [0u8; 8];
        key.copy_from_slice(&payload[1..9]);
        let id = String::from_utf8(payload[9..].to_vec()).map_err(|_| invalid())?;
        Ok(Cursor {
            key: i64::from_be_bytes(key),
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let tokens = PageTokens::new(vec![7; 32]);
        let cursor = Cursor {
            key: 1_770_000_000_000_000,
            id: "tkt_01abc".into(),
        };
        let token = tokens.issue("ten_a|status=open", &cursor);
        assert_eq!(tokens.open("ten_a|status=open", &token).unwrap(), cursor);
        assert!(tokens.open("ten_a|status=closed", &token).is_err());
        assert!(tokens.open("ten_b|status=open", &token).is_err());
        let other = PageTokens::new(vec![8; 32]);
        assert!(other.open("ten_a|status=open", &token).is_err());
    }

    #[test]
    fn tampering_is_detected() {
        let tokens = PageTokens::new(vec![7; 32]);
        let token = tokens.issue(
            "b",
            &Cursor {
                key: 5,
                id: "x".into(),
            },
        );
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[3] ^= 1;
        assert!(tokens.open("b", &URL_SAFE_NO_PAD.encode(&bytes)).is_err());
        for junk in ["", "!!!", "abc", &"A".repeat(600)] {
            let err = tokens.open("b", junk).unwrap_err();
            assert_eq!(err.param.as_deref(), Some("page_token"));
        }
    }
}
