//! ICCD tokens (USB ICCD rev 1.0): the card is reached through class
//! requests on the control pipe instead of bulk messages.
//!
//! The request set is the one libccid uses (`commands.c`):
//!
//! | request | ICCD-A (protocol 1) | ICCD-B (protocol 2) |
//! |---|---|---|
//! | 0x62 ICC_POWER_ON | IN, ATR in the data stage | OUT wValue 1, ATR via DATA_BLOCK |
//! | 0x63 ICC_POWER_OFF | OUT | OUT, then SLOT_STATUS |
//! | 0x65 XFR_BLOCK | OUT, command bytes | OUT, wValue = wLevelParameter << 8 |
//! | 0x6F DATA_BLOCK | IN, answer bytes | IN, bResponseType first |
//! | 0xA0 GET_ICC_STATUS | IN, 1 byte (0x40 busy, 0x80 mute) | — |
//! | 0x81 SLOT_STATUS | — | IN, 3 bytes (bStatus & 3 = ICC state) |
//!
//! ICCD-B `bResponseType`: 0x00 data, 0x01/0x02/0x03/0x10 chaining as
//! bChainParameter, 0x40 status (byte 2 = error), 0x80 polling (bytes 1-2 =
//! delay in 10 ms units, 0 = host's choice).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::ccid::status::IccStatus;
use crate::transport::TransportError;

use super::error::ReaderError;
use super::slot::{SlotContext, SlotState};
use super::{Flavour, Shared};

/// ICC_POWER_ON.
pub(super) const ICC_POWER_ON: u8 = 0x62;
/// ICC_POWER_OFF.
pub(super) const ICC_POWER_OFF: u8 = 0x63;
/// XFR_BLOCK.
pub(super) const XFR_BLOCK: u8 = 0x65;
/// DATA_BLOCK.
pub(super) const DATA_BLOCK: u8 = 0x6F;
/// GET_ICC_STATUS (ICCD-A).
pub(super) const GET_ICC_STATUS: u8 = 0xA0;
/// SLOT_STATUS (ICCD-B).
pub(super) const SLOT_STATUS: u8 = 0x81;

/// Busy/polling rounds before giving up on a token.
const MAX_POLLS: u32 = 1000;
/// Pause between ICCD-A busy polls (libccid: 10 ms).
const BUSY_PAUSE: Duration = Duration::from_millis(10);
/// Longest single sleep of a pause: cancel and unplug are noticed within
/// this, however long a delay the token asked for.
const PAUSE_SLICE: Duration = Duration::from_millis(20);
/// Response parts of one answer that announce more data but carry none.
const MAX_EMPTY_PARTS: u32 = 16;
/// Shortest timeout handed to a transfer (0 means "no timeout" to some
/// USB stacks).
const MIN_TRANSFER_TIMEOUT: Duration = Duration::from_millis(1);

/// The transfer timeout left for this command: the margin, clipped to the
/// command's budget (slot 0: a token has one slot).
fn transfer_timeout(shared: &Shared) -> Result<Duration, ReaderError> {
    let budget = shared.link.slots[0].budget();
    let left = budget.remaining(Instant::now());
    if left.is_zero() {
        return Err(budget.spent());
    }
    Ok(shared.link.margin().min(left).max(MIN_TRANSFER_TIMEOUT))
}

fn map(shared: &Shared, e: TransportError) -> ReaderError {
    if matches!(e, TransportError::DeviceGone) {
        shared.link.mark_gone();
    }
    ReaderError::from_transport(e, shared.link.margin())
}

fn control_out(shared: &Shared, request: u8, value: u16, data: &[u8]) -> Result<(), ReaderError> {
    shared.link.check_gone()?;
    let timeout = transfer_timeout(shared)?;
    shared
        .link
        .transport
        .control_out(request, value, data, timeout)
        .map_err(|e| map(shared, e))
}

fn control_in(shared: &Shared, request: u8, buf: &mut [u8]) -> Result<usize, ReaderError> {
    shared.link.check_gone()?;
    let timeout = transfer_timeout(shared)?;
    shared
        .link
        .transport
        .control_in(request, 0, buf, timeout)
        .map_err(|e| map(shared, e))
}

/// Sleeps `d` (clipped to the command's budget), in slices so that a
/// cancel of slot 0 or an unplug ends it within [`PAUSE_SLICE`]; fails
/// when the budget is spent.
fn pause(shared: &Shared, d: Duration) -> Result<(), ReaderError> {
    let budget = shared.link.slots[0].budget();
    let until = Instant::now() + d.min(budget.remaining(Instant::now()));
    loop {
        shared.link.check_gone()?;
        if shared.link.slots[0].cancelled.load(Ordering::SeqCst) {
            return Err(ReaderError::Cancelled);
        }
        let now = Instant::now();
        if now >= budget.deadline {
            return Err(budget.spent());
        }
        if now >= until {
            return Ok(());
        }
        std::thread::sleep((until - now).min(PAUSE_SLICE));
    }
}

/// ICCD-A: GET_ICC_STATUS until the token is not busy; the status byte.
fn iccd_a_ready(shared: &Shared) -> Result<u8, ReaderError> {
    let mut status = [0u8; 1];
    for _ in 0..MAX_POLLS {
        let n = control_in(shared, GET_ICC_STATUS, &mut status)?;
        if n == 1 && status[0] & 0x40 == 0 {
            return Ok(status[0]);
        }
        pause(shared, BUSY_PAUSE)?;
    }
    Err(ReaderError::SlotBusy {
        attempts: MAX_POLLS,
    })
}

