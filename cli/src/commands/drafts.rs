//! `apiary drafts`: uncommitted changes.

use crate::args::DraftsCmd;
use crate::client::{Client, ClientError, encode};
use crate::{output, resolve};

pub fn run(c: &Client, cmd: DraftsCmd) -> Result<(), ClientError> {
    match cmd {
        DraftsCmd::List(j) => list(c, j.json),
        DraftsCmd::Discard { node, policy } => discard(c, node.as_deref(), policy.as_deref()),
    }
}

fn list(c: &Client, json: bool) -> Result<(), ClientError> {
    output::print(&c.get("/drafts")?, json, output::drafts);
    Ok(())
}

/// All drafts, a node's, or one policy of a node.
fn discard(c: &Client, node: Option<&str>, policy: Option<&str>) -> Result<(), ClientError> {
    let mut query = Vec::new();
    if let Some(n) = node {
        query.push(format!("node={}", encode(&resolve::node(c, n)?, false)));
    }
    if let Some(p) = policy {
        query.push(format!("policy={}", encode(p, false)));
    }
    let path = if query.is_empty() {
        "/drafts".to_string()
    } else {
        format!("/drafts?{}", query.join("&"))
    };
    let r = c.delete(&path)?;
    eprintln!("{} draft(s) discarded", r["discarded"]);
    Ok(())
}
