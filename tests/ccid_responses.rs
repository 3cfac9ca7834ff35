//! RDR_to_PC_* responses, bStatus/bError, validation, interrupt and control
//! messages, checked against frames built by hand from CCID Rev 1.1 §5.3, §6.2, §6.3.
use bytes::Bytes;
use ferroccid::ccid::control::{parse_u32_list, ControlRequest};
use ferroccid::ccid::interrupt::{
    emit_hardware_error, emit_notify_slot_change, slot_bitmap_len, InterruptMessage, SlotChange,
};
use ferroccid::ccid::message::ChainParameter;
use ferroccid::ccid::params::{ProtocolData, T1Params};
use ferroccid::ccid::response::{Response, ResponseRepr};
use ferroccid::ccid::trace::describe;
use ferroccid::ccid::{
    validate_response, CcidError, CommandStatus, Expectation, IccStatus, Message, MessageType,
    Reply, SlotError, Status,
};

const ATR: [u8; 13] = [
    0x3B, 0xDC, 0x18, 0xFF, 0x81, 0x91, 0xFE, 0x1F, 0xC3, 0x80, 0x73, 0xC8, 0x21,
];

fn roundtrip(repr: ResponseRepr<'_>, seq: u8, expected: &[u8]) {
    let mut buf = [0u8; 64];
    let n = repr.emit(seq, &mut buf).expect("emit");
    assert_eq!(&buf[..n], expected, "encoding of {repr:?}");
    let msg = Message::new_checked(expected).unwrap();
    assert_eq!(ResponseRepr::parse(&msg).unwrap(), repr);
}

#[test]
fn data_block_with_atr() {
    let mut expected = vec![0x80, 13, 0, 0, 0, 0, 1, 0x00, 0x00, 0x00];
    expected.extend_from_slice(&ATR);
    roundtrip(
        ResponseRepr {
            slot: 0,
            status: Status(0),
            error: 0,
            response: Response::DataBlock {
                chain_parameter: 0,
                data: &ATR,
            },
        },
        1,
        &expected,
    );
    let msg = Message::new_checked(&expected[..]).unwrap();
    assert_eq!(msg.message_type(), MessageType::DataBlock);
    assert_eq!(msg.status().icc(), IccStatus::PresentActive);
    assert_eq!(msg.status().command(), CommandStatus::Ok);
    assert_eq!(
        ChainParameter::from_byte(msg.chain_parameter()),
        ChainParameter::Complete
    );
    assert_eq!(msg.payload(), &ATR);
}

#[test]
fn payload_bytes_shares_the_receive_buffer() {
    let frame = vec![0x80, 2, 0, 0, 0, 0, 3, 0, 0, 0x01, 0x90, 0x00];
    let buf = Bytes::from(frame);
    let msg = Message::new_checked(buf.clone()).unwrap();
    let payload = msg.payload_bytes();
    assert_eq!(&payload[..], &[0x90, 0x00]);
    assert_eq!(
        payload.as_ptr(),
        buf[10..].as_ptr(),
        "payload must not be copied"
    );
    assert_eq!(
        ChainParameter::from_byte(msg.chain_parameter()),
        ChainParameter::Begins
    );
}

#[test]
fn slot_status_absent_and_failed_icc_mute() {
    // bStatus 0x02: no ICC, command OK; bClockStatus 0.
    roundtrip(
        ResponseRepr {
            slot: 0,
            status: Status::new(IccStatus::Absent, CommandStatus::Ok),
            error: 0,
            response: Response::SlotStatus { clock_status: 0 },
        },
        2,
        &[0x81, 0, 0, 0, 0, 0, 2, 0x02, 0x00, 0x00],
    );
    // bStatus 0x42: no ICC, command failed; bError 0xFE ICC_MUTE.
    roundtrip(
        ResponseRepr {
            slot: 0,
            status: Status::new(IccStatus::Absent, CommandStatus::Failed),
            error: 0xFE,
            response: Response::SlotStatus { clock_status: 0 },
        },
        2,
        &[0x81, 0, 0, 0, 0, 0, 2, 0x42, 0xFE, 0x00],
    );
}

