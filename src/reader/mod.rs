//! Reader and slot logic: power, parameters, exchange levels, events,
//! quirks — everything between a [`Transport`] and an APDU.
//!
//! [`Reader::open`] reads the CCID class descriptor, applies the
//! [quirks](quirks) table and sizes every buffer from
//! dwMaxCCIDMessageLength; nothing on the APDU path allocates after that.
//! [`Reader::slot`] hands out cheap [`Slot`] handles (`Clone + Send +
//! Sync`); slots of one reader work concurrently up to bMaxCCIDBusySlots.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ferroccid::{ProtocolPreference, Reader};
//! # fn transport() -> Arc<dyn ferroccid::Transport> { unimplemented!() }
//!
//! let reader = Reader::open(transport())?;
//! let slot = reader.slot(0)?;
//! let atr = slot.power_on()?;                       // 5 V, 3 V, 1.8 V as needed
//! println!("ATR {:02X?}", atr.as_bytes());
//! let protocol = slot.set_protocol(ProtocolPreference::Any)?; // PPS, SetParameters, IFSD
//! let mut response = [0u8; 258];
//! let n = slot.transmit(&[0x00, 0xA4, 0x04, 0x00, 0x00], &mut response)?;
//! println!("T={protocol}: {:02X?}", &response[..n]);
//! # Ok::<(), ferroccid::ReaderError>(())
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`error`] | [`ReaderError`] and its coarse [`ErrorKind`] |
//! | [`quirks`] | known firmware faults, as a table |
//! | `link` | bSeq, receive dispatch, time extension, abort |
//! | `slot` | power, parameter selection, timeouts |
//! | `exchange` | TPDU (T=0/T=1), short/extended APDU, character level |
//! | `events` | interrupt endpoint, polling, [`ReaderEvent`], insertion counters, per-slot waits |
//! | `secure` | PIN pad (PC_to_RDR_Secure, T=1 prologue at TPDU level) and Escape |
//! | `iccd` | ICCD version A and B tokens (control pipe) |
//!
//! # Timeouts
//!
//! Each command (power on, APDU, protocol selection, PIN entry, Escape,
//! status) has one wall-clock budget, started when it begins: every round
//! of the command waits at most until the budget's deadline, whatever the
//! device or card does (time extensions, WTX, chaining, NULL bytes,
//! CMD_SLOT_BUSY retries, ICCD polls). The budget is
//! [`ReaderOptions::max_command_time`] (60 s by default, raised for
//! on-card key generation through [`COMMAND_TIMEOUT_ENV`]) for commands
//! that talk to the card, plus the user's time at a PIN pad; two margins
//! for commands the reader answers itself; the normal power-on wait once
//! per voltage tried. A command that runs out of budget is aborted (CCID
//! §5.3.1), so it returns within its budget plus the ABORT request's and
//! the drain's margin.
//!
//! Within the budget, the host waits `margin + card × m` for each answer:
//! `margin` is [`ReaderOptions::margin`] (3 s by default, libccid's default
//! read timeout) plus any quirk allowance; `card` is the card's own waiting
//! time for the exchange — WWT for T=0, BWT + CWT + one maximal block's
//! characters (259 × 12 etu) for T=1, the ATR's bounds at power on —
//! computed from the negotiated Fi, Di and clock (never below 1 MHz); at
//! APDU levels the reader runs T=1 itself and may retry each block three
//! times and resynchronise three times, so `card` is multiplied by 9; `m`
//! is 1, or the multiplier of the reader's last time-extension answer. A
//! time extension moves the round's deadline, never the command's.

pub(crate) mod error;
mod events;
mod exchange;
mod iccd;
mod link;
pub(crate) mod quirks;
mod secure;
mod slot;
mod sync;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::ccid::descriptor::InterfaceKind;
use crate::ccid::status::IccStatus;
use crate::ccid::{find_class_descriptor, ClassDescriptor};
use crate::protocols::atr::Atr;
use crate::transport::{Transport, TransportInfo};

pub use error::{ErrorKind, ReaderError};
pub use events::{ReaderEvent, SlotWait};

