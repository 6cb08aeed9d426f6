//! Every policy, defined once.
//!
//! A policy is the type a bundle carries for it, implementing [`Policy`]: what operators
//! write on a node ([`Policy::Document`]), how documents combine down the group tree
//! ([`Merge`]), which fields hold secrets ([`Secret`]), the rules a document and a bundle
//! must pass, and how a merged document compiles into the bundle's form.
//!
//! The list at the end of this file is the only place that names them all. It declares the
//! bundle's [`Policies`], each policy's name (its field there), and [`ALL`], through which
//! the backend validates, merges, masks and compiles documents by name. A policy type that
//! is not listed, or a listed one that is not a [`Policy`], does not compile.
//!
//! How to add one: "Adding a policy" in docs/architecture.md.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod connectivity_watchdog;
pub mod file_distribution;
pub mod metrics_monitor;
pub mod ntp;
pub mod parameters;
pub mod parts;
pub mod passwords;
pub mod process_watch;
pub mod rules;
pub mod settings;
pub mod ssh_keys;
pub mod users;

/// How a node's document combines with what the node inherits from the groups above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// The nearest document is the whole policy.
    Whole,
    /// A list of items, each named by its `key` field. A document replaces what it
    /// inherits, or with `"merge": "extend"` adds its items to the inherited ones, an item
    /// named like an inherited one replacing it in place.
    List {
        items: &'static str,
        key: &'static str,
    },
    /// Objects merged key by key, the nearest node's value winning; a key lives in one of
    /// `maps` at a time.
    PerKey { maps: &'static [&'static str] },
}

/// A field that holds a secret: never shown, and kept when an operator sends back the mask
/// they were shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secret {
    /// In each list item, `field` holds a crypt(3) hash, named by the item's key. An
    /// operator may send `plaintext` instead, which the backend hashes before storing.
    ItemHash {
        field: &'static str,
        plaintext: &'static str,
    },
    /// Every value of the object `field` is sealed at rest, named by its key, and opened
    /// only into a device's bundle.
    Sealed { field: &'static str },
}

/// What compiling a document needs from the backend.
pub trait Resolve {
    /// The content behind a file-manager path; the bundle then references it, so the
    /// device may download it. `None` when the path is not in the file manager.
    fn file(&mut self, path: &str) -> Option<FileRef>;
    /// The plaintext of a secret sealed under `key`; the message says why it cannot be.
    fn open_secret(&mut self, key: &str, sealed: &str) -> Result<String, String>;
}

/// File-manager content as a bundle names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRef {
    pub sha256: String,
    pub size: u64,
}

/// Why a merged document did not compile. The backend adds the node it came from.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    /// The document does not parse or breaks a rule.
    #[error("{0}")]
    Invalid(String),
    /// List item `item` uses a file-manager path that is not there.
    #[error("item {item} uses {path}, which is not in the file manager")]
    MissingFile { item: usize, path: String },
    /// A sealed secret could not be opened.
    #[error("secret {key}: {message}")]
    Secret { key: String, message: String },
}

/// One policy, implemented by the type a bundle carries for it.
///
/// The contract, for implementers:
/// - [`validate_document`](Policy::validate_document) runs on every document an operator
///   sets and again on the merged document before compiling. Its message names the
///   offending item (`user bob: ...`) but not the policy, which callers add.
/// - [`compile`](Policy::compile) turns a merged, validated document into the bundle's
///   form, or `None` when the document leaves nothing to manage. It must be deterministic:
///   equal documents and files give equal values, so unchanged devices keep their bundle.
/// - [`validate`](Policy::validate) is what an agent checks in a signed bundle before it
///   applies anything. It must accept everything `compile` produces.
/// - Secrets named in [`SECRETS`](Policy::SECRETS) must be fields of the document; the
///   backend masks and restores them by those names.
pub trait Policy: InBundle + Serialize + DeserializeOwned {
    /// One line on what the policy does, for operators.
    const SUMMARY: &'static str;
    /// How a node's document combines with what it inherits.
    const MERGE: Merge;
    /// Fields holding secrets or password hashes.
    const SECRETS: &'static [Secret] = &[];
    /// What an operator sets on a node. Unknown fields must be errors: a typo must not
    /// silently turn a setting off.
    type Document: Serialize + DeserializeOwned;

    /// Checks an operator's document.
    fn validate_document(doc: &Self::Document) -> Result<(), String>;
    /// The bundle's form of a merged document.
    fn compile(
        doc: Self::Document,
        resolve: &mut dyn Resolve,
    ) -> Result<Option<Self>, CompileError>;
    /// Checks the bundle's form, as the agent receives it.
    fn validate(&self) -> Result<(), String>;
}

/// A policy's place in a bundle. The list at the end of this file implements it for every
/// policy; nothing else does.
pub trait InBundle: Sized {
    /// The policy's name in documents, bundles, reports and the API: its field in
    /// [`Policies`].
    const NAME: &'static str;
    fn slot(policies: &Policies) -> &Option<Self>;
    fn slot_mut(policies: &mut Policies) -> &mut Option<Self>;
}

/// A policy as the backend handles it by name: [`Policy`] with its types erased.
pub trait PolicyDef: Sync {
    fn name(&self) -> &'static str;
    fn summary(&self) -> &'static str;
    fn merge(&self) -> Merge;
    fn secrets(&self) -> &'static [Secret];
    /// Parses and validates an operator's document.
    fn check_document(&self, doc: &Value) -> Result<(), String>;
    /// Compiles a merged document into this policy's slot of `into`.
    fn compile_into(
        &self,
        doc: &Value,
        resolve: &mut dyn Resolve,
        into: &mut Policies,
    ) -> Result<(), CompileError>;
}

