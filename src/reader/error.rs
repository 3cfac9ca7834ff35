//! [`ReaderError`]: what the reader or the card did wrong, and a coarse
//! [`ErrorKind`] for callers (the pcsc-lite bundle) that only need a class.

use std::fmt;
use std::time::Duration;

use crate::ccid::error::FrameBytes;
use crate::ccid::status::{IccStatus, SlotError};
use crate::ccid::{CcidError, DescriptorError, MessageType};
use crate::protocols::atr::AtrError;
use crate::protocols::pps::{NegotiationError, PpsError};
use crate::protocols::t0::{ProcedureError, T0Error};
use crate::protocols::t1::T1Error;
use crate::transport::TransportError;

/// Why a reader or slot operation failed.
///
/// Every variant that comes from something the reader sent carries the
/// bytes, so a log line is enough to see what happened.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReaderError {
    /// The device was unplugged; every later call fails the same way.
    DeviceGone,
    /// The transport failed in another way (stall, I/O error, ...).
    Transport(TransportError),
    /// No answer within the computed waiting time.
    Timeout {
        /// How long we waited for the last frame.
        waited: Duration,
    },
    /// [`Slot::cancel`](super::Slot::cancel) (or a wait cancel) was called.
    Cancelled,
    /// The reader sent a frame that breaks the CCID rules (bad length,
    /// wrong slot, wrong message type, reserved status, ...).
    Protocol(CcidError),
    /// The reader kept answering with stale sequence numbers.
    StaleSequence {
        /// Our bSeq.
        expected: u8,
        /// The last bSeq the reader answered with.
        got: u8,
        /// How many stale frames were dropped before giving up.
        skipped: usize,
        /// The last stale frame.
        frame: FrameBytes,
    },
    /// The reader reports that a command failed (`bmCommandStatus` 1).
    CommandFailed {
        /// The command that failed.
        command: MessageType,
        /// Decoded `bError`.
        error: SlotError,
        /// Card state the reader reported with it.
        icc: IccStatus,
        /// The reader's answer.
        frame: FrameBytes,
    },
    /// The reader kept answering CMD_SLOT_BUSY.
    SlotBusy {
        /// Attempts made.
        attempts: u32,
    },
    /// The reader asked for more time too many times in a row.
    TooManyTimeExtensions {
        /// The bound that was reached.
        limit: u32,
    },
    /// No card in the slot.
    NoCard,
    /// The card did not answer the reset at any voltage the reader offers.
    CardMute {
        /// The bPowerSelect values tried, in order (0 = automatic).
        tried: Vec<u8>,
    },
    /// The card is not powered (call [`Slot::power_on`](super::Slot::power_on)).
    NotPowered,
    /// The card answered the reset with bytes that are no ATR.
    BadAtr {
        /// The bytes the reader returned.
        atr: Vec<u8>,
        /// What is wrong with them.
        error: AtrError,
    },
    /// Card and reader have no protocol or rate in common.
    Negotiation(NegotiationError),
    /// The card refused or garbled our PPS request.
    PpsFailed {
        /// The request sent.
        request: Vec<u8>,
        /// The card's answer.
        response: Vec<u8>,
        /// Why it is not an acceptable answer.
        error: PpsError,
    },
    /// T=0 TPDU mapping failed (bad APDU, card loops on 61xx/6Cxx, ...).
    T0(T0Error),
    /// The card broke the T=0 procedure-byte rules (character level).
    Procedure(ProcedureError),
    /// T=1 failed (card not responding, buffer too small, ...).
    T1(T1Error),
    /// The card aborted the T=1 chain with S(ABORT request).
    CardAborted,
    /// A short-APDU reader was given an extended APDU.
    ExtendedApduNotSupported {
        /// Length of the command.
        len: usize,
    },
    /// The command does not fit the reader's buffers.
    CommandTooLong {
        /// Length of the command.
        len: usize,
        /// The most this reader can take.
        max: usize,
    },
    /// The response does not fit the caller's buffer.
    ResponseTooLong {
        /// Bytes the card sent (at least).
        needed: usize,
        /// Size of the caller's buffer.
        capacity: usize,
    },
    /// There is no slot with this index.
    NoSuchSlot {
        /// The index asked for.
        index: usize,
        /// Slots the reader has.
        count: usize,
    },
    /// The transport did not give a usable CCID class descriptor.
    Descriptor(DescriptorError),
    /// The transport gave neither a class descriptor nor a configuration
    /// descriptor holding one.
    NoDescriptor,
    /// The operation is not available on this reader.
    NotSupported(&'static str),
    /// The card broke the transmission protocol (e.g. asked for command
    /// data the TPDU does not have, or sent more than it announced).
    CardProtocol(&'static str),
    /// The PIN pad's user did not finish entering the PIN in time
    /// (CCID bError PIN_TIMEOUT).
    PinTimeout,
    /// The PIN pad's user pressed Cancel (CCID bError PIN_CANCELLED).
    PinCancelled,
    /// The PIN verify/modify structure given to
    /// [`Slot::secure`](super::Slot::secure) is malformed.
    InvalidSecureData {
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// An ICCD token answered a data block with an error or an unknown
    /// response type.
    Iccd {
        /// `bResponseType` (ICCD-B) or the status byte (ICCD-A).
        response_type: u8,
        /// The error byte that came with it (0 when none).
        error: u8,
    },
}

/// Coarse classes of [`ReaderError`], the distinctions PC/SC makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Anything the reader or card did wrong on the wire.
    CommunicationError,
    /// No card, or a card that does not answer.
    NoCard,
    /// No answer in time.
    Timeout,
    /// The reader is gone for good.
    DeviceGone,
    /// The reader or card cannot do what was asked.
    NotSupported,
    /// A buffer is too small.
    InsufficientBuffer,
    /// The caller cancelled.
    Cancelled,
}

impl ReaderError {
    /// The coarse class of this error.
    pub fn kind(&self) -> ErrorKind {
        use ReaderError::*;
        match self {
            DeviceGone => ErrorKind::DeviceGone,
            Transport(TransportError::DeviceGone) => ErrorKind::DeviceGone,
            Transport(TransportError::Timeout) | Timeout { .. } => ErrorKind::Timeout,
            Cancelled | Transport(TransportError::Cancelled) | PinCancelled => ErrorKind::Cancelled,
            PinTimeout => ErrorKind::Timeout,
            InvalidSecureData { .. } => ErrorKind::NotSupported,
            NoCard | CardMute { .. } | NotPowered => ErrorKind::NoCard,
            CommandFailed { icc, error, .. } => {
                if *icc == IccStatus::Absent {
                    ErrorKind::NoCard
                } else if matches!(error, SlotError::CommandNotSupported) {
                    ErrorKind::NotSupported
                } else {
                    ErrorKind::CommunicationError
                }
            }
            ExtendedApduNotSupported { .. } | NotSupported(_) | Negotiation(_) => {
                ErrorKind::NotSupported
            }
            ResponseTooLong { .. } | CommandTooLong { .. } => ErrorKind::InsufficientBuffer,
            T1(T1Error::ResponseBufferTooSmall { .. }) | T0(T0Error::ResponseBufferFull) => {
                ErrorKind::InsufficientBuffer
            }
            _ => ErrorKind::CommunicationError,
        }
    }

    /// Maps a transport failure, keeping the distinctions the reader logic
    /// reacts to.
    pub(crate) fn from_transport(e: TransportError, waited: Duration) -> ReaderError {
        match e {
            TransportError::DeviceGone => ReaderError::DeviceGone,
            TransportError::Timeout => ReaderError::Timeout { waited },
            TransportError::Cancelled => ReaderError::Cancelled,
            other => ReaderError::Transport(other),
        }
    }
}

impl fmt::Display for ReaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ReaderError::*;
        match self {
            DeviceGone => f.write_str("reader disconnected"),
            Transport(e) => write!(f, "transport error: {e}"),
            Timeout { waited } => write!(f, "reader did not answer within {waited:?}"),
            Cancelled => f.write_str("operation cancelled"),
            CardProtocol(reason) => write!(f, "card broke the transmission protocol: {reason}"),
            Protocol(e) => write!(f, "reader broke the CCID protocol: {e}"),
            StaleSequence {
                expected,
                got,
                skipped,
                frame,
            } => write!(
                f,
                "reader answered bSeq {got} to our bSeq {expected} ({skipped} stale frames dropped; frame: {frame})"
            ),
            CommandFailed {
                command,
                error,
                icc,
                frame,
            } => write!(
                f,
                "reader failed {}: {error} ({icc}; frame: {frame})",
                command.name()
            ),
            SlotBusy { attempts } => {
                write!(f, "reader answered CMD_SLOT_BUSY {attempts} times in a row")
            }
            TooManyTimeExtensions { limit } => {
                write!(f, "reader asked for more time more than {limit} times")
            }
            NoCard => f.write_str("no card in the slot"),
            CardMute { tried } => write!(
                f,
                "card did not answer the reset (bPowerSelect tried: {tried:?})"
            ),
            NotPowered => f.write_str("card is not powered"),
            BadAtr { atr, error } => write!(
                f,
                "card answered the reset with an invalid ATR ({error:?}): {}",
                crate::ccid::error::hex(atr)
            ),
            Negotiation(e) => write!(f, "parameter negotiation failed: {e}"),
            PpsFailed {
                request,
                response,
                error,
            } => write!(
                f,
                "card answered PPS {} with {}: {error}",
                crate::ccid::error::hex(request),
                crate::ccid::error::hex(response)
            ),
            T0(e) => write!(f, "T=0: {e}"),
            Procedure(e) => write!(f, "T=0 procedure bytes: {e}"),
            T1(e) => write!(f, "T=1: {e}"),
            CardAborted => f.write_str("card aborted the T=1 chain (S(ABORT request))"),
            ExtendedApduNotSupported { len } => write!(
                f,
                "reader exchanges short APDUs only; this {len}-byte command is extended"
            ),
            CommandTooLong { len, max } => {
                write!(f, "command of {len} bytes exceeds this reader's {max}")
            }
            ResponseTooLong { needed, capacity } => write!(
                f,
                "response of at least {needed} bytes does not fit a {capacity}-byte buffer"
            ),
            NoSuchSlot { index, count } => {
                write!(f, "slot {index} does not exist (reader has {count})")
            }
            Descriptor(e) => write!(f, "CCID class descriptor: {e}"),
            NoDescriptor => f.write_str("transport gave no CCID class descriptor"),
            NotSupported(what) => write!(f, "not supported: {what}"),
            PinTimeout => f.write_str("PIN entry timed out on the reader's pad"),
            PinCancelled => f.write_str("PIN entry cancelled on the reader's pad"),
            InvalidSecureData { reason } => write!(f, "invalid PIN structure: {reason}"),
            Iccd {
                response_type,
                error,
            } => write!(
                f,
                "ICCD token answered bResponseType/status 0x{response_type:02X} (error 0x{error:02X})"
            ),
        }
    }
}

impl std::error::Error for ReaderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReaderError::Transport(e) => Some(e),
            ReaderError::Protocol(e) => Some(e),
            ReaderError::Descriptor(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CcidError> for ReaderError {
    fn from(e: CcidError) -> Self {
        ReaderError::Protocol(e)
    }
}

impl From<T0Error> for ReaderError {
    fn from(e: T0Error) -> Self {
        ReaderError::T0(e)
    }
}

impl From<T1Error> for ReaderError {
    fn from(e: T1Error) -> Self {
        ReaderError::T1(e)
    }
}

impl From<ProcedureError> for ReaderError {
    fn from(e: ProcedureError) -> Self {
        ReaderError::Procedure(e)
    }
}

impl From<NegotiationError> for ReaderError {
    fn from(e: NegotiationError) -> Self {
        ReaderError::Negotiation(e)
    }
}
