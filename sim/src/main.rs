//! `apiary-sim`: many devices from one process, against a real backend.
//!
//! `enrol` makes N devices (their own P-256 keys, or P-384 ones as a legacy fleet, enrolled
//! with an auto-accepting bootstrap key, certificates stored in one file for reuse); `run`
//! drives their check-ins, each on a new TLS connection, resumed as an agent process
//! resumes or (`--full-handshake`) as after a reboot, and prints throughput, latency,
//! errors and the backend's CPU per check-in.
//! A benchmark, not a test: see docs/benchmarks.md, "Backend capacity".

mod client;
mod devices;
mod run;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Simulate a fleet of Apiary devices against a backend")]
struct Args {
    /// Device API URL, e.g. https://127.0.0.1:8443
    #[arg(long)]
    server: String,
    /// CA certificate of the backend (apiary-data/ca.crt)
    #[arg(long)]
    ca: PathBuf,
    /// File holding the simulated devices (JSON lines)
    #[arg(long, default_value = "sim-devices.jsonl")]
    devices: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enrol devices with an auto-accepting bootstrap key and append them to --devices
    Enrol {
        /// How many devices to add
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// File holding the bootstrap key (auto-accepting)
        #[arg(long)]
        key_file: PathBuf,
        /// Enrolments in flight at once
        #[arg(long, default_value_t = 4)]
        threads: usize,
        /// P-384 device keys, as devices enrolled before P-256 have
        #[arg(long)]
        legacy_p384: bool,
    },
    /// Drive check-ins of the stored devices and report what they cost
    Run(run::RunOptions),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = (|| -> Result<(), String> {
        let target = client::Target::new(&args.server, &args.ca)?;
        match args.command {
            Command::Enrol {
                count,
                key_file,
                threads,
                legacy_p384,
            } => {
                let key = std::fs::read_to_string(&key_file)
                    .map_err(|e| format!("{}: {e}", key_file.display()))?;
                devices::enrol(
                    &target,
                    key.trim(),
                    count,
                    threads,
                    legacy_p384,
                    &args.devices,
                )
            }
            Command::Run(opts) => {
                let fleet = devices::load(&args.devices)?;
                let report = run::run(&target, fleet, &opts)?;
                print!("{report}");
                Ok(())
            }
        }
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("apiary-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
