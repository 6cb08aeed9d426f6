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

/// Why a password could not be checked now.
#[derive(Debug, thiserror::Error)]
#[error("too many logins at once; try again in a moment")]
pub struct Busy;

/// Argon2 runs at once: each takes a core for tens of milliseconds and 19 MiB, so logins
/// in parallel could otherwise exhaust the host.
const ARGON2_RUNNING: usize = 2;
/// Checks that may wait for a run; more are refused at once with [`Busy`].
const ARGON2_WAITING: usize = 32;

/// A global limit on Argon2 runs, with a bounded queue in front of it.
pub struct Argon2Gate {
    admitted: tokio::sync::Semaphore,
    running: tokio::sync::Semaphore,
}

static ARGON2: Argon2Gate = Argon2Gate::new(ARGON2_RUNNING, ARGON2_WAITING);

impl Argon2Gate {
    pub const fn new(running: usize, waiting: usize) -> Self {
        Self {
            admitted: tokio::sync::Semaphore::const_new(running + waiting),
            running: tokio::sync::Semaphore::const_new(running),
        }
    }

    /// Runs `work` on a blocking thread once a run slot is free; [`Busy`] if the queue is
    /// full (`wait_for_room` false) . The slot goes with the work, so a client that hangs up
    /// does not free it early.
    pub async fn run<T: Send + 'static>(
        &'static self,
        wait_for_room: bool,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let admitted = match wait_for_room {
            true => self.admitted.acquire().await.map_err(|_| Busy)?,
            false => self.admitted.try_acquire().map_err(|_| Busy)?,
        };
        let running = self.running.acquire().await.map_err(|_| Busy)?;
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop((running, admitted));
            result
        })
        .await
        .map_err(|_| Busy)
    }
}

/// [`verify_password`] off the async threads, under the global Argon2 limit.
pub async fn password_matches(password: &str, hash: &str) -> Result<bool, Busy> {
    let (password, hash) = (password.to_string(), hash.to_string());
    ARGON2
        .run(false, move || verify_password(&password, &hash))
        .await
}

/// [`hash_password`] off the async threads, waiting its turn (operators' own actions).
async fn hash_in_background(password: &str) -> String {
    let password = password.to_string();
    ARGON2
        .run(true, move || hash_password(&password))
        .await
        .expect("hashing a password does not panic and the gate is never closed")
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn argon2_runs_at_most_its_limit_at_once_and_refuses_past_its_queue() {
        static GATE: Argon2Gate = Argon2Gate::new(2, 3);
        static NOW: AtomicUsize = AtomicUsize::new(0);
        static MOST: AtomicUsize = AtomicUsize::new(0);
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = std::sync::Arc::new(std::sync::Mutex::new(hold));
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let hold = hold.clone();
            tasks.push(tokio::spawn(GATE.run(false, move || {
                let n = NOW.fetch_add(1, Ordering::SeqCst) + 1;
                MOST.fetch_max(n, Ordering::SeqCst);
                let _ = hold.lock().expect("lock").recv();
                NOW.fetch_sub(1, Ordering::SeqCst);
            })));
        }
        // Every task reaches the gate: those past the queue return at once, the others
        // wait on the held runs (a gate without a queue limit hangs here).
        while tasks.iter().filter(|t| t.is_finished()).count() < 7 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        for _ in 0..5 {
            release.send(()).expect("a run is waiting");
        }
        let mut busy = 0;
        for t in tasks {
            if t.await.expect("task").is_err() {
                busy += 1;
            }
        }
        assert_eq!(
            busy, 7,
            "2 running and 3 waiting admitted, the rest refused"
        );
        assert_eq!(MOST.load(Ordering::SeqCst), 2);
    }

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
