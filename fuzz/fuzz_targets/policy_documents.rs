//! Every policy's document as an operator writes it: the first byte picks the policy, the
//! rest is the document; parsing and validation refuse or accept, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, document)) = data.split_first() else {
        return;
    };
    let names: Vec<&str> = apiary_proto::policy::names().collect();
    let name = names[pick as usize % names.len()];
    let policy = apiary_proto::policy::find(name).expect("a listed policy");
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(document) {
        let _ = policy.check_document(&value);
    }
});
