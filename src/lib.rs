//! ferroccid: a userspace USB CCID smart-card reader driver.
//!
//! This crate is the driver only: no simulator, card service layer, pcscd
//! glue or command-line code (those are the `ferroccid-sim`,
//! `ferroccid-card`, `ferroccid-ifd` and `ferroccid-cli` crates, which
//! depend on this one, never the other way round).
//!
//! | module | what |
//! |---|---|
//! The surface, in one sitting:
//!
//! | where | what |
//! |---|---|
//! | [`open`], [`open_name`], [`register_resolver`] | a reader by device name (`usb:…`, `usbip:…`, and schemes other crates register) |
//! | [`Reader`], [`Slot`], [`ReaderOptions`], [`ReaderError`] | reader and slot logic: power, parameters, the exchange levels, PIN pad, events |
//! | [`Transport`], [`Tap`], [`CancelToken`] | what a reader runs over; [`backend`] holds the USB backends, [`usbip`] the USB/IP client |
//! | [`ccid`] | CCID wire format: message views and reprs, class descriptor, status codes |
//! | [`descriptors`] | USB descriptors: finding the CCID interface and its endpoints |
//! | [`part10`] | PC/SC part 10 constants: feature tags, PIN structures, TLV properties |
//! | [`usbip`] | USB/IP wire format and the client transport (the server is `ferroccid-usbip`) |
//!
//! The ISO/IEC 7816-3 engines live in the `ferroccid-protocols` crate,
//! re-exported here as [`protocols`].
#![deny(unsafe_code)]
#![warn(unreachable_pub)]

pub use ferroccid_protocols as protocols;

// Namespaces of wire formats and constants, public as modules: each is a
// standard's vocabulary (CCID Rev 1.1, PC/SC part 10, USB/IP, USB
// descriptors) that the simulator, the USB/IP server and the bundle speak too.
pub mod ccid;
pub mod part10;
pub mod usbip;
pub use transport::descriptors;

// The driver proper: private modules, its surface re-exported below.
mod device;
mod reader;
mod transport;

/// Opening a reader by name: `usb:…`, `usbip:…`, and the schemes other
/// crates register (the simulator's `sim`).
pub use device::{
    can_open, list_usb, open, open_name, open_with, register_resolver, OpenedDevice, Resolver,
    UsbBackend,
};
/// Readers and slots: the commands, their options, errors and events.
pub use reader::{
    parse_command_time, ErrorKind, ProtocolPreference, Reader, ReaderError, ReaderEvent,
    ReaderOptions, Slot, SlotOptions, SlotStatus, SlotWait, COMMAND_TIMEOUT_ENV,
    DEFAULT_MAX_COMMAND_TIME, MAX_COMMAND_TIME_LIMIT,
};
/// The transport a reader runs over, and what every backend shares.
pub use transport::{
    CancelToken, CcidEndpoints, DeviceName, EndpointInfo, NameError, Tap, TapHooks, Transport,
    TransportError, TransportInfo, UsbLocation, WaitOutcome, MAX_NAME_LEN, MAX_SPEC_LEN,
    REQUEST_ABORT, REQUEST_GET_CLOCK_FREQUENCIES, REQUEST_GET_DATA_RATES,
};

/// The USB backends, one module each: a `Transport` and `list()`.
pub mod backend {
    #[cfg(feature = "nusb")]
    pub use crate::transport::nusb;
    #[cfg(feature = "rusb")]
    pub use crate::transport::rusb;
    #[cfg(all(feature = "usbfs", target_os = "linux"))]
    pub use crate::transport::usbfs;
}

/// Harnesses for other crates' tests (feature `testing`): a transport that
/// plays a script, and the conformance suite every transport must pass.
#[cfg(feature = "testing")]
pub mod testing {
    pub use crate::transport::conformance::*;
    pub use crate::transport::scripted::*;
}

/// The README's examples, compiled and run as doctests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
