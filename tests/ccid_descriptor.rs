//! Class descriptor decoding (CCID §5.1) and locating it in handcrafted
//! configuration descriptors: every placement seen in the field, and hostile input.
use ferroccid::ccid::descriptor::{features, InterfaceKind};
use ferroccid::ccid::{
    find_class_descriptor, ClassDescriptor, DescriptorError, Endpoint, ExchangeLevel,
};

/// ACS ACR122U class descriptor; fields decoded by hand from CCID table 5.1-1.
const ACR122U: [u8; 54] = [
    0x36, 0x21, 0x00, 0x01, 0x00, 0x07, 0x03, 0x00, 0x00, 0x00, 0xA0, 0x0F, 0x00, 0x00, 0xA0, 0x0F,
    0x00, 0x00, 0x00, 0x00, 0x2A, 0x00, 0x00, 0x90, 0xD0, 0x03, 0x00, 0x00, 0xF7, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x00, 0x01, 0x00, 0x0F, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
];

#[test]
fn decode_every_field() {
    let d = ClassDescriptor::parse(&ACR122U).unwrap();
    assert_eq!(d.descriptor_type, 0x21);
    assert_eq!(d.bcd_ccid, 0x0100);
    assert_eq!(d.version_string(), "1.00");
    assert_eq!(d.max_slot_index, 0);
    assert_eq!(d.slot_count(), 1);
    assert_eq!(d.voltage_support, 0x07);
    assert!(d.supports_5v() && d.supports_3v() && d.supports_1v8());
    assert_eq!(d.protocols, 3);
    assert!(d.supports_t0() && d.supports_t1());
    assert_eq!(d.default_clock_khz, 4000);
    assert_eq!(d.maximum_clock_khz, 4000);
    assert_eq!(d.num_clock_supported, 0);
    assert_eq!(d.data_rate, 10752);
    assert_eq!(d.max_data_rate, 250000);
    assert_eq!(d.num_data_rates_supported, 0);
    assert_eq!(d.max_ifsd, 247);
    assert_eq!(d.synch_protocols, 0);
    assert_eq!(d.mechanical, 0);
    assert_eq!(d.features, 0x0001_0030);
    assert_eq!(d.exchange_level(), ExchangeLevel::Tpdu);
    assert!(d.auto_clock() && d.auto_baud());
    assert!(!d.auto_voltage() && !d.auto_pps() && !d.auto_parameters_from_atr());
    assert_eq!(d.max_message_length, 271);
    assert_eq!(d.class_get_response, 0);
    assert_eq!(d.class_envelope, 0);
    assert_eq!(d.lcd_layout, 0);
    assert_eq!(d.pin_support, 0);
    assert_eq!(d.max_busy_slots, 1);
}

#[test]
fn exchange_levels_and_feature_bits() {
    let mut b = ACR122U;
    for (third_byte, level) in [
        (0x00, ExchangeLevel::Character),
        (0x01, ExchangeLevel::Tpdu),
        (0x02, ExchangeLevel::ShortApdu),
        (0x04, ExchangeLevel::ExtendedApdu),
    ] {
        b[42] = third_byte;
        let d = ClassDescriptor::parse(&b).unwrap();
        assert_eq!(d.exchange_level(), level);
        assert!(d.exchange_level_is_valid());
    }
    b[42] = 0x03;
    assert!(!ClassDescriptor::parse(&b)
        .unwrap()
        .exchange_level_is_valid());
    // dwFeatures 0x000404BA (a typical APDU reader): 0x02|0x08|0x10|0x20|0x80|0x400.
    b[40..44].copy_from_slice(&0x0004_04BAu32.to_le_bytes());
    let d = ClassDescriptor::parse(&b).unwrap();
    assert!(d.auto_parameters_from_atr());
    assert!(d.auto_voltage());
    assert!(d.auto_clock() && d.auto_baud() && d.auto_pps() && d.auto_ifsd());
    assert!(!d.auto_parameter_negotiation());
    assert!(!d.has_feature(features::AUTO_ACTIVATION));
    assert!(!d.has_feature(features::CLOCK_STOP));
    assert_eq!(d.exchange_level(), ExchangeLevel::ExtendedApdu);
}

