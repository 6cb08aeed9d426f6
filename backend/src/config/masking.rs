//! Secrets in policy documents: password hashes and sealed parameters are masked whenever a
//! document is shown, and a masked value sent back (an operator editing what they were
//! shown) stands for the stored value it hides.

use apiary_proto::policy::{Merge, Secret};
use serde_json::Value;

use crate::secrets::MASK;

/// A policy document as the API shows it: secret values and password hashes replaced by a
/// mask.
pub fn masked(policy: &str, body: &Value) -> Value {
    let mut body = body.clone();
    for slot in secret_slots(policy, &mut body) {
        *slot.value = Value::String(MASK.to_string());
    }
    body
}

/// Masks the documents of a list of changes (commits, dry runs).
pub fn mask_changes(changes: &mut [crate::store::ConfigChange]) {
    for c in changes {
        c.before = c.before.as_ref().map(|b| masked(&c.policy, b));
        c.after = c.after.as_ref().map(|a| masked(&c.policy, a));
    }
}

/// Replaces every masked value in `body` with the stored value it hides, found by the same
/// account (passwords) or name (secret parameters) in `stored`, nearest document first.
/// A mask with nothing stored behind it is an error that names the item.
pub fn restore_masked(policy: &str, mut body: Value, stored: &[&Value]) -> Result<Value, String> {
    for slot in secret_slots(policy, &mut body) {
        if slot.value.as_str() != Some(MASK) {
            continue;
        }
        let kept = stored.iter().find_map(|doc| {
            let mut doc = (*doc).clone();
            secret_slots(policy, &mut doc)
                .into_iter()
                .find(|s| s.name == slot.name && s.value.as_str() != Some(MASK))
                .map(|s| s.value.clone())
        });
        match kept {
            Some(value) => *slot.value = value,
            None => {
                return Err(format!(
                    "{} of {} is the mask {MASK} but nothing is stored for {} to keep; give a new value",
                    slot.what, slot.name, slot.name
                ));
            }
        }
    }
    Ok(body)
}

/// One secret value in a document, and what names it.
struct SecretSlot<'a> {
    what: &'static str,
    name: String,
    value: &'a mut Value,
}

/// The secret values of a document, as its policy's definition names them: each list
/// item's hash (named by the item's key), each sealed value (named by its key).
fn secret_slots<'a>(policy: &str, body: &'a mut Value) -> Vec<SecretSlot<'a>> {
    let (Some(def), Some(fields)) = (apiary_proto::policy::find(policy), body.as_object_mut())
    else {
        return Vec::new();
    };
    let mut slots = Vec::new();
    for (name, value) in fields.iter_mut() {
        let secret = def.secrets().iter().find(|s| match (s, def.merge()) {
            (Secret::ItemHash { .. }, Merge::List { items, .. }) => name == items,
            (Secret::Sealed { field }, _) => name == field,
            _ => false,
        });
        match (secret, def.merge()) {
            (Some(Secret::ItemHash { field, .. }), Merge::List { key, .. }) => {
                slots.extend(item_hashes(value, key, field))
            }
            (Some(Secret::Sealed { .. }), _) => slots.extend(
                value
                    .as_object_mut()
                    .into_iter()
                    .flatten()
                    .map(|(name, value)| SecretSlot {
                        what: "the secret value",
                        name: name.clone(),
                        value,
                    }),
            ),
            _ => {}
        }
    }
    slots
}

/// The `field` of each item of a list, named by the item's `key`.
fn item_hashes<'a>(
    list: &'a mut Value,
    key: &'a str,
    field: &'a str,
) -> impl Iterator<Item = SecretSlot<'a>> {
    list.as_array_mut()
        .into_iter()
        .flatten()
        .filter_map(move |item| {
            let obj = item.as_object_mut()?;
            let name = obj.get(key)?.as_str()?.to_string();
            Some(SecretSlot {
                what: "the password hash",
                name,
                value: obj.get_mut(field)?,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn password_hashes_and_secrets_are_masked() {
        let body = json!({"items": [{"user": "root", "hash": "$6$salt$abc"}]});
        let shown = masked("passwords", &body);
        assert_eq!(shown["items"][0]["hash"], MASK);
        assert_eq!(shown["items"][0]["user"], "root");
        let params = json!({"values": {"a": "1"}, "secrets": {"b": "sealed:xyz"}});
        let shown = masked("parameters", &params);
        assert_eq!(shown["values"]["a"], "1");
        assert_eq!(shown["secrets"]["b"], MASK);
        assert_eq!(
            masked("ntp", &json!({"servers": ["a"]})),
            json!({"servers": ["a"]})
        );
    }

    #[test]
    fn a_mask_sent_back_keeps_the_nearest_stored_value() {
        let draft = json!({"items": [{"user": "root", "hash": "$6$draft"}]});
        let active =
            json!({"items": [{"user": "root", "hash": "$6$active"}, {"user": "bob", "hash": "!"}]});
        let sent = json!({"items": [{"user": "bob", "hash": MASK}, {"user": "root", "hash": MASK}, {"user": "eve", "hash": "$6$new"}]});
        let restored = restore_masked("passwords", sent, &[&draft, &active]).unwrap();
        assert_eq!(
            restored,
            json!({"items": [{"user": "bob", "hash": "!"}, {"user": "root", "hash": "$6$draft"}, {"user": "eve", "hash": "$6$new"}]})
        );

        let stored = json!({"secrets": {"token": "sealed:abc"}});
        let sent = json!({"values": {"x": MASK}, "secrets": {"token": MASK}});
        let restored = restore_masked("parameters", sent, &[&stored]).unwrap();
        assert_eq!(restored["secrets"]["token"], "sealed:abc");
        assert_eq!(
            restored["values"]["x"], MASK,
            "plain values are never masks"
        );
    }

    #[test]
    fn a_mask_with_nothing_behind_it_is_refused() {
        let sent = json!({"items": [{"user": "carol", "hash": MASK}]});
        let err = restore_masked("passwords", sent, &[]).unwrap_err();
        assert!(err.contains("password hash of carol"), "{err}");
        let sent = json!({"secrets": {"renamed": MASK}});
        let stored = json!({"secrets": {"token": "sealed:abc"}});
        let err = restore_masked("parameters", sent, &[&stored]).unwrap_err();
        assert!(err.contains("secret value of renamed"), "{err}");
    }
}
