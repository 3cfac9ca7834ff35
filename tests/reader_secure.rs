//! `Slot::secure` (PC_to_RDR_Secure, CCID §6.1.11) and `Reader::escape`
//! (PC_to_RDR_Escape, §6.1.8): frames written by hand from the standards
//! against the scripted transport, then the simulated `pinpad` reader with
//! a T=1 card and with its default dual card.
//!
//! At TPDU level with a T=1 card the reader sends the block whose prologue
//! the host put in bTeoPrologue and returns the card's block (CCID §6.1.11
//! bTeoPrologue; ISO/IEC 7816-3 §11.3 block frame, §11.6.2 sequence rules,
//! §11.6.3 error handling).

#[path = "reader_support/mod.rs"]
mod support;

use std::sync::Arc;

use ferroccid::testing::ScriptedTransport;
use ferroccid::{ProtocolPreference, ReaderError};
use ferroccid_sim::card::CardConfig;
use ferroccid_sim::profile::{PinEntry, Profile};
use ferroccid_sim::SimTransport;
use support::*;

/// VERIFY (ISO/IEC 7816-4 §11.5.6), reference 81, a 6-byte placeholder PIN
/// block the pad fills.
const VERIFY_TEMPLATE: [u8; 11] = [
    0x00, 0x20, 0x00, 0x81, 0x06, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
];

/// abData of a PIN verification (CCID table 6.1-5): bPINOperation 0,
/// bTimeOut 15 s, bmFormatString 82 (ASCII, byte unit, position 0, left
/// justified), bmPINBlockString 06, bmPINLengthFormat 00, wPINMaxExtraDigit
/// 0408 (4..8 digits, little-endian 08 04), bEntryValidationCondition 02
/// (OK key), bNumberMessage 01, wLangId 0409, bMsgIndex 0, bTeoPrologue as
/// given, then the APDU template.
fn verify_data(prologue: [u8; 3]) -> Vec<u8> {
    let mut d = vec![
        0x00, 15, 0x82, 0x06, 0x00, 0x08, 0x04, 0x02, 0x01, 0x09, 0x04, 0x00,
    ];
    d.extend_from_slice(&prologue);
    d.extend_from_slice(&VERIFY_TEMPLATE);
    d
}

/// PC_to_RDR_Secure (0x69): bBWI, wLevelParameter, abData.
fn secure_frame(seq: u8, ab_data: &[u8]) -> Vec<u8> {
    cmd(0x69, 0, seq, [0, 0, 0], ab_data)
}

/// A TPDU reader with a PIN pad (bPINSupport 03: verify and modify).
fn pinpad_descriptor() -> Vec<u8> {
    let mut d = Desc::new(TPDU).bytes();
    d[52] = 0x03;
    d
}

/// Power on a T=1-only card and select T=1 (seq 0..=2).
fn t1_script() -> ScriptedTransport {
    let t = ScriptedTransport::new(Some(&pinpad_descriptor()));
    script_t1_setup(script_power_on(t, 0, &ATR_T1), 1)
}

fn t1_slot(t: &Arc<ScriptedTransport>) -> ferroccid::Reader {
    let reader = open(t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    assert_eq!(slot.set_protocol(ProtocolPreference::T1).unwrap(), 1);
    reader
}

const GET_CHALLENGE: [u8; 5] = [0x00, 0x84, 0x00, 0x00, 0x08];

#[test]
fn t1_tpdu_prologue_from_the_engine_and_sequence_numbers_advance() {
    // First PIN block: I(N(S)=0): NAD 00, PCB 00, LEN 0B (the template's
    // length). The card answers I(0) 90 00; the next APDU is I(N(S)=1),
    // PCB 40, and the card's answer I(1).
    let t = t1_script()
        .expect_out(&secure_frame(3, &verify_data([0x00, 0x00, 0x0B])))
        .reply(&data_block(0, 3, 0, &t1_block(0x00, &[0x90, 0x00])))
        .expect_out(&xfr(0, 4, 0, 0, &t1_block(0x40, &GET_CHALLENGE)))
        .reply(&data_block(
            0,
            4,
            0,
            &t1_block(0x40, &[1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00]),
        ))
        // A second PIN block goes out as I(N(S)=0) again.
        .expect_out(&secure_frame(5, &verify_data([0x00, 0x00, 0x0B])))
        .reply(&data_block(0, 5, 0, &t1_block(0x00, &[0x63, 0xC2])));
    let t = Arc::new(t);
    let reader = t1_slot(&t);
    let slot = reader.slot(0).unwrap();
    let mut resp = [0u8; 258];
    // The caller's bTeoPrologue is replaced by the engine's.
    let n = slot.secure(&verify_data([0xAA; 3]), &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x90, 0x00]);
    let n = slot.transmit(&GET_CHALLENGE, &mut resp).unwrap();
    assert_eq!(&resp[..n], &[1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00]);
    let n = slot.secure(&verify_data([0; 3]), &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x63, 0xC2]);
    t.assert_done();
}

