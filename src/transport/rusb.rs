//! USB through [rusb](https://docs.rs/rusb/0.9) (libusb-1.0).
//!
//! Questions every backend answers, in this order: discovery ([`list`]),
//! open ([`RusbTransport::open`]), transfers and cancellation (the
//! [`Transport`] impl), error mapping (`map_*`).
//!
//! rusb only exposes libusb's blocking transfers, which another thread
//! cannot interrupt. Reads are therefore cut into slices of
//! [`READ_SLICE`] and the [`CancelToken`] is checked between slices:
//! **cancellation latency is up to one slice (50 ms)** plus libusb's own
//! cancel round-trip. libusb hands back whatever arrived when a slice
//! times out, so a long CCID message can straddle two slices; reads keep
//! going while the data so far ends on a packet boundary and is shorter
//! than the CCID header's dwLength says (see [`needs_more`]).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusb::{ConfigDescriptor, Device, DeviceHandle, GlobalContext, UsbContext};

use super::descriptors::{EndpointDescription, InterfaceDescription};
use super::usb::{listed_interfaces, UsbDeviceFacts, UsbTarget};
use super::{CancelToken, CcidEndpoints, DeviceName, Transport, TransportError, TransportInfo};

/// Longest uninterruptible wait inside a read: the cancellation latency.
pub const READ_SLICE: Duration = Duration::from_millis(50);
/// String descriptors are read at open; a reader that does not answer in
/// this time gets no strings rather than a stuck open.
const STRING_TIMEOUT: Duration = Duration::from_millis(500);
/// CCID message header length (CCID rev 1.1 §6.1).
const CCID_HEADER_LEN: usize = 10;
/// bmRequestType: class request to an interface, device to host.
const REQUEST_TYPE_CLASS_INTERFACE_IN: u8 = 0xA1;
/// bmRequestType: class request to an interface, host to device.
const REQUEST_TYPE_CLASS_INTERFACE_OUT: u8 = 0x21;

// ---------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------

/// Every CCID interface of every connected device: class 0x0B, and class
/// 0xFF when it carries a CCID class descriptor.
///
/// A machine without USB has no readers: an empty list, not an error.
/// Strings and the raw configuration descriptor need the device opened;
/// when that is not permitted they are left empty.
pub fn list() -> Result<Vec<TransportInfo>, TransportError> {
    if !usb_subsystem_present() {
        return Ok(Vec::new());
    }
    let devices = rusb::devices().map_err(|e| map_error("listing USB devices", e))?;
    let mut found = Vec::new();
    for device in devices.iter() {
        let Ok(config) = device.active_config_descriptor() else {
            continue;
        };
        let interfaces = interfaces_of(&config);
        let ccid: Vec<&InterfaceDescription> = listed_interfaces(&interfaces).collect();
        if ccid.is_empty() {
            continue;
        }
        let handle = device.open().ok();
        for intf in ccid {
            found.push(describe(&device, handle.as_ref(), intf));
        }
    }
    Ok(found)
}

/// libusb initialises but finds nothing without usbfs; checking first
/// keeps "no USB here" apart from real enumeration failures.
#[cfg(target_os = "linux")]
fn usb_subsystem_present() -> bool {
    std::path::Path::new("/dev/bus/usb").exists()
        || std::path::Path::new("/sys/bus/usb/devices").exists()
}

#[cfg(not(target_os = "linux"))]
fn usb_subsystem_present() -> bool {
    true
}

/// rusb's parsed descriptors reduced to the shared plain form; endpoint
/// extras are appended to the interface extras because some pre-standard
/// readers put the CCID descriptor after their endpoints.
fn interfaces_of(config: &ConfigDescriptor) -> Vec<InterfaceDescription> {
    let mut out = Vec::new();
    for interface in config.interfaces() {
        for alt in interface.descriptors() {
            let mut extra = alt.extra().to_vec();
            let mut endpoints = Vec::new();
            for ep in alt.endpoint_descriptors() {
                endpoints.push(EndpointDescription {
                    address: ep.address(),
                    attributes: transfer_type_bits(ep.transfer_type()),
                    max_packet_size: ep.max_packet_size(),
                });
                if let Some(ep_extra) = ep.extra() {
                    extra.extend_from_slice(ep_extra);
                }
            }
            out.push(InterfaceDescription {
                number: alt.interface_number(),
                alt_setting: alt.setting_number(),
                class: alt.class_code(),
                subclass: alt.sub_class_code(),
                protocol: alt.protocol_code(),
                endpoints,
                extra,
            });
        }
    }
    out
}

