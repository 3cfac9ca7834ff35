//! One slot of the simulated reader: its card, the parameters the reader
//! uses with it, and what each command does at the reader's exchange level.

use std::collections::VecDeque;

use crate::card::edc::{crc_bytes, lrc};
use crate::card::{EdcKind, VirtualCard};
use crate::profile::{PinEntry, SlotProfile, VOLTAGE_1V8, VOLTAGE_3V, VOLTAGE_5V};
use ferroccid::ccid::command::Command;
use ferroccid::ccid::descriptor::features;
use ferroccid::ccid::params::{ProtocolData, T0Params, T1Params};
use ferroccid::ccid::secure::SecureData;
use ferroccid::ccid::{ClassDescriptor, ExchangeLevel, IccStatus, SlotError};

use super::fault::SlotFaults;
use super::pin;

/// Offset of `bPowerSelect` / `bProtocolNum` / `bClockCommand` / `bFunction` in the header.
const OFFSET_HEADER_BYTE7: u8 = 7;
/// Offset of `wLevelParameter`.
const OFFSET_LEVEL_PARAMETER: u8 = 8;
/// Offset of `abData`.
const OFFSET_DATA: u8 = 10;

/// What a command produces, before the reader frames it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// DataBlock with `bChainParameter` and data.
    Data(u8, Vec<u8>),
    /// SlotStatus with `bClockStatus`.
    Status(u8),
    /// Parameters.
    Params(ProtocolData),
    /// RDR_to_PC_Escape.
    Escape(Vec<u8>),
    /// DataRateAndClockFrequency (kHz, bps).
    Rates(u32, u32),
    /// The command failed with this `bError`.
    Failed(SlotError),
}

/// An answer, and how it is delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub answer: Answer,
    /// Time-extension frames before it, with their multiplier.
    pub time_extensions: u8,
    /// `bError` of the time-extension frames.
    pub multiplier: u8,
    /// The card stayed silent: deliver after the reader's mute timeout.
    pub waited_for_card: bool,
}

impl From<Answer> for Outcome {
    fn from(answer: Answer) -> Self {
        Outcome {
            answer,
            time_extensions: 0,
            multiplier: 1,
            waited_for_card: false,
        }
    }
}

fn fail(e: SlotError) -> Outcome {
    Answer::Failed(e).into()
}

fn mute() -> Outcome {
    Outcome {
        waited_for_card: true,
        ..fail(SlotError::IccMute)
    }
}

/// A slot.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub card: Option<VirtualCard>,
    pub card_voltages: u8,
    pub faults: SlotFaults,
    /// The reader has activated the card.
    powered: bool,
    clock_stopped: bool,
    params: ProtocolData,
    /// The host may send a PPS (first exchange after the ATR).
    pps_window: bool,
    /// Character level: bytes the card sent that the host has not read.
    from_card: VecDeque<u8>,
    /// Character level: bytes of a T=1 block or PPS being received.
    to_card: Vec<u8>,
    /// Extended APDU level: command parts received so far.
    command_chain: Option<Vec<u8>>,
    /// Extended APDU level: response bytes still to be sent in parts.
    response_chain: Option<VecDeque<u8>>,
    /// PC_to_RDR_T0APDU class bytes (GET RESPONSE, ENVELOPE).
    t0_classes: (u8, u8),
}

fn default_t0() -> ProtocolData {
    ProtocolData::T0(T0Params {
        findex_dindex: 0x11,
        tccks: 0,
        guard_time: 0,
        waiting_integer: 10,
        clock_stop: 0,
    })
}

impl Slot {
    pub(crate) fn new(profile: &SlotProfile) -> Slot {
        Slot {
            card: profile.card.clone().map(VirtualCard::new),
            card_voltages: profile.card_voltages,
            faults: SlotFaults::default(),
            powered: false,
            clock_stopped: false,
            params: default_t0(),
            pps_window: false,
            from_card: VecDeque::new(),
            to_card: Vec::new(),
            command_chain: None,
            response_chain: None,
            t0_classes: (0, 0),
        }
    }

    /// `bmICCStatus` as the reader reports it.
    pub(crate) fn icc_status(&self) -> IccStatus {
        match &self.card {
            Some(card) if card.is_present() => {
                if self.powered && card.is_powered() {
                    IccStatus::PresentActive
                } else {
                    IccStatus::PresentInactive
                }
            }
            _ => IccStatus::Absent,
        }
    }

