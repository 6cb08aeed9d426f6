//! `process_watch`: a process that must run (or must not) and the command that fixes it.
//!
//! Names match exactly, never as substrings: a process is named `N` when its executable's
//! file name is `N`, or when it is a root process of busybox (or toybox) started as `N`
//! (see [`crate::system::processes`]; `argv[0]` alone can be set to anything). So `cron`
//! does not match `crond`, and `/usr/sbin/crond` is configured as `crond`.
//!
//! A process found out of its state is always a warning: something stopped (or started) it.
//! The command runs with `/bin/sh -c`; it should start a daemon that detaches (a command
//! that keeps running is killed after the timeout).

use std::time::Duration;

use apiary_proto::policy::InBundle;
use apiary_proto::policy::parts::Presence;
use apiary_proto::policy::process_watch::{ProcessWatch, WatchedProcess};

use super::converged::Converged;
use super::{Context, ItemPolicy, Outcome};
use crate::privilege::{self, Privilege};
use crate::system::processes;
use crate::{command, elevated};

const NAME: &str = ProcessWatch::NAME;
/// Bound on a watch command.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Every process found out of its state is drift, so nothing is recorded.
impl ItemPolicy for ProcessWatch {
    type Item = WatchedProcess;
    type Tools = ();

    fn items(&self) -> &[WatchedProcess] {
        &self.items
    }

    fn item_name(item: &WatchedProcess) -> String {
        item.name.clone()
    }

    fn converge_item(
        &self,
        _: &(),
        item: &WatchedProcess,
        ctx: &Context<'_>,
        _: &mut Converged,
        out: &mut Vec<Outcome>,
    ) -> Result<(), String> {
        out.push(watch(ctx, item));
        Ok(())
    }
}

/// The processes named `name`, seen with root's access: other users' executables are hidden
/// from an agent that is not root, so a process it cannot see may still be `name`.
fn pids_named(name: &str) -> Result<Vec<u32>, String> {
    match privilege::current() {
        Privilege::Root => Ok(processes::pids_named(name)),
        Privilege::Elevated { .. } => elevated::pids(name),
        unprivileged @ Privilege::Unprivileged { .. } => match processes::visible_named(name) {
            (pids, hidden) if pids.is_empty() && hidden > 0 => Err(unprivileged.needs_root(
                &format!("telling whether {name} runs ({hidden} processes of other users hide their executables)"),
            )),
            (pids, _) => Ok(pids),
        },
    }
}

fn watch(ctx: &Context<'_>, item: &WatchedProcess) -> Outcome {
    let name = item.name.as_str();
    let pids = match pids_named(name) {
        Ok(pids) => pids,
        Err(e) => return Outcome::failed(NAME, name.into(), e),
    };
    let state = match (item.state, pids.is_empty()) {
        (Presence::Present, false) => {
            return Outcome::unchanged(
                NAME,
                name.into(),
                format!("{name} is running (pid {})", join(&pids)),
            );
        }
        (Presence::Absent, true) => {
            return Outcome::unchanged(NAME, name.into(), format!("{name} is not running"));
        }
        (Presence::Present, true) => format!("{name} was not running"),
        (Presence::Absent, false) => format!("{name} was running (pid {})", join(&pids)),
    };
    let cmd = &item.command;
    match command::run_with_values(cmd, ctx.vars, TIMEOUT) {
        Ok(r) if r.success() => {
            let mut o = Outcome::changed(NAME, name.into(), true, format!("{state}; ran: {cmd}"));
            o.output = Some(r.output).filter(|s| !s.is_empty());
            o
        }
        Ok(r) => {
            let mut o = Outcome::failed(
                NAME,
                name.into(),
                format!("{state}; command {}: {cmd}", r.describe_failure(TIMEOUT)),
            );
            o.output = Some(r.output).filter(|s| !s.is_empty());
            o
        }
        Err(e) => Outcome::failed(
            NAME,
            name.into(),
            format!("{state}; command could not start: {e}"),
        ),
    }
}

fn join(pids: &[u32]) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
