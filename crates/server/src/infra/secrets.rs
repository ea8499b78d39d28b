//! Secrets at rest (channel access tokens, app secrets): AES-256-GCM under the key from
//! `ENCRYPTION_KEY`, each ciphertext tagged with the id of the key that sealed it, so keys can
//! be rotated — the new key seals, the old ones (`ENCRYPTION_OLD_KEYS`) still open, and
//! `cortexlayer admin rotate-key` re-seals everything under the new one.
//!
//! A sealed value reads `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The nonce is 96
//! random bits per seal. The associated data names what the secret belongs to (tenant, row,
//! field), so a ciphertext copied into another row or tenant does not open.

use std::collections::HashMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("the sealed secret is malformed")]
    Malformed,
    #[error("the secret was sealed with key {0}, which is not configured (ENCRYPTION_OLD_KEYS)")]
    UnknownKey(String),
    #[error("the secret does not open: wrong key, altered, or moved from another row")]
    Tampered,
}

pub struct SecretBox {
    current: String,
    keys: HashMap<String, Aes256Gcm>,
}

/// The id of a key: the first 8 hex digits of SHA-256 of "cortexlayer key id" and the key
/// (identifies it without revealing anything usable).
pub fn key_id(key: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(b"cortexlayer key id");
    h.update(key);
    hex::encode(&h.finalize()[..4])
}

impl SecretBox {
    /// `current` seals and opens; `old` keys only open.
    pub fn new(current: [u8; 32], old: &[[u8; 32]]) -> Self {
        let mut keys = HashMap::new();
        for k in old.iter().chain(std::iter::once(&current)) {
            keys.insert(key_id(k), Aes256Gcm::new(k.into()));
        }
        Self {
            current: key_id(&current),
            keys,
        }
    }

    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// The key id a sealed value names, if it is well formed.
    pub fn key_id_of(sealed: &str) -> Option<&str> {
        let mut parts = sealed.splitn(3, '.');
        (parts.next()? == "v1").then_some(())?;
        parts.next()
    }

    pub fn seal(&self, plaintext: &str, context: &str) -> String {
        let cipher = &self.keys[&self.current];
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("v1.{}.{}", self.current, URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<String, SecretError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some("v1"), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SecretError::Malformed);
        };
        let cipher = self
            .keys
            .get(kid)
            .ok_or_else(|| SecretError::UnknownKey(kid.to_owned()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SecretError::Malformed)?;
        if bytes.len() < 12 + 16 {
            return Err(SecretError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SecretError::Malformed)?;
        let plain = cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Tampered)?;
        String::from_utf8(plain).map_err(|_| SecretError::Tampered)
    }

    /// Opens with whatever key sealed it and seals again under the current key.
    pub fn reseal(&self, sealed: &str, context: &str) -> Result<String, SecretError> {
        Ok(self.seal(&self.open(sealed, context)?, context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 32] = [7; 32];
    const B: [u8; 32] = [9; 32];

    #[test]
    fn a_secret_opens_only_with_its_key_and_its_context() {
        let box_a = SecretBox::new(A, &[]);
        let sealed = box_a.seal("EAAG-token-123", "tenant:1/channel:2/access_token");
        assert!(sealed.starts_with(&format!("v1.{}.", key_id(&A))));
        assert!(!sealed.contains("EAAG"));
        assert_eq!(
            box_a
                .open(&sealed, "tenant:1/channel:2/access_token")
                .as_deref(),
            Ok("EAAG-token-123")
        );
        assert_eq!(
            box_a.open(&sealed, "tenant:9/channel:2/access_token"),
            Err(SecretError::Tampered),
            "moved to another tenant"
        );
        assert_ne!(
            sealed,
            box_a.seal("EAAG-token-123", "tenant:1/channel:2/access_token"),
            "a fresh nonce each time"
        );
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            box_a.open(
                std::str::from_utf8(&altered).expect("ascii"),
                "tenant:1/channel:2/access_token"
            ),
            Err(SecretError::Tampered)
        );
        assert_eq!(box_a.open("v1.zz", "x"), Err(SecretError::Malformed));
        assert_eq!(box_a.open("garbage", "x"), Err(SecretError::Malformed));
    }

    #[test]
    fn rotation_opens_old_secrets_and_reseals_them_under_the_new_key() {
        let old = SecretBox::new(A, &[]);
        let sealed = old.seal("s3cret", "ctx");
        let rotated = SecretBox::new(B, &[A]);
        assert_eq!(rotated.open(&sealed, "ctx").as_deref(), Ok("s3cret"));
        let resealed = rotated.reseal(&sealed, "ctx").expect("reseal");
        assert_eq!(SecretBox::key_id_of(&resealed), Some(key_id(&B).as_str()));
        let only_new = SecretBox::new(B, &[]);
        assert_eq!(only_new.open(&resealed, "ctx").as_deref(), Ok("s3cret"));
        assert_eq!(
            only_new.open(&sealed, "ctx"),
            Err(SecretError::UnknownKey(key_id(&A)))
        );
    }
}
