//! Device names: the strings pcscd hands to an IFD handler, and ours.
//!
//! pcscd builds the name from its hotplug backend (see pcsc-lite's
//! `hotplug_libudev.c` / `hotplug_libusb.c` and libccid's `ccid_usb.c`):
//!
//! | form | meaning |
//! |---|---|
//! | `usb:VVVV/PPPP:libudev:IF:/dev/bus/usb/BBB/DDD` | libudev hotplug |
//! | `usb:VVVV/PPPP:libusb-1.0:BUS:ADDR:IF` | libusb hotplug |
//! | `usb:VVVV/PPPP` | first device with that VID/PID (reader.conf) |
//! | `usbip:HOST:PORT/BUSID` | ferroccid's USB/IP client |
//! | `SCHEME`, `SCHEME:SPEC` | a scheme another crate registers a resolver for (`sim`, `sim:PROFILE`: `ferroccid_sim::register`) |
//!
//! The driver knows only the shape of a registered scheme's name: a scheme
//! of lower-case letters, digits and `-`, and a printable SPEC of at most
//! [`MAX_SPEC_LEN`] bytes; the resolver checks SPEC itself.
//!
//! The names arrive from configuration files and the command line, so the
//! parser is strict: every field is checked for syntax and range, nothing
//! trailing is ignored, and errors name the field at fault.

use std::fmt;
use std::str::FromStr;

/// pcsc-lite's MAX_DEVICENAME: longer strings never come from pcscd.
pub const MAX_NAME_LEN: usize = 255;
/// USB/IP bus ids fit in the protocol's 32-byte, NUL-terminated field.
const MAX_BUSID_LEN: usize = 31;
/// The SPEC of a registered scheme is at most this long (Linux's PATH_MAX:
/// it may be a file path); such names never come from pcscd, so they may
/// exceed [`MAX_NAME_LEN`].
pub const MAX_SPEC_LEN: usize = 4096;
/// A registered scheme is a short identifier.
const MAX_SCHEME_LEN: usize = 16;
/// Offending text quoted in errors is cut to this many characters so a
/// hostile name cannot flood the log.
const MAX_QUOTED: usize = 40;

/// A parsed device name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeviceName {
    /// A USB device, as pcscd names it.
    Usb {
        /// idVendor.
        vendor_id: u16,
        /// idProduct.
        product_id: u16,
        /// Which device and interface with that VID/PID.
        location: UsbLocation,
    },
    /// A scheme another crate registers a resolver for
    /// ([`register_resolver`](crate::register_resolver)), such as the
    /// simulator's `sim` and `sim:PROFILE`.
    Registered {
        /// The scheme: lower-case letters, digits and `-`.
        scheme: String,
        /// What follows `SCHEME:`, unchecked beyond printable ASCII and
        /// [`MAX_SPEC_LEN`]; `None` for a bare `SCHEME`.
        spec: Option<String>,
    },
    /// A reader exported by a USB/IP server.
    UsbIp {
        /// Host name, IPv4 address, or IPv6 address (without brackets).
        host: String,
        /// TCP port (USB/IP's default is 3240).
        port: u16,
        /// The server's bus id of the device, for example `1-1.2`.
        bus_id: String,
    },
}

/// Which device with a given VID/PID a USB name points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsbLocation {
    /// `usb:VVVV/PPPP`: the first CCID interface of the first match.
    FirstMatch,
    /// `…:libudev:IF:/dev/bus/usb/BBB/DDD` (Linux bus and device numbers).
    Libudev {
        /// bInterfaceNumber.
        interface: u8,
        /// Bus number (1-255 on Linux).
        bus: u8,
        /// Device address (1-127).
        address: u8,
    },
    /// `…:libusb-1.0:BUS:ADDR:IF` (libusb's bus number and address).
    Libusb {
        /// libusb bus number.
        bus: u8,
        /// libusb device address.
        address: u8,
        /// bInterfaceNumber.
        interface: u8,
    },
}

