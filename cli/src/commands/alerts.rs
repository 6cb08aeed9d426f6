//! `apiary alerts`: alerts, their rules and the webhooks they go to.

use std::io::Read;

use serde_json::{Value, json};

use super::audit::parse_duration;
use crate::args::{AlertsCmd, RuleArgs};
use crate::client::{Client, ClientError};
use crate::output::{self, rows, s, time};

pub fn run(c: &Client, cmd: AlertsCmd) -> Result<(), ClientError> {
    match cmd {
        AlertsCmd::List { all, json } => {
            let path = if all { "/alerts?state=all" } else { "/alerts" };
            output::print(&c.get(path)?, json.json, alerts);
        }
        AlertsCmd::Rules(json) => output::print(&c.get("/alert-rules")?, json.json, rules),
        AlertsCmd::AddRule(args) => {
            let body = rule_body(&args)?;
            let rule = c.post("/alert-rules", &body)?;
            println!("alert rule {} added ({})", s(&rule["id"]), s(&rule["name"]));
        }
        AlertsCmd::DeleteRule { id } => {
            c.delete(&format!("/alert-rules/{id}"))?;
            println!("alert rule {id} deleted");
        }
        AlertsCmd::Webhooks(json) => output::print(&c.get("/webhooks")?, json.json, webhooks),
        AlertsCmd::AddWebhook { url, secret_stdin } => {
            let mut body = json!({ "url": url });
            if secret_stdin {
                let mut secret = String::new();
                std::io::stdin().read_to_string(&mut secret).map_err(|e| {
                    ClientError::Usage(format!("reading the secret from stdin: {e}"))
                })?;
                body["secret"] = Value::from(secret.trim_end_matches(['\n', '\r']));
            }
            let hook = c.post("/webhooks", &body)?;
            println!("webhook {} added ({})", s(&hook["id"]), s(&hook["url"]));
        }
        AlertsCmd::DeleteWebhook { id } => {
            c.delete(&format!("/webhooks/{id}"))?;
            println!("webhook {id} deleted");
        }
    }
    Ok(())
}

/// The rule the flags describe, as the API takes it.
fn rule_body(a: &RuleArgs) -> Result<Value, ClientError> {
    let rule = match (&a.offline, &a.metric, &a.report) {
        (Some(after), None, None) => {
            json!({"kind": "offline", "for_seconds": parse_duration(after)?})
        }
        (None, Some(metric), None) => {
            let mut r = json!({"kind": "metric", "metric": metric});
            if let Some(v) = a.above {
                r["above"] = json!(v);
            }
            if let Some(v) = a.below {
                r["below"] = json!(v);
            }
            if let Some(d) = &a.r#for {
                r["for_seconds"] = json!(parse_duration(d)?);
            }
            r
        }
        (None, None, Some(level)) => {
            let mut r = json!({"kind": "report", "min_level": level});
            if let Some(p) = &a.policy {
                r["policy"] = json!(p);
            }
            if let Some(t) = &a.text {
                r["text"] = json!(t);
            }
            if let Some(q) = &a.quiet {
                r["quiet_seconds"] = json!(parse_duration(q)?);
            }
            r
        }
        _ => {
            return Err(ClientError::Usage(
                "give exactly one of --offline DURATION, --metric SERIES or --report LEVEL".into(),
            ));
        }
    };
    let mut body = json!({"name": a.name, "rule": rule});
    if let Some(scope) = &a.scope {
        body["scope"] = json!(scope);
    }
    Ok(body)
}

fn alerts(v: &Value) {
    println!(
        "{:<6} {:<20} {:<20} {:<20} {:<24} MESSAGE",
        "ID", "FIRED", "RESOLVED", "DEVICE", "SUBJECT"
    );
    for a in rows(v) {
        println!(
            "{:<6} {:<20} {:<20} {:<20} {:<24} {}",
            s(&a["id"]),
            time(&a["fired_at"]),
            time(&a["resolved_at"]),
            s(&a["device_name"]),
            s(&a["subject"]),
            s(&a["message"])
        );
    }
}

fn rules(v: &Value) {
    println!("{:<5} {:<24} {:<16} RULE", "ID", "NAME", "SCOPE");
    for r in rows(v) {
        let scope = r["scope"].as_str().unwrap_or("(fleet)");
        println!(
            "{:<5} {:<24} {:<16} {}",
            s(&r["id"]),
            s(&r["name"]),
            scope,
            r["spec"]
        );
    }
}

fn webhooks(v: &Value) {
    println!("{:<5} {:<8} URL", "ID", "SIGNED");
    for h in rows(&v["webhooks"]) {
        let signed = if h["signed"] == true { "yes" } else { "no" };
        println!("{:<5} {signed:<8} {}", s(&h["id"]), s(&h["url"]));
    }
    let d = &v["deliveries"];
    println!(
        "deliveries: {} pending, {} delivered, {} given up{}",
        s(&d["pending"]),
        s(&d["delivered"]),
        s(&d["failed"]),
        d["last_error"]
            .as_str()
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default()
    );
}
