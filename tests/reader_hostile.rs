//! A reader or card that misbehaves for ever must still get an answer in
//! bounded time and a bounded number of transport calls, and never one
//! meant for another command (issue "one budget per command, nothing
//! crossed", items 1, 2, 4, 5, 6, 8 and 9). Each test drives a
//! programmable device that answers every command the same hostile way.

#[path = "reader_support/mod.rs"]
mod support;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ferroccid::ccid::descriptor::InterfaceKind;
use ferroccid::{ProtocolPreference, Reader, ReaderError, ReaderEvent, ReaderOptions};
use ferroccid::{Transport, TransportError, TransportInfo};
use support::*;

/// What the device answers to one bulk-OUT command: frames to queue for
/// bulk-IN, and a pause before each is handed out.
type Responder = dyn Fn(&Command) -> Vec<Vec<u8>> + Send + Sync;
/// Answers to class requests (ICCD): request, wValue → data or failure.
type ControlResponder = dyn Fn(u8, u16) -> Result<Vec<u8>, TransportError> + Send + Sync;

/// A bulk-OUT command as the device saw it.
struct Command {
    ty: u8,
    slot: u8,
    seq: u8,
    level: u16,
    data: Vec<u8>,
}

/// A device whose answers a closure computes, counting every transport
/// call. A bulk-IN with nothing queued waits out its timeout (a silent
/// reader) unless cancelled.
struct Hostile {
    info: TransportInfo,
    respond: Box<Responder>,
    control: Box<ControlResponder>,
    interrupt: Mutex<VecDeque<Vec<u8>>>,
    queue: Mutex<VecDeque<Vec<u8>>>,
    pause: Duration,
    calls: AtomicUsize,
    cancelled: std::sync::atomic::AtomicBool,
}

impl Hostile {
    fn new(
        descriptor: Vec<u8>,
        respond: impl Fn(&Command) -> Vec<Vec<u8>> + Send + Sync + 'static,
    ) -> Hostile {
        Hostile {
            info: TransportInfo {
                name: "hostile".into(),
                class_descriptor: Some(descriptor),
                ..TransportInfo::default()
            },
            respond: Box::new(respond),
            control: Box::new(|_, _| Err(TransportError::Stall)),
            interrupt: Mutex::new(VecDeque::new()),
            queue: Mutex::new(VecDeque::new()),
            pause: Duration::ZERO,
            calls: AtomicUsize::new(0),
            cancelled: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl Transport for Hostile {
    fn info(&self) -> &TransportInfo {
        &self.info
    }
    fn bulk_out(&self, frame: &[u8], _: Duration) -> Result<(), TransportError> {
        self.count();
        let command = Command {
            ty: frame[0],
            slot: frame[5],
            seq: frame[6],
            level: u16::from_le_bytes([frame[8], frame[9]]),
            data: frame[10..].to_vec(),
        };
        let frames = (self.respond)(&command);
        self.queue.lock().unwrap().extend(frames);
        Ok(())
    }
    fn bulk_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        self.count();
        let frame = self.queue.lock().unwrap().pop_front();
        match frame {
            Some(frame) => {
                thread::sleep(self.pause);
                let n = frame.len().min(buf.len());
                buf[..n].copy_from_slice(&frame[..n]);
                Ok(n)
            }
            None => {
                let until = Instant::now() + timeout;
                while Instant::now() < until {
                    if self.cancelled.swap(false, Ordering::SeqCst) {
                        return Err(TransportError::Cancelled);
                    }
                    thread::sleep(Duration::from_millis(2));
                }
                Err(TransportError::Timeout)
            }
        }
    }
    fn interrupt_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let frame = self.interrupt.lock().unwrap().pop_front();
        match frame {
            Some(frame) => {
                let n = frame.len().min(buf.len());
                buf[..n].copy_from_slice(&frame[..n]);
                Ok(n)
            }
            None => {
                thread::sleep(timeout.min(Duration::from_millis(20)));
                Err(TransportError::Timeout)
            }
        }
    }
    fn control_in(
        &self,
        request: u8,
        value: u16,
        buf: &mut [u8],
        _: Duration,
    ) -> Result<usize, TransportError> {
        self.count();
        let data = (self.control)(request, value)?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }
    fn control_out(
        &self,
        request: u8,
        value: u16,
        _: &[u8],
        _: Duration,
    ) -> Result<(), TransportError> {
        self.count();
        (self.control)(request, value).map(|_| ())
    }
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }
    fn reset_cancel(&self) {
        self.cancelled.store(false, Ordering::SeqCst);
    }
}

