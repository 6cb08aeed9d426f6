//! Policy forms as HTML: inputs named by their path in the document, or the same layout
//! read-only with the node each inherited item comes from.
//!
//! Every list gets one blank row (a form without JavaScript can still add an item) and a
//! `<template>` of that row that `app.js` clones for "Add …". Templates number their rows
//! with a placeholder per nesting depth (`__0__`, `__1__`), so a new file set carries a
//! template for its own files.

use std::collections::BTreeMap;

use maud::{Markup, html};
use serde_json::Value;

use super::schema::{Field, INPUT_PREFIX, KEPT, Kind, MERGE_KEY, REMOVE};
use crate::secrets::MASK;

/// Where the parts of an inherited document come from.
pub struct Origins<'a> {
    /// List-like policies: the node of each item, in order.
    pub items: &'a [String],
    /// `parameters`: the node of each key.
    pub keys: &'a BTreeMap<String, String>,
}

/// The inputs of an editable form, filled in from `doc` (`Value::Null` for a blank form).
pub fn editor(fields: &[Field], doc: &Value) -> Markup {
    Renderer {
        editable: true,
        origins: None,
    }
    .fields(fields, INPUT_PREFIX, doc, 0)
}

/// `doc` in the editor's layout, read-only, each item or key labelled with its node.
/// In-force documents are already merged, so their `merge` choice is not shown.
pub fn read_only(fields: &[Field], doc: &Value, origins: Origins) -> Markup {
    Renderer {
        editable: false,
        origins: Some(origins),
    }
    .fields(fields, INPUT_PREFIX, doc, 0)
}

struct Renderer<'a> {
    editable: bool,
    /// Only for the document's top-level lists.
    origins: Option<Origins<'a>>,
}

