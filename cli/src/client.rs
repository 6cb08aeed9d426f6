//! HTTP client of the operator API: bearer token, JSON, server errors surfaced verbatim.

use std::time::Duration;

use apiary_proto::device_api::ErrorBody;
use apiary_proto::tls_client::{self, Suites};
use serde::Serialize;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {url}: {message}")]
    Connect { url: String, message: String },
    #[error("{0}")]
    Server(String),
    #[error("unexpected answer from {url}: {message}")]
    Decode { url: String, message: String },
    #[error("{0}")]
    Usage(String),
}

/// A logged-in client.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: String,
}

impl Client {
    /// A client for `server` (e.g. `http://127.0.0.1:8080`) using `token`; for https, trusting
    /// the PEM certificates in `roots_pem` (the `--ca-cert` file or the system bundle).
    pub fn new(server: &str, token: &str, roots_pem: &[u8]) -> Result<Self, ClientError> {
        let roots =
            tls_client::pem_certs(roots_pem).map_err(|e| ClientError::Usage(e.to_string()))?;
        if server.starts_with("https://") && roots.is_empty() {
            return Err(ClientError::Usage(
                "no CA certificate to verify the server with: pass --ca-cert".into(),
            ));
        }
        let tls = tls_client::config(&roots, None, Suites::Default);
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .user_agent(format!("apiary-cli/{}", apiary_proto::VERSION))
            .build()
            .new_agent();
        Ok(Self {
            agent,
            base: server.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    pub fn get(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        let url = self.url(path);
        let r = self
            .agent
            .get(&url)
            .header("authorization", self.bearer())
            .call();
        self.finish(&url, r)
    }

    pub fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let (url, mut r) = self.get_checked(path)?;
        r.body_mut().read_to_string().map_err(|e| decode(&url, e))
    }

    /// Streams the answer of `GET path` into `out`; returns the bytes written.
    pub fn get_to(&self, path: &str, out: &mut dyn std::io::Write) -> Result<u64, ClientError> {
        let (url, mut r) = self.get_checked(path)?;
        let mut body = r.body_mut().with_config().limit(u64::MAX).reader();
        std::io::copy(&mut body, out).map_err(|e| ClientError::Decode {
            url: url.clone(),
            message: e.to_string(),
        })
    }

    /// `GET path` with the token, its status checked; the body is the caller's to read.
    fn get_checked(
        &self,
        path: &str,
    ) -> Result<(String, ureq::http::Response<ureq::Body>), ClientError> {
        let url = self.url(path);
        let mut r = self
            .agent
            .get(&url)
            .header("authorization", self.bearer())
            .call()
            .map_err(|e| connect(&url, e))?;
        check(&url, &mut r)?;
        Ok((url, r))
    }

    pub fn post<B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<serde_json::Value, ClientError> {
        let url = self.url(path);
        let r = self
            .agent
            .post(&url)
            .header("authorization", self.bearer())
            .send_json(body);
        self.finish(&url, r)
    }

    pub fn put_json<B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<serde_json::Value, ClientError> {
        let url = self.url(path);
        let r = self
            .agent
            .put(&url)
            .header("authorization", self.bearer())
            .send_json(body);
        self.finish(&url, r)
    }

    /// Streams a local file as the request body.
    pub fn put_file(
        &self,
        path: &str,
        file: &std::fs::File,
    ) -> Result<serde_json::Value, ClientError> {
        let url = self.url(path);
        let r = self
            .agent
            .put(&url)
            .header("authorization", self.bearer())
            .header("content-type", "application/octet-stream")
            .send(file);
        self.finish(&url, r)
    }

    pub fn delete(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        let url = self.url(path);
        let r = self
            .agent
            .delete(&url)
            .header("authorization", self.bearer())
            .call();
        self.finish(&url, r)
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    fn finish(
        &self,
        url: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<serde_json::Value, ClientError> {
        let mut r = result.map_err(|e| connect(url, e))?;
        check(url, &mut r)?;
        r.body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_json()
            .map_err(|e| decode(url, e))
    }
}

fn check(url: &str, r: &mut ureq::http::Response<ureq::Body>) -> Result<(), ClientError> {
    let status = r.status();
    if status.is_success() {
        return Ok(());
    }
    let text = r.body_mut().read_to_string().unwrap_or_default();
    let message = serde_json::from_str::<ErrorBody>(&text)
        .map(|b| b.error)
        .unwrap_or_else(|_| format!("{url} answered {status}: {}", text.trim()));
    Err(ClientError::Server(message))
}

fn connect(url: &str, e: ureq::Error) -> ClientError {
    ClientError::Connect {
        url: url.to_string(),
        message: e.to_string(),
    }
}

fn decode(url: &str, e: ureq::Error) -> ClientError {
    ClientError::Decode {
        url: url.to_string(),
        message: e.to_string(),
    }
}

/// Percent-encodes a query value or path segment (keeping `/` only if `keep_slash`).
pub fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes() {
        assert_eq!(super::encode("/prod/oslo", false), "%2Fprod%2Foslo");
        assert_eq!(super::encode("/a b/c&d", true), "/a%20b/c%26d");
    }
}
