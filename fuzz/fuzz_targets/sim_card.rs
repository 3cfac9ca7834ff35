//! The virtual card of the simulator fed a hostile interface device:
//! arbitrary APDUs (`process_apdu`), T=1 blocks (`t1_block`), T=0
//! characters (`t0_receive`, `t0_tpdu`), PPS requests and resets. Never
//! panics, answers stay bounded, and every T=1 block the card sends checks
//! out with the protocol crate's independent block parser.
//!
//! Input: `config` byte (protocols, EDC, single-byte ACKs, slow commands),
//! `ifsc`, then records `op len bytes…`.
#![no_main]

use ferroccid_sim::card::{CardConfig, EdcKind, Protocols, SlowCommands, VirtualCard};
use ferroccid_protocols::edc::Edc;
use ferroccid_protocols::t1::Block;
use libfuzzer_sys::fuzz_target;

/// Longest answer any level may produce: an extended response (65536 data
/// bytes + SW) plus T=0 procedure bytes.
const MAX_ANSWER: usize = 65536 + 2 + 64;

fuzz_target!(|data: &[u8]| {
    let Some((&[config_byte, ifsc], mut rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let mut config = match config_byte & 3 {
        0 => CardConfig::t0(),
        1 => CardConfig::t1(),
        _ => CardConfig::dual(),
    };
    if config_byte & 0x04 != 0 {
        config.edc = EdcKind::Crc;
    }
    config.t0_single_byte_acks = config_byte & 0x08 != 0;
    if config_byte & 0x10 != 0 {
        config.slow = SlowCommands {
            ins: vec![0xB0, 0x84, 0x20],
            t0_nulls: 2,
            t1_wtx_requests: 2,
            wtx_multiplier: 3,
        };
    }
    if config_byte & 0x20 != 0 {
        config.ta1 = Some(0x96);
    }
    config.ifsc = ifsc.clamp(1, 254);
    config.rng_seed = Some(7);
    let edc = match config.edc {
        EdcKind::Lrc => Edc::Lrc,
        EdcKind::Crc => Edc::Crc,
    };
    let protocols: Protocols = config.protocols;
    let mut card = VirtualCard::new(config);
    let atr = card
        .power_on()
        .expect("a present, non-mute card answers reset");
    assert!(atr.len() <= 33, "ATR of {} bytes", atr.len());

    while let Some((&[op, len], tail)) = rest.split_first_chunk::<2>() {
        let take = usize::from(len).min(tail.len());
        let (bytes, next) = tail.split_at(take);
        rest = next;
        match op % 8 {
            0 | 1 => {
                let answer = card.process_apdu(bytes);
                assert!(answer.len() <= MAX_ANSWER);
                assert!(answer.is_empty() || answer.len() >= 2, "no status word");
            }
            2 | 3 => {
                if let Some(block) = card.t1_block(bytes) {
                    assert!(card.protocol() == 1 && protocols.offers(1));
                    if let Err(e) = Block::new_checked(&block, edc) {
                        panic!("card sent an invalid T=1 block {block:02X?}: {e:?}");
                    }
                }
            }
            4 => assert!(card.t0_receive(bytes).len() <= MAX_ANSWER),
            5 => assert!(card.t0_tpdu(bytes).len() <= MAX_ANSWER),
            6 => {
                if let Some(answer) = card.pps(bytes) {
                    assert!(answer.len() <= 6, "PPS answer of {} bytes", answer.len());
                    assert!(card.protocol() <= 1);
                }
            }
            _ => match bytes.first().map(|b| b % 3) {
                Some(0) => card.power_off(),
                Some(1) => {
                    card.warm_reset().expect("present card answers reset");
                }
                _ => {
                    card.power_on().expect("present card answers reset");
                }
            },
        }
    }
});
