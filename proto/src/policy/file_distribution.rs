//! `file_distribution`: files kept identical to sources in the backend's file manager,
//! optionally rendered as mustache templates, grouped in sets that share template values, a
//! pre-condition and a command run after a change.
//!
//! Operators name sources by file-manager path; the bundle names them by SHA-256 and size,
//! which compiling looks up.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::parts::MergeMode;
use super::rules::{is_clean_absolute_path, validate_user_name};
use super::{CompileError, Merge, Policy, Resolve};

/// Longest file path accepted, on the device and in the file manager.
pub const MAX_PATH_BYTES: usize = 1024;

/// The file sets a device must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDistribution {
    pub sets: Vec<FileSet>,
}

/// A group of files that share parameters, a pre-condition and a command run on change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSet {
    /// Operator's name for the set, used in reports.
    #[serde(default)]
    pub label: String,
    /// Shell command that must exit 0 for the set to be applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_condition: Option<String>,
    /// Shell command run after any file of the set changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Values for `{{key}}` in the set's templates.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    pub files: Vec<DistributedFile>,
}

/// One file: where its content comes from and where it goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistributedFile {
    /// File-manager path of the source, for reports.
    pub source: String,
    /// SHA-256 of the source content; also its download name.
    pub sha256: String,
    /// Size of the source in bytes.
    pub size: u64,
    /// Absolute path on the device.
    pub destination: String,
    /// Render the source as a mustache template with the set's parameters.
    #[serde(default)]
    pub template: bool,
    /// Owner by name (looked up on the device) or numeric id; `None` keeps the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Group by name or numeric id; `None` keeps the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Permission bits; `None` keeps the current mode (0644 for a new file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// What an operator sets: sets of files named by file-manager path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDistributionDocument {
    /// `replace` (default: break inheritance) or `extend` the inherited sets.
    #[serde(default)]
    pub merge: MergeMode,
    pub sets: Vec<FileSetDocument>,
}

/// One file set of a document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSetDocument {
    #[serde(default)]
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    pub files: Vec<FileDocument>,
}

/// One file of a document's set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDocument {
    /// Path in the file manager.
    pub source: String,
    /// Absolute path on the device.
    pub destination: String,
    #[serde(default)]
    pub template: bool,
    /// Owner (name or numeric id; default: kept, root for a new file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Group (name or numeric id; default: kept, root's group for a new file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Permission bits in octal, like `"0640"` (default: kept, 0644 for a new file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

impl Policy for FileDistribution {
    const SUMMARY: &'static str =
        "Files kept identical to file-manager sources, optionally rendered as templates.";
    const MERGE: Merge = Merge::List {
        items: "sets",
        key: "label",
    };
    type Document = FileDistributionDocument;

    fn validate_document(doc: &FileDistributionDocument) -> Result<(), String> {
        let mut destinations = BTreeSet::new();
        for (i, set) in doc.sets.iter().enumerate() {
            let where_ = |what: String| format!("sets[{i}]: {what}");
            if set.files.is_empty() {
                return Err(where_("a set needs at least one file".into()));
            }
            for key in set.parameters.keys() {
                if key.is_empty() || key.contains(['{', '}']) || key.trim() != key {
                    return Err(where_(format!(
                        "parameter name {key:?} is not usable in {{{{key}}}}"
                    )));
                }
            }
            for f in &set.files {
                validate_file_manager_path(&f.source).map_err(&where_)?;
                validate_destination(&f.destination).map_err(&where_)?;
                if !destinations.insert(f.destination.as_str()) {
                    return Err(where_(format!(
                        "destination {} appears twice",
                        f.destination
                    )));
                }
                validate_ownership(f).map_err(&where_)?;
            }
        }
        Ok(())
    }

    /// Looks every source up in the file manager; the error names the set that uses a
    /// missing one.
    fn compile(
        doc: FileDistributionDocument,
        resolve: &mut dyn Resolve,
    ) -> Result<Option<Self>, CompileError> {
        let mut sets = Vec::with_capacity(doc.sets.len());
        for (item, set) in doc.sets.into_iter().enumerate() {
            let mut files = Vec::with_capacity(set.files.len());
            for f in set.files {
                let content = resolve
                    .file(&f.source)
                    .ok_or_else(|| CompileError::MissingFile {
                        item,
                        path: f.source.clone(),
                    })?;
                files.push(DistributedFile {
                    mode: f
                        .mode
                        .as_deref()
                        .map(parse_mode)
                        .transpose()
                        .map_err(CompileError::Invalid)?,
                    source: f.source,
                    sha256: content.sha256,
                    size: content.size,
                    destination: f.destination,
                    template: f.template,
                    owner: f.owner,
                    group: f.group,
                });
            }
            sets.push(FileSet {
                label: set.label,
                pre_condition: set.pre_condition,
                command: set.command,
                parameters: set.parameters,
                files,
            });
        }
        Ok(Some(FileDistribution { sets }))
    }

