//! The CCID class descriptor (CCID §5.1) and locating it in a
//! configuration descriptor.
use core::fmt;

/// Size of the class descriptor (`bLength` 0x36).
pub const CLASS_DESCRIPTOR_LEN: usize = 54;
/// `bDescriptorType` of the CCID class descriptor.
pub const CCID_DESCRIPTOR_TYPE: u8 = 0x21;
/// `bDescriptorType` used instead by some readers built before CCID 1.0
/// (libccid reports them as "PROPRIETARY bDescriptorType"); the layout is the same.
pub const VENDOR_DESCRIPTOR_TYPE: u8 = 0xFF;

/// Names of the fields, by byte offset, so errors can say which byte is wrong.
const FIELD_AT: [(usize, &str); 22] = [
    (0, "bLength"),
    (1, "bDescriptorType"),
    (2, "bcdCCID"),
    (4, "bMaxSlotIndex"),
    (5, "bVoltageSupport"),
    (6, "dwProtocols"),
    (10, "dwDefaultClock"),
    (14, "dwMaximumClock"),
    (18, "bNumClockSupported"),
    (19, "dwDataRate"),
    (23, "dwMaxDataRate"),
    (27, "bNumDataRatesSupported"),
    (28, "dwMaxIFSD"),
    (32, "dwSynchProtocols"),
    (36, "dwMechanical"),
    (40, "dwFeatures"),
    (44, "dwMaxCCIDMessageLength"),
    (48, "bClassGetResponse"),
    (49, "bClassEnvelope"),
    (50, "wLcdLayout"),
    (52, "bPINSupport"),
    (53, "bMaxCCIDBusySlots"),
];

/// The name of the class-descriptor field containing byte `offset`.
pub fn field_name(offset: usize) -> &'static str {
    FIELD_AT
        .iter()
        .rev()
        .find(|(at, _)| *at <= offset)
        .map_or("?", |(_, name)| name)
}

/// Why a class or configuration descriptor cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescriptorError {
    /// The class descriptor is not 54 bytes.
    WrongSize {
        /// Bytes given.
        len: usize,
    },
    /// A byte has a value the specification forbids.
    BadByte {
        /// Offset in the class descriptor.
        offset: usize,
        /// The byte.
        value: u8,
        /// What was expected, e.g. "0x36".
        expected: &'static str,
    },
    /// A standard descriptor in the configuration has `bLength` < 2 (0 would loop forever).
    ZeroLength {
        /// Offset in the configuration descriptor.
        offset: usize,
        /// The `bLength`.
        length: u8,
    },
    /// A standard descriptor runs past the end of the configuration.
    Overrun {
        /// Offset in the configuration descriptor.
        offset: usize,
        /// Its `bLength`.
        length: u8,
        /// Bytes left.
        remaining: usize,
    },
    /// A descriptor is shorter than its type requires (interface 9, endpoint 7).
    ShortDescriptor {
        /// Offset in the configuration descriptor.
        offset: usize,
        /// Its `bDescriptorType`.
        descriptor_type: u8,
        /// Its `bLength`.
        length: u8,
    },
    /// No interface with that number.
    InterfaceNotFound {
        /// `bInterfaceNumber` asked for.
        interface: u8,
    },
    /// The interface is neither Smart Card (0x0B) nor vendor-specific (0xFF).
    NotSmartCard {
        /// `bInterfaceClass`.
        class: u8,
    },
    /// The interface has no 54-byte class descriptor.
    NoClassDescriptor {
        /// `bInterfaceNumber`.
        interface: u8,
    },
}

