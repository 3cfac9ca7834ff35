//! An independent card-side T=1 model for the engine tests. It builds and
//! parses blocks by hand from ISO/IEC 7816-3 §11 (Tables 13–15, §11.4.4)
//! and does not use the engine's block code.
#![allow(dead_code)]
//! (A folder module, so cargo does not build it as a test of its own; included with `mod t1_card_model;` by t1_scenarios.rs and t1_props.rs.)

/// CRC-16 as the engine documents it (reflected 0x1021, init 0xFFFF, no
/// final XOR, high byte first), bit by bit.
pub fn crc(bytes: &[u8]) -> [u8; 2] {
    let mut v: u16 = 0xFFFF;
    for &b in bytes {
        v ^= b as u16;
        for _ in 0..8 {
            v = if v & 1 != 0 {
                (v >> 1) ^ 0x8408
            } else {
                v >> 1
            };
        }
    }
    v.to_be_bytes()
}

pub fn lrc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |a, b| a ^ b)
}

/// Builds NAD PCB LEN INF EDC.
pub fn block(use_crc: bool, pcb: u8, inf: &[u8]) -> Vec<u8> {
    let mut b = vec![0x00, pcb, inf.len() as u8];
    b.extend_from_slice(inf);
    if use_crc {
        let c = crc(&b);
        b.extend_from_slice(&c);
    } else {
        let l = lrc(&b);
        b.push(l);
    }
    b
}

/// Parses a block; `Err(1)` for an EDC error, `Err(2)` for other errors.
pub fn parse(use_crc: bool, b: &[u8]) -> Result<(u8, Vec<u8>), u8> {
    let edc = if use_crc { 2 } else { 1 };
    if b.len() < 3 + edc || b.len() != 3 + b[2] as usize + edc {
        return Err(2);
    }
    let body = &b[..b.len() - edc];
    let ok = if use_crc {
        crc(body) == b[b.len() - 2..]
    } else {
        lrc(body) == b[b.len() - 1]
    };
    if !ok {
        return Err(1);
    }
    Ok((b[1], b[3..3 + b[2] as usize].to_vec()))
}

pub fn r_block(use_crc: bool, nr: u8, err: u8) -> Vec<u8> {
    block(use_crc, 0x80 | (nr << 4) | err, &[])
}

pub struct Card {
    pub crc: bool,
    /// N(S) of the card's next new I-block.
    pub ns: u8,
    /// N(S) the card expects from the host.
    pub nr: u8,
    /// Largest INF the card sends (IFSD).
    pub ifsd: usize,
    /// Largest INF the card accepts (IFSC); larger ones are violations.
    pub ifsc: usize,
    rx: Vec<u8>,
    tx: Vec<u8>,
    tx_off: usize,
    last: Vec<u8>,
    last_i: Option<(u8, bool, Vec<u8>)>,
    idle_after_answer: bool,
    pending_after_s: Option<Vec<u8>>,
    pub app: fn(&[u8]) -> Vec<u8>,
    pub wtx: Vec<u8>,
    pub ifs_change_at_rx_block: Option<(usize, u8)>,
    pub abort_at_rx_block: Option<usize>,
    rx_blocks: usize,
    pub stuck_r0: bool,
    pub silent: bool,
    pub violations: Vec<String>,
    pub commands: Vec<Vec<u8>>,
    pub resynchs: usize,
    /// Once a whole command is in, answer like this instead of running
    /// the application.
    pub hostile: Option<Hostile>,
    hostile_active: bool,
    hostile_wtx_sent: u16,
}

/// Card behaviours that never let an exchange end on their own: each one
/// takes its next step whatever the host sends (except a RESYNCH, which
/// is answered and then the behaviour starts over).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hostile {
    /// I-blocks with the M-bit set and no INF, forever, each with the
    /// right N(S).
    EmptyChain,
    /// The same with one S(WTX m) request before each empty block.
    EmptyChainWithWtx(u8),
    /// Chained I-blocks of one byte forever, each after `wtx_per_block`
    /// S(WTX multiplier) requests.
    TrickleWithWtx { wtx_per_block: u16, multiplier: u8 },
}

/// Response of the model application: the command reversed, then 90 00.
pub fn reverse_app(cmd: &[u8]) -> Vec<u8> {
    let mut r: Vec<u8> = cmd.iter().rev().copied().collect();
    r.extend_from_slice(&[0x90, 0x00]);
    r
}

impl Card {
    pub fn new(ifsc: usize) -> Card {
        Card {
            crc: false,
            ns: 0,
            nr: 0,
            ifsd: 32,
            ifsc,
            rx: Vec::new(),
            tx: Vec::new(),
            tx_off: 0,
            last: Vec::new(),
            last_i: None,
            idle_after_answer: false,
            pending_after_s: None,
            app: reverse_app,
            wtx: Vec::new(),
            ifs_change_at_rx_block: None,
            abort_at_rx_block: None,
            rx_blocks: 0,
            stuck_r0: false,
            silent: false,
            violations: Vec::new(),
            commands: Vec::new(),
            resynchs: 0,
            hostile: None,
            hostile_active: false,
            hostile_wtx_sent: 0,
        }
    }

