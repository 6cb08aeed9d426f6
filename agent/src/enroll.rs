//! `apiary-agent bootstrap`: create the device key, enrol, wait for approval, store the identity.

use std::path::{Path, PathBuf};
use std::time::Duration;

use apiary_proto::device_api::{EnrollRequest, EnrollState, EnrollStatus};
use apiary_proto::signed::DeviceKey;
use apiary_proto::{hex, paths, pem};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;

use crate::config::{self, AgentConfig, Dirs};
use crate::proxy::Proxy;
use crate::safe_fs::{self, SafeFsError};
use crate::signals;
use crate::transport::{Transport, TransportError};

/// Largest CA bundle accepted from `--ca-cert` (a system bundle is about 200 KiB).
const MAX_CA_BYTES: u64 = 4 * 1024 * 1024;

/// What the operator passed to `bootstrap`.
pub struct BootstrapOptions {
    pub bootstrap_key: String,
    pub server_url: String,
    pub ca_cert: Option<PathBuf>,
    pub device_name: Option<String>,
    pub poll_interval: Duration,
    /// Kept in `agent.json` (see [`crate::privilege`]); checked before anything is sent.
    pub elevation_command: Vec<String>,
    /// The proxy to reach the backend through, kept in `agent.json` and `proxy-password`.
    pub proxy: Option<Proxy>,
}

/// Why bootstrap stopped.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("already bootstrapped as device {0}; remove {1} to enrol again")]
    AlreadyBootstrapped(String, PathBuf),
    #[error("cannot read the CA certificate: {0}")]
    CaCert(#[source] SafeFsError),
    #[error("no system CA bundle found; pass --ca-cert with the backend's CA")]
    NoRoots,
    #[error("cannot write: {0}")]
    Write(#[source] SafeFsError),
    #[error("the device key {path} is unusable: {message}")]
    Key { path: PathBuf, message: String },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the backend answered for device {got}, expected {expected}")]
    WrongDevice { expected: String, got: String },
    #[error("enrolment of device {0} was rejected by an operator")]
    Rejected(String),
    #[error("the backend approved device {0} but sent no credentials")]
    NoCredentials(String),
    #[error("interrupted while waiting for approval; run bootstrap again to keep waiting")]
    Interrupted,
    #[error(
        "give the bootstrap key once: -k KEY, --key-file FILE (- for standard input) or APIARY_BOOTSTRAP_KEY"
    )]
    KeySource,
    #[error("cannot read the bootstrap key from {path}: {message}")]
    KeyFile { path: PathBuf, message: String },
    #[error("--elevation-command: {0}")]
    Elevation(String),
    #[error("{0}")]
    Proxy(String),
}

/// Environment variable the bootstrap key may come in (not shown by `ps`, unlike `-k`).
pub const KEY_ENV: &str = "APIARY_BOOTSTRAP_KEY";
/// Longest bootstrap key file read (keys are about 40 bytes).
const MAX_KEY_BYTES: u64 = 4096;

/// The bootstrap key from exactly one of `-k`, `--key-file` (`-`: stdin) or [`KEY_ENV`],
/// surrounding whitespace trimmed.
pub fn bootstrap_key(arg: Option<String>, file: Option<&Path>) -> Result<String, EnrollError> {
    let env = std::env::var(KEY_ENV).ok().filter(|k| !k.trim().is_empty());
    let key = match (arg, file, env) {
        (Some(key), None, None) => key,
        (None, Some(path), None) => read_key_file(path)?,
        (None, None, Some(key)) => key,
        _ => return Err(EnrollError::KeySource),
    };
    let key = key.trim().to_string();
    if key.is_empty() {
        return Err(EnrollError::KeySource);
    }
    Ok(key)
}

fn read_key_file(path: &Path) -> Result<String, EnrollError> {
    read_secret_file(path).map_err(|message| EnrollError::KeyFile {
        path: path.to_path_buf(),
        message,
    })
}

