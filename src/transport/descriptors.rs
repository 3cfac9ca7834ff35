//! Finding CCID interfaces and their endpoints in USB descriptors.
//!
//! Pure functions over raw bytes or plain structs, so both USB backends
//! share them and they are tested without hardware. The CCID class
//! descriptor itself is only located and handed out raw; parsing its
//! fields is `crate::ccid`'s job.

use super::TransportError;
use crate::ccid::descriptor::{class_descriptor_bytes, CLASS_DESCRIPTOR_LEN};

/// bInterfaceClass of a standard CCID interface (CCID rev 1.1 §4.1).
pub const CLASS_CCID: u8 = 0x0B;
/// bInterfaceClass of vendor-specific interfaces; some pre-standard
/// readers put a CCID interface behind it.
pub const CLASS_VENDOR_SPECIFIC: u8 = 0xFF;
/// bDescriptorType of the CCID class descriptor (§5.1).
pub use crate::ccid::descriptor::CCID_DESCRIPTOR_TYPE;
/// bLength of the CCID class descriptor (§5.1).
pub const CCID_DESCRIPTOR_LEN: u8 = CLASS_DESCRIPTOR_LEN as u8;

const DESCRIPTOR_TYPE_CONFIGURATION: u8 = 0x02;
const DESCRIPTOR_TYPE_INTERFACE: u8 = 0x04;
const DESCRIPTOR_TYPE_ENDPOINT: u8 = 0x05;
const TRANSFER_TYPE_BULK: u8 = 0x02;
const TRANSFER_TYPE_INTERRUPT: u8 = 0x03;
const DIRECTION_IN: u8 = 0x80;

/// One endpoint the transport uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointInfo {
    /// bEndpointAddress, direction bit included.
    pub address: u8,
    /// wMaxPacketSize, bits 0-10 (the packet size proper).
    pub max_packet_size: u16,
}

/// The endpoints of a CCID interface (CCID rev 1.1 §3: bulk-OUT and
/// bulk-IN are mandatory, interrupt-IN is optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CcidEndpoints {
    /// Bulk-OUT: PC_to_RDR messages.
    pub bulk_out: EndpointInfo,
    /// Bulk-IN: RDR_to_PC messages.
    pub bulk_in: EndpointInfo,
    /// Interrupt-IN: slot change and hardware error notifications.
    pub interrupt_in: Option<EndpointInfo>,
}

/// An endpoint descriptor reduced to what endpoint selection needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointDescription {
    /// bEndpointAddress.
    pub address: u8,
    /// bmAttributes (transfer type in bits 0-1).
    pub attributes: u8,
    /// wMaxPacketSize as found in the descriptor.
    pub max_packet_size: u16,
}

/// One alternate setting of one interface, with its endpoints and the
/// class-specific descriptors that follow it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceDescription {
    /// bInterfaceNumber.
    pub number: u8,
    /// bAlternateSetting.
    pub alt_setting: u8,
    /// bInterfaceClass.
    pub class: u8,
    /// bInterfaceSubClass.
    pub subclass: u8,
    /// bInterfaceProtocol.
    pub protocol: u8,
    /// Endpoint descriptors, in descriptor order.
    pub endpoints: Vec<EndpointDescription>,
    /// Every other descriptor between this interface descriptor and the
    /// next one, concatenated. Includes descriptors placed after the
    /// endpoints, where some pre-standard readers put the CCID descriptor.
    pub extra: Vec<u8>,
}

/// Why raw configuration-descriptor bytes could not be walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescriptorError {
    /// The bytes do not start with a configuration descriptor.
    NotConfiguration,
    /// A descriptor's bLength is below 2 or runs past the end.
    BadLength {
        /// Byte offset of the bad descriptor.
        offset: usize,
    },
}

impl std::fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DescriptorError::NotConfiguration => write!(f, "not a configuration descriptor"),
            DescriptorError::BadLength { offset } => {
                write!(f, "bad descriptor length at offset {offset}")
            }
        }
    }
}