#[test]
fn bad_class_descriptors_name_the_byte() {
    let mut b = ACR122U;
    b[0] = 0x35;
    let e = ClassDescriptor::parse(&b).unwrap_err();
    assert_eq!(e.to_string(), "byte 0 (bLength) is 0x35, expected 0x36");
    let mut b = ACR122U;
    b[1] = 0x24;
    let e = ClassDescriptor::parse(&b).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("byte 1 (bDescriptorType) is 0x24"),
        "{e}"
    );
    assert_eq!(
        ClassDescriptor::parse(&ACR122U[..53]),
        Err(DescriptorError::WrongSize { len: 53 })
    );
    // 0xFF (pre-standard readers) is accepted.
    let mut b = ACR122U;
    b[1] = 0xFF;
    assert_eq!(ClassDescriptor::parse(&b).unwrap().descriptor_type, 0xFF);
}

fn config(parts: &[&[u8]]) -> Vec<u8> {
    let body: usize = parts.iter().map(|p| p.len()).sum();
    let total = (9 + body) as u16;
    let t = total.to_le_bytes();
    let mut c = vec![0x09, 0x02, t[0], t[1], 0x01, 0x01, 0x00, 0x80, 0x32];
    for p in parts {
        c.extend_from_slice(p);
    }
    c
}

fn interface(number: u8, class: u8, protocol: u8, endpoints: u8) -> [u8; 9] {
    [
        0x09, 0x04, number, 0x00, endpoints, class, 0x00, protocol, 0x00,
    ]
}

const BULK_OUT: [u8; 7] = [0x07, 0x05, 0x02, 0x02, 0x40, 0x00, 0x00];
const BULK_IN: [u8; 7] = [0x07, 0x05, 0x82, 0x02, 0x40, 0x00, 0x00];
const INT_IN: [u8; 7] = [0x07, 0x05, 0x83, 0x03, 0x08, 0x00, 0x10];

fn check_found(c: &[u8], number: u8, kind: InterfaceKind) {
    let (info, d) = find_class_descriptor(c, number).unwrap();
    assert_eq!(info.number, number);
    assert_eq!(info.kind, kind);
    assert_eq!(d, ClassDescriptor::parse(&ACR122U).unwrap());
    assert_eq!(
        info.bulk_out,
        Some(Endpoint {
            address: 0x02,
            max_packet_size: 64
        })
    );
    assert_eq!(
        info.bulk_in,
        Some(Endpoint {
            address: 0x82,
            max_packet_size: 64
        })
    );
    assert_eq!(
        info.interrupt_in,
        Some(Endpoint {
            address: 0x83,
            max_packet_size: 8
        })
    );
}

#[test]
fn standard_placement_after_interface() {
    let c = config(&[
        &interface(0, 0x0B, 0, 3),
        &ACR122U,
        &BULK_OUT,
        &BULK_IN,
        &INT_IN,
    ]);
    check_found(&c, 0, InterfaceKind::Ccid);
}

#[test]
fn placement_after_endpoints() {
    let c = config(&[
        &interface(0, 0x0B, 0, 3),
        &BULK_OUT,
        &BULK_IN,
        &INT_IN,
        &ACR122U,
    ]);
    check_found(&c, 0, InterfaceKind::Ccid);
}

