//! What the host-USB backends (nusb, rusb, usbfs) share, so that they
//! answer discovery and open the same way: which device a name points at,
//! which interface of it to claim, the [`TransportInfo`] they report, and
//! on Linux what sysfs says without opening the device.
//!
//! Each backend keeps only what its library does differently: enumerating
//! devices, reading descriptors, claiming, transfers.

use super::descriptors::{
    choose_interface, find_class_descriptor, is_ccid_interface, parse_configuration,
    select_endpoints, InterfaceDescription, CLASS_CCID,
};
use super::{CcidEndpoints, DeviceName, TransportError, TransportInfo, UsbLocation};

/// The USB device a [`DeviceName::Usb`] points at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UsbTarget {
    /// idVendor asked for.
    pub vendor_id: u16,
    /// idProduct asked for.
    pub product_id: u16,
    /// Bus, address and interface, each possibly left open.
    pub location: UsbLocation,
}

impl UsbTarget {
    /// The USB parts of `name`; any other kind of name is `Unsupported` by
    /// `backend` (which the message names).
    pub(super) fn from_name(name: &DeviceName, backend: &str) -> Result<Self, TransportError> {
        match *name {
            DeviceName::Usb {
                vendor_id,
                product_id,
                location,
            } => Ok(UsbTarget {
                vendor_id,
                product_id,
                location,
            }),
            _ => Err(TransportError::Unsupported(format!(
                "the {backend} backend opens USB names only, not {name}"
            ))),
        }
    }

    /// Whether a device with these ids at this bus/address is a candidate:
    /// ids must match, and the bus/address too when the name gives them.
    pub(super) fn matches(&self, vendor_id: u16, product_id: u16, bus: u8, address: u8) -> bool {
        vendor_id == self.vendor_id
            && product_id == self.product_id
            && self
                .location
                .bus_address()
                .is_none_or(|wanted| wanted == (bus, address))
    }

    /// The interface to claim on one candidate device and its endpoints.
    ///
    /// `Ok(None)`: this device has no CCID interface and the name asks for
    /// the first match, so the caller tries the next device with the ids.
    pub(super) fn choose<'a>(
        &self,
        interfaces: &'a [InterfaceDescription],
    ) -> Result<Option<(&'a InterfaceDescription, CcidEndpoints)>, TransportError> {
        let wanted = self.location.interface();
        let chosen = match choose_interface(interfaces, wanted) {
            Ok(intf) => intf,
            Err(TransportError::NotFound(_)) if wanted.is_none() => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some((chosen, select_endpoints(&chosen.endpoints)?)))
    }
}

/// [`parse_configuration`] for open, where a configuration that cannot be
/// walked is an I/O error of the device.
pub(crate) fn parse_for_open(raw: &[u8]) -> Result<Vec<InterfaceDescription>, TransportError> {
    parse_configuration(raw).map_err(|e| {
        TransportError::io("parsing configuration descriptor", std::io::Error::other(e))
    })
}

/// The interfaces discovery offers as readers: alternate setting 0, CCID
/// by [`is_ccid_interface`].
pub(crate) fn listed_interfaces(
    interfaces: &[InterfaceDescription],
) -> impl Iterator<Item = &InterfaceDescription> {
    interfaces
        .iter()
        .filter(|i| i.alt_setting == 0 && is_ccid_interface(i.class, &i.extra))
}

/// What a backend knows about a device, whichever library it asked.
#[derive(Debug, Clone, Default)]
pub(crate) struct UsbDeviceFacts {
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// bcdDevice.
    pub bcd_device: u16,
    /// Bus number.
    pub bus: u8,
    /// Device address on the bus.
    pub address: u8,
    /// iManufacturer string.
    pub manufacturer: Option<String>,
    /// iProduct string.
    pub product: Option<String>,
    /// iSerialNumber string.
    pub serial: Option<String>,
}

