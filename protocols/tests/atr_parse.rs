//! ATR parsing tests; every expected value is worked out by hand from
//! ISO/IEC 7816-3:2006 §8 (tables 7 and 8 for Fi/Di).
use ferroccid_protocols::atr::{
    inverse_to_direct, AnomalyKind, Atr, AtrError, Convention, InterfaceKind, SpecificMode,
};
use ferroccid_protocols::edc::Edc;

/// Append TCK, the byte making the XOR of T0..TCK zero (§8.2.5).
fn with_tck(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v.push(bytes[1..].iter().fold(0, |x, b| x ^ b));
    v
}

fn kinds(atr: &Atr) -> Vec<AnomalyKind> {
    atr.anomalies().map(|a| a.kind).collect()
}

#[test]
fn openpgp_card_t1() {
    // T0=FA: TA1 TB1 TC1 TD1, K=10. TA1=13: FI=1 (372, 5 MHz), DI=3 (Di=4).
    // TC1=FF: N=255. TD1=81: TD2 follows, T=1. TD2=31: TA3 TB3, T=1.
    // TA3=80: IFSC 128. TB3=45: BWI 4, CWI 5. TCK=B1.
    let bytes = [
        0x3B, 0xFA, 0x13, 0x00, 0xFF, 0x81, 0x31, 0x80, 0x45, 0x00, 0x31, 0xC1, 0x73, 0xC0, 0x01,
        0x00, 0x00, 0x90, 0x00, 0xB1,
    ];
    let atr = Atr::parse(&bytes).unwrap();
    assert_eq!(atr.as_bytes(), &bytes);
    assert_eq!(atr.convention(), Convention::Direct);
    assert_eq!(atr.protocols().as_slice(), &[1]);
    assert!(atr.protocols().contains(1) && !atr.protocols().contains(0));
    assert_eq!(atr.default_protocol(), 1);
    assert_eq!(atr.ta1(), Some(0x13));
    assert_eq!((atr.fi_index(), atr.di_index()), (1, 3));
    assert_eq!((atr.fi(), atr.di(), atr.f_max_khz()), (372, 4, 5_000));
    assert_eq!(atr.specific_mode(), None);
    assert_eq!(atr.n(), 255);
    assert_eq!(atr.guard_time_etu(1), 11);
    assert_eq!(atr.guard_time_etu(0), 12);
    assert_eq!(atr.wi(), 10);
    assert_eq!(atr.ifsc(), 128);
    assert_eq!((atr.bwi(), atr.cwi()), (4, 5));
    assert_eq!(atr.edc(), Edc::Lrc);
    assert_eq!(
        atr.historical(),
        &[0x00, 0x31, 0xC1, 0x73, 0xC0, 0x01, 0x00, 0x00, 0x90, 0x00]
    );
    assert_eq!(atr.tck(), Some(0xB1));
    assert_eq!(atr.tck_ok(), Some(true));
    assert_eq!(atr.class_indicator(), None);
    assert_eq!(atr.clock_stop(), None);
    assert_eq!(atr.anomalies().count(), 0);
    assert_eq!(Atr::parse_strict(&bytes), Ok(atr));
}

#[test]
fn t0_only_without_td_has_defaults_and_no_tck() {
    // T0=02: no interface bytes, K=2; T=0 implied, TCK absent.
    let atr = Atr::parse(&[0x3B, 0x02, 0x14, 0x50]).unwrap();
    assert_eq!(atr.protocols().as_slice(), &[0]);
    assert_eq!(atr.default_protocol(), 0);
    assert_eq!(atr.ta1(), None);
    assert_eq!((atr.fi_index(), atr.di_index()), (1, 1));
    assert_eq!((atr.fi(), atr.di(), atr.f_max_khz()), (372, 1, 5_000));
    assert_eq!(atr.n(), 0);
    assert_eq!(atr.guard_time_etu(0), 12);
    assert_eq!(atr.wi(), 10);
    assert_eq!(atr.ifsc(), 32);
    assert_eq!((atr.bwi(), atr.cwi()), (4, 13));
    assert_eq!(atr.edc(), Edc::Lrc);
    assert_eq!(atr.historical(), &[0x14, 0x50]);
    assert_eq!(atr.tck(), None);
    assert_eq!(atr.tck_ok(), None);
    assert_eq!(atr.interface_bytes().count(), 0);
}

