//! `$(key)` in shell commands: the value never enters the script. Each key becomes a
//! reference to an environment variable of the command (`APIARY_VALUE_n`), written for the
//! quoting context it sits in, so the shell expands it to exactly the value and never parses
//! the value as shell syntax. Values therefore stay out of `argv` too (`/proc/PID/cmdline`
//! is world-readable; `/proc/PID/environ` is not).
//!
//! | context                          | written as                  |
//! |----------------------------------|-----------------------------|
//! | unquoted, `$( )`, backquotes     | `"${APIARY_VALUE_n}"`       |
//! | inside `"…"`, here-document body | `${APIARY_VALUE_n}`         |
//! | inside `'…'`                     | `'"${APIARY_VALUE_n}"'`     |
//! | `$(( ))` arithmetic              | the value, if an integer    |
//!
//! In the body of a here-document with a quoted delimiter (`<<'EOF'`) the shell expands
//! nothing, so a `$(key)` there is refused rather than written into the script.
//!
//! Where the scan misjudges a context, the reference still stays a parameter expansion: the
//! worst outcome is a value split into words, never a command run. `eval` and `sh -c` of a
//! value run it by design; the operator's command is what decides that.

use std::collections::BTreeMap;

/// A shell command ready to run: the script and the variables it references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommand {
    pub script: String,
    pub env: Vec<(String, String)>,
}

/// Why a value cannot go where the command puts it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    #[error("$({0}) is used in shell arithmetic but its value is not an integer")]
    NotAnInteger(String),
    #[error(
        "$({0}) is in a here-document with a quoted delimiter, where the shell expands nothing; unquote the delimiter"
    )]
    QuotedHeredoc(String),
}

/// Prefix of the variables values are passed in.
pub const VAR_PREFIX: &str = "APIARY_VALUE_";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    Unquoted,
    Double,
    Single,
    /// `$(` … `)` with its own parenthesis depth.
    CommandSub(u32),
    Backquote,
    Arithmetic(u32),
}

/// A here-document announced on the current line.
struct Heredoc {
    delimiter: String,
    strip_tabs: bool,
    quoted: bool,
}

/// Rewrites `$(key)` for the keys in `values`; other `$(...)` is the shell's.
pub fn command(input: &str, values: &BTreeMap<String, String>) -> Result<ShellCommand, ShellError> {
    Scanner {
        values,
        out: String::with_capacity(input.len()),
        env: Vec::new(),
        keys: Vec::new(),
        stack: vec![Ctx::Unquoted],
        heredocs: Vec::new(),
    }
    .run(input)
}

struct Scanner<'a> {
    values: &'a BTreeMap<String, String>,
    out: String,
    env: Vec<(String, String)>,
    /// The key of each `env` entry.
    keys: Vec<String>,
    stack: Vec<Ctx>,
    heredocs: Vec<Heredoc>,
}

