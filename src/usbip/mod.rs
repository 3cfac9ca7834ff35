//! USB/IP's wire format, shared by the client transport
//! ([`UsbIpTransport`](crate::transport::usbip::UsbIpTransport)) and the
//! server in the `ferroccid-usbip` crate.
//!
//! | module | what |
//! |---|---|
//! | [`wire`] | the protocol's messages as checked views and reprs (no I/O) |

pub mod wire;
