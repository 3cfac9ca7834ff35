//! T=1 card side: block exchanges built by hand from ISO/IEC 7816-3 §11.

use ferroccid_sim::card::{CardConfig, EdcKind, SlowCommands, VirtualCard};

/// LRC, written here independently of the card: XOR of all bytes.
fn lrc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |a, b| a ^ b)
}

/// A block with LRC.
fn block(pcb: u8, inf: &[u8]) -> Vec<u8> {
    let mut b = vec![0x00, pcb, inf.len() as u8];
    b.extend_from_slice(inf);
    b.push(lrc(&b));
    b
}

fn card(config: CardConfig) -> VirtualCard {
    let mut card = VirtualCard::new(config);
    card.power_on().expect("ATR");
    card
}

const SELECT_2F00: [u8; 7] = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x2F, 0x00];
const VERIFY_WRONG: [u8; 8] = [0x00, 0x20, 0x00, 0x81, 0x03, b'0', b'0', b'0'];

#[test]
fn hand_built_select_block() {
    let mut c = card(CardConfig::t1());
    // 00 00 07 | 00 A4 00 0C 02 2F 00 | LRC 07^A4^0C^02^2F = 82.
    let request = [
        0x00, 0x00, 0x07, 0x00, 0xA4, 0x00, 0x0C, 0x02, 0x2F, 0x00, 0x82,
    ];
    // I(0) 90 00, LRC 02^90 = 92.
    assert_eq!(
        c.t1_block(&request),
        Some(vec![0x00, 0x00, 0x02, 0x90, 0x00, 0x92])
    );
    // Next I-block has N(S)=1 (PCB 40); the card's answer N(S)=1 too.
    assert_eq!(
        c.t1_block(&block(0x40, &[0x00, 0xB0, 0x00, 0x00, 0x02])),
        Some(block(0x40, &[b'H', b'e', 0x90, 0x00]))
    );
}

#[test]
fn host_chaining_to_card() {
    let mut c = card(CardConfig::t1());
    c.t1_block(&block(0x00, &[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x2F, 0x01]))
        .unwrap();
    // UPDATE BINARY 2F01 "ABCD" split in two I-blocks: I(1,M) then I(0).
    // First: R-block N(R)=0 (PCB 80) acknowledges N(S)=1.
    assert_eq!(
        c.t1_block(&block(0x60, &[0x00, 0xD6, 0x00, 0x00])),
        Some(block(0x80, &[]))
    );
    assert_eq!(
        c.t1_block(&block(0x00, &[0x04, b'A', b'B', b'C', b'D'])),
        Some(block(0x40, &[0x90, 0x00]))
    );
    assert_eq!(
        c.t1_block(&block(0x40, &[0x00, 0xB0, 0x00, 0x00, 0x04])),
        Some(block(0x00, &[b'A', b'B', b'C', b'D', 0x90, 0x00]))
    );
}

#[test]
fn card_chaining_to_host_sized_to_ifsd() {
    let mut c = card(CardConfig::t1());
    // S(IFS request) IFSD=16 → S(IFS response) with the same value.
    assert_eq!(
        c.t1_block(&block(0xC1, &[0x10])),
        Some(block(0xE1, &[0x10]))
    );
    assert_eq!(c.ifsd(), 16);
    let select = [0x00, 0xA4, 0x08, 0x0C, 0x04, 0x50, 0x00, 0x50, 0x10];
    assert_eq!(
        c.t1_block(&block(0x00, &select)),
        Some(block(0x00, &[0x90, 0x00]))
    );
    // 40 bytes + SW = 42: 16 + 16 + 10.
    let expected: Vec<u8> = (0..40u8).chain([0x90, 0x00]).collect();
    let first = c
        .t1_block(&block(0x40, &[0x00, 0xB0, 0x00, 0x00, 0x28]))
        .unwrap();
    assert_eq!(first, block(0x60, &expected[..16]), "I(1, M)");
    // R(N(R)=0) asks for the next: I(0, M).
    assert_eq!(
        c.t1_block(&block(0x80, &[])),
        Some(block(0x20, &expected[16..32]))
    );
    // R(N(R)=0) again: the host did not get I(0,M), so it comes again.
    assert_eq!(
        c.t1_block(&block(0x80, &[])),
        Some(block(0x20, &expected[16..32]))
    );
    assert_eq!(
        c.t1_block(&block(0x90, &[])),
        Some(block(0x40, &expected[32..]))
    );
    // Then the host's next I-block has N(S)=0.
    assert_eq!(
        c.t1_block(&block(0x00, &[0x00, 0x20, 0x00, 0x81, 0x00])),
        Some(block(0x00, &[0x63, 0xC3]))
    );
}

