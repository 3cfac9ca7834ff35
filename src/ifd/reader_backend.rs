//! [`Backend`] over the real stack: [`crate::device::open`] for the
//! transport, [`Reader`]/[`Slot`] for everything on the card path.
//!
//! What the reader API does not offer yet is built here on top of it:
//! - per-slot insertion counters and a cancellable wait-for-change with one
//!   waiter per slot (pcscd runs one polling thread per slot), fed by a
//!   small thread consuming [`Reader::events`];
//! - PC_to_RDR_Secure and PC_to_RDR_Escape, sent as raw CCID frames on the
//!   transport while every other operation of this reader is held off
//!   (`pipe`), since `Slot` has no such calls.
//!
//! The slots are opened with automatic GET RESPONSE / 6Cxx resend off:
//! pcscd's clients expect to see 61xx and 6Cxx and react themselves.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::backend::{Backend, BackendError, PinPad, ReaderInfo, SlotState, Wait};
use crate::ccid::command::{Command, CommandRepr};
use crate::ccid::descriptor::ExchangeLevel;
use crate::ccid::message::Message;
use crate::ccid::response::{Response, ResponseRepr};
use crate::ccid::secure::SecureData;
use crate::ccid::status::CommandStatus;
use crate::ccid::SlotError;
use crate::reader::{
    ErrorKind, ProtocolPreference, Reader, ReaderError, ReaderEvent, Slot, SlotOptions,
};
use crate::sim::control::{control_key, ControlWatcher};
use crate::transport::{DeviceName, Transport, TransportError};

/// Largest response APDU: 65536 data bytes and SW1 SW2.
const MAX_RESPONSE: usize = 65538;
/// Part 10 `bMinPINSize`/`bMaxPINSize` when the reader does not say
/// (CCID has no such field): the PIN lengths of ISO 9564-1.
const PIN_LENGTHS: (u8, u8) = (4, 12);
/// Added to a PIN pad's bTimeOut for the reader's own latency.
const SECURE_MARGIN: Duration = Duration::from_secs(5);
/// How long raw Escape commands may take.
const ESCAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time-extension frames accepted for one raw command.
const MAX_TIME_EXTENSIONS: u32 = 600;
/// SCARD_ATTR_CHANNEL_ID's data channel type for USB (PC/SC part 3).
const CHANNEL_TYPE_USB: u32 = 0x0020_0000;

/// Card events as the adapter counts them, per slot.
#[derive(Default)]
struct EventState {
    insertions: Vec<u64>,
    /// Bumped on any event of the slot.
    generation: Vec<u64>,
    /// The generation each slot's waiter last returned on.
    seen: Vec<u64>,
    /// A cancel is pending for the slot's waiter.
    cancel: Vec<bool>,
    /// Presence last seen by `slot_state`: counts insertions on readers
    /// without an interrupt endpoint (no event thread).
    last_present: Vec<bool>,
    gone: bool,
}

struct Events {
    state: Mutex<EventState>,
    wake: Condvar,
}

impl Events {
    fn lock(&self) -> MutexGuard<'_, EventState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A reader opened through [`crate::device::open`].
pub struct ReaderBackend {
    info: ReaderInfo,
    reader: Reader,
    slots: Vec<Slot>,
    transport: Arc<dyn Transport>,
    level: ExchangeLevel,
    events: Arc<Events>,
    /// Raw Secure/Escape frames take it exclusively so no `Slot` call
    /// reads their answer off the bulk pipe.
    pipe: RwLock<()>,
    raw_seq: AtomicU8,
    /// Keeps the simulator's control-file watcher alive (sim names only).
    _control: Option<ControlWatcher>,
    /// Set when the adapter is dropped: ends the event thread.
    closed: Arc<AtomicBool>,
}

impl Drop for ReaderBackend {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        self.events.wake.notify_all();
    }
}

