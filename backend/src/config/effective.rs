//! Effective configuration: what applies to a node, per policy, and where each part came from.
//!
//! Walking from `/` down to the node (a device last), each node that sets a policy either
//! *replaces* what it inherits (the default: it breaks inheritance, and its descendants
//! inherit its document) or, for list-like policies with `"merge": "extend"`, *extends* it:
//! its items are added after the inherited ones, and an item whose key matches an
//! inherited item's replaces that item in place. Devices in "unassigned" inherit nothing.

use std::collections::BTreeMap;

use apiary_proto::policy::{self, Merge};
use serde::Serialize;
use serde_json::Value;

use super::node::lineage;
use crate::store::ConfigEntry;

/// The field that asks for extending instead of replacing.
pub const MERGE_FIELD: &str = "merge";

/// How `policy` merges, from its definition. Stored names were checked when set; one this
/// backend does not know merges as a whole document.
fn merge_of(policy: &str) -> Merge {
    policy::find(policy).map_or(Merge::Whole, |p| p.merge())
}

/// Configuration indexed by node, then policy.
#[derive(Clone, Debug, Default)]
pub struct ConfigTree {
    nodes: BTreeMap<String, BTreeMap<String, Value>>,
}

/// A policy as it applies to a node.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Effective {
    /// The nearest node whose document replaced what it inherited.
    pub from: String,
    /// The resulting document (without `merge`).
    pub body: Value,
    /// For list-like policies: the node each item, in order, came from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items_from: Vec<String>,
    /// For `parameters`: the node each key came from.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub keys_from: BTreeMap<String, String>,
}

impl ConfigTree {
    /// Builds the tree from stored entries.
    pub fn new(entries: impl IntoIterator<Item = ConfigEntry>) -> Self {
        let mut tree = Self::default();
        for e in entries {
            tree.set(&e.node, &e.policy, Some(e.body));
        }
        tree
    }

    /// Sets (or with `None`, unsets) one node's policy.
    pub fn set(&mut self, node: &str, policy: &str, body: Option<Value>) {
        match body {
            Some(b) => {
                self.nodes
                    .entry(node.to_string())
                    .or_default()
                    .insert(policy.to_string(), b);
            }
            None => {
                if let Some(n) = self.nodes.get_mut(node) {
                    n.remove(policy);
                }
            }
        }
    }

    /// The document `node` sets for `policy` itself.
    pub fn get(&self, node: &str, policy: &str) -> Option<&Value> {
        self.nodes.get(node).and_then(|n| n.get(policy))
    }

    /// Every policy in force for a device in `group` (`None` = unassigned).
    pub fn effective_for_device(
        &self,
        device_id: &str,
        group: Option<&str>,
    ) -> BTreeMap<String, Effective> {
        let mut chain: Vec<String> = group.map(lineage).unwrap_or_default();
        chain.push(device_id.to_string());
        self.resolve(&chain)
    }

    /// Every policy in force for a group, as its devices inherit it.
    pub fn effective_for_group(&self, group: &str) -> BTreeMap<String, Effective> {
        self.resolve(&lineage(group))
    }

    fn resolve(&self, chain: &[String]) -> BTreeMap<String, Effective> {
        let mut out: BTreeMap<String, Effective> = BTreeMap::new();
        for node in chain {
            for (policy, doc) in self.nodes.get(node).into_iter().flatten() {
                let inherited = out.remove(policy);
                let merged = match (merge_of(policy), inherited) {
                    (Merge::PerKey { maps }, inherited) => {
                        merge_per_key(inherited, doc, node, maps)
                    }
                    (Merge::List { items, key }, Some(base)) if extends(doc) => {
                        extend(base, doc, node, (items, key))
                    }
                    (shape, _) => replace(doc, node, shape),
                };
                out.insert(policy.clone(), merged);
            }
        }
        out
    }
}

/// Per-key policies (`parameters`) always merge key by key: a nearer node's value wins.
fn merge_per_key(base: Option<Effective>, doc: &Value, node: &str, maps: &[&str]) -> Effective {
    let mut merged = base.unwrap_or_else(|| Effective {
        from: node.to_string(),
        body: Value::Object(
            maps.iter()
                .map(|m| (m.to_string(), Value::Object(Default::default())))
                .collect(),
        ),
        items_from: Vec::new(),
        keys_from: BTreeMap::new(),
    });
    for kind in maps {
        for (key, value) in doc
            .get(*kind)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            // A key lives in one map at a time: a secret below replaces a value above.
            for other in maps.iter().filter(|m| *m != kind) {
                if let Some(o) = merged.body[*other].as_object_mut() {
                    o.remove(key);
                }
            }
            merged.body[*kind][key] = value.clone();
            merged.keys_from.insert(key.clone(), node.to_string());
        }
    }
    merged
}

