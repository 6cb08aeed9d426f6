//! The device's network interfaces and addresses, from `getifaddrs(3)`: what operators see
//! on the device page, refreshed at check-in when it changes.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use apiary_proto::device_api::{MAX_ADDRESSES, MAX_INTERFACES, NetInterface};

/// Interfaces other than loopback, by name, addresses sorted; empty if the call fails.
pub fn interfaces() -> Vec<NetInterface> {
    let mut found: BTreeMap<String, NetInterface> = BTreeMap::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list that stays valid until freeifaddrs; every
    // pointer is checked for NULL before it is read, and each sockaddr is read as the type
    // its family names.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return Vec::new();
        }
        let mut entry = head;
        while let Some(ifa) = entry.as_ref() {
            entry = ifa.ifa_next;
            if ifa.ifa_name.is_null() || ifa.ifa_flags & libc::IFF_LOOPBACK as u32 != 0 {
                continue;
            }
            let name = CStr::from_ptr(ifa.ifa_name).to_string_lossy().into_owned();
            let iface = found.entry(name.clone()).or_insert_with(|| NetInterface {
                name,
                ..NetInterface::default()
            });
            iface.up |= ifa.ifa_flags & libc::IFF_UP as u32 != 0;
            let Some(addr) = ifa.ifa_addr.as_ref() else {
                continue;
            };
            match i32::from(addr.sa_family) {
                libc::AF_INET => {
                    let ip = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    let ip = Ipv4Addr::from(u32::from_be(ip.sin_addr.s_addr));
                    let prefix = (!ifa.ifa_netmask.is_null()).then(|| {
                        let mask = &*(ifa.ifa_netmask as *const libc::sockaddr_in);
                        mask.sin_addr.s_addr.count_ones()
                    });
                    iface
                        .addresses
                        .push(format!("{ip}/{}", prefix.unwrap_or(32)));
                }
                libc::AF_INET6 => {
                    let ip = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    let ip = Ipv6Addr::from(ip.sin6_addr.s6_addr);
                    let prefix = (!ifa.ifa_netmask.is_null()).then(|| {
                        let mask = &*(ifa.ifa_netmask as *const libc::sockaddr_in6);
                        mask.sin6_addr
                            .s6_addr
                            .iter()
                            .map(|b| b.count_ones())
                            .sum::<u32>()
                    });
                    iface
                        .addresses
                        .push(format!("{ip}/{}", prefix.unwrap_or(128)));
                }
                libc::AF_PACKET => {
                    let ll = &*(ifa.ifa_addr as *const libc::sockaddr_ll);
                    let len = usize::from(ll.sll_halen).min(ll.sll_addr.len());
                    if len > 0 && ll.sll_addr[..len].iter().any(|b| *b != 0) {
                        iface.mac = Some(mac(&ll.sll_addr[..len]));
                    }
                }
                _ => {}
            }
        }
        libc::freeifaddrs(head);
    }
    let mut list: Vec<NetInterface> = found.into_values().take(MAX_INTERFACES).collect();
    for iface in &mut list {
        iface.addresses.sort();
        iface.addresses.dedup();
        iface.addresses.truncate(MAX_ADDRESSES);
    }
    list
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
        let sent = fs::read_to_string(marker).ok();
        (sent.as_deref() != Some(text.as_str())).then_some(Self {
            list: current,
            text,
        })
    }

    /// Records the list as acknowledged; a failed write only means sending it again.
    pub fn acknowledged(&self, marker: &Path) {
        if let Err(e) = fs::write(marker, &self.text) {
            eprintln!("warning: cannot write {}: {e}", marker.display());
        }
    }
}

fn mac(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            text.push(':');
        }
        text.push_str(&format!("{b:02x}"));
    }
    text
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
    fn formats_hardware_addresses() {
        assert_eq!(mac(&[0x52, 0x54, 0, 0x12, 0x34, 0xab]), "52:54:00:12:34:ab");
    }
}
