//! "No card" in a card command's answer, and waits on an unplugged reader.
//!
//! CCID §6.2.6: bmICCStatus 2 means no ICC is present, whatever
//! bmCommandStatus says. QEMU's usb-ccid answers an XfrBlock on an empty
//! slot with an empty RDR_to_PC_DataBlock, bStatus 0x02 (command processed,
//! no ICC); other readers answer bStatus 0x42 (failed, no ICC) with bError
//! ICC_MUTE. Both must be `NoCard` before the T=0 or T=1 engine sees the
//! empty payload, at every exchange level. After an unplug,
//! `Reader::wait_for_change` must fail with `DeviceGone` at once instead of
//! waiting out its timeout.

#[path = "reader_support/mod.rs"]
mod support;

#[path = "reader_sim_support.rs"]
mod sim_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroccid::testing::{Fault, ScriptedTransport};
use ferroccid::{ErrorKind, ProtocolPreference, ReaderError, ReaderEvent};
use ferroccid_sim::card::CardConfig;
use support::*;

/// GET CHALLENGE, 8 bytes (ISO/IEC 7816-4 §11.5.3).
const GET_CHALLENGE: [u8; 5] = [0x00, 0x84, 0x00, 0x00, 0x08];

/// bStatus: command processed, no ICC present (CCID §6.2.6).
const OK_NO_ICC: u8 = 0x02;
/// bStatus: command failed, no ICC present.
const FAILED_NO_ICC: u8 = 0x42;
/// bError ICC_MUTE (CCID table 6.2-2).
const ICC_MUTE: u8 = 0xFE;

fn assert_no_card(result: Result<usize, ReaderError>, what: &str) {
    let e = result.expect_err(what);
    assert!(matches!(e, ReaderError::NoCard), "{what}: {e:?} ({e})");
    assert_eq!(e.kind(), ErrorKind::NoCard, "{what}");
}