use link::Link;

/// Settings of a reader; the defaults suit real hardware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderOptions {
    /// Added to every host-side wait for the reader's own latency.
    pub margin: Duration,
    /// How often readers without an interrupt endpoint are polled.
    pub poll_interval: Duration,
    /// Time-extension answers accepted for one command.
    pub max_time_extensions: u32,
    /// Stale-bSeq frames dropped for one command before giving up.
    pub max_stale_frames: u8,
    /// Attempts at a command the reader answers CMD_SLOT_BUSY.
    pub busy_retries: u32,
    /// Pause after a CMD_SLOT_BUSY, multiplied by the attempt number.
    pub busy_delay: Duration,
    /// Treat the interface as this kind instead of what the descriptors say.
    pub interface_kind: Option<InterfaceKind>,
    /// The default [`SlotOptions`] of every slot.
    pub slot: SlotOptions,
    /// Ceiling on one command's wall-clock budget (power on, APDU,
    /// control, PIN entry): every round of the command, including time
    /// extensions, WTX, chaining, NULL bytes and busy retries, counts
    /// against it. Long legitimate operations (on-card key generation)
    /// need it raised; see [`COMMAND_TIMEOUT_ENV`].
    pub max_command_time: Duration,
}

/// Environment variable (seconds, decimal) that overrides
/// [`ReaderOptions::max_command_time`] where options are read from the
/// environment (the CLI and the pcscd bundle).
pub const COMMAND_TIMEOUT_ENV: &str = "FERROCCID_COMMAND_TIMEOUT";

/// Default of [`ReaderOptions::max_command_time`].
pub const DEFAULT_MAX_COMMAND_TIME: Duration = Duration::from_secs(60);

/// Longest [`ReaderOptions::max_command_time`] the environment may ask
/// for: a day.
pub const MAX_COMMAND_TIME_LIMIT: Duration = Duration::from_secs(24 * 3600);

impl ReaderOptions {
    /// `self` with [`COMMAND_TIMEOUT_ENV`] applied when it is set to a
    /// number of seconds (fractions allowed, clamped to 1 s ..= a day);
    /// an unparsable value is logged and ignored.
    pub fn with_env_overrides(mut self) -> Self {
        if let Ok(value) = std::env::var(COMMAND_TIMEOUT_ENV) {
            match parse_command_time(&value) {
                Some(d) => self.max_command_time = d,
                None => {
                    tracing::warn!(%value, "{COMMAND_TIMEOUT_ENV} is not a number of seconds; ignored")
                }
            }
        }
        self
    }
}

/// Parses a number of seconds (e.g. `90`, `2.5`) into a command ceiling,
/// clamped to 1 s ..= [`MAX_COMMAND_TIME_LIMIT`].
///
/// Plain decimals only (no sign, exponent, `inf` or `nan`), read without
/// floating point: float parsing would add its tables to the bundle.
pub fn parse_command_time(seconds: &str) -> Option<Duration> {
    let text = seconds.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = || whole.bytes().chain(fraction.bytes());
    if whole.len() + fraction.len() == 0 || !digits().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let limit = MAX_COMMAND_TIME_LIMIT;
    // More whole seconds than a u64 holds is still "very long": the limit.
    let secs = whole.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    });
    let mut nanos = 0u32;
    let mut scale = 100_000_000u32;
    for b in fraction.bytes().take(9) {
        nanos += u32::from(b - b'0') * scale;
        scale /= 10;
    }
    let value = match secs {
        Some(secs) if secs <= limit.as_secs() => Duration::new(secs, nanos),
        _ => limit,
    };
    if value.is_zero() {
        return None;
    }
    Some(value.clamp(Duration::from_secs(1), limit))
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            margin: Duration::from_secs(3),
            poll_interval: Duration::from_millis(400),
            max_time_extensions: 600,
            max_stale_frames: 8,
            busy_retries: 10,
            busy_delay: Duration::from_millis(10),
            interface_kind: None,
            slot: SlotOptions::default(),
            max_command_time: DEFAULT_MAX_COMMAND_TIME,
        }
    }
}

