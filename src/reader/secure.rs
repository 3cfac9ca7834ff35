//! The reader's own commands beyond the card path: PC_to_RDR_Secure (PIN
//! verification and modification on the reader's pad, CCID §6.1.11) and
//! PC_to_RDR_Escape (§6.1.8), both through the slot's bSeq and receive
//! dispatch like every other command.
//!
//! # Secure at TPDU level with a T=1 card
//!
//! The reader does not run T=1 there: it wraps the APDU, with the PIN the
//! user typed, in the prologue the host puts in bTeoPrologue (NAD, PCB,
//! LEN), adds the EDC, and returns the card's answer block as it is. So the
//! prologue comes from the slot's T=1 engine (its N(S), the template's
//! length as LEN, as libccid does), the answer is unwrapped by the engine,
//! and the sequence numbers advance only when the card answers with the
//! I-block that acknowledges ours. An S(WTX request) from the card is
//! answered (with the reader's bBWI extended) until the I-block comes; a
//! block with a bad EDC is asked for again with an R-block (ISO/IEC 7816-3
//! §11.6.3); an R-block means the card refused our block — the PIN is gone
//! with it, so the call fails and the engine keeps its numbers, which still
//! match the card's.

use std::time::Duration;

use crate::ccid::command::Command;
use crate::ccid::descriptor::ExchangeLevel;
use crate::ccid::secure::SecureData;
use crate::ccid::status::SlotError;
use crate::ccid::HEADER_LEN;
use crate::protocols::t1::{
    Block, BlockKind, BlockRepr, RError, SKind, T1Error, MAX_ATTEMPTS, MAX_BLOCK_LEN,
};

use super::error::ReaderError;
use super::link::Wait;
use super::slot::{self, SlotContext, SlotGuard, SlotState};
use super::{Flavour, ProtocolPreference, Shared};

/// PIN entry time when the structure's bTimeOut is 0 ("reader default"):
/// libccid's default for a PIN pad.
const DEFAULT_PIN_ENTRY: Duration = Duration::from_secs(30);

/// How long an Escape command may take on top of the margin: vendor
/// commands (firmware queries, LEDs, beeps) answer quickly, and a reader
/// that needs longer asks for time extensions.
const ESCAPE_ALLOWANCE: Duration = Duration::from_secs(10);

/// S(WTX request) blocks accepted in a row after one PIN block; a card
/// stuck asking for time must not hold the slot forever.
const MAX_WTX_IN_A_ROW: u32 = 64;

/// The user's time from bTimeOut (seconds; 0 = reader default).
fn pin_entry_time(data: &SecureData<'_>) -> Duration {
    let seconds = match data {
        SecureData::Verify(v) => v.timeout,
        SecureData::Modify(m) => m.timeout,
        SecureData::Other { .. } => 0,
    };
    if seconds == 0 {
        DEFAULT_PIN_ENTRY
    } else {
        Duration::from_secs(u64::from(seconds))
    }
}

/// Maps the pad's own outcomes to typed errors.
fn pin_outcome(e: ReaderError) -> ReaderError {
    match e {
        ReaderError::CommandFailed {
            error: SlotError::PinTimeout,
            ..
        } => ReaderError::PinTimeout,
        ReaderError::CommandFailed {
            error: SlotError::PinCancelled,
            ..
        } => ReaderError::PinCancelled,
        other => other,
    }
}

fn copy_payload(st: &SlotState, len: usize, response: &mut [u8]) -> Result<usize, ReaderError> {
    if len > response.len() {
        return Err(ReaderError::ResponseTooLong {
            needed: len,
            capacity: response.len(),
        });
    }
    response[..len].copy_from_slice(&st.rx[HEADER_LEN..HEADER_LEN + len]);
    Ok(len)
}

/// PC_to_RDR_Secure with `ab_data` (PIN verification or modification on
/// the reader's pad) on slot `index`.
pub(crate) fn secure(
    shared: &Shared,
    index: usize,
    ab_data: &[u8],
    response: &mut [u8],
) -> Result<usize, ReaderError> {
    let data = SecureData::parse(ab_data)
        .map_err(|e| ReaderError::InvalidSecureData { reason: e.reason })?;
    if shared.flavour != Flavour::Ccid {
        return Err(ReaderError::NotSupported("PIN pad on an ICCD token"));
    }
    // The user's time at the pad comes on top of the card's ceiling.
    let allowed = slot::card_budget(shared).saturating_add(pin_entry_time(&data));
    SlotGuard::begin(shared, index, allowed)?
        .cx()
        .secure(data, response)
}

