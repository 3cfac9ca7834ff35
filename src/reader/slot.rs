//! Slot state: power, parameter selection and the waiting times derived
//! from the card's parameters.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::ccid::command::Command;
use crate::ccid::descriptor::ExchangeLevel;
use crate::ccid::params::{ProtocolData, T0Params, T1Params};
use crate::ccid::status::{IccStatus, SlotError, Status};
use crate::ccid::{ClassDescriptor, HEADER_LEN};
use crate::protocols::atr::{Atr, Convention};
use crate::protocols::edc::Edc;
use crate::protocols::params;
use crate::protocols::pps::{self, PpsRequest, ReaderCaps};
use crate::protocols::t1::{T1Config, MAX_BLOCK_LEN, T1};
use crate::protocols::timing;

use super::error::ReaderError;
use super::link::{lock, Answer, Operation, Wait};
use super::{Flavour, ProtocolPreference, Shared, SlotOptions, SlotStatus};

/// At APDU levels the reader runs T=1 itself: up to three attempts at a
/// block and three resynchronisations (ISO/IEC 7816-3 §11.6.3).
const APDU_LEVEL_FACTOR: u32 = 9;

/// Characters in the longest T=1 block.
const MAX_BLOCK_CHARS: u64 = MAX_BLOCK_LEN as u64;

/// Slowest clock the waiting times are computed with: ISO/IEC 7816-3
/// §5.2.3 (table 4) lets no class run the card below 1 MHz, so a device
/// announcing less (a hostile dwDefaultClock of 1 kHz would stretch every
/// wait 1000-fold) is taken at 1 MHz.
const MIN_CLOCK_KHZ: u32 = 1000;

/// The clock waiting times are computed with: `khz`, at least 1 MHz.
pub(crate) fn timing_clock(khz: u32) -> u32 {
    khz.max(MIN_CLOCK_KHZ)
}

/// The negotiated (or ATR default) transmission parameters of a card.
#[derive(Debug, Clone)]
pub(crate) struct CardState {
    pub atr: Atr,
    pub protocol: Option<u8>,
    pub fi: u16,
    pub di: u8,
    pub clock_khz: u32,
    pub wi: u8,
    pub bwi: u8,
    pub cwi: u8,
    pub t1: Option<T1>,
    /// A T=1 exchange ended early on the host side (cancel, timeout, a
    /// failed block): the card may be mid-chain or hold other sequence
    /// numbers, so the next exchange starts with S(RESYNCH).
    pub t1_resync: bool,
}

impl CardState {
    fn from_atr(atr: Atr, default_clock_khz: u32) -> CardState {
        CardState {
            atr,
            protocol: None,
            fi: params::FD,
            di: params::DD,
            clock_khz: timing_clock(default_clock_khz),
            wi: atr.wi(),
            bwi: atr.bwi(),
            cwi: atr.cwi(),
            t1: None,
            t1_resync: false,
        }
    }

    /// The card's waiting time for one exchange at `level`.
    pub(crate) fn card_wait(&self, level: ExchangeLevel) -> Duration {
        let us = match self.protocol {
            Some(1) => {
                let bwt = timing::bwt_us(self.bwi, self.fi, self.di, self.clock_khz);
                let cwt = timing::cwt_us(self.cwi, self.fi, self.di, self.clock_khz);
                let etu_ns = timing::etu_ns(self.fi, self.di, self.clock_khz);
                bwt + cwt + MAX_BLOCK_CHARS * 12 * etu_ns / 1000
            }
            _ => timing::wwt_us(self.wi, self.fi, self.di, self.clock_khz),
        };
        let d = Duration::from_micros(us);
        match level {
            ExchangeLevel::ShortApdu | ExchangeLevel::ExtendedApdu => d * APDU_LEVEL_FACTOR,
            _ => d,
        }
    }
}

/// Everything one slot owns; behind the slot's mutex.
pub(crate) struct SlotState {
    pub tx: Vec<u8>,
    pub rx: Vec<u8>,
    pub card: Option<CardState>,
    pub options: SlotOptions,
    /// bPowerSelect that worked last.
    pub voltage: Option<u8>,
}

/// A slot's state and its tracing span.
pub(crate) struct SlotCell {
    pub state: Mutex<SlotState>,
    pub span: tracing::Span,
}

