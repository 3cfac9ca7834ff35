//! Status words (ISO/IEC 7816-4 §5.6) and the errors of the service layer.
//!
//! A status word that is not 9000 becomes a [`CardError`], a classification
//! an application can `match` on; the raw [`Sw`] always travels with it in
//! [`Error::Status`], because cards use many proprietary values.

use std::fmt;

/// A status word SW1-SW2.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sw(pub u16);

impl Sw {
    /// Normal processing, no further qualification.
    pub const OK: Sw = Sw(0x9000);

    /// From the two trailing bytes of a response.
    pub fn new(sw1: u8, sw2: u8) -> Sw {
        Sw(u16::from_be_bytes([sw1, sw2]))
    }

    /// SW1.
    pub fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// SW2.
    pub fn sw2(self) -> u8 {
        self.0 as u8
    }

    /// 9000: the command completed without warning.
    pub fn is_ok(self) -> bool {
        self == Sw::OK
    }
}

impl fmt::Debug for Sw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sw({:04X})", self.0)
    }
}

impl fmt::Display for Sw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

/// What a non-9000 status word means (ISO/IEC 7816-4:2020 tables 5 and 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardError {
    /// 6282: end of file or record reached before reading Ne bytes.
    EndOfFile,
    /// 6283: selected file deactivated.
    FileDeactivated,
    /// 63Cx: verification failed, `tries_left` further tries allowed.
    WrongPin {
        /// X of 63CX: the retry counter after this failure.
        tries_left: u8,
    },
    /// 6581: memory failure.
    MemoryFailure,
    /// 6700 (or 67xx): wrong length.
    WrongLength,
    /// 6881: logical channel not supported.
    LogicalChannelNotSupported,
    /// 6882: secure messaging not supported.
    SecureMessagingNotSupported,
    /// 6884: command chaining not supported.
    ChainingNotSupported,
    /// 6981: command incompatible with file structure.
    IncompatibleFileStructure,
    /// 6982: security status not satisfied.
    SecurityStatusNotSatisfied,
    /// 6983: authentication method blocked.
    AuthenticationBlocked,
    /// 6984: reference data not usable.
    ReferenceDataNotUsable,
    /// 6985: conditions of use not satisfied.
    ConditionsNotSatisfied,
    /// 6986: command not allowed (no current EF).
    NoCurrentEf,
    /// 6A80: incorrect parameters in the command data field.
    IncorrectData,
    /// 6A81: function not supported.
    FunctionNotSupported,
    /// 6A82: file or application not found.
    FileNotFound,
    /// 6A83: record not found.
    RecordNotFound,
    /// 6A84: not enough memory space in the file.
    NotEnoughMemory,
    /// 6A86 or 6B00: incorrect parameters P1-P2 (6B00 is also "offset
    /// outside the EF").
    IncorrectP1P2,
    /// 6A88: referenced data or reference data not found.
    ReferenceNotFound,
    /// 6D00: instruction code not supported or invalid.
    InsNotSupported,
    /// 6E00: class not supported.
    ClaNotSupported,
    /// 6F00: no precise diagnosis.
    NoPreciseDiagnosis,
    /// Any other status word (kept whole).
    Other(Sw),
}

impl CardError {
    /// Classifies a status word. 9000 has no error; it maps to `Other`.
    pub fn from_sw(sw: Sw) -> CardError {
        match sw.0 {
            0x6282 => CardError::EndOfFile,
            0x6283 => CardError::FileDeactivated,
            0x63C0..=0x63CF => CardError::WrongPin {
                tries_left: sw.sw2() & 0x0F,
            },
            0x6581 => CardError::MemoryFailure,
            0x6700..=0x67FF => CardError::WrongLength,
            0x6881 => CardError::LogicalChannelNotSupported,
            0x6882 => CardError::SecureMessagingNotSupported,
            0x6884 => CardError::ChainingNotSupported,
            0x6981 => CardError::IncompatibleFileStructure,
            0x6982 => CardError::SecurityStatusNotSatisfied,
            0x6983 => CardError::AuthenticationBlocked,
            0x6984 => CardError::ReferenceDataNotUsable,
            0x6985 => CardError::ConditionsNotSatisfied,
            0x6986 => CardError::NoCurrentEf,
            0x6A80 => CardError::IncorrectData,
            0x6A81 => CardError::FunctionNotSupported,
            0x6A82 => CardError::FileNotFound,
            0x6A83 => CardError::RecordNotFound,
            0x6A84 => CardError::NotEnoughMemory,
            0x6A86 | 0x6B00 => CardError::IncorrectP1P2,
            0x6A88 => CardError::ReferenceNotFound,
            0x6D00 => CardError::InsNotSupported,
            0x6E00 => CardError::ClaNotSupported,
            0x6F00 => CardError::NoPreciseDiagnosis,
            _ => CardError::Other(sw),
        }
    }
}

