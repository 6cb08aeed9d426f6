//! Brute-force protection for the login form: a user name with too many failed logins in a
//! short window is locked until the window has passed, whatever password comes next.
//!
//! Counted per name (known or not), in memory: a restart clears it. Locking by name can be
//! used to keep an operator out for a while, which is the price of not letting guesses
//! through; operators of the API use tokens and are not affected.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins of one name that lock it.
pub const MAX_FAILURES: usize = 5;
/// How long failures count, and so how long a lock lasts at most.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Names tracked at most; past that the stalest are dropped, so guessing many names cannot
/// exhaust memory.
const MAX_NAMES: usize = 10_000;

/// Failed logins by user name.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginThrottle {
    /// How long `name` must wait before it may try again; `None` when it may try now.
    pub fn locked_for(&self, name: &str) -> Option<Duration> {
        self.locked_at(name, Instant::now())
    }

    /// Counts a failed login of `name`.
    pub fn failed(&self, name: &str) {
        self.failed_at(name, Instant::now());
    }

    /// Forgets the failures of `name` after a successful login.
    pub fn succeeded(&self, name: &str) {
        self.lock().remove(&key(name));
    }

    fn locked_at(&self, name: &str, now: Instant) -> Option<Duration> {
        let mut failures = self.lock();
        let recent = failures.get_mut(&key(name))?;
        recent.retain(|t| now.duration_since(*t) < WINDOW);
        if recent.len() < MAX_FAILURES {
            return None;
        }
        let oldest = recent[recent.len() - MAX_FAILURES];
        Some(WINDOW.saturating_sub(now.duration_since(oldest)))
    }

    fn failed_at(&self, name: &str, now: Instant) {
        let mut failures = self.lock();
        if failures.len() >= MAX_NAMES && !failures.contains_key(&key(name)) {
            failures.retain(|_, times| {
                times
                    .last()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
            if failures.len() >= MAX_NAMES
                && let Some(stalest) = failures
                    .iter()
                    .min_by_key(|(_, times)| times.last().copied())
                    .map(|(name, _)| name.clone())
            {
                failures.remove(&stalest);
            }
        }
        let recent = failures.entry(key(name)).or_default();
        recent.retain(|t| now.duration_since(*t) < WINDOW);
        recent.push(now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Instant>>> {
        // A panic elsewhere while holding the lock leaves counts that are still valid.
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Names differing only in case or surrounding spaces count as one.
fn key(name: &str) -> String {
    name.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_locks_after_too_many_failures_until_the_window_passes() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(throttle.locked_at("admin", start), None, "attempt {i}");
            throttle.failed_at(" Admin", start + Duration::from_secs(i as u64));
        }
        let later = start + Duration::from_secs(10);
        assert_eq!(
            throttle.locked_at("admin", later),
            Some(WINDOW - Duration::from_secs(10))
        );
        assert_eq!(
            throttle.locked_at("alice", later),
            None,
            "other names are free"
        );
        // The first failure leaving the window frees one attempt.
        assert_eq!(throttle.locked_at("admin", start + WINDOW), None);
        throttle.failed_at("admin", start + WINDOW);
        assert!(throttle.locked_at("admin", start + WINDOW).is_some());
    }

    #[test]
    fn success_clears_and_memory_stays_bounded() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES {
            throttle.failed_at("admin", now);
        }
        throttle.succeeded("ADMIN");
        assert_eq!(throttle.locked_at("admin", now), None);
        for i in 0..MAX_NAMES + 50 {
            throttle.failed_at(&format!("guess{i}"), now + Duration::from_millis(i as u64));
        }
        assert_eq!(throttle.lock().len(), MAX_NAMES);
    }
}
