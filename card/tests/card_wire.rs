//! The channel-independent core of the card service layer, checked against
//! byte strings built by hand from ISO/IEC 7816-4: APDU encodings (§5.1),
//! status words (§5.6), BER-TLV (§6.3), FCP (§7.4), and the GET RESPONSE /
//! 6Cxx / chaining procedures (7816-3 §12.2, 7816-4 §5.1.1) over a scripted
//! channel.

use std::collections::VecDeque;
use std::time::Duration;

use ferroccid_card::tlv::{self, Tag, Tlv, TlvError, TlvIter};
use ferroccid_card::*;
use ferroccid_card::{atr_announces_extended, Exchanger};
use proptest::prelude::*;

// ---------------------------------------------------------------- APDU

fn enc(cmd: Command<'_>) -> Vec<u8> {
    cmd.to_bytes(false).unwrap()
}

#[test]
fn short_cases_encode_as_7816_4_table_3() {
    // Case 1: header only.
    assert_eq!(
        enc(Command::new(0xA4, 0x00, 0x00)),
        [0x00, 0xA4, 0x00, 0x00]
    );
    // Case 2S: Le = 00 means Ne = 256.
    assert_eq!(
        enc(Command::new(0xB0, 0x00, 0x00).with_ne(256)),
        [0x00, 0xB0, 0x00, 0x00, 0x00]
    );
    assert_eq!(
        enc(Command::new(0xB0, 0x01, 0x02).with_ne(16)),
        [0x00, 0xB0, 0x01, 0x02, 0x10]
    );
    // Case 3S.
    assert_eq!(
        enc(Command::new(0xD6, 0x00, 0x00).with_data(&[0xAA, 0xBB])),
        [0x00, 0xD6, 0x00, 0x00, 0x02, 0xAA, 0xBB]
    );
    // Case 4S.
    assert_eq!(
        enc(Command::new(0xA4, 0x00, 0x04)
            .with_data(&[0x3F, 0x00])
            .with_ne(256)),
        [0x00, 0xA4, 0x00, 0x04, 0x02, 0x3F, 0x00, 0x00]
    );
}

#[test]
fn extended_cases_encode_as_7816_4_table_3() {
    // Case 2E, Ne = 65536: Le = 00 0000.
    assert_eq!(
        enc(Command::new(0xB0, 0, 0).with_ne(65536)),
        [0x00, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x00]
    );
    // Case 2E, Ne = 257.
    assert_eq!(
        enc(Command::new(0xB0, 0, 0).with_ne(257)),
        [0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x01]
    );
    // Case 3E, Nc = 256.
    let data = vec![0x5A; 256];
    let bytes = enc(Command::new(0xD6, 0, 0).with_data(&data));
    assert_eq!(&bytes[..7], &[0x00, 0xD6, 0x00, 0x00, 0x00, 0x01, 0x00]);
    assert_eq!(bytes.len(), 7 + 256);
    // Case 4E: Lc 3 bytes, then Le 2 bytes (no leading 00).
    let data = vec![0x11; 300];
    let bytes = enc(Command::new(0x88, 0, 0).with_data(&data).with_ne(65536));
    assert_eq!(&bytes[..7], &[0x00, 0x88, 0x00, 0x00, 0x00, 0x01, 0x2C]);
    assert_eq!(&bytes[7 + 300..], &[0x00, 0x00]);
    // A short-sized command forced into the extended form.
    assert_eq!(
        Command::new(0xB0, 0, 0).with_ne(16).to_bytes(true).unwrap(),
        [0x00, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x10]
    );
    // Beyond the limits.
    assert!(Command::new(0xB0, 0, 0)
        .with_ne(65537)
        .to_bytes(false)
        .is_err());
}

#[test]
fn encoded_len_matches_encoding() {
    for (nc, ne) in [
        (0, 0),
        (0, 1),
        (0, 256),
        (0, 257),
        (5, 0),
        (255, 256),
        (256, 0),
        (256, 10),
        (0, 65536),
    ] {
        let data = vec![0; nc];
        let cmd = Command::new(0xB0, 0, 0).with_data(&data).with_ne(ne);
        assert_eq!(cmd.encoded_len(false), enc(cmd).len(), "nc {nc} ne {ne}");
    }
}

