//! Configuration: operator-facing policy documents set per node (group or device), drafts
//! that become active on commit, and the compilation of each device's signed bundle.

pub mod commit;
pub mod compile;
pub mod effective;
pub mod masking;
pub mod node;
pub mod passwords;
pub mod policies;
pub mod tree;
