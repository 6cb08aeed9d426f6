//! The agent's clock, for devices whose own is wrong: boards without a battery-backed clock
//! start in 1970, or wherever their last image was built.
//!
//! Certificates are always checked, against the *trusted time*: the system clock, but never
//! earlier than a floor the agent knows has passed. The floor is the agent's build time
//! (nothing runs before it was built), raised by every time the backend sends in a check-in
//! answer (it came over a verified TLS connection). The floor is kept in the state dir on
//! each such answer, and in the config dir (flash) at most once a day and only while the
//! system clock is off by more than [`SKEWED`], so a device with a good clock never writes
//! it. A clock that is *ahead* cannot be told from a device switched off for a long time;
//! the backend's long-lived server certificate covers that (docs/agent.md, "Clock").

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls_pki_types::UnixTime;

use crate::config::Dirs;
use crate::safe_fs;

/// When this agent was built (Unix seconds; 0 when the build did not say).
pub const BUILD_TIME: u64 = parse(env!("APIARY_BUILD_TIME"));
/// A skew beyond this is worth keeping the floor in flash for.
pub const SKEWED: u64 = 300;
/// The floor in flash is refreshed at most this often.
const FLASH_EVERY: u64 = 86400;
/// The file, in both directories, holding the floor (decimal Unix seconds).
const FILE: &str = "clock";

/// The floor, and the backend's last time with when it came: from there the floor moves on
/// with the monotonic clock, so a long-running agent's reports are not all stamped with one
/// moment. A mutex, not atomics: 32-bit MIPS has no 64-bit atomics.
struct Floor {
    known: u64,
    anchor: Option<(u64, Instant)>,
}

static FLOOR: Mutex<Floor> = Mutex::new(Floor {
    known: BUILD_TIME,
    anchor: None,
});

fn with_floor<T>(f: impl FnOnce(&mut Floor) -> T) -> T {
    // Every update is one assignment, so a poisoned lock still holds a consistent value.
    f(&mut FLOOR.lock().unwrap_or_else(|e| e.into_inner()))
}

const fn parse(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut value = 0u64;
    let mut i = 0;
    while i < bytes.len() {
        value = value * 10 + (bytes[i] - b'0') as u64;
        i += 1;
    }
    value
}

/// The system clock in Unix seconds (0 before 1970).
pub fn system_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The lowest time the agent knows has passed.
pub fn floor() -> u64 {
    with_floor(|f| match f.anchor {
        Some((time, at)) => f.known.max(time.saturating_add(at.elapsed().as_secs())),
        None => f.known,
    })
}

/// The system clock, never below [`floor`]: the time certificates are checked at and reports
/// are stamped with.
pub fn now() -> u64 {
    system_now().max(floor())
}

/// True when the system clock is provably behind (below the floor).
pub fn is_behind() -> bool {
    system_now() < floor()
}

/// Raises the floor from what earlier runs kept in `dirs` (a missing or bad file counts as
/// none: the build time still holds).
pub fn load(dirs: &Dirs) {
    for dir in [&dirs.config, &dirs.state] {
        if let Some(t) = read(&dir.join(FILE)) {
            with_floor(|f| f.known = f.known.max(t));
        }
    }
}

/// Takes the backend's time from a check-in answer: raises the floor, keeps it in the state
/// dir, and in the config dir when the system clock is off and the copy there is a day old.
/// Returns the skew (system clock minus backend's).
pub fn record_backend_time(dirs: &Dirs, backend: u64) -> i64 {
    with_floor(|f| {
        f.known = f.known.max(backend);
        f.anchor = Some((backend, Instant::now()));
    });
    persist(dirs, backend, system_now())
}

fn persist(dirs: &Dirs, backend: u64, system: u64) -> i64 {
    let skew = system as i64 - backend as i64;
    let text = backend.to_string();
    if let Err(e) = safe_fs::write_atomic(&dirs.state.join(FILE), text.as_bytes(), 0o600) {
        eprintln!("warning: cannot keep the backend's time in the state dir: {e}");
    }
    let in_flash = read(&dirs.config.join(FILE)).unwrap_or(0);
    let stale = backend.saturating_sub(in_flash) >= FLASH_EVERY;
    if skew.unsigned_abs() > SKEWED
        && stale
        && let Err(e) = safe_fs::write_atomic(&dirs.config.join(FILE), text.as_bytes(), 0o600)
    {
        eprintln!("warning: cannot keep the backend's time in the config dir: {e}");
    }
    skew
}

fn read(path: &Path) -> Option<u64> {
    let bytes = safe_fs::read(path, 64).ok()??;
    std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
}

/// The trusted time for rustls's certificate checks.
#[derive(Debug)]
pub struct TrustedTime;

impl rustls::time_provider::TimeProvider for TrustedTime {
    fn current_time(&self) -> Option<UnixTime> {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let floor = Duration::from_secs(floor());
        Some(UnixTime::since_unix_epoch(system.max(floor)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_time_is_a_number() {
        assert_eq!(parse("1796300000"), 1_796_300_000);
        assert_eq!(parse("0"), 0);
        assert!(floor() >= BUILD_TIME);
    }

    #[test]
    fn the_backend_s_time_raises_the_floor_and_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = Dirs {
            config: tmp.path().join("etc"),
            state: tmp.path().join("run"),
        };
        std::fs::create_dir_all(&dirs.config).unwrap();
        std::fs::create_dir_all(&dirs.state).unwrap();
        let kept = |dir: &Path| std::fs::read_to_string(dir.join(FILE)).ok();
        let backend = 1_800_000_000;
        // A good clock: the state dir only, never flash.
        assert_eq!(persist(&dirs, backend, backend + 3), 3);
        assert_eq!(kept(&dirs.state).as_deref(), Some("1800000000"));
        assert_eq!(kept(&dirs.config), None);
        // A clock in 1970: kept in flash too.
        assert_eq!(persist(&dirs, backend, 100), 100 - backend as i64);
        assert_eq!(kept(&dirs.config).as_deref(), Some("1800000000"));
        // Within the day, flash is not written again; the state dir is.
        persist(&dirs, backend + 60, 160);
        assert_eq!(kept(&dirs.config).as_deref(), Some("1800000000"));
        assert_eq!(kept(&dirs.state).as_deref(), Some("1800000060"));
        persist(&dirs, backend + FLASH_EVERY, 200);
        assert_eq!(kept(&dirs.config).as_deref(), Some("1800086400"));
        assert_eq!(read(&dirs.state.join(FILE)), Some(backend + FLASH_EVERY));
    }
}
