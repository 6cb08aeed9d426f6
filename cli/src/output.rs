//! Human-readable output of the CLI (`--json` prints the API's JSON instead).

use serde_json::Value;

/// Prints `value` as pretty JSON or through `human`.
pub fn print(value: &Value, json: bool, human: fn(&Value)) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("JSON values serialise")
        );
    } else {
        human(value);
    }
}

pub(crate) fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(t) => t.clone(),
        other => other.to_string(),
    }
}

fn short(id: &Value) -> String {
    s(id).chars().take(12).collect()
}

pub(crate) fn time(v: &Value) -> String {
    v.as_i64().map(format_time).unwrap_or_else(|| "-".into())
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` UTC.
fn format_time(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => secs.to_string(),
    }
}

pub(crate) fn rows(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

pub fn keys(v: &Value) {
    println!(
        "{:<5} {:<24} {:<12} {:<20} REVOKED",
        "ID", "GROUP", "AUTO-ACCEPT", "CREATED"
    );
    for k in rows(v) {
        println!(
            "{:<5} {:<24} {:<12} {:<20} {}",
            s(&k["id"]),
            k["group"].as_str().unwrap_or("unassigned"),
            s(&k["auto_accept"]),
            time(&k["created_at"]),
            time(&k["revoked_at"])
        );
    }
}

pub fn devices(v: &Value) {
    println!(
        "{:<13} {:<20} {:<9} {:<16} {:<20} COMMIT",
        "ID", "NAME", "STATUS", "GROUP", "LAST CHECK-IN"
    );
    for d in rows(v) {
        println!(
            "{:<13} {:<20} {:<9} {:<16} {:<20} {}",
            short(&d["id"]),
            s(&d["name"]),
            s(&d["status"]),
            d["group"].as_str().unwrap_or("unassigned"),
            time(&d["last_checkin"]),
            s(&d["applied_commit"])
        );
    }
}

pub fn device(d: &Value) {
    println!("id:             {}", s(&d["id"]));
    println!("name:           {}", s(&d["name"]));
    println!("status:         {}", s(&d["status"]));
    println!(
        "group:          {}",
        d["group"].as_str().unwrap_or("unassigned")
    );
    println!(
        "host:           {} ({}, {}, {})",
        s(&d["facts"]["hostname"]),
        s(&d["facts"]["os"]),
        s(&d["facts"]["kernel"]),
        s(&d["facts"]["arch"])
    );
    println!("ip:             {}", s(&d["remote_ip"]));
    println!("agent:          {}", s(&d["agent_version"]));
    if let Some(cert) = d["certificate"].as_object() {
        println!(
            "certificate:    valid until {} (sha256 {})",
            time(&cert["not_after"]),
            cert["fingerprint"].as_str().unwrap_or_default()
        );
    }
    if let Some(skew) = d["clock_skew"].as_i64() {
        println!(
            "clock:          {} ({skew} s)",
            apiary_proto::device_api::describe_skew(skew)
        );
    }
    println!("requested:      {}", time(&d["requested_at"]));
    println!("last check-in:  {}", time(&d["last_checkin"]));
    println!(
        "applied commit: {} (bundle serial {})",
        s(&d["applied_commit"]),
        s(&d["applied_serial"])
    );
    let b = &d["current_bundle"];
    if !b.is_null() {
        let state = if b["hash"] == d["applied_hash"] {
            "applied"
        } else {
            "not yet applied"
        };
        println!(
            "latest bundle:  serial {} from commit {} ({state})",
            s(&b["serial"]),
            s(&b["commit_id"])
        );
    }
    println!("reports (newest first):");
    for r in rows(&d["reports"]) {
        let item = r["item"]
            .as_str()
            .map(|i| format!(" [{i}]"))
            .unwrap_or_default();
        println!(
            "  {} {:<8} {}{}: {}",
            format_time(r["time"].as_i64().unwrap_or(0)),
            s(&r["level"]),
            s(&r["policy"]),
            item,
            s(&r["message"])
        );
        if let Some(out) = r["output"].as_str().filter(|o| !o.trim().is_empty()) {
            for line in out.lines() {
                println!("      | {line}");
            }
        }
    }
}

pub fn files(v: &Value) {
    println!("{:<40} {:>10} {:<13} UPLOADED", "PATH", "SIZE", "SHA256");
    for f in rows(v) {
        println!(
            "{:<40} {:>10} {:<13} {}",
            s(&f["path"]),
            s(&f["size"]),
            short(&f["sha256"]),
            time(&f["uploaded_at"])
        );
    }
}

pub fn config(v: &Value) {
    println!("node {}", s(&v["node"]));
    let policies = v["policies"].as_object().cloned().unwrap_or_default();
    if policies.is_empty() {
        println!("  (no policies set on this node)");
    }
    for (name, state) in policies {
        if let Some(active) = state.get("active") {
            println!("  {name} (active): {active}");
        }
        if let Some(draft) = state.get("draft") {
            println!("  {name} (draft):  {draft}");
        }
    }
}

/// What is in force on a node: each policy, the node it comes from, and for list-like
/// policies the node of each item.
pub fn effective(v: &Value) {
    let policies = v.as_object().cloned().unwrap_or_default();
    if policies.is_empty() {
        println!("no policies in force");
    }
    for (name, e) in policies {
        println!("{name} (from {}):", s(&e["from"]));
        let sources: Vec<String> = rows(&e["items_from"]).iter().map(s).collect();
        match (e["body"].as_object(), sources.is_empty()) {
            (Some(body), false) => {
                for (field, value) in body {
                    match value.as_array() {
                        Some(list) => {
                            for (i, item) in list.iter().enumerate() {
                                let from = sources.get(i).map(String::as_str).unwrap_or("?");
                                println!("  {field}[{i}] from {from}: {item}");
                            }
                        }
                        None => println!("  {field}: {value}"),
                    }
                }
            }
            _ => println!("  {}", e["body"]),
        }
    }
}

pub fn commit_outcome(v: &Value) {
    match v["id"].as_i64() {
        Some(id) => println!("commit {id}: {}", s(&v["message"])),
        None => println!("dry run: nothing was committed"),
    }
    for c in rows(&v["changes"]) {
        println!(
            "  {} {}: {} -> {}",
            s(&c["node"]),
            s(&c["policy"]),
            s(&c["before"]),
            s(&c["after"])
        );
    }
    let impacted = rows(&v["impacted"]);
    println!("{} device(s) get a new bundle", impacted.len());
    for d in impacted {
        let policies: Vec<String> = rows(&d["policies"]).iter().map(s).collect();
        println!(
            "  {} {}: {}",
            short(&d["device"]),
            s(&d["name"]),
            policies.join(", ")
        );
    }
}

pub fn commits(v: &Value) {
    println!("{:<6} {:<20} {:<12} MESSAGE", "ID", "TIME", "AUTHOR");
    for c in rows(v) {
        println!(
            "{:<6} {:<20} {:<12} {}",
            s(&c["id"]),
            time(&c["created_at"]),
            s(&c["author"]),
            s(&c["message"])
        );
    }
}

pub fn groups(v: &Value) {
    println!("{:<40} DEVICES", "GROUP");
    for g in rows(v) {
        println!("{:<40} {}", s(&g["path"]), s(&g["devices"]));
    }
}

pub fn commit(v: &Value) {
    println!(
        "commit {}  {}  by {}",
        s(&v["id"]),
        time(&v["created_at"]),
        s(&v["author"])
    );
    println!("    {}", s(&v["message"]));
    let counts = &v["rollout"]["counts"];
    println!();
    println!(
        "rollout: {} converged, {} failed, {} pending, {} superseded",
        s(&counts["converged"]),
        s(&counts["failed"]),
        s(&counts["pending"]),
        s(&counts["superseded"])
    );
    for d in rows(&v["rollout"]["devices"]) {
        let failed: Vec<String> = rows(&d["failed_policies"]).iter().map(s).collect();
        let why = if failed.is_empty() {
            String::new()
        } else {
            format!(" ({})", failed.join(", "))
        };
        println!(
            "  {:<10} {} {}{why}",
            s(&d["state"]),
            short(&d["device_id"]),
            s(&d["device_name"])
        );
    }
    for c in rows(&v["changes"]) {
        println!();
        println!("{} {}:", s(&c["node"]), s(&c["policy"]));
        print!(
            "{}",
            apiary_proto::diff::render(&pretty(&c["before"]), &pretty(&c["after"]))
        );
    }
}

/// A document as indented JSON lines; an unset document as nothing.
fn pretty(doc: &Value) -> String {
    if doc.is_null() {
        String::new()
    } else {
        serde_json::to_string_pretty(doc).expect("JSON values serialise")
    }
}

pub fn drafts(v: &Value) {
    if rows(v).is_empty() {
        println!("no drafts");
    }
    for d in rows(v) {
        if d["draft"].is_null() {
            println!("{} {}: unset", s(&d["node"]), s(&d["policy"]));
        } else {
            println!("{} {}: {}", s(&d["node"]), s(&d["policy"]), d["draft"]);
        }
    }
}

pub fn audit(v: &Value) {
    println!(
        "{:<20} {:<12} {:<18} {:<24} DETAIL",
        "TIME", "ACTOR", "ACTION", "TARGET"
    );
    for e in rows(v) {
        let target: String = s(&e["target"]).chars().take(24).collect();
        println!(
            "{:<20} {:<12} {:<18} {:<24} {}",
            time(&e["time"]),
            s(&e["actor"]),
            s(&e["action"]),
            target,
            s(&e["detail"])
        );
    }
}

pub fn params(v: &Value) {
    println!("in force on {}:", s(&v["node"]));
    let effective = v["effective"].as_object().cloned().unwrap_or_default();
    if effective.is_empty() {
        println!("  (none)");
    }
    for (key, p) in effective {
        let kind = if p["secret"] == true { " (secret)" } else { "" };
        println!("  {key} = {}{kind}  from {}", s(&p["value"]), s(&p["from"]));
    }
}