fn kind_error(e: &ReaderError) -> BackendError {
    match e.kind() {
        ErrorKind::DeviceGone => BackendError::Gone,
        ErrorKind::NoCard => BackendError::NoCard,
        ErrorKind::Timeout => BackendError::Timeout,
        ErrorKind::NotSupported => BackendError::NotSupported,
        ErrorKind::Cancelled => BackendError::Cancelled,
        ErrorKind::CommunicationError | ErrorKind::InsufficientBuffer => {
            BackendError::Communication(e.to_string())
        }
    }
}

fn transport_error(e: TransportError) -> BackendError {
    match e {
        TransportError::DeviceGone => BackendError::Gone,
        TransportError::Timeout => BackendError::Timeout,
        TransportError::Cancelled => BackendError::Cancelled,
        other => BackendError::Communication(other.to_string()),
    }
}

/// Splits `PROFILE.TAG` into a built-in profile and a tag that only tells
/// several readers of one profile apart (reader.conf needs distinct
/// names, and the control files are keyed by it).
fn sim_profile(spec: Option<&str>) -> Option<String> {
    let spec = spec?;
    match spec.split_once('.') {
        Some((base, _))
            if crate::sim::profile::BUILTIN_NAMES.contains(&base) && !spec.ends_with(".json") =>
        {
            Some(base.to_owned())
        }
        _ => Some(spec.to_owned()),
    }
}

impl ReaderBackend {
    /// Opens the device `name`: `sim`, `sim:PROFILE[.TAG]`,
    /// `usbip:HOST:PORT/BUSID`, or a pcscd USB hotplug name.
    pub fn open(name: &str) -> Result<ReaderBackend, BackendError> {
        let parsed: DeviceName = name
            .parse()
            .map_err(|e: crate::transport::NameError| BackendError::Communication(e.to_string()))?;
        let (parsed, key) = match &parsed {
            DeviceName::Sim { profile } => (
                DeviceName::Sim {
                    profile: sim_profile(profile.as_deref()),
                },
                Some(control_key(profile.as_deref())),
            ),
            _ => (parsed, None),
        };
        let opened = crate::device::open_name(&parsed).map_err(transport_error)?;
        let reader = Reader::open(opened.transport.clone()).map_err(|e| match e.kind() {
            ErrorKind::DeviceGone => BackendError::Gone,
            _ => BackendError::Communication(e.to_string()),
        })?;
        let slots: Vec<Slot> = (0..reader.slot_count())
            .filter_map(|i| reader.slot(i).ok())
            .collect();
        for slot in &slots {
            slot.set_options(SlotOptions {
                auto_get_response: false,
                auto_resend_6c: false,
            });
        }
        let control = match (opened.sim, key) {
            (Some(handle), Some(key)) => {
                match crate::sim::control::watch_from_env(&key, slots.len() as u8, handle) {
                    Some(Ok(watcher)) => Some(watcher),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "cannot watch the simulator control directory");
                        None
                    }
                    None => None,
                }
            }
            _ => None,
        };
        let info = reader_info(&reader);
        let n = slots.len();
        let events = Arc::new(Events {
            state: Mutex::new(EventState {
                insertions: vec![0; n],
                generation: vec![0; n],
                seen: vec![0; n],
                cancel: vec![false; n],
                last_present: vec![false; n],
                gone: false,
            }),
            wake: Condvar::new(),
        });
        let closed = Arc::new(AtomicBool::new(false));
        if info.has_interrupt {
            spawn_event_thread(reader.events(), events.clone(), closed.clone())
                .map_err(|e| BackendError::Communication(e.to_string()))?;
        }
        Ok(ReaderBackend {
            info,
            level: reader.descriptor().exchange_level(),
            transport: opened.transport,
            reader,
            slots,
            events,
            pipe: RwLock::new(()),
            raw_seq: AtomicU8::new(0x80),
            _control: control,
            closed,
        })
    }

    fn slot(&self, slot: u8) -> Result<&Slot, BackendError> {
        self.slots
            .get(usize::from(slot))
            .ok_or(BackendError::NotSupported)
    }

    fn shared_pipe(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.pipe.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends one raw command and returns the payload of its answer,
    /// skipping time extensions and frames of other sequence numbers.
    fn raw(
        &self,
        repr: &CommandRepr<'_>,
        timeout: Duration,
    ) -> Result<(Vec<u8>, Option<SlotError>), BackendError> {
        let _pipe = self.pipe.write().unwrap_or_else(PoisonError::into_inner);
        if self.reader.is_gone() {
            return Err(BackendError::Gone);
        }
        let seq = self.raw_seq.fetch_add(1, Ordering::Relaxed);
        let mut frame = vec![0u8; repr.buffer_len()];
        let n = repr
            .emit(seq, &mut frame)
            .map_err(|e| BackendError::Communication(e.to_string()))?;
        self.transport
            .bulk_out(&frame[..n], timeout)
            .map_err(transport_error)?;
        let max = (self.reader.descriptor().max_message_length as usize).max(MAX_RESPONSE + 10);
        let mut buf = vec![0u8; max];
        let mut extensions = 0;
        let mut deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(BackendError::Timeout);
            }
            let n = self
                .transport
                .bulk_in(&mut buf, left)
                .map_err(transport_error)?;
            let msg = Message::new_checked(&buf[..n])
                .map_err(|e| BackendError::Communication(e.to_string()))?;
            if msg.seq() != seq {
                tracing::debug!(got = msg.seq(), expected = seq, "stale frame dropped");
                continue;
            }
            let response = ResponseRepr::parse(&msg)
                .map_err(|e| BackendError::Communication(e.to_string()))?;
            match response.status.command() {
                CommandStatus::TimeExtension => {
                    extensions += 1;
                    if extensions > MAX_TIME_EXTENSIONS {
                        return Err(BackendError::Timeout);
                    }
                    deadline = Instant::now() + timeout;
                }
                CommandStatus::Ok => {
                    let data = match response.response {
                        Response::DataBlock { data, .. } | Response::Escape { data } => data,
                        _ => &[],
                    };
                    return Ok((data.to_vec(), None));
                }
                CommandStatus::Failed => {
                    return Ok((Vec::new(), Some(SlotError::from_byte(response.error))));
                }
                CommandStatus::Reserved => {
                    return Err(BackendError::Communication(
                        "reserved bmCommandStatus".into(),
                    ))
                }
            }
        }
    }
}

