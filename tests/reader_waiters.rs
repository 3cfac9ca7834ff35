//! Per-slot insertion counters and per-slot `wait_for_change` (one waiter
//! per slot, as pcscd's polling threads), with cancels that are not lost:
//! hand-built NotifySlotChange / SlotStatus frames (CCID §6.3.1 bmSlotICCState:
//! two bits per slot, bit 0 card present, bit 1 changed; §6.2.6 bmICCStatus)
//! on the scripted transport, then the simulated readers with and without
//! an interrupt endpoint.

#[path = "reader_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ferroccid::descriptors::{CcidEndpoints, EndpointInfo};
use ferroccid::testing::ScriptedTransport;
use ferroccid::{Reader, ReaderError, SlotWait};
use ferroccid::{Tap, TapHooks, Transport, TransportError, TransportInfo};
use ferroccid_sim::profile::Profile;
use ferroccid_sim::SimTransport;
use support::*;

const LONG: Duration = Duration::from_secs(5);
const SHORT: Duration = Duration::from_millis(100);

/// Polls `f` until it holds or 5 s pass.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + LONG;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    f()
}

#[test]
fn notify_slot_change_counts_every_insertion_edge() {
    // 01: present (the first report: baseline, not an insertion);
    // 03: present + changed: removed and reinserted between two
    // notifications → 1; 02: absent + changed; 03 → 2; 01 → still 2.
    let t = Arc::new(
        ScriptedTransport::new(Some(&Desc::new(TPDU).bytes()))
            .interrupt(&[0x50, 0x01])
            .interrupt(&[0x50, 0x03])
            .interrupt(&[0x50, 0x02])
            .interrupt(&[0x50, 0x03])
            .interrupt(&[0x50, 0x01]),
    );
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    // The first call starts the event thread.
    slot.insertions();
    assert!(
        eventually(|| slot.insertions() == 2),
        "{}",
        slot.insertions()
    );
    thread::sleep(SHORT);
    assert_eq!(slot.insertions(), 2);
    // The changes are waiting for the slot's waiter: one Changed, then quiet.
    assert_eq!(slot.wait_for_change(LONG).unwrap(), SlotWait::Changed);
    assert_eq!(slot.wait_for_change(SHORT).unwrap(), SlotWait::Timeout);
    t.assert_done();
}

#[test]
fn a_cancel_before_the_wait_is_not_lost() {
    let t = Arc::new(ScriptedTransport::new(Some(&Desc::new(TPDU).bytes())));
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.cancel_wait();
    let started = Instant::now();
    assert_eq!(slot.wait_for_change(LONG).unwrap(), SlotWait::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(1));
    // Consumed: the next wait runs to its timeout.
    let started = Instant::now();
    assert_eq!(slot.wait_for_change(SHORT).unwrap(), SlotWait::Timeout);
    assert!(started.elapsed() >= SHORT);
    // The reader-wide cancel reaches a wait already running.
    let waiter = {
        let slot = slot.clone();
        thread::spawn(move || slot.wait_for_change(LONG))
    };
    thread::sleep(SHORT);
    let started = Instant::now();
    reader.cancel_wait();
    assert_eq!(waiter.join().unwrap().unwrap(), SlotWait::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn polled_reader_counts_insertions_from_slot_status() {
    // No interrupt endpoint: GetSlotStatus answers are the events.
    // bStatus 01 present, 02 absent, 01 present again → 1 insertion.
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU).bytes()))
        .without_interrupt_endpoint()
        .with_info(|i: &mut TransportInfo| {
            i.endpoints = Some(CcidEndpoints {
                bulk_out: EndpointInfo {
                    address: 0x01,
                    max_packet_size: 64,
                },
                bulk_in: EndpointInfo {
                    address: 0x82,
                    max_packet_size: 64,
                },
                interrupt_in: None,
            })
        });
    let t = Arc::new(
        t.expect_out(&cmd(0x65, 0, 0, [0; 3], &[]))
            .reply(&slot_status(0, 0, 0x01, 0))
            .expect_out(&cmd(0x65, 0, 1, [0; 3], &[]))
            .reply(&slot_status(0, 1, 0x42, 0xFE))
            .expect_out(&cmd(0x65, 0, 2, [0; 3], &[]))
            .reply(&slot_status(0, 2, 0x01, 0)),
    );
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    assert!(slot.status().unwrap().present);
    assert_eq!(slot.insertions(), 0);
    assert!(!slot.status().unwrap().present);
    assert_eq!(slot.insertions(), 0);
    assert!(slot.status().unwrap().present);
    assert_eq!(slot.insertions(), 1);
    t.assert_done();
}