/// 3B D1 96 05 F0 91 00 20 F1 FE 75 01 1F C3 42 TCK
fn every_group() -> Vec<u8> {
    with_tck(&[
        0x3B, 0xD1, // T0: TA1 TC1 TD1, K=1
        0x96, // TA1: FI=9 (512, 5 MHz), DI=6 (32)
        0x05, // TC1: N=5
        0xF0, // TD1: TA2 TB2 TC2 TD2, T=0
        0x91, // TA2: specific T=1, b8 unable to change, b5 implicit
        0x00, // TB2
        0x20, // TC2: WI=32 (T=0 specific since TD1 says T=0)
        0xF1, // TD2: TA3 TB3 TC3 TD3, T=1
        0xFE, // TA3: IFSC 254
        0x75, // TB3: BWI 7, CWI 5
        0x01, // TC3: CRC
        0x1F, // TD3: TA4, T=15
        0xC3, // TA4: clock stop 3 (no preference), class A and B
        0x42, // historical
    ])
}

#[test]
fn every_interface_group_decoded() {
    let bytes = every_group();
    let atr = Atr::parse(&bytes).unwrap();
    assert_eq!(atr.protocols().as_slice(), &[0, 1]);
    assert_eq!(atr.protocols().bitmask(), 0b11);
    assert_eq!(
        atr.specific_mode(),
        Some(SpecificMode {
            protocol: 1,
            implicit: true,
            changeable: false
        })
    );
    assert_eq!(atr.default_protocol(), 1);
    assert_eq!((atr.fi(), atr.di(), atr.f_max_khz()), (512, 32, 5_000));
    assert_eq!(atr.n(), 5);
    assert_eq!(atr.guard_time_etu(0), 17);
    assert_eq!(atr.wi(), 32);
    assert_eq!(atr.ifsc(), 254);
    assert_eq!((atr.bwi(), atr.cwi()), (7, 5));
    assert_eq!(atr.edc(), Edc::Crc);
    assert_eq!(atr.class_indicator(), Some(0x03));
    assert_eq!(atr.clock_stop(), Some(3));
    assert_eq!(atr.historical(), &[0x42]);
    assert_eq!(atr.tck(), Some(bytes[15]));
    assert_eq!(atr.tck_ok(), Some(true));
    assert_eq!(atr.anomalies().count(), 0);
    use InterfaceKind::*;
    let seen: Vec<(u8, InterfaceKind, u8, u8, Option<u8>)> = atr
        .interface_bytes()
        .map(|b| (b.i, b.kind, b.value, b.offset, b.after_protocol))
        .collect();
    assert_eq!(
        seen,
        vec![
            (1, Ta, 0x96, 2, None),
            (1, Tc, 0x05, 3, None),
            (1, Td, 0xF0, 4, None),
            (2, Ta, 0x91, 5, Some(0)),
            (2, Tb, 0x00, 6, Some(0)),
            (2, Tc, 0x20, 7, Some(0)),
            (2, Td, 0xF1, 8, Some(0)),
            (3, Ta, 0xFE, 9, Some(1)),
            (3, Tb, 0x75, 10, Some(1)),
            (3, Tc, 0x01, 11, Some(1)),
            (3, Td, 0x1F, 12, Some(1)),
            (4, Ta, 0xC3, 13, Some(15)),
        ]
    );
}

#[test]
fn only_the_first_t1_bytes_count() {
    // TD1=81 (TD2, T=1); TD2=F1 (TA3..TD3, T=1): TA3=20 TB3=21 TC3=00;
    // TD3=71 (TA4 TB4 TC4, T=1): TA4=FE TB4=99 TC4=01 are ignored.
    let atr = Atr::parse(&with_tck(&[
        0x3B, 0x80, 0x81, 0xF1, 0x20, 0x21, 0x00, 0x71, 0xFE, 0x99, 0x01,
    ]))
    .unwrap();
    assert_eq!(atr.ifsc(), 0x20);
    assert_eq!((atr.bwi(), atr.cwi()), (2, 1));
    assert_eq!(atr.edc(), Edc::Lrc);
    assert_eq!(atr.protocols().as_slice(), &[1]);
}