#[test]
fn t1_tpdu_card_asks_for_more_time_after_the_pin_block() {
    // S(WTX request) multiplier 3 (PCB C3); the host answers S(WTX
    // response) (PCB E3) in an XfrBlock with bBWI 3, then the I-block.
    let t = t1_script()
        .expect_out(&secure_frame(3, &verify_data([0x00, 0x00, 0x0B])))
        .reply(&data_block(0, 3, 0, &t1_block(0xC3, &[0x03])))
        .expect_out(&xfr(0, 4, 3, 0, &t1_block(0xE3, &[0x03])))
        .reply(&data_block(0, 4, 0, &t1_block(0x00, &[0x90, 0x00])))
        .expect_out(&xfr(0, 5, 0, 0, &t1_block(0x40, &GET_CHALLENGE)))
        .reply(&data_block(0, 5, 0, &t1_block(0x40, &[0x6D, 0x00])));
    let t = Arc::new(t);
    let reader = t1_slot(&t);
    let slot = reader.slot(0).unwrap();
    let mut resp = [0u8; 258];
    let n = slot.secure(&verify_data([0; 3]), &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x90, 0x00]);
    let n = slot.transmit(&GET_CHALLENGE, &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x6D, 0x00]);
    t.assert_done();
}

#[test]
fn t1_tpdu_r_block_fails_and_keeps_the_sequence_numbers() {
    // R(N(R)=0, EDC error) (PCB 81): the card did not take I(0). The call
    // fails; the card still expects N(S)=0, so the next APDU is I(0).
    let t = t1_script()
        .expect_out(&secure_frame(3, &verify_data([0x00, 0x00, 0x0B])))
        .reply(&data_block(0, 3, 0, &t1_block(0x81, &[])))
        .expect_out(&xfr(0, 4, 0, 0, &t1_block(0x00, &GET_CHALLENGE)))
        .reply(&data_block(0, 4, 0, &t1_block(0x00, &[0x6D, 0x00])));
    let t = Arc::new(t);
    let reader = t1_slot(&t);
    let slot = reader.slot(0).unwrap();
    let mut resp = [0u8; 258];
    let err = slot.secure(&verify_data([0; 3]), &mut resp).unwrap_err();
    assert!(matches!(err, ReaderError::T1(_)), "{err:?}");
    let n = slot.transmit(&GET_CHALLENGE, &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x6D, 0x00]);
    t.assert_done();
}

#[test]
fn t1_tpdu_corrupt_answer_is_asked_for_again() {
    // The card's I(0) arrives with a wrong LRC; the host sends R(N(R)=0,
    // EDC error) (PCB 81) and the card repeats its block (§11.6.3).
    let mut corrupt = t1_block(0x00, &[0x90, 0x00]);
    *corrupt.last_mut().unwrap() ^= 0xFF;
    let t = t1_script()
        .expect_out(&secure_frame(3, &verify_data([0x00, 0x00, 0x0B])))
        .reply(&data_block(0, 3, 0, &corrupt))
        .expect_out(&xfr(0, 4, 0, 0, &t1_block(0x81, &[])))
        .reply(&data_block(0, 4, 0, &t1_block(0x00, &[0x90, 0x00])))
        .expect_out(&xfr(0, 5, 0, 0, &t1_block(0x40, &GET_CHALLENGE)))
        .reply(&data_block(0, 5, 0, &t1_block(0x40, &[0x6D, 0x00])));
    let t = Arc::new(t);
    let reader = t1_slot(&t);
    let slot = reader.slot(0).unwrap();
    let mut resp = [0u8; 258];
    let n = slot.secure(&verify_data([0; 3]), &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x90, 0x00]);
    let n = slot.transmit(&GET_CHALLENGE, &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x6D, 0x00]);
    t.assert_done();
}

