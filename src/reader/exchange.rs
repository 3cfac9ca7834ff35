//! One APDU at each CCID exchange level (CCID §6.1.4, tables 6.1-3/6.1-4):
//! TPDU (T=0 through the `t0` helper, T=1 through the block engine, one
//! block per XfrBlock), short APDU, extended APDU with CCID chaining both
//! ways, and character level (T=0 procedure bytes, T=1 prologue then body).

use crate::ccid::command::Command;
use crate::ccid::descriptor::ExchangeLevel;
use crate::ccid::error::FrameBytes;
use crate::ccid::status::SlotError;
use crate::ccid::{CcidError, HEADER_LEN};
use crate::protocols::edc::Edc;
use crate::protocols::t0::{
    ApduCase, CommandApdu, Direction, ProcedureEvent, ProcedureMachine, T0Apdu, T0Options, T0Step,
    MAX_TPDU_LEN,
};
use crate::protocols::t1::{Exchange, Progress, T1Error, MAX_BLOCK_LEN, T1};

use std::time::Duration;

use super::error::ReaderError;
use super::link::{Answer, Link, SlotLink, Wait};
use super::slot::{exchange_wait, SlotContext, SlotState};

/// NULL procedure bytes accepted in one T=0 TPDU at character level: each
/// restarts WWT, so this bounds the wait to this many WWTs.
const MAX_NULLS: u32 = 1000;

/// wLevelParameter of an empty XfrBlock asking for the next response part.
const CONTINUE_RESPONSE: u16 = 0x10;

/// Response parts of one answer that announce more data but carry none:
/// a reader that keeps doing so is making no progress.
const MAX_EMPTY_PARTS: u32 = 16;

/// The slot's buffers and pipe, for one exchange.
pub(crate) struct Io<'a> {
    pub link: &'a Link,
    pub slot: &'a SlotLink,
    pub tx: &'a mut [u8],
    pub rx: &'a mut [u8],
}

impl Io<'_> {
    /// One XfrBlock; the answer's payload is then [`Io::payload`]. "No
    /// card" in the answer is [`ReaderError::NoCard`] at every level.
    fn xfr(
        &mut self,
        data: &[u8],
        level_parameter: u16,
        bwi: u8,
        wait: Wait,
    ) -> Result<Answer, ReaderError> {
        super::slot::card_answer(self.link.transact(
            self.slot,
            self.tx,
            self.rx,
            Command::XfrBlock {
                bwi,
                level_parameter,
                data,
            },
            wait,
        ))
    }

    fn payload(&self, answer: &Answer) -> &[u8] {
        &self.rx[HEADER_LEN..HEADER_LEN + answer.payload_len]
    }

    fn protocol_error(&self, answer: &Answer, reason: &'static str) -> ReaderError {
        ReaderError::Protocol(CcidError::BadPayload {
            reason,
            frame: FrameBytes::new(&self.rx[..HEADER_LEN + answer.payload_len]),
        })
    }
}

