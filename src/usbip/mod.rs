//! USB/IP: the wire format, shared with the server in the
//! `ferroccid-usbip` crate, and the client transport ([`UsbIpTransport`]:
//! a userspace client, no kernel module, no root).
//!
//! | module | what |
//! |---|---|
//! | [`wire`] | the protocol's messages as checked views and reprs (no I/O) |

pub mod wire;

pub use crate::transport::usbip::{
    list_devices, UsbIpTransport, MAX_CONSECUTIVE_JUNK, MAX_PENDING,
};