impl UsbLocation {
    /// The (bus, address) pair, if the name pins one device.
    pub fn bus_address(&self) -> Option<(u8, u8)> {
        match *self {
            UsbLocation::FirstMatch => None,
            UsbLocation::Libudev { bus, address, .. }
            | UsbLocation::Libusb { bus, address, .. } => Some((bus, address)),
        }
    }

    /// The interface number, if the name pins one.
    pub fn interface(&self) -> Option<u8> {
        match *self {
            UsbLocation::FirstMatch => None,
            UsbLocation::Libudev { interface, .. } | UsbLocation::Libusb { interface, .. } => {
                Some(interface)
            }
        }
    }
}

/// Why a device name was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// Longer than [`MAX_NAME_LEN`] bytes (a registered scheme's name:
    /// longer than its `SCHEME:` plus [`MAX_SPEC_LEN`]).
    TooLong(usize),
    /// Contains a byte that is not printable ASCII (control characters,
    /// NUL, whitespace, non-ASCII).
    NotPrintable {
        /// Byte offset of the first offending character.
        offset: usize,
    },
    /// Neither `usb:`, `usbip:` nor the shape of a registered scheme.
    UnknownScheme(String),
    /// A required field is absent.
    Missing(&'static str),
    /// A field has the wrong syntax.
    BadField {
        /// Which field.
        field: &'static str,
        /// The offending text (truncated).
        text: String,
    },
    /// A numeric field is outside its range.
    OutOfRange {
        /// Which field.
        field: &'static str,
        /// The value found.
        value: u32,
        /// The smallest value allowed.
        min: u32,
        /// The largest value allowed.
        max: u32,
    },
    /// After `usb:VVVV/PPPP:` comes neither `libudev:` nor `libusb-1.0:`.
    UnknownUsbForm(String),
    /// Text left after a complete name.
    Trailing(String),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "empty device name"),
            NameError::TooLong(len) => {
                write!(
                    f,
                    "device name is {len} bytes, at most {MAX_NAME_LEN} allowed \
                     (SCHEME: plus {MAX_SPEC_LEN} for registered schemes such as sim:)"
                )
            }
            NameError::NotPrintable { offset } => {
                write!(f, "non-printable or non-ASCII character at byte {offset}")
            }
            NameError::UnknownScheme(t) => {
                write!(f, "unknown scheme in {t:?} (expected usb:, usbip: or a registered scheme such as sim)")
            }
            NameError::Missing(field) => write!(f, "missing {field}"),
            NameError::BadField { field, text } => write!(f, "bad {field}: {text:?}"),
            NameError::OutOfRange {
                field,
                value,
                min,
                max,
            } => write!(f, "{field} {value} is outside {min}..={max}"),
            NameError::UnknownUsbForm(t) => write!(
                f,
                "unknown USB name form {t:?} (expected libudev: or libusb-1.0:)"
            ),
            NameError::Trailing(t) => write!(f, "unexpected trailing text {t:?}"),
        }
    }
}

impl std::error::Error for NameError {}

impl FromStr for DeviceName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        DeviceName::parse(s)
    }
}

impl DeviceName {
    /// Parses any accepted form; see the module documentation.
    pub fn parse(s: &str) -> Result<DeviceName, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        let max = match registered_scheme(s) {
            Some(scheme) => scheme.len() + 1 + MAX_SPEC_LEN,
            None => MAX_NAME_LEN,
        };
        if s.len() > max {
            return Err(NameError::TooLong(s.len()));
        }
        if let Some(offset) = s.bytes().position(|b| !b.is_ascii_graphic()) {
            return Err(NameError::NotPrintable { offset });
        }
        if let Some(rest) = s.strip_prefix("usb:") {
            parse_usb(rest)
        } else if let Some(rest) = s.strip_prefix("usbip:") {
            parse_usbip(rest)
        } else if let Some(scheme) = registered_scheme(s) {
            let spec = match s[scheme.len()..].strip_prefix(':') {
                None => None,
                Some("") => return Err(NameError::Missing("text after the scheme")),
                Some(spec) => Some(spec.to_owned()),
            };
            Ok(DeviceName::Registered {
                scheme: scheme.to_owned(),
                spec,
            })
        } else {
            Err(NameError::UnknownScheme(quote(s)))
        }
    }
}

