//! The HTTP proxy between a device and its backend (the OT/IT gateway): set at bootstrap and
//! kept in `agent.json` (its password in `proxy-password`, mode 0600), or taken from
//! `HTTPS_PROXY` / `NO_PROXY` when none is set. Every request to the backend (enrolment,
//! check-ins, downloads) goes through it as HTTP CONNECT with basic auth, and operator
//! commands get it as `HTTPS_PROXY`.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The proxy as `agent.json` keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    pub host: String,
    pub port: u16,
    /// Basic-auth user; the password is in the config dir's `proxy-password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// A proxy with its password, ready to use.
#[derive(Clone)]
pub struct Proxy {
    pub config: ProxyConfig,
    pub password: Option<String>,
}

impl ProxyConfig {
    /// Checks the host, port and user: a bad one is an error naming it, never a request
    /// that goes somewhere else.
    pub fn check(&self) -> Result<(), String> {
        let host = &self.host;
        let bad_host = host.is_empty()
            || host.len() > 253
            || host
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "/@?#".contains(c));
        if bad_host {
            return Err(format!("proxy host {host:?} is not a host name or address"));
        }
        if self.port == 0 {
            return Err("proxy port 0 is not a port".into());
        }
        if let Some(user) = &self.user
            && (user.is_empty() || user.contains(':') || user.chars().any(char::is_control))
        {
            return Err(format!(
                "proxy user {user:?} is empty or holds ':' or control characters"
            ));
        }
        Ok(())
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub fn address(&self) -> String {
        format!("{}:{}", self.url_host(), self.port)
    }

    /// The host as a URL writes it: an IPv6 address in brackets.
    fn url_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl Proxy {
    /// The proxy for ureq: CONNECT, the proxy resolving the backend's name (devices behind
    /// a gateway often have no DNS of their own).
    pub fn for_ureq(&self) -> Result<ureq::Proxy, String> {
        let mut builder = ureq::Proxy::builder(ureq::ProxyProtocol::Http)
            .host(&self.config.url_host())
            .port(self.config.port)
            .resolve_target(false);
        if let Some(user) = &self.config.user {
            builder = builder.username(user);
            if let Some(password) = &self.password {
                builder = builder.password(password);
            }
        }
        builder
            .build()
            .map_err(|e| format!("proxy {}: {e}", self.config.address()))
    }

    /// `http://user:password@host:port/`, credentials percent-encoded, for child processes.
    pub fn url(&self) -> String {
        let mut userinfo = String::new();
        if let Some(user) = &self.config.user {
            userinfo.push_str(&percent_encode(user));
            if let Some(password) = &self.password {
                userinfo.push(':');
                userinfo.push_str(&percent_encode(password));
            }
            userinfo.push('@');
        }
        format!("http://{userinfo}{}/", self.config.address())
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

static CHILD_ENV: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();

/// Makes operator commands see `proxy` as `HTTPS_PROXY` (both spellings: curl reads only
/// the lower case one); the first call wins. Without one they inherit the agent's own.
pub fn export_to_children(proxy: Option<&Proxy>) {
    let env = proxy
        .map(|p| {
            let url = p.url();
            vec![("HTTPS_PROXY", url.clone()), ("https_proxy", url)]
        })
        .unwrap_or_default();
    let _ = CHILD_ENV.set(env);
}

/// What [`export_to_children`] set, for `command` to add to an operator command.
pub fn child_env() -> &'static [(&'static str, String)] {
    CHILD_ENV.get().map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(host: &str, port: u16, user: Option<&str>) -> ProxyConfig {
        ProxyConfig {
            host: host.into(),
            port,
            user: user.map(str::to_string),
        }
    }

    #[test]
    fn hosts_ports_and_users_are_checked() {
        assert!(
            config("gw.plant.example", 3128, Some("dev"))
                .check()
                .is_ok()
        );
        assert!(config("10.0.0.1", 8080, None).check().is_ok());
        assert!(config("fd00::1", 3128, None).check().is_ok());
        for bad in ["", "gw example", "user@gw", "gw/x", "gw?"] {
            assert!(config(bad, 3128, None).check().is_err(), "{bad:?}");
        }
        assert!(config("gw", 0, None).check().is_err());
        assert!(config("gw", 3128, Some("a:b")).check().is_err());
        assert!(config("gw", 3128, Some("")).check().is_err());
    }

    #[test]
    fn child_url_encodes_credentials() {
        let proxy = Proxy {
            config: config("fd00::1", 3128, Some("dev ice")),
            password: Some("p@ss:w/rd%".into()),
        };
        assert_eq!(
            proxy.url(),
            "http://dev%20ice:p%40ss%3Aw%2Frd%25@[fd00::1]:3128/"
        );
        let bare = Proxy {
            config: config("gw", 8080, None),
            password: None,
        };
        assert_eq!(bare.url(), "http://gw:8080/");
        let p = proxy.for_ureq().expect("builds");
        assert_eq!(p.username(), Some("dev ice"));
        assert_eq!(p.password(), Some("p@ss:w/rd%"));
        assert!(!p.resolve_target());
    }
}
