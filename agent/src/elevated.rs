//! The file steps an agent that is not root has its own binary do as root, behind the
//! elevation command: `apiary-agent elevated OP ARG...`, the agent's one entry in the shipped
//! sudoers allow-list. Each op is the same `safe_fs` code a root agent runs, so the same link
//! rules hold; content comes on stdin, never from a path the caller names, and an op answers
//! on stdout in one short line.
//!
//! The functions at the top are the unprivileged side; [`serve`] is the root side, which
//! `main.rs` runs for the `elevated` subcommand.

use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use apiary_proto::digest::{self, Sha256};
use apiary_proto::policy::rules;

use crate::command::{self, Input};
use crate::safe_fs::{self, Dir};
use crate::system::{accounts, processes};

/// The agent's subcommand for these ops.
pub const SUBCOMMAND: &str = "elevated";
/// Bound on one op (a write streams a whole distributed file).
const TIMEOUT: Duration = Duration::from_secs(600);
/// Starts every line of an answer: the elevation program may print warnings of its own on
/// the same output ("sudo: unable to resolve host ..."), which are not the answer.
pub const ANSWER: &str = "apiary-elevated: ";
/// Largest `authorized_keys` content taken on stdin.
const MAX_KEYS_BYTES: u64 = 1024 * 1024;

/// A file as the root side sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stat {
    Absent,
    Directory,
    /// Present, but not a regular file with one link: replaced, never read or changed.
    Other,
    File {
        uid: u32,
        gid: u32,
        mode: u32,
        size: u64,
        sha256: String,
    },
}

/// Replaces `path` with `input` (whose SHA-256 must be `sha256`), `mode`, and `owner` (else
/// root's), creating missing directories 0755.
pub fn write(
    path: &Path,
    input: Input<'_>,
    mode: u32,
    owner: Option<(u32, u32)>,
    sha256: &str,
) -> Result<(), String> {
    let (path_arg, mode, owner) = (text(path)?, format!("{mode:o}"), owner_arg(owner));
    call(
        "write",
        &[path_arg, &mode, &owner, sha256],
        input,
        &format!("writing {}", path.display()),
    )
    .map(drop)
}

