//! What an idle check-in needs, kept in memory, and its `last_checkin` written behind.
//!
//! An idle check-in (nothing reported, nothing changed) needs three facts: that the device
//! is approved with the presented certificate, the hash of its current bundle, and that
//! nothing it says differs from the last check-in recorded in full. This cache holds them
//! per device, so such a check-in touches no database: its time goes into [`CheckinCache::touch`],
//! and the store writes those times in one transaction per second ([`CheckinCache::take_touched`]).
//!
//! Contract for a store using it:
//! - after committing a change to a device's status, certificate or bundles, call
//!   [`CheckinCache::invalidate`] (or [`CheckinCache::invalidate_all`]);
//! - to fill the cache, take [`CheckinCache::epoch`] *before* reading the database and pass
//!   it to [`CheckinCache::insert`]: a read that raced an invalidation is then not cached.
//!
//! The cache is per process. Replicas sharing a database would need the invalidations
//! broadcast; the SQLite store is single-node.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use apiary_proto::hex;

use super::Timestamp;

/// What the check-in of an approved device needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckinState {
    /// SHA-256 (hex) of the certificate issued at approval or the last renewal.
    pub cert_fingerprint: String,
    /// The certificate before the last renewal, still accepted until the device presents
    /// the new one. A device with one is never cached (the window is one check-in long).
    pub previous_cert: Option<String>,
    /// Hash of the device's latest bundle, if it has one.
    pub current_bundle: Option<String>,
    /// What the last check-in recorded in full said, if this process saw it.
    pub recorded: Option<RecordedCheckin>,
}

/// The parts of a fully recorded check-in that an idle one must repeat to skip the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedCheckin {
    /// The bundle the device had applied.
    pub applied_hash: Option<String>,
    pub remote_ip: IpAddr,
    /// No error and no refused bundle: repeating the check-in changes no rollout state.
    pub settled: bool,
}

impl CheckinState {
    /// True when a check-in from `remote_ip` with `applied_hash`, reporting nothing and
    /// sending no facts, would record nothing but its time.
    pub fn repeats_last(&self, applied_hash: Option<&str>, remote_ip: IpAddr) -> bool {
        self.recorded.as_ref().is_some_and(|r| {
            r.settled && r.remote_ip == remote_ip && r.applied_hash.as_deref() == applied_hash
        })
    }
}

type Digest = [u8; 32];

fn digest(text: &str) -> Option<Digest> {
    hex::decode(text)?.try_into().ok()
}

/// An optional digest in compact form; `None` when it is present but not a digest.
fn optional_digest(text: Option<&str>) -> Option<Option<Digest>> {
    text.map_or(Some(None), |t| digest(t).map(Some))
}

/// The compact form kept per device (about 200 B with the map's own overhead).
struct Entry {
    fingerprint: Digest,
    current_bundle: Option<Digest>,
    recorded: Option<(Option<Digest>, IpAddr, bool)>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<Digest, Entry>,
    epoch: u64,
}

/// Per-device check-in state and the write-behind `last_checkin` times.
#[derive(Default)]
pub struct CheckinCache {
    entries: Mutex<Entries>,
    touched: Mutex<HashMap<String, Timestamp>>,
}