/// Power on a T=0-only card (seq 0, 1).
fn t0_script() -> ScriptedTransport {
    let t = ScriptedTransport::new(Some(&pinpad_descriptor()));
    script_power_on(t, 0, &ATR_T0)
        .expect_out(&set_parameters(0, 1, 0, &T0_PARAMS))
        .reply(&parameters(0, 1, 0, &T0_PARAMS))
}

#[test]
fn t0_secure_sends_the_structure_as_given_and_maps_pad_outcomes() {
    // bmCommandStatus 1 with bmICCStatus 0 (bStatus 0x40); bError F0 is
    // PIN_TIMEOUT, EF PIN_CANCELLED (CCID table 6.2-2). A time extension
    // (bStatus 0x80, bError = multiplier) is waited through.
    let t = t0_script()
        .expect_out(&secure_frame(2, &verify_data([0; 3])))
        .reply(&rsp(0x80, 0, 2, 0x80, 0x01, 0, &[]))
        .reply(&data_block(0, 2, 0, &[0x90, 0x00]))
        .expect_out(&secure_frame(3, &verify_data([0; 3])))
        .reply(&rsp(0x80, 0, 3, 0x40, 0xF0, 0, &[]))
        .expect_out(&secure_frame(4, &verify_data([0; 3])))
        .reply(&rsp(0x80, 0, 4, 0x40, 0xEF, 0, &[]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    assert_eq!(slot.set_protocol(ProtocolPreference::T0).unwrap(), 0);
    let mut resp = [0u8; 258];
    let n = slot.secure(&verify_data([0; 3]), &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x90, 0x00]);
    let err = slot.secure(&verify_data([0; 3]), &mut resp).unwrap_err();
    assert!(matches!(err, ReaderError::PinTimeout), "{err:?}");
    let err = slot.secure(&verify_data([0; 3]), &mut resp).unwrap_err();
    assert!(matches!(err, ReaderError::PinCancelled), "{err:?}");
    t.assert_done();
}

#[test]
fn malformed_structure_is_refused_before_anything_is_sent() {
    let t = Arc::new(t0_script());
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::T0).unwrap();
    let mut resp = [0u8; 258];
    // A verification structure cut after bTimeOut.
    let err = slot.secure(&[0x00, 15], &mut resp).unwrap_err();
    assert!(
        matches!(err, ReaderError::InvalidSecureData { .. }),
        "{err:?}"
    );
    let err = slot.secure(&[], &mut resp).unwrap_err();
    assert!(
        matches!(err, ReaderError::InvalidSecureData { .. }),
        "{err:?}"
    );
    t.assert_done();
}