impl SlotContext<'_> {
    /// S(IFS request) announcing dwMaxIFSD, through the T=1 engine.
    pub(super) fn negotiate_ifsd(&mut self, level: ExchangeLevel) -> Result<(), ReaderError> {
        let shared = self.shared;
        let SlotState { tx, rx, card, .. } = &mut *self.st;
        let card = card.as_mut().ok_or(ReaderError::NotPowered)?;
        let wait = exchange_wait(shared, card);
        let t1 = card.t1.as_mut().ok_or(ReaderError::NotPowered)?;
        let mut io = Io {
            link: &shared.link,
            slot: &shared.link.slots[self.index],
            tx,
            rx,
        };
        io.announce_ifsd(t1, level, wait)
    }

    /// One APDU at the reader's exchange level, the card powered and its
    /// protocol selected.
    pub(crate) fn exchange(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, ReaderError> {
        let (shared, index) = (self.shared, self.index);
        let SlotState {
            tx,
            rx,
            card,
            options,
            ..
        } = &mut *self.st;
        let card = card.as_mut().ok_or(ReaderError::NotPowered)?;
        let wait = exchange_wait(shared, card);
        let level = shared.link.descriptor.exchange_level();
        // Every frame of a PIN-carrying exchange is masked in the logs.
        let _pin = shared.link.slots[index].begin_exchange(command);
        let mut io = Io {
            link: &shared.link,
            slot: &shared.link.slots[index],
            tx,
            rx,
        };
        let t0_options = T0Options {
            auto_get_response: options.auto_get_response,
            auto_resend_6c: options.auto_resend_6c,
        };
        match (level, card.protocol) {
            (ExchangeLevel::ShortApdu, _) => io.short_apdu(command, response, wait),
            (ExchangeLevel::ExtendedApdu, _) => io.extended_apdu(command, response, wait),
            (ExchangeLevel::Tpdu | ExchangeLevel::Character, Some(1)) => {
                let t1 = card.t1.as_mut().ok_or(ReaderError::NotPowered)?;
                if card.t1_resync {
                    io.resynchronise(t1, level, wait)?;
                    card.t1_resync = false;
                }
                let edc = t1.config().edc;
                let mut x = t1.exchange(command, response);
                let result = io.run_t1(&mut x, level, edc, wait);
                // Anything but a completed exchange may leave the card
                // mid-chain (a cancel or timeout between two blocks) or with
                // other sequence numbers than the engine's.
                card.t1_resync = !matches!(result, Ok(Progress::Complete(_)));
                match result? {
                    Progress::Complete(n) => Ok(n),
                    _ => Err(ReaderError::T1(T1Error::Finished)),
                }
            }
            (ExchangeLevel::Tpdu | ExchangeLevel::Character, _) => {
                io.t0(command, response, t0_options, level, wait)
            }
        }
    }

    /// Runs the S(RESYNCH) a T=1 exchange cut short left pending on the
    /// slot, if any (for callers that drive T=1 blocks themselves: the PIN
    /// pad).
    pub(crate) fn resync_if_pending(&mut self) -> Result<(), ReaderError> {
        let (shared, index) = (self.shared, self.index);
        let SlotState { tx, rx, card, .. } = &mut *self.st;
        let Some(card) = card.as_mut().filter(|c| c.t1_resync) else {
            return Ok(());
        };
        let wait = exchange_wait(shared, card);
        let Some(t1) = card.t1.as_mut() else {
            return Ok(());
        };
        let mut io = Io {
            link: &shared.link,
            slot: &shared.link.slots[index],
            tx,
            rx,
        };
        let level = shared.link.descriptor.exchange_level();
        io.resynchronise(t1, level, wait)?;
        card.t1_resync = false;
        Ok(())
    }
}

