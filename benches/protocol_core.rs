//! Protocol core (`ferroccid-protocols`): CPU cost of the sans-IO engines.
//!
//! - T=1: one APDU exchange (5 B, 255 B, 4 KiB and 64 KiB, chained in
//!   254-byte I-blocks both ways) through [`T1`] against a scripted card that
//!   answers instantly with pre-built blocks. Baseline: the memcpy floor,
//!   copying the same INF bytes through the same block and response buffers
//!   in the same order, with no framing, EDC or state machine.
//! - ATR parse of the simulated dual card's ATR vs copying its bytes.
//! - T=0 TPDU helper ([`T0Apdu`]) for a case-2 GET CHALLENGE and a case-3
//!   255-byte command answered 61xx + GET RESPONSE, vs copying the TPDUs
//!   and response bytes through the same buffers.
//!
//! The card's blocks and the blocks the host must send are built here by
//! hand from ISO/IEC 7816-3 §11.3 (PCB bits, LEN, LRC), and every case is
//! checked once against them before it is timed.

mod support;

use std::hint::black_box;

use ferroccid::protocols::atr::Atr;
use ferroccid::protocols::t0::tpdu::{T0Apdu, T0Options, T0Step};
use ferroccid::protocols::t1::{Progress, T1Config, MAX_BLOCK_LEN, MAX_INF_LEN, T1};
use ferroccid_sim::card::CardConfig;
use support::Harness;

/// A T=1 block with NAD 0 and LRC (ISO/IEC 7816-3 §11.3.1, §11.4.4).
fn block(pcb: u8, inf: &[u8]) -> Vec<u8> {
    let mut b = vec![0x00, pcb, inf.len() as u8];
    b.extend_from_slice(inf);
    b.push(b.iter().fold(0, |x, y| x ^ y));
    b
}

/// I-block PCB: b8 = 0, b7 = N(S), b6 = more data (§11.3.2.2).
fn i_pcb(ns: usize, more: bool) -> u8 {
    ((ns as u8 & 1) << 6) | (u8::from(more) << 5)
}

/// Error-free R-block PCB: b8 b7 = 10, b5 = N(R) (§11.3.2.2).
fn r_pcb(nr: usize) -> u8 {
    0x80 | ((nr as u8 & 1) << 4)
}

/// One scripted T=1 exchange, both sides starting from N(S) = 0.
struct T1Script {
    command: Vec<u8>,
    response: Vec<u8>,
    /// What the host must send, in order.
    host_blocks: Vec<Vec<u8>>,
    /// What the card answers to each host block.
    card_blocks: Vec<Vec<u8>>,
}

impl T1Script {
    /// Command and response of `len` bytes each (the response ends 90 00).
    fn new(len: usize) -> T1Script {
        let mut command: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        command[..4].copy_from_slice(&[0x00, 0xD6, 0x00, 0x00]);
        let mut response: Vec<u8> = (0..len).map(|i| (i * 13 % 253) as u8).collect();
        response[len - 2..].copy_from_slice(&[0x90, 0x00]);
        let host_chunks: Vec<&[u8]> = command.chunks(MAX_INF_LEN).collect();
        let card_chunks: Vec<&[u8]> = response.chunks(MAX_INF_LEN).collect();
        let (h, c) = (host_chunks.len(), card_chunks.len());
        let mut host_blocks = Vec::new();
        let mut card_blocks = Vec::new();
        // Host chain: each I-block but the last is acknowledged by R(N(S)+1).
        for (i, chunk) in host_chunks.iter().enumerate() {
            host_blocks.push(block(i_pcb(i, i + 1 < h), chunk));
            if i + 1 < h {
                card_blocks.push(block(r_pcb(i + 1), &[]));
            }
        }
        // Card chain: the host acknowledges each I-block but the last.
        for (j, chunk) in card_chunks.iter().enumerate() {
            card_blocks.push(block(i_pcb(j, j + 1 < c), chunk));
            if j + 1 < c {
                host_blocks.push(block(r_pcb(j + 1), &[]));
            }
        }
        T1Script {
            command,
            response,
            host_blocks,
            card_blocks,
        }
    }

