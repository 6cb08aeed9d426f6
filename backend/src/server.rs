//! `apiary-backend serve`: open the data dir, bind both listeners, serve until a signal.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::blobs::BlobStore;
use crate::conn_limits::ConnLimits;
use crate::datadir::DataDir;
use crate::state::AppState;
use crate::tls_server;

/// Options of `serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeOptions {
    /// Data directory (database, CA, keys, uploaded files)
    #[arg(long, default_value = "./apiary-data", env = "APIARY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Operator API and dashboard (plain HTTP unless --tls-cert/--tls-key are given)
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Device API (always TLS; devices authenticate with client certificates)
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub device_listen: SocketAddr,
    /// Device API URL as devices reach it, e.g. https://apiary.example.com:8443
    /// (its host goes into the server certificate)
    #[arg(long)]
    pub public_url: Option<String>,
    /// Certificate (PEM) for serving the operator API over TLS
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds a device certificate is valid (default 10 years)
    #[arg(long, default_value_t = crate::pki::DEVICE_LIFETIME)]
    pub device_cert_lifetime: i64,
    /// Seconds before its end that a device is asked to renew its certificate (default: a
    /// third of the lifetime)
    #[arg(long)]
    pub device_cert_renew_before: Option<i64>,
    #[command(flatten)]
    pub device_limits: DeviceLimitArgs,
    #[command(flatten)]
    pub retention: crate::metrics::Retention,
    /// Seconds between two evaluations of the alert rules
    #[arg(long, default_value_t = 30)]
    pub alert_interval: u64,
}

/// What unauthenticated clients may hold of the device listener (see `conn_limits`).
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceLimitArgs {
    /// Open device connections; at the cap new ones wait in the kernel's backlog
    #[arg(long, default_value_t = ConnLimits::default().max_connections)]
    pub device_max_connections: usize,
    /// Open device connections from one source address; more are closed at once
    #[arg(long, default_value_t = ConnLimits::default().max_per_address)]
    pub device_max_per_address: usize,
    /// TLS handshakes in progress at once
    #[arg(long, default_value_t = ConnLimits::default().max_handshakes)]
    pub device_max_handshakes: usize,
    /// Seconds a device connection may move no byte before it is closed
    #[arg(long, default_value_t = ConnLimits::default().idle_timeout.as_secs())]
    pub device_idle_timeout: u64,
    /// TLS sessions kept for resumption, one per device (about 700 B each once used)
    #[arg(long, default_value_t = crate::session_cache::DEFAULT_CAPACITY)]
    pub device_sessions: usize,
}

