//! Policies: each converges one part of the device toward the bundle and says what it did.
//!
//! A policy is idempotent: run twice on an unchanged system, the second run reports every
//! item unchanged. Drift (a manual change) is restored and reported as a warning.

use std::io::Write;
use std::path::Path;

use apiary_proto::bundle::Bundle;
use apiary_proto::device_api::Level;

pub mod connectivity_watchdog;
pub mod converged;
pub mod file_attributes;
pub mod file_distribution;
pub mod ntp;
pub mod passwords;
pub mod process_watch;
pub mod settings;
pub mod ssh_keys;
pub mod users;

/// What happened to one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Unchanged,
    Changed,
    Failed,
}

/// The result of converging one item of a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub policy: &'static str,
    pub item: Option<String>,
    pub status: Status,
    pub level: Level,
    pub message: String,
    pub output: Option<String>,
}

impl Outcome {
    /// An item brought to its desired state; `drift` marks a restored manual change.
    pub fn changed(policy: &'static str, item: String, drift: bool, message: String) -> Self {
        Self {
            policy,
            item: Some(item),
            status: Status::Changed,
            level: if drift { Level::Warning } else { Level::Info },
            message,
            output: None,
        }
    }

    /// An item already in its desired state.
    pub fn unchanged(policy: &'static str, item: String, message: String) -> Self {
        Self {
            policy,
            item: Some(item),
            status: Status::Unchanged,
            level: Level::Info,
            message,
            output: None,
        }
    }

    /// An item that could not be converged.
    pub fn failed(policy: &'static str, item: String, message: String) -> Self {
        Self {
            policy,
            item: Some(item),
            status: Status::Failed,
            level: Level::Error,
            message,
            output: None,
        }
    }
}

/// Downloads file-manager content by SHA-256.
pub trait Fetch {
    /// Streams the content named by `sha256` into `sink`, continuing from `sink.offset()`
    /// when it already holds a start (the caller verifies the digest).
    fn fetch(&self, sha256: &str, sink: &mut dyn DownloadSink) -> Result<(), String>;
}

/// Where a download goes: it knows how much it already holds, and can start over when the
/// server cannot continue from there.
pub trait DownloadSink: Write {
    /// Bytes already received from earlier attempts.
    fn offset(&self) -> u64;
    /// Drops what was received, to take the content from its first byte.
    fn restart(&mut self) -> std::io::Result<()>;
}

/// A download into memory (templates, which are small).
impl DownloadSink for Vec<u8> {
    fn offset(&self) -> u64 {
        self.len() as u64
    }

    fn restart(&mut self) -> std::io::Result<()> {
        self.clear();
        Ok(())
    }
}

/// What a policy may use while converging.
pub struct Context<'a> {
    /// Volatile directory for caches and per-policy state.
    pub state_dir: &'a Path,
    pub fetcher: &'a dyn Fetch,
    /// `$(key)` values for policy fields and templates.
    pub vars: &'a crate::expand::Vars,
    /// True once the agent was asked to stop; policies return between items.
    pub stop_requested: &'a dyn Fn() -> bool,
}

/// Converges each item with `converge_item`, in order, sharing the policy's record of what
/// it converged. An error becomes a failed outcome for that item; a stop request ends the
/// loop between items.
pub fn each_item<T>(
    ctx: &Context<'_>,
    policy: &'static str,
    items: &[T],
    key: impl Fn(&T) -> &str,
    mut converge_item: impl FnMut(&T, &mut converged::Converged) -> Result<Outcome, String>,
) -> Vec<Outcome> {
    let mut record = converged::Converged::load(ctx.state_dir, policy);
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if (ctx.stop_requested)() {
            break;
        }
        out.push(
            converge_item(item, &mut record)
                .unwrap_or_else(|e| Outcome::failed(policy, key(item).to_string(), e)),
        );
    }
    record.save_or_warn();
    out
}

/// One policy of the bundle.
pub trait Policy {
    /// The policy's name in bundles and reports.
    fn name(&self) -> &'static str;
    /// Converges every item, returning one outcome per item.
    fn converge(&self, ctx: &Context<'_>) -> Vec<Outcome>;
}

/// Converges every policy the bundle manages, in a fixed order: accounts first (a password
/// or key, or a file's owner, may need an account the same bundle adds), then files, then
/// the services that may read those files.
pub fn converge(bundle: &Bundle, ctx: &Context<'_>) -> Vec<Outcome> {
    let p = &bundle.policies;
    let mut policies: Vec<Box<dyn Policy + '_>> = Vec::new();
    if let Some(spec) = &p.users {
        policies.push(Box::new(users::UsersPolicy { spec }));
    }
    if let Some(spec) = &p.passwords {
        policies.push(Box::new(passwords::PasswordsPolicy { spec }));
    }
    if let Some(spec) = &p.ssh_keys {
        policies.push(Box::new(ssh_keys::SshKeysPolicy { spec }));
    }
    if let Some(spec) = &p.file_distribution {
        policies.push(Box::new(file_distribution::FileDistributionPolicy { spec }));
    }
    if let Some(spec) = &p.ntp {
        policies.push(Box::new(ntp::NtpPolicy { spec }));
    }
    if let Some(spec) = &p.process_watch {
        policies.push(Box::new(process_watch::ProcessWatchPolicy { spec }));
    }
    let mut outcomes = Vec::new();
    for policy in policies {
        if (ctx.stop_requested)() {
            eprintln!(
                "stop requested: not converging {} or later policies",
                policy.name()
            );
            break;
        }
        outcomes.extend(policy.converge(ctx));
    }
    outcomes
}
