//! `$(key)` expansion: in plain text, and into shell commands, where no value may ever appear
//! in the script (it must travel in the environment), whatever the command around it.
#![no_main]

use apiary_agent::expand::Vars;
use apiary_proto::device_api::HostFacts;
use apiary_proto::policy::parameters::Parameters;
use libfuzzer_sys::fuzz_target;

const MARKER: &str = "VALUE-7f3a9c";

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let facts = HostFacts {
        hostname: format!("'\"$(x)`{MARKER}"),
        ..HostFacts::default()
    };
    let params = Parameters {
        values: [("k".to_string(), format!("{MARKER}\n;"))].into(),
        secrets: [("s".to_string(), format!("secret-{MARKER}"))].into(),
    };
    let vars = Vars::new(&facts, "dev", Some(&params));
    let _ = vars.text(input);
    if let Ok(command) = vars.shell(input)
        && !input.contains(MARKER)
    {
        assert!(
            !command.script.contains(MARKER),
            "a value reached the script: {command:?}"
        );
    }
    let redacted = vars.secrets().redact_tail(data, true, 64);
    assert!(!redacted.contains(&format!("secret-{MARKER}")));
});