fn reader_info(reader: &Reader) -> ReaderInfo {
    let t = reader.info();
    let d = reader.descriptor();
    let pinpad = (d.supports_pin_verify() || d.supports_pin_modify()).then_some(PinPad {
        verify: d.supports_pin_verify(),
        modify: d.supports_pin_modify(),
        lcd_layout: d.lcd_layout,
        min_pin: PIN_LENGTHS.0,
        max_pin: PIN_LENGTHS.1,
    });
    ReaderInfo {
        vendor_id: t.vendor_id,
        product_id: t.product_id,
        vendor_name: t.manufacturer.clone().unwrap_or_default(),
        product_name: t.product.clone().unwrap_or_else(|| t.name.clone()),
        serial: t.serial.clone(),
        bcd_device: t.bcd_device,
        slots: reader.slot_count().clamp(1, 255) as u8,
        // Short-APDU readers take at most Lc = 255; every other level
        // carries extended APDUs (T=1 chaining, or the reader does it).
        max_apdu_data: match d.exchange_level() {
            ExchangeLevel::ShortApdu => 255,
            _ => 65536,
        },
        has_interrupt: t
            .endpoints
            .as_ref()
            .is_some_and(|e| e.interrupt_in.is_some()),
        slots_concurrent: d.max_busy_slots > 1,
        pinpad,
        channel_id: CHANNEL_TYPE_USB | u32::from(t.bus) << 8 | u32::from(t.address),
    }
}