/// The usual answer of an honest reader to everything but XfrBlock: ATR
/// `atr` for a power on, the parameters echoed, a SlotStatus otherwise.
fn honest(c: &Command, atr: &[u8]) -> Vec<u8> {
    match c.ty {
        0x62 => data_block(c.slot, c.seq, 0, atr),
        0x61 => parameters(c.slot, c.seq, 1, &c.data),
        _ => slot_status(c.slot, c.seq, 0x00, 0x00),
    }
}

fn options(ceiling: Duration) -> ReaderOptions {
    ReaderOptions {
        max_command_time: ceiling,
        ..fast_options()
    }
}

const SELECT: [u8; 7] = [0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00];

/// Item 1: an extended-APDU reader answers every "continue" with an empty
/// DataBlock saying more follows (bChainParameter 0x01, then 0x03): the
/// exchange loop used to run for ever.
#[test]
fn extended_apdu_reader_announcing_more_for_ever_is_cut_off() {
    for chain in [0x01, 0x03] {
        let t = Arc::new(Hostile::new(Desc::new(EXTENDED_APDU).bytes(), move |c| {
            vec![match c.ty {
                0x6F => data_block(c.slot, c.seq, chain, &[]),
                _ => honest(c, &ATR_T1),
            }]
        }));
        let reader = Reader::open_with(t.clone(), options(Duration::from_secs(5))).unwrap();
        let slot = reader.slot(0).unwrap();
        slot.power_on().unwrap();
        let before = t.calls();
        let started = Instant::now();
        let mut resp = [0u8; 300];
        let err = slot.transmit(&SELECT, &mut resp).unwrap_err();
        assert!(
            matches!(err, ReaderError::Protocol(_)),
            "chain {chain:#04x}: {err}"
        );
        assert!(
            t.calls() - before < 100,
            "{} transport calls",
            t.calls() - before
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}

/// Item 4/5: a reader that asks for a time extension (multiplier 255)
/// every 50 ms for ever is stopped by the command's budget, not after 600
/// extensions of 255 card waits each.
#[test]
fn time_extensions_for_ever_end_at_the_budget() {
    let mut device = Hostile::new(Desc::new(SHORT_APDU).bytes(), |c| match c.ty {
        // bmCommandStatus 2 (time extension), bError = multiplier 255.
        0x6F => (0..1000)
            .map(|_| rsp(0x80, c.slot, c.seq, 0x80, 0xFF, 0, &[]))
            .collect(),
        _ => vec![honest(c, &ATR_T1)],
    });
    device.pause = Duration::from_millis(50);
    let t = Arc::new(device);
    let ceiling = Duration::from_secs(2);
    let reader = Reader::open_with(t.clone(), options(ceiling)).unwrap();
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    let started = Instant::now();
    let mut resp = [0u8; 300];
    let err = slot.transmit(&SELECT, &mut resp).unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ReaderError::Timeout { .. }), "{err}");
    // The budget, plus the abort procedure (ABORT request and drain, one
    // margin each: 300 ms in fast_options).
    assert!(took >= ceiling, "{took:?}");
    assert!(took < ceiling + Duration::from_millis(1200), "{took:?}");
}

/// Item 5: a power on answered with the wrong bSeq, then silence, is
/// reported within the power on's normal wait (the ATR's longest duration
/// at the default clock plus the margin: about 3.1 s here), not after the
/// old 33-character worst case (about 30 s).
#[test]
fn power_on_answered_with_a_wrong_seq_then_silence_fails_in_the_normal_wait() {
    let t = Arc::new(Hostile::new(Desc::new(SHORT_APDU).bytes(), |c| {
        match c.ty {
            0x62 => vec![data_block(c.slot, c.seq.wrapping_add(7), 0, &ATR_T1)],
            _ => vec![honest(c, &ATR_T1)],
        }
    }));
    let reader = Reader::open_with(t.clone(), fast_options()).unwrap();
    let slot = reader.slot(0).unwrap();
    let started = Instant::now();
    let err = slot.power_on().unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ReaderError::StaleSequence { .. }), "{err}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// Item 4: a device announcing a 1 kHz clock no longer stretches the