#[test]
fn escape_goes_through_the_reader_sequence() {
    // PC_to_RDR_Escape 6B with abData; RDR_to_PC_Escape 83 with the
    // reader's data. A reader without the command answers bError 00
    // (CMD_NOT_SUPPORTED) with bmCommandStatus 1.
    let t = ScriptedTransport::new(Some(&pinpad_descriptor()))
        .expect_out(&cmd(0x6B, 0, 0, [0, 0, 0], &[0x01, 0x02]))
        .reply(&rsp(0x83, 0, 0, 0x01, 0, 0, &[0xCA, 0xFE]))
        .expect_out(&cmd(0x6B, 0, 1, [0, 0, 0], &[0xFF]))
        .reply(&rsp(0x83, 0, 1, 0x41, 0x00, 0, &[]))
        .expect_out(&cmd(0x65, 0, 2, [0, 0, 0], &[]))
        .reply(&slot_status(0, 2, 0x01, 0));
    let t = Arc::new(t);
    let reader = open(&t);
    let mut resp = [0u8; 16];
    let n = reader.escape(&[0x01, 0x02], &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0xCA, 0xFE]);
    let err = reader.escape(&[0xFF], &mut resp).unwrap_err();
    assert_eq!(err.kind(), ferroccid::ErrorKind::NotSupported, "{err:?}");
    // The next command has the next bSeq: escape used the reader's own.
    // bmICCStatus 1: a card, not active.
    let status = reader.slot(0).unwrap().status().unwrap();
    assert!(status.present && !status.powered, "{status:?}");
    t.assert_done();
}

/// The simulated GemPC Pinpad (TPDU, PIN verify + modify) with `card`.
fn sim_pinpad(card: CardConfig) -> (ferroccid::Reader, ferroccid_sim::SimHandle) {
    let mut profile = Profile::from_name("pinpad").unwrap();
    profile.slots[0].card = Some(card);
    let (transport, handle) = SimTransport::open(profile);
    let reader = ferroccid::Reader::open(Arc::new(transport)).unwrap();
    (reader, handle)
}

#[test]
fn sim_pinpad_with_a_t1_card_verifies_and_stays_in_step() {
    let (reader, handle) = sim_pinpad(CardConfig::t1());
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    assert_eq!(slot.set_protocol(ProtocolPreference::T1).unwrap(), 1);
    let mut resp = [0u8; 258];
    for round in 0..3 {
        // The pad types the card's preset PIN: 90 00.
        let n = slot.secure(&verify_data([0; 3]), &mut resp).unwrap();
        assert_eq!(&resp[..n], &[0x90, 0x00], "round {round}");
        // GET CHALLENGE: 8 bytes and 90 00 — the exchange is in step.
        let n = slot.transmit(&GET_CHALLENGE, &mut resp).unwrap();
        assert_eq!(n, 10, "round {round}: {:02X?}", &resp[..n]);
        assert_eq!(&resp[8..10], &[0x90, 0x00]);
    }
    // A wrong PIN: 63 Cx, the retries left (ISO/IEC 7816-4 §5.6).
    handle.set_pin_entry(PinEntry::Typed {
        pin: "000000".into(),
        new_pin: String::new(),
    });
    let n = slot.secure(&verify_data([0; 3]), &mut resp).unwrap();
    assert_eq!(n, 2);
    assert_eq!(resp[0], 0x63);
    assert_eq!(resp[1] & 0xF0, 0xC0);
    // The pad's own outcomes, then the card still answers.
    handle.set_pin_entry(PinEntry::Cancelled);
    let err = slot.secure(&verify_data([0; 3]), &mut resp).unwrap_err();
    assert!(matches!(err, ReaderError::PinCancelled), "{err:?}");
    handle.set_pin_entry(PinEntry::Timeout);
    let err = slot.secure(&verify_data([0; 3]), &mut resp).unwrap_err();
    assert!(matches!(err, ReaderError::PinTimeout), "{err:?}");
    let n = slot.transmit(&GET_CHALLENGE, &mut resp).unwrap();
    assert_eq!(&resp[8..n], &[0x90, 0x00]);
}

#[test]
fn sim_pinpad_with_a_t0_card_and_escape() {
    let (reader, _handle) = sim_pinpad(CardConfig::dual());
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    assert_eq!(slot.set_protocol(ProtocolPreference::T0).unwrap(), 0);
    let mut resp = [0u8; 258];
    let n = slot.secure(&verify_data([0; 3]), &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x90, 0x00]);
    // The simulator's Escape echoes its data.
    let n = reader.escape(&[0x12, 0x34, 0x56], &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x12, 0x34, 0x56]);
    let n = slot.transmit(&GET_CHALLENGE, &mut resp).unwrap();
    assert_eq!(&resp[8..n], &[0x90, 0x00]);
}