    fn config() -> T1Config {
        T1Config {
            ifsc: MAX_INF_LEN as u8,
            ..T1Config::default()
        }
    }

    /// Runs the engine over the script; with `check`, compares every block.
    fn run_engine(&self, block_buf: &mut [u8], resp: &mut [u8], check: bool) -> usize {
        let mut t1 = T1::new(Self::config());
        let mut x = t1.exchange(&self.command, resp);
        let mut k = 0;
        loop {
            let n = x.poll_transmit(block_buf).expect("engine emits");
            if check {
                assert_eq!(&block_buf[..n], &self.host_blocks[k][..], "host block {k}");
            }
            black_box(&block_buf[..n]);
            match x
                .handle_block(&self.card_blocks[k])
                .expect("card block accepted")
            {
                Progress::Transmit => k += 1,
                Progress::Complete(len) => {
                    assert!(!check || k + 1 == self.card_blocks.len());
                    return len;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// The memcpy floor: the same INF bytes through the same buffers.
    fn run_floor(&self, block_buf: &mut [u8], resp: &mut [u8]) -> usize {
        let mut filled = 0;
        for (host, card) in self.host_blocks.iter().zip(&self.card_blocks) {
            let out = &host[3..host.len() - 1];
            block_buf[3..3 + out.len()].copy_from_slice(out);
            black_box(&block_buf[..out.len() + 4]);
            let inf = &card[3..card.len() - 1];
            resp[filled..filled + inf.len()].copy_from_slice(inf);
            filled += inf.len();
        }
        black_box(filled)
    }
}

fn bench_t1(h: &mut Harness) {
    for (name, len) in [
        ("t1/exchange 5 B", 5),
        ("t1/exchange 255 B", 255),
        ("t1/exchange 4 KiB chained", 4096),
        ("t1/exchange 64 KiB chained", 65536),
    ] {
        if !h.selected(name) {
            continue;
        }
        let script = T1Script::new(len);
        let mut block_buf = [0u8; MAX_BLOCK_LEN];
        let mut resp = vec![0u8; len + 2];
        // Check once, outside the timing: the engine sends exactly the
        // blocks the standard prescribes and returns the card's response.
        let n = script.run_engine(&mut block_buf, &mut resp, true);
        assert_eq!(&resp[..n], &script.response[..], "{name}: engine response");
        resp.fill(0);
        let n = script.run_floor(&mut block_buf, &mut resp);
        assert_eq!(&resp[..n], &script.response[..], "{name}: floor response");

        let resp = std::cell::RefCell::new(resp);
        let block_buf = std::cell::RefCell::new(block_buf);
        h.compare(
            name,
            || {
                script.run_floor(&mut *block_buf.borrow_mut(), &mut resp.borrow_mut());
            },
            || {
                script.run_engine(&mut *block_buf.borrow_mut(), &mut resp.borrow_mut(), false);
            },
        );
    }
}

fn bench_atr(h: &mut Harness) {
    let bytes = CardConfig::dual().atr();
    let atr = Atr::parse(&bytes).expect("the simulated card's ATR parses");
    // The card offers T=0 then T=1 and IFSC 254 (CardConfig::dual).
    assert_eq!(atr.protocols().as_slice(), &[0, 1]);
    assert_eq!(atr.ifsc(), 254);
    assert_eq!(atr.as_bytes(), &bytes[..]);
    let mut copy = [0u8; 33];
    h.compare(
        "atr/parse dual-protocol ATR",
        || {
            let src = black_box(&bytes[..]);
            copy[..src.len()].copy_from_slice(src);
            black_box(&copy);
        },
        || {
            black_box(Atr::parse(black_box(&bytes)).ok());
        },
    );
}

/// One T=0 APDU: the TPDUs the host must send and the card's answers.
struct T0Script {
    command: Vec<u8>,
    tpdus: Vec<Vec<u8>>,
    answers: Vec<Vec<u8>>,
    response: Vec<u8>,
}

fn run_t0(s: &T0Script, tpdu: &mut [u8], resp: &mut [u8], check: bool) -> usize {
    let mut x = T0Apdu::new(&s.command, resp, T0Options::AUTOMATIC).expect("valid APDU");
    let mut k = 0;
    loop {
        let sent = x
            .next_tpdu(tpdu)
            .expect("TPDU fits")
            .expect("a TPDU is due");
        if check {
            assert_eq!(sent, &s.tpdus[k][..], "TPDU {k}");
        }
        black_box(sent);
        match x.handle_response(&s.answers[k]).expect("answer accepted") {
            T0Step::SendNext => k += 1,
            T0Step::Complete(n) => return n,
        }
    }
}

fn floor_t0(s: &T0Script, tpdu: &mut [u8], resp: &mut [u8]) -> usize {
    let mut filled = 0;
    for (out, answer) in s.tpdus.iter().zip(&s.answers) {
        tpdu[..out.len()].copy_from_slice(out);
        black_box(&tpdu[..out.len()]);
        let data = &answer[..answer.len() - 2];
        resp[filled..filled + data.len()].copy_from_slice(data);
        filled += data.len();
    }
    resp[filled..filled + 2].copy_from_slice(&[0x90, 0x00]);
    black_box(filled + 2)
}

fn bench_t0(h: &mut Harness) {
    // Case 2: GET CHALLENGE, Le 8: one TPDU, 8 bytes + 90 00.
    let challenge: Vec<u8> = (1..=8).collect();
    let mut answer = challenge.clone();
    answer.extend_from_slice(&[0x90, 0x00]);
    let case2 = T0Script {
        command: vec![0x00, 0x84, 0x00, 0x00, 0x08],
        tpdus: vec![vec![0x00, 0x84, 0x00, 0x00, 0x08]],
        answers: vec![answer.clone()],
        response: answer,
    };
    // Case 4: 255 data bytes out, Le 00; the card says 61 10, GET RESPONSE
    // (CLA 00, INS C0, P3 10) fetches 16 bytes (ISO/IEC 7816-3 §12.2.4).
    let data: Vec<u8> = (0..255).map(|i| i as u8).collect();
    let mut command = vec![0x00, 0xA4, 0x04, 0x00, 0xFF];
    command.extend_from_slice(&data);
    command.push(0x00);
    let fci: Vec<u8> = (0..16).map(|i| 0xA0 + i as u8).collect();
    let mut fci_answer = fci.clone();
    fci_answer.extend_from_slice(&[0x90, 0x00]);
    let case4 = T0Script {
        tpdus: vec![command[..260].to_vec(), vec![0x00, 0xC0, 0x00, 0x00, 0x10]],
        command,
        answers: vec![vec![0x61, 0x10], fci_answer.clone()],
        response: fci_answer,
    };
    for (name, script) in [
        ("t0/tpdu case 2 GET CHALLENGE", case2),
        ("t0/tpdu case 4 255 B + GET RESPONSE", case4),
    ] {
        if !h.selected(name) {
            continue;
        }
        let mut tpdu = [0u8; 5 + 255];
        let mut resp = [0u8; 258];
        let n = run_t0(&script, &mut tpdu, &mut resp, true);
        assert_eq!(&resp[..n], &script.response[..], "{name}: helper response");
        let n = floor_t0(&script, &mut tpdu, &mut resp);
        assert_eq!(&resp[..n], &script.response[..], "{name}: floor response");
        let bufs = std::cell::RefCell::new((tpdu, resp));
        h.compare(
            name,
            || {
                let (t, r) = &mut *bufs.borrow_mut();
                floor_t0(&script, t, r);
            },
            || {
                let (t, r) = &mut *bufs.borrow_mut();
                run_t0(&script, t, r, false);
            },
        );
    }
}

fn main() {
    let mut h = Harness::from_args("protocol core (ferroccid-protocols)");
    bench_t1(&mut h);
    bench_atr(&mut h);
    bench_t0(&mut h);
    h.finish();
}