fn spawn_event_thread(
    rx: Receiver<ReaderEvent>,
    events: Arc<Events>,
    closed: Arc<AtomicBool>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("ferroccid-ifd-events".into())
        .spawn(move || loop {
            if closed.load(Ordering::SeqCst) {
                return;
            }
            let event = match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => ReaderEvent::DeviceGone,
            };
            let mut state = events.lock();
            match event {
                ReaderEvent::SlotChanged { slot, present } => {
                    let i = usize::from(slot);
                    if i < state.generation.len() {
                        if present {
                            state.insertions[i] += 1;
                        }
                        state.generation[i] += 1;
                    }
                }
                ReaderEvent::HardwareError { slot, code, .. } => {
                    tracing::warn!(slot, code, "reader hardware error");
                    if let Some(g) = state.generation.get_mut(usize::from(slot)) {
                        *g += 1;
                    }
                }
                ReaderEvent::DeviceGone => state.gone = true,
            }
            let gone = state.gone;
            drop(state);
            events.wake.notify_all();
            if gone {
                return;
            }
        })
        .map(|_| ())
}

impl Backend for ReaderBackend {
    fn info(&self) -> &ReaderInfo {
        &self.info
    }

    fn slot_state(&self, slot: u8) -> Result<SlotState, BackendError> {
        let _pipe = self.shared_pipe();
        let status = self.slot(slot)?.status().map_err(|e| kind_error(&e))?;
        if !self.info.has_interrupt {
            let mut state = self.events.lock();
            let i = usize::from(slot);
            if status.present && !state.last_present[i] {
                state.insertions[i] += 1;
            }
            state.last_present[i] = status.present;
        }
        Ok(match (status.present, status.powered) {
            (false, _) => SlotState::Absent,
            (true, false) => SlotState::Inactive,
            (true, true) => SlotState::Active,
        })
    }

    fn insertions(&self, slot: u8) -> u64 {
        self.events
            .lock()
            .insertions
            .get(usize::from(slot))
            .copied()
            .unwrap_or(0)
    }

    fn power_on(&self, slot: u8, warm: bool) -> Result<Vec<u8>, BackendError> {
        let _pipe = self.shared_pipe();
        let slot = self.slot(slot)?;
        let atr = if warm { slot.reset() } else { slot.power_on() };
        match atr {
            Ok(atr) => Ok(atr.as_bytes().to_vec()),
            Err(e) => Err(match e.kind() {
                ErrorKind::DeviceGone => BackendError::Gone,
                ErrorKind::NoCard if matches!(e, ReaderError::NoCard) => BackendError::NoCard,
                _ => {
                    tracing::warn!(error = %e, "power on failed");
                    BackendError::PowerFailed
                }
            }),
        }
    }

    fn power_off(&self, slot: u8) -> Result<(), BackendError> {
        let _pipe = self.shared_pipe();
        self.slot(slot)?.power_off().map_err(|e| kind_error(&e))
    }

    fn set_protocol(&self, slot: u8, t: u8, pps1: Option<u8>) -> Result<(), BackendError> {
        let _pipe = self.shared_pipe();
        if pps1.is_some() {
            // The reader logic picks Fi/Di from the ATR and the reader's
            // rates itself; a client's PPS1 is advice it does not take.
            tracing::debug!(?pps1, "client PPS1 ignored: negotiated from the ATR");
        }
        let preference = match t {
            0 => ProtocolPreference::T0,
            1 => ProtocolPreference::T1,
            _ => return Err(BackendError::ProtocolNotSupported),
        };
        match self.slot(slot)?.set_protocol(preference) {
            Ok(_) => Ok(()),
            Err(e @ ReaderError::PpsFailed { .. }) => {
                tracing::warn!(error = %e, "PPS failed");
                Err(BackendError::PpsFailed)
            }
            Err(ReaderError::Negotiation(e)) => {
                tracing::info!(error = %e, t, "protocol not offered");
                Err(BackendError::ProtocolNotSupported)
            }
            Err(e) => Err(match kind_error(&e) {
                BackendError::NotSupported => BackendError::ProtocolNotSupported,
                other => other,
            }),
        }
    }

    fn protocol(&self, slot: u8) -> Option<u8> {
        self.slots.get(usize::from(slot))?.protocol()
    }

