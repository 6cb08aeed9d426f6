//! Signed envelopes: a JSON payload carried as an exact string, plus a signature over its bytes.
//!
//! The payload travels as a string rather than as nested JSON so that the signed bytes are the
//! received bytes: no re-serialisation, no canonicalisation rules to get wrong.

use ring::rand::SystemRandom;
use ring::signature::{
    self, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1,
    ECDSA_P384_SHA384_ASN1_SIGNING, ED25519, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair,
    KeyPair, UnparsedPublicKey,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::hex;

/// A payload and the signature over its exact UTF-8 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The signed JSON document, verbatim.
    pub payload: String,
    /// Hex signature over `payload`'s bytes.
    pub signature: String,
}

/// Why an envelope was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("signature is not valid hex")]
    MalformedSignature,
    #[error("public key is not valid hex")]
    MalformedKey,
    #[error("signature does not match the payload and key")]
    Invalid,
    #[error("signed payload is not a valid document: {0}")]
    Payload(String),
}

impl Envelope {
    /// The SHA-256 of the payload: how both sides name a bundle.
    pub fn payload_hash(&self) -> String {
        crate::digest::sha256_hex(self.payload.as_bytes())
    }

    /// Parses the payload, which must already be verified.
    pub fn parse_payload<T: DeserializeOwned>(&self) -> Result<T, SignatureError> {
        serde_json::from_str(&self.payload).map_err(|e| SignatureError::Payload(e.to_string()))
    }
}

/// The backend's Ed25519 bundle-signing key.
pub struct BundleSigner {
    key: Ed25519KeyPair,
}

impl BundleSigner {
    /// Generates a new key, returning its PKCS#8 document for storage.
    pub fn generate_pkcs8() -> Result<Vec<u8>, ring::error::Unspecified> {
        Ok(Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())?
            .as_ref()
            .to_vec())
    }

    /// Loads a key from its PKCS#8 document.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, ring::error::KeyRejected> {
        Ok(Self {
            key: Ed25519KeyPair::from_pkcs8(pkcs8)?,
        })
    }

    /// The public key, hex, as handed to agents at enrolment.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.public_key().as_ref())
    }

    /// Signs a serialisable payload.
    pub fn sign<T: Serialize>(&self, payload: &T) -> Envelope {
        let payload = serde_json::to_string(payload).expect("payload types serialise infallibly");
        self.sign_text(payload)
    }

    /// Signs an already serialised payload.
    pub fn sign_text(&self, payload: String) -> Envelope {
        let signature = hex::encode(self.key.sign(payload.as_bytes()).as_ref());
        Envelope { payload, signature }
    }
}

/// Verifies an Ed25519-signed envelope against a hex public key.
pub fn verify_ed25519(envelope: &Envelope, public_key_hex: &str) -> Result<(), SignatureError> {
    let key = hex::decode(public_key_hex).ok_or(SignatureError::MalformedKey)?;
    verify(&ED25519, envelope, &key)
}

/// A device's ECDSA key: P-256 for new devices (a tenth of P-384's cost in every full TLS
/// handshake, the same 128-bit security as the X25519 key exchange), P-384 for devices
/// enrolled before, which keep theirs.
pub struct DeviceKey {
    key: EcdsaKeyPair,
}

/// The curves a device key may be on, newest first.
const DEVICE_CURVES: [&EcdsaSigningAlgorithm; 2] = [
    &ECDSA_P256_SHA256_ASN1_SIGNING,
    &ECDSA_P384_SHA384_ASN1_SIGNING,
];

impl DeviceKey {
    /// Generates a new (P-256) key, returning its PKCS#8 document for storage.
    pub fn generate_pkcs8() -> Result<Vec<u8>, ring::error::Unspecified> {
        Self::generate_on(DEVICE_CURVES[0])
    }

    /// Generates a P-384 key, as devices enrolled before P-256 have (for tests and the
    /// simulator's legacy fleet).
    pub fn generate_legacy_p384_pkcs8() -> Result<Vec<u8>, ring::error::Unspecified> {
        Self::generate_on(DEVICE_CURVES[1])
    }

