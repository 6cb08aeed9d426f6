//! Dashboard operator accounts: names, Argon2id password hashes, and the first admin, made
//! when a backend finds no operator at all (a new data dir, or one from before dashboards).

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use crate::store::operators::{Operator, OperatorStore, Role};
use crate::store::{Store, StoreError};

/// Name of the operator made on first start.
pub const FIRST_ADMIN: &str = "admin";
/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

/// Operator names: 1 to 64 letters, digits, `.`, `_`, `-`, `@`.
pub fn validate_username(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "operator name {name:?} must be 1 to 64 letters, digits, '.', '_', '-' or '@'"
        ))
    }
}

/// Refuses passwords too short to resist guessing.
pub fn validate_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        Err(format!(
            "a password needs at least {MIN_PASSWORD_LEN} characters"
        ))
    } else {
        Ok(())
    }
}

/// Argon2id (memory-hard, the crate's defaults: 19 MiB, 2 passes) with a random salt.
pub fn hash_password(password: &str) -> String {
    let salt = random_bytes::<16>();
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .expect("Argon2 accepts any password with a 16-byte salt")
        .to_string()
}

/// True when `password` matches the stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// [`verify_password`] off the async threads: Argon2 takes tens of milliseconds and 19 MiB.
pub async fn password_matches(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_string(), hash.to_string());
    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false)
}

/// [`hash_password`] off the async threads.
async fn hash_in_background(password: &str) -> String {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .expect("hashing a password does not panic")
}

/// A hash no password matches, verified against for unknown names so that a login takes
/// as long whether or not the name exists.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&apiary_proto::hex::random(16)))
}

/// A random password: 24 lowercase hex characters (96 bits).
pub fn random_password() -> String {
    apiary_proto::hex::random(12)
}

/// Makes the first admin when there is no operator; returns its password (to show once).
pub async fn ensure_first_admin(store: &dyn Store) -> Result<Option<String>, StoreError> {
    if store.operator_count().await? > 0 {
        return Ok(None);
    }
    let password = random_password();
    add(store, FIRST_ADMIN, &password, Role::Admin).await?;
    Ok(Some(password))
}

/// Adds an operator after checking name and password.
pub async fn add(
    store: &dyn OperatorStore,
    username: &str,
    password: &str,
    role: Role,
) -> Result<(), StoreError> {
    validate_username(username).map_err(StoreError::Conflict)?;
    validate_password(password).map_err(StoreError::Conflict)?;
    store
        .insert_operator(Operator {
            username: username.to_string(),
            password_hash: hash_in_background(password).await,
            role,
            created_at: crate::state::now(),
        })
        .await
}

/// Sets a checked password (hashing off the async threads) and ends the operator's
/// sessions; false if there is no such operator.
pub async fn set_password(
    store: &dyn OperatorStore,
    username: &str,
    password: &str,
) -> Result<bool, StoreError> {
    validate_password(password).map_err(StoreError::Conflict)?;
    let hash = hash_in_background(password).await;
    store.set_operator_password(username, &hash).await
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut out)
        .expect("the system random source works");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_password("correct horse battery");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse batterY", &a));
        assert_ne!(a, hash_password("correct horse battery"), "salted");
        assert!(!verify_password("", decoy_hash()));
    }

    #[test]
    fn names_and_passwords() {
        assert!(validate_username("ops.oslo@example").is_ok());
        assert!(validate_username("a b").is_err());
        assert!(validate_username("").is_err());
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough!").is_ok());
    }
}
