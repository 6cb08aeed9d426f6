//! `apiary bundles`: devices' signed bundles carried by hand.

use std::io::Write;

use crate::args::BundlesCmd;
use crate::client::{Client, ClientError};
use crate::resolve;

pub fn run(c: &Client, cmd: BundlesCmd) -> Result<(), ClientError> {
    match cmd {
        BundlesCmd::Export { device, output } => export(c, &device, &output),
    }
}

/// Writes the archive beside `output` and renames it there once complete, so a cut transfer
/// never leaves something that looks like an offline bundle.
fn export(c: &Client, device: &str, output: &std::path::Path) -> Result<(), ClientError> {
    let id = resolve::device(c, device)?;
    let local = |e: std::io::Error| ClientError::Usage(format!("{}: {e}", output.display()));
    let partial = output.with_extension("partial");
    let mut file = std::fs::File::create(&partial).map_err(local)?;
    let written = c.get_to(&format!("/devices/{id}/offline-bundle"), &mut file);
    let written = match written {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    file.flush().and_then(|()| file.sync_all()).map_err(local)?;
    std::fs::rename(&partial, output).map_err(local)?;
    eprintln!(
        "wrote the offline bundle of {id} to {} ({written} bytes): copy it to the device and run apiary-agent apply",
        output.display()
    );
    Ok(())
}