#[test]
fn wtx_before_slow_answer() {
    let slow = SlowCommands {
        ins: vec![0x20],
        t1_wtx_requests: 2,
        wtx_multiplier: 3,
        ..SlowCommands::default()
    };
    let mut c = card(CardConfig {
        slow,
        ..CardConfig::t1()
    });
    assert_eq!(
        c.t1_block(&block(0x00, &[0x00, 0x20, 0x00, 0x81, 0x00])),
        Some(block(0xC3, &[0x03]))
    );
    assert_eq!(
        c.t1_block(&block(0xE3, &[0x03])),
        Some(block(0xC3, &[0x03]))
    );
    assert_eq!(
        c.t1_block(&block(0xE3, &[0x03])),
        Some(block(0x00, &[0x63, 0xC3]))
    );
    // A WTX response nobody asked for is an error: R(N(R)=1, other error).
    assert_eq!(c.t1_block(&block(0xE3, &[0x03])), Some(block(0x92, &[])));
}

#[test]
fn card_changes_ifsc_in_the_middle_of_a_chain() {
    let mut c = card(CardConfig {
        t1_ifs_request_in_chain: Some(0x08),
        ..CardConfig::t1()
    });
    assert_eq!(c.ifsc(), 254);
    // First chained block: instead of R(1) the card asks IFS 8.
    assert_eq!(
        c.t1_block(&block(0x20, &[0x00, 0xA4, 0x08, 0x0C])),
        Some(block(0xC1, &[0x08]))
    );
    assert_eq!(c.t1_block(&block(0xE1, &[0x08])), Some(block(0x90, &[])));
    assert_eq!(c.ifsc(), 8);
    // A block larger than the new IFSC is invalid: R(N(R)=1, other error).
    assert_eq!(
        c.t1_block(&block(0x40, &[0x04, 0x50, 0x00, 0x50, 0x10, 0, 0, 0, 0])),
        Some(block(0x92, &[]))
    );
    assert_eq!(
        c.t1_block(&block(0x40, &[0x04, 0x50, 0x00, 0x50, 0x10])),
        Some(block(0x00, &[0x90, 0x00]))
    );
}

#[test]
fn resynch_and_abort() {
    let mut c = card(CardConfig::t1());
    c.t1_block(&block(0xC1, &[0x10])).unwrap();
    c.t1_block(&block(0x00, &SELECT_2F00)).unwrap();
    assert_eq!(c.t1_block(&block(0xC0, &[])), Some(block(0xE0, &[])));
    assert_eq!(c.ifsd(), 32, "RESYNCH restores IFSD");
    // Sequence numbers restart at 0 on both sides.
    assert_eq!(
        c.t1_block(&block(0x00, &SELECT_2F00)),
        Some(block(0x00, &[0x90, 0x00]))
    );
    // ABORT in the middle of a host chain.
    assert_eq!(
        c.t1_block(&block(0x60, &[0x00, 0xA4])),
        Some(block(0x80, &[]))
    );
    assert_eq!(c.t1_block(&block(0xC2, &[])), Some(block(0xE2, &[])));
    assert_eq!(
        c.t1_block(&block(0x00, &SELECT_2F00)),
        Some(block(0x40, &[0x90, 0x00]))
    );
}