    fn transmit(&self, slot: u8, apdu: &[u8]) -> Result<Vec<u8>, BackendError> {
        let _pipe = self.shared_pipe();
        let slot = self.slot(slot)?;
        let mut response = vec![0u8; MAX_RESPONSE];
        let n = slot
            .transmit(apdu, &mut response)
            .map_err(|e| kind_error(&e))?;
        response.truncate(n);
        Ok(response)
    }

    fn secure(&self, slot: u8, ab_data: &[u8]) -> Result<Vec<u8>, BackendError> {
        if self.info.pinpad.is_none() {
            return Err(BackendError::NotSupported);
        }
        let data =
            SecureData::parse(ab_data).map_err(|e| BackendError::Communication(e.reason.into()))?;
        if self.level == ExchangeLevel::Tpdu && self.protocol(slot) == Some(1) {
            // The reader wraps the APDU in the prologue we give (bTeoPrologue:
            // NAD, PCB with the T=1 engine's N(S), LEN) and answers the
            // card's block: that needs the engine's sequence state, which
            // `Slot` does not expose. A guessed N(S) would desynchronise
            // the card, so refuse instead.
            tracing::error!("PIN pad at TPDU level with a T=1 card: not supported yet");
            return Err(BackendError::NotSupported);
        }
        let timeout = Duration::from_secs(u64::from(ab_data.get(1).copied().unwrap_or(0)).max(30))
            + SECURE_MARGIN;
        let repr = CommandRepr {
            slot,
            command: Command::Secure {
                bwi: 0,
                level_parameter: 0,
                data,
            },
        };
        match self.raw(&repr, timeout)? {
            (answer, None) => Ok(answer),
            // Part 10 / libccid: the pad's own outcomes become status words.
            (_, Some(SlotError::PinTimeout)) => Ok(vec![0x64, 0x00]),
            (_, Some(SlotError::PinCancelled)) => Ok(vec![0x64, 0x01]),
            (_, Some(SlotError::CommandNotSupported)) => Err(BackendError::NotSupported),
            (_, Some(error)) => Err(BackendError::Communication(format!(
                "PC_to_RDR_Secure failed: {error:?}"
            ))),
        }
    }

    fn escape(&self, data: &[u8]) -> Result<Vec<u8>, BackendError> {
        let repr = CommandRepr {
            slot: 0,
            command: Command::Escape { data },
        };
        match self.raw(&repr, ESCAPE_TIMEOUT)? {
            (answer, None) => Ok(answer),
            (_, Some(SlotError::CommandNotSupported)) => Err(BackendError::NotSupported),
            (_, Some(error)) => Err(BackendError::Communication(format!(
                "PC_to_RDR_Escape failed: {error:?}"
            ))),
        }
    }

    fn wait_for_change(&self, slot: u8, timeout: Duration) -> Result<Wait, BackendError> {
        let i = usize::from(slot);
        let deadline = Instant::now() + timeout;
        let mut state = self.events.lock();
        if i >= state.generation.len() {
            return Err(BackendError::NotSupported);
        }
        loop {
            if std::mem::take(&mut state.cancel[i]) {
                return Ok(Wait::Cancelled);
            }
            if state.generation[i] != state.seen[i] {
                state.seen[i] = state.generation[i];
                return Ok(Wait::Changed);
            }
            if state.gone || self.reader.is_gone() {
                return Err(BackendError::Gone);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Wait::Timeout);
            }
            // Bounded slices: `is_gone` can change without a notification.
            let step = (deadline - now).min(Duration::from_millis(200));
            state = self
                .events
                .wake
                .wait_timeout(state, step)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn cancel_wait(&self) {
        let mut state = self.events.lock();
        state.cancel.iter_mut().for_each(|c| *c = true);
        drop(state);
        self.events.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_select_the_builtin_profile() {
        assert_eq!(sim_profile(None), None);
        assert_eq!(sim_profile(Some("pinpad")).as_deref(), Some("pinpad"));
        assert_eq!(
            sim_profile(Some("tpdu-t1.remove")).as_deref(),
            Some("tpdu-t1")
        );
        assert_eq!(sim_profile(Some("my.json")).as_deref(), Some("my.json"));
    }
}
