//! Discovery and opening: which CCID interfaces sysfs shows (without
//! opening any device), and finding, opening and claiming the one a device
//! name points at.
//!
//! Everything here runs once per `list` or `open`; nothing here is on the
//! transfer path.

use std::ffi::{c_uint, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::abi::{self, ioctl};
use super::error::map_errno;
use crate::transport::usb::sysfs::{self, read_attr};
use crate::transport::usb::{device_readers, parse_for_open, ClaimPlan, UsbDeviceFacts, UsbTarget};
use crate::transport::{CcidEndpoints, DeviceName, TransportError, TransportInfo};

/// One USB device as sysfs shows it.
struct SysfsDevice {
    dir: PathBuf,
    bus: u8,
    address: u8,
    vendor_id: u16,
    product_id: u16,
    bcd_device: u16,
}

impl SysfsDevice {
    fn read(dir: PathBuf) -> Option<Self> {
        let dec = |attr: &str| read_attr(&dir, attr)?.parse::<u8>().ok();
        let hex = |attr: &str| u16::from_str_radix(&read_attr(&dir, attr)?, 16).ok();
        Some(SysfsDevice {
            bus: dec("busnum")?,
            address: dec("devnum")?,
            vendor_id: hex("idVendor")?,
            product_id: hex("idProduct")?,
            bcd_device: hex("bcdDevice")?,
            dir,
        })
    }

    fn node(&self) -> PathBuf {
        PathBuf::from(format!("/dev/bus/usb/{:03}/{:03}", self.bus, self.address))
    }

    fn facts(&self) -> UsbDeviceFacts {
        UsbDeviceFacts {
            vendor_id: self.vendor_id,
            product_id: self.product_id,
            bcd_device: self.bcd_device,
            bus: self.bus,
            address: self.address,
            manufacturer: read_attr(&self.dir, "manufacturer"),
            product: read_attr(&self.dir, "product"),
            serial: read_attr(&self.dir, "serial"),
        }
    }
}

/// Every USB device in sysfs (interface entries, named `1-1:1.0`, skipped).
fn sysfs_devices() -> Result<Vec<SysfsDevice>, TransportError> {
    let entries = match std::fs::read_dir(sysfs::DEVICES) {
        Ok(entries) => entries,
        // No USB subsystem (a container): no readers, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(TransportError::io("listing USB devices", e)),
    };
    Ok(entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().contains(':'))
        .filter_map(|e| SysfsDevice::read(e.path()))
        .collect())
}

/// Every CCID interface of every connected device: class 0x0B, and class
/// 0xFF when it carries a CCID class descriptor — the same answer as the
/// nusb backend's `list`, read from sysfs without opening any device.
pub fn list() -> Result<Vec<TransportInfo>, TransportError> {
    let mut found = Vec::new();
    for device in sysfs_devices()? {
        let config = sysfs::active_configuration(&device.dir);
        found.extend(device_readers(
            &device.facts(),
            config.as_ref().map(|(_, raw)| raw.as_slice()),
            || class_only_interfaces(&device),
        ));
    }
    Ok(found)
}

/// Interfaces of class 0x0B from sysfs attributes alone, for devices whose
/// descriptors could not be parsed.
fn class_only_interfaces(device: &SysfsDevice) -> Vec<u8> {
    let Some(name) = device.dir.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let prefix = format!("{name}:");
    let Ok(entries) = std::fs::read_dir(&device.dir) else {
        return Vec::new();
    };
    let mut numbers: Vec<u8> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| read_attr(&e.path(), "bInterfaceClass").as_deref() == Some("0b"))
        .filter_map(|e| u8::from_str_radix(&read_attr(&e.path(), "bInterfaceNumber")?, 16).ok())
        .collect();
    numbers.sort_unstable();
    numbers
}

/// A CCID interface this process has claimed: what the transport is built
/// from.
pub(super) struct ClaimedInterface {
    pub(super) info: TransportInfo,
    pub(super) fd: OwnedFd,
    pub(super) endpoints: CcidEndpoints,
}

/// Finds the CCID interface `name` points at, opens its device node and
/// claims it (see [`UsbfsTransport::open`](super::UsbfsTransport::open)).
pub(super) fn open_and_claim(name: &DeviceName) -> Result<ClaimedInterface, TransportError> {
    let target = UsbTarget::from_name(name, "usbfs")?;
    let candidates = sysfs_devices()?
        .into_iter()
        .filter(|d| target.matches(d.vendor_id, d.product_id, d.bus, d.address));
    for device in candidates {
        let Some((config_value, config_raw)) = sysfs::active_configuration(&device.dir) else {
            continue;
        };
        let interfaces = parse_for_open(&config_raw)?;
        let Some((chosen, endpoints)) = target.choose(&interfaces)? else {
            continue;
        };
        let fd = open_node(&device.node())?;
        claim(&fd, &device, config_value, chosen.number)?;
        let mut info =
            device
                .facts()
                .describe(chosen.number, chosen.class, Some(chosen), &config_raw);
        info.endpoints = Some(endpoints);
        return Ok(ClaimedInterface {
            info,
            fd,
            endpoints,
        });
    }
    Err(TransportError::NotFound(name.to_string()))
}

fn open_node(node: &Path) -> Result<OwnedFd, TransportError> {
    let path = CString::new(node.as_os_str().as_encoded_bytes())
        .map_err(|e| TransportError::io("device node path", std::io::Error::other(e)))?;
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENOENT | libc::ENODEV) => TransportError::DeviceGone,
            _ => TransportError::io("opening the usbfs device node", e),
        });
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn claim(
    fd: &OwnedFd,
    device: &SysfsDevice,
    config_value: u8,
    number: u8,
) -> Result<(), TransportError> {
    let mut interface = c_uint::from(number);
    let bound = sysfs::bound_driver(&device.dir, config_value, number);
    let result = match ClaimPlan::for_bound_driver(bound, number)? {
        ClaimPlan::DetachAndClaim => {
            let mut request = abi::DisconnectClaim {
                interface,
                flags: abi::DISCONNECT_CLAIM_EXCEPT_DRIVER,
                driver: [0; 256],
            };
            // Never take the interface from another usbfs program.
            request.driver[..5].copy_from_slice(b"usbfs");
            ioctl(
                fd.as_raw_fd(),
                abi::USBDEVFS_DISCONNECT_CLAIM,
                (&raw mut request).cast(),
            )
        }
        ClaimPlan::Claim => ioctl(
            fd.as_raw_fd(),
            abi::USBDEVFS_CLAIMINTERFACE,
            (&raw mut interface).cast(),
        ),
    };
    result.map(drop).map_err(|e| match e {
        libc::EBUSY => {
            TransportError::Busy(format!("interface {number} is claimed by another program"))
        }
        e => map_errno("claiming CCID interface", e),
    })
}
