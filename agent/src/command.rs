//! Running operator commands (pre-conditions, commands on change) with captured output.
//!
//! Commands come from a verified bundle, so they are trusted operator input and run through
//! `/bin/sh -c`; `$(key)` values reach them as environment variables (see `expand::shell`),
//! and secrets are redacted from the output before it is cut to size.

use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::expand::shell::ShellCommand;
use crate::expand::{Secrets, Vars};

/// Bytes of output kept per command (the tail, where errors usually are).
pub const OUTPUT_LIMIT: usize = 4096;

/// How a command ended.
#[derive(Debug, PartialEq, Eq)]
pub struct CommandResult {
    /// `Some(code)` on a normal exit, `None` when killed by a signal or the timeout.
    pub code: Option<i32>,
    pub timed_out: bool,
    /// Combined stdout and stderr, at most [`OUTPUT_LIMIT`] bytes (the tail).
    pub output: String,
}

impl CommandResult {
    /// True when the command exited with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// A short description of a failure, for reports.
    pub fn describe_failure(&self, timeout: Duration) -> String {
        match (self.timed_out, self.code) {
            (true, _) => format!("timed out after {} s and was killed", timeout.as_secs()),
            (false, Some(code)) => format!("exited with status {code}"),
            (false, None) => "was killed by a signal".to_string(),
        }
    }
}

/// Runs `command` with `/bin/sh -c` and its variables, stdin closed, output captured with
/// `secrets` redacted, killed after `timeout`.
pub fn run_shell(
    command: &ShellCommand,
    secrets: &Secrets,
    timeout: Duration,
) -> io::Result<CommandResult> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(&command.script);
    cmd.envs(command.env.iter().map(|(k, v)| (k, v)));
    cmd.envs(crate::proxy::child_env().iter().map(|(k, v)| (k, v)));
    run(cmd, Input::None, secrets, timeout)
}

/// Runs an operator's command from the bundle, its `$(key)`s filled from `vars`; an error
/// says why it could not start (a value it cannot hold, no shell).
pub fn run_with_values(
    text: &str,
    vars: &Vars,
    timeout: Duration,
) -> Result<CommandResult, String> {
    let command = vars.shell(text).map_err(|e| e.to_string())?;
    run_shell(&command, vars.secrets(), timeout).map_err(|e| format!("cannot start /bin/sh: {e}"))
}

/// Runs `program` with `args` directly (no shell, so no value is ever re-parsed), feeding
/// `input` on stdin; otherwise like [`run_shell`].
pub fn run_program(
    program: &Path,
    args: &[&str],
    input: Option<&[u8]>,
    timeout: Duration,
) -> io::Result<CommandResult> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    run(cmd, Input::from(input), &Secrets::default(), timeout)
}

/// What a program reads on stdin.
pub enum Input<'a> {
    None,
    Bytes(&'a [u8]),
    /// Streamed from an open file (large content, never held in memory).
    File(std::fs::File),
}

impl<'a> From<Option<&'a [u8]>> for Input<'a> {
    fn from(bytes: Option<&'a [u8]>) -> Self {
        bytes.map_or(Input::None, Input::Bytes)
    }
}

/// Runs a system tool that needs root ([`crate::privilege`]): directly as root, behind the
/// elevation command otherwise, or not at all (the "needs root" error for `purpose`). On
/// success, returns what it printed; an error says what ran, how it failed and why.
pub fn run_as_root(
    program: &Path,
    args: &[&str],
    input: Input<'_>,
    timeout: Duration,
    purpose: &str,
) -> Result<String, String> {
    let privilege = crate::privilege::current();
    let mut cmd = privilege.root_command(program, purpose)?;
    cmd.args(args);
    let shown = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let r = run(cmd, input, &Secrets::default(), timeout)
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if r.success() {
        return Ok(r.output);
    }
    let output = r.output.trim();
    if let Some(refused) = privilege.refusal(output) {
        return Err(format!("{purpose}: {refused}"));
    }
    let mut msg = format!("{shown} {}", r.describe_failure(timeout));
    if !output.is_empty() {
        msg.push_str(": ");
        msg.push_str(output);
    }
    Err(msg)
}

