//! `apiary commit` and `apiary commits`: make drafts active, and the history.

use serde_json::json;

use crate::args::CommitsCmd;
use crate::client::{Client, ClientError};
use crate::output;

/// `apiary commit -m MESSAGE [--dry-run]`.
pub fn commit(c: &Client, message: &str, dry_run: bool, json: bool) -> Result<(), ClientError> {
    let outcome = c.post("/commits", &json!({"message": message, "dry_run": dry_run}))?;
    output::print(&outcome, json, output::commit_outcome);
    Ok(())
}

pub fn run(c: &Client, cmd: CommitsCmd) -> Result<(), ClientError> {
    match cmd {
        CommitsCmd::List(j) => list(c, j.json),
        CommitsCmd::Show { id, json } => show(c, id, json.json),
        CommitsCmd::Revert { id, json } => revert(c, id, json.json),
    }
}

fn list(c: &Client, json: bool) -> Result<(), ClientError> {
    output::print(&c.get("/commits")?, json, output::commits);
    Ok(())
}

fn show(c: &Client, id: i64, json: bool) -> Result<(), ClientError> {
    output::print(&c.get(&format!("/commits/{id}"))?, json, output::commit);
    Ok(())
}

fn revert(c: &Client, id: i64, json: bool) -> Result<(), ClientError> {
    let outcome = c.post(&format!("/commits/{id}/revert"), &json!({}))?;
    output::print(&outcome, json, output::commit_outcome);
    Ok(())
}
