//! The exported device's endpoint 0, answered from a [`TransportInfo`].
//!
//! A transport only carries CCID traffic, so the server plays the USB
//! device itself for the standard requests (USB 2.0 §9.4): it synthesises
//! the device descriptor, serves the configuration and string
//! descriptors, and acknowledges configuration and feature requests. Pure
//! functions of the setup packet, so they are tested without sockets.

use ferroccid::descriptors::{
    emit_configuration, endpoint_descriptions, find_class_descriptor, parse_configuration,
    InterfaceDescription, CLASS_CCID, CLASS_VENDOR_SPECIFIC,
};
use ferroccid::TransportInfo;

use ferroccid::usbip::wire::{speed, DeviceRecord, InterfaceRecord, SetupPacket};

/// bmRequestType of a CCID class request with data to the host.
pub(crate) const CLASS_IN: u8 = 0xA1;
/// bmRequestType of a CCID class request with data (or none) to the device.
pub(crate) const CLASS_OUT: u8 = 0x21;

const GET_STATUS: u8 = 0x00;
const CLEAR_FEATURE: u8 = 0x01;
const SET_FEATURE: u8 = 0x03;
const GET_DESCRIPTOR: u8 = 0x06;
const GET_CONFIGURATION: u8 = 0x08;
const SET_CONFIGURATION: u8 = 0x09;
const GET_INTERFACE: u8 = 0x0A;
const SET_INTERFACE: u8 = 0x0B;

const DT_DEVICE: u8 = 0x01;
const DT_CONFIGURATION: u8 = 0x02;
const DT_STRING: u8 = 0x03;

/// String descriptor indices the synthesised device descriptor uses.
const I_MANUFACTURER: u8 = 1;
const I_PRODUCT: u8 = 2;
const I_SERIAL: u8 = 3;
/// US English, the only language offered.
const LANGID_EN_US: u16 = 0x0409;
/// Endpoint-0 packet size: 64 is valid at full and high speed.
const EP0_MAX_PACKET: u8 = 64;

/// What endpoint 0 answers to one setup packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlAnswer {
    /// Data stage to the host, already cut to wLength.
    Data(Vec<u8>),
    /// Status stage only: the request succeeded.
    Ack,
    /// The request is not supported: STALL (-EPIPE).
    Stall,
    /// A CCID class request with data to the host: forward to
    /// `Transport::control_in`.
    ClassIn {
        /// bRequest.
        request: u8,
        /// wValue.
        value: u16,
        /// wLength.
        length: u16,
    },
    /// A CCID class request to the device: forward to
    /// `Transport::control_out`.
    ClassOut {
        /// bRequest.
        request: u8,
        /// wValue.
        value: u16,
    },
}

/// The USB face of an exported transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceModel {
    device_descriptor: [u8; 18],
    configuration: Vec<u8>,
    strings: [Option<String>; 3],
    configuration_value: u8,
    self_powered: bool,
    interfaces: Vec<InterfaceRecord>,
    speed: u32,
}

