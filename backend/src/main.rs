//! `apiary-backend`: serves the device API, the operator API and the dashboard.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "apiary-backend",
    version,
    about = "Apiary backend: device API, operator API and dashboard"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the backend (initialises the data dir on first start)
    Serve(apiary_backend::server::ServeOptions),
    /// Manage dashboard operators on the data dir (passwords read from stdin)
    Users(apiary_backend::operator_cli::UsersOptions),
    /// Rotate the device CA in three steps, on a stopped backend's data dir
    Ca(apiary_backend::ca_rotation::CaOptions),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime can be built");
    let result = match cli.command {
        Command::Serve(opts) => runtime
            .block_on(apiary_backend::server::serve(opts))
            .map_err(|e| e.to_string()),
        Command::Users(opts) => runtime
            .block_on(apiary_backend::operator_cli::run(opts))
            .map(|out| print!("{out}")),
        Command::Ca(opts) => apiary_backend::ca_rotation::run(opts).map(|out| print!("{out}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