#[test]
fn ta2_is_not_ifsc_and_tc2_counts_only_for_t0() {
    // TD1=71: TA2 TB2 TC2, T=1. TA2=01 is the specific-mode byte (not IFSC),
    // TC2=05 is not WI because TD1 does not indicate T=0.
    let atr = Atr::parse(&with_tck(&[0x3B, 0x80, 0x71, 0x01, 0x00, 0x05])).unwrap();
    assert_eq!(atr.ifsc(), 32);
    assert_eq!(atr.wi(), 10);
    assert_eq!(
        atr.specific_mode(),
        Some(SpecificMode {
            protocol: 1,
            implicit: false,
            changeable: true
        })
    );
}

#[test]
fn protocols_in_offer_order_without_duplicates() {
    // TD1=81 T=1, TD2=80 T=0, TD3=01 T=1 again.
    let atr = Atr::parse(&with_tck(&[0x3B, 0x80, 0x81, 0x80, 0x01])).unwrap();
    assert_eq!(atr.protocols().as_slice(), &[1, 0]);
    assert_eq!(atr.protocols().iter().collect::<Vec<_>>(), vec![1, 0]);
    assert_eq!(atr.default_protocol(), 1);
}

#[test]
fn t0_and_t15_needs_tck() {
    // TD1=80 T=0, TD2=1F T=15 with TA3=03: TCK present (§8.2.5).
    let atr = Atr::parse(&with_tck(&[0x3B, 0x80, 0x80, 0x1F, 0x03])).unwrap();
    assert_eq!(atr.protocols().as_slice(), &[0]);
    assert_eq!(atr.tck_ok(), Some(true));
    assert_eq!(atr.class_indicator(), Some(3));
    assert_eq!(atr.clock_stop(), Some(0));
}

#[test]
fn inverse_convention() {
    assert_eq!(inverse_to_direct(0x03), 0x3F);
    assert_eq!(inverse_to_direct(0xFF), 0x00);
    assert_eq!(inverse_to_direct(0x00), 0xFF);
    assert_eq!(inverse_to_direct(0x01), 0x7F); // 1000_0000 complemented
    let atr = Atr::parse(&[0x3F, 0x00]).unwrap();
    assert_eq!(atr.convention(), Convention::Inverse);
    // A raw capture: 03 FF is 3F 00 once converted.
    let raw = Atr::parse_uart(&[0x03, 0xFF]).unwrap();
    assert_eq!(raw.as_bytes(), &[0x3F, 0x00]);
    assert_eq!(raw.convention(), Convention::Inverse);
    // parse itself does not guess.
    assert_eq!(
        Atr::parse(&[0x03, 0xFF]),
        Err(AtrError::InvalidTs {
            offset: 0,
            value: 0x03
        })
    );
}

#[test]
fn structural_errors_name_the_offset() {
    assert_eq!(Atr::parse(&[]), Err(AtrError::TooShort { offset: 0 }));
    assert_eq!(Atr::parse(&[0x3B]), Err(AtrError::TooShort { offset: 1 }));
    assert_eq!(
        Atr::parse(&[0x3C, 0x00]),
        Err(AtrError::InvalidTs {
            offset: 0,
            value: 0x3C
        })
    );
    let mut long = vec![0x3B, 0x0F];
    long.extend([0u8; 32]);
    assert_eq!(Atr::parse(&long), Err(AtrError::TooLong { offset: 33 }));
    // 31 chained TD bytes (80: TD follows, T=0) need a 34th byte.
    let mut chain = vec![0x3B, 0x80];
    chain.extend([0x80u8; 31]);
    assert_eq!(Atr::parse(&chain), Err(AtrError::TooLong { offset: 33 }));
    // TA1 announced, missing.
    assert_eq!(
        Atr::parse(&[0x3B, 0x10]),
        Err(AtrError::Overrun { offset: 2 })
    );
    // Two historical bytes announced, one present.
    assert_eq!(
        Atr::parse(&[0x3B, 0x02, 0x14]),
        Err(AtrError::Overrun { offset: 3 })
    );
    // T=1 indicated, TCK missing.
    assert_eq!(
        Atr::parse(&[0x3B, 0x80, 0x01]),
        Err(AtrError::Overrun { offset: 3 })
    );
    // T=0 only: a byte after the historical bytes is not a TCK.
    assert_eq!(
        Atr::parse(&[0x3B, 0x00, 0xFF]),
        Err(AtrError::Trailing { offset: 2 })
    );
    assert_eq!(AtrError::Trailing { offset: 2 }.offset(), 2);
}

