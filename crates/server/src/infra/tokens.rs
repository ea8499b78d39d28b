//! Minting and checking credentials: access JWTs (HS256 only; `alg: none` and asymmetric
//! algorithms are refused whatever the header says), opaque random tokens (refresh,
//! invitation, API keys) stored as SHA-256 hashes, and 6-digit verification codes stored as
//! HMACs under the server secret.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const ISSUER: &str = "cortexlayer";
pub const AUDIENCE: &str = "cortexlayer-api";
/// Every API key starts with this, which is how a bearer credential is told from a JWT.
pub const API_KEY_PREFIX: &str = "ck_";

/// Claims of an access token. `tid` is absent for platform admins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// Signs and checks access tokens with the configured secret.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    code_key: Vec<u8>,
    csrf_key: Vec<u8>,
}

impl TokenKeys {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            code_key: Sha256::digest(
                [b"verification-code:".as_slice(), secret.as_bytes()].concat(),
            )
            .to_vec(),
            csrf_key: Sha256::digest([b"csrf:".as_slice(), secret.as_bytes()].concat()).to_vec(),
        }
    }

    pub fn sign(
        &self,
        sub: &str,
        tid: Option<&str>,
        role: &str,
        now: DateTime<Utc>,
        ttl_secs: u64,
    ) -> anyhow::Result<String> {
        let iat = now.timestamp();
        let claims = Claims {
            sub: sub.to_owned(),
            tid: tid.map(str::to_owned),
            role: role.to_owned(),
            iat,
            exp: iat + i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The claims of a valid, unexpired HS256 token from this server; `None` otherwise.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| d.claims)
    }

    /// The stored form of a verification code, bound to its user.
    pub fn hash_code(&self, user_id: &str, code: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.code_key).expect("HMAC takes keys of any length");
        mac.update(user_id.as_bytes());
        mac.update(b":");
        mac.update(code.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

impl TokenKeys {
    /// The CSRF token of a browser: an HMAC of what binds it (the session, or before signing
    /// in the browser's own random cookie), so it cannot be made without the server's key
    /// and does not work for another browser.
    pub fn csrf_token(&self, binding: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.csrf_key).expect("HMAC takes keys of any length");
        mac.update(binding.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// `n` random bytes from the OS, URL-safe base64 without padding.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    OsRng.fill(bytes.as_mut_slice());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A uniformly random 6-digit code.
pub fn verification_code() -> String {
    format!("{:06}", OsRng.gen_range(0..1_000_000u32))
}

/// The stored form of a high-entropy secret (refresh token, invitation token, API key).
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two hashes in constant time.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A new API key: (full key shown once, visible prefix).
pub fn api_key() -> (String, String) {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let pick = |n: usize| -> String {
        (0..n)
            .map(|_| ALPHABET[OsRng.gen_range(0..ALPHABET.len())] as char)
            .collect()
    };
    let visible = pick(8);
    let secret = pick(40);
    let prefix = format!("{API_KEY_PREFIX}{visible}");
    (format!("{prefix}_{secret}"), prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_token_verifies_and_a_tampered_one_does_not() {
        let keys = TokenKeys::new("0123456789abcdef0123456789abcdef");
        let t = keys
            .sign("user-1", Some("tenant-1"), "owner", Utc::now(), 900)
            .expect("sign");
        let claims = keys.verify(&t).expect("valid");
        assert_eq!(
            (
                claims.sub.as_str(),
                claims.tid.as_deref(),
                claims.role.as_str()
            ),
            ("user-1", Some("tenant-1"), "owner")
        );
        let mut tampered = t.clone();
        tampered.pop();
        tampered.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert!(keys.verify(&tampered).is_none());
        assert!(
            TokenKeys::new("another-secret-of-thirty-two-chars!!")
                .verify(&t)
                .is_none()
        );
    }

    #[test]
    fn expired_tokens_are_refused() {
        let keys = TokenKeys::new("0123456789abcdef0123456789abcdef");
        let t = keys
            .sign(
                "u",
                Some("t"),
                "agent",
                Utc::now() - chrono::Duration::minutes(20),
                900,
            )
            .expect("sign");
        assert!(keys.verify(&t).is_none());
    }

    #[test]
    fn codes_are_six_digits_and_keys_carry_their_prefix() {
        for _ in 0..100 {
            let c = verification_code();
            assert_eq!(c.len(), 6);
            assert!(c.chars().all(|ch| ch.is_ascii_digit()));
        }
        let (key, prefix) = api_key();
        assert!(key.starts_with(&format!("{prefix}_")));
        assert_eq!(prefix.len(), 11);
        assert_ne!(api_key().0, key);
    }

    #[test]
    fn code_hashes_depend_on_user_code_and_secret() {
        let a = TokenKeys::new("0123456789abcdef0123456789abcdef");
        let b = TokenKeys::new("fedcba9876543210fedcba9876543210");
        assert_eq!(a.hash_code("u1", "123456"), a.hash_code("u1", "123456"));
        assert_ne!(a.hash_code("u1", "123456"), a.hash_code("u2", "123456"));
        assert_ne!(a.hash_code("u1", "123456"), a.hash_code("u1", "123457"));
        assert_ne!(a.hash_code("u1", "123456"), b.hash_code("u1", "123456"));
    }
}
