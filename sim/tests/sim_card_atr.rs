//! ATR builder and PPS of the virtual card, checked byte by byte against
//! values computed by hand from ISO/IEC 7816-3 §8 and §9.

use ferroccid_sim::card::{CardConfig, EdcKind, Protocols, SpecificMode, VirtualCard};

/// "FerroSim" in ASCII.
const HIST: [u8; 8] = [0x46, 0x65, 0x72, 0x72, 0x6F, 0x53, 0x69, 0x6D];

fn atr(prefix: &[u8], tck: Option<u8>) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.extend_from_slice(&HIST);
    v.extend(tck);
    v
}

#[test]
fn preset_t0() {
    // T0 = 0x08: no interface bytes, 8 historical bytes; no TCK (T=0 only).
    assert_eq!(CardConfig::t0().atr(), atr(&[0x3B, 0x08], None));
}

#[test]
fn preset_t1() {
    // TD1=81 (TD2 follows, T=1), TD2=31 (TA3 TB3, T=1), IFSC FE, BWI 4 CWI 5.
    // TCK = 88^81^31^FE^45^(XOR of "FerroSim" = 1B) = 98.
    assert_eq!(
        CardConfig::t1().atr(),
        atr(&[0x3B, 0x88, 0x81, 0x31, 0xFE, 0x45], Some(0x98))
    );
}

#[test]
fn preset_dual() {
    // TD1=80 (TD2 follows, T=0 first offered), TD2=31 (T=1 bytes). TCK 99.
    assert_eq!(
        CardConfig::dual().atr(),
        atr(&[0x3B, 0x88, 0x80, 0x31, 0xFE, 0x45], Some(0x99))
    );
}

#[test]
fn preset_fast() {
    // T0=98: TA1 and TD1 present. TA1=96 (Fi 512, Di 32). TCK 1F.
    assert_eq!(
        CardConfig::fast().atr(),
        atr(&[0x3B, 0x98, 0x96, 0x80, 0x31, 0xFE, 0x45], Some(0x1F))
    );
}

#[test]
fn specific_mode_crc_guard_time() {
    let config = CardConfig {
        protocols: Protocols::T1,
        specific_mode: Some(SpecificMode {
            protocol: 1,
            unable_to_change: false,
            implicit_parameters: false,
        }),
        extra_guard_time: Some(0xFF),
        ifsc: 0x20,
        bwi: 7,
        cwi: 2,
        edc: EdcKind::Crc,
        historical: vec![],
        ..CardConfig::t1()
    };
    // T0=C0 (TC1, TD1; K=0), TC1=FF, TD1=91 (TA2, TD2, T=1), TA2=01,
    // TD2=71 (TA3 TB3 TC3, T=1), 20 72 01, TCK = 8D.
    assert_eq!(
        config.atr(),
        vec![0x3B, 0xC0, 0xFF, 0x91, 0x01, 0x71, 0x20, 0x72, 0x01, 0x8D]
    );
}

#[test]
fn t0_with_wi_and_ta1() {
    let config = CardConfig {
        ta1: Some(0x13),
        wi: Some(0x20),
        ..CardConfig::t0()
    };
    // T0=98 (TA1, TD1), TA1=13, TD1=40 (TC2 only, T=0), TC2=20; no TCK.
    assert_eq!(config.atr(), atr(&[0x3B, 0x98, 0x13, 0x40, 0x20], None));
}

#[test]
fn tck_makes_xor_zero_for_every_preset_with_t1() {
    for config in [CardConfig::t1(), CardConfig::dual(), CardConfig::fast()] {
        let atr = config.atr();
        assert_eq!(atr[1..].iter().fold(0, |a, b| a ^ b), 0, "{atr:02X?}");
    }
}

#[test]
fn power_on_mute_absent() {
    let mut card = VirtualCard::new(CardConfig::t1());
    assert_eq!(card.power_on(), Some(CardConfig::t1().atr()));
    assert_eq!(card.protocol(), 1);
    card.remove();
    assert!(!card.is_present());
    assert_eq!(card.power_on(), None);
    card.insert();
    assert_eq!(card.warm_reset(), Some(CardConfig::t1().atr()));

    let mut mute = CardConfig::t0();
    mute.faults.mute = true;
    assert_eq!(VirtualCard::new(mute).power_on(), None);
}

#[test]
fn pps_accepts_ta1_and_protocol() {
    let mut card = VirtualCard::new(CardConfig::fast());
    card.power_on().unwrap();
    // PCK = FF^11^96 = 78.
    assert_eq!(
        card.pps(&[0xFF, 0x11, 0x96, 0x78]),
        Some(vec![0xFF, 0x11, 0x96, 0x78])
    );
    assert_eq!((card.protocol(), card.fi_di()), (1, 0x96));
    // Only one PPS per ATR.
    assert_eq!(card.pps(&[0xFF, 0x11, 0x96, 0x78]), None);
}

#[test]
fn pps_refuses_unsupported_speed_by_omitting_pps1() {
    let mut card = VirtualCard::new(CardConfig::fast());
    card.power_on().unwrap();
    // Asks Fi/Di 97: answer PPS0=00 without PPS1, PCK = FF^00 = FF.
    assert_eq!(
        card.pps(&[0xFF, 0x10, 0x97, 0x78]),
        Some(vec![0xFF, 0x00, 0xFF])
    );
    assert_eq!((card.protocol(), card.fi_di()), (0, 0x11));
}

#[test]
fn pps_silent_on_bad_requests() {
    let mut card = VirtualCard::new(CardConfig::t0());
    card.power_on().unwrap();
    assert_eq!(card.pps(&[0xFF, 0x01, 0xFE]), None, "T=1 not offered");
    card.power_on().unwrap();
    assert_eq!(card.pps(&[0xFF, 0x10, 0x11, 0x00]), None, "bad PCK");
    card.power_on().unwrap();
    // PPS without PPS1 for T=0: PCK = FF^00.
    assert_eq!(card.pps(&[0xFF, 0x00, 0xFF]), Some(vec![0xFF, 0x00, 0xFF]));
    // After a command, no PPS any more.
    card.power_on().unwrap();
    assert!(!card.t0_receive(&[0x00, 0x20, 0x00, 0x81, 0x00]).is_empty());
    assert_eq!(card.pps(&[0xFF, 0x00, 0xFF]), None);
}

#[test]
fn pps_in_t0_character_stream() {
    let mut card = VirtualCard::new(CardConfig::dual());
    card.power_on().unwrap();
    // PPS to T=1 sent as characters: FF 01 FE.
    assert_eq!(card.t0_receive(&[0xFF, 0x01, 0xFE]), vec![0xFF, 0x01, 0xFE]);
    assert_eq!(card.protocol(), 1);
    assert!(
        card.t0_receive(&[0x00, 0x20, 0x00, 0x81, 0x00]).is_empty(),
        "T=0 is off now"
    );
}

#[test]
fn specific_mode_pps() {
    let config = CardConfig {
        specific_mode: Some(SpecificMode {
            protocol: 1,
            unable_to_change: true,
            implicit_parameters: false,
        }),
        ..CardConfig::fast()
    };
    let mut card = VirtualCard::new(config);
    card.power_on().unwrap();
    assert_eq!((card.protocol(), card.fi_di()), (1, 0x96));
    assert_eq!(
        card.pps(&[0xFF, 0x00, 0xFF]),
        None,
        "T=0 not the specific protocol"
    );
}
