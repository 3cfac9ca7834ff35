//! The simulated CCID reader: a device model that answers raw bulk-OUT
//! messages with raw bulk-IN frames, raises interrupt-IN notifications and
//! answers the class control requests, exactly as a USB reader does.
//!
//! Like the card, the model is sans-IO: the caller feeds it bytes with the
//! current time and polls frames that are due ([`ReaderModel::poll_bulk_in`]).
//! Each command schedules its answer (preceded by time-extension frames
//! when the reader or the card is slow); a slot is busy until its answer is
//! due, which is what makes `CMD_SLOT_BUSY`, `bMaxCCIDBusySlots`, ABORT and
//! card removal in mid-exchange observable. The transport
//! ([`crate::transport`]) adds the blocking, the condvar and the clock.
//!
//! | module | what |
//! |---|---|
//! | [`slot`] | per-slot state and the exchange levels |
//! | [`pin`] | the pinpad's PIN insertion |
//! | [`fault`] | injectable faults |
//! | [`violation`] | standing breaches of CCID, one per conformance check |
//!
//! Malformed commands get the answers of CCID §6.2.6, documented on
//! [`ReaderModel::receive_bulk_out`].

pub(crate) mod fault;
pub(crate) mod pin;
pub(crate) mod slot;
pub(crate) mod violation;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ferroccid::ccid::command::CommandRepr;
use ferroccid::ccid::interrupt::{emit_hardware_error, emit_notify_slot_change};

use crate::card::{CardConfig, VirtualCard};
use crate::profile::{PinEntry, Profile};
use ferroccid::ccid::response::{Response, ResponseRepr};
use ferroccid::ccid::{
    ClassDescriptor, CommandStatus, IccStatus, Message, MessageType, SlotError, Status, HEADER_LEN,
};

pub use fault::{ResponseFault, SlotFaults};
use slot::{Answer, Outcome, Slot};
pub use violation::Violation;

/// Offset of `dwLength`.
const OFFSET_LENGTH: u8 = 1;
/// Offset of `bSlot`.
const OFFSET_SLOT: u8 = 5;
/// Offset of `bProtocolNum` and other one-byte header parameters.
const OFFSET_HEADER_BYTE7: u8 = 7;
/// Offset of `abData`.
const OFFSET_DATA: u8 = 10;

/// A bulk-IN frame waiting for its time.
#[derive(Debug, Clone)]
struct Pending {
    due: Instant,
    order: u64,
    slot: u8,
    seq: u8,
    command: MessageType,
    /// The command's answer (not a time-extension frame).
    last: bool,
    frame: Vec<u8>,
}

/// The reader.
#[derive(Debug)]
pub struct ReaderModel {
    profile: Profile,
    descriptor: ClassDescriptor,
    slots: Vec<Slot>,
    pending: Vec<Pending>,
    next_order: u64,
    interrupts: VecDeque<Vec<u8>>,
    response_faults: VecDeque<ResponseFault>,
    /// Per slot: bSeq of an ABORT control request not yet matched by PC_to_RDR_Abort.
    abort_requested: Vec<Option<u8>>,
    /// Per slot: bSeq of a PC_to_RDR_Abort waiting for its control request.
    abort_command: Vec<Option<u8>>,
    last_seq: Vec<u8>,
    /// The breach of CCID this reader commits, if any.
    violation: Option<Violation>,
}