impl SlotCell {
    pub(crate) fn new(
        index: u8,
        buffer_len: usize,
        options: SlotOptions,
        parent: &tracing::Span,
    ) -> Self {
        SlotCell {
            state: Mutex::new(SlotState {
                tx: vec![0; buffer_len],
                rx: vec![0; buffer_len],
                card: None,
                options,
                voltage: None,
            }),
            span: tracing::info_span!(parent: parent, "slot", index),
        }
    }
}

/// Clock cycles before the card must start its ATR (ISO/IEC 7816-3 §8.2:
/// 400 to 40 000).
const ATR_START_CLOCKS: u64 = 40_000;

/// Longest ATR in etu: EMV's bound on a whole ATR (20 160 initial etu,
/// EMV book 1 §8.1.2) plus one initial waiting time (9 600 etu, ISO/IEC
/// 7816-3 §8.2) of slack. The reader times the ATR itself and answers
/// ICC_MUTE when the card is slower; this only bounds how long the host
/// waits for that answer.
const ATR_MAX_ETU: u64 = 20_160 + 9_600;

/// The wait for power-on at one voltage: the ATR's start and its longest
/// duration at the default rate and clock (at least 1 MHz), plus the
/// margin. About 2.8 s + margin at 4 MHz; 11 s + margin at 1 MHz.
fn power_on_wait(shared: &Shared) -> Wait {
    let clock = timing_clock(shared.link.descriptor.default_clock_khz);
    let etu_ns = timing::etu_ns(params::FD, params::DD, clock);
    let start_ns = ATR_START_CLOCKS * 1_000_000 / u64::from(clock);
    Wait {
        margin: shared.link.margin(),
        card: Duration::from_nanos(start_ns + ATR_MAX_ETU * etu_ns),
    }
}

/// Budget of a command the reader answers by itself (status, power off):
/// two margins, never more than the ceiling.
pub(crate) fn reader_budget(shared: &Shared) -> Duration {
    (shared.link.margin() * 2).min(shared.link.options.max_command_time)
}

/// Budget of a command that talks to the card (APDU, protocol selection,
/// Escape): the configured ceiling.
pub(crate) fn card_budget(shared: &Shared) -> Duration {
    shared.link.options.max_command_time
}

/// The wait for commands the reader answers by itself.
pub(crate) fn reader_wait(shared: &Shared) -> Wait {
    Wait {
        margin: shared.link.margin(),
        card: Duration::ZERO,
    }
}

/// The wait for an exchange with the card in `card`.
pub(crate) fn exchange_wait(shared: &Shared, card: &CardState) -> Wait {
    Wait {
        margin: shared.link.margin(),
        card: card.card_wait(shared.link.descriptor.exchange_level()),
    }
}

/// One command on one slot: the reader, the slot's index and its state
/// (locked by a [`SlotGuard`] for the whole command). Every step of a
/// command (power, parameters, exchange, PIN pad, ICCD) is a method, in
/// the module that owns that step.
pub(crate) struct SlotContext<'a> {
    pub shared: &'a Shared,
    pub index: usize,
    pub st: &'a mut SlotState,
}

/// A command in progress on one slot: its span entered, its state locked,
/// the operation begun (see [`Operation`] for cancels) and its budget
/// started. Fields drop in order: the operation ends while the state is
/// still locked, then the lock goes, then the span.
pub(crate) struct SlotGuard<'a> {
    shared: &'a Shared,
    index: usize,
    _operation: Option<Operation<'a>>,
    st: MutexGuard<'a, SlotState>,
    _span: tracing::span::Entered<'a>,
}

impl<'a> SlotGuard<'a> {
    /// Starts a user operation on `index` with a wall-clock budget of
    /// `allowed`.
    pub(super) fn begin(
        shared: &'a Shared,
        index: usize,
        allowed: Duration,
    ) -> Result<Self, ReaderError> {
        Self::start(shared, index, allowed, true)
    }

    /// Starts the event thread's status poll: not a user operation, so a
    /// pending [`Slot::cancel`](super::Slot::cancel) is left for the
    /// user's next one.
    pub(super) fn poll(
        shared: &'a Shared,
        index: usize,
        allowed: Duration,
    ) -> Result<Self, ReaderError> {
        Self::start(shared, index, allowed, false)
    }