#[test]
fn bad_tck_is_recorded_by_parse_and_rejected_by_parse_strict() {
    // 80 ^ 01 = 81 is the right TCK.
    assert_eq!(
        Atr::parse(&[0x3B, 0x80, 0x01, 0x81]).unwrap().tck_ok(),
        Some(true)
    );
    let atr = Atr::parse(&[0x3B, 0x80, 0x01, 0x00]).unwrap();
    assert_eq!(atr.tck(), Some(0x00));
    assert_eq!(atr.tck_ok(), Some(false));
    assert_eq!(
        Atr::parse_strict(&[0x3B, 0x80, 0x01, 0x00]),
        Err(AtrError::BadTck {
            offset: 3,
            expected: 0x81,
            found: 0x00
        })
    );
}

#[test]
fn rfu_fi_or_di_flagged_and_defaults_used() {
    // TA1=71: FI=7 is RFU (Table 7).
    let atr = Atr::parse(&[0x3B, 0x10, 0x71]).unwrap();
    assert_eq!(kinds(&atr), vec![AnomalyKind::RfuFi]);
    assert_eq!(atr.ta1(), Some(0x71));
    assert_eq!((atr.fi_index(), atr.di_index()), (7, 1));
    assert_eq!((atr.fi(), atr.di(), atr.f_max_khz()), (372, 1, 5_000));
    assert_eq!(
        Atr::parse_strict(&[0x3B, 0x10, 0x71]),
        Err(AtrError::Rfu {
            offset: 2,
            kind: AnomalyKind::RfuFi
        })
    );
    // TA1=9A: DI=A is RFU (Table 8): Fi=512 of the same byte is not used either.
    let atr = Atr::parse(&[0x3B, 0x10, 0x9A]).unwrap();
    assert_eq!(kinds(&atr), vec![AnomalyKind::RfuDi]);
    assert_eq!((atr.fi(), atr.di()), (372, 1));
    // TA1=10: DI=0 is RFU.
    assert_eq!(
        kinds(&Atr::parse(&[0x3B, 0x10, 0x10]).unwrap()),
        vec![AnomalyKind::RfuDi]
    );
}

#[test]
fn rfu_ifsc_wi_bwi_edc_ta2_and_t15_in_td1() {
    // TD1=81 (TD2, T=1), TD2=11 (TA3, T=1), TA3=FF: clamped to 254 as libccid.
    let atr = Atr::parse(&with_tck(&[0x3B, 0x80, 0x81, 0x11, 0xFF])).unwrap();
    assert_eq!(atr.ifsc(), 254);
    assert_eq!(kinds(&atr), vec![AnomalyKind::RfuIfsc]);
    // TA3=00: default 32.
    let atr = Atr::parse(&with_tck(&[0x3B, 0x80, 0x81, 0x11, 0x00])).unwrap();
    assert_eq!(atr.ifsc(), 32);
    assert_eq!(atr.anomalies().next().unwrap().offset, 4);
    // TD1=40 (TC2, T=0), TC2=00: WI 0 is RFU, 10 used.
    let atr = Atr::parse(&[0x3B, 0x80, 0x40, 0x00]).unwrap();
    assert_eq!(atr.wi(), 10);
    assert_eq!(kinds(&atr), vec![AnomalyKind::RfuWi]);
    // TD2=21 (TB3, T=1), TB3=A5: BWI 10 kept, flagged.
    let atr = Atr::parse(&with_tck(&[0x3B, 0x80, 0x81, 0x21, 0xA5])).unwrap();
    assert_eq!((atr.bwi(), atr.cwi()), (10, 5));
    assert_eq!(kinds(&atr), vec![AnomalyKind::RfuBwi]);
    // TD2=41 (TC3, T=1), TC3=03: bit 1 → CRC, bit 2 RFU.
    let atr = Atr::parse(&with_tck(&[0x3B, 0x80, 0x81, 0x41, 0x03])).unwrap();
    assert_eq!(atr.edc(), Edc::Crc);
    assert_eq!(kinds(&atr), vec![AnomalyKind::RfuEdc]);
    // TD1=10 (TA2, T=0), TA2=60: bits 6-7 RFU.
    let atr = Atr::parse(&[0x3B, 0x80, 0x10, 0x60]).unwrap();
    assert_eq!(kinds(&atr), vec![AnomalyKind::RfuTa2Bits]);
    // TD1=0F: T=15 in TD1; T=0 stays the only protocol, TCK present.
    let atr = Atr::parse(&with_tck(&[0x3B, 0x80, 0x0F])).unwrap();
    assert_eq!(kinds(&atr), vec![AnomalyKind::T15InTd1]);
    assert_eq!(atr.protocols().as_slice(), &[0]);
    // TD1=05: T=5 is RFU.
    let atr = Atr::parse(&with_tck(&[0x3B, 0x80, 0x05])).unwrap();
    assert_eq!(kinds(&atr), vec![AnomalyKind::RfuProtocol]);
    assert_eq!(atr.protocols().as_slice(), &[5]);
}

