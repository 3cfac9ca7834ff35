//! The USB/IP server's endpoint 0 (`DeviceModel`): built from whatever a
//! transport reports (arbitrary configuration and class descriptors,
//! strings) and asked arbitrary setup packets. Never panics, data stages
//! never exceed wLength, and descriptors it serves are well formed.
//!
//! Input: `flags vid(2) pid(2) config_len(2)` + configuration bytes, then
//! 8-byte setup packets. Flag bits pick strings, endpoints and a class
//! descriptor (taken from the configuration bytes' first 54).
#![no_main]

use ferroccid::{CcidEndpoints, EndpointInfo, TransportInfo};
use ferroccid::usbip::wire::SetupPacket;
use ferroccid_usbip::{ControlAnswer, DeviceModel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[flags, v0, v1, p0, p1, l0, l1], rest)) = data.split_first_chunk::<7>() else {
        return;
    };
    let config_len = usize::from(u16::from_le_bytes([l0, l1])).min(rest.len());
    let (config, mut setups) = rest.split_at(config_len);
    let text = |bit: u8, s: &str| (flags & bit != 0).then(|| s.repeat(usize::from(flags) + 1));
    let endpoint = |address: u8| EndpointInfo {
        address,
        max_packet_size: u16::from_le_bytes([v0, p1]),
    };
    let info = TransportInfo {
        name: "fuzz".into(),
        vendor_id: u16::from_le_bytes([v0, v1]),
        product_id: u16::from_le_bytes([p0, p1]),
        manufacturer: text(0x01, "M\u{e9}"),
        product: text(0x02, "\u{1F512}"),
        serial: text(0x04, "0"),
        interface_number: v1,
        interface_class: p0,
        endpoints: (flags & 0x08 != 0).then(|| CcidEndpoints {
            bulk_out: endpoint(0x01),
            bulk_in: endpoint(0x82),
            interrupt_in: (flags & 0x10 != 0).then(|| endpoint(0x83)),
        }),
        class_descriptor: (flags & 0x20 != 0).then(|| config[..config.len().min(54)].to_vec()),
        // Short configurations make the model synthesise its own.
        configuration_descriptor: config.to_vec(),
        ..TransportInfo::default()
    };
    let model = DeviceModel::from_info(&info);
    let device = model.device_descriptor();
    assert_eq!(device[0], 18);
    let record = model.record("1-1", 1, 2);
    assert_eq!(record.vendor_id, info.vendor_id);
    let _ = model.interfaces();

    while let Some((setup, next)) = setups.split_first_chunk::<8>() {
        setups = next;
        let setup = SetupPacket::from_bytes(*setup);
        match model.answer(&setup) {
            ControlAnswer::Data(bytes) => {
                assert!(bytes.len() <= usize::from(setup.length));
                assert!(setup.is_in(), "data stage for an OUT request {setup:?}");
                // A whole string descriptor (asked with a large wLength)
                // states its own length, which fits in bLength.
                let [index, kind] = setup.value.to_le_bytes();
                if setup.request == 0x06 && kind == 3 && index != 0 && bytes.len() >= 2 {
                    if usize::from(setup.length) >= 255 {
                        assert_eq!(usize::from(bytes[0]), bytes.len());
                    }
                    assert_eq!(bytes[0] % 2, 0, "UTF-16 descriptor of odd length");
                }
            }
            ControlAnswer::ClassIn { length, .. } => assert_eq!(length, setup.length),
            ControlAnswer::Ack | ControlAnswer::Stall | ControlAnswer::ClassOut { .. } => {}
        }
    }
});
