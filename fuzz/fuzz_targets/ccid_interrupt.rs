//! Interrupt-IN messages and the GET_CLOCK_FREQUENCIES / GET_DATA_RATES
//! lists, as a hostile reader sends them: never panics; a NotifySlotChange
//! has exactly the bitmap size the slot count calls for, and every slot of
//! the reader can be looked up in it.
//!
//! Input: `max_slot_index` then the transfer.
#![no_main]

use ferroccid::ccid::control::parse_u32_list;
use ferroccid::ccid::interrupt::{slot_bitmap_len, InterruptMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&max_slot_index, frame)) = data.split_first() else {
        return;
    };
    match InterruptMessage::parse(frame, max_slot_index) {
        Ok(message @ InterruptMessage::NotifySlotChange { bitmap }) => {
            assert_eq!(bitmap.len(), slot_bitmap_len(max_slot_index));
            for slot in 0..=max_slot_index {
                let change = message.slot_change(slot).expect("every slot has two bits");
                assert_eq!(change.slot, slot);
            }
        }
        Ok(message @ InterruptMessage::HardwareError { slot, .. }) => {
            assert_eq!(frame.len(), 4);
            assert!(slot <= max_slot_index);
            assert!(message.slot_change(0).is_none());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match parse_u32_list(frame) {
        Ok(values) => assert_eq!(values.count(), frame.len() / 4),
        Err(e) => {
            assert_eq!(e.len, frame.len());
            assert_ne!(e.len % 4, 0);
        }
    }
});