#[test]
fn command_and_response_debug_hide_data() {
    let pin = b"123456";
    let cmd = Command::new(0x20, 0x00, 0x81).with_data(pin);
    let text = format!("{cmd:?}");
    assert!(!text.contains("31") && !text.contains("123456"), "{text}");
    let response = Response::from_bytes(&[0x31, 0x32, 0x90, 0x00]).unwrap();
    assert_eq!(format!("{response:?}"), "Response(2 bytes, SW 9000)");
    assert!(Response::from_bytes(&[0x90]).is_none());
    assert_eq!(format!("{:?}", Pin::from("123456")), "Pin(<redacted>)");
}

// ---------------------------------------------------------------- SW

#[test]
fn status_words_map_to_7816_4_meanings() {
    let cases: &[(u16, CardError)] = &[
        (0x6282, CardError::EndOfFile),
        (0x63C2, CardError::WrongPin { tries_left: 2 }),
        (0x63C0, CardError::WrongPin { tries_left: 0 }),
        (0x6700, CardError::WrongLength),
        (0x6882, CardError::SecureMessagingNotSupported),
        (0x6884, CardError::ChainingNotSupported),
        (0x6981, CardError::IncompatibleFileStructure),
        (0x6982, CardError::SecurityStatusNotSatisfied),
        (0x6983, CardError::AuthenticationBlocked),
        (0x6985, CardError::ConditionsNotSatisfied),
        (0x6986, CardError::NoCurrentEf),
        (0x6A80, CardError::IncorrectData),
        (0x6A82, CardError::FileNotFound),
        (0x6A83, CardError::RecordNotFound),
        (0x6A84, CardError::NotEnoughMemory),
        (0x6A86, CardError::IncorrectP1P2),
        (0x6B00, CardError::IncorrectP1P2),
        (0x6A88, CardError::ReferenceNotFound),
        (0x6D00, CardError::InsNotSupported),
        (0x6E00, CardError::ClaNotSupported),
        (0x6F00, CardError::NoPreciseDiagnosis),
        (0x6A89, CardError::Other(Sw(0x6A89))),
        (0x9120, CardError::Other(Sw(0x9120))),
    ];
    for &(sw, expected) in cases {
        assert_eq!(CardError::from_sw(Sw(sw)), expected, "{sw:04X}");
        let error = Error::status(Sw(sw));
        assert_eq!(error.sw(), Some(Sw(sw)), "raw SW kept");
        assert_eq!(error.card_error(), Some(expected));
    }
    assert_eq!(Sw::new(0x6A, 0x82), Sw(0x6A82));
    assert_eq!((Sw(0x6A82).sw1(), Sw(0x6A82).sw2()), (0x6A, 0x82));
    assert_eq!(Sw(0x6A82).to_string(), "6A82");
}

// ---------------------------------------------------------------- TLV

#[test]
fn tlv_tag_and_length_forms() {
    // One-byte tag, short length.
    let (t, rest) = Tlv::parse(&[0x83, 0x02, 0x3F, 0x00, 0xAA])
        .unwrap()
        .unwrap();
    assert_eq!(
        (t.tag(), t.value(), rest),
        (Tag(0x83), &[0x3F, 0x00][..], &[0xAA][..])
    );
    // Two-byte tag 5F2D, three-byte tag 7F8102 (1F low bits, then b8 chain).
    let (t, _) = Tlv::parse(&[0x5F, 0x2D, 0x02, b'e', b'n'])
        .unwrap()
        .unwrap();
    assert_eq!(t.tag(), Tag(0x5F2D));
    let (t, _) = Tlv::parse(&[0x7F, 0x81, 0x02, 0x00]).unwrap().unwrap();
    assert_eq!((t.tag(), t.value().len()), (Tag(0x7F8102), 0));
    assert!(t.tag().is_constructed());
    assert_eq!(t.tag().class(), 1);
    // Long length forms 81 and 82.
    let mut bytes = vec![0x53, 0x81, 0x80];
    bytes.extend([7; 0x80]);
    let (t, _) = Tlv::parse(&bytes).unwrap().unwrap();
    assert_eq!(t.value().len(), 0x80);
    let mut bytes = vec![0x53, 0x82, 0x01, 0x00];
    bytes.extend([7; 0x100]);
    assert_eq!(Tlv::parse(&bytes).unwrap().unwrap().0.value().len(), 0x100);
    // Padding 00 / FF before and after.
    let items: Vec<_> = TlvIter::new(&[0x00, 0xFF, 0x80, 0x01, 0x05, 0x00, 0xFF])
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].value(), [0x05]);
}

