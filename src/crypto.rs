//! Random ids and secrets, hashing, signing and constant-time comparison.

use hmac::{Hmac, KeyInit, Mac};
use rand::rngs::SysRng;
use rand::{RngExt, TryRng};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::Timestamp;

type HmacSha256 = Hmac<Sha256>;

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new id such as `tkt_0cq3…`, stamped with the current time (see `id_at`).
pub fn new_id(prefix: &str) -> String {
    id_at(prefix, Timestamp::now())
}

/// An id for something created at `at`: the microseconds since the epoch (64 bits)
/// then 80 random bits, in lower-case Crockford base32 (29 characters). Ids sort by
/// creation time, to the microsecond, so an ordered index on the id doubles as one on
/// the creation time; and they cannot be guessed.
pub fn id_at(prefix: &str, at: Timestamp) -> String {
    let random: u128 = rand::rng().random::<u128>() & ((1u128 << 80) - 1);
    encode_id(prefix, at, random)
}

/// The smallest id that `id_at(prefix, at)` can give: ids compare `>=` it exactly
/// when they were made at or after `at`.
pub fn id_floor(prefix: &str, at: Timestamp) -> String {
    encode_id(prefix, at, 0)
}

/// `prefix_` then the time (64 bits) and 80 random bits as 29 base32 digits, most
/// significant first.
fn encode_id(prefix: &str, at: Timestamp, random: u128) -> String {
    let micros = u64::try_from(at.micros()).unwrap_or(0);
    let high = micros >> 59; // the top 5 bits of the time
    let mut low = (u128::from(micros & ((1u64 << 59) - 1)) << 80) | random;
    let mut encoded = [0u8; 29];
    for slot in encoded[1..].iter_mut().rev() {
        *slot = CROCKFORD[(low & 31) as usize];
        low >>= 5;
    }
    encoded[0] = CROCKFORD[high as usize];
    let mut id = String::with_capacity(prefix.len() + 30);
    id.push_str(prefix);
    id.push('_');
    id.extend(encoded.iter().map(|&b| b as char));
    id
}

/// `prefix` followed by `len` base62 characters straight from the OS RNG.
pub fn random_secret(prefix: &str, len: usize) -> std::io::Result<String> {
    let mut secret = String::with_capacity(prefix.len() + len);
    secret.push_str(prefix);
    let mut buffer = [0u8; 64];
    while secret.len() < prefix.len() + len {
        SysRng
            .try_fill_bytes(&mut buffer)
            .map_err(|e| std::io::Error::other(format!("OS random number generator: {e}")))?;
        // Rejection sampling keeps every character equally likely.
        for &byte in &buffer {
            if byte < 248 && secret.len() < prefix.len() + len {
                secret.push(BASE62[usize::from(byte % 62)] as char);
            }
        }
    }
    Ok(secret)
}

/// 32 random bytes from the OS RNG.
pub fn random_key() -> std::io::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    SysRng
        .try_fill_bytes(&mut key)
        .map_err(|e| std::io::Error::other(format!("OS random number generator: {e}")))?;
    Ok(key)
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// HMAC-SHA256 of the concatenated `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| {
        <HmacSha256 as KeyInit>::new_from_slice(&[0]).expect("HMAC accepts any key length")
    });
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The `v1` signature of a signed request: hex HMAC-SHA256 of `"<t>.<body>"` keyed
/// with the tenant's signing secret.
pub fn signature_v1(secret: &str, t: i64, body: &[u8]) -> String {
    to_hex(&hmac_sha256(
        secret.as_bytes(),
        &[t.to_string().as_bytes(), b".", body],
    ))
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Lower-case hexadecimal.
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_sortable_and_distinct() {
        let a = new_id("tkt");
        let b = new_id("tkt");
        assert!(a.starts_with("tkt_") && a.len() == 33, "{a}");
        assert!(b > a, "{a} {b}");
        let early = id_at("msg", Timestamp::from_micros(1));
        let late = id_at("msg", Timestamp::from_micros(i64::MAX));
        assert!(early < id_at("msg", Timestamp::from_micros(2)));
        assert!(late > id_at("msg", Timestamp::from_micros(i64::MAX - 1)));
        assert_ne!(
            id_at("x", Timestamp::from_micros(5)),
            id_at("x", Timestamp::from_micros(5))
        );
    }

    #[test]
    fn floors_bound_ids_by_time() {
        let at = Timestamp::from_micros(1_770_000_000_000_000);
        let floor = id_floor("tkt", at);
        assert!(id_at("tkt", at) >= floor);
        assert!(id_at("tkt", at.minus(std::time::Duration::from_micros(1))) < floor);
        assert_eq!(floor.len(), 33);
    }

    #[test]
    fn secrets_are_base62() {
        let secret = random_secret("thr_", 43).unwrap();
        assert_eq!(secret.len(), 47);
        assert!(secret[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            to_hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