impl Renderer<'_> {
    fn fields(&self, fields: &[Field], prefix: &str, doc: &Value, depth: usize) -> Markup {
        let shown = fields
            .iter()
            .filter(|f| self.editable || depth > 0 || f.key != MERGE_KEY);
        html! {
            @for field in shown {
                @let name = format!("{prefix}{}", field.key);
                @if field.is_wide() {
                    div.wide-field {
                        h3 { (field.label) }
                        @if !field.hint.is_empty() { p.hint { (field.hint) } }
                        (self.list(field, &name, &doc[field.key], depth))
                    }
                } @else {
                    div.field {
                        label for=[self.id(&name)] { (field.label) }
                        (self.input(field, &name, &doc[field.key]))
                        @if !field.hint.is_empty() { span.hint { (field.hint) } }
                    }
                }
            }
        }
    }

    /// An input's name, when the form is editable.
    fn name(&self, name: &str) -> Option<String> {
        self.editable.then(|| name.to_string())
    }

    fn id(&self, name: &str) -> Option<String> {
        self.editable.then(|| name.replace('.', "-"))
    }

    /// The input of one scalar field.
    fn input(&self, field: &Field, name: &str, value: &Value) -> Markup {
        let (n, id, ro, label) = (self.name(name), self.id(name), !self.editable, field.label);
        match &field.kind {
            Kind::Text { .. } => html! {
                input type="text" name=[n] id=[id] value=(text(value)) disabled[ro] aria-label=(label);
            },
            Kind::Number => html! {
                input type="number" min="0" step="1" name=[n] id=[id] value=(text(value)) disabled[ro] aria-label=(label);
            },
            Kind::Decimal => html! {
                input type="number" step="any" name=[n] id=[id] value=(text(value)) disabled[ro] aria-label=(label);
            },
            Kind::Flag => html! {
                input type="checkbox" name=[n] id=[id] checked[value == &Value::Bool(true)] disabled[ro] aria-label=(label);
            },
            Kind::YesNo => {
                let current = match value {
                    Value::Bool(true) => "yes",
                    Value::Bool(false) => "no",
                    _ => "",
                };
                html! {
                    select name=[n] id=[id] disabled[ro] aria-label=(label) {
                        @for (v, shown) in [("", "default"), ("yes", "yes"), ("no", "no")] {
                            option value=(v) selected[v == current] { (shown) }
                        }
                    }
                }
            }
            Kind::Choice(options) => {
                let current = value.as_str().unwrap_or(options[0]);
                html! {
                    select name=[n] id=[id] disabled[ro] aria-label=(label) {
                        @for v in *options { option value=(v) selected[*v == current] { (v) } }
                    }
                }
            }
            Kind::Lines => {
                let lines: Vec<&str> = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                html! {
                    textarea.lines name=[n] id=[id] rows=(lines.len().clamp(1, 8) + 1) disabled[ro] aria-label=(label) spellcheck="false" {
                        (lines.join("\n"))
                    }
                }
            }
            Kind::Password { .. } if self.editable => html! {
                input type="password" name=[n] id=[id] autocomplete="new-password" placeholder="blank: unchanged" aria-label=(label);
            },
            Kind::Password { .. } => html! { span.muted { "—" } },
            Kind::Map | Kind::SecretMap | Kind::Records { .. } => self.list(field, name, value, 0),
        }
    }

    /// A list-like field: records, name/value rows or secrets.
    fn list(&self, field: &Field, name: &str, value: &Value, depth: usize) -> Markup {
        let origins = self.origins.as_ref().filter(|_| depth == 0);
        let placeholder = format!("__{depth}__");
        let (rows, blank, add) = match &field.kind {
            Kind::Records { item, fields } => {
                let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
                let from = |i: usize| origins.and_then(|o| o.items.get(i)).map(String::as_str);
                let table = !fields.iter().any(Field::is_wide);
                let row = |index: &str, item_value: &Value, from: Option<&str>| {
                    let row_name = format!("{name}.{index}.");
                    if table {
                        self.table_row(fields, &row_name, item_value, from)
                    } else {
                        self.card(item, fields, &row_name, item_value, from, depth)
                    }
                };
                let rows = html! {
                    @for (i, v) in items.iter().enumerate() { (row(&i.to_string(), v, from(i))) }
                    @if self.editable { (row(&items.len().to_string(), &Value::Null, None)) }
                };
                let body = if table {
                    html! {
                        table.form-table {
                            thead { tr {
                                @for f in *fields { th title=(f.hint) { (f.label) } }
                                @if origins.is_some() { th { "From" } }
                                @if self.editable { th { "Remove" } }
                            } }
                            tbody data-rows { (rows) }
                        }
                    }
                } else {
                    html! { div data-rows { (rows) } }
                };
                (
                    body,
                    row(&placeholder, &Value::Null, None),
                    (items.len() + 1, format!("Add {item}")),
                )
            }
            Kind::Map | Kind::SecretMap => {
                let secret = matches!(field.kind, Kind::SecretMap);
                let entries: Vec<(&String, &Value)> =
                    value.as_object().into_iter().flatten().collect();
                let row = |index: &str, entry: Option<(&str, &Value)>| {
                    let from = entry
                        .and_then(|(key, _)| origins?.keys.get(key))
                        .map(String::as_str);
                    self.map_row(&format!("{name}.{index}."), entry, secret, from)
                };
                let body = html! {
                    table.form-table {
                        thead { tr {
                            th { "Name" } th { "Value" }
                            @if origins.is_some() { th { "From" } }
                            @if self.editable { th { "Remove" } }
                        } }
                        tbody data-rows {
                            @for (i, (k, v)) in entries.iter().enumerate() { (row(&i.to_string(), Some((k.as_str(), v)))) }
                            @if self.editable { (row(&entries.len().to_string(), None)) }
                        }
                    }
                };
                let what = if secret { "Add secret" } else { "Add value" };
                (
                    body,
                    row(&placeholder, None),
                    (entries.len() + 1, what.to_string()),
                )
            }
            _ => return self.input(field, name, value),
        };
        // The next free row number: the rows shown plus the blank one.
        let (next, add_label) = add;
        html! {
            div.records {
                (rows)
                @if self.editable {
                    template data-placeholder=(placeholder) { (blank) }
                    button.secondary.add-row type="button" data-add-row data-list=(name) data-next=(next) { (add_label) }
                }
            }
        }
    }

    fn table_row(&self, fields: &[Field], row: &str, value: &Value, from: Option<&str>) -> Markup {
        html! {
            tr {
                @for f in fields { td { (self.input(f, &format!("{row}{}", f.key), &value[f.key])) } }
                @if self.origins.is_some() { td.from { (from.unwrap_or("")) } }
                @if self.editable { td { (self.remove(row, "remove")) } }
            }
        }
    }

    fn card(
        &self,
        item: &str,
        fields: &[Field],
        row: &str,
        value: &Value,
        from: Option<&str>,
        depth: usize,
    ) -> Markup {
        html! {
            fieldset.record {
                legend {
                    (item)
                    @if let Some(from) = from { " from " strong.from { (from) } }
                }
                (self.fields(fields, row, value, depth + 1))
                @if self.editable { (self.remove(row, &format!("remove this {item}"))) }
            }
        }
    }

    fn map_row(
        &self,
        row: &str,
        entry: Option<(&str, &Value)>,
        secret: bool,
        from: Option<&str>,
    ) -> Markup {
        let key = entry.map(|(k, _)| k).unwrap_or("");
        let k = self.name(&format!("{row}k"));
        let v = self.name(&format!("{row}v"));
        let ro = !self.editable;
        html! {
            tr {
                td { input type="text" name=[k] value=(key) disabled[ro] aria-label="name"; }
                td {
                    @if !secret {
                        input type="text" name=[v] value=(entry.map(|(_, v)| text(v)).unwrap_or_default()) disabled[ro] aria-label="value";
                    } @else if self.editable {
                        input type="password" name=[v] autocomplete="new-password" aria-label="value"
                            placeholder=(if entry.is_some() { "stored; type to replace" } else { "" });
                        @if entry.is_some() { input type="hidden" name=(format!("{row}{KEPT}")) value="1"; }
                    } @else {
                        span.muted { (MASK) }
                    }
                }
                @if self.origins.is_some() { td.from { (from.unwrap_or("")) } }
                @if self.editable { td { (self.remove(row, "remove")) } }
            }
        }
    }

    fn remove(&self, row: &str, label: &str) -> Markup {
        html! {
            label.remove { input type="checkbox" name=(format!("{row}{REMOVE}")); " " (label) }
        }
    }
}