fn parse_usb(rest: &str) -> Result<DeviceName, NameError> {
    let (ids, form) = match rest.split_once(':') {
        Some((ids, form)) => (ids, Some(form)),
        None => (rest, None),
    };
    if ids.is_empty() {
        return Err(NameError::Missing("vendor id"));
    }
    let (vid, pid) = ids
        .split_once('/')
        .ok_or(NameError::Missing("product id"))?;
    let vendor_id = hex_u16(vid, "vendor id")?;
    let product_id = hex_u16(pid, "product id")?;
    let location = match form {
        None => UsbLocation::FirstMatch,
        Some(form) => {
            if let Some(tail) = form.strip_prefix("libudev:") {
                parse_libudev(tail)?
            } else if let Some(tail) = form.strip_prefix("libusb-1.0:") {
                parse_libusb(tail)?
            } else {
                return Err(NameError::UnknownUsbForm(quote(form)));
            }
        }
    };
    Ok(DeviceName::Usb {
        vendor_id,
        product_id,
        location,
    })
}

/// `IF:/dev/bus/usb/BBB/DDD`
fn parse_libudev(tail: &str) -> Result<UsbLocation, NameError> {
    let (interface, devnode) = tail
        .split_once(':')
        .ok_or(NameError::Missing("device node"))?;
    let interface = dec(interface, "interface number", 0, 255)?;
    let numbers = devnode
        .strip_prefix("/dev/bus/usb/")
        .ok_or_else(|| NameError::BadField {
            field: "device node",
            text: quote(devnode),
        })?;
    let (bus, address) = numbers
        .split_once('/')
        .ok_or(NameError::Missing("device number"))?;
    Ok(UsbLocation::Libudev {
        interface,
        bus: dec(bus, "bus number", 1, 255)?,
        address: dec(address, "device number", 1, 127)?,
    })
}

/// `BUS:ADDR:IF`
fn parse_libusb(tail: &str) -> Result<UsbLocation, NameError> {
    // libusb numbers are opaque outside Linux, so only the u8 range holds.
    let mut fields = tail.splitn(4, ':');
    let bus = dec(fields.next().unwrap_or(""), "bus number", 0, 255)?;
    let address = fields.next().ok_or(NameError::Missing("device address"))?;
    let address = dec(address, "device address", 0, 255)?;
    let interface = fields
        .next()
        .ok_or(NameError::Missing("interface number"))?;
    let interface = dec(interface, "interface number", 0, 255)?;
    if let Some(extra) = fields.next() {
        return Err(NameError::Trailing(quote(extra)));
    }
    Ok(UsbLocation::Libusb {
        bus,
        address,
        interface,
    })
}

/// The scheme of a name that is not `usb:` or `usbip:`, if it has the
/// shape of one: a lower-case letter, then letters, digits and `-`, up to
/// the first `:` or the end.
fn registered_scheme(s: &str) -> Option<&str> {
    if s.starts_with("usb:") || s.starts_with("usbip:") {
        return None;
    }
    let scheme = s.split(':').next()?;
    let shaped = scheme.len() <= MAX_SCHEME_LEN
        && scheme.starts_with(|c: char| c.is_ascii_lowercase())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    shaped.then_some(scheme)
}

