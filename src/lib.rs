//! ferroccid: a userspace USB CCID smart-card reader driver.
//!
//! | module | what |
//! |---|---|
//! | [`ccid`] | CCID wire format: message views and reprs, class descriptor, status codes |
//! | [`device`] | opening a reader by device name (`sim`, `usb:…`, `usbip:…`) |
//! | [`transport`] | the transport trait and its backends (USB, USB/IP, in-process simulator) |
//! | [`reader`] | reader and slot logic: power, parameters, exchange levels, events, quirks |
//! | [`sim`] | the simulated reader and virtual card (independent of `protocols/`) |
//! | [`card`] | ISO/IEC 7816-4 service layer |
//! | [`ifd`] | pcsc-lite IFD handler (the cdylib's C ABI) |
//! | [`part10`] | PC/SC part 10 constants: feature tags, PIN structures, TLV properties |
//! | [`usbip`] | USB/IP wire format and a server exporting any transport |
//! | [`trace`] | CCID messages out of usbmon captures (pcap, pcapng) and libccid logs |
//!
//! The ISO/IEC 7816-3 engines live in the `ferroccid-protocols` crate,
//! re-exported here as [`protocols`].
#![deny(unsafe_code)]

pub use ferroccid_protocols as protocols;

pub mod card;
pub mod ccid;
pub mod device;
#[allow(unsafe_code)]
pub mod ifd;
pub mod part10;
pub mod reader;
pub mod sim;
pub mod trace;
pub mod transport;
pub mod usbip;

/// The README's examples, compiled and run as doctests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
