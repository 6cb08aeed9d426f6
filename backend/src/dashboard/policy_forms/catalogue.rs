//! The form of every policy: one entry per policy the backend knows, mirroring the
//! documents in `config::policies` and `apiary_proto::system` (docs/policies.md).

use super::schema::{Field, Kind, MERGE_KEY};

/// A policy's form.
pub struct PolicyForm {
    pub policy: &'static str,
    /// One line on what the policy does.
    pub summary: &'static str,
    pub fields: &'static [Field],
}

/// The form of `policy`, if the backend knows it.
pub fn form_for(policy: &str) -> Option<&'static PolicyForm> {
    FORMS.iter().find(|f| f.policy == policy)
}

const fn text(key: &'static str, label: &'static str, hint: &'static str) -> Field {
    Field {
        key,
        label,
        hint,
        kind: Kind::Text { required: false },
    }
}

const fn required(key: &'static str, label: &'static str, hint: &'static str) -> Field {
    Field {
        key,
        label,
        hint,
        kind: Kind::Text { required: true },
    }
}

const fn field(key: &'static str, label: &'static str, hint: &'static str, kind: Kind) -> Field {
    Field {
        key,
        label,
        hint,
        kind,
    }
}

/// How a list-like document combines with what its node inherits.
const MERGE: Field = field(
    MERGE_KEY,
    "Inherited items",
    "replace: this list is the whole policy here and below; extend: its items are added to the inherited ones (an item with an inherited item's name replaces it)",
    Kind::Choice(&["replace", "extend"]),
);

const PRESENCE: Kind = Kind::Choice(&["present", "absent"]);

const FILES: &[Field] = &[
    required(
        "source",
        "Source",
        "file-manager path, like /configs/app.conf",
    ),
    required(
        "destination",
        "Destination",
        "absolute path on the device; may start with $(key)",
    ),
    field("template", "Template", "render {{key}} values", Kind::Flag),
    text("owner", "Owner", "name or uid; blank keeps it"),
    text("group", "Group", "name or gid; blank keeps it"),
    text("mode", "Mode", "octal, like 0640; blank keeps it"),
];

const FILE_SETS: &[Field] = &[
    text(
        "label",
        "Label",
        "names the set in reports; extending nodes match on it",
    ),
    text(
        "pre_condition",
        "Pre-condition",
        "shell command; the set applies only when it exits 0",
    ),
    text(
        "command",
        "Command",
        "shell command run after a file of the set changed",
    ),
    field(
        "parameters",
        "Template values",
        "{{key}} values for this set's templates",
        Kind::Map,
    ),
    field(
        "files",
        "Files",
        "",
        Kind::Records {
            item: "file",
            fields: FILES,
        },
    ),
];

const USERS: &[Field] = &[
    required("name", "Name", "lowercase account name"),
    field(
        "state",
        "State",
        "absent removes the account and its home",
        PRESENCE,
    ),
    field(
        "uid",
        "UID",
        "for a new account; blank picks the next free one",
        Kind::Number,
    ),
    text("home", "Home", "blank: the system's default"),
    text("shell", "Shell", "blank: the system's default"),
];

const SSH_KEYS: &[Field] = &[
    required("user", "User", "an existing account"),
    field(
        "keys",
        "Keys",
        "authorized_keys lines, one per line; the file gets exactly these",
        Kind::Lines,
    ),
];

const PASSWORDS: &[Field] = &[
    required("user", "User", "an existing account"),
    text(
        "hash",
        "Crypt hash",
        "(secret) keeps the stored hash; ! locks the account",
    ),
    field(
        "password",
        "New password",
        "hashed (SHA-512 crypt) before it is stored",
        Kind::Password { replaces: "hash" },
    ),
];

const PROCESSES: &[Field] = &[
    required("name", "Executable", "file name, matched exactly"),
    field(
        "state",
        "Must be",
        "running (present) or not (absent)",
        PRESENCE,
    ),
    required("command", "Command", "shell command run when it is not"),
];

/// A list-like policy whose document is `merge` and `items`.
macro_rules! items_policy {
    ($policy:literal, $summary:literal, $label:literal, $item:literal, $fields:expr) => {
        PolicyForm {
            policy: $policy,
            summary: $summary,
            fields: &[
                MERGE,
                field(
                    "items",
                    $label,
                    "",
                    Kind::Records {
                        item: $item,
                        fields: $fields,
                    },
                ),
            ],
        }
    };
}

const FORMS: &[PolicyForm] = &[
    PolicyForm {
        policy: "parameters",
        summary: "Values for $(key) in policy fields and {{key}} in templates, inherited key by key.",
        fields: &[
            field("values", "Values", "", Kind::Map),
            field(
                "secrets",
                "Secrets",
                "sealed when saved; never shown again",
                Kind::SecretMap,
            ),
        ],
    },
    PolicyForm {
        policy: "settings",
        summary: "How the agent itself behaves.",
        fields: &[
            field(
                "interval_seconds",
                "Check-in interval (s)",
                "default 300, at least 10",
                Kind::Number,
            ),
            field("reports", "Send policy reports", "default yes", Kind::YesNo),
        ],
    },
    PolicyForm {
        policy: "file_distribution",
        summary: "Files kept identical to file-manager sources, optionally rendered as templates.",
        fields: &[
            MERGE,
            field(
                "sets",
                "File sets",
                "",
                Kind::Records {
                    item: "file set",
                    fields: FILE_SETS,
                },
            ),
        ],
    },
    items_policy!(
        "users",
        "Local accounts to add or remove; system accounts are never touched.",
        "Accounts",
        "account",
        USERS
    ),
    items_policy!(
        "ssh_keys",
        "The complete authorized_keys of each listed account.",
        "Accounts",
        "account",
        SSH_KEYS
    ),
    items_policy!(
        "passwords",
        "Password hashes of local accounts.",
        "Accounts",
        "account",
        PASSWORDS
    ),
    PolicyForm {
        policy: "ntp",
        summary: "Time servers of whichever time daemon the device runs.",
        fields: &[field(
            "servers",
            "Servers",
            "host names or addresses, one per line",
            Kind::Lines,
        )],
    },
    items_policy!(
        "process_watch",
        "Processes that must run, or must not, and the command that fixes it.",
        "Processes",
        "process",
        PROCESSES
    ),
    PolicyForm {
        policy: "connectivity_watchdog",
        summary: "What the device does after failing to reach the backend too often.",
        fields: &[
            field(
                "failed_checkins",
                "Failed check-ins",
                "consecutive failures before acting; required",
                Kind::Number,
            ),
            text("action", "Action", "shell command; default reboot"),
            field(
                "min_interval_seconds",
                "Period (s)",
                "the action runs at most once per period; default 3600, at least 60",
                Kind::Number,
            ),
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::policies::POLICY_NAMES;

    #[test]
    fn every_policy_has_a_form() {
        for policy in POLICY_NAMES {
            assert!(form_for(policy).is_some(), "{policy} has no form");
        }
        assert_eq!(FORMS.len(), POLICY_NAMES.len());
    }
}