impl fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DescriptorError::WrongSize { len } => write!(
                f,
                "class descriptor is {len} bytes, expected {CLASS_DESCRIPTOR_LEN}"
            ),
            DescriptorError::BadByte {
                offset,
                value,
                expected,
            } => write!(
                f,
                "byte {offset} ({}) is 0x{value:02X}, expected {expected}",
                field_name(*offset)
            ),
            DescriptorError::ZeroLength { offset, length } => write!(
                f,
                "descriptor at offset {offset} has bLength {length} (< 2)"
            ),
            DescriptorError::Overrun {
                offset,
                length,
                remaining,
            } => write!(
                f,
                "descriptor at offset {offset} has bLength {length} but only {remaining} bytes remain"
            ),
            DescriptorError::ShortDescriptor {
                offset,
                descriptor_type,
                length,
            } => write!(
                f,
                "descriptor type 0x{descriptor_type:02X} at offset {offset} is too short (bLength {length})"
            ),
            DescriptorError::InterfaceNotFound { interface } => {
                write!(f, "no interface {interface} in the configuration descriptor")
            }
            DescriptorError::NotSmartCard { class } => write!(
                f,
                "bInterfaceClass 0x{class:02X} is neither Smart Card (0x0B) nor vendor-specific (0xFF)"
            ),
            DescriptorError::NoClassDescriptor { interface } => {
                write!(f, "interface {interface} has no CCID class descriptor")
            }
        }
    }
}

impl std::error::Error for DescriptorError {}

/// How much of the ISO 7816 protocol the reader does itself (`dwFeatures` & 0x00070000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeLevel {
    /// 0x00000000: the host sends characters.
    Character,
    /// 0x00010000: the host sends TPDUs.
    Tpdu,
    /// 0x00020000: the host sends short APDUs.
    ShortApdu,
    /// 0x00040000: the host sends short and extended APDUs.
    ExtendedApdu,
}

impl ExchangeLevel {
    /// Name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeLevel::Character => "character",
            ExchangeLevel::Tpdu => "tpdu",
            ExchangeLevel::ShortApdu => "short_apdu",
            ExchangeLevel::ExtendedApdu => "extended_apdu",
        }
    }
}

/// `dwFeatures` bits (CCID §5.1, table 5.1-1).
pub mod features {
    /// Automatic parameter configuration based on ATR data.
    pub const AUTO_PARAMETERS_FROM_ATR: u32 = 0x0000_0002;
    /// Automatic activation of ICC on inserting.
    pub const AUTO_ACTIVATION: u32 = 0x0000_0004;
    /// Automatic ICC voltage selection.
    pub const AUTO_VOLTAGE: u32 = 0x0000_0008;
    /// Automatic ICC clock frequency change.
    pub const AUTO_CLOCK: u32 = 0x0000_0010;
    /// Automatic baud rate change.
    pub const AUTO_BAUD: u32 = 0x0000_0020;
    /// Automatic parameters negotiation made by the CCID.
    pub const AUTO_PARAMETER_NEGOTIATION: u32 = 0x0000_0040;
    /// Automatic PPS made by the CCID.
    pub const AUTO_PPS: u32 = 0x0000_0080;
    /// CCID can set ICC in clock stop mode.
    pub const CLOCK_STOP: u32 = 0x0000_0100;
    /// NAD value other than 00 accepted (T=1).
    pub const NAD_OTHER_THAN_ZERO: u32 = 0x0000_0200;
    /// Automatic IFSD exchange as first exchange (T=1).
    pub const AUTO_IFSD: u32 = 0x0000_0400;
    /// Not in CCID 1.1; set by ICCD tokens (libccid: "ICCD token").
    pub const ICCD_TOKEN: u32 = 0x0000_0800;
    /// Mask of the exchange level.
    pub const EXCHANGE_LEVEL_MASK: u32 = 0x0007_0000;
    /// TPDU level exchange.
    pub const TPDU: u32 = 0x0001_0000;
    /// Short APDU level exchange.
    pub const SHORT_APDU: u32 = 0x0002_0000;
    /// Short and extended APDU level exchange.
    pub const EXTENDED_APDU: u32 = 0x0004_0000;
    /// USB wake-up signalling on card insertion and removal.
    pub const USB_WAKE_UP: u32 = 0x0010_0000;

