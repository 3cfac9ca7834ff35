//! `Reader::events()` after the unplug: a subscriber that arrives once the
//! event thread has ended still hears `ReaderEvent::DeviceGone`, exactly
//! once, and early subscribers do not hear it twice.

#[path = "reader_support/mod.rs"]
mod support;

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use ferroccid::testing::{Fault, ScriptedTransport};
use ferroccid::ReaderEvent;
use support::*;

/// Long enough for the event thread to meet the unplug on a busy machine.
const WAIT: Duration = Duration::from_secs(5);

/// Everything `events` delivers until its sender is dropped; fails if the
/// channel stays open (a subscriber left waiting forever).
fn drain(events: &Receiver<ReaderEvent>) -> Vec<ReaderEvent> {
    let mut got = Vec::new();
    loop {
        match events.recv_timeout(WAIT) {
            Ok(event) => got.push(event),
            Err(RecvTimeoutError::Disconnected) => return got,
            Err(RecvTimeoutError::Timeout) => {
                panic!("channel still open after {got:?}: nobody will ever send on it")
            }
        }
    }
}

#[test]
fn a_late_subscriber_gets_device_gone_once_and_early_ones_are_not_told_twice() {
    let t = Arc::new(
        ScriptedTransport::new(Some(&Desc::new(TPDU).bytes())).interrupt_fault(Fault::Gone),
    );
    let reader = open(&t);
    let early = reader.events();
    assert_eq!(early.recv_timeout(WAIT).unwrap(), ReaderEvent::DeviceGone);
    assert!(reader.is_gone());
    // The event thread has ended by now (it ends right after the
    // broadcast); these subscribe afterwards.
    let late = reader.events();
    let later = reader.events();
    assert_eq!(drain(&late), [ReaderEvent::DeviceGone]);
    assert_eq!(drain(&later), [ReaderEvent::DeviceGone]);
    // The early subscriber got its one DeviceGone above and nothing more.
    assert_eq!(drain(&early), []);
}

#[test]
fn subscribers_racing_the_unplug_each_get_device_gone_exactly_once() {
    for _ in 0..20 {
        let t = Arc::new(
            ScriptedTransport::new(Some(&Desc::new(TPDU).bytes())).interrupt_fault(Fault::Gone),
        );
        let reader = Arc::new(open(&t));
        // The first subscription starts the thread, which meets the unplug
        // at once; the others subscribe from other threads meanwhile.
        let first = reader.events();
        let racers: Vec<_> = (0..4)
            .map(|_| {
                let reader = reader.clone();
                std::thread::spawn(move || drain(&reader.events()))
            })
            .collect();
        assert_eq!(drain(&first), [ReaderEvent::DeviceGone]);
        for racer in racers {
            assert_eq!(racer.join().unwrap(), [ReaderEvent::DeviceGone]);
        }
    }
}