/// Per-slot T=0 behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotOptions {
    /// On 61xx send GET RESPONSE and return the whole answer. Library users
    /// want this (the default); pcscd expects the driver to leave it to the
    /// application, so the pcscd bundle turns it off.
    pub auto_get_response: bool,
    /// On 6Cxx resend the command with the right Le.
    pub auto_resend_6c: bool,
}

impl Default for SlotOptions {
    fn default() -> Self {
        SlotOptions {
            auto_get_response: true,
            auto_resend_6c: true,
        }
    }
}

/// Which protocol [`Slot::set_protocol`] should select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolPreference {
    /// T=0 only.
    T0,
    /// T=1 only.
    T1,
    /// The card's first offered protocol the reader supports.
    Any,
}

/// What GetSlotStatus reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotStatus {
    /// The raw card state.
    pub icc: IccStatus,
    /// A card is in the slot.
    pub present: bool,
    /// The card is powered (active).
    pub powered: bool,
}

/// The wire flavour of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    Ccid,
    IccdA,
    IccdB,
}

/// Everything the handles share.
pub(crate) struct Shared {
    pub link: Link,
    pub info: TransportInfo,
    pub flavour: Flavour,
    pub data_rates: Vec<u32>,
    pub clocks: Vec<u32>,
    pub slots: Vec<slot::SlotCell>,
    pub span: tracing::Span,
    pub events: events::Hub,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.events.stop();
    }
}

/// One CCID (or ICCD) reader.
pub struct Reader {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("name", &self.shared.info.name)
            .field("slots", &self.shared.slots.len())
            .finish()
    }
}

/// Size of the smallest buffers, whatever the descriptor says: a short
/// APDU exchange (261-byte command, 258-byte answer) plus the header.
const MIN_BUFFER: usize = 10 + 261 + 10;

/// Size of the largest buffers, whatever the descriptor says: CCID §5.1
/// allows at most 65544 + 10, and the longest extended APDU command is
/// 65545 bytes; the rest is headroom. dwMaxCCIDMessageLength comes from
/// the device, and without this cap a hostile 0xFFFFFFFF would allocate
/// 4 GiB per buffer, three buffers per slot.
const MAX_BUFFER: usize = 1 << 17;

impl Reader {
    /// Opens a reader on `transport` with default options.
    ///
    /// The options are the defaults with [`COMMAND_TIMEOUT_ENV`] applied
    /// ([`ReaderOptions::with_env_overrides`]), so that the CLI's
    /// `--timeout` and a user's environment reach every reader it opens.
    pub fn open(transport: Arc<dyn Transport>) -> Result<Reader, ReaderError> {
        Reader::open_with(transport, ReaderOptions::default().with_env_overrides())
    }

