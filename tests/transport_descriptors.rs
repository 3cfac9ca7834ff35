//! Finding CCID interfaces and endpoints in configuration descriptors
//! assembled by hand from the layouts in USB 2.0 §9.6.3-9.6.6 and CCID
//! rev 1.1 §5.1.

use ferroccid::descriptors::{
    choose_interface, find_class_descriptor, is_ccid_interface, parse_configuration,
    select_endpoints, DescriptorError, EndpointDescription,
};
use ferroccid::{CcidEndpoints, EndpointInfo, TransportError};

fn configuration(body: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = body.concat();
    let total = (9 + body.len()) as u16;
    let [lo, hi] = total.to_le_bytes();
    // bLength, CONFIGURATION, wTotalLength, bNumInterfaces, bConfigurationValue,
    // iConfiguration, bmAttributes (bus powered), bMaxPower (100 mA)
    let mut raw = vec![9, 0x02, lo, hi, 2, 1, 0, 0x80, 50];
    raw.extend_from_slice(&body);
    raw
}

fn interface(number: u8, class: u8, endpoints: u8) -> Vec<u8> {
    // bLength, INTERFACE, bInterfaceNumber, bAlternateSetting, bNumEndpoints,
    // class, subclass, protocol, iInterface
    vec![9, 0x04, number, 0, endpoints, class, 0, 0, 0]
}

fn endpoint(address: u8, attributes: u8, max_packet_size: u16) -> Vec<u8> {
    let [lo, hi] = max_packet_size.to_le_bytes();
    vec![7, 0x05, address, attributes, lo, hi, 0]
}

/// A CCID class descriptor: bLength 0x36, type 0x21, bcdCCID 1.10, the
/// rest zero (field values are `crate::ccid`'s business, not ours).
fn ccid_descriptor() -> Vec<u8> {
    let mut d = vec![0u8; 0x36];
    d[0] = 0x36;
    d[1] = 0x21;
    d[2] = 0x10;
    d[3] = 0x01;
    d
}

const BULK: u8 = 0x02;
const INTERRUPT: u8 = 0x03;

/// Keyboard on interface 0, CCID reader on interface 1.
fn composite_keyboard_and_reader() -> Vec<u8> {
    configuration(&[
        &interface(0, 0x03, 1),
        &[9, 0x21, 0x11, 0x01, 0, 1, 0x22, 0x3F, 0], // HID descriptor
        &endpoint(0x81, INTERRUPT, 8),
        &interface(1, 0x0B, 3),
        &ccid_descriptor(),
        &endpoint(0x02, BULK, 64),
        &endpoint(0x83, BULK, 64),
        &endpoint(0x84, INTERRUPT, 8),
    ])
}

#[test]
fn composite_device_is_split_into_interfaces() {
    let interfaces = parse_configuration(&composite_keyboard_and_reader()).unwrap();
    assert_eq!(interfaces.len(), 2);
    assert_eq!((interfaces[0].number, interfaces[0].class), (0, 0x03));
    assert_eq!((interfaces[1].number, interfaces[1].class), (1, 0x0B));
    assert_eq!(interfaces[0].endpoints.len(), 1);
    assert_eq!(interfaces[1].endpoints.len(), 3);
    assert_eq!(interfaces[1].extra, ccid_descriptor());
}

#[test]
fn ccid_endpoints_are_selected_by_type_and_direction() {
    let interfaces = parse_configuration(&composite_keyboard_and_reader()).unwrap();
    assert_eq!(
        select_endpoints(&interfaces[1].endpoints).unwrap(),
        CcidEndpoints {
            bulk_out: EndpointInfo {
                address: 0x02,
                max_packet_size: 64
            },
            bulk_in: EndpointInfo {
                address: 0x83,
                max_packet_size: 64
            },
            interrupt_in: Some(EndpointInfo {
                address: 0x84,
                max_packet_size: 8
            }),
        }
    );
}

