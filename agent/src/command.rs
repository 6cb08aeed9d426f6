//! Running operator commands (pre-conditions, commands on change) with captured output.
//!
//! Commands come from a verified bundle, so they are trusted operator input and run through
//! `/bin/sh -c`; values never get spliced into them here.

use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

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

/// Runs `script` with `/bin/sh -c`, stdin closed, output captured, killed after `timeout`.
pub fn run_shell(script: &str, timeout: Duration) -> io::Result<CommandResult> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(script);
    run(cmd, None, timeout)
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
    run(cmd, input, timeout)
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

fn run(mut cmd: Command, input: Option<&[u8]>, timeout: Duration) -> io::Result<CommandResult> {
    let (mut reader, writer) = io::pipe()?;
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .spawn()?;
    // The command holds the write end now; ours must close for the reader to see the end.
    drop(cmd);
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        // A command that exits without reading gives EPIPE, which its status then explains.
        let _ = stdin.write_all(bytes);
    }
    let collector = thread::spawn(move || {
        let mut tail = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    tail.extend_from_slice(&buf[..n]);
                    if tail.len() > 2 * OUTPUT_LIMIT {
                        tail.drain(..tail.len() - OUTPUT_LIMIT);
                    }
                }
            }
        }
        tail
    });

    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait()?;
        }
        thread::sleep(Duration::from_millis(20));
    };
    // A grandchild that keeps the pipe open must not block the agent: only wait briefly.
    let tail = join_with_grace(collector);
    let start = tail.len().saturating_sub(OUTPUT_LIMIT);
    Ok(CommandResult {
        code: status.code(),
        timed_out,
        output: String::from_utf8_lossy(&tail[start..]).into_owned(),
    })
}

fn join_with_grace(handle: thread::JoinHandle<Vec<u8>>) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !handle.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    if handle.is_finished() {
        handle.join().unwrap_or_default()
    } else {
        b"(output still open in a background process; not collected)".to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(30);

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
    fn kills_on_timeout() {
        let r = run_shell("sleep 30", Duration::from_millis(200)).unwrap();
        assert!(r.timed_out);
        assert!(!r.success());
    }
}
