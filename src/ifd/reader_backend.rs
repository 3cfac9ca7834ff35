//! [`Backend`] over the real stack: [`crate::device::open`] for the
//! transport, [`Reader`]/[`Slot`] for everything else — the card path, PIN
//! pad (`Slot::secure`, which at TPDU level with a T=1 card wraps the APDU
//! with the slot's T=1 state), Escape (`Reader::escape`), insertion
//! counters and the per-slot wait for card events. Nothing here talks to
//! the transport directly, so nothing competes with the reader's own bSeq
//! and receive dispatch.
//!
//! The slots are opened with automatic GET RESPONSE / 6Cxx resend off:
//! pcscd's clients expect to see 61xx and 6Cxx and react themselves.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::backend::{
    deliver, Backend, BackendError, PinPad, ReaderInfo, ResponseSink, SlotState, Wait,
};
use crate::ccid::descriptor::ExchangeLevel;
use crate::reader::{
    ErrorKind, ProtocolPreference, Reader, ReaderError, ReaderOptions, Slot, SlotOptions, SlotWait,
};
use crate::sim::control::{control_key, ControlWatcher};
use crate::transport::{DeviceName, Transport, TransportError};

/// Largest response APDU: 65536 data bytes and SW1 SW2.
const MAX_RESPONSE: usize = 65538;
/// Part 10 `bMinPINSize`/`bMaxPINSize` when the reader does not say
/// (CCID has no such field): the PIN lengths of ISO 9564-1.
const PIN_LENGTHS: (u8, u8) = (4, 12);
/// SCARD_ATTR_CHANNEL_ID's data channel type for USB (PC/SC part 3).
const CHANNEL_TYPE_USB: u32 = 0x0020_0000;

/// A slot's response buffer, held for one exchange.
type ResponseBuffer<'a> = MutexGuard<'a, Box<[u8]>>;

