//! `apiary`: the operator CLI, a blocking client of the operator API (`/api/v1`). It holds
//! no state of its own: every command is one or two API calls and a print of the answer.

mod args;
mod client;
mod commands;
mod output;
mod resolve;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
