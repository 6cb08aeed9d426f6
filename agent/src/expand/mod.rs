//! `$(key)` expansion in policy fields, and redaction of secrets in what the agent says.
//!
//! Keys come from the bundle's parameters and secrets and from system values (`sys.host`,
//! `sys.arch`, `sys.os`, `sys.kernel`, `sys.device_id`). A `$(name)` that is none of these is
//! left as it is, so shell command substitution like `$(date)` in a command still works.
//! Into shell commands values go as environment variables the command references (see
//! [`shell`]): a device-controlled value such as the hostname can never inject shell syntax,
//! and no value shows in a process listing.

pub mod shell;

use std::collections::BTreeMap;

use apiary_proto::device_api::HostFacts;
use apiary_proto::policy::parameters::Parameters;

/// Replaces each secret value in reports and logs.
pub const REDACTED: &str = "********";

/// The values `$(key)` can name on this device.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    values: BTreeMap<String, String>,
    secrets: Secrets,
}

/// The secret values of a bundle, to keep out of what the agent says.
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    /// Longest first, so a secret containing another is redacted whole.
    values: Vec<String>,
}

impl Vars {
    /// System values, then the bundle's parameters and secrets.
    pub fn new(facts: &HostFacts, device_id: &str, params: Option<&Parameters>) -> Self {
        let mut values = BTreeMap::from([
            ("sys.host".to_string(), facts.hostname.clone()),
            ("sys.arch".to_string(), facts.arch.clone()),
            ("sys.os".to_string(), facts.os.clone()),
            ("sys.kernel".to_string(), facts.kernel.clone()),
            ("sys.device_id".to_string(), device_id.to_string()),
        ]);
        let mut secrets = Vec::new();
        if let Some(p) = params {
            values.extend(p.values.iter().map(|(k, v)| (k.clone(), v.clone())));
            for (k, v) in &p.secrets {
                values.insert(k.clone(), v.clone());
                if !v.is_empty() {
                    secrets.push(v.clone());
                }
            }
        }
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self {
            values,
            secrets: Secrets { values: secrets },
        }
    }

    /// The bundle's secret values.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Parameters for templates: the bundle's (and system) values under the set's own.
    pub fn template_values(&self, set: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut out = self.values.clone();
        out.extend(set.iter().map(|(k, v)| (k.clone(), self.text(v))));
        out
    }

    /// Expands `$(key)` in plain text (paths, parameter values).
    pub fn text(&self, input: &str) -> String {
        self.expand(input, |v| v.to_string())
    }

    /// A shell command with each `$(key)` a reference to a variable holding its value.
    pub fn shell(&self, input: &str) -> Result<shell::ShellCommand, shell::ShellError> {
        shell::command(input, &self.values)
    }

