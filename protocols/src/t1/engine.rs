//! The half-duplex T=1 block engine (ISO/IEC 7816-3 §11.6).
//!
//! [`T1`] holds what lives across APDUs: the send sequence numbers of both
//! sides, IFSC and IFSD, the EDC and NAD. [`T1::exchange`] starts one APDU:
//! the returned [`Exchange`] borrows the command and the response buffer and
//! is driven by the caller, who alternates between sending what
//! [`Exchange::poll_transmit`] writes and feeding back the card's answer
//! ([`Exchange::handle_block`]) or its absence ([`Exchange::handle_timeout`]).
//! Nothing is allocated; the engine never waits and never reads a clock.
//!
//! Error recovery follows §11.6.3: an invalid block or a timeout is answered
//! with an R-block (or, while an S request of ours is outstanding, by
//! resending that request); after three attempts at a block the engine sends
//! S(RESYNCH request), at most three times in one exchange, then gives up
//! with [`T1Error::CardNotResponding`].
//!
//! # Bounds
//!
//! Whatever the card sends, an exchange ends (completes, aborts or fails)
//! after a bounded number of rounds (calls to [`Exchange::handle_block`],
//! [`Exchange::handle_timeout`] or [`Exchange::handle_parity_error`]),
//! without a clock. Progress is a chunk of the command acknowledged or at
//! least one response byte received; anything else is counted:
//!
//! | no-progress round | counter | cap | then |
//! |---|---|---|---|
//! | invalid block, timeout, R-block asking for a repeat, unexpected block | attempts at the block, reset by progress | [`MAX_ATTEMPTS`] (3) | S(RESYNCH request) |
//! | S(RESYNCH request) | per exchange, never reset | [`MAX_RESYNCH`] (3) | [`T1Error::CardNotResponding`] |
//! | S(WTX) or S(IFS) request of the card | in a row, reset by progress | [`T1Config::max_card_requests_in_a_row`] (1000) | [`T1Error::TooManyCardRequests`] |
//! | S(WTX) or S(IFS) request of the card | per exchange, never reset | [`T1Config::max_card_requests_per_exchange`] (10 000) | [`T1Error::TooManyCardRequestsInExchange`] |
//! | chained I-block without INF | per exchange, never reset | [`MAX_EMPTY_BLOCKS`] (8) | [`T1Error::TooManyEmptyBlocks`] |
//!
//! "Per exchange" counters survive the restart of the APDU after a
//! RESYNCH. Progress itself is bounded by the buffers: a response chain
//! takes at most `M + MAX_EMPTY_BLOCKS + 1` I-blocks for a response buffer
//! of `M` bytes (more data is [`T1Error::ResponseBufferTooSmall`]), a
//! command of `N` bytes at most `max(N, 1)` I-blocks (IFSC ≥ 1), and the
//! APDU is run at most `MAX_RESYNCH + 1` times. Each progress round,
//! empty block, S(RESYNCH request) and answer to it is followed by at most
//! `MAX_ATTEMPTS` failed attempts, so one exchange takes at most
//!
//! ```text
//! (A + 1) × ((S + 1) × (N + M) + E + 2S + 1) + W + 3   rounds,
//! A = MAX_ATTEMPTS, S = MAX_RESYNCH, E = MAX_EMPTY_BLOCKS,
//! W = max_card_requests_per_exchange
//! ```
//!
//! (16 (N + M) + 10 063 with the defaults). The count caps are generous:
//! how long a card may take on the wall clock (each WTX stretches one
//! waiting time by up to 255) is the driver's budget for the command, not
//! the engine's.

use super::block::{Block, BlockError, BlockKind, BlockRepr, RError, SKind, MAX_INF_LEN};
use crate::edc::Edc;

/// IFSC and IFSD before any S(IFS) exchange and after RESYNCH (§11.4.2).
pub const DEFAULT_IFS: u8 = 32;
/// Attempts at one block before resynchronisation (§11.6.3).
pub const MAX_ATTEMPTS: u8 = 3;
/// S(RESYNCH request) attempts in one exchange before giving up.
pub const MAX_RESYNCH: u8 = 3;
/// Chained I-blocks without INF the card may send in one exchange. Such a
/// block carries nothing, so it is not progress; a card has no reason to
/// send one, but a few are tolerated.
pub const MAX_EMPTY_BLOCKS: u16 = 8;

