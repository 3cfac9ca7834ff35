//! Interrupt endpoint events, GetSlotStatus polling, wait_for_change and
//! its cancellation, unplug seen by the event thread; ICCD-A and ICCD-B
//! tokens over the control pipe.

#[path = "reader_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ferroccid::ccid::descriptor::InterfaceKind;
use ferroccid::testing::{Fault, ScriptedTransport};
use ferroccid::{ProtocolPreference, Reader, ReaderError, ReaderEvent, ReaderOptions};
use support::*;

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn notify_slot_change_and_hardware_error() {
    let mut desc = Desc::new(TPDU);
    desc.max_slot_index = 1;
    // bmSlotICCState: slot 0 present + changed (bits 0,1), slot 1 absent
    // + changed (bit 3) = 0x0B; then HardwareError slot 1, seq 7, overcurrent.
    let t = Arc::new(
        ScriptedTransport::new(Some(&desc.bytes()))
            .interrupt(&[0x50, 0x0B])
            .interrupt(&[0x51, 0x01, 0x07, 0x01]),
    );
    let reader = open(&t);
    let events = reader.events();
    assert_eq!(
        events.recv_timeout(WAIT).unwrap(),
        ReaderEvent::SlotChanged {
            slot: 0,
            present: true
        }
    );
    assert_eq!(
        events.recv_timeout(WAIT).unwrap(),
        ReaderEvent::SlotChanged {
            slot: 1,
            present: false
        }
    );
    assert_eq!(
        events.recv_timeout(WAIT).unwrap(),
        ReaderEvent::HardwareError {
            slot: 1,
            seq: 7,
            code: 1
        }
    );
    drop(reader); // joins the thread
    t.assert_done();
}

#[test]
fn wait_for_change_returns_events_and_can_be_cancelled() {
    let t =
        Arc::new(ScriptedTransport::new(Some(&Desc::new(TPDU).bytes())).interrupt(&[0x50, 0x03]));
    let reader = Arc::new(open(&t));
    assert_eq!(
        reader.wait_for_change(WAIT).unwrap(),
        Some(ReaderEvent::SlotChanged {
            slot: 0,
            present: true
        })
    );
    assert_eq!(
        reader.wait_for_change(Duration::from_millis(50)).unwrap(),
        None
    );
    let canceller = {
        let reader = reader.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            reader.cancel_wait();
        })
    };
    let err = reader.wait_for_change(Duration::from_secs(30)).unwrap_err();
    canceller.join().unwrap();
    assert!(matches!(err, ReaderError::Cancelled), "{err}");
}

#[test]
fn unplug_on_the_interrupt_pipe_is_an_event() {
    let t = Arc::new(
        ScriptedTransport::new(Some(&Desc::new(TPDU).bytes())).interrupt_fault(Fault::Gone),
    );
    let reader = open(&t);
    let events = reader.events();
    assert_eq!(events.recv_timeout(WAIT).unwrap(), ReaderEvent::DeviceGone);
    assert!(reader.is_gone());
    assert!(matches!(
        reader.slot(0).unwrap().status(),
        Err(ReaderError::DeviceGone)
    ));
}

#[test]
fn readers_without_interrupt_endpoint_are_polled() {
    let t = Arc::new(
        ScriptedTransport::new(Some(&Desc::new(TPDU).bytes()))
            .without_interrupt_endpoint()
            .expect_out(&cmd(0x65, 0, 0, [0, 0, 0], &[]))
            .reply(&slot_status(0, 0, 0x01, 0))
            .expect_out(&cmd(0x65, 0, 1, [0, 0, 0], &[]))
            .reply(&slot_status(0, 1, 0x42, 0xFE)),
    );
    let options = ReaderOptions {
        poll_interval: Duration::from_millis(400),
        ..fast_options()
    };
    let reader = Reader::open_with(t.clone(), options).unwrap();
    let events = reader.events();
    assert_eq!(
        events.recv_timeout(WAIT).unwrap(),
        ReaderEvent::SlotChanged {
            slot: 0,
            present: true
        }
    );
    assert_eq!(
        events.recv_timeout(WAIT).unwrap(),
        ReaderEvent::SlotChanged {
            slot: 0,
            present: false
        }
    );
    drop(reader); // before the third poll, 400 ms later
    t.assert_done();
}

