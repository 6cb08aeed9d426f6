//! `apiary bootstrap-keys`: create, list, revoke.

use serde_json::json;

use crate::args::KeysCmd;
use crate::client::{Client, ClientError};
use crate::output;

pub fn run(c: &Client, cmd: KeysCmd) -> Result<(), ClientError> {
    match cmd {
        KeysCmd::Create { group, auto_accept } => create(c, group, auto_accept),
        KeysCmd::List(j) => list(c, j.json),
        KeysCmd::Revoke { id } => revoke(c, id),
    }
}

/// Prints the new key: it is never shown again.
fn create(c: &Client, group: Option<String>, auto_accept: bool) -> Result<(), ClientError> {
    let created = c.post(
        "/bootstrap-keys",
        &json!({"group": group, "auto_accept": auto_accept}),
    )?;
    println!("{}", created["key"].as_str().unwrap_or_default());
    Ok(())
}

fn list(c: &Client, json: bool) -> Result<(), ClientError> {
    output::print(&c.get("/bootstrap-keys")?, json, output::keys);
    Ok(())
}

fn revoke(c: &Client, id: i64) -> Result<(), ClientError> {
    c.delete(&format!("/bootstrap-keys/{id}"))?;
    eprintln!("bootstrap key {id} revoked");
    Ok(())
}
