//! BER-TLV from a card (`card::tlv`) and the SELECT answer templates built
//! on it (`FileInfo::parse`, `template_objects`): never panic, never read
//! past the input, and every data object re-encodes (`encode`) to bytes
//! that parse back to the same tag and value.
#![no_main]

use ferroccid_card::template_objects;
use ferroccid_card::tlv::{encode, parse_header, Tlv, TlvIter};
use ferroccid_card::FileInfo;
use libfuzzer_sys::fuzz_target;

/// Walks nested objects; the depth is bounded by the input length (each
/// level needs at least two header bytes), the cap only keeps the stack
/// small.
fn walk(bytes: &[u8], depth: usize) {
    if depth > 64 {
        return;
    }
    for item in TlvIter::new(bytes) {
        let Ok(tlv) = item else {
            break;
        };
        let value = tlv.value();
        // The value is a slice of the input, not a copy or an overrun.
        let start = value.as_ptr() as usize - bytes.as_ptr() as usize;
        assert!(start + value.len() <= bytes.len());

        let mut out = Vec::new();
        encode(tlv.tag(), value, &mut out);
        let (again, after) = Tlv::parse(&out)
            .expect("own encoding parses")
            .expect("own encoding is not padding");
        assert_eq!(again.tag(), tlv.tag());
        assert_eq!(again.value(), value);
        assert!(after.is_empty());
        if tlv.tag().is_constructed() {
            walk(value, depth + 1);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    walk(data, 0);
    if let Ok(Some((_, announced, rest))) = parse_header(data) {
        // The announced length may exceed what is there (a cut answer),
        // but the header itself lies within the input.
        assert!(rest.len() < data.len());
        let _ = announced;
    }
    if let Ok(Some(info)) = FileInfo::parse(data) {
        if let Some(name) = &info.df_name {
            assert!(name.len() <= data.len());
        }
        if let Some(Some(sfi)) = info.sfi {
            assert!((1..=31).contains(&sfi));
        }
    }
    if let Ok(objects) = template_objects(data) {
        for object in objects.take(data.len()) {
            if object.is_err() {
                break;
            }
        }
    }
});