#[test]
fn tlv_errors() {
    assert_eq!(Tlv::parse(&[0x83]), Err(TlvError::Truncated));
    assert_eq!(Tlv::parse(&[0x83, 0x03, 1, 2]), Err(TlvError::Truncated));
    assert_eq!(Tlv::parse(&[0x83, 0x80]), Err(TlvError::BadLength));
    assert_eq!(
        Tlv::parse(&[0x83, 0x85, 0, 0, 0, 0, 1]),
        Err(TlvError::BadLength)
    );
    assert_eq!(Tlv::parse(&[0x83, 0x82, 0x01]), Err(TlvError::Truncated));
    assert_eq!(
        Tlv::parse(&[0x5F, 0x81, 0x81, 0x81, 0x01, 0x00]),
        Err(TlvError::TagTooLong)
    );
    assert_eq!(Tlv::parse(&[0x5F]), Err(TlvError::Truncated));
    // A 4-byte length that claims 4 GiB.
    assert_eq!(
        Tlv::parse(&[0x83, 0x84, 0xFF, 0xFF, 0xFF, 0xFF, 0]),
        Err(TlvError::Truncated)
    );
    // The iterator stops after the first error.
    let mut it = TlvIter::new(&[0x80, 0x01, 0x00, 0x81, 0x05]);
    assert!(it.next().unwrap().is_ok());
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none());
    assert_eq!(Tlv::parse(&[]), Ok(None));
}

#[test]
fn tlv_encode_uses_shortest_forms() {
    let mut out = Vec::new();
    tlv::encode(Tag(0x54), &[0x01, 0x00, 0x00], &mut out);
    assert_eq!(out, [0x54, 0x03, 0x01, 0x00, 0x00]);
    out.clear();
    tlv::encode(Tag(0x5F2D), &[0; 200], &mut out);
    assert_eq!(&out[..4], &[0x5F, 0x2D, 0x81, 200]);
    out.clear();
    tlv::encode(Tag(0x53), &[0; 300], &mut out);
    assert_eq!(&out[..4], &[0x53, 0x82, 0x01, 0x2C]);
}

proptest! {
    #[test]
    fn tlv_hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        for t in TlvIter::new(&bytes).flatten() {
            {
                prop_assert!(t.value().len() <= bytes.len());
                for child in t.children() { let _ = child; }
            }
        }
        let _ = FileInfo::parse(&bytes);
    }

    #[test]
    fn tlv_round_trip(tag_byte in 0x01u8..0x1F, value in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut out = Vec::new();
        tlv::encode(Tag(u32::from(tag_byte) | 0x80), &value, &mut out);
        let (t, rest) = Tlv::parse(&out).unwrap().unwrap();
        prop_assert_eq!(t.tag(), Tag(u32::from(tag_byte) | 0x80));
        prop_assert_eq!(t.value(), &value[..]);
        prop_assert!(rest.is_empty());
    }
}

// ---------------------------------------------------------------- FCP

#[test]
fn fcp_of_a_linear_fixed_ef() {
    // 62 L { 80 02 0030 | 82 05 02 21 0010 03 | 83 02 5002 | 88 01 10 | 8A 01 05 }
    let bytes = [
        0x62, 0x15, 0x80, 0x02, 0x00, 0x30, 0x82, 0x05, 0x02, 0x21, 0x00, 0x10, 0x03, 0x83, 0x02,
        0x50, 0x02, 0x88, 0x01, 0x10, 0x8A, 0x01, 0x05,
    ];
    let info = FileInfo::parse(&bytes).unwrap().unwrap();
    assert_eq!(info.template, ferroccid_card::Template::Fcp);
    assert_eq!(
        info.kind,
        Some(FileKind::WorkingEf(EfStructure::LinearFixed))
    );
    assert_eq!(info.size, Some(0x30));
    assert_eq!(info.max_record_size, Some(16));
    assert_eq!(info.record_count, Some(3));
    assert_eq!(info.fid, Some(0x5002));
    assert_eq!(info.sfi, Some(Some(2)));
    assert_eq!(info.life_cycle, Some(LifeCycle::Activated));
}

