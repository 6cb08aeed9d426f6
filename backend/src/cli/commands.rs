//! The `apiary` command line: parsing and running each command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use super::client::{Client, ClientError, encode};
use super::output;

/// Apiary operator CLI.
#[derive(Parser)]
#[command(name = "apiary", version, about = "Apiary operator CLI")]
pub struct Cli {
    /// Operator API URL
    #[arg(
        long,
        env = "APIARY_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    server: String,
    /// API token (the admin token is in <data-dir>/admin.token)
    #[arg(long, env = "APIARY_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// CA certificate (PEM) to verify an https server with; default: the system CA bundle
    #[arg(long, env = "APIARY_CA_CERT", global = true)]
    ca_cert: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Keys devices enrol with
    #[command(subcommand)]
    BootstrapKeys(KeysCmd),
    /// Enrolled and pending devices
    #[command(subcommand)]
    Devices(DevicesCmd),
    /// The device tree
    #[command(subcommand)]
    Groups(GroupsCmd),
    /// Parameters for $(key) and {{key}}, per node, inherited down the tree
    #[command(subcommand)]
    Params(ParamsCmd),
    /// The file manager
    #[command(subcommand)]
    Files(FilesCmd),
    /// Policy configuration of a node (group path like /prod/oslo, or a device id)
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Make every draft active and recompile the impacted devices' bundles
    Commit {
        /// What the change is for
        #[arg(short, long)]
        message: String,
        /// Only list what would change
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Committed change sets
    #[command(subcommand)]
    Commits(CommitsCmd),
    /// Uncommitted configuration changes
    #[command(subcommand)]
    Drafts(DraftsCmd),
    /// Who did what: every operator action, newest first
    Audit {
        /// Only actions by this token name
        #[arg(long)]
        actor: Option<String>,
        /// Only this action, e.g. device.approve, commit, config.set
        #[arg(long)]
        action: Option<String>,
        /// Only targets starting with this (a device id, a group path, a commit id)
        #[arg(long)]
        target: Option<String>,
        /// Only the last DURATION (e.g. 30m, 12h, 7d) or since a unix time
        #[arg(long)]
        since: Option<String>,
        /// At most this many entries
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Print the CA certificate agents pin (for `apiary-agent bootstrap --ca-cert`)
    Ca,
}

#[derive(Args)]
struct JsonFlag {
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Create a key and print it (it is not shown again)
    Create {
        /// Group new devices land in (default: unassigned)
        #[arg(long)]
        group: Option<String>,
        /// Approve devices enrolling with this key without an operator
        #[arg(long)]
        auto_accept: bool,
    },
    /// List keys
    List(JsonFlag),
    /// Revoke a key: devices can no longer enrol with it
    Revoke { id: i64 },
}

#[derive(Subcommand)]
enum DevicesCmd {
    /// List devices
    List {
        /// Only devices waiting for approval
        #[arg(long)]
        pending: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show a device: facts, last check-in, applied commit, recent reports
    Show {
        /// Device id, a unique id prefix, or the device name
        device: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Approve a pending device
    Approve { device: String },
    /// Reject a device
    Reject { device: String },
    /// Put a device in a group ("unassigned" for none); it converges at its next run
    Move { device: String, group: String },
}

#[derive(Subcommand)]
enum ParamsCmd {
    /// Draft a parameter on a node; a secret without VALUE is read from stdin
    Set {
        node: String,
        key: String,
        value: Option<String>,
        /// Store sealed, never show it again, and keep it out of device reports
        #[arg(long)]
        secret: bool,
    },
    /// Draft removing a node's own parameter
    Unset { node: String, key: String },
    /// Show a node's own parameters and those in force on it, with where each comes from
    Show {
        node: String,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand)]
enum GroupsCmd {
    /// List groups with the number of devices directly in each
    List(JsonFlag),
    /// Create a group (and missing ancestors)
    Create { path: String },
    /// Rename a group, e.g. /lab/old to /lab/new; subgroups, devices and configuration follow
    Rename { from: String, to: String },
    /// Move a group under another parent, keeping its name
    Move { path: String, parent: String },
    /// Delete an empty group
    Delete { path: String },
}

#[derive(Subcommand)]
enum FilesCmd {
    /// Upload a local file to the file manager
    Upload { local: PathBuf, remote: String },
    /// List files
    List(JsonFlag),
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Draft a policy document for a node
    Set {
        node: String,
        policy: String,
        /// JSON document (- for stdin)
        #[arg(long)]
        file: PathBuf,
    },
    /// Draft removing a node's own document for a policy (it inherits again)
    Unset { node: String, policy: String },
    /// Show a node's own active and draft documents, or with --effective what applies to it
    Show {
        node: String,
        /// What is in force on the node and where each part comes from
        #[arg(long)]
        effective: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand)]
enum CommitsCmd {
    /// List commits, newest first
    List(JsonFlag),
    /// Show a commit: author, time, message and a diff of every change
    Show {
        id: i64,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Make a new commit that restores what commit ID changed to its state before ID
    Revert {
        id: i64,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand)]
enum DraftsCmd {
    /// List drafts
    List(JsonFlag),
    /// Throw drafts away: all of them, a node's, or one policy of a node
    Discard {
        node: Option<String>,
        policy: Option<String>,
    },
}

/// Parses the command line, runs it, and returns the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), ClientError> {
    let token = cli.token.clone().ok_or_else(|| {
        ClientError::Usage("no API token: pass --token or set APIARY_TOKEN (the admin token is in <data-dir>/admin.token)".into())
    })?;
    let roots = match &cli.ca_cert {
        Some(p) => std::fs::read(p)
            .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", p.display())))?,
        None => system_roots(),
    };
    let c = Client::new(&cli.server, token.trim(), &roots)?;
    match cli.command {
        Command::BootstrapKeys(cmd) => match cmd {
            KeysCmd::Create { group, auto_accept } => {
                let created = c.post(
                    "/bootstrap-keys",
                    &json!({"group": group, "auto_accept": auto_accept}),
                )?;
                println!("{}", created["key"].as_str().unwrap_or_default());
            }
            KeysCmd::List(j) => output::print(&c.get("/bootstrap-keys")?, j.json, output::keys),
            KeysCmd::Revoke { id } => {
                c.delete(&format!("/bootstrap-keys/{id}"))?;
                eprintln!("bootstrap key {id} revoked");
            }
        },
        Command::Devices(cmd) => match cmd {
            DevicesCmd::List { pending, json } => {
                let path = if pending {
                    "/devices?status=pending"
                } else {
                    "/devices"
                };
                output::print(&c.get(path)?, json.json, output::devices);
            }
            DevicesCmd::Show { device, json } => {
                let id = resolve_device(&c, &device)?;
                output::print(
                    &c.get(&format!("/devices/{id}"))?,
                    json.json,
                    output::device,
                );
            }
            DevicesCmd::Approve { device } => {
                let id = resolve_device(&c, &device)?;
                let d = c.post(&format!("/devices/{id}/approve"), &json!({}))?;
                eprintln!(
                    "device {} ({}) approved",
                    id,
                    d["name"].as_str().unwrap_or_default()
                );
            }
            DevicesCmd::Reject { device } => {
                let id = resolve_device(&c, &device)?;
                c.post(&format!("/devices/{id}/reject"), &json!({}))?;
                eprintln!("device {id} rejected");
            }
            DevicesCmd::Move { device, group } => {
                let id = resolve_device(&c, &device)?;
                let target = (group != "unassigned").then_some(group.as_str());
                let moved = c.post(&format!("/devices/{id}/move"), &json!({"group": target}))?;
                let note = if moved["new_bundle"] == true {
                    "; it gets a new bundle"
                } else {
                    ""
                };
                eprintln!("device {id} moved to {group}{note}");
            }
        },
        Command::Params(cmd) => match cmd {
            ParamsCmd::Set {
                node,
                key,
                value,
                secret,
            } => {
                let value = match (value, secret) {
                    (Some(v), _) => v,
                    (None, true) => read_secret()?,
                    (None, false) => {
                        return Err(ClientError::Usage(
                            "a VALUE is needed (only --secret reads stdin)".into(),
                        ));
                    }
                };
                let node = resolve_node(&c, &node)?;
                let path = format!(
                    "/parameters/{}?node={}",
                    encode(&key, false),
                    encode(&node, false)
                );
                c.put_json(&path, &json!({"value": value, "secret": secret}))?;
                let kind = if secret { "secret" } else { "parameter" };
                eprintln!("drafted {kind} {key} on {node}; commit to make it active");
            }
            ParamsCmd::Unset { node, key } => {
                let node = resolve_node(&c, &node)?;
                c.delete(&format!(
                    "/parameters/{}?node={}",
                    encode(&key, false),
                    encode(&node, false)
                ))?;
                eprintln!("drafted removing {key} from {node}; commit to make it active");
            }
            ParamsCmd::Show { node, json } => {
                let node = resolve_node(&c, &node)?;
                output::print(
                    &c.get(&format!("/parameters?node={}", encode(&node, false)))?,
                    json.json,
                    output::params,
                );
            }
        },
        Command::Groups(cmd) => match cmd {
            GroupsCmd::List(j) => output::print(&c.get("/groups")?, j.json, output::groups),
            GroupsCmd::Create { path } => {
                let created = c.post("/groups", &json!({"path": path}))?;
                eprintln!(
                    "group {} created",
                    created["path"].as_str().unwrap_or_default()
                );
            }
            GroupsCmd::Rename { from, to } => rename_group(&c, &from, &to)?,
            GroupsCmd::Move { path, parent } => {
                let name = path
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or_default();
                let to = format!("{}/{name}", parent.trim_end_matches('/'));
                rename_group(&c, &path, &to)?;
            }
            GroupsCmd::Delete { path } => {
                c.delete(&format!("/groups?path={}", encode(&path, false)))?;
                eprintln!("group {path} deleted");
            }
        },
        Command::Files(cmd) => match cmd {
            FilesCmd::Upload { local, remote } => {
                let file = std::fs::File::open(&local).map_err(|e| {
                    ClientError::Usage(format!("cannot open {}: {e}", local.display()))
                })?;
                let remote = format!("/{}", remote.trim_start_matches('/'));
                let entry = c.put_file(&format!("/files{}", encode(&remote, true)), &file)?;
                eprintln!(
                    "uploaded {} ({} bytes, sha256 {})",
                    entry["path"].as_str().unwrap_or_default(),
                    entry["size"],
                    entry["sha256"].as_str().unwrap_or_default()
                );
            }
            FilesCmd::List(j) => output::print(&c.get("/files")?, j.json, output::files),
        },
        Command::Config(cmd) => match cmd {
            ConfigCmd::Set { node, policy, file } => {
                let text = if file.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin())
                        .map_err(|e| ClientError::Usage(format!("reading stdin: {e}")))?
                } else {
                    std::fs::read_to_string(&file).map_err(|e| {
                        ClientError::Usage(format!("cannot read {}: {e}", file.display()))
                    })?
                };
                let body: Value = serde_json::from_str(&text).map_err(|e| {
                    ClientError::Usage(format!("{} is not valid JSON: {e}", file.display()))
                })?;
                let node = resolve_node(&c, &node)?;
                c.put_json(
                    &format!(
                        "/config/{}?node={}",
                        encode(&policy, false),
                        encode(&node, false)
                    ),
                    &body,
                )?;
                eprintln!("drafted {policy} on {node}; `apiary commit -m MESSAGE` makes it active");
            }
            ConfigCmd::Unset { node, policy } => {
                let node = resolve_node(&c, &node)?;
                c.delete(&format!(
                    "/config/{}?node={}",
                    encode(&policy, false),
                    encode(&node, false)
                ))?;
                eprintln!("drafted removing {policy} from {node}; commit to make it active");
            }
            ConfigCmd::Show {
                node,
                effective,
                json,
            } => {
                let node = resolve_node(&c, &node)?;
                let shown = c.get(&format!("/config?node={}", encode(&node, false)))?;
                if effective {
                    output::print(&shown["effective"], json.json, output::effective);
                } else {
                    output::print(&shown, json.json, output::config);
                }
            }
        },
        Command::Commit {
            message,
            dry_run,
            json,
        } => {
            let outcome = c.post("/commits", &json!({"message": message, "dry_run": dry_run}))?;
            output::print(&outcome, json.json, output::commit_outcome);
        }
        Command::Commits(CommitsCmd::List(j)) => {
            output::print(&c.get("/commits")?, j.json, output::commits)
        }
        Command::Commits(CommitsCmd::Show { id, json }) => output::print(
            &c.get(&format!("/commits/{id}"))?,
            json.json,
            output::commit,
        ),
        Command::Commits(CommitsCmd::Revert { id, json }) => {
            let outcome = c.post(&format!("/commits/{id}/revert"), &json!({}))?;
            output::print(&outcome, json.json, output::commit_outcome);
        }
        Command::Drafts(DraftsCmd::List(j)) => {
            output::print(&c.get("/drafts")?, j.json, output::drafts)
        }
        Command::Drafts(DraftsCmd::Discard { node, policy }) => {
            let mut query = Vec::new();
            if let Some(n) = &node {
                query.push(format!("node={}", encode(&resolve_node(&c, n)?, false)));
            }
            if let Some(p) = &policy {
                query.push(format!("policy={}", encode(p, false)));
            }
            let path = if query.is_empty() {
                "/drafts".to_string()
            } else {
                format!("/drafts?{}", query.join("&"))
            };
            let r = c.delete(&path)?;
            eprintln!("{} draft(s) discarded", r["discarded"]);
        }
        Command::Audit {
            actor,
            action,
            target,
            since,
            limit,
            json,
        } => {
            let mut query = vec![format!("limit={limit}")];
            for (key, value) in [("actor", actor), ("action", action), ("target", target)] {
                if let Some(v) = value {
                    query.push(format!("{key}={}", encode(&v, false)));
                }
            }
            if let Some(s) = since {
                query.push(format!("since={}", parse_since(&s)?));
            }
            output::print(
                &c.get(&format!("/audit?{}", query.join("&")))?,
                json.json,
                output::audit,
            );
        }
        Command::Ca => print!("{}", c.get_text("/ca")?),
    }
    Ok(())
}

/// One line from stdin, without its line ending: secrets stay out of shell history.
fn read_secret() -> Result<String, ClientError> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| ClientError::Usage(format!("reading the secret from stdin: {e}")))?;
    let value = line.trim_end_matches(['\n', '\r']).to_string();
    if value.is_empty() {
        return Err(ClientError::Usage("no secret on stdin".into()));
    }
    Ok(value)
}