    /// Every non-level bit with its meaning, for bit-by-bit display.
    pub const FLAGS: [(u32, &str); 12] = [
        (
            AUTO_PARAMETERS_FROM_ATR,
            "Automatic parameter configuration based on ATR data",
        ),
        (AUTO_ACTIVATION, "Automatic activation of ICC on inserting"),
        (AUTO_VOLTAGE, "Automatic ICC voltage selection"),
        (
            AUTO_CLOCK,
            "Automatic ICC clock frequency change according to parameters",
        ),
        (
            AUTO_BAUD,
            "Automatic baud rate change according to frequency and Fi, Di params",
        ),
        (
            AUTO_PARAMETER_NEGOTIATION,
            "Automatic parameters negotiation made by the CCID",
        ),
        (AUTO_PPS, "Automatic PPS made by the CCID"),
        (CLOCK_STOP, "CCID can set ICC in clock stop mode"),
        (
            NAD_OTHER_THAN_ZERO,
            "NAD value other than 00 accepted (T=1)",
        ),
        (AUTO_IFSD, "Automatic IFSD exchange as first exchange (T=1)"),
        (ICCD_TOKEN, "ICCD token"),
        (
            USB_WAKE_UP,
            "USB Wake up signaling supported on card insertion and removal",
        ),
    ];
}