fn extends(doc: &Value) -> bool {
    doc.get(MERGE_FIELD).and_then(Value::as_str) == Some("extend")
}

fn without_merge(doc: &Value) -> Value {
    let mut doc = doc.clone();
    if let Some(map) = doc.as_object_mut() {
        map.remove(MERGE_FIELD);
    }
    doc
}

fn items(doc: &Value, list: &str) -> Vec<Value> {
    doc.get(list)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn replace(doc: &Value, node: &str, shape: Merge) -> Effective {
    let items_from = match shape {
        Merge::List { items: list, .. } => vec![node.to_string(); items(doc, list).len()],
        _ => Vec::new(),
    };
    Effective {
        from: node.to_string(),
        body: without_merge(doc),
        items_from,
        keys_from: BTreeMap::new(),
    }
}

fn extend(mut base: Effective, doc: &Value, node: &str, (list, key): (&str, &str)) -> Effective {
    let mut merged = items(&base.body, list);
    for item in items(doc, list) {
        let name = item
            .get(key)
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty());
        let same = name.and_then(|n| {
            merged
                .iter()
                .position(|m| m.get(key).and_then(Value::as_str) == Some(n))
        });
        match same {
            Some(i) => {
                merged[i] = item;
                base.items_from[i] = node.to_string();
            }
            None => {
                merged.push(item);
                base.items_from.push(node.to_string());
            }
        }
    }
    if let Some(map) = base.body.as_object_mut() {
        map.insert(list.to_string(), Value::Array(merged));
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sets(labels: &[&str]) -> Value {
        json!({"sets": labels.iter().map(|l| json!({"label": l, "files": []})).collect::<Vec<_>>()})
    }

    fn extending(labels: &[&str]) -> Value {
        let mut doc = sets(labels);
        doc["merge"] = json!("extend");
        doc
    }

    fn labels(e: &Effective) -> Vec<String> {
        items(&e.body, "sets")
            .iter()
            .map(|s| s["label"].as_str().unwrap().to_string())
            .collect()
    }

    /// One row: documents on nodes, then what a device in `group` gets.
    struct Case {
        name: &'static str,
        docs: Vec<(&'static str, Value)>,
        group: Option<&'static str>,
        labels: Vec<&'static str>,
        items_from: Vec<&'static str>,
        from: &'static str,
    }

    #[test]
    fn inheritance_and_merge_rules() {
        let cases = vec![
            Case {
                name: "inherits from the root",
                docs: vec![("/", sets(&["base"]))],
                group: Some("/a/b/c"),
                labels: vec!["base"],
                items_from: vec!["/"],
                from: "/",
            },
            Case {
                name: "a replacing node breaks inheritance for its subtree",
                docs: vec![("/", sets(&["base"])), ("/a/b", sets(&["own"]))],
                group: Some("/a/b/c"),
                labels: vec!["own"],
                items_from: vec!["/a/b"],
                from: "/a/b",
            },
            Case {
                name: "extending adds after the inherited items",
                docs: vec![("/", sets(&["base"])), ("/a", extending(&["extra"]))],
                group: Some("/a/b"),
                labels: vec!["base", "extra"],
                items_from: vec!["/", "/a"],
                from: "/",
            },
            Case {
                name: "an extending item with an inherited label replaces it in place",
                docs: vec![
                    ("/", sets(&["one", "two"])),
                    ("/a", extending(&["one", "three"])),
                ],
                group: Some("/a"),
                labels: vec!["one", "two", "three"],
                items_from: vec!["/a", "/", "/a"],
                from: "/",
            },
            Case {
                name: "breaking inheritance midway: extensions above are dropped, below apply",
                docs: vec![
                    ("/", sets(&["root"])),
                    ("/a", extending(&["a"])),
                    ("/a/b", sets(&["b"])),
                    ("/a/b/c", extending(&["c"])),
                    ("dev", extending(&["dev"])),
                ],
                group: Some("/a/b/c/d"),
                labels: vec!["b", "c", "dev"],
                items_from: vec!["/a/b", "/a/b/c", "dev"],
                from: "/a/b",
            },
            Case {
                name: "a sibling branch is unaffected",
                docs: vec![
                    ("/", sets(&["root"])),
                    ("/a/b", sets(&["b"])),
                    ("/a", extending(&["a"])),
                ],
                group: Some("/a/x"),
                labels: vec!["root", "a"],
                items_from: vec!["/", "/a"],
                from: "/",
            },
            Case {
                name: "extending with nothing inherited is just the node's items",
                docs: vec![("/a", extending(&["a"]))],
                group: Some("/a"),
                labels: vec!["a"],
                items_from: vec!["/a"],
                from: "/a",
            },
            Case {
                name: "unassigned devices inherit nothing",
                docs: vec![("/", sets(&["root"])), ("dev", extending(&["dev"]))],
                group: None,
                labels: vec!["dev"],
                items_from: vec!["dev"],
                from: "dev",
            },
        ];
        for case in cases {
            let mut tree = ConfigTree::default();
            for (node, doc) in &case.docs {
                tree.set(node, "file_distribution", Some(doc.clone()));
            }
            let e = &tree.effective_for_device("dev", case.group)["file_distribution"];
            assert_eq!(labels(e), case.labels, "{}", case.name);
            assert_eq!(e.items_from, case.items_from, "{}", case.name);
            assert_eq!(e.from, case.from, "{}", case.name);
            assert!(
                e.body.get("merge").is_none(),
                "{}: merge is not in the result",
                case.name
            );
        }
    }

    #[test]
    fn parameters_merge_per_key_down_the_tree() {
        let mut t = ConfigTree::default();
        t.set(
            "/",
            "parameters",
            Some(json!({"values": {"broker": "fleet", "port": "8883"}})),
        );
        t.set(
            "/a",
            "parameters",
            Some(json!({"values": {"broker": "a"}, "secrets": {"port": "v1:sealed"}})),
        );
        t.set(
            "dev",
            "parameters",
            Some(json!({"values": {"port": "1883", "own": "x"}})),
        );
        let e = &t.effective_for_device("dev", Some("/a/b"))["parameters"];
        assert_eq!(
            e.body["values"],
            json!({"broker": "a", "port": "1883", "own": "x"})
        );
        assert_eq!(
            e.body["secrets"],
            json!({}),
            "the device's value replaced the secret"
        );
        assert_eq!(e.keys_from["broker"], "/a");
        assert_eq!(e.keys_from["port"], "dev");
        let g = &t.effective_for_group("/a")["parameters"];
        assert_eq!(g.body["secrets"], json!({"port": "v1:sealed"}));
        assert_eq!(g.body["values"], json!({"broker": "a"}));
    }

    #[test]
    fn system_lists_extend_by_their_item_names() {
        let mut t = ConfigTree::default();
        t.set(
            "/",
            "users",
            Some(json!({"items": [{"name": "ops"}, {"name": "guest"}]})),
        );
        t.set(
            "/a",
            "users",
            Some(json!({"merge": "extend", "items": [{"name": "guest", "state": "absent"}, {"name": "alice"}]})),
        );
        t.set(
            "/",
            "ssh_keys",
            Some(json!({"items": [{"user": "ops", "keys": []}]})),
        );
        t.set(
            "/a",
            "ssh_keys",
            Some(json!({"merge": "extend", "items": [{"user": "ops", "keys": ["k"]}]})),
        );
        let e = t.effective_for_device("d", Some("/a"));
        assert_eq!(
            e["users"].body,
            json!({"items": [{"name": "ops"}, {"name": "guest", "state": "absent"}, {"name": "alice"}]}),
            "an extension's item replaces the inherited one of the same name, in place"
        );
        assert_eq!(e["users"].items_from, vec!["/", "/a", "/a"]);
        assert_eq!(
            e["ssh_keys"].body,
            json!({"items": [{"user": "ops", "keys": ["k"]}]})
        );
    }

    #[test]
    fn non_list_policies_always_replace() {
        let mut t = ConfigTree::default();
        t.set(
            "/",
            "settings",
            Some(json!({"interval_seconds": 600, "reports": false})),
        );
        t.set("/a", "settings", Some(json!({"interval_seconds": 60})));
        let e = &t.effective_for_device("d", Some("/a"))["settings"];
        assert_eq!(e.body, json!({"interval_seconds": 60}));
        assert_eq!(e.from, "/a");
        assert!(e.items_from.is_empty());
    }

    #[test]
    fn groups_resolve_like_their_devices() {
        let mut t = ConfigTree::default();
        t.set("/", "file_distribution", Some(sets(&["root"])));
        t.set("/a", "file_distribution", Some(extending(&["a"])));
        assert_eq!(
            labels(&t.effective_for_group("/a/b")["file_distribution"]),
            ["root", "a"]
        );
        assert_eq!(
            labels(&t.effective_for_group("/")["file_distribution"]),
            ["root"]
        );
    }

    #[test]
    fn unset_restores_inheritance() {
        let mut t = ConfigTree::default();
        t.set("/", "file_distribution", Some(sets(&["root"])));
        t.set("/prod", "file_distribution", Some(sets(&["prod"])));
        t.set("/prod", "file_distribution", None);
        let e = &t.effective_for_device("d", Some("/prod"))["file_distribution"];
        assert_eq!(e.from, "/");
    }
}