/// bmAttributes bits 0-1 (USB 2.0 Table 9-13).
fn transfer_type_bits(t: rusb::TransferType) -> u8 {
    match t {
        rusb::TransferType::Control => 0,
        rusb::TransferType::Isochronous => 1,
        rusb::TransferType::Bulk => 2,
        rusb::TransferType::Interrupt => 3,
    }
}

fn describe<T: UsbContext>(
    device: &Device<T>,
    handle: Option<&DeviceHandle<T>>,
    intf: &InterfaceDescription,
) -> TransportInfo {
    let descriptor = device.device_descriptor().ok();
    let string = |index: Option<u8>| -> Option<String> {
        let (handle, index) = (handle?, index?);
        let language = *handle.read_languages(STRING_TIMEOUT).ok()?.first()?;
        handle
            .read_string_descriptor(language, index, STRING_TIMEOUT)
            .ok()
    };
    let facts = UsbDeviceFacts {
        vendor_id: descriptor.as_ref().map_or(0, |d| d.vendor_id()),
        product_id: descriptor.as_ref().map_or(0, |d| d.product_id()),
        bcd_device: descriptor.as_ref().map_or(0, |d| {
            let v = d.device_version();
            (u16::from(v.major()) << 8) | (u16::from(v.minor()) << 4) | u16::from(v.sub_minor())
        }),
        manufacturer: descriptor
            .as_ref()
            .and_then(|d| string(d.manufacturer_string_index())),
        product: descriptor
            .as_ref()
            .and_then(|d| string(d.product_string_index())),
        serial: descriptor
            .as_ref()
            .and_then(|d| string(d.serial_number_string_index())),
        bus: device.bus_number(),
        address: device.address(),
    };
    let config = handle
        .and_then(|h| raw_configuration(device, h))
        .unwrap_or_default();
    facts.describe(intf.number, intf.class, Some(intf), &config)
}

/// rusb parses descriptors but does not hand out their bytes, so the
/// active configuration is fetched again with GET_DESCRIPTOR.
fn raw_configuration<T: UsbContext>(
    device: &Device<T>,
    handle: &DeviceHandle<T>,
) -> Option<Vec<u8>> {
    let active = device.active_config_descriptor().ok()?;
    let count = device.device_descriptor().ok()?.num_configurations();
    let index = (0..count).find(|&i| {
        device
            .config_descriptor(i)
            .is_ok_and(|c| c.number() == active.number())
    })?;
    let mut raw = vec![0u8; usize::from(active.total_length())];
    let n = handle
        .read_control(
            0x80, // standard request, device recipient, device to host
            0x06, // GET_DESCRIPTOR
            0x0200 | u16::from(index),
            0,
            &mut raw,
            STRING_TIMEOUT,
        )
        .ok()?;
    raw.truncate(n);
    Some(raw)
}

// ---------------------------------------------------------------------------
// Open
// ---------------------------------------------------------------------------

/// A claimed CCID interface reached through libusb.
pub struct RusbTransport {
    info: TransportInfo,
    handle: DeviceHandle<GlobalContext>,
    endpoints: CcidEndpoints,
    /// Serialises readers of the same endpoint; writers need no lock
    /// because libusb transfers on different endpoints are independent.
    bulk_in_lock: Mutex<()>,
    interrupt_in_lock: Mutex<()>,
    detached_kernel_driver: bool,
    cancel: CancelToken,
}

impl std::fmt::Debug for RusbTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RusbTransport")
            .field("name", &self.info.name)
            .finish_non_exhaustive()
    }
}

impl RusbTransport {
    /// Parses `name` and opens it; see [`open`](Self::open).
    pub fn open_str(name: &str) -> Result<Self, TransportError> {
        Self::open(&DeviceName::parse(name)?)
    }