    /// Opens a reader: finds and parses the class descriptor (from
    /// `info().class_descriptor`, else from the configuration descriptor),
    /// applies quirks, reads the data-rate and clock lists the descriptor
    /// announces, and allocates every buffer.
    pub fn open_with(
        transport: Arc<dyn Transport>,
        options: ReaderOptions,
    ) -> Result<Reader, ReaderError> {
        let info = transport.info().clone();
        let from_config = if info.configuration_descriptor.is_empty() {
            None
        } else {
            find_class_descriptor(&info.configuration_descriptor, info.interface_number).ok()
        };
        let mut descriptor = match (&info.class_descriptor, &from_config) {
            (Some(raw), _) => ClassDescriptor::parse(raw).map_err(ReaderError::Descriptor)?,
            (None, Some((_, d))) => *d,
            (None, None) => {
                return Err(
                    match find_class_descriptor(
                        &info.configuration_descriptor,
                        info.interface_number,
                    ) {
                        Err(e) if !info.configuration_descriptor.is_empty() => {
                            ReaderError::Descriptor(e)
                        }
                        _ => ReaderError::NoDescriptor,
                    },
                )
            }
        };
        let kind = options
            .interface_kind
            .or(from_config.as_ref().map(|(i, _)| i.kind))
            .unwrap_or(InterfaceKind::Ccid);
        let flavour = match kind {
            InterfaceKind::IccdA => Flavour::IccdA,
            InterfaceKind::IccdB => Flavour::IccdB,
            _ => Flavour::Ccid,
        };
        let quirks = quirks::apply(
            info.vendor_id,
            info.product_id,
            info.bcd_device,
            &mut descriptor,
        );
        if flavour != Flavour::Ccid {
            // ICCD tokens have one slot and no bulk pipe to share.
            descriptor.max_slot_index = 0;
        }
        let span = tracing::info_span!("reader", name = %info.name);
        let margin = options.margin;
        let buffer_len = (descriptor.max_message_length as usize).clamp(MIN_BUFFER, MAX_BUFFER);
        let (data_rates, clocks) = if flavour == Flavour::Ccid {
            (
                read_u32_list(
                    &*transport,
                    crate::transport::REQUEST_GET_DATA_RATES,
                    descriptor.num_data_rates_supported,
                    margin,
                )?,
                read_u32_list(
                    &*transport,
                    crate::transport::REQUEST_GET_CLOCK_FREQUENCIES,
                    descriptor.num_clock_supported,
                    margin,
                )?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let slot_options = options.slot;
        let link = Link::new(transport, descriptor, options, quirks, buffer_len);
        let slots: Vec<slot::SlotCell> = (0..descriptor.slot_count())
            .map(|i| slot::SlotCell::new(i as u8, buffer_len, slot_options, &span))
            .collect();
        let polled = link.quirks.poll_instead_of_interrupt
            || flavour != Flavour::Ccid
            || info
                .endpoints
                .as_ref()
                .is_some_and(|e| e.interrupt_in.is_none());
        let events = events::Hub::new(link.gone.clone(), slots.len(), polled);
        {
            let _enter = span.enter();
            tracing::info!(
                level = descriptor.exchange_level().as_str(),
                slots = descriptor.slot_count(),
                max_message_length = descriptor.max_message_length,
                ?flavour,
                "reader opened"
            );
        }
        Ok(Reader {
            shared: Arc::new(Shared {
                link,
                info,
                flavour,
                data_rates,
                clocks,
                slots,
                span,
                events,
            }),
        })
    }

    /// A handle on slot `index`.
    pub fn slot(&self, index: usize) -> Result<Slot, ReaderError> {
        if index >= self.shared.slots.len() {
            return Err(ReaderError::NoSuchSlot {
                index,
                count: self.shared.slots.len(),
            });
        }
        Ok(Slot {
            shared: self.shared.clone(),
            index,
        })
    }

    /// Number of slots (bMaxSlotIndex + 1).
    pub fn slot_count(&self) -> usize {
        self.shared.slots.len()
    }

    /// The class descriptor in use (after quirk fixes).
    pub fn descriptor(&self) -> &ClassDescriptor {
        &self.shared.link.descriptor
    }

    /// What the transport is connected to.
    pub fn info(&self) -> &TransportInfo {
        &self.shared.info
    }

    /// Data rates from GET_DATA_RATES (empty when not announced or refused).
    pub fn data_rates(&self) -> &[u32] {
        &self.shared.data_rates
    }

    /// Clock frequencies (kHz) from GET_CLOCK_FREQUENCIES.
    pub fn clock_frequencies(&self) -> &[u32] {
        &self.shared.clocks
    }

    /// The quirks applied to this reader: (reader name, reason).
    pub fn quirks(&self) -> &[(&'static str, &'static str)] {
        &self.shared.link.quirks.applied
    }

    /// True once the device has been unplugged.
    pub fn is_gone(&self) -> bool {
        self.shared.link.gone.load(Ordering::SeqCst)
    }

    /// Subscribes to card insertion/removal and hardware errors. The first
    /// subscription starts the background thread (interrupt endpoint, or
    /// GetSlotStatus polling every [`ReaderOptions::poll_interval`]); it
    /// stops and is joined when the last handle on the reader is dropped.
    /// Every subscriber gets [`ReaderEvent::DeviceGone`] exactly once, then
    /// a disconnected channel: one that subscribes after the unplug was
    /// announced gets it at once.
    pub fn events(&self) -> std::sync::mpsc::Receiver<ReaderEvent> {
        events::subscribe(&self.shared)
    }

    /// Waits up to `timeout` for the next event; `Ok(None)` on timeout.
    /// [`Reader::cancel_wait`] from another thread ends the wait with
    /// [`ReaderError::Cancelled`]. Once the reader is unplugged, events
    /// already queued (ending with [`ReaderEvent::DeviceGone`]) are
    /// returned, then every call fails at once with
    /// [`ReaderError::DeviceGone`].
    pub fn wait_for_change(&self, timeout: Duration) -> Result<Option<ReaderEvent>, ReaderError> {
        events::wait_for_change(&self.shared, timeout)
    }

    /// Ends a pending [`Reader::wait_for_change`] and every slot's pending
    /// [`Slot::wait_for_change`]; a wait that is not running yet ends at
    /// once when it starts.
    pub fn cancel_wait(&self) {
        self.shared.events.cancel_wait();
    }

    /// Sends a vendor command (PC_to_RDR_Escape, CCID §6.1.8) and writes
    /// the reader's RDR_to_PC_Escape data into `response`, returning its
    /// length. It goes through the reader's own bSeq and receive dispatch
    /// (on slot 0's bSlot), so it cannot collide with status polling.
    pub fn escape(&self, data: &[u8], response: &mut [u8]) -> Result<usize, ReaderError> {
        secure::escape(&self.shared, data, response)
    }
}

/// A handle on one slot: cheap to clone and to share between threads.
/// Calls on one slot are serialised; calls on different slots run
/// concurrently.
#[derive(Clone)]
pub struct Slot {
    shared: Arc<Shared>,
    index: usize,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("reader", &self.shared.info.name)
            .field("index", &self.index)
            .finish()
    }
}

impl Slot {
    /// Starts a command on this slot with a wall-clock budget of `allowed`.
    fn begin(&self, allowed: Duration) -> Result<slot::SlotGuard<'_>, ReaderError> {
        slot::SlotGuard::begin(&self.shared, self.index, allowed)
    }

