//! What the reader does wrong and what the host does about it: time
//! extension, stale bSeq, bad frames, unplug, cancellation and timeouts
//! (class ABORT + PC_to_RDR_Abort), two slots answered out of order.

#[path = "reader_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ferroccid::ccid::CcidError;
use ferroccid::testing::{Fault, ScriptedTransport};
use ferroccid::{ErrorKind, ProtocolPreference, Reader, ReaderError, ReaderOptions};
use support::*;

/// A T=0 TPDU reader, card powered and T=0 selected (seq 0 and 1 used).
fn t0_ready() -> ScriptedTransport {
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU).bytes()));
    script_power_on(t, 0, &ATR_T0)
        .expect_out(&set_parameters(0, 1, 0, &T0_PARAMS))
        .reply(&parameters(0, 1, 0, &T0_PARAMS))
}

const SELECT: [u8; 7] = [0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00];

fn ready_slot(t: &Arc<ScriptedTransport>, options: ReaderOptions) -> (Reader, ferroccid::Slot) {
    let reader = Reader::open_with(t.clone(), options).unwrap();
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::T0).unwrap();
    (reader, slot)
}

#[test]
fn time_extension_keeps_waiting() {
    let t = t0_ready()
        .expect_out(&xfr(0, 2, 0, 0, &SELECT))
        // bStatus 0x80: time extension, bError = multiplier 2 (CCID §6.2.6).
        .reply(&rsp(0x80, 0, 2, 0x80, 0x02, 0, &[]))
        .reply(&rsp(0x80, 0, 2, 0x80, 0x01, 0, &[]))
        .reply(&data_block(0, 2, 0, &[0x90, 0x00]));
    let t = Arc::new(t);
    let (_reader, slot) = ready_slot(&t, fast_options());
    let mut resp = [0u8; 2];
    assert_eq!(slot.transmit(&SELECT, &mut resp).unwrap(), 2);
    assert_eq!(resp, [0x90, 0x00]);
    t.assert_done();
}

#[test]
fn time_extensions_are_bounded_then_aborted() {
    let t = t0_ready()
        .expect_out(&xfr(0, 2, 0, 0, &SELECT))
        .reply(&rsp(0x80, 0, 2, 0x80, 0x01, 0, &[]))
        .reply(&rsp(0x80, 0, 2, 0x80, 0x01, 0, &[]))
        .reply(&rsp(0x80, 0, 2, 0x80, 0x01, 0, &[]))
        // ABORT request wValue = bSeq 3 << 8 | bSlot 0, then PC_to_RDR_Abort seq 3.
        .expect_control_out(0x01, Some(0x0300), &[])
        .expect_out(&cmd(0x72, 0, 3, [0, 0, 0], &[]))
        .reply(&slot_status(0, 3, 0x00, 0x00));
    let t = Arc::new(t);
    let options = ReaderOptions {
        max_time_extensions: 2,
        ..fast_options()
    };
    let (_reader, slot) = ready_slot(&t, options);
    let mut resp = [0u8; 2];
    let err = slot.transmit(&SELECT, &mut resp).unwrap_err();
    assert!(
        matches!(err, ReaderError::TooManyTimeExtensions { limit: 2 }),
        "{err}"
    );
    t.assert_done();
}

#[test]
fn stale_sequence_numbers_are_skipped() {
    let t = t0_ready()
        .expect_out(&xfr(0, 2, 0, 0, &SELECT))
        .reply(&data_block(0, 1, 0, &[0x6F, 0x00])) // late answer to seq 1
        .reply(&data_block(0, 0, 0, &[0x6F, 0x00])) // and to seq 0
        .reply(&data_block(0, 2, 0, &[0x90, 0x00]));
    let t = Arc::new(t);
    let (_reader, slot) = ready_slot(&t, fast_options());
    let mut resp = [0u8; 2];
    assert_eq!(slot.transmit(&SELECT, &mut resp).unwrap(), 2);
    assert_eq!(resp, [0x90, 0x00]);
    t.assert_done();
}