/// Parameters of a T=1 session, from the ATR and the driver's choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct T1Config {
    /// IFSC from the card's TA for T=1 (default 32). Values outside
    /// 1..=254 are reserved and fall back to 32.
    pub ifsc: u8,
    /// IFSD the host announces with S(IFS request) (see
    /// [`T1::ifsd_request`] and [`T1::negotiate_ifsd`]).
    pub ifsd: u8,
    /// Error detection code from the card's TC for T=1.
    pub edc: Edc,
    /// NAD sent in every block (0 unless node addressing is used; SAD and
    /// DAD nibbles are sent as given).
    pub nad: u8,
    /// How many S requests (WTX, IFS) the card may send in a row without
    /// the exchange making progress before the engine gives up. A bound so
    /// that a card stuck sending WTX cannot hold the driver forever.
    /// Default 1000.
    pub max_card_requests_in_a_row: u16,
    /// How many S requests (WTX, IFS) the card may send in one exchange in
    /// all, whatever comes between them, so that progress of a byte at a
    /// time cannot restart the count above. Default 10 000: ten times the
    /// in-a-row default, so a card may spend the whole in-a-row allowance
    /// on computing (on-card key generation is one such phase) ten times in
    /// one APDU, or ask for time before each of the 258 blocks of a 64 KiB
    /// chain dozens of times. How long that may take on the wall clock is
    /// the driver's budget, not this count: the count only has to be finite
    /// and generous.
    pub max_card_requests_per_exchange: u32,
}

impl Default for T1Config {
    fn default() -> Self {
        T1Config {
            ifsc: DEFAULT_IFS,
            ifsd: 254,
            edc: Edc::Lrc,
            nad: 0,
            max_card_requests_in_a_row: 1000,
            max_card_requests_per_exchange: 10_000,
        }
    }
}

/// Why an exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum T1Error {
    /// No valid answer after three attempts at a block and three
    /// resynchronisations: the card must be reset or deactivated.
    CardNotResponding,
    /// The card sent more response bytes than the response buffer holds.
    ResponseBufferTooSmall {
        /// Size of the caller's response buffer.
        capacity: usize,
        /// Bytes received so far, including the block that did not fit;
        /// more may have followed.
        needed_at_least: usize,
    },
    /// The caller's transmit buffer cannot hold the next block.
    TransmitBufferTooSmall {
        /// Bytes the block needs.
        needed: usize,
        /// Bytes available.
        capacity: usize,
    },
    /// The card sent more consecutive S requests (WTX, IFS) than
    /// [`T1Config::max_card_requests_in_a_row`].
    TooManyCardRequests(u16),
    /// The card sent more S requests (WTX, IFS) in one exchange than
    /// [`T1Config::max_card_requests_per_exchange`], progress between them
    /// or not.
    TooManyCardRequestsInExchange(u32),
    /// The card sent more chained I-blocks without INF in one exchange
    /// than [`MAX_EMPTY_BLOCKS`].
    TooManyEmptyBlocks(u16),
    /// The exchange already completed or failed.
    Finished,
    /// A single-block helper received bytes that are not a valid block.
    InvalidBlock(BlockError),
    /// A single-block helper received a valid block of the wrong kind or
    /// sequence number.
    UnexpectedBlock(BlockKind),
    /// [`T1::wrap_single`] was given more bytes than one block may carry.
    TooLongForOneBlock {
        /// Length of the APDU.
        len: usize,
        /// Current IFSC.
        ifsc: u8,
    },
}

