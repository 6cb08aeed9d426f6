//! Network facts: a real agent reports its interfaces at enrolment and at check-in, and the
//! backend and the dashboard show what `ip -j addr` shows on the same host (loopback left
//! out).

use std::process::Command;

use apiary_tests::dashboard_client::login;
use apiary_tests::{Agent, Backend, wait_child, wait_for};
use serde_json::{Value, json};

/// The host's interfaces, from iproute2's JSON output, in the shape the agent reports them.
fn interfaces_per_ip() -> Value {
    let out = Command::new("ip")
        .args(["-j", "addr", "show"])
        .output()
        .expect("ip (iproute2) runs; scripts/setup installs it");
    assert!(out.status.success());
    let links: Value = serde_json::from_slice(&out.stdout).expect("ip -j prints JSON");
    let list: Vec<Value> = links
        .as_array()
        .expect("a list of links")
        .iter()
        .filter(|l| l["link_type"] != "loopback")
        .map(|l| {
            let addresses: Vec<String> = l["addr_info"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
                .collect();
            // Tunnels show a zero or IPv4 "link address"; the agent reports none.
            let mac = l["address"]
                .as_str()
                .filter(|m| m.contains(':') && m.chars().any(|c| c != '0' && c != ':'));
            shape(
                &l["ifname"],
                mac,
                l["flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f == "UP")),
                addresses,
            )
        })
        .collect();
    sorted(list)
}

/// What the backend stored, in the same shape.
fn as_reported(network: &Value) -> Value {
    let list = network.as_array().expect("a network list");
    sorted(
        list.iter()
            .map(|i| {
                let addresses = i["addresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect();
                shape(&i["name"], i["mac"].as_str(), i["up"] == true, addresses)
            })
            .collect(),
    )
}

fn shape(name: &Value, mac: Option<&str>, up: bool, mut addresses: Vec<String>) -> Value {
    addresses.sort();
    json!({"name": name, "mac": mac, "up": up, "addresses": addresses})
}

fn sorted(mut list: Vec<Value>) -> Value {
    list.sort_by_key(|i| i["name"].as_str().unwrap().to_string());
    Value::Array(list)
}

#[test]
fn the_backend_shows_the_interfaces_the_host_has() {
    let backend = Backend::start();
    let expected = interfaces_per_ip();
    assert!(
        !expected.as_array().unwrap().is_empty(),
        "the host has an interface besides loopback"
    );

    // Reported at enrolment, so the pending page shows the device's own addresses.
    let pending_agent = Agent::new("net-pending");
    let mut waiting = backend.start_enrolment(&pending_agent, None);
    let pending = wait_for(|| {
        let list = backend.cli_json(&["devices", "list", "--pending"]);
        list.as_array()?.first().cloned()
    });
    assert_eq!(as_reported(&pending["facts"]["network"]), expected);
    let mut admin = login(&backend, "admin", &backend.dashboard_password);
    let (_, page) = admin.get("/pending");
    let routable = expected
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["addresses"].as_array().unwrap().clone())
        .find(|a| !a.as_str().unwrap().starts_with("fe80:"));
    if let Some(address) = routable {
        assert!(page.contains(address.as_str().unwrap()), "{page}");
    }
    backend.cli_ok(&["devices", "reject", pending["id"].as_str().unwrap()]);
    wait_child(&mut waiting);

    // Refreshed at check-in, with the address the check-in came from.
    let agent = Agent::new("net-1");
    let id = backend.enroll(&agent, "/lab");
    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "{log}");
    let device = backend.device(&id);
    assert_eq!(as_reported(&device["facts"]["network"]), expected);
    assert_eq!(device["remote_ip"], "127.0.0.1");
    assert!(
        agent.state_dir().join("network-sent.json").exists(),
        "the acknowledged list is remembered, so idle check-ins leave it out"
    );

    let (_, page) = admin.get(&format!("/devices/{id}"));
    let first = &expected[0];
    assert!(page.contains("id=\"device-network\""), "{page}");
    assert!(page.contains(first["name"].as_str().unwrap()), "{page}");
    for address in first["addresses"].as_array().unwrap() {
        assert!(page.contains(address.as_str().unwrap()), "{page}");
    }
}