#[test]
fn vendor_interface_and_second_interface() {
    // A HID interface 0 first, then a vendor-class CCID interface 1 with a 0xFF-type descriptor.
    let hid = [0x09, 0x04, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00];
    let hid_class = [0x09, 0x21, 0x11, 0x01, 0x00, 0x01, 0x22, 0x20, 0x00];
    let mut vendor = ACR122U;
    vendor[1] = 0xFF;
    let c = config(&[
        &hid,
        &hid_class,
        &interface(1, 0xFF, 0, 3),
        &vendor,
        &BULK_OUT,
        &BULK_IN,
        &INT_IN,
    ]);
    let (info, d) = find_class_descriptor(&c, 1).unwrap();
    assert_eq!(info.kind, InterfaceKind::Vendor);
    assert_eq!(d.descriptor_type, 0xFF);
    // HID's 9-byte 0x21 descriptor is not a CCID descriptor; interface 0 is not a smart card.
    assert_eq!(
        find_class_descriptor(&c, 0),
        Err(DescriptorError::NotSmartCard { class: 0x03 })
    );
}

#[test]
fn iccd_a_and_b() {
    let c = config(&[&interface(0, 0x0B, 1, 0), &ACR122U]);
    let (info, _) = find_class_descriptor(&c, 0).unwrap();
    assert_eq!(info.kind, InterfaceKind::IccdA);
    assert_eq!(info.bulk_in, None);
    let c = config(&[&interface(0, 0x0B, 2, 1), &ACR122U, &INT_IN]);
    let (info, _) = find_class_descriptor(&c, 0).unwrap();
    assert_eq!(info.kind, InterfaceKind::IccdB);
    assert_eq!(info.interrupt_in.map(|e| e.address), Some(0x83));
}

#[test]
fn descriptor_of_the_next_interface_is_not_taken() {
    let c = config(&[
        &interface(0, 0x0B, 0, 2),
        &BULK_OUT,
        &BULK_IN,
        &interface(1, 0x0B, 0, 0),
        &ACR122U,
    ]);
    assert_eq!(
        find_class_descriptor(&c, 0),
        Err(DescriptorError::NoClassDescriptor { interface: 0 })
    );
    assert!(find_class_descriptor(&c, 1).is_ok());
    assert_eq!(
        find_class_descriptor(&c, 5),
        Err(DescriptorError::InterfaceNotFound { interface: 5 })
    );
}

#[test]
fn hostile_configurations() {
    // bLength 0 right after the interface: must not loop.
    let c = config(&[&interface(0, 0x0B, 0, 0), &[0x00, 0x21, 0x00]]);
    assert_eq!(
        find_class_descriptor(&c, 0),
        Err(DescriptorError::ZeroLength {
            offset: 18,
            length: 0
        })
    );
    // bLength 1.
    let c = config(&[&interface(0, 0x0B, 0, 0), &[0x01, 0x21]]);
    assert!(matches!(
        find_class_descriptor(&c, 0),
        Err(DescriptorError::ZeroLength { .. })
    ));
    // Class descriptor overrunning the buffer.
    let c = config(&[&interface(0, 0x0B, 0, 0), &ACR122U[..30]]);
    assert!(matches!(
        find_class_descriptor(&c, 0),
        Err(DescriptorError::Overrun {
            offset: 18,
            length: 0x36,
            remaining: 30
        })
    ));
    // wTotalLength cutting the class descriptor off: treated as absent, not read past.
    let mut c = config(&[&interface(0, 0x0B, 0, 0), &ACR122U]);
    c[2] = 18;
    assert!(matches!(
        find_class_descriptor(&c, 0),
        Err(DescriptorError::NoClassDescriptor { .. })
    ));
    // Interface descriptor too short, endpoint descriptor too short.
    let c = config(&[&[0x05, 0x04, 0x00, 0x00, 0x00]]);
    assert!(matches!(
        find_class_descriptor(&c, 0),
        Err(DescriptorError::ShortDescriptor { .. })
    ));
    let c = config(&[&interface(0, 0x0B, 0, 1), &[0x04, 0x05, 0x81, 0x02]]);
    assert!(matches!(
        find_class_descriptor(&c, 0),
        Err(DescriptorError::ShortDescriptor { .. })
    ));
    // A 54-byte 0x21 descriptor with a wrong inner bLength cannot exist (bLength is the size), but
    // an empty configuration can.
    assert!(matches!(
        find_class_descriptor(&[], 0),
        Err(DescriptorError::InterfaceNotFound { .. })
    ));
}