impl std::error::Error for DescriptorError {}

/// Splits a raw configuration descriptor (as returned by GET_DESCRIPTOR,
/// wTotalLength bytes) into interface alternate settings.
///
/// Bytes beyond wTotalLength are ignored; a truncated buffer is walked as
/// far as it goes, but a descriptor whose bLength overruns it is an error.
pub fn parse_configuration(raw: &[u8]) -> Result<Vec<InterfaceDescription>, DescriptorError> {
    if raw.len() < 4 || raw[1] != DESCRIPTOR_TYPE_CONFIGURATION || raw[0] < 4 {
        return Err(DescriptorError::NotConfiguration);
    }
    let total = usize::from(u16::from_le_bytes([raw[2], raw[3]])).min(raw.len());
    let raw = &raw[..total];
    // wTotalLength 0 leaves nothing to walk, not even this header.
    let Some(&header_len) = raw.first() else {
        return Ok(Vec::new());
    };
    let mut interfaces: Vec<InterfaceDescription> = Vec::new();
    let mut offset = usize::from(header_len);
    while offset < raw.len() {
        let len = usize::from(raw[offset]);
        if len < 2 || offset + len > raw.len() {
            return Err(DescriptorError::BadLength { offset });
        }
        let desc = &raw[offset..offset + len];
        match desc[1] {
            DESCRIPTOR_TYPE_INTERFACE if len >= 9 => interfaces.push(InterfaceDescription {
                number: desc[2],
                alt_setting: desc[3],
                class: desc[5],
                subclass: desc[6],
                protocol: desc[7],
                ..Default::default()
            }),
            DESCRIPTOR_TYPE_ENDPOINT if len >= 7 => {
                if let Some(current) = interfaces.last_mut() {
                    current.endpoints.push(EndpointDescription {
                        address: desc[2],
                        attributes: desc[3],
                        max_packet_size: u16::from_le_bytes([desc[4], desc[5]]),
                    });
                }
            }
            _ => {
                if let Some(current) = interfaces.last_mut() {
                    current.extra.extend_from_slice(desc);
                }
            }
        }
        offset += len;
    }
    Ok(interfaces)
}

/// bInterval given to interrupt endpoints by [`emit_configuration`]: 16,
/// i.e. 16 ms at full speed, 2^15 microframes at high speed (USB 2.0
/// Table 9-13), a slot-change poll well below a person's reaction time.
pub const EMITTED_INTERRUPT_INTERVAL: u8 = 0x10;

/// The endpoint descriptions a CCID interface with `endpoints` has, in
/// descriptor order: bulk-OUT, bulk-IN, then interrupt-IN if present.
pub fn endpoint_descriptions(endpoints: &CcidEndpoints) -> Vec<EndpointDescription> {
    let describe = |ep: EndpointInfo, transfer_type: u8| EndpointDescription {
        address: ep.address,
        attributes: transfer_type,
        max_packet_size: ep.max_packet_size,
    };
    let mut out = vec![
        describe(endpoints.bulk_out, TRANSFER_TYPE_BULK),
        describe(endpoints.bulk_in, TRANSFER_TYPE_BULK),
    ];
    out.extend(
        endpoints
            .interrupt_in
            .map(|ep| describe(ep, TRANSFER_TYPE_INTERRUPT)),
    );
    out
}

