//! A submitted policy form back into its JSON document.
//!
//! Blank list rows and rows ticked "remove" are dropped; blank optional inputs leave their
//! key out, so the document holds only what the operator set. Errors name the row and the
//! field as the form shows them ("file set 1, file 2: Source is required"). Everything
//! else is checked afterwards by the same validation as the API.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::schema::{Field, INPUT_PREFIX, KEPT, Kind, REMOVE};
use crate::secrets::MASK;

/// Why a submitted form is not a document: every problem found, and the document as far
/// as it could be read, so the form can be shown again as the operator filled it in.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{}", .problems.join("; "))]
pub struct FormError {
    pub problems: Vec<String>,
    pub partial: Value,
}

/// The form's policy inputs by name.
pub struct FormData(BTreeMap<String, String>);

impl FormData {
    /// Keeps the policy inputs (named `f.…`) of a submitted form.
    pub fn new(pairs: &[(String, String)]) -> Self {
        FormData(
            pairs
                .iter()
                .filter(|(name, _)| name.starts_with(INPUT_PREFIX))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A value that is not blank.
    fn filled(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    /// Row numbers under `list.`, in order.
    fn rows(&self, list: &str) -> BTreeSet<usize> {
        let prefix = format!("{list}.");
        self.0
            .range(prefix.clone()..)
            .take_while(|(name, _)| name.starts_with(&prefix))
            .filter_map(|(name, _)| name[prefix.len()..].split('.').next()?.parse().ok())
            .collect()
    }

    fn removed(&self, row: &str) -> bool {
        self.0.contains_key(&format!("{row}{REMOVE}"))
    }
}

/// The document the form describes.
pub fn document(fields: &[Field], form: &FormData) -> Result<Value, FormError> {
    let mut problems = Vec::new();
    let doc = Value::Object(object(fields, INPUT_PREFIX, "", form, &mut problems));
    if problems.is_empty() {
        Ok(doc)
    } else {
        Err(FormError {
            problems,
            partial: doc,
        })
    }
}

/// The object of `fields` under `prefix`; problems are collected, with `at` naming the row.
fn object(
    fields: &[Field],
    prefix: &str,
    at: &str,
    form: &FormData,
    problems: &mut Vec<String>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for field in fields {
        let name = format!("{prefix}{}", field.key);
        let label = field.label;
        let mut fail = |what: String| {
            problems.push(format!("{at}{label}{what}"));
            None
        };
        let value = match &field.kind {
            Kind::Text { required } => match form.filled(&name) {
                Some(v) => Some(Value::String(v.to_string())),
                None if *required => fail(" is required".into()),
                None => None,
            },
            Kind::Number => match form.filled(&name) {
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) => Some(Value::from(n)),
                    Err(_) => fail(format!(": {v:?} is not a whole number")),
                },
                None => None,
            },
            Kind::Decimal => match form.filled(&name).map(str::trim) {
                // A whole number stays one, so a document reads back as it was written.
                Some(v) => match v.parse::<i64>() {
                    Ok(i) => Some(Value::from(i)),
                    Err(_) => match v.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                        Some(n) => Some(Value::Number(n)),
                        None => fail(format!(": {v:?} is not a number")),
                    },
                },
                None => None,
            },
            Kind::Flag => form.get(&name).map(|_| Value::Bool(true)),
            Kind::YesNo => match form.get(&name).unwrap_or("") {
                "" => None,
                "yes" => Some(Value::Bool(true)),
                "no" => Some(Value::Bool(false)),
                other => fail(format!(": {other:?} is neither yes nor no")),
            },
            Kind::Choice(options) => match form.get(&name).unwrap_or("") {
                "" => None,
                v if v == options[0] => None,
                v if options.contains(&v) => Some(Value::String(v.to_string())),
                other => fail(format!(": {other:?} is not one of {}", options.join(", "))),
            },
            Kind::Lines => Some(Value::Array(
                form.get(&name)
                    .unwrap_or("")
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| Value::String(l.to_string()))
                    .collect(),
            )),
            Kind::Map => match map(&name, form, |_, value, _| {
                Ok(value.unwrap_or("").to_string())
            }) {
                Ok(m) => Some(m),
                Err(e) => fail(e),
            }
            .filter(|m| m.as_object().is_some_and(|m| !m.is_empty())),
            Kind::SecretMap => match map(&name, form, |key, value, kept| match value {
                Some(v) => Ok(v.to_string()),
                None if kept => Ok(MASK.to_string()),
                None => Err(format!(" {key}: type its value")),
            }) {
                Ok(m) => Some(m),
                Err(e) => fail(e),
            }
            .filter(|m| m.as_object().is_some_and(|m| !m.is_empty())),
            Kind::Password { replaces } => match form.get(&name).filter(|v| !v.is_empty()) {
                Some(v) => {
                    out.remove(*replaces);
                    Some(Value::String(v.to_string()))
                }
                None => None,
            },
            Kind::Records { item, fields } => {
                let mut items = Vec::new();
                for (position, row) in form.rows(&name).into_iter().enumerate() {
                    let row = format!("{name}.{row}.");
                    if form.removed(&row) || is_blank(fields, &row, form) {
                        continue;
                    }
                    let at = format!("{at}{item} {}: ", position + 1);
                    items.push(Value::Object(object(fields, &row, &at, form, problems)));
                }
                Some(Value::Array(items))
            }
        };
        if let Some(value) = value {
            out.insert(field.key.to_string(), value);
        }
    }
    out
}

