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
//! | `sim`, `sim:PROFILE` | the in-process simulator, opened through the resolver `ferroccid_sim::register` installs |
//!
//! `PROFILE` is a built-in profile name, the 54-byte CCID class
//! descriptor in hex (108 digits, bytes optionally separated by `:`, `,`,
//! `-` or `.`; stored packed), or the path of a JSON profile file (ending
//! in `.json`, printable ASCII without spaces, at most
//! [`MAX_PROFILE_PATH_LEN`] bytes).
//! | `usbip:HOST:PORT/BUSID` | ferroccid's USB/IP client |
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
/// Simulator profile names are short identifiers.
const MAX_PROFILE_LEN: usize = 64;
/// A `sim:` profile file path is at most this long (Linux's PATH_MAX);
/// such names never come from pcscd, so they may exceed [`MAX_NAME_LEN`].
pub const MAX_PROFILE_PATH_LEN: usize = 4096;
/// Hex digits of a 54-byte CCID class descriptor given as a profile.
const DESCRIPTOR_HEX_DIGITS: usize = 2 * crate::ccid::descriptor::CLASS_DESCRIPTOR_LEN;
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
    /// The in-process simulator, optionally with a named reader profile.
    Sim {
        /// The simulator profile; `None` for the default reader.
        profile: Option<String>,
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
    /// Longer than [`MAX_NAME_LEN`] bytes (a `sim:` name: longer than
    /// `sim:` plus [`MAX_PROFILE_PATH_LEN`]).
    TooLong(usize),
    /// Contains a byte that is not printable ASCII (control characters,
    /// NUL, whitespace, non-ASCII).
    NotPrintable {
        /// Byte offset of the first offending character.
        offset: usize,
    },
    /// Does not start with `usb:`, `sim` or `usbip:`.
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
                     ({} for sim: names)",
                    "sim:".len() + MAX_PROFILE_PATH_LEN
                )
            }
            NameError::NotPrintable { offset } => {
                write!(f, "non-printable or non-ASCII character at byte {offset}")
            }
            NameError::UnknownScheme(t) => {
                write!(f, "unknown scheme in {t:?} (expected usb:, sim or usbip:)")
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
        let max = if s.starts_with("sim:") {
            "sim:".len() + MAX_PROFILE_PATH_LEN
        } else {
            MAX_NAME_LEN
        };
        if s.len() > max {
            return Err(NameError::TooLong(s.len()));
        }
        if let Some(offset) = s.bytes().position(|b| !b.is_ascii_graphic()) {
            return Err(NameError::NotPrintable { offset });
        }
        if let Some(rest) = s.strip_prefix("usb:") {
            parse_usb(rest)
        } else if s == "sim" {
            Ok(DeviceName::Sim { profile: None })
        } else if let Some(profile) = s.strip_prefix("sim:") {
            parse_profile(profile)
        } else if let Some(rest) = s.strip_prefix("usbip:") {
            parse_usbip(rest)
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

fn parse_profile(profile: &str) -> Result<DeviceName, NameError> {
    if profile.is_empty() {
        return Err(NameError::Missing("simulator profile"));
    }
    let profile = if let Some(packed) = descriptor_hex(profile) {
        packed
    } else if is_identifier(profile) || is_profile_path(profile) {
        profile.to_owned()
    } else {
        return Err(NameError::BadField {
            field: "simulator profile",
            text: quote(profile),
        });
    };
    Ok(DeviceName::Sim {
        profile: Some(profile),
    })
}

/// A built-in profile name: a short identifier.
fn is_identifier(profile: &str) -> bool {
    profile.len() <= MAX_PROFILE_LEN
        && profile
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// A profile file: any printable, space-free path (the caller checked the
/// characters) ending in `.json`, so a mistyped profile name or a stray
/// path such as `../etc` is refused here rather than opened.
fn is_profile_path(profile: &str) -> bool {
    profile.len() <= MAX_PROFILE_PATH_LEN
        && profile.len() > ".json".len()
        && profile.ends_with(".json")
}

/// A class descriptor in hex: exactly 108 hex digits, separators allowed
/// only between bytes. Returns the digits packed, upper case.
fn descriptor_hex(profile: &str) -> Option<String> {
    let is_separator = |b: u8| matches!(b, b':' | b',' | b'-' | b'.');
    let mut packed = String::with_capacity(DESCRIPTOR_HEX_DIGITS);
    let mut run = 0usize;
    for b in profile.bytes() {
        if b.is_ascii_hexdigit() {
            packed.push(char::from(b.to_ascii_uppercase()));
            run += 1;
        } else if is_separator(b) && run % 2 == 0 && run > 0 {
            // A separator ends a byte: the digits so far come in pairs.
            run = 0;
        } else {
            return None;
        }
        if packed.len() > DESCRIPTOR_HEX_DIGITS {
            return None;
        }
    }
    (packed.len() == DESCRIPTOR_HEX_DIGITS && run > 0).then_some(packed)
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
            DeviceName::Sim { profile: None } => write!(f, "sim"),
            DeviceName::Sim {
                profile: Some(profile),
            } => write!(f, "sim:{profile}"),
            DeviceName::UsbIp { host, port, bus_id } if host.contains(':') => {
                write!(f, "usbip:[{host}]:{port}/{bus_id}")
            }
            DeviceName::UsbIp { host, port, bus_id } => write!(f, "usbip:{host}:{port}/{bus_id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GemPC Twin's class descriptor (libccid corpus, GemPCTwin.txt):
    /// bLength 0x36, bDescriptorType 0x21, bcdCCID 1.00.
    const GEMPC_TWIN: [u8; 54] = [
        0x36, 0x21, 0x00, 0x01, 0x00, 0x07, 0x03, 0x00, 0x00, 0x00, 0xA0, 0x0F, 0x00, 0x00, 0xA0,
        0x0F, 0x00, 0x00, 0x00, 0x00, 0x2A, 0x00, 0x00, 0x16, 0x40, 0x05, 0x00, 0x00, 0xFE, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x02, 0x01, 0x00, 0x0F,
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    ];

    fn hex(sep: &str, lower: bool) -> String {
        GEMPC_TWIN
            .iter()
            .map(|b| {
                if lower {
                    format!("{b:02x}")
                } else {
                    format!("{b:02X}")
                }
            })
            .collect::<Vec<_>>()
            .join(sep)
    }

    fn sim(profile: &str) -> DeviceName {
        DeviceName::Sim {
            profile: Some(profile.to_owned()),
        }
    }

    fn bad_profile(text: &str) -> Result<DeviceName, NameError> {
        Err(NameError::BadField {
            field: "simulator profile",
            text: quote(text),
        })
    }

    #[test]
    fn descriptor_hex_is_accepted_packed_or_separated_and_stored_packed() {
        let packed = hex("", false);
        assert_eq!(packed.len(), 108);
        for sep in ["", ":", ",", "-", "."] {
            for lower in [false, true] {
                let name = format!("sim:{}", hex(sep, lower));
                assert_eq!(DeviceName::parse(&name), Ok(sim(&packed)), "{name}");
            }
        }
        // 161 bytes with separators: more than a profile name, fine for sim:.
        let name = DeviceName::parse(&format!("sim:{}", hex(":", false))).unwrap();
        assert_eq!(name.to_string(), format!("sim:{packed}"));
        assert_eq!(DeviceName::parse(&name.to_string()), Ok(name));
    }

    #[test]
    fn descriptor_hex_of_the_wrong_size_or_shape_is_refused() {
        let packed = hex("", false);
        let short = &packed[..106]; // 53 bytes
        let long = format!("{packed}00"); // 55 bytes
        assert_eq!(
            DeviceName::parse(&format!("sim:{short}")),
            bad_profile(short)
        );
        assert_eq!(
            DeviceName::parse(&format!("sim:{long}")),
            bad_profile(&long)
        );
        // A separator must end a whole byte.
        let split = format!("3{}", &packed[1..]).replacen("3", "3:", 1);
        assert_eq!(
            DeviceName::parse(&format!("sim:{split}")),
            bad_profile(&split)
        );
        let trailing = format!("{}:", hex(":", false));
        assert_eq!(
            DeviceName::parse(&format!("sim:{trailing}")),
            bad_profile(&trailing)
        );
        let leading = format!(":{}", hex(":", false));
        assert_eq!(
            DeviceName::parse(&format!("sim:{leading}")),
            bad_profile(&leading)
        );
    }

    #[test]
    fn profile_files_are_paths_ending_in_json() {
        for path in [
            "/etc/ferroccid/gemalto pinpad.json".replace(' ', "_"),
            "fixtures/profiles/short-apdu.json".to_owned(),
            "../profiles/a+b=c@d~e.json".to_owned(),
            "C:\\profiles\\x.json".to_owned(),
        ] {
            assert_eq!(DeviceName::parse(&format!("sim:{path}")), Ok(sim(&path)));
        }
        // Longer than pcscd's 255 bytes, within PATH_MAX.
        let deep = format!("/{}/p.json", "d".repeat(4000));
        assert_eq!(DeviceName::parse(&format!("sim:{deep}")), Ok(sim(&deep)));
        // Not a profile file: no .json.
        assert_eq!(DeviceName::parse("sim:../etc"), bad_profile("../etc"));
        assert_eq!(
            DeviceName::parse("sim:/etc/shadow"),
            bad_profile("/etc/shadow")
        );
        // Spaces and control characters stay refused.
        assert_eq!(
            DeviceName::parse("sim:my profile.json"),
            Err(NameError::NotPrintable { offset: 6 })
        );
    }

    #[test]
    fn sim_names_are_bounded_by_path_max() {
        let at_max = format!("/{}.json", "p".repeat(MAX_PROFILE_PATH_LEN - 6));
        assert_eq!(at_max.len(), MAX_PROFILE_PATH_LEN);
        assert_eq!(
            DeviceName::parse(&format!("sim:{at_max}")),
            Ok(sim(&at_max))
        );
        let over = format!("/{}.json", "p".repeat(MAX_PROFILE_PATH_LEN - 5));
        let name = format!("sim:{over}");
        assert_eq!(
            DeviceName::parse(&name),
            Err(NameError::TooLong(name.len()))
        );
        // Other schemes keep pcscd's limit.
        let usb = format!("usb:08e6/3437:{}", "x".repeat(MAX_NAME_LEN));
        assert_eq!(DeviceName::parse(&usb), Err(NameError::TooLong(usb.len())));
    }
}