impl core::fmt::Display for T1Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            T1Error::CardNotResponding => f.write_str(
                "card not responding: T=1 retransmissions and resynchronisation failed",
            ),
            T1Error::ResponseBufferTooSmall {
                capacity,
                needed_at_least,
            } => write!(
                f,
                "response buffer of {capacity} bytes too small: card sent at least {needed_at_least}"
            ),
            T1Error::TransmitBufferTooSmall { needed, capacity } => write!(
                f,
                "transmit buffer of {capacity} bytes too small for a {needed}-byte block"
            ),
            T1Error::TooManyCardRequests(n) => {
                write!(f, "card sent {n} S requests in a row without progress")
            }
            T1Error::TooManyCardRequestsInExchange(n) => {
                write!(f, "card sent {n} S requests (WTX, IFS) in one exchange")
            }
            T1Error::TooManyEmptyBlocks(n) => {
                write!(f, "card sent {n} chained I-blocks without data in one exchange")
            }
            T1Error::Finished => f.write_str("T=1 exchange already finished"),
            T1Error::InvalidBlock(e) => write!(f, "invalid T=1 block: {e:?}"),
            T1Error::UnexpectedBlock(k) => write!(f, "unexpected T=1 block: {k:?}"),
            T1Error::TooLongForOneBlock { len, ifsc } => {
                write!(f, "{len} bytes do not fit one block (IFSC {ifsc})")
            }
        }
    }
}

/// What the caller does after feeding the engine a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Send the block [`Exchange::poll_transmit`] writes, then wait for the
    /// card's next block (BWT).
    Transmit,
    /// The card asked for more time: send the S(WTX response) from
    /// [`Exchange::poll_transmit`], then wait BWT × this multiplier for the
    /// next block only.
    WaitingTimeExtension(u8),
    /// The response is complete: its length in the response buffer.
    Complete(usize),
    /// The card aborted the chain (S(ABORT request)): send the
    /// S(ABORT response) from [`Exchange::poll_transmit`]; the APDU failed
    /// and the exchange is over.
    Aborted,
}

/// The persistent T=1 state of one card session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct T1 {
    config: T1Config,
    /// N(S) of the next (or unacknowledged) I-block we send.
    ns: u8,
    /// N(S) we expect in the card's next I-block.
    nr: u8,
    ifsc: u8,
    ifsd: u8,
}

fn valid_ifs(value: u8) -> bool {
    (1..=MAX_INF_LEN as u8).contains(&value)
}

impl T1 {
    /// A fresh session, as after the ATR: both sequence numbers 0, IFSC
    /// from the config, IFSD 32 until an S(IFS) exchange changes it.
    pub fn new(config: T1Config) -> T1 {
        let mut t1 = T1 {
            config,
            ns: 0,
            nr: 0,
            ifsc: 0,
            ifsd: 0,
        };
        t1.reset_to_initial();
        t1
    }

    /// Back to the initial values, as RESYNCH requires (§11.6.2 rule 6).
    fn reset_to_initial(&mut self) {
        self.ns = 0;
        self.nr = 0;
        self.ifsc = if valid_ifs(self.config.ifsc) {
            self.config.ifsc
        } else {
            DEFAULT_IFS
        };
        self.ifsd = DEFAULT_IFS;
    }

    /// The configuration this session started with.
    pub fn config(&self) -> &T1Config {
        &self.config
    }

    /// Current IFSC: the largest INF the card accepts.
    pub fn ifsc(&self) -> u8 {
        self.ifsc
    }

    /// Current IFSD as the card knows it (32 until S(IFS) succeeds). The
    /// engine accepts INF fields up to 254 bytes whatever this says.
    pub fn ifsd(&self) -> u8 {
        self.ifsd
    }

    /// N(S) of the next I-block the host sends.
    pub fn send_sequence(&self) -> u8 {
        self.ns
    }

    /// N(S) the host expects in the card's next I-block.
    pub fn receive_sequence(&self) -> u8 {
        self.nr
    }

