//! TPDU level: T=1 (one block per XfrBlock, chaining, WTX) and T=0
//! (61xx GET RESPONSE, 6Cxx resend, transparent mode), against hand-built
//! frames.

#[path = "reader_support/mod.rs"]
mod support;

use std::sync::Arc;

use ferroccid::testing::ScriptedTransport;
use ferroccid::{ProtocolPreference, SlotOptions};
use support::*;

fn t1_reader_script() -> ScriptedTransport {
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU).bytes()));
    let t = script_power_on(t, 0, &ATR_T1);
    script_t1_setup(t, 1)
}

#[test]
fn t1_single_block_apdu() {
    // SELECT with Le: I(0,0) carries the APDU; the card answers I(0,0) with 90 00.
    let apdu = [0x00, 0xA4, 0x04, 0x00, 0x00];
    let t = t1_reader_script()
        .expect_out(&xfr(0, 3, 0, 0, &t1_block(0x00, &apdu)))
        .reply(&data_block(0, 3, 0, &t1_block(0x00, &[0x90, 0x00])));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    assert_eq!(slot.power_on().unwrap().as_bytes(), &ATR_T1);
    assert_eq!(slot.set_protocol(ProtocolPreference::Any).unwrap(), 1);
    let mut resp = [0u8; 258];
    let n = slot.transmit(&apdu, &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x90, 0x00]);
    t.assert_done();
}

#[test]
fn t1_response_chaining_and_wtx() {
    let apdu = [0x00, 0xB0, 0x00, 0x00, 0x00];
    let t = t1_reader_script()
        .expect_out(&xfr(0, 3, 0, 0, &t1_block(0x00, &apdu)))
        // The card asks for more time: S(WTX request) multiplier 3.
        .reply(&data_block(0, 3, 0, &t1_block(0xC3, &[0x03])))
        // S(WTX response 3), sent with bBWI 3 (CCID §6.1.4).
        .expect_out(&xfr(0, 4, 3, 0, &t1_block(0xE3, &[0x03])))
        // First part of a chained answer: I(0, more) "01 02".
        .reply(&data_block(0, 4, 0, &t1_block(0x20, &[0x01, 0x02])))
        // We acknowledge with R(N(R)=1).
        .expect_out(&xfr(0, 5, 0, 0, &t1_block(0x90, &[])))
        // Last part: I(1) "03 90 00".
        .reply(&data_block(0, 5, 0, &t1_block(0x40, &[0x03, 0x90, 0x00])));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::T1).unwrap();
    let mut resp = [0u8; 258];
    let n = slot.transmit(&apdu, &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x01, 0x02, 0x03, 0x90, 0x00]);
    t.assert_done();
}

#[test]
fn t1_command_chaining_follows_ifsc() {
    // IFSC 32 (default): a 40-byte APDU goes as I(0, more) 32 bytes + I(1) 8 bytes.
    let mut apdu = vec![0x00, 0xD6, 0x00, 0x00, 35];
    apdu.extend((0..35).map(|i| i as u8));
    let t = t1_reader_script()
        .expect_out(&xfr(0, 3, 0, 0, &t1_block(0x20, &apdu[..32])))
        // Card acknowledges with R(N(R)=1).
        .reply(&data_block(0, 3, 0, &t1_block(0x90, &[])))
        .expect_out(&xfr(0, 4, 0, 0, &t1_block(0x40, &apdu[32..])))
        .reply(&data_block(0, 4, 0, &t1_block(0x00, &[0x90, 0x00])));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::Any).unwrap();
    let mut resp = [0u8; 258];
    let n = slot.transmit(&apdu, &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x90, 0x00]);
    t.assert_done();
}

fn t0_reader_script() -> ScriptedTransport {
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU).bytes()));
    script_power_on(t, 0, &ATR_T0)
        .expect_out(&set_parameters(0, 1, 0, &T0_PARAMS))
        .reply(&parameters(0, 1, 0, &T0_PARAMS))
}

#[test]
fn t0_get_response_on_61xx() {
    // Case 4: SELECT with data and Le; 61 04 → GET RESPONSE 00 C0 00 00 04.
    let apdu = [0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00, 0x00];
    let t = t0_reader_script()
        .expect_out(&xfr(0, 2, 0, 0, &apdu[..7]))
        .reply(&data_block(0, 2, 0, &[0x61, 0x04]))
        .expect_out(&xfr(0, 3, 0, 0, &[0x00, 0xC0, 0x00, 0x00, 0x04]))
        .reply(&data_block(0, 3, 0, &[0xA1, 0xA2, 0xA3, 0xA4, 0x90, 0x00]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    assert_eq!(slot.set_protocol(ProtocolPreference::T0).unwrap(), 0);
    let mut resp = [0u8; 258];
    let n = slot.transmit(&apdu, &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0xA1, 0xA2, 0xA3, 0xA4, 0x90, 0x00]);
    t.assert_done();
}

#[test]
fn t0_resend_on_6cxx() {
    // Case 2 with Le 00 (256): 6C 02 → resend with P3 = 02.
    let apdu = [0x00, 0xCA, 0x01, 0x00, 0x00];
    let t = t0_reader_script()
        .expect_out(&xfr(0, 2, 0, 0, &apdu))
        .reply(&data_block(0, 2, 0, &[0x6C, 0x02]))
        .expect_out(&xfr(0, 3, 0, 0, &[0x00, 0xCA, 0x01, 0x00, 0x02]))
        .reply(&data_block(0, 3, 0, &[0x12, 0x34, 0x90, 0x00]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::Any).unwrap();
    let mut resp = [0u8; 258];
    let n = slot.transmit(&apdu, &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x12, 0x34, 0x90, 0x00]);
    t.assert_done();
}

#[test]
fn t0_transparent_mode_returns_61xx() {
    let apdu = [0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00];
    let t = t0_reader_script()
        .expect_out(&xfr(0, 2, 0, 0, &apdu))
        .reply(&data_block(0, 2, 0, &[0x61, 0x10]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.set_options(SlotOptions {
        auto_get_response: false,
        auto_resend_6c: false,
    });
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::T0).unwrap();
    let mut resp = [0u8; 258];
    let n = slot.transmit(&apdu, &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x61, 0x10]);
    t.assert_done();
}