/// Name/value rows into an object; `value` turns a row's value (None when blank) and
/// whether it is a kept secret into what the document holds.
fn map(
    name: &str,
    form: &FormData,
    value: impl Fn(&str, Option<&str>, bool) -> Result<String, String>,
) -> Result<Value, String> {
    let mut out = Map::new();
    for row in form.rows(name) {
        let row = format!("{name}.{row}.");
        if form.removed(&row) {
            continue;
        }
        let given = form.get(&format!("{row}v")).filter(|v| !v.is_empty());
        let kept = form.get(&format!("{row}{KEPT}")).is_some();
        let Some(key) = form.filled(&format!("{row}k")).map(str::trim) else {
            if given.is_some_and(|v| !v.trim().is_empty()) {
                return Err(": a value without a name".into());
            }
            continue;
        };
        if out.contains_key(key) {
            return Err(format!(": {key} appears twice"));
        }
        out.insert(key.to_string(), Value::String(value(key, given, kept)?));
    }
    Ok(Value::Object(out))
}

/// A row where nothing was typed: choices and checkboxes alone do not make an item.
fn is_blank(fields: &[Field], row: &str, form: &FormData) -> bool {
    fields.iter().all(|field| {
        let name = format!("{row}{}", field.key);
        match &field.kind {
            Kind::Text { .. }
            | Kind::Number
            | Kind::Decimal
            | Kind::Lines
            | Kind::Password { .. } => form.filled(&name).is_none(),
            Kind::Map | Kind::SecretMap => form.rows(&name).into_iter().all(|r| {
                ["k", "v"]
                    .iter()
                    .all(|part| form.filled(&format!("{name}.{r}.{part}")).is_none())
            }),
            Kind::Records { fields, .. } => form
                .rows(&name)
                .into_iter()
                .all(|r| is_blank(fields, &format!("{name}.{r}."), form)),
            Kind::Flag | Kind::YesNo | Kind::Choice(_) => true,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::policy_forms::catalogue::form_for;
    use serde_json::json;

    fn submit(policy: &str, pairs: &[(&str, &str)]) -> Result<Value, FormError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        document(form_for(policy).unwrap().fields, &FormData::new(&pairs))
    }

    #[test]
    fn nested_lists_become_the_document() {
        let doc = submit(
            "file_distribution",
            &[
                ("csrf", "ignored"),
                ("f.merge", "extend"),
                ("f.sets.0.label", "motd"),
                ("f.sets.0.command", ""),
                ("f.sets.0.parameters.0.k", "site"),
                ("f.sets.0.parameters.0.v", "the lab"),
                ("f.sets.0.parameters.1.k", ""),
                ("f.sets.0.parameters.1.v", ""),
                ("f.sets.0.files.0.source", "/t/motd"),
                ("f.sets.0.files.0.destination", "/etc/motd"),
                ("f.sets.0.files.0.template", "on"),
                ("f.sets.0.files.0.mode", "0644"),
                // Row 10 sorts after row 2: rows are numbers, not strings.
                ("f.sets.0.files.10.source", "/t/b"),
                ("f.sets.0.files.10.destination", "/etc/b"),
                ("f.sets.0.files.2.source", "/t/a"),
                ("f.sets.0.files.2.destination", "/etc/a"),
                ("f.sets.0.files.3.source", "/t/gone"),
                ("f.sets.0.files.3.destination", "/etc/gone"),
                ("f.sets.0.files.3._remove", "on"),
                ("f.sets.0.files.4.source", " "),
                ("f.sets.0.files.4.template", "on"),
                // A blank set, as the form always offers one.
                ("f.sets.1.label", ""),
                ("f.sets.1.files.0.source", ""),
            ],
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"merge": "extend", "sets": [{"label": "motd", "parameters": {"site": "the lab"},
                "files": [
                    {"source": "/t/motd", "destination": "/etc/motd", "template": true, "mode": "0644"},
                    {"source": "/t/a", "destination": "/etc/a"},
                    {"source": "/t/b", "destination": "/etc/b"}]}]})
        );
    }

    #[test]
    fn scalars_keep_only_what_was_set() {
        assert_eq!(
            submit(
                "settings",
                &[("f.interval_seconds", " 600 "), ("f.reports", "")]
            )
            .unwrap(),
            json!({"interval_seconds": 600})
        );
        assert_eq!(
            submit("settings", &[("f.reports", "no")]).unwrap(),
            json!({"reports": false})
        );
        assert_eq!(
            submit(
                "ntp",
                &[("f.servers", "0.pool.ntp.org\r\n\r\n  192.0.2.1 \n")]
            )
            .unwrap(),
            json!({"servers": ["0.pool.ntp.org", "192.0.2.1"]})
        );
        assert_eq!(
            submit(
                "users",
                &[("f.items.0.name", "bob"), ("f.items.0.state", "absent")]
            )
            .unwrap(),
            json!({"items": [{"name": "bob", "state": "absent"}]})
        );
    }

    #[test]
    fn a_typed_password_replaces_the_hash_and_a_blank_one_keeps_it() {
        let doc = submit(
            "passwords",
            &[
                ("f.items.0.user", "root"),
                ("f.items.0.hash", MASK),
                ("f.items.0.password", ""),
                ("f.items.1.user", "bob"),
                ("f.items.1.hash", MASK),
                ("f.items.1.password", "correct horse"),
            ],
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"items": [{"user": "root", "hash": MASK}, {"user": "bob", "password": "correct horse"}]})
        );
    }

    #[test]
    fn secrets_are_kept_or_replaced() {
        let doc = submit(
            "parameters",
            &[
                ("f.values.0.k", "broker"),
                ("f.values.0.v", "mqtt.example.com"),
                ("f.secrets.0.k", "token"),
                ("f.secrets.0.v", ""),
                ("f.secrets.0._kept", "1"),
                ("f.secrets.1.k", "key"),
                ("f.secrets.1.v", "s3cret"),
            ],
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"values": {"broker": "mqtt.example.com"}, "secrets": {"token": MASK, "key": "s3cret"}})
        );
    }

    #[test]
    fn every_problem_is_named_and_the_rest_kept() {
        let err = submit(
            "users",
            &[
                ("f.items.0.name", "alice"),
                ("f.items.0.uid", "many"),
                ("f.items.1.home", "/srv/nobody"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err.problems,
            [
                "account 1: UID: \"many\" is not a whole number",
                "account 2: Name is required"
            ]
        );
        assert_eq!(
            err.partial,
            json!({"items": [{"name": "alice"}, {"home": "/srv/nobody"}]})
        );
    }

    #[test]
    fn errors_name_the_row_and_the_field() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (
                "file_distribution",
                &[
                    ("f.sets.0.files.0.source", ""),
                    ("f.sets.0.files.0.destination", "/a"),
                    ("f.sets.0.files.1.source", "/b"),
                ],
                "file set 1: file 1: Source is required",
            ),
            (
                "file_distribution",
                &[
                    ("f.sets.0.files.0.source", "/a"),
                    ("f.sets.0.files.0.destination", "/a"),
                    ("f.sets.0.files.1.source", "/b"),
                ],
                "file set 1: file 2: Destination is required",
            ),
            (
                "settings",
                &[("f.interval_seconds", "ten")],
                "Check-in interval (s): \"ten\" is not a whole number",
            ),
            (
                "users",
                &[("f.items.0.name", "bob"), ("f.items.0.state", "gone")],
                "account 1: State: \"gone\" is not one of present, absent",
            ),
            (
                "parameters",
                &[("f.values.0.k", ""), ("f.values.0.v", "orphan")],
                "Values: a value without a name",
            ),
            (
                "parameters",
                &[("f.values.0.k", "a"), ("f.values.1.k", "a")],
                "Values: a appears twice",
            ),
            (
                "parameters",
                &[("f.secrets.0.k", "token")],
                "Secrets token: type its value",
            ),
            (
                "process_watch",
                &[("f.items.0.name", "crond")],
                "process 1: Command is required",
            ),
        ];
        for (policy, pairs, want) in cases {
            let err = submit(policy, pairs).unwrap_err().to_string();
            assert!(err.contains(want), "{policy}: {err}");
        }
    }
}