/// A scalar as an input's text.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::policy_forms::catalogue::form_for;
    use crate::dashboard::policy_forms::parse::{FormData, document};
    use serde_json::json;

    fn unescape(html: &str) -> String {
        html.replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }

    /// The (name, value) pairs a browser would submit for the rendered inputs, ignoring
    /// `<template>` contents, which are not part of the form.
    fn submitted(html: &str) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        let mut rest = html;
        let mut in_template = 0usize;
        while let Some(start) = rest.find('<') {
            rest = &rest[start..];
            let end = rest.find('>').expect("tags close");
            let tag = &rest[..=end];
            let attr = |a: &str| {
                let key = format!(" {a}=\"");
                tag.find(&key).map(|i| {
                    let v = &tag[i + key.len()..];
                    unescape(&v[..v.find('"').expect("quoted")])
                })
            };
            if tag.starts_with("<template") {
                in_template += 1;
            } else if tag.starts_with("</template") {
                in_template -= 1;
            } else if in_template == 0
                && let Some(name) = attr("name")
            {
                if tag.starts_with("<input") {
                    let checkbox = tag.contains("type=\"checkbox\"");
                    if !checkbox || tag.contains(" checked") {
                        let default = if checkbox { "on" } else { "" };
                        pairs.push((name, attr("value").unwrap_or_else(|| default.into())));
                    }
                } else if tag.starts_with("<textarea") {
                    let body = &rest[end + 1..];
                    pairs.push((
                        name,
                        unescape(&body[..body.find("</textarea>").expect("closed")]),
                    ));
                } else if tag.starts_with("<select") {
                    let body = &rest[end + 1..];
                    let body = &body[..body.find("</select>").expect("closed")];
                    let chosen = body
                        .split("<option")
                        .find(|o| o.contains(" selected"))
                        .and_then(|o| o.split("value=\"").nth(1))
                        .and_then(|v| v.split('"').next())
                        .unwrap_or("")
                        .to_string();
                    pairs.push((name, chosen));
                }
            }
            rest = &rest[end + 1..];
        }
        pairs
    }

    #[test]
    fn a_rendered_document_submits_back_unchanged() {
        let docs = [
            (
                "file_distribution",
                json!({"merge": "extend", "sets": [{"label": "motd", "command": "true", "parameters": {"site": "lab & co"},
                    "files": [{"source": "/t/motd", "destination": "/etc/motd", "template": true, "mode": "0644"},
                              {"source": "/t/b", "destination": "/etc/b", "owner": "daemon"}]},
                    {"label": "two", "files": [{"source": "/t/c", "destination": "/etc/c"}]}]}),
            ),
            (
                "users",
                json!({"items": [{"name": "alice", "uid": 1500, "shell": "/bin/sh"}, {"name": "bob", "state": "absent"}]}),
            ),
            (
                "ssh_keys",
                json!({"items": [{"user": "root", "keys": ["ssh-ed25519 AAAA one", "ssh-rsa BBBB \"two\""]}]}),
            ),
            (
                "passwords",
                json!({"merge": "extend", "items": [{"user": "root", "hash": MASK}]}),
            ),
            ("ntp", json!({"servers": ["a.example", "b.example"]})),
            (
                "settings",
                json!({"interval_seconds": 60, "reports": false, "metrics": true, "metrics_interval_seconds": 20, "process_inventory": true, "software_inventory_hours": 12}),
            ),
            (
                "process_watch",
                json!({"items": [{"name": "crond", "command": "crond -b"}, {"name": "telnetd", "state": "absent", "command": "killall telnetd"}]}),
            ),
            (
                "connectivity_watchdog",
                json!({"failed_checkins": 5, "action": "reboot", "min_interval_seconds": 3600}),
            ),
            (
                "metrics_monitor",
                json!({"items": [{"metric": "fs.used", "above": 90, "level": "error"}, {"metric": "load.1", "above": 3.5, "below": 0.25, "cycles": 3}]}),
            ),
            (
                "parameters",
                json!({"values": {"broker": "mqtt"}, "secrets": {"token": MASK}}),
            ),
        ];
        let mut covered: Vec<&str> = docs.iter().map(|(p, _)| *p).collect();
        let mut all: Vec<&str> = apiary_proto::policy::names().collect();
        covered.sort();
        all.sort();
        assert_eq!(
            covered, all,
            "every policy's form is tested with a document"
        );
        for (policy, doc) in docs {
            let fields = form_for(policy).unwrap().fields;
            let html = editor(fields, &doc).into_string();
            let pairs = submitted(&html);
            let back = document(fields, &FormData::new(&pairs));
            assert_eq!(back, Ok(doc.clone()), "{policy}: {pairs:?}");
        }
    }

    #[test]
    fn a_blank_form_submits_an_empty_document() {
        let fields = form_for("file_distribution").unwrap().fields;
        let html = editor(fields, &Value::Null).into_string();
        let back = document(fields, &FormData::new(&submitted(&html)));
        assert_eq!(back, Ok(json!({"sets": []})));
        assert!(
            html.contains("name=\"f.sets.0.files.0.source\""),
            "a blank set with a blank file"
        );
        assert!(
            html.contains("name=\"f.sets.__0__.files.0.source\""),
            "the set template"
        );
        assert!(
            html.contains("name=\"f.sets.__0__.files.__1__.source\""),
            "its file template"
        );
    }

    #[test]
    fn read_only_forms_name_each_item_s_node_and_submit_nothing() {
        let fields = form_for("users").unwrap().fields;
        let doc = json!({"items": [{"name": "alice"}, {"name": "bob"}]});
        let items = ["/".to_string(), "/prod".to_string()];
        let keys = BTreeMap::new();
        let html = read_only(
            fields,
            &doc,
            Origins {
                items: &items,
                keys: &keys,
            },
        )
        .into_string();
        assert!(submitted(&html).is_empty(), "no named inputs");
        assert!(html.contains("<td class=\"from\">/prod</td>"), "{html}");
        assert!(!html.contains("<template"), "nothing to add");
        assert!(
            !html.contains("replace"),
            "merged documents have no merge mode"
        );
        assert!(html.matches(" disabled").count() >= 4);
    }
}