    pub(crate) fn is_present(&self) -> bool {
        self.card.as_ref().is_some_and(VirtualCard::is_present)
    }

    /// The card was taken out: the reader deactivates the contacts.
    pub(crate) fn card_removed(&mut self) {
        if let Some(card) = &mut self.card {
            card.remove();
        }
        self.deactivate();
    }

    fn deactivate(&mut self) {
        self.powered = false;
        self.clock_stopped = false;
        self.pps_window = false;
        self.from_card.clear();
        self.to_card.clear();
        self.command_chain = None;
        self.response_chain = None;
    }

    /// The parameters of the protocol the card runs right after its ATR.
    fn params_from_card(card: &VirtualCard) -> ProtocolData {
        let c = card.config();
        let fi_di = card.fi_di();
        let guard_time = c.extra_guard_time.unwrap_or(0);
        if card.protocol() == 1 {
            ProtocolData::T1(T1Params {
                findex_dindex: fi_di,
                tccks: 0x10 | u8::from(c.edc == EdcKind::Crc),
                guard_time,
                waiting_integers: (c.bwi << 4) | (c.cwi & 0x0F),
                clock_stop: 0,
                ifsc: card.ifsc(),
                nad: 0,
            })
        } else {
            ProtocolData::T0(T0Params {
                findex_dindex: fi_di,
                tccks: 0,
                guard_time,
                waiting_integer: c.wi.unwrap_or(10),
                clock_stop: 0,
            })
        }
    }

    fn fi_di(params: &ProtocolData) -> u8 {
        match params {
            ProtocolData::T0(p) => p.findex_dindex,
            ProtocolData::T1(p) => p.findex_dindex,
        }
    }

    /// Execute one well-formed command (the caller checked slot, busy state, framing).
    pub(crate) fn execute(
        &mut self,
        command: &Command<'_>,
        d: &ClassDescriptor,
        pin_entry: &PinEntry,
    ) -> Outcome {
        match *command {
            Command::IccPowerOn { power_select } => self.power_on(power_select, d),
            Command::IccPowerOff => {
                if let Some(card) = &mut self.card {
                    card.power_off();
                }
                self.deactivate();
                Answer::Status(0).into()
            }
            Command::GetSlotStatus => Answer::Status(self.clock_status()).into(),
            Command::XfrBlock {
                level_parameter,
                data,
                ..
            } => self.xfr_block(level_parameter, data, d),
            Command::GetParameters => Answer::Params(self.params).into(),
            Command::ResetParameters => {
                self.params = match &self.card {
                    Some(card) if self.powered => {
                        let mut p = Self::params_from_card(card);
                        match &mut p {
                            ProtocolData::T0(t) => t.findex_dindex = 0x11,
                            ProtocolData::T1(t) => t.findex_dindex = 0x11,
                        }
                        p
                    }
                    _ => default_t0(),
                };
                Answer::Params(self.params).into()
            }
            Command::SetParameters(params) => self.set_parameters(params, d),
            Command::Escape { data } => Answer::Escape(data.to_vec()).into(),
            Command::IccClock { clock_command } => match clock_command {
                0 => {
                    self.clock_stopped = false;
                    Answer::Status(0).into()
                }
                1 if self.powered => {
                    self.clock_stopped = true;
                    Answer::Status(self.clock_status()).into()
                }
                1 => fail(SlotError::IccMute),
                _ => fail(SlotError::BadParameter(OFFSET_HEADER_BYTE7)),
            },
            Command::T0Apdu {
                changes,
                class_get_response,
                class_envelope,
            } => {
                if !matches!(
                    d.exchange_level(),
                    ExchangeLevel::ShortApdu | ExchangeLevel::ExtendedApdu
                ) {
                    return fail(SlotError::CommandNotSupported);
                }
                if changes & 1 != 0 {
                    self.t0_classes.0 = class_get_response;
                }
                if changes & 2 != 0 {
                    self.t0_classes.1 = class_envelope;
                }
                Answer::Status(self.clock_status()).into()
            }
            Command::Secure { data, .. } => self.secure(&data, d, pin_entry),
            Command::Mechanical { .. } if d.mechanical == 0 => fail(SlotError::CommandNotSupported),
            Command::Mechanical { function } if (1..=5).contains(&function) => {
                Answer::Status(self.clock_status()).into()
            }
            Command::Mechanical { .. } => fail(SlotError::BadParameter(OFFSET_HEADER_BYTE7)),
            Command::Abort => Answer::Status(self.clock_status()).into(),
            Command::SetDataRateAndClockFrequency {
                clock_frequency_khz,
                data_rate,
            } => {
                let clock = if clock_frequency_khz >= d.default_clock_khz
                    && clock_frequency_khz <= d.maximum_clock_khz.max(d.default_clock_khz)
                {
                    clock_frequency_khz
                } else {
                    d.default_clock_khz
                };
                let rate = if data_rate >= d.data_rate && data_rate <= d.max_data_rate {
                    data_rate
                } else {
                    d.data_rate
                };
                Answer::Rates(clock, rate).into()
            }
        }
    }

