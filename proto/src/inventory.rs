//! Inventory: what a device has (its system, software, accounts, listening ports and,
//! opt-in, processes), sent at check-in only when a kind changed.
//!
//! Each kind goes up whole, with the SHA-256 of its serialised form. The agent keeps the
//! hashes the backend acknowledged (in its tmpfs state dir) and sends a kind again only when
//! its hash differs; once a day it sends every hash, so a backend that lost a kind asks for
//! it back (`want_inventory` in the answer).

use serde::{Deserialize, Serialize};

/// An inventory kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    System,
    Software,
    Users,
    Ports,
    Processes,
}

impl Kind {
    /// Every kind, in the order the agent collects them.
    pub const ALL: [Kind; 5] = [
        Kind::System,
        Kind::Software,
        Kind::Users,
        Kind::Ports,
        Kind::Processes,
    ];

    /// The lowercase name used on the wire, in the store and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::System => "system",
            Kind::Software => "software",
            Kind::Users => "users",
            Kind::Ports => "ports",
            Kind::Processes => "processes",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(text: &str) -> Option<Self> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// One kind's content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Inventory {
    System(Box<SystemInfo>),
    Software(Vec<PackageList>),
    Users(Vec<Account>),
    Ports(Vec<Port>),
    Processes(Vec<ProcessInfo>),
}

/// A kind as a check-in carries it: the content and the SHA-256 (hex) of its JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InventoryUpload {
    pub hash: String,
    pub data: Inventory,
}

/// The system: what the OS, kernel and hardware say about themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// `PRETTY_NAME` of os-release, like "Debian GNU/Linux 12 (bookworm)".
    pub os: String,
    /// `ID` of os-release (`debian`, `alpine`, `openwrt`, `poky`...).
    #[serde(default)]
    pub os_id: String,
    /// `VERSION_ID` of os-release (`12`, `3.20.3`, `23.05.5`).
    #[serde(default)]
    pub os_version: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Machine (`uname -m`).
    pub arch: String,
    /// CPU model, from `/proc/cpuinfo` (or the device-tree model on boards without one).
    #[serde(default)]
    pub cpu_model: String,
    /// Online CPUs.
    #[serde(default)]
    pub cpu_count: u32,
    /// The board's or CPU's serial number, where the kernel shows one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Total memory, bytes.
    #[serde(default)]
    pub memory_bytes: u64,
    /// Unix seconds at boot.
    pub boot_time: u64,
    /// The kernel's host name first, then other names `/etc/hosts` gives this host.
    pub hostnames: Vec<String>,
    /// The interface of the default IPv4 route (or IPv6, when there is no IPv4 one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_interface: Option<String>,
}

/// The packages one package manager knows about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageList {
    /// `dpkg`, `opkg`, `apk` or `rpm`.
    pub manager: String,
    pub packages: Vec<Package>,
}

/// An installed package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arch: String,
    /// The source package it was built from, when it is named otherwise: Debian's and
    /// OpenWrt's advisories name source packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Whether an account has a password, by its shadow entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PasswordState {
    /// A hash: the account can log in with a password.
    Set,
    /// Empty: the account logs in without one.
    Empty,
    /// `!` or `*` (perhaps before a hash): no password login.
    Locked,
    /// The shadow file could not be read.
    Unknown,
}

/// Days after which a password without a shadow limit counts as old.
pub const OLD_PASSWORD_DAYS: u64 = 365;

impl Account {
    /// Whether the password is past its shadow limit (or, without one, older than
    /// [`OLD_PASSWORD_DAYS`]) on day `today` (days since 1970-01-01).
    pub fn password_old(&self, today: u64) -> bool {
        if self.password != PasswordState::Set {
            return false;
        }
        let limit = self.max_days.unwrap_or(OLD_PASSWORD_DAYS);
        self.last_change_day
            .is_some_and(|day| today.saturating_sub(day) > limit)
    }
}

