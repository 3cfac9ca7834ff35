//! USB/IP: exporting a transport over TCP, as Linux `usbipd` exports a
//! USB device.
//!
//! | module | what |
//! |---|---|
//! | [`wire`] | the protocol's messages as checked views and reprs (no I/O) |
//! | [`device`] | endpoint-0 standard requests answered from `TransportInfo` |
//! | [`server`] | the TCP server: devlist, import and the URB session |
//!
//! The client side, importing a device as a [`Transport`](crate::transport::Transport),
//! is `transport::usbip`.

pub mod device;
pub mod server;
pub mod wire;

pub use device::{ControlAnswer, DeviceModel};
pub use server::{ServerHandle, UsbIpServer};