    fn clock_status(&self) -> u8 {
        if self.powered && self.clock_stopped {
            1
        } else {
            0
        }
    }

    fn power_on(&mut self, power_select: u8, d: &ClassDescriptor) -> Outcome {
        let class_bit = match power_select {
            0 => None,
            1 => Some(VOLTAGE_5V),
            2 => Some(VOLTAGE_3V),
            3 => Some(VOLTAGE_1V8),
            _ => return fail(SlotError::BadParameter(OFFSET_HEADER_BYTE7)),
        };
        if let Some(bit) = class_bit {
            if d.voltage_support & bit == 0 {
                return fail(SlotError::BadParameter(OFFSET_HEADER_BYTE7));
            }
        }
        self.deactivate();
        let mute_fault = std::mem::take(&mut self.faults.mute);
        let Some(card) = self.card.as_mut().filter(|c| c.is_present()) else {
            return fail(SlotError::IccMute);
        };
        // Automatic selection: ISO/IEC 7816-3 §6.2.4 starts with the lowest
        // class; any class both reader and card support works here.
        let usable = match class_bit {
            Some(bit) => bit & self.card_voltages,
            None => {
                let reader = if d.voltage_support == 0 {
                    0x07
                } else {
                    d.voltage_support
                };
                reader & self.card_voltages
            }
        };
        if usable == 0 || mute_fault {
            card.power_off();
            return mute();
        }
        let Some(atr) = card.power_on() else {
            return mute();
        };
        self.powered = true;
        self.pps_window = true;
        if d.has_feature(features::AUTO_PARAMETER_NEGOTIATION) {
            // The reader negotiates TA1 and the first protocol itself.
            let ta1 = card.config().fi_di();
            let protocol = card.protocol();
            if ta1 != 0x11 {
                card.pps(&pps_request(protocol, ta1));
            }
            self.pps_window = false;
        }
        let card = self.card.as_ref().expect("present");
        self.params = Self::params_from_card(card);
        Answer::Data(0, atr).into()
    }

    fn set_parameters(&mut self, params: ProtocolData, d: &ClassDescriptor) -> Outcome {
        let protocol = params.protocol_num();
        if protocol == 0 && !d.supports_t0() || protocol == 1 && !d.supports_t1() {
            return fail(SlotError::BadParameter(OFFSET_HEADER_BYTE7));
        }
        let mut params = params;
        let automatic = d.has_feature(features::AUTO_PPS)
            || d.has_feature(features::AUTO_PARAMETER_NEGOTIATION);
        if let (true, true, Some(card)) = (automatic, self.powered, self.card.as_mut()) {
            let wanted = Self::fi_di(&params);
            if card.protocol() != protocol || card.fi_di() != wanted {
                let request = pps_request(protocol, wanted);
                let mut answer = card.pps(&request);
                if answer.is_none() {
                    // PPS is only allowed right after an ATR: reset and retry.
                    card.warm_reset();
                    answer = card.pps(&request);
                }
                if answer.is_none() {
                    return mute();
                }
                let agreed = card.fi_di();
                match &mut params {
                    ProtocolData::T0(p) => p.findex_dindex = agreed,
                    ProtocolData::T1(p) => p.findex_dindex = agreed,
                }
            }
            self.pps_window = false;
            if protocol == 1 && d.has_feature(features::AUTO_IFSD) {
                let ifsd = d.max_ifsd.clamp(1, 254) as u8;
                let mut block = vec![0x00, 0xC1, 0x01, ifsd];
                push_edc(&mut block, &params);
                card.t1_block(&block);
            }
        }
        self.params = params;
        Answer::Params(self.params).into()
    }

