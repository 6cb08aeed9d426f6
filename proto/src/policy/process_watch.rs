//! `process_watch`: processes that must run, or must not, and the command that fixes it.

use serde::{Deserialize, Serialize};

use super::parts::{Listed, Presence};
use super::rules::unique;
use super::{CompileError, Merge, Policy, Resolve};

/// The watched processes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessWatch {
    pub items: Vec<WatchedProcess>,
}

/// One watched process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchedProcess {
    /// Executable name, matched exactly (see the agent's `process_watch` policy).
    pub name: String,
    #[serde(default)]
    pub state: Presence,
    /// Shell command run when the process is not in its state.
    pub command: String,
}

/// Names `process_watch` matches: one executable file name.
pub fn validate_process_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 255
        || name.contains('/')
        || name.chars().any(char::is_control)
        || name == "."
        || name == ".."
    {
        Err(format!(
            "process name {name:?} must be an executable's file name, without '/'"
        ))
    } else {
        Ok(())
    }
}

impl Policy for ProcessWatch {
    const SUMMARY: &'static str =
        "Processes that must run, or must not, and the command that fixes it.";
    const MERGE: Merge = Merge::List {
        items: "items",
        key: "name",
    };
    type Document = Listed<WatchedProcess>;

    fn validate_document(doc: &Listed<WatchedProcess>) -> Result<(), String> {
        validate_items(&doc.items)
    }

    fn compile(
        doc: Listed<WatchedProcess>,
        _: &mut dyn Resolve,
    ) -> Result<Option<Self>, CompileError> {
        Ok(Some(ProcessWatch { items: doc.items }))
    }

    fn validate(&self) -> Result<(), String> {
        validate_items(&self.items)
    }
}

fn validate_items(items: &[WatchedProcess]) -> Result<(), String> {
    for p in items {
        validate_process_name(&p.name)?;
        if p.command.trim().is_empty() {
            return Err(format!("process {}: command must not be empty", p.name));
        }
    }
    unique("process", items.iter().map(|p| p.name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_file_names() {
        assert!(validate_process_name("crond").is_ok());
        assert!(validate_process_name("/usr/sbin/crond").is_err());
        assert!(validate_process_name("..").is_err());
    }
}
