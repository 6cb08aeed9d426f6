//! One HTTPS request per TLS connection, as a device makes them: TLS 1.3 only with the
//! agent's suites, the backend's CA pinned, the device's certificate, and a session
//! store of one ticket per device when resuming.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::{ClientSessionMemoryCache, Resumption};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

/// Longest answer read (a bundle with many policies fits easily).
const MAX_ANSWER: usize = 4 * 1024 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The backend's device API.
pub struct Target {
    host: String,
    addr: SocketAddr,
    server_name: ServerName<'static>,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl Target {
    pub fn new(url: &str, ca: &Path) -> Result<Self, String> {
        let host = url
            .strip_prefix("https://")
            .ok_or_else(|| format!("{url}: not an https:// URL"))?
            .trim_end_matches('/')
            .to_string();
        let addr = host
            .to_socket_addrs()
            .map_err(|e| format!("{host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host}: no address"))?;
        let name = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
        let server_name = ServerName::try_from(name.trim_matches(['[', ']']).to_string())
            .map_err(|e| format!("{name}: {e}"))?;
        let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", ca.display()))?;
        }
        // The agent's own suites, from the code the agent builds its TLS with.
        let provider = apiary_proto::tls_client::provider(apiary_proto::tls_client::Suites::Tls13);
        Ok(Self {
            host,
            addr,
            server_name,
            roots: Arc::new(roots),
            provider,
        })
    }

    /// A client configuration: anonymous (enrolment) or with a device's certificate and
    /// PKCS#8 key; with a one-ticket session store when `resume`.
    pub fn config(
        &self,
        device: Option<(&str, &[u8])>,
        resume: bool,
    ) -> Result<Arc<ClientConfig>, String> {
        let builder = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .with_root_certificates(self.roots.clone());
        let mut config = match device {
            None => builder.with_no_client_auth(),
            Some((cert_pem, pkcs8)) => {
                let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("device certificate: {e}"))?;
                let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.to_vec()));
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("device key: {e}"))?
            }
        };
        config.resumption = if resume {
            Resumption::store(Arc::new(ClientSessionMemoryCache::new(1)))
        } else {
            Resumption::disabled()
        };
        Ok(Arc::new(config))
    }

    /// `POST path` with `request` as JSON on a new connection; a 200 answer parsed as `T`,
    /// anything else an error naming `what` was asked.
    pub fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        config: &Arc<ClientConfig>,
        path: &str,
        request: &impl serde::Serialize,
        what: &str,
    ) -> Result<T, String> {
        let body = serde_json::to_vec(request).expect("a request serialises");
        let (status, answer) = self.post(config, path, &body)?;
        if status != 200 {
            return Err(format!(
                "{what} answered {status}: {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        serde_json::from_slice(&answer).map_err(|e| format!("{what} answer: {e}"))
    }

    /// `POST path` with a JSON `body` on a new connection; the status and the answer's body.
    fn post(
        &self,
        config: &Arc<ClientConfig>,
        path: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), String> {
        let tcp = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT)
            .map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        tcp.set_write_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let conn = ClientConnection::new(config.clone(), self.server_name.clone())
            .map_err(|e| format!("TLS: {e}"))?;
        let mut tls = StreamOwned::new(conn, tcp);
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            self.host,
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        tls.write_all(&request).map_err(|e| format!("send: {e}"))?;
        tls.flush().map_err(|e| format!("send: {e}"))?;
        read_answer(&mut tls)
    }
}

/// Reads one HTTP/1.1 answer with a `content-length`.
fn read_answer(tls: &mut impl Read) -> Result<(u16, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("no status line in {head:?}"))?;
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if length > MAX_ANSWER {
                return Err(format!("answer of {length} bytes"));
            }
            while buf.len() < end + 4 + length {
                let n = tls.read(&mut chunk).map_err(|e| format!("answer: {e}"))?;
                if n == 0 {
                    return Err("answer cut short".into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok((status, buf[end + 4..end + 4 + length].to_vec()));
        }
        if buf.len() > 64 * 1024 {
            return Err("answer head over 64 KiB".into());
        }
        let n = tls.read(&mut chunk).map_err(|e| format!("answer: {e}"))?;
        if n == 0 {
            return Err("connection closed before an answer".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
