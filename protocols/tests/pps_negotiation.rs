//! PPS framing (§9.2, §9.3) and the negotiation plan. PCK values and baud
//! rates are computed by hand: PCK = XOR of the preceding bytes; rate =
//! f × Di / Fi, truncated.
use ferroccid_protocols::atr::Atr;
use ferroccid_protocols::edc::Edc;
use ferroccid_protocols::pps::{
    negotiate, NegotiationError, PpsAccepted, PpsError, PpsRequest, ReaderCaps,
};

fn with_tck(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v.push(bytes[1..].iter().fold(0, |x, b| x ^ b));
    v
}

fn emit(req: &PpsRequest) -> Vec<u8> {
    let mut buf = [0u8; 6];
    let n = req.emit(&mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn requests() {
    // FF ^ 11 ^ 96 = 78
    assert_eq!(
        emit(&PpsRequest::new(1, Some(0x96))),
        vec![0xFF, 0x11, 0x96, 0x78]
    );
    // FF ^ 01 = FE
    assert_eq!(emit(&PpsRequest::new(1, None)), vec![0xFF, 0x01, 0xFE]);
    // FF ^ 10 ^ 18 = F7
    assert_eq!(
        emit(&PpsRequest::new(0, Some(0x18))),
        vec![0xFF, 0x10, 0x18, 0xF7]
    );
    // All three: PPS0 = 71; FF^71^13^01^00 = 9C
    let all = PpsRequest {
        protocol: 1,
        pps1: Some(0x13),
        pps2: Some(0x01),
        pps3: Some(0x00),
    };
    assert_eq!(all.len(), 6);
    assert_eq!(emit(&all), vec![0xFF, 0x71, 0x13, 0x01, 0x00, 0x9C]);
    let mut small = [0u8; 3];
    assert_eq!(
        PpsRequest::new(1, Some(0x96)).emit(&mut small),
        Err(PpsError::BufferTooSmall { needed: 4 })
    );
    assert_eq!(
        PpsRequest::new(16, None).emit(&mut [0u8; 6]),
        Err(PpsError::InvalidProtocol)
    );
}

#[test]
fn response_echo_rules() {
    let req = PpsRequest::new(1, Some(0x96));
    assert_eq!(
        req.check_response(&[0xFF, 0x11, 0x96, 0x78]),
        Ok(PpsAccepted {
            protocol: 1,
            fi_di: 0x96,
            pps2: None,
            pps3: None
        })
    );
    // PPS1 left out: Fd/Dd.
    assert_eq!(req.check_response(&[0xFF, 0x01, 0xFE]).unwrap().fi_di, 0x11);
    // Another protocol: FF ^ 10 ^ 96 = 69.
    assert_eq!(
        req.check_response(&[0xFF, 0x10, 0x96, 0x69]),
        Err(PpsError::ProtocolMismatch { offset: 1 })
    );
    // Another PPS1: FF ^ 11 ^ 95 = 7B.
    assert_eq!(
        req.check_response(&[0xFF, 0x11, 0x95, 0x7B]),
        Err(PpsError::Mismatch { offset: 2 })
    );
    assert_eq!(
        req.check_response(&[0xFF, 0x11, 0x96, 0x79]),
        Err(PpsError::BadPck { offset: 3 })
    );
    assert_eq!(
        req.check_response(&[0xFF, 0x11, 0x96, 0x78, 0x00]),
        Err(PpsError::Trailing { offset: 4 })
    );
    assert_eq!(
        req.check_response(&[0xFF, 0x11, 0x96]),
        Err(PpsError::TooShort { offset: 3 })
    );
    assert_eq!(
        req.check_response(&[0x00, 0x11, 0x96, 0x78]),
        Err(PpsError::BadPpss { offset: 0 })
    );
    // PPS2 not requested but present: FF ^ 21 ^ 05 = DB.
    assert_eq!(
        PpsRequest::new(1, None).check_response(&[0xFF, 0x21, 0x05, 0xDB]),
        Err(PpsError::Mismatch { offset: 1 })
    );
}

/// A list-based reader at 4 MHz (GemPC-style dwDataRate table).
const LIST: &[u32] = &[
    10752, 14400, 19200, 21505, 28800, 38400, 43010, 57600, 76800, 86021, 115200, 153600, 172043,
    230400, 344105,
];

fn listed_reader() -> ReaderCaps<'static> {
    ReaderCaps {
        default_clock_khz: 4_000,
        max_clock_khz: 12_000,
        data_rates: LIST,
        max_data_rate: 344_105,
        protocols: 0b11,
        auto_params_from_atr: false,
        auto_pps_proprietary: false,
        auto_pps_current: false,
        auto_baud_clock: false,
    }
}

/// A reader without a rate table, up to 250 000 bit/s.
fn open_reader() -> ReaderCaps<'static> {
    ReaderCaps {
        data_rates: &[],
        max_data_rate: 250_000,
        ..listed_reader()
    }
}