/// `HOST:PORT/BUSID`, HOST possibly a bracketed IPv6 address.
fn parse_usbip(rest: &str) -> Result<DeviceName, NameError> {
    let (host, after_host) = if let Some(v6) = rest.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or_else(|| NameError::BadField {
            field: "host",
            text: quote(rest),
        })?;
        let valid = !addr.is_empty()
            && addr.contains(':')
            && addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !valid {
            return Err(NameError::BadField {
                field: "host",
                text: quote(addr),
            });
        }
        (addr, after)
    } else {
        let end = rest.find(':').ok_or(NameError::Missing("port"))?;
        let host = &rest[..end];
        let valid = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !host.starts_with(['-', '.']);
        if !valid {
            return Err(NameError::BadField {
                field: "host",
                text: quote(host),
            });
        }
        (host, &rest[end..])
    };
    let port_and_busid = after_host
        .strip_prefix(':')
        .ok_or(NameError::Missing("port"))?;
    let (port, bus_id) = port_and_busid
        .split_once('/')
        .ok_or(NameError::Missing("bus id"))?;
    let port = dec(port, "port", 1, 65535)?;
    let valid_busid = !bus_id.is_empty()
        && bus_id.len() <= MAX_BUSID_LEN
        && bus_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':');
    if !valid_busid {
        return Err(NameError::BadField {
            field: "bus id",
            text: quote(bus_id),
        });
    }
    Ok(DeviceName::UsbIp {
        host: host.to_owned(),
        port,
        bus_id: bus_id.to_owned(),
    })
}

/// 1-4 hex digits, either case; pcscd prints `%04x` but people type ids.
fn hex_u16(text: &str, field: &'static str) -> Result<u16, NameError> {
    if text.is_empty() {
        return Err(NameError::Missing(field));
    }
    if text.len() > 4 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NameError::BadField {
            field,
            text: quote(text),
        });
    }
    u16::from_str_radix(text, 16).map_err(|_| NameError::BadField {
        field,
        text: quote(text),
    })
}

/// Plain decimal digits (no sign, no spaces, leading zeros allowed as in
/// `/dev/bus/usb/001`), at most 5 of them, within `min..=max`.
fn dec<T: TryFrom<u32>>(
    text: &str,
    field: &'static str,
    min: u32,
    max: u32,
) -> Result<T, NameError> {
    if text.is_empty() {
        return Err(NameError::Missing(field));
    }
    if text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NameError::BadField {
            field,
            text: quote(text),
        });
    }
    let value: u32 = text.parse().map_err(|_| NameError::BadField {
        field,
        text: quote(text),
    })?;
    if value < min || value > max {
        return Err(NameError::OutOfRange {
            field,
            value,
            min,
            max,
        });
    }
    T::try_from(value).map_err(|_| NameError::OutOfRange {
        field,
        value,
        min,
        max,
    })
}

/// Cuts offending text for error messages; input is already ASCII.
fn quote(text: &str) -> String {
    let mut end = text.len().min(MAX_QUOTED);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

impl fmt::Display for DeviceName {
    /// The canonical form, which parses back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceName::Usb {
                vendor_id,
                product_id,
                location,
            } => {
                write!(f, "usb:{vendor_id:04x}/{product_id:04x}")?;
                match location {
                    UsbLocation::FirstMatch => Ok(()),
                    UsbLocation::Libudev {
                        interface,
                        bus,
                        address,
                    } => write!(f, ":libudev:{interface}:/dev/bus/usb/{bus:03}/{address:03}"),
                    UsbLocation::Libusb {
                        bus,
                        address,
                        interface,
                    } => write!(f, ":libusb-1.0:{bus}:{address}:{interface}"),
                }
            }
            DeviceName::Registered { scheme, spec: None } => write!(f, "{scheme}"),
            DeviceName::Registered {
                scheme,
                spec: Some(spec),
            } => write!(f, "{scheme}:{spec}"),
            DeviceName::UsbIp { host, port, bus_id } if host.contains(':') => {
                write!(f, "usbip:[{host}]:{port}/{bus_id}")
            }
            DeviceName::UsbIp { host, port, bus_id } => write!(f, "usbip:{host}:{port}/{bus_id}"),
        }
    }
}
