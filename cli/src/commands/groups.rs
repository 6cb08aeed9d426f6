//! `apiary groups`: list, create, rename, move, delete.

use serde_json::json;

use crate::args::GroupsCmd;
use crate::client::{Client, ClientError, encode};
use crate::output;

pub fn run(c: &Client, cmd: GroupsCmd) -> Result<(), ClientError> {
    match cmd {
        GroupsCmd::List(j) => list(c, j.json),
        GroupsCmd::Create { path } => create(c, &path),
        GroupsCmd::Rename { from, to } => rename(c, &from, &to),
        GroupsCmd::Move { path, parent } => move_under(c, &path, &parent),
        GroupsCmd::Delete { path } => delete(c, &path),
    }
}

fn list(c: &Client, json: bool) -> Result<(), ClientError> {
    output::print(&c.get("/groups")?, json, output::groups);
    Ok(())
}

fn create(c: &Client, path: &str) -> Result<(), ClientError> {
    let created = c.post("/groups", &json!({"path": path}))?;
    eprintln!(
        "group {} created",
        created["path"].as_str().unwrap_or_default()
    );
    Ok(())
}

fn rename(c: &Client, from: &str, to: &str) -> Result<(), ClientError> {
    let r = c.post("/groups/rename", &json!({"from": from, "to": to}))?;
    eprintln!(
        "group {from} is now {to}; {} device(s) got a new bundle",
        r["devices_with_new_bundle"]
    );
    Ok(())
}

/// A move is a rename that keeps the group's own name under a new parent.
fn move_under(c: &Client, path: &str, parent: &str) -> Result<(), ClientError> {
    let name = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let to = format!("{}/{name}", parent.trim_end_matches('/'));
    rename(c, path, &to)
}

fn delete(c: &Client, path: &str) -> Result<(), ClientError> {
    c.delete(&format!("/groups?path={}", encode(path, false)))?;
    eprintln!("group {path} deleted");
    Ok(())
}
