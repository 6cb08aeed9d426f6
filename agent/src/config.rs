//! Where the agent keeps things, and the persistent identity written at bootstrap.
//!
//! The config dir (flash) holds what must survive a reboot and is written only at bootstrap
//! and on bundle change; the state dir (tmpfs) holds everything volatile.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::proxy::{Proxy, ProxyConfig};
use crate::safe_fs::{self, SafeFsError};

/// Default persistent directory.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/apiary";
/// Default volatile directory (tmpfs on a real device).
pub const DEFAULT_STATE_DIR: &str = "/run/apiary";

/// The agent's two directories.
#[derive(Clone, Debug)]
pub struct Dirs {
    pub config: PathBuf,
    pub state: PathBuf,
}

impl Dirs {
    /// `agent.json`: device id, server URL, bundle-signing key.
    pub fn agent_json(&self) -> PathBuf {
        self.config.join("agent.json")
    }
    /// The device's private key, PKCS#8 PEM, mode 0600.
    pub fn device_key(&self) -> PathBuf {
        self.config.join("device.key")
    }
    /// The device certificate, PEM.
    pub fn device_cert(&self) -> PathBuf {
        self.config.join("device.crt")
    }
    /// The pinned CA, PEM.
    pub fn ca_cert(&self) -> PathBuf {
        self.config.join("ca.crt")
    }
    /// The proxy's password, when `agent.json` names a proxy user; mode 0600.
    pub fn proxy_password(&self) -> PathBuf {
        self.config.join("proxy-password")
    }
    /// The last good bundle, as its signed envelope.
    pub fn bundle(&self) -> PathBuf {
        self.config.join("bundle.json")
    }

    /// Creates the state dir (mode 0700) if needed.
    pub fn ensure_state(&self) -> Result<(), SafeFsError> {
        create_private_dir(&self.state)
    }
}

/// Creates a directory (and parents) readable only by the agent's user.
pub fn create_private_dir(path: &Path) -> Result<(), SafeFsError> {
    safe_fs::Dir::create_all(path, 0o700).map(drop)
}

/// The contents of `agent.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentConfig {
    pub device_id: String,
    /// Base URL of the device API, e.g. `https://apiary.example:8443`.
    pub server_url: String,
    /// Hex Ed25519 key that must have signed every bundle.
    pub bundle_signing_key: String,
    /// The program (absolute path) and arguments put before the system tools that need root
    /// when the agent does not run as root, e.g. `["/usr/bin/sudo", "-n"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elevation_command: Vec<String>,
    /// The HTTP proxy to the backend; without one, `HTTPS_PROXY` and `NO_PROXY` apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyConfig>,
}

/// Everything needed to talk mTLS and verify bundles.
pub struct Identity {
    pub config: AgentConfig,
    /// PKCS#8 PEM.
    pub key_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub ca_pem: Vec<u8>,
    /// The configured proxy with its password.
    pub proxy: Option<Proxy>,
}

/// Why the identity could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the agent is not bootstrapped: {0} does not exist (run `apiary-agent bootstrap`)")]
    NotBootstrapped(PathBuf),
    #[error("cannot read the identity: {0}")]
    Read(#[source] SafeFsError),
    #[error("{path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Identity {
    /// Loads the identity written by bootstrap.
    pub fn load(dirs: &Dirs) -> Result<Self, ConfigError> {
        let agent_json = dirs.agent_json();
        if !agent_json.exists() {
            return Err(ConfigError::NotBootstrapped(agent_json));
        }
        let config: AgentConfig =
            serde_json::from_slice(&read(&agent_json)?).map_err(|e| ConfigError::Invalid {
                path: agent_json.clone(),
                message: e.to_string(),
            })?;
        let invalid = |message| ConfigError::Invalid {
            path: agent_json.clone(),
            message,
        };
        crate::privilege::check_elevation_command(&config.elevation_command).map_err(invalid)?;
        let proxy = match &config.proxy {
            Some(proxy) => {
                proxy.check().map_err(invalid)?;
                Some(Proxy {
                    config: proxy.clone(),
                    password: read_proxy_password(dirs, proxy)?,
                })
            }
            None => None,
        };
        Ok(Self {
            key_pem: read(&dirs.device_key())?,
            cert_pem: read(&dirs.device_cert())?,
            ca_pem: read(&dirs.ca_cert())?,
            config,
            proxy,
        })
    }
}

/// The password of a proxy with a user, from its file (the line, without its newline).
fn read_proxy_password(dirs: &Dirs, proxy: &ProxyConfig) -> Result<Option<String>, ConfigError> {
    if proxy.user.is_none() {
        return Ok(None);
    }
    let path = dirs.proxy_password();
    let Some(bytes) = safe_fs::read(&path, MAX_PASSWORD_BYTES).map_err(ConfigError::Read)? else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes).map_err(|_| ConfigError::Invalid {
        path: path.clone(),
        message: "the proxy password is not UTF-8".into(),
    })?;
    Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()))
}

/// Longest proxy password read.
pub const MAX_PASSWORD_BYTES: u64 = 4096;

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    safe_fs::read_existing(path, safe_fs::STATE_FILE_LIMIT).map_err(ConfigError::Read)
}