    /// The card's protocol and speed agree with the reader's parameters.
    fn link_ok(&self) -> Result<(), Outcome> {
        let card = match &self.card {
            Some(c) if c.is_present() && self.powered && c.is_powered() => c,
            _ => return Err(fail(SlotError::IccMute)),
        };
        if self.clock_stopped {
            return Err(fail(SlotError::IccMute));
        }
        if Self::fi_di(&self.params) != card.fi_di() {
            // Reader and card sample at different rates: garbage.
            return Err(Outcome {
                waited_for_card: true,
                ..fail(SlotError::XfrParityError)
            });
        }
        Ok(())
    }

    fn card(&mut self) -> &mut VirtualCard {
        self.card.as_mut().expect("link_ok checked the card")
    }

    fn xfr_block(&mut self, level: u16, data: &[u8], d: &ClassDescriptor) -> Outcome {
        match d.exchange_level() {
            ExchangeLevel::Character => self.character(level, data),
            ExchangeLevel::Tpdu => {
                if level != 0 {
                    return fail(SlotError::BadParameter(OFFSET_LEVEL_PARAMETER));
                }
                self.tpdu(data)
            }
            ExchangeLevel::ShortApdu => {
                if level != 0 {
                    return fail(SlotError::BadParameter(OFFSET_LEVEL_PARAMETER));
                }
                self.short_apdu(data)
            }
            _ => self.extended_apdu(level, data, d),
        }
    }

    /// A PPS from the host, passed to the card.
    fn host_pps(&mut self, data: &[u8]) -> Outcome {
        self.pps_window = false;
        match self.card().pps(data) {
            Some(answer) => Answer::Data(0, answer).into(),
            None => mute(),
        }
    }

    /// The card's answer block after the EDC/drop faults.
    fn card_t1_block(&mut self, block: &[u8]) -> Option<Vec<u8>> {
        let answer = self.card().t1_block(block);
        if std::mem::take(&mut self.faults.drop_next_answer) {
            return None;
        }
        let mut answer = answer?;
        if std::mem::take(&mut self.faults.corrupt_next_edc) {
            if let Some(last) = answer.last_mut() {
                *last ^= 0x5A;
            }
        }
        Some(answer)
    }

    fn tpdu(&mut self, data: &[u8]) -> Outcome {
        if let Err(o) = self.link_ok() {
            return o;
        }
        if self.pps_window && data.first() == Some(&0xFF) {
            return self.host_pps(data);
        }
        self.pps_window = false;
        let mut nulls = 0;
        let answer = match self.params {
            ProtocolData::T0(_) => {
                // The card's NULL bytes restart WWT inside the reader; a TPDU
                // reader reports each as a time extension (CCID §6.2.6
                // bmCommandStatus 2), so the host keeps waiting.
                nulls = self.t0_null_bytes(data);
                let answer = self.card().t0_tpdu(data);
                let dropped = std::mem::take(&mut self.faults.drop_next_answer);
                (!answer.is_empty() && !dropped).then_some(answer)
            }
            ProtocolData::T1(_) => self.card_t1_block(data),
        };
        match answer {
            Some(a) => Outcome {
                time_extensions: nulls,
                ..Answer::Data(0, a).into()
            },
            None => mute(),
        }
    }

    /// NULL procedure bytes the card sends before answering this T=0 TPDU.
    fn t0_null_bytes(&self, tpdu: &[u8]) -> u8 {
        match (&self.card, tpdu.get(1)) {
            (Some(card), Some(ins)) if card.config().slow.ins.contains(ins) => {
                card.config().slow.t0_nulls.min(255) as u8
            }
            _ => 0,
        }
    }

