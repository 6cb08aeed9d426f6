//! The bodies unauthenticated and authenticated devices send: an enrolment envelope (parsed,
//! checked, its proof of possession verified) and a check-in.
#![no_main]

use apiary_proto::device_api::{CheckinRequest, EnrollRequest, NetInterface};
use apiary_proto::signed::{self, Envelope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(data)
        && let Ok(request) = envelope.parse_payload::<EnrollRequest>()
        && request.validate().is_ok()
    {
        let _ = signed::verify_device_signature(&envelope, &request.public_key);
    }
    if let Ok(request) = serde_json::from_slice::<CheckinRequest>(data) {
        let _ = request.validate();
        if let Some(network) = &request.network {
            let _ = NetInterface::validate_list(network);
        }
    }
});