    fn start(
        shared: &'a Shared,
        index: usize,
        allowed: Duration,
        user: bool,
    ) -> Result<Self, ReaderError> {
        let cell = &shared.slots[index];
        let span = cell.span.enter();
        let st = lock(&cell.state);
        shared.link.check_gone()?;
        let slot = &shared.link.slots[index];
        let operation = if user {
            Some(slot.begin_operation()?)
        } else {
            None
        };
        slot.start_budget(allowed);
        Ok(SlotGuard {
            shared,
            index,
            _operation: operation,
            st,
            _span: span,
        })
    }

    /// The context the command's steps run in.
    pub(super) fn cx(&mut self) -> SlotContext<'_> {
        SlotContext {
            shared: self.shared,
            index: self.index,
            st: &mut self.st,
        }
    }
}

impl SlotContext<'_> {
    /// Runs one command with the slot's own buffers.
    pub(super) fn transact(
        &mut self,
        command: Command<'_>,
        wait: Wait,
    ) -> Result<Answer, ReaderError> {
        let SlotState { tx, rx, .. } = &mut *self.st;
        let link = &self.shared.link;
        link.transact(&link.slots[self.index], tx, rx, command, wait)
    }

    /// Runs one command that talks to the card (XfrBlock, Secure,
    /// SetParameters) and turns "no card" into [`ReaderError::NoCard`]
    /// before anyone looks at the payload: see [`card_answer`].
    pub(super) fn card_transact(
        &mut self,
        command: Command<'_>,
        wait: Wait,
    ) -> Result<Answer, ReaderError> {
        card_answer(self.transact(command, wait))
    }

    /// The wait for an exchange with the powered card.
    pub(super) fn exchange_wait(&self) -> Result<Wait, ReaderError> {
        let card = self.st.card.as_ref().ok_or(ReaderError::NotPowered)?;
        Ok(exchange_wait(self.shared, card))
    }
}

/// A card command's answer with bmICCStatus 2 (CCID §6.2.6: no ICC
/// present) is [`ReaderError::NoCard`], whether the command "succeeded"
/// (QEMU's usb-ccid answers XfrBlock on an empty slot with an empty
/// DataBlock, bStatus 0x02) or failed (bStatus 0x42). Without this the
/// empty payload reaches the T=0/T=1 engines and reads as a short
/// response. Commands about the slot itself (GetSlotStatus, IccPowerOff)
/// do not go through here: for them an absent card is a state.
pub(crate) fn card_answer(result: Result<Answer, ReaderError>) -> Result<Answer, ReaderError> {
    match result {
        Ok(answer) if Status(answer.status).icc() == IccStatus::Absent => {
            tracing::info!(status = answer.status, "reader reports no card");
            Err(ReaderError::NoCard)
        }
        Err(ReaderError::CommandFailed {
            icc: IccStatus::Absent,
            ..
        }) => Err(ReaderError::NoCard),
        other => other,
    }
}

/// bPowerSelect values to try, in order.
fn voltage_sequence(shared: &Shared) -> ([u8; 3], usize) {
    let d = &shared.link.descriptor;
    if d.auto_voltage() {
        return ([0, 0, 0], 1);
    }
    let mut seq = [0u8; 3];
    let mut n = 0;
    for (select, supported) in [
        (1, d.supports_5v()),
        (2, d.supports_3v()),
        (3, d.supports_1v8()),
    ] {
        if supported {
            seq[n] = select;
            n += 1;
        }
    }
    if n == 0 {
        // A descriptor that offers no voltage: let the reader choose.
        return ([0, 0, 0], 1);
    }
    (seq, n)
}

/// Budget of a power on: its normal wait once per voltage tried, plus a
/// margin, never more than the ceiling.
pub(crate) fn power_on_budget(shared: &Shared) -> Duration {
    let (_, voltages) = voltage_sequence(shared);
    let per_voltage = power_on_wait(shared).with_multiplier(1);
    per_voltage
        .saturating_mul(voltages as u32)
        .saturating_add(shared.link.margin())
        .min(card_budget(shared))
}

