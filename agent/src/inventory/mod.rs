//! Inventory: collecting each kind and sending only what the backend has not acknowledged.
//!
//! Every check-in collects the cheap kinds (system, users, ports, and processes when
//! `settings.process_inventory` is on) and, at most every `software_inventory_hours`, the
//! software. A kind goes up only when its SHA-256 differs from the one the backend last
//! acknowledged; those hashes are kept in the state dir (tmpfs), so a reboot sends every
//! kind once. Nothing here runs a shell.

pub mod ports;
pub mod processes;
pub mod software;
pub mod system;
pub mod users;

use std::collections::BTreeMap;
use std::path::Path;

use apiary_proto::inventory::{INVENTORY_BATCH_BYTES, Inventory, InventoryUpload, Kind};
use apiary_proto::policy::settings::Settings;
use serde::{Deserialize, Serialize};

use crate::safe_fs;

/// State-dir file with the acknowledged hashes and the last software collection.
const STATE_FILE: &str = "inventory.json";

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
struct Acknowledged {
    hashes: BTreeMap<Kind, String>,
    /// When the software kind was last collected and found acknowledged.
    software_at: u64,
}

/// What one check-in carries, and what to record once the backend has it.
#[derive(Default)]
pub struct Pending {
    /// The kinds to send (the check-in takes them; `sent` remembers which went).
    pub uploads: Vec<InventoryUpload>,
    sent: Vec<Kind>,
    /// The hash of every kind as the agent knows it now, for the daily comparison.
    pub hashes: BTreeMap<Kind, String>,
    /// The software kind was collected and is either in `uploads` or already acknowledged.
    software_settled: bool,
    /// The state dir's record as `pending` read it, which `acknowledged` updates.
    before: Acknowledged,
}

/// Collects the inventory across cycles (it remembers CPU times for the processes kind).
#[derive(Default)]
pub struct Collector {
    cpu: processes::CpuHistory,
}

impl Collector {
    /// The kinds due and changed, as uploads fitting one check-in. `redact` hides secrets
    /// in process command lines.
    pub fn pending(
        &mut self,
        state_dir: &Path,
        settings: &Settings,
        now: u64,
        redact: &dyn Fn(&str) -> String,
    ) -> Pending {
        let acked = load(state_dir);
        let software_due = !acked.hashes.contains_key(&Kind::Software)
            || now.saturating_sub(acked.software_at)
                >= settings.software_inventory_hours.saturating_mul(3600);
        let mut collected: Vec<Inventory> = vec![Inventory::System(Box::new(system::collect()))];
        if software_due {
            collected.push(Inventory::Software(software::collect()));
        }
        collected.extend(users::collect().map(Inventory::Users));
        collected.push(Inventory::Ports(ports::collect()));
        if settings.process_inventory {
            let names: Vec<(u32, String)> = crate::system::accounts::accounts()
                .unwrap_or_default()
                .into_iter()
                .map(|a| (a.uid, a.name))
                .collect();
            collected.push(Inventory::Processes(self.cpu.collect(&names, redact)));
        } else if acked.hashes.contains_key(&Kind::Processes) {
            // Turned off: one empty list, so the backend stops showing stale processes.
            collected.push(Inventory::Processes(Vec::new()));
        }

        let mut pending = Pending {
            hashes: acked.hashes.clone(),
            before: acked.clone(),
            ..Pending::default()
        };
        let mut room = INVENTORY_BATCH_BYTES;
        for mut data in collected {
            let kind = data.kind();
            let (hash, size) = hash_fitting(&mut data, INVENTORY_BATCH_BYTES);
            pending.hashes.insert(kind, hash.clone());
            let unchanged = acked.hashes.get(&kind) == Some(&hash);
            let fits = size <= room;
            if !unchanged && fits {
                room -= size;
                pending.sent.push(kind);
                pending.uploads.push(InventoryUpload { hash, data });
            }
            if kind == Kind::Software {
                pending.software_settled = unchanged || fits;
            }
        }
        pending
    }

    /// Records what the backend acknowledged (`pending` went through) and forgets the
    /// kinds it asked for again, so they go up at the next check-in.
    pub fn acknowledged(&self, state_dir: &Path, pending: &Pending, want: &[Kind], now: u64) {
        // Read by `pending` moments ago; the agent's lock keeps other writers out since.
        let before = &pending.before;
        let mut acked = before.clone();
        for kind in &pending.sent {
            if let Some(hash) = pending.hashes.get(kind) {
                acked.hashes.insert(*kind, hash.clone());
            }
        }
        if pending.software_settled {
            acked.software_at = now;
        }
        for kind in want {
            acked.hashes.remove(kind);
            if *kind == Kind::Software {
                acked.software_at = 0;
            }
        }
        if acked != *before {
            save(state_dir, &acked);
        }
    }
}

