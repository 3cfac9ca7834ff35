//! Power on (voltage sequence, ATR), power off, slot status, and the
//! PPS / SetParameters / SetDataRateAndClockFrequency / IFSD sequences for
//! several kinds of reader.

#[path = "reader_support/mod.rs"]
mod support;

use std::sync::Arc;

use ferroccid::ccid::status::IccStatus;
use ferroccid::testing::ScriptedTransport;
use ferroccid::{ErrorKind, ProtocolPreference, ReaderError};
use support::*;

/// bStatus 0x41: command failed, card present and inactive.
const FAILED_INACTIVE: u8 = 0x41;
/// bStatus 0x42: command failed, no card.
const FAILED_ABSENT: u8 = 0x42;
const ICC_MUTE: u8 = 0xFE;
const ICC_CLASS_NOT_SUPPORTED: u8 = 0xF5;

#[test]
fn voltage_sequence_5v_3v_1v8() {
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU).bytes()))
        .expect_out(&power_on(0, 0, 1))
        .reply(&rsp(0x80, 0, 0, FAILED_INACTIVE, ICC_MUTE, 0, &[]))
        .expect_out(&power_on(0, 1, 2))
        .reply(&rsp(
            0x80,
            0,
            1,
            FAILED_INACTIVE,
            ICC_CLASS_NOT_SUPPORTED,
            0,
            &[],
        ))
        .expect_out(&power_on(0, 2, 3))
        .reply(&data_block(0, 2, 0, &ATR_T0));
    let t = Arc::new(t);
    let reader = open(&t);
    let atr = reader.slot(0).unwrap().power_on().unwrap();
    assert_eq!(atr.as_bytes(), &ATR_T0);
    t.assert_done();
}

#[test]
fn voltage_sequence_skips_what_the_reader_lacks() {
    let mut desc = Desc::new(TPDU);
    desc.voltage_support = 0x06; // 3 V and 1.8 V only
    let t = ScriptedTransport::new(Some(&desc.bytes()))
        .expect_out(&power_on(0, 0, 2))
        .reply(&rsp(0x80, 0, 0, FAILED_INACTIVE, ICC_MUTE, 0, &[]))
        .expect_out(&power_on(0, 1, 3))
        .reply(&rsp(0x80, 0, 1, FAILED_INACTIVE, ICC_MUTE, 0, &[]));
    let t = Arc::new(t);
    let reader = open(&t);
    let err = reader.slot(0).unwrap().power_on().unwrap_err();
    match err {
        ReaderError::CardMute { ref tried } => assert_eq!(tried, &[2, 3]),
        other => panic!("unexpected {other}"),
    }
    assert_eq!(err.kind(), ErrorKind::NoCard);
    t.assert_done();
}

#[test]
fn automatic_voltage_selection_uses_power_select_0() {
    let desc = Desc::new(TPDU | 0x08);
    let t = ScriptedTransport::new(Some(&desc.bytes()))
        .expect_out(&power_on(0, 0, 0))
        .reply(&data_block(0, 0, 0, &ATR_T0));
    let t = Arc::new(t);
    let reader = open(&t);
    reader.slot(0).unwrap().power_on().unwrap();
    t.assert_done();
}

#[test]
fn no_card_is_not_retried_at_other_voltages() {
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU).bytes()))
        .expect_out(&power_on(0, 0, 1))
        .reply(&rsp(0x80, 0, 0, FAILED_ABSENT, ICC_MUTE, 0, &[]));
    let t = Arc::new(t);
    let reader = open(&t);
    let err = reader.slot(0).unwrap().power_on().unwrap_err();
    assert!(matches!(err, ReaderError::NoCard), "{err}");
    t.assert_done();
}

#[test]
fn bad_atr_is_reported_with_its_bytes() {
    // T0 = 80 announces TD1, which is missing.
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU).bytes()))
        .expect_out(&power_on(0, 0, 1))
        .reply(&data_block(0, 0, 0, &[0x3B, 0x80]));
    let t = Arc::new(t);
    let reader = open(&t);
    let err = reader.slot(0).unwrap().power_on().unwrap_err();
    match &err {
        ReaderError::BadAtr { atr, .. } => assert_eq!(atr, &[0x3B, 0x80]),
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("3B 80"), "{err}");
    t.assert_done();
}