impl SlotContext<'_> {
    pub(super) fn power_on(&mut self) -> Result<Atr, ReaderError> {
        let shared = self.shared;
        self.st.card = None;
        let raw_len = match shared.flavour {
            Flavour::IccdA | Flavour::IccdB => self.iccd_power_on()?,
            Flavour::Ccid => self.ccid_power_on()?,
        };
        let st = &mut *self.st;
        let raw = &st.rx[..raw_len];
        let atr = Atr::parse_lenient(raw).map_err(|error| ReaderError::BadAtr {
            atr: raw.to_vec(),
            error,
        })?;
        if atr.anomalies().next().is_some() {
            tracing::info!(atr = ?atr.as_bytes(), "ATR accepted with anomalies");
        }
        st.card = Some(CardState::from_atr(
            atr,
            shared.link.descriptor.default_clock_khz,
        ));
        Ok(atr)
    }

    /// Returns the ATR's length, the ATR moved to the start of `st.rx`.
    fn ccid_power_on(&mut self) -> Result<usize, ReaderError> {
        let shared = self.shared;
        if shared.link.quirks.power_off_before_power_on {
            self.transact(Command::IccPowerOff, reader_wait(shared))?;
        }
        let (sequence, count) = voltage_sequence(shared);
        let mut tried = Vec::new();
        for &power_select in &sequence[..count] {
            tried.push(power_select);
            match self.transact(Command::IccPowerOn { power_select }, power_on_wait(shared)) {
                Ok(answer) => {
                    self.st.voltage = Some(power_select);
                    let n = answer.payload_len;
                    self.st.rx.copy_within(HEADER_LEN..HEADER_LEN + n, 0);
                    return Ok(n);
                }
                Err(ReaderError::CommandFailed {
                    icc: IccStatus::Absent,
                    ..
                }) => return Err(ReaderError::NoCard),
                Err(ReaderError::CommandFailed {
                    error: SlotError::IccMute | SlotError::IccClassNotSupported,
                    ..
                }) => {
                    tracing::info!(power_select, "no ATR at this voltage");
                }
                Err(e) => return Err(e),
            }
        }
        Err(ReaderError::CardMute { tried })
    }

    pub(super) fn power_off(&mut self) -> Result<(), ReaderError> {
        let shared = self.shared;
        self.st.card = None;
        match shared.flavour {
            Flavour::IccdA | Flavour::IccdB => self.iccd_power_off(),
            Flavour::Ccid => {
                self.transact(Command::IccPowerOff, reader_wait(shared))?;
                Ok(())
            }
        }
    }

    /// GetSlotStatus; `user` false for the event thread's polling, which
    /// neither ends on a cancel nor spends one.
    pub(super) fn status(&mut self, user: bool) -> Result<SlotStatus, ReaderError> {
        let (shared, index) = (self.shared, self.index);
        let icc = match shared.flavour {
            Flavour::IccdA | Flavour::IccdB => self.iccd_status()?,
            Flavour::Ccid => {
                let SlotState { tx, rx, .. } = &mut *self.st;
                let (link, slot) = (&shared.link, &shared.link.slots[index]);
                let command = Command::GetSlotStatus;
                let wait = reader_wait(shared);
                let answer = if user {
                    link.transact(slot, tx, rx, command, wait)
                } else {
                    link.transact_ignoring_cancel(slot, tx, rx, command, wait)
                };
                match answer {
                    Ok(answer) => Status(answer.status).icc(),
                    // An absent or mute card is a state, not a failure (libccid
                    // CmdGetSlotStatus does the same).
                    Err(ReaderError::CommandFailed { icc, .. }) if icc != IccStatus::Reserved => {
                        icc
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if icc != IccStatus::PresentActive {
            self.st.card = None;
        }
        let present = matches!(icc, IccStatus::PresentActive | IccStatus::PresentInactive);
        shared.events.observe_status(index, present);
        Ok(SlotStatus {
            icc,
            present,
            powered: icc == IccStatus::PresentActive,
        })
    }
}

/// The reader's capabilities as the negotiation sees them.
fn caps(shared: &Shared) -> ReaderCaps<'_> {
    let d = &shared.link.descriptor;
    ReaderCaps {
        default_clock_khz: d.default_clock_khz,
        max_clock_khz: d.maximum_clock_khz,
        data_rates: &shared.data_rates,
        max_data_rate: d.max_data_rate,
        protocols: (d.protocols & 0xFFFF) as u16,
        auto_params_from_atr: d.auto_parameters_from_atr(),
        auto_pps_proprietary: d.auto_parameter_negotiation(),
        auto_pps_current: d.auto_pps(),
        auto_baud_clock: d.auto_baud() && d.auto_clock(),
    }
}

impl SlotContext<'_> {
    pub(super) fn select_protocol(
        &mut self,
        preferred: ProtocolPreference,
    ) -> Result<u8, ReaderError> {
        let shared = self.shared;
        let card = self.st.card.as_ref().ok_or(ReaderError::NotPowered)?;
        let atr = card.atr;
        if shared.flavour != Flavour::Ccid {
            // ICCD tokens configure themselves (ICCD §4): nothing to send.
            let protocol = match preferred {
                ProtocolPreference::T0 => 0,
                ProtocolPreference::T1 => 1,
                ProtocolPreference::Any => atr.default_protocol(),
            };
            if let Some(c) = self.st.card.as_mut() {
                c.protocol = Some(protocol);
            }
            return Ok(protocol);
        }
        let requested = match preferred {
            ProtocolPreference::T0 => Some(0),
            ProtocolPreference::T1 => Some(1),
            ProtocolPreference::Any => None,
        };
        let d = &shared.link.descriptor;
        let level = d.exchange_level();
        let plan = pps::negotiate(&atr, &caps(shared), requested)?;
        tracing::debug!(?plan, "negotiation plan");
        let mut ta1 = plan.ta1;
        // PPS is the host's job only at TPDU and character levels; at APDU
        // levels the reader talks to the card itself.
        if let (Some(request), ExchangeLevel::Tpdu | ExchangeLevel::Character) = (plan.pps, level) {
            ta1 = self.send_pps(request, level)?;
        }
        let (fi, di) = match (params::fi(ta1 >> 4), params::di(ta1 & 0x0F)) {
            (Some(fi), Some(di)) => (fi, di),
            _ => (params::FD, params::DD),
        };
        // A reader that configures itself from the ATR (or negotiates on its
        // own) settles on the card's default protocol and TA1. When the plan
        // differs (the other protocol of a dual card, or a PPS the host made)
        // only SetParameters tells it; a reader with automatic PPS then does
        // the PPS itself (CCID §5.1 dwFeatures 00000040h/00000080h, §6.1.7).
        let reader_guess_differs = plan.protocol != atr.default_protocol() || plan.pps.is_some();
        if (plan.host_sets_parameters && !d.auto_parameters_from_atr()) || reader_guess_differs {
            let inverse = if atr.convention() == Convention::Inverse {
                0x02
            } else {
                0
            };
            let clock_stop = atr.clock_stop().unwrap_or(0);
            let data = if plan.protocol == 1 {
                ProtocolData::T1(T1Params {
                    findex_dindex: ta1,
                    tccks: 0x10 | inverse | u8::from(plan.edc == Edc::Crc),
                    guard_time: plan.guard_time_n,
                    waiting_integers: (plan.bwi << 4) | (plan.cwi & 0x0F),
                    clock_stop,
                    ifsc: plan.ifsc,
                    nad: 0,
                })
            } else {
                ProtocolData::T0(T0Params {
                    findex_dindex: ta1,
                    tccks: inverse,
                    guard_time: plan.guard_time_n,
                    waiting_integer: plan.wi,
                    clock_stop,
                })
            };
            match self.card_transact(Command::SetParameters(data), reader_wait(shared)) {
                Ok(_) => {}
                // CCID §6.1.7: a reader that cannot change a parameter answers
                // bError = the offset of the parameter; the card is still
                // active with the parameters the reader chose, which the
                // standard allows us to use.
                Err(ReaderError::CommandFailed {
                    error: SlotError::BadParameter(offset),
                    icc: IccStatus::PresentActive,
                    ..
                }) if offset >= 10 => {
                    tracing::info!(offset, "parameters not changeable; continuing");
                }
                Err(e) => return Err(e),
            }
            self.set_rate_and_clock(plan.clock_khz, plan.baud_rate)?;
        }
        // At TPDU and character level the card's blocks reach us whole inside
        // one DataBlock, so IFSD must also leave room for the CCID header, the
        // block prologue and the EDC within dwMaxCCIDMessageLength.
        let edc_len = if plan.edc == Edc::Crc { 2 } else { 1 };
        let fits_message = d.max_message_length.saturating_sub(10 + 3 + edc_len);
        let max_ifsd = d.max_ifsd.min(fits_message).clamp(1, 254) as u8;
        {
            let card = self.st.card.as_mut().ok_or(ReaderError::NotPowered)?;
            card.protocol = Some(plan.protocol);
            card.fi = fi;
            card.di = di;
            card.clock_khz = timing_clock(plan.clock_khz);
            card.wi = plan.wi;
            card.bwi = plan.bwi;
            card.cwi = plan.cwi;
            card.t1_resync = false;
            card.t1 = (plan.protocol == 1).then(|| {
                T1::new(T1Config {
                    ifsc: plan.ifsc,
                    ifsd: max_ifsd,
                    edc: plan.edc,
                    nad: 0,
                    ..T1Config::default()
                })
            });
        }
        if plan.protocol == 1 && host_negotiates_ifsd(&shared.link.descriptor) {
            if let Err(e) = self.negotiate_ifsd(level) {
                // A card that does not take S(IFS) still works with IFSD 32.
                tracing::warn!(error = %e, "IFSD negotiation failed; keeping 32");
                if matches!(e, ReaderError::DeviceGone | ReaderError::Cancelled) {
                    return Err(e);
                }
            }
        }
        tracing::info!(
            protocol = plan.protocol,
            fi,
            di,
            clock = plan.clock_khz,
            "protocol selected"
        );
        Ok(plan.protocol)
    }

    /// Sends a PPS request in an XfrBlock and checks the echo; returns the
    /// TA1-layout Fi/Di agreed on.
    fn send_pps(&mut self, request: PpsRequest, level: ExchangeLevel) -> Result<u8, ReaderError> {
        let mut buf = [0u8; pps::MAX_LEN];
        let n = request
            .emit(&mut buf)
            .map_err(|_| ReaderError::NotSupported("PPS request does not encode"))?;
        let wait = self.exchange_wait()?;
        // Character level: the reader needs the answer length; a full echo is
        // as long as the request.
        let level_parameter = if level == ExchangeLevel::Character {
            n as u16
        } else {
            0
        };
        let answer = self.card_transact(
            Command::XfrBlock {
                bwi: 0,
                level_parameter,
                data: &buf[..n],
            },
            wait,
        )?;
        let response = &self.st.rx[HEADER_LEN..HEADER_LEN + answer.payload_len];
        match request.check_response(response) {
            Ok(accepted) => {
                tracing::debug!(fi_di = accepted.fi_di, "PPS accepted");
                Ok(accepted.fi_di)
            }
            Err(error) => Err(ReaderError::PpsFailed {
                request: buf[..n].to_vec(),
                response: response.to_vec(),
                error,
            }),
        }
    }

    /// SetDataRateAndClockFrequency, for readers that list their rates or
    /// clocks and do not follow the parameters by themselves (dwFeatures 0x10
    /// and 0x20 clear). A reader that refuses the command keeps its own choice.
    fn set_rate_and_clock(&mut self, clock_khz: u32, data_rate: u32) -> Result<(), ReaderError> {
        let shared = self.shared;
        let d = &shared.link.descriptor;
        let lists = d.num_data_rates_supported > 0 || d.num_clock_supported > 0;
        if !lists || d.auto_baud() || d.auto_clock() {
            return Ok(());
        }
        match self.transact(
            Command::SetDataRateAndClockFrequency {
                clock_frequency_khz: clock_khz,
                data_rate,
            },
            reader_wait(shared),
        ) {
            Ok(_) => Ok(()),
            Err(ReaderError::CommandFailed { error, .. }) => {
                tracing::info!(%error, "SetDataRateAndClockFrequency refused; reader keeps its rate");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    pub(super) fn transmit(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, ReaderError> {
        if self.st.card.is_none() {
            return Err(ReaderError::NotPowered);
        }
        if self.shared.flavour != Flavour::Ccid {
            return self.iccd_transmit(command, response);
        }
        let result = match self.st.card.as_ref().and_then(|c| c.protocol) {
            None => self
                .select_protocol(ProtocolPreference::Any)
                .and_then(|_| self.exchange(command, response)),
            Some(_) => self.exchange(command, response),
        };
        if matches!(result, Err(ReaderError::NoCard)) {
            // The card is gone with its parameters and T=1 state; the next
            // card starts from a power on.
            self.st.card = None;
        }
        result
    }
}

/// Whether the host announces IFSD with S(IFS) at this reader's level.
pub(crate) fn host_negotiates_ifsd(d: &ClassDescriptor) -> bool {
    matches!(
        d.exchange_level(),
        ExchangeLevel::Tpdu | ExchangeLevel::Character
    ) && !d.auto_ifsd()
        && d.max_ifsd > 0
}
