//! `apiary devices`: list, show, approve, reject, move.

use serde_json::json;

use crate::args::DevicesCmd;
use crate::client::{Client, ClientError};
use crate::{output, resolve};

pub fn run(c: &Client, cmd: DevicesCmd) -> Result<(), ClientError> {
    match cmd {
        DevicesCmd::List { pending, json } => list(c, pending, json.json),
        DevicesCmd::Show { device, json } => show(c, &device, json.json),
        DevicesCmd::Approve { device } => approve(c, &device),
        DevicesCmd::Reject { device } => reject(c, &device),
        DevicesCmd::Move { device, group } => move_to(c, &device, &group),
    }
}

fn list(c: &Client, pending: bool, json: bool) -> Result<(), ClientError> {
    let path = if pending {
        "/devices?status=pending"
    } else {
        "/devices"
    };
    output::print(&c.get(path)?, json, output::devices);
    Ok(())
}

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
