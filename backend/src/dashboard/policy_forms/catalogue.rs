//! The form of every policy: one entry per policy definition (`apiary_proto::policy`),
//! giving its document's fields a label, a hint and an input kind. Names, summaries, merge
//! shapes and secret fields come from the definitions; the tests below hold the forms to
//! them.

use apiary_proto::policy::{self, InBundle};

use super::schema::{Field, Kind, MERGE_KEY};

/// A policy's form.
pub struct PolicyForm {
    pub policy: &'static str,
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

const THRESHOLDS: &[Field] = &[
    required(
        "metric",
        "Metric",
        "cpu.user, memory.used, fs.used (every filesystem) or fs.used:/data, load.1, temp...",
    ),
    field("above", "Above", "crossed above this", Kind::Decimal),
    field("below", "Below", "crossed below this", Kind::Decimal),
    field(
        "level",
        "Level",
        "of the crossing's report; recoveries are info",
        Kind::Choice(&["warning", "error", "critical"]),
    ),
    field(
        "cycles",
        "Cycles",
        "in a row past the limit before it counts; default 1",
        Kind::Number,
    ),
];

/// A list-like policy whose document is `merge` and `items`.
macro_rules! items_policy {
    ($policy:ty, $label:literal, $item:literal, $fields:expr) => {
        PolicyForm {
            policy: <$policy>::NAME,
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
        policy: policy::parameters::Parameters::NAME,
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
        policy: policy::settings::Settings::NAME,
        fields: &[
            field(
                "interval_seconds",
                "Check-in interval (s)",
                "default 300, at least 10",
                Kind::Number,
            ),
            field("reports", "Send policy reports", "default yes", Kind::YesNo),
            field("metrics", "Collect metrics", "default yes", Kind::YesNo),
            field(
                "metrics_interval_seconds",
                "Metrics sample interval (s)",
                "finer than the check-in interval; default one sample per check-in",
                Kind::Number,
            ),
            field(
                "process_inventory",
                "Process inventory",
                "default no; sent at every check-in",
                Kind::YesNo,
            ),
            field(
                "software_inventory_hours",
                "Software inventory every (h)",
                "default 6",
                Kind::Number,
            ),
        ],
    },
    PolicyForm {
        policy: policy::file_distribution::FileDistribution::NAME,
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
    items_policy!(policy::users::Users, "Accounts", "account", USERS),
    items_policy!(policy::ssh_keys::SshKeys, "Accounts", "account", SSH_KEYS),
    items_policy!(
        policy::passwords::Passwords,
        "Accounts",
        "account",
        PASSWORDS
    ),
    PolicyForm {
        policy: policy::ntp::Ntp::NAME,
        fields: &[field(
            "servers",
            "Servers",
            "host names or addresses, one per line",
            Kind::Lines,
        )],
    },
    items_policy!(
        policy::process_watch::ProcessWatch,
        "Processes",
        "process",
        PROCESSES
    ),
    PolicyForm {
        policy: policy::connectivity_watchdog::ConnectivityWatchdog::NAME,
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
    items_policy!(
        policy::metrics_monitor::MetricsMonitor,
        "Thresholds",
        "threshold",
        THRESHOLDS
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use apiary_proto::policy::{Merge, Secret};

    #[test]
    fn every_policy_has_one_form_and_every_form_a_policy() {
        for policy in policy::names() {
            assert!(form_for(policy).is_some(), "{policy} has no form");
        }
        assert_eq!(FORMS.len(), policy::ALL.len());
    }

    /// A list policy's form offers the merge choice and its list; secret fields get
    /// secret inputs.
    #[test]
    fn forms_follow_the_definitions() {
        for def in policy::ALL {
            let form = form_for(def.name()).expect("every policy has a form");
            let key = |k: &str| form.fields.iter().find(|f| f.key == k);
            if let Merge::List { items, .. } = def.merge() {
                assert_eq!(form.fields[0].key, MERGE_KEY, "{}", def.name());
                assert!(
                    matches!(key(items).map(|f| &f.kind), Some(Kind::Records { .. })),
                    "{}: {items} is not a list of records",
                    def.name()
                );
            } else {
                assert!(key(MERGE_KEY).is_none(), "{}", def.name());
            }
            for secret in def.secrets() {
                match *secret {
                    Secret::Sealed { field } => assert!(
                        matches!(key(field).map(|f| &f.kind), Some(Kind::SecretMap)),
                        "{}: {field}",
                        def.name()
                    ),
                    Secret::ItemHash { field, plaintext } => {
                        let Merge::List { items, .. } = def.merge() else {
                            panic!("{}: a hash outside a list", def.name())
                        };
                        let Some(Kind::Records { fields, .. }) = key(items).map(|f| &f.kind) else {
                            panic!("{}: no records", def.name())
                        };
                        let input = fields.iter().find(|f| f.key == plaintext);
                        assert!(
                            matches!(input.map(|f| &f.kind), Some(Kind::Password { replaces }) if *replaces == field),
                            "{}: {plaintext} must be a password input replacing {field}",
                            def.name()
                        );
                    }
                }
            }
        }
    }
}