impl Io<'_> {
    /// Drives a T=1 exchange to completion; `Progress::Complete` on success.
    pub(crate) fn run_t1(
        &mut self,
        x: &mut Exchange<'_>,
        level: ExchangeLevel,
        edc: Edc,
        wait: Wait,
    ) -> Result<Progress, ReaderError> {
        let mut block = [0u8; MAX_BLOCK_LEN];
        let mut received = [0u8; MAX_BLOCK_LEN];
        let mut wtx = 1u8;
        loop {
            let n = x.poll_transmit(&mut block)?;
            if n == 0 {
                return Err(ReaderError::T1(T1Error::Finished));
            }
            let result = if level == ExchangeLevel::Character {
                self.t1_block_by_characters(&block[..n], edc, wtx, wait, &mut received)
            } else {
                // bBWI extends the reader's own block waiting time by the WTX
                // multiplier the card asked for.
                let bwi = if wtx > 1 { wtx } else { 0 };
                self.xfr(&block[..n], 0, bwi, wait_for_wtx(wait, wtx))
                    .and_then(|answer| {
                        let p = self.payload(&answer);
                        if p.len() > received.len() {
                            return Err(
                                self.protocol_error(&answer, "T=1 block longer than 259 bytes")
                            );
                        }
                        received[..p.len()].copy_from_slice(p);
                        Ok(p.len())
                    })
            };
            let progress = match result {
                Ok(len) => x.handle_block(&received[..len])?,
                Err(ReaderError::CommandFailed {
                    error: SlotError::IccMute,
                    ..
                }) => x.handle_timeout()?,
                Err(ReaderError::CommandFailed {
                    error: SlotError::XfrParityError,
                    ..
                }) => x.handle_parity_error()?,
                Err(e) => return Err(e),
            };
            match progress {
                Progress::Transmit => wtx = 1,
                Progress::WaitingTimeExtension(m) => wtx = m.max(1),
                Progress::Complete(_) => return Ok(progress),
                Progress::Aborted => {
                    let n = x.poll_transmit(&mut block)?;
                    if n > 0 {
                        // The S(ABORT response) ends the chain; the card's
                        // answer to it, if any, changes nothing.
                        let _ = self.xfr(&block[..n], 0, 0, wait);
                    }
                    return Err(ReaderError::CardAborted);
                }
            }
        }
    }

    /// S(RESYNCH) (ISO/IEC 7816-3 §11.6.3): card and engine back to N(S) 0,
    /// N(R) 0 with no chain in progress. It also resets the card's IFSD to 32,
    /// so a host that announced IFSD announces it again.
    fn resynchronise(
        &mut self,
        t1: &mut T1,
        level: ExchangeLevel,
        wait: Wait,
    ) -> Result<(), ReaderError> {
        tracing::info!("resynchronising T=1 after an exchange cut short");
        let edc = t1.config().edc;
        match self.run_t1(&mut t1.resynch(), level, edc, wait)? {
            Progress::Complete(_) => {}
            _ => return Err(ReaderError::CardAborted),
        }
        if super::slot::host_negotiates_ifsd(&self.link.descriptor) {
            if let Err(e) = self.announce_ifsd(t1, level, wait) {
                // As at protocol selection: IFSD 32 still works.
                tracing::warn!(error = %e, "IFSD negotiation after RESYNCH failed; keeping 32");
                if matches!(e, ReaderError::DeviceGone | ReaderError::Cancelled) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// S(IFS request) announcing the engine's IFSD.
    pub(crate) fn announce_ifsd(
        &mut self,
        t1: &mut T1,
        level: ExchangeLevel,
        wait: Wait,
    ) -> Result<(), ReaderError> {
        let edc = t1.config().edc;
        match self.run_t1(&mut t1.negotiate_ifsd(), level, edc, wait)? {
            Progress::Complete(_) => Ok(()),
            _ => Err(ReaderError::NotSupported("card aborted S(IFS)")),
        }
    }
}

fn wait_for_wtx(wait: Wait, wtx: u8) -> Wait {
    Wait {
        margin: wait.margin,
        card: wait
            .card
            .checked_mul(u32::from(wtx.max(1)))
            .unwrap_or(Duration::MAX),
    }
}

impl Io<'_> {
    /// Character level T=1: send the block asking for the 3-byte prologue,
    /// then ask for LEN + EDC more bytes.
    fn t1_block_by_characters(
        &mut self,
        block: &[u8],
        edc: Edc,
        wtx: u8,
        wait: Wait,
        received: &mut [u8; MAX_BLOCK_LEN],
    ) -> Result<usize, ReaderError> {
        let wait = wait_for_wtx(wait, wtx);
        let answer = self.xfr(block, 3, 0, wait)?;
        let prologue = self.payload(&answer);
        if prologue.len() != 3 {
            return Err(self.protocol_error(&answer, "T=1 prologue is not 3 bytes"));
        }
        received[..3].copy_from_slice(prologue);
        let rest = usize::from(received[2]) + edc.len();
        let answer = self.xfr(&[], rest as u16, 0, wait)?;
        let body = self.payload(&answer);
        if body.len() != rest || 3 + rest > MAX_BLOCK_LEN {
            return Err(self.protocol_error(&answer, "T=1 block body length differs from LEN"));
        }
        received[3..3 + rest].copy_from_slice(body);
        Ok(3 + rest)
    }

    /// T=0 at TPDU or character level, one APDU.
    fn t0(
        &mut self,
        command: &[u8],
        response: &mut [u8],
        options: T0Options,
        level: ExchangeLevel,
        wait: Wait,
    ) -> Result<usize, ReaderError> {
        let mut apdu = T0Apdu::new(command, response, options)?;
        let case1 = apdu.case() == ApduCase::Case1;
        let mut tpdu_buf = [0u8; MAX_TPDU_LEN];
        let mut rtpdu = [0u8; 258];
        let mut first = true;
        loop {
            let tpdu = apdu
                .next_tpdu(&mut tpdu_buf)?
                .ok_or(ReaderError::T1(T1Error::Finished))?;
            // Only the case-1 command itself sends its (empty) data towards
            // the card; every TPDU the engine makes up after it (GET RESPONSE,
            // a resend with Le) reads, whatever its INS: a case-1 command whose
            // INS is C0 must not turn the GET RESPONSE into a write.
            let is_command = std::mem::take(&mut first);
            let step = if level == ExchangeLevel::Character {
                let direction = if tpdu.len() > 5 || (case1 && is_command) {
                    Direction::ToCard
                } else {
                    Direction::FromCard
                };
                let n = self.t0_tpdu_by_characters(tpdu, direction, wait, &mut rtpdu)?;
                apdu.handle_response(&rtpdu[..n])?
            } else {
                let answer = self.xfr(tpdu, 0, 0, wait)?;
                let payload = &self.rx[HEADER_LEN..HEADER_LEN + answer.payload_len];
                apdu.handle_response(payload)?
            };
            match step {
                T0Step::SendNext => continue,
                T0Step::Complete(n) => return Ok(n),
            }
        }
    }

    /// Character level T=0, one TPDU: the header asking for one procedure
    /// byte, then whatever the procedure bytes call for. Returns the response
    /// TPDU (data, SW1, SW2) length in `out`.
    fn t0_tpdu_by_characters(
        &mut self,
        tpdu: &[u8],
        direction: Direction,
        wait: Wait,
        out: &mut [u8; 258],
    ) -> Result<usize, ReaderError> {
        let header = [tpdu[0], tpdu[1], tpdu[2], tpdu[3], tpdu[4]];
        let data = &tpdu[5..];
        let mut machine = ProcedureMachine::new(header, direction)?;
        let mut filled = 0usize;
        let mut to_send: &[u8] = &header;
        let mut expect = 1usize;
        let mut nulls = 0u32;
        let mut got = [0u8; 256];
        loop {
            let answer = self.xfr(to_send, expect as u16, 0, wait)?;
            let payload = self.payload(&answer);
            if payload.len() != expect {
                return Err(self.protocol_error(
                    &answer,
                    "reader returned another number of characters than wLevelParameter asked for",
                ));
            }
            got[..expect].copy_from_slice(payload);
            let received = expect;
            to_send = &[];
            expect = 1;
            for &byte in &got[..received] {
                match machine.feed(byte)? {
                    ProcedureEvent::Null => {
                        nulls += 1;
                        if nulls > MAX_NULLS {
                            return Err(ReaderError::Timeout {
                                waited: wait.card * MAX_NULLS,
                            });
                        }
                    }
                    ProcedureEvent::SendData { offset, len } => {
                        to_send = offset
                            .checked_add(len)
                            .and_then(|end| data.get(offset..end))
                            .ok_or(ReaderError::CardProtocol(
                                "card asked for command data the TPDU does not have",
                            ))?;
                    }
                    ProcedureEvent::ExpectData { len } => expect = len.min(got.len()),
                    ProcedureEvent::Data { byte, .. } => {
                        *out.get_mut(filled).ok_or(ReaderError::CardProtocol(
                            "card sent more data than the TPDU asked for",
                        ))? = byte;
                        filled += 1;
                    }
                    ProcedureEvent::AwaitSw2 => {}
                    ProcedureEvent::Done { sw1, sw2 } => {
                        let sw =
                            out.get_mut(filled..filled + 2)
                                .ok_or(ReaderError::CardProtocol(
                                    "card sent more data than the TPDU asked for",
                                ))?;
                        sw.copy_from_slice(&[sw1, sw2]);
                        return Ok(filled + 2);
                    }
                }
            }
        }
    }
}

/// Whether `command` is an APDU in extended-length form.
fn is_extended(command: &[u8]) -> bool {
    match CommandApdu::parse(command) {
        Ok(apdu) => matches!(
            apdu.case(),
            ApduCase::Case2Extended | ApduCase::Case3Extended | ApduCase::Case4Extended
        ),
        Err(_) => command.len() > 261,
    }
}

fn copy_out(payload: &[u8], response: &mut [u8], at: usize) -> Result<usize, ReaderError> {
    let end = at + payload.len();
    if end > response.len() {
        return Err(ReaderError::ResponseTooLong {
            needed: end,
            capacity: response.len(),
        });
    }
    response[at..end].copy_from_slice(payload);
    Ok(end)
}

impl Io<'_> {
    /// Short APDU level: the whole APDU in one XfrBlock, the whole answer in
    /// one DataBlock.
    fn short_apdu(
        &mut self,
        command: &[u8],
        response: &mut [u8],
        wait: Wait,
    ) -> Result<usize, ReaderError> {
        if is_extended(command) {
            return Err(ReaderError::ExtendedApduNotSupported { len: command.len() });
        }
        let answer = self.xfr(command, 0, 0, wait)?;
        copy_out(self.payload(&answer), response, 0)
    }

    /// Extended APDU level: the command in XfrBlocks of at most
    /// dwMaxCCIDMessageLength − 10 bytes (wLevelParameter 1, 3…, 2; 0 when one
    /// is enough), the answer in DataBlocks chained with bChainParameter 1, 3…,
    /// 2, each continuation asked for with an empty XfrBlock (wLevelParameter
    /// 0x10).
    fn extended_apdu(
        &mut self,
        command: &[u8],
        response: &mut [u8],
        wait: Wait,
    ) -> Result<usize, ReaderError> {
        let chunk = (self.link.descriptor.max_message_length as usize)
            .saturating_sub(HEADER_LEN)
            .min(self.tx.len() - HEADER_LEN)
            .max(1);
        let mut answer = if command.len() <= chunk {
            self.xfr(command, 0, 0, wait)?
        } else {
            let parts = command.len().div_ceil(chunk);
            let mut last = Answer::default();
            for (i, part) in command.chunks(chunk).enumerate() {
                let level = match i {
                    0 => 1,
                    i if i + 1 == parts => 2,
                    _ => 3,
                };
                last = self.xfr(part, level, 0, wait)?;
                if level != 2 && !(last.chain == 0x10 && last.payload_len == 0) {
                    // The reader should answer an empty DataBlock asking for
                    // more; anything else is tolerated only if empty.
                    if last.payload_len != 0 {
                        return Err(self.protocol_error(
                            &last,
                            "reader answered data before the command chain ended",
                        ));
                    }
                }
            }
            last
        };
        // Every part either carries data (bounded by `response`) or counts
        // towards MAX_EMPTY_PARTS, so the parts are bounded in number; the
        // command's budget bounds their time.
        let mut filled = 0usize;
        let mut empty_parts = 0u32;
        loop {
            filled = copy_out(self.payload(&answer), response, filled)?;
            match answer.chain {
                0x00 | 0x02 => return Ok(filled),
                0x01 | 0x03 => {
                    if answer.payload_len == 0 {
                        empty_parts += 1;
                        if empty_parts > MAX_EMPTY_PARTS {
                            return Err(self.protocol_error(
                                &answer,
                                "reader keeps announcing more response data but sends none",
                            ));
                        }
                    }
                    answer = self.xfr(&[], CONTINUE_RESPONSE, 0, wait)?;
                }
                _ => {
                    return Err(
                        self.protocol_error(&answer, "unexpected bChainParameter in a response")
                    )
                }
            }
        }
    }
}
