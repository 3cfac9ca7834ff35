//! USB descriptors from a hostile device: the CCID class descriptor
//! (`ClassDescriptor::parse`), the configuration walk of `crate::ccid`
//! (`find_class_descriptor`) and of the transports (`parse_configuration`,
//! `choose_interface`, `select_endpoints`). Never panics, never loops on a
//! zero `bLength`, and whatever is found is consistent with the bytes.
//!
//! Input: `interface_number` then the configuration descriptor (also
//! tried whole as a class descriptor).
#![no_main]

use ferroccid::ccid::{find_class_descriptor, ClassDescriptor};
use ferroccid::descriptors::{
    choose_interface, find_class_descriptor as find_raw_class_descriptor, parse_configuration,
    select_endpoints,
};
use libfuzzer_sys::fuzz_target;

fn check_class_descriptor(bytes: &[u8]) {
    if let Ok(d) = ClassDescriptor::parse(bytes) {
        assert_eq!(bytes.len(), 54);
        assert_eq!(d.slot_count(), usize::from(bytes[4]) + 1);
        assert_eq!(
            d.max_message_length,
            u32::from_le_bytes([bytes[44], bytes[45], bytes[46], bytes[47]])
        );
        let _ = (
            d.version_string(),
            d.exchange_level().as_str(),
            d.exchange_level_is_valid(),
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&interface, config)) = data.split_first() else {
        return;
    };
    check_class_descriptor(config);

    match find_class_descriptor(config, interface) {
        Ok((info, descriptor)) => {
            assert_eq!(info.number, interface);
            assert_eq!(info.alternate_setting, 0);
            assert!(info.class == 0x0B || info.class == 0xFF);
            for ep in [info.bulk_in, info.bulk_out, info.interrupt_in]
                .into_iter()
                .flatten()
            {
                assert!(ep.max_packet_size <= 0x07FF);
            }
            assert!(descriptor.slot_count() >= 1);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }

    let Ok(interfaces) = parse_configuration(config) else {
        return;
    };
    let total: usize = interfaces
        .iter()
        .map(|i| 9 + 7 * i.endpoints.len() + i.extra.len())
        .sum();
    assert!(
        total <= config.len(),
        "walk produced more bytes than it read"
    );
    for intf in &interfaces {
        if let Some(raw) = find_raw_class_descriptor(&intf.extra) {
            assert_eq!(raw.len(), 54);
            // 0x21, or 0xFF as pre-standard readers announce it.
            assert!(raw[1] == 0x21 || raw[1] == 0xFF, "type {:02X}", raw[1]);
            check_class_descriptor(raw);
            ClassDescriptor::parse(raw).expect("a located class descriptor decodes");
        }
        if let Ok(endpoints) = select_endpoints(&intf.endpoints) {
            assert_eq!(endpoints.bulk_in.address & 0x80, 0x80);
            assert_eq!(endpoints.bulk_out.address & 0x80, 0);
            assert!(endpoints.bulk_in.max_packet_size <= 0x07FF);
        }
    }
    for wanted in [None, Some(interface)] {
        if let Ok(chosen) = choose_interface(&interfaces, wanted) {
            assert_eq!(chosen.alt_setting, 0);
            assert!(chosen.class == 0x0B || chosen.class == 0xFF);
            if let Some(number) = wanted {
                assert_eq!(chosen.number, number);
            }
        }
    }
});
