//! bMaxCCIDBusySlots (CCID §5.1): with one permit and two slots driven by
//! two threads, the host never has two commands outstanding, so the
//! reader never has to answer CMD_SLOT_BUSY (§6.2.6), and both slots
//! still make progress, taking turns.

#[path = "reader_sim_support.rs"]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferroccid::{ProtocolPreference, Reader};
use ferroccid::{Tap, TapHooks};
use ferroccid_sim::card::config::PRESET_AUTH_KEY;
use ferroccid_sim::profile::Profile;
use ferroccid_sim::SimTransport;
use support::*;

/// ISO/IEC 7816-4 "normal processing".
const OK: u16 = 0x9000;
/// bmCommandStatus 2 (bits 7..6 of bStatus): time extension requested.
const TIME_EXTENSION: u8 = 0x80;
/// bmCommandStatus 1: command failed.
const FAILED: u8 = 0x40;
/// bError CMD_SLOT_BUSY (CCID table 6.2-2).
const CMD_SLOT_BUSY: u8 = 0xE0;

/// [`Tap`] hooks counting commands sent and not yet answered.
#[derive(Default)]
struct InFlight {
    outstanding: AtomicUsize,
    max_outstanding: AtomicUsize,
    busy_answers: AtomicUsize,
    /// bSlot of every bulk-OUT command, in order.
    slots_sent: Mutex<Vec<u8>>,
}

impl TapHooks for InFlight {
    fn on_bulk_out(&self, message: &[u8]) {
        let now = self.outstanding.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_outstanding.fetch_max(now, Ordering::SeqCst);
        self.slots_sent.lock().unwrap().push(message[5]);
    }
    fn on_bulk_in(&self, frame: &[u8]) {
        if frame.len() >= 10 {
            let command_status = frame[7] & 0xC0;
            if command_status == FAILED && frame[8] == CMD_SLOT_BUSY {
                self.busy_answers.fetch_add(1, Ordering::SeqCst);
            }
            if command_status != TIME_EXTENSION {
                self.outstanding.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

#[test]
fn two_threads_share_one_busy_slot_permit() {
    const APDUS: usize = 40;
    // The GemPC Twin descriptor with two slots and bMaxCCIDBusySlots 1.
    let mut descriptor = Profile::from_name("tpdu").unwrap().descriptor;
    descriptor[4] = 1; // bMaxSlotIndex
    descriptor[53] = 1; // bMaxCCIDBusySlots
    let mut profile = Profile::from_descriptor(&descriptor).unwrap();
    // Each exchange takes 3 ms in the reader: the two threads' commands
    // would overlap if the host let them.
    profile.exchange_latency = Duration::from_millis(3);
    let (sim, _handle) = SimTransport::open(profile);
    let transport = Arc::new(Tap::new(Arc::new(sim), InFlight::default()));
    let reader = Reader::open(transport.clone()).unwrap();
    assert_eq!(reader.descriptor().max_busy_slots, 1);
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let slot = reader.slot(i).unwrap();
            std::thread::spawn(move || {
                slot.power_on().unwrap();
                slot.set_protocol(ProtocolPreference::T1).unwrap();
                for n in 0..APDUS {
                    let challenge = format!("slot{i}#{n:03}").into_bytes();
                    let command = short([0x00, 0x88, 0x00, 0x00], &challenge, Some(0));
                    let (answer, sw) = ok_apdu(&slot, &command);
                    assert_eq!(sw, OK, "slot {i} APDU {n}");
                    assert_eq!(answer, expected_auth(PRESET_AUTH_KEY, &challenge));
                }
            })
        })
        .collect();
    bounded(Duration::from_secs(60), move || {
        for t in threads {
            t.join().unwrap();
        }
    });
    assert_eq!(transport.hooks().max_outstanding.load(Ordering::SeqCst), 1);
    assert_eq!(transport.hooks().busy_answers.load(Ordering::SeqCst), 0);
    assert_eq!(transport.hooks().outstanding.load(Ordering::SeqCst), 0);
    // They competed: the commands of the two slots interleave rather than
    // one slot running all its APDUs and then the other.
    let sent = transport.hooks().slots_sent.lock().unwrap().clone();
    let switches = sent.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(
        switches >= 10,
        "slots took turns only {switches} times: {sent:?}"
    );
}
