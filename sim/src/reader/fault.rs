//! Faults a test injects into the simulated reader.

use ferroccid::ccid::HEADER_LEN;

/// A malformed bulk-IN frame, applied to the next frame the reader sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFault {
    /// `dwLength` says 5 more bytes than are sent.
    BadLength,
    /// `bSeq` differs from the command's (incremented).
    WrongSeq,
    /// `bSlot` differs from the command's (incremented).
    WrongSlot,
    /// The last byte is not sent (a header-only frame loses its last header byte).
    Truncated,
    /// The payload is padded so that the frame is one byte longer than
    /// `dwMaxCCIDMessageLength` (with a consistent `dwLength`).
    Oversized,
    /// `bMessageType` is that of another response (DataBlock ↔ SlotStatus,
    /// anything else → DataBlock).
    WrongMessageType,
}

impl ResponseFault {
    /// Damage `frame` (a well-formed response) for a reader whose
    /// `dwMaxCCIDMessageLength` is `max_message_length`.
    pub fn apply(self, frame: &mut Vec<u8>, max_message_length: u32) {
        let set_len =
            |frame: &mut Vec<u8>, len: u32| frame[1..5].copy_from_slice(&len.to_le_bytes());
        match self {
            ResponseFault::BadLength => {
                let declared = (frame.len() - HEADER_LEN) as u32 + 5;
                set_len(frame, declared);
            }
            ResponseFault::WrongSeq => frame[6] = frame[6].wrapping_add(1),
            ResponseFault::WrongSlot => frame[5] = frame[5].wrapping_add(1),
            ResponseFault::Truncated => {
                frame.pop();
            }
            ResponseFault::Oversized => {
                let total = max_message_length as usize + 1;
                frame.resize(total.max(frame.len()), 0);
                set_len(frame, (frame.len() - HEADER_LEN) as u32);
            }
            ResponseFault::WrongMessageType => {
                frame[0] = match frame[0] {
                    0x80 => 0x81,
                    _ => 0x80,
                }
            }
        }
    }
}

/// Per-slot faults, each used once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotFaults {
    /// Corrupt the EDC of the card's next T=1 block.
    pub corrupt_next_edc: bool,
    /// Drop the card's next answer (block, TPDU or APDU): the reader answers
    /// ICC_MUTE after its mute timeout.
    pub drop_next_answer: bool,
    /// Time-extension frames before the next card exchange's answer.
    pub time_extensions_next: u8,
    /// The card stays mute at the next power-on.
    pub mute: bool,
}