#[test]
fn fi_fmax_for_every_defined_index() {
    // Table 7 and 8 through TA1 (DI=1).
    for (ta1, fi, fmax) in [
        (0x01, 372, 4_000),
        (0x21, 558, 6_000),
        (0x31, 744, 8_000),
        (0x41, 1116, 12_000),
        (0x51, 1488, 16_000),
        (0x61, 1860, 20_000),
        (0xA1, 768, 7_500),
        (0xB1, 1024, 10_000),
        (0xC1, 1536, 15_000),
        (0xD1, 2048, 20_000),
    ] {
        let atr = Atr::parse(&[0x3B, 0x10, ta1]).unwrap();
        assert_eq!((atr.fi(), atr.f_max_khz()), (fi, fmax), "TA1={ta1:02X}");
    }
    for (ta1, di) in [(0x18, 12), (0x19, 20), (0x17, 64), (0x12, 2)] {
        assert_eq!(Atr::parse(&[0x3B, 0x10, ta1]).unwrap().di(), di);
    }
}

#[test]
fn lenient_parse_accepts_what_cards_in_the_field_send() {
    // 3B 8C 80 01 + 12 historical bytes, T=1 indicated in TD2 but no TCK
    // (a real card from pcsc-tools' list): parse refuses it, §8.2.5.
    let missing_tck = [
        0x3B, 0x8C, 0x80, 0x01, 0x50, 0x27, 0x52, 0x31, 0x81, 0x00, 0x00, 0x00, 0x00, 0x00, 0x71,
        0x81,
    ];
    assert_eq!(
        Atr::parse(&missing_tck).unwrap_err(),
        AtrError::Overrun { offset: 16 }
    );
    let atr = Atr::parse_lenient(&missing_tck).unwrap();
    assert_eq!(atr.as_bytes(), &missing_tck);
    // TD1 = 80 indicates T=0, TD2 = 01 indicates T=1.
    assert_eq!(atr.protocols().as_slice(), &[0, 1]);
    assert_eq!(atr.tck(), None);
    assert_eq!(atr.tck_ok(), None);
    assert_eq!(kinds(&atr), vec![AnomalyKind::MissingTck]);
    assert_eq!(atr.anomalies().next().unwrap().offset, 16);

    // 3B 02 14 50 + 11: T=0 only, two historical bytes, then a stray byte.
    let trailing = [0x3B, 0x02, 0x14, 0x50, 0x11];
    assert_eq!(
        Atr::parse(&trailing).unwrap_err(),
        AtrError::Trailing { offset: 4 }
    );
    let atr = Atr::parse_lenient(&trailing).unwrap();
    assert_eq!(atr.as_bytes(), &trailing[..4]);
    assert_eq!(atr.historical(), &[0x14, 0x50]);
    assert_eq!(kinds(&atr), vec![AnomalyKind::TrailingBytes]);

    // Structural faults stay errors even when lenient.
    assert_eq!(
        Atr::parse_lenient(&[0x3B, 0x6D, 0x00, 0x00]).unwrap_err(),
        AtrError::Overrun { offset: 4 }
    );
    assert!(matches!(
        Atr::parse_lenient(&[0x3C, 0x00]),
        Err(AtrError::InvalidTs { .. })
    ));
    // And a well-formed ATR parses the same either way.
    let good = with_tck(&[0x3B, 0x80, 0x01]);
    assert_eq!(
        Atr::parse_lenient(&good).unwrap().as_bytes(),
        Atr::parse(&good).unwrap().as_bytes()
    );
}
