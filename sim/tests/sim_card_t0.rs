//! T=0 card side at character level: procedure-byte sequences for cases 1-4,
//! written by hand from ISO/IEC 7816-3 §10.3, and the TPDU convenience.

use ferroccid_sim::card::{CardConfig, SlowCommands, VirtualCard};

const TEXT_2F00: &[u8] = b"Hello from the ferroccid virtual card.\n";
/// AID of the demo DF: F0 + "FERROCCID".
const AID: [u8; 10] = [0xF0, 0x46, 0x45, 0x52, 0x52, 0x4F, 0x43, 0x43, 0x49, 0x44];

fn card(config: CardConfig) -> VirtualCard {
    let mut card = VirtualCard::new(config);
    card.power_on().expect("ATR");
    card
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn case1_verify_status_query() {
    let mut c = card(CardConfig::t0());
    // P3=00 on an incoming command: no data, no procedure byte, SW 63C3.
    assert_eq!(
        c.t0_receive(&[0x00, 0x20, 0x00, 0x81, 0x00]),
        vec![0x63, 0xC3]
    );
}

#[test]
fn case3_select_then_case2_read() {
    let mut c = card(CardConfig::t0());
    // Header alone: the card answers ACK = INS.
    assert_eq!(c.t0_receive(&[0x00, 0xA4, 0x00, 0x0C, 0x02]), vec![0xA4]);
    assert_eq!(c.t0_receive(&[0x2F, 0x00]), vec![0x90, 0x00]);
    // Case 2: ACK, 5 data bytes, SW.
    assert_eq!(
        c.t0_receive(&[0x00, 0xB0, 0x00, 0x00, 0x05]),
        cat(&[&[0xB0], b"Hello", &[0x90, 0x00]])
    );
}

#[test]
fn case2_wrong_le_gives_6cxx_then_reissue() {
    let mut c = card(CardConfig::t0());
    c.t0_tpdu(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x2F, 0x00]);
    // 39 (0x27) bytes in EF 2F00; asking 0x30 → 6C27.
    assert_eq!(
        c.t0_receive(&[0x00, 0xB0, 0x00, 0x00, 0x30]),
        vec![0x6C, 0x27]
    );
    assert_eq!(
        c.t0_receive(&[0x00, 0xB0, 0x00, 0x00, 0x27]),
        cat(&[&[0xB0], TEXT_2F00, &[0x90, 0x00]])
    );
}

/// FCI of DF 5000: 6F 16 | 82 01 38 | 83 02 50 00 | 84 0A AID | 8A 01 05.
fn fci_5000() -> Vec<u8> {
    cat(&[
        &[
            0x6F, 0x16, 0x82, 0x01, 0x38, 0x83, 0x02, 0x50, 0x00, 0x84, 0x0A,
        ],
        &AID,
        &[0x8A, 0x01, 0x05],
    ])
}

#[test]
fn case4_select_by_name_61xx_and_get_response() {
    let mut c = card(CardConfig::t0());
    assert_eq!(c.t0_receive(&[0x00, 0xA4, 0x04, 0x00, 0x0A]), vec![0xA4]);
    assert_eq!(c.t0_receive(&AID), vec![0x61, 0x18]);
    // Too much asked: 6C18, the response is kept.
    assert_eq!(
        c.t0_receive(&[0x00, 0xC0, 0x00, 0x00, 0x20]),
        vec![0x6C, 0x18]
    );
    // In two parts: 16 bytes then 61 08, then the last 8 bytes.
    let fci = fci_5000();
    assert_eq!(
        c.t0_receive(&[0x00, 0xC0, 0x00, 0x00, 0x10]),
        cat(&[&[0xC0], &fci[..16], &[0x61, 0x08]])
    );
    assert_eq!(
        c.t0_receive(&[0x00, 0xC0, 0x00, 0x00, 0x08]),
        cat(&[&[0xC0], &fci[16..], &[0x90, 0x00]])
    );
    // Nothing kept any more: GET RESPONSE reaches the application (6985).
    assert_eq!(
        c.t0_receive(&[0x00, 0xC0, 0x00, 0x00, 0x08]),
        vec![0x69, 0x85]
    );
}

#[test]
fn other_command_discards_kept_response() {
    let mut c = card(CardConfig::t0());
    assert_eq!(
        c.t0_tpdu(&cat(&[&[0x00, 0xA4, 0x04, 0x00, 0x0A], &AID])),
        vec![0x61, 0x18]
    );
    assert_eq!(c.t0_tpdu(&[0x00, 0x20, 0x00, 0x81, 0x00]), vec![0x63, 0xC3]);
    assert_eq!(c.t0_tpdu(&[0x00, 0xC0, 0x00, 0x00, 0x18]), vec![0x69, 0x85]);
}

