//! The device's network interfaces and addresses: what operators see on the device page,
//! refreshed at check-in when it changes.
//!
//! Read from `/sys/class/net` (names, state, hardware address), `/proc/net/if_inet6` (IPv6)
//! and the `SIOCGIFCONF` ioctl (IPv4), not with `getifaddrs(3)`: musl implements that over
//! rtnetlink, which qemu-user mistranslates for big-endian targets (the agent for mips spun
//! forever in its tests), and old vendor kernels do not always answer it fully either.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use apiary_proto::device_api::{MAX_ADDRESSES, MAX_INTERFACES, NetInterface};

use crate::safe_fs;

/// `IFF_UP` and `IFF_LOOPBACK` of `/sys/class/net/*/flags`.
const IFF_UP: u32 = 0x1;
const IFF_LOOPBACK: u32 = 0x8;

/// Interfaces other than loopback, by name, addresses sorted.
pub fn interfaces() -> Vec<NetInterface> {
    let mut found: BTreeMap<String, NetInterface> = BTreeMap::new();
    for name in interface_names() {
        let dir = Path::new("/sys/class/net").join(&name);
        let flags = read_trimmed(&dir.join("flags"))
            .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok())
            .unwrap_or(0);
        if flags & IFF_LOOPBACK != 0 || name == "lo" {
            continue;
        }
        let mac = read_trimmed(&dir.join("address"))
            .filter(|m| m.contains(':') && m.chars().any(|c| c != '0' && c != ':'));
        found.insert(
            name.clone(),
            NetInterface {
                name,
                mac,
                up: flags & IFF_UP != 0,
                addresses: Vec::new(),
            },
        );
    }
    for (name, address) in ipv6_addresses().into_iter().chain(ipv4_addresses()) {
        if let Some(iface) = found.get_mut(&name) {
            iface.addresses.push(address);
        }
    }
    let mut list: Vec<NetInterface> = found.into_values().take(MAX_INTERFACES).collect();
    for iface in &mut list {
        iface.addresses.sort();
        iface.addresses.dedup();
        iface.addresses.truncate(MAX_ADDRESSES);
    }
    list
}

/// Interface names from sysfs, or from `/proc/net/dev` where sysfs is not mounted.
fn interface_names() -> Vec<String> {
    if let Ok(dir) = fs::read_dir("/sys/class/net") {
        return dir
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
    }
    fs::read_to_string("/proc/net/dev")
        .unwrap_or_default()
        .lines()
        .skip(2)
        .filter_map(|l| Some(l.split_once(':')?.0.trim().to_string()))
        .collect()
}

/// `(interface, "addr/prefix")` from `/proc/net/if_inet6`: 32 hex digits of address, index,
/// prefix length (hex), scope, flags, name.
fn ipv6_addresses() -> Vec<(String, String)> {
    let text = fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    text.lines().filter_map(parse_if_inet6).collect()
}

fn parse_if_inet6(line: &str) -> Option<(String, String)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [hex, _, prefix, _, _, name] = fields.as_slice() else {
        return None;
    };
    if hex.len() != 32 {
        return None;
    }
    let bits = u128::from_str_radix(hex, 16).ok()?;
    let prefix = u8::from_str_radix(prefix, 16).ok()?;
    Some((
        name.to_string(),
        format!("{}/{prefix}", Ipv6Addr::from(bits)),
    ))
}

/// `(interface, "addr/prefix")` of every IPv4 address, from `SIOCGIFCONF` and
/// `SIOCGIFNETMASK`. Aliases come labelled `eth0:1`; they belong to `eth0`.
fn ipv4_addresses() -> Vec<(String, String)> {
    const MAX_ENTRIES: usize = 256;
    let mut out = Vec::new();
    // SAFETY: plain socket and ioctl calls on structures the kernel fills; `ifc_len` bounds
    // what it writes into `requests`, and the descriptor is closed on every path.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return out;
        }
        let mut requests: Vec<libc::ifreq> = vec![std::mem::zeroed(); MAX_ENTRIES];
        let mut conf: libc::ifconf = std::mem::zeroed();
        conf.ifc_len = (requests.len() * std::mem::size_of::<libc::ifreq>()) as libc::c_int;
        conf.ifc_ifcu.ifcu_req = requests.as_mut_ptr();
        if libc::ioctl(fd, libc::SIOCGIFCONF as _, &mut conf) == 0 {
            let count =
                (conf.ifc_len as usize / std::mem::size_of::<libc::ifreq>()).min(MAX_ENTRIES);
            for request in &requests[..count] {
                if i32::from(request.ifr_ifru.ifru_addr.sa_family) != libc::AF_INET {
                    continue;
                }
                let label = CStr::from_ptr(request.ifr_name.as_ptr())
                    .to_string_lossy()
                    .into_owned();
                let ip = ipv4(&request.ifr_ifru.ifru_addr);
                let mut mask_request: libc::ifreq = std::mem::zeroed();
                mask_request.ifr_name = request.ifr_name;
                let prefix = if libc::ioctl(fd, libc::SIOCGIFNETMASK as _, &mut mask_request) == 0 {
                    u32::from(ipv4(&mask_request.ifr_ifru.ifru_netmask)).count_ones()
                } else {
                    32
                };
                let name = label.split(':').next().unwrap_or(&label).to_string();
                out.push((name, format!("{ip}/{prefix}")));
            }
        }
        libc::close(fd);
    }
    out
}

