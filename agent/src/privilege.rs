//! Who the agent runs as, and how it reaches root for the steps that need it.
//!
//! As root, every step runs directly. As another user, only the steps that need root go
//! through the configured `elevation_command` (e.g. `["/usr/bin/sudo", "-n"]`): the system
//! tools that change accounts or restart services, and the agent's own file operations in
//! [`crate::elevated`]. Operator commands never do. Without an elevation command each such
//! step fails with a message that starts with "needs root:" and names what it wanted.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// How this process gets root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Privilege {
    Root,
    /// Not root; `prefix` (an absolute program and its arguments) runs a tool as root.
    Elevated {
        uid: u32,
        prefix: Vec<String>,
    },
    /// Not root and no way to become root.
    Unprivileged {
        uid: u32,
    },
}

static CURRENT: OnceLock<Privilege> = OnceLock::new();

/// Fixes the process's privilege from `agent.json`'s `elevation_command`; the first call wins.
pub fn init(elevation_command: &[String]) {
    let _ = CURRENT.set(Privilege::detect(euid(), elevation_command));
}

/// The process's privilege ([`init`]'s, or detected without elevation).
pub fn current() -> &'static Privilege {
    CURRENT.get_or_init(|| Privilege::detect(euid(), &[]))
}

/// The effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// The effective group id.
pub fn egid() -> u32 {
    // SAFETY: getegid has no preconditions.
    unsafe { libc::getegid() }
}

/// Checks an `elevation_command`: empty (none), or an absolute program and plain arguments.
pub fn check_elevation_command(command: &[String]) -> Result<(), String> {
    let Some(program) = command.first() else {
        return Ok(());
    };
    if !Path::new(program).is_absolute() {
        return Err(format!(
            "the elevation program {program:?} must be an absolute path (the agent does not search $PATH)"
        ));
    }
    if command.iter().any(|a| a.is_empty() || a.contains('\0')) {
        return Err("an elevation command argument is empty or holds a NUL byte".into());
    }
    Ok(())
}

impl Privilege {
    fn detect(euid: u32, elevation_command: &[String]) -> Self {
        match (euid, elevation_command.is_empty()) {
            (0, _) => Privilege::Root,
            (uid, true) => Privilege::Unprivileged { uid },
            (uid, false) => Privilege::Elevated {
                uid,
                prefix: elevation_command.to_vec(),
            },
        }
    }

    /// How the agent runs, in words for its log.
    pub fn describe(&self) -> String {
        match self {
            Privilege::Root => "as root".into(),
            Privilege::Elevated { uid, prefix } => {
                format!("as uid {uid}; system tools through {}", prefix.join(" "))
            }
            Privilege::Unprivileged { uid } => {
                format!("as uid {uid} without elevation; steps that need root will fail")
            }
        }
    }

    /// True when the process itself is root.
    pub fn is_root(&self) -> bool {
        matches!(self, Privilege::Root)
    }

    /// The command that runs `program` as root, or the "needs root" message for `purpose`
    /// (what the step wanted, e.g. "adding account alice").
    pub fn root_command(&self, program: &Path, purpose: &str) -> Result<Command, String> {
        match self {
            Privilege::Root => Ok(Command::new(program)),
            Privilege::Elevated { prefix, .. } => {
                let mut cmd = Command::new(&prefix[0]);
                cmd.args(&prefix[1..]).arg(program);
                Ok(cmd)
            }
            Privilege::Unprivileged { .. } => Err(self.needs_root(purpose)),
        }
    }

    /// "needs root: `purpose`", with why the agent does not have it.
    pub fn needs_root(&self, purpose: &str) -> String {
        match self {
            Privilege::Root => format!("needs root: {purpose}"),
            Privilege::Elevated { uid, prefix } => format!(
                "needs root: {purpose}; the agent runs as uid {uid} and this step does not go through its elevation command ({})",
                prefix.join(" ")
            ),
            Privilege::Unprivileged { uid } => format!(
                "needs root: {purpose}; the agent runs as uid {uid} without an elevation_command in agent.json"
            ),
        }
    }

    /// The elevation program's refusal spelled out, when `output` (of a tool run through
    /// [`Privilege::root_command`]) starts with the elevation program's own name, as sudo's
    /// and doas's messages do ("sudo: a password is required").
    pub fn refusal(&self, output: &str) -> Option<String> {
        let Privilege::Elevated { prefix, .. } = self else {
            return None;
        };
        let name = Path::new(&prefix[0]).file_name()?.to_str()?;
        // Its last word: earlier lines may be warnings ("unable to resolve host").
        let said = output
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))?
            .trim();
        Some(format!(
            "the elevation command ({}) refused: {said}; check that its rules (the sudoers allow-list) let this user run the command without a password",
            prefix.join(" ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sudo() -> Vec<String> {
        vec!["/usr/bin/sudo".into(), "-n".into()]
    }

    #[test]
    fn root_never_elevates() {
        assert_eq!(Privilege::detect(0, &sudo()), Privilege::Root);
        let cmd = Privilege::Root
            .root_command(Path::new("/usr/sbin/useradd"), "x")
            .unwrap();
        assert_eq!(cmd.get_program(), "/usr/sbin/useradd");
        assert_eq!(cmd.get_args().count(), 0);
    }

    #[test]
    fn elevation_prefixes_the_tool() {
        let p = Privilege::detect(1000, &sudo());
        let cmd = p.root_command(Path::new("/usr/sbin/useradd"), "x").unwrap();
        assert_eq!(cmd.get_program(), "/usr/bin/sudo");
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(args, ["-n", "/usr/sbin/useradd"]);
    }

    #[test]
    fn without_elevation_it_says_what_needs_root() {
        let p = Privilege::detect(1000, &[]);
        let err = p
            .root_command(Path::new("/usr/sbin/useradd"), "adding account alice")
            .unwrap_err();
        assert!(
            err.starts_with("needs root: adding account alice; the agent runs as uid 1000"),
            "{err}"
        );
    }

    #[test]
    fn elevation_commands_are_checked() {
        assert!(check_elevation_command(&[]).is_ok());
        assert!(check_elevation_command(&sudo()).is_ok());
        let relative = check_elevation_command(&["sudo".into(), "-n".into()]).unwrap_err();
        assert!(relative.contains("absolute path"), "{relative}");
        assert!(check_elevation_command(&["/usr/bin/sudo".into(), String::new()]).is_err());
    }

    #[test]
    fn a_refusal_is_recognised_by_the_program_s_name() {
        let p = Privilege::detect(1000, &sudo());
        let said = p.refusal("sudo: a password is required\n").unwrap();
        assert!(said.contains("refused: a password is required"), "{said}");
        assert!(p.refusal("useradd: user 'alice' already exists").is_none());
        let warned = p
            .refusal("sudo: unable to resolve host d: Name or service not known\nsudo: a password is required")
            .unwrap();
        assert!(
            warned.contains("refused: a password is required"),
            "{warned}"
        );
        assert!(Privilege::Root.refusal("sudo: x").is_none());
    }
}
