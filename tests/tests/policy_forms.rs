//! Policy forms over plain HTTP against a real backend and a real agent: a secret typed into
//! the parameters form is sealed and reaches the device's template; password hashes and
//! secrets shown masked and submitted back unchanged keep their stored values, on the node
//! that sets them and on one that breaks inheritance. (The browser test drives the forms.)

use apiary_tests::dashboard_client::{Client, csrf, login};
use apiary_tests::{Agent, Backend};
use serde_json::{Value, json};

/// Submits a policy form for `node`: status, redirect `Location` and body.
fn submit(
    client: &mut Client,
    node: &str,
    policy: &str,
    inputs: &[(&str, &str)],
) -> (u16, String, String) {
    let (_, page) = client.get(&format!("/configure?node={node}"));
    let token = csrf(&page);
    let mut form = vec![("csrf", token.as_str()), ("node", node), ("policy", policy)];
    form.extend_from_slice(inputs);
    client.post("/configure/form", &form)
}

/// Submits a policy form that must be accepted.
fn submit_ok(client: &mut Client, node: &str, policy: &str, inputs: &[(&str, &str)]) {
    let (status, location, body) = submit(client, node, policy, inputs);
    assert_eq!(status, 303, "{body}");
    assert!(
        location.contains("draft%20saved"),
        "{policy} on {node}: {location}"
    );
}

fn dry_run(backend: &Backend) -> Value {
    backend.cli_json(&["commit", "-m", "check", "--dry-run"])
}

#[test]
fn form_secrets_are_sealed_and_masks_keep_stored_values() {
    let backend = Backend::start();
    let agent = Agent::new("forms-1");
    let id = backend.enroll(&agent, "/lab");
    let mut admin = login(&backend, "admin", &backend.dashboard_password);

    // A secret typed into the form is never shown again, yet reaches the template.
    submit_ok(
        &mut admin,
        "/lab",
        "parameters",
        &[
            ("f.values.0.k", "site"),
            ("f.values.0.v", "the lab"),
            ("f.secrets.0.k", "token"),
            ("f.secrets.0.v", "s3cret value"),
            ("f.secrets.1.k", ""),
            ("f.secrets.1.v", ""),
        ],
    );
    let shown = backend.cli_json(&["config", "show", "/lab"]).to_string();
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("(secret)"), "{shown}");
    backend.upload("/t/creds.tmpl", b"{{site}}:{{token}}\n");
    let file = agent.root("etc/creds");
    backend.set_config(
        "/lab",
        "file_distribution",
        &json!({"sets": [{"files": [{"source": "/t/creds.tmpl", "destination": file, "template": true}]}]}),
    );
    backend.cli_ok(&["commit", "-m", "secrets"]);
    assert_eq!(agent.run_once().0, 0);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "the lab:s3cret value\n"
    );

    // Passwords are committed but never applied: the agent here runs on the host, whose
    // accounts a test must not touch (tests/tests/system_policies.rs applies them in a
    // throw-away root).
    backend.set_config(
        "/lab",
        "passwords",
        &json!({"items": [{"user": "appuser", "password": "first password"}]}),
    );
    backend.cli_ok(&["commit", "-m", "passwords"]);

    // The page shows the hash and the secret masked; sending the masks back changes nothing.
    let (_, page) = admin.get("/configure?node=/lab");
    assert!(
        page.contains("id=\"f-items-0-hash\" value=\"(secret)\""),
        "the passwords form shows the mask"
    );
    assert!(!page.contains("$6$"), "no hash on the page");
    submit_ok(
        &mut admin,
        "/lab",
        "passwords",
        &[
            ("f.items.0.user", "appuser"),
            ("f.items.0.hash", "(secret)"),
            ("f.items.0.password", ""),
        ],
    );
    submit_ok(
        &mut admin,
        "/lab",
        "parameters",
        &[
            ("f.values.0.k", "site"),
            ("f.values.0.v", "the lab"),
            ("f.secrets.0.k", "token"),
            ("f.secrets.0.v", ""),
            ("f.secrets.0._kept", "1"),
        ],
    );
    // The device breaks inheritance with the form it was shown (the group's items).
    submit_ok(
        &mut admin,
        &id,
        "passwords",
        &[
            ("f.items.0.user", "appuser"),
            ("f.items.0.hash", "(secret)"),
        ],
    );
    let drafts = backend.cli_json(&["drafts", "list"]);
    assert_eq!(drafts.as_array().map(Vec::len), Some(3), "{drafts}");
    let dry = dry_run(&backend);
    assert_eq!(dry["impacted"], json!([]), "masks kept every value: {dry}");

    // A mask with nothing stored behind it is refused, naming the account; the page comes
    // back with the form as it was filled in.
    let (status, _, page) = submit(
        &mut admin,
        "/lab",
        "passwords",
        &[("f.items.0.user", "nobody"), ("f.items.0.hash", "(secret)")],
    );
    assert_eq!(status, 400);
    assert!(
        page.contains("the password hash of nobody is the mask (secret) but nothing is stored"),
        "{page}"
    );
    assert!(
        page.contains("id=\"f-items-0-user\" value=\"nobody\""),
        "the refused input is kept"
    );

    // A typed password replaces the hash: the device's bundle changes.
    submit_ok(
        &mut admin,
        "/lab",
        "passwords",
        &[
            ("f.items.0.user", "appuser"),
            ("f.items.0.hash", "(secret)"),
            ("f.items.0.password", "second password"),
        ],
    );
    backend.cli_ok(&["drafts", "discard", &id]);
    let dry = dry_run(&backend);
    assert_eq!(
        dry["impacted"][0]["policies"],
        json!(["passwords"]),
        "{dry}"
    );
}