/// A short secret from a file, `-` for stdin; the error says why it could not be read.
pub fn read_secret_file(path: &Path) -> Result<String, String> {
    let failed = |message: String| message;
    let bytes = if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::io::stdin(), MAX_KEY_BYTES + 1),
            &mut bytes,
        )
        .map_err(|e| failed(e.to_string()))?;
        if bytes.len() as u64 > MAX_KEY_BYTES {
            return Err(failed(format!("more than {MAX_KEY_BYTES} bytes")));
        }
        bytes
    } else {
        safe_fs::read_existing(path, MAX_KEY_BYTES).map_err(|e| failed(e.to_string()))?
    };
    String::from_utf8(bytes).map_err(|_| failed("not UTF-8 text".into()))
}

/// Environment variable the proxy password may come in.
pub const PROXY_PASSWORD_ENV: &str = "APIARY_PROXY_PASSWORD";

/// The proxy password from at most one of `--proxy-password`, `--proxy-password-file` or
/// [`PROXY_PASSWORD_ENV`], without its trailing newline.
pub fn proxy_password(
    arg: Option<String>,
    file: Option<&Path>,
) -> Result<Option<String>, EnrollError> {
    let env = std::env::var(PROXY_PASSWORD_ENV)
        .ok()
        .filter(|p| !p.is_empty());
    let password = match (arg, file, env) {
        (None, None, None) => return Ok(None),
        (Some(p), None, None) | (None, None, Some(p)) => p,
        (None, Some(path), None) => read_secret_file(path).map_err(|message| {
            EnrollError::Proxy(format!(
                "cannot read the proxy password from {}: {message}",
                path.display()
            ))
        })?,
        _ => {
            return Err(EnrollError::Proxy(format!(
                "give the proxy password once: --proxy-password, --proxy-password-file or {PROXY_PASSWORD_ENV}"
            )));
        }
    };
    Ok(Some(password.trim_end_matches(['\r', '\n']).to_string()))
}

