//! The T=1 engine fed arbitrary blocks in the middle of an exchange: it
//! must never panic, never hang, only ever transmit valid blocks, and
//! never claim a response longer than the buffer.
//!
//! Input: `flags ifsc cmd_len resp_cap` then records `op len bytes…`,
//! where op selects how the record reaches the engine: raw bytes, bytes
//! with LEN and EDC fixed up (so the fuzzer gets past the checks and into
//! the protocol logic), a timeout, or a parity error.
//!
//! flags bit 0 selects CRC; bit 1 makes the card answer forever: the
//! records are replayed in a cycle until the exchange ends, which it must
//! within the round bound the engine documents (`t1/engine.rs`, "Bounds"),
//! computed here from the caps.
#![no_main]

use ferroccid_protocols::edc::Edc;
use ferroccid_protocols::t1::{
    Block, Exchange, Progress, T1Config, T1Error, MAX_ATTEMPTS, MAX_BLOCK_LEN, MAX_EMPTY_BLOCKS,
    MAX_INF_LEN, MAX_RESYNCH, T1,
};
use libfuzzer_sys::fuzz_target;

/// Sends what the engine wants to send and checks it is a valid block.
fn transmit(x: &mut Exchange<'_>, edc: Edc) {
    let mut tx = [0u8; MAX_BLOCK_LEN];
    let n = x
        .poll_transmit(&mut tx)
        .expect("MAX_BLOCK_LEN always suffices");
    if n > 0 {
        assert!(n <= MAX_BLOCK_LEN);
        if let Err(e) = Block::new_checked(&tx[..n], edc) {
            panic!("engine emitted an invalid block {:02X?}: {e:?}", &tx[..n]);
        }
    }
}

/// The engine's documented bound on the rounds of one exchange:
/// (A + 1) × ((S + 1) × (N + M) + E + 2S + 1) + W + 3.
fn round_bound(config: &T1Config, cmd_len: usize, resp_len: usize) -> usize {
    let a = usize::from(MAX_ATTEMPTS);
    let s = usize::from(MAX_RESYNCH);
    let e = usize::from(MAX_EMPTY_BLOCKS);
    let w = config.max_card_requests_per_exchange as usize;
    (a + 1) * ((s + 1) * (cmd_len + resp_len) + e + 2 * s + 1) + w + 3
}

/// One card answer, as the fuzzer wrote it.
fn feed(x: &mut Exchange<'_>, edc: Edc, op: u8, bytes: &[u8]) -> Result<Progress, T1Error> {
    match op & 3 {
        0 => x.handle_block(bytes),
        1 => {
            // NAD PCB then INF; LEN and EDC computed here.
            let (head, inf) = bytes.split_at(bytes.len().min(2));
            let inf = &inf[..inf.len().min(MAX_INF_LEN)];
            let mut block = [0u8; MAX_BLOCK_LEN];
            block[..head.len()].copy_from_slice(head);
            block[2] = inf.len() as u8;
            block[3..3 + inf.len()].copy_from_slice(inf);
            let covered = 3 + inf.len();
            let (covered_bytes, epilogue) = block.split_at_mut(covered);
            let n = edc.write(covered_bytes, epilogue).expect("room for EDC");
            x.handle_block(&block[..covered + n])
        }
        2 => x.handle_timeout(),
        _ => x.handle_parity_error(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[flags, ifsc, cmd_len, resp_cap], mut rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let edc = if flags & 1 == 1 { Edc::Crc } else { Edc::Lrc };
    let forever = flags & 2 != 0;
    // Small caps so that the fuzzer reaches them; the bound follows them.
    let config = T1Config {
        ifsc,
        edc,
        max_card_requests_in_a_row: 50,
        max_card_requests_per_exchange: 200,
        ..T1Config::default()
    };
    let mut records: Vec<(u8, &[u8])> = Vec::new();
    while let Some((&[op, len], tail)) = rest.split_first_chunk::<2>() {
        let take = usize::from(len).min(tail.len());
        let (bytes, next) = tail.split_at(take);
        records.push((op, bytes));
        rest = next;
    }
    if records.is_empty() {
        return;
    }
    let mut t1 = T1::new(config);
    // Several hundred bytes of command so that chaining is exercised.
    let command: Vec<u8> = (0..usize::from(cmd_len) * 3).map(|i| i as u8).collect();
    let resp_cap = usize::from(resp_cap) * 4;
    let bound = round_bound(&config, command.len(), resp_cap);
    let mut response = vec![0u8; resp_cap];
    let mut x = t1.exchange(&command, &mut response);
    transmit(&mut x, edc);

    let mut rounds = 0usize;
    let mut answers = records.iter().cycle();
    while let Some(&(op, bytes)) = answers.next() {
        rounds += 1;
        if !forever && rounds > records.len() {
            break;
        }
        assert!(
            rounds <= bound,
            "exchange still running after {bound} rounds (command {}, response buffer {resp_cap})",
            command.len()
        );
        match feed(&mut x, edc, op, bytes) {
            Ok(Progress::Transmit) | Ok(Progress::WaitingTimeExtension(_)) => transmit(&mut x, edc),
            Ok(Progress::Complete(len)) => {
                assert!(
                    len <= resp_cap,
                    "response of {len} in a buffer of {resp_cap}"
                );
                assert_eq!(len, x.received());
                break;
            }
            Ok(Progress::Aborted) => {
                transmit(&mut x, edc);
                break;
            }
            Err(_) => {
                assert!(x.is_finished(), "an error leaves the exchange finished");
                break;
            }
        }
    }
});
