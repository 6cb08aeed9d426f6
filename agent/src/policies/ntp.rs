//! `ntp`: the time servers of whichever daemon the device has, then a restart of it.
//!
//! Detection, first match wins: systemd-timesyncd, chrony, ntpd (ntp or ntpsec), busybox
//! ntpd. None of them is an error: a device without a time daemon must not report success.
//!
//! - timesyncd gets a drop-in, `/etc/systemd/timesyncd.conf.d/apiary.conf`, wholly ours.
//! - chrony and ntpd keep their configuration file, minus every `server`, `pool` and `peer`
//!   line, plus a marked block with the configured servers: the servers become exactly the
//!   configured ones, everything else stays the distribution's.
//! - busybox ntpd reads `server` lines from `/etc/ntp.conf` when started without `-p`.
//!
//! Restart: `systemctl restart UNIT` when systemd runs, else `/etc/init.d/SCRIPT restart` for
//! the first of the daemon's usual script names. Only after a change.

use std::path::{Path, PathBuf};
use std::time::Duration;

use apiary_proto::policy::InBundle;
use apiary_proto::policy::ntp::Ntp;

use super::converged::Converged;
use super::{Context, ItemPolicy, Outcome};
use crate::command;
use crate::safe_fs::{self, Dir};
use crate::system::programs;

const NAME: &str = Ntp::NAME;
const ITEM: &str = "servers";
const RESTART_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest time daemon config read back.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// Heads the block of managed server lines.
const MARKER: &str = "# Time servers managed by apiary; changes here are reverted.";
const TIMESYNCD_DROP_IN: &str = "/etc/systemd/timesyncd.conf.d/apiary.conf";

/// A time daemon found on the device.
#[derive(Debug, PartialEq, Eq)]
enum Daemon {
    Timesyncd,
    Chrony,
    Ntpd,
    BusyboxNtpd,
}

impl Daemon {
    fn detect() -> Result<Self, String> {
        let timesyncd = [
            "/lib/systemd/systemd-timesyncd",
            "/usr/lib/systemd/systemd-timesyncd",
        ];
        if timesyncd.iter().any(|p| Path::new(p).exists()) {
            return Ok(Daemon::Timesyncd);
        }
        if programs::find("chronyd").is_some() {
            return Ok(Daemon::Chrony);
        }
        match programs::find("ntpd") {
            Some(p) if programs::is_busybox_applet(&p) => Ok(Daemon::BusyboxNtpd),
            Some(_) => Ok(Daemon::Ntpd),
            None => Err(
                "no time daemon found: looked for systemd-timesyncd, chronyd and ntpd (ntp, ntpsec, busybox); servers not configured"
                    .to_string(),
            ),
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Daemon::Timesyncd => "systemd-timesyncd",
            Daemon::Chrony => "chrony",
            Daemon::Ntpd => "ntpd",
            Daemon::BusyboxNtpd => "busybox ntpd",
        }
    }

    /// The file holding the servers.
    fn config_path(&self) -> PathBuf {
        let first_existing = |candidates: &[&str]| {
            let found = candidates.iter().find(|p| Path::new(p).exists());
            PathBuf::from(found.unwrap_or(&candidates[0]))
        };
        match self {
            Daemon::Timesyncd => PathBuf::from(TIMESYNCD_DROP_IN),
            Daemon::Chrony => first_existing(&["/etc/chrony/chrony.conf", "/etc/chrony.conf"]),
            Daemon::Ntpd => first_existing(&["/etc/ntpsec/ntp.conf", "/etc/ntp.conf"]),
            Daemon::BusyboxNtpd => PathBuf::from("/etc/ntp.conf"),
        }
    }

    /// The configuration `current` must become for `servers`.
    fn desired(&self, current: &str, servers: &[String]) -> String {
        match self {
            Daemon::Timesyncd => format!("{MARKER}\n[Time]\nNTP={}\n", servers.join(" ")),
            Daemon::Chrony | Daemon::Ntpd => with_servers(current, servers, " iburst"),
            Daemon::BusyboxNtpd => with_servers(current, servers, ""),
        }
    }

    /// systemd units and init scripts, in order of preference.
    fn services(&self) -> &'static [&'static str] {
        match self {
            Daemon::Timesyncd => &["systemd-timesyncd"],
            Daemon::Chrony => &["chrony", "chronyd"],
            Daemon::Ntpd => &["ntpsec", "ntp", "ntpd", "S49ntp"],
            Daemon::BusyboxNtpd => &["ntpd", "S49ntp"],
        }
    }
}

/// `text` without its `server`, `pool` and `peer` lines, plus the managed block.
fn with_servers(text: &str, servers: &[String], options: &str) -> String {
    let mut kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            let first = line.split_whitespace().next().unwrap_or("");
            !matches!(first, "server" | "pool" | "peer") && line.trim() != MARKER
        })
        .collect();
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    let mut out = String::new();
    for line in kept {
        out.push_str(line);
        out.push('\n');
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(MARKER);
    out.push('\n');
    for s in servers {
        out.push_str(&format!("server {s}{options}\n"));
    }
    out
}

/// The server list is one item: the daemon's configuration holds all of it.
impl ItemPolicy for Ntp {
    type Item = Ntp;
    type Tools = ();