#[test]
fn atr_missing_tck_is_accepted() {
    // T=1 announced, TCK missing: real cards do this; libccid uses them.
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU).bytes()))
        .expect_out(&power_on(0, 0, 1))
        .reply(&data_block(0, 0, 0, &[0x3B, 0x80, 0x01]));
    let t = Arc::new(t);
    let reader = open(&t);
    let atr = reader.slot(0).unwrap().power_on().unwrap();
    assert_eq!(atr.default_protocol(), 1);
    t.assert_done();
}

#[test]
fn power_off_and_status() {
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU).bytes()))
        .expect_out(&cmd(0x65, 0, 0, [0, 0, 0], &[]))
        .reply(&slot_status(0, 0, 0x01, 0)) // present, inactive
        .expect_out(&power_on(0, 1, 1))
        .reply(&data_block(0, 1, 0, &ATR_T0))
        .expect_out(&cmd(0x65, 0, 2, [0, 0, 0], &[]))
        .reply(&slot_status(0, 2, 0x00, 0)) // present, active
        .expect_out(&cmd(0x63, 0, 3, [0, 0, 0], &[]))
        .reply(&slot_status(0, 3, 0x01, 0))
        .expect_out(&cmd(0x65, 0, 4, [0, 0, 0], &[]))
        .reply(&slot_status(0, 4, FAILED_ABSENT, ICC_MUTE)); // no card
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    let s = slot.status().unwrap();
    assert!(s.present && !s.powered);
    slot.power_on().unwrap();
    let s = slot.status().unwrap();
    assert!(s.present && s.powered);
    slot.power_off().unwrap();
    assert!(slot.atr().is_none());
    let s = slot.status().unwrap();
    assert_eq!(s.icc, IccStatus::Absent);
    assert!(!s.present);
    t.assert_done();
}

/// TA1 = 96: Fi 512, Di 32, f(max) 5 MHz; at 4 MHz 250 000 bit/s.
const ATR_TA1_96: [u8; 3] = [0x3B, 0x10, 0x96];
const T0_PARAMS_96: [u8; 5] = [0x96, 0x00, 0x00, 0x0A, 0x00];
/// PPSS FF, PPS0 10 (PPS1 present, T=0), PPS1 96, PCK = FF ^ 10 ^ 96 = 79.
const PPS_96: [u8; 4] = [0xFF, 0x10, 0x96, 0x79];

#[test]
fn tpdu_reader_without_auto_pps_gets_pps_then_set_parameters() {
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU).bytes()));
    let t = script_power_on(t, 0, &ATR_TA1_96)
        .expect_out(&xfr(0, 1, 0, 0, &PPS_96))
        .reply(&data_block(0, 1, 0, &PPS_96))
        .expect_out(&set_parameters(0, 2, 0, &T0_PARAMS_96))
        .reply(&parameters(0, 2, 0, &T0_PARAMS_96));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    assert_eq!(slot.set_protocol(ProtocolPreference::Any).unwrap(), 0);
    assert_eq!(slot.protocol(), Some(0));
    t.assert_done();
}

#[test]
fn refused_pps_is_a_typed_error() {
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU).bytes()));
    // The card answers PPS1 = 11: not an echo of 96 (§9.3).
    let t = script_power_on(t, 0, &ATR_TA1_96)
        .expect_out(&xfr(0, 1, 0, 0, &PPS_96))
        .reply(&data_block(0, 1, 0, &[0xFF, 0x10, 0x11, 0xFE]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    let err = slot.set_protocol(ProtocolPreference::Any).unwrap_err();
    assert!(matches!(err, ReaderError::PpsFailed { .. }), "{err}");
    t.assert_done();
}

#[test]
fn auto_pps_reader_gets_set_parameters_only() {
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU | 0x80).bytes()));
    let t = script_power_on(t, 0, &ATR_TA1_96)
        .expect_out(&set_parameters(0, 1, 0, &T0_PARAMS_96))
        .reply(&parameters(0, 1, 0, &T0_PARAMS_96));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::Any).unwrap();
    t.assert_done();
}

