//! USB through [nusb](https://docs.rs/nusb/0.2): pure Rust, usbfs on Linux.
//!
//! Questions every backend answers, in this order: discovery ([`list`]),
//! open ([`NusbTransport::open`]), transfers and cancellation (the
//! [`Transport`] impl), error mapping (`map_*`).
//!
//! Reads submit one transfer and park the calling thread on the
//! [`CancelToken`]; the transfer's completion or a `cancel()` from another
//! thread unparks it, so cancellation latency is the scheduler's, not a
//! polling interval. One reusable transfer buffer per endpoint is kept
//! (zero-copy mmap'd on Linux), so steady-state transfers do not allocate.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nusb::transfer::{
    Buffer, Bulk, BulkOrInterrupt, Completion, ControlIn, ControlOut, ControlType, In, Interrupt,
    Out, Recipient, TransferError,
};
use nusb::{Endpoint, Interface, MaybeFuture};

use super::cancel::WaitOutcome;
use super::descriptors::CLASS_CCID;
use super::usb::{device_readers, parse_for_open, ClaimPlan, UsbDeviceFacts, UsbTarget};
use super::{
    round_up_to_packets, CancelToken, CcidEndpoints, DeviceName, Transport, TransportError,
    TransportInfo,
};

// ---------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------

/// Every CCID interface of every connected device: class 0x0B, and class
/// 0xFF when it carries a CCID class descriptor.
///
/// A machine without USB (no `/sys/bus/usb` in a container) has no
/// readers: that is an empty list, not an error. Devices whose
/// descriptors cannot be read are listed from their interface classes
/// alone (endpoints and class descriptor `None`).
pub fn list() -> Result<Vec<TransportInfo>, TransportError> {
    if !usb_subsystem_present() {
        return Ok(Vec::new());
    }
    let devices = nusb::list_devices()
        .wait()
        .map_err(|e| map_error("listing USB devices", e))?;
    let mut found = Vec::new();
    for device in devices {
        let config = read_configuration(&device);
        found.extend(device_readers(&facts(&device), config.as_deref(), || {
            device
                .interfaces()
                .filter(|i| i.class() == CLASS_CCID)
                .map(|i| i.interface_number())
                .collect()
        }));
    }
    Ok(found)
}

#[cfg(target_os = "linux")]
fn usb_subsystem_present() -> bool {
    std::path::Path::new(super::usb::sysfs::DEVICES).exists()
}

#[cfg(not(target_os = "linux"))]
fn usb_subsystem_present() -> bool {
    true
}

/// The active configuration descriptor without opening the device where
/// possible: Linux exposes it in sysfs to every user, while opening the
/// usbfs node needs write permission.
fn read_configuration(device: &nusb::DeviceInfo) -> Option<Vec<u8>> {
    #[cfg(target_os = "linux")]
    if let Some((_, raw)) = super::usb::sysfs::active_configuration(device.sysfs_path()) {
        return Some(raw);
    }
    let opened = device.open().wait().ok()?;
    let config = opened.active_configuration().ok()?;
    Some(config.as_bytes().to_vec())
}

fn facts(device: &nusb::DeviceInfo) -> UsbDeviceFacts {
    UsbDeviceFacts {
        vendor_id: device.vendor_id(),
        product_id: device.product_id(),
        bcd_device: device.device_version(),
        bus: bus_number(device),
        address: device.device_address(),
        manufacturer: device.manufacturer_string().map(str::to_owned),
        product: device.product_string().map(str::to_owned),
        serial: device.serial_number().map(str::to_owned),
    }
}

#[cfg(target_os = "linux")]
fn bus_number(device: &nusb::DeviceInfo) -> u8 {
    device.busnum()
}

/// Outside Linux nusb names buses by strings; pcscd's numeric form then
/// only round-trips through this backend if the id happens to be numeric.
#[cfg(not(target_os = "linux"))]
fn bus_number(device: &nusb::DeviceInfo) -> u8 {
    device.bus_id().parse().unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Open
// ---------------------------------------------------------------------------

/// One endpoint plus its reusable transfer buffer.
struct Pipe<EpType: BulkOrInterrupt, Dir: nusb::transfer::EndpointDirection> {
    endpoint: Endpoint<EpType, Dir>,
    buffer: Option<Buffer>,
}

/// A claimed CCID interface reached through nusb.
pub struct NusbTransport {
    info: TransportInfo,
    interface: Interface,
    bulk_out: Mutex<Pipe<Bulk, Out>>,
    bulk_in: Mutex<Pipe<Bulk, In>>,
    interrupt_in: Option<Mutex<Pipe<Interrupt, In>>>,
    cancel: CancelToken,
}

impl std::fmt::Debug for NusbTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NusbTransport")
            .field("name", &self.info.name)
            .finish_non_exhaustive()
    }
}

impl NusbTransport {
    /// Parses `name` and opens it; see [`open`](Self::open).
    pub fn open_str(name: &str) -> Result<Self, TransportError> {
        Self::open(&DeviceName::parse(name)?)
    }

