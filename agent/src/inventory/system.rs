//! The `system` kind: OS, kernel, CPU, memory, boot time, host names and the default route's
//! interface, all read from `/proc`, `/sys` and `/etc` (no program runs).

use std::fs;
use std::sync::OnceLock;

use apiary_proto::inventory::SystemInfo;

use crate::facts;

/// Reads the system kind.
pub fn collect() -> SystemInfo {
    let uts = facts::uname();
    let nodename = uts.as_ref().map(|u| u.nodename.clone()).unwrap_or_default();
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    SystemInfo {
        os: facts::os_release("PRETTY_NAME").unwrap_or_else(|| "Linux".into()),
        os_id: facts::os_release("ID").unwrap_or_default(),
        os_version: facts::os_release("VERSION_ID").unwrap_or_default(),
        kernel: uts.as_ref().map(|u| u.release.clone()).unwrap_or_default(),
        arch: uts.map(|u| u.machine).unwrap_or_default(),
        cpu_model: cpu_model(&cpuinfo),
        cpu_count: cpu_count(),
        serial: serial(&cpuinfo),
        memory_bytes: meminfo_kib("MemTotal").unwrap_or(0) * 1024,
        boot_time: boot_time(),
        hostnames: hostnames(
            &nodename,
            &fs::read_to_string("/etc/hosts").unwrap_or_default(),
        ),
        default_interface: default_interface(),
    }
}

/// The value of a `key : value` line of `/proc/cpuinfo`.
fn cpuinfo_field<'a>(cpuinfo: &'a str, key: &str) -> Option<&'a str> {
    cpuinfo.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key && !v.trim().is_empty()).then(|| v.trim())
    })
}

/// x86's `model name`, MIPS's `cpu model`, else the device tree's board model (ARM boards),
/// else ARM's `Hardware` or `Processor`.
fn cpu_model(cpuinfo: &str) -> String {
    let device_tree = fs::read("/proc/device-tree/model")
        .ok()
        .map(|b| {
            String::from_utf8_lossy(&b)
                .trim_end_matches('\0')
                .trim()
                .to_string()
        })
        .filter(|m| !m.is_empty());
    ["model name", "cpu model"]
        .iter()
        .find_map(|k| cpuinfo_field(cpuinfo, k).map(str::to_string))
        .or(device_tree)
        .or_else(|| {
            ["Hardware", "Processor"]
                .iter()
                .find_map(|k| cpuinfo_field(cpuinfo, k).map(str::to_string))
        })
        .unwrap_or_default()
}

fn cpu_count() -> u32 {
    // SAFETY: sysconf only reads a system value.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u32::try_from(n).unwrap_or(1).max(1)
}

/// The `Serial` of `/proc/cpuinfo` (Raspberry Pi and other ARM boards) or the device tree's
/// `serial-number`; an all-zero serial is none.
fn serial(cpuinfo: &str) -> Option<String> {
    cpuinfo_field(cpuinfo, "Serial")
        .map(str::to_string)
        .or_else(|| {
            let bytes = fs::read("/proc/device-tree/serial-number").ok()?;
            Some(
                String::from_utf8_lossy(&bytes)
                    .trim_end_matches('\0')
                    .trim()
                    .to_string(),
            )
        })
        .filter(|s| !s.is_empty() && s.chars().any(|c| c != '0'))
}

/// A `Key: N kB` line of `/proc/meminfo`, in KiB.
pub fn meminfo_kib(key: &str) -> Option<u64> {
    meminfo_field(&fs::read_to_string("/proc/meminfo").ok()?, key)
}

/// A `Key: N kB` line of meminfo text, in KiB.
pub fn meminfo_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// `btime` of `/proc/stat`, read once per process: the kernel derives it from the clock and
/// the uptime, so it may move by a second between reads, which would make the kind change.
fn boot_time() -> u64 {
    static BOOT: OnceLock<u64> = OnceLock::new();
    *BOOT.get_or_init(|| {
        fs::read_to_string("/proc/stat")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
            .unwrap_or(0)
    })
}