#[test]
fn endpoint_order_does_not_matter_and_high_speed_sizes_are_kept() {
    let eps = [
        EndpointDescription {
            address: 0x85,
            attributes: INTERRUPT,
            max_packet_size: 16,
        },
        EndpointDescription {
            address: 0x81,
            attributes: BULK,
            max_packet_size: 512,
        },
        EndpointDescription {
            address: 0x01,
            attributes: BULK,
            max_packet_size: 512,
        },
    ];
    let selected = select_endpoints(&eps).unwrap();
    assert_eq!(selected.bulk_in.address, 0x81);
    assert_eq!(selected.bulk_out.address, 0x01);
    assert_eq!(selected.bulk_in.max_packet_size, 512);
    assert_eq!(selected.interrupt_in.unwrap().address, 0x85);
}

#[test]
fn high_bandwidth_bits_are_not_part_of_the_packet_size() {
    // wMaxPacketSize bits 11-12 count extra transactions per microframe.
    let eps = [
        EndpointDescription {
            address: 0x81,
            attributes: BULK,
            max_packet_size: 0x0200,
        },
        EndpointDescription {
            address: 0x02,
            attributes: BULK,
            max_packet_size: 0x0200,
        },
        EndpointDescription {
            address: 0x83,
            attributes: INTERRUPT,
            max_packet_size: 0x1040,
        },
    ];
    assert_eq!(
        select_endpoints(&eps)
            .unwrap()
            .interrupt_in
            .unwrap()
            .max_packet_size,
        64
    );
}

#[test]
fn interrupt_endpoint_is_optional_but_bulk_pair_is_not() {
    let bulk_only = [
        EndpointDescription {
            address: 0x81,
            attributes: BULK,
            max_packet_size: 64,
        },
        EndpointDescription {
            address: 0x02,
            attributes: BULK,
            max_packet_size: 64,
        },
    ];
    assert_eq!(select_endpoints(&bulk_only).unwrap().interrupt_in, None);

    let no_bulk_in = [
        EndpointDescription {
            address: 0x02,
            attributes: BULK,
            max_packet_size: 64,
        },
        EndpointDescription {
            address: 0x83,
            attributes: INTERRUPT,
            max_packet_size: 8,
        },
    ];
    assert!(matches!(
        select_endpoints(&no_bulk_in),
        Err(TransportError::MissingEndpoint("bulk-IN"))
    ));
    // An interrupt-OUT endpoint is not a bulk-OUT one.
    let interrupt_out = [
        EndpointDescription {
            address: 0x81,
            attributes: BULK,
            max_packet_size: 64,
        },
        EndpointDescription {
            address: 0x02,
            attributes: INTERRUPT,
            max_packet_size: 64,
        },
    ];
    assert!(matches!(
        select_endpoints(&interrupt_out),
        Err(TransportError::MissingEndpoint("bulk-OUT"))
    ));
}

#[test]
fn opening_the_keyboard_half_is_not_a_ccid_interface() {
    let interfaces = parse_configuration(&composite_keyboard_and_reader()).unwrap();
    assert!(matches!(
        choose_interface(&interfaces, Some(0)),
        Err(TransportError::NotCcidInterface {
            interface: 0,
            class: 0x03
        })
    ));
    assert_eq!(choose_interface(&interfaces, Some(1)).unwrap().number, 1);
    assert_eq!(choose_interface(&interfaces, None).unwrap().number, 1);
}

#[test]
fn vendor_specific_interface_counts_only_with_a_ccid_descriptor() {
    // Pre-standard reader: class 0xFF, CCID descriptor after the endpoints.
    let vendor_reader = configuration(&[
        &interface(0, 0xFF, 2),
        &endpoint(0x01, BULK, 64),
        &endpoint(0x82, BULK, 64),
        &ccid_descriptor(),
    ]);
    let interfaces = parse_configuration(&vendor_reader).unwrap();
    assert_eq!(interfaces[0].endpoints.len(), 2);
    assert!(is_ccid_interface(interfaces[0].class, &interfaces[0].extra));
    assert_eq!(
        find_class_descriptor(&interfaces[0].extra),
        Some(&ccid_descriptor()[..])
    );

    let vendor_other = configuration(&[
        &interface(0, 0xFF, 2),
        &endpoint(0x01, BULK, 64),
        &endpoint(0x82, BULK, 64),
    ]);
    let interfaces = parse_configuration(&vendor_other).unwrap();
    assert!(!is_ccid_interface(
        interfaces[0].class,
        &interfaces[0].extra
    ));
    assert!(matches!(
        choose_interface(&interfaces, Some(0)),
        Err(TransportError::NotCcidInterface {
            interface: 0,
            class: 0xFF
        })
    ));
}

