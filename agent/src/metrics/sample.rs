//! Reading one sample of every metric from `/proc` and `/sys`: CPU, memory, swap, load,
//! filesystems (`statvfs`), network counters and thermal zones.
//!
//! CPU and network are rates, computed against the counters of the previous sample (kept
//! with the queue in the state dir); the first sample after a boot has none and leaves
//! them empty.

use std::ffi::CString;
use std::fs;

use serde::{Deserialize, Serialize};

/// Counters of the previous sample, for rates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// `/proc/uptime` then, seconds: monotonic across clock changes, reset by a reboot.
    pub uptime: f64,
    /// user (with nice), system (with irq and softirq), iowait, total jiffies.
    pub cpu: Option<[u64; 4]>,
    /// (interface, received, sent) bytes.
    pub net: Vec<(String, u64, u64)>,
}

/// Filesystems worth watching: on disks and flash, not in memory or virtual.
const DISK_FILESYSTEMS: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "exfat", "f2fs", "ubifs", "jffs2", "ntfs",
    "ntfs3", "fuseblk", "zfs", "nilfs2", "jfs",
];

/// One reading at `uptime` (seconds, [`uptime`]): `(series, value)` in a stable order (the
/// catalogue's, instances sorted).
pub fn read(prev: &mut Counters, uptime: f64) -> Vec<(String, Option<f64>)> {
    let mut out: Vec<(String, Option<f64>)> = Vec::new();
    let elapsed = (prev.uptime > 0.0 && uptime > prev.uptime).then_some(uptime - prev.uptime);

    let cpu = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| cpu_counters(&s));
    let shares = match (prev.cpu, cpu) {
        (Some(a), Some(b)) if b[3] > a[3] => {
            let total = (b[3] - a[3]) as f64;
            let share = |i: usize| Some(round(100.0 * b[i].saturating_sub(a[i]) as f64 / total, 1));
            [share(0), share(1), share(2)]
        }
        _ => [None; 3],
    };
    for (name, v) in ["cpu.user", "cpu.system", "cpu.iowait"].iter().zip(shares) {
        out.push((name.to_string(), v));
    }

    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    out.extend(memory(&meminfo));

    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut loads = load.split_whitespace().map(decimal);
    for name in ["load.1", "load.5", "load.15"] {
        out.push((name.into(), loads.next().flatten()));
    }

    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut used = Vec::new();
    let mut free = Vec::new();
    for mount in disk_mounts(&mounts) {
        if let Some((pct, bytes)) = statvfs(&mount) {
            used.push((format!("fs.used:{mount}"), Some(pct)));
            free.push((format!("fs.free:{mount}"), Some(bytes)));
        }
    }
    out.extend(used);
    out.extend(free);

    let net = net_counters(&fs::read_to_string("/proc/net/dev").unwrap_or_default());
    let rate = |now: u64, then: Option<u64>| match (then, elapsed) {
        (Some(then), Some(secs)) if now >= then => Some((((now - then) as f64) / secs).round()),
        _ => None,
    };
    let mut tx = Vec::new();
    for (iface, rx_now, tx_now) in &net {
        let before = prev.net.iter().find(|b| b.0 == *iface);
        out.push((
            format!("net.rx:{iface}"),
            rate(*rx_now, before.map(|b| b.1)),
        ));
        tx.push((
            format!("net.tx:{iface}"),
            rate(*tx_now, before.map(|b| b.2)),
        ));
    }
    out.extend(tx);
    out.extend(temperatures());

    out.truncate(apiary_proto::metrics::MAX_SERIES);
    *prev = Counters { uptime, cpu, net };
    out
}

/// `/proc/uptime`'s first field, seconds since boot.
pub fn uptime() -> f64 {
    fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|u| decimal(u.split_whitespace().next()?))
        .unwrap_or(0.0)
}

/// A plain decimal as the kernel prints them (`-12`, `0.52`, `46639.89`): enough for
/// `/proc`, and much smaller than the full float parser.
pub fn decimal(text: &str) -> Option<f64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() || fraction.len() > 9 {
        return None;
    }
    let mut value = whole.parse::<u64>().ok()? as f64;
    if !fraction.is_empty() {
        value += fraction.parse::<u64>().ok()? as f64 / 10f64.powi(fraction.len() as i32);
    }
    Some(if negative { -value } else { value })
}

fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

/// The `cpu` line of `/proc/stat`: user nice system idle iowait irq softirq steal ...
pub fn cpu_counters(stat: &str) -> Option<[u64; 4]> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    // guest time is already counted in user, so the total stops at steal.
    let total: u64 = v.iter().take(8).sum();
    Some([at(0) + at(1), at(2) + at(5) + at(6), at(4), total])
}

/// memory.used (total less available), memory.available and, with swap, swap.used. Kernels
/// before 3.14 have no MemAvailable: free, buffers and page cache stand in for it.
pub fn memory(meminfo: &str) -> Vec<(String, Option<f64>)> {
    let field = |k| crate::inventory::system::meminfo_field(meminfo, k);
    let total = field("MemTotal").unwrap_or(0);
    let available = field("MemAvailable").or_else(|| {
        Some(field("MemFree")? + field("Buffers").unwrap_or(0) + field("Cached").unwrap_or(0))
    });
    let mut out = vec![
        (
            "memory.used".to_string(),
            available
                .filter(|_| total > 0)
                .map(|a| round(100.0 * total.saturating_sub(a) as f64 / total as f64, 1)),
        ),
        (
            "memory.available".to_string(),
            available.map(|a| (a * 1024) as f64),
        ),
    ];
    let swap_total = field("SwapTotal").unwrap_or(0);
    if swap_total > 0 {
        let swap_free = field("SwapFree").unwrap_or(swap_total);
        let used = 100.0 * swap_total.saturating_sub(swap_free) as f64 / swap_total as f64;
        out.push(("swap.used".to_string(), Some(round(used, 1))));
    }
    out
}

/// Mount points of writable disk filesystems, once per device (bind mounts left out),
/// sorted. Octal escapes (`\040` for a space) are decoded.
pub fn disk_mounts(mounts: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [device, mount, fstype, options, ..] = f.as_slice() else {
            continue;
        };
        let writable = options.split(',').any(|o| o == "rw");
        // A container's root is an overlay; elsewhere overlays repeat what lies under them.
        let disk = DISK_FILESYSTEMS.contains(fstype) || (*fstype == "overlay" && *mount == "/");
        if !disk || !writable || seen.contains(device) {
            continue;
        }
        seen.push(*device);
        out.push(unescape(mount));
    }
    out.sort_unstable();
    out
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|o| bytes[i] == b'\\' && o.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal.and_then(|o| u8::from_str_radix(std::str::from_utf8(o).ok()?, 8).ok()) {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Used share (as `df` counts it: of what unprivileged users may use) and free bytes.
fn statvfs(mount: &str) -> Option<(f64, f64)> {
    let path = CString::new(mount).ok()?;
    // SAFETY: statvfs fills the plain-data struct for a NUL-terminated path.
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut st) != 0 {
            return None;
        }
        st
    };
    let (blocks, bfree, bavail) = (st.f_blocks as u64, st.f_bfree as u64, st.f_bavail as u64);
    let used = blocks.saturating_sub(bfree);
    let usable = used + bavail;
    if usable == 0 {
        return None;
    }
    Some((
        round(100.0 * used as f64 / usable as f64, 1),
        (bavail * st.f_frsize as u64) as f64,
    ))
}

/// (interface, received, sent) bytes of `/proc/net/dev`, loopback left out.
pub fn net_counters(dev: &str) -> Vec<(String, u64, u64)> {
    dev.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            let v: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            (name != "lo" && v.len() >= 9).then(|| (name.to_string(), v[0], v[8]))
        })
        .collect()
}

