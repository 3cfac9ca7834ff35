//! Several slots at once, and cancellation, over the simulated reader.

#[path = "reader_sim_support.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroccid::REQUEST_ABORT;
use ferroccid::{ProtocolPreference, Reader, ReaderError};
use ferroccid_sim::card::config::PRESET_AUTH_KEY;
use ferroccid_sim::card::fs::TEXT_2F00;
use ferroccid_sim::card::{CardConfig, SlowCommands};
use ferroccid_sim::profile::Profile;
use ferroccid_sim::SimTransport;
use support::*;

const OK: u16 = 0x9000;
const APDUS_PER_THREAD: usize = 100;

/// INTERNAL AUTHENTICATE with a challenge unique to (slot, i): an answer
/// that belongs to another command cannot match the HMAC.
fn authenticate_many(slot: ferroccid::Slot, n: usize) -> usize {
    let mut done = 0;
    for i in 0..n {
        let challenge = format!("s{}#{i:05}", slot.index()).into_bytes();
        let command = short([0x00, 0x88, 0x00, 0x00], &challenge, Some(0));
        let (answer, sw) = ok_apdu(&slot, &command);
        assert_eq!(sw, OK, "slot {} APDU {i}", slot.index());
        assert_eq!(
            answer,
            expected_auth(PRESET_AUTH_KEY, &challenge),
            "slot {} APDU {i}: answer of another command",
            slot.index()
        );
        done += 1;
    }
    done
}

#[test]
fn four_slots_four_threads() {
    let mut profile = Profile::from_name("4-slot").unwrap();
    // Each exchange takes 2 ms in the reader, so that the four slots'
    // commands overlap on the bulk pipe.
    profile.exchange_latency = Duration::from_millis(2);
    assert_eq!(profile.class_descriptor().max_busy_slots, 4);
    let (reader, _handle) = open(profile);
    assert_eq!(reader.slot_count(), 4);
    let start = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let slot = reader.slot(i).unwrap();
            std::thread::spawn(move || {
                slot.power_on().unwrap();
                assert_eq!(slot.set_protocol(ProtocolPreference::Any).unwrap(), 0);
                authenticate_many(slot, APDUS_PER_THREAD)
            })
        })
        .collect();
    let total: usize = bounded(Duration::from_secs(60), move || {
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });
    assert_eq!(total, 4 * APDUS_PER_THREAD);
    println!("4 × {APDUS_PER_THREAD} APDUs in {:?}", start.elapsed());
}

/// The GemPC Twin descriptor with two slots and bMaxCCIDBusySlots = 1: the
/// second slot's command while the first is busy gets CMD_SLOT_BUSY from
/// the reader (CCID §6.2.6); the host must hide that.
#[test]
fn two_slots_one_busy_slot() {
    let mut descriptor = Profile::from_name("tpdu").unwrap().descriptor;
    descriptor[4] = 1; // bMaxSlotIndex
    descriptor[53] = 1; // bMaxCCIDBusySlots
    let mut profile = Profile::from_descriptor(&descriptor).unwrap();
    profile.exchange_latency = Duration::from_millis(2);
    let (reader, _handle) = open(profile);
    assert_eq!(reader.slot_count(), 2);
    assert_eq!(reader.descriptor().max_busy_slots, 1);
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let slot = reader.slot(i).unwrap();
            std::thread::spawn(move || {
                slot.power_on().unwrap();
                slot.set_protocol(ProtocolPreference::T1).unwrap();
                authenticate_many(slot, APDUS_PER_THREAD)
            })
        })
        .collect();
    let total: usize = bounded(Duration::from_secs(60), move || {
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });
    assert_eq!(total, 2 * APDUS_PER_THREAD);
}

/// A card whose INTERNAL AUTHENTICATE asks for 500 waiting-time
/// extensions; with the reader taking 10 ms per frame that is 5 s.
fn very_slow_card() -> CardConfig {
    CardConfig {
        slow: SlowCommands {
            ins: vec![0x88],
            t0_nulls: 250,
            t1_wtx_requests: 250,
            wtx_multiplier: 1,
        },
        ..CardConfig::dual()
    }
}

#[test]
fn cancel_a_slow_command() {
    for (name, preference) in [
        ("tpdu", ProtocolPreference::T1),
        ("tpdu", ProtocolPreference::T0),
        ("short-apdu", ProtocolPreference::Any),
        ("extended-apdu", ProtocolPreference::T1),
        ("character", ProtocolPreference::T1),
    ] {
        let what = format!("{name} {preference:?}");
        let mut profile = profile_with(name, Some(very_slow_card()));
        profile.exchange_latency = Duration::from_millis(10);
        let (transport, _handle) = SimTransport::open(profile);
        let recorder = Arc::new(recorded(transport));
        let reader = Reader::open(recorder.clone()).unwrap();
        let slot = reader.slot(0).unwrap();
        slot.power_on().unwrap();
        slot.set_protocol(preference).unwrap();
        let worker = {
            let slot = slot.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let r = apdu(
                    &slot,
                    &short([0x00, 0x88, 0x00, 0x00], b"cancel!!", Some(0)),
                );
                (r, start.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        recorder.hooks().sent.lock().unwrap().clear();
        let cancelled_at = Instant::now();
        slot.cancel();
        let (result, elapsed) = bounded(Duration::from_secs(3), move || worker.join().unwrap());
        let after_cancel = cancelled_at.elapsed();
        assert!(
            matches!(result, Err(ReaderError::Cancelled)),
            "{what}: {result:?} after {elapsed:?}"
        );
        assert!(
            after_cancel < Duration::from_secs(1),
            "{what}: {after_cancel:?}"
        );
        // CCID §5.3.1: the class ABORT request (wValue = bSeq << 8 | bSlot)
        // and PC_to_RDR_Abort (72h) with the same bSeq, when a CCID command
        // was in flight. At TPDU/character level with T=1 the host may be
        // between two XfrBlocks (the card's S(WTX) exchanges) when the
        // cancel lands: nothing is pending in the reader, nothing to abort.
        let sent = recorder.hooks().sent.lock().unwrap().clone();
        let abort_request = sent.iter().find_map(|s| match s {
            Sent::Control(REQUEST_ABORT, value) => Some(*value),
            _ => None,
        });
        let bulk_abort = sent.iter().find_map(|s| match s {
            Sent::Bulk(0x72, seq) => Some(*seq),
            _ => None,
        });
        match abort_request {
            Some(value) => {
                assert_eq!(value & 0xFF, 0, "{what}: bSlot of ABORT");
                assert_eq!(
                    bulk_abort,
                    Some((value >> 8) as u8),
                    "{what}: PC_to_RDR_Abort with the ABORT's bSeq in {sent:?}"
                );
            }
            None => {
                let between_blocks =
                    preference == ProtocolPreference::T1 && matches!(name, "tpdu" | "character");
                assert!(between_blocks, "{what}: no ABORT class request in {sent:?}");
                assert_eq!(bulk_abort, None, "{what}: {sent:?}");
            }
        }
        // The slot works afterwards.
        let select = short([0x00, 0xA4, 0x00, 0x0C], &[0x2F, 0x00], None);
        assert_eq!(ok_apdu(&slot, &select), (vec![], OK), "{what}");
        let read = short([0x00, 0xB0, 0x00, 0x00], &[], Some(TEXT_2F00.len() as u8));
        assert_eq!(ok_apdu(&slot, &read), (TEXT_2F00.to_vec(), OK), "{what}");
    }
}
