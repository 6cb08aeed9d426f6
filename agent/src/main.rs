//! `apiary-agent`: the device side of Apiary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use argh::FromArgs;

use apiary_agent::config::Dirs;
use apiary_agent::{config, cycle, elevated, enroll, lock, offline, proxy, signals};

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
    Bootstrap(Box<BootstrapCmd>),
    Start(StartCmd),
    RunOnce(RunOnceCmd),
    Version(VersionCmd),
    Elevated(ElevatedCmd),
    Apply(ApplyCmd),
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
    /// program and arguments, separated by spaces, that run system tools as root when the
    /// agent is not root, e.g. "/usr/bin/sudo -n" (kept in agent.json)
    #[argh(option)]
    elevation_command: Option<String>,
    /// HTTP proxy (CONNECT) to reach the backend through, kept in agent.json
    #[argh(option)]
    proxy_host: Option<String>,
    /// the proxy's port (default 3128)
    #[argh(option, default = "3128")]
    proxy_port: u16,
    /// basic-auth user for the proxy
    #[argh(option)]
    proxy_user: Option<String>,
    /// the proxy password (visible to local users in `ps`; prefer --proxy-password-file or
    /// APIARY_PROXY_PASSWORD)
    #[argh(option)]
    proxy_password: Option<String>,
    /// file holding the proxy password, `-` for standard input
    #[argh(option)]
    proxy_password_file: Option<PathBuf>,
}

/// Run cycles forever: the first at once, then every interval with jitter.
#[derive(FromArgs)]
#[argh(subcommand, name = "start")]
struct StartCmd {}

/// Run one cycle and exit: 0 all good, 1 backend unreachable or fatal, 2 something failed.
#[derive(FromArgs)]
#[argh(subcommand, name = "run-once")]
struct RunOnceCmd {}

/// Do one file step as root for an agent that does not run as root (the agent runs this
/// itself through its elevation command; see docs/agent.md).
#[derive(FromArgs)]
#[argh(subcommand, name = "elevated")]
struct ElevatedCmd {
    /// the step and its arguments
    #[argh(positional, greedy)]
    args: Vec<String>,
}

/// Apply an offline bundle (from `apiary bundles export`) without any network: 0 all good,
/// 1 unreadable or fatal, 2 refused or something failed. Reports go at the next check-in.
#[derive(FromArgs)]
#[argh(subcommand, name = "apply")]
struct ApplyCmd {
    /// the archive
    #[argh(positional)]
    file: PathBuf,
}

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
        Command::Elevated(cmd) => elevated_step(&cmd.args),
        Command::Apply(cmd) => apply(dirs, &cmd.file),
        Command::Version(_) => {
            println!("apiary-agent {}", apiary_proto::VERSION);
            ExitCode::SUCCESS
        }
        Command::Bootstrap(cmd) => bootstrap(&dirs, *cmd),
        Command::RunOnce(_) => run_once(dirs),
        Command::Start(_) => start(dirs),
    }
}

fn elevated_step(args: &[String]) -> ExitCode {
    match elevated::serve(args, &mut std::io::stdin().lock()) {
        Ok(out) if out.is_empty() => ExitCode::SUCCESS,
        Ok(out) => {
            println!("{}", elevated::mark(&out));
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn bootstrap(dirs: &Dirs, mut cmd: BootstrapCmd) -> ExitCode {
    let key = match enroll::bootstrap_key(cmd.key.take(), cmd.key_file.as_deref()) {
        Ok(key) => key,
        Err(e) => return fail(&e),
    };
    let proxy = match bootstrap_proxy(&mut cmd) {
        Ok(proxy) => proxy,
        Err(e) => return fail(&e),
    };
    let opts = enroll::BootstrapOptions {
        bootstrap_key: key,
        server_url: cmd.server,
        ca_cert: cmd.ca_cert,
        device_name: cmd.device_name,
        poll_interval: Duration::from_secs(cmd.poll_interval.clamp(1, 3600)),
        elevation_command: cmd
            .elevation_command
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        proxy,
    };
    match enroll::bootstrap(dirs, &opts) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn run_once(dirs: Dirs) -> ExitCode {
    let (mut agent, _lock) = match start_agent(dirs) {
        Ok(started) => started,
        Err(code) => return code,
    };
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

fn start(dirs: Dirs) -> ExitCode {
    let (mut agent, _lock) = match start_agent(dirs) {
        Ok(started) => started,
        Err(code) => return code,
    };
    eprintln!(
        "apiary-agent {} started as device {} ({})",
        apiary_proto::VERSION,
        agent.identity.config.device_id,
        apiary_agent::privilege::current().describe()
    );
    while !signals::stop_requested() {
        let s = agent.run_cycle();
        if !agent.pause(cycle::next_delay(s.interval_seconds)) {
            break;
        }
    }
    eprintln!("apiary-agent stopping on signal");
    ExitCode::SUCCESS
}

fn apply(dirs: Dirs, file: &std::path::Path) -> ExitCode {
    let archive = match offline::Archive::open(file) {
        Ok(archive) => archive,
        Err(e) => return fail(&e),
    };
    let envelope = match archive.envelope() {
        Ok(envelope) => envelope,
        Err(e) => return fail(&e),
    };
    let (mut agent, _lock) = match start_agent(dirs) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let s = agent.apply_offline(envelope, &archive);
    eprintln!(
        "applied {} offline ({} file(s) in it): {} changed, {} failed{}; reports go at the next check-in",
        file.display(),
        archive.files(),
        s.changed,
        s.failed,
        if s.bundle_rejected {
            ", bundle refused"
        } else {
            ""
        }
    );
    if s.failed > 0 || s.bundle_rejected {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
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

/// The proxy the bootstrap flags name, with its password.
fn bootstrap_proxy(cmd: &mut BootstrapCmd) -> Result<Option<proxy::Proxy>, enroll::EnrollError> {
    let password = enroll::proxy_password(
        cmd.proxy_password.take(),
        cmd.proxy_password_file.as_deref(),
    )?;
    let Some(host) = cmd.proxy_host.take() else {
        if cmd.proxy_user.is_some() || password.is_some() {
            return Err(enroll::EnrollError::Proxy(
                "a proxy user or password needs --proxy-host".into(),
            ));
        }
        return Ok(None);
    };
    if password.is_some() && cmd.proxy_user.is_none() {
        return Err(enroll::EnrollError::Proxy(
            "a proxy password needs --proxy-user".into(),
        ));
    }
    Ok(Some(proxy::Proxy {
        config: proxy::ProxyConfig {
            host,
            port: cmd.proxy_port,
            user: cmd.proxy_user.take(),
        },
        password,
    }))
}

fn dir_setting(flag: Option<PathBuf>, env: &str, default: &str) -> PathBuf {
    flag.or_else(|| std::env::var_os(env).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(default))
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}