#[test]
fn parameters_t1_and_empty_failure() {
    let t1 = T1Params {
        findex_dindex: 0x13,
        tccks: 0x11,
        guard_time: 0xFF,
        waiting_integers: 0x45,
        clock_stop: 0x03,
        ifsc: 0x20,
        nad: 0x00,
    };
    roundtrip(
        ResponseRepr {
            slot: 1,
            status: Status(0),
            error: 0,
            response: Response::Parameters {
                protocol_num: 1,
                params: Some(ProtocolData::T1(t1)),
            },
        },
        4,
        &[
            0x82, 7, 0, 0, 0, 1, 4, 0, 0, 0x01, 0x13, 0x11, 0xFF, 0x45, 0x03, 0x20, 0x00,
        ],
    );
    // Failed SetParameters: bError 10 = offset of the bad byte (bmFindexDindex).
    roundtrip(
        ResponseRepr {
            slot: 0,
            status: Status(0x40),
            error: 10,
            response: Response::Parameters {
                protocol_num: 0,
                params: None,
            },
        },
        5,
        &[0x82, 0, 0, 0, 0, 0, 5, 0x40, 10, 0x00],
    );
}

#[test]
fn escape_and_data_rate_responses() {
    roundtrip(
        ResponseRepr {
            slot: 0,
            status: Status(0),
            error: 0,
            response: Response::Escape {
                data: &[0x01, 0x02],
            },
        },
        6,
        &[0x83, 2, 0, 0, 0, 0, 6, 0, 0, 0, 0x01, 0x02],
    );
    roundtrip(
        ResponseRepr {
            slot: 0,
            status: Status(0),
            error: 0,
            response: Response::DataRateAndClockFrequency {
                values: Some((4000, 10752)),
            },
        },
        7,
        &[
            0x84, 8, 0, 0, 0, 0, 7, 0, 0, 0, 0xA0, 0x0F, 0, 0, 0x00, 0x2A, 0, 0,
        ],
    );
}