    /// The next block of a [`Hostile`] card.
    fn hostile_next(&mut self, hostile: Hostile) -> Option<Vec<u8>> {
        let (wtx, multiplier, inf): (u16, u8, &[u8]) = match hostile {
            Hostile::EmptyChain => (0, 0, &[]),
            Hostile::EmptyChainWithWtx(m) => (1, m, &[]),
            Hostile::TrickleWithWtx {
                wtx_per_block,
                multiplier,
            } => (wtx_per_block, multiplier, &[0x55]),
        };
        if self.hostile_wtx_sent < wtx {
            self.hostile_wtx_sent += 1;
            return self.send(block(self.crc, 0xC3, &[multiplier]));
        }
        self.hostile_wtx_sent = 0;
        let pcb = (self.ns << 6) | 0x20;
        self.ns ^= 1;
        self.send(block(self.crc, pcb, inf))
    }

    fn send(&mut self, b: Vec<u8>) -> Option<Vec<u8>> {
        self.last = b.clone();
        Some(b)
    }

    fn next_chunk(&mut self) -> Vec<u8> {
        let len = (self.tx.len() - self.tx_off).min(self.ifsd);
        let more = self.tx_off + len < self.tx.len();
        let pcb = (self.ns << 6) | if more { 0x20 } else { 0 };
        let b = block(self.crc, pcb, &self.tx[self.tx_off..self.tx_off + len]);
        self.last_i = Some((self.ns, more, b.clone()));
        self.ns ^= 1;
        self.tx_off += len;
        if !more {
            self.idle_after_answer = true;
        }
        b
    }

    /// Sends pending WTX requests first, then `b`.
    fn answer_after_wtx(&mut self, b: Vec<u8>) -> Option<Vec<u8>> {
        if !self.wtx.is_empty() {
            let m = self.wtx.remove(0);
            self.pending_after_s = Some(b);
            return self.send(block(self.crc, 0xC3, &[m]));
        }
        self.send(b)
    }

    /// The card's answer to one received block (None: silence).
    pub fn on_block(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        if self.silent {
            return None;
        }
        if self.stuck_r0 {
            return Some(r_block(self.crc, 0, 0));
        }
        if let (Some(hostile), true) = (self.hostile, self.hostile_active) {
            if parse(self.crc, bytes).map(|(pcb, _)| pcb) == Ok(0xC0) {
                self.hostile_active = false;
            } else {
                return self.hostile_next(hostile);
            }
        }
        let (pcb, inf) = match parse(self.crc, bytes) {
            Ok(p) => p,
            Err(code) => {
                let r = r_block(self.crc, self.nr, code);
                return self.send(r);
            }
        };
        if pcb & 0x80 == 0 {
            let ns = (pcb >> 6) & 1;
            let more = pcb & 0x20 != 0;
            if inf.len() > self.ifsc {
                self.violations.push(format!(
                    "I-block of {} bytes > IFSC {}",
                    inf.len(),
                    self.ifsc
                ));
            }
            if ns != self.nr {
                let r = r_block(self.crc, self.nr, 2);
                return self.send(r);
            }
            self.idle_after_answer = false;
            self.rx.extend_from_slice(&inf);
            self.nr ^= 1;
            self.rx_blocks += 1;
            if self.abort_at_rx_block == Some(self.rx_blocks) {
                return self.send(block(self.crc, 0xC2, &[]));
            }
            if more {
                let ack = r_block(self.crc, self.nr, 0);
                if let Some((k, v)) = self.ifs_change_at_rx_block {
                    if k == self.rx_blocks {
                        self.ifsc = v as usize;
                        self.pending_after_s = Some(ack);
                        return self.send(block(self.crc, 0xC1, &[v]));
                    }
                }
                return self.send(ack);
            }
            let cmd = std::mem::take(&mut self.rx);
            self.commands.push(cmd.clone());
            if let Some(hostile) = self.hostile {
                self.hostile_active = true;
                self.hostile_wtx_sent = 0;
                return self.hostile_next(hostile);
            }
            self.tx = (self.app)(&cmd);
            self.tx_off = 0;
            let first = self.next_chunk();
            return self.answer_after_wtx(first);
        }
        if pcb & 0xC0 == 0x80 {
            let nr = (pcb >> 4) & 1;
            // Rule 7.3: an outstanding S request of the card is resent.
            if self.last.len() > 1 && self.last[1] & 0xE0 == 0xC0 {
                return Some(self.last.clone());
            }
            if let Some((last_ns, last_more, last_bytes)) = self.last_i.clone() {
                if last_more {
                    if nr == last_ns {
                        return self.send(last_bytes);
                    }
                    let next = self.next_chunk();
                    return self.send(next);
                }
                if self.idle_after_answer && nr == last_ns {
                    return self.send(last_bytes);
                }
            }
            let last_is_r_or_s = !self.last.is_empty() && self.last[1] & 0x80 != 0;
            if last_is_r_or_s {
                let again = self.last.clone();
                return Some(again);
            }
            let r = r_block(self.crc, self.nr, 2);
            return self.send(r);
        }
        match pcb {
            0xC0 => {
                self.ns = 0;
                self.nr = 0;
                self.ifsd = 32;
                self.rx.clear();
                self.last_i = None;
                self.idle_after_answer = false;
                self.pending_after_s = None;
                self.resynchs += 1;
                self.send(block(self.crc, 0xE0, &[]))
            }
            0xC1 if inf.len() == 1 => {
                self.ifsd = inf[0] as usize;
                self.send(block(self.crc, 0xE1, &inf))
            }
            0xE3 | 0xE1 if self.pending_after_s.is_some() => {
                if inf[..] != self.last[3..4] {
                    self.violations.push(format!("S response INF {inf:02X?}"));
                }
                let b = self.pending_after_s.take().unwrap();
                self.answer_after_wtx(b)
            }
            0xE2 => None,
            _ => {
                let r = r_block(self.crc, self.nr, 2);
                self.send(r)
            }
        }
    }
}

