//! The `Range` header of downloads: a range that parses lies inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((size, header)) = data.split_first_chunk::<8>() else {
        return;
    };
    let size = u64::from_le_bytes(*size) % (1 << 40);
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    if let Some((start, end)) = apiary_proto::range::parse(header, size) {
        assert!(
            start <= end && end < size,
            "{header:?} of {size}: {start}-{end}"
        );
    }
});
