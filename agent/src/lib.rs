//! The Apiary agent as a library: everything `apiary-agent` (`main.rs`, a thin command line
//! over [`cycle`] and [`enroll`]) runs, public so the fuzz targets under `fuzz/` can reach
//! the parsers and renderers the agent feeds with what it receives.

pub mod bundle_store;
pub mod clock;
pub mod command;
pub mod config;
pub mod cycle;
pub mod elevated;
pub mod enroll;
pub mod expand;
pub mod facts;
pub mod inventory;
pub mod lock;
pub mod metrics;
pub mod network;
pub mod offline;
pub mod policies;
pub mod privilege;
pub mod proxy;
pub mod renew;
pub mod reports;
pub mod safe_fs;
pub mod signals;
pub mod system;
pub mod template;
pub mod tls;
pub mod transport;