    /// The slot's state, for a quick look (no device I/O).
    fn state(&self) -> std::sync::MutexGuard<'_, slot::SlotState> {
        link::lock(&self.shared.slots[self.index].state)
    }

    /// The slot number (bSlot).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Powers the card up and returns its ATR, trying 5 V, 3 V then 1.8 V
    /// (those bVoltageSupport offers; automatic selection when the reader
    /// has that feature), the next voltage after ICC_MUTE or
    /// ICC_CLASS_NOT_SUPPORTED. On a powered card this is a warm reset.
    pub fn power_on(&self) -> Result<Atr, ReaderError> {
        self.begin(slot::power_on_budget(&self.shared))?
            .cx()
            .power_on()
    }

    /// Warm reset: libccid handles IFD_RESET exactly like IFD_POWER_UP (a
    /// PC_to_RDR_IccPowerOn on an active card resets it, CCID §6.1.1), so
    /// this is [`Slot::power_on`]; the negotiated protocol is forgotten.
    pub fn reset(&self) -> Result<Atr, ReaderError> {
        self.begin(slot::power_on_budget(&self.shared))?
            .cx()
            .power_on()
    }

    /// Powers the card down.
    pub fn power_off(&self) -> Result<(), ReaderError> {
        self.begin(slot::reader_budget(&self.shared))?
            .cx()
            .power_off()
    }

    /// Asks the reader whether a card is present and powered.
    pub fn status(&self) -> Result<SlotStatus, ReaderError> {
        self.begin(slot::reader_budget(&self.shared))?
            .cx()
            .status(true)
    }

    /// The ATR of the powered card, if any.
    pub fn atr(&self) -> Option<Atr> {
        self.state().card.as_ref().map(|c| c.atr)
    }

    /// The negotiated protocol, if any.
    pub fn protocol(&self) -> Option<u8> {
        self.state().card.as_ref().and_then(|c| c.protocol)
    }

    /// Selects the protocol and parameters: PPS (when the reader does not),
    /// SetParameters (unless the reader configures itself from the ATR),
    /// SetDataRateAndClockFrequency where it applies, and the T=1 IFSD
    /// announcement (unless the reader does it). Returns the protocol.
    pub fn set_protocol(&self, preferred: ProtocolPreference) -> Result<u8, ReaderError> {
        self.begin(slot::card_budget(&self.shared))?
            .cx()
            .select_protocol(preferred)
    }

    /// Sends a command APDU and writes the response APDU (data and SW1 SW2)
    /// into `response`, returning its length. Selects a protocol first
    /// (`Any`) if [`Slot::set_protocol`] was not called.
    pub fn transmit(&self, command: &[u8], response: &mut [u8]) -> Result<usize, ReaderError> {
        self.begin(slot::card_budget(&self.shared))?
            .cx()
            .transmit(command, response)
    }

    /// Interrupts the operation in progress on this slot (from another
    /// thread): the reader gets the class ABORT request and
    /// PC_to_RDR_Abort, and the operation returns [`ReaderError::Cancelled`].
    /// The slot stays usable.
    ///
    /// A cancel is never lost (pcscd's stop-polling and a UI's cancel
    /// button both rely on it): one that comes while no operation runs on
    /// the slot — just before the caller's next one starts, say — makes the
    /// next operation return [`ReaderError::Cancelled`] at once, before
    /// anything is sent (sticky, like the transport's own cancel). One that
    /// comes while an operation runs ends it, or is spent on it if it
    /// completes first. Each cancel ends at most one operation; the reader's
    /// own status polling neither ends on nor spends a cancel.
    pub fn cancel(&self) {
        let link = &self.shared.link;
        link.cancel(&link.slots[self.index]);
    }

    /// PIN verification or modification on the reader's pad
    /// (PC_to_RDR_Secure, CCID §6.1.11). `ab_data` is the command's abData:
    /// bPINOperation, then the PIN verification or modification structure
    /// with the APDU template. Writes the card's response APDU into
    /// `response` and returns its length.
    ///
    /// Waits for the structure's bTimeOut (30 s when 0) plus the usual
    /// margin and the card's waiting time; the reader's time extensions are
    /// honoured. The pad's own outcomes are [`ReaderError::PinTimeout`] and
    /// [`ReaderError::PinCancelled`]. At TPDU level with a T=1 card the
    /// prologue comes from the slot's T=1 engine and the card's block is
    /// unwrapped by it (any bTeoPrologue given is replaced); elsewhere the
    /// APDU goes as it is.
    pub fn secure(&self, ab_data: &[u8], response: &mut [u8]) -> Result<usize, ReaderError> {
        secure::secure(&self.shared, self.index, ab_data, response)
    }

    /// Card insertions the reader has reported in this slot: every
    /// card-present edge of NotifySlotChange (including "present, changed":
    /// a removal and reinsertion between two notifications), or of
    /// GetSlotStatus answers on a reader without an interrupt endpoint. A
    /// card already there at the first report is not counted. On a reader
    /// with an interrupt endpoint the first call starts the event thread.
    pub fn insertions(&self) -> u64 {
        events::insertions(&self.shared, self.index)
    }

    /// Waits until this slot changes (after the last wait on it returned),
    /// the timeout, or [`Slot::cancel_wait`]. Each slot has its own
    /// waiter, so one thread per slot can wait at the same time (as pcscd
    /// does); a cancel that comes before the wait starts ends it at once.
    /// Fails with [`ReaderError::DeviceGone`] once the reader is unplugged,
    /// even if a change from before the unplug was not reported yet.
    pub fn wait_for_change(&self, timeout: Duration) -> Result<SlotWait, ReaderError> {
        events::wait_for_slot(&self.shared, self.index, timeout)
    }

    /// Ends this slot's pending [`Slot::wait_for_change`], or the next one.
    pub fn cancel_wait(&self) {
        self.shared.events.tracker.cancel(Some(self.index));
    }

    /// Current T=0 options.
    pub fn options(&self) -> SlotOptions {
        self.state().options
    }

    /// Changes the T=0 options (takes effect at the next APDU).
    pub fn set_options(&self, options: SlotOptions) {
        self.state().options = options;
    }
}