/// Runs the whole enrolment; on success the config dir holds a complete identity.
pub fn bootstrap(dirs: &Dirs, opts: &BootstrapOptions) -> Result<String, EnrollError> {
    if let Ok(existing) = config_device_id(dirs) {
        return Err(EnrollError::AlreadyBootstrapped(
            existing,
            dirs.agent_json(),
        ));
    }
    crate::privilege::check_elevation_command(&opts.elevation_command)
        .map_err(EnrollError::Elevation)?;
    if let Some(proxy) = &opts.proxy {
        proxy.config.check().map_err(EnrollError::Proxy)?;
    }
    config::create_private_dir(&dirs.config).map_err(EnrollError::Write)?;
    crate::clock::load(dirs);
    let key = load_or_create_key(dirs)?;
    let public_key = hex::encode(key.public_key());
    let device_id = apiary_proto::digest::device_id(key.public_key());

    let roots = match &opts.ca_cert {
        Some(path) => safe_fs::read_existing(path, MAX_CA_BYTES).map_err(EnrollError::CaCert)?,
        None => apiary_proto::tls_client::system_roots().ok_or(EnrollError::NoRoots)?,
    };
    let transport = Transport::anonymous(&opts.server_url, &roots, opts.proxy.as_ref())?;

    let facts = crate::facts::collect();
    let request = EnrollRequest {
        bootstrap_key: opts.bootstrap_key.clone(),
        public_key,
        device_name: opts
            .device_name
            .clone()
            .unwrap_or_else(|| facts.hostname.clone()),
        facts,
    };
    let signed = key.sign(&request).map_err(|_| EnrollError::Key {
        path: dirs.device_key(),
        message: "signing failed".into(),
    })?;
    eprintln!("enrolling device {device_id} with {}", opts.server_url);
    let mut status: EnrollStatus = transport.post_json(paths::BOOTSTRAP, &signed)?;

    let mut said_pending = false;
    loop {
        if status.device_id != device_id {
            return Err(EnrollError::WrongDevice {
                expected: device_id,
                got: status.device_id,
            });
        }
        match status.state {
            EnrollState::Approved => break,
            EnrollState::Rejected => return Err(EnrollError::Rejected(device_id)),
            EnrollState::Pending => {
                if !said_pending {
                    eprintln!(
                        "device {device_id} is pending: waiting for an operator to approve it \
                         (apiary devices approve {device_id})"
                    );
                    said_pending = true;
                }
                if !signals::sleep(opts.poll_interval) {
                    return Err(EnrollError::Interrupted);
                }
                let path = format!("{}{device_id}", paths::BOOTSTRAP_STATUS_PREFIX);
                status = match transport.get_json(&path) {
                    // Unanswered requests expire on the backend (after a week): ask again.
                    Err(TransportError::Status { status: 404, .. }) => {
                        eprintln!("the enrolment request of {device_id} expired; asking again");
                        transport.post_json(paths::BOOTSTRAP, &signed)?
                    }
                    other => other?,
                };
            }
        }
    }

    let creds = status
        .credentials
        .ok_or_else(|| EnrollError::NoCredentials(device_id.clone()))?;
    write(&dirs.device_cert(), creds.certificate_pem.as_bytes(), 0o644)?;
    write(&dirs.ca_cert(), creds.ca_pem.as_bytes(), 0o644)?;
    let agent = AgentConfig {
        device_id: device_id.clone(),
        server_url: opts.server_url.trim_end_matches('/').to_string(),
        bundle_signing_key: creds.bundle_signing_key,
        elevation_command: opts.elevation_command.clone(),
        proxy: opts.proxy.as_ref().map(|p| p.config.clone()),
    };
    match opts.proxy.as_ref().and_then(|p| p.password.as_ref()) {
        Some(password) => write(&dirs.proxy_password(), password.as_bytes(), 0o600)?,
        // A password of an earlier enrolment must not outlive its proxy.
        None if std::fs::symlink_metadata(dirs.proxy_password()).is_ok() => {
            safe_fs::remove_file(&dirs.proxy_password()).map_err(EnrollError::Write)?
        }
        None => {}
    }
    // A bundle kept from an earlier enrolment (this backend's before the device was deleted,
    // or another backend's) is not this enrolment's: its serials would refuse the new ones.
    if std::fs::symlink_metadata(dirs.bundle()).is_ok() {
        safe_fs::remove_file(&dirs.bundle()).map_err(EnrollError::Write)?;
        eprintln!("the bundle of the earlier enrolment is no longer in force");
    }
    // agent.json last: its presence marks a complete identity.
    let json = serde_json::to_vec_pretty(&agent).expect("config serialises infallibly");
    write(&dirs.agent_json(), &json, 0o600)?;
    eprintln!(
        "device {device_id} approved; identity stored in {}",
        dirs.config.display()
    );
    Ok(device_id)
}

fn config_device_id(dirs: &Dirs) -> Result<String, ()> {
    let bytes = safe_fs::read(&dirs.agent_json(), safe_fs::STATE_FILE_LIMIT)
        .ok()
        .flatten()
        .ok_or(())?;
    let config: AgentConfig = serde_json::from_slice(&bytes).map_err(|_| ())?;
    Ok(config.device_id)
}

/// Reuses a key from an interrupted enrolment, so the device keeps its id while pending.
fn load_or_create_key(dirs: &Dirs) -> Result<DeviceKey, EnrollError> {
    let path = dirs.device_key();
    let key_err = |message: String| EnrollError::Key {
        path: path.clone(),
        message,
    };
    let pkcs8 = match safe_fs::read(&path, safe_fs::STATE_FILE_LIMIT)
        .map_err(|e| key_err(e.to_string()))?
    {
        Some(pem) => PrivatePkcs8KeyDer::from_pem_slice(&pem)
            .map_err(|e| key_err(format!("not a PKCS#8 PEM key: {e}")))?
            .secret_pkcs8_der()
            .to_vec(),
        None => {
            let der =
                DeviceKey::generate_pkcs8().map_err(|_| key_err("key generation failed".into()))?;
            write(&path, pem::encode("PRIVATE KEY", &der).as_bytes(), 0o600)?;
            der
        }
    };
    DeviceKey::from_pkcs8(&pkcs8).map_err(|e| key_err(e.to_string()))
}

fn write(path: &std::path::Path, bytes: &[u8], mode: u32) -> Result<(), EnrollError> {
    safe_fs::write_atomic(path, bytes, mode).map_err(EnrollError::Write)
}
