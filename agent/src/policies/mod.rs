//! Policies: each converges one part of the device toward the bundle and says what it did.
//!
//! A policy is idempotent: run twice on an unchanged system, the second run reports every
//! item unchanged. Drift (a manual change) is restored and reported as a warning.

use std::io::Write;
use std::path::Path;

use apiary_proto::bundle::Bundle;
use apiary_proto::device_api::Level;
use apiary_proto::policy::{InBundle, Policies};

use crate::transport::TransportError;

pub mod connectivity_watchdog;
pub mod converged;
pub mod file_access;
pub mod file_attributes;
pub mod file_distribution;
pub mod metrics_monitor;
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
    /// when it already holds a start (the caller verifies the digest). The error tells a
    /// refusal (not worth retrying) from a failure that may pass.
    fn fetch(&self, sha256: &str, sink: &mut dyn DownloadSink) -> Result<(), TransportError>;

    /// Whether asking again may give another answer (a network may; an archive on a
    /// medium gives the same bytes every time).
    fn retries(&self) -> bool {
        true
    }
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
    /// The cycle's metric sample, `(series, value)`; `None` when metrics are off.
    pub metrics: Option<&'a [(String, Option<f64>)]>,
}

/// A policy whose desired state is a list of items, each converged on its own. Every policy
/// the agent converges is one, implemented on the bundle's type for it (its name is
/// [`InBundle::NAME`]); [`converge_items`] is the one loop they all go through.
///
/// The contract, for implementers:
/// - [`converge_item`](ItemPolicy::converge_item) is idempotent: on an unchanged system a
///   second run pushes only unchanged outcomes.
/// - It pushes at least one outcome for the item (a file set pushes one per file, and one
///   for its command), or returns an error, which becomes the item's failed outcome.
/// - It records in `record` the desired state it brought the item to, and asks `record`
///   whether it had done so before, to tell drift (a warning) from a new desired state.
pub trait ItemPolicy: InBundle {
    type Item;
    /// What converging needs once per run (the device's account tools, say); `()` for
    /// nothing.
    type Tools: Tools;

    fn items(&self) -> &[Self::Item];
    /// Names the item in reports.
    fn item_name(item: &Self::Item) -> String;
    /// Brings one item to its desired state, pushing what happened onto `out`.
    fn converge_item(
        &self,
        tools: &Self::Tools,
        item: &Self::Item,
        ctx: &Context<'_>,
        record: &mut converged::Converged,
        out: &mut Vec<Outcome>,
    ) -> Result<(), String>;
}

/// What a policy finds on the device before converging its items.
pub trait Tools: Sized {
    /// Looks for them; the message says what is missing, and fails every item.
    fn find() -> Result<Self, String>;
}

impl Tools for () {
    fn find() -> Result<(), String> {
        Ok(())
    }
}

/// Converges every item of `policy`, in order, sharing the policy's record of what it
/// converged. An error becomes a failed outcome for that item; a stop request ends the loop
/// between items.
pub fn converge_items<P: ItemPolicy>(policy: &P, ctx: &Context<'_>) -> Vec<Outcome> {
    let items = policy.items();
    let tools = match P::Tools::find() {
        Ok(t) => t,
        Err(e) => {
            return items
                .iter()
                .map(|i| Outcome::failed(P::NAME, P::item_name(i), e.clone()))
                .collect();
        }
    };
    let mut record = converged::Converged::load(ctx.state_dir, P::NAME);
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if (ctx.stop_requested)() {
            break;
        }
        if let Err(e) = policy.converge_item(&tools, item, ctx, &mut record, &mut out) {
            out.push(Outcome::failed(P::NAME, P::item_name(item), e));
        }
    }
    record.save_or_warn();
    out
}

/// A policy slot of the bundle, converged when the bundle carries it.
trait Converge {
    /// The policy's name, when the bundle manages it.
    fn managed(&self) -> Option<&'static str>;
    fn converge(&self, ctx: &Context<'_>) -> Vec<Outcome>;
}

impl<P: ItemPolicy> Converge for Option<P> {
    fn managed(&self) -> Option<&'static str> {
        self.as_ref().map(|_| P::NAME)
    }

    fn converge(&self, ctx: &Context<'_>) -> Vec<Outcome> {
        self.as_ref()
            .map(|p| converge_items(p, ctx))
            .unwrap_or_default()
    }
}

/// Converges every policy the bundle manages, in a fixed order: accounts first (a password
/// or key, or a file's owner, may need an account the same bundle adds), then files, then
/// the services that may read those files.
pub fn converge(bundle: &Bundle, ctx: &Context<'_>) -> Vec<Outcome> {
    // Every field by name, never `..`: a policy added to the bundle does not compile until
    // it is converged here, or named as one the cycle reads itself. A field bound here but
    // left out of the order is an unused variable, which the lints refuse.
    let Policies {
        parameters: _,            // the `$(key)` values in `ctx.vars`
        settings: _,              // interval and reports, read by the cycle
        connectivity_watchdog: _, // acts on failed check-ins, in the cycle
        users,
        passwords,
        ssh_keys,
        file_distribution,
        ntp,
        process_watch,
        metrics_monitor,
    } = &bundle.policies;
    let in_order: [&dyn Converge; 7] = [
        users,
        passwords,
        ssh_keys,
        file_distribution,
        ntp,
        process_watch,
        metrics_monitor,
    ];
    let mut outcomes = Vec::new();
    for policy in in_order {
        let Some(name) = policy.managed() else {
            continue;
        };
        if (ctx.stop_requested)() {
            eprintln!("stop requested: not converging {name} or later policies");
            break;
        }
        outcomes.extend(policy.converge(ctx));
    }
    outcomes
}