impl DeviceLimitArgs {
    fn limits(&self) -> ConnLimits {
        ConnLimits {
            max_connections: self.device_max_connections,
            max_per_address: self.device_max_per_address,
            max_handshakes: self.device_max_handshakes,
            idle_timeout: Duration::from_secs(self.device_idle_timeout.max(1)),
            ..ConnLimits::default()
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    DataDir(#[from] crate::datadir::DataDirError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("--public-url {0:?} is not an https:// URL with a host")]
    PublicUrl(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls_server::TlsConfigError),
    #[error("cannot open the file store: {0}")]
    Blobs(std::io::Error),
    #[error("cannot create the first dashboard operator: {0}")]
    Operators(crate::store::StoreError),
}

/// Runs the backend until SIGINT/SIGTERM.
pub async fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    let device_listener = TcpListener::bind(opts.device_listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: opts.device_listen,
            source,
        })?;
    let device_addr = device_listener
        .local_addr()
        .map_err(|source| ServeError::Bind {
            addr: opts.device_listen,
            source,
        })?;
    let public_url = match &opts.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("https://{}:{}", hostname(), device_addr.port()),
    };
    let public_host =
        url_host(&public_url).ok_or_else(|| ServeError::PublicUrl(public_url.clone()))?;
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
        hostname(),
    ];
    if !names.contains(&public_host) {
        names.push(public_host);
    }

    let data = DataDir::open(&opts.data_dir, &names).await?;
    if let Some(token) = &data.new_admin_token {
        println!("initialised {}", opts.data_dir.display());
        println!(
            "admin API token (shown once; also in {}): {token}",
            opts.data_dir.join("admin.token").display()
        );
    }
    let device_tls = tls_server::device_config(
        &data.server.cert_pem,
        &data.server.key_pem,
        &data.authority.trust_pem,
        opts.device_limits.device_sessions,
    )?;
    let store = data.shared_store();
    let mut authority = data.authority;
    authority.device_lifetime = opts.device_cert_lifetime.max(60);
    authority.device_renew_before = opts
        .device_cert_renew_before
        .unwrap_or(authority.device_lifetime / 3)
        .clamp(0, authority.device_lifetime);
    let state = Arc::new(AppState {
        store,
        blobs: BlobStore::open(&data.root.join("files")).map_err(ServeError::Blobs)?,
        signer: data.signer,
        secrets: data.secrets,
        authority,
        commit_lock: tokio::sync::Mutex::new(()),
        retention: opts.retention,
    });

    let operator_listener =
        TcpListener::bind(opts.listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: opts.listen,
                source,
            })?;
    let operator_addr = operator_listener
        .local_addr()
        .map_err(|source| ServeError::Bind {
            addr: opts.listen,
            source,
        })?;
    if let Some(password) = crate::operator_accounts::ensure_first_admin(state.store.as_ref())
        .await
        .map_err(ServeError::Operators)?
    {
        println!(
            "dashboard login: {} / {password} (shown once; change it with `apiary-backend users passwd {}`)",
            crate::operator_accounts::FIRST_ADMIN,
            crate::operator_accounts::FIRST_ADMIN
        );
    }
    let device_app = crate::device_api::router(state.clone());

    let operator_tls = match (&opts.tls_cert, &opts.tls_key) {
        (Some(cert), Some(key)) => Some(tls_server::operator_config(&read(cert)?, &read(key)?)?),
        _ => None,
    };
    let scheme = if operator_tls.is_some() {
        "https"
    } else {
        "http"
    };
    let operator_app = crate::operator_api::router(state.clone()).merge(crate::dashboard::router(
        state.clone(),
        operator_tls.is_some(),
    ));
    // These lines are the contract with scripts and tests that start the backend on port 0.
    println!("operator API listening on {scheme}://{operator_addr}");
    println!("device API listening on https://{device_addr} (devices use {public_url})");
    let _ = std::io::stdout().flush();

    let operator = async move {
        match operator_tls {
            Some(cfg) => {
                tls_server::serve(operator_listener, cfg, operator_app, ConnLimits::default()).await
            }
            None => {
                let app = operator_app.into_make_service_with_connect_info::<SocketAddr>();
                if let Err(e) = axum::serve(operator_listener, app).await {
                    tracing::error!("operator API stopped: {e}");
                }
            }
        }
    };
    tokio::select! {
        _ = operator => {}
        _ = tls_server::serve(device_listener, device_tls, device_app, opts.device_limits.limits()) => {}
        _ = write_checkin_times(state.store.clone()) => {}
        _ = crate::metrics::prune_forever(state.store.clone(), opts.retention) => {}
        _ = crate::alerts::evaluate_forever(state.clone(), Duration::from_secs(opts.alert_interval.max(1))) => {}
        _ = crate::alerts::webhooks::deliver_forever(state.clone()) => {}
        _ = shutdown_signal() => tracing::info!("shutting down"),
    }
    if let Err(e) = state.store.flush_checkins().await {
        tracing::error!("check-in times of the last second not written: {e}");
    }
    Ok(())
}

/// A flush slower than this is worth an operator's attention: devices on the full check-in
/// path wait for the database meanwhile.
const SLOW_FLUSH: Duration = Duration::from_millis(250);

/// Writes idle check-ins' times once a second (see `Store::touch_checkin`).
async fn write_checkin_times(store: Arc<dyn crate::store::Store>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = std::time::Instant::now();
        let written = store.flush_checkins().await;
        let took = started.elapsed().as_millis();
        match written {
            Ok(n) if took >= SLOW_FLUSH.as_millis() => {
                tracing::warn!("writing {n} check-in times took {took} ms")
            }
            Ok(n) => tracing::debug!("wrote {n} check-in times in {took} ms"),
            Err(e) => tracing::warn!("writing check-in times (kept for the next try): {e}"),
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler succeeds");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn read(path: &PathBuf) -> Result<String, ServeError> {
    std::fs::read_to_string(path).map_err(|source| ServeError::Read {
        path: path.clone(),
        source,
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The host of an `https://host[:port][/...]` URL (IPv6 literals without brackets).
fn url_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split('/').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty()).then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::url_host;

    #[test]
    fn hosts_of_urls() {
        assert_eq!(url_host("https://a.example:8443"), Some("a.example".into()));
        assert_eq!(url_host("https://a.example/x"), Some("a.example".into()));
        assert_eq!(url_host("https://[::1]:8443"), Some("::1".into()));
        assert_eq!(url_host("http://a.example"), None);
        assert_eq!(url_host("https://"), None);
    }
}
