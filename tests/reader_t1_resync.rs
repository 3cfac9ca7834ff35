//! A T=1 exchange cut short on the host side (cancel, or a lost answer)
//! between two XfrBlocks leaves the card mid-chain: its N(S)/N(R) and
//! chaining state no longer match the host's engine. The slot
//! resynchronises the session (S(RESYNCH), ISO/IEC 7816-3 §11.6.3) before
//! the next exchange, so the next APDU works and gets its own answer.
//! Runs on the simulator, whose card implements T=1 independently of the
//! `protocols` crate.

#[path = "reader_sim_support.rs"]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferroccid::{ProtocolPreference, Reader, ReaderError, Slot};
use ferroccid::{Tap, TapHooks};
use ferroccid_sim::card::fs::{TEXT_2F00, TEXT_2F01};
use ferroccid_sim::card::CardConfig;
use ferroccid_sim::{SimHandle, SimTransport};
use support::*;

/// [`Tap`] hooks that run a closure when the `n`th RDR_to_PC_DataBlock
/// (counted from [`Hooked::arm`]) has been read: they let a test cancel
/// exactly between two XfrBlocks of a T=1 chain.
struct Hooked {
    data_blocks_left: AtomicUsize,
    hook: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Hooked {
    /// Runs `hook` once `n` more DataBlocks have been read.
    fn arm(&self, n: usize, hook: impl FnOnce() + Send + 'static) {
        *self.hook.lock().unwrap() = Some(Box::new(hook));
        self.data_blocks_left.store(n, Ordering::SeqCst);
    }
}

impl TapHooks for Hooked {
    fn on_bulk_in(&self, frame: &[u8]) {
        // 0x80: RDR_to_PC_DataBlock; bmCommandStatus 0 (not a time
        // extension).
        if frame.len() >= 10 && frame[0] == 0x80 && frame[7] & 0xC0 == 0 {
            let left = self.data_blocks_left.load(Ordering::SeqCst);
            if left > 0 && self.data_blocks_left.fetch_sub(1, Ordering::SeqCst) == 1 {
                if let Some(hook) = self.hook.lock().unwrap().take() {
                    hook();
                }
            }
        }
    }
}

/// ISO/IEC 7816-4 "normal processing".
const OK: u16 = 0x9000;

/// SELECT EF `fid` (P2 0C: no answer data) then READ BINARY of `len`.
fn read_ef(slot: &Slot, fid: [u8; 2], len: usize) -> Result<(Vec<u8>, u16), ReaderError> {
    let (_, sw) = apdu(slot, &short([0x00, 0xA4, 0x00, 0x0C], &fid, None))?;
    assert_eq!(sw, OK, "SELECT {fid:02X?}");
    apdu(slot, &short([0x00, 0xB0, 0x00, 0x00], &[], Some(len as u8)))
}

/// An extended-length UPDATE BINARY with 4 KiB of data: at IFSC 254 a
/// chain of 17 I-blocks.
fn long_command() -> Vec<u8> {
    let mut c = vec![0x00, 0xD6, 0x00, 0x00, 0x00, 0x10, 0x00];
    c.extend((0..4096).map(|i| i as u8));
    c
}

fn ready(level: &str) -> (ferroccid::Reader, SimHandle, Slot) {
    let (reader, handle) = open_with(
        profile_with(level, Some(CardConfig::dual())),
        quick_options(),
    );
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    assert_eq!(slot.set_protocol(ProtocolPreference::T1).unwrap(), 1);
    (reader, handle, slot)
}

/// Cancels the 4 KiB chain after `after`, once it has started.
fn cancel_mid_chain(
    slot: &Slot,
    handle: &SimHandle,
    after: Duration,
) -> Result<usize, ReaderError> {
    // Each XfrBlock is held back by two reader time extensions 40 ms
    // apart, so the 17-block chain takes well over a second.
    handle.set_time_extensions(2, Duration::from_millis(40));
    let worker = {
        let slot = slot.clone();
        std::thread::spawn(move || {
            let mut response = [0u8; 258];
            slot.transmit(&long_command(), &mut response)
        })
    };
    std::thread::sleep(after);
    slot.cancel();
    let result = bounded(Duration::from_secs(10), move || worker.join().unwrap());
    handle.set_time_extensions(0, Duration::ZERO);
    result
}

#[test]
fn a_cancel_between_two_blocks_of_a_chain_does_not_corrupt_the_next_apdu() {
    for level in ["tpdu", "character"] {
        let (sim, handle) = SimTransport::open(profile_with(level, Some(CardConfig::dual())));
        let hooked = Hooked {
            data_blocks_left: AtomicUsize::new(0),
            hook: Mutex::new(None),
        };
        let transport = Arc::new(Tap::new(Arc::new(sim), hooked));
        let reader = Reader::open_with(transport.clone(), quick_options()).unwrap();
        let slot = reader.slot(0).unwrap();
        slot.power_on().unwrap();
        assert_eq!(slot.set_protocol(ProtocolPreference::T1).unwrap(), 1);
        let negotiated = card_state(&handle, 0);
        // Block 3 of 17 acknowledged (at character level a block's
        // answer is two DataBlocks: prologue, then body), then the cancel:
        // the fourth block is never sent, and the card keeps the first
        // three blocks' data waiting for the rest of the chain.
        let per_block = if level == "character" { 2 } else { 1 };
        let canceller = slot.clone();
        transport
            .hooks()
            .arm(3 * per_block, move || canceller.cancel());
        let mut response = [0u8; 258];
        let result = slot.transmit(&long_command(), &mut response);
        assert!(
            matches!(result, Err(ReaderError::Cancelled)),
            "{level}: {result:?}"
        );
        // Without resynchronisation the card appends the next APDU to the
        // cancelled chain's data and answers that instead.
        assert_eq!(
            read_ef(&slot, [0x2F, 0x00], TEXT_2F00.len()).unwrap(),
            (TEXT_2F00.to_vec(), OK),
            "{level}"
        );
        // S(RESYNCH) put the card's IFSD back to 32 (ISO/IEC 7816-3
        // §11.6.3); the host announced its IFSD again.
        assert_eq!(card_state(&handle, 0), negotiated, "{level}");
        // The session goes on normally afterwards: a chain of its own.
        let (_, sw) = ok_apdu(&slot, &long_command());
        assert_ne!(sw, OK, "{level}: EF 2F00 is never updatable");
        assert_eq!(
            read_ef(&slot, [0x2F, 0x01], TEXT_2F01.len()).unwrap(),
            (TEXT_2F01.to_vec(), OK),
            "{level}"
        );
    }
}

#[test]
fn the_next_apdu_works_after_a_chain_cancelled_mid_way() {
    for level in ["tpdu", "character"] {
        let (_reader, handle, slot) = ready(level);
        for round in 0..3 {
            let result = cancel_mid_chain(&slot, &handle, Duration::from_millis(250));
            assert!(
                matches!(result, Err(ReaderError::Cancelled)),
                "{level} round {round}: {result:?}"
            );
            // Without resynchronisation the card takes the next I-block
            // as the rest of the cancelled chain (or rejects its N(S)).
            assert_eq!(
                read_ef(&slot, [0x2F, 0x00], TEXT_2F00.len()).unwrap(),
                (TEXT_2F00.to_vec(), OK),
                "{level} round {round}"
            );
            assert_eq!(
                read_ef(&slot, [0x2F, 0x01], TEXT_2F01.len()).unwrap(),
                (TEXT_2F01.to_vec(), OK),
                "{level} round {round}"
            );
        }
    }
}

#[test]
fn a_lost_answer_mid_chain_does_not_break_the_next_apdu() {
    let (_reader, handle, slot) = ready("tpdu");
    // The reader drops the card's answer to one block of the chain; the
    // host's wait ends (timeout, CCID abort) with the card mid-chain.
    let (_, sw) = ok_apdu(&slot, &short([0x00, 0xA4, 0x00, 0x0C], &[0x2F, 0x01], None));
    assert_eq!(sw, OK);
    let worker = {
        let slot = slot.clone();
        std::thread::spawn(move || {
            let mut response = [0u8; 258];
            slot.transmit(&long_command(), &mut response)
        })
    };
    handle.drop_next_answer(0);
    let result = bounded(Duration::from_secs(20), move || worker.join().unwrap());
    // Either the drop hit a block of the chain (the host timed out) or the
    // chain finished before it: both must leave a working session.
    if let Err(e) = &result {
        assert!(
            matches!(e, ReaderError::Timeout { .. }),
            "chain with a lost answer: {e:?}"
        );
    }
    assert_eq!(
        read_ef(&slot, [0x2F, 0x00], TEXT_2F00.len()).unwrap(),
        (TEXT_2F00.to_vec(), OK)
    );
}