#[test]
fn stale_sequence_numbers_are_bounded() {
    let t = t0_ready()
        .expect_out(&xfr(0, 2, 0, 0, &SELECT))
        .reply(&data_block(0, 4, 0, &[0x90, 0x00]))
        .reply(&data_block(0, 4, 0, &[0x90, 0x00]))
        .reply(&data_block(0, 4, 0, &[0x90, 0x00]));
    let t = Arc::new(t);
    let options = ReaderOptions {
        max_stale_frames: 2,
        ..fast_options()
    };
    let (_reader, slot) = ready_slot(&t, options);
    let mut resp = [0u8; 2];
    let err = slot.transmit(&SELECT, &mut resp).unwrap_err();
    match &err {
        ReaderError::StaleSequence {
            expected: 2,
            got: 4,
            skipped: 2,
            ..
        } => {}
        other => panic!("unexpected {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("reader answered bSeq 4 to our bSeq 2"),
        "{text}"
    );
    assert!(
        text.contains("80 02 00 00 00 00 04"),
        "frame missing: {text}"
    );
    t.assert_done();
}

#[test]
fn oversized_dwlength_is_a_protocol_error() {
    // 10 + 265 = 275 bytes > dwMaxCCIDMessageLength 271.
    let t = t0_ready()
        .expect_out(&xfr(0, 2, 0, 0, &SELECT))
        .reply(&data_block(0, 2, 0, &[0x55; 265]));
    let t = Arc::new(t);
    let (_reader, slot) = ready_slot(&t, fast_options());
    let mut resp = [0u8; 300];
    let err = slot.transmit(&SELECT, &mut resp).unwrap_err();
    assert!(
        matches!(
            err,
            ReaderError::Protocol(CcidError::TooLong {
                length: 275,
                max: 271,
                ..
            })
        ),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::CommunicationError);
    t.assert_done();
}

#[test]
fn dwlength_larger_than_received_is_a_protocol_error() {
    let mut frame = data_block(0, 2, 0, &[0x90, 0x00]);
    frame[1] = 5; // announces 5 bytes, carries 2
    let t = t0_ready()
        .expect_out(&xfr(0, 2, 0, 0, &SELECT))
        .reply(&frame);
    let t = Arc::new(t);
    let (_reader, slot) = ready_slot(&t, fast_options());
    let mut resp = [0u8; 10];
    let err = slot.transmit(&SELECT, &mut resp).unwrap_err();
    assert!(
        matches!(
            err,
            ReaderError::Protocol(CcidError::Truncated {
                declared: 5,
                received: 2,
                ..
            })
        ),
        "{err}"
    );
    t.assert_done();
}

#[test]
fn bslot_out_of_range_is_a_protocol_error() {
    let t = t0_ready()
        .expect_out(&xfr(0, 2, 0, 0, &SELECT))
        .reply(&data_block(3, 2, 0, &[0x90, 0x00]));
    let t = Arc::new(t);
    let (_reader, slot) = ready_slot(&t, fast_options());
    let mut resp = [0u8; 10];
    let err = slot.transmit(&SELECT, &mut resp).unwrap_err();
    assert!(
        matches!(
            err,
            ReaderError::Protocol(CcidError::BadSlot {
                slot: 3,
                max_slot_index: 0,
                ..
            })
        ),
        "{err}"
    );
    t.assert_done();
}

#[test]
fn wrong_message_type_is_a_protocol_error() {
    let t = t0_ready()
        .expect_out(&xfr(0, 2, 0, 0, &SELECT))
        .reply(&slot_status(0, 2, 0, 0));
    let t = Arc::new(t);
    let (_reader, slot) = ready_slot(&t, fast_options());
    let mut resp = [0u8; 10];
    let err = slot.transmit(&SELECT, &mut resp).unwrap_err();
    assert!(
        matches!(
            err,
            ReaderError::Protocol(CcidError::UnexpectedMessageType { .. })
        ),
        "{err}"
    );
    t.assert_done();
}

#[test]
fn unplug_fails_this_and_every_later_call() {
    let t = t0_ready()
        .expect_out(&xfr(0, 2, 0, 0, &SELECT))
        .fail_in(Fault::Gone);
    let t = Arc::new(t);
    let (reader, slot) = ready_slot(&t, fast_options());
    let mut resp = [0u8; 10];
    let err = slot.transmit(&SELECT, &mut resp).unwrap_err();
    assert!(matches!(err, ReaderError::DeviceGone), "{err}");
    assert_eq!(err.kind(), ErrorKind::DeviceGone);
    assert!(reader.is_gone());
    let started = Instant::now();
    assert!(matches!(
        slot.transmit(&SELECT, &mut resp),
        Err(ReaderError::DeviceGone)
    ));
    assert!(matches!(slot.power_on(), Err(ReaderError::DeviceGone)));
    assert!(matches!(slot.status(), Err(ReaderError::DeviceGone)));
    assert!(started.elapsed() < Duration::from_millis(100));
    t.assert_done();
}

#[test]
fn unplug_ends_a_pending_call() {
    let t = t0_ready()
        .expect_out(&xfr(0, 2, 0, 0, &SELECT))
        .fail_in(Fault::Hang);
    let t = Arc::new(t);
    let options = ReaderOptions {
        margin: Duration::from_secs(20),
        ..fast_options()
    };
    let (_reader, slot) = ready_slot(&t, options);
    let unplugger = {
        let t = t.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            t.unplug();
        })
    };
    let started = Instant::now();
    let mut resp = [0u8; 10];
    let err = slot.transmit(&SELECT, &mut resp).unwrap_err();
    unplugger.join().unwrap();
    assert!(matches!(err, ReaderError::DeviceGone), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn cancel_aborts_and_leaves_the_slot_usable() {
    let t = t0_ready()
        .expect_out(&xfr(0, 2, 0, 0, &SELECT))
        .fail_in(Fault::Hang)
        // CCID §5.3.1: ABORT (wValue = bSeq 3 << 8 | bSlot 0), then
        // PC_to_RDR_Abort with the same bSeq.
        .expect_control_out(0x01, Some(0x0300), &[])
        .expect_out(&cmd(0x72, 0, 3, [0, 0, 0], &[]))
        // The aborted XfrBlock's answer (CMD_ABORTED), then the Abort's.
        .reply(&rsp(0x80, 0, 2, 0x40, 0xFF, 0, &[]))
        .reply(&slot_status(0, 3, 0x00, 0x00))
        // The next APDU works.
        .expect_out(&xfr(0, 4, 0, 0, &SELECT))
        .reply(&data_block(0, 4, 0, &[0x90, 0x00]));
    let t = Arc::new(t);
    let options = ReaderOptions {
        margin: Duration::from_secs(20),
        ..fast_options()
    };
    let (_reader, slot) = ready_slot(&t, options);
    let canceller = {
        let slot = slot.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            slot.cancel();
        })
    };
    let started = Instant::now();
    let mut resp = [0u8; 10];
    let err = slot.transmit(&SELECT, &mut resp).unwrap_err();
    canceller.join().unwrap();
    assert!(matches!(err, ReaderError::Cancelled), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(slot.transmit(&SELECT, &mut resp).unwrap(), 2);
    assert_eq!(&resp[..2], &[0x90, 0x00]);
    t.assert_done();
}