/// The 54-byte CCID class descriptor, every field decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClassDescriptor {
    /// `bDescriptorType`: 0x21, or 0xFF on some pre-standard readers.
    pub descriptor_type: u8,
    /// `bcdCCID`, e.g. 0x0110 for 1.10.
    pub bcd_ccid: u16,
    /// `bMaxSlotIndex`: number of slots minus one.
    pub max_slot_index: u8,
    /// `bVoltageSupport`: 0x01 5.0 V, 0x02 3.0 V, 0x04 1.8 V.
    pub voltage_support: u8,
    /// `dwProtocols`: bit 0 T=0, bit 1 T=1.
    pub protocols: u32,
    /// `dwDefaultClock` in kHz.
    pub default_clock_khz: u32,
    /// `dwMaximumClock` in kHz.
    pub maximum_clock_khz: u32,
    /// `bNumClockSupported` (0: ask GET_CLOCK_FREQUENCIES... or use the default).
    pub num_clock_supported: u8,
    /// `dwDataRate` in bps.
    pub data_rate: u32,
    /// `dwMaxDataRate` in bps.
    pub max_data_rate: u32,
    /// `bNumDataRatesSupported`.
    pub num_data_rates_supported: u8,
    /// `dwMaxIFSD`.
    pub max_ifsd: u32,
    /// `dwSynchProtocols`: 0x01 2-wire, 0x02 3-wire, 0x04 I2C.
    pub synch_protocols: u32,
    /// `dwMechanical`: 0x01 accept, 0x02 eject, 0x04 capture, 0x08 lock/unlock.
    pub mechanical: u32,
    /// `dwFeatures` (see [`features`]).
    pub features: u32,
    /// `dwMaxCCIDMessageLength`, header included.
    pub max_message_length: u32,
    /// `bClassGetResponse` (0xFF: echo the APDU class).
    pub class_get_response: u8,
    /// `bClassEnvelope` (0xFF: echo the APDU class).
    pub class_envelope: u8,
    /// `wLcdLayout`: lines in the high byte, characters per line in the low byte.
    pub lcd_layout: u16,
    /// `bPINSupport`: 0x01 verification, 0x02 modification.
    pub pin_support: u8,
    /// `bMaxCCIDBusySlots`.
    pub max_busy_slots: u8,
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl ClassDescriptor {
    /// Decode exactly 54 bytes; `bLength` must be 0x36 and `bDescriptorType` 0x21 or 0xFF.
    pub fn parse(b: &[u8]) -> Result<ClassDescriptor, DescriptorError> {
        // The header bytes are checked first so a wrong input is reported at
        // its first wrong byte even when its size is also wrong.
        if let Some(&length) = b.first() {
            if length != CLASS_DESCRIPTOR_LEN as u8 {
                return Err(DescriptorError::BadByte {
                    offset: 0,
                    value: length,
                    expected: "0x36",
                });
            }
        }
        if let Some(&descriptor_type) = b.get(1) {
            if descriptor_type != CCID_DESCRIPTOR_TYPE && descriptor_type != VENDOR_DESCRIPTOR_TYPE
            {
                return Err(DescriptorError::BadByte {
                    offset: 1,
                    value: descriptor_type,
                    expected: "0x21 (or 0xFF on pre-standard readers)",
                });
            }
        }
        if b.len() != CLASS_DESCRIPTOR_LEN {
            return Err(DescriptorError::WrongSize { len: b.len() });
        }
        Ok(ClassDescriptor {
            descriptor_type: b[1],
            bcd_ccid: u16::from_le_bytes([b[2], b[3]]),
            max_slot_index: b[4],
            voltage_support: b[5],
            protocols: le32(b, 6),
            default_clock_khz: le32(b, 10),
            maximum_clock_khz: le32(b, 14),
            num_clock_supported: b[18],
            data_rate: le32(b, 19),
            max_data_rate: le32(b, 23),
            num_data_rates_supported: b[27],
            max_ifsd: le32(b, 28),
            synch_protocols: le32(b, 32),
            mechanical: le32(b, 36),
            features: le32(b, 40),
            max_message_length: le32(b, 44),
            class_get_response: b[48],
            class_envelope: b[49],
            lcd_layout: u16::from_le_bytes([b[50], b[51]]),
            pin_support: b[52],
            max_busy_slots: b[53],
        })
    }

    /// `bcdCCID` as text, e.g. "1.10".
    pub fn version_string(&self) -> String {
        format!("{:X}.{:02X}", self.bcd_ccid >> 8, self.bcd_ccid & 0xFF)
    }

    /// The exchange level. A `dwFeatures` with several or no level bits other
    /// than the four defined values is reported as `Character`, the level
    /// that assumes nothing of the reader; see [`Self::exchange_level_is_valid`].
    pub fn exchange_level(&self) -> ExchangeLevel {
        match self.features & features::EXCHANGE_LEVEL_MASK {
            features::TPDU => ExchangeLevel::Tpdu,
            features::SHORT_APDU => ExchangeLevel::ShortApdu,
            features::EXTENDED_APDU => ExchangeLevel::ExtendedApdu,
            _ => ExchangeLevel::Character,
        }
    }

    /// True when the level bits hold one of the four defined values.
    pub fn exchange_level_is_valid(&self) -> bool {
        matches!(
            self.features & features::EXCHANGE_LEVEL_MASK,
            0 | features::TPDU | features::SHORT_APDU | features::EXTENDED_APDU
        )
    }

    /// True when `flag` (a [`features`] constant) is set in `dwFeatures`.
    pub fn has_feature(&self, flag: u32) -> bool {
        self.features & flag == flag
    }

    /// The reader configures parameters from the ATR by itself.
    pub fn auto_parameters_from_atr(&self) -> bool {
        self.has_feature(features::AUTO_PARAMETERS_FROM_ATR)
    }
    /// The reader selects the ICC voltage by itself.
    pub fn auto_voltage(&self) -> bool {
        self.has_feature(features::AUTO_VOLTAGE)
    }
    /// The reader changes the clock by itself.
    pub fn auto_clock(&self) -> bool {
        self.has_feature(features::AUTO_CLOCK)
    }
    /// The reader changes the baud rate by itself.
    pub fn auto_baud(&self) -> bool {
        self.has_feature(features::AUTO_BAUD)
    }
    /// The reader negotiates parameters by itself.
    pub fn auto_parameter_negotiation(&self) -> bool {
        self.has_feature(features::AUTO_PARAMETER_NEGOTIATION)
    }
    /// The reader does PPS by itself.
    pub fn auto_pps(&self) -> bool {
        self.has_feature(features::AUTO_PPS)
    }
    /// The reader sends S(IFS request) by itself (T=1).
    pub fn auto_ifsd(&self) -> bool {
        self.has_feature(features::AUTO_IFSD)
    }

    /// Number of slots (`bMaxSlotIndex` + 1).
    pub fn slot_count(&self) -> usize {
        usize::from(self.max_slot_index) + 1
    }
    /// `dwProtocols` bit 0.
    pub fn supports_t0(&self) -> bool {
        self.protocols & 0x1 != 0
    }
    /// `dwProtocols` bit 1.
    pub fn supports_t1(&self) -> bool {
        self.protocols & 0x2 != 0
    }
    /// 5.0 V (class A) supported.
    pub fn supports_5v(&self) -> bool {
        self.voltage_support & 0x01 != 0
    }
    /// 3.0 V (class B) supported.
    pub fn supports_3v(&self) -> bool {
        self.voltage_support & 0x02 != 0
    }
    /// 1.8 V (class C) supported.
    pub fn supports_1v8(&self) -> bool {
        self.voltage_support & 0x04 != 0
    }
    /// PIN verification on the reader's pad.
    pub fn supports_pin_verify(&self) -> bool {
        self.pin_support & 0x01 != 0
    }
    /// PIN modification on the reader's pad.
    pub fn supports_pin_modify(&self) -> bool {
        self.pin_support & 0x02 != 0
    }
    /// LCD lines (high byte of `wLcdLayout`).
    pub fn lcd_lines(&self) -> u8 {
        (self.lcd_layout >> 8) as u8
    }
    /// LCD characters per line (low byte of `wLcdLayout`).
    pub fn lcd_columns(&self) -> u8 {
        (self.lcd_layout & 0xFF) as u8
    }
}

