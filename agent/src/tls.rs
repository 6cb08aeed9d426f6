//! TLS to the backend: rustls over ureq's TCP connection or proxy tunnel, set up here rather
//! than by ureq so that certificates are checked against the agent's trusted time
//! ([`crate::clock`]) instead of a system clock that may read 1970. Verification itself is
//! rustls's own, unchanged: the pinned CA, the name, the validity period.

use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;

use apiary_proto::tls_client::{self, Suites, TlsError};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
    TransportAdapter,
};

use crate::clock::TrustedTime;

/// Wraps the connection below it in TLS 1.3 with the agent's client config.
pub struct TlsConnector {
    config: Arc<ClientConfig>,
}

impl TlsConnector {
    /// Trusting `roots_pem`, presenting `client` (certificate chain and key, PEM) if given.
    pub fn new(roots_pem: &[u8], client: Option<(&[u8], &[u8])>) -> Result<Self, TlsError> {
        let mut roots = RootCertStore::empty();
        for cert in tls_client::roots(roots_pem)? {
            roots
                .add(CertificateDer::from(cert.der().to_vec()))
                .map_err(|e| TlsError::Pem(e.to_string()))?;
        }
        let provider = tls_client::provider(Suites::Tls13);
        let builder =
            ClientConfig::builder_with_details(Arc::clone(&provider), Arc::new(TrustedTime))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(|e| TlsError::Pem(e.to_string()))?
                .with_root_certificates(roots);
        let config = match client {
            Some((cert_pem, key_pem)) => {
                let chain = CertificateDer::pem_slice_iter(cert_pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| TlsError::Key(format!("device certificate: {e}")))?;
                let key = PrivateKeyDer::from_pem_slice(key_pem)
                    .map_err(|e| TlsError::Key(e.to_string()))?;
                // A certificate for another key (a renewal gone wrong) is named here, not
                // left to fail every handshake.
                rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider)
                    .map_err(|e| TlsError::Key(format!("the device certificate and key: {e}")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| TlsError::Key(e.to_string()))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector").finish()
    }
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Err(ureq::Error::Tls("TLS needs a connection below it"));
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details
            .uri
            .host()
            .ok_or(ureq::Error::Tls("no host to connect to"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| ureq::Error::Tls("the server's name is not a DNS name or address"))?;
        let mut conn = ClientConnection::new(Arc::clone(&self.config), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
        })))
    }
}

/// A TLS connection as ureq's transport.
pub struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").finish()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