/// power-on wait 1000-fold: it is computed at 1 MHz (ISO/IEC 7816-3's
/// lowest), and the budget caps it anyway.
#[test]
fn a_one_kilohertz_clock_does_not_stretch_the_power_on_wait() {
    let mut desc = Desc::new(SHORT_APDU);
    desc.default_clock_khz = 1;
    let t = Arc::new(Hostile::new(desc.bytes(), |c| match c.ty {
        0x62 => vec![],
        _ => vec![honest(c, &ATR_T1)],
    }));
    let ceiling = Duration::from_secs(2);
    let reader = Reader::open_with(t.clone(), options(ceiling)).unwrap();
    let slot = reader.slot(0).unwrap();
    let started = Instant::now();
    let err = slot.power_on().unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ReaderError::Timeout { .. }), "{err}");
    assert!(took < ceiling + Duration::from_millis(1200), "{took:?}");
}

/// Item 6: a late DataBlock for slot 1, read by slot 0's leader while slot
/// 1 has no command outstanding, used to wait in slot 1's mailbox and be
/// handed to slot 1's next command when its bSeq came round again.
#[test]
fn a_late_frame_for_an_idle_slot_is_never_the_answer_to_its_next_command() {
    let mut desc = Desc::new(SHORT_APDU);
    desc.max_slot_index = 1;
    desc.max_busy_slots = 2;
    let t = Arc::new(Hostile::new(desc.bytes(), |c| match (c.ty, c.slot) {
        // Slot 0's APDU: first a frame for slot 1 carrying the bSeq slot
        // 1's next command will get, then slot 0's own answer.
        (0x6F, 0) => vec![
            data_block(1, c.seq.wrapping_add(1), 0, &[0xDE, 0xAD, 0x90, 0x00]),
            data_block(0, c.seq, 0, &[0x90, 0x00]),
        ],
        (0x6F, _) => vec![data_block(c.slot, c.seq, 0, &[0x90, 0x00])],
        _ => vec![honest(c, &ATR_T1)],
    }));
    let reader = Reader::open_with(t.clone(), fast_options()).unwrap();
    let slot0 = reader.slot(0).unwrap();
    let slot1 = reader.slot(1).unwrap();
    slot0.power_on().unwrap();
    slot1.power_on().unwrap();
    let mut resp = [0u8; 16];
    for _ in 0..300 {
        let n = slot0.transmit(&SELECT, &mut resp).unwrap();
        assert_eq!(&resp[..n], &[0x90, 0x00]);
        let n = slot1.transmit(&SELECT, &mut resp).unwrap();
        assert_eq!(
            &resp[..n],
            &[0x90, 0x00],
            "slot 1 got another command's answer"
        );
    }
}

/// Item 8: character level, T=0, automatic GET RESPONSE: a case-1 APDU
/// whose INS is C0, answered 61 10, and the card ACKs the GET RESPONSE
/// header: the GET RESPONSE was taken for a write and panicked slicing
/// empty command data.
#[test]
fn character_level_case1_c0_get_response_reads() {
    let card = Arc::new(Mutex::new(VecDeque::from({
        let mut bytes = vec![0x61, 0x10, 0xC0];
        bytes.extend(0..16u8);
        bytes.extend([0x90, 0x00]);
        bytes
    })));
    let stream = card.clone();
    let mut desc = Desc::new(CHARACTER);
    desc.protocols = 0x01;
    let t = Arc::new(Hostile::new(desc.bytes(), move |c| match c.ty {
        0x6F => {
            let mut s = stream.lock().unwrap();
            let n = usize::from(c.level).min(s.len());
            let chars: Vec<u8> = s.drain(..n).collect();
            vec![data_block(c.slot, c.seq, 0, &chars)]
        }
        0x61 => vec![parameters(c.slot, c.seq, 0, &c.data)],
        _ => vec![honest(c, &ATR_T0)],
    }));
    let reader = Reader::open_with(t.clone(), fast_options()).unwrap();
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::T0).unwrap();
    let mut resp = [0u8; 64];
    let n = slot.transmit(&[0x00, 0xC0, 0x00, 0x00], &mut resp).unwrap();
    let mut expected: Vec<u8> = (0..16u8).collect();
    expected.extend([0x90, 0x00]);
    assert_eq!(&resp[..n], &expected[..]);
    assert!(card.lock().unwrap().is_empty());
}

