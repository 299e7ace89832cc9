//! Random ids and secrets, hashing, signing and constant-time comparison.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use rand::rngs::SysRng;
use rand::{RngExt, TryRng};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new id such as `tkt_01jkc3…`: 48 bits of milliseconds then 80 random bits, in
/// lower-case Crockford base32, so ids sort by creation time and cannot be guessed.
pub fn new_id(prefix: &str) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        & 0xFFFF_FFFF_FFFF;
    let random: u128 = rand::rng().random::<u128>() & ((1u128 << 80) - 1);
    let mut value = (u128::from(millis) << 80) | random;
    let mut encoded = [0u8; 26];
    for slot in encoded.iter_mut().rev() {
        *slot = CROCKFORD[(value & 31) as usize];
        value >>= 5;
    }
    let mut id = String::with_capacity(prefix.len() + 27);
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

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

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
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id("tkt");
        assert!(a.starts_with("tkt_") && a.len() == 30, "{a}");
        assert!(b > a);
        assert_ne!(new_id("tkt"), new_id("tkt"));
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
