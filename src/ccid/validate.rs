//! Validation of a bulk-IN frame against the request it should answer.
use super::error::{CcidError, FrameBytes};
use super::message::{Message, MessageType, HEADER_LEN};
use super::status::{CommandStatus, IccStatus};

/// What the answer to a request must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    /// The *request's* message type; the response type follows from it
    /// ([`MessageType::response_type`]).
    pub msg_type: MessageType,
    /// `bSlot` of the request.
    pub slot: u8,
    /// `bSeq` of the request.
    pub seq: u8,
    /// `bMaxSlotIndex` of the reader.
    pub max_slot_index: u8,
    /// `dwMaxCCIDMessageLength` of the reader (header included).
    pub max_message_length: u32,
}

/// A structurally valid answer.
#[derive(Debug, Clone)]
pub enum Reply<T: AsRef<[u8]>> {
    /// `bmCommandStatus` 0: the command was processed.
    Done(Message<T>),
    /// `bmCommandStatus` 2: the reader needs more time; wait `multiplier` × BWT/WWT and read again.
    TimeExtension {
        /// `bError`.
        multiplier: u8,
        /// The frame.
        message: Message<T>,
    },
}

/// Check `frame` (the bytes of one bulk-IN transfer) against `expected`.
///
/// Order of checks: header present; `dwLength` against the bytes received
/// (truncated, trailing) and `dwMaxCCIDMessageLength`; message type known and
/// the one the request calls for; `bSlot` ≤ `bMaxSlotIndex` and equal to the
/// request's; `bSeq` (→ [`CcidError::StaleSequence`]); finally `bStatus`:
/// a failed command becomes [`CcidError::CommandFailed`].
pub fn validate_response<T: AsRef<[u8]>>(
    frame: T,
    expected: &Expectation,
) -> Result<Reply<T>, CcidError> {
    let b = frame.as_ref();
    let fb = || FrameBytes::new(b);
    if b.len() < HEADER_LEN {
        return Err(CcidError::TruncatedHeader { frame: fb() });
    }
    let declared = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
    let received = b.len() - HEADER_LEN;
    let total = HEADER_LEN as u64 + u64::from(declared);
    if total > u64::from(expected.max_message_length) {
        return Err(CcidError::TooLong {
            length: total,
            max: expected.max_message_length,
            frame: fb(),
        });
    }
    if u64::from(declared) > received as u64 {
        return Err(CcidError::Truncated {
            declared,
            received,
            frame: fb(),
        });
    }
    if u64::from(declared) < received as u64 {
        return Err(CcidError::TrailingBytes {
            declared,
            received,
            frame: fb(),
        });
    }
    let got = MessageType::from_byte(b[0]).ok_or_else(|| CcidError::UnknownMessageType {
        value: b[0],
        frame: fb(),
    })?;
    let want = expected
        .msg_type
        .response_type()
        .unwrap_or(expected.msg_type);
    if got != want {
        return Err(CcidError::UnexpectedMessageType {
            expected: want,
            got,
            frame: fb(),
        });
    }
    let (slot, seq) = (b[5], b[6]);
    if slot > expected.max_slot_index {
        return Err(CcidError::BadSlot {
            slot,
            max_slot_index: expected.max_slot_index,
            frame: fb(),
        });
    }
    if seq != expected.seq {
        return Err(CcidError::StaleSequence {
            expected: expected.seq,
            got: seq,
            frame: fb(),
        });
    }
    if slot != expected.slot {
        return Err(CcidError::WrongSlot {
            expected: expected.slot,
            got: slot,
            frame: fb(),
        });
    }
    let message = Message::new_checked(frame)?;
    let status = message.status();
    if status.icc() == IccStatus::Reserved {
        return Err(CcidError::BadStatus {
            status: status.0,
            frame: FrameBytes::new(message.as_bytes()),
        });
    }
    match status.command() {
        CommandStatus::Ok => Ok(Reply::Done(message)),
        CommandStatus::TimeExtension => Ok(Reply::TimeExtension {
            multiplier: message.error_byte(),
            message,
        }),
        CommandStatus::Failed => Err(CcidError::CommandFailed {
            error: message.error(),
            icc: status.icc(),
            frame: FrameBytes::new(message.as_bytes()),
        }),
        CommandStatus::Reserved => Err(CcidError::BadStatus {
            status: status.0,
            frame: FrameBytes::new(message.as_bytes()),
        }),
    }
}