#[test]
fn timeout_aborts_and_leaves_the_slot_usable() {
    let t = t0_ready()
        .expect_out(&xfr(0, 2, 0, 0, &SELECT))
        .fail_in(Fault::Hang)
        .expect_control_out(0x01, Some(0x0300), &[])
        .expect_out(&cmd(0x72, 0, 3, [0, 0, 0], &[]))
        .reply(&slot_status(0, 3, 0x00, 0x00))
        .expect_out(&xfr(0, 4, 0, 0, &SELECT))
        .reply(&data_block(0, 4, 0, &[0x90, 0x00]));
    let t = Arc::new(t);
    let (_reader, slot) = ready_slot(&t, fast_options());
    let mut resp = [0u8; 10];
    let started = Instant::now();
    let err = slot.transmit(&SELECT, &mut resp).unwrap_err();
    // margin 300 ms + WWT (960 × 10 × 372 / 4 MHz = 893 ms).
    let waited = started.elapsed();
    assert!(matches!(err, ReaderError::Timeout { .. }), "{err}");
    assert!(waited >= Duration::from_millis(1150), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(slot.transmit(&SELECT, &mut resp).unwrap(), 2);
    t.assert_done();
}

#[test]
fn slot_busy_is_retried() {
    let t = t0_ready()
        .expect_out(&xfr(0, 2, 0, 0, &SELECT))
        // bStatus 0x40 (failed, card active), bError 0xE0 CMD_SLOT_BUSY.
        .reply(&rsp(0x80, 0, 2, 0x40, 0xE0, 0, &[]))
        .expect_out(&xfr(0, 3, 0, 0, &SELECT))
        .reply(&data_block(0, 3, 0, &[0x90, 0x00]));
    let t = Arc::new(t);
    let (_reader, slot) = ready_slot(&t, fast_options());
    let mut resp = [0u8; 10];
    assert_eq!(slot.transmit(&SELECT, &mut resp).unwrap(), 2);
    t.assert_done();
}

#[test]
fn bad_slot_index_is_a_typed_error() {
    let t = Arc::new(ScriptedTransport::new(Some(&Desc::new(TPDU).bytes())));
    let reader = open(&t);
    assert_eq!(reader.slot_count(), 1);
    assert!(matches!(
        reader.slot(1),
        Err(ReaderError::NoSuchSlot { index: 1, count: 1 })
    ));
}

#[test]
fn two_slots_answered_out_of_order() {
    let mut desc = Desc::new(SHORT_APDU);
    desc.max_slot_index = 1;
    desc.max_busy_slots = 2;
    let mut t = ScriptedTransport::new(Some(&desc.bytes()));
    for s in 0..2u8 {
        t = t
            .expect_out_any_seq(&power_on(s, 0, 1))
            .reply_echo(&data_block(s, 0, 0, &ATR_T1))
            .expect_out_any_seq(&set_parameters(s, 0, 1, &T1_PARAMS))
            .reply_echo(&parameters(s, 0, 1, &T1_PARAMS));
    }
    let apdu0 = [0x00, 0xB0, 0x00, 0x00, 0x01];
    let apdu1 = [0x00, 0xB0, 0x00, 0x01, 0x01];
    // Both commands, in whichever order the threads send them; then the
    // answer for slot 1 first, slot 0 second.
    let t = Arc::new(
        t.expect_out_any_seq(&xfr(0, 0, 0, 0, &apdu0))
            .expect_out_any_seq(&xfr(1, 0, 0, 0, &apdu1))
            .reply_echo(&data_block(1, 0, 0, &[0x11, 0x90, 0x00]))
            .reply_echo(&data_block(0, 0, 0, &[0x00, 0x90, 0x00])),
    );
    let reader = open(&t);
    let slots: Vec<_> = (0..2).map(|i| reader.slot(i).unwrap()).collect();
    for s in &slots {
        s.power_on().unwrap();
        s.set_protocol(ProtocolPreference::Any).unwrap();
    }
    let handles: Vec<_> = slots
        .into_iter()
        .zip([apdu0, apdu1])
        .map(|(slot, apdu)| {
            thread::spawn(move || {
                let mut resp = [0u8; 10];
                let n = slot.transmit(&apdu, &mut resp).unwrap();
                resp[..n].to_vec()
            })
        })
        .collect();
    let answers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(answers[0], vec![0x00, 0x90, 0x00]);
    assert_eq!(answers[1], vec![0x11, 0x90, 0x00]);
    t.assert_done();
}
