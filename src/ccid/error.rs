//! [`CcidError`]: everything that can be wrong with a CCID frame.
use core::fmt;

use super::message_type::MessageType;
use super::status::{IccStatus, SlotError};

/// Format bytes as space-separated upper-case hex (`00 84 00 00 08`).
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("{b:02X}"));
    }
    out
}

/// Longest frame prefix kept in an error: enough to see the header and the
/// start of the payload without copying a 64 KiB frame on the error path.
const KEPT_BYTES: usize = 64;

/// The offending frame, copied (at most `KEPT_BYTES`, 64) so the error outlives the buffer.
#[derive(Clone, PartialEq, Eq)]
pub struct FrameBytes {
    bytes: Vec<u8>,
    total_len: usize,
}

impl FrameBytes {
    /// Copy the first bytes of `frame`.
    pub fn new(frame: &[u8]) -> Self {
        FrameBytes {
            bytes: frame[..frame.len().min(KEPT_BYTES)].to_vec(),
            total_len: frame.len(),
        }
    }
    /// The kept bytes (a prefix of the frame).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// Length of the whole frame, including bytes not kept.
    pub fn total_len(&self) -> usize {
        self.total_len
    }
}

impl fmt::Debug for FrameBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self)
    }
}

impl fmt::Display for FrameBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.bytes))?;
        if self.total_len > self.bytes.len() {
            write!(f, " … ({} bytes)", self.total_len)?;
        }
        Ok(())
    }
}

/// A CCID frame that cannot be accepted. Every variant carries the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CcidError {
    /// Fewer than the 10 header bytes.
    TruncatedHeader {
        /// The frame.
        frame: FrameBytes,
    },
    /// `dwLength` announces more bytes than were received.
    Truncated {
        /// `dwLength`.
        declared: u32,
        /// Payload bytes actually received.
        received: usize,
        /// The frame.
        frame: FrameBytes,
    },
    /// More bytes were received than `10 + dwLength`.
    TrailingBytes {
        /// `dwLength`.
        declared: u32,
        /// Payload bytes actually received.
        received: usize,
        /// The frame.
        frame: FrameBytes,
    },
    /// `10 + dwLength` exceeds the reader's `dwMaxCCIDMessageLength`.
    TooLong {
        /// `10 + dwLength`.
        length: u64,
        /// `dwMaxCCIDMessageLength`.
        max: u32,
        /// The frame.
        frame: FrameBytes,
    },
    /// `bMessageType` is not a CCID message.
    UnknownMessageType {
        /// The byte.
        value: u8,
        /// The frame.
        frame: FrameBytes,
    },
    /// The message type is valid but not the one the request calls for.
    UnexpectedMessageType {
        /// What the request calls for.
        expected: MessageType,
        /// What came.
        got: MessageType,
        /// The frame.
        frame: FrameBytes,
    },
    /// `bSlot` above `bMaxSlotIndex`.
    BadSlot {
        /// `bSlot`.
        slot: u8,
        /// `bMaxSlotIndex`.
        max_slot_index: u8,
        /// The frame.
        frame: FrameBytes,
    },
    /// `bSlot` is a valid slot, but not the slot of the request.
    WrongSlot {
        /// Slot of the request.
        expected: u8,
        /// `bSlot`.
        got: u8,
        /// The frame.
        frame: FrameBytes,
    },
    /// `bSeq` differs from the request: most likely a late answer to an
    /// earlier (aborted or timed-out) request. The caller may drop it and read
    /// again, a bounded number of times.
    StaleSequence {
        /// `bSeq` of the request.
        expected: u8,
        /// `bSeq` received.
        got: u8,
        /// The frame.
        frame: FrameBytes,
    },
    /// The payload does not have the size or content this message type requires.
    BadPayload {
        /// Which rule was broken.
        reason: &'static str,
        /// The frame.
        frame: FrameBytes,
    },
    /// The reader reports that the command failed (`bmCommandStatus` = 1).
    CommandFailed {
        /// Decoded `bError`.
        error: SlotError,
        /// Decoded `bmICCStatus`.
        icc: IccStatus,
        /// The frame.
        frame: FrameBytes,
    },
    /// `bmCommandStatus` = 3 (RFU) or `bmICCStatus` = 3 (RFU).
    BadStatus {
        /// `bStatus`.
        status: u8,
        /// The frame.
        frame: FrameBytes,
    },
    /// A caller buffer is too small for the message being emitted.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A value given to `emit` does not fit its wire field.
    ValueTooLarge {
        /// Which field.
        field: &'static str,
    },
}

impl CcidError {
    /// The offending frame, if the error came from a received frame.
    pub fn frame(&self) -> Option<&FrameBytes> {
        use CcidError::*;
        match self {
            TruncatedHeader { frame }
            | Truncated { frame, .. }
            | TrailingBytes { frame, .. }
            | TooLong { frame, .. }
            | UnknownMessageType { frame, .. }
            | UnexpectedMessageType { frame, .. }
            | BadSlot { frame, .. }
            | WrongSlot { frame, .. }
            | StaleSequence { frame, .. }
            | BadPayload { frame, .. }
            | CommandFailed { frame, .. }
            | BadStatus { frame, .. } => Some(frame),
            BufferTooSmall { .. } | ValueTooLarge { .. } => None,
        }
    }
}

impl fmt::Display for CcidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CcidError::*;
        match self {
            TruncatedHeader { frame } => write!(
                f,
                "CCID frame of {} bytes is shorter than the 10-byte header: {frame}",
                frame.total_len()
            ),
            Truncated { declared, received, frame } => write!(
                f,
                "CCID frame truncated: dwLength {declared} but {received} payload bytes received: {frame}"
            ),
            TrailingBytes { declared, received, frame } => write!(
                f,
                "CCID frame has trailing bytes: dwLength {declared} but {received} payload bytes received: {frame}"
            ),
            TooLong { length, max, frame } => write!(
                f,
                "CCID message of {length} bytes exceeds dwMaxCCIDMessageLength {max}: {frame}"
            ),
            UnknownMessageType { value, frame } => {
                write!(f, "unknown CCID bMessageType 0x{value:02X}: {frame}")
            }
            UnexpectedMessageType { expected, got, frame } => write!(
                f,
                "expected {} but received {}: {frame}",
                expected.name(),
                got.name()
            ),
            BadSlot { slot, max_slot_index, frame } => write!(
                f,
                "bSlot {slot} above bMaxSlotIndex {max_slot_index}: {frame}"
            ),
            WrongSlot { expected, got, frame } => {
                write!(f, "answer for slot {got}, request was for slot {expected}: {frame}")
            }
            StaleSequence { expected, got, frame } => {
                write!(f, "stale answer: bSeq {got}, expected {expected}: {frame}")
            }
            BadPayload { reason, frame } => write!(f, "bad CCID payload ({reason}): {frame}"),
            CommandFailed { error, icc, frame } => {
                write!(f, "reader reports command failed: {error} ({icc}): {frame}")
            }
            BadStatus { status, frame } => {
                write!(f, "reserved value in bStatus 0x{status:02X}: {frame}")
            }
            BufferTooSmall { needed, available } => write!(
                f,
                "buffer of {available} bytes too small for a {needed}-byte CCID message"
            ),
            ValueTooLarge { field } => write!(f, "value does not fit the {field} field"),
        }
    }
}

impl std::error::Error for CcidError {}
