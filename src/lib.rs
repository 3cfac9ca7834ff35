//! ferroccid: a userspace USB CCID smart-card reader driver.
//!
//! This crate is the driver only: no simulator, card service layer, pcscd
//! glue or command-line code (those are the `ferroccid-sim`,
//! `ferroccid-card`, `ferroccid-ifd` and `ferroccid-cli` crates, which
//! depend on this one, never the other way round).
//!
//! | module | what |
//! |---|---|
//! | [`ccid`] | CCID wire format: message views and reprs, class descriptor, status codes |
//! | [`device`] | opening a reader by device name (`usb:…`, `usbip:…`, and names other crates register) |
//! | [`transport`] | the transport trait and its backends (usbfs, nusb, rusb, USB/IP client) |
//! | [`reader`] | reader and slot logic: power, parameters, exchange levels, events, quirks |
//! | [`part10`] | PC/SC part 10 constants: feature tags, PIN structures, TLV properties |
//! | [`usbip`] | USB/IP wire format (the client here, the server in `ferroccid-usbip`) |
//!
//! The ISO/IEC 7816-3 engines live in the `ferroccid-protocols` crate,
//! re-exported here as [`protocols`].
#![deny(unsafe_code)]
#![warn(unreachable_pub)]

pub use ferroccid_protocols as protocols;

pub mod ccid;
pub mod device;
pub mod part10;
pub mod reader;
pub mod transport;
pub mod usbip;

/// The README's examples, compiled and run as doctests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
