//! `Slot::cancel` is never lost. A cancel that comes while no operation
//! runs ends the next operation on the slot (before anything is sent); one
//! that comes during an operation ends that one; each cancel ends at most
//! one operation. The cancelling and the operating threads are different
//! threads, as in pcscd (stop-polling) or a UI with a cancel button.

#[path = "reader_sim_support.rs"]
mod support;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ferroccid::{ProtocolPreference, ReaderError, Slot};
use ferroccid_sim::card::fs::TEXT_2F00;
use ferroccid_sim::card::CardConfig;
use ferroccid_sim::SimHandle;
use support::*;

/// ISO/IEC 7816-4 "normal processing".
const OK: u16 = 0x9000;

/// READ BINARY of the current EF, Le = the length of EF 2F00.
fn read_binary() -> Vec<u8> {
    short([0x00, 0xB0, 0x00, 0x00], &[], Some(TEXT_2F00.len() as u8))
}

/// A powered dual-protocol card on the TPDU profile, EF 2F00 selected.
fn ready(preference: ProtocolPreference) -> (ferroccid::Reader, SimHandle, Slot) {
    let (reader, handle) = open_with(
        profile_with("tpdu", Some(CardConfig::dual())),
        quick_options(),
    );
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(preference).unwrap();
    let (_, sw) = ok_apdu(&slot, &short([0x00, 0xA4, 0x00, 0x0C], &[0x2F, 0x00], None));
    assert_eq!(sw, OK);
    (reader, handle, slot)
}

fn assert_cancelled<T: std::fmt::Debug>(result: Result<T, ReaderError>, what: &str) {
    match result {
        Err(ReaderError::Cancelled) => {}
        other => panic!("{what}: expected Cancelled, got {other:?}"),
    }
}

#[test]
fn a_cancel_just_before_the_operation_starts_ends_it() {
    for preference in [ProtocolPreference::T0, ProtocolPreference::T1] {
        let (_reader, _handle, slot) = ready(preference);
        let barrier = Arc::new(Barrier::new(2));
        // The UI thread presses "cancel"; the worker starts its APDU right
        // after. Before the fix the worker's start cleared the flag.
        let canceller = {
            let (slot, barrier) = (slot.clone(), barrier.clone());
            std::thread::spawn(move || {
                slot.cancel();
                barrier.wait();
            })
        };
        let worker = {
            let (slot, barrier) = (slot.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                apdu(&slot, &read_binary())
            })
        };
        canceller.join().unwrap();
        assert_cancelled(worker.join().unwrap(), &format!("{preference:?}"));
        // Spent: the next APDU runs, and the card is where it was.
        assert_eq!(
            ok_apdu(&slot, &read_binary()),
            (TEXT_2F00.to_vec(), OK),
            "{preference:?}"
        );
    }
}

#[test]
fn each_cancel_ends_at_most_one_operation() {
    let (_reader, _handle, slot) = ready(ProtocolPreference::T1);
    // Two cancels with nothing running: the next operation ends, the one
    // after it does not (cancels do not queue up).
    slot.cancel();
    slot.cancel();
    assert_cancelled(slot.status(), "first status");
    assert!(slot.status().unwrap().powered);
    assert_eq!(ok_apdu(&slot, &read_binary()), (TEXT_2F00.to_vec(), OK));
}

#[test]
fn a_cancel_during_a_slow_command_ends_it_and_only_it() {
    let (_reader, handle, slot) = ready(ProtocolPreference::T1);
    // The reader holds the answer back with time extensions: 20 × 100 ms.
    handle.set_time_extensions(20, Duration::from_millis(100));
    let worker = {
        let slot = slot.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            (apdu(&slot, &read_binary()), start.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    slot.cancel();
    let (result, elapsed) = bounded(Duration::from_secs(5), move || worker.join().unwrap());
    assert_cancelled(result, "slow read");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    handle.set_time_extensions(0, Duration::ZERO);
    // The cancel was spent on the slow command: the next one runs.
    assert_eq!(ok_apdu(&slot, &read_binary()), (TEXT_2F00.to_vec(), OK));
}

#[test]
fn racing_cancels_and_operations_never_lose_a_cancel() {
    let (_reader, _handle, slot) = ready(ProtocolPreference::T1);
    for round in 0..30 {
        let barrier = Arc::new(Barrier::new(2));
        let canceller = {
            let (slot, barrier) = (slot.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                slot.cancel();
            })
        };
        let worker = {
            let (slot, barrier) = (slot.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                apdu(&slot, &read_binary())
            })
        };
        canceller.join().unwrap();
        // The cancel came before, during or after the worker's APDU:
        // before or during, the APDU is cancelled; after (the APDU was
        // done), it is pending and ends the next operation. Either way
        // exactly one of the two operations sees it.
        let first = worker.join().unwrap();
        let second = apdu(&slot, &read_binary());
        let cancelled = [&first, &second]
            .iter()
            .filter(|r| matches!(r, Err(ReaderError::Cancelled)))
            .count();
        let completed = [&first, &second]
            .iter()
            .filter(|r| matches!(r, Ok((data, OK)) if data == TEXT_2F00))
            .count();
        // A cancel during a completed APDU is spent on it: 0 or 1 cancelled.
        assert!(cancelled <= 1, "round {round}: {first:?} {second:?}");
        assert_eq!(
            cancelled + completed,
            2,
            "round {round}: {first:?} {second:?}"
        );
        // Nothing is left pending whatever happened.
        assert_eq!(
            ok_apdu(&slot, &read_binary()),
            (TEXT_2F00.to_vec(), OK),
            "round {round}"
        );
    }
}
