//! What a policy form is made of: fields bound to keys of the JSON document.

/// One input of a policy form, bound to one key of the document or of a list item.
pub struct Field {
    pub key: &'static str,
    pub label: &'static str,
    /// Defaults and format, shown next to the input.
    pub hint: &'static str,
    pub kind: Kind,
}

/// How a field is entered and what JSON it becomes.
pub enum Kind {
    /// A string; blank means the key is left out. A required one must be filled in every
    /// list item that is used.
    Text { required: bool },
    /// A whole number; blank means the key is left out.
    Number,
    /// A number with a fraction or a sign (a threshold); blank means the key is left out.
    Decimal,
    /// A checkbox for a boolean that is false unless set; unchecked leaves the key out.
    Flag,
    /// A boolean with a default of its own: blank (the default), yes or no.
    YesNo,
    /// One of a few strings; the first is the default and is left out of the document.
    Choice(&'static [&'static str]),
    /// A list of strings, one per line.
    Lines,
    /// An object of strings, entered as name/value rows.
    Map,
    /// Secret values by name: a value typed in is new, a blank one keeps the stored value.
    SecretMap,
    /// A write-only password; typed in, it replaces the sibling field `replaces`.
    Password { replaces: &'static str },
    /// A list of objects; `item` names one of them ("file", "account").
    Records {
        item: &'static str,
        fields: &'static [Field],
    },
}

impl Field {
    /// True for fields that take a line of their own rather than a table cell.
    pub fn is_wide(&self) -> bool {
        matches!(
            self.kind,
            Kind::Records { .. } | Kind::Map | Kind::SecretMap
        )
    }
}

/// Name prefix of every policy input, keeping them apart from `csrf`, `node` and `policy`.
pub const INPUT_PREFIX: &str = "f.";

/// Name suffix of a list item's "remove" checkbox.
pub const REMOVE: &str = "_remove";

/// Name suffix marking a secret row whose value is stored (blank keeps it).
pub const KEPT: &str = "_kept";

/// Key of the merge mode of list-like policies.
pub const MERGE_KEY: &str = "merge";
