//! The PIN verify/modify structures of PC_to_RDR_Secure (`SecureData`):
//! never panics, a decoded structure accounts for every input byte, and its
//! fields sit where CCID tables 6.1-5 and 6.1-6 put them.
#![no_main]

use ferroccid::ccid::secure::SecureData;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = SecureData::parse(data) else {
        return;
    };
    assert!(!parsed.is_empty());
    assert_eq!(parsed.len(), data.len(), "every byte is accounted for");
    match parsed {
        SecureData::Verify(v) => {
            assert_eq!(data[0], 0);
            assert_eq!(v.timeout, data[1]);
            assert_eq!(v.msg_index, data[11]);
            assert_eq!(v.teo_prologue, [data[12], data[13], data[14]]);
            assert_eq!(v.apdu, &data[15..]);
        }
        SecureData::Modify(m) => {
            assert_eq!(data[0], 1);
            let count = m.msg_index_count();
            assert!((1..=3).contains(&count));
            assert_eq!(m.number_message, data[11]);
            assert_eq!(m.msg_index[..count], data[14..14 + count]);
            assert_eq!(m.teo_prologue[..], data[14 + count..17 + count]);
            assert_eq!(m.apdu, &data[17 + count..]);
        }
        SecureData::Other {
            operation,
            data: rest,
        } => {
            assert!(operation >= 2);
            assert_eq!(rest, &data[1..]);
        }
    }
});