/// T=1 card with TA1 = `ta1`: 3B 90 TA1 01 TCK, i.e. T0=90 (TA1 TD1,
/// K=0), TD1=01 (T=1, nothing follows).
fn t1_card(ta1: u8) -> Atr {
    Atr::parse(&with_tck(&[0x3B, 0x90, ta1, 0x01])).unwrap()
}

fn openpgp() -> Atr {
    Atr::parse(&[
        0x3B, 0xFA, 0x13, 0x00, 0xFF, 0x81, 0x31, 0x80, 0x45, 0x00, 0x31, 0xC1, 0x73, 0xC0, 0x01,
        0x00, 0x00, 0x90, 0x00, 0xB1,
    ])
    .unwrap()
}

#[test]
fn openpgp_on_listed_reader_sends_pps_with_ta1() {
    let plan = negotiate(&openpgp(), &listed_reader(), None).unwrap();
    assert_eq!(plan.protocol, 1);
    // 4 MHz × 4 / 372 = 43010 bit/s, listed. FF ^ 11 ^ 13 = FD.
    let pps = plan.pps.unwrap();
    assert_eq!(emit(&pps), vec![0xFF, 0x11, 0x13, 0xFD]);
    assert!(plan.host_sets_parameters);
    assert_eq!((plan.ta1, plan.fi, plan.di), (0x13, 372, 4));
    assert_eq!((plan.clock_khz, plan.baud_rate), (4_000, 43_010));
    assert_eq!(plan.guard_time_n, 255);
    assert_eq!(
        (plan.ifsc, plan.bwi, plan.cwi, plan.edc),
        (128, 4, 5, Edc::Lrc)
    );
}

#[test]
fn listed_reader_steps_di_down() {
    // TA1=18: 4e6 × 12 / 372 = 129032, not listed; Di 8 (TA1=14) gives 86021.
    let plan = negotiate(&t1_card(0x18), &listed_reader(), None).unwrap();
    assert_eq!((plan.ta1, plan.baud_rate), (0x14, 86_021));
    // TA1=16: 344086 is 19 away from 344105; Di 20 gives 215053 (no),
    // Di 16 (TA1=15) gives 172043 (listed).
    let plan = negotiate(&t1_card(0x16), &listed_reader(), None).unwrap();
    assert_eq!(plan.ta1, 0x15);
    assert_eq!(plan.pps.unwrap().pps1, Some(0x15));
    // TA1=96: 250000, 156250, 125000, 93750, 62500, 31250, 15625 all
    // unlisted: Fd/Dd, and T=1 is the default protocol, so no PPS at all.
    let plan = negotiate(&t1_card(0x96), &listed_reader(), None).unwrap();
    assert_eq!(
        (plan.ta1, plan.fi, plan.di, plan.baud_rate),
        (0x11, 372, 1, 10_752)
    );
    assert_eq!(plan.pps, None);
}

#[test]
fn open_reader_uses_max_rate() {
    // TA1=96: 4e6 × 32 / 512 = 250000 ≤ 250000.
    let plan = negotiate(&t1_card(0x96), &open_reader(), None).unwrap();
    assert_eq!((plan.ta1, plan.baud_rate), (0x96, 250_000));
    assert_eq!(emit(&plan.pps.unwrap()), vec![0xFF, 0x11, 0x96, 0x78]);
    // TA1=97: 500000 too fast; Di 32 (TA1=96) fits.
    let plan = negotiate(&t1_card(0x97), &open_reader(), None).unwrap();
    assert_eq!(plan.ta1, 0x96);
    // TA1=11 or slower than default: nothing to negotiate.
    let plan = negotiate(&t1_card(0x11), &open_reader(), None).unwrap();
    assert_eq!((plan.ta1, plan.pps), (0x11, None));
}

