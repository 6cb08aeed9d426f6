//! `apiary devices`: list, show, approve, reject, delete, move.

use serde_json::json;

use crate::args::DevicesCmd;
use crate::client::{Client, ClientError};
use crate::{output, resolve};

pub fn run(c: &Client, cmd: DevicesCmd) -> Result<(), ClientError> {
    match cmd {
        DevicesCmd::List {
            pending,
            limit,
            offset,
            json,
        } => list(c, pending, limit, offset, json.json),
        DevicesCmd::Show { device, json } => show(c, &device, json.json),
        DevicesCmd::Approve { device } => approve(c, &device),
        DevicesCmd::Reject { device } => reject(c, &device),
        DevicesCmd::Delete { device } => delete(c, &device),
        DevicesCmd::Move { device, group } => move_to(c, &device, &group),
    }
}

/// The pending list (and any list with `--limit`) is one page; a full page says how to get
/// the next.
fn list(
    c: &Client,
    pending: bool,
    limit: Option<u64>,
    offset: u64,
    json: bool,
) -> Result<(), ClientError> {
    let mut query = Vec::new();
    if pending {
        query.push("status=pending".to_string());
    }
    if let Some(limit) = limit {
        query.push(format!("limit={limit}"));
    }
    if offset > 0 {
        query.push(format!("offset={offset}"));
    }
    let path = match query.is_empty() {
        true => "/devices".to_string(),
        false => format!("/devices?{}", query.join("&")),
    };
    let page = c.get(&path)?;
    output::print(&page, json, output::devices);
    let shown = page.as_array().map_or(0, Vec::len) as u64;
    let page_size = limit.or(pending.then_some(PENDING_PAGE));
    if page_size.is_some_and(|size| shown > 0 && shown >= size) {
        eprintln!(
            "showing {} to {}; --offset {} for more",
            offset + 1,
            offset + shown,
            offset + shown
        );
    }
    Ok(())
}

/// The backend's page of pending devices when no `--limit` is given.
const PENDING_PAGE: u64 = 100;

fn show(c: &Client, device: &str, json: bool) -> Result<(), ClientError> {
    let id = resolve::device(c, device)?;
    output::print(&c.get(&format!("/devices/{id}"))?, json, output::device);
    Ok(())
}

fn approve(c: &Client, device: &str) -> Result<(), ClientError> {
    let id = resolve::device(c, device)?;
    let d = c.post(&format!("/devices/{id}/approve"), &json!({}))?;
    eprintln!(
        "device {id} ({}) approved",
        d["name"].as_str().unwrap_or_default()
    );
    Ok(())
}

fn reject(c: &Client, device: &str) -> Result<(), ClientError> {
    let id = resolve::device(c, device)?;
    c.post(&format!("/devices/{id}/reject"), &json!({}))?;
    eprintln!("device {id} rejected");
    Ok(())
}

fn delete(c: &Client, device: &str) -> Result<(), ClientError> {
    let id = resolve::device(c, device)?;
    let d = c.delete(&format!("/devices/{id}"))?;
    eprintln!(
        "device {id} ({}) deleted; if it enrols again it is a new request",
        d["name"].as_str().unwrap_or_default()
    );
    Ok(())
}

/// `unassigned` takes the device out of every group.
fn move_to(c: &Client, device: &str, group: &str) -> Result<(), ClientError> {
    let id = resolve::device(c, device)?;
    let target = (group != "unassigned").then_some(group);
    let moved = c.post(&format!("/devices/{id}/move"), &json!({"group": target}))?;
    let note = if moved["new_bundle"] == true {
        "; it gets a new bundle"
    } else {
        ""
    };
    eprintln!("device {id} moved to {group}{note}");
    Ok(())
}
