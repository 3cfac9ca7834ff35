//! PC/SC part 10 PIN structures from a local client (`ifd::features`):
//! `verify_to_secure` and `modify_to_secure` never panic, and what they
//! accept becomes PC_to_RDR_Secure data that decodes as the CCID structure
//! it claims to be, with the client's APDU carried unchanged.
//!
//! Input: one selector byte (verify or modify), then the client's bytes.
#![no_main]

use ferroccid::ccid::secure::SecureData;
use ferroccid_ifd::{modify_to_secure, verify_to_secure};
use ferroccid::part10::{PIN_MODIFY_STRUCTURE_HEADER, PIN_VERIFY_STRUCTURE_HEADER};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, pcsc)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        if let Ok(secure) = verify_to_secure(pcsc) {
            let apdu = &pcsc[PIN_VERIFY_STRUCTURE_HEADER..];
            assert!(apdu.len() >= 4);
            match SecureData::parse(&secure) {
                Ok(SecureData::Verify(v)) => {
                    assert_eq!(v.apdu, apdu);
                    assert_eq!(v.timeout, pcsc[0]);
                }
                other => panic!("verify structure became {other:?}"),
            }
        }
    } else if let Ok(secure) = modify_to_secure(pcsc) {
        let apdu = &pcsc[PIN_MODIFY_STRUCTURE_HEADER..];
        assert!(apdu.len() >= 4);
        match SecureData::parse(&secure) {
            Ok(SecureData::Modify(m)) => {
                assert_eq!(m.apdu, apdu);
                assert_eq!(m.timeout, pcsc[0]);
            }
            other => panic!("modify structure became {other:?}"),
        }
    }
});
