//! What the IFD layer needs from a reader: the small, synchronous API
//! [`Backend`] that `driver` drives.
//!
//! Kept as a trait so the pcsc-lite logic (Lun registry, presence
//! tracking, capabilities, part 10 features) is testable without USB and
//! so the adapter over `crate::reader` stays a thin file.

use std::fmt;
use std::time::Duration;

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

/// Why a backend operation failed; `driver` maps each to an IFD code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
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

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::Gone => write!(f, "reader gone"),
            BackendError::NoCard => write!(f, "no card"),
            BackendError::Timeout => write!(f, "timeout"),
            BackendError::NotSupported => write!(f, "not supported"),
            BackendError::ProtocolNotSupported => write!(f, "protocol not supported"),
            BackendError::PpsFailed => write!(f, "PPS failed"),
            BackendError::PowerFailed => write!(f, "power on failed"),
            BackendError::Cancelled => write!(f, "cancelled"),
            BackendError::InsufficientBuffer { needed } => {
                write!(f, "response of {needed} bytes does not fit the buffer")
            }
            BackendError::Communication(why) => write!(f, "communication error: {why}"),
        }
    }
}

impl std::error::Error for BackendError {}

/// Where [`Backend::transmit`] puts a response APDU: the caller's buffer,
/// written while the backend still holds the response in its per-slot
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
pub fn deliver(response: &[u8], out: &mut dyn ResponseSink) -> Result<usize, BackendError> {
    if response.len() > out.capacity() {
        return Err(BackendError::InsufficientBuffer {
            needed: response.len(),
        });
    }
    out.put(response);
    Ok(response.len())
}

/// Outcome of [`Backend::wait_for_change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A slot changed (or may have): pcscd should ask for presence.
    Changed,
    /// Nothing happened within the timeout.
    Timeout,
    /// [`Backend::cancel_wait`] was called.
    Cancelled,
}

/// One open reader. All methods take `&self`: pcscd calls transmit on one
/// slot while its polling thread waits and another thread stops it.
pub trait Backend: Send + Sync {
    /// Static facts.
    fn info(&self) -> &ReaderInfo;
    /// Current card state of `slot`.
    fn slot_state(&self, slot: u8) -> Result<SlotState, BackendError>;
    /// How many card insertions the reader has seen in `slot` since it
    /// was opened, so a removal and reinsertion between two presence
    /// queries is not missed.
    fn insertions(&self, slot: u8) -> u64;
    /// Cold (`warm == false`) or warm reset; returns the ATR.
    fn power_on(&self, slot: u8, warm: bool) -> Result<Vec<u8>, BackendError>;
    /// Deactivates the contacts.
    fn power_off(&self, slot: u8) -> Result<(), BackendError>;
    /// Selects protocol `t` (0 or 1), with PPS1 if the caller gave one.
    fn set_protocol(&self, slot: u8, t: u8, pps1: Option<u8>) -> Result<(), BackendError>;
    /// The protocol currently in use, if one was selected.
    fn protocol(&self, slot: u8) -> Option<u8>;
    /// Sends a command APDU and puts the response APDU into `out`,
    /// returning its length; no heap allocation in steady state. The whole
    /// response is read from the card even when `out` is too small
    /// ([`BackendError::InsufficientBuffer`]). On T=0, 61xx and 6Cxx are
    /// returned to the caller (pcscd's client does GET RESPONSE).
    fn transmit(
        &self,
        slot: u8,
        apdu: &[u8],
        out: &mut dyn ResponseSink,
    ) -> Result<usize, BackendError>;
    /// PC_to_RDR_Secure with this `abData` (bPINOperation first, already
    /// checked by `ccid::secure::SecureData::parse`); returns the card's
    /// response APDU.
    fn secure(&self, slot: u8, ab_data: &[u8]) -> Result<Vec<u8>, BackendError>;
    /// PC_to_RDR_Escape.
    fn escape(&self, data: &[u8]) -> Result<Vec<u8>, BackendError>;
    /// Blocks until a card event in `slot` not yet reported to this slot's
    /// waiter, the timeout, or [`Backend::cancel_wait`]. pcscd runs one
    /// polling thread per slot, so each slot has its own waiter.
    fn wait_for_change(&self, slot: u8, timeout: Duration) -> Result<Wait, BackendError>;
    /// Makes every slot's pending or next `wait_for_change` return `Cancelled`.
    fn cancel_wait(&self);
}
