//! `ntp`: the time servers of whichever time daemon the device runs. The document is the
//! bundle's form as it is.

use serde::{Deserialize, Serialize};

use super::rules::unique;
use super::{CompileError, Merge, Policy, Resolve};

/// The servers, in order of preference.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ntp {
    pub servers: Vec<String>,
}

/// NTP server names: host names or IP addresses.
pub fn validate_ntp_server(server: &str) -> Result<(), String> {
    let ok = !server.is_empty()
        && server.len() <= 253
        && !server.starts_with('-')
        && server
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "NTP server {server:?} must be a host name or an IP address"
        ))
    }
}

impl Policy for Ntp {
    const SUMMARY: &'static str = "Time servers of whichever time daemon the device runs.";
    const MERGE: Merge = Merge::Whole;
    type Document = Ntp;

    fn validate_document(doc: &Ntp) -> Result<(), String> {
        doc.validate()
    }

    fn compile(doc: Ntp, _: &mut dyn Resolve) -> Result<Option<Self>, CompileError> {
        Ok(Some(doc))
    }

    /// At least one valid server, none twice.
    fn validate(&self) -> Result<(), String> {
        if self.servers.is_empty() {
            return Err("servers must list at least one NTP server".into());
        }
        for s in &self.servers {
            validate_ntp_server(s)?;
        }
        unique("NTP server", self.servers.iter().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers() {
        assert!(
            Ntp {
                servers: vec!["0.pool.ntp.org".into(), "192.0.2.1".into(), "::1".into()]
            }
            .validate()
            .is_ok()
        );
        assert!(Ntp { servers: vec![] }.validate().is_err());
        assert!(validate_ntp_server("-c/etc/x").is_err());
        assert!(validate_ntp_server("a b").is_err());
    }
}
