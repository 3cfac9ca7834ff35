//! USB/IP server: exports any ferroccid [`Transport`](ferroccid::transport::Transport)
//! (the simulated reader, or a real reader with explicit consent) over TCP,
//! as Linux `usbipd` exports a USB device.
//!
//! | module | what |
//! |---|---|
//! | [`device`] | endpoint-0 standard requests answered from `TransportInfo` |
//! | [`server`] | the TCP server: devlist, import and the URB session |
//!
//! The wire format is the driver's (`ferroccid::usbip::wire`), shared with
//! the client transport (`ferroccid::transport::usbip`).
#![warn(unreachable_pub)]

pub mod device;
pub mod server;

pub use device::{ControlAnswer, DeviceModel};
pub use server::{ServerHandle, UsbIpServer};