impl Scanner<'_> {
    fn run(mut self, input: &str) -> Result<ShellCommand, ShellError> {
        let mut rest = input;
        while let Some(c) = rest.chars().next() {
            if let Some((key, after)) = self.key_at(rest) {
                self.substitute(key, None)?;
                rest = after;
                continue;
            }
            rest = self.step(c, rest)?;
        }
        Ok(ShellCommand {
            script: self.out,
            env: self.env,
        })
    }

    /// `$(key)` at the start of `rest`, for a key with a value.
    fn key_at<'s>(&self, rest: &'s str) -> Option<(&'s str, &'s str)> {
        let inner = rest.strip_prefix("$(")?;
        let end = inner.find(')')?;
        let key = &inner[..end];
        (super::is_key(key) && self.values.contains_key(key)).then(|| (key, &inner[end + 1..]))
    }

    fn top(&self) -> Ctx {
        *self.stack.last().expect("the base context is never popped")
    }

    /// Copies one character (or a construct's opening) and tracks the context it leads to.
    fn step<'s>(&mut self, c: char, rest: &'s str) -> Result<&'s str, ShellError> {
        let top = self.top();
        let code_like = matches!(top, Ctx::Unquoted | Ctx::CommandSub(_) | Ctx::Backquote);
        if top != Ctx::Single && c == '\\' {
            // An escaped character is copied with its backslash and means nothing.
            let len = rest[1..].chars().next().map_or(0, char::len_utf8);
            self.out.push_str(&rest[..1 + len]);
            return Ok(&rest[1 + len..]);
        }
        if top != Ctx::Single && rest.starts_with("$((") {
            self.stack.push(Ctx::Arithmetic(0));
            self.out.push_str("$((");
            return Ok(&rest[3..]);
        }
        if top != Ctx::Single && rest.starts_with("$(") {
            self.stack.push(Ctx::CommandSub(0));
            self.out.push_str("$(");
            return Ok(&rest[2..]);
        }
        if code_like && c == '#' && self.at_word_start() {
            let end = rest.find('\n').unwrap_or(rest.len());
            self.out.push_str(&rest[..end]);
            return Ok(&rest[end..]);
        }
        if code_like && rest.starts_with("<<") && !rest.starts_with("<<<") {
            return Ok(self.heredoc_operator(rest));
        }
        self.out.push(c);
        let after = &rest[c.len_utf8()..];
        match (top, c) {
            (Ctx::Single, '\'') | (Ctx::Double, '"') | (Ctx::Backquote, '`') => {
                self.stack.pop();
            }
            (Ctx::Single, _) => {}
            (Ctx::Double, '`') | (Ctx::Unquoted | Ctx::CommandSub(_), '`') => {
                self.stack.push(Ctx::Backquote)
            }
            (Ctx::Double, _) => {}
            (_, '\'') if code_like => self.stack.push(Ctx::Single),
            (_, '"') => self.stack.push(Ctx::Double),
            (Ctx::CommandSub(d), '(') => self.set_top(Ctx::CommandSub(d + 1)),
            (Ctx::CommandSub(0), ')') => {
                self.stack.pop();
            }
            (Ctx::CommandSub(d), ')') => self.set_top(Ctx::CommandSub(d - 1)),
            (Ctx::Arithmetic(d), '(') => self.set_top(Ctx::Arithmetic(d + 1)),
            (Ctx::Arithmetic(0), ')') if after.starts_with(')') => {
                self.out.push(')');
                self.stack.pop();
                return Ok(&after[1..]);
            }
            (Ctx::Arithmetic(d), ')') => self.set_top(Ctx::Arithmetic(d.saturating_sub(1))),
            (_, '\n') if code_like && !self.heredocs.is_empty() => {
                return self.heredoc_bodies(after);
            }
            _ => {}
        }
        Ok(after)
    }

    fn set_top(&mut self, ctx: Ctx) {
        *self
            .stack
            .last_mut()
            .expect("the base context is never popped") = ctx;
    }

    fn at_word_start(&self) -> bool {
        self.out
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')'))
    }

    /// Copies `<<`/`<<-` and its delimiter word, remembering the here-document it opens.
    fn heredoc_operator<'s>(&mut self, rest: &'s str) -> &'s str {
        let strip_tabs = rest.starts_with("<<-");
        let op_len = if strip_tabs { 3 } else { 2 };
        let after_op = &rest[op_len..];
        let word_start = after_op.len() - after_op.trim_start_matches([' ', '\t']).len();
        let word_text = &after_op[word_start..];
        let word_len = word_text
            .find(|c: char| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '<' | '>' | ')'))
            .unwrap_or(word_text.len());
        let word = &word_text[..word_len];
        if !word.is_empty() {
            self.heredocs.push(Heredoc {
                delimiter: word
                    .chars()
                    .filter(|c| !matches!(c, '\'' | '"' | '\\'))
                    .collect(),
                strip_tabs,
                quoted: word.contains(['\'', '"', '\\']),
            });
        }
        let end = op_len + word_start + word_len;
        self.out.push_str(&rest[..end]);
        &rest[end..]
    }

    /// Copies the bodies of the here-documents announced on the line just ended.
    fn heredoc_bodies<'s>(&mut self, mut rest: &'s str) -> Result<&'s str, ShellError> {
        for doc in std::mem::take(&mut self.heredocs) {
            while !rest.is_empty() {
                let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
                let line = &rest[..end];
                rest = &rest[end..];
                let bare = line.trim_end_matches('\n');
                let bare = if doc.strip_tabs {
                    bare.trim_start_matches('\t')
                } else {
                    bare
                };
                if bare == doc.delimiter {
                    self.out.push_str(line);
                    break;
                }
                self.heredoc_line(line, doc.quoted)?;
            }
        }
        Ok(rest)
    }

    fn heredoc_line(&mut self, mut line: &str, quoted: bool) -> Result<(), ShellError> {
        while let Some(c) = line.chars().next() {
            match self.key_at(line) {
                Some((key, after)) => {
                    self.substitute(key, Some(quoted))?;
                    line = after;
                }
                None => {
                    self.out.push(c);
                    line = &line[c.len_utf8()..];
                }
            }
        }
        Ok(())
    }

    /// Writes the reference to `key` for the current context (`heredoc`: inside a body,
    /// whether its delimiter was quoted).
    fn substitute(&mut self, key: &str, heredoc: Option<bool>) -> Result<(), ShellError> {
        let value = &self.values[key];
        if heredoc == Some(true) {
            return Err(ShellError::QuotedHeredoc(key.to_string()));
        }
        if let Ctx::Arithmetic(_) = self.top() {
            let digits = value.strip_prefix('-').unwrap_or(value);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ShellError::NotAnInteger(key.to_string()));
            }
            self.out.push_str(value);
            return Ok(());
        }
        let var = self.var_for(key);
        let reference = match (heredoc, self.top()) {
            (Some(_), _) | (None, Ctx::Double) => format!("${{{var}}}"),
            (None, Ctx::Single) => format!("'\"${{{var}}}\"'"),
            _ => format!("\"${{{var}}}\""),
        };
        self.out.push_str(&reference);
        Ok(())
    }

    /// The variable holding `key`'s value, one per key however often it is used.
    fn var_for(&mut self, key: &str) -> String {
        if let Some(i) = self.keys.iter().position(|k| k == key) {
            return self.env[i].0.clone();
        }
        let var = format!("{VAR_PREFIX}{}", self.env.len() + 1);
        self.keys.push(key.to_string());
        self.env.push((var.clone(), self.values[key].clone()));
        var
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value that would run `touch` in every quoting context if it were spliced in.
    const HOSTILE: &str =
        "x'\"; touch /tmp/pwned-$$; echo \"`touch /tmp/pwned2`$(touch /tmp/pwned3)\\";

    fn values() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("sys.host".to_string(), HOSTILE.to_string()),
            ("n".to_string(), "42".to_string()),
            ("multi".to_string(), "a\nEOF\nb".to_string()),
            ("glob".to_string(), "* ?".to_string()),
        ])
    }

    /// The POSIX shells here: devices have dash, busybox ash or bash as `/bin/sh`.
    fn shells() -> Vec<&'static str> {
        let found: Vec<_> = ["/bin/sh", "/bin/dash", "/bin/bash", "/bin/busybox"]
            .into_iter()
            .filter(|p| std::path::Path::new(p).exists())
            .collect();
        assert!(found.len() >= 2, "at least sh and bash: {found:?}");
        found
    }

    /// Runs `script` (after rewriting) in `/bin/sh` and returns its stdout.
    fn run(script: &str) -> String {
        run_in("/bin/sh", script)
    }

    fn run_in(shell: &str, script: &str) -> String {
        let cmd = command(script, &values()).expect("rewrites");
        assert!(!cmd.script.contains("touch"), "{}", cmd.script);
        let mut sh = std::process::Command::new(shell);
        if shell.ends_with("busybox") {
            sh.arg("sh");
        }
        let out = sh
            .arg("-c")
            .arg(&cmd.script)
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .current_dir(std::env::temp_dir())
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    }

    #[test]
    fn a_hostile_value_is_exact_in_every_quoting_context() {
        let h = HOSTILE;
        for (script, want) in [
            ("printf '%s\\n' $(sys.host)", format!("{h}\n")),
            ("printf '%s\\n' \"$(sys.host)\"", format!("{h}\n")),
            (
                "printf '%s\\n' \"host=$(sys.host)!\"",
                format!("host={h}!\n"),
            ),
            ("printf '%s\\n' '$(sys.host)'", format!("{h}\n")),
            ("printf '%s\\n' 'a $(sys.host) b'", format!("a {h} b\n")),
            ("printf '%s\\n' pre$(sys.host)post", format!("pre{h}post\n")),
            (
                "printf '%s\\n' \"$(echo \"$(sys.host)\")\"",
                format!("{h}\n"),
            ),
            ("printf '%s\\n' \"$(echo $(sys.host))\"", format!("{h}\n")),
            ("printf '%s\\n' \"`echo $(sys.host)`\"", format!("{h}\n")),
            ("x=$(sys.host); printf '%s\\n' \"$x\"", format!("{h}\n")),
            ("printf '%s\\n' \"${UNSET:-$(sys.host)}\"", format!("{h}\n")),
            ("cat <<EOF\n[$(sys.host)]\nEOF", format!("[{h}]\n")),
            (
                "cat <<-EOF\n\t$(sys.host)\n\tEOF\necho after",
                format!("{h}\nafter\n"),
            ),
            (
                "case $(sys.host) in x*) echo matched;; esac",
                "matched\n".to_string(),
            ),
            ("echo $(($(n) + 1))", "43\n".to_string()),
            ("printf '%s\\n' $(glob)", "* ?\n".to_string()),
            ("# $(sys.host)\necho ok", "ok\n".to_string()),
            ("echo \"\\$(n)\"", "$(n)\n".to_string()),
            ("cat <<'EOF'\n$(date)\nEOF", "$(date)\n".to_string()),
        ] {
            for shell in shells() {
                assert_eq!(run_in(shell, script), want, "{shell}: {script}");
            }
        }
        assert!(!std::path::Path::new("/tmp/pwned2").exists());
        assert!(!std::path::Path::new("/tmp/pwned3").exists());
    }

    #[test]
    fn values_stay_out_of_the_script_and_each_key_gets_one_variable() {
        let cmd =
            command("echo $(sys.host) \"$(sys.host)\" $(n) $(date)", &values()).expect("rewrites");
        assert_eq!(
            cmd.script,
            "echo \"${APIARY_VALUE_1}\" \"${APIARY_VALUE_1}\" \"${APIARY_VALUE_2}\" $(date)"
        );
        assert_eq!(cmd.env.len(), 2);
        assert!(!cmd.script.contains("42"));
    }

    #[test]
    fn values_that_cannot_be_placed_safely_are_refused() {
        assert_eq!(
            command("echo $(( $(sys.host) + 1 ))", &values()),
            Err(ShellError::NotAnInteger("sys.host".into()))
        );
        assert_eq!(
            command("cat <<'EOF'\n$(n)\nEOF", &values()),
            Err(ShellError::QuotedHeredoc("n".into()))
        );
        // Unquoted, the same value is just data.
        assert_eq!(run("printf '%s' \"$(multi)\""), "a\nEOF\nb");
    }
}
