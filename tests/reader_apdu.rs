//! Short and extended APDU levels (CCID §6.1.4 table 6.1-4 chaining).

#[path = "reader_support/mod.rs"]
mod support;

use std::sync::Arc;

use ferroccid::testing::ScriptedTransport;
use ferroccid::{ErrorKind, ProtocolPreference, ReaderError};
use support::*;

/// An APDU-level reader still gets SetParameters (the reader does the
/// card-side protocol, but the parameters come from the host).
fn apdu_reader(desc: Desc) -> ScriptedTransport {
    let t = ScriptedTransport::new(Some(&desc.bytes()));
    script_power_on(t, 0, &ATR_T1)
        .expect_out(&set_parameters(0, 1, 1, &T1_PARAMS))
        .reply(&parameters(0, 1, 1, &T1_PARAMS))
}

#[test]
fn short_apdu_in_one_xfrblock() {
    let apdu = [0x00, 0xB0, 0x00, 0x00, 0x04];
    let t = apdu_reader(Desc::new(SHORT_APDU))
        .expect_out(&xfr(0, 2, 0, 0, &apdu))
        .reply(&data_block(0, 2, 0, &[1, 2, 3, 4, 0x90, 0x00]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::Any).unwrap();
    let mut resp = [0u8; 258];
    let n = slot.transmit(&apdu, &mut resp).unwrap();
    assert_eq!(&resp[..n], &[1, 2, 3, 4, 0x90, 0x00]);
    t.assert_done();
}

#[test]
fn short_apdu_reader_refuses_extended_before_sending() {
    // Case 2E: 00 B0 00 00 00 01 00 (Le = 256 in extended form).
    let apdu = [0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x00];
    let t = Arc::new(apdu_reader(Desc::new(SHORT_APDU)));
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::Any).unwrap();
    let mut resp = [0u8; 258];
    let err = slot.transmit(&apdu, &mut resp).unwrap_err();
    assert!(
        matches!(err, ReaderError::ExtendedApduNotSupported { len: 7 }),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::NotSupported);
    t.assert_done(); // nothing was sent
}

#[test]
fn short_apdu_response_too_long_for_buffer() {
    let apdu = [0x00, 0xB0, 0x00, 0x00, 0x04];
    let t = apdu_reader(Desc::new(SHORT_APDU))
        .expect_out(&xfr(0, 2, 0, 0, &apdu))
        .reply(&data_block(0, 2, 0, &[1, 2, 3, 4, 0x90, 0x00]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::Any).unwrap();
    let mut resp = [0u8; 4];
    let err = slot.transmit(&apdu, &mut resp).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InsufficientBuffer, "{err}");
    t.assert_done();
}

#[test]
fn extended_apdu_chains_both_ways() {
    // dwMaxCCIDMessageLength 30: at most 20 data bytes per XfrBlock.
    let mut desc = Desc::new(EXTENDED_APDU);
    desc.max_message_length = 30;
    // Case 3E with Lc = 40: 00 D6 00 00 00 00 28 + 40 bytes = 47 bytes.
    let mut apdu = vec![0x00, 0xD6, 0x00, 0x00, 0x00, 0x00, 0x28];
    apdu.extend((0..40).map(|i| i as u8));
    let t = apdu_reader(desc)
        // 47 bytes: 20 (begins, 1), 20 (continues, 3), 7 (ends, 2).
        .expect_out(&xfr(0, 2, 0, 1, &apdu[..20]))
        .reply(&data_block(0, 2, 0x10, &[]))
        .expect_out(&xfr(0, 3, 0, 3, &apdu[20..40]))
        .reply(&data_block(0, 3, 0x10, &[]))
        .expect_out(&xfr(0, 4, 0, 2, &apdu[40..]))
        // Response in parts: begins (1) ... continues (3) ... ends (2),
        // each continuation asked for with an empty XfrBlock, level 0x10.
        .reply(&data_block(0, 4, 0x01, &[0xA0; 20]))
        .expect_out(&xfr(0, 5, 0, 0x10, &[]))
        .reply(&data_block(0, 5, 0x03, &[0xA1; 20]))
        .expect_out(&xfr(0, 6, 0, 0x10, &[]))
        .reply(&data_block(0, 6, 0x02, &[0xA2, 0x90, 0x00]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::Any).unwrap();
    let mut resp = [0u8; 100];
    let n = slot.transmit(&apdu, &mut resp).unwrap();
    let mut expected = vec![0xA0; 20];
    expected.extend([0xA1; 20]);
    expected.extend([0xA2, 0x90, 0x00]);
    assert_eq!(&resp[..n], &expected[..]);
    t.assert_done();
}

#[test]
fn extended_apdu_that_fits_goes_unchained() {
    let apdu = [0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x00];
    let t = apdu_reader(Desc::new(EXTENDED_APDU))
        .expect_out(&xfr(0, 2, 0, 0, &apdu))
        .reply(&data_block(0, 2, 0, &[0x90, 0x00]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::Any).unwrap();
    let mut resp = [0u8; 10];
    assert_eq!(slot.transmit(&apdu, &mut resp).unwrap(), 2);
    t.assert_done();
}
