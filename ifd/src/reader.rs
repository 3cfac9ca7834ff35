//! The reader as pcscd sees it: [`IfdReader`] opens a device name through
//! [`ferroccid::open_name`] and drives everything through
//! [`Reader`]/[`Slot`] — the card path, PIN pad (`Slot::secure`, which at
//! TPDU level with a T=1 card wraps the APDU with the slot's T=1 state),
//! Escape (`Reader::escape`), insertion counters and the per-slot wait for
//! card events. Nothing here talks to the transport directly, so nothing
//! competes with the reader's own bSeq and receive dispatch.
//!
//! The slots are opened with automatic GET RESPONSE / 6Cxx resend off:
//! pcscd's clients expect to see 61xx and 6Cxx and react themselves.
//!
//! Also the plain types `driver` works with: [`ReaderInfo`], [`SlotState`],
//! [`IfdError`] (each mapped to an IFD code there) and [`ResponseSink`].

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ferroccid::ccid::descriptor::ExchangeLevel;
use ferroccid::{DeviceName, Transport, TransportError};
use ferroccid::{
    ErrorKind, ProtocolPreference, Reader, ReaderError, ReaderOptions, Slot, SlotOptions, SlotWait,
};

/// Largest response APDU: 65536 data bytes and SW1 SW2.
const MAX_RESPONSE: usize = 65538;
/// Part 10 `bMinPINSize`/`bMaxPINSize` when the reader does not say
/// (CCID has no such field): the PIN lengths of ISO 9564-1.
const PIN_LENGTHS: (u8, u8) = (4, 12);
/// SCARD_ATTR_CHANNEL_ID's data channel type for USB (PC/SC part 3).
const CHANNEL_TYPE_USB: u32 = 0x0020_0000;

/// Card state of one slot as the reader reports it (CCID bmICCStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// No card.
    Absent,
    /// A card, contacts not active.
    Inactive,
    /// A card, powered.
    Active,
}

/// PIN pad capabilities (CCID bPINSupport plus what part 10 reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinPad {
    /// PIN verification supported.
    pub verify: bool,
    /// PIN modification supported.
    pub modify: bool,
    /// wLcdLayout: 0 = no display, else 0xLLCC lines/characters.
    pub lcd_layout: u16,
    /// Smallest PIN the pad accepts, in digits.
    pub min_pin: u8,
    /// Largest PIN the pad accepts, in digits.
    pub max_pin: u8,
}

/// Static facts about an open reader.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReaderInfo {
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// Manufacturer string.
    pub vendor_name: String,
    /// Product string.
    pub product_name: String,
    /// Serial number string.
    pub serial: Option<String>,
    /// bcdDevice.
    pub bcd_device: u16,
    /// bMaxSlotIndex + 1.
    pub slots: u8,
    /// Largest command APDU data field (261-5 for short-only readers,
    /// 65536 with extended APDUs): part 10's dwMaxAPDUDataSize.
    pub max_apdu_data: u32,
    /// The reader has an interrupt endpoint (card events are pushed).
    pub has_interrupt: bool,
    /// bMaxCCIDBusySlots > 1: slots can run commands at the same time.
    pub slots_concurrent: bool,
    /// PIN pad, if any.
    pub pinpad: Option<PinPad>,
    /// SCARD_ATTR_CHANNEL_ID: 0x0020_BBAA for USB (bus, address).
    pub channel_id: u32,
}

/// Why an [`IfdReader`] operation failed; `driver` maps each to an IFD code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfdError {
    /// The reader is gone (unplugged, USB/IP link lost).
    Gone,
    /// No card in the slot.
    NoCard,
    /// The card or reader did not answer in time.
    Timeout,
    /// The reader cannot do this (e.g. no PIN pad).
    NotSupported,
    /// The requested protocol is not offered by card or reader.
    ProtocolNotSupported,
    /// PPS failed.
    PpsFailed,
    /// Power on failed (mute card, bad ATR).
    PowerFailed,
    /// The wait was cancelled.
    Cancelled,
    /// The response was read from the card in full (a T=1 chain is not
    /// left half-read) but is `needed` bytes, more than the caller's
    /// buffer holds: IFD_ERROR_INSUFFICIENT_BUFFER.
    InsufficientBuffer {
        /// Length of the response that did not fit.
        needed: usize,
    },
    /// Anything else, with a description for the log.
    Communication(String),
}

