//! `apiary-agent`: the device side of Apiary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use argh::FromArgs;

use apiary_agent::config::Dirs;
use apiary_agent::{config, cycle, enroll, lock, signals};

/// Apiary device agent: checks in with the backend, converges a signed bundle, reports.
#[derive(FromArgs)]
struct Args {
    /// persistent directory (default /etc/apiary, or $APIARY_CONFIG_DIR)
    #[argh(option)]
    config_dir: Option<PathBuf>,
    /// volatile directory, tmpfs on devices (default /run/apiary, or $APIARY_STATE_DIR)
    #[argh(option)]
    state_dir: Option<PathBuf>,
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Bootstrap(BootstrapCmd),
    Start(StartCmd),
    RunOnce(RunOnceCmd),
    Version(VersionCmd),
}

/// Enrol this device with a bootstrap key and wait for approval.
#[derive(FromArgs)]
#[argh(subcommand, name = "bootstrap")]
struct BootstrapCmd {
    /// bootstrap key issued by an operator (visible to local users in `ps`; prefer
    /// --key-file or APIARY_BOOTSTRAP_KEY)
    #[argh(option, short = 'k')]
    key: Option<String>,
    /// file holding the bootstrap key, `-` for standard input
    #[argh(option)]
    key_file: Option<PathBuf>,
    /// device API URL, e.g. https://apiary.example:8443
    #[argh(option)]
    server: String,
    /// CA certificate (PEM) to trust for enrolment; default: the system CA bundle
    #[argh(option)]
    ca_cert: Option<PathBuf>,
    /// name shown to operators (default: the hostname)
    #[argh(option)]
    device_name: Option<String>,
    /// seconds between approval polls while pending (default 5)
    #[argh(option, default = "5")]
    poll_interval: u64,
}

/// Run cycles forever: the first at once, then every interval with jitter.
#[derive(FromArgs)]
#[argh(subcommand, name = "start")]
struct StartCmd {}

/// Run one cycle and exit: 0 all good, 1 backend unreachable or fatal, 2 something failed.
#[derive(FromArgs)]
#[argh(subcommand, name = "run-once")]
struct RunOnceCmd {}

/// Print the agent version.
#[derive(FromArgs)]
#[argh(subcommand, name = "version")]
struct VersionCmd {}

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    let dirs = Dirs {
        config: dir_setting(
            args.config_dir,
            "APIARY_CONFIG_DIR",
            config::DEFAULT_CONFIG_DIR,
        ),
        state: dir_setting(
            args.state_dir,
            "APIARY_STATE_DIR",
            config::DEFAULT_STATE_DIR,
        ),
    };
    signals::install();
    match args.command {
        Command::Version(_) => {
            println!("apiary-agent {}", apiary_proto::VERSION);
            ExitCode::SUCCESS
        }
        Command::Bootstrap(cmd) => {
            let key = match enroll::bootstrap_key(cmd.key, cmd.key_file.as_deref()) {
                Ok(key) => key,
                Err(e) => return fail(&e),
            };
            let opts = enroll::BootstrapOptions {
                bootstrap_key: key,
                server_url: cmd.server,
                ca_cert: cmd.ca_cert,
                device_name: cmd.device_name,
                poll_interval: Duration::from_secs(cmd.poll_interval.clamp(1, 3600)),
            };
            match enroll::bootstrap(&dirs, &opts) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::RunOnce(_) => match start_agent(dirs) {
            Ok((mut agent, _lock)) => {
                let s = agent.run_cycle();
                eprintln!(
                    "cycle done: {} changed, {} failed{}{}",
                    s.changed,
                    s.failed,
                    if s.bundle_rejected {
                        ", bundle rejected"
                    } else {
                        ""
                    },
                    if s.online {
                        ""
                    } else {
                        ", backend unreachable"
                    }
                );
                if !s.online {
                    ExitCode::from(1)
                } else if s.failed > 0 || s.bundle_rejected {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(code) => code,
        },
        Command::Start(_) => match start_agent(dirs) {
            Ok((mut agent, _lock)) => {
                eprintln!(
                    "apiary-agent {} started as device {}",
                    apiary_proto::VERSION,
                    agent.identity.config.device_id
                );
                while !signals::stop_requested() {
                    let s = agent.run_cycle();
                    if !signals::sleep(cycle::next_delay(s.interval_seconds)) {
                        break;
                    }
                }
                eprintln!("apiary-agent stopping on signal");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
    }
}

fn start_agent(dirs: Dirs) -> Result<(cycle::Agent, lock::Lock), ExitCode> {
    dirs.ensure_state().map_err(|e| {
        fail(&format!(
            "cannot create state dir {}: {e}",
            dirs.state.display()
        ))
    })?;
    let lock = lock::Lock::acquire(&dirs.state.join("agent.lock")).map_err(|e| fail(&e))?;
    let identity = config::Identity::load(&dirs).map_err(|e| fail(&e))?;
    let agent = cycle::Agent::new(dirs, identity).map_err(|e| fail(&e))?;
    Ok((agent, lock))
}

fn dir_setting(flag: Option<PathBuf>, env: &str, default: &str) -> PathBuf {
    flag.or_else(|| std::env::var_os(env).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(default))
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}
