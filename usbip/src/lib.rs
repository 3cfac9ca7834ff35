//! USB/IP server: exports any ferroccid [`Transport`](ferroccid::Transport)
//! (the simulated reader, or a real reader with explicit consent) over TCP,
//! as Linux `usbipd` exports a USB device.
//!
//! | module | what |
//! |---|---|
//! | `device` | endpoint-0 standard requests answered from `TransportInfo` |
//! | `server` | the TCP server: devlist, import and the URB session |
//!
//! The wire format is the driver's (`ferroccid::usbip::wire`), shared with
//! the client transport (`ferroccid::usbip`).
#![warn(unreachable_pub)]

mod device;
mod server;

pub use device::{string_descriptor, ControlAnswer, DeviceModel};
pub use server::{
    run_session, ServerHandle, UsbIpServer, DEFAULT_REPLY_TIMEOUT, MAX_BUFFERED_BYTES,
    MAX_OUTSTANDING_URBS, MAX_TRANSFER,
};
