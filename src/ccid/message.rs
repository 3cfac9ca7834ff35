//! The bulk message header (CCID §6.1, §6.2) and a zero-copy view over a frame.
use bytes::Bytes;

use super::error::{CcidError, FrameBytes};
pub use super::message_type::MessageType;
use super::status::{SlotError, Status};

/// Size of the header shared by every bulk message.
pub const HEADER_LEN: usize = 10;

/// Offsets of the header fields (CCID §6.1, §6.2), for code that looks at
/// a frame before it can be validated into a [`Message`] (receive
/// dispatch, stale-frame checks).
pub mod offset {
    /// `bMessageType`.
    pub const MESSAGE_TYPE: usize = 0;
    /// `dwLength`, 4 bytes little-endian.
    pub const LENGTH: usize = 1;
    /// `bSlot`.
    pub const SLOT: usize = 5;
    /// `bSeq`.
    pub const SEQ: usize = 6;
    /// `bStatus` (responses).
    pub const STATUS: usize = 7;
    /// `bError` (responses).
    pub const ERROR: usize = 8;
    /// `bChainParameter` / `bClockStatus` / `bProtocolNum` (responses).
    pub const CHAIN: usize = 9;
}

/// `bSlot` and `bSeq` of a frame too short or too odd to validate yet;
/// `None` when it does not reach `bSeq`.
pub fn frame_address(frame: &[u8]) -> Option<(u8, u8)> {
    Some((*frame.get(offset::SLOT)?, *frame.get(offset::SEQ)?))
}

/// `bChainParameter` of `RDR_to_PC_DataBlock` (CCID §6.2.1), used at the
/// APDU exchange levels to split long responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainParameter {
    /// 0x00: the response is complete.
    Complete,
    /// 0x01: first part, more follows.
    Begins,
    /// 0x02: last part.
    Ends,
    /// 0x03: middle part, more follows.
    Continues,
    /// 0x10: empty; the reader expects an XfrBlock with `wLevelParameter` 0x10 to continue.
    ExpectsMore,
    /// Anything else.
    Other(u8),
}

impl ChainParameter {
    /// Decode `bChainParameter`.
    pub fn from_byte(b: u8) -> ChainParameter {
        match b {
            0x00 => ChainParameter::Complete,
            0x01 => ChainParameter::Begins,
            0x02 => ChainParameter::Ends,
            0x03 => ChainParameter::Continues,
            0x10 => ChainParameter::ExpectsMore,
            other => ChainParameter::Other(other),
        }
    }
}

/// A checked, zero-copy view of one CCID bulk message.
///
/// Construction checks that the header is present, `bMessageType` is a CCID
/// message and the buffer holds at least `dwLength` payload bytes; after
/// that, no accessor can index out of bounds. Bytes beyond `10 + dwLength`
/// are ignored by the view (see [`super::validate_response`] to reject them).
#[derive(Debug, Clone)]
pub struct Message<T: AsRef<[u8]>> {
    buffer: T,
}

/// Read a little-endian `u32` at `at` (caller guarantees 4 bytes).
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<T: AsRef<[u8]>> Message<T> {
    /// Wrap `buffer` after checking the header and the payload length.
    pub fn new_checked(buffer: T) -> Result<Message<T>, CcidError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(CcidError::TruncatedHeader {
                frame: FrameBytes::new(b),
            });
        }
        if MessageType::from_byte(b[0]).is_none() {
            return Err(CcidError::UnknownMessageType {
                value: b[0],
                frame: FrameBytes::new(b),
            });
        }
        let declared = le32(b, 1);
        let received = b.len() - HEADER_LEN;
        if u64::from(declared) > received as u64 {
            return Err(CcidError::Truncated {
                declared,
                received,
                frame: FrameBytes::new(b),
            });
        }
        Ok(Message { buffer })
    }

    /// The whole underlying buffer (including any bytes after the payload).
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The header and payload: `10 + dwLength` bytes.
    pub fn frame(&self) -> &[u8] {
        &self.buffer.as_ref()[..HEADER_LEN + self.payload_len()]
    }

    /// Give the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// `bMessageType`.
    pub fn message_type(&self) -> MessageType {
        // Checked in `new_checked`.
        MessageType::from_byte(self.buffer.as_ref()[offset::MESSAGE_TYPE])
            .unwrap_or(MessageType::DataBlock)
    }

    /// `dwLength`: payload bytes after the header.
    pub fn length(&self) -> u32 {
        le32(self.buffer.as_ref(), 1)
    }

    fn payload_len(&self) -> usize {
        // Fits: `new_checked` proved dwLength <= buffer length.
        self.length() as usize
    }

    /// `bSlot`.
    pub fn slot(&self) -> u8 {
        self.buffer.as_ref()[offset::SLOT]
    }

    /// `bSeq`.
    pub fn seq(&self) -> u8 {
        self.buffer.as_ref()[offset::SEQ]
    }

    /// The three message-specific header bytes (offsets 7, 8, 9).
    pub fn specific(&self) -> [u8; 3] {
        let b = self.buffer.as_ref();
        [b[7], b[8], b[9]]
    }

    /// `bStatus` (responses).
    pub fn status(&self) -> Status {
        Status(self.buffer.as_ref()[offset::STATUS])
    }

    /// `bError` (responses), decoded.
    pub fn error(&self) -> SlotError {
        SlotError::from_byte(self.buffer.as_ref()[8])
    }

    /// `bError` as sent (the time-extension multiplier when `bmCommandStatus` is 2).
    pub fn error_byte(&self) -> u8 {
        self.buffer.as_ref()[8]
    }

    /// `bChainParameter` (DataBlock), or the byte at offset 9 of any message
    /// (`bClockStatus`, `bProtocolNum`).
    pub fn chain_parameter(&self) -> u8 {
        self.buffer.as_ref()[9]
    }

    /// The `dwLength` payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + self.payload_len()]
    }
}

impl Message<Bytes> {
    /// The payload as a `Bytes` slice sharing the receive buffer (no copy).
    pub fn payload_bytes(&self) -> Bytes {
        self.buffer
            .slice(HEADER_LEN..HEADER_LEN + self.payload_len())
    }
}

/// Write the 10-byte header into `buf` (caller checked the size).
pub(crate) fn write_header(
    buf: &mut [u8],
    ty: MessageType,
    payload_len: u32,
    slot: u8,
    seq: u8,
    specific: [u8; 3],
) {
    buf[offset::MESSAGE_TYPE] = ty.to_byte();
    buf[offset::LENGTH..offset::SLOT].copy_from_slice(&payload_len.to_le_bytes());
    buf[offset::SLOT] = slot;
    buf[offset::SEQ] = seq;
    buf[offset::STATUS..HEADER_LEN].copy_from_slice(&specific);
}

/// Check `buf` can hold `HEADER_LEN + payload_len`, and `payload_len` fits `dwLength`.
pub(crate) fn check_room(buf: &[u8], payload_len: usize) -> Result<(u32, usize), CcidError> {
    let dw =
        u32::try_from(payload_len).map_err(|_| CcidError::ValueTooLarge { field: "dwLength" })?;
    let needed = HEADER_LEN
        .checked_add(payload_len)
        .ok_or(CcidError::ValueTooLarge { field: "dwLength" })?;
    if buf.len() < needed {
        return Err(CcidError::BufferTooSmall {
            needed,
            available: buf.len(),
        });
    }
    Ok((dw, needed))
}
