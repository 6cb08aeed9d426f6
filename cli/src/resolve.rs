//! Naming nodes and devices on the command line: group paths as they are, devices by full
//! id, unique id prefix or unique name.

use serde_json::Value;

use crate::client::{Client, ClientError};

/// Group paths pass through; anything else names a device.
pub fn node(c: &Client, node: &str) -> Result<String, ClientError> {
    if node.starts_with('/') {
        Ok(node.to_string())
    } else {
        device(c, node)
    }
}

/// Accepts a full id, a unique id prefix, or a unique device name.
pub fn device(c: &Client, text: &str) -> Result<String, ClientError> {
    if apiary_proto::digest::is_sha256_hex(text) {
        return Ok(text.to_string());
    }
    let devices = c.get("/devices")?;
    let all = devices.as_array().cloned().unwrap_or_default();
    let id_of = |d: &Value| d["id"].as_str().unwrap_or_default().to_string();
    let by_name: Vec<String> = all
        .iter()
        .filter(|d| d["name"] == text)
        .map(id_of)
        .collect();
    let by_prefix: Vec<String> = all
        .iter()
        .map(id_of)
        .filter(|id| id.starts_with(text))
        .collect();
    let matches = if by_name.is_empty() {
        by_prefix
    } else {
        by_name
    };
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ClientError::Usage(format!(
            "no device with id prefix or name {text:?}"
        ))),
        many => Err(ClientError::Usage(format!(
            "{text:?} matches {} devices; give more of the id",
            many.len()
        ))),
    }
}
