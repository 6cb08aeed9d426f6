//! Parameters and secrets end to end: inheritance, `$(key)` and `{{key}}`, system values,
//! quoting into commands, redaction in reports, and secrets kept out of the store and API.

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

use apiary_tests::{Agent, Backend, bin};
use serde_json::json;

const SECRET: &str = "hunter2-very-secret";

#[test]
fn parameters_and_secrets_reach_the_device_and_nothing_else() {
    let backend = Backend::start();
    let agent = Agent::new("params-1");
    let id = backend.enroll(&agent, "/site/hall");
    let out = tempfile::tempdir().unwrap();

    backend.cli_ok(&["params", "set", "/", "broker", "mqtt.fleet"]);
    backend.cli_ok(&["params", "set", "/site", "broker", "mqtt.site"]);
    backend.cli_ok(&["params", "set", "/site", "port", "8883"]);
    backend.cli_ok(&[
        "params",
        "set",
        "/site",
        "outdir",
        out.path().to_str().unwrap(),
    ]);
    backend.cli_ok(&["params", "set", "/site", "quote", "it's; echo INJECTED"]);
    backend.cli_ok(&["params", "set", &id, "port", "1883"]);
    // The secret goes in on stdin, never on a command line.
    let mut set = Command::new(bin("apiary"))
        .args(["params", "set", "/site", "token", "--secret"])
        .env("APIARY_SERVER", &backend.operator_url)
        .env("APIARY_TOKEN", &backend.token)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(set.stdin.take().unwrap(), "{SECRET}").unwrap();
    assert!(set.wait().unwrap().success());

    backend.upload(
        "/configs/app.tmpl",
        b"broker={{broker}}\nport={{port}}\narch={{sys.arch}}\ntoken={{token}}\nlocal={{local}}\n",
    );
    backend.set_config(
        "/site",
        "file_distribution",
        &json!({"sets": [{
            "label": "app",
            "parameters": {"local": "at $(broker)"},
            "files": [{"source": "/configs/app.tmpl", "destination": "$(outdir)/$(sys.arch)/app.conf", "template": true}],
            "command": "echo token is $(token); echo $(quote)"
        }]}),
    );
    backend.cli_ok(&["commit", "-m", "parameters"]);

    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "{log}");
    let arch = std::env::consts::ARCH;
    let written = fs::read_to_string(out.path().join(arch).join("app.conf")).unwrap();
    assert_eq!(
        written,
        format!("broker=mqtt.site\nport=1883\narch={arch}\ntoken={SECRET}\nlocal=at mqtt.site\n"),
        "group overrides root, device overrides group, set parameters expand $(key)"
    );
    assert!(
        !log.contains(SECRET),
        "the agent's own log is redacted: {log}"
    );

    let device = backend.device(&id);
    let command = device["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["item"] == "app: command")
        .unwrap();
    let output = command["output"].as_str().unwrap();
    assert_eq!(
        output, "token is ********\nit's; echo INJECTED\n",
        "redacted, and quoting kept the value one word"
    );
    assert!(!device.to_string().contains(SECRET));

    // Nothing the API answers carries the secret.
    for args in [
        vec!["params", "show", "/site"],
        vec!["params", "show", id.as_str()],
        vec!["config", "show", "/site"],
        vec!["config", "show", id.as_str(), "--effective"],
        vec!["commits", "list"],
        vec!["commits", "show", "1"],
        vec!["audit"],
        vec!["drafts", "list"],
    ] {
        let shown = backend.cli_json(&args).to_string();
        assert!(
            !shown.contains(SECRET),
            "{args:?} revealed the secret: {shown}"
        );
    }
    let params = backend.cli_json(&["params", "show", &id]);
    assert_eq!(
        params["effective"]["token"],
        json!({"value": "(secret)", "secret": true, "from": "/site"})
    );
    assert_eq!(params["effective"]["port"]["from"], id);

    // Nor does the database: a copy of it alone reveals no secret.
    for file in ["apiary.db", "apiary.db-wal"] {
        let path = backend.data_dir().join(file);
        if let Ok(bytes) = fs::read(&path) {
            assert!(
                !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                "{file} holds the secret in plaintext"
            );
        }
    }
}

#[test]
fn bad_parameters_are_refused() {
    let backend = Backend::start();
    let agent = Agent::new("params-2");
    backend.enroll(&agent, "/p");
    let refused = |args: &[&str], want: &str| {
        let out = backend.cli(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(err.contains(want), "{args:?}: {err}");
    };
    refused(&["params", "set", "/p", "sys.host", "x"], "system values");
    refused(
        &["params", "set", "/p", "bad key", "x"],
        "must be 1 to 64 letters",
    );
    refused(&["params", "set", "/p", "k"], "a VALUE is needed");
    refused(
        &["params", "unset", "/p", "never-set"],
        "sets no parameter never-set",
    );
    // Plaintext cannot be smuggled in as a secret through a raw document.
    let file = backend.dir.path().join("p.json");
    fs::write(&file, r#"{"secrets": {"token": "plaintext"}}"#).unwrap();
    refused(
        &[
            "config",
            "set",
            "/p",
            "parameters",
            "--file",
            file.to_str().unwrap(),
        ],
        "is not sealed",
    );
}