/// ICCD-B: DATA_BLOCK until it carries data; returns (length at the start
/// of `buf` without bResponseType, bResponseType).
fn iccd_b_data_block(shared: &Shared, buf: &mut [u8]) -> Result<(usize, u8), ReaderError> {
    for _ in 0..MAX_POLLS {
        let n = control_in(shared, DATA_BLOCK, buf)?;
        if n == 0 {
            return Err(ReaderError::Iccd {
                response_type: 0,
                error: 0,
            });
        }
        match buf[0] {
            0x00 | 0x01 | 0x02 | 0x03 | 0x10 => {
                let kind = buf[0];
                buf.copy_within(1..n, 0);
                return Ok((n - 1, kind));
            }
            0x80 => {
                let delay = if n >= 3 {
                    u16::from_le_bytes([buf[1], buf[2]])
                } else {
                    0
                };
                pause(shared, Duration::from_millis(10 * u64::from(delay.max(1))))?;
            }
            other => {
                return Err(ReaderError::Iccd {
                    response_type: other,
                    error: if n >= 3 { buf[2] } else { 0 },
                })
            }
        }
    }
    Err(ReaderError::TooManyTimeExtensions { limit: MAX_POLLS })
}

impl SlotContext<'_> {
    /// Powers the token's card; the ATR is left at the start of `st.rx`.
    pub(crate) fn iccd_power_on(&mut self) -> Result<usize, ReaderError> {
        let (shared, st) = (self.shared, &mut *self.st);
        // Both versions start with a power off to reset the token's state
        // machine (libccid CmdPowerOn).
        power_off(shared, st)?;
        match shared.flavour {
            Flavour::IccdA => {
                let status = iccd_a_ready(shared)?;
                if status == 0x80 {
                    return Err(ReaderError::NoCard);
                }
                let n = control_in(shared, ICC_POWER_ON, &mut st.rx[..33])?;
                Ok(n)
            }
            _ => {
                control_out(shared, ICC_POWER_ON, 1, &[])?;
                let (n, _) = iccd_b_data_block(shared, &mut st.rx[..34])?;
                Ok(n)
            }
        }
    }

    pub(crate) fn iccd_power_off(&mut self) -> Result<(), ReaderError> {
        power_off(self.shared, self.st)
    }

    pub(crate) fn iccd_status(&mut self) -> Result<IccStatus, ReaderError> {
        let (shared, st) = (self.shared, &mut *self.st);
        match shared.flavour {
            Flavour::IccdA => {
                let status = iccd_a_ready(shared)?;
                Ok(if status == 0x80 {
                    IccStatus::Absent
                } else {
                    IccStatus::PresentActive
                })
            }
            _ => {
                let n = control_in(shared, SLOT_STATUS, &mut st.rx[..3])?;
                if n < 2 {
                    return Err(ReaderError::Iccd {
                        response_type: SLOT_STATUS,
                        error: 0,
                    });
                }
                Ok(match st.rx[1] & 0x03 {
                    0 => IccStatus::PresentActive,
                    1 => IccStatus::PresentInactive,
                    _ => IccStatus::Absent,
                })
            }
        }
    }

    pub(crate) fn iccd_transmit(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, ReaderError> {
        transmit(self.shared, self.st, command, response)
    }
}

fn power_off(shared: &Shared, st: &mut SlotState) -> Result<(), ReaderError> {
    control_out(shared, ICC_POWER_OFF, 0, &[])?;
    if shared.flavour == Flavour::IccdB {
        control_in(shared, SLOT_STATUS, &mut st.rx[..3])?;
    }
    Ok(())
}

fn transmit(
    shared: &Shared,
    st: &mut SlotState,
    command: &[u8],
    response: &mut [u8],
) -> Result<usize, ReaderError> {
    match shared.flavour {
        Flavour::IccdA => {
            control_out(shared, XFR_BLOCK, 0, command)?;
            iccd_a_ready(shared)?;
            let n = control_in(shared, DATA_BLOCK, response)?;
            Ok(n)
        }
        _ => {
            control_out(shared, XFR_BLOCK, 0, command)?;
            let mut filled = 0usize;
            let mut empty_parts = 0u32;
            loop {
                let (n, kind) = iccd_b_data_block(shared, &mut st.rx)?;
                if n == 0 && matches!(kind, 0x01 | 0x03) {
                    empty_parts += 1;
                    if empty_parts > MAX_EMPTY_PARTS {
                        return Err(ReaderError::Iccd {
                            response_type: kind,
                            error: 0,
                        });
                    }
                }
                let end = filled + n;
                if end > response.len() {
                    return Err(ReaderError::ResponseTooLong {
                        needed: end,
                        capacity: response.len(),
                    });
                }
                response[filled..end].copy_from_slice(&st.rx[..n]);
                filled = end;
                match kind {
                    0x01 | 0x03 => control_out(shared, XFR_BLOCK, 0x10 << 8, &[])?,
                    _ => return Ok(filled),
                }
            }
        }
    }
}