/// A reader opened through [`crate::device::open`].
pub struct ReaderBackend {
    info: ReaderInfo,
    reader: Reader,
    slots: Vec<Slot>,
    /// One response buffer per slot, allocated when the reader opens and
    /// reused by every transmit and secure on that slot: pcscd transmits on
    /// different slots concurrently, so they cannot share one.
    responses: Vec<Mutex<Box<[u8]>>>,
    /// Keeps the simulator's control-file watcher alive (sim names only).
    _control: Option<ControlWatcher>,
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
        let mut backend = ReaderBackend::with_transport(opened.transport)?;
        backend._control = match (opened.sim, key) {
            (Some(handle), Some(key)) => {
                let slots = backend.slots.len() as u8;
                match crate::sim::control::watch_from_env(&key, slots, handle) {
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
        Ok(backend)
    }

    /// Opens the reader logic over an already open `transport` (what
    /// [`ReaderBackend::open`] does after resolving the name; tests use it
    /// to wrap the simulator), with the bundle's options
    /// ([`super::reader_options`]: the command time ceiling from
    /// Info.plist and the environment).
    pub fn with_transport(transport: Arc<dyn Transport>) -> Result<ReaderBackend, BackendError> {
        ReaderBackend::with_transport_and_options(transport, super::reader_options())
    }

    /// [`ReaderBackend::with_transport`] with explicit reader options.
    pub fn with_transport_and_options(
        transport: Arc<dyn Transport>,
        options: ReaderOptions,
    ) -> Result<ReaderBackend, BackendError> {
        let reader = Reader::open_with(transport, options).map_err(|e| match e.kind() {
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
        let info = reader_info(&reader);
        // Counting insertions starts now (on readers with an interrupt
        // endpoint this starts the reader's event thread).
        for slot in &slots {
            slot.insertions();
        }
        let responses = slots
            .iter()
            .map(|_| Mutex::new(vec![0u8; MAX_RESPONSE].into_boxed_slice()))
            .collect();
        Ok(ReaderBackend {
            info,
            reader,
            slots,
            responses,
            _control: None,
        })
    }

    /// The slot and its response buffer, locked.
    fn slot_with_buffer(&self, slot: u8) -> Result<(&Slot, ResponseBuffer<'_>), BackendError> {
        let index = usize::from(slot);
        match (self.slots.get(index), self.responses.get(index)) {
            (Some(slot), Some(buffer)) => Ok((
                slot,
                // A panic while the buffer was held left only bytes in it.
                buffer.lock().unwrap_or_else(PoisonError::into_inner),
            )),
            _ => Err(BackendError::NotSupported),
        }
    }

    fn slot(&self, slot: u8) -> Result<&Slot, BackendError> {
        self.slots
            .get(usize::from(slot))
            .ok_or(BackendError::NotSupported)
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

impl Backend for ReaderBackend {
    fn info(&self) -> &ReaderInfo {
        &self.info
    }

    fn slot_state(&self, slot: u8) -> Result<SlotState, BackendError> {
        let status = self.slot(slot)?.status().map_err(|e| kind_error(&e))?;
        Ok(match (status.present, status.powered) {
            (false, _) => SlotState::Absent,
            (true, false) => SlotState::Inactive,
            (true, true) => SlotState::Active,
        })
    }

    fn insertions(&self, slot: u8) -> u64 {
        self.slots
            .get(usize::from(slot))
            .map_or(0, Slot::insertions)
    }

    fn power_on(&self, slot: u8, warm: bool) -> Result<Vec<u8>, BackendError> {
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
        self.slot(slot)?.power_off().map_err(|e| kind_error(&e))
    }

    fn set_protocol(&self, slot: u8, t: u8, pps1: Option<u8>) -> Result<(), BackendError> {
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

    fn transmit(
        &self,
        slot: u8,
        apdu: &[u8],
        out: &mut dyn ResponseSink,
    ) -> Result<usize, BackendError> {
        let (slot, mut response) = self.slot_with_buffer(slot)?;
        // The whole response lands in the slot's own buffer first, so a
        // short `out` never cuts a T=1 chain in the middle.
        let n = slot
            .transmit(apdu, &mut response)
            .map_err(|e| kind_error(&e))?;
        deliver(&response[..n], out)
    }

    fn secure(&self, slot: u8, ab_data: &[u8]) -> Result<Vec<u8>, BackendError> {
        if self.info.pinpad.is_none() {
            return Err(BackendError::NotSupported);
        }
        let (slot, mut response) = self.slot_with_buffer(slot)?;
        match slot.secure(ab_data, &mut response) {
            Ok(n) => Ok(response[..n].to_vec()),
            // Part 10 / libccid: the pad's own outcomes become status words.
            Err(ReaderError::PinTimeout) => Ok(vec![0x64, 0x00]),
            Err(ReaderError::PinCancelled) => Ok(vec![0x64, 0x01]),
            Err(ReaderError::InvalidSecureData { reason }) => {
                Err(BackendError::Communication(reason.into()))
            }
            Err(e) => {
                tracing::warn!(error = %e, "PC_to_RDR_Secure failed");
                Err(kind_error(&e))
            }
        }
    }

    fn escape(&self, data: &[u8]) -> Result<Vec<u8>, BackendError> {
        let mut response = vec![0u8; MAX_RESPONSE];
        let n = self
            .reader
            .escape(data, &mut response)
            .map_err(|e| kind_error(&e))?;
        response.truncate(n);
        Ok(response)
    }

    fn wait_for_change(&self, slot: u8, timeout: Duration) -> Result<Wait, BackendError> {
        match self.slot(slot)?.wait_for_change(timeout) {
            Ok(SlotWait::Changed) => Ok(Wait::Changed),
            Ok(SlotWait::Timeout) => Ok(Wait::Timeout),
            Ok(SlotWait::Cancelled) => Ok(Wait::Cancelled),
            Err(e) => Err(kind_error(&e)),
        }
    }

    fn cancel_wait(&self) {
        self.reader.cancel_wait();
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