#[test]
fn fci_of_a_df_with_nested_fcp_and_total_size() {
    // 6F { 84 name | 62 { 82 01 38 | 81 02 0100 | 8A 01 04 } | A5 00 }
    let bytes = [
        0x6F, 0x13, 0x84, 0x03, 0xA0, 0x00, 0x01, 0x62, 0x0A, 0x82, 0x01, 0x38, 0x81, 0x02, 0x01,
        0x00, 0x8A, 0x01, 0x04, 0xA5, 0x00,
    ];
    let info = FileInfo::parse(&bytes).unwrap().unwrap();
    assert_eq!(info.kind, Some(FileKind::Df));
    assert_eq!(info.df_name.as_deref(), Some(&[0xA0, 0x00, 0x01][..]));
    assert_eq!(info.size, Some(0x100));
    assert_eq!(info.life_cycle, Some(LifeCycle::Deactivated));
    assert_eq!(FileInfo::parse(&[]), Ok(None));
    assert!(FileInfo::parse(&[0x70, 0x00]).is_err());
    assert_eq!(
        FileKind::from_descriptor(0x01),
        FileKind::WorkingEf(EfStructure::Transparent)
    );
    assert_eq!(
        FileKind::from_descriptor(0x09),
        FileKind::InternalEf(EfStructure::Transparent)
    );
    assert_eq!(LifeCycle::from_byte(0x0F), LifeCycle::Terminated);
    assert_eq!(LifeCycle::from_byte(0x03), LifeCycle::Initialisation);
}

#[test]
fn atr_card_capabilities() {
    // Category 80, compact-TLV 73 (card capabilities, 3 bytes) with b7 of
    // the third byte set: extended Lc/Le.
    assert!(atr_announces_extended(&[0x80, 0x73, 0x00, 0x00, 0x40]));
    assert!(!atr_announces_extended(&[0x80, 0x73, 0x00, 0x00, 0x80]));
    // Category 00: the three trailing status bytes are not compact-TLV.
    assert!(atr_announces_extended(&[
        0x00, 0x73, 0x00, 0x00, 0xC0, 0x00, 0x90, 0x00
    ]));
    assert!(!atr_announces_extended(b"FerroSim"));
    assert!(!atr_announces_extended(&[0x80, 0x75, 0x00]));
}

// ---------------------------------------------------------------- exchange

/// A channel that checks each command against a script and answers.
struct Scripted {
    script: VecDeque<(Vec<u8>, Vec<u8>)>,
    extended: bool,
}

impl Scripted {
    fn new(extended: bool, script: &[(&[u8], &[u8])]) -> Self {
        Scripted {
            script: script
                .iter()
                .map(|(c, r)| (c.to_vec(), r.to_vec()))
                .collect(),
            extended,
        }
    }
}

impl CardChannel for Scripted {
    fn transmit(&mut self, cmd: &[u8], resp: &mut [u8]) -> Result<usize, ChannelError> {
        let (expected, answer) = self.script.pop_front().expect("command beyond the script");
        assert_eq!(cmd, &expected[..], "command sent");
        resp[..answer.len()].copy_from_slice(&answer);
        Ok(answer.len())
    }
    fn status(&mut self) -> Result<ChannelStatus, ChannelError> {
        Ok(ChannelStatus {
            reader: "scripted".into(),
            state: CardState::Specific,
            present: true,
            powered: true,
            protocol: Some(Protocol::T0),
            atr: vec![0x3B, 0x00],
        })
    }
    fn reconnect(
        &mut self,
        _: Initialization,
        _: ProtocolChoice,
    ) -> Result<ChannelStatus, ChannelError> {
        self.status()
    }
    fn disconnect(&mut self, _: Disposition) -> Result<(), ChannelError> {
        Ok(())
    }
    fn begin_transaction(&mut self, _: Option<Duration>) -> Result<(), ChannelError> {
        Ok(())
    }
    fn end_transaction(&mut self, _: Disposition) -> Result<(), ChannelError> {
        Ok(())
    }
    fn max_command_len(&self) -> usize {
        if self.extended {
            65_544
        } else {
            261
        }
    }
    fn max_response_len(&self) -> usize {
        if self.extended {
            65_538
        } else {
            258
        }
    }
    fn supports_extended(&self) -> bool {
        self.extended
    }
}

