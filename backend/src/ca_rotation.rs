//! `apiary-backend ca ...`: replacing the device CA without re-enrolling the fleet, on the
//! data dir of a stopped backend, in three steps an administrator runs days apart:
//!
//! 1. `prepare` makes the next CA (`ca-next.crt`, `ca-next.key`). From the next start the
//!    backend trusts both and sends both to every device, which keeps them in its `ca.crt`.
//! 2. `promote`, once every device has checked in since (and so holds both), makes the next
//!    CA the current one: the server certificate is re-issued under it, the old CA is kept as
//!    `ca-previous.crt` for the device certificates it signed, and each device is asked to
//!    renew its certificate under the new CA.
//! 3. `retire`, once every device has renewed, forgets the previous CA; devices are sent the
//!    new CA alone.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::pki::Authority;

/// The next CA's certificate and key, between `prepare` and `promote`.
pub const NEXT_CERT: &str = "ca-next.crt";
pub const NEXT_KEY: &str = "ca-next.key";
/// The previous CA's certificate, between `promote` and `retire`.
pub const PREVIOUS_CERT: &str = "ca-previous.crt";

/// Where the data dir is, and the step.
#[derive(Args, Debug)]
pub struct CaOptions {
    /// Data directory of the backend (stop the backend first)
    #[arg(long, env = "APIARY_DATA_DIR", default_value = "./apiary-data")]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub command: CaCommand,
}

#[derive(Subcommand, Debug)]
pub enum CaCommand {
    /// Make the next CA; devices are sent it with the current one from the next start
    Prepare,
    /// Make the next CA the current one (every device must have checked in since prepare)
    Promote,
    /// Forget the previous CA (every device must have renewed its certificate since promote)
    Retire,
    /// Say which step the data dir is at
    Status,
}

/// Runs a `ca` step, returning what to print.
pub fn run(opts: CaOptions) -> Result<String, String> {
    let dir = opts.data_dir.as_path();
    if !dir.join("ca.crt").exists() {
        return Err(format!("{} holds no CA (ca.crt)", dir.display()));
    }
    match opts.command {
        CaCommand::Prepare => prepare(dir),
        CaCommand::Promote => promote(dir),
        CaCommand::Retire => retire(dir),
        CaCommand::Status => Ok(status(dir)),
    }
}

fn prepare(dir: &Path) -> Result<String, String> {
    if dir.join(NEXT_CERT).exists() {
        return Err(format!(
            "{} exists: a next CA is already prepared",
            NEXT_CERT
        ));
    }
    if dir.join(PREVIOUS_CERT).exists() {
        return Err(format!(
            "{PREVIOUS_CERT} exists: retire the previous CA before preparing another"
        ));
    }
    let name = format!("Apiary device CA {}", crate::state::now());
    let next = Authority::generate_named(&name).map_err(|e| e.to_string())?;
    write(dir, NEXT_KEY, &next.key_pem, 0o600)?;
    write(dir, NEXT_CERT, &next.cert_pem, 0o644)?;
    Ok(format!(
        "prepared the next CA ({name}). Start the backend: devices are sent it with the current one \
         at their next daily clock exchange. Run `ca promote` once every device has checked in since.\n"
    ))
}

fn promote(dir: &Path) -> Result<String, String> {
    let (cert, key) = (read(dir, NEXT_CERT)?, read(dir, NEXT_KEY)?);
    Authority::load(&cert, &key).map_err(|e| format!("{NEXT_CERT}/{NEXT_KEY}: {e}"))?;
    let current = read(dir, "ca.crt")?;
    write(dir, PREVIOUS_CERT, &current, 0o644)?;
    write(dir, "ca.key", &key, 0o600)?;
    write(dir, "ca.crt", &cert, 0o644)?;
    for file in [NEXT_CERT, NEXT_KEY, "server.crt", "server.key"] {
        remove(dir, file)?;
    }
    Ok(format!(
        "the next CA is now the current one; the old one is kept as {PREVIOUS_CERT} and its key \
         is gone. At the next start the server certificate is issued under the new CA, and each \
         device renews its certificate at its next check-in. Run `ca retire` once all have.\n"
    ))
}

fn retire(dir: &Path) -> Result<String, String> {
    if !dir.join(PREVIOUS_CERT).exists() {
        return Err("there is no previous CA to retire".into());
    }
    remove(dir, PREVIOUS_CERT)?;
    Ok(
        "the previous CA is retired: certificates it signed are refused from the next start, \
        and devices are sent the current CA alone.\n"
            .into(),
    )
}

fn status(dir: &Path) -> String {
    match (
        dir.join(NEXT_CERT).exists(),
        dir.join(PREVIOUS_CERT).exists(),
    ) {
        (true, _) => "a next CA is prepared: devices are sent both; `ca promote` is next\n".into(),
        (false, true) => {
            "promoted: the previous CA is still trusted for device certificates it signed; \
             `ca retire` is next\n"
                .into()
        }
        (false, false) => "one CA, no rotation under way\n".into(),
    }
}

fn read(dir: &Path, file: &str) -> Result<String, String> {
    fs::read_to_string(dir.join(file)).map_err(|e| format!("{}: {e}", dir.join(file).display()))
}

fn write(dir: &Path, file: &str, text: &str, mode: u32) -> Result<(), String> {
    crate::datadir::write(dir, file, text.as_bytes(), mode).map_err(|e| e.to_string())
}

fn remove(dir: &Path, file: &str) -> Result<(), String> {
    match fs::remove_file(dir.join(file)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", dir.join(file).display())),
    }
}
