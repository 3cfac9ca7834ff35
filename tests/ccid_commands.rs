//! PC_to_RDR_* commands: each encoded frame is compared with a frame built by
//! hand from CCID Rev 1.1 §6.1, then decoded back.
use ferroccid::ccid::command::{Command, CommandRepr};
use ferroccid::ccid::params::{ProtocolData, T0Params, T1Params};
use ferroccid::ccid::secure::{PinModify, PinVerify, SecureData};
use ferroccid::ccid::{CcidError, Message, MessageType};

/// Emit `repr` with `seq`, compare with `expected`, then parse it back and compare.
fn roundtrip(repr: CommandRepr<'_>, seq: u8, expected: &[u8]) {
    let mut buf = [0u8; 300];
    let n = repr.emit(seq, &mut buf).expect("emit");
    assert_eq!(&buf[..n], expected, "encoding of {repr:?}");
    assert_eq!(repr.buffer_len(), expected.len());
    let msg = Message::new_checked(expected).expect("view");
    assert_eq!(msg.seq(), seq);
    assert_eq!(msg.slot(), repr.slot);
    assert_eq!(msg.message_type(), repr.message_type());
    assert_eq!(msg.length() as usize, expected.len() - 10);
    let parsed = CommandRepr::parse(&msg).expect("parse");
    assert_eq!(parsed, repr);
}

