//! One module per dashboard page.

pub mod alerts;
pub mod commits;
pub mod configure;
pub mod device;
pub mod device_graphs;
pub mod device_inventory;
pub mod devices;
pub mod fleet_search;
pub mod login;
pub mod operators;
pub mod overview;
pub mod pending;
