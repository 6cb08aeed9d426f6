//! HTTPS to the device API: one ureq agent per run, so a cycle's requests share a connection.

use std::io::Read;
use std::time::Duration;

use apiary_proto::device_api::ErrorBody;
use apiary_proto::tls_client::{self, Suites, TlsError};
use serde::{Serialize, de::DeserializeOwned};

use crate::policies::DownloadSink;
use ureq::config::AutoHeaderValue;
use ureq::tls::ClientCert;

/// Largest JSON answer accepted (a bundle with many files stays far below this).
const MAX_JSON_BYTES: u64 = 16 * 1024 * 1024;

/// Why a request failed. Callers that retry ask [`TransportError::is_transient`].
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid TLS material: {0}")]
    Tls(#[from] TlsError),
    /// No answer: the connection failed, was cut, or timed out.
    #[error("request to {url} failed: {source}")]
    Request { url: String, source: ureq::Error },
    /// The backend answered with an error status.
    #[error("{url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    /// The answer stopped arriving part way.
    #[error("reading the answer of {url} failed: {message}")]
    Body { url: String, message: String },
    /// The answer arrived but is not what was asked for (malformed JSON, another range).
    #[error("the answer of {url} is unusable: {message}")]
    Unusable { url: String, message: String },
    /// A download arrived but could not be stored here.
    #[error("storing the download of {url} failed: {source}")]
    Sink { url: String, source: std::io::Error },
}

impl TransportError {
    /// True when the same request may succeed if made again soon: the connection failed or
    /// was cut, or the backend had a passing problem (5xx, 408, 429). A refusal (403, 404),
    /// an unusable answer or a local failure gets the same result again.
    pub fn is_transient(&self) -> bool {
        match self {
            TransportError::Request { source, .. } => matches!(
                source,
                ureq::Error::Io(_)
                    | ureq::Error::Timeout(_)
                    | ureq::Error::HostNotFound
                    | ureq::Error::ConnectionFailed
                    | ureq::Error::Protocol(_)
            ),
            TransportError::Status { status, .. } => *status >= 500 || matches!(status, 408 | 429),
            TransportError::Body { .. } => true,
            TransportError::Tls(_)
            | TransportError::Unusable { .. }
            | TransportError::Sink { .. } => false,
        }
    }
}

/// A client for one backend.
pub struct Transport {
    agent: ureq::Agent,
    base: String,
}

impl Transport {
    /// A client without a client certificate, trusting `roots` (PEM), for enrolment.
    pub fn anonymous(base: &str, roots_pem: &[u8]) -> Result<Self, TransportError> {
        Self::build(base, roots_pem, None)
    }