impl UsbDeviceFacts {
    /// The [`TransportInfo`] of one interface of this device, named in
    /// pcscd's libusb form. `intf` is `None` when only the interface class
    /// is known (descriptors unreadable): no endpoints, no class descriptor.
    pub(super) fn describe(
        &self,
        interface_number: u8,
        interface_class: u8,
        intf: Option<&InterfaceDescription>,
        config: &[u8],
    ) -> TransportInfo {
        let name = DeviceName::Usb {
            vendor_id: self.vendor_id,
            product_id: self.product_id,
            location: UsbLocation::Libusb {
                bus: self.bus,
                address: self.address,
                interface: interface_number,
            },
        };
        TransportInfo {
            name: name.to_string(),
            vendor_id: self.vendor_id,
            product_id: self.product_id,
            bcd_device: self.bcd_device,
            manufacturer: self.manufacturer.clone(),
            product: self.product.clone(),
            serial: self.serial.clone(),
            bus: self.bus,
            address: self.address,
            interface_number,
            interface_class,
            endpoints: intf.and_then(|i| select_endpoints(&i.endpoints).ok()),
            class_descriptor: intf
                .and_then(|i| find_class_descriptor(&i.extra))
                .map(<[u8]>::to_vec),
            configuration_descriptor: config.to_vec(),
        }
    }
}

/// What discovery reports for one device: its CCID interfaces as the
/// configuration descriptor shows them or, when that could not be read or
/// walked, its class-0x0B interfaces by number alone (`class_only`), so a
/// reader whose descriptors are unreadable to this user is still listed.
#[cfg(any(feature = "nusb", all(feature = "usbfs", target_os = "linux")))]
pub(crate) fn device_readers(
    facts: &UsbDeviceFacts,
    config: Option<&[u8]>,
    class_only: impl FnOnce() -> Vec<u8>,
) -> Vec<TransportInfo> {
    let interfaces = config
        .and_then(|raw| parse_configuration(raw).ok())
        .unwrap_or_default();
    if interfaces.is_empty() {
        return class_only()
            .into_iter()
            .map(|number| facts.describe(number, CLASS_CCID, None, &[]))
            .collect();
    }
    let raw = config.unwrap_or_default();
    listed_interfaces(&interfaces)
        .map(|intf| facts.describe(intf.number, intf.class, Some(intf), raw))
        .collect()
}

/// sysfs readings both Linux usbfs users (nusb, usbfs) make: readable by
/// every user, unlike the usbfs node.
#[cfg(all(target_os = "linux", any(feature = "nusb", feature = "usbfs")))]
pub(crate) mod sysfs {
    use std::path::Path;

    /// Where the kernel lists USB devices (and their interfaces).
    pub(crate) const DEVICES: &str = "/sys/bus/usb/devices";

    /// The active configuration value and descriptor of the device at
    /// `dir`. sysfs `descriptors` is the 18-byte device descriptor followed
    /// by every configuration descriptor; the active one is picked.
    pub(crate) fn active_configuration(dir: &Path) -> Option<(u8, Vec<u8>)> {
        let raw = std::fs::read(dir.join("descriptors")).ok()?;
        let active: u8 = read_attr(dir, "bConfigurationValue")?.parse().ok()?;
        let mut offset = 18;
        while offset + 6 <= raw.len() {
            let total = usize::from(u16::from_le_bytes([raw[offset + 2], raw[offset + 3]]));
            if total < 9 {
                return None;
            }
            let end = (offset + total).min(raw.len());
            if raw[offset + 5] == active {
                return Some((active, raw[offset..end].to_vec()));
            }
            offset = end;
        }
        None
    }

    /// The driver bound to interface `number` of the device at `dir`
    /// (`usbfs` means a userspace program holds it).
    pub(crate) fn bound_driver(dir: &Path, config_value: u8, number: u8) -> Option<String> {
        let device_name = dir.file_name()?.to_str()?;
        let link =
            std::fs::read_link(dir.join(format!("{device_name}:{config_value}.{number}/driver")))
                .ok()?;
        Some(link.file_name()?.to_string_lossy().into_owned())
    }

    /// One sysfs attribute, without its trailing newline.
    pub(crate) fn read_attr(dir: &Path, attr: &str) -> Option<String> {
        let s = std::fs::read_to_string(dir.join(attr)).ok()?;
        Some(s.trim_end_matches('\n').to_owned())
    }
}

/// How to claim an interface, given the driver sysfs says is bound to it.
#[cfg(any(feature = "nusb", all(feature = "usbfs", target_os = "linux")))]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ClaimPlan {
    /// Nothing bound: claim.
    Claim,
    /// A kernel driver is bound: detach it (logged), then claim.
    DetachAndClaim,
}

