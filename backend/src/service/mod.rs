//! What operators can do, as functions over typed inputs that return typed errors. The REST
//! handlers (`operator_api`) and the dashboard pages (`dashboard`) are thin wrappers over
//! these: each parses its own input format, calls one function here, and presents the
//! answer. So validation, masking of secrets and the audit log live here, once, and the CLI
//! and the dashboard cannot differ.
//!
//! Every function takes the shared state and, when it changes anything, the actor recorded
//! in the audit log (an API token's name, or a dashboard operator's).

pub mod alerts;
pub mod audit;
pub mod bootstrap_keys;
pub mod commits;
pub mod config;
pub mod devices;
pub mod files;
pub mod groups;
pub mod monitoring;
pub mod offline;
pub mod parameters;

use crate::store::StoreError;

/// What kind of failure an operation met: callers turn it into an HTTP status or a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The input is wrong; the message says how.
    Invalid,
    /// Something the input names does not exist.
    NotFound,
    /// The operation does not fit the current state (a device already approved, say).
    Conflict,
    /// The backend failed; the operator's input may be fine.
    Internal,
}

/// An operation's error: its message is for the operator, its kind for the caller.
pub trait Failure: std::error::Error {
    fn kind(&self) -> Kind;
}

impl Failure for StoreError {
    fn kind(&self) -> Kind {
        match self {
            StoreError::Conflict(_) => Kind::Conflict,
            StoreError::NotFound(_) => Kind::NotFound,
            _ => Kind::Internal,
        }
    }
}