    fn items(&self) -> &[Ntp] {
        std::slice::from_ref(self)
    }

    fn item_name(_: &Ntp) -> String {
        ITEM.to_string()
    }

    fn converge_item(
        &self,
        _: &(),
        spec: &Ntp,
        _: &Context<'_>,
        record: &mut Converged,
        out: &mut Vec<Outcome>,
    ) -> Result<(), String> {
        out.push(converge(&spec.servers, record)?);
        Ok(())
    }
}

fn converge(servers: &[String], converged: &mut Converged) -> Result<Outcome, String> {
    let daemon = Daemon::detect()?;
    let path = daemon.config_path();
    let current = safe_fs::read_text(&path, MAX_CONFIG_BYTES)
        .map_err(|e| format!("cannot read the {} config: {e}", daemon.label()))?;
    let desired = daemon.desired(current.as_deref().unwrap_or(""), servers);
    let fingerprint = Converged::fingerprint(&[daemon.label(), &desired]);
    let list = servers.join(", ");
    if current.as_deref() == Some(desired.as_str()) {
        converged.record(ITEM, &fingerprint);
        return Ok(Outcome::unchanged(
            NAME,
            ITEM.into(),
            format!("{} uses {list}", daemon.label()),
        ));
    }
    let drift = current.is_some() && converged.was(ITEM, &fingerprint);
    write_config(&path, &desired)?;
    converged.record(ITEM, &fingerprint);
    let how = restart(&daemon).map_err(|e| {
        format!(
            "servers written to {}, but {} was not restarted: {e}",
            path.display(),
            daemon.label()
        )
    })?;
    let what = format!(
        "{} servers set to {list} in {}; {how}",
        daemon.label(),
        path.display()
    );
    let message = if drift {
        format!("time servers were changed on the device; restored: {what}")
    } else {
        what
    };
    Ok(Outcome::changed(NAME, ITEM.into(), drift, message))
}

/// Writes the daemon's config, as root (directly or through elevation: it is a system file).
fn write_config(path: &Path, desired: &str) -> Result<(), String> {
    if !crate::privilege::current().is_root() {
        let sha256 = apiary_proto::digest::sha256_hex(desired.as_bytes());
        let input = command::Input::Bytes(desired.as_bytes());
        return crate::elevated::write(path, input, 0o644, None, &sha256);
    }
    let (parent, name) = safe_fs::split(path).map_err(|e| e.to_string())?;
    let dir = Dir::create_all(parent, 0o755).map_err(|e| format!("cannot create: {e}"))?;
    safe_fs::write_in(&dir, name, desired.as_bytes(), 0o644, None)
        .map_err(|e| format!("cannot write: {e}"))
}

/// Restarts the daemon through systemd or its init script; says how.
fn restart(daemon: &Daemon) -> Result<String, String> {
    if Path::new("/run/systemd/system").is_dir()
        && let Some(systemctl) = programs::find("systemctl")
    {
        let unit = daemon
            .services()
            .iter()
            .find(|u| {
                [
                    "/etc/systemd/system",
                    "/lib/systemd/system",
                    "/usr/lib/systemd/system",
                ]
                .iter()
                .any(|d| Path::new(d).join(format!("{u}.service")).exists())
            })
            .ok_or_else(|| format!("no systemd unit among {}", daemon.services().join(", ")))?;
        return run(&systemctl, &["restart", unit])
            .map(|()| format!("restarted {unit} with systemctl"));
    }
    let script = daemon
        .services()
        .iter()
        .map(|s| Path::new("/etc/init.d").join(s))
        .find(|p| p.exists())
        .ok_or_else(|| {
            format!(
                "systemd is not running and there is no init script /etc/init.d/{{{}}}",
                daemon.services().join(",")
            )
        })?;
    run(&script, &["restart"]).map(|()| format!("restarted with {} restart", script.display()))
}

fn run(program: &Path, args: &[&str]) -> Result<(), String> {
    let purpose = format!("restarting the time daemon ({})", program.display());
    command::run_as_root(
        program,
        args,
        command::Input::None,
        RESTART_TIMEOUT,
        &purpose,
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lines_become_exactly_the_configured_ones() {
        let debian = "# Welcome\npool 2.debian.pool.ntp.org iburst\nkeyfile /etc/chrony/chrony.keys\n  server old.example iburst\nsourcedir /etc/chrony/sources.d\n\n";
        let servers = vec!["127.0.0.1".to_string(), "time.example".to_string()];
        let once = Daemon::Chrony.desired(debian, &servers);
        assert_eq!(
            once,
            format!(
                "# Welcome\nkeyfile /etc/chrony/chrony.keys\nsourcedir /etc/chrony/sources.d\n\n{MARKER}\nserver 127.0.0.1 iburst\nserver time.example iburst\n"
            )
        );
        assert_eq!(Daemon::Chrony.desired(&once, &servers), once, "idempotent");
        assert_eq!(
            Daemon::BusyboxNtpd.desired("", &servers[..1]),
            format!("{MARKER}\nserver 127.0.0.1\n")
        );
        assert_eq!(
            Daemon::Timesyncd.desired("anything", &servers),
            format!("{MARKER}\n[Time]\nNTP=127.0.0.1 time.example\n")
        );
    }
}
