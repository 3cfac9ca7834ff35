//! Character level: T=0 through the procedure bytes (wLevelParameter =
//! characters expected), T=1 as prologue (3) then LEN + EDC.

#[path = "reader_support/mod.rs"]
mod support;

use std::sync::Arc;

use ferroccid::testing::ScriptedTransport;
use ferroccid::ProtocolPreference;
use support::*;

fn t0_char_reader() -> ScriptedTransport {
    let t = ScriptedTransport::new(Some(&Desc::new(CHARACTER).bytes()));
    script_power_on(t, 0, &ATR_T0)
        .expect_out(&set_parameters(0, 1, 0, &T0_PARAMS))
        .reply(&parameters(0, 1, 0, &T0_PARAMS))
}

#[test]
fn t0_case3_ack_then_data_then_status() {
    let apdu = [0x00, 0xD6, 0x00, 0x00, 0x02, 0xAA, 0xBB];
    let t = t0_char_reader()
        // Header, expecting one procedure byte: ACK (INS).
        .expect_out(&xfr(0, 2, 0, 1, &apdu[..5]))
        .reply(&data_block(0, 2, 0, &[0xD6]))
        // Both data bytes, expecting one procedure byte: SW1.
        .expect_out(&xfr(0, 3, 0, 1, &apdu[5..]))
        .reply(&data_block(0, 3, 0, &[0x90]))
        // Nothing to send, SW2 expected.
        .expect_out(&xfr(0, 4, 0, 1, &[]))
        .reply(&data_block(0, 4, 0, &[0x00]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::T0).unwrap();
    let mut resp = [0u8; 10];
    let n = slot.transmit(&apdu, &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x90, 0x00]);
    t.assert_done();
}

#[test]
fn t0_case2_null_then_ack_then_data() {
    let apdu = [0x00, 0xB0, 0x00, 0x00, 0x02];
    let t = t0_char_reader()
        .expect_out(&xfr(0, 2, 0, 1, &apdu))
        .reply(&data_block(0, 2, 0, &[0x60])) // NULL: keep waiting
        .expect_out(&xfr(0, 3, 0, 1, &[]))
        .reply(&data_block(0, 3, 0, &[0xB0])) // ACK: all data follows
        .expect_out(&xfr(0, 4, 0, 2, &[]))
        .reply(&data_block(0, 4, 0, &[0x11, 0x22]))
        .expect_out(&xfr(0, 5, 0, 1, &[]))
        .reply(&data_block(0, 5, 0, &[0x90]))
        .expect_out(&xfr(0, 6, 0, 1, &[]))
        .reply(&data_block(0, 6, 0, &[0x00]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::T0).unwrap();
    let mut resp = [0u8; 10];
    let n = slot.transmit(&apdu, &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x11, 0x22, 0x90, 0x00]);
    t.assert_done();
}

#[test]
fn t1_prologue_then_body() {
    let apdu = [0x00, 0xA4, 0x04, 0x00, 0x00];
    let ifs_response = t1_block(0xE1, &[0xFE]);
    let answer = t1_block(0x00, &[0x90, 0x00]);
    let t = ScriptedTransport::new(Some(&Desc::new(CHARACTER).bytes()));
    let t = script_power_on(t, 0, &ATR_T1)
        .expect_out(&set_parameters(0, 1, 1, &T1_PARAMS))
        .reply(&parameters(0, 1, 1, &T1_PARAMS))
        // S(IFS request): the block, expecting the 3-byte prologue ...
        .expect_out(&xfr(0, 2, 0, 3, &t1_block(0xC1, &[0xFE])))
        .reply(&data_block(0, 2, 0, &ifs_response[..3]))
        // ... then LEN (1) + LRC (1) more bytes.
        .expect_out(&xfr(0, 3, 0, 2, &[]))
        .reply(&data_block(0, 3, 0, &ifs_response[3..]))
        .expect_out(&xfr(0, 4, 0, 3, &t1_block(0x00, &apdu)))
        .reply(&data_block(0, 4, 0, &answer[..3]))
        .expect_out(&xfr(0, 5, 0, 3, &[]))
        .reply(&data_block(0, 5, 0, &answer[3..]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::T1).unwrap();
    let mut resp = [0u8; 10];
    let n = slot.transmit(&apdu, &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x90, 0x00]);
    t.assert_done();
}