impl SlotContext<'_> {
    fn secure(
        &mut self,
        mut data: SecureData<'_>,
        response: &mut [u8],
    ) -> Result<usize, ReaderError> {
        let shared = self.shared;
        let protocol = self
            .st
            .card
            .as_ref()
            .ok_or(ReaderError::NotPowered)?
            .protocol;
        let protocol = match protocol {
            Some(p) => p,
            None => self.select_protocol(ProtocolPreference::Any)?,
        };
        let card = self.st.card.as_ref().ok_or(ReaderError::NotPowered)?;
        let entry = pin_entry_time(&data);
        let card_wait = slot::exchange_wait(shared, card);
        let wait = Wait {
            margin: card_wait.margin + entry,
            card: card_wait.card,
        };
        let level = shared.link.descriptor.exchange_level();
        let tpdu_t1 = level == ExchangeLevel::Tpdu && protocol == 1;
        if tpdu_t1 {
            self.resync_if_pending()?;
            let card = self.st.card.as_ref().ok_or(ReaderError::NotPowered)?;
            let t1 = card.t1.as_ref().ok_or(ReaderError::NotPowered)?;
            let mut block = [0u8; MAX_BLOCK_LEN];
            let (apdu, prologue) =
                match &mut data {
                    SecureData::Verify(v) => (v.apdu, &mut v.teo_prologue),
                    SecureData::Modify(m) => (m.apdu, &mut m.teo_prologue),
                    SecureData::Other { .. } => return Err(ReaderError::NotSupported(
                        "bPINOperation other than verify or modify with a T=1 card at TPDU level",
                    )),
                };
            t1.wrap_single(apdu, &mut block)?;
            prologue.copy_from_slice(&block[..3]);
        }
        let answer = self
            .card_transact(
                Command::Secure {
                    bwi: 0,
                    level_parameter: 0,
                    data,
                },
                wait,
            )
            .map_err(pin_outcome);
        if !tpdu_t1 {
            return copy_payload(self.st, answer?.payload_len, response);
        }
        let result =
            answer.and_then(|answer| self.t1_answer(answer.payload_len, card_wait, response));
        // The pad's own outcomes leave the card untouched, and a card that
        // refused the PIN block with an R-block still expects the same N(S);
        // anything else (cancel, timeout, unreadable answers) may leave the
        // card out of step with the engine.
        if let (Err(e), Some(card)) = (&result, self.st.card.as_mut()) {
            card.t1_resync = !matches!(
                e,
                ReaderError::PinCancelled
                    | ReaderError::PinTimeout
                    | ReaderError::T1(T1Error::UnexpectedBlock(_))
            );
        }
        result
    }

    /// Drives the card's answer to the PIN block to the response I-block.
    fn t1_answer(
        &mut self,
        first_len: usize,
        wait: Wait,
        response: &mut [u8],
    ) -> Result<usize, ReaderError> {
        let edc = self
            .st
            .card
            .as_ref()
            .and_then(|c| c.t1.as_ref())
            .ok_or(ReaderError::NotPowered)?
            .config()
            .edc;
        let mut received = [0u8; MAX_BLOCK_LEN];
        let mut len = take_block(self.st, first_len, &mut received)?;
        let mut bad_blocks = 0u8;
        let mut wtx_in_a_row = 0u32;
        loop {
            let (reply, multiplier) = match Block::new_checked(&received[..len], edc) {
                Err(error) => {
                    bad_blocks += 1;
                    if bad_blocks >= MAX_ATTEMPTS {
                        tracing::warn!(?error, "card's answer to the PIN block unreadable");
                        return Err(ReaderError::T1(T1Error::InvalidBlock(error)));
                    }
                    let nr = t1_state(self.st)?.receive_sequence();
                    (
                        BlockRepr::R {
                            nr,
                            error: RError::EdcOrParity,
                        },
                        1,
                    )
                }
                Ok(block) => match block.kind() {
                    BlockKind::I { .. } => {
                        let t1 = self
                            .st
                            .card
                            .as_mut()
                            .and_then(|c| c.t1.as_mut())
                            .ok_or(ReaderError::NotPowered)?;
                        let inf = t1.unwrap_single(&received[..len])?;
                        if inf.len() > response.len() {
                            return Err(ReaderError::ResponseTooLong {
                                needed: inf.len(),
                                capacity: response.len(),
                            });
                        }
                        response[..inf.len()].copy_from_slice(inf);
                        return Ok(inf.len());
                    }
                    BlockKind::S {
                        kind: SKind::Wtx,
                        response: false,
                    } if block.inf().len() == 1 => {
                        wtx_in_a_row += 1;
                        if wtx_in_a_row > MAX_WTX_IN_A_ROW {
                            return Err(ReaderError::T1(T1Error::TooManyCardRequests(
                                MAX_WTX_IN_A_ROW as u16,
                            )));
                        }
                        let param = block.inf()[0];
                        tracing::debug!(
                            multiplier = param,
                            "card asked for more time after the PIN block"
                        );
                        (
                            BlockRepr::S {
                                kind: SKind::Wtx,
                                response: true,
                                param,
                            },
                            param.max(1),
                        )
                    }
                    kind => {
                        // An R-block: the card did not take our I-block. It
                        // cannot be sent again without the PIN, which only the
                        // reader had; the engine's numbers still match the card.
                        tracing::warn!(?kind, "card refused the PIN block");
                        return Err(ReaderError::T1(T1Error::UnexpectedBlock(kind)));
                    }
                },
            };
            let nad = t1_state(self.st)?.config().nad;
            let mut out = [0u8; MAX_BLOCK_LEN];
            let n = reply
                .emit(nad, edc, &mut out)
                .map_err(|e| ReaderError::T1(T1Error::InvalidBlock(e)))?;
            let extended = Wait {
                margin: wait.margin,
                card: wait.card.saturating_mul(u32::from(multiplier)),
            };
            let answer = self.card_transact(
                Command::XfrBlock {
                    bwi: if multiplier > 1 { multiplier } else { 0 },
                    level_parameter: 0,
                    data: &out[..n],
                },
                extended,
            )?;
            len = take_block(self.st, answer.payload_len, &mut received)?;
        }
    }
}

