//! A reader's bulk-IN frame checked against the request it should answer
//! (`validate_response`), with an arbitrary request: never panics, and an
//! accepted frame really is the answer the expectation describes.
//!
//! Input: `request_type slot seq max_slot_index max_len(2 bytes LE)` then
//! the frame. The maximum message length is `271 + max_len` so both
//! "too long" and accepted frames are reachable.
#![no_main]

use ferroccid::ccid::status::CommandStatus;
use ferroccid::ccid::{validate_response, Expectation, Message, MessageType, Reply, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[ty, slot, seq, max_slot_index, len_lo, len_hi], frame)) =
        data.split_first_chunk::<6>()
    else {
        return;
    };
    // Any byte: commands, responses and unknown values all reach the check.
    let msg_type = MessageType::from_byte(ty).unwrap_or(MessageType::XfrBlock);
    let expected = Expectation {
        msg_type,
        slot,
        seq,
        max_slot_index,
        max_message_length: 271 + u32::from(u16::from_le_bytes([len_lo, len_hi])),
    };
    // The view alone must not panic either, and its accessors stay in bounds.
    if let Ok(view) = Message::new_checked(frame) {
        assert_eq!(view.frame().len(), HEADER_LEN + view.length() as usize);
        assert_eq!(view.payload().len(), view.length() as usize);
        let _ = (view.status(), view.error(), view.specific(), view.seq());
    }
    let _ = ferroccid::ccid::trace::describe(frame);
    match validate_response(frame, &expected) {
        Ok(reply) => {
            let message = match &reply {
                Reply::Done(m) => {
                    assert_eq!(m.status().command(), CommandStatus::Ok);
                    m
                }
                Reply::TimeExtension {
                    multiplier,
                    message,
                } => {
                    assert_eq!(message.status().command(), CommandStatus::TimeExtension);
                    assert_eq!(*multiplier, message.error_byte());
                    message
                }
            };
            // No trailing bytes, within the limit, and the right addressee.
            assert_eq!(message.frame(), frame);
            assert!(frame.len() as u64 <= u64::from(expected.max_message_length));
            assert_eq!(message.slot(), slot);
            assert_eq!(message.seq(), seq);
            assert!(message.slot() <= max_slot_index);
            let want = msg_type.response_type().unwrap_or(msg_type);
            assert_eq!(message.message_type(), want);
        }
        Err(e) => {
            // Errors keep a bounded prefix of the frame, so a hostile
            // 64 KiB frame cannot flood the log.
            if let Some(kept) = e.frame() {
                assert!(kept.bytes().len() <= 64);
                assert_eq!(kept.total_len(), frame.len());
            }
            assert!(e.to_string().len() < 1024, "error text too long: {e}");
        }
    }
});