    /// Opens the CCID interface `name` points at and claims it, detaching
    /// a kernel driver (and logging it) only if libusb reports one bound.
    pub fn open(name: &DeviceName) -> Result<Self, TransportError> {
        let target = UsbTarget::from_name(name, "rusb")?;
        if !usb_subsystem_present() {
            return Err(TransportError::NotFound(name.to_string()));
        }
        let devices = rusb::devices().map_err(|e| map_error("listing USB devices", e))?;
        for device in devices.iter() {
            let Ok(descriptor) = device.device_descriptor() else {
                continue;
            };
            if !target.matches(
                descriptor.vendor_id(),
                descriptor.product_id(),
                device.bus_number(),
                device.address(),
            ) {
                continue;
            }
            let config = device
                .active_config_descriptor()
                .map_err(|e| map_error("reading active configuration", e))?;
            let interfaces = interfaces_of(&config);
            let Some((chosen, endpoints)) = target.choose(&interfaces)? else {
                continue;
            };
            let handle = device
                .open()
                .map_err(|e| map_error("opening USB device", e))?;
            let detached = detach_if_bound(&handle, chosen.number)?;
            handle
                .claim_interface(chosen.number)
                .map_err(|e| map_error("claiming CCID interface", e))?;
            let mut info = describe(&device, Some(&handle), chosen);
            info.endpoints = Some(endpoints);
            return Ok(RusbTransport {
                info,
                handle,
                endpoints,
                bulk_in_lock: Mutex::new(()),
                interrupt_in_lock: Mutex::new(()),
                detached_kernel_driver: detached,
                cancel: CancelToken::new(),
            });
        }
        Err(TransportError::NotFound(name.to_string()))
    }
}

/// Detaches a kernel driver only when one is bound; libusb does not count
/// another program's usbfs claim as a kernel driver, so that one stays and
/// the claim fails with `Busy`.
fn detach_if_bound<T: UsbContext>(
    handle: &DeviceHandle<T>,
    interface: u8,
) -> Result<bool, TransportError> {
    match handle.kernel_driver_active(interface) {
        Ok(true) => {
            tracing::info!(interface, "detaching kernel driver from CCID interface");
            handle
                .detach_kernel_driver(interface)
                .map_err(|e| map_error("detaching kernel driver", e))?;
            Ok(true)
        }
        // NotSupported: the platform has no kernel drivers to detach.
        Ok(false) | Err(rusb::Error::NotSupported) => Ok(false),
        Err(e) => Err(map_error("querying kernel driver", e)),
    }
}

impl Drop for RusbTransport {
    fn drop(&mut self) {
        // Best effort: the device may already be gone.
        let _ = self.handle.release_interface(self.info.interface_number);
        if self.detached_kernel_driver {
            let _ = self.handle.attach_kernel_driver(self.info.interface_number);
        }
    }
}

// ---------------------------------------------------------------------------
// Transfers and cancellation
// ---------------------------------------------------------------------------

/// Whether a read that has `received` so far must continue: the data ends
/// on a packet boundary (so no short packet ended the transfer) and is
/// shorter than the CCID header announces (or the header is incomplete).
pub fn needs_more(received: &[u8], max_packet_size: usize, capacity: usize) -> bool {
    let got = received.len();
    if got == 0 || got >= capacity || got % max_packet_size.max(1) != 0 {
        return false;
    }
    if got < CCID_HEADER_LEN {
        return true;
    }
    let announced = u32::from_le_bytes([received[1], received[2], received[3], received[4]]);
    (got as u64) < CCID_HEADER_LEN as u64 + u64::from(announced)
}

/// One sliced read; `read` is libusb's bulk or interrupt read.
fn sliced_read(
    cancel: &CancelToken,
    buf: &mut [u8],
    timeout: Duration,
    max_packet_size: usize,
    mut read: impl FnMut(&mut [u8], Duration) -> rusb::Result<usize>,
) -> Result<usize, TransportError> {
    let deadline = Instant::now().checked_add(timeout);
    let mut got = 0;
    loop {
        if cancel.is_cancelled() {
            return Err(TransportError::Cancelled);
        }
        let left = deadline.map_or(READ_SLICE, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            return if got > 0 {
                Ok(got)
            } else {
                Err(TransportError::Timeout)
            };
        }
        // libusb treats 0 as "forever", so never pass less than 1 ms.
        let slice = left.min(READ_SLICE).max(Duration::from_millis(1));
        match read(&mut buf[got..], slice) {
            Ok(n) => {
                got += n;
                // A zero-length packet ends a transfer that filled whole packets.
                if n == 0 || !needs_more(&buf[..got], max_packet_size, buf.len()) {
                    return Ok(got);
                }
            }
            Err(rusb::Error::Timeout) => {}
            Err(rusb::Error::Overflow) => {
                return Err(TransportError::Overflow {
                    received: buf.len() + 1,
                    capacity: buf.len(),
                })
            }
            Err(e) => return Err(map_transfer_error(e)),
        }
    }
}

