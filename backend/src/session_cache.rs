//! The device listener's TLS session store: one resumable session per device, for a fleet.
//!
//! rustls' own `ServerSessionMemoryCache` finds the entry to forget by a linear scan of its
//! insertion order on every resumption (TLS 1.3 tickets are single-use, so every resumption
//! removes one). At 10,000 devices that scan was a tenth of the backend's CPU; at a million
//! it would be most of it. This store does every operation in O(1): sharded hash maps, and
//! eviction by generations (when a shard's current map is half the shard's capacity it
//! becomes the previous one and the old previous is dropped), which forgets roughly the
//! oldest sessions first.

use std::collections::HashMap;
use std::sync::Mutex;

use rustls::server::StoresServerSessions;

const SHARDS: usize = 16;

/// Sessions kept by default: one per device of a 1 M device fleet. Entries are about 700 B
/// (the client certificate is part of the session), and are only allocated as devices
/// connect.
pub const DEFAULT_CAPACITY: usize = 1 << 20;

#[derive(Default)]
struct Shard {
    current: HashMap<Vec<u8>, Vec<u8>>,
    previous: HashMap<Vec<u8>, Vec<u8>>,
}

/// A bounded, sharded, O(1) [`StoresServerSessions`].
pub struct SessionCache {
    shards: Vec<Mutex<Shard>>,
    generation_len: usize,
}

impl SessionCache {
    /// A store holding at most about `capacity` sessions.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            generation_len: (capacity / SHARDS / 2).max(1),
        }
    }

    fn shard(&self, key: &[u8]) -> std::sync::MutexGuard<'_, Shard> {
        // Keys are random session ids from rustls, but hash anyway: a weak key must not
        // crowd one shard.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.iter().take(16) {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        // A panic while holding a shard cannot leave a map half-updated in a way that
        // matters: at worst a session is lost and the device makes a full handshake.
        self.shards[(h as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sessions held now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|p| p.into_inner());
                s.current.len() + s.previous.len()
            })
            .sum()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("capacity", &(self.generation_len * 2 * SHARDS))
            .finish_non_exhaustive()
    }
}

impl StoresServerSessions for SessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let retired = {
            let mut shard = self.shard(&key);
            let retired = if shard.current.len() >= self.generation_len {
                let full = std::mem::take(&mut shard.current);
                Some(std::mem::replace(&mut shard.previous, full))
            } else {
                None
            };
            shard.previous.remove(&key);
            shard.current.insert(key, value);
            retired
        };
        // Freeing a generation's allocations happens outside the lock.
        drop(retired);
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let shard = self.shard(key);
        shard
            .current
            .get(key)
            .or_else(|| shard.previous.get(key))
            .cloned()
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut shard = self.shard(key);
        shard
            .current
            .remove(key)
            .or_else(|| shard.previous.remove(key))
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> Vec<u8> {
        let mut k = vec![0u8; 32];
        k[..4].copy_from_slice(&i.to_be_bytes());
        k[28..].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
        k
    }

    #[test]
    fn put_get_take() {
        let cache = SessionCache::new(1024);
        assert!(cache.put(key(1), b"one".to_vec()));
        assert_eq!(cache.get(&key(1)).as_deref(), Some(&b"one"[..]));
        assert_eq!(cache.take(&key(1)).as_deref(), Some(&b"one"[..]));
        assert_eq!(cache.take(&key(1)), None, "a session resumes once");
        assert_eq!(cache.get(&key(2)), None);
    }

    #[test]
    fn stays_bounded_and_forgets_the_oldest_first() {
        let capacity = 1600;
        let cache = SessionCache::new(capacity);
        for i in 0..20_000 {
            cache.put(key(i), i.to_le_bytes().to_vec());
        }
        assert!(cache.len() <= capacity, "{} sessions held", cache.len());
        assert!(cache.len() >= capacity / 2, "{} sessions held", cache.len());
        // A quarter of the capacity is always within the last two generations of a shard.
        let recent = 20_000 - capacity as u32 / 4..20_000;
        assert!(recent.into_iter().all(|i| cache.get(&key(i)).is_some()));
        assert!((0..1000).all(|i| cache.get(&key(i)).is_none()));
    }

    #[test]
    fn replacing_a_key_keeps_one_entry() {
        let cache = SessionCache::new(SHARDS * 4);
        cache.put(key(7), b"a".to_vec());
        for i in 100..110 {
            cache.put(key(i), vec![]);
        }
        cache.put(key(7), b"b".to_vec());
        assert_eq!(cache.take(&key(7)).as_deref(), Some(&b"b"[..]));
        assert_eq!(cache.take(&key(7)), None);
    }
}