/// A local account from passwd and shadow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gecos: String,
    pub home: String,
    pub shell: String,
    pub password: PasswordState,
    /// The hash's scheme, from its prefix: `md5`, `bcrypt`, `sha256`, `sha512`, `yescrypt`,
    /// `gost-yescrypt`, `scrypt`, `des` (no prefix), or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// Day of the last password change (days since 1970-01-01), shadow's third field: a
    /// date rather than an age, so the inventory does not change every day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_change_day: Option<u64>,
    /// Days a password may be kept, when the shadow entry limits it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_days: Option<u64>,
}

/// A listening socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// `tcp`, `tcp6`, `udp` or `udp6`.
    pub protocol: String,
    /// The local address, `0.0.0.0` or `::` for every address.
    pub address: String,
    pub port: u16,
    /// Owner of the socket.
    pub uid: u32,
    /// The lowest process id holding the socket, when the agent may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// That process's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
}

/// A running process, as `top` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub user: String,
    /// Share of one CPU over the last cycle, percent (can pass 100 on several CPUs).
    pub cpu: f32,
    /// Resident memory as a share of the total, percent.
    pub memory: f32,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// The command line, cut to [`MAX_COMMAND`] bytes (the name in brackets for a kernel
    /// thread).
    pub command: String,
}

/// Longest text field of an inventory entry.
pub const MAX_FIELD: usize = 512;
/// Longest process command line kept.
pub const MAX_COMMAND: usize = 512;
/// Entries one kind may hold (packages over all managers, accounts, ports, processes).
pub const MAX_ENTRIES: usize = 50_000;
/// Serialised bytes of inventory one check-in carries; kinds that do not fit go in the next.
pub const INVENTORY_BATCH_BYTES: usize = 2 * 1024 * 1024;

impl Inventory {
    /// The kind this is.
    pub fn kind(&self) -> Kind {
        match self {
            Inventory::System(_) => Kind::System,
            Inventory::Software(_) => Kind::Software,
            Inventory::Users(_) => Kind::Users,
            Inventory::Ports(_) => Kind::Ports,
            Inventory::Processes(_) => Kind::Processes,
        }
    }

    /// The backend's checks on what a device sent: bounded counts and text fields without
    /// control characters (they end up in tables and terminals).
    pub fn validate(&self) -> Result<(), String> {
        let mut fields: Vec<(&str, &str)> = Vec::new();
        let entries = match self {
            Inventory::System(s) => {
                fields.extend([
                    ("os", s.os.as_str()),
                    ("os_id", &s.os_id),
                    ("os_version", &s.os_version),
                    ("kernel", &s.kernel),
                    ("arch", &s.arch),
                    ("cpu_model", &s.cpu_model),
                ]);
                fields.extend(s.serial.as_deref().map(|v| ("serial", v)));
                fields.extend(s.default_interface.as_deref().map(|v| ("interface", v)));
                fields.extend(s.hostnames.iter().map(|h| ("hostname", h.as_str())));
                s.hostnames.len()
            }
            Inventory::Software(lists) => {
                for l in lists {
                    fields.push(("manager", &l.manager));
                    for p in &l.packages {
                        fields.extend([("name", p.name.as_str()), ("version", &p.version)]);
                        fields.push(("arch", &p.arch));
                        fields.extend(p.source.as_deref().map(|v| ("source", v)));
                    }
                }
                lists.iter().map(|l| l.packages.len()).sum()
            }
            Inventory::Users(accounts) => {
                for a in accounts {
                    fields.extend([("name", a.name.as_str()), ("gecos", &a.gecos)]);
                    fields.extend([("home", a.home.as_str()), ("shell", &a.shell)]);
                    fields.extend(a.algorithm.as_deref().map(|v| ("algorithm", v)));
                }
                accounts.len()
            }
            Inventory::Ports(ports) => {
                for p in ports {
                    fields.extend([("protocol", p.protocol.as_str()), ("address", &p.address)]);
                    fields.extend(p.process.as_deref().map(|v| ("process", v)));
                }
                ports.len()
            }
            Inventory::Processes(list) => {
                for p in list {
                    fields.extend([("user", p.user.as_str()), ("command", &p.command)]);
                }
                list.len()
            }
        };
        if entries > MAX_ENTRIES {
            return Err(format!(
                "{}: more than {MAX_ENTRIES} entries",
                self.kind().as_str()
            ));
        }
        for (name, value) in fields {
            if value.len() > MAX_FIELD || value.chars().any(char::is_control) {
                return Err(format!(
                    "{}: {name} is longer than {MAX_FIELD} bytes or has control characters",
                    self.kind().as_str()
                ));
            }
        }
        Ok(())
    }
}