/// A sim reader with `name`'s profile, opened with default options.
fn sim(name: &str) -> (Reader, ferroccid_sim::SimHandle) {
    let (t, h) = SimTransport::open(Profile::from_name(name).unwrap());
    (Reader::open(Arc::new(t)).unwrap(), h)
}

#[test]
fn one_waiter_per_slot_on_the_simulated_four_slot_reader() {
    let (reader, handle) = sim("4-slot");
    let slots: Vec<_> = (0..reader.slot_count())
        .map(|i| reader.slot(i).unwrap())
        .collect();
    assert_eq!(slots.len(), 4);
    // The reader's first NotifySlotChange (cards present, changed) is news
    // for each slot with a card; drain it.
    for s in &slots {
        s.wait_for_change(SHORT * 5).unwrap();
    }
    let insertions_before: Vec<u64> = slots.iter().map(|s| s.insertions()).collect();
    let waiters: Vec<_> = slots
        .iter()
        .cloned()
        .map(|s| {
            thread::spawn(move || {
                let started = Instant::now();
                (s.wait_for_change(LONG), started.elapsed())
            })
        })
        .collect();
    thread::sleep(SHORT);
    handle.remove_card(2);
    thread::sleep(SHORT * 3);
    reader.cancel_wait();
    let results: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    for (i, (outcome, took)) in results.iter().enumerate() {
        let want = if i == 2 {
            SlotWait::Changed
        } else {
            SlotWait::Cancelled
        };
        assert_eq!(outcome.as_ref().unwrap(), &want, "slot {i}");
        assert!(*took < Duration::from_secs(2), "slot {i} took {took:?}");
    }
    // A reinsertion counts once, in that slot only.
    handle.insert_card(2);
    assert!(eventually(
        || slots[2].insertions() == insertions_before[2] + 1
    ));
    for i in [0, 1, 3] {
        assert_eq!(slots[i].insertions(), insertions_before[i], "slot {i}");
    }
}

#[test]
fn remove_and_reinsert_between_two_looks_is_counted() {
    let (reader, handle) = sim("tpdu");
    let slot = reader.slot(0).unwrap();
    let before = slot.insertions();
    // Out and in again before anybody asks for the slot's status.
    handle.remove_card(0);
    handle.insert_card(0);
    assert!(eventually(|| slot.insertions() == before + 1));
    thread::sleep(SHORT * 3);
    assert_eq!(slot.insertions(), before + 1);
    assert!(slot.status().unwrap().present);
}

#[test]
fn unplug_ends_the_waits() {
    let (reader, handle) = sim("tpdu");
    let slot = reader.slot(0).unwrap();
    slot.wait_for_change(SHORT).unwrap();
    let waiter = {
        let slot = slot.clone();
        thread::spawn(move || slot.wait_for_change(LONG))
    };
    thread::sleep(SHORT);
    handle.unplug();
    let result = waiter.join().unwrap();
    assert!(matches!(result, Err(ReaderError::DeviceGone)), "{result:?}");
}

/// [`Tap`] hooks for a reader that must be polled: no interrupt endpoint.
struct NoInterrupt;

impl TapHooks for NoInterrupt {
    fn before_interrupt_in(&self, _timeout: Duration) -> Result<Duration, TransportError> {
        Err(TransportError::NoInterruptEndpoint)
    }
}

/// The simulator without its interrupt endpoint.
fn no_interrupt(inner: SimTransport) -> Tap<NoInterrupt> {
    let mut info = inner.info().clone();
    if let Some(e) = info.endpoints.as_mut() {
        e.interrupt_in = None;
    }
    Tap::new(Arc::new(inner), NoInterrupt).with_info(info)
}

#[test]
fn polled_simulated_reader_wakes_its_waiter() {
    let (t, handle) = SimTransport::open(Profile::from_name("tpdu").unwrap());
    let options = ferroccid::ReaderOptions {
        poll_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let reader = Reader::open_with(Arc::new(no_interrupt(t)), options).unwrap();
    let slot = reader.slot(0).unwrap();
    assert!(slot.status().unwrap().present);
    // The first look is news to the slot's waiter (nothing was known); drain it.
    assert_eq!(slot.wait_for_change(LONG).unwrap(), SlotWait::Changed);
    assert_eq!(slot.wait_for_change(SHORT).unwrap(), SlotWait::Timeout);
    let waiter = {
        let slot = slot.clone();
        thread::spawn(move || slot.wait_for_change(LONG))
    };
    thread::sleep(SHORT);
    handle.remove_card(0);
    assert_eq!(waiter.join().unwrap().unwrap(), SlotWait::Changed);
    assert!(!slot.status().unwrap().present);
    assert_eq!(slot.insertions(), 0);
    handle.insert_card(0);
    assert_eq!(slot.wait_for_change(LONG).unwrap(), SlotWait::Changed);
    assert_eq!(slot.insertions(), 1);
}