#[test]
fn automatic_pps_readers_get_no_pps_from_host() {
    let current = ReaderCaps {
        auto_pps_current: true,
        ..listed_reader()
    };
    let plan = negotiate(&openpgp(), &current, None).unwrap();
    assert_eq!(plan.pps, None);
    assert!(plan.host_sets_parameters);
    assert_eq!(plan.ta1, 0x13);
    let proprietary = ReaderCaps {
        auto_pps_proprietary: true,
        ..listed_reader()
    };
    let plan = negotiate(&openpgp(), &proprietary, None).unwrap();
    assert_eq!(plan.pps, None);
    assert!(!plan.host_sets_parameters);
}

/// 3B 90 TA1 11 TA2 TCK: TD1=11 (TA2, T=1).
fn specific_card(ta1: u8, ta2: u8) -> Atr {
    Atr::parse(&with_tck(&[0x3B, 0x90, ta1, 0x11, ta2])).unwrap()
}

#[test]
fn specific_mode() {
    // TA2=01: specific T=1, TA1=95 → 4e6 × 16 / 512 = 125000.
    let card = specific_card(0x95, 0x01);
    let plan = negotiate(&card, &open_reader(), None).unwrap();
    assert_eq!((plan.protocol, plan.ta1, plan.pps), (1, 0x95, None));
    assert_eq!(plan.baud_rate, 125_000);
    // 125000 is not in the list and the card cannot change.
    assert_eq!(
        negotiate(&card, &listed_reader(), None),
        Err(NegotiationError::SpecificRateUnsupported { ta1: 0x95 })
    );
    let t0_only = ReaderCaps {
        protocols: 0b01,
        ..open_reader()
    };
    assert_eq!(
        negotiate(&card, &t0_only, None),
        Err(NegotiationError::SpecificProtocolUnsupported { protocol: 1 })
    );
    assert_eq!(
        negotiate(&card, &open_reader(), Some(0)),
        Err(NegotiationError::SpecificProtocolUnsupported { protocol: 1 })
    );
    // TA2=11: implicit parameters.
    assert_eq!(
        negotiate(&specific_card(0x95, 0x11), &open_reader(), None),
        Err(NegotiationError::ImplicitParameters)
    );
}

#[test]
fn protocol_choice() {
    let t0_only = ReaderCaps {
        protocols: 0b01,
        ..listed_reader()
    };
    assert_eq!(
        negotiate(&t1_card(0x11), &t0_only, None),
        Err(NegotiationError::NoCommonProtocol)
    );
    // TD1=80 (TD2, T=0), TD2=01 (T=1): offers [0, 1], default T=0.
    let both = Atr::parse(&with_tck(&[0x3B, 0x80, 0x80, 0x01])).unwrap();
    let plan = negotiate(&both, &listed_reader(), None).unwrap();
    assert_eq!((plan.protocol, plan.pps), (0, None));
    // Asking for T=1, not the default: PPS without PPS1, FF ^ 01 = FE.
    let plan = negotiate(&both, &listed_reader(), Some(1)).unwrap();
    assert_eq!(plan.protocol, 1);
    assert_eq!(emit(&plan.pps.unwrap()), vec![0xFF, 0x01, 0xFE]);
    // A T=1 reader with the same card: first common offered protocol.
    let t1_only = ReaderCaps {
        protocols: 0b10,
        ..listed_reader()
    };
    let plan = negotiate(&both, &t1_only, None).unwrap();
    assert_eq!(plan.protocol, 1);
    assert!(plan.pps.is_some());
    assert_eq!(
        negotiate(&t1_card(0x11), &listed_reader(), Some(0)),
        Err(NegotiationError::NoCommonProtocol)
    );
}

#[test]
fn t0_plan_carries_wi_and_guard_time() {
    // T0=D0 (TA1 TC1 TD1), TA1=13, TC1=02, TD1=40 (TC2, T=0), TC2=50; no TCK.
    let card = Atr::parse(&[0x3B, 0xD0, 0x13, 0x02, 0x40, 0x50]).unwrap();
    let plan = negotiate(&card, &listed_reader(), None).unwrap();
    assert_eq!(plan.protocol, 0);
    assert_eq!((plan.wi, plan.guard_time_n), (0x50, 2));
    assert_eq!(emit(&plan.pps.unwrap()), vec![0xFF, 0x10, 0x13, 0xFC]);
}