/// The hash scheme of a crypt(3) hash, by its prefix (`None` for no hash at all).
pub fn hash_algorithm(hash: &str) -> Option<&'static str> {
    let hash = hash.trim_start_matches(['!', '*']);
    if hash.is_empty() {
        return None;
    }
    Some(match hash.split('$').nth(1) {
        _ if !hash.starts_with('$') => {
            // Thirteen characters of [./0-9A-Za-z] is traditional DES; anything else is no
            // hash a login would accept.
            let des = hash.len() == 13
                && hash
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'/');
            if des { "des" } else { "unknown" }
        }
        Some("1") => "md5",
        Some("2a" | "2b" | "2x" | "2y") => "bcrypt",
        Some("5") => "sha256",
        Some("6") => "sha512",
        Some("y") => "yescrypt",
        Some("gy") => "gost-yescrypt",
        Some("7") => "scrypt",
        Some("sha1") => "sha1",
        _ => "unknown",
    })
}

/// Schemes no account should still use: crackable on a laptop.
pub fn weak_algorithm(algorithm: &str) -> bool {
    matches!(algorithm, "des" | "md5" | "unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_schemes_by_prefix() {
        for (hash, want) in [
            ("$1$salt$abc", Some("md5")),
            ("$2b$10$abcdefghijk", Some("bcrypt")),
            ("$5$rounds=5000$x$y", Some("sha256")),
            ("$6$salt$hash", Some("sha512")),
            ("$y$j9T$salt$hash", Some("yescrypt")),
            ("$gy$j9T$salt$hash", Some("gost-yescrypt")),
            ("!$6$salt$hash", Some("sha512")),
            ("abcdefghijklm", Some("des")),
            ("$9$what", Some("unknown")),
            ("x", Some("unknown")),
            ("", None),
            ("!", None),
            ("*", None),
        ] {
            assert_eq!(hash_algorithm(hash), want, "{hash}");
        }
        assert!(weak_algorithm("md5") && weak_algorithm("des"));
        assert!(!weak_algorithm("yescrypt") && !weak_algorithm("sha512"));
    }

    #[test]
    fn passwords_are_old_past_their_limit_or_a_year() {
        let account = |last, max| Account {
            name: "a".into(),
            uid: 1000,
            gid: 1000,
            gecos: String::new(),
            home: "/home/a".into(),
            shell: "/bin/sh".into(),
            password: PasswordState::Set,
            algorithm: Some("sha512".into()),
            last_change_day: last,
            max_days: max,
        };
        assert!(!account(Some(1000), Some(90)).password_old(1090));
        assert!(account(Some(1000), Some(90)).password_old(1091));
        assert!(!account(Some(1000), None).password_old(1365));
        assert!(account(Some(1000), None).password_old(1366));
        assert!(!account(None, Some(1)).password_old(99_999));
        let locked = Account {
            password: PasswordState::Locked,
            ..account(Some(0), None)
        };
        assert!(!locked.password_old(99_999));
    }

    #[test]
    fn kinds_round_trip_by_name() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            let json = serde_json::to_string(&k).expect("serialises");
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert_eq!(Kind::parse("containers"), None);
    }

    #[test]
    fn bad_inventory_is_named() {
        let account = |name: &str| Account {
            name: name.into(),
            uid: 0,
            gid: 0,
            gecos: String::new(),
            home: "/root".into(),
            shell: "/bin/sh".into(),
            password: PasswordState::Set,
            algorithm: None,
            last_change_day: None,
            max_days: None,
        };
        assert_eq!(Inventory::Users(vec![account("root")]).validate(), Ok(()));
        let err = Inventory::Users(vec![account("ro\x1b[2Jot")])
            .validate()
            .expect_err("escape");
        assert!(err.contains("users: name"), "{err}");
        let many = Inventory::Users(vec![account("a"); MAX_ENTRIES + 1]);
        assert!(many.validate().expect_err("many").contains("entries"));
    }
}
