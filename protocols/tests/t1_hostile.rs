//! A hostile card on an honest reader: T=1 behaviours that never end an
//! exchange by themselves, against the independent card model. Each ends
//! with a typed error within the round bound the engine documents
//! (`protocols/src/t1/engine.rs`, "Bounds"); before the per-exchange
//! counters, each ran for ever.

mod t1_card_model;

use ferroccid_protocols::t1::{
    Progress, T1Config, T1Error, MAX_ATTEMPTS, MAX_EMPTY_BLOCKS, MAX_RESYNCH, T1,
};
use t1_card_model::{block, run, Card, Fault, Hostile, Run};

const SELECT: [u8; 5] = [0x00, 0xA4, 0x04, 0x00, 0x00];

/// The engine's documented bound on rounds for one exchange.
fn round_bound(config: &T1Config, cmd_len: usize, resp_len: usize) -> usize {
    let a = usize::from(MAX_ATTEMPTS);
    let s = usize::from(MAX_RESYNCH);
    let e = usize::from(MAX_EMPTY_BLOCKS);
    let w = config.max_card_requests_per_exchange as usize;
    (a + 1) * ((s + 1) * (cmd_len + resp_len) + e + 2 * s + 1) + w + 3
}

fn hostile_run(hostile: Hostile, resp_len: usize, card_faults: &[(usize, Fault)]) -> Run {
    let config = T1Config::default();
    let mut t1 = T1::new(config);
    let mut card = Card::new(32);
    card.hostile = Some(hostile);
    let mut resp = vec![0u8; resp_len];
    let r = run(&mut t1, &mut card, &SELECT, &mut resp, &[], card_faults);
    assert!(
        r.steps <= round_bound(&config, SELECT.len(), resp_len),
        "{} rounds",
        r.steps
    );
    r
}

#[test]
fn empty_chained_i_blocks_forever_end_the_exchange() {
    let r = hostile_run(Hostile::EmptyChain, 65_538, &[]);
    assert_eq!(
        r.result,
        Err(T1Error::TooManyEmptyBlocks(MAX_EMPTY_BLOCKS + 1))
    );
    // I(0) then one R-ack per tolerated empty block.
    assert_eq!(r.steps, usize::from(MAX_EMPTY_BLOCKS) + 1);
}

#[test]
fn empty_chained_i_blocks_with_wtx_between_end_the_exchange() {
    // The S(WTX 255) between the empty blocks used to restart both the
    // attempts and the WTX-in-a-row count with each empty block.
    let r = hostile_run(Hostile::EmptyChainWithWtx(255), 65_538, &[]);
    assert_eq!(
        r.result,
        Err(T1Error::TooManyEmptyBlocks(MAX_EMPTY_BLOCKS + 1))
    );
    assert_eq!(r.wtx.len(), usize::from(MAX_EMPTY_BLOCKS) + 1);
    assert!(r.wtx.iter().all(|&m| m == 255));
}

#[test]
fn wtx_between_one_byte_blocks_is_capped_per_exchange() {
    // 999 S(WTX 255) before each one-byte block stays under the in-a-row
    // cap of 1000; only the per-exchange count ends it before the 64 KiB
    // buffer is full (65 538 × 1000 rounds, years of WTX 255).
    let r = hostile_run(
        Hostile::TrickleWithWtx {
            wtx_per_block: 999,
            multiplier: 255,
        },
        65_538,
        &[],
    );
    let cap = T1Config::default().max_card_requests_per_exchange;
    assert_eq!(
        r.result,
        Err(T1Error::TooManyCardRequestsInExchange(cap + 1))
    );
    assert_eq!(r.wtx.len(), cap as usize);
}