#[test]
fn get_response_collects_61xx_pieces() {
    let mut ch = Scripted::new(
        false,
        &[
            (
                &[0x00, 0xA4, 0x00, 0x04, 0x02, 0x3F, 0x00, 0x00],
                &[0x61, 0x05],
            ),
            (&[0x00, 0xC0, 0x00, 0x00, 0x05], &[1, 2, 3, 0x61, 0x02]),
            (&[0x00, 0xC0, 0x00, 0x00, 0x02], &[4, 5, 0x90, 0x00]),
        ],
    );
    let mut ex = Exchanger::new(false);
    let cmd = Command::new(0xA4, 0x00, 0x04)
        .with_data(&[0x3F, 0x00])
        .with_ne(256);
    let r = ex.exchange(&mut ch, &cmd).unwrap();
    assert_eq!((r.data, r.sw), (vec![1, 2, 3, 4, 5], Sw::OK));
    assert!(ch.script.is_empty());
}

#[test]
fn wrong_le_6cxx_reissues_with_sw2_and_61_00_means_256() {
    let mut ch = Scripted::new(
        false,
        &[
            (&[0x00, 0xB0, 0x00, 0x00, 0x10], &[0x6C, 0x04]),
            (&[0x00, 0xB0, 0x00, 0x00, 0x04], &[9, 8, 7, 6, 0x90, 0x00]),
        ],
    );
    let mut ex = Exchanger::new(false);
    let r = ex
        .exchange(&mut ch, &Command::new(0xB0, 0, 0).with_ne(16))
        .unwrap();
    assert_eq!(r.data, [9, 8, 7, 6]);
    // 61 00: 256 more bytes (no Ne of the caller limits them: case 3).
    let mut ch = Scripted::new(
        false,
        &[
            (&[0x00, 0x88, 0x00, 0x00, 0x01, 0xAA], &[0x61, 0x00]),
            (&[0x00, 0xC0, 0x00, 0x00, 0x00], &[0x90, 0x00]),
        ],
    );
    ex.exchange(&mut ch, &Command::new(0x88, 0, 0).with_data(&[0xAA]))
        .unwrap();
    // Logical channel bits of CLA survive into GET RESPONSE.
    let mut ch = Scripted::new(
        false,
        &[
            (&[0x01, 0x84, 0x00, 0x00, 0x08], &[0x61, 0x01]),
            (&[0x01, 0xC0, 0x00, 0x00, 0x01], &[0xAB, 0x90, 0x00]),
        ],
    );
    let r = ex
        .exchange(&mut ch, &Command::new(0x84, 0, 0).with_cla(0x01).with_ne(8))
        .unwrap();
    assert_eq!(r.data, [0xAB]);
}

#[test]
fn endless_61xx_is_malformed_not_a_hang() {
    struct Endless;
    impl CardChannel for Endless {
        fn transmit(&mut self, _: &[u8], resp: &mut [u8]) -> Result<usize, ChannelError> {
            resp[..3].copy_from_slice(&[0x00, 0x61, 0x01]);
            Ok(3)
        }
        fn status(&mut self) -> Result<ChannelStatus, ChannelError> {
            Err(ChannelError::NoCard)
        }
        fn reconnect(
            &mut self,
            _: Initialization,
            _: ProtocolChoice,
        ) -> Result<ChannelStatus, ChannelError> {
            Err(ChannelError::NoCard)
        }
        fn disconnect(&mut self, _: Disposition) -> Result<(), ChannelError> {
            Ok(())
        }
        fn begin_transaction(&mut self, _: Option<Duration>) -> Result<(), ChannelError> {
            Ok(())
        }
        fn end_transaction(&mut self, _: Disposition) -> Result<(), ChannelError> {
            Ok(())
        }
    }
    let mut ex = Exchanger::new(false);
    let r = ex.exchange(&mut Endless, &Command::new(0x88, 0, 0).with_data(&[1]));
    assert_eq!(r, Err(Error::Malformed("61xx/6Cxx procedure does not end")));
}