#[test]
fn malformed_responses_are_rejected() {
    for frame in [
        &[0x81, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xAA][..],
        &[0x82, 3, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3],
        &[0x84, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4],
        &[0x6F, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ] {
        let msg = Message::new_checked(frame).unwrap();
        let e = ResponseRepr::parse(&msg).unwrap_err();
        assert!(matches!(e, CcidError::BadPayload { .. }), "{e}");
    }
}

#[test]
fn view_construction_errors() {
    assert!(matches!(
        Message::new_checked(&[0x80, 0, 0][..]),
        Err(CcidError::TruncatedHeader { .. })
    ));
    assert!(matches!(
        Message::new_checked(&[0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0][..]),
        Err(CcidError::UnknownMessageType { value: 0x99, .. })
    ));
    let e =
        Message::new_checked(&[0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 1][..]).unwrap_err();
    assert!(matches!(
        e,
        CcidError::Truncated {
            declared: 0xFFFF_FFFF,
            received: 1,
            ..
        }
    ));
    assert!(
        e.to_string().contains("80 FF FF FF FF 00 00 00 00 00 01"),
        "{e}"
    );
}

#[test]
fn status_fields() {
    assert_eq!(Status(0x00).icc(), IccStatus::PresentActive);
    assert_eq!(Status(0x01).icc(), IccStatus::PresentInactive);
    assert_eq!(Status(0x02).icc(), IccStatus::Absent);
    assert_eq!(Status(0x03).icc(), IccStatus::Reserved);
    assert_eq!(Status(0x40).command(), CommandStatus::Failed);
    assert_eq!(Status(0x80).command(), CommandStatus::TimeExtension);
    assert_eq!(Status(0xC0).command(), CommandStatus::Reserved);
    assert_eq!(
        Status::new(IccStatus::PresentInactive, CommandStatus::Failed),
        Status(0x41)
    );
}

#[test]
fn every_error_code() {
    use SlotError::*;
    for (byte, err) in [
        (0xFF, CmdAborted),
        (0xFE, IccMute),
        (0xFD, XfrParityError),
        (0xFC, XfrOverrun),
        (0xFB, HwError),
        (0xF8, BadAtrTs),
        (0xF7, BadAtrTck),
        (0xF6, IccProtocolNotSupported),
        (0xF5, IccClassNotSupported),
        (0xF4, ProcedureByteConflict),
        (0xF3, DeactivatedProtocol),
        (0xF2, BusyWithAutoSequence),
        (0xF0, PinTimeout),
        (0xEF, PinCancelled),
        (0xE0, CmdSlotBusy),
        (0x00, CommandNotSupported),
        (0x01, BadParameter(1)),
        (0x07, BadParameter(7)),
        (0x7F, BadParameter(0x7F)),
        (0x80, UserDefined(0x80)),
        (0xC0, UserDefined(0xC0)),
        (0xC1, Reserved(0xC1)),
        (0xF1, Reserved(0xF1)),
    ] {
        assert_eq!(SlotError::from_byte(byte), err);
        assert_eq!(err.to_byte(), byte);
    }
    assert_eq!(IccMute.to_string(), "ICC_MUTE");
    assert!(BadParameter(7).to_string().contains("offset 7"));
}

fn expect(msg_type: MessageType, seq: u8) -> Expectation {
    Expectation {
        msg_type,
        slot: 0,
        seq,
        max_slot_index: 1,
        max_message_length: 271,
    }
}

#[test]
fn validate_accepts_the_right_answer() {
    let frame = [0x80, 2, 0, 0, 0, 0, 3, 0, 0, 0, 0x90, 0x00];
    match validate_response(&frame[..], &expect(MessageType::XfrBlock, 3)).unwrap() {
        Reply::Done(m) => assert_eq!(m.payload(), &[0x90, 0x00]),
        other => panic!("{other:?}"),
    }
    let frame = [0x81, 0, 0, 0, 0, 0, 4, 0x01, 0, 0];
    assert!(matches!(
        validate_response(&frame[..], &expect(MessageType::IccPowerOff, 4)),
        Ok(Reply::Done(_))
    ));
}

#[test]
fn validate_time_extension() {
    let frame = [0x80, 0, 0, 0, 0, 0, 3, 0x80, 0x05, 0];
    match validate_response(&frame[..], &expect(MessageType::XfrBlock, 3)).unwrap() {
        Reply::TimeExtension { multiplier, .. } => assert_eq!(multiplier, 5),
        other => panic!("{other:?}"),
    }
}

#[test]
fn validate_every_error_path() {
    let e = |frame: &[u8], ex: Expectation| validate_response(frame, &ex).unwrap_err();
    let xfr = expect(MessageType::XfrBlock, 3);
    assert!(matches!(
        e(&[0x80, 0, 0], xfr),
        CcidError::TruncatedHeader { .. }
    ));
    assert!(matches!(
        e(&[0x80, 3, 0, 0, 0, 0, 3, 0, 0, 0, 0x90], xfr),
        CcidError::Truncated {
            declared: 3,
            received: 1,
            ..
        }
    ));
    assert!(matches!(
        e(&[0x80, 1, 0, 0, 0, 0, 3, 0, 0, 0, 0x90, 0x00, 0xEE], xfr),
        CcidError::TrailingBytes {
            declared: 1,
            received: 3,
            ..
        }
    ));
    // 10 + 262 = 272 > 271.
    let mut long = vec![0x80, 0x06, 0x01, 0, 0, 0, 3, 0, 0, 0];
    long.resize(272, 0);
    assert!(matches!(
        e(&long, xfr),
        CcidError::TooLong {
            length: 272,
            max: 271,
            ..
        }
    ));
    assert!(matches!(
        e(&[0x55, 0, 0, 0, 0, 0, 3, 0, 0, 0], xfr),
        CcidError::UnknownMessageType { value: 0x55, .. }
    ));
    assert!(matches!(
        e(&[0x81, 0, 0, 0, 0, 0, 3, 0, 0, 0], xfr),
        CcidError::UnexpectedMessageType {
            expected: MessageType::DataBlock,
            got: MessageType::SlotStatus,
            ..
        }
    ));
    // Parameters expected for SetParameters, DataRate for SetDataRate, Escape for Escape.
    for (req, got) in [
        (MessageType::SetParameters, 0x80u8),
        (MessageType::SetDataRateAndClockFrequency, 0x81),
        (MessageType::Escape, 0x80),
        (MessageType::T0Apdu, 0x80),
        (MessageType::Secure, 0x81),
    ] {
        assert!(matches!(
            e(&[got, 0, 0, 0, 0, 0, 3, 0, 0, 0], expect(req, 3)),
            CcidError::UnexpectedMessageType { .. }
        ));
    }
    assert!(matches!(
        e(&[0x80, 0, 0, 0, 0, 2, 3, 0, 0, 0], xfr),
        CcidError::BadSlot {
            slot: 2,
            max_slot_index: 1,
            ..
        }
    ));
    assert!(matches!(
        e(&[0x80, 0, 0, 0, 0, 1, 3, 0, 0, 0], xfr),
        CcidError::WrongSlot {
            expected: 0,
            got: 1,
            ..
        }
    ));
    let stale = e(&[0x80, 0, 0, 0, 0, 0, 2, 0, 0, 0], xfr);
    assert!(matches!(
        stale,
        CcidError::StaleSequence {
            expected: 3,
            got: 2,
            ..
        }
    ));
    assert!(
        stale.to_string().contains("80 00 00 00 00 00 02 00 00 00"),
        "{stale}"
    );
    let failed = e(&[0x80, 0, 0, 0, 0, 0, 3, 0x42, 0xFE, 0], xfr);
    assert_eq!(
        failed,
        CcidError::CommandFailed {
            error: SlotError::IccMute,
            icc: IccStatus::Absent,
            frame: failed.frame().unwrap().clone(),
        }
    );
    assert!(failed.to_string().contains("ICC_MUTE"), "{failed}");
    assert!(matches!(
        e(&[0x80, 0, 0, 0, 0, 0, 3, 0xC0, 0, 0], xfr),
        CcidError::BadStatus { status: 0xC0, .. }
    ));
    assert!(matches!(
        e(&[0x80, 0, 0, 0, 0, 0, 3, 0x03, 0, 0], xfr),
        CcidError::BadStatus { status: 0x03, .. }
    ));
}

#[test]
fn notify_slot_change_bitmap() {
    // ceil((bMaxSlotIndex+1)*2/8): 1 slot → 1 byte, 4 slots → 1, 5 slots → 2.
    assert_eq!(slot_bitmap_len(0), 1);
    assert_eq!(slot_bitmap_len(3), 1);
    assert_eq!(slot_bitmap_len(4), 2);
    // Slot 0 present+changed (bits 0,1), slot 1 changed only (bit 3), slot 4 present (byte 1 bit 0).
    let frame = [0x50, 0b0000_1011, 0b0000_0001];
    let m = InterruptMessage::parse(&frame, 4).unwrap();
    assert_eq!(
        m.slot_change(0),
        Some(SlotChange {
            slot: 0,
            present: true,
            changed: true
        })
    );
    assert_eq!(
        m.slot_change(1),
        Some(SlotChange {
            slot: 1,
            present: false,
            changed: true
        })
    );
    assert_eq!(
        m.slot_change(4),
        Some(SlotChange {
            slot: 4,
            present: true,
            changed: false
        })
    );
    assert_eq!(m.slot_change(8), None);
    let mut buf = [0u8; 4];
    let slots = [
        (true, true),
        (false, true),
        (false, false),
        (false, false),
        (true, false),
    ];
    let n = emit_notify_slot_change(&slots, &mut buf).unwrap();
    assert_eq!(&buf[..n], &frame);
    // Wrong bitmap size for the reader.
    assert!(InterruptMessage::parse(&[0x50, 0x03], 4).is_err());
    assert!(InterruptMessage::parse(&[0x50], 0).is_err());
    assert!(InterruptMessage::parse(&[], 0).is_err());
    assert!(matches!(
        InterruptMessage::parse(&[0x52, 0], 0),
        Err(CcidError::UnknownMessageType { value: 0x52, .. })
    ));
}

#[test]
fn hardware_error() {
    let mut buf = [0u8; 4];
    emit_hardware_error(0, 7, 0x01, &mut buf).unwrap();
    assert_eq!(buf, [0x51, 0x00, 0x07, 0x01]);
    assert_eq!(
        InterruptMessage::parse(&buf, 0).unwrap(),
        InterruptMessage::HardwareError {
            slot: 0,
            seq: 7,
            code: 1
        }
    );
    assert!(InterruptMessage::parse(&[0x51, 0, 7], 0).is_err());
    assert!(matches!(
        InterruptMessage::parse(&[0x51, 3, 7, 1], 0),
        Err(CcidError::BadSlot { .. })
    ));
}

#[test]
fn control_requests() {
    // ABORT: bmRequestType 0x21, bRequest 1, wValue = bSeq<<8 | bSlot.
    assert_eq!(
        ControlRequest::abort(0, 1, 7).to_bytes(),
        [0x21, 0x01, 0x01, 0x07, 0x00, 0x00, 0x00, 0x00]
    );
    assert_eq!(
        ControlRequest::get_clock_frequencies(1, 2).to_bytes(),
        [0xA1, 0x02, 0, 0, 0x01, 0x00, 0x08, 0x00]
    );
    assert_eq!(
        ControlRequest::get_data_rates(0, 53).to_bytes(),
        [0xA1, 0x03, 0, 0, 0x00, 0x00, 212, 0x00]
    );
    let rates: Vec<u32> = parse_u32_list(&[0x00, 0x2A, 0, 0, 0x90, 0xD0, 0x03, 0x00])
        .unwrap()
        .collect();
    assert_eq!(rates, vec![10752, 250000]);
    assert!(parse_u32_list(&[1, 2, 3]).is_err());
}

#[test]
fn trace_line_names_the_message() {
    let frame = [
        0x6F, 5, 0, 0, 0, 0, 3, 0, 0, 0, 0x00, 0x84, 0x00, 0x00, 0x08,
    ];
    assert_eq!(
        describe(&frame),
        "PC_to_RDR_XfrBlock slot=0 seq=3 len=5: 00 84 00 00 08"
    );
    assert!(describe(&[0x80]).starts_with("short CCID frame"));
    assert!(describe(&[0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0]).starts_with("unknown(0x99)"));
}
