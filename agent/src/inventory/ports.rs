//! The `ports` kind: listening TCP sockets and bound UDP ones, IPv4 and IPv6, from
//! `/proc/net/{tcp,tcp6,udp,udp6}`, each with the process holding it, found by the socket's
//! inode among the descriptors under `/proc/*/fd`.
//!
//! An agent that is not root sees only its own user's descriptors; the other sockets are
//! listed without their process.

use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};

use apiary_proto::inventory::Port;

/// `st` of a listening TCP socket, and of an unconnected UDP one (`ss -l` lists both).
const TCP_LISTEN: &str = "0A";
const UDP_UNCONNECTED: &str = "07";

/// A socket found in a `/proc/net` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Socket {
    pub port: Port,
    pub inode: u64,
}

/// Reads the ports kind, in the kernel's table order.
pub fn collect() -> Vec<Port> {
    let mut sockets = Vec::new();
    for (protocol, state) in [
        ("tcp", TCP_LISTEN),
        ("tcp6", TCP_LISTEN),
        ("udp", UDP_UNCONNECTED),
        ("udp6", UDP_UNCONNECTED),
    ] {
        let text = fs::read_to_string(format!("/proc/net/{protocol}")).unwrap_or_default();
        sockets.extend(parse_table(&text, protocol, state));
    }
    let inodes: Vec<u64> = sockets.iter().map(|s| s.inode).collect();
    let owners = socket_owners(&inodes);
    let mut ports: Vec<Port> = Vec::new();
    for mut s in sockets {
        if let Some((_, pid, name)) = owners.iter().find(|o| o.0 == s.inode) {
            s.port.pid = Some(*pid);
            s.port.process = Some(name.clone());
        }
        // Several sockets on one port (SO_REUSEPORT workers): one entry, the lowest pid.
        let same = ports.iter_mut().find(|p| {
            (&p.protocol, &p.address, p.port) == (&s.port.protocol, &s.port.address, s.port.port)
        });
        match same {
            None => ports.push(s.port),
            Some(p) if p.pid.is_none() || (s.port.pid.is_some() && s.port.pid < p.pid) => {
                *p = s.port
            }
            Some(_) => {}
        }
    }
    ports
}

/// The sockets in state `state` of one table:
/// `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...`.
pub fn parse_table(text: &str, protocol: &str, state: &str) -> Vec<Socket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != state {
                return None;
            }
            let (address, port) = f[1].split_once(':')?;
            Some(Socket {
                port: Port {
                    protocol: protocol.into(),
                    address: parse_address(address)?,
                    port: u16::from_str_radix(port, 16).ok()?,
                    uid: f[7].parse().ok()?,
                    pid: None,
                    process: None,
                },
                inode: f[9].parse().ok()?,
            })
        })
        .collect()
}

/// The kernel prints each 32-bit word of an address as a number in host byte order, so the
/// word's native bytes are the address's bytes on little- and big-endian machines alike.
fn parse_address(hex: &str) -> Option<String> {
    let word = |i: usize| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok();
    match hex.len() {
        8 => Some(Ipv4Addr::from(word(0)?.to_ne_bytes()).to_string()),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?.to_ne_bytes());
            }
            Some(Ipv6Addr::from(bytes).to_string())
        }
        _ => None,
    }
}

/// (inode, lowest pid holding it, its name) for each of `inodes` held by a process whose
/// descriptors (`socket:[N]` links under `/proc/PID/fd`) this agent may read.
fn socket_owners(inodes: &[u64]) -> Vec<(u64, u32, String)> {
    let mut owners: Vec<(u64, u32, String)> = Vec::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return owners;
    };
    let mut pids: Vec<u32> = procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.filter_map(Result::ok) {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let inode = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok());
            if let Some(inode) = inode.filter(|i| inodes.contains(i))
                && !owners.iter().any(|o| o.0 == inode)
            {
                owners.push((inode, pid, process_name(pid)));
            }
        }
    }
    owners
}

/// `comm` of a process: what `ss -p` shows.
fn process_name(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim_end().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_in_the_kernels_format() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
            0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 31337 1 0000000000000000 100 0 0 10 0\n\
            1: 0100007F:D2A8 0100007F:0CEA 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1\n";
        let s = parse_table(tcp, "tcp", TCP_LISTEN);
        assert_eq!(s.len(), 1, "the established one is not listening");
        let expected_address = if cfg!(target_endian = "little") {
            "127.0.0.1"
        } else {
            "1.0.0.127"
        };
        assert_eq!(s[0].port.address, expected_address);
        assert_eq!(
            (s[0].port.port, s[0].port.uid, s[0].inode),
            (3306, 998, 31337)
        );
        let tcp6 = "  sl  local_address remote_address st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
            0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17 1\n";
        let s = parse_table(tcp6, "tcp6", TCP_LISTEN);
        assert_eq!((s[0].port.address.as_str(), s[0].port.port), ("::", 22));
        assert!(parse_table("header\n0: zz:0016 0:0 0A a b c 0 0 1\n", "tcp", "0A").is_empty());
    }

    #[test]
    fn loopback_v6_reads_the_same_on_either_byte_order() {
        // ::1 is printed as its last word, 0x01000000 on little-endian machines.
        let word = u32::from_ne_bytes([0, 0, 0, 1]);
        let hex = format!("{:08X}{:08X}{:08X}{word:08X}", 0, 0, 0);
        assert_eq!(parse_address(&hex).as_deref(), Some("::1"));
    }

    #[test]
    fn a_listener_of_this_process_is_found_with_its_owner() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        let port = listener.local_addr().expect("address").port();
        let found = collect();
        let p = found
            .iter()
            .find(|p| p.protocol == "tcp" && p.port == port)
            .expect("listed");
        assert_eq!(p.address, "127.0.0.1");
        assert_eq!(p.pid, Some(std::process::id()));
    }
}