    fn character(&mut self, expected: u16, data: &[u8]) -> Outcome {
        if let Err(o) = self.link_ok() {
            return o;
        }
        if !data.is_empty() {
            let pps = self.pps_window && (data[0] == 0xFF || !self.to_card.is_empty());
            if pps {
                self.to_card.extend_from_slice(data);
                let need = self
                    .to_card
                    .get(1)
                    .map(|pps0| 3 + (4..7).filter(|b| pps0 & (1 << b) != 0).count());
                if need.is_some_and(|n| self.to_card.len() >= n) {
                    let request = std::mem::take(&mut self.to_card);
                    self.pps_window = false;
                    let answer = self.card().pps(&request).unwrap_or_default();
                    self.from_card.extend(answer);
                }
            } else {
                self.pps_window = false;
                match self.params {
                    ProtocolData::T0(_) => {
                        let answer = self.card().t0_receive(data);
                        if !std::mem::take(&mut self.faults.drop_next_answer) {
                            self.from_card.extend(answer);
                        }
                    }
                    ProtocolData::T1(p) => {
                        self.to_card.extend_from_slice(data);
                        let edc_len = if p.uses_crc() { 2 } else { 1 };
                        let complete = self.to_card.len() >= 3
                            && self.to_card.len() >= 3 + usize::from(self.to_card[2]) + edc_len;
                        if complete {
                            let block = std::mem::take(&mut self.to_card);
                            if let Some(answer) = self.card_t1_block(&block) {
                                self.from_card.extend(answer);
                            }
                        }
                    }
                }
            }
        }
        let expected = usize::from(expected);
        if self.from_card.len() < expected {
            // The card sent fewer characters than the host waits for.
            self.from_card.clear();
            return mute();
        }
        Answer::Data(0, self.from_card.drain(..expected).collect()).into()
    }

    /// Time extensions a slow command of the card causes at APDU level,
    /// where the reader hides the card's NULL bytes / S(WTX) from the host.
    fn card_busy_extensions(&self, apdu: &[u8]) -> (u8, u8) {
        let Some(card) = &self.card else {
            return (0, 1);
        };
        let slow = &card.config().slow;
        match apdu.get(1) {
            Some(ins) if slow.ins.contains(ins) => {
                let n = slow.t1_wtx_requests.max(slow.t0_nulls).min(255) as u8;
                (n, slow.wtx_multiplier.max(1))
            }
            _ => (0, 1),
        }
    }

    /// Reader↔card APDU exchange (not observable by the host).
    fn apdu_to_card(&mut self, apdu: &[u8]) -> Result<(Vec<u8>, u8, u8), Outcome> {
        self.link_ok()?;
        self.pps_window = false;
        let (n, multiplier) = self.card_busy_extensions(apdu);
        let response = self.card().process_apdu(apdu);
        if response.is_empty() || std::mem::take(&mut self.faults.drop_next_answer) {
            return Err(mute());
        }
        Ok((response, n, multiplier))
    }

    fn short_apdu(&mut self, apdu: &[u8]) -> Outcome {
        // Short APDUs: at most 5 + 255 + 1 bytes, no 00 Lc/Le escape.
        // Readers refuse anything else before talking to the card; we report
        // the offset of abData.
        let extended = apdu.len() > 5 && apdu[4] == 0;
        if extended || apdu.len() > 261 || apdu.len() < 4 {
            return fail(SlotError::BadParameter(OFFSET_DATA));
        }
        match self.apdu_to_card(apdu) {
            Ok((response, _, _)) if response.len() > 258 => fail(SlotError::XfrOverrun),
            Ok((response, n, multiplier)) => Outcome {
                time_extensions: n,
                multiplier,
                ..Answer::Data(0, response).into()
            },
            Err(o) => o,
        }
    }

    fn extended_apdu(&mut self, level: u16, data: &[u8], d: &ClassDescriptor) -> Outcome {
        let max_payload = (d.max_message_length as usize).saturating_sub(10).max(1);
        match level {
            0x0010 => {
                let Some(rest) = &mut self.response_chain else {
                    return fail(SlotError::BadParameter(OFFSET_LEVEL_PARAMETER));
                };
                let n = rest.len().min(max_payload);
                let part: Vec<u8> = rest.drain(..n).collect();
                let chain_parameter = if rest.is_empty() {
                    self.response_chain = None;
                    0x02
                } else {
                    0x03
                };
                return Answer::Data(chain_parameter, part).into();
            }
            0x0000 | 0x0001 => {
                if self.command_chain.is_some() {
                    self.command_chain = None;
                    return fail(SlotError::BadParameter(OFFSET_LEVEL_PARAMETER));
                }
                self.response_chain = None;
                if level == 0x0001 {
                    self.command_chain = Some(data.to_vec());
                    return Answer::Data(0x10, Vec::new()).into();
                }
            }
            0x0002 | 0x0003 => {
                let Some(chain) = &mut self.command_chain else {
                    return fail(SlotError::BadParameter(OFFSET_LEVEL_PARAMETER));
                };
                chain.extend_from_slice(data);
                if level == 0x0003 {
                    return Answer::Data(0x10, Vec::new()).into();
                }
            }
            _ => return fail(SlotError::BadParameter(OFFSET_LEVEL_PARAMETER)),
        }
        let apdu = match self.command_chain.take() {
            Some(chain) => chain,
            None => data.to_vec(),
        };
        let (response, n, multiplier) = match self.apdu_to_card(&apdu) {
            Ok(r) => r,
            Err(o) => return o,
        };
        let answer = if response.len() <= max_payload {
            Answer::Data(0, response)
        } else {
            let mut rest: VecDeque<u8> = response.into();
            let first: Vec<u8> = rest.drain(..max_payload).collect();
            self.response_chain = Some(rest);
            Answer::Data(0x01, first)
        };
        Outcome {
            time_extensions: n,
            multiplier,
            ..answer.into()
        }
    }

