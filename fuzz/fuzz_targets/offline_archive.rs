//! The offline-bundle archive an operator carries to a device: whatever the bytes, the index
//! either refuses them or lists members that lie inside the archive, `bundle.json` first.
#![no_main]

use std::io::Cursor;

use apiary_proto::offline;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(members) = offline::index(&mut Cursor::new(data)) {
        assert_eq!(members[0].name, offline::BUNDLE_MEMBER);
        for m in &members {
            assert!(m.offset + m.size <= data.len() as u64, "{m:?} past the end");
            assert!(m.name == offline::BUNDLE_MEMBER || m.sha256().is_some());
        }
    }
});
