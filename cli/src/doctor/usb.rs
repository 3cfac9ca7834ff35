//! The USB device as the kernel sees it: sysfs (read from a directory the
//! caller names, so tests stage devices), its interfaces, and the CCID
//! class descriptor of the reader interface. Nothing here opens a device.
use std::path::{Path, PathBuf};

use ferroccid::ccid::ClassDescriptor;
use ferroccid::descriptors::{find_class_descriptor, is_ccid_interface, parse_configuration};

use super::report::{Check, Status};

/// One interface of the active configuration.
#[derive(Debug, Clone)]
pub struct Interface {
    pub number: u8,
    pub class: u8,
    /// The kernel driver bound to it (`usbfs`: a program has claimed it).
    pub driver: Option<String>,
    /// The descriptors after the interface descriptor (the CCID class
    /// descriptor among them).
    pub extra: Vec<u8>,
}

/// One USB device in sysfs.
#[derive(Debug, Clone)]
pub struct UsbDevice {
    /// Its sysfs directory (`…/1-1`).
    pub dir: PathBuf,
    pub bus: u8,
    pub address: u8,
    pub vendor_id: u16,
    pub product_id: u16,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    /// The active configuration's interfaces; `Err` says why they could
    /// not be read.
    pub interfaces: Result<Vec<Interface>, String>,
}

impl UsbDevice {
    /// `VVVV:PPPP`, as lsusb and pcscd's Info.plist spell it.
    pub fn vid_pid(&self) -> String {
        format!("{:04X}:{:04X}", self.vendor_id, self.product_id)
    }

    /// Manufacturer and product strings, or the VID:PID.
    pub fn label(&self) -> String {
        match (&self.manufacturer, &self.product) {
            (Some(m), Some(p)) if !p.starts_with(m.as_str()) => format!("{m} {p}"),
            (_, Some(p)) => p.clone(),
            (Some(m), None) => m.clone(),
            (None, None) => format!("USB device {}", self.vid_pid()),
        }
    }

    /// The interface a CCID driver would take: class 0x0B, or 0xFF with a
    /// CCID class descriptor (pre-standard readers).
    pub fn reader_interface(&self) -> Option<&Interface> {
        self.interfaces
            .as_ref()
            .ok()?
            .iter()
            .find(|i| is_ccid_interface(i.class, &i.extra))
    }

    /// The device node under `dev_dir` (normally `/dev`).
    pub fn node(&self, dev_dir: &Path) -> PathBuf {
        dev_dir.join(format!("bus/usb/{:03}/{:03}", self.bus, self.address))
    }

    fn read(dir: PathBuf) -> Option<UsbDevice> {
        let dec = |attr: &str| read_attr(&dir, attr)?.parse::<u8>().ok();
        let hex = |attr: &str| u16::from_str_radix(&read_attr(&dir, attr)?, 16).ok();
        let interfaces = interfaces(&dir);
        Some(UsbDevice {
            bus: dec("busnum")?,
            address: dec("devnum")?,
            vendor_id: hex("idVendor")?,
            product_id: hex("idProduct")?,
            manufacturer: read_attr(&dir, "manufacturer"),
            product: read_attr(&dir, "product"),
            interfaces,
            dir,
        })
    }
}

/// Every USB device under `sysfs_dir` (normally `/sys/bus/usb/devices`);
/// interface entries (`1-1:1.0`) are skipped. Sorted by bus and address.
pub fn devices(sysfs_dir: &Path) -> Result<Vec<UsbDevice>, String> {
    let entries =
        std::fs::read_dir(sysfs_dir).map_err(|e| format!("{}: {e}", sysfs_dir.display()))?;
    let mut found: Vec<UsbDevice> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().contains(':'))
        .filter_map(|e| UsbDevice::read(e.path()))
        .collect();
    found.sort_by_key(|d| (d.bus, d.address));
    Ok(found)
}

fn read_attr(dir: &Path, attr: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(attr)).ok()?;
    Some(text.trim_end_matches('\n').to_owned())
}

/// The active configuration's interfaces, from sysfs `descriptors` (the
/// device descriptor, then every configuration descriptor) and
/// `bConfigurationValue`.
fn interfaces(dir: &Path) -> Result<Vec<Interface>, String> {
    let raw = std::fs::read(dir.join("descriptors"))
        .map_err(|e| format!("{}: {e}", dir.join("descriptors").display()))?;
    let active: u8 = read_attr(dir, "bConfigurationValue")
        .and_then(|v| v.parse().ok())
        .ok_or("the device is not configured (bConfigurationValue empty)")?;
    let mut offset = 18;
    while offset + 6 <= raw.len() {
        let total = usize::from(u16::from_le_bytes([raw[offset + 2], raw[offset + 3]]));
        if total < 9 {
            return Err(format!(
                "configuration descriptor at byte {offset} is {total} bytes long"
            ));
        }
        let end = (offset + total).min(raw.len());
        if raw[offset + 5] == active {
            let parsed = parse_configuration(&raw[offset..end]).map_err(|e| e.to_string())?;
            let name = dir.file_name().unwrap_or_default().to_string_lossy();
            return Ok(parsed
                .into_iter()
                .filter(|i| i.alt_setting == 0)
                .map(|i| Interface {
                    number: i.number,
                    class: i.class,
                    driver: std::fs::read_link(
                        dir.join(format!("{name}:{active}.{}/driver", i.number)),
                    )
                    .ok()
                    .and_then(|l| Some(l.file_name()?.to_string_lossy().into_owned())),
                    extra: i.extra,
                })
                .collect());
        }
        offset = end;
    }
    Err(format!(
        "no configuration {active} in {}",
        dir.join("descriptors").display()
    ))
}

