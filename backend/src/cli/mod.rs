//! The `apiary` operator CLI: a thin, blocking client of the operator API.

pub mod client;
pub mod commands;
mod output;