// ---- the wire between the engine and the card model ----

use ferroccid_protocols::t1::{Progress, T1Error, T1};

/// What the wire does to one block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    /// The block never arrives (the receiver times out).
    Drop,
    /// One bit of the block is flipped.
    Corrupt,
    /// Bit `n % 8` of byte `n / 8` (modulo the length) is flipped: may hit
    /// the prologue (wrong LEN, PCB) as well as INF or EDC.
    FlipBit(usize),
}

fn flip(block: &mut [u8], n: usize) {
    let i = (n / 8) % block.len();
    block[i] ^= 1 << (n % 8);
}

#[derive(Debug)]
pub struct Run {
    pub result: Result<Progress, T1Error>,
    /// Blocks the host sent, in order.
    pub host_blocks: Vec<Vec<u8>>,
    /// WTX multipliers reported to the driver.
    pub wtx: Vec<u8>,
    pub steps: usize,
}

pub const MAX_STEPS: usize = 100_000;

/// Drives an exchange like the driver does: send, receive or time out.
/// `host_faults`/`card_faults`: (index of the block in that direction, fault).
pub fn run(
    t1: &mut T1,
    card: &mut Card,
    cmd: &[u8],
    resp: &mut [u8],
    host_faults: &[(usize, Fault)],
    card_faults: &[(usize, Fault)],
) -> Run {
    let mut x = t1.exchange(cmd, resp);
    let mut host_blocks = Vec::new();
    let mut wtx = Vec::new();
    let mut card_sent = 0;
    let mut buf = [0u8; 259];
    for steps in 1..=MAX_STEPS {
        let n = x.poll_transmit(&mut buf).expect("buffer is large enough");
        assert!(n > 0, "engine has nothing to send while waiting");
        let mut out = buf[..n].to_vec();
        host_blocks.push(out.clone());
        let fault = host_faults
            .iter()
            .find(|(i, _)| *i == host_blocks.len() - 1)
            .map(|f| f.1);
        let answer = match fault {
            Some(Fault::Drop) => None,
            Some(Fault::Corrupt) => {
                out[1] ^= 0x04;
                card.on_block(&out)
            }
            Some(Fault::FlipBit(n)) => {
                flip(&mut out, n);
                card.on_block(&out)
            }
            None => card.on_block(&out),
        };
        let answer = answer.and_then(|mut a| {
            let fault = card_faults
                .iter()
                .find(|(i, _)| *i == card_sent)
                .map(|f| f.1);
            card_sent += 1;
            match fault {
                Some(Fault::Drop) => None,
                Some(Fault::Corrupt) => {
                    let last = a.len() - 1;
                    a[last] ^= 0x10;
                    Some(a)
                }
                Some(Fault::FlipBit(n)) => {
                    flip(&mut a, n);
                    Some(a)
                }
                None => Some(a),
            }
        });
        let progress = match answer {
            Some(a) => x.handle_block(&a),
            None => x.handle_timeout(),
        };
        match progress {
            Ok(Progress::Transmit) => {}
            Ok(Progress::WaitingTimeExtension(m)) => wtx.push(m),
            Ok(done @ Progress::Complete(_)) => {
                return Run {
                    result: Ok(done),
                    host_blocks,
                    wtx,
                    steps,
                }
            }
            Ok(Progress::Aborted) => {
                let n = x.poll_transmit(&mut buf).unwrap();
                host_blocks.push(buf[..n].to_vec());
                return Run {
                    result: Ok(Progress::Aborted),
                    host_blocks,
                    wtx,
                    steps,
                };
            }
            Err(e) => {
                return Run {
                    result: Err(e),
                    host_blocks,
                    wtx,
                    steps,
                }
            }
        }
    }
    panic!("exchange did not end within {MAX_STEPS} steps");
}
