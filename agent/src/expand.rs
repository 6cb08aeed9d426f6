//! `$(key)` expansion in policy fields, and redaction of secrets in what the agent says.
//!
//! Keys come from the bundle's parameters and secrets and from system values (`sys.host`,
//! `sys.arch`, `sys.os`, `sys.kernel`, `sys.device_id`). A `$(name)` that is none of these is
//! left as it is, so shell command substitution like `$(date)` in a command still works.
//! Into shell commands, each value expands as one single-quoted word: a device-controlled
//! value such as the hostname can never inject shell syntax.

use std::collections::BTreeMap;

use apiary_proto::device_api::HostFacts;
use apiary_proto::policy::parameters::Parameters;

/// Replaces each secret value in reports and logs.
pub const REDACTED: &str = "********";

/// The values `$(key)` can name on this device.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    values: BTreeMap<String, String>,
    /// Secret values, longest first so a secret containing another is redacted whole.
    secrets: Vec<String>,
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
        Self { values, secrets }
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

    /// Expands `$(key)` in a shell command, each value as one single-quoted word.
    pub fn shell(&self, input: &str) -> String {
        self.expand(input, quote)
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
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }
}

fn is_key(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// One POSIX shell word that stands for `value` exactly.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
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
    fn shell_expansion_cannot_inject() {
        let v = vars();
        assert_eq!(
            v.shell("echo $(sys.host)"),
            r"echo 'gw-1'\''; rm -rf /; '\'''"
        );
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(v.shell("printf %s $(sys.host)"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "gw-1'; rm -rf /; '");
        assert_eq!(
            v.shell("echo $(date)"),
            "echo $(date)",
            "shell substitution is left to the shell"
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
    }
}
