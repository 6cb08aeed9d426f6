//! The `software` kind: installed packages of every package manager present, read from
//! their databases (dpkg, opkg, apk) or asked of `rpm` with a query format.

use std::path::Path;
use std::time::Duration;

use apiary_proto::inventory::{Package, PackageList};

use crate::safe_fs;
use crate::system::programs;

/// Largest package database read (Debian's status file of 5,000 packages is about 10 MiB).
const MAX_DATABASE_BYTES: u64 = 64 * 1024 * 1024;
/// `rpm -qa` of a large system takes seconds, of a hung database forever.
const RPM_TIMEOUT: Duration = Duration::from_secs(120);

/// Where each database lives; opkg's depends on the distribution (OpenWrt, Yocto).
const DPKG_STATUS: &str = "/var/lib/dpkg/status";
const OPKG_STATUS: &[&str] = &["/usr/lib/opkg/status", "/var/lib/opkg/status"];
const APK_INSTALLED: &str = "/lib/apk/db/installed";

/// The package lists of every manager found, in their databases' order (which stays put
/// until a package changes, so the kind's hash does too).
pub fn collect() -> Vec<PackageList> {
    let mut lists = Vec::new();
    let mut add = |manager: &str, packages: Vec<Package>| {
        lists.push(PackageList {
            manager: manager.into(),
            packages,
        });
    };
    if let Some(text) = read(DPKG_STATUS) {
        add("dpkg", parse_status(&text));
    }
    if let Some(text) = OPKG_STATUS.iter().find_map(|p| read(p)) {
        add("opkg", parse_status(&text));
    }
    if let Some(text) = read(APK_INSTALLED) {
        add("apk", parse_apk(&text));
    }
    if let Some(packages) = rpm_packages() {
        add("rpm", packages);
    }
    lists
}

fn read(path: &str) -> Option<String> {
    let bytes = safe_fs::read(Path::new(path), MAX_DATABASE_BYTES).ok()??;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// dpkg's and opkg's status file: stanzas of `Field: value`, blank-line separated. Only
/// packages whose status ends in `installed` count (not `config-files`, not half-installed).
pub fn parse_status(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut p = Package {
            name: String::new(),
            version: String::new(),
            arch: String::new(),
            source: None,
        };
        let mut installed = false;
        for line in stanza.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key {
                "Package" => p.name = value.into(),
                "Version" => p.version = value.into(),
                "Architecture" => p.arch = value.into(),
                // "Source: openssl (3.0.11-1)": the name, without a differing version.
                "Source" => p.source = value.split_whitespace().next().map(str::to_string),
                "Status" => installed = value.split_whitespace().last() == Some("installed"),
                _ => {}
            }
        }
        if installed && !p.name.is_empty() {
            if p.source.as_deref() == Some(p.name.as_str()) {
                p.source = None;
            }
            out.push(p);
        }
    }
    out
}

/// apk's installed database: blocks of one-letter fields (`P:` name, `V:` version, `A:`
/// architecture, `o:` origin, the source package).
pub fn parse_apk(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let field = |key: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(key).map(str::to_string))
        };
        let Some(name) = field("P:") else { continue };
        let source = field("o:").filter(|o| *o != name);
        out.push(Package {
            version: field("V:").unwrap_or_default(),
            arch: field("A:").unwrap_or_default(),
            name,
            source,
        });
    }
    out
}

/// The rpm query format: name, `[epoch:]version-release`, arch and source rpm, tab-separated.
const RPM_FORMAT: &str =
    "%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n";

fn rpm_packages() -> Option<Vec<Package>> {
    let rpm = programs::find("rpm")?;
    if !Path::new("/var/lib/rpm").is_dir() && !Path::new("/usr/lib/sysimage/rpm").is_dir() {
        return None;
    }
    let out = crate::command::program_output(
        &rpm,
        &["-qa", "--qf", RPM_FORMAT],
        MAX_DATABASE_BYTES as usize,
        RPM_TIMEOUT,
    )
    .map_err(|e| eprintln!("warning: software inventory: {e}"))
    .ok()?;
    Some(parse_rpm(&out))
}

/// `rpm -qa` lines in [`RPM_FORMAT`]. The source is the source rpm's name, its
/// `-version-release.src.rpm` cut off.
pub fn parse_rpm(text: &str) -> Vec<Package> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (name, version, arch) = (f.next()?, f.next()?, f.next()?);
            let source = f
                .next()
                .and_then(|s| s.strip_suffix(".src.rpm"))
                .and_then(|s| Some(s.rsplitn(3, '-').nth(2)?.to_string()))
                .filter(|s| s != name);
            Some(Package {
                name: name.into(),
                version: version.into(),
                arch: if arch == "(none)" { "" } else { arch }.into(),
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_keeps_installed_packages_with_their_source() {
        let text = "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl (3.0.11-1~deb12u2)\nVersion: 3.0.11-1~deb12u2\nDescription: x\n multi-line: yes\n\n\
            Package: old\nStatus: deinstall ok config-files\nVersion: 1\n\n\
            Package: bash\nStatus: install ok installed\nArchitecture: amd64\nSource: bash\nVersion: 5.2.15-2+b2\n";
        let p = parse_status(text);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].name, "libssl3");
        assert_eq!(p[0].version, "3.0.11-1~deb12u2");
        assert_eq!(p[0].source.as_deref(), Some("openssl"));
        assert_eq!(p[1].source, None, "same as its name");
    }

    #[test]
    fn opkg_status_of_openwrt() {
        let text = "Package: dropbear\nVersion: 2022.82-6\nDepends: libc\nStatus: install user installed\nArchitecture: mipsel_24kc\nInstalled-Time: 1700000000\n\n\
            Package: kmod-gone\nVersion: 1\nStatus: install ok not-installed\n\n";
        let p = parse_status(text);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].name.as_str(), p[0].arch.as_str()),
            ("dropbear", "mipsel_24kc")
        );
    }

    #[test]
    fn apk_database_blocks() {
        let text = "C:Q1abc=\nP:libcrypto3\nV:3.3.2-r1\nA:x86_64\nS:1\no:openssl\nm:maintainer\n\n\
            C:Q1def=\nP:busybox\nV:1.36.1-r29\nA:x86_64\no:busybox\n\n";
        let p = parse_apk(text);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].source.as_deref(), Some("openssl"));
        assert_eq!(p[1].source, None);
        assert_eq!(p[1].version, "1.36.1-r29");
    }

    #[test]
    fn rpm_query_lines() {
        let text = "openssl-libs\t1:3.0.7-27.el9\tx86_64\topenssl-3.0.7-27.el9.src.rpm\n\
            gpg-pubkey\t3228467c-613798eb\t(none)\t(none)\n\
            bash\t5.1.8-9.el9\tx86_64\tbash-5.1.8-9.el9.src.rpm\n";
        let p = parse_rpm(text);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].version, "1:3.0.7-27.el9");
        assert_eq!(p[0].source.as_deref(), Some("openssl"));
        assert_eq!((p[1].arch.as_str(), p[1].source.as_deref()), ("", None));
        assert_eq!(p[2].source, None);
    }
}
