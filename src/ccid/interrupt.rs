//! Interrupt-IN messages (CCID §6.3).
use super::error::{CcidError, FrameBytes};

/// `bMessageType` of RDR_to_PC_NotifySlotChange.
pub const NOTIFY_SLOT_CHANGE: u8 = 0x50;
/// `bMessageType` of RDR_to_PC_HardwareError.
pub const HARDWARE_ERROR: u8 = 0x51;

/// Size of the `bmSlotICCState` bitmap: 2 bits per slot, rounded up to bytes.
pub fn slot_bitmap_len(max_slot_index: u8) -> usize {
    (usize::from(max_slot_index) + 1).div_ceil(4)
}

/// One slot's state in a NotifySlotChange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotChange {
    /// Slot number.
    pub slot: u8,
    /// An ICC is present now.
    pub present: bool,
    /// The presence changed since the last notification.
    pub changed: bool,
}

/// A decoded interrupt-IN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterruptMessage<'a> {
    /// 0x50 with its `bmSlotICCState` bitmap (slot n in bits 2n (present) and 2n+1 (changed)).
    NotifySlotChange {
        /// The bitmap bytes.
        bitmap: &'a [u8],
    },
    /// 0x51.
    HardwareError {
        /// `bSlot`.
        slot: u8,
        /// `bSeq` of the command running when the error happened.
        seq: u8,
        /// `bHardwareErrorCode`: 0x01 = overcurrent.
        code: u8,
    },
}

impl<'a> InterruptMessage<'a> {
    /// Decode an interrupt transfer from a reader with `max_slot_index`.
    /// The bitmap must be exactly `slot_bitmap_len(max_slot_index)` bytes.
    pub fn parse(frame: &'a [u8], max_slot_index: u8) -> Result<Self, CcidError> {
        let bad = |reason| CcidError::BadPayload {
            reason,
            frame: FrameBytes::new(frame),
        };
        match frame.first() {
            Some(&NOTIFY_SLOT_CHANGE) => {
                if frame.len() != 1 + slot_bitmap_len(max_slot_index) {
                    return Err(bad(
                        "NotifySlotChange bitmap size differs from ceil((bMaxSlotIndex+1)*2/8)",
                    ));
                }
                Ok(InterruptMessage::NotifySlotChange {
                    bitmap: &frame[1..],
                })
            }
            Some(&HARDWARE_ERROR) => match frame {
                &[_, slot, seq, code] => {
                    if slot > max_slot_index {
                        return Err(CcidError::BadSlot {
                            slot,
                            max_slot_index,
                            frame: FrameBytes::new(frame),
                        });
                    }
                    Ok(InterruptMessage::HardwareError { slot, seq, code })
                }
                _ => Err(bad("HardwareError must be 4 bytes")),
            },
            Some(&other) => Err(CcidError::UnknownMessageType {
                value: other,
                frame: FrameBytes::new(frame),
            }),
            None => Err(bad("empty interrupt transfer")),
        }
    }

    /// The state of `slot` in a NotifySlotChange (`None` for other messages or out-of-range slots).
    pub fn slot_change(&self, slot: u8) -> Option<SlotChange> {
        let InterruptMessage::NotifySlotChange { bitmap } = self else {
            return None;
        };
        let byte = bitmap.get(usize::from(slot) / 4)?;
        let bits = byte >> ((slot % 4) * 2);
        Some(SlotChange {
            slot,
            present: bits & 1 != 0,
            changed: bits & 2 != 0,
        })
    }
}

/// Write a NotifySlotChange for `slots` (index = slot number) into `buf`; returns its length.
pub fn emit_notify_slot_change(slots: &[(bool, bool)], buf: &mut [u8]) -> Result<usize, CcidError> {
    let n = slots.len().div_ceil(4);
    if buf.len() < 1 + n {
        return Err(CcidError::BufferTooSmall {
            needed: 1 + n,
            available: buf.len(),
        });
    }
    buf[0] = NOTIFY_SLOT_CHANGE;
    buf[1..=n].fill(0);
    for (i, &(present, changed)) in slots.iter().enumerate() {
        let bits = u8::from(present) | (u8::from(changed) << 1);
        buf[1 + i / 4] |= bits << ((i % 4) * 2);
    }
    Ok(1 + n)
}

/// Write a HardwareError message into `buf`; returns 4.
pub fn emit_hardware_error(
    slot: u8,
    seq: u8,
    code: u8,
    buf: &mut [u8],
) -> Result<usize, CcidError> {
    if buf.len() < 4 {
        return Err(CcidError::BufferTooSmall {
            needed: 4,
            available: buf.len(),
        });
    }
    buf[..4].copy_from_slice(&[HARDWARE_ERROR, slot, seq, code]);
    Ok(4)
}