/// A configuration descriptor (USB 2.0 §9.6.3) with one interface, the
/// inverse of [`parse_configuration`] for devices that are played rather
/// than read: the simulator and the USB/IP server for transports that
/// report no raw configuration.
///
/// bConfigurationValue 1, bus powered, 100 mA; the interface's `extra`
/// (the class descriptor) sits right after the interface descriptor, where
/// CCID §5.1 puts it; bInterval is [`EMITTED_INTERRUPT_INTERVAL`] on
/// interrupt endpoints and 0 on bulk ones.
pub fn emit_configuration(interface: &InterfaceDescription) -> Vec<u8> {
    let mut out = vec![9, DESCRIPTOR_TYPE_CONFIGURATION, 0, 0, 1, 1, 0, 0x80, 50];
    out.extend_from_slice(&[
        9,
        DESCRIPTOR_TYPE_INTERFACE,
        interface.number,
        interface.alt_setting,
        interface.endpoints.len() as u8,
        interface.class,
        interface.subclass,
        interface.protocol,
        0,
    ]);
    out.extend_from_slice(&interface.extra);
    for ep in &interface.endpoints {
        let [lo, hi] = ep.max_packet_size.to_le_bytes();
        let interval = if ep.attributes & 0x03 == TRANSFER_TYPE_INTERRUPT {
            EMITTED_INTERRUPT_INTERVAL
        } else {
            0
        };
        out.extend_from_slice(&[
            7,
            DESCRIPTOR_TYPE_ENDPOINT,
            ep.address,
            ep.attributes,
            lo,
            hi,
            interval,
        ]);
    }
    let total = (out.len() as u16).to_le_bytes();
    out[2..4].copy_from_slice(&total);
    out
}

/// Finds the CCID class descriptor in an interface's extra descriptors and
/// returns its 54 raw bytes.
///
/// The test is `crate::ccid`'s, so discovery accepts exactly what the
/// reader will later parse: type 0x21, or 0xFF on pre-standard readers.
pub fn find_class_descriptor(extra: &[u8]) -> Option<&[u8]> {
    class_descriptor_bytes(extra)
}

/// Whether discovery should offer this interface as a CCID reader: class
/// 0x0B always (its descriptor may be unreadable yet), class 0xFF only with
/// a valid CCID class descriptor.
pub fn is_ccid_interface(class: u8, extra: &[u8]) -> bool {
    match class {
        CLASS_CCID => true,
        CLASS_VENDOR_SPECIFIC => find_class_descriptor(extra).is_some(),
        _ => false,
    }
}

/// Picks the first bulk-OUT, first bulk-IN and first interrupt-IN endpoint.
pub fn select_endpoints(
    endpoints: &[EndpointDescription],
) -> Result<CcidEndpoints, TransportError> {
    let find = |transfer_type: u8, direction_in: bool| {
        endpoints
            .iter()
            .find(|ep| {
                ep.attributes & 0x03 == transfer_type
                    && (ep.address & DIRECTION_IN != 0) == direction_in
            })
            .map(|ep| EndpointInfo {
                address: ep.address,
                max_packet_size: ep.max_packet_size & 0x07FF,
            })
    };
    Ok(CcidEndpoints {
        bulk_out: find(TRANSFER_TYPE_BULK, false)
            .ok_or(TransportError::MissingEndpoint("bulk-OUT"))?,
        bulk_in: find(TRANSFER_TYPE_BULK, true)
            .ok_or(TransportError::MissingEndpoint("bulk-IN"))?,
        interrupt_in: find(TRANSFER_TYPE_INTERRUPT, true),
    })
}