#[test]
fn resynch_does_not_restart_the_per_exchange_counts() {
    // Three corrupted blocks in the middle of the empty chain force a
    // RESYNCH, after which the card runs its empty chain again: the count
    // of empty blocks carries over the restart of the APDU.
    let r = hostile_run(
        Hostile::EmptyChain,
        65_538,
        &[
            (3, Fault::Corrupt),
            (4, Fault::Corrupt),
            (5, Fault::Corrupt),
        ],
    );
    assert_eq!(
        r.result,
        Err(T1Error::TooManyEmptyBlocks(MAX_EMPTY_BLOCKS + 1))
    );
    let resynchs = r.host_blocks.iter().filter(|b| b[1] == 0xC0).count();
    assert_eq!(resynchs, 1);
    let acks = r.host_blocks.iter().filter(|b| b[1] & 0xEF == 0x80).count();
    assert_eq!(acks, usize::from(MAX_EMPTY_BLOCKS));
}

#[test]
fn one_byte_blocks_forever_end_when_the_buffer_is_full() {
    // Progress a byte at a time is bounded by the response buffer.
    let r = hostile_run(
        Hostile::TrickleWithWtx {
            wtx_per_block: 0,
            multiplier: 1,
        },
        300,
        &[],
    );
    assert_eq!(
        r.result,
        Err(T1Error::ResponseBufferTooSmall {
            capacity: 300,
            needed_at_least: 301
        })
    );
    assert_eq!(r.steps, 301);
}

#[test]
fn key_generation_with_the_whole_in_a_row_allowance_still_completes() {
    // A legitimate card computing for a long time: 1000 S(WTX) in a row
    // (the in-a-row cap), then the answer.
    let mut t1 = T1::new(T1Config::default());
    let mut card = Card::new(32);
    card.wtx = vec![1; 1000];
    let mut resp = [0u8; 64];
    let r = run(&mut t1, &mut card, &SELECT, &mut resp, &[], &[]);
    assert_eq!(r.result, Ok(Progress::Complete(SELECT.len() + 2)));
    assert_eq!(r.wtx.len(), 1000);
}

#[test]
fn a_few_empty_chained_blocks_are_tolerated() {
    let mut t1 = T1::new(T1Config::default());
    let mut resp = [0u8; 16];
    let mut x = t1.exchange(&SELECT, &mut resp);
    let mut buf = [0u8; 259];
    x.poll_transmit(&mut buf).unwrap();
    let mut ns = 0u8;
    for _ in 0..MAX_EMPTY_BLOCKS {
        let empty = block(false, (ns << 6) | 0x20, &[]);
        assert_eq!(x.handle_block(&empty), Ok(Progress::Transmit));
        ns ^= 1;
        let n = x.poll_transmit(&mut buf).unwrap();
        assert_eq!(buf[1], 0x80 | (ns << 4), "R-ack of {:02X?}", &buf[..n]);
    }
    let last = block(false, ns << 6, &[0x90, 0x00]);
    assert_eq!(x.handle_block(&last), Ok(Progress::Complete(2)));
    assert_eq!(resp[..2], [0x90, 0x00]);
}

#[test]
fn round_bound_holds_with_tight_caps() {
    // The same hostile cards against small caps: the bound is the formula,
    // not the defaults.
    for hostile in [
        Hostile::EmptyChain,
        Hostile::EmptyChainWithWtx(1),
        Hostile::TrickleWithWtx {
            wtx_per_block: 3,
            multiplier: 9,
        },
    ] {
        let config = T1Config {
            max_card_requests_in_a_row: 4,
            max_card_requests_per_exchange: 20,
            ..T1Config::default()
        };
        let mut t1 = T1::new(config);
        let mut card = Card::new(32);
        card.hostile = Some(hostile);
        let mut resp = vec![0u8; 1000];
        let r = run(&mut t1, &mut card, &SELECT, &mut resp, &[], &[]);
        assert!(r.result.is_err(), "{hostile:?}: {:?}", r.result);
        assert!(r.steps <= round_bound(&config, SELECT.len(), 1000));
        if let Hostile::TrickleWithWtx { .. } = hostile {
            assert_eq!(r.result, Err(T1Error::TooManyCardRequestsInExchange(21)));
        }
    }
}