    fn expand(&self, input: &str, render: impl Fn(&str) -> String) -> String {
        let mut out = String::with_capacity(input.len());
        let mut rest = input;
        while let Some(start) = rest.find("$(") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            match after.find(')') {
                Some(end) if is_key(&after[..end]) && self.values.contains_key(&after[..end]) => {
                    out.push_str(&render(&self.values[&after[..end]]));
                    rest = &after[end + 1..];
                }
                _ => {
                    out.push_str("$(");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// `text` with every secret value replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        self.secrets.redact(text)
    }
}

impl Secrets {
    /// `text` with every secret value replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.values {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }

    /// Length of the longest secret: how much more than its limit a caller must keep of
    /// output it will cut, so a secret across the cut can still be recognised.
    pub fn longest(&self) -> usize {
        self.values.first().map_or(0, String::len)
    }

    /// True when `bytes` hold a secret value.
    pub fn appear_in(&self, bytes: &[u8]) -> bool {
        self.values
            .iter()
            .any(|s| bytes.windows(s.len()).any(|w| w == s.as_bytes()))
    }

    /// The last `limit` bytes (or fewer) of redacted `tail`, the end of a longer output when
    /// `cut` is true: redaction comes first, and what is left at the start of a secret the
    /// cut went through is dropped, so no part of a secret survives either step.
    pub fn redact_tail(&self, tail: &[u8], cut: bool, limit: usize) -> String {
        let mut start = 0;
        if cut {
            for secret in self.values.iter().map(String::as_bytes) {
                for k in 1..secret.len() {
                    if tail.starts_with(&secret[k..]) {
                        start = start.max(secret.len() - k);
                        break;
                    }
                }
            }
        }
        let text = self.redact(&String::from_utf8_lossy(&tail[start..]));
        let mut from = text.len().saturating_sub(limit);
        while !text.is_char_boundary(from) {
            from += 1;
        }
        text[from..].to_string()
    }
}

fn is_key(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let facts = HostFacts {
            hostname: "gw-1'; rm -rf /; '".into(),
            arch: "arm".into(),
            ..HostFacts::default()
        };
        let params = Parameters {
            values: BTreeMap::from([("broker".into(), "mqtt.example".into())]),
            secrets: BTreeMap::from([
                ("token".into(), "s3cr3t".into()),
                ("long".into(), "s3cr3t-and-more".into()),
            ]),
        };
        Vars::new(&facts, "dev", Some(&params))
    }

    #[test]
    fn expands_known_keys_and_leaves_the_rest() {
        let v = vars();
        assert_eq!(
            v.text("/etc/$(sys.arch)/$(broker).conf"),
            "/etc/arm/mqtt.example.conf"
        );
        assert_eq!(
            v.text("$(unknown) $(date) $( broker) $(broker"),
            "$(unknown) $(date) $( broker) $(broker"
        );
        assert_eq!(v.text("$(sys.device_id)"), "dev");
    }

    #[test]
    fn shell_commands_get_values_through_the_environment() {
        let v = vars();
        let cmd = v.shell("printf %s $(sys.host) $(date)").expect("rewrites");
        assert_eq!(cmd.script, "printf %s \"${APIARY_VALUE_1}\" $(date)");
        assert_eq!(
            cmd.env,
            [(
                "APIARY_VALUE_1".to_string(),
                "gw-1'; rm -rf /; '".to_string()
            )]
        );
    }

    #[test]
    fn templates_see_bundle_parameters_under_set_parameters() {
        let v = vars();
        let set = BTreeMap::from([
            ("broker".into(), "local".into()),
            ("url".into(), "tcp://$(broker)".into()),
        ]);
        let t = v.template_values(&set);
        assert_eq!(t["broker"], "local");
        assert_eq!(
            t["url"], "tcp://mqtt.example",
            "set values expand bundle parameters"
        );
        assert_eq!(t["sys.arch"], "arm");
        assert_eq!(t["token"], "s3cr3t");
    }

    #[test]
    fn secrets_are_redacted_whole() {
        let v = vars();
        assert_eq!(
            v.redact("token=s3cr3t-and-more, s3cr3t"),
            format!("token={REDACTED}, {REDACTED}")
        );
        assert_eq!(v.redact("nothing here"), "nothing here");
        assert!(v.secrets().appear_in(b"x=s3cr3t;"));
        assert!(!v.secrets().appear_in(b"s3cr"));
    }

    #[test]
    fn a_cut_tail_keeps_no_part_of_a_secret() {
        let v = vars();
        let s = v.secrets();
        // The cut went through "s3cr3t-and-more": "-and-more" is what remains of it.
        assert_eq!(s.redact_tail(b"-and-more rest", true, 100), " rest");
        // Not cut: the same text is output as it came.
        assert_eq!(
            s.redact_tail(b"-and-more rest", false, 100),
            "-and-more rest"
        );
        // Redaction before the limit: a secret at the edge of the kept part goes whole.
        let out = s.redact_tail(b"aaaa s3cr3t-and-more bb", false, 12);
        assert_eq!(out, " ******** bb");
    }
}
