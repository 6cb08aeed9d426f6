//! `apiary params`: one parameter at a time, as drafts of the node's `parameters` document.

use serde_json::json;

use crate::args::ParamsCmd;
use crate::client::{Client, ClientError, encode};
use crate::{output, resolve};

pub fn run(c: &Client, cmd: ParamsCmd) -> Result<(), ClientError> {
    match cmd {
        ParamsCmd::Set {
            node,
            key,
            value,
            secret,
        } => set(c, &node, &key, value, secret),
        ParamsCmd::Unset { node, key } => unset(c, &node, &key),
        ParamsCmd::Show { node, json } => show(c, &node, json.json),
    }
}

/// A secret without a value on the command line is read from stdin, so it stays out of
/// shell history and the process list.
fn set(
    c: &Client,
    node: &str,
    key: &str,
    value: Option<String>,
    secret: bool,
) -> Result<(), ClientError> {
    let value = match (value, secret) {
        (Some(v), _) => v,
        (None, true) => read_secret()?,
        (None, false) => {
            return Err(ClientError::Usage(
                "a VALUE is needed (only --secret reads stdin)".into(),
            ));
        }
    };
    let node = resolve::node(c, node)?;
    c.put_json(
        &parameter_path(key, &node),
        &json!({"value": value, "secret": secret}),
    )?;
    let kind = if secret { "secret" } else { "parameter" };
    eprintln!("drafted {kind} {key} on {node}; commit to make it active");
    Ok(())
}

fn unset(c: &Client, node: &str, key: &str) -> Result<(), ClientError> {
    let node = resolve::node(c, node)?;
    c.delete(&parameter_path(key, &node))?;
    eprintln!("drafted removing {key} from {node}; commit to make it active");
    Ok(())
}

fn show(c: &Client, node: &str, json: bool) -> Result<(), ClientError> {
    let node = resolve::node(c, node)?;
    let shown = c.get(&format!("/parameters?node={}", encode(&node, false)))?;
    output::print(&shown, json, output::params);
    Ok(())
}

fn parameter_path(key: &str, node: &str) -> String {
    format!(
        "/parameters/{}?node={}",
        encode(key, false),
        encode(node, false)
    )
}

/// One line from stdin, without its line ending: secrets stay out of shell history.
fn read_secret() -> Result<String, ClientError> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| ClientError::Usage(format!("reading the secret from stdin: {e}")))?;
    let value = line.trim_end_matches(['\n', '\r']).to_string();
    if value.is_empty() {
        return Err(ClientError::Usage("no secret on stdin".into()));
    }
    Ok(value)
}