#[test]
fn bad_edc_and_bad_blocks() {
    let mut c = card(CardConfig::t1());
    let mut bad = block(0x00, &SELECT_2F00);
    *bad.last_mut().unwrap() ^= 0x01;
    // R(N(R)=0) with the EDC error bit.
    assert_eq!(c.t1_block(&bad), Some(block(0x81, &[])));
    // LEN disagrees with the block length: other error.
    assert_eq!(
        c.t1_block(&[0x00, 0x00, 0x05, 0x00, 0x05]),
        Some(block(0x82, &[]))
    );
    // Undefined S-block type.
    assert_eq!(c.t1_block(&block(0xC5, &[])), Some(block(0x82, &[])));
    assert_eq!(
        c.t1_block(&block(0x00, &SELECT_2F00)),
        Some(block(0x00, &[0x90, 0x00]))
    );
}

#[test]
fn repeated_i_block_gets_last_answer_without_reexecution() {
    let mut c = card(CardConfig::t1());
    let answer = c.t1_block(&block(0x00, &VERIFY_WRONG));
    assert_eq!(answer, Some(block(0x00, &[0x63, 0xC2])));
    assert_eq!(c.t1_block(&block(0x00, &VERIFY_WRONG)), answer);
    assert_eq!(c.application().pin().tries_left, 2);
    // R(N(R)=0): "I did not get your I(0)" → the same block again.
    assert_eq!(c.t1_block(&block(0x80, &[])), answer);
}

#[test]
fn dropped_block_and_dropped_answer_recover() {
    let mut config = CardConfig::t1();
    config.faults.drop_block = Some(1);
    let mut c = card(config);
    assert_eq!(c.t1_block(&block(0x00, &SELECT_2F00)), None);
    assert_eq!(
        c.t1_block(&block(0x00, &SELECT_2F00)),
        Some(block(0x00, &[0x90, 0x00]))
    );

    let mut config = CardConfig::t1();
    config.faults.drop_ins = Some(0x20);
    let mut c = card(config);
    assert_eq!(c.t1_block(&block(0x00, &VERIFY_WRONG)), None);
    // After BWT the host sends R(N(R)=0): the kept answer comes.
    assert_eq!(
        c.t1_block(&block(0x80, &[])),
        Some(block(0x00, &[0x63, 0xC2]))
    );
}

#[test]
fn corrupt_edc_fault_then_retransmission() {
    let mut config = CardConfig::t1();
    config.faults.corrupt_edc_block = Some(1);
    let mut c = card(config);
    let mut corrupt = block(0x00, &[0x90, 0x00]);
    *corrupt.last_mut().unwrap() ^= 0xFF;
    assert_eq!(c.t1_block(&block(0x00, &SELECT_2F00)), Some(corrupt));
    // R(N(R)=0, EDC error) → the card sends the block again, intact.
    assert_eq!(
        c.t1_block(&block(0x81, &[])),
        Some(block(0x00, &[0x90, 0x00]))
    );
}

/// CRC-16 (poly 0x1021 reflected = 0x8408, init FFFF, no final XOR),
/// written here independently, high byte first on the wire.
fn crc_block(pcb: u8, inf: &[u8]) -> Vec<u8> {
    let mut b = vec![0x00, pcb, inf.len() as u8];
    b.extend_from_slice(inf);
    let mut crc = 0xFFFFu16;
    for &byte in &b {
        for bit in 0..8 {
            let mix = (crc ^ u16::from(byte >> bit)) & 1;
            crc >>= 1;
            if mix == 1 {
                crc ^= 0x8408;
            }
        }
    }
    b.extend(crc.to_be_bytes());
    b
}

#[test]
fn crc_card() {
    let mut c = card(CardConfig {
        edc: EdcKind::Crc,
        ..CardConfig::t1()
    });
    assert_eq!(
        c.t1_block(&crc_block(0x00, &SELECT_2F00)),
        Some(crc_block(0x00, &[0x90, 0x00]))
    );
    // An LRC block to a CRC card is one byte short: bad block.
    assert_eq!(
        c.t1_block(&block(0x40, &SELECT_2F00)),
        Some(crc_block(0x92, &[])),
        "R(N(R)=1, other error)"
    );
}

#[test]
fn t1_is_off_when_protocol_is_t0() {
    let mut c = card(CardConfig::dual());
    assert_eq!(c.t1_block(&block(0x00, &SELECT_2F00)), None);
}