fn lock(mutex: &Mutex<()>) -> std::sync::MutexGuard<'_, ()> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Transport for RusbTransport {
    fn info(&self) -> &TransportInfo {
        &self.info
    }

    fn bulk_out(&self, message: &[u8], timeout: Duration) -> Result<(), TransportError> {
        let n = self
            .handle
            .write_bulk(self.endpoints.bulk_out.address, message, timeout)
            .map_err(map_transfer_error)?;
        if n < message.len() {
            // libusb reports a timeout after partial progress as success.
            return Err(TransportError::Timeout);
        }
        Ok(())
    }

    fn bulk_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let _reader = lock(&self.bulk_in_lock);
        let ep = self.endpoints.bulk_in;
        sliced_read(
            &self.cancel,
            buf,
            timeout,
            usize::from(ep.max_packet_size),
            |b, t| self.handle.read_bulk(ep.address, b, t),
        )
    }

    fn interrupt_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let ep = self
            .endpoints
            .interrupt_in
            .ok_or(TransportError::NoInterruptEndpoint)?;
        let _reader = lock(&self.interrupt_in_lock);
        sliced_read(
            &self.cancel,
            buf,
            timeout,
            usize::from(ep.max_packet_size),
            |b, t| self.handle.read_interrupt(ep.address, b, t),
        )
    }

    fn control_in(
        &self,
        request: u8,
        value: u16,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        let len = buf.len().min(usize::from(u16::MAX));
        self.handle
            .read_control(
                REQUEST_TYPE_CLASS_INTERFACE_IN,
                request,
                value,
                u16::from(self.info.interface_number),
                &mut buf[..len],
                timeout,
            )
            .map_err(map_transfer_error)
    }

    fn control_out(
        &self,
        request: u8,
        value: u16,
        data: &[u8],
        timeout: Duration,
    ) -> Result<(), TransportError> {
        self.handle
            .write_control(
                REQUEST_TYPE_CLASS_INTERFACE_OUT,
                request,
                value,
                u16::from(self.info.interface_number),
                data,
                timeout,
            )
            .map(|_| ())
            .map_err(map_transfer_error)
    }

    fn cancel(&self) {
        self.cancel.cancel();
    }

    fn reset_cancel(&self) {
        self.cancel.reset();
    }
}

// ---------------------------------------------------------------------------
// Error mapping
// ---------------------------------------------------------------------------

/// Maps a libusb transfer error (LIBUSB_ERROR_NO_DEVICE is `DeviceGone`,
/// LIBUSB_ERROR_PIPE is `Stall`).
pub fn map_transfer_error(e: rusb::Error) -> TransportError {
    match e {
        rusb::Error::NoDevice => TransportError::DeviceGone,
        rusb::Error::Timeout => TransportError::Timeout,
        rusb::Error::Pipe => TransportError::Stall,
        e => map_error("USB transfer", e),
    }
}

/// Maps a libusb error from enumeration, open or claim.
pub fn map_error(context: &'static str, e: rusb::Error) -> TransportError {
    use std::io::ErrorKind;
    match e {
        rusb::Error::NoDevice => TransportError::DeviceGone,
        rusb::Error::Timeout => TransportError::Timeout,
        rusb::Error::Pipe => TransportError::Stall,
        rusb::Error::Busy => TransportError::Busy(format!("{context}: {e}")),
        rusb::Error::Access => {
            TransportError::io(context, std::io::Error::new(ErrorKind::PermissionDenied, e))
        }
        rusb::Error::NotFound => {
            TransportError::io(context, std::io::Error::new(ErrorKind::NotFound, e))
        }
        e => TransportError::io(context, std::io::Error::other(e)),
    }
}