/// Reads a GET_DATA_RATES / GET_CLOCK_FREQUENCIES list; readers that stall
/// the request get an empty list (the negotiation then uses the maximum).
fn read_u32_list(
    transport: &dyn Transport,
    request: u8,
    count: u8,
    timeout: Duration,
) -> Result<Vec<u32>, ReaderError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let mut buf = vec![0u8; usize::from(count) * 4];
    match transport.control_in(request, 0, &mut buf, timeout) {
        Ok(n) => match crate::ccid::control::parse_u32_list(&buf[..n.min(buf.len())]) {
            Ok(list) => Ok(list.collect()),
            Err(e) => {
                tracing::warn!(
                    request,
                    len = e.len,
                    "list answer not a multiple of 4; ignored"
                );
                Ok(Vec::new())
            }
        },
        Err(crate::transport::TransportError::DeviceGone) => Err(ReaderError::DeviceGone),
        Err(e) => {
            tracing::warn!(request, error = %e, "class request refused; list ignored");
            Ok(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::scripted::ScriptedTransport;

    #[test]
    fn command_time_parses_seconds_and_clamps_them() {
        assert_eq!(parse_command_time("90"), Some(Duration::from_secs(90)));
        assert_eq!(
            parse_command_time(" 2.5 "),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(parse_command_time("0.1"), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_command_time("1000000000000000000000000"),
            Some(MAX_COMMAND_TIME_LIMIT)
        );
        assert_eq!(parse_command_time("86401"), Some(MAX_COMMAND_TIME_LIMIT));
        assert_eq!(parse_command_time("7."), Some(Duration::from_secs(7)));
        for bad in [
            "", ".", "0", "0.000", "-5", "+5", "1e3", "soon", "nan", "inf", "1.2.3",
        ] {
            assert_eq!(parse_command_time(bad), None, "{bad:?}");
        }
    }

    /// Found by the `reader_hostile_device` fuzz target: 256 slots and a
    /// dwMaxCCIDMessageLength of 0xFFFFFFFF made `open` allocate three
    /// 4 GiB buffers per slot (an abort where overcommit is off). The
    /// buffers now stop at MAX_BUFFER, so a longer frame is refused by the
    /// transport as an overflow instead of being read.
    #[test]
    fn huge_max_message_length_does_not_size_the_buffers() {
        let mut descriptor = [0u8; 54];
        descriptor[..2].copy_from_slice(&[0x36, 0x21]);
        descriptor[4] = 0xFF; // bMaxSlotIndex: 256 slots
        descriptor[5] = 0x07;
        descriptor[6] = 0x03; // T=0 and T=1
        descriptor[40..44].copy_from_slice(&0x0001_0000u32.to_le_bytes()); // TPDU
        descriptor[44..48].copy_from_slice(&u32::MAX.to_le_bytes());
        descriptor[53] = 1;
        let mut huge = vec![0u8; MAX_BUFFER + 1];
        huge[0] = 0x81; // RDR_to_PC_SlotStatus
        huge[1..5].copy_from_slice(&((MAX_BUFFER + 1 - 10) as u32).to_le_bytes());
        let get_slot_status = [0x65, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let transport = Arc::new(
            ScriptedTransport::new(Some(&descriptor))
                .expect_out_any_seq(&get_slot_status)
                .reply_echo(&huge),
        );
        let reader = Reader::open(transport).expect("a valid descriptor opens");
        assert_eq!(reader.slot_count(), 256);
        assert_eq!(reader.descriptor().max_message_length, u32::MAX);
        let err = reader.slot(0).unwrap().status().unwrap_err();
        assert!(
            matches!(
                err,
                ReaderError::Transport(crate::transport::TransportError::Overflow { .. })
            ),
            "{err:?}"
        );
    }
}
