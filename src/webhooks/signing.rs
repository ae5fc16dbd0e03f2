//! Signatures per Standard Webhooks (<https://www.standardwebhooks.com>): each request carries
//! `webhook-id` (the same for every attempt of a delivery), `webhook-timestamp` (Unix seconds of
//! the attempt) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed
//! with the base64-decoded part of the subscription's `whsec_…` secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The prefix of a secret.
const PREFIX: &str = "whsec_";

/// A new random secret (24 bytes).
pub fn new_secret() -> String {
    let mut key = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut key);
    format!("{PREFIX}{}", STANDARD.encode(key))
}

/// The HMAC key of `secret`: its base64 part decoded (the raw text if it is not base64).
fn key(secret: &str) -> Vec<u8> {
    let encoded = secret.strip_prefix(PREFIX).unwrap_or(secret);
    STANDARD
        .decode(encoded)
        .unwrap_or_else(|_| encoded.as_bytes().to_vec())
}

/// The `webhook-signature` value for `body` sent as message `id` at `timestamp`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    // Any key length is valid for HMAC: `new_from_slice` cannot fail here.
    let mut mac = match Hmac::<Sha256>::new_from_slice(&key(secret)) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// How far a request's `webhook-timestamp` may be from now, in seconds, either way.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a signed request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// `webhook-timestamp` is not a number of seconds.
    BadTimestamp,
    /// `webhook-timestamp` is more than [`TOLERANCE_SECONDS`] from now.
    Stale,
    /// No `v1,` signature in `webhook-signature` matches.
    NoMatch,
}

/// Verifies a request signed per Standard Webhooks: `timestamp` within [`TOLERANCE_SECONDS`]
/// of `now` (Unix seconds), and one of the space-separated `v1,<base64>` signatures of
/// `signatures` the HMAC of `id.timestamp.body` under `secret` (compared in constant time).
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let seconds: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    if (now - seconds).abs() > TOLERANCE_SECONDS {
        return Err(VerifyError::Stale);
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key(secret)) else {
        return Err(VerifyError::NoMatch);
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let matches = signatures
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| STANDARD.decode(s).ok())
        .any(|given| mac.clone().verify_slice(&given).is_ok());
    if matches {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_test_vector() {
        assert_eq!(
            sign(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#,
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn verification_accepts_any_matching_signature_within_the_tolerance() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let (id, at, body) = (
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        let good = sign(secret, id, at, body);
        let ts = at.to_string();
        assert_eq!(verify(secret, id, &ts, &good, body, at + 10), Ok(()));
        let several = format!("v1,bm9wZQ== v2,xyz {good}");
        assert_eq!(verify(secret, id, &ts, &several, body, at), Ok(()));
        assert_eq!(
            verify(secret, id, &ts, &good, b"{}", at),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify("whsec_b3RoZXI=", id, &ts, &good, body, at),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(secret, id, &ts, "", body, at),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(secret, id, &ts, &good, body, at + TOLERANCE_SECONDS + 1),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(secret, id, "soon", &good, body, at),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn new_secrets_are_prefixed_random_keys() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with("whsec_") && a != b);
        assert_eq!(key(&a).len(), 24);
    }
}