/// The flavour of smart-card interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterfaceKind {
    /// Class 0x0B protocol 0: bulk messages (CCID).
    Ccid,
    /// Class 0x0B protocol 1: ICCD version A (control transfers, characters).
    IccdA,
    /// Class 0x0B protocol 2: ICCD version B (control transfers, APDUs).
    IccdB,
    /// Class 0x0B with another protocol value.
    OtherProtocol(u8),
    /// Class 0xFF with a CCID class descriptor (pre-standard readers).
    Vendor,
}

/// An endpoint of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// `bEndpointAddress` (bit 7 set = IN).
    pub address: u8,
    /// `wMaxPacketSize` (bits 0-10).
    pub max_packet_size: u16,
}

/// What the standard descriptors say about the smart-card interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InterfaceInfo {
    /// `bInterfaceNumber`.
    pub number: u8,
    /// `bAlternateSetting`.
    pub alternate_setting: u8,
    /// `bInterfaceClass`.
    pub class: u8,
    /// `bInterfaceSubClass`.
    pub subclass: u8,
    /// `bInterfaceProtocol`.
    pub protocol: u8,
    /// CCID, ICCD-A, ICCD-B or vendor.
    pub kind: InterfaceKind,
    /// Bulk-IN endpoint (first one).
    pub bulk_in: Option<Endpoint>,
    /// Bulk-OUT endpoint (first one).
    pub bulk_out: Option<Endpoint>,
    /// Interrupt-IN endpoint (first one).
    pub interrupt_in: Option<Endpoint>,
}

const INTERFACE: u8 = 0x04;
const ENDPOINT: u8 = 0x05;
const INTERFACE_ASSOCIATION: u8 = 0x0B;
const CONFIGURATION: u8 = 0x02;

/// Split the configuration into standard descriptors `(offset, bytes)`,
/// rejecting `bLength` < 2 (a zero would loop forever) and overruns.
fn descriptors(config: &[u8]) -> impl Iterator<Item = Result<(usize, &[u8]), DescriptorError>> {
    let mut offset = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || offset >= config.len() {
            return None;
        }
        let rest = &config[offset..];
        let length = rest[0];
        let result = if length < 2 {
            Err(DescriptorError::ZeroLength { offset, length })
        } else if usize::from(length) > rest.len() {
            Err(DescriptorError::Overrun {
                offset,
                length,
                remaining: rest.len(),
            })
        } else {
            Ok((offset, &rest[..usize::from(length)]))
        };
        match result {
            Ok(_) => offset += usize::from(length),
            Err(_) => failed = true,
        }
        Some(result)
    })
}

/// Whether one standard descriptor is the CCID class descriptor: 54 bytes
/// of type 0x21, or 0xFF on pre-standard readers. A HID descriptor is also
/// type 0x21 but 9 bytes long, so the length is part of the test.
fn is_class_descriptor(descriptor: &[u8]) -> bool {
    descriptor.len() == CLASS_DESCRIPTOR_LEN
        && matches!(descriptor[1], CCID_DESCRIPTOR_TYPE | VENDOR_DESCRIPTOR_TYPE)
}

