//! The simulated reader (`ReaderModel`, which also runs inside pcscd
//! through the bundle) driven by a hostile host: arbitrary bulk-OUT
//! frames, ABORT and list requests, card movements and the passing of
//! time. Never panics, every bulk-IN and interrupt frame it produces is a
//! well-formed CCID message, and work stays bounded (everything scheduled
//! is delivered once time has passed).
//!
//! Input: `profile` byte (a built-in profile, or with bit 7 set a profile
//! from the next 54 bytes as a class descriptor), then records
//! `op len bytes…`; the low three op bits pick the action.
#![no_main]

use std::time::{Duration, Instant};

use ferroccid::ccid::interrupt::InterruptMessage;
use ferroccid::ccid::{Message, ResponseRepr, HEADER_LEN};
use ferroccid_sim::profile::{Profile, BUILTIN_NAMES};
use ferroccid_sim::ReaderModel;
use libfuzzer_sys::fuzz_target;

/// Checks a bulk-IN frame of the model.
fn check_bulk_in(frame: &[u8], max_message_length: Option<u32>) {
    let msg = Message::new_checked(frame)
        .unwrap_or_else(|e| panic!("simulator sent a broken frame: {e}"));
    assert_eq!(msg.frame().len(), frame.len(), "trailing bytes");
    ResponseRepr::parse(&msg).unwrap_or_else(|e| panic!("simulator sent a non-response: {e}"));
    if let Some(max) = max_message_length {
        assert!(
            frame.len() as u64 <= u64::from(max.max(HEADER_LEN as u32)),
            "{}-byte frame from a reader announcing {max}",
            frame.len()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, mut rest)) = data.split_first() else {
        return;
    };
    // Built-in profiles are consistent; a raw descriptor may announce a
    // dwMaxCCIDMessageLength below what the card needs, so no size check.
    let (profile, size_limit) = if choice & 0x80 != 0 {
        let Some((descriptor, tail)) = rest.split_first_chunk::<54>() else {
            return;
        };
        rest = tail;
        match Profile::from_descriptor(descriptor) {
            Ok(p) => (p, false),
            Err(_) => return,
        }
    } else {
        let name = BUILTIN_NAMES[usize::from(choice) % BUILTIN_NAMES.len()];
        (Profile::from_name(name).expect("built-in profile"), true)
    };
    let mut model = ReaderModel::new(profile);
    let max_slot_index = model.descriptor().max_slot_index;
    let limit = size_limit.then_some(model.descriptor().max_message_length);
    let mut now = Instant::now();

    while let Some((&[op, len], tail)) = rest.split_first_chunk::<2>() {
        let take = usize::from(len).min(tail.len());
        let (bytes, next) = tail.split_at(take);
        rest = next;
        let arg = bytes.first().copied().unwrap_or(0);
        match op & 7 {
            0 | 1 => model.receive_bulk_out(bytes, now),
            2 => {
                now += Duration::from_millis(u64::from(len) * 10);
                while let Some(frame) = model.poll_bulk_in(now) {
                    check_bulk_in(&frame, limit);
                }
            }
            3 => {
                let value = u16::from_le_bytes([arg, bytes.get(1).copied().unwrap_or(0)]);
                model.control_abort(value, now);
            }
            4 => {
                if let Some(list) = model.control_in(arg) {
                    assert_eq!(list.len() % 4, 0);
                }
            }
            5 => model.remove_card(arg, now),
            6 => model.insert_card(arg, None),
            _ => {
                while let Some(frame) = model.poll_interrupt() {
                    InterruptMessage::parse(&frame, max_slot_index)
                        .unwrap_or_else(|e| panic!("simulator sent a broken interrupt: {e}"));
                }
            }
        }
    }
    // Everything scheduled comes out once enough time has passed.
    let later = now + Duration::from_secs(3600);
    let mut delivered = 0usize;
    while let Some(frame) = model.poll_bulk_in(later) {
        check_bulk_in(&frame, limit);
        delivered += 1;
        assert!(delivered <= 1_000_000, "unbounded bulk-IN queue");
    }
    assert!(model.next_due().is_none());
});
