//! Secret parameters at rest: sealed with AES-256-GCM under a key that lives in the data
//! dir (`secrets.key`), never in the database, so a copy of the database alone reveals no
//! secret. The same key keys the HMAC that fingerprints compiled bundles, so a fingerprint
//! cannot be used to test guesses of a weak secret.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use apiary_proto::hex;

const PREFIX: &str = "v1:";
/// Prefix of a bundle envelope stored sealed (it carries secrets).
const ENVELOPE_PREFIX: &str = "sealed:";
const TAG_LEN: usize = 16;

/// Why a secret could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("the secrets key must be 32 bytes")]
    BadKey,
    #[error("not a sealed value")]
    Malformed,
    #[error(
        "cannot be opened with this data dir's secrets.key (sealed under another key, or altered)"
    )]
    Unopenable,
}

/// Seals and opens secret values, and fingerprints compiled bundles.
pub struct SecretBox {
    key: LessSafeKey,
    mac: hmac::Key,
}

impl SecretBox {
    /// A new random key, for `secrets.key`.
    pub fn generate_key() -> [u8; 32] {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .expect("the system random source is available");
        key
    }

    /// Uses `key` (32 bytes).
    pub fn from_key(key: &[u8]) -> Result<Self, SecretError> {
        let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(|_| SecretError::BadKey)?;
        // A separate key for fingerprints, derived so the two uses never share a key.
        let mac_key = ring::digest::digest(
            &ring::digest::SHA256,
            &[b"apiary bundle fingerprint".as_slice(), key].concat(),
        );
        Ok(Self {
            key: LessSafeKey::new(unbound),
            mac: hmac::Key::new(hmac::HMAC_SHA256, mac_key.as_ref()),
        })
    }

    /// Seals `plaintext`, bound to `name` (a sealed value moved to another name won't open).
    pub fn seal(&self, name: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system random source is available");
        let mut buf = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut buf,
            )
            .expect("sealing a short value cannot fail");
        format!("{PREFIX}{}{}", hex::encode(&nonce), hex::encode(&buf))
    }

    /// Opens a value sealed for `name`.
    pub fn open(&self, name: &str, sealed: &str) -> Result<String, SecretError> {
        let raw = sealed
            .strip_prefix(PREFIX)
            .and_then(hex::decode)
            .ok_or(SecretError::Malformed)?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(SecretError::Malformed);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Malformed)?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut buf)
            .map_err(|_| SecretError::Unopenable)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Malformed)
    }

    /// An HMAC-SHA256 fingerprint of `bytes`, hex.
    pub fn fingerprint(&self, bytes: &[u8]) -> String {
        hex::encode(hmac::sign(&self.mac, bytes).as_ref())
    }

    /// A bundle envelope for storage: sealed when it carries secrets.
    pub fn store_envelope(&self, envelope_json: String, has_secrets: bool) -> String {
        if has_secrets {
            format!("{ENVELOPE_PREFIX}{}", self.seal("bundle", &envelope_json))
        } else {
            envelope_json
        }
    }

    /// A stored envelope as it is served.
    pub fn load_envelope<'a>(
        &self,
        stored: &'a str,
    ) -> Result<std::borrow::Cow<'a, str>, SecretError> {
        match stored.strip_prefix(ENVELOPE_PREFIX) {
            Some(sealed) => Ok(self.open("bundle", sealed)?.into()),
            None => Ok(stored.into()),
        }
    }
}

/// True when `text` has the shape of a sealed value (it may still fail to open).
pub fn looks_sealed(text: &str) -> bool {
    text.strip_prefix(PREFIX)
        .and_then(hex::decode)
        .is_some_and(|raw| raw.len() >= NONCE_LEN + TAG_LEN)
}

/// How a secret is shown through the API: never its value.
pub const MASK: &str = "(secret)";

#[cfg(test)]
mod tests {
    use super::*;

    fn sbox() -> SecretBox {
        SecretBox::from_key(&SecretBox::generate_key()).unwrap()
    }

    #[test]
    fn seals_and_opens_bound_to_the_name() {
        let b = sbox();
        let sealed = b.seal("token", "s3cr3t");
        assert!(looks_sealed(&sealed));
        assert!(!sealed.contains("s3cr3t"));
        assert_eq!(b.open("token", &sealed).unwrap(), "s3cr3t");
        assert_eq!(b.open("other", &sealed), Err(SecretError::Unopenable));
        assert_eq!(
            sbox().open("token", &sealed),
            Err(SecretError::Unopenable),
            "another data dir's key"
        );
        assert_ne!(
            b.seal("token", "s3cr3t"),
            sealed,
            "a fresh nonce every time"
        );
    }

    #[test]
    fn refuses_tampered_and_malformed_values() {
        let b = sbox();
        let mut sealed = b.seal("k", "value");
        let last = sealed.pop().unwrap();
        sealed.push(if last == '0' { '1' } else { '0' });
        assert_eq!(b.open("k", &sealed), Err(SecretError::Unopenable));
        assert_eq!(b.open("k", "plaintext"), Err(SecretError::Malformed));
        assert!(!looks_sealed("v1:abcd"));
    }

    #[test]
    fn envelopes_with_secrets_are_sealed_at_rest() {
        let b = sbox();
        let stored = b.store_envelope("{\"payload\":\"secret inside\"}".into(), true);
        assert!(!stored.contains("secret inside"));
        assert_eq!(
            b.load_envelope(&stored).unwrap(),
            "{\"payload\":\"secret inside\"}"
        );
        assert_eq!(b.store_envelope("{}".into(), false), "{}");
        assert_eq!(b.load_envelope("{}").unwrap(), "{}");
    }

    #[test]
    fn fingerprints_depend_on_the_key() {
        let (a, b) = (sbox(), sbox());
        assert_eq!(a.fingerprint(b"x"), a.fingerprint(b"x"));
        assert_ne!(a.fingerprint(b"x"), b.fingerprint(b"x"));
    }
}