    /// A client presenting the device certificate, trusting only the pinned CA.
    pub fn mutual(
        base: &str,
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, TransportError> {
        let client = tls_client::client_cert(cert_pem, key_pem)?;
        Self::build(base, ca_pem, Some(client))
    }

    fn build(
        base: &str,
        roots_pem: &[u8],
        client_cert: Option<ClientCert>,
    ) -> Result<Self, TransportError> {
        let roots = tls_client::roots(roots_pem)?;
        // The device API speaks TLS 1.3 only; offering nothing else saves bytes per check-in.
        let tls = tls_client::config(&roots, client_cert, Suites::Tls13);
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .https_only(true)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .timeout_per_write(Some(Duration::from_secs(60)))
            // Every header is paid for on every check-in; the version travels in the body.
            .user_agent(AutoHeaderValue::None)
            .accept(AutoHeaderValue::None)
            .build()
            .new_agent();
        Ok(Self {
            agent,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    /// `POST`s JSON and decodes a JSON answer.
    pub fn post_json<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, TransportError> {
        let url = self.url(path);
        // Serialised up front so headers and body leave in one write (one TLS record).
        let body = serde_json::to_vec(body).expect("request types serialise infallibly");
        let response = self
            .agent
            .post(&url)
            .content_type("application/json")
            .send(&body[..])
            .map_err(|source| TransportError::Request {
                url: url.clone(),
                source,
            })?;
        decode_json(&url, response)
    }

    /// `GET`s a JSON document.
    pub fn get_json<R: DeserializeOwned>(&self, path: &str) -> Result<R, TransportError> {
        let url = self.url(path);
        let response = self
            .agent
            .get(&url)
            .call()
            .map_err(|source| TransportError::Request {
                url: url.clone(),
                source,
            })?;
        decode_json(&url, response)
    }

    /// Streams `GET path` into `sink`, from `sink.offset()` with a `Range` request when it
    /// holds a start; a server that answers with the whole content makes the sink restart.
    pub fn download(&self, path: &str, sink: &mut dyn DownloadSink) -> Result<(), TransportError> {
        let url = self.url(path);
        let offset = sink.offset();
        let mut request = self.agent.get(&url);
        if offset > 0 {
            request = request.header("range", format!("bytes={offset}-"));
        }
        let mut response = request.call().map_err(|source| TransportError::Request {
            url: url.clone(),
            source,
        })?;
        check_status(&url, &mut response)?;
        let body_err = |message: String| TransportError::Body {
            url: url.clone(),
            message,
        };
        let resumed = response.status().as_u16() == 206;
        if resumed {
            let range = response
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !range.starts_with(&format!("bytes {offset}-")) {
                return Err(TransportError::Unusable {
                    url: url.clone(),
                    message: format!("asked for bytes {offset}- and got range {range:?}"),
                });
            }
        } else if offset > 0 {
            sink.restart().map_err(|source| TransportError::Sink {
                url: url.clone(),
                source,
            })?;
        }
        let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut buf).map_err(|e| body_err(e.to_string()))?;
            if n == 0 {
                return Ok(());
            }
            sink.write_all(&buf[..n])
                .map_err(|source| TransportError::Sink {
                    url: url.clone(),
                    source,
                })?;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

fn check_status(
    url: &str,
    response: &mut ureq::http::Response<ureq::Body>,
) -> Result<(), TransportError> {
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    let message = serde_json::from_str::<ErrorBody>(&text)
        .map(|b| b.error)
        .unwrap_or(text);
    Err(TransportError::Status {
        url: url.to_string(),
        status,
        message,
    })
}

fn decode_json<R: DeserializeOwned>(
    url: &str,
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<R, TransportError> {
    check_status(url, &mut response)?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_JSON_BYTES)
        .read_json()
        .map_err(|e| match e {
            ureq::Error::Io(_) | ureq::Error::Timeout(_) => TransportError::Body {
                url: url.to_string(),
                message: e.to_string(),
            },
            _ => TransportError::Unusable {
                url: url.to_string(),
                message: e.to_string(),
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> TransportError {
        TransportError::Status {
            url: "https://backend/v1/files/x".into(),
            status: code,
            message: String::new(),
        }
    }

    #[test]
    fn refusals_are_final_and_passing_failures_transient() {
        for code in [500, 502, 503, 504, 408, 429] {
            assert!(status(code).is_transient(), "{code}");
        }
        for code in [400, 401, 403, 404, 416] {
            assert!(!status(code).is_transient(), "{code}");
        }
        let url = String::from("https://backend/v1/checkin");
        let cut = TransportError::Request {
            url: url.clone(),
            source: ureq::Error::Io(std::io::ErrorKind::ConnectionReset.into()),
        };
        assert!(cut.is_transient());
        let partial = TransportError::Body {
            url: url.clone(),
            message: "unexpected end of file".into(),
        };
        assert!(partial.is_transient());
        let disk_full = TransportError::Sink {
            url: url.clone(),
            source: std::io::Error::other("no space left on device"),
        };
        assert!(!disk_full.is_transient());
        let garbled = TransportError::Unusable {
            url,
            message: "expected value at line 1".into(),
        };
        assert!(!garbled.is_transient());
    }
}