    /// Starts sending `command` (an APDU of any length: it is chained in
    /// IFSC-sized I-blocks); the response goes into `response`.
    pub fn exchange<'a>(&'a mut self, command: &'a [u8], response: &'a mut [u8]) -> Exchange<'a> {
        Exchange::new(self, Operation::Apdu, command, response)
    }

    /// Announces [`T1Config::ifsd`] to the card with S(IFS request), with
    /// the same error recovery as an APDU. Completes with `Complete(0)`.
    /// Readers that negotiate IFSD themselves do not need it.
    pub fn negotiate_ifsd(&mut self) -> Exchange<'_> {
        Exchange::new(self, Operation::Ifs, &[], &mut [])
    }

    /// Resynchronises with the card (S(RESYNCH request), up to three
    /// times). Completes with `Complete(0)`.
    pub fn resynch(&mut self) -> Exchange<'_> {
        Exchange::new(self, Operation::Resynch, &[], &mut [])
    }

    /// Writes S(IFS request) announcing [`T1Config::ifsd`] into `buf`, for
    /// callers that run this one exchange themselves. Feed the card's answer
    /// to [`T1::accept_ifs_response`].
    pub fn ifsd_request(&self, buf: &mut [u8]) -> Result<usize, T1Error> {
        self.emit(
            &BlockRepr::S {
                kind: SKind::Ifs,
                response: false,
                param: self.config.ifsd,
            },
            buf,
        )
    }

    /// Accepts the card's S(IFS response) to [`T1::ifsd_request`].
    pub fn accept_ifs_response(&mut self, bytes: &[u8]) -> Result<(), T1Error> {
        let block = Block::new_checked(bytes, self.config.edc).map_err(T1Error::InvalidBlock)?;
        match BlockRepr::parse(&block) {
            BlockRepr::S {
                kind: SKind::Ifs,
                response: true,
                param,
            } if param == self.config.ifsd => {
                self.ifsd = param;
                Ok(())
            }
            _ => Err(T1Error::UnexpectedBlock(block.kind())),
        }
    }

    /// Wraps one APDU in a single I-block (no chaining), for the PIN-pad
    /// path where the reader sends the block itself. The sequence numbers
    /// advance only in [`T1::unwrap_single`].
    pub fn wrap_single(&self, apdu: &[u8], buf: &mut [u8]) -> Result<usize, T1Error> {
        if apdu.len() > usize::from(self.ifsc) {
            return Err(T1Error::TooLongForOneBlock {
                len: apdu.len(),
                ifsc: self.ifsc,
            });
        }
        self.emit(
            &BlockRepr::I {
                ns: self.ns,
                more: false,
                inf: apdu,
            },
            buf,
        )
    }

    /// Unwraps the card's single, unchained I-block answer to
    /// [`T1::wrap_single`] and advances both sequence numbers.
    pub fn unwrap_single<'b>(&mut self, bytes: &'b [u8]) -> Result<&'b [u8], T1Error> {
        let block = Block::new_checked(bytes, self.config.edc).map_err(T1Error::InvalidBlock)?;
        match block.kind() {
            BlockKind::I { ns, more: false } if ns == self.nr => {
                self.ns ^= 1;
                self.nr ^= 1;
                Ok(block.inf())
            }
            kind => Err(T1Error::UnexpectedBlock(kind)),
        }
    }

    fn emit(&self, repr: &BlockRepr<'_>, buf: &mut [u8]) -> Result<usize, T1Error> {
        repr.emit(self.config.nad, self.config.edc, buf)
            .map_err(|e| match e {
                BlockError::BufferTooSmall { needed, capacity } => {
                    T1Error::TransmitBufferTooSmall { needed, capacity }
                }
                other => T1Error::InvalidBlock(other),
            })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    Apdu,
    Ifs,
    Resynch,
}

/// The block to send next, or the one sent last (kept for retransmission).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    /// The current chunk of the command: `cmd[chunk_start..][..chunk_len]`.
    I,
    R {
        nr: u8,
        error: RError,
    },
    S {
        kind: SKind,
        response: bool,
        param: u8,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Our current I-block is not acknowledged yet.
    Sending,
    /// The card acknowledged our last I-block and is sending its chain.
    Receiving,
    /// Completed or failed.
    Done,
}

