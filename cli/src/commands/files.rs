//! `apiary files`: the file manager.

use std::path::Path;

use crate::args::FilesCmd;
use crate::client::{Client, ClientError, encode};
use crate::output;

pub fn run(c: &Client, cmd: FilesCmd) -> Result<(), ClientError> {
    match cmd {
        FilesCmd::Upload { local, remote } => upload(c, &local, &remote),
        FilesCmd::List(j) => list(c, j.json),
    }
}

/// Streams the local file; the backend hashes it on the way in.
fn upload(c: &Client, local: &Path, remote: &str) -> Result<(), ClientError> {
    let file = std::fs::File::open(local)
        .map_err(|e| ClientError::Usage(format!("cannot open {}: {e}", local.display())))?;
    let remote = format!("/{}", remote.trim_start_matches('/'));
    let entry = c.put_file(&format!("/files{}", encode(&remote, true)), &file)?;
    eprintln!(
        "uploaded {} ({} bytes, sha256 {})",
        entry["path"].as_str().unwrap_or_default(),
        entry["size"],
        entry["sha256"].as_str().unwrap_or_default()
    );
    Ok(())
}

fn list(c: &Client, json: bool) -> Result<(), ClientError> {
    output::print(&c.get("/files")?, json, output::files);
    Ok(())
}