#[test]
fn type_0x21_of_the_wrong_length_is_not_a_ccid_descriptor() {
    // A HID descriptor is also type 0x21, but 9 bytes long.
    let hid = [9u8, 0x21, 0x11, 0x01, 0, 1, 0x22, 0x3F, 0];
    assert_eq!(find_class_descriptor(&hid), None);
    assert!(!is_ccid_interface(0xFF, &hid));
    // Class 0x0B is CCID even before its descriptor has been read.
    assert!(is_ccid_interface(0x0B, &[]));
    assert!(!is_ccid_interface(0x03, &ccid_descriptor()));
}

#[test]
fn class_descriptor_is_found_after_other_extras() {
    let mut extra = vec![5u8, 0x24, 0, 0x10, 0x01]; // some class-specific header
    extra.extend_from_slice(&ccid_descriptor());
    assert_eq!(find_class_descriptor(&extra), Some(&ccid_descriptor()[..]));
    // Truncated CCID descriptor: not found, no panic.
    assert_eq!(find_class_descriptor(&ccid_descriptor()[..40]), None);
}

#[test]
fn alternate_settings_are_kept_apart() {
    let mut alt1 = interface(0, 0x0B, 2);
    alt1[3] = 1;
    let raw = configuration(&[
        &interface(0, 0x0B, 2),
        &ccid_descriptor(),
        &endpoint(0x01, BULK, 64),
        &endpoint(0x82, BULK, 64),
        &alt1,
        &endpoint(0x03, BULK, 64),
        &endpoint(0x84, BULK, 64),
    ]);
    let interfaces = parse_configuration(&raw).unwrap();
    assert_eq!(interfaces.len(), 2);
    assert_eq!(interfaces[1].alt_setting, 1);
    let chosen = choose_interface(&interfaces, Some(0)).unwrap();
    assert_eq!(chosen.alt_setting, 0);
    assert_eq!(
        select_endpoints(&chosen.endpoints)
            .unwrap()
            .bulk_out
            .address,
        0x01
    );
}

#[test]
fn malformed_configurations_are_errors_not_panics() {
    assert_eq!(
        parse_configuration(&[]),
        Err(DescriptorError::NotConfiguration)
    );
    // A device descriptor is not a configuration descriptor.
    assert_eq!(
        parse_configuration(&[18, 0x01, 0x00, 0x02, 0, 0, 0, 64]),
        Err(DescriptorError::NotConfiguration)
    );
    let mut zero_length = configuration(&[&interface(0, 0x0B, 0)]);
    zero_length.extend_from_slice(&[0, 0x05]);
    let total = zero_length.len() as u16;
    zero_length[2..4].copy_from_slice(&total.to_le_bytes());
    assert_eq!(
        parse_configuration(&zero_length),
        Err(DescriptorError::BadLength { offset: 18 })
    );
    let mut overrun = configuration(&[&interface(0, 0x0B, 0)]);
    overrun.extend_from_slice(&[7, 0x05, 0x81]);
    let total = overrun.len() as u16;
    overrun[2..4].copy_from_slice(&total.to_le_bytes());
    assert_eq!(
        parse_configuration(&overrun),
        Err(DescriptorError::BadLength { offset: 18 })
    );
}

#[test]
fn bytes_beyond_total_length_are_ignored() {
    let mut raw = composite_keyboard_and_reader();
    raw.extend_from_slice(&interface(9, 0x0B, 0));
    let interfaces = parse_configuration(&raw).unwrap();
    assert_eq!(interfaces.len(), 2);
}