/// Gives the existing regular file `path` `mode` and `owner`.
pub fn set_attributes(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<(), String> {
    let (path_arg, mode, owner) = (text(path)?, format!("{mode:o}"), owner_arg(owner));
    call(
        "attributes",
        &[path_arg, &mode, &owner],
        Input::None,
        &format!("setting the owner and mode of {}", path.display()),
    )
    .map(drop)
}

/// What `path` is, with its digest when it is a regular file.
pub fn stat(path: &Path) -> Result<Stat, String> {
    let purpose = format!("reading {}", path.display());
    let out = call("stat", &[text(path)?], Input::None, &purpose)?;
    parse_stat(&out).ok_or_else(|| format!("{purpose}: unexpected answer {:?}", out.trim()))
}

/// The `/etc/shadow` hash of `user` (empty when it has no line).
pub fn shadow_hash(user: &str) -> Result<String, String> {
    let purpose = format!("reading the password hash of {user} in /etc/shadow");
    Ok(call("shadow-hash", &[user], Input::None, &purpose)?
        .trim_end_matches('\n')
        .to_string())
}

/// Makes `user`'s `authorized_keys` hold `content` (see `policies::ssh_keys`); returns the
/// fixes made, one per entry.
pub fn ssh_keys(user: &str, content: &str) -> Result<Vec<String>, String> {
    let purpose = format!("writing the SSH keys of {user}");
    let out = call(
        "ssh-keys",
        &[user],
        Input::Bytes(content.as_bytes()),
        &purpose,
    )?;
    Ok(out.lines().map(str::to_string).collect())
}

/// The processes named `name`, by the rule of [`processes`], seen with root's access.
pub fn pids(name: &str) -> Result<Vec<u32>, String> {
    let purpose = format!("telling which processes are {name}");
    let out = call("pids", &[name], Input::None, &purpose)?;
    out.split_whitespace()
        .map(|p| {
            p.parse()
                .map_err(|_| format!("{purpose}: bad answer {p:?}"))
        })
        .collect()
}

fn call(op: &str, args: &[&str], input: Input<'_>, purpose: &str) -> Result<String, String> {
    let exe = agent_binary()?;
    let mut all = vec![SUBCOMMAND, op];
    all.extend_from_slice(args);
    let output = command::run_as_root(&exe, &all, input, TIMEOUT, purpose)?;
    Ok(answer(&output))
}

/// The answer lines of an op's output, without their marker.
fn answer(output: &str) -> String {
    output
        .lines()
        .filter_map(|l| l.strip_prefix(ANSWER))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Marks each line of `text` as the answer, for [`serve`]'s caller to print.
pub fn mark(text: &str) -> String {
    text.lines()
        .map(|l| format!("{ANSWER}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// This process's executable, which the allow-list names.
fn agent_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the agent binary: {e}"))?;
    // Replaced by an upgrade while running: the new binary is at the same path.
    let shown = exe.to_string_lossy();
    Ok(match shown.strip_suffix(" (deleted)") {
        Some(path) => PathBuf::from(path),
        None => exe,
    })
}

fn text(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", path.display()))
}

fn owner_arg(owner: Option<(u32, u32)>) -> String {
    owner.map_or_else(|| "-".to_string(), |(u, g)| format!("{u}:{g}"))
}

fn parse_stat(out: &str) -> Option<Stat> {
    let fields: Vec<&str> = out.split_whitespace().collect();
    Some(match fields.as_slice() {
        ["absent"] => Stat::Absent,
        ["directory"] => Stat::Directory,
        ["other"] => Stat::Other,
        ["file", uid, gid, mode, size, sha256] => Stat::File {
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
            mode: u32::from_str_radix(mode, 8).ok()?,
            size: size.parse().ok()?,
            sha256: sha256.to_string(),
        },
        _ => return None,
    })
}

/// Runs one op as root for `apiary-agent elevated`: what to print on success, or the error.
pub fn serve(args: &[String], stdin: &mut dyn Read) -> Result<String, String> {
    serve_as(crate::privilege::euid(), args, stdin)
}

fn serve_as(euid: u32, args: &[String], stdin: &mut dyn Read) -> Result<String, String> {
    if euid != 0 {
        return Err(format!(
            "apiary-agent {SUBCOMMAND} must run as root (the agent calls it through its elevation command)"
        ));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["write", path, mode, owner, sha256] => serve_write(
            clean(path)?,
            mode_arg(mode)?,
            parse_owner(owner)?,
            sha256,
            stdin,
        ),
        ["attributes", path, mode, owner] => {
            serve_attributes(clean(path)?, mode_arg(mode)?, parse_owner(owner)?)
        }
        ["stat", path] => serve_stat(clean(path)?),
        ["shadow-hash", user] => {
            rules::validate_user_name(user)?;
            let shadow =
                accounts::read_file("/etc/shadow").map_err(|e| format!("cannot read: {e}"))?;
            Ok(accounts::shadow_hash(&shadow, user)
                .unwrap_or_default()
                .to_string())
        }
        ["ssh-keys", user] => {
            rules::validate_user_name(user)?;
            let mut content = String::new();
            stdin
                .take(MAX_KEYS_BYTES + 1)
                .read_to_string(&mut content)
                .map_err(|e| format!("cannot read the keys on stdin: {e}"))?;
            if content.len() as u64 > MAX_KEYS_BYTES {
                return Err(format!("more than {MAX_KEYS_BYTES} bytes of keys"));
            }
            Ok(crate::policies::ssh_keys::apply(user, &content)?.join("\n"))
        }
        ["pids", name] => Ok(processes::pids_named(name)
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ")),
        _ => Err(format!(
            "usage: apiary-agent {SUBCOMMAND} write PATH MODE OWNER SHA256 | attributes PATH MODE OWNER | stat PATH | shadow-hash USER | ssh-keys USER | pids NAME"
        )),
    }
}

fn clean(path: &str) -> Result<&Path, String> {
    if rules::is_clean_absolute_path(path) {
        Ok(Path::new(path))
    } else {
        Err(format!("{path:?} is not a clean absolute path"))
    }
}

fn mode_arg(mode: &str) -> Result<u32, String> {
    u32::from_str_radix(mode, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{mode:?} is not an octal file mode"))
}

fn parse_owner(owner: &str) -> Result<Option<(u32, u32)>, String> {
    if owner == "-" {
        return Ok(None);
    }
    let (uid, gid) = owner
        .split_once(':')
        .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)))
        .ok_or_else(|| format!("{owner:?} is not UID:GID"))?;
    Ok(Some((uid, gid)))
}

fn serve_write(
    path: &Path,
    mode: u32,
    owner: Option<(u32, u32)>,
    sha256: &str,
    stdin: &mut dyn Read,
) -> Result<String, String> {
    let (parent, name) = safe_fs::split(path).map_err(|e| e.to_string())?;
    let dir = Dir::create_all(parent, 0o755).map_err(|e| format!("cannot create: {e}"))?;
    let mut file = dir
        .atomic(name, mode)
        .map_err(|e| format!("cannot write: {e}"))?;
    if let Some((uid, gid)) = owner {
        file.chown(uid, gid, mode)
            .map_err(|e| format!("cannot write: {e}"))?;
    }
    let mut hash = Sha256::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("cannot read the content on stdin: {e}")),
        };
        hash.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let got = hash.finish_hex();
    if got != sha256 {
        return Err(format!(
            "the content for {} has sha256 {got}, expected {sha256}; not installed",
            path.display()
        ));
    }
    file.commit().map_err(|e| format!("cannot install: {e}"))?;
    Ok(String::new())
}

fn serve_attributes(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<String, String> {
    let (parent, name) = safe_fs::split(path).map_err(|e| e.to_string())?;
    let dir = Dir::open(parent).map_err(|e| e.to_string())?;
    dir.set_attributes(name, owner, mode)
        .map_err(|e| format!("cannot set owner and mode: {e}"))?;
    Ok(String::new())
}

fn serve_stat(path: &Path) -> Result<String, String> {
    let (parent, name) = safe_fs::split(path).map_err(|e| e.to_string())?;
    let dir = match Dir::open(parent) {
        Ok(dir) => dir,
        Err(e) if e.is_not_found() => return Ok("absent".into()),
        Err(e) => return Err(e.to_string()),
    };
    let Some(meta) = dir.stat(name).map_err(|e| e.to_string())? else {
        return Ok("absent".into());
    };
    if meta.is_dir() {
        return Ok("directory".into());
    }
    if !meta.is_file() || meta.nlink() != 1 {
        return Ok("other".into());
    }
    let Some((file, meta)) = dir.open_file(name).map_err(|e| e.to_string())? else {
        return Ok("absent".into());
    };
    let sha256 = digest::sha256_hex_reader(file)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(format!(
        "file {} {} {:o} {} {sha256}",
        meta.uid(),
        meta.gid(),
        meta.mode() & 0o7777,
        meta.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_answers_parse() {
        assert_eq!(parse_stat("absent\n"), Some(Stat::Absent));
        assert_eq!(parse_stat("other"), Some(Stat::Other));
        assert_eq!(
            parse_stat("file 0 42 644 12 abcd\n"),
            Some(Stat::File {
                uid: 0,
                gid: 42,
                mode: 0o644,
                size: 12,
                sha256: "abcd".into()
            })
        );
        assert_eq!(parse_stat("file x"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn answers_are_told_from_warnings() {
        let out = format!(
            "sudo: unable to resolve host dev: Name or service not known\n{}\n",
            mark("file 0 0 644 1 ab\nsecond")
        );
        assert_eq!(answer(&out), "file 0 0 644 1 ab\nsecond\n");
        assert_eq!(answer("sudo: nothing else\n"), "");
    }

    #[test]
    fn arguments_are_checked() {
        assert_eq!(parse_owner("-"), Ok(None));
        assert_eq!(parse_owner("0:5"), Ok(Some((0, 5))));
        assert!(parse_owner("root:root").is_err());
        assert_eq!(mode_arg("0644"), Ok(0o644));
        assert!(mode_arg("999").is_err());
        assert!(mode_arg("17777").is_err());
        assert!(clean("/etc/../shadow").is_err());
        assert!(clean("etc/x").is_err());
        assert_eq!(clean("/etc/x"), Ok(Path::new("/etc/x")));
    }

    #[test]
    fn the_root_side_refuses_other_users() {
        let args = ["stat".to_string(), "/etc/passwd".to_string()];
        let err = serve_as(1000, &args, &mut io::empty()).unwrap_err();
        assert!(err.contains("must run as root"), "{err}");
    }
}