/// The raw 54-byte CCID class descriptor among a run of descriptors: the
/// first one [`find_class_descriptor`] would take.
///
/// For callers that hold only the descriptors between one interface
/// descriptor and the next (an interface's "extra" bytes, all that rusb
/// gives at discovery); a whole configuration is walked by
/// [`find_class_descriptor`], which also decodes the interface. A bad
/// `bLength` ends the walk: what follows it cannot be trusted.
pub fn class_descriptor_bytes(descriptors_run: &[u8]) -> Option<&[u8]> {
    descriptors(descriptors_run)
        .map_while(Result::ok)
        .map(|(_, descriptor)| descriptor)
        .find(|descriptor| is_class_descriptor(descriptor))
}

/// Find interface `interface_number` (alternate setting 0) in the raw
/// configuration descriptor and its CCID class descriptor, wherever the
/// device put it among the interface's descriptors: right after the
/// interface descriptor (the standard place), after the endpoints, or on a
/// vendor-class interface. A `wTotalLength` shorter than the buffer bounds
/// the walk.
pub fn find_class_descriptor(
    config_descriptor: &[u8],
    interface_number: u8,
) -> Result<(InterfaceInfo, ClassDescriptor), DescriptorError> {
    let mut config = config_descriptor;
    if config.len() >= 4 && config[1] == CONFIGURATION && config[0] >= 4 {
        let total = usize::from(u16::from_le_bytes([config[2], config[3]]));
        if total < config.len() {
            config = &config[..total];
        }
    }
    let mut info: Option<InterfaceInfo> = None;
    let mut class_descriptor: Option<&[u8]> = None;
    for d in descriptors(config) {
        let (offset, d) = d?;
        let descriptor_type = d[1];
        if let Some(found) = info.as_mut() {
            match descriptor_type {
                INTERFACE | INTERFACE_ASSOCIATION => break,
                ENDPOINT => {
                    if d.len() < 7 {
                        return Err(DescriptorError::ShortDescriptor {
                            offset,
                            descriptor_type,
                            length: d[0],
                        });
                    }
                    let endpoint = Endpoint {
                        address: d[2],
                        max_packet_size: u16::from_le_bytes([d[4], d[5]]) & 0x07FF,
                    };
                    let is_in = d[2] & 0x80 != 0;
                    let slot = match (d[3] & 0x03, is_in) {
                        (2, true) => &mut found.bulk_in,
                        (2, false) => &mut found.bulk_out,
                        (3, true) => &mut found.interrupt_in,
                        _ => continue,
                    };
                    slot.get_or_insert(endpoint);
                }
                _ if class_descriptor.is_none() && is_class_descriptor(d) => {
                    class_descriptor = Some(d);
                }
                _ => {}
            }
        } else if descriptor_type == INTERFACE {
            if d.len() < 9 {
                return Err(DescriptorError::ShortDescriptor {
                    offset,
                    descriptor_type,
                    length: d[0],
                });
            }
            if d[2] == interface_number && d[3] == 0 {
                let (class, subclass, protocol) = (d[5], d[6], d[7]);
                let kind = match (class, protocol) {
                    (0x0B, 0) => InterfaceKind::Ccid,
                    (0x0B, 1) => InterfaceKind::IccdA,
                    (0x0B, 2) => InterfaceKind::IccdB,
                    (0x0B, p) => InterfaceKind::OtherProtocol(p),
                    (0xFF, _) => InterfaceKind::Vendor,
                    (class, _) => return Err(DescriptorError::NotSmartCard { class }),
                };
                info = Some(InterfaceInfo {
                    number: d[2],
                    alternate_setting: d[3],
                    class,
                    subclass,
                    protocol,
                    kind,
                    bulk_in: None,
                    bulk_out: None,
                    interrupt_in: None,
                });
            }
        }
    }
    let info = info.ok_or(DescriptorError::InterfaceNotFound {
        interface: interface_number,
    })?;
    let class_descriptor = class_descriptor.ok_or(DescriptorError::NoClassDescriptor {
        interface: interface_number,
    })?;
    Ok((info, ClassDescriptor::parse(class_descriptor)?))
}