/// The kernel's host name, then the other names of `/etc/hosts` lines that give it.
fn hostnames(nodename: &str, hosts: &str) -> Vec<String> {
    let mut names = vec![nodename.to_string()];
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or("");
        let fields: Vec<&str> = line.split_whitespace().skip(1).collect();
        if fields.contains(&nodename) {
            for f in fields {
                if !names.iter().any(|n| n == f) && f != "localhost" {
                    names.push(f.to_string());
                }
            }
        }
    }
    names.truncate(16);
    names
}

/// The interface of the IPv4 default route (`/proc/net/route`), else of the IPv6 one.
fn default_interface() -> Option<String> {
    let v4 = fs::read_to_string("/proc/net/route").unwrap_or_default();
    let v6 = fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    default_v4(&v4).or_else(|| default_v6(&v6))
}

fn default_v4(route: &str) -> Option<String> {
    // Iface Destination Gateway Flags RefCnt Use Metric Mask ...; the lowest metric wins.
    route
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let default = f.len() >= 8 && f[1] == "00000000" && f[7] == "00000000";
            default.then(|| (f[6].parse::<u32>().unwrap_or(u32::MAX), f[0].to_string()))
        })
        .min()
        .map(|(_, iface)| iface)
}

fn default_v6(route: &str) -> Option<String> {
    // dest prefix src prefix nexthop metric refcnt use flags iface; "lo" holds the
    // unreachable default of a host without IPv6 routing.
    route
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let default =
                f.len() >= 10 && f[0].bytes().all(|c| c == b'0') && f[1] == "00" && f[9] != "lo";
            default.then(|| {
                (
                    u32::from_str_radix(f[5], 16).unwrap_or(u32::MAX),
                    f[9].to_string(),
                )
            })
        })
        .min()
        .map(|(_, iface)| iface)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_models_of_each_architecture() {
        let x86 = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU\n";
        assert_eq!(cpu_model(x86), "Intel(R) Xeon(R) CPU");
        let mips =
            "system type\t\t: MediaTek MT7621 ver:1 eco:3\ncpu model\t\t: MIPS 1004Kc V2.15\n";
        assert_eq!(cpu_model(mips), "MIPS 1004Kc V2.15");
        let pi = "processor\t: 0\nBogoMIPS\t: 108.00\nHardware\t: BCM2835\nSerial\t\t: 10000000abcdef01\n";
        assert_eq!(serial(pi).as_deref(), Some("10000000abcdef01"));
        assert_eq!(serial("Serial\t\t: 0000000000000000\n"), None);
    }

    #[test]
    fn host_names_from_the_hosts_file() {
        let hosts = "127.0.0.1 localhost\n127.0.1.1 gw1.plant.example gw1 # this host\n::1 localhost ip6-localhost\n";
        assert_eq!(hostnames("gw1", hosts), ["gw1", "gw1.plant.example"]);
        assert_eq!(hostnames("other", hosts), ["other"]);
    }

    #[test]
    fn the_default_route_with_the_lowest_metric() {
        let route = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            wwan0\t00000000\t0100000A\t0003\t0\t0\t700\t00000000\t0\t0\t0\n\
            eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
            eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(default_v4(route).as_deref(), Some("eth0"));
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n\
            00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00450003     eth1\n";
        assert_eq!(default_v6(v6).as_deref(), Some("eth1"));
        assert_eq!(default_v4(""), None);
    }

    #[test]
    fn this_machine_reads() {
        let s = collect();
        assert!(!s.kernel.is_empty() && !s.arch.is_empty());
        assert!(s.boot_time > 1_000_000_000 && s.memory_bytes > 0, "{s:?}");
        assert_eq!(s.boot_time, collect().boot_time, "stable within a process");
    }
}
