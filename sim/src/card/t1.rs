//! T=1 card side at block level (ISO/IEC 7816-3 §11).
//!
//! A block is `NAD PCB LEN INF EDC`. The card receives one block and answers
//! with at most one block (`None` = silent). It keeps the last block it sent
//! so that a repeated I-block or an R-block asking for retransmission gets it
//! again.

use super::config::EdcKind;
use super::edc::{crc_bytes, lrc};
use super::Core;

/// IFSD before any S(IFS request) from the host.
pub(crate) const DEFAULT_IFSD: u8 = 32;

/// PCB of S-blocks: request types (add 0x20 for the response).
pub(crate) mod s_block {
    /// S(RESYNCH request).
    pub(crate) const RESYNCH: u8 = 0xC0;
    /// S(IFS request).
    pub(crate) const IFS: u8 = 0xC1;
    /// S(ABORT request).
    pub(crate) const ABORT: u8 = 0xC2;
    /// S(WTX request).
    pub(crate) const WTX: u8 = 0xC3;
    /// Bit that turns a request into a response.
    pub(crate) const RESPONSE: u8 = 0x20;
}

/// R-block error bits.
pub(crate) mod r_error {
    /// EDC or parity error.
    pub(crate) const EDC: u8 = 0x01;
    /// Other error (bad PCB, bad LEN, protocol error).
    pub(crate) const OTHER: u8 = 0x02;
}

/// What the card waits for after a request of its own.
#[derive(Debug, Clone, Default)]
enum Waiting {
    #[default]
    Nothing,
    /// S(WTX response), then `remaining` more WTX or the execution of `apdu`.
    WtxResponse { remaining: usize, apdu: Vec<u8> },
    /// S(IFS response) to our S(IFS request) for `ifsc`, then send `then`.
    IfsResponse { ifsc: u8, then: (u8, Vec<u8>) },
}

/// State of the T=1 card.
#[derive(Debug, Clone)]
pub(crate) struct T1Machine {
    ifsc: u8,
    ifsd: u8,
    /// N(S) the next host I-block must carry.
    expected_ns: u8,
    /// N(S) of the card's next I-block.
    card_ns: u8,
    rx_chain: Vec<u8>,
    /// Response bytes not yet sent (the card is chaining).
    tx_rest: Option<Vec<u8>>,
    last_sent: Option<Vec<u8>>,
    waiting: Waiting,
    received_blocks: usize,
    sent_blocks: usize,
    ifs_request_done: bool,
    nad: u8,
}

impl T1Machine {
    /// A machine in the state right after the ATR.
    pub(crate) fn new(ifsc: u8) -> Self {
        T1Machine {
            ifsc,
            ifsd: DEFAULT_IFSD,
            expected_ns: 0,
            card_ns: 0,
            rx_chain: Vec::new(),
            tx_rest: None,
            last_sent: None,
            waiting: Waiting::Nothing,
            received_blocks: 0,
            sent_blocks: 0,
            ifs_request_done: false,
            nad: 0,
        }
    }

    /// Current IFSC (changed by a card-initiated S(IFS request)).
    pub(crate) fn ifsc(&self) -> u8 {
        self.ifsc
    }

    /// Current IFSD (changed by the host's S(IFS request)).
    pub(crate) fn ifsd(&self) -> u8 {
        self.ifsd
    }

    fn resynch(&mut self, ifsc: u8) {
        let (received, sent, done) = (
            self.received_blocks,
            self.sent_blocks,
            self.ifs_request_done,
        );
        *self = T1Machine::new(ifsc);
        (
            self.received_blocks,
            self.sent_blocks,
            self.ifs_request_done,
        ) = (received, sent, done);
    }

    /// Receives one block; returns the block the card sends, if any.
    pub(super) fn receive(&mut self, block: &[u8], core: &mut Core) -> Option<Vec<u8>> {
        self.received_blocks += 1;
        if core.config.faults.drop_block == Some(self.received_blocks) {
            return None;
        }
        let edc_len = match core.config.edc {
            EdcKind::Lrc => 1,
            EdcKind::Crc => 2,
        };
        if block.len() < 3 + edc_len
            || block[2] == 0xFF
            || block.len() != 3 + usize::from(block[2]) + edc_len
        {
            return self.r_block(core, r_error::OTHER);
        }
        let (body, edc) = block.split_at(3 + usize::from(block[2]));
        let edc_ok = match core.config.edc {
            EdcKind::Lrc => edc == [lrc(body)],
            EdcKind::Crc => edc == crc_bytes(body),
        };
        if !edc_ok {
            return self.r_block(core, r_error::EDC);
        }
        // The answer goes back with source and destination swapped.
        self.nad = ((block[0] & 0x07) << 4) | ((block[0] >> 4) & 0x07);
        let pcb = block[1];
        let inf = &body[3..];
        match pcb & 0xC0 {
            0x00 | 0x40 => self.on_i_block(pcb, inf, core),
            0x80 => self.on_r_block(pcb, core),
            _ => self.on_s_block(pcb, inf, core),
        }
    }