    /// Well-formed digests, and destinations that are absolute or start with a `$(key)` the
    /// agent expands (and then checks again).
    fn validate(&self) -> Result<(), String> {
        for file in self.sets.iter().flat_map(|s| &s.files) {
            if !crate::digest::is_sha256_hex(&file.sha256) {
                return Err(format!("file {} has a malformed sha256", file.source));
            }
            if !file.destination.starts_with('/') && !file.destination.starts_with("$(") {
                return Err(format!(
                    "destination {:?} of {} is not an absolute path",
                    file.destination, file.source
                ));
            }
        }
        Ok(())
    }
}

/// An absolute file path (not a directory) without empty, `.` or `..` segments or control
/// characters: no way to climb out of where it points.
fn is_clean_absolute_file_path(path: &str) -> bool {
    path.len() <= MAX_PATH_BYTES && is_clean_absolute_path(path)
}

/// Owners and groups are account names or numeric ids; modes are octal permission bits.
fn validate_ownership(f: &FileDocument) -> Result<(), String> {
    for (what, name) in [("owner", &f.owner), ("group", &f.group)] {
        if let Some(name) = name
            && !name.bytes().all(|c| c.is_ascii_digit())
        {
            validate_user_name(name).map_err(|e| format!("{what} of {}: {e}", f.destination))?;
        }
    }
    if let Some(mode) = &f.mode {
        parse_mode(mode).map_err(|e| format!("mode of {}: {e}", f.destination))?;
    }
    Ok(())
}

/// Parses an octal mode like `"0640"` or `"755"`.
pub fn parse_mode(mode: &str) -> Result<u32, String> {
    match u32::from_str_radix(mode, 8) {
        Ok(m) if (3..=4).contains(&mode.len()) && m <= 0o7777 => Ok(m),
        _ => Err(format!(
            "{mode:?} is not an octal mode like \"0644\" (3 or 4 octal digits)"
        )),
    }
}

/// File-manager paths, like `/configs/app.conf`.
pub fn validate_file_manager_path(path: &str) -> Result<(), String> {
    if is_clean_absolute_file_path(path) {
        Ok(())
    } else {
        Err(format!(
            "file manager path {path:?} must be absolute, like /configs/app.conf, without . or .. segments"
        ))
    }
}

/// Destinations are absolute, or start with a `$(key)` that the agent expands (and then
/// checks the result is a clean absolute path).
fn validate_destination(path: &str) -> Result<(), String> {
    let anchored = match path.strip_prefix("$(") {
        Some(rest) if rest.contains(')') => {
            format!("/x{}", &rest[rest.find(')').unwrap_or(0) + 1..])
        }
        _ => path.to_string(),
    };
    if is_clean_absolute_file_path(&anchored) || (path.starts_with("$(") && anchored == "/x") {
        Ok(())
    } else {
        Err(format!(
            "destination {path:?} must be an absolute file path (or start with $(key)) without . or .. segments"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("755"), Ok(0o755));
        for bad in ["999", "64", "07777777", "rw-"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn destinations_may_start_with_a_parameter() {
        for ok in ["/etc/a", "$(dir)/a", "$(dir)", "$(dir)/$(name).conf"] {
            assert_eq!(validate_destination(ok), Ok(()), "{ok}");
        }
        for bad in ["etc/a", "$(dir", "$(dir)/../a", "$(dir)//a", "/a/"] {
            assert!(validate_destination(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bundles_need_digests_and_absolute_destinations() {
        let file = |sha256: &str, destination: &str| DistributedFile {
            source: "/a".into(),
            sha256: sha256.into(),
            size: 1,
            destination: destination.into(),
            template: false,
            owner: None,
            group: None,
            mode: None,
        };
        let spec = |f| FileDistribution {
            sets: vec![FileSet {
                files: vec![f],
                ..FileSet::default()
            }],
        };
        let digest = crate::digest::sha256_hex(b"a");
        assert_eq!(spec(file(&digest, "/etc/a")).validate(), Ok(()));
        assert_eq!(spec(file(&digest, "$(dir)/a")).validate(), Ok(()));
        assert!(spec(file("abc", "/etc/a")).validate().is_err());
        assert!(spec(file(&digest, "etc/a")).validate().is_err());
    }
}