fn emit(slot: u8, seq: u8, status: Status, error: u8, response: Response<'_>) -> Vec<u8> {
    let repr = ResponseRepr {
        slot,
        status,
        error,
        response,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(seq, &mut buf)
        .expect("buffer sized by buffer_len");
    buf
}

/// A failure answer with the response type of `command`.
fn failure(command: MessageType, slot: u8, seq: u8, icc: IccStatus, error: SlotError) -> Vec<u8> {
    let status = Status::new(icc, CommandStatus::Failed);
    let response = match command.response_type() {
        Some(MessageType::DataBlock) => Response::DataBlock {
            chain_parameter: 0,
            data: &[],
        },
        Some(MessageType::Parameters) => Response::Parameters {
            protocol_num: 0,
            params: None,
        },
        Some(MessageType::EscapeResponse) => Response::Escape { data: &[] },
        Some(MessageType::DataRateAndClockFrequency) => {
            Response::DataRateAndClockFrequency { values: None }
        }
        _ => Response::SlotStatus { clock_status: 0 },
    };
    emit(slot, seq, status, error.to_byte(), response)
}

impl ReaderModel {
    /// A reader configured by `profile`, with its cards inserted (unpowered).
    /// A NotifySlotChange reporting the occupied slots is queued on the
    /// interrupt endpoint, as readers do when plugged in.
    pub fn new(profile: Profile) -> ReaderModel {
        let descriptor = profile.class_descriptor();
        let count = profile.slot_count();
        let mut slots: Vec<Slot> = profile.slots.iter().take(count).map(Slot::new).collect();
        while slots.len() < count {
            slots.push(Slot::new(&crate::profile::SlotProfile {
                card: None,
                card_voltages: 0,
            }));
        }
        let mut model = ReaderModel {
            profile,
            descriptor,
            slots,
            pending: Vec::new(),
            next_order: 0,
            interrupts: VecDeque::new(),
            response_faults: VecDeque::new(),
            abort_requested: vec![None; count],
            abort_command: vec![None; count],
            last_seq: vec![0; count],
            violation: None,
        };
        let changed: Vec<bool> = model.slots.iter().map(Slot::is_present).collect();
        model.notify(&changed);
        model
    }

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The decoded class descriptor.
    pub fn descriptor(&self) -> &ClassDescriptor {
        &self.descriptor
    }

    /// The card in `slot`, for inspection by tests.
    pub fn card(&self, slot: u8) -> Option<&VirtualCard> {
        self.slots.get(usize::from(slot))?.card.as_ref()
    }

    fn notify(&mut self, changed: &[bool]) {
        let states: Vec<(bool, bool)> = self
            .slots
            .iter()
            .zip(changed)
            .map(|(s, &c)| (s.is_present(), c))
            .collect();
        let mut buf = vec![0u8; 1 + states.len().div_ceil(4)];
        let n = emit_notify_slot_change(&states, &mut buf).expect("sized");
        buf.truncate(n);
        self.interrupts.push_back(buf);
    }

    fn is_busy(&self, slot: u8, now: Instant) -> bool {
        self.pending
            .iter()
            .any(|p| p.slot == slot && p.last && p.due > now)
    }

    fn busy_slots(&self, now: Instant) -> usize {
        (0..self.slots.len() as u8)
            .filter(|&s| self.is_busy(s, now))
            .count()
    }

    fn schedule(
        &mut self,
        due: Instant,
        slot: u8,
        seq: u8,
        command: MessageType,
        last: bool,
        mut frame: Vec<u8>,
    ) {
        if let Some(violation) = self.violation {
            violation.bend_frame(command as u8, seq, last, &mut frame);
        }
        self.pending.push(Pending {
            due,
            order: self.next_order,
            slot,
            seq,
            command,
            last,
            frame,
        });
        self.next_order += 1;
    }

    fn icc(&self, slot: u8) -> IccStatus {
        self.slots
            .get(usize::from(slot))
            .map_or(IccStatus::Absent, Slot::icc_status)
    }

    /// Answer a command right away (errors detected before execution).
    fn reject(&mut self, now: Instant, command: MessageType, slot: u8, seq: u8, error: SlotError) {
        let frame = failure(command, slot, seq, self.icc(slot), error);
        self.schedule(now, slot, seq, command, true, frame);
    }

    /// Feed one bulk-OUT transfer.
    ///
    /// Framing errors, checked in this order, are answered at once with
    /// `bmCommandStatus` = failed and the `bError` of CCID §6.2.6:
    /// fewer than 10 bytes → no answer (a real reader cannot even echo bSeq);
    /// unknown `bMessageType` (or a response type) → SlotStatus, bError 0;
    /// `dwLength` not matching the bytes received, or a message longer than
    /// `dwMaxCCIDMessageLength` → bError 1; `bSlot` > `bMaxSlotIndex` →
    /// bError 5; a busy slot, or `bMaxCCIDBusySlots` slots busy → CMD_SLOT_BUSY;
    /// a payload the command does not allow → bError 1 (`dwLength`), 7
    /// (`bProtocolNum`) or 10 (`abData`).
    pub fn receive_bulk_out(&mut self, bytes: &[u8], now: Instant) {
        if bytes.len() < HEADER_LEN {
            return;
        }
        let (slot, seq) = (bytes[OFFSET_SLOT as usize], bytes[6]);
        let Some(ty) = MessageType::from_byte(bytes[0]).filter(|t| t.is_command()) else {
            let mut frame = failure(
                MessageType::GetSlotStatus,
                slot,
                seq,
                self.icc(slot),
                SlotError::CommandNotSupported,
            );
            if self.violation == Some(Violation::UnknownCommand) {
                frame[7] &= 0x03;
            }
            self.schedule(now, slot, seq, MessageType::GetSlotStatus, true, frame);
            return;
        };
        let declared = u64::from(u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]));
        let max = u64::from(self.descriptor.max_message_length.max(HEADER_LEN as u32));
        let too_long = if self.violation == Some(Violation::MessageLengthHonoured) {
            declared + HEADER_LEN as u64 >= max
        } else {
            declared + HEADER_LEN as u64 > max
        };
        if declared != (bytes.len() - HEADER_LEN) as u64 || too_long {
            return self.reject(now, ty, slot, seq, SlotError::BadParameter(OFFSET_LENGTH));
        }
        if usize::from(slot) >= self.slots.len() {
            let error = if self.violation == Some(Violation::BadSlot) {
                SlotError::CommandNotSupported
            } else {
                SlotError::BadParameter(OFFSET_SLOT)
            };
            return self.reject(now, ty, slot, seq, error);
        }
        self.last_seq[usize::from(slot)] = seq;
        if ty == MessageType::Abort {
            return self.abort_command(slot, seq, now);
        }
        let max_busy = usize::from(self.descriptor.max_busy_slots.max(1));
        if self.is_busy(slot, now) || self.busy_slots(now) >= max_busy {
            return self.reject(now, ty, slot, seq, SlotError::CmdSlotBusy);
        }
        if self.violation == Some(Violation::VoltageSelection)
            && ty == MessageType::IccPowerOn
            && bytes[OFFSET_HEADER_BYTE7 as usize] == 1
        {
            let error = SlotError::BadParameter(OFFSET_HEADER_BYTE7);
            return self.reject(now, ty, slot, seq, error);
        }
        let msg = Message::new_checked(bytes).expect("length and type checked above");
        let command = match CommandRepr::parse(&msg) {
            Ok(c) => c.command,
            Err(_) => {
                let offset = match ty {
                    MessageType::SetParameters if !matches!(bytes[7], 0 | 1) => OFFSET_HEADER_BYTE7,
                    MessageType::Secure => OFFSET_DATA,
                    _ => OFFSET_LENGTH,
                };
                return self.reject(now, ty, slot, seq, SlotError::BadParameter(offset));
            }
        };
        let pin_entry: PinEntry = self.profile.pin_entry.clone();
        let s = &mut self.slots[usize::from(slot)];
        let mut outcome: Outcome = s.execute(&command, &self.descriptor, &pin_entry);
        if matches!(ty, MessageType::XfrBlock | MessageType::Secure) {
            let extra =
                self.profile.time_extensions + std::mem::take(&mut s.faults.time_extensions_next);
            outcome.time_extensions = outcome.time_extensions.saturating_add(extra);
        }
        self.deliver(now, ty, slot, seq, outcome);
    }

    fn deliver(&mut self, now: Instant, ty: MessageType, slot: u8, seq: u8, outcome: Outcome) {
        let step = self.profile.exchange_latency;
        let mut due = now;
        let icc = self.icc(slot);
        for _ in 0..outcome.time_extensions {
            due += step;
            let status = Status::new(icc, CommandStatus::TimeExtension);
            let response = match ty.response_type() {
                Some(MessageType::DataBlock) => Response::DataBlock {
                    chain_parameter: 0,
                    data: &[],
                },
                _ => Response::SlotStatus { clock_status: 0 },
            };
            let frame = emit(slot, seq, status, outcome.multiplier, response);
            self.schedule(due, slot, seq, ty, false, frame);
        }
        if outcome.time_extensions > 0
            || matches!(
                ty,
                MessageType::XfrBlock | MessageType::Secure | MessageType::IccPowerOn
            )
        {
            due += step;
        }
        if outcome.waited_for_card {
            due += self.profile.mute_timeout;
        }
        let ok = Status::new(icc, CommandStatus::Ok);
        let frame = match outcome.answer {
            Answer::Failed(e) => failure(ty, slot, seq, icc, e),
            Answer::Data(chain_parameter, data) => emit(
                slot,
                seq,
                ok,
                0,
                Response::DataBlock {
                    chain_parameter,
                    data: &data,
                },
            ),
            Answer::Status(clock_status) => {
                emit(slot, seq, ok, 0, Response::SlotStatus { clock_status })
            }
            Answer::Params(p) => emit(
                slot,
                seq,
                ok,
                0,
                Response::Parameters {
                    protocol_num: p.protocol_num(),
                    params: Some(p),
                },
            ),
            Answer::Escape(data) => emit(slot, seq, ok, 0, Response::Escape { data: &data }),
            Answer::Rates(clock, rate) => emit(
                slot,
                seq,
                ok,
                0,
                Response::DataRateAndClockFrequency {
                    values: Some((clock, rate)),
                },
            ),
        };
        self.schedule(due, slot, seq, ty, true, frame);
    }

    /// PC_to_RDR_Abort: answered once the ABORT control request for the same
    /// bSeq has arrived (before or after it), CCID §5.3.1.
    fn abort_command(&mut self, slot: u8, seq: u8, now: Instant) {
        if self.violation == Some(Violation::Abort) {
            return;
        }
        let i = usize::from(slot);
        if self.abort_requested[i] == Some(seq) {
            self.abort_requested[i] = None;
            self.abort_answer(slot, seq, now);
        } else {
            self.abort_command[i] = Some(seq);
        }
    }

    fn abort_answer(&mut self, slot: u8, seq: u8, now: Instant) {
        let status = Status::new(self.icc(slot), CommandStatus::Ok);
        let frame = emit(
            slot,
            seq,
            status,
            0,
            Response::SlotStatus { clock_status: 0 },
        );
        self.schedule(now, slot, seq, MessageType::Abort, true, frame);
    }

    /// Class request ABORT (`wValue` = bSeq << 8 | bSlot): the command still
    /// running on the slot is answered at once with CMD_ABORTED and its
    /// remaining time-extension frames are dropped. bSeq is that of the
    /// PC_to_RDR_Abort to come (CCID §5.3.1; libccid takes a fresh bSeq),
    /// not necessarily the running command's, so it does not select it.
    pub fn control_abort(&mut self, value: u16, now: Instant) -> bool {
        let (slot, seq) = ((value & 0xFF) as u8, (value >> 8) as u8);
        let i = usize::from(slot);
        if i >= self.slots.len() {
            return false;
        }
        let running: Vec<(u8, MessageType)> = self
            .pending
            .iter()
            .filter(|p| p.slot == slot && p.due > now && p.command != MessageType::Abort)
            .map(|p| (p.seq, p.command))
            .collect();
        if let Some(&(running_seq, command)) = running.first() {
            self.pending
                .retain(|p| !(p.slot == slot && p.due > now && p.command != MessageType::Abort));
            let frame = failure(
                command,
                slot,
                running_seq,
                self.icc(slot),
                SlotError::CmdAborted,
            );
            self.schedule(now, slot, running_seq, command, true, frame);
        }
        if self.abort_command[i] == Some(seq) {
            self.abort_command[i] = None;
            self.abort_answer(slot, seq, now);
        } else {
            self.abort_requested[i] = Some(seq);
        }
        true
    }

    /// GET_CLOCK_FREQUENCIES (0x02) / GET_DATA_RATES (0x03): the list as
    /// little-endian u32s; `None` (stall) for an empty list or another request.
    pub fn control_in(&self, request: u8) -> Option<Vec<u8>> {
        let list = match request {
            ferroccid::ccid::control::GET_CLOCK_FREQUENCIES => &self.profile.clock_frequencies_khz,
            ferroccid::ccid::control::GET_DATA_RATES => &self.profile.data_rates,
            _ => return None,
        };
        if list.is_empty() {
            return None;
        }
        Some(list.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    /// When the next bulk-IN frame is due, if any is scheduled.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.due).min()
    }

    /// The next bulk-IN frame due at `now` (earliest first, then in the
    /// order scheduled), with a pending [`ResponseFault`] applied.
    pub fn poll_bulk_in(&mut self, now: Instant) -> Option<Vec<u8>> {
        let index = self
            .pending
            .iter()
            .enumerate()
            .filter(|(_, p)| p.due <= now)
            .min_by_key(|(_, p)| (p.due, p.order))
            .map(|(i, _)| i)?;
        let mut frame = self.pending.remove(index).frame;
        if let Some(fault) = self.response_faults.pop_front() {
            fault.apply(&mut frame, self.descriptor.max_message_length);
        }
        Some(frame)
    }

    /// The next interrupt-IN message.
    pub fn poll_interrupt(&mut self) -> Option<Vec<u8>> {
        self.interrupts.pop_front()
    }

    /// Damage the next bulk-IN frame.
    pub fn inject_response_fault(&mut self, fault: ResponseFault) {
        self.response_faults.push_back(fault);
    }

    /// Per-slot faults (used once each).
    pub fn slot_faults(&mut self, slot: u8) -> Option<&mut SlotFaults> {
        self.slots.get_mut(usize::from(slot)).map(|s| &mut s.faults)
    }

    /// Take the card out of `slot`: NotifySlotChange, and a command still
    /// running on the slot fails with ICC_MUTE and "no ICC present".
    pub fn remove_card(&mut self, slot: u8, now: Instant) {
        let i = usize::from(slot);
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        let was_present = s.is_present();
        s.card_removed();
        let running: Vec<(u8, MessageType)> = self
            .pending
            .iter()
            .filter(|p| p.slot == slot && p.last && p.due > now)
            .map(|p| (p.seq, p.command))
            .collect();
        self.pending.retain(|p| !(p.slot == slot && p.due > now));
        for (seq, command) in running {
            let frame = failure(command, slot, seq, IccStatus::Absent, SlotError::IccMute);
            self.schedule(now, slot, seq, command, true, frame);
        }
        if was_present && self.violation != Some(Violation::NotifySlotChange) {
            let mut changed = vec![false; self.slots.len()];
            changed[i] = true;
            self.notify(&changed);
        }
    }

    /// Put a card back into `slot` (the one removed, or `card` if given).
    pub fn insert_card(&mut self, slot: u8, card: Option<CardConfig>) {
        let i = usize::from(slot);
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        let was_present = s.is_present();
        match (card, &mut s.card) {
            (Some(config), _) => s.card = Some(VirtualCard::new(config)),
            (None, Some(existing)) => existing.insert(),
            (None, None) => s.card = Some(VirtualCard::new(CardConfig::default())),
        }
        if s.card_voltages == 0 {
            s.card_voltages = crate::profile::VOLTAGE_ALL;
        }
        if !was_present {
            let mut changed = vec![false; self.slots.len()];
            changed[i] = true;
            self.notify(&changed);
        }
    }

    /// Queue RDR_to_PC_HardwareError for `slot` (code 1 = overcurrent).
    pub fn hardware_error(&mut self, slot: u8, code: u8) {
        let seq = self.last_seq.get(usize::from(slot)).copied().unwrap_or(0);
        let mut buf = [0u8; 4];
        emit_hardware_error(slot, seq, code, &mut buf).expect("4 bytes");
        self.interrupts.push_back(buf.to_vec());
    }

    /// Change what the user does on the pinpad.
    pub fn set_pin_entry(&mut self, entry: PinEntry) {
        self.profile.pin_entry = entry;
    }

    /// Commit `violation` from now on (see [`Violation`]).
    pub fn set_violation(&mut self, violation: Violation) {
        self.violation = Some(violation);
    }

    /// The breach of CCID this reader commits, if any.
    pub fn violation(&self) -> Option<Violation> {
        self.violation
    }

    /// Change the time-extension frames sent before every card exchange.
    pub fn set_time_extensions(&mut self, count: u8, step: Duration) {
        self.profile.time_extensions = count;
        self.profile.exchange_latency = step;
    }
}
