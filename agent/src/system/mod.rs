//! What the agent reads of, and runs on, the device's own system, shared by the policies.

pub mod account_tools;
pub mod accounts;
pub mod processes;
pub mod programs;