impl fmt::Display for IfdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IfdError::Gone => write!(f, "reader gone"),
            IfdError::NoCard => write!(f, "no card"),
            IfdError::Timeout => write!(f, "timeout"),
            IfdError::NotSupported => write!(f, "not supported"),
            IfdError::ProtocolNotSupported => write!(f, "protocol not supported"),
            IfdError::PpsFailed => write!(f, "PPS failed"),
            IfdError::PowerFailed => write!(f, "power on failed"),
            IfdError::Cancelled => write!(f, "cancelled"),
            IfdError::InsufficientBuffer { needed } => {
                write!(f, "response of {needed} bytes does not fit the buffer")
            }
            IfdError::Communication(why) => write!(f, "communication error: {why}"),
        }
    }
}

impl std::error::Error for IfdError {}

/// Where [`IfdReader::transmit`] puts a response APDU: the caller's buffer,
/// written while the reader still holds the response in its per-slot
/// buffer, so no response is ever copied into a fresh allocation.
///
/// A trait rather than `&mut [u8]` because pcscd's RxBuffer is
/// uninitialised C memory: `exports` writes it through its raw pointer
/// and never makes a Rust slice over it.
pub trait ResponseSink {
    /// Bytes the caller has room for.
    fn capacity(&self) -> usize;
    /// Copies out `response`, which is at most [`capacity`](Self::capacity)
    /// bytes long.
    fn put(&mut self, response: &[u8]);
}

impl<const N: usize> ResponseSink for [u8; N] {
    fn capacity(&self) -> usize {
        N
    }
    fn put(&mut self, response: &[u8]) {
        self[..response.len()].copy_from_slice(response);
    }
}

/// Hands `response` to `out` if it fits, else reports how long it was.
fn deliver(response: &[u8], out: &mut dyn ResponseSink) -> Result<usize, IfdError> {
    if response.len() > out.capacity() {
        return Err(IfdError::InsufficientBuffer {
            needed: response.len(),
        });
    }
    out.put(response);
    Ok(response.len())
}

/// A slot's response buffer, held for one exchange.
type ResponseBuffer<'a> = MutexGuard<'a, Box<[u8]>>;

/// One open reader: a device name opened through
/// [`ferroccid::open_name`], or a transport a test opened.
///
/// All methods take `&self`: pcscd calls transmit on one slot while its
/// polling thread waits and another thread stops it.
pub struct IfdReader {
    info: ReaderInfo,
    reader: Reader,
    slots: Vec<Slot>,
    /// One response buffer per slot, allocated when the reader opens and
    /// reused by every transmit and secure on that slot: pcscd transmits on
    /// different slots concurrently, so they cannot share one.
    responses: Vec<Mutex<Box<[u8]>>>,
    /// Whatever must live as long as the reader: the simulator's
    /// control-file watcher (feature `sim`, `sim:` names only).
    _keep_alive: Option<Box<dyn std::any::Any + Send + Sync>>,
}

fn kind_error(e: &ReaderError) -> IfdError {
    match e.kind() {
        ErrorKind::DeviceGone => IfdError::Gone,
        ErrorKind::NoCard => IfdError::NoCard,
        ErrorKind::Timeout => IfdError::Timeout,
        ErrorKind::NotSupported => IfdError::NotSupported,
        ErrorKind::Cancelled => IfdError::Cancelled,
        ErrorKind::CommunicationError | ErrorKind::InsufficientBuffer => {
            IfdError::Communication(e.to_string())
        }
    }
}