/// Why a channel could not carry an exchange or a management operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelError {
    /// No card in the reader.
    NoCard,
    /// The card was removed since the attachment was made; reconnect.
    CardRemoved,
    /// The card was reset by another user; reconnect.
    CardReset,
    /// The card is present but not powered.
    Unpowered,
    /// The card or the reader did not answer in time, or a lock was not
    /// granted within the timeout.
    Timeout,
    /// The operation was cancelled.
    Cancelled,
    /// The reader is gone or unusable.
    ReaderUnavailable,
    /// The channel or reader cannot do this (for example no pinpad).
    Unsupported(&'static str),
    /// The response did not fit the buffer; `needed` bytes were available.
    BufferTooSmall {
        /// Size the response needs.
        needed: usize,
    },
    /// The channel is detached.
    Detached,
    /// Another attachment holds the card's lock (SCardLock, or a PC/SC
    /// transaction) and did not release it within the wait.
    Locked,
    /// No reader has this name.
    UnknownReader(String),
    /// The name fits several readers; the candidates, as `name (device)`.
    AmbiguousReader(Vec<String>),
    /// Any other failure, described.
    Other(String),
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::NoCard => f.write_str("no card in the reader"),
            ChannelError::CardRemoved => f.write_str("the card was removed"),
            ChannelError::CardReset => f.write_str("the card was reset"),
            ChannelError::Unpowered => f.write_str("the card is not powered"),
            ChannelError::Timeout => f.write_str("timed out"),
            ChannelError::Cancelled => f.write_str("cancelled"),
            ChannelError::ReaderUnavailable => f.write_str("the reader is unavailable"),
            ChannelError::Unsupported(what) => write!(f, "not supported: {what}"),
            ChannelError::BufferTooSmall { needed } => {
                write!(f, "response of {needed} bytes does not fit the buffer")
            }
            ChannelError::Detached => f.write_str("the attachment is closed"),
            ChannelError::Locked => f.write_str("another attachment holds the card's lock"),
            ChannelError::UnknownReader(name) => write!(
                f,
                "no reader matches {name:?} (neither a device name nor part of a listed reader's name)"
            ),
            ChannelError::AmbiguousReader(candidates) => write!(
                f,
                "the name matches several readers; give more of it or a device name: {}",
                candidates.join("; ")
            ),
            ChannelError::Other(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for ChannelError {}

/// The error of every service-layer operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The card answered a status word other than 9000.
    Status {
        /// The classification of `sw`.
        error: CardError,
        /// The status word as received.
        sw: Sw,
    },
    /// The channel failed.
    Channel(ChannelError),
    /// The card's answer is not what the standard allows (shorter than a
    /// status word, a malformed TLV, a 61xx loop that does not end…).
    Malformed(&'static str),
    /// The request cannot be encoded (data too long for the channel and the
    /// card, a record number of 0, an SFI out of range…).
    InvalidRequest(&'static str),
    /// A mutual-authentication callback rejected the card's answer.
    AuthenticationFailed,
}

impl Error {
    /// The error of status word `sw`.
    pub fn status(sw: Sw) -> Error {
        Error::Status {
            error: CardError::from_sw(sw),
            sw,
        }
    }

    /// The classification, when the card answered with a status word.
    pub fn card_error(&self) -> Option<CardError> {
        match self {
            Error::Status { error, .. } => Some(*error),
            _ => None,
        }
    }

    /// The raw status word, when the card answered with one.
    pub fn sw(&self) -> Option<Sw> {
        match self {
            Error::Status { sw, .. } => Some(*sw),
            _ => None,
        }
    }
}

impl From<ChannelError> for Error {
    fn from(e: ChannelError) -> Self {
        Error::Channel(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Status { error, sw } => write!(f, "card answered {sw} ({error:?})"),
            Error::Channel(e) => write!(f, "channel: {e}"),
            Error::Malformed(what) => write!(f, "malformed card answer: {what}"),
            Error::InvalidRequest(what) => write!(f, "invalid request: {what}"),
            Error::AuthenticationFailed => f.write_str("the card failed authentication"),
        }
    }
}

impl std::error::Error for Error {}

/// Result of the service layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