    /// PC_to_RDR_Secure (CCID §6.1.11): the pad inserts the typed PIN into
    /// the APDU template. APDU-level readers, and TPDU readers running T=0
    /// (where the reader maps the APDU itself), exchange it as an APDU. A
    /// TPDU reader with a T=1 card does not run T=1: like a real one it
    /// wraps the APDU in the block prologue the host computed (bTeoPrologue:
    /// NAD, PCB with the host's N(S), LEN), adds the EDC, sends that block
    /// and returns the card's response block untouched, so the host's T=1
    /// state (sequence numbers, chaining, S(WTX)) stays in step.
    fn secure(&mut self, data: &SecureData<'_>, d: &ClassDescriptor, entry: &PinEntry) -> Outcome {
        let (apdu, prologue) = match data {
            SecureData::Verify(v) if d.supports_pin_verify() => {
                (pin::verify_apdu(v, entry), v.teo_prologue)
            }
            SecureData::Modify(m) if d.supports_pin_modify() => {
                (pin::modify_apdu(m, entry), m.teo_prologue)
            }
            _ if d.pin_support == 0 => return fail(SlotError::CommandNotSupported),
            // bPINOperation not supported by this pad.
            _ => return fail(SlotError::BadParameter(OFFSET_DATA)),
        };
        let apdu = match apdu {
            Ok(apdu) => apdu,
            Err(e) => return fail(e),
        };
        let tpdu_t1 =
            d.exchange_level() == ExchangeLevel::Tpdu && matches!(self.params, ProtocolData::T1(_));
        if tpdu_t1 {
            return self.secure_t1_block(prologue, &apdu);
        }
        match self.apdu_to_card(&apdu) {
            Ok((response, n, multiplier)) => Outcome {
                time_extensions: n,
                multiplier,
                ..Answer::Data(0, response).into()
            },
            Err(o) => o,
        }
    }

    /// The T=1 block of a Secure at TPDU level: `prologue`, the APDU with
    /// the PIN as INF, the EDC the parameters name; the card's answer block
    /// goes back as it is (the prologue is used as given, as a real reader
    /// does: a LEN that does not match the APDU is the card's to refuse).
    fn secure_t1_block(&mut self, prologue: [u8; 3], apdu: &[u8]) -> Outcome {
        if let Err(o) = self.link_ok() {
            return o;
        }
        self.pps_window = false;
        let mut block = Vec::with_capacity(3 + apdu.len() + 2);
        block.extend_from_slice(&prologue);
        block.extend_from_slice(apdu);
        push_edc(&mut block, &self.params);
        match self.card_t1_block(&block) {
            Some(answer) => Answer::Data(0, answer).into(),
            None => mute(),
        }
    }
}

/// PPS request for protocol `t` with PPS1 = `fi_di` (omitted when default).
fn pps_request(t: u8, fi_di: u8) -> Vec<u8> {
    let mut r = vec![0xFF, t & 0x0F];
    if fi_di != 0x11 {
        r[1] |= 0x10;
        r.push(fi_di);
    }
    r.push(r.iter().fold(0, |a, b| a ^ b));
    r
}

fn push_edc(block: &mut Vec<u8>, params: &ProtocolData) {
    match params {
        ProtocolData::T1(p) if p.uses_crc() => {
            let crc = crc_bytes(block);
            block.extend_from_slice(&crc);
        }
        _ => {
            let l = lrc(block);
            block.push(l);
        }
    }
}

