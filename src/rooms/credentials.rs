//! The simulator provider's room credentials: `<payload>.<signature>`, where the payload is the
//! base64url (unpadded) JSON `{"room", "participant", "exp"}` (`exp` in Unix seconds) and the
//! signature the base64url HMAC-SHA256 of the encoded payload, keyed with the room's secret (kept
//! on the room, never exposed). A real provider bridge would hand out its own tokens instead.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

/// Name of the provider that issues the credentials.
pub const PROVIDER: &str = "simulator";

/// What a token grants: one participant in one room until `exp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The room.
    pub room: Uuid,
    /// The participant.
    pub participant: Uuid,
    /// Expiry, Unix seconds.
    pub exp: i64,
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not `<payload>.<signature>`, or the payload is not the claims.
    Malformed,
    /// The signature does not match (tampered, or another room's).
    BadSignature,
    /// Past its expiry.
    Expired,
}

/// A new room secret (32 random bytes, base64url).
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    URL_SAFE_NO_PAD.encode(key)
}

fn mac(secret: &str) -> Option<Hmac<Sha256>> {
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()
}

/// A token for `claims`, signed with `secret`.
pub fn issue(secret: &str, claims: &Claims) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let Some(mut mac) = mac(secret) else {
        return String::new();
    };
    mac.update(payload.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{payload}.{signature}")
}

/// The claims of `token` if `secret` signed it (compared in constant time) and it has not
/// expired at `now`.
pub fn verify(secret: &str, token: &str, now: DateTime<Utc>) -> Result<Claims, TokenError> {
    let (payload, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed)?;
    let mut mac = mac(secret).ok_or(TokenError::BadSignature)?;
    mac.update(payload.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    if claims.exp <= now.timestamp() {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn claims(now: DateTime<Utc>) -> Claims {
        Claims {
            room: Uuid::now_v7(),
            participant: Uuid::now_v7(),
            exp: (now + Duration::hours(1)).timestamp(),
        }
    }

    #[test]
    fn a_token_verifies_with_its_rooms_secret_until_it_expires() {
        let now = Utc::now();
        let secret = new_secret();
        let claims = claims(now);
        let token = issue(&secret, &claims);
        assert_eq!(verify(&secret, &token, now), Ok(claims.clone()));
        assert_eq!(
            verify(&secret, &token, now + Duration::minutes(59)),
            Ok(claims)
        );
        assert_eq!(
            verify(&secret, &token, now + Duration::hours(1)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_tampered_or_foreign_token_is_refused() {
        let now = Utc::now();
        let secret = new_secret();
        let claims = claims(now);
        let token = issue(&secret, &claims);
        // Another room's secret.
        assert_eq!(
            verify(&new_secret(), &token, now),
            Err(TokenError::BadSignature)
        );
        // A longer expiry, re-encoded under the old signature.
        let (_, signature) = token.split_once('.').unwrap_or_default();
        let forged = Claims {
            exp: claims.exp + 86_400,
            ..claims.clone()
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap_or_default());
        assert_eq!(
            verify(&secret, &format!("{payload}.{signature}"), now),
            Err(TokenError::BadSignature)
        );
        // A changed signature character (the first: all its bits are signature bits).
        let mut bytes = token.clone().into_bytes();
        let at = token.find('.').unwrap_or_default() + 1;
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap_or_default();
        assert_eq!(
            verify(&secret, &flipped, now),
            Err(TokenError::BadSignature)
        );
        assert_eq!(verify(&secret, "no-dot", now), Err(TokenError::Malformed));
    }
}
