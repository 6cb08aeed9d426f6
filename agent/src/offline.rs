//! `apiary-agent apply FILE`: an offline bundle (`apiary_proto::offline`, written by
//! `apiary bundles export`) read from a medium. The bundle is checked exactly as one from a
//! check-in (signature, device id, serial), and its files are read from the archive, where
//! the same SHA-256 check as for a download applies before anything is installed.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use apiary_proto::offline::{self, ArchiveError, Member};
use apiary_proto::signed::Envelope;

use crate::policies::{DownloadSink, Fetch};
use crate::safe_fs::{self, Dir};
use crate::transport::TransportError;

/// Largest `bundle.json` read (the same bound as a bundle in a check-in answer).
const MAX_BUNDLE_BYTES: u64 = 16 * 1024 * 1024;

/// Why an offline bundle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("{}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: safe_fs::SafeFsError,
    },
    #[error("{} does not exist", .0.display())]
    Missing(PathBuf),
    #[error("{}: {source}", path.display())]
    Archive { path: PathBuf, source: ArchiveError },
    #[error("{}: {message}", path.display())]
    Bundle { path: PathBuf, message: String },
}

/// An opened offline bundle.
pub struct Archive {
    path: PathBuf,
    file: File,
    members: Vec<Member>,
}

impl Archive {
    /// Opens `path` (a regular file, never through a link) and checks every member header.
    pub fn open(path: &Path) -> Result<Self, OfflineError> {
        let open = |source| OfflineError::Open {
            path: path.to_path_buf(),
            source,
        };
        let (parent, name) = safe_fs::split(path).map_err(open)?;
        let dir = Dir::open(parent).map_err(open)?;
        let (file, _) = dir
            .open_file(name)
            .map_err(open)?
            .ok_or_else(|| OfflineError::Missing(path.to_path_buf()))?;
        let members = offline::index(&mut &file).map_err(|source| OfflineError::Archive {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            members,
        })
    }

    /// The signed envelope (`bundle.json`), not yet verified.
    pub fn envelope(&self) -> Result<Envelope, OfflineError> {
        let bad = |message: String| OfflineError::Bundle {
            path: self.path.clone(),
            message,
        };
        let member = &self.members[0];
        if member.size > MAX_BUNDLE_BYTES {
            return Err(bad(format!(
                "{} is {} bytes, over {MAX_BUNDLE_BYTES}",
                member.name, member.size
            )));
        }
        let mut bytes = vec![0u8; member.size as usize];
        self.file
            .read_exact_at(&mut bytes, member.offset)
            .map_err(|e| bad(format!("cannot read {}: {e}", member.name)))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("{} is not a signed bundle: {e}", member.name)))
    }

    /// How many files the archive carries.
    pub fn files(&self) -> usize {
        self.members.len() - 1
    }
}

impl Fetch for Archive {
    fn retries(&self) -> bool {
        false
    }

    fn fetch(&self, sha256: &str, sink: &mut dyn DownloadSink) -> Result<(), TransportError> {
        let url = format!("{}:{}{sha256}", self.path.display(), offline::FILES_DIR);
        let member = self
            .members
            .iter()
            .find(|m| m.sha256() == Some(sha256))
            .ok_or_else(|| TransportError::Unusable {
                url: url.clone(),
                message: "the offline bundle does not carry this file".into(),
            })?;
        let mut done = sink.offset().min(member.size);
        let mut buf = vec![0u8; 64 * 1024];
        while done < member.size {
            // In u64 first: on 32-bit targets a large remainder does not fit a usize.
            let want = (buf.len() as u64).min(member.size - done) as usize;
            let n = self
                .file
                .read_at(&mut buf[..want], member.offset + done)
                .map_err(|e| TransportError::Body {
                    url: url.clone(),
                    message: e.to_string(),
                })?;
            if n == 0 {
                return Err(TransportError::Unusable {
                    url,
                    message: "the archive ends inside the file".into(),
                });
            }
            sink.write_all(&buf[..n])
                .map_err(|source| TransportError::Sink {
                    url: url.clone(),
                    source,
                })?;
            done += n as u64;
        }
        Ok(())
    }
}