#[test]
fn single_byte_acks() {
    let mut c = card(CardConfig {
        t0_single_byte_acks: true,
        ..CardConfig::t0()
    });
    // INS⊕FF = 5B before each data byte of the command.
    assert_eq!(c.t0_receive(&[0x00, 0xA4, 0x00, 0x0C, 0x02]), vec![0x5B]);
    assert_eq!(c.t0_receive(&[0x2F]), vec![0x5B]);
    assert_eq!(c.t0_receive(&[0x00]), vec![0x90, 0x00]);
    // B0⊕FF = 4F before each response byte.
    assert_eq!(
        c.t0_receive(&[0x00, 0xB0, 0x00, 0x00, 0x03]),
        vec![0x4F, b'H', 0x4F, b'e', 0x4F, b'l', 0x90, 0x00]
    );
    // The TPDU driver copes with it.
    assert_eq!(
        c.t0_tpdu(&[0x00, 0xB0, 0x00, 0x01, 0x02]),
        vec![b'e', b'l', 0x90, 0x00]
    );
    assert_eq!(
        c.t0_tpdu(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x2F, 0x01]),
        vec![0x90, 0x00]
    );
}

#[test]
fn null_bytes_on_slow_command_and_internal_authenticate() {
    let slow = SlowCommands {
        ins: vec![0x88],
        t0_nulls: 2,
        ..SlowCommands::default()
    };
    let mut c = card(CardConfig {
        slow,
        ..CardConfig::t0()
    });
    assert_eq!(c.t0_receive(&[0x00, 0x88, 0x00, 0x00, 0x04]), vec![0x88]);
    // Two NULLs, then 61 20: 32 bytes of HMAC-SHA-256 wait.
    assert_eq!(c.t0_receive(&[1, 2, 3, 4]), vec![0x60, 0x60, 0x61, 0x20]);
    let answer = c.t0_receive(&[0x00, 0xC0, 0x00, 0x00, 0x20]);
    assert_eq!(answer.len(), 1 + 32 + 2);
    assert_eq!((answer[0], &answer[33..]), (0xC0, &[0x90, 0x00][..]));
    // TPDU level with NULLs in between.
    assert_eq!(
        c.t0_tpdu(&[0x00, 0x88, 0x00, 0x00, 0x02, 9, 9]),
        vec![0x61, 0x20]
    );
}

#[test]
fn header_errors_answer_at_once() {
    let mut c = card(CardConfig::t0());
    assert_eq!(
        c.t0_receive(&[0x80, 0xA4, 0x00, 0x00, 0x02]),
        vec![0x6E, 0x00]
    );
    assert_eq!(
        c.t0_receive(&[0x00, 0x6A, 0x00, 0x00, 0x02]),
        vec![0x6D, 0x00]
    );
    assert_eq!(
        c.t0_receive(&[0x00, 0x50, 0x00, 0x00, 0x00]),
        vec![0x6D, 0x00]
    );
}

#[test]
fn tpdu_level_matches_character_level() {
    let mut c = card(CardConfig::t0());
    assert_eq!(
        c.t0_tpdu(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x2F, 0x00]),
        vec![0x90, 0x00]
    );
    assert_eq!(
        c.t0_tpdu(&[0x00, 0xB0, 0x00, 0x00, 0x05]),
        cat(&[b"Hello", &[0x90, 0x00]])
    );
    assert_eq!(c.t0_tpdu(&[0x00, 0xB0, 0x00, 0x00, 0x30]), vec![0x6C, 0x27]);
    assert_eq!(
        c.t0_tpdu(&[0x00, 0xB0, 0x00, 0x00, 0x27]),
        cat(&[TEXT_2F00, &[0x90, 0x00]])
    );
    assert_eq!(
        c.t0_tpdu(&cat(&[&[0x00, 0xA4, 0x04, 0x00, 0x0A], &AID])),
        vec![0x61, 0x18]
    );
    assert_eq!(
        c.t0_tpdu(&[0x00, 0xC0, 0x00, 0x00, 0x18]),
        cat(&[&fci_5000(), &[0x90, 0x00]])
    );
    // P3=00 on a case 2 command means 256 bytes: EF 2F00 has 39 → 6C27.
    assert_eq!(
        c.t0_tpdu(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x2F, 0x00]),
        vec![0x90, 0x00]
    );
    assert_eq!(c.t0_tpdu(&[0x00, 0xB0, 0x00, 0x00, 0x00]), vec![0x6C, 0x27]);
}

#[test]
fn dropped_command_and_wrong_protocol() {
    let mut config = CardConfig::t0();
    config.faults.drop_ins = Some(0x20);
    let mut c = card(config);
    assert_eq!(c.t0_tpdu(&[0x00, 0x20, 0x00, 0x81, 0x00]), Vec::<u8>::new());
    assert_eq!(c.t0_tpdu(&[0x00, 0x20, 0x00, 0x81, 0x00]), vec![0x63, 0xC3]);
    let mut t1 = card(CardConfig::t1());
    assert!(t1.t0_receive(&[0x00, 0x20, 0x00, 0x81, 0x00]).is_empty());
}