/// The SHA-256 of `data`'s JSON and its size, after cutting its list to `limit` bytes if it
/// is larger (halving it until it fits: a limit no real device reaches).
fn hash_fitting(data: &mut Inventory, limit: usize) -> (String, usize) {
    loop {
        let json = serde_json::to_vec(&*data).expect("inventory serialises");
        if json.len() <= limit || !halve(data) {
            return (apiary_proto::digest::sha256_hex(&json), json.len());
        }
    }
}

fn halve(data: &mut Inventory) -> bool {
    fn cut<T>(v: &mut Vec<T>) -> bool {
        let len = v.len();
        v.truncate(len / 2);
        len > 0
    }
    match data {
        Inventory::System(_) => false,
        Inventory::Software(lists) => lists
            .iter_mut()
            .map(|l| cut(&mut l.packages))
            .fold(false, |a, b| a | b),
        Inventory::Users(v) => cut(v),
        Inventory::Ports(v) => cut(v),
        Inventory::Processes(v) => cut(v),
    }
}

fn load(state_dir: &Path) -> Acknowledged {
    safe_fs::read(&state_dir.join(STATE_FILE), safe_fs::STATE_FILE_LIMIT)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save(state_dir: &Path, acked: &Acknowledged) {
    let json = serde_json::to_vec(acked).expect("hashes serialise");
    if let Err(e) = safe_fs::write_atomic(&state_dir.join(STATE_FILE), &json, 0o600) {
        eprintln!("warning: cannot record the acknowledged inventory: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(c: &mut Collector, dir: &Path, settings: &Settings, now: u64) -> Vec<Kind> {
        let p = c.pending(dir, settings, now, &|s| s.to_string());
        let kinds = p.uploads.iter().map(|u| u.data.kind()).collect();
        c.acknowledged(dir, &p, &[], now);
        kinds
    }

    #[test]
    fn kinds_go_up_once_until_they_change_or_are_asked_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Collector::default();
        let s = Settings::default();
        let first = pending(&mut c, dir.path(), &s, 1000);
        assert!(
            first.contains(&Kind::System) && first.contains(&Kind::Software),
            "{first:?}"
        );
        assert!(!first.contains(&Kind::Processes), "off by default");
        // This test process opens no port in between, but other tests' listeners may come
        // and go: only the kinds that cannot change are checked.
        let again = pending(&mut c, dir.path(), &s, 1060);
        assert!(
            !again.contains(&Kind::System) && !again.contains(&Kind::Software),
            "{again:?}"
        );

        let p = c.pending(dir.path(), &s, 1120, &|s| s.to_string());
        c.acknowledged(dir.path(), &p, &[Kind::Software, Kind::System], 1120);
        let asked = pending(&mut c, dir.path(), &s, 1180);
        assert!(
            asked.contains(&Kind::Software) && asked.contains(&Kind::System),
            "{asked:?}"
        );

        let on = Settings {
            process_inventory: true,
            ..Settings::default()
        };
        assert!(pending(&mut c, dir.path(), &on, 1240).contains(&Kind::Processes));
        let off = pending(&mut c, dir.path(), &s, 1300);
        assert!(
            off.contains(&Kind::Processes),
            "one empty list when turned off"
        );
        assert!(!pending(&mut c, dir.path(), &s, 1360).contains(&Kind::Processes));
    }

    #[test]
    fn software_is_collected_at_most_every_so_many_hours() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Collector::default();
        let s = Settings::default();
        let p = c.pending(dir.path(), &s, 10_000, &|s| s.to_string());
        c.acknowledged(dir.path(), &p, &[], 10_000);
        assert_eq!(load(dir.path()).software_at, 10_000);
        let p = c.pending(dir.path(), &s, 10_000 + 3600, &|s| s.to_string());
        c.acknowledged(dir.path(), &p, &[], 10_000 + 3600);
        assert_eq!(load(dir.path()).software_at, 10_000, "not due within 6 h");
        let later = 10_000 + 6 * 3600;
        let p = c.pending(dir.path(), &s, later, &|s| s.to_string());
        c.acknowledged(dir.path(), &p, &[], later);
        assert_eq!(load(dir.path()).software_at, later);
    }

    #[test]
    fn an_oversized_kind_is_cut_to_fit() {
        use apiary_proto::inventory::Port;
        let port = Port {
            protocol: "tcp".into(),
            address: "0.0.0.0".into(),
            port: 1,
            uid: 0,
            pid: None,
            process: None,
        };
        let mut data = Inventory::Ports(vec![port; 1000]);
        let (_, size) = hash_fitting(&mut data, 10_000);
        assert!(size <= 10_000, "{size}");
        let Inventory::Ports(left) = data else {
            unreachable!()
        };
        assert!(left.len() >= 100 && left.len() < 1000, "{}", left.len());
    }
}