/// The IPv4 address in a `sockaddr` of family `AF_INET`.
fn ipv4(addr: &libc::sockaddr) -> Ipv4Addr {
    // SAFETY: sockaddr_in is no larger than sockaddr, and the family says it is one.
    let sin = unsafe { &*(addr as *const libc::sockaddr as *const libc::sockaddr_in) };
    Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|t| t.trim().to_string())
}

/// Interfaces the backend has not acknowledged yet.
pub struct Unacknowledged {
    pub list: Vec<NetInterface>,
    text: String,
}

impl Unacknowledged {
    /// `current`, unless it is what `marker` records as last acknowledged.
    pub fn since(marker: &Path, current: Vec<NetInterface>) -> Option<Self> {
        let text = serde_json::to_string(&current).unwrap_or_default();
        let sent = safe_fs::read_text(marker, safe_fs::STATE_FILE_LIMIT)
            .ok()
            .flatten();
        (sent.as_deref() != Some(text.as_str())).then_some(Self {
            list: current,
            text,
        })
    }

    /// Records the list as acknowledged; a failed write only means sending it again.
    pub fn acknowledged(&self, marker: &Path) {
        if let Err(e) = safe_fs::write_atomic(marker, self.text.as_bytes(), 0o600) {
            eprintln!("warning: cannot record the acknowledged interfaces: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_what_the_kernel_lists_without_loopback() {
        let list = interfaces();
        assert_eq!(NetInterface::validate_list(&list), Ok(()), "{list:?}");
        assert!(list.iter().all(|i| i.name != "lo"), "{list:?}");
        // Cross-check with the kernel's own view of interface names.
        let mut kernel: Vec<String> = std::fs::read_dir("/sys/class/net")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "lo")
            .collect();
        kernel.sort();
        let names: Vec<&str> = list.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, kernel);
    }

    #[test]
    fn a_list_is_sent_until_acknowledged_and_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("network-sent.json");
        let eth0 = |address: &str| {
            vec![NetInterface {
                name: "eth0".into(),
                mac: None,
                up: true,
                addresses: vec![address.into()],
            }]
        };
        let first = Unacknowledged::since(&marker, eth0("192.0.2.1/24")).expect("nothing sent yet");
        assert!(
            Unacknowledged::since(&marker, eth0("192.0.2.1/24")).is_some(),
            "not acknowledged: sent again"
        );
        first.acknowledged(&marker);
        assert!(Unacknowledged::since(&marker, eth0("192.0.2.1/24")).is_none());
        let changed = Unacknowledged::since(&marker, eth0("192.0.2.7/24")).expect("a new address");
        assert_eq!(changed.list, eth0("192.0.2.7/24"));
        std::fs::remove_file(&marker).unwrap();
        assert!(
            Unacknowledged::since(&marker, eth0("192.0.2.1/24")).is_some(),
            "a reboot wipes the marker"
        );
    }

    #[test]
    fn reads_proc_net_if_inet6_lines() {
        assert_eq!(
            parse_if_inet6("fe800000000000000000000000000001 02 40 20 80     eth0"),
            Some(("eth0".into(), "fe80::1/64".into()))
        );
        assert_eq!(
            parse_if_inet6("fd000000000000000000000000000002 02 40 00 80 wlan0"),
            Some(("wlan0".into(), "fd00::2/64".into()))
        );
        assert_eq!(parse_if_inet6("garbage"), None);
        assert_eq!(parse_if_inet6("zz 02 40 00 80 eth0"), None);
    }
}