/// `30m`, `12h`, `7d` ago, or a unix time, as unix seconds.
fn parse_since(text: &str) -> Result<i64, ClientError> {
    let bad = || {
        ClientError::Usage(format!(
            "--since {text:?}: use e.g. 30m, 12h, 7d or a unix time"
        ))
    };
    if let Ok(unix) = text.parse::<i64>() {
        return Ok(unix);
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(bad()),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Ok(now - seconds)
}

fn rename_group(c: &Client, from: &str, to: &str) -> Result<(), ClientError> {
    let r = c.post("/groups/rename", &json!({"from": from, "to": to}))?;
    eprintln!(
        "group {from} is now {to}; {} device(s) got a new bundle",
        r["devices_with_new_bundle"]
    );
    Ok(())
}

/// Group paths pass through; anything else names a device.
fn resolve_node(c: &Client, node: &str) -> Result<String, ClientError> {
    if node.starts_with('/') {
        Ok(node.to_string())
    } else {
        resolve_device(c, node)
    }
}

/// Accepts a full id, a unique id prefix, or a unique device name.
fn resolve_device(c: &Client, text: &str) -> Result<String, ClientError> {
    if apiary_proto::digest::is_sha256_hex(text) {
        return Ok(text.to_string());
    }
    let devices = c.get("/devices")?;
    let all = devices.as_array().cloned().unwrap_or_default();
    let id_of = |d: &Value| d["id"].as_str().unwrap_or_default().to_string();
    let by_name: Vec<String> = all
        .iter()
        .filter(|d| d["name"] == text)
        .map(id_of)
        .collect();
    let by_prefix: Vec<String> = all
        .iter()
        .map(id_of)
        .filter(|id| id.starts_with(text))
        .collect();
    let matches = if by_name.is_empty() {
        by_prefix
    } else {
        by_name
    };
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ClientError::Usage(format!(
            "no device with id prefix or name {text:?}"
        ))),
        many => Err(ClientError::Usage(format!(
            "{text:?} matches {} devices; give more of the id",
            many.len()
        ))),
    }
}

fn system_roots() -> Vec<u8> {
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ]
    .iter()
    .find_map(|p| std::fs::read(p).ok())
    .unwrap_or_default()
}