/// One APDU (or IFS/RESYNCH) exchange in progress. Drive it until
/// [`Progress::Complete`], [`Progress::Aborted`] or an error:
///
/// ```text
/// loop {
///     let n = x.poll_transmit(&mut block)?;   // send block[..n]
///     match receive(BWT × wtx) {
///         Ok(bytes) => match x.handle_block(bytes)? {
///             Progress::Transmit => wtx = 1,
///             Progress::WaitingTimeExtension(m) => wtx = m,
///             Progress::Complete(len) => break len,
///             Progress::Aborted => { send(x.poll_transmit(..)); fail }
///         },
///         Err(Timeout) => x.handle_timeout()?,
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Exchange<'a> {
    t1: &'a mut T1,
    op: Operation,
    cmd: &'a [u8],
    resp: &'a mut [u8],
    resp_len: usize,
    chunk_start: usize,
    chunk_len: usize,
    phase: Phase,
    out: Out,
    pending: bool,
    /// Failed attempts at the current block; reset by progress.
    errors: u8,
    /// S(RESYNCH request)s sent in this exchange; never reset.
    resynchs: u8,
    /// Card S requests since the last progress.
    card_requests: u16,
    /// Card S requests in this exchange; never reset.
    card_requests_total: u32,
    /// Chained I-blocks without INF in this exchange; never reset.
    empty_blocks: u16,
}

impl<'a> Exchange<'a> {
    fn new(t1: &'a mut T1, op: Operation, cmd: &'a [u8], resp: &'a mut [u8]) -> Self {
        let mut x = Exchange {
            t1,
            op,
            cmd,
            resp,
            resp_len: 0,
            chunk_start: 0,
            chunk_len: 0,
            phase: Phase::Sending,
            out: Out::I,
            pending: true,
            errors: 0,
            resynchs: 0,
            card_requests: 0,
            card_requests_total: 0,
            empty_blocks: 0,
        };
        x.start();
        x
    }

    /// (Re)starts the operation from its first block. The per-exchange
    /// counters (resynchronisations, card requests, empty blocks) carry
    /// over a restart after RESYNCH.
    fn start(&mut self) {
        self.resp_len = 0;
        self.chunk_start = 0;
        self.phase = Phase::Sending;
        self.pending = true;
        self.out = match self.op {
            Operation::Apdu => {
                self.chunk_len = self.next_chunk_len();
                Out::I
            }
            Operation::Ifs => Out::S {
                kind: SKind::Ifs,
                response: false,
                param: self.t1.config.ifsd,
            },
            Operation::Resynch => Out::S {
                kind: SKind::Resynch,
                response: false,
                param: 0,
            },
        };
        if self.op == Operation::Resynch {
            self.resynchs = 1;
        }
    }

    fn next_chunk_len(&self) -> usize {
        (self.cmd.len() - self.chunk_start).min(usize::from(self.t1.ifsc))
    }

    fn chunk_more(&self) -> bool {
        self.chunk_start + self.chunk_len < self.cmd.len()
    }

    /// Bytes of the response received so far.
    pub fn received(&self) -> usize {
        self.resp_len
    }