/// Like [`run_program`], for system tools whose success is all that matters: an error
/// names the program, its arguments, how it failed and what it printed.
pub fn run_program_ok(
    program: &Path,
    args: &[&str],
    input: Option<&[u8]>,
    timeout: Duration,
) -> Result<(), String> {
    let shown = format!("{} {}", program.display(), args.join(" "));
    match run_program(program, args, input, timeout) {
        Ok(r) if r.success() => Ok(()),
        Ok(r) => {
            let mut msg = format!("{} {}", shown.trim_end(), r.describe_failure(timeout));
            let output = r.output.trim();
            if !output.is_empty() {
                msg.push_str(": ");
                msg.push_str(output);
            }
            Err(msg)
        }
        Err(e) => Err(format!("cannot run {}: {e}", program.display())),
    }
}

fn run(
    cmd: Command,
    input: Input<'_>,
    secrets: &Secrets,
    timeout: Duration,
) -> io::Result<CommandResult> {
    // Kept beyond the limit: room to recognise a secret the final cut goes through.
    let keep = OUTPUT_LIMIT + secrets.longest();
    let (status, timed_out, (tail, cut)) = spawn(cmd, input, Capture::Tail(keep), timeout)?;
    Ok(CommandResult {
        code: status.code(),
        timed_out,
        output: secrets.redact_tail(&tail, cut, OUTPUT_LIMIT),
    })
}

/// What [`spawn`] keeps of a command's output.
#[derive(Clone, Copy)]
enum Capture {
    /// The last N bytes of stdout and stderr together.
    Tail(usize),
    /// Stdout from its start, up to N bytes; stderr dropped.
    Head(usize),
}

/// Starts `cmd` with `input` on stdin, collects its output as `capture` says, and waits
/// for it (killed after `timeout`): its status, whether it was killed, and the bytes kept
/// with whether more came.
fn spawn(
    mut cmd: Command,
    input: Input<'_>,
    capture: Capture,
    timeout: Duration,
) -> io::Result<(std::process::ExitStatus, bool, (Vec<u8>, bool))> {
    let (mut reader, writer) = io::pipe()?;
    let (stdin, bytes) = match input {
        Input::None => (Stdio::null(), None),
        Input::Bytes(bytes) => (Stdio::piped(), Some(bytes)),
        Input::File(file) => (Stdio::from(file), None),
    };
    let stderr = match capture {
        Capture::Tail(_) => Stdio::from(writer.try_clone()?),
        Capture::Head(_) => Stdio::null(),
    };
    let mut child = cmd.stdin(stdin).stdout(writer).stderr(stderr).spawn()?;
    // The command holds the write end now; ours must close for the reader to see the end.
    drop(cmd);
    if let (Some(bytes), Some(mut stdin)) = (bytes, child.stdin.take()) {
        // A command that exits without reading gives EPIPE, which its status then explains.
        let _ = stdin.write_all(bytes);
    }
    let collector = thread::spawn(move || {
        let mut kept = Vec::new();
        let mut total = 0usize;
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    total += n;
                    match capture {
                        Capture::Tail(keep) => {
                            kept.extend_from_slice(&buf[..n]);
                            if kept.len() > 2 * keep {
                                kept.drain(..kept.len() - keep);
                            }
                        }
                        // The rest is read and dropped, so a full pipe never stops the program.
                        Capture::Head(limit) if kept.len() < limit => {
                            kept.extend_from_slice(&buf[..n.min(limit - kept.len())]);
                        }
                        Capture::Head(_) => {}
                    }
                }
            }
        }
        match capture {
            Capture::Tail(keep) => {
                let start = kept.len().saturating_sub(keep);
                (kept.split_off(start), total > keep)
            }
            Capture::Head(_) => {
                let cut = total > kept.len();
                (kept, cut)
            }
        }
    });
    let (status, timed_out) = wait_or_kill(&mut child, timeout)?;
    // A grandchild that keeps the pipe open must not block the agent: only wait briefly.
    Ok((status, timed_out, join_with_grace(collector)))
}

