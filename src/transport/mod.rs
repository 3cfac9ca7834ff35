//! Transports: message pipes to one CCID interface.
//!
//! A [`Transport`] moves whole CCID messages over the interface's bulk-OUT,
//! bulk-IN and interrupt-IN endpoints and sends the CCID class requests on
//! the control pipe. It knows nothing about CCID message contents: framing,
//! sequence numbers and retries belong to `reader`.
//!
//! One module per backend, each answering the same questions in the same
//! order (naming, discovery, open, transfers, cancellation, errors):
//!
//! | module | backend |
//! |---|---|
//! | [`nusb`](self::nusb) | pure-Rust USB (feature `nusb`, default) |
//! | [`rusb`](self::rusb) | libusb-1.0 (feature `rusb`) |
//! | `usbfs` | Linux usbfs ioctls, transfers complete in the calling thread (feature `usbfs`, Linux) |
//! | [`usbip`](self::usbip) | userspace USB/IP client over TCP |
//!
//! Other device kinds (the simulator's `sim` names) plug in from outside
//! through [`crate::device::register_resolver`]: this module knows nothing
//! of them.
//!
//! Shared pieces: [`name`] parses pcscd device names, [`descriptors`] finds
//! CCID interfaces and their endpoints in raw USB descriptors, `usb` is
//! what the host-USB backends do alike (target matching, interface choice,
//! `TransportInfo`, sysfs), [`cancel`]
//! is the cancellation primitive every backend uses. With the `testing`
//! feature, `conformance` is the test-suite any transport connected to a
//! CCID device must pass and `scripted` a transport that plays a script.

pub(crate) mod cancel;
#[cfg(any(test, feature = "testing"))]
pub(crate) mod conformance;
pub mod descriptors;
mod error;
pub(crate) mod name;
#[cfg(feature = "nusb")]
pub mod nusb;
#[cfg(feature = "rusb")]
pub mod rusb;
#[cfg(any(test, feature = "testing"))]
pub(crate) mod scripted;
pub(crate) mod tap;
#[cfg(any(
    feature = "nusb",
    feature = "rusb",
    all(feature = "usbfs", target_os = "linux")
))]
mod usb;
#[cfg(all(feature = "usbfs", target_os = "linux"))]
#[allow(unsafe_code)]
pub mod usbfs;
pub(crate) mod usbip;

use std::time::Duration;

pub use cancel::{CancelToken, WaitOutcome};
pub use descriptors::{CcidEndpoints, EndpointInfo};
pub use error::TransportError;
pub use name::{DeviceName, NameError, UsbLocation, MAX_NAME_LEN, MAX_SPEC_LEN};
pub use tap::{Tap, TapHooks};

/// CCID class request ABORT (CCID rev 1.1 §5.3.1), host to interface.
pub const REQUEST_ABORT: u8 = 0x01;
/// CCID class request GET_CLOCK_FREQUENCIES (§5.3.2): array of u32 kHz.
pub const REQUEST_GET_CLOCK_FREQUENCIES: u8 = 0x02;
/// CCID class request GET_DATA_RATES (§5.3.3): array of u32 bit/s.
pub const REQUEST_GET_DATA_RATES: u8 = 0x03;

/// A message pipe to one CCID interface.
///
/// Every method takes `&self` so that a receiver thread can block in
/// [`bulk_in`](Transport::bulk_in) while another thread sends with
/// [`bulk_out`](Transport::bulk_out); implementations serialise per
/// endpoint internally.
pub trait Transport: Send + Sync {
    /// Describes the device and interface this transport is connected to.
    fn info(&self) -> &TransportInfo;

    /// Sends one whole CCID message on bulk-OUT.
    fn bulk_out(&self, message: &[u8], timeout: Duration) -> Result<(), TransportError>;

    /// Receives one transfer from bulk-IN into `buf`, returning its length.
    ///
    /// The caller owns the buffer so that a reader keeps one allocation for
    /// its whole life. A transfer longer than `buf` is
    /// [`TransportError::Overflow`]. Returns [`TransportError::Cancelled`]
    /// promptly once [`cancel`](Transport::cancel) has been called.
    fn bulk_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError>;