/// `temp:<type>` of every thermal zone, °C; a type shared by zones gets the zone's number.
fn temperatures() -> Vec<(String, Option<f64>)> {
    let Ok(dir) = fs::read_dir("/sys/class/thermal") else {
        return Vec::new();
    };
    let mut zones: Vec<(String, String, Option<f64>)> = dir
        .filter_map(Result::ok)
        .filter_map(|e| {
            let zone = e
                .file_name()
                .to_str()?
                .strip_prefix("thermal_zone")?
                .to_string();
            let path = e.path();
            let kind = fs::read_to_string(path.join("type"))
                .ok()?
                .trim()
                .to_string();
            let milli = fs::read_to_string(path.join("temp"))
                .ok()
                .and_then(|t| decimal(t.trim()));
            Some((kind, zone, milli.map(|m| round(m / 1000.0, 1))))
        })
        .collect();
    zones.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let names: Vec<String> = zones.iter().map(|z| z.0.clone()).collect();
    zones
        .into_iter()
        .map(|(kind, zone, v)| {
            let shared = names.iter().filter(|n| **n == kind).count() > 1;
            let name = if shared {
                format!("{kind}-{zone}")
            } else {
                kind
            };
            (format!("temp:{name}"), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_as_proc_prints_them() {
        assert_eq!(decimal("46639.89"), Some(46639.89));
        assert_eq!(decimal("0.52"), Some(0.52));
        assert_eq!(decimal("-12"), Some(-12.0));
        assert_eq!(decimal("45000"), Some(45000.0));
        for bad in ["", ".5", "1.2.3", "x", "1e5", "1.0000000001"] {
            assert_eq!(decimal(bad), None, "{bad}");
        }
    }

    #[test]
    fn cpu_shares_from_two_stat_lines() {
        let a = cpu_counters("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n").expect("cpu");
        let b = cpu_counters("cpu  130 10 60 880 70 0 10 0 0 0\n").expect("cpu");
        assert_eq!(a, [100, 50, 50, 1000]);
        assert_eq!(b, [140, 70, 70, 1160]);
    }

    #[test]
    fn memory_with_and_without_mem_available() {
        let new = "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 250 kB\nSwapTotal: 200 kB\nSwapFree: 150 kB\n";
        let m = memory(new);
        assert_eq!(m[0], ("memory.used".into(), Some(75.0)));
        assert_eq!(m[1], ("memory.available".into(), Some(256_000.0)));
        assert_eq!(m[2], ("swap.used".into(), Some(25.0)));
        let old =
            "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 100 kB\nSwapTotal: 0 kB\n";
        let m = memory(old);
        assert_eq!(m.len(), 2, "no swap");
        assert_eq!(m[0].1, Some(75.0));
    }

    #[test]
    fn disk_mounts_skip_virtual_read_only_and_bind_mounts() {
        let mounts = "proc /proc proc rw 0 0\n/dev/sda1 / ext4 rw,relatime 0 0\n/dev/sda1 /srv/bind ext4 rw 0 0\n\
            tmpfs /run tmpfs rw 0 0\n/dev/mmcblk0p3 /data ubifs rw 0 0\n/dev/sdb1 /media/My\\040Disk vfat rw 0 0\n\
            /dev/root /rom squashfs ro 0 0\n/dev/sdc1 /backup ext4 ro 0 0\n";
        assert_eq!(disk_mounts(mounts), ["/", "/data", "/media/My Disk"]);
    }

    #[test]
    fn network_counters_leave_loopback_out() {
        let dev = "Inter-|   Receive                            |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets\n\
            \x20   lo: 500 5 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n  eth0: 123456 100 0 0 0 0 0 0 654321 90 0 0 0 0 0 0\n";
        let c = net_counters(dev);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0], ("eth0".to_string(), 123456, 654321));
    }

    #[test]
    fn rates_need_a_previous_sample() {
        let mut prev = Counters::default();
        let first = read(&mut prev, uptime());
        let cpu = first
            .iter()
            .find(|(n, _)| n == "cpu.user")
            .expect("cpu.user");
        assert_eq!(cpu.1, None, "no previous counters");
        assert!(first.iter().any(|(n, v)| n == "load.1" && v.is_some()));
        assert!(
            first
                .iter()
                .any(|(n, v)| n.starts_with("fs.used:") && v.is_some()),
            "{first:?}"
        );
        // Two jiffies at least pass between the readings (100 Hz, two CPUs).
        std::thread::sleep(std::time::Duration::from_millis(200));
        let second = read(&mut prev, uptime());
        assert!(
            second.iter().any(|(n, v)| n == "cpu.user" && v.is_some()),
            "{second:?}"
        );
    }
}