    fn on_i_block(&mut self, pcb: u8, inf: &[u8], core: &mut Core) -> Option<Vec<u8>> {
        let ns = (pcb >> 6) & 1;
        let more = pcb & 0x20 != 0;
        if pcb & 0x1F != 0
            || inf.len() > usize::from(self.ifsc)
            || !matches!(self.waiting, Waiting::Nothing)
        {
            return self.r_block(core, r_error::OTHER);
        }
        if ns != self.expected_ns {
            // The host did not get our answer and repeats its block.
            return self.resend(core);
        }
        if self.tx_rest.is_some() {
            // An I-block while we are chaining: the host must send R-blocks.
            return self.r_block(core, r_error::OTHER);
        }
        self.expected_ns ^= 1;
        self.rx_chain.extend_from_slice(inf);
        if more {
            let ack = (0x80 | (self.expected_ns << 4), Vec::new());
            if let (Some(ifsc), false) =
                (core.config.t1_ifs_request_in_chain, self.ifs_request_done)
            {
                self.ifs_request_done = true;
                self.waiting = Waiting::IfsResponse { ifsc, then: ack };
                return self.emit(core, s_block::IFS, vec![ifsc]);
            }
            return self.emit(core, ack.0, ack.1);
        }
        let apdu = std::mem::take(&mut self.rx_chain);
        let slow = &core.config.slow;
        if slow.ins.contains(&apdu.get(1).copied().unwrap_or(0)) && slow.t1_wtx_requests > 0 {
            self.waiting = Waiting::WtxResponse {
                remaining: slow.t1_wtx_requests - 1,
                apdu,
            };
            let multiplier = slow.wtx_multiplier;
            return self.emit(core, s_block::WTX, vec![multiplier]);
        }
        self.execute(&apdu, core)
    }

    fn execute(&mut self, apdu: &[u8], core: &mut Core) -> Option<Vec<u8>> {
        let (response, silent) = core.run_bytes(apdu);
        let block = self.send_chunk(response.into_bytes(), core);
        // A dropped answer is still remembered, so the host's R-block gets it.
        if silent {
            None
        } else {
            block
        }
    }

    /// Sends the next I-block of `data`, at most IFSD bytes.
    fn send_chunk(&mut self, mut data: Vec<u8>, core: &mut Core) -> Option<Vec<u8>> {
        let n = data.len().min(usize::from(self.ifsd));
        let rest = data.split_off(n);
        let more = !rest.is_empty();
        self.tx_rest = more.then_some(rest);
        let pcb = (self.card_ns << 6) | if more { 0x20 } else { 0 };
        self.card_ns ^= 1;
        self.emit(core, pcb, data)
    }

    fn on_r_block(&mut self, pcb: u8, core: &mut Core) -> Option<Vec<u8>> {
        if pcb & 0x2C != 0 {
            return self.r_block(core, r_error::OTHER);
        }
        let nr = (pcb >> 4) & 1;
        if nr == self.card_ns && matches!(self.waiting, Waiting::Nothing) {
            if let Some(rest) = self.tx_rest.take() {
                return self.send_chunk(rest, core);
            }
        }
        self.resend(core)
    }

    fn on_s_block(&mut self, pcb: u8, inf: &[u8], core: &mut Core) -> Option<Vec<u8>> {
        match (pcb, inf) {
            (s_block::RESYNCH, []) => {
                self.resynch(core.config.ifsc);
                self.emit(core, s_block::RESYNCH | s_block::RESPONSE, Vec::new())
            }
            (s_block::IFS, [ifsd @ 1..=254]) => {
                self.ifsd = *ifsd;
                self.emit(core, s_block::IFS | s_block::RESPONSE, vec![*ifsd])
            }
            (s_block::ABORT, []) => {
                self.rx_chain.clear();
                self.tx_rest = None;
                self.waiting = Waiting::Nothing;
                self.emit(core, s_block::ABORT | s_block::RESPONSE, Vec::new())
            }
            (0xE3, [_]) => match std::mem::take(&mut self.waiting) {
                Waiting::WtxResponse { remaining: 0, apdu } => self.execute(&apdu, core),
                Waiting::WtxResponse { remaining, apdu } => {
                    self.waiting = Waiting::WtxResponse {
                        remaining: remaining - 1,
                        apdu,
                    };
                    let multiplier = core.config.slow.wtx_multiplier;
                    self.emit(core, s_block::WTX, vec![multiplier])
                }
                other => {
                    self.waiting = other;
                    self.r_block(core, r_error::OTHER)
                }
            },
            (0xE1, [value]) => match std::mem::take(&mut self.waiting) {
                Waiting::IfsResponse { ifsc, then } if ifsc == *value => {
                    self.ifsc = ifsc;
                    self.emit(core, then.0, then.1)
                }
                other => {
                    self.waiting = other;
                    self.r_block(core, r_error::OTHER)
                }
            },
            _ => self.r_block(core, r_error::OTHER),
        }
    }

    fn resend(&mut self, core: &mut Core) -> Option<Vec<u8>> {
        match self.last_sent.clone() {
            Some(block) => Some(self.count_and_corrupt(block, core)),
            None => self.r_block(core, r_error::OTHER),
        }
    }

    /// R-block acknowledging nothing new: N(R) = the N(S) we expect.
    fn r_block(&mut self, core: &mut Core, error: u8) -> Option<Vec<u8>> {
        let pcb = 0x80 | (self.expected_ns << 4) | error;
        self.emit(core, pcb, Vec::new())
    }

    fn emit(&mut self, core: &mut Core, pcb: u8, inf: Vec<u8>) -> Option<Vec<u8>> {
        let mut block = Vec::with_capacity(inf.len() + 5);
        block.extend([self.nad, pcb, inf.len() as u8]);
        block.extend_from_slice(&inf);
        match core.config.edc {
            EdcKind::Lrc => block.push(lrc(&block)),
            EdcKind::Crc => block.extend(crc_bytes(&block)),
        }
        self.last_sent = Some(block.clone());
        Some(self.count_and_corrupt(block, core))
    }

    fn count_and_corrupt(&mut self, mut block: Vec<u8>, core: &Core) -> Vec<u8> {
        self.sent_blocks += 1;
        if core.config.faults.corrupt_edc_block == Some(self.sent_blocks) {
            if let Some(last) = block.last_mut() {
                *last ^= 0xFF;
            }
        }
        block
    }
}