fn t1_state(st: &SlotState) -> Result<&crate::protocols::t1::T1, ReaderError> {
    st.card
        .as_ref()
        .and_then(|c| c.t1.as_ref())
        .ok_or(ReaderError::NotPowered)
}

/// Copies the DataBlock's payload (one T=1 block) out of the slot buffer.
fn take_block(
    st: &SlotState,
    len: usize,
    received: &mut [u8; MAX_BLOCK_LEN],
) -> Result<usize, ReaderError> {
    if len > MAX_BLOCK_LEN {
        return Err(ReaderError::Protocol(crate::ccid::CcidError::BadPayload {
            reason: "T=1 block longer than 259 bytes",
            frame: crate::ccid::error::FrameBytes::new(&st.rx[..HEADER_LEN + len]),
        }));
    }
    received[..len].copy_from_slice(&st.rx[HEADER_LEN..HEADER_LEN + len]);
    Ok(len)
}

/// PC_to_RDR_Escape: a vendor command to the reader itself.
pub(crate) fn escape(
    shared: &Shared,
    data: &[u8],
    response: &mut [u8],
) -> Result<usize, ReaderError> {
    if shared.flavour != Flavour::Ccid {
        return Err(ReaderError::NotSupported("Escape on an ICCD token"));
    }
    // Escape addresses the reader, not a card; it travels on slot 0's
    // bSlot and buffers, serialised with slot 0's other commands.
    let mut guard = SlotGuard::begin(shared, 0, slot::card_budget(shared))?;
    let mut cx = guard.cx();
    let wait = Wait {
        margin: shared.link.margin() + ESCAPE_ALLOWANCE,
        card: Duration::ZERO,
    };
    let answer = cx.transact(Command::Escape { data }, wait)?;
    copy_payload(cx.st, answer.payload_len, response)
}