#[cfg(test)]
mod tests {
    //! Secure at TPDU level with a T=1 card, on the wire through
    //! `SimTransport` (CCID §6.1.11, ISO/IEC 7816-3 §11.3).
    use std::time::Duration;

    use crate::card::CardConfig;
    use crate::profile::Profile;
    use crate::transport::SimTransport;
    use ferroccid::Transport;

    const T: Duration = Duration::from_secs(5);

    fn xchg(t: &SimTransport, ty: u8, seq: u8, data: &[u8]) -> Vec<u8> {
        let mut f = vec![ty];
        f.extend_from_slice(&(data.len() as u32).to_le_bytes());
        f.extend_from_slice(&[0, seq, 0, 0, 0]);
        f.extend_from_slice(data);
        t.bulk_out(&f, T).unwrap();
        let mut buf = vec![0u8; 1024];
        let n = t.bulk_in(&mut buf, T).unwrap();
        buf.truncate(n);
        buf
    }

    /// abData of a PIN verification: ASCII digits, byte unit, position 0,
    /// left justified, 6-byte block, 4 to 8 digits, then bTeoPrologue and
    /// VERIFY (P2 81) with six placeholder bytes.
    fn verify(prologue: [u8; 3]) -> Vec<u8> {
        let mut s = vec![
            0, 0, 0x82, 0x06, 0x00, 0x08, 0x04, 0x02, 0x01, 0x09, 0x04, 0,
        ];
        s.extend_from_slice(&prologue);
        s.extend_from_slice(&[0x00, 0x20, 0x00, 0x81, 0x06, 0, 0, 0, 0, 0, 0]);
        s
    }

    fn lrc(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0, |a, b| a ^ b)
    }

    #[test]
    fn tpdu_reader_with_a_t1_card_sends_a_block_and_returns_the_card_block() {
        let mut profile = Profile::from_name("pinpad").unwrap();
        profile.slots[0].card = Some(CardConfig::t1());
        let (t, h) = SimTransport::open(profile);
        let on = xchg(&t, 0x62, 1, &[]);
        assert_eq!(on[7], 0, "card powered: {on:02X?}");
        // I(N(S)=0) prologue: NAD 00, PCB 00, LEN 11 (the template's length).
        let r = xchg(&t, 0x69, 2, &verify([0x00, 0x00, 0x0B]));
        assert_eq!((r[0], r[7]), (0x80, 0), "DataBlock, success: {r:02X?}");
        let block = &r[10..];
        // The card's I(N(S)=0) block with 90 00 and its LRC (ISO/IEC 7816-3
        // §11.3.1: NAD PCB LEN INF EDC), not the bare APDU.
        assert_eq!(block, &[0x00, 0x00, 0x02, 0x90, 0x00, 0x92]);
        assert_eq!(lrc(block), 0);
        // The next exchange has N(S)=1 (PCB 40); a wrong PIN: 63 C2.
        h.set_pin_entry(crate::profile::PinEntry::Typed {
            pin: "000000".into(),
            new_pin: String::new(),
        });
        let r = xchg(&t, 0x69, 3, &verify([0x00, 0x40, 0x0B]));
        assert_eq!(
            &r[10..],
            &[0x00, 0x40, 0x02, 0x63, 0xC2, 0x40 ^ 0x02 ^ 0x63 ^ 0xC2]
        );
    }

    #[test]
    fn t0_and_apdu_level_secure_still_exchange_apdus() {
        // T=0 card at TPDU level: the reader maps the APDU itself.
        let (t, _h) = SimTransport::open(Profile::from_name("pinpad").unwrap());
        xchg(&t, 0x62, 1, &[]);
        let r = xchg(&t, 0x69, 2, &verify([0; 3]));
        assert_eq!(&r[10..], &[0x90, 0x00]);
        // APDU level with a T=1 card: the reader runs T=1, the host sees APDUs.
        let mut profile = Profile::from_name("short-apdu").unwrap();
        profile.slots[0].card = Some(CardConfig::t1());
        let (t, _h) = SimTransport::open(profile);
        xchg(&t, 0x62, 1, &[]);
        let r = xchg(&t, 0x69, 2, &verify([0; 3]));
        assert_eq!(&r[10..], &[0x90, 0x00]);
    }
}
