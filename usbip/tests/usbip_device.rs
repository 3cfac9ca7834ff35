//! The exported device's endpoint 0 (USB 2.0 §9.4) answered from a
//! `TransportInfo`, without sockets.

use ferroccid::descriptors::{
    choose_interface, find_class_descriptor, parse_configuration, select_endpoints,
};
use ferroccid::usbip::wire::SetupPacket;
use ferroccid::{CcidEndpoints, EndpointInfo, TransportInfo};
use ferroccid_usbip::string_descriptor;
use ferroccid_usbip::{ControlAnswer, DeviceModel};

fn setup(request_type: u8, request: u8, value: u16, length: u16) -> SetupPacket {
    SetupPacket {
        request_type,
        request,
        value,
        index: 0,
        length,
    }
}

/// A transport that reports endpoints and a class descriptor but no raw
/// configuration descriptor.
fn bare_info() -> TransportInfo {
    let mut class = vec![0x36, 0x21];
    class.resize(54, 0);
    TransportInfo {
        vendor_id: 0x04E6,
        product_id: 0x5116,
        bcd_device: 0x0524,
        product: Some("AB".into()),
        interface_class: 0x0B,
        endpoints: Some(CcidEndpoints {
            bulk_out: EndpointInfo {
                address: 0x02,
                max_packet_size: 512,
            },
            bulk_in: EndpointInfo {
                address: 0x81,
                max_packet_size: 512,
            },
            interrupt_in: None,
        }),
        class_descriptor: Some(class),
        ..Default::default()
    }
}

#[test]
fn a_configuration_is_synthesised_when_the_transport_has_none() {
    let info = bare_info();
    let model = DeviceModel::from_info(&info);
    let config = model.configuration();
    // wTotalLength covers config + interface + class + 2 endpoints.
    assert_eq!(config.len(), 9 + 9 + 54 + 7 * 2);
    assert_eq!(
        u16::from_le_bytes([config[2], config[3]]) as usize,
        config.len()
    );
    let interfaces = parse_configuration(config).unwrap();
    let interface = choose_interface(&interfaces, None).unwrap();
    assert_eq!(interface.class, 0x0B);
    assert_eq!(
        select_endpoints(&interface.endpoints).unwrap(),
        info.endpoints.unwrap()
    );
    assert_eq!(
        find_class_descriptor(&interface.extra).map(<[u8]>::to_vec),
        info.class_descriptor
    );
    // 512-byte bulk packets: high speed (3) in the USB/IP record.
    assert_eq!(model.record("3-2", 3, 2).speed, 3);
}

#[test]
fn device_descriptor_lists_only_the_strings_that_exist() {
    let model = DeviceModel::from_info(&bare_info());
    let d = model.device_descriptor();
    assert_eq!(&d[8..14], &[0xE6, 0x04, 0x16, 0x51, 0x24, 0x05]);
    // No manufacturer, product at index 2, no serial.
    assert_eq!(&d[14..17], &[0, 2, 0]);
    assert_eq!(
        model.answer(&setup(0x80, 6, 0x0302, 255)),
        ControlAnswer::Data(vec![6, 3, b'A', 0, b'B', 0])
    );
    assert_eq!(
        model.answer(&setup(0x80, 6, 0x0301, 255)),
        ControlAnswer::Stall
    );
    assert_eq!(string_descriptor(""), vec![2, 3]);
}

#[test]
fn standard_requests() {
    let model = DeviceModel::from_info(&bare_info());
    // wLength cuts the data stage (Linux first asks 8 bytes of the device).
    let ControlAnswer::Data(head) = model.answer(&setup(0x80, 6, 0x0100, 8)) else {
        panic!("device descriptor must answer data");
    };
    assert_eq!(head, vec![18, 1, 0x00, 0x02, 0, 0, 0, 64]);
    assert_eq!(
        model.answer(&setup(0x80, 6, 0x0600, 10)),
        ControlAnswer::Stall
    );
    assert_eq!(model.answer(&setup(0x00, 9, 1, 0)), ControlAnswer::Ack);
    assert_eq!(model.answer(&setup(0x00, 9, 7, 0)), ControlAnswer::Stall);
    assert_eq!(model.answer(&setup(0x01, 11, 0, 0)), ControlAnswer::Ack);
    assert_eq!(model.answer(&setup(0x01, 11, 1, 0)), ControlAnswer::Stall);
    assert_eq!(model.answer(&setup(0x02, 1, 0, 0)), ControlAnswer::Ack);
    assert_eq!(
        model.answer(&setup(0x82, 0, 0, 2)),
        ControlAnswer::Data(vec![0, 0])
    );
    // bmAttributes 0x80: bus-powered, so GET_STATUS(device) is 0.
    assert_eq!(
        model.answer(&setup(0x80, 0, 0, 2)),
        ControlAnswer::Data(vec![0, 0])
    );
    assert_eq!(
        model.answer(&setup(0x80, 8, 0, 1)),
        ControlAnswer::Data(vec![1])
    );
    assert_eq!(
        model.answer(&setup(0xA1, 3, 0, 64)),
        ControlAnswer::ClassIn {
            request: 3,
            value: 0,
            length: 64
        }
    );
    assert_eq!(
        model.answer(&setup(0x21, 1, 0x0300, 0)),
        ControlAnswer::ClassOut {
            request: 1,
            value: 0x0300
        }
    );
    // Vendor requests are not the transport's business: stall.
    assert_eq!(model.answer(&setup(0xC0, 1, 0, 4)), ControlAnswer::Stall);
}