    /// Opens the CCID interface `name` points at and claims it.
    ///
    /// A kernel driver bound to the interface is detached (and logged); an
    /// interface held by another usbfs user (pcscd, another ferroccid) is
    /// [`TransportError::Busy`] and is left alone.
    pub fn open(name: &DeviceName) -> Result<Self, TransportError> {
        let target = UsbTarget::from_name(name, "nusb")?;
        if !usb_subsystem_present() {
            return Err(TransportError::NotFound(name.to_string()));
        }
        let candidates = nusb::list_devices()
            .wait()
            .map_err(|e| map_error("listing USB devices", e))?
            .filter(|d| {
                target.matches(
                    d.vendor_id(),
                    d.product_id(),
                    bus_number(d),
                    d.device_address(),
                )
            });
        for candidate in candidates {
            let device = candidate
                .open()
                .wait()
                .map_err(|e| map_error("opening USB device", e))?;
            let config = device
                .active_configuration()
                .map_err(|e| TransportError::io("reading active configuration", e))?;
            let config_raw = config.as_bytes().to_vec();
            let config_value = config.configuration_value();
            let interfaces = parse_for_open(&config_raw)?;
            let Some((chosen, endpoints)) = target.choose(&interfaces)? else {
                continue;
            };
            let interface = claim(&device, &candidate, config_value, chosen.number)?;
            let mut info =
                facts(&candidate).describe(chosen.number, chosen.class, Some(chosen), &config_raw);
            info.endpoints = Some(endpoints);
            return Self::from_claimed(info, interface, endpoints);
        }
        Err(TransportError::NotFound(name.to_string()))
    }

    fn from_claimed(
        info: TransportInfo,
        interface: Interface,
        endpoints: CcidEndpoints,
    ) -> Result<Self, TransportError> {
        let bulk_out = interface
            .endpoint::<Bulk, Out>(endpoints.bulk_out.address)
            .map_err(|e| map_error("opening bulk-OUT endpoint", e))?;
        let bulk_in = interface
            .endpoint::<Bulk, In>(endpoints.bulk_in.address)
            .map_err(|e| map_error("opening bulk-IN endpoint", e))?;
        let interrupt_in = match endpoints.interrupt_in {
            Some(ep) => Some(Mutex::new(Pipe {
                endpoint: interface
                    .endpoint::<Interrupt, In>(ep.address)
                    .map_err(|e| map_error("opening interrupt-IN endpoint", e))?,
                buffer: None,
            })),
            None => None,
        };
        Ok(NusbTransport {
            info,
            interface,
            bulk_out: Mutex::new(Pipe {
                endpoint: bulk_out,
                buffer: None,
            }),
            bulk_in: Mutex::new(Pipe {
                endpoint: bulk_in,
                buffer: None,
            }),
            interrupt_in,
            cancel: CancelToken::new(),
        })
    }
}

fn claim(
    device: &nusb::Device,
    info: &nusb::DeviceInfo,
    config_value: u8,
    number: u8,
) -> Result<Interface, TransportError> {
    let claimed =
        match ClaimPlan::for_bound_driver(bound_driver(info, config_value, number), number)? {
            ClaimPlan::DetachAndClaim => device.detach_and_claim_interface(number).wait(),
            ClaimPlan::Claim => device.claim_interface(number).wait(),
        };
    claimed.map_err(|e| map_error("claiming CCID interface", e))
}

/// The driver bound to the interface, read from sysfs (`usbfs` means a
/// userspace program holds it).
#[cfg(target_os = "linux")]
fn bound_driver(info: &nusb::DeviceInfo, config_value: u8, number: u8) -> Option<String> {
    super::usb::sysfs::bound_driver(info.sysfs_path(), config_value, number)
}

#[cfg(not(target_os = "linux"))]
fn bound_driver(_: &nusb::DeviceInfo, _: u8, _: u8) -> Option<String> {
    None
}

// ---------------------------------------------------------------------------
// Transfers and cancellation
// ---------------------------------------------------------------------------

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic mid-transfer leaves the pipe usable: the next transfer
    // starts from a fresh submit.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Submits one IN transfer of at least `buf.len()` bytes and waits for it,
/// the deadline, or cancellation.
fn read_pipe<EpType: BulkOrInterrupt>(
    pipe: &mut Pipe<EpType, In>,
    cancel: &CancelToken,
    buf: &mut [u8],
    timeout: Duration,
) -> Result<usize, TransportError> {
    if cancel.is_cancelled() {
        return Err(TransportError::Cancelled);
    }
    let requested = round_up_to_packets(buf.len(), pipe.endpoint.max_packet_size());
    let mut transfer = match pipe.buffer.take() {
        Some(b) if b.capacity() >= requested => b,
        _ => pipe.endpoint.allocate(requested),
    };
    transfer.clear();
    transfer.set_requested_len(requested);
    pipe.endpoint.submit(transfer);
    let endpoint = &mut pipe.endpoint;
    let (completion, interrupted_by) =
        match cancel.wait_for(timeout, |cx| endpoint.poll_next_complete(cx)) {
            WaitOutcome::Ready(c) => (c, None),
            WaitOutcome::Cancelled => (reap(endpoint), Some(TransportError::Cancelled)),
            WaitOutcome::TimedOut => (reap(endpoint), Some(TransportError::Timeout)),
        };
    let Completion {
        buffer,
        actual_len,
        status,
    } = completion;
    let result = match (status, interrupted_by) {
        // Data that made it before the cancel is delivered, not dropped.
        (Ok(()), _) if actual_len > buf.len() => Err(TransportError::Overflow {
            received: actual_len,
            capacity: buf.len(),
        }),
        (Ok(()), _) => {
            buf[..actual_len].copy_from_slice(&buffer[..actual_len]);
            Ok(actual_len)
        }
        (Err(TransferError::Cancelled), Some(why)) => Err(why),
        (Err(e), _) => Err(map_transfer_error(e)),
    };
    pipe.buffer = Some(buffer);
    result
}

