//! Alert rules end to end: a real backend evaluating them against a real agent's check-ins
//! and metrics, alerts firing and resolving, and each change delivered to a webhook
//! receiver on loopback as a signed JSON POST, retried after the receiver's failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use apiary_tests::{Agent, Backend, wait_for};
use serde_json::Value;

/// One request the receiver got: its headers (lowercased names) and body.
#[derive(Clone, Debug)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
    answered: u16,
}

/// An HTTP receiver on loopback that answers 500 to the first `fail_first` requests and
/// 204 to the rest.
fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let url = format!(
        "http://{}/hooks/apiary",
        listener.local_addr().expect("addr")
    );
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let log = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream);
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.push((k.trim().to_lowercase(), v.trim().to_string()));
                }
            }
            let length: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let mut log = log.lock().expect("log");
            let answered = if log.len() < fail_first { 500 } else { 204 };
            log.push(Received {
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
                answered,
            });
            let reason = if answered == 500 {
                "Internal Server Error"
            } else {
                "No Content"
            };
            let _ = write!(
                reader.get_mut(),
                "HTTP/1.1 {answered} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, got)
}

fn header<'a>(r: &'a Received, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn delivered(got: &Mutex<Vec<Received>>, event: &str) -> Option<(Received, Value)> {
    got.lock().expect("log").iter().find_map(|r| {
        let body: Value = serde_json::from_str(&r.body).ok()?;
        (r.answered == 204 && body["event"] == event).then(|| (r.clone(), body))
    })
}

#[test]
fn alerts_fire_resolve_and_reach_a_webhook() {
    let mut backend = Backend::start();
    backend.extra_args = vec!["--alert-interval".into(), "1".into()];
    backend.restart();
    let (url, got) = receiver(1);
    const SECRET: &str = "a-webhook-secret-of-some-length";
    let mut add = std::process::Command::new(apiary_tests::bin("apiary"))
        .args(["alerts", "add-webhook", &url, "--secret-stdin"])
        .env("APIARY_SERVER", &backend.operator_url)
        .env("APIARY_TOKEN", &backend.token)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("apiary runs");
    writeln!(add.stdin.take().expect("stdin"), "{SECRET}").expect("write the secret");
    assert!(add.wait().expect("exits").success());

    let agent = Agent::new("sensor-1");
    let id = backend.enroll(&agent, "/lab");
    assert_eq!(agent.run_once().0, 0);

    // Any mounted disk is more than 0.001 % used: the metric rule fires at once.
    backend.cli_ok(&[
        "alerts", "add-rule", "disk", "--metric", "fs.used", "--above", "0.001",
    ]);
    backend.cli_ok(&[
        "alerts",
        "add-rule",
        "silent",
        "--offline",
        "60s",
        "--scope",
        "/lab",
    ]);
    let bad = backend.cli(&[
        "alerts",
        "add-rule",
        "x",
        "--metric",
        "cpu.bogus",
        "--above",
        "1",
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("is not a metric"),
        "{bad:?}"
    );

    let disk = wait_for(|| {
        let open = backend.cli_json(&["alerts", "list"]);
        open.as_array()?
            .iter()
            .find(|a| a["rule"] == "disk")
            .cloned()
    });
    assert_eq!(disk["device_id"], id.as_str());
    assert!(
        disk["subject"].as_str().unwrap().starts_with("fs.used:"),
        "{disk}"
    );
    assert!(
        disk["message"]
            .as_str()
            .unwrap()
            .starts_with("disk: sensor-1: fs.used:"),
        "{disk}"
    );

    // The first delivery was refused (500): the retry comes, signed, with the documented body.
    let (request, body) = wait_for(|| delivered(&got, "alert.fired"));
    assert!(
        got.lock().unwrap()[0].answered == 500,
        "the first attempt failed"
    );
    assert_eq!(body["alert"]["rule"], "disk");
    assert_eq!(body["alert"]["device_name"], "sensor-1");
    assert!(body["alert"]["fired_at"].as_i64().is_some() && body["alert"]["resolved_at"].is_null());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let mac = ring::hmac::sign(&key, request.body.as_bytes());
    let hex: String = mac.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        header(&request, "x-apiary-signature"),
        Some(format!("sha256={hex}").as_str())
    );
    assert_eq!(header(&request, "content-type"), Some("application/json"));

    // Silent for a minute: the offline rule fires; a check-in resolves it.
    let silent = wait_for(|| {
        let open = backend.cli_json(&["alerts", "list"]);
        open.as_array()?
            .iter()
            .find(|a| a["rule"] == "silent")
            .cloned()
    });
    assert!(
        silent["message"]
            .as_str()
            .unwrap()
            .contains("has not checked in"),
        "{silent}"
    );
    assert_eq!(agent.run_once().0, 0);
    let resolved = wait_for(|| {
        let all = backend.cli_json(&["alerts", "list", "--all"]);
        all.as_array()?
            .iter()
            .find(|a| a["rule"] == "silent" && a["resolved_at"].is_i64())
            .cloned()
    });
    assert!(resolved["resolved_at"].as_i64() >= resolved["fired_at"].as_i64());
    let (_, body) = wait_for(|| delivered(&got, "alert.resolved"));
    assert_eq!(body["alert"]["rule"], "silent");

    let text = backend.cli_ok(&["alerts", "webhooks"]);
    assert!(text.contains("yes") && text.contains(&url), "{text}");
    let open = backend.cli_ok(&["alerts", "list"]);
    assert!(open.contains("disk") && !open.contains("silent"), "{open}");
    let audit = backend.cli_ok(&["audit", "--action", "alert_rule.add"]);
    assert!(
        audit.contains("disk") && audit.contains("silent"),
        "{audit}"
    );
}