#[cfg(any(feature = "nusb", all(feature = "usbfs", target_os = "linux")))]
impl ClaimPlan {
    /// Another program's usbfs claim is `Busy` and left alone; a kernel
    /// driver is detached, which is logged here once for every backend.
    pub(super) fn for_bound_driver(
        bound: Option<String>,
        number: u8,
    ) -> Result<Self, TransportError> {
        match bound {
            Some(driver) if driver == "usbfs" => Err(TransportError::Busy(format!(
                "interface {number} is claimed by another program"
            ))),
            Some(driver) => {
                tracing::info!(interface = number, %driver, "detaching kernel driver from CCID interface");
                Ok(ClaimPlan::DetachAndClaim)
            }
            None => Ok(ClaimPlan::Claim),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(location: UsbLocation) -> UsbTarget {
        UsbTarget {
            vendor_id: 0x08E6,
            product_id: 0x3437,
            location,
        }
    }

    #[test]
    fn a_name_without_bus_and_address_matches_any_device_with_the_ids() {
        let any = target(UsbLocation::FirstMatch);
        assert!(any.matches(0x08E6, 0x3437, 3, 9));
        assert!(!any.matches(0x08E6, 0x3438, 3, 9));
        let at = target(UsbLocation::Libusb {
            bus: 3,
            address: 9,
            interface: 0,
        });
        assert!(at.matches(0x08E6, 0x3437, 3, 9));
        assert!(!at.matches(0x08E6, 0x3437, 3, 10));
        assert!(!at.matches(0x08E6, 0x3437, 2, 9));
    }

    /// A device whose configuration cannot be walked is listed from its
    /// class-0x0B interfaces; one that can is listed from the descriptor,
    /// and its non-CCID interfaces (here a HID keyboard) are not.
    #[cfg(any(feature = "nusb", all(feature = "usbfs", target_os = "linux")))]
    #[test]
    fn discovery_falls_back_to_interface_classes_only_without_a_configuration() {
        let facts = UsbDeviceFacts {
            vendor_id: 0x08E6,
            product_id: 0x3437,
            bus: 1,
            address: 4,
            ..Default::default()
        };
        let listed = device_readers(&facts, None, || vec![1]);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, "usb:08e6/3437:libusb-1.0:1:4:1");
        assert_eq!(listed[0].interface_class, 0x0B);
        assert_eq!(listed[0].endpoints, None);

        // wTotalLength 41: configuration, keyboard (class 3), CCID (0x0B)
        // with bulk-OUT 0x01 and bulk-IN 0x82.
        let config = [
            9, 2, 41, 0, 2, 1, 0, 0x80, 50, //
            9, 4, 0, 0, 0, 3, 1, 1, 0, //
            9, 4, 1, 0, 2, 0x0B, 0, 0, 0, //
            7, 5, 0x01, 2, 64, 0, 0, //
            7, 5, 0x82, 2, 64, 0, 0,
        ];
        let listed = device_readers(&facts, Some(&config), || panic!("descriptor was readable"));
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].interface_number, 1);
        assert_eq!(listed[0].endpoints.unwrap().bulk_in.address, 0x82);
        assert_eq!(listed[0].configuration_descriptor, config);
    }

    #[test]
    fn only_usb_names_are_usb_targets() {
        let usbip = DeviceName::parse("usbip:127.0.0.1:3240/1-1").unwrap();
        assert!(matches!(
            UsbTarget::from_name(&usbip, "nusb"),
            Err(TransportError::Unsupported(m)) if m.contains("nusb")
        ));
    }

    #[cfg(any(feature = "nusb", all(feature = "usbfs", target_os = "linux")))]
    #[test]
    fn another_programs_usbfs_claim_is_busy() {
        assert!(matches!(
            ClaimPlan::for_bound_driver(Some("usbfs".into()), 1),
            Err(TransportError::Busy(_))
        ));
        assert_eq!(
            ClaimPlan::for_bound_driver(Some("usbhid".into()), 1).unwrap(),
            ClaimPlan::DetachAndClaim
        );
        assert_eq!(
            ClaimPlan::for_bound_driver(None, 1).unwrap(),
            ClaimPlan::Claim
        );
    }
}
