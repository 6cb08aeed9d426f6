//! Rendering a distributed template with the agent's renderer: any bytes are either
//! rendered or refused with an error, never a panic.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parameters = BTreeMap::from([
        ("host".to_string(), "gw-1".to_string()),
        ("empty".to_string(), String::new()),
        ("nested".to_string(), "{{host}}".to_string()),
    ]);
    if let Ok(out) = apiary_agent::template::render(data, &parameters) {
        assert!(
            std::str::from_utf8(&out).is_ok(),
            "a UTF-8 template renders to UTF-8"
        );
    }
});