/// Item 9: NotifySlotChange of a reader with bMaxSlotIndex 0xFF is 65
/// bytes; read into 64 it never parsed.
#[test]
fn notify_slot_change_of_256_slots_is_read_whole() {
    let mut desc = Desc::new(SHORT_APDU);
    desc.max_slot_index = 0xFF;
    let device = Hostile::new(desc.bytes(), |c| vec![honest(c, &ATR_T1)]);
    let mut notify = vec![0u8; 65];
    notify[0] = 0x50;
    // Slot 255: present (bit 6) and changed (bit 7) in the last byte.
    notify[64] = 0b1100_0000;
    device.interrupt.lock().unwrap().push_back(notify);
    let reader = Reader::open_with(Arc::new(device), fast_options()).unwrap();
    let events = reader.events();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(ReaderEvent::SlotChanged {
                slot: 255,
                present: true,
            }) => break,
            Ok(_) => continue,
            Err(e) => panic!("no insertion event for slot 255: {e}"),
        }
    }
}

/// Item 2: an ICCD-B token that answers DATA_BLOCK with "more data
/// follows" and no data, for ever.
#[test]
fn iccd_b_more_data_for_ever_is_cut_off() {
    let t = Arc::new(iccd_b_token(vec![0x01]));
    let reader = Reader::open_with(
        t.clone(),
        ReaderOptions {
            interface_kind: Some(InterfaceKind::IccdB),
            ..options(Duration::from_secs(5))
        },
    )
    .unwrap();
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    let before = t.calls();
    let started = Instant::now();
    let mut resp = [0u8; 300];
    let err = slot.transmit(&SELECT, &mut resp).unwrap_err();
    assert!(
        matches!(
            err,
            ReaderError::Iccd {
                response_type: 0x01,
                ..
            }
        ),
        "{err}"
    );
    assert!(t.calls() - before < 100, "{} calls", t.calls() - before);
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// An ICCD-B token whose first DATA_BLOCK is the ATR and every later one
/// `answer`.
fn iccd_b_token(answer: Vec<u8>) -> Hostile {
    let atr_given = AtomicUsize::new(0);
    let mut device = Hostile::new(Desc::new(SHORT_APDU).bytes(), |_| vec![]);
    device.control = Box::new(move |request, _| match request {
        0x6F if atr_given.fetch_add(1, Ordering::SeqCst) == 0 => {
            let mut atr = vec![0x00];
            atr.extend_from_slice(&ATR_T1);
            Ok(atr)
        }
        0x6F => Ok(answer.clone()),
        0x81 => Ok(vec![0x81, 0x00, 0x00]),
        _ => Ok(vec![]),
    });
    device
}

/// Item 2: an ICCD-B token that asks the host to wait 655 s (delay 0xFFFF)
/// on every poll: the wait ends at the budget, and a cancel ends it at
/// once rather than after the sleep.
#[test]
fn iccd_b_busy_for_ever_ends_at_the_budget_and_on_cancel() {
    let device = iccd_b_token(vec![0x80, 0xFF, 0xFF]);
    let t = Arc::new(device);
    let ceiling = Duration::from_secs(2);
    let reader = Reader::open_with(
        t.clone(),
        ReaderOptions {
            interface_kind: Some(InterfaceKind::IccdB),
            ..options(ceiling)
        },
    )
    .unwrap();
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    let mut resp = [0u8; 300];
    let started = Instant::now();
    let err = slot.transmit(&SELECT, &mut resp).unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ReaderError::Timeout { .. }), "{err}");
    assert!(
        took >= ceiling && took < ceiling + Duration::from_millis(500),
        "{took:?}"
    );

    let canceller = slot.clone();
    let cancel = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        canceller.cancel();
    });
    let started = Instant::now();
    let err = slot.transmit(&SELECT, &mut resp).unwrap_err();
    cancel.join().unwrap();
    assert!(matches!(err, ReaderError::Cancelled), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}
