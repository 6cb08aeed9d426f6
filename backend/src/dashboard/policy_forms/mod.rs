//! Policy documents as HTML forms: each policy's fields are described once
//! ([`catalogue`]), rendered as inputs or read-only ([`render`]), and a submitted form is
//! turned back into the JSON document the API takes ([`parse`]).
//!
//! Inputs are named by their path in the document (`f.sets.0.files.1.mode`), so one generic
//! renderer and one parser serve every policy, including lists inside lists.

pub mod catalogue;
pub mod parse;
pub mod render;
pub mod schema;
