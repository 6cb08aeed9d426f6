//! The programs that change accounts: shadow-utils (`useradd`, `userdel`, `usermod`) where
//! installed, else busybox (`adduser`, `deluser`). Both take `chpasswd -e` for hashes.
//!
//! Every value goes in as its own argument, never through a shell, and names were validated
//! (no leading `-`) before they get here.

use std::path::PathBuf;
use std::time::Duration;

use super::{accounts, programs};
use crate::safe_fs::{self, Dir};
use crate::{command, elevated};

/// Bound on one account command (they are quick; a hang must not stall the cycle).
const TIMEOUT: Duration = Duration::from_secs(60);

/// A new account's settings.
pub struct NewAccount<'a> {
    pub name: &'a str,
    pub uid: Option<u32>,
    pub home: Option<&'a str>,
    pub shell: Option<&'a str>,
}

/// The account programs of this device.
pub enum AccountTools {
    Shadow {
        useradd: PathBuf,
        userdel: PathBuf,
        usermod: PathBuf,
    },
    Busybox {
        adduser: PathBuf,
        deluser: PathBuf,
    },
}

impl AccountTools {
    /// Finds shadow-utils, or busybox's applets; an error names what is missing.
    pub fn detect() -> Result<Self, String> {
        if let (Some(useradd), Some(userdel), Some(usermod)) = (
            programs::find("useradd"),
            programs::find("userdel"),
            programs::find("usermod"),
        ) {
            return Ok(AccountTools::Shadow {
                useradd,
                userdel,
                usermod,
            });
        }
        match (programs::find("adduser"), programs::find("deluser")) {
            (Some(adduser), Some(deluser))
                if programs::is_busybox_applet(&adduser)
                    && programs::is_busybox_applet(&deluser) =>
            {
                Ok(AccountTools::Busybox { adduser, deluser })
            }
            _ => Err(format!(
                "no account tools: neither useradd/userdel/usermod (shadow-utils) nor busybox adduser/deluser in {}",
                programs::TOOL_DIRS.join(", ")
            )),
        }
    }

    /// Which family, for reports.
    pub fn family(&self) -> &'static str {
        match self {
            AccountTools::Shadow { .. } => "shadow-utils",
            AccountTools::Busybox { .. } => "busybox",
        }
    }

    /// Adds an account with a home directory and no usable password.
    pub fn add(&self, new: &NewAccount<'_>) -> Result<(), String> {
        let uid = new.uid.map(|u| u.to_string());
        let mut args: Vec<&str> = Vec::new();
        let (program, home_flag) = match self {
            AccountTools::Shadow { useradd, .. } => {
                args.push("--create-home");
                (useradd, "--home-dir")
            }
            // -D: no password prompt; busybox creates the home directory by default.
            AccountTools::Busybox { adduser, .. } => {
                args.push("-D");
                (adduser, "-h")
            }
        };
        if let Some(uid) = &uid {
            args.extend(["-u", uid]);
        }
        if let Some(home) = new.home {
            args.extend([home_flag, home]);
        }
        if let Some(shell) = new.shell {
            args.extend(["-s", shell]);
        }
        args.push(new.name);
        run(
            program,
            &args,
            None,
            &format!("adding account {}", new.name),
        )
    }

    /// Removes an account and its home directory.
    pub fn remove(&self, name: &str) -> Result<(), String> {
        let purpose = format!("removing account {name}");
        match self {
            AccountTools::Shadow { userdel, .. } => {
                run(userdel, &["--remove", name], None, &purpose)
            }
            AccountTools::Busybox { deluser, .. } => {
                run(deluser, &["--remove-home", name], None, &purpose)
            }
        }
    }

    /// Changes an existing account's home directory (without moving files) and shell.
    ///
    /// Busybox has no `usermod`; there the agent rewrites the account's `/etc/passwd` line.
    pub fn modify(&self, name: &str, home: &str, shell: &str) -> Result<(), String> {
        match self {
            AccountTools::Shadow { usermod, .. } => run(
                usermod,
                &["--home", home, "--shell", shell, name],
                None,
                &format!("changing account {name}"),
            ),
            AccountTools::Busybox { .. } => rewrite_passwd_line(name, home, shell),
        }
    }
}

/// Sets a password hash with `chpasswd -e`, the hash on stdin so no process listing shows it.
pub fn set_password_hash(user: &str, hash: &str) -> Result<(), String> {
    let chpasswd = programs::find("chpasswd").ok_or_else(|| {
        format!(
            "no chpasswd in {} (shadow-utils or busybox)",
            programs::TOOL_DIRS.join(", ")
        )
    })?;
    let input = format!("{user}:{hash}\n");
    run(
        &chpasswd,
        &["-e"],
        Some(input.as_bytes()),
        &format!("setting the password of {user}"),
    )
}

/// Runs an account tool as root (see [`crate::privilege`]).
fn run(
    program: &std::path::Path,
    args: &[&str],
    input: Option<&[u8]>,
    purpose: &str,
) -> Result<(), String> {
    command::run_as_root(program, args, input.into(), TIMEOUT, purpose).map(drop)
}

/// Replaces the home and shell fields of `name`'s line in `/etc/passwd`, atomically.
fn rewrite_passwd_line(name: &str, home: &str, shell: &str) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let etc = Dir::open(std::path::Path::new("/etc")).map_err(|e| e.to_string())?;
    let meta = etc
        .stat("passwd")
        .map_err(|e| e.to_string())?
        .ok_or("/etc/passwd does not exist")?;
    let bytes = etc
        .read("passwd", accounts::MAX_ACCOUNT_FILE_BYTES)
        .map_err(|e| format!("cannot read: {e}"))?
        .ok_or("/etc/passwd does not exist")?;
    let text = String::from_utf8_lossy(&bytes);
    let new = with_home_and_shell(&text, name, home, shell)
        .ok_or_else(|| format!("user {name} is not in /etc/passwd"))?;
    let mode = meta.permissions().mode() & 0o7777;
    let owner = Some((meta.uid(), meta.gid()));
    if !crate::privilege::current().is_root() {
        let sha256 = apiary_proto::digest::sha256_hex(new.as_bytes());
        let input = command::Input::Bytes(new.as_bytes());
        return elevated::write(
            std::path::Path::new("/etc/passwd"),
            input,
            mode,
            owner,
            &sha256,
        );
    }
    safe_fs::write_in(&etc, "passwd", new.as_bytes(), mode, owner)
        .map_err(|e| format!("cannot write: {e}"))
}

fn with_home_and_shell(text: &str, name: &str, home: &str, shell: &str) -> Option<String> {
    let mut found = false;
    let mut out = String::with_capacity(text.len() + 32);
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let mut fields: Vec<&str> = body.split(':').collect();
        if fields.len() >= 7 && fields[0] == name && !found {
            found = true;
            fields[5] = home;
            fields[6] = shell;
            out.push_str(&fields.join(":"));
            out.push_str(&line[body.len()..]);
        } else {
            out.push_str(line);
        }
    }
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_the_named_line() {
        let text =
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Linux User,,,:/home/alice:/bin/sh\n";
        let out = with_home_and_shell(text, "alice", "/srv/alice", "/bin/ash").unwrap();
        assert_eq!(
            out,
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Linux User,,,:/srv/alice:/bin/ash\n"
        );
        assert!(with_home_and_shell(text, "bob", "/h", "/s").is_none());
    }
}