fn transport_error(e: TransportError) -> IfdError {
    match e {
        TransportError::DeviceGone => IfdError::Gone,
        TransportError::Timeout => IfdError::Timeout,
        TransportError::Cancelled => IfdError::Cancelled,
        other => IfdError::Communication(other.to_string()),
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

impl IfdReader {
    /// Opens the device `name`: `sim`, `sim:PROFILE[.TAG]`,
    /// `usbip:HOST:PORT/BUSID`, or a pcscd USB hotplug name.
    pub fn open(name: &str) -> Result<IfdReader, IfdError> {
        let parsed: DeviceName = name
            .parse()
            .map_err(|e: ferroccid::NameError| IfdError::Communication(e.to_string()))?;
        #[cfg(feature = "sim")]
        if let DeviceName::Registered { scheme, spec } = &parsed {
            if scheme == ferroccid_sim::names::SCHEME {
                let (transport, attach) =
                    crate::simulated::open(spec.as_deref()).map_err(transport_error)?;
                let mut reader = IfdReader::with_transport(transport)?;
                reader._keep_alive = attach(reader.info.slots);
                return Ok(reader);
            }
        }
        let opened = ferroccid::open_name(&parsed).map_err(transport_error)?;
        IfdReader::with_transport(opened.transport)
    }

    /// Opens the reader logic over an already open `transport` (what
    /// [`IfdReader::open`] does after resolving the name; tests use it
    /// to wrap the simulator), with the bundle's options
    /// ([`super::reader_options`]: the command time ceiling from
    /// Info.plist and the environment).
    pub fn with_transport(transport: Arc<dyn Transport>) -> Result<IfdReader, IfdError> {
        IfdReader::with_transport_and_options(transport, super::reader_options())
    }

    /// [`IfdReader::with_transport`] with explicit reader options.
    pub fn with_transport_and_options(
        transport: Arc<dyn Transport>,
        options: ReaderOptions,
    ) -> Result<IfdReader, IfdError> {
        let reader = Reader::open_with(transport, options).map_err(|e| match e.kind() {
            ErrorKind::DeviceGone => IfdError::Gone,
            _ => IfdError::Communication(e.to_string()),
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
        Ok(IfdReader {
            info,
            reader,
            slots,
            responses,
            _keep_alive: None,
        })
    }

    /// The slot and its response buffer, locked.
    fn slot_with_buffer(&self, slot: u8) -> Result<(&Slot, ResponseBuffer<'_>), IfdError> {
        let index = usize::from(slot);
        match (self.slots.get(index), self.responses.get(index)) {
            (Some(slot), Some(buffer)) => Ok((
                slot,
                // A panic while the buffer was held left only bytes in it.
                buffer.lock().unwrap_or_else(PoisonError::into_inner),
            )),
            _ => Err(IfdError::NotSupported),
        }
    }

    fn slot(&self, slot: u8) -> Result<&Slot, IfdError> {
        self.slots
            .get(usize::from(slot))
            .ok_or(IfdError::NotSupported)
    }

    /// Static facts.
    pub fn info(&self) -> &ReaderInfo {
        &self.info
    }

    /// Current card state of `slot`.
    pub fn slot_state(&self, slot: u8) -> Result<SlotState, IfdError> {
        let status = self.slot(slot)?.status().map_err(|e| kind_error(&e))?;
        Ok(match (status.present, status.powered) {
            (false, _) => SlotState::Absent,
            (true, false) => SlotState::Inactive,
            (true, true) => SlotState::Active,
        })
    }

    /// How many card insertions the reader has seen in `slot` since it
    /// was opened, so a removal and reinsertion between two presence
    /// queries is not missed.
    pub fn insertions(&self, slot: u8) -> u64 {
        self.slots
            .get(usize::from(slot))
            .map_or(0, Slot::insertions)
    }

    /// Cold (`warm == false`) or warm reset; returns the ATR.
    pub fn power_on(&self, slot: u8, warm: bool) -> Result<Vec<u8>, IfdError> {
        let slot = self.slot(slot)?;
        let atr = if warm { slot.reset() } else { slot.power_on() };
        match atr {
            Ok(atr) => Ok(atr.as_bytes().to_vec()),
            Err(e) => Err(match e.kind() {
                ErrorKind::DeviceGone => IfdError::Gone,
                ErrorKind::NoCard if matches!(e, ReaderError::NoCard) => IfdError::NoCard,
                _ => {
                    tracing::warn!(error = %e, "power on failed");
                    IfdError::PowerFailed
                }
            }),
        }
    }

    /// Deactivates the contacts.
    pub fn power_off(&self, slot: u8) -> Result<(), IfdError> {
        self.slot(slot)?.power_off().map_err(|e| kind_error(&e))
    }

    /// Selects protocol `t` (0 or 1), with PPS1 if the caller gave one.
    pub fn set_protocol(&self, slot: u8, t: u8, pps1: Option<u8>) -> Result<(), IfdError> {
        if pps1.is_some() {
            // The reader logic picks Fi/Di from the ATR and the reader's
            // rates itself; a client's PPS1 is advice it does not take.
            tracing::debug!(?pps1, "client PPS1 ignored: negotiated from the ATR");
        }
        let preference = match t {
            0 => ProtocolPreference::T0,
            1 => ProtocolPreference::T1,
            _ => return Err(IfdError::ProtocolNotSupported),
        };
        match self.slot(slot)?.set_protocol(preference) {
            Ok(_) => Ok(()),
            Err(e @ ReaderError::PpsFailed { .. }) => {
                tracing::warn!(error = %e, "PPS failed");
                Err(IfdError::PpsFailed)
            }
            Err(ReaderError::Negotiation(e)) => {
                tracing::info!(error = %e, t, "protocol not offered");
                Err(IfdError::ProtocolNotSupported)
            }
            Err(e) => Err(match kind_error(&e) {
                IfdError::NotSupported => IfdError::ProtocolNotSupported,
                other => other,
            }),
        }
    }

    /// The protocol currently in use, if one was selected.
    pub fn protocol(&self, slot: u8) -> Option<u8> {
        self.slots.get(usize::from(slot))?.protocol()
    }

    /// Sends a command APDU and puts the response APDU into `out`,
    /// returning its length; no heap allocation in steady state. The whole
    /// response is read from the card even when `out` is too small
    /// ([`IfdError::InsufficientBuffer`]). On T=0, 61xx and 6Cxx are
    /// returned to the caller (pcscd's client does GET RESPONSE).
    pub fn transmit(
        &self,
        slot: u8,
        apdu: &[u8],
        out: &mut dyn ResponseSink,
    ) -> Result<usize, IfdError> {
        let (slot, mut response) = self.slot_with_buffer(slot)?;
        // The whole response lands in the slot's own buffer first, so a
        // short `out` never cuts a T=1 chain in the middle.
        let n = slot
            .transmit(apdu, &mut response)
            .map_err(|e| kind_error(&e))?;
        deliver(&response[..n], out)
    }

    /// PC_to_RDR_Secure with this `abData` (bPINOperation first, already
    /// checked by `ccid::secure::SecureData::parse`); returns the card's
    /// response APDU.
    pub fn secure(&self, slot: u8, ab_data: &[u8]) -> Result<Vec<u8>, IfdError> {
        if self.info.pinpad.is_none() {
            return Err(IfdError::NotSupported);
        }
        let (slot, mut response) = self.slot_with_buffer(slot)?;
        match slot.secure(ab_data, &mut response) {
            Ok(n) => Ok(response[..n].to_vec()),
            // Part 10 / libccid: the pad's own outcomes become status words.
            Err(ReaderError::PinTimeout) => Ok(vec![0x64, 0x00]),
            Err(ReaderError::PinCancelled) => Ok(vec![0x64, 0x01]),
            Err(ReaderError::InvalidSecureData { reason }) => {
                Err(IfdError::Communication(reason.into()))
            }
            Err(e) => {
                tracing::warn!(error = %e, "PC_to_RDR_Secure failed");
                Err(kind_error(&e))
            }
        }
    }

    /// PC_to_RDR_Escape.
    pub fn escape(&self, data: &[u8]) -> Result<Vec<u8>, IfdError> {
        let mut response = vec![0u8; MAX_RESPONSE];
        let n = self
            .reader
            .escape(data, &mut response)
            .map_err(|e| kind_error(&e))?;
        response.truncate(n);
        Ok(response)
    }

    /// Blocks until a card event in `slot` not yet reported to this slot's
    /// waiter, the timeout, or [`IfdReader::cancel_wait`]. pcscd runs one
    /// polling thread per slot, so each slot has its own waiter.
    pub fn wait_for_change(&self, slot: u8, timeout: Duration) -> Result<SlotWait, IfdError> {
        self.slot(slot)?
            .wait_for_change(timeout)
            .map_err(|e| kind_error(&e))
    }

    /// Makes every slot's pending or next `wait_for_change` return `Cancelled`.
    pub fn cancel_wait(&self) {
        self.reader.cancel_wait();
    }
}