fn cmd(slot: u8, command: Command<'_>) -> CommandRepr<'_> {
    CommandRepr { slot, command }
}

#[test]
fn icc_power_on_automatic_and_5v() {
    roundtrip(
        cmd(0, Command::IccPowerOn { power_select: 0 }),
        1,
        &[0x62, 0, 0, 0, 0, 0x00, 0x01, 0x00, 0x00, 0x00],
    );
    roundtrip(
        cmd(1, Command::IccPowerOn { power_select: 1 }),
        2,
        &[0x62, 0, 0, 0, 0, 0x01, 0x02, 0x01, 0x00, 0x00],
    );
}

#[test]
fn power_off_slot_status_get_reset_parameters_abort() {
    roundtrip(
        cmd(0, Command::IccPowerOff),
        3,
        &[0x63, 0, 0, 0, 0, 0, 3, 0, 0, 0],
    );
    roundtrip(
        cmd(1, Command::GetSlotStatus),
        4,
        &[0x65, 0, 0, 0, 0, 1, 4, 0, 0, 0],
    );
    roundtrip(
        cmd(0, Command::GetParameters),
        5,
        &[0x6C, 0, 0, 0, 0, 0, 5, 0, 0, 0],
    );
    roundtrip(
        cmd(0, Command::ResetParameters),
        6,
        &[0x6D, 0, 0, 0, 0, 0, 6, 0, 0, 0],
    );
    roundtrip(
        cmd(2, Command::Abort),
        0xFF,
        &[0x72, 0, 0, 0, 0, 2, 0xFF, 0, 0, 0],
    );
}

#[test]
fn xfr_block_carries_apdu_and_level_parameter() {
    let apdu = [0x00, 0x84, 0x00, 0x00, 0x08];
    roundtrip(
        cmd(
            0,
            Command::XfrBlock {
                bwi: 0,
                level_parameter: 0,
                data: &apdu,
            },
        ),
        3,
        &[
            0x6F, 0x05, 0, 0, 0, 0, 3, 0, 0, 0, 0x00, 0x84, 0x00, 0x00, 0x08,
        ],
    );
    // wLevelParameter 0x0010 (continue an APDU chain) is little-endian at bytes 8-9.
    roundtrip(
        cmd(
            0,
            Command::XfrBlock {
                bwi: 2,
                level_parameter: 0x0010,
                data: &[],
            },
        ),
        9,
        &[0x6F, 0, 0, 0, 0, 0, 9, 0x02, 0x10, 0x00],
    );
    // 300-byte payload: dwLength 0x012C little-endian.
    let big = [0xAB; 290];
    let mut buf = [0u8; 300];
    let n = cmd(
        0,
        Command::XfrBlock {
            bwi: 0,
            level_parameter: 0,
            data: &big,
        },
    )
    .emit(0, &mut buf)
    .unwrap();
    assert_eq!(n, 300);
    assert_eq!(&buf[1..5], &[0x22, 0x01, 0x00, 0x00]);
}

#[test]
fn set_parameters_t0_and_t1() {
    let t0 = T0Params {
        findex_dindex: 0x96,
        tccks: 0x00,
        guard_time: 0x00,
        waiting_integer: 0x0A,
        clock_stop: 0x00,
    };
    roundtrip(
        cmd(0, Command::SetParameters(ProtocolData::T0(t0))),
        6,
        &[
            0x61, 5, 0, 0, 0, 0, 6, 0x00, 0, 0, 0x96, 0x00, 0x00, 0x0A, 0x00,
        ],
    );
    let t1 = T1Params {
        findex_dindex: 0x11,
        tccks: 0x10,
        guard_time: 0x00,
        waiting_integers: 0x4D,
        clock_stop: 0x00,
        ifsc: 0xFE,
        nad: 0x00,
    };
    assert_eq!((t1.bwi(), t1.cwi(), t1.uses_crc()), (4, 13, false));
    roundtrip(
        cmd(0, Command::SetParameters(ProtocolData::T1(t1))),
        7,
        &[
            0x61, 7, 0, 0, 0, 0, 7, 0x01, 0, 0, 0x11, 0x10, 0x00, 0x4D, 0x00, 0xFE, 0x00,
        ],
    );
}

#[test]
fn escape_clock_t0apdu_mechanical_set_data_rate() {
    roundtrip(
        cmd(
            0,
            Command::Escape {
                data: &[0xA5, 0x5A],
            },
        ),
        7,
        &[0x6B, 2, 0, 0, 0, 0, 7, 0, 0, 0, 0xA5, 0x5A],
    );
    roundtrip(
        cmd(0, Command::IccClock { clock_command: 1 }),
        8,
        &[0x6E, 0, 0, 0, 0, 0, 8, 0x01, 0, 0],
    );
    roundtrip(
        cmd(
            0,
            Command::T0Apdu {
                changes: 0x03,
                class_get_response: 0xA0,
                class_envelope: 0xB0,
            },
        ),
        9,
        &[0x6A, 0, 0, 0, 0, 0, 9, 0x03, 0xA0, 0xB0],
    );
    roundtrip(
        cmd(0, Command::Mechanical { function: 2 }),
        10,
        &[0x71, 0, 0, 0, 0, 0, 10, 0x02, 0, 0],
    );
    // 4000 kHz = 0x0FA0, 10752 bps = 0x2A00.
    roundtrip(
        cmd(
            0,
            Command::SetDataRateAndClockFrequency {
                clock_frequency_khz: 4000,
                data_rate: 10752,
            },
        ),
        11,
        &[
            0x73, 8, 0, 0, 0, 0, 11, 0, 0, 0, 0xA0, 0x0F, 0, 0, 0x00, 0x2A, 0, 0,
        ],
    );
}

const VERIFY_APDU: [u8; 13] = [
    0x00, 0x20, 0x00, 0x01, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
];

#[test]
fn secure_pin_verify() {
    let verify = PinVerify {
        timeout: 0x1E,
        format_string: 0x82,
        pin_block_string: 0x08,
        pin_length_format: 0x00,
        pin_max_extra_digit: 0x0408, // min 4, max 8
        entry_validation_condition: 0x02,
        number_message: 0x01,
        lang_id: 0x0409,
        msg_index: 0x00,
        teo_prologue: [0, 0, 0],
        apdu: &VERIFY_APDU,
    };
    let mut expected = vec![0x69, 28, 0, 0, 0, 0, 12, 0x00, 0x00, 0x00];
    expected.extend_from_slice(&[
        0x00, // bPINOperation: verification
        0x1E, 0x82, 0x08,
        0x00, // bTimeOut, bmFormatString, bmPINBlockString, bmPINLengthFormat
        0x08, 0x04, // wPINMaxExtraDigit, little-endian
        0x02, 0x01, // bEntryValidationCondition, bNumberMessage
        0x09, 0x04, // wLangId
        0x00, // bMsgIndex
        0x00, 0x00, 0x00, // bTeoPrologue
    ]);
    expected.extend_from_slice(&VERIFY_APDU);
    roundtrip(
        cmd(
            0,
            Command::Secure {
                bwi: 0,
                level_parameter: 0,
                data: SecureData::Verify(verify),
            },
        ),
        12,
        &expected,
    );
}

#[test]
fn secure_pin_modify_message_index_count_follows_bnumbermessage() {
    let apdu = [0x00, 0x24, 0x00, 0x01, 0x10];
    for (number_message, indexes) in [
        (1u8, &[0x00][..]),
        (2, &[0x00, 0x01]),
        (3, &[0x00, 0x01, 0x02]),
    ] {
        let modify = PinModify {
            timeout: 0x00,
            format_string: 0x82,
            pin_block_string: 0x08,
            pin_length_format: 0x00,
            insertion_offset_old: 0x00,
            insertion_offset_new: 0x08,
            pin_max_extra_digit: 0x0408,
            confirm_pin: 0x03,
            entry_validation_condition: 0x02,
            number_message,
            lang_id: 0x0409,
            msg_index: [0x00, 0x01, 0x02],
            teo_prologue: [0x00, 0x40, 0x15],
            apdu: &apdu,
        };
        let mut body = vec![
            0x01, // bPINOperation: modification
            0x00,
            0x82,
            0x08,
            0x00, // bTimeOut .. bmPINLengthFormat
            0x00,
            0x08, // bInsertionOffsetOld, bInsertionOffsetNew
            0x08,
            0x04, // wPINMaxExtraDigit
            0x03,
            0x02,
            number_message, // bConfirmPIN, bEntryValidationCondition, bNumberMessage
            0x09,
            0x04, // wLangId
        ];
        body.extend_from_slice(indexes);
        body.extend_from_slice(&[0x00, 0x40, 0x15]);
        body.extend_from_slice(&apdu);
        let mut expected = vec![0x69, body.len() as u8, 0, 0, 0, 0, 13, 0, 0, 0];
        expected.extend_from_slice(&body);
        let mut repr_modify = modify;
        // Indexes not on the wire decode as 0.
        for i in indexes.len()..3 {
            repr_modify.msg_index[i] = 0;
        }
        roundtrip(
            cmd(
                0,
                Command::Secure {
                    bwi: 0,
                    level_parameter: 0,
                    data: SecureData::Modify(repr_modify),
                },
            ),
            13,
            &expected,
        );
    }
}

#[test]
fn secure_other_operations_are_opaque() {
    // bPINOperation 4: cancel PIN function, no data.
    roundtrip(
        cmd(
            0,
            Command::Secure {
                bwi: 0,
                level_parameter: 0,
                data: SecureData::Other {
                    operation: 4,
                    data: &[],
                },
            },
        ),
        14,
        &[0x69, 1, 0, 0, 0, 0, 14, 0, 0, 0, 0x04],
    );
}

fn parse_err(frame: &[u8]) -> CcidError {
    let msg = Message::new_checked(frame).expect("view");
    CommandRepr::parse(&msg).expect_err("must be rejected")
}

#[test]
fn malformed_commands_are_rejected_with_the_frame() {
    // PowerOn with a payload.
    let e = parse_err(&[0x62, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xAA]);
    assert!(matches!(e, CcidError::BadPayload { .. }), "{e}");
    assert_eq!(e.frame().unwrap().bytes()[10], 0xAA);
    // SetParameters T=1 with 5 bytes.
    let e = parse_err(&[0x61, 5, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4, 5]);
    assert!(matches!(e, CcidError::BadPayload { .. }), "{e}");
    // SetParameters with protocol 2.
    let e = parse_err(&[0x61, 5, 0, 0, 0, 0, 0, 2, 0, 0, 1, 2, 3, 4, 5]);
    assert!(e.to_string().contains("bProtocolNum"), "{e}");
    // SetDataRate with 4 bytes.
    let e = parse_err(&[0x73, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    assert!(matches!(e, CcidError::BadPayload { .. }), "{e}");
    // Secure with empty abData, and a verify structure cut short.
    let e = parse_err(&[0x69, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(e.to_string().contains("bPINOperation"), "{e}");
    let e = parse_err(&[0x69, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x1E, 0x82]);
    assert!(matches!(e, CcidError::BadPayload { .. }), "{e}");
    // PIN modify with 3 message indexes announced but cut before bTeoPrologue.
    let e = parse_err(&[
        0x69, 16, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0x82, 8, 0, 0, 8, 8, 4, 3, 2, 3, 9, 4, 0, 1,
    ]);
    assert!(e.to_string().contains("bTeoPrologue"), "{e}");
    // A response is not a command.
    let e = parse_err(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(matches!(e, CcidError::BadPayload { .. }), "{e}");
}

#[test]
fn emit_into_a_small_buffer_fails_without_writing_past_it() {
    let mut buf = [0u8; 12];
    let repr = cmd(
        0,
        Command::XfrBlock {
            bwi: 0,
            level_parameter: 0,
            data: &[1, 2, 3],
        },
    );
    assert_eq!(
        repr.emit(0, &mut buf),
        Err(CcidError::BufferTooSmall {
            needed: 13,
            available: 12
        })
    );
}

#[test]
fn every_command_type_maps_to_its_response_type() {
    use MessageType::*;
    for (cmd, rsp) in [
        (IccPowerOn, DataBlock),
        (XfrBlock, DataBlock),
        (Secure, DataBlock),
        (IccPowerOff, SlotStatus),
        (GetSlotStatus, SlotStatus),
        (IccClock, SlotStatus),
        (T0Apdu, SlotStatus),
        (Mechanical, SlotStatus),
        (Abort, SlotStatus),
        (GetParameters, Parameters),
        (ResetParameters, Parameters),
        (SetParameters, Parameters),
        (Escape, EscapeResponse),
        (SetDataRateAndClockFrequency, DataRateAndClockFrequency),
    ] {
        assert_eq!(cmd.response_type(), Some(rsp), "{}", cmd.name());
        assert!(cmd.is_command());
        assert_eq!(MessageType::from_byte(cmd.to_byte()), Some(cmd));
    }
    assert_eq!(DataBlock.response_type(), None);
}