/// Check name of [`device_check`].
pub const DEVICE: &str = "usb-device";
/// Check name of [`descriptor_check`].
pub const DESCRIPTOR: &str = "ccid-descriptor";

fn class_name(class: u8) -> &'static str {
    match class {
        0x03 => "HID",
        0x08 => "mass storage",
        0x0B => "CCID",
        0xFF => "vendor-specific",
        _ => "other",
    }
}

/// The device and its interfaces: found, with an interface a CCID driver
/// takes. `wanted` describes what was looked for, for the failure text.
pub fn device_check(device: Option<&UsbDevice>, wanted: &str) -> Check {
    let Some(device) = device else {
        return Check::new(
            DEVICE,
            Status::Fail,
            format!("no USB device {wanted}"),
            Some(
                "plug the reader in (another port or cable if it was), then see whether the \
                 kernel saw it: `lsusb` and `sudo dmesg | tail`",
            ),
        );
    };
    let where_ = format!(
        "{} {} on bus {} address {} ({})",
        device.vid_pid(),
        device.label(),
        device.bus,
        device.address,
        device.dir.display()
    );
    let interfaces =
        match &device.interfaces {
            Ok(interfaces) => interfaces,
            Err(e) => return Check::new(
                DEVICE,
                Status::Fail,
                format!("{where_}: its descriptors cannot be read: {e}"),
                Some(
                    "unplug and replug the reader; `sudo dmesg | tail` shows why the kernel failed",
                ),
            ),
        };
    let listed: Vec<String> = interfaces
        .iter()
        .map(|i| {
            format!(
                "{}: class 0x{:02X} ({}), driver {}",
                i.number,
                i.class,
                class_name(i.class),
                match i.driver.as_deref() {
                    Some("usbfs") => "usbfs (a program holds it: pcscd or another)",
                    Some(driver) => driver,
                    None => "none",
                }
            )
        })
        .collect();
    let detail = format!("{where_}; interfaces {}", listed.join("; "));
    match device.reader_interface() {
        Some(_) => Check::pass(DEVICE, detail),
        None => Check::new(
            DEVICE,
            Status::Fail,
            format!(
                "{detail}: none is a CCID interface (class 0x0B, or 0xFF with a CCID descriptor)"
            ),
            Some(format!(
                "this device is not a CCID reader in its present mode: some readers switch \
                 mode with a vendor tool; `lsusb -v -d {}` shows all its descriptors",
                device.vid_pid().to_lowercase()
            )),
        ),
    }
}

/// The reader interface carries a CCID class descriptor (CCID §5.1) that
/// parses.
pub fn descriptor_check(device: Option<&UsbDevice>) -> Check {
    let Some((device, interface)) = device.and_then(|d| Some((d, d.reader_interface()?))) else {
        return Check::not_applicable(
            DESCRIPTOR,
            "no CCID interface to read it from (see usb-device)",
        );
    };
    let lsusb = format!("`lsusb -v -d {}`", device.vid_pid().to_lowercase());
    let Some(raw) = find_class_descriptor(&interface.extra) else {
        return Check::new(
            DESCRIPTOR,
            Status::Fail,
            format!(
                "interface {} has no 54-byte CCID class descriptor (type 0x21) after it",
                interface.number
            ),
            Some(format!(
                "neither ferroccid nor libccid can drive it; compare with {lsusb} and report \
                 the reader (its descriptors) to ferroccid"
            )),
        );
    };
    match ClassDescriptor::parse(raw) {
        Ok(d) => Check::pass(
            DESCRIPTOR,
            format!(
                "interface {}: CCID {:X}.{:02X}, {} slot(s), {} level",
                interface.number,
                d.bcd_ccid >> 8,
                d.bcd_ccid & 0xFF,
                d.slot_count(),
                d.exchange_level().as_str()
            ),
        ),
        Err(e) => Check::new(
            DESCRIPTOR,
            Status::Fail,
            format!("interface {}: the CCID class descriptor is invalid: {e}", interface.number),
            Some(format!("`ferroccid descriptor --reader usb:{:04x}/{:04x}` decodes it byte by byte; {lsusb}",
                device.vendor_id, device.product_id)),
        ),
    }
}
