//! The one error type every transport answers with.

use std::fmt;
use std::io;

use super::name::NameError;

/// Why a transport operation failed.
///
/// The variants the reader logic reacts to differently are kept apart:
/// `Timeout` (retry or give up per protocol timing), `Stall` (clear halt,
/// or "request not supported" on the control pipe), `Cancelled` (someone
/// asked), `DeviceGone` (stop using this reader for good).
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportError {
    /// The transfer did not complete within its timeout.
    Timeout,
    /// The endpoint (or the control request) answered STALL.
    Stall,
    /// [`Transport::cancel`](super::Transport::cancel) was called.
    Cancelled,
    /// The device was unplugged (ENODEV, LIBUSB_ERROR_NO_DEVICE).
    DeviceGone,
    /// The device sent more than the caller's buffer holds.
    Overflow {
        /// Bytes the device sent.
        received: usize,
        /// Bytes the caller's buffer holds.
        capacity: usize,
    },
    /// The reader has no interrupt-IN endpoint (it is optional in CCID).
    NoInterruptEndpoint,
    /// The device name could not be parsed.
    BadName(NameError),
    /// No connected device matches the name.
    NotFound(String),
    /// The name points at an interface that is not CCID (for example the
    /// keyboard half of a composite device).
    NotCcidInterface {
        /// The interface the name pointed at.
        interface: u8,
        /// Its bInterfaceClass.
        class: u8,
    },
    /// The interface lacks the bulk-IN/bulk-OUT pair CCID requires.
    MissingEndpoint(&'static str),
    /// The interface is held by another program (for example pcscd).
    Busy(String),
    /// This backend cannot open that kind of name (for example `sim`).
    Unsupported(String),
    /// Any other I/O failure, with what was being done.
    Io {
        /// What the transport was doing.
        context: &'static str,
        /// The underlying error.
        source: io::Error,
    },
}

impl TransportError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: &'static str, source: impl Into<io::Error>) -> Self {
        TransportError::Io {
            context,
            source: source.into(),
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Timeout => write!(f, "transfer timed out"),
            TransportError::Stall => write!(f, "endpoint stalled"),
            TransportError::Cancelled => write!(f, "transfer cancelled"),
            TransportError::DeviceGone => write!(f, "device disconnected"),
            TransportError::Overflow { received, capacity } => write!(
                f,
                "device sent {received} bytes into a {capacity}-byte buffer"
            ),
            TransportError::NoInterruptEndpoint => {
                write!(f, "reader has no interrupt-IN endpoint")
            }
            TransportError::BadName(e) => write!(f, "bad device name: {e}"),
            TransportError::NotFound(name) => write!(f, "no device matches {name:?}"),
            TransportError::NotCcidInterface { interface, class } => write!(
                f,
                "interface {interface} (class 0x{class:02X}) is not a CCID interface"
            ),
            TransportError::MissingEndpoint(which) => {
                write!(f, "CCID interface has no {which} endpoint")
            }
            TransportError::Busy(what) => write!(f, "interface busy: {what}"),
            TransportError::Unsupported(what) => write!(f, "unsupported: {what}"),
            TransportError::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TransportError::BadName(e) => Some(e),
            TransportError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<NameError> for TransportError {
    fn from(e: NameError) -> Self {
        TransportError::BadName(e)
    }
}
