//! One module per dashboard page.

pub mod commits;
pub mod configure;
pub mod device;
pub mod devices;
pub mod login;
pub mod operators;
pub mod overview;
pub mod pending;
