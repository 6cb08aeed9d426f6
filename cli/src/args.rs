//! The `apiary` command line as clap parses it: one enum per command group, one variant
//! per subcommand. Running them is `commands`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    pub server: String,
    /// API token (the admin token is in <data-dir>/admin.token)
    #[arg(long, env = "APIARY_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) to verify an https server with; default: the system CA bundle
    #[arg(long, env = "APIARY_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Devices' signed bundles, for devices with no network to the backend
    #[command(subcommand)]
    Bundles(BundlesCmd),
    /// A device's inventory: system, software, users, ports or processes (all kinds, with
    /// when each last changed, without KIND)
    Inventory {
        /// Device id, unique id prefix, or name
        device: String,
        /// system, software, users, ports or processes
        kind: Option<String>,
        /// Software: only packages whose name contains this
        #[arg(long)]
        search: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Devices of the fleet that have a package, or listen on a port
    Find {
        /// Packages whose name contains this
        #[arg(long, conflicts_with = "port", required_unless_present = "port")]
        package: Option<String>,
        /// Listening TCP or UDP port
        #[arg(long)]
        port: Option<u16>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Alerts, the rules that raise them, and the webhooks they are sent to
    #[command(subcommand)]
    Alerts(AlertsCmd),
    /// A device's metrics over a time range: each series' last, least, mean and greatest
    /// value, or every point with --points
    Metrics {
        /// Device id, unique id prefix, or name
        device: String,
        /// Start: DURATION ago (30m, 12h, 7d) or a unix time
        #[arg(long, default_value = "1h")]
        since: String,
        /// End: DURATION ago or a unix time (default now)
        #[arg(long)]
        until: Option<String>,
        /// Only these series (repeatable), e.g. cpu.user or fs.used:/data
        #[arg(long = "series")]
        series: Vec<String>,
        /// raw or hourly (default: raw for up to a week within raw retention)
        #[arg(long)]
        resolution: Option<String>,
        /// Print every point, one line per time
        #[arg(long)]
        points: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Args)]
pub struct JsonFlag {
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum KeysCmd {
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
pub enum DevicesCmd {
    /// List devices
    List {
        /// Only devices waiting for approval (paged: 100 at a time unless --limit says)
        #[arg(long)]
        pending: bool,
        /// At most this many devices (by name; up to 1000)
        #[arg(long)]
        limit: Option<u64>,
        /// Skip this many devices first (with --limit or --pending)
        #[arg(long, default_value_t = 0)]
        offset: u64,
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
    /// Approve a pending device, or reverse a rejection
    Approve { device: String },
    /// Reject a device: its certificate stops working, and it stays rejected if it enrols
    /// again, until approved or deleted
    Reject { device: String },
    /// Delete (decommission) a device with its reports and bundles; if it enrols again it
    /// is a new request
    Delete { device: String },
    /// Put a device in a group ("unassigned" for none); it converges at its next run
    Move { device: String, group: String },
}

#[derive(Subcommand)]
pub enum ParamsCmd {
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
pub enum GroupsCmd {
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
pub enum BundlesCmd {
    /// Write a device's signed bundle and every file it references as one archive, for
    /// `apiary-agent apply FILE` on the device
    Export {
        /// Device id, unique id prefix, or name
        device: String,
        /// Where to write the archive
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum FilesCmd {
    /// Upload a local file to the file manager
    Upload { local: PathBuf, remote: String },
    /// List files
    List(JsonFlag),
}

#[derive(Subcommand)]
pub enum ConfigCmd {
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
pub enum CommitsCmd {
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
pub enum DraftsCmd {
    /// List drafts
    List(JsonFlag),
    /// Throw drafts away: all of them, a node's, or one policy of a node
    Discard {
        node: Option<String>,
        policy: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum AlertsCmd {
    /// Open alerts (all, resolved ones too, with --all), newest first
    List {
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// The alert rules
    Rules(JsonFlag),
    /// Add a rule: one of --offline, --metric (with --above/--below) or --report
    AddRule(Box<RuleArgs>),
    /// Delete a rule and its alerts
    DeleteRule { id: i64 },
    /// The webhooks alerts are sent to, and how their deliveries stand
    Webhooks(JsonFlag),
    /// Send every alert that fires or resolves to URL as a JSON POST
    AddWebhook {
        url: String,
        /// Read a secret from stdin: deliveries are then signed (X-Apiary-Signature)
        #[arg(long)]
        secret_stdin: bool,
    },
    /// Stop sending alerts to a webhook
    DeleteWebhook { id: i64 },
}

#[derive(Args)]
pub struct RuleArgs {
    /// The rule's name, shown in its alerts
    pub name: String,
    /// Only devices in this group and below (default: the fleet)
    #[arg(long)]
    pub scope: Option<String>,
    /// A device offline for longer than DURATION (e.g. 15m)
    #[arg(long, value_name = "DURATION")]
    pub offline: Option<String>,
    /// A series (cpu.user, fs.used:/data) or a metric for each instance (fs.used)
    #[arg(long)]
    pub metric: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub above: Option<f64>,
    #[arg(long, allow_negative_numbers = true)]
    pub below: Option<f64>,
    /// Past the limit in every sample for DURATION (default: the latest sample)
    #[arg(long = "for", value_name = "DURATION")]
    pub r#for: Option<String>,
    /// Reports at this level or above: warning, error or critical
    #[arg(long, value_name = "LEVEL")]
    pub report: Option<String>,
    /// With --report: only this policy's reports
    #[arg(long)]
    pub policy: Option<String>,
    /// With --report: only reports whose message contains this
    #[arg(long)]
    pub text: Option<String>,
    /// With --report: resolved after DURATION without another (default 1h)
    #[arg(long, value_name = "DURATION")]
    pub quiet: Option<String>,
}