/// Cancels the pending transfer and waits for it to come back, which the
/// kernel guarantees promptly after the URB is discarded.
fn reap<EpType: BulkOrInterrupt>(endpoint: &mut Endpoint<EpType, In>) -> Completion {
    endpoint.cancel_all();
    loop {
        if let Some(c) = endpoint.wait_next_complete(Duration::from_secs(1)) {
            return c;
        }
        tracing::warn!("cancelled USB transfer has not returned after 1 s");
    }
}

impl Transport for NusbTransport {
    fn info(&self) -> &TransportInfo {
        &self.info
    }

    fn bulk_out(&self, message: &[u8], timeout: Duration) -> Result<(), TransportError> {
        let mut pipe = lock(&self.bulk_out);
        let mut transfer = match pipe.buffer.take() {
            Some(b) if b.capacity() >= message.len() => b,
            _ => pipe.endpoint.allocate(message.len()),
        };
        transfer.clear();
        transfer.extend_from_slice(message);
        let Completion { buffer, status, .. } = pipe.endpoint.transfer_blocking(transfer, timeout);
        pipe.buffer = Some(buffer);
        status.map_err(|e| match e {
            // transfer_blocking cancels on timeout; nothing else cancels writes.
            TransferError::Cancelled => TransportError::Timeout,
            e => map_transfer_error(e),
        })
    }

    fn bulk_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        read_pipe(&mut lock(&self.bulk_in), &self.cancel, buf, timeout)
    }

    fn interrupt_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let pipe = self
            .interrupt_in
            .as_ref()
            .ok_or(TransportError::NoInterruptEndpoint)?;
        read_pipe(&mut lock(pipe), &self.cancel, buf, timeout)
    }

    fn control_in(
        &self,
        request: u8,
        value: u16,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        let setup = ControlIn {
            control_type: ControlType::Class,
            recipient: Recipient::Interface,
            request,
            value,
            index: u16::from(self.info.interface_number),
            length: u16::try_from(buf.len()).unwrap_or(u16::MAX),
        };
        let data = self
            .interface
            .control_in(setup, timeout)
            .wait()
            .map_err(map_control_error)?;
        if data.len() > buf.len() {
            return Err(TransportError::Overflow {
                received: data.len(),
                capacity: buf.len(),
            });
        }
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }

    fn control_out(
        &self,
        request: u8,
        value: u16,
        data: &[u8],
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let setup = ControlOut {
            control_type: ControlType::Class,
            recipient: Recipient::Interface,
            request,
            value,
            index: u16::from(self.info.interface_number),
            data,
        };
        self.interface
            .control_out(setup, timeout)
            .wait()
            .map_err(map_control_error)
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

/// Maps a transfer's failure; `Cancelled` only reaches here when nobody in
/// this backend cancelled it (the OS did), which callers see as a timeout.
pub fn map_transfer_error(e: TransferError) -> TransportError {
    match e {
        TransferError::Stall => TransportError::Stall,
        TransferError::Disconnected => TransportError::DeviceGone,
        TransferError::Cancelled => TransportError::Timeout,
        e @ (TransferError::Fault | TransferError::InvalidArgument | TransferError::Unknown(_)) => {
            TransportError::io("USB transfer", e)
        }
    }
}

/// nusb reports a control transfer's timeout as `Cancelled`.
fn map_control_error(e: TransferError) -> TransportError {
    map_transfer_error(e)
}

/// Maps nusb's non-transfer errors, keeping "unplugged" and "busy" apart.
pub fn map_error(context: &'static str, e: nusb::Error) -> TransportError {
    match e.kind() {
        nusb::ErrorKind::Disconnected => TransportError::DeviceGone,
        nusb::ErrorKind::Busy => TransportError::Busy(format!("{context}: {e}")),
        _ => TransportError::io(context, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_errors_keep_gone_stall_and_timeout_apart() {
        assert!(matches!(
            map_transfer_error(TransferError::Disconnected),
            TransportError::DeviceGone
        ));
        assert!(matches!(
            map_transfer_error(TransferError::Stall),
            TransportError::Stall
        ));
        assert!(matches!(
            map_transfer_error(TransferError::Cancelled),
            TransportError::Timeout
        ));
        assert!(matches!(
            map_transfer_error(TransferError::Fault),
            TransportError::Io { .. }
        ));
    }
}