#[test]
fn empty_data_block_without_card_is_no_card_at_tpdu_t0() {
    // What QEMU's reader sends after the card left (captured with usbmon).
    let t = script_power_on(
        ScriptedTransport::new(Some(&Desc::new(TPDU).bytes())),
        0,
        &ATR_T0,
    )
    .expect_out(&set_parameters(0, 1, 0, &T0_PARAMS))
    .reply(&parameters(0, 1, 0, &T0_PARAMS))
    .expect_out(&xfr(0, 2, 0, 0, &GET_CHALLENGE))
    .reply(&rsp(0x80, 0, 2, OK_NO_ICC, 0, 0, &[]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    assert_eq!(slot.set_protocol(ProtocolPreference::T0).unwrap(), 0);
    let mut response = [0u8; 258];
    assert_no_card(
        slot.transmit(&GET_CHALLENGE, &mut response),
        "empty DataBlock, bStatus 0x02",
    );
    // The card's parameters went with it: nothing more is sent until a
    // power on.
    let e = slot.transmit(&GET_CHALLENGE, &mut response).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoCard, "{e:?}");
    assert_eq!(slot.atr(), None);
    t.assert_done();
}

#[test]
fn failed_data_block_without_card_is_no_card_at_tpdu_t1() {
    // bStatus 0x42 with ICC_MUTE: the T=1 engine must not take it for a
    // block timeout and retry (ISO/IEC 7816-3 §11.6.3) — nothing else is
    // scripted, so a retry would fail the script.
    let t = script_t1_setup(
        script_power_on(
            ScriptedTransport::new(Some(&Desc::new(TPDU).bytes())),
            0,
            &ATR_T1,
        ),
        1,
    )
    .expect_out(&xfr(0, 3, 0, 0, &t1_block(0x00, &GET_CHALLENGE)))
    .reply(&rsp(0x80, 0, 3, FAILED_NO_ICC, ICC_MUTE, 0, &[]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    assert_eq!(slot.set_protocol(ProtocolPreference::T1).unwrap(), 1);
    let mut response = [0u8; 258];
    assert_no_card(
        slot.transmit(&GET_CHALLENGE, &mut response),
        "failed DataBlock, bStatus 0x42",
    );
    t.assert_done();
}

#[test]
fn empty_data_block_without_card_is_no_card_at_tpdu_t1() {
    let t = script_t1_setup(
        script_power_on(
            ScriptedTransport::new(Some(&Desc::new(TPDU).bytes())),
            0,
            &ATR_T1,
        ),
        1,
    )
    .expect_out(&xfr(0, 3, 0, 0, &t1_block(0x00, &GET_CHALLENGE)))
    .reply(&rsp(0x80, 0, 3, OK_NO_ICC, 0, 0, &[]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::T1).unwrap();
    let mut response = [0u8; 258];
    assert_no_card(
        slot.transmit(&GET_CHALLENGE, &mut response),
        "empty DataBlock at T=1",
    );
    t.assert_done();
}

#[test]
fn empty_data_block_without_card_is_no_card_at_short_apdu() {
    // At APDU level the reader picks the parameters itself from the ATR
    // (dwFeatures 0x02 | 0x08 would say so; a bare short-APDU reader gets
    // SetParameters), so the script follows what the reader sends.
    let mut desc = Desc::new(SHORT_APDU);
    desc.features |= 0x0000_0002 | 0x0000_0040;
    let t = script_power_on(ScriptedTransport::new(Some(&desc.bytes())), 0, &ATR_T1)
        .expect_out(&xfr(0, 1, 0, 0, &GET_CHALLENGE))
        .reply(&rsp(0x80, 0, 1, OK_NO_ICC, 0, 0, &[]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    let mut response = [0u8; 258];
    assert_no_card(
        slot.transmit(&GET_CHALLENGE, &mut response),
        "empty DataBlock at short APDU level",
    );
    t.assert_done();
}

#[test]
fn removed_card_is_no_card_in_the_simulator() {
    for (profile, preference) in [
        ("tpdu-t0", ProtocolPreference::T0),
        ("tpdu-t1", ProtocolPreference::T1),
        ("short-apdu", ProtocolPreference::Any),
    ] {
        let (reader, handle) = sim_support::open_with(
            sim_support::profile_with(profile, Some(CardConfig::dual())),
            sim_support::quick_options(),
        );
        let slot = reader.slot(0).unwrap();
        slot.power_on().unwrap();
        slot.set_protocol(preference).unwrap();
        let mut response = [0u8; 258];
        let n = slot.transmit(&GET_CHALLENGE, &mut response).unwrap();
        assert_eq!((n, &response[8..10]), (10, &[0x90, 0x00][..]), "{profile}");
        handle.remove_card(0);
        let start = Instant::now();
        assert_no_card(slot.transmit(&GET_CHALLENGE, &mut response), profile);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{profile}: NoCard took {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn wait_for_change_after_unplug_on_the_interrupt_pipe_is_device_gone() {
    let t = Arc::new(
        ScriptedTransport::new(Some(&Desc::new(TPDU).bytes())).interrupt_fault(Fault::Gone),
    );
    let reader = open(&t);
    let events = reader.events();
    assert_eq!(
        events.recv_timeout(Duration::from_secs(5)).unwrap(),
        ReaderEvent::DeviceGone
    );
    // The event thread has ended; a first wait after that has nothing to
    // receive and must not sit out its timeout.
    for call in 0..2 {
        let start = Instant::now();
        let got = reader.wait_for_change(Duration::from_secs(5));
        assert!(
            matches!(got, Err(ReaderError::DeviceGone)),
            "{call}: {got:?}"
        );
        assert!(start.elapsed() < Duration::from_millis(500), "{call}");
    }
}

#[test]
fn wait_for_change_running_at_unplug_sees_it() {
    let t = Arc::new(
        ScriptedTransport::new(Some(&Desc::new(TPDU).bytes())).interrupt_fault(Fault::Gone),
    );
    let reader = open(&t);
    let start = Instant::now();
    // The first wait starts the event thread, which meets the unplug: it
    // returns the DeviceGone event or the error, and the next one the error.
    match reader.wait_for_change(Duration::from_secs(5)) {
        Ok(Some(ReaderEvent::DeviceGone)) | Err(ReaderError::DeviceGone) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        reader.wait_for_change(Duration::from_secs(5)),
        Err(ReaderError::DeviceGone)
    ));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn wait_for_change_after_unplug_in_the_simulator_is_device_gone() {
    let (reader, handle) = sim_support::open_with(
        sim_support::profile_with("tpdu", Some(CardConfig::dual())),
        sim_support::quick_options(),
    );
    let events = reader.events();
    handle.unplug();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(ReaderEvent::DeviceGone) => break,
            Ok(_) => continue,
            Err(e) => panic!("no DeviceGone event: {e}"),
        }
    }
    let start = Instant::now();
    let got = reader.wait_for_change(Duration::from_secs(5));
    assert!(matches!(got, Err(ReaderError::DeviceGone)), "{got:?}");
    assert!(start.elapsed() < Duration::from_millis(500));
    let slot = reader.slot(0).unwrap();
    let e = slot.wait_for_change(Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, ReaderError::DeviceGone), "{e:?}");
    assert!(start.elapsed() < Duration::from_secs(1));
}
