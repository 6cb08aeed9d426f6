//! Plaintext passwords in a `passwords` document become SHA-512 crypt hashes before the
//! document is stored: plaintext never reaches the store, a bundle or a device.

use apiary_proto::policy::{Merge, Secret};
use serde_json::Value;
use sha_crypt::{PasswordHasher, ShaCrypt};

/// Bytes of random salt per hash (16 characters of crypt's base64).
const SALT_BYTES: usize = 12;

/// Replaces the plaintext of every item hash the policy's definition names (`password` in
/// `passwords`) with its hash; documents without such fields pass unchanged.
pub fn hash_plaintext(policy: &str, mut body: Value) -> Result<Value, String> {
    let Some(def) = apiary_proto::policy::find(policy) else {
        return Ok(body);
    };
    let Merge::List { items: list, .. } = def.merge() else {
        return Ok(body);
    };
    for secret in def.secrets() {
        let Secret::ItemHash { field, plaintext } = *secret else {
            continue;
        };
        let Some(items) = body.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for (i, item) in items.iter_mut().enumerate() {
            if let Some(obj) = item.as_object_mut() {
                hash_item(obj, field, plaintext).map_err(|e| format!("{list}[{i}]: {e}"))?;
            }
        }
    }
    Ok(body)
}

/// Puts the hash of `item[plaintext]` into `item[field]`.
fn hash_item(
    item: &mut serde_json::Map<String, Value>,
    field: &str,
    plaintext: &str,
) -> Result<(), String> {
    let Some(plain) = item.remove(plaintext) else {
        return Ok(());
    };
    let Value::String(plain) = plain else {
        return Err(format!("{plaintext} must be a string"));
    };
    if item.contains_key(field) {
        return Err(format!("give either {plaintext} or {field}, not both"));
    }
    if plain.is_empty() {
        return Err(format!(
            "an empty {plaintext} is refused; lock the account with \"{field}\": \"!\""
        ));
    }
    item.insert(field.into(), Value::String(sha512_crypt(&plain)));
    Ok(())
}

/// `$6$...` hash of `plain` with a fresh random salt.
pub fn sha512_crypt(plain: &str) -> String {
    let mut salt = [0u8; SALT_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .expect("the system random source works");
    ShaCrypt::SHA512
        .hash_password_with_salt(plain.as_bytes(), &salt)
        .expect("SHA-512 crypt accepts any password and a 12-byte salt")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sha_crypt::{PasswordHashRef, PasswordVerifier};

    #[test]
    fn plaintext_becomes_a_verifiable_hash() {
        let body = json!({"items": [{"user": "alice", "password": "s3cret"},
                                    {"user": "bob", "hash": "!"}]});
        let out = hash_plaintext("passwords", body).unwrap();
        let hash = out["items"][0]["hash"].as_str().unwrap();
        assert!(hash.starts_with("$6$"), "{hash}");
        assert!(out["items"][0].get("password").is_none());
        assert_eq!(out["items"][1]["hash"], "!");
        let parsed = PasswordHashRef::new(hash).unwrap();
        assert!(ShaCrypt::SHA512.verify_password(b"s3cret", parsed).is_ok());
        assert!(ShaCrypt::SHA512.verify_password(b"other", parsed).is_err());
        apiary_proto::policy::passwords::validate_password_hash("alice", hash).unwrap();
    }

    #[test]
    fn salts_differ() {
        assert_ne!(sha512_crypt("x"), sha512_crypt("x"));
    }

    #[test]
    fn refuses_ambiguous_or_empty() {
        for body in [
            json!({"items": [{"user": "a", "password": "x", "hash": "!"}]}),
            json!({"items": [{"user": "a", "password": ""}]}),
            json!({"items": [{"user": "a", "password": 5}]}),
        ] {
            assert!(hash_plaintext("passwords", body).is_err());
        }
    }
}
