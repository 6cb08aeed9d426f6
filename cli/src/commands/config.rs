//! `apiary config`: a node's policy documents, drafted whole.

use std::path::Path;

use serde_json::Value;

use crate::args::ConfigCmd;
use crate::client::{Client, ClientError, encode};
use crate::{output, resolve};

pub fn run(c: &Client, cmd: ConfigCmd) -> Result<(), ClientError> {
    match cmd {
        ConfigCmd::Set { node, policy, file } => set(c, &node, &policy, &file),
        ConfigCmd::Unset { node, policy } => unset(c, &node, &policy),
        ConfigCmd::Show {
            node,
            effective,
            json,
        } => show(c, &node, effective, json.json),
    }
}

fn set(c: &Client, node: &str, policy: &str, file: &Path) -> Result<(), ClientError> {
    let body = read_document(file)?;
    let node = resolve::node(c, node)?;
    c.put_json(&policy_path(policy, &node), &body)?;
    eprintln!("drafted {policy} on {node}; `apiary commit -m MESSAGE` makes it active");
    Ok(())
}

/// The JSON document in `file`, or on stdin for `-`.
fn read_document(file: &Path) -> Result<Value, ClientError> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| ClientError::Usage(format!("reading stdin: {e}")))?
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", file.display())))?
    };
    serde_json::from_str(&text)
        .map_err(|e| ClientError::Usage(format!("{} is not valid JSON: {e}", file.display())))
}

fn unset(c: &Client, node: &str, policy: &str) -> Result<(), ClientError> {
    let node = resolve::node(c, node)?;
    c.delete(&policy_path(policy, &node))?;
    eprintln!("drafted removing {policy} from {node}; commit to make it active");
    Ok(())
}

fn show(c: &Client, node: &str, effective: bool, json: bool) -> Result<(), ClientError> {
    let node = resolve::node(c, node)?;
    let shown = c.get(&format!("/config?node={}", encode(&node, false)))?;
    if effective {
        output::print(&shown["effective"], json, output::effective);
    } else {
        output::print(&shown, json, output::config);
    }
    Ok(())
}

fn policy_path(policy: &str, node: &str) -> String {
    format!(
        "/config/{}?node={}",
        encode(policy, false),
        encode(node, false)
    )
}