/// The interface the name asks for (which must be CCID), or the first CCID
/// interface; alternate setting 0 in both cases.
pub fn choose_interface(
    interfaces: &[InterfaceDescription],
    wanted: Option<u8>,
) -> Result<&InterfaceDescription, TransportError> {
    let mut alt0 = interfaces.iter().filter(|i| i.alt_setting == 0);
    match wanted {
        Some(number) => {
            let intf = alt0
                .find(|i| i.number == number)
                .ok_or_else(|| TransportError::NotFound(format!("interface {number}")))?;
            if is_ccid_interface(intf.class, &intf.extra) {
                Ok(intf)
            } else {
                Err(TransportError::NotCcidInterface {
                    interface: number,
                    class: intf.class,
                })
            }
        }
        None => alt0
            .find(|i| is_ccid_interface(i.class, &i.extra))
            .ok_or_else(|| TransportError::NotFound("a CCID interface".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `ccid_descriptor` fuzz target: a configuration
    /// descriptor whose wTotalLength is 0 indexed an empty slice.
    #[test]
    fn zero_total_length_walks_nothing() {
        let raw = [9, 2, 0, 0, 1, 1, 0, 0x80, 50, 9, 4, 0, 0, 0, 0x0B, 0, 0, 0];
        assert_eq!(parse_configuration(&raw), Ok(Vec::new()));
    }

    /// CCID §5.1 names type 0x21; readers built before CCID 1.0 use 0xFF
    /// with the same 54-byte layout, and `ClassDescriptor::parse` accepts
    /// both, so discovery must find both.
    #[test]
    fn pre_standard_type_0xff_class_descriptor_is_found() {
        let mut class = [0u8; 54];
        class[0] = 0x36;
        class[1] = 0xFF;
        let mut extra = vec![7u8, 0x05, 0x81, 0x03, 8, 0, 10]; // an endpoint first
        extra.extend_from_slice(&class);
        assert_eq!(find_class_descriptor(&extra), Some(&class[..]));
        assert!(is_ccid_interface(CLASS_VENDOR_SPECIFIC, &extra));
        // Another vendor type of the same length is not a class descriptor.
        class[1] = 0x24;
        assert_eq!(find_class_descriptor(&class), None);
        assert!(!is_ccid_interface(CLASS_VENDOR_SPECIFIC, &class));
    }

    /// USB 2.0 Tables 9-10, 9-12 and 9-13 byte by byte, and read back by
    /// the parser into what was emitted.
    #[test]
    fn emitted_configuration_is_standard_and_parses_back() {
        let mut class = vec![0u8; 54];
        class[0] = 0x36;
        class[1] = 0x21;
        let interface = InterfaceDescription {
            number: 2,
            class: CLASS_CCID,
            protocol: 0,
            endpoints: endpoint_descriptions(&CcidEndpoints {
                bulk_out: EndpointInfo {
                    address: 0x01,
                    max_packet_size: 64,
                },
                bulk_in: EndpointInfo {
                    address: 0x82,
                    max_packet_size: 64,
                },
                interrupt_in: Some(EndpointInfo {
                    address: 0x83,
                    max_packet_size: 8,
                }),
            }),
            extra: class.clone(),
            ..Default::default()
        };
        let raw = emit_configuration(&interface);
        assert_eq!(raw.len(), 9 + 9 + 54 + 3 * 7);
        // wTotalLength 93, one interface, configuration 1, bus powered, 100 mA.
        assert_eq!(raw[..9], [9, 0x02, 93, 0, 1, 1, 0, 0x80, 50]);
        assert_eq!(raw[9..18], [9, 0x04, 2, 0, 3, 0x0B, 0, 0, 0]);
        assert_eq!(raw[18..72], class[..]);
        assert_eq!(raw[72..79], [7, 0x05, 0x01, 0x02, 64, 0, 0]);
        assert_eq!(raw[79..86], [7, 0x05, 0x82, 0x02, 64, 0, 0]);
        assert_eq!(raw[86..93], [7, 0x05, 0x83, 0x03, 8, 0, 0x10]);
        assert_eq!(parse_configuration(&raw), Ok(vec![interface]));
    }

    #[test]
    fn choosing_a_non_ccid_interface_is_a_distinct_error() {
        let keyboard = InterfaceDescription {
            number: 0,
            class: 0x03,
            ..Default::default()
        };
        let ccid = InterfaceDescription {
            number: 1,
            class: 0x0B,
            ..Default::default()
        };
        let interfaces = [keyboard, ccid];
        assert!(matches!(
            choose_interface(&interfaces, Some(0)),
            Err(TransportError::NotCcidInterface {
                interface: 0,
                class: 0x03
            })
        ));
        assert_eq!(choose_interface(&interfaces, Some(1)).unwrap().number, 1);
        assert_eq!(choose_interface(&interfaces, None).unwrap().number, 1);
        assert!(matches!(
            choose_interface(&interfaces, Some(7)),
            Err(TransportError::NotFound(_))
        ));
    }
}
