//! A bundle as the agent receives it: the envelope parsed and verified (a key that signed
//! nothing, so every input is refused, and must be refused without a panic), and the payload
//! parsed and validated as if its signature had held.
#![no_main]

use apiary_proto::bundle::{self, Bundle};
use apiary_proto::signed::Envelope;
use libfuzzer_sys::fuzz_target;

const KEY: &str = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(data) {
        assert!(bundle::verify(&envelope, KEY, "device", None).is_err());
        let _ = envelope.parse_payload::<Bundle>();
    }
    if let Ok(bundle) = serde_json::from_slice::<Bundle>(data) {
        let _ = bundle.validate();
    }
});