    fn generate_on(
        alg: &'static EcdsaSigningAlgorithm,
    ) -> Result<Vec<u8>, ring::error::Unspecified> {
        Ok(EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new())?
            .as_ref()
            .to_vec())
    }

    /// Loads a P-256 or P-384 key from its PKCS#8 document.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, ring::error::KeyRejected> {
        let mut rejected = None;
        for alg in DEVICE_CURVES {
            match EcdsaKeyPair::from_pkcs8(alg, pkcs8, &SystemRandom::new()) {
                Ok(key) => return Ok(Self { key }),
                Err(e) => rejected = Some(e),
            }
        }
        Err(rejected.expect("at least one curve is tried"))
    }

    /// The raw public key (uncompressed point).
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    /// Signs a serialisable payload, proving possession of this key.
    pub fn sign<T: Serialize>(&self, payload: &T) -> Result<Envelope, ring::error::Unspecified> {
        let payload = serde_json::to_string(payload).expect("payload types serialise infallibly");
        let sig = self.key.sign(&SystemRandom::new(), payload.as_bytes())?;
        Ok(Envelope {
            payload,
            signature: hex::encode(sig.as_ref()),
        })
    }
}

/// The curve of a raw uncompressed ECDSA public key, by its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceCurve {
    P256,
    P384,
}

impl DeviceCurve {
    /// `None` unless `raw` is 0x04 followed by 64 (P-256) or 96 (P-384) bytes.
    pub fn of(raw: &[u8]) -> Option<Self> {
        match (raw.first(), raw.len()) {
            (Some(4), 65) => Some(Self::P256),
            (Some(4), 97) => Some(Self::P384),
            _ => None,
        }
    }
}

/// Verifies a device's ECDSA (ASN.1 signature) envelope against its hex raw public key, on
/// the curve the key's length names.
pub fn verify_device_signature(
    envelope: &Envelope,
    public_key_hex: &str,
) -> Result<(), SignatureError> {
    let key = hex::decode(public_key_hex).ok_or(SignatureError::MalformedKey)?;
    match DeviceCurve::of(&key).ok_or(SignatureError::MalformedKey)? {
        DeviceCurve::P256 => verify(&ECDSA_P256_SHA256_ASN1, envelope, &key),
        DeviceCurve::P384 => verify(&ECDSA_P384_SHA384_ASN1, envelope, &key),
    }
}

fn verify(
    alg: &'static dyn signature::VerificationAlgorithm,
    envelope: &Envelope,
    key: &[u8],
) -> Result<(), SignatureError> {
    let sig = hex::decode(&envelope.signature).ok_or(SignatureError::MalformedSignature)?;
    UnparsedPublicKey::new(alg, key)
        .verify(envelope.payload.as_bytes(), &sig)
        .map_err(|_| SignatureError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> BundleSigner {
        BundleSigner::from_pkcs8(&BundleSigner::generate_pkcs8().unwrap()).unwrap()
    }

    #[test]
    fn ed25519_accepts_untouched_payload() {
        let s = signer();
        let env = s.sign(&serde_json::json!({"a": 1}));
        assert_eq!(verify_ed25519(&env, &s.public_key_hex()), Ok(()));
    }

    #[test]
    fn ed25519_rejects_tampered_payload_and_wrong_key() {
        let s = signer();
        let mut env = s.sign(&serde_json::json!({"a": 1}));
        env.payload = env.payload.replace('1', "2");
        assert_eq!(
            verify_ed25519(&env, &s.public_key_hex()),
            Err(SignatureError::Invalid)
        );
        let env = s.sign(&serde_json::json!({"a": 1}));
        assert_eq!(
            verify_ed25519(&env, &signer().public_key_hex()),
            Err(SignatureError::Invalid)
        );
        let mut bad = env.clone();
        bad.signature = "not hex".into();
        assert_eq!(
            verify_ed25519(&bad, &s.public_key_hex()),
            Err(SignatureError::MalformedSignature)
        );
    }

    #[test]
    fn device_keys_on_either_curve_prove_possession() {
        for (pkcs8, len) in [
            (DeviceKey::generate_pkcs8().unwrap(), 65),
            (DeviceKey::generate_legacy_p384_pkcs8().unwrap(), 97),
        ] {
            let key = DeviceKey::from_pkcs8(&pkcs8).unwrap();
            assert_eq!(key.public_key().len(), len);
            let env = key.sign(&serde_json::json!({"k": "v"})).unwrap();
            let pk = hex::encode(key.public_key());
            assert_eq!(verify_device_signature(&env, &pk), Ok(()));
            let mut tampered = env.clone();
            tampered.payload.push(' ');
            assert_eq!(
                verify_device_signature(&tampered, &pk),
                Err(SignatureError::Invalid)
            );
            assert_eq!(
                verify_device_signature(&env, &pk[..pk.len() - 2]),
                Err(SignatureError::MalformedKey)
            );
        }
    }
}