fn iccd(kind: InterfaceKind, t: ScriptedTransport) -> (Arc<ScriptedTransport>, Reader) {
    let t = Arc::new(t);
    let options = ReaderOptions {
        interface_kind: Some(kind),
        ..fast_options()
    };
    let reader = Reader::open_with(t.clone(), options).unwrap();
    (t, reader)
}

#[test]
fn iccd_b_power_on_polling_and_chained_response() {
    let apdu = [0x00, 0xB0, 0x00, 0x00, 0x00];
    let mut atr_block = vec![0x00];
    atr_block.extend(ATR_T1);
    let t = ScriptedTransport::new(Some(&Desc::new(SHORT_APDU).bytes()))
        // Power on: ICC_POWER_OFF, SLOT_STATUS, ICC_POWER_ON (wValue 1),
        // DATA_BLOCK polled (bResponseType 0x80, 10 ms) then the ATR.
        .expect_control_out(0x63, Some(0), &[])
        .expect_control_in(0x81, Some(0), &[0x00, 0x01, 0x00])
        .expect_control_out(0x62, Some(1), &[])
        .expect_control_in(0x6F, Some(0), &[0x80, 0x01, 0x00])
        .expect_control_in(0x6F, Some(0), &atr_block)
        // XFR_BLOCK, then a chained answer: 0x01 begins, ask for more with
        // wValue 0x10 << 8, 0x02 ends.
        .expect_control_out(0x65, Some(0), &apdu)
        .expect_control_in(0x6F, Some(0), &[0x01, 0xAA, 0xBB])
        .expect_control_out(0x65, Some(0x1000), &[])
        .expect_control_in(0x6F, Some(0), &[0x02, 0xCC, 0x90, 0x00])
        .expect_control_in(0x81, Some(0), &[0x00, 0x00, 0x00]);
    let (t, reader) = iccd(InterfaceKind::IccdB, t);
    let slot = reader.slot(0).unwrap();
    assert_eq!(slot.power_on().unwrap().as_bytes(), &ATR_T1);
    assert_eq!(slot.set_protocol(ProtocolPreference::Any).unwrap(), 1);
    let mut resp = [0u8; 10];
    let n = slot.transmit(&apdu, &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0xAA, 0xBB, 0xCC, 0x90, 0x00]);
    assert!(slot.status().unwrap().powered);
    t.assert_done();
}

#[test]
fn iccd_b_status_information_is_an_error() {
    let t = ScriptedTransport::new(Some(&Desc::new(SHORT_APDU).bytes()))
        .expect_control_out(0x63, Some(0), &[])
        .expect_control_in(0x81, Some(0), &[0x00, 0x01, 0x00])
        .expect_control_out(0x62, Some(1), &[])
        .expect_control_in(0x6F, Some(0), &[0x40, 0x00, 0xFE]);
    let (t, reader) = iccd(InterfaceKind::IccdB, t);
    let err = reader.slot(0).unwrap().power_on().unwrap_err();
    assert!(
        matches!(
            err,
            ReaderError::Iccd {
                response_type: 0x40,
                error: 0xFE
            }
        ),
        "{err}"
    );
    t.assert_done();
}

#[test]
fn iccd_a_power_on_busy_then_exchange() {
    let apdu = [0x00, 0xA4, 0x04, 0x00, 0x00];
    let t = ScriptedTransport::new(Some(&Desc::new(CHARACTER).bytes()))
        // ICC_POWER_OFF, GET_ICC_STATUS busy (0x40) then ready, ICC_POWER_ON IN.
        .expect_control_out(0x63, Some(0), &[])
        .expect_control_in(0xA0, Some(0), &[0x40])
        .expect_control_in(0xA0, Some(0), &[0x00])
        .expect_control_in(0x62, Some(0), &ATR_T0)
        .expect_control_out(0x65, Some(0), &apdu)
        .expect_control_in(0xA0, Some(0), &[0x00])
        .expect_control_in(0x6F, Some(0), &[0x90, 0x00]);
    let (t, reader) = iccd(InterfaceKind::IccdA, t);
    let slot = reader.slot(0).unwrap();
    assert_eq!(slot.power_on().unwrap().as_bytes(), &ATR_T0);
    let mut resp = [0u8; 10];
    let n = slot.transmit(&apdu, &mut resp).unwrap();
    assert_eq!(&resp[..n], &[0x90, 0x00]);
    t.assert_done();
}
