//! Arbitrary bytes into every parser never panic; emitted frames parse back.
use ferroccid::ccid::command::{Command, CommandRepr};
use ferroccid::ccid::interrupt::InterruptMessage;
use ferroccid::ccid::response::ResponseRepr;
use ferroccid::ccid::secure::SecureData;
use ferroccid::ccid::trace::describe;
use ferroccid::ccid::{
    find_class_descriptor, validate_response, ClassDescriptor, Expectation, Message, MessageType,
};
use proptest::prelude::*;

fn message_type() -> impl Strategy<Value = MessageType> {
    prop::sample::select(vec![
        MessageType::IccPowerOn,
        MessageType::XfrBlock,
        MessageType::GetSlotStatus,
        MessageType::SetParameters,
        MessageType::Escape,
        MessageType::Secure,
        MessageType::T0Apdu,
        MessageType::SetDataRateAndClockFrequency,
    ])
}

/// Frames that look like CCID: a known type byte and a plausible length, so
/// the deeper checks get exercised, not only the first one.
fn ccid_like() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![
            0x62u8, 0x63, 0x65, 0x6F, 0x6C, 0x6D, 0x61, 0x6B, 0x6E, 0x6A, 0x69, 0x71, 0x72, 0x73,
            0x80, 0x81, 0x82, 0x83, 0x84,
        ]),
        prop::collection::vec(any::<u8>(), 0..40),
        0u32..45,
        any::<[u8; 5]>(),
    )
        .prop_map(|(ty, payload, len, rest)| {
            let mut f = vec![ty];
            f.extend_from_slice(&len.to_le_bytes());
            f.extend_from_slice(&rest);
            f.extend_from_slice(&payload);
            f
        })
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..80), ty in message_type(), max_slot in any::<u8>()) {
        if let Ok(m) = Message::new_checked(&bytes[..]) {
            let _ = (m.message_type(), m.length(), m.slot(), m.seq(), m.status(), m.error(), m.chain_parameter(), m.payload());
            let _ = CommandRepr::parse(&m);
            let _ = ResponseRepr::parse(&m);
        }
        let ex = Expectation { msg_type: ty, slot: 0, seq: 0, max_slot_index: max_slot, max_message_length: 64 };
        let _ = validate_response(&bytes[..], &ex);
        let _ = InterruptMessage::parse(&bytes, max_slot).map(|m| m.slot_change(max_slot));
        let _ = SecureData::parse(&bytes);
        let _ = ClassDescriptor::parse(&bytes);
        let _ = find_class_descriptor(&bytes, 0);
        let _ = describe(&bytes);
    }

    #[test]
    fn ccid_like_frames_never_panic(bytes in ccid_like(), ty in message_type()) {
        if let Ok(m) = Message::new_checked(&bytes[..]) {
            prop_assert!(m.payload().len() == m.length() as usize);
            if let Ok(c) = CommandRepr::parse(&m) {
                // Whatever parses re-encodes to a frame that parses to the
                // same repr (RFU header bytes are written as 0, so compare reprs).
                let mut buf = [0u8; 64];
                let n = c.emit(m.seq(), &mut buf).unwrap();
                prop_assert_eq!(n, m.frame().len());
                let again = Message::new_checked(&buf[..n]).unwrap();
                prop_assert_eq!(CommandRepr::parse(&again).unwrap(), c);
            }
            if let Ok(r) = ResponseRepr::parse(&m) {
                let mut buf = [0u8; 64];
                let n = r.emit(m.seq(), &mut buf).unwrap();
                prop_assert_eq!(n, m.frame().len());
                let again = Message::new_checked(&buf[..n]).unwrap();
                prop_assert_eq!(ResponseRepr::parse(&again).unwrap(), r);
            }
        }
        let ex = Expectation { msg_type: ty, slot: 0, seq: bytes.get(6).copied().unwrap_or(0), max_slot_index: 0, max_message_length: 271 };
        let _ = validate_response(&bytes[..], &ex);
    }

    #[test]
    fn xfr_block_roundtrip(data in prop::collection::vec(any::<u8>(), 0..200), slot in any::<u8>(), seq in any::<u8>(), level in any::<u16>()) {
        let repr = CommandRepr { slot, command: Command::XfrBlock { bwi: 0, level_parameter: level, data: &data } };
        let mut buf = vec![0u8; 210];
        let n = repr.emit(seq, &mut buf).unwrap();
        let m = Message::new_checked(&buf[..n]).unwrap();
        prop_assert_eq!(m.payload(), &data[..]);
        prop_assert_eq!(CommandRepr::parse(&m).unwrap(), repr);
    }

    #[test]
    fn hostile_configuration_descriptors_never_panic(chunks in prop::collection::vec((0u8..12, prop::sample::select(vec![2u8, 4, 5, 0x21, 0xFF, 0x0B]), prop::collection::vec(any::<u8>(), 0..60)), 0..8), iface in 0u8..3) {
        let mut config = Vec::new();
        for (len, ty, body) in chunks {
            let len = if len == 11 { 54 } else if len == 10 { 9 } else { len };
            config.push(len);
            config.push(ty);
            config.extend_from_slice(&body);
        }
        let _ = find_class_descriptor(&config, iface);
    }
}