#[test]
fn reader_configuring_from_atr_gets_only_the_ifsd_request() {
    // dwFeatures 0x02: parameters from the ATR; T=1 IFSD still ours.
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU | 0x02).bytes()));
    let t = script_power_on(t, 0, &ATR_T1)
        .expect_out(&xfr(0, 1, 0, 0, &t1_block(0xC1, &[0xFE])))
        .reply(&data_block(0, 1, 0, &t1_block(0xE1, &[0xFE])));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    assert_eq!(slot.set_protocol(ProtocolPreference::T1).unwrap(), 1);
    t.assert_done();
}

#[test]
fn auto_ifsd_reader_gets_no_ifs_request() {
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU | 0x400).bytes()));
    let t = script_power_on(t, 0, &ATR_T1)
        .expect_out(&set_parameters(0, 1, 1, &T1_PARAMS))
        .reply(&parameters(0, 1, 1, &T1_PARAMS));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::Any).unwrap();
    t.assert_done();
}

#[test]
fn parameters_not_changeable_is_accepted() {
    // bStatus 0x40 (failed, card active), bError 0x0A: offset 10, the
    // first byte of abProtocolDataStructure (CCID §6.1.7).
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU).bytes()));
    let t = script_power_on(t, 0, &ATR_T0)
        .expect_out(&set_parameters(0, 1, 0, &T0_PARAMS))
        .reply(&rsp(0x82, 0, 1, 0x40, 0x0A, 0, &[]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    assert_eq!(slot.set_protocol(ProtocolPreference::T0).unwrap(), 0);
    t.assert_done();
}

#[test]
fn protocol_the_card_lacks_is_refused() {
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU).bytes()));
    let t = Arc::new(script_power_on(t, 0, &ATR_T0));
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    let err = slot.set_protocol(ProtocolPreference::T1).unwrap_err();
    assert!(matches!(err, ReaderError::Negotiation(_)), "{err}");
    assert_eq!(err.kind(), ErrorKind::NotSupported);
    t.assert_done();
}

#[test]
fn data_rate_list_is_read_and_rate_and_clock_are_set() {
    let mut desc = Desc::new(TPDU);
    desc.num_data_rates = 2;
    let mut rates = 10_752u32.to_le_bytes().to_vec();
    rates.extend(250_000u32.to_le_bytes());
    // SetDataRateAndClockFrequency: 4000 kHz, 250 000 bit/s.
    let mut rate_clock = 4000u32.to_le_bytes().to_vec();
    rate_clock.extend(250_000u32.to_le_bytes());
    let t = ScriptedTransport::new(Some(&desc.bytes())).expect_control_in(0x03, Some(0), &rates);
    let t = script_power_on(t, 0, &ATR_TA1_96)
        .expect_out(&xfr(0, 1, 0, 0, &PPS_96))
        .reply(&data_block(0, 1, 0, &PPS_96))
        .expect_out(&set_parameters(0, 2, 0, &T0_PARAMS_96))
        .reply(&parameters(0, 2, 0, &T0_PARAMS_96))
        .expect_out(&cmd(0x73, 0, 3, [0, 0, 0], &rate_clock))
        .reply(&rsp(0x84, 0, 3, 0, 0, 0, &rate_clock));
    let t = Arc::new(t);
    let reader = open(&t);
    assert_eq!(reader.data_rates(), &[10_752, 250_000]);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::Any).unwrap();
    t.assert_done();
}

#[test]
fn quirk_fixes_the_descriptor() {
    let mut desc = Desc::new(TPDU);
    desc.max_ifsd = 32;
    let t = Arc::new(ScriptedTransport::new(Some(&desc.bytes())).with_info(|i| {
        i.vendor_id = 0x09BE;
        i.product_id = 0x0002;
    }));
    let reader = open(&t);
    assert_eq!(reader.descriptor().max_ifsd, 254);
    assert_eq!(reader.quirks().len(), 1);
}
