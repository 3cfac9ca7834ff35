//! Command APDU cases of ISO/IEC 7816-4 §5.1.

use ferroccid_protocols::t0::{ApduCase, ApduError, CommandApdu};

#[test]
fn case_1_is_the_bare_header() {
    let apdu = CommandApdu::parse(&[0x00, 0x70, 0x00, 0x00]).unwrap();
    assert_eq!(apdu.case(), ApduCase::Case1);
    assert_eq!(apdu.ne(), 0);
    assert!(apdu.data().is_empty());
}

#[test]
fn case_2s_le_00_means_256() {
    let apdu = CommandApdu::parse(&[0x00, 0xB0, 0x00, 0x00, 0x00]).unwrap();
    assert_eq!(apdu.case(), ApduCase::Case2Short);
    assert_eq!(apdu.ne(), 256);
    let apdu = CommandApdu::parse(&[0x00, 0x84, 0x00, 0x00, 0x08]).unwrap();
    assert_eq!(apdu.ne(), 8);
}

#[test]
fn case_3s_and_4s() {
    let select = [0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00];
    let apdu = CommandApdu::parse(&select).unwrap();
    assert_eq!(apdu.case(), ApduCase::Case3Short);
    assert_eq!(apdu.data(), &[0x3F, 0x00]);
    let with_le = [0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00, 0x00];
    let apdu = CommandApdu::parse(&with_le).unwrap();
    assert_eq!(apdu.case(), ApduCase::Case4Short);
    assert_eq!(apdu.data(), &[0x3F, 0x00]);
    assert_eq!(apdu.ne(), 256);
}

#[test]
fn extended_cases() {
    // Case 2E: 00 then Le on two bytes; 0000 means 65 536.
    let apdu = CommandApdu::parse(&[0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x2C]).unwrap();
    assert_eq!(apdu.case(), ApduCase::Case2Extended);
    assert_eq!(apdu.ne(), 300);
    let apdu = CommandApdu::parse(&[0x00, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x00]).unwrap();
    assert_eq!(apdu.ne(), 65_536);
    // Case 3E: Lc = 0003.
    let apdu = CommandApdu::parse(&[0x00, 0xD6, 0, 0, 0x00, 0x00, 0x03, 1, 2, 3]).unwrap();
    assert_eq!(apdu.case(), ApduCase::Case3Extended);
    assert_eq!(apdu.data(), &[1, 2, 3]);
    // Case 4E: Lc = 0002, Le = 0100.
    let apdu = CommandApdu::parse(&[0x00, 0x88, 0, 0, 0x00, 0x00, 0x02, 9, 8, 0x01, 0x00]).unwrap();
    assert_eq!(apdu.case(), ApduCase::Case4Extended);
    assert_eq!(apdu.data(), &[9, 8]);
    assert_eq!(apdu.ne(), 256);
}

#[test]
fn inconsistent_lengths_are_rejected() {
    assert_eq!(
        CommandApdu::parse(&[0x00, 0xA4, 0x04]),
        Err(ApduError::TooShort)
    );
    // Lc = 2 but three data bytes and no room for a one-byte Le reading.
    let bad = [0x00, 0xA4, 0x04, 0x00, 0x02, 1, 2, 3, 4];
    assert_eq!(
        CommandApdu::parse(&bad),
        Err(ApduError::InconsistentLength { len: 9 })
    );
    // 00 followed by one byte: neither short nor extended.
    assert!(CommandApdu::parse(&[0x00, 0xA4, 0x04, 0x00, 0x00, 0x01]).is_err());
    // Extended Lc = 0000 is not a length.
    assert!(CommandApdu::parse(&[0x00, 0xA4, 0x04, 0x00, 0x00, 0x00, 0x00, 0x01]).is_err());
    // CLA FF is PPS, not a command.
    assert_eq!(
        CommandApdu::parse(&[0xFF, 0xA4, 0x04, 0x00]),
        Err(ApduError::InvalidClass)
    );
}