/// The [`PolicyDef`] of `P`.
struct Def<P>(PhantomData<fn() -> P>);

impl<P: Policy> Def<P> {
    fn document(doc: &Value) -> Result<P::Document, String> {
        let parsed = P::Document::deserialize(doc).map_err(|e| e.to_string())?;
        P::validate_document(&parsed)?;
        Ok(parsed)
    }
}

impl<P: Policy> PolicyDef for Def<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn summary(&self) -> &'static str {
        P::SUMMARY
    }

    fn merge(&self) -> Merge {
        P::MERGE
    }

    fn secrets(&self) -> &'static [Secret] {
        P::SECRETS
    }

    fn check_document(&self, doc: &Value) -> Result<(), String> {
        Self::document(doc).map(drop)
    }

    fn compile_into(
        &self,
        doc: &Value,
        resolve: &mut dyn Resolve,
        into: &mut Policies,
    ) -> Result<(), CompileError> {
        let doc = Self::document(doc).map_err(CompileError::Invalid)?;
        *P::slot_mut(into) = P::compile(doc, resolve)?;
        Ok(())
    }
}

/// The policy named `name`.
pub fn find(name: &str) -> Option<&'static dyn PolicyDef> {
    ALL.iter().copied().find(|p| p.name() == name)
}

/// Every policy's name, in [`ALL`]'s order.
pub fn names() -> impl Iterator<Item = &'static str> {
    ALL.iter().map(|p| p.name())
}

/// Declares the list of policies: the bundle's fields, each policy's name, and [`ALL`].
macro_rules! policies {
    ($($field:ident: $policy:ty,)+) => {
        /// Every policy a bundle may carry; an absent one is not managed on the device.
        /// Fields serialise in this order, which bundle hashes depend on.
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct Policies {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$policy>,
            )+
        }

        $(
            impl InBundle for $policy {
                const NAME: &'static str = stringify!($field);
                fn slot(policies: &Policies) -> &Option<Self> {
                    &policies.$field
                }
                fn slot_mut(policies: &mut Policies) -> &mut Option<Self> {
                    &mut policies.$field
                }
            }
        )+

        /// Every policy, in the order operators see them.
        pub static ALL: &[&dyn PolicyDef] = &[$(&Def::<$policy>(PhantomData),)+];

        impl Policies {
            /// Checks every policy the bundle carries; the message starts with the
            /// policy's name.
            pub fn validate(&self) -> Result<(), String> {
                $(
                    if let Some(p) = &self.$field {
                        p.validate().map_err(|e| format!("{}: {e}", stringify!($field)))?;
                    }
                )+
                Ok(())
            }
        }
    };
}

// The list: one line per policy, `name: module::Type`. The order is the bundle's field
// order (bundle hashes depend on it) and the order operators see; add new policies last.
policies! {
    parameters: parameters::Parameters,
    settings: settings::Settings,
    file_distribution: file_distribution::FileDistribution,
    users: users::Users,
    ssh_keys: ssh_keys::SshKeys,
    passwords: passwords::Passwords,
    ntp: ntp::Ntp,
    process_watch: process_watch::ProcessWatch,
    connectivity_watchdog: connectivity_watchdog::ConnectivityWatchdog,
    metrics_monitor: metrics_monitor::MetricsMonitor,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_found() {
        let names: Vec<&str> = names().collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "a name is listed twice");
        for name in names {
            assert!(
                name.bytes().all(|c| c.is_ascii_lowercase() || c == b'_'),
                "{name}"
            );
            assert_eq!(find(name).map(|p| p.name()), Some(name));
            assert!(!find(name).unwrap().summary().is_empty(), "{name}");
        }
        assert!(find("nope").is_none());
    }

    /// The merge shape and secret fields name fields the document really has.
    #[test]
    fn shapes_and_secrets_name_document_fields() {
        for p in ALL {
            let fields: Vec<&str> = match p.merge() {
                Merge::Whole => vec![],
                Merge::List { items, .. } => vec![items],
                Merge::PerKey { maps } => maps.to_vec(),
            };
            for field in fields {
                let mut doc = serde_json::Map::new();
                doc.insert(field.to_string(), Value::Array(vec![]));
                let err = p.check_document(&Value::Object(doc)).err();
                assert!(
                    !err.as_deref()
                        .unwrap_or_default()
                        .contains(&format!("unknown field `{field}`")),
                    "{}: {field} is not a field of its document",
                    p.name()
                );
            }
            for secret in p.secrets() {
                match (secret, p.merge()) {
                    (Secret::ItemHash { .. }, Merge::List { .. }) => {}
                    (Secret::Sealed { field }, Merge::PerKey { maps }) => {
                        assert!(maps.contains(field), "{}: {field}", p.name())
                    }
                    (s, m) => panic!("{}: secret {s:?} does not fit merge {m:?}", p.name()),
                }
            }
        }
    }

    /// docs/policies.md has one section per policy, in this order.
    #[test]
    fn every_policy_is_documented() {
        let doc = include_str!("../../../docs/policies.md");
        let sections: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("## `")?.strip_suffix('`'))
            .collect();
        assert_eq!(sections, names().collect::<Vec<_>>());
    }

    #[test]
    fn bundle_validation_names_the_policy() {
        use ntp::Ntp;
        let policies = Policies {
            ntp: Some(Ntp { servers: vec![] }),
            ..Policies::default()
        };
        assert_eq!(
            policies.validate(),
            Err("ntp: servers must list at least one NTP server".into())
        );
    }
}
