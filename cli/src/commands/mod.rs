//! Running each `apiary` command: one module per command group, one function per
//! subcommand, each a thin call of the operator API and a print of its answer.

mod alerts;
mod audit;
mod bootstrap_keys;
mod bundles;
mod commits;
mod config;
mod devices;
mod drafts;
mod files;
mod groups;
mod monitoring;
mod params;

use apiary_proto::tls_client;

use crate::args::{Cli, Command};
use crate::client::{Client, ClientError};

/// Connects with the command line's server, token and CA, then runs its command.
pub fn run(cli: Cli) -> Result<(), ClientError> {
    let c = connect(&cli)?;
    match cli.command {
        Command::BootstrapKeys(cmd) => bootstrap_keys::run(&c, cmd),
        Command::Devices(cmd) => devices::run(&c, cmd),
        Command::Groups(cmd) => groups::run(&c, cmd),
        Command::Params(cmd) => params::run(&c, cmd),
        Command::Files(cmd) => files::run(&c, cmd),
        Command::Config(cmd) => config::run(&c, cmd),
        Command::Commit {
            message,
            dry_run,
            json,
        } => commits::commit(&c, &message, dry_run, json.json),
        Command::Commits(cmd) => commits::run(&c, cmd),
        Command::Drafts(cmd) => drafts::run(&c, cmd),
        Command::Audit {
            actor,
            action,
            target,
            since,
            limit,
            json,
        } => audit::list(
            &c,
            audit::Filter {
                actor,
                action,
                target,
                since,
                limit,
            },
            json.json,
        ),
        Command::Ca => ca(&c),
        Command::Bundles(cmd) => bundles::run(&c, cmd),
        Command::Inventory {
            device,
            kind,
            search,
            json,
        } => monitoring::inventory(&c, &device, kind.as_deref(), search.as_deref(), json.json),
        Command::Alerts(cmd) => alerts::run(&c, cmd),
        Command::Find {
            package,
            port,
            json,
        } => monitoring::find(&c, package.as_deref(), port, json.json),
        Command::Metrics {
            device,
            since,
            until,
            series,
            resolution,
            points,
            json,
        } => monitoring::metrics(
            &c,
            &device,
            monitoring::Range {
                since,
                until,
                series,
                resolution,
            },
            points,
            json.json,
        ),
    }
}

/// A client for the command line's server, with its token and CA.
fn connect(cli: &Cli) -> Result<Client, ClientError> {
    let token = cli.token.as_deref().ok_or_else(|| {
        ClientError::Usage("no API token: pass --token or set APIARY_TOKEN (the admin token is in <data-dir>/admin.token)".into())
    })?;
    let roots = match &cli.ca_cert {
        Some(p) => std::fs::read(p)
            .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", p.display())))?,
        None => tls_client::system_roots().unwrap_or_default(),
    };
    Client::new(&cli.server, token.trim(), &roots)
}

/// `apiary ca`: the CA certificate agents pin.
fn ca(c: &Client) -> Result<(), ClientError> {
    print!("{}", c.get_text("/ca")?);
    Ok(())
}