#[test]
fn long_data_is_chained_on_short_channels_and_extended_otherwise() {
    let data: Vec<u8> = (0..300).map(|i| i as u8).collect();
    let mut first = vec![0x10, 0xD6, 0x00, 0x00, 0xFF];
    first.extend_from_slice(&data[..255]);
    let mut last = vec![0x00, 0xD6, 0x00, 0x00, 45];
    last.extend_from_slice(&data[255..]);
    let mut ch = Scripted::new(false, &[(&first, &[0x90, 0x00]), (&last, &[0x90, 0x00])]);
    let mut ex = Exchanger::new(true);
    let cmd = Command::new(0xD6, 0, 0).with_data(&data);
    assert_eq!(ex.exchange(&mut ch, &cmd).unwrap().sw, Sw::OK);
    assert!(ch.script.is_empty());
    // A card that refuses chaining stops the chain at the first piece.
    let mut ch = Scripted::new(false, &[(&first, &[0x68, 0x84])]);
    assert_eq!(ex.exchange(&mut ch, &cmd).unwrap().sw, Sw(0x6884));
    // Extended card and channel: one APDU.
    let mut whole = vec![0x00, 0xD6, 0x00, 0x00, 0x00, 0x01, 0x2C];
    whole.extend_from_slice(&data);
    let mut ch = Scripted::new(true, &[(&whole, &[0x90, 0x00])]);
    assert_eq!(ex.exchange(&mut ch, &cmd).unwrap().sw, Sw::OK);
    // Extended channel, short-only card: chained again.
    let mut ex_short = Exchanger::new(false);
    let mut ch = Scripted::new(true, &[(&first, &[0x90, 0x00]), (&last, &[0x90, 0x00])]);
    assert_eq!(ex_short.exchange(&mut ch, &cmd).unwrap().sw, Sw::OK);
    assert_eq!((ex.max_nc(&ch), ex.max_ne(&ch)), (65_535, 65_536));
    assert_eq!((ex_short.max_nc(&ch), ex_short.max_ne(&ch)), (255, 256));
}

#[test]
fn response_without_sw_is_malformed() {
    let mut ch = Scripted::new(false, &[(&[0x00, 0x84, 0x00, 0x00, 0x08], &[0x90])]);
    let r = Exchanger::new(false).exchange(&mut ch, &Command::new(0x84, 0, 0).with_ne(8));
    assert!(matches!(r, Err(Error::Malformed(_))));
}

#[test]
fn get_response_asks_no_more_than_the_callers_ne() {
    // Case 4 over T=0: Le was dropped, the card offers 32 bytes, the caller
    // wanted 16 (ISO/IEC 7816-3 §12.2.4: GET RESPONSE with min(Ne, SW2)).
    let mut ch = Scripted::new(
        false,
        &[
            (&[0x00, 0x88, 0x00, 0x00, 0x01, 0xAA, 0x10], &[0x61, 0x20]),
            (
                &[0x00, 0xC0, 0x00, 0x00, 0x10],
                &[&[7u8; 16][..], &[0x61, 0x10]].concat(),
            ),
        ],
    );
    let cmd = Command::new(0x88, 0, 0).with_data(&[0xAA]).with_ne(16);
    let r = Exchanger::new(false).exchange(&mut ch, &cmd).unwrap();
    assert_eq!((r.data, r.sw), (vec![7u8; 16], Sw::OK));
    assert!(ch.script.is_empty());
}

/// PcscMonitor's reading of pcsc-lite's card event counter: each counted
/// insertion or removal becomes one event, alternating from the state
/// seen at the previous look.
#[cfg(feature = "pcsc")]
#[test]
fn pcsc_card_moves_follow_the_event_counter() {
    use ferroccid_card::card_moves;
    use EventKind::{CardInserted as In, CardRemoved as Out};
    assert_eq!(card_moves(true, true, 0), []);
    assert_eq!(card_moves(true, false, 1), [Out]);
    assert_eq!(card_moves(false, true, 1), [In]);
    assert_eq!(card_moves(true, true, 2), [Out, In]);
    assert_eq!(card_moves(false, false, 2), [In, Out]);
    // Two removals and insertions between two looks: none lost.
    assert_eq!(card_moves(true, true, 4), [Out, In, Out, In]);
    assert_eq!(card_moves(true, false, 3), [Out, In, Out]);
    // Counter and state disagree: the state decides the parity.
    assert_eq!(card_moves(true, false, 0), [Out]);
    assert_eq!(card_moves(false, false, 1), []);
}