/// Waits for `child`, killing it once `timeout` has passed; true when it had to.
fn wait_or_kill(
    child: &mut std::process::Child,
    timeout: Duration,
) -> io::Result<(std::process::ExitStatus, bool)> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status, false));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return Ok((child.wait()?, true));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `program` with `args` (no shell) for what it prints on stdout, kept whole up to
/// `limit` bytes (a longer output is an error, not a silently cut list); stderr is dropped.
pub fn program_output(
    program: &Path,
    args: &[&str],
    limit: usize,
    timeout: Duration,
) -> Result<String, String> {
    let shown = program.display();
    let mut cmd = Command::new(program);
    cmd.args(args);
    let (status, timed_out, (out, cut)) = spawn(cmd, Input::None, Capture::Head(limit), timeout)
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if timed_out {
        return Err(format!("{shown} timed out after {} s", timeout.as_secs()));
    }
    if !status.success() {
        return Err(format!("{shown} failed: {status}"));
    }
    if cut {
        return Err(format!("{shown} printed more than {limit} bytes"));
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn join_with_grace(handle: thread::JoinHandle<(Vec<u8>, bool)>) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !handle.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    if handle.is_finished() {
        handle.join().unwrap_or_default()
    } else {
        let note = b"(output still open in a background process; not collected)";
        (note.to_vec(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(30);

    fn run_shell(script: &str, timeout: Duration) -> io::Result<CommandResult> {
        let command = ShellCommand {
            script: script.to_string(),
            env: Vec::new(),
        };
        super::run_shell(&command, &Secrets::default(), timeout)
    }

    #[test]
    fn secrets_are_redacted_before_the_output_is_cut() {
        use crate::expand::Vars;
        use apiary_proto::policy::parameters::Parameters;
        let secret = "S".repeat(100);
        let params = Parameters {
            secrets: [("k".to_string(), secret.clone())].into(),
            ..Parameters::default()
        };
        let vars = Vars::new(&Default::default(), "dev", Some(&params));
        // The secret straddles the point where the last 4096 bytes begin, then comes whole.
        let command = vars
            .shell(
                "printf '%s' \"$(k)\"; head -c 3945 /dev/zero | tr '\\0' x; printf ' %s' \"$(k)\"",
            )
            .expect("rewrites");
        assert!(!command.script.contains(&secret));
        let r = super::run_shell(&command, vars.secrets(), T).expect("runs");
        assert!(r.success(), "{r:?}");
        assert!(
            !r.output.contains('S'),
            "no part of the secret: {}",
            r.output
        );
        assert!(r.output.ends_with(" ********"), "{}", r.output);
        assert!(r.output.len() <= OUTPUT_LIMIT);
    }

    #[test]
    fn captures_both_streams_and_status() {
        let r = run_shell("echo out; echo err >&2; exit 3", T).unwrap();
        assert_eq!(r.code, Some(3));
        assert!(
            r.output.contains("out") && r.output.contains("err"),
            "{r:?}"
        );
        assert!(!r.success());
    }

    #[test]
    fn keeps_only_the_tail() {
        let r = run_shell("yes x | head -c 100000; echo END", T).unwrap();
        assert!(r.success());
        assert!(r.output.len() <= OUTPUT_LIMIT);
        assert!(r.output.ends_with("END\n"));
    }

    #[test]
    fn programs_get_arguments_verbatim_and_stdin() {
        let r = run_program(
            Path::new("/bin/sh"),
            &["-c", "cat; printf '%s' \"$0\"", "$(touch /x) ; 'q"],
            Some(b"from stdin\n"),
            T,
        )
        .unwrap();
        assert!(r.success(), "{r:?}");
        assert_eq!(r.output, "from stdin\n$(touch /x) ; 'q");
    }

    #[test]
    fn checked_programs_say_what_failed() {
        let sh = Path::new("/bin/sh");
        assert_eq!(run_program_ok(sh, &["-c", "true"], None, T), Ok(()));
        assert_eq!(
            run_program_ok(sh, &["-c", "echo nope >&2; exit 4"], None, T),
            Err("/bin/sh -c echo nope >&2; exit 4 exited with status 4: nope".into())
        );
        assert!(
            run_program_ok(Path::new("/nonexistent/tool"), &[], None, T)
                .unwrap_err()
                .starts_with("cannot run /nonexistent/tool: ")
        );
    }

    #[test]
    fn program_output_is_whole_or_an_error() {
        let sh = Path::new("/bin/sh");
        let out = program_output(
            sh,
            &["-c", "yes ab | head -c 100000; echo x >&2"],
            200_000,
            T,
        );
        assert_eq!(out.expect("runs").len(), 100_000);
        let err = program_output(sh, &["-c", "yes | head -c 5000"], 4096, T).expect_err("long");
        assert!(err.contains("more than 4096 bytes"), "{err}");
        let err = program_output(sh, &["-c", "exit 3"], 10, T).expect_err("fails");
        assert!(err.contains("failed"), "{err}");
        let err = program_output(sh, &["-c", "sleep 30"], 10, Duration::from_millis(200));
        assert!(err.expect_err("slow").contains("timed out"));
    }

    #[test]
    fn kills_on_timeout() {
        let r = run_shell("sleep 30", Duration::from_millis(200)).unwrap();
        assert!(r.timed_out);
        assert!(!r.success());
    }
}