    /// Whether the exchange completed or failed.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Done && !self.pending
    }

    /// Writes the next block to send into `buf` and returns its length,
    /// or 0 when there is nothing to send. A buffer of
    /// [`super::block::MAX_BLOCK_LEN`] bytes always suffices.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Result<usize, T1Error> {
        if !self.pending {
            return Ok(0);
        }
        let repr = match self.out {
            Out::I => BlockRepr::I {
                ns: self.t1.ns,
                more: self.chunk_more(),
                inf: &self.cmd[self.chunk_start..self.chunk_start + self.chunk_len],
            },
            Out::R { nr, error } => BlockRepr::R { nr, error },
            Out::S {
                kind,
                response,
                param,
            } => BlockRepr::S {
                kind,
                response,
                param,
            },
        };
        let n = self.t1.emit(&repr, buf)?;
        self.pending = false;
        Ok(n)
    }

    /// Feeds a block received from the card (the bytes of one block,
    /// prologue to epilogue).
    pub fn handle_block(&mut self, bytes: &[u8]) -> Result<Progress, T1Error> {
        if self.phase == Phase::Done {
            return Err(T1Error::Finished);
        }
        let block = match Block::new_checked(bytes, self.t1.config.edc) {
            Ok(block) => block,
            Err(e) => return self.recover(e.r_error()),
        };
        let repr = BlockRepr::parse(&block);
        if let Out::S {
            kind,
            response: false,
            param,
        } = self.out
        {
            // Rule 7.3: only the matching response ends our request.
            return match repr {
                BlockRepr::S {
                    kind: k,
                    response: true,
                    param: p,
                } if k == kind && (!kind.has_param() || p == param) => {
                    self.on_response_to_our_request(kind, param)
                }
                _ => self.recover(RError::Other),
            };
        }
        match repr {
            BlockRepr::I { ns, more, inf } => self.on_i_block(ns, more, inf),
            BlockRepr::R { nr, .. } => self.on_r_block(nr),
            BlockRepr::S {
                kind,
                response: false,
                param,
            } => self.on_card_request(kind, param),
            BlockRepr::S { response: true, .. } => self.recover(RError::Other),
        }
    }

    /// Reports that no block arrived within the waiting time (BWT, or
    /// BWT × the WTX multiplier, or CWT between characters): handled as a
    /// lost block.
    pub fn handle_timeout(&mut self) -> Result<Progress, T1Error> {
        if self.phase == Phase::Done {
            return Err(T1Error::Finished);
        }
        self.recover(RError::Other)
    }

    /// Reports that the reader saw a parity error in the card's block:
    /// answered like an EDC error (R-block error code 1).
    pub fn handle_parity_error(&mut self) -> Result<Progress, T1Error> {
        if self.phase == Phase::Done {
            return Err(T1Error::Finished);
        }
        self.recover(RError::EdcOrParity)
    }

    fn transmit(&mut self, out: Out) -> Result<Progress, T1Error> {
        self.out = out;
        self.pending = true;
        Ok(Progress::Transmit)
    }

    fn finish(&mut self) {
        self.phase = Phase::Done;
        self.pending = false;
    }

    /// An invalid block, a timeout, or a valid block that makes no sense
    /// here (rules 7.1–7.3): counts one failed attempt.
    fn recover(&mut self, error: RError) -> Result<Progress, T1Error> {
        if let Out::S {
            kind: SKind::Resynch,
            response: false,
            ..
        } = self.out
        {
            return self.send_resynch();
        }
        self.errors += 1;
        if self.errors >= MAX_ATTEMPTS {
            return self.send_resynch();
        }
        match self.out {
            Out::S {
                response: false, ..
            } => {
                self.pending = true;
                Ok(Progress::Transmit)
            }
            _ => self.transmit(Out::R {
                nr: self.t1.nr,
                error,
            }),
        }
    }

    /// Counts a retransmission the card asked for; resynchronises when
    /// the block has had its three attempts.
    fn retransmit(&mut self, out: Out) -> Result<Progress, T1Error> {
        self.errors += 1;
        if self.errors >= MAX_ATTEMPTS {
            return self.send_resynch();
        }
        self.transmit(out)
    }

    fn send_resynch(&mut self) -> Result<Progress, T1Error> {
        if self.resynchs >= MAX_RESYNCH {
            self.finish();
            return Err(T1Error::CardNotResponding);
        }
        self.resynchs += 1;
        self.errors = 0;
        self.transmit(Out::S {
            kind: SKind::Resynch,
            response: false,
            param: 0,
        })
    }

    fn on_response_to_our_request(&mut self, kind: SKind, param: u8) -> Result<Progress, T1Error> {
        self.errors = 0;
        match kind {
            SKind::Resynch => {
                self.t1.reset_to_initial();
                if self.op == Operation::Resynch {
                    self.finish();
                    return Ok(Progress::Complete(0));
                }
                // The card forgot the interrupted APDU: send it again.
                let resynchs = self.resynchs;
                self.start();
                self.resynchs = resynchs;
                Ok(Progress::Transmit)
            }
            SKind::Ifs => {
                self.t1.ifsd = param;
                self.finish();
                Ok(Progress::Complete(0))
            }
            // We never request ABORT or WTX.
            SKind::Abort | SKind::Wtx => self.recover(RError::Other),
        }
    }

    fn on_i_block(&mut self, ns: u8, more: bool, inf: &[u8]) -> Result<Progress, T1Error> {
        let acknowledges_us = self.phase == Phase::Sending && !self.chunk_more();
        if self.op != Operation::Apdu
            || ns != self.t1.nr
            || !(acknowledges_us || self.phase == Phase::Receiving)
        {
            return self.recover(RError::Other);
        }
        // A chained block without data moves nothing: it is counted, and it
        // does not restart the count of card requests in a row.
        let empty_link = more && inf.is_empty();
        if empty_link {
            self.empty_blocks += 1;
            if self.empty_blocks > MAX_EMPTY_BLOCKS {
                self.finish();
                return Err(T1Error::TooManyEmptyBlocks(self.empty_blocks));
            }
        }
        if acknowledges_us {
            self.t1.ns ^= 1;
            self.phase = Phase::Receiving;
        }
        let end = self.resp_len + inf.len();
        let Some(dest) = self.resp.get_mut(self.resp_len..end) else {
            self.finish();
            return Err(T1Error::ResponseBufferTooSmall {
                capacity: self.resp.len(),
                needed_at_least: end,
            });
        };
        dest.copy_from_slice(inf);
        self.resp_len = end;
        self.t1.nr ^= 1;
        // The block arrived: the attempts at it are over.
        self.errors = 0;
        if !empty_link {
            self.card_requests = 0;
        }
        if more {
            // Rule 5: acknowledge a chained block with R(N(S) expected next).
            self.transmit(Out::R {
                nr: self.t1.nr,
                error: RError::None,
            })
        } else {
            self.finish();
            Ok(Progress::Complete(self.resp_len))
        }
    }

    fn on_r_block(&mut self, nr: u8) -> Result<Progress, T1Error> {
        if self.phase == Phase::Sending && self.op == Operation::Apdu {
            if nr == self.t1.ns {
                // The card asks for our current I-block again. Rechunk:
                // the card may have lowered IFSC since it was first sent.
                self.chunk_len = self.next_chunk_len();
                return self.retransmit(Out::I);
            }
            if self.chunk_more() {
                // Rule 5: the chained block is acknowledged.
                self.t1.ns ^= 1;
                self.chunk_start += self.chunk_len;
                self.chunk_len = self.next_chunk_len();
                self.errors = 0;
                self.card_requests = 0;
                return self.transmit(Out::I);
            }
        }
        // The card did not get our last R- or S-block: send it again.
        // After our last I-block it should have answered with an I-block:
        // ask it to repeat whatever it sent.
        match self.out {
            Out::I => self.recover(RError::Other),
            out => self.retransmit(out),
        }
    }

    fn on_card_request(&mut self, kind: SKind, param: u8) -> Result<Progress, T1Error> {
        match kind {
            SKind::Wtx | SKind::Ifs => {
                if kind == SKind::Ifs && !valid_ifs(param) {
                    return self.recover(RError::Other);
                }
                // Checked before counting, so that a cap of u16::MAX or
                // u32::MAX still holds.
                let config = &self.t1.config;
                if self.card_requests >= config.max_card_requests_in_a_row {
                    self.finish();
                    return Err(T1Error::TooManyCardRequests(
                        self.card_requests.saturating_add(1),
                    ));
                }
                if self.card_requests_total >= config.max_card_requests_per_exchange {
                    self.finish();
                    return Err(T1Error::TooManyCardRequestsInExchange(
                        self.card_requests_total.saturating_add(1),
                    ));
                }
                self.card_requests += 1;
                self.card_requests_total += 1;
                self.transmit(Out::S {
                    kind,
                    response: true,
                    param,
                })?;
                if kind == SKind::Wtx {
                    Ok(Progress::WaitingTimeExtension(param))
                } else {
                    // Rule 4: the new IFSC holds from the next block on.
                    self.t1.ifsc = param;
                    Ok(Progress::Transmit)
                }
            }
            SKind::Abort => {
                self.out = Out::S {
                    kind: SKind::Abort,
                    response: true,
                    param: 0,
                };
                self.phase = Phase::Done;
                self.pending = true;
                Ok(Progress::Aborted)
            }
            // Rule 6: only the interface device may request RESYNCH.
            SKind::Resynch => self.recover(RError::Other),
        }
    }
}