    /// Receives one interrupt-IN notification (RDR_to_PC_NotifySlotChange or
    /// RDR_to_PC_HardwareError) into `buf`, returning its length.
    ///
    /// Readers without an interrupt endpoint answer
    /// [`TransportError::NoInterruptEndpoint`]. Cancellable like `bulk_in`.
    fn interrupt_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError>;

    /// Sends a CCID class request with a data stage from the device
    /// (bmRequestType 0xA1, wIndex = interface number) and returns the
    /// number of bytes written into `buf`.
    fn control_in(
        &self,
        request: u8,
        value: u16,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransportError>;

    /// Sends a CCID class request with an optional data stage to the device
    /// (bmRequestType 0x21, wIndex = interface number).
    fn control_out(
        &self,
        request: u8,
        value: u16,
        data: &[u8],
        timeout: Duration,
    ) -> Result<(), TransportError>;

    /// Makes every pending and future `bulk_in`/`interrupt_in` return
    /// [`TransportError::Cancelled`] until [`reset_cancel`](Transport::reset_cancel).
    ///
    /// Sticky on purpose: a cancel issued just before the receiver thread
    /// enters its read is not lost.
    fn cancel(&self);

    /// Re-arms reads after [`cancel`](Transport::cancel).
    fn reset_cancel(&self);
}

/// What a transport is connected to: enough to name the reader, pick its
/// quirks and parse its CCID class descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransportInfo {
    /// The name this interface answers to (pcscd form for USB).
    pub name: String,
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// bcdDevice: the firmware release, which some quirks depend on.
    pub bcd_device: u16,
    /// iManufacturer string, if the device has one and it could be read.
    pub manufacturer: Option<String>,
    /// iProduct string.
    pub product: Option<String>,
    /// iSerialNumber string.
    pub serial: Option<String>,
    /// USB bus number (0 where the backend has no bus).
    pub bus: u8,
    /// USB device address on that bus (0 where the backend has none).
    pub address: u8,
    /// bInterfaceNumber of the CCID interface.
    pub interface_number: u8,
    /// bInterfaceClass: 0x0B, or 0xFF for pre-standard readers.
    pub interface_class: u8,
    /// The interface's endpoints; `None` in discovery results when the
    /// descriptors could not be read without opening the device.
    pub endpoints: Option<CcidEndpoints>,
    /// The raw 54-byte CCID class descriptor (type 0x21, or 0xFF on
    /// pre-standard readers), if found.
    pub class_descriptor: Option<Vec<u8>>,
    /// The raw active configuration descriptor (all of wTotalLength), if
    /// the backend could read it; empty otherwise.
    pub configuration_descriptor: Vec<u8>,
}

/// Rounds a requested IN length up to a whole number of packets, as USB
/// host controllers require; a zero-length request still asks for one
/// packet.
#[cfg_attr(not(any(feature = "nusb", feature = "usbfs")), allow(dead_code))]
pub(crate) fn round_up_to_packets(len: usize, max_packet_size: usize) -> usize {
    let mps = max_packet_size.max(1);
    len.max(1).div_ceil(mps) * mps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_lengths_round_up_to_whole_packets() {
        assert_eq!(round_up_to_packets(10, 64), 64);
        assert_eq!(round_up_to_packets(64, 64), 64);
        assert_eq!(round_up_to_packets(65, 64), 128);
        assert_eq!(round_up_to_packets(0, 64), 64);
        // 65536-byte data block plus the 10-byte CCID header, full-speed bulk.
        assert_eq!(round_up_to_packets(65546, 64), 65600);
    }

    #[test]
    fn transport_is_object_safe_and_shareable() {
        fn assert_send_sync<T: Send + Sync + ?Sized>() {}
        assert_send_sync::<dyn Transport>();
    }
}
