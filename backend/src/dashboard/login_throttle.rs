//! Brute-force protection for the login form: a user name, or a source address, with too
//! many failed logins in a short window is locked until the window has passed, whatever
//! password comes next.
//!
//! Counted per name (known or not) and per address, in memory: a restart clears it. Locking by name can be
//! used to keep an operator out for a while, which is the price of not letting guesses
//! through; operators of the API use tokens and are not affected.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins of one name that lock it.
pub const MAX_FAILURES: usize = 5;
/// Failed logins from one source address that lock it, whatever names it tries (higher, as
/// operators behind one NAT or proxy share an address).
pub const MAX_ADDRESS_FAILURES: usize = 20;
/// How long failures count, and so how long a lock lasts at most.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Longest user name counted or logged; longer ones cannot be operators' (see
/// `operator_accounts::validate_username`).
pub const MAX_NAME_BYTES: usize = 64;
/// Names (and addresses) tracked at most; past that the stalest are dropped, so guessing
/// many names cannot exhaust memory.
const MAX_KEYS: usize = 10_000;

/// Failed logins by user name and by source address.
pub struct LoginThrottle {
    by_name: Failures,
    by_address: Failures,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            by_name: Failures::new(MAX_FAILURES),
            by_address: Failures::new(MAX_ADDRESS_FAILURES),
        }
    }
}

impl LoginThrottle {
    /// How long a login of `name` from `address` must wait; `None` when it may try now.
    pub fn locked_for(&self, name: &str, address: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let by_name = self.by_name.locked_at(&name_key(name), now);
        let by_address = self.by_address.locked_at(&address.to_string(), now);
        by_name.max(by_address)
    }

    /// Counts a failed login of `name` from `address`.
    pub fn failed(&self, name: &str, address: IpAddr) {
        let now = Instant::now();
        self.by_name.failed_at(&name_key(name), now);
        self.by_address.failed_at(&address.to_string(), now);
    }

    /// Counts a failed login from `address` whose name is not worth keeping (too long).
    pub fn failed_from(&self, address: IpAddr) {
        self.by_address
            .failed_at(&address.to_string(), Instant::now());
    }

    /// Forgets the failures of `name` after a successful login (not its address's: one
    /// account's password must not reset guessing at the others).
    pub fn succeeded(&self, name: &str) {
        self.by_name.lock().remove(&name_key(name));
    }
}

/// Failed logins by key, each locked after `max` in [`WINDOW`].
struct Failures {
    max: usize,
    times: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Failures {
    fn new(max: usize) -> Self {
        Self {
            max,
            times: Mutex::default(),
        }
    }

    fn locked_at(&self, key: &str, now: Instant) -> Option<Duration> {
        let mut failures = self.lock();
        let recent = failures.get_mut(key)?;
        recent.retain(|t| now.duration_since(*t) < WINDOW);
        if recent.len() < self.max {
            return None;
        }
        let oldest = recent[recent.len() - self.max];
        Some(WINDOW.saturating_sub(now.duration_since(oldest)))
    }

    fn failed_at(&self, key: &str, now: Instant) {
        let mut failures = self.lock();
        if failures.len() >= MAX_KEYS && !failures.contains_key(key) {
            failures.retain(|_, times| {
                times
                    .last()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
            if failures.len() >= MAX_KEYS
                && let Some(stalest) = failures
                    .iter()
                    .min_by_key(|(_, times)| times.last().copied())
                    .map(|(key, _)| key.clone())
            {
                failures.remove(&stalest);
            }
        }
        let recent = failures.entry(key.to_string()).or_default();
        recent.retain(|t| now.duration_since(*t) < WINDOW);
        // Only the newest `max` matter for the lock; older ones would only take memory.
        if recent.len() >= self.max {
            recent.remove(0);
        }
        recent.push(now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Instant>>> {
        // A panic elsewhere while holding the lock leaves counts that are still valid.
        self.times
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Names differing only in case or surrounding spaces count as one; a name past
/// [`MAX_NAME_BYTES`] is cut there (callers refuse such names before, this bounds memory).
fn name_key(name: &str) -> String {
    loggable(name.trim()).to_lowercase()
}

/// `name` cut to at most [`MAX_NAME_BYTES`], for logs.
pub fn loggable(name: &str) -> &str {
    let mut cut = name.len().min(MAX_NAME_BYTES);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    &name[..cut]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_locks_after_too_many_failures_until_the_window_passes() {
        let names = Failures::new(MAX_FAILURES);
        let start = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(names.locked_at("admin", start), None, "attempt {i}");
            names.failed_at(&name_key(" Admin"), start + Duration::from_secs(i as u64));
        }
        let later = start + Duration::from_secs(10);
        assert_eq!(
            names.locked_at("admin", later),
            Some(WINDOW - Duration::from_secs(10))
        );
        assert_eq!(
            names.locked_at("alice", later),
            None,
            "other names are free"
        );
        // The first failure leaving the window frees one attempt.
        assert_eq!(names.locked_at("admin", start + WINDOW), None);
        names.failed_at("admin", start + WINDOW);
        assert!(names.locked_at("admin", start + WINDOW).is_some());
    }

    #[test]
    fn an_address_guessing_many_names_is_locked_too() {
        let throttle = LoginThrottle::default();
        let attacker: IpAddr = "192.0.2.7".parse().expect("address");
        let operator: IpAddr = "192.0.2.8".parse().expect("address");
        for i in 0..MAX_ADDRESS_FAILURES {
            assert_eq!(throttle.locked_for(&format!("name{i}"), attacker), None);
            throttle.failed(&format!("name{i}"), attacker);
        }
        assert!(throttle.locked_for("a-new-name", attacker).is_some());
        assert_eq!(throttle.locked_for("a-new-name", operator), None);
        // A success on one name does not unlock the address.
        throttle.succeeded("name0");
        assert!(throttle.locked_for("name0", attacker).is_some());
    }

    #[test]
    fn success_clears_and_memory_stays_bounded() {
        let throttle = LoginThrottle::default();
        let here: IpAddr = "192.0.2.9".parse().expect("address");
        for _ in 0..MAX_FAILURES {
            throttle.failed("admin", here);
        }
        throttle.succeeded("ADMIN");
        let names = &throttle.by_name;
        assert_eq!(names.locked_at("admin", Instant::now()), None);
        let now = Instant::now();
        for i in 0..MAX_KEYS + 50 {
            names.failed_at(&format!("guess{i}"), now + Duration::from_millis(i as u64));
        }
        assert_eq!(names.lock().len(), MAX_KEYS);
        // One key holds at most its limit's worth of times.
        for _ in 0..1000 {
            names.failed_at("guess1", now);
        }
        assert_eq!(names.lock()["guess1"].len(), MAX_FAILURES);
    }

    #[test]
    fn long_names_are_cut_before_they_are_kept() {
        let long = "é".repeat(1000);
        let key = name_key(&long);
        assert!(key.len() <= MAX_NAME_BYTES, "{}", key.len());
        assert!(long.starts_with(&key));
    }
}