impl DeviceModel {
    /// Builds the device from what the transport reports. An empty raw
    /// configuration descriptor is synthesised from the endpoints and the
    /// class descriptor so that simple transports can be exported too.
    pub fn from_info(info: &TransportInfo) -> Self {
        let configuration = if info.configuration_descriptor.len() >= 9 {
            info.configuration_descriptor.clone()
        } else {
            synthesise_configuration(info)
        };
        let strings = [
            info.manufacturer.clone(),
            info.product.clone(),
            info.serial.clone(),
        ];
        let index = |i: usize, value: u8| if strings[i].is_some() { value } else { 0 };
        let mut d = [0u8; 18];
        d[0] = 18;
        d[1] = DT_DEVICE;
        d[2..4].copy_from_slice(&0x0200u16.to_le_bytes());
        // Class 0: each interface names its own class.
        d[7] = EP0_MAX_PACKET;
        d[8..10].copy_from_slice(&info.vendor_id.to_le_bytes());
        d[10..12].copy_from_slice(&info.product_id.to_le_bytes());
        d[12..14].copy_from_slice(&info.bcd_device.to_le_bytes());
        d[14] = index(0, I_MANUFACTURER);
        d[15] = index(1, I_PRODUCT);
        d[16] = index(2, I_SERIAL);
        d[17] = 1;
        let interfaces = parse_configuration(&configuration)
            .map(|list| {
                // bNumInterfaces is one byte: a configuration listing
                // more interfaces is broken, and the devlist record must
                // count exactly the interface records that follow it.
                list.iter()
                    .filter(|i| i.alt_setting == 0)
                    .take(usize::from(u8::MAX))
                    .map(|i| InterfaceRecord {
                        class: i.class,
                        subclass: i.subclass,
                        protocol: i.protocol,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let bulk_packet = info
            .endpoints
            .map(|e| e.bulk_in.max_packet_size)
            .unwrap_or(64);
        DeviceModel {
            device_descriptor: d,
            configuration_value: configuration.get(5).copied().unwrap_or(1),
            self_powered: configuration.get(7).is_some_and(|a| a & 0x40 != 0),
            configuration,
            strings,
            interfaces,
            speed: if bulk_packet >= 512 {
                speed::HIGH
            } else {
                speed::FULL
            },
        }
    }

    /// The 18-byte device descriptor.
    pub fn device_descriptor(&self) -> &[u8; 18] {
        &self.device_descriptor
    }

    /// The whole configuration descriptor.
    pub fn configuration(&self) -> &[u8] {
        &self.configuration
    }

    /// The devlist/import record under `busid`.
    pub fn record(&self, busid: &str, busnum: u32, devnum: u32) -> DeviceRecord {
        let d = &self.device_descriptor;
        DeviceRecord {
            path: format!("/sys/devices/ferroccid/usbip/{busid}"),
            busid: busid.to_owned(),
            busnum,
            devnum,
            speed: self.speed,
            vendor_id: u16::from_le_bytes([d[8], d[9]]),
            product_id: u16::from_le_bytes([d[10], d[11]]),
            bcd_device: u16::from_le_bytes([d[12], d[13]]),
            device_class: d[4],
            device_subclass: d[5],
            device_protocol: d[6],
            configuration_value: self.configuration_value,
            num_configurations: 1,
            num_interfaces: u8::try_from(self.interfaces.len()).unwrap_or(u8::MAX),
        }
    }

    /// The interface records listed after the device in a devlist.
    pub fn interfaces(&self) -> &[InterfaceRecord] {
        &self.interfaces
    }

    /// Answers one setup packet on endpoint 0.
    pub fn answer(&self, setup: &SetupPacket) -> ControlAnswer {
        let cut = |mut data: Vec<u8>| {
            data.truncate(usize::from(setup.length));
            ControlAnswer::Data(data)
        };
        match (setup.request_type, setup.request) {
            (CLASS_IN, request) => ControlAnswer::ClassIn {
                request,
                value: setup.value,
                length: setup.length,
            },
            (CLASS_OUT, request) => ControlAnswer::ClassOut {
                request,
                value: setup.value,
            },
            (0x80, GET_DESCRIPTOR) => match self.descriptor(setup.value) {
                Some(data) => cut(data),
                None => ControlAnswer::Stall,
            },
            (0x80, GET_STATUS) => cut(vec![u8::from(self.self_powered), 0]),
            (0x81 | 0x82, GET_STATUS) => cut(vec![0, 0]),
            (0x80, GET_CONFIGURATION) => cut(vec![self.configuration_value]),
            (0x81, GET_INTERFACE) => cut(vec![0]),
            (0x00, SET_CONFIGURATION) => {
                let value = setup.value & 0xFF;
                if value == 0 || value == u16::from(self.configuration_value) {
                    ControlAnswer::Ack
                } else {
                    ControlAnswer::Stall
                }
            }
            (0x01, SET_INTERFACE) if setup.value == 0 => ControlAnswer::Ack,
            // ENDPOINT_HALT: the transport's pipes have no halt to clear.
            (0x02, CLEAR_FEATURE) if setup.value == 0 => ControlAnswer::Ack,
            // DEVICE_REMOTE_WAKEUP on or off: accepted, never used.
            (0x00, CLEAR_FEATURE | SET_FEATURE) if setup.value == 1 => ControlAnswer::Ack,
            _ => ControlAnswer::Stall,
        }
    }

    fn descriptor(&self, value: u16) -> Option<Vec<u8>> {
        let [index, kind] = value.to_le_bytes();
        match kind {
            DT_DEVICE if index == 0 => Some(self.device_descriptor.to_vec()),
            DT_CONFIGURATION if index == 0 => Some(self.configuration.clone()),
            DT_STRING if index == 0 => {
                let [lo, hi] = LANGID_EN_US.to_le_bytes();
                Some(vec![4, DT_STRING, lo, hi])
            }
            DT_STRING => {
                let text = self.strings.get(usize::from(index) - 1)?.as_ref()?;
                Some(string_descriptor(text))
            }
            // Device qualifier, other-speed, BOS: not offered (stall), as
            // a full-speed-only device answers.
            _ => None,
        }
    }
}

/// A string descriptor: UTF-16LE, cut to the 255-byte bLength limit.
pub fn string_descriptor(text: &str) -> Vec<u8> {
    let mut out = vec![0, DT_STRING];
    for unit in text.encode_utf16().take(126) {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out[0] = out.len() as u8;
    out
}

/// One configuration, one interface, the class descriptor and the
/// endpoints, for transports that report no raw configuration.
fn synthesise_configuration(info: &TransportInfo) -> Vec<u8> {
    let class = match info.interface_class {
        CLASS_VENDOR_SPECIFIC => CLASS_VENDOR_SPECIFIC,
        _ => CLASS_CCID,
    };
    emit_configuration(&InterfaceDescription {
        number: info.interface_number,
        class,
        endpoints: info
            .endpoints
            .as_ref()
            .map(endpoint_descriptions)
            .unwrap_or_default(),
        // Only a well-formed class descriptor is offered to the importer.
        extra: info
            .class_descriptor
            .as_deref()
            .and_then(find_class_descriptor)
            .map(<[u8]>::to_vec)
            .unwrap_or_default(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzz engineer: 256 interfaces wrapped bNumInterfaces
    /// to 0 in the devlist record. The list stops at 255 (a one-byte
    /// count), and the record counts the interface records it is sent with.
    #[test]
    fn more_than_255_interfaces_do_not_wrap_the_count() {
        let count = 300usize;
        let total = 9 + 9 * count;
        let mut config = vec![9, 0x02];
        config.extend_from_slice(&(total as u16).to_le_bytes());
        config.extend_from_slice(&[0xFF, 1, 0, 0x80, 50]);
        for number in 0..count {
            // interface descriptor: bInterfaceNumber, alt 0, no endpoints, class 0x0B
            config.extend_from_slice(&[9, 0x04, number as u8, 0, 0, 0x0B, 0, 0, 0]);
        }
        let info = TransportInfo {
            configuration_descriptor: config,
            ..TransportInfo::default()
        };
        let model = DeviceModel::from_info(&info);
        let record = model.record("1-1", 1, 2);
        assert_eq!(record.num_interfaces, 255);
        assert_eq!(model.interfaces().len(), 255);
        assert!(model.interfaces().iter().all(|i| i.class == 0x0B));
    }
}