impl CheckinCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Every update below is a single map operation, so a poisoned lock holds a
        // consistent map.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The device's cached state, if any.
    pub fn get(&self, device_id: &str) -> Option<CheckinState> {
        let key = digest(device_id)?;
        let entries = self.entries();
        let e = entries.map.get(&key)?;
        Some(CheckinState {
            cert_fingerprint: hex::encode(&e.fingerprint),
            previous_cert: None,
            current_bundle: e.current_bundle.map(|d| hex::encode(&d)),
            recorded: e.recorded.map(|(applied, ip, settled)| RecordedCheckin {
                applied_hash: applied.map(|d| hex::encode(&d)),
                remote_ip: ip,
                settled,
            }),
        })
    }

    /// The invalidation count, to be read before the database read that fills the cache.
    pub fn epoch(&self) -> u64 {
        self.entries().epoch
    }

    /// Caches `state`, unless an invalidation happened since `epoch` or a value is not a
    /// SHA-256 hex digest (such a device is simply never cached).
    pub fn insert(&self, device_id: &str, state: &CheckinState, epoch: u64) {
        let (Some(key), Some(fingerprint)) = (digest(device_id), digest(&state.cert_fingerprint))
        else {
            return;
        };
        if state.previous_cert.is_some() {
            return;
        }
        let Some(current_bundle) = optional_digest(state.current_bundle.as_deref()) else {
            return;
        };
        let mut entries = self.entries();
        if entries.epoch == epoch {
            entries.map.insert(
                key,
                Entry {
                    fingerprint,
                    current_bundle,
                    recorded: None,
                },
            );
        }
    }

    /// Remembers what a check-in recorded in full said (no-op if the device is not cached).
    pub fn record(&self, device_id: &str, recorded: RecordedCheckin) {
        let Some(key) = digest(device_id) else { return };
        // An applied hash that is not a digest cannot be compared compactly: forget instead.
        let value = optional_digest(recorded.applied_hash.as_deref())
            .map(|applied| (applied, recorded.remote_ip, recorded.settled));
        if let Some(e) = self.entries().map.get_mut(&key) {
            e.recorded = value;
        }
    }

    /// Forgets a device after its status, certificate or bundles changed.
    pub fn invalidate(&self, device_id: &str) {
        let mut entries = self.entries();
        entries.epoch += 1;
        if let Some(key) = digest(device_id) {
            entries.map.remove(&key);
        }
    }

    /// Forgets every device (a change whose set of devices is not known here).
    pub fn invalidate_all(&self) {
        let mut entries = self.entries();
        entries.epoch += 1;
        entries.map.clear();
    }

    /// Notes an idle check-in's time, to be written by the next flush.
    pub fn touch(&self, device_id: &str, now: Timestamp) {
        let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        touched.insert(device_id.to_string(), now);
    }

    /// Puts back a time a failed flush did not write, unless a later one was noted since.
    pub fn touch_if_newer(&self, device_id: &str, time: Timestamp) {
        let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        let t = touched.entry(device_id.to_string()).or_insert(time);
        *t = (*t).max(time);
    }

    /// Takes the times noted since the last flush.
    pub fn take_touched(&self) -> HashMap<String, Timestamp> {
        std::mem::take(&mut *self.touched.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Devices cached now.
    pub fn len(&self) -> usize {
        self.entries().map.len()
    }

    /// Whether no device is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> String {
        hex::encode(&[n; 32])
    }

    fn state() -> CheckinState {
        CheckinState {
            cert_fingerprint: d(1),
            previous_cert: None,
            current_bundle: Some(d(2)),
            recorded: None,
        }
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_cached() {
        let cache = CheckinCache::default();
        let before = cache.epoch();
        cache.invalidate(&d(9));
        cache.insert(&d(9), &state(), before);
        assert_eq!(cache.get(&d(9)), None);
        cache.insert(&d(9), &state(), cache.epoch());
        assert_eq!(cache.get(&d(9)), Some(state()));
        cache.invalidate(&d(9));
        assert_eq!(cache.get(&d(9)), None);
    }

    #[test]
    fn an_idle_check_in_repeats_only_a_settled_record() {
        let cache = CheckinCache::default();
        let ip: IpAddr = "10.0.0.7".parse().expect("an address");
        cache.insert(&d(9), &state(), cache.epoch());
        assert!(
            !cache
                .get(&d(9))
                .expect("cached")
                .repeats_last(Some(&d(2)), ip)
        );
        let recorded = |settled| RecordedCheckin {
            applied_hash: Some(d(2)),
            remote_ip: ip,
            settled,
        };
        cache.record(&d(9), recorded(false));
        assert!(
            !cache
                .get(&d(9))
                .expect("cached")
                .repeats_last(Some(&d(2)), ip)
        );
        cache.record(&d(9), recorded(true));
        let s = cache.get(&d(9)).expect("cached");
        assert!(s.repeats_last(Some(&d(2)), ip));
        assert!(!s.repeats_last(Some(&d(3)), ip), "another bundle");
        assert!(!s.repeats_last(None, ip), "no bundle");
        assert!(!s.repeats_last(Some(&d(2)), "10.0.0.8".parse().expect("an address")));
    }

    #[test]
    fn values_that_are_not_digests_are_never_cached() {
        let cache = CheckinCache::default();
        let mut odd = state();
        odd.cert_fingerprint = "not hex".into();
        cache.insert(&d(9), &odd, cache.epoch());
        cache.insert("short", &state(), cache.epoch());
        assert!(cache.is_empty());
    }

    #[test]
    fn touches_are_taken_once_and_keep_the_latest_time() {
        let cache = CheckinCache::default();
        cache.touch("a", 10);
        cache.touch("a", 12);
        cache.touch("b", 11);
        let taken = cache.take_touched();
        assert_eq!(taken.len(), 2);
        assert_eq!(taken["a"], 12);
        assert!(cache.take_touched().is_empty());
    }
}
