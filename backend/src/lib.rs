//! `apiary-backend`: the device API, the operator API and the dashboard, over one
//! store.

pub mod alerts;
pub mod blobs;
pub mod ca_rotation;
pub mod config;
pub mod conn_limits;
pub mod dashboard;
pub mod datadir;
pub mod device_api;
pub mod error;
pub mod metrics;
pub mod operator_accounts;
pub mod operator_api;
pub mod operator_cli;
pub mod pki;
pub mod secrets;
pub mod server;
pub mod service;
pub mod session_cache;
pub mod state;
pub mod store;
pub mod tls_server;
