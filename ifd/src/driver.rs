//! The safe half of the IFD handler: a registry of open readers keyed by
//! `Lun >> 16`, presence tracking, capabilities and IFDHControl.
//!
//! Every entry point of `exports` translates its C arguments and calls one
//! method here; everything below is ordinary Rust over [`IfdReader`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::abi::*;
use super::features;
use super::notify::{self, NotifyKind, PinPadOperation};
use super::reader::{IfdError, IfdReader, ResponseSink, SlotState};
use ferroccid::part10::{
    CM_IOCTL_GET_FEATURE_REQUEST, FEATURE_CCID_ESC_COMMAND, FEATURE_GET_TLV_PROPERTIES,
    FEATURE_IFD_PIN_PROPERTIES, FEATURE_MODIFY_PIN_DIRECT, FEATURE_VERIFY_PIN_DIRECT,
};
use ferroccid::SlotWait;

/// Readers one driver instance manages (pcscd's TAG_IFD_SIMULTANEOUS_ACCESS).
pub const MAX_READERS: u8 = 16;

/// Opens a reader for a pcscd device name ([`IfdReader::open`] in the
/// bundle; tests open the simulator behind a wrapping transport).
pub type Opener = dyn Fn(&str) -> Result<IfdReader, IfdError> + Send + Sync;

/// Driver-wide options (Info.plist `ifdDriverOptions`, environment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// List FEATURE_CCID_ESC_COMMAND and forward escapes to the reader.
    pub escape_enabled: bool,
    /// Publish card and PIN events to the notification socket (on in
    /// pcscd; off for drivers made in tests, which share no socket).
    pub notify: bool,
}

/// A capability value, or a function pointer `exports` must hand out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// Bytes to copy into the caller's buffer.
    Bytes(Vec<u8>),
    /// The `IFDHPolling(Lun, timeout)` function.
    PollingFunction,
    /// The `IFDHStopPolling(Lun)` function.
    StopPollingFunction,
}

/// Passes the response on and keeps its status word, for the PIN
/// notifications.
struct StatusTap<'a> {
    inner: &'a mut dyn ResponseSink,
    sw: Option<(u8, u8)>,
}

impl ResponseSink for StatusTap<'_> {
    fn capacity(&self) -> usize {
        self.inner.capacity()
    }
    fn put(&mut self, response: &[u8]) {
        if let [.., sw1, sw2] = *response {
            self.sw = Some((sw1, sw2));
        }
        self.inner.put(response);
    }
}

/// What the driver remembers about one slot between pcscd's calls.
#[derive(Debug, Default)]
struct SlotTrack {
    atr: Vec<u8>,
    powered: bool,
    /// Insertion count when presence was last answered.
    seen_insertions: u64,
    /// Presence was last answered "present".
    reported_present: bool,
}

struct OpenReader {
    /// The reader itself; its methods take `&self`, so calls on different
    /// slots (and the polling threads' waits) run side by side.
    device: IfdReader,
    /// Locked per slot, and held across that slot's power actions only.
    slots: Vec<Mutex<SlotTrack>>,
    /// Per slot: closed by pcscd (or never opened). Outside the tracks so
    /// that deciding whether the whole reader is closed never waits for
    /// another slot's USB I/O.
    closed: Vec<AtomicBool>,
    removed: AtomicBool,
    /// The device name pcscd opened it by: the reader in notifications.
    name: Arc<str>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another entry point was caught and reported; the state
    // it guarded is plain data and still consistent enough to continue.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reader index and slot of a Lun.
pub fn split_lun(lun: Dword) -> (u16, u8) {
    (
        ((lun >> 16) & 0xFFFF) as u16,
        (lun & 0xFFFF).min(0xFF) as u8,
    )
}

fn code_of(error: &IfdError) -> ResponseCode {
    match error {
        IfdError::Gone => IFD_NO_SUCH_DEVICE,
        IfdError::NoCard => IFD_ICC_NOT_PRESENT,
        IfdError::Timeout => IFD_RESPONSE_TIMEOUT,
        IfdError::NotSupported => IFD_ERROR_NOT_SUPPORTED,
        IfdError::ProtocolNotSupported => IFD_PROTOCOL_NOT_SUPPORTED,
        IfdError::PpsFailed => IFD_ERROR_PTS_FAILURE,
        IfdError::PowerFailed => IFD_ERROR_POWER_ACTION,
        IfdError::InsufficientBuffer { .. } => IFD_ERROR_INSUFFICIENT_BUFFER,
        IfdError::Cancelled | IfdError::Communication(_) => IFD_COMMUNICATION_ERROR,
    }
}

fn string_value(s: &str) -> Vec<u8> {
    // Strings go out NUL-terminated, as libccid and Windows drivers do.
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// The registry of open readers.
///
/// Locking: the `readers` map is locked only to look a reader up, insert
/// or remove it, never across a reader call that may do USB I/O, so a
/// slow reader (a close powering a card down, a time-extending card)
/// stalls nobody else. Each call clones the reader's `Arc` out of the map
/// and works on that; a close removes the entry, and the reader is
/// dropped when its last in-flight call returns.
pub struct Driver {
    readers: Mutex<HashMap<u16, Arc<OpenReader>>>,
    opener: Box<Opener>,
    options: Options,
}

impl Driver {
    /// A driver that opens devices with `opener`.
    pub fn new(opener: Box<Opener>, options: Options) -> Driver {
        Driver {
            readers: Mutex::new(HashMap::new()),
            opener,
            options,
        }
    }

    fn reader(&self, lun: Dword) -> Result<(Arc<OpenReader>, u8), ResponseCode> {
        let (index, slot) = split_lun(lun);
        let reader = lock(&self.readers)
            .get(&index)
            .cloned()
            .ok_or(IFD_NO_SUCH_DEVICE)?;
        if usize::from(slot) >= reader.slots.len() {
            return Err(IFD_COMMUNICATION_ERROR);
        }
        if reader.removed.load(Ordering::Acquire) {
            return Err(IFD_NO_SUCH_DEVICE);
        }
        Ok((reader, slot))
    }

    /// IFDHCreateChannelByName.
    pub fn create_channel_by_name(&self, lun: Dword, device: &str) -> ResponseCode {
        let (index, slot) = split_lun(lun);
        if slot != 0 {
            // pcscd opens every slot of a multi-slot reader (readerfactory.c
            // RFInitializeReader per slot); the device was opened by slot 0.
            return self.open_slot(index, slot);
        }
        if lock(&self.readers).len() >= usize::from(MAX_READERS) {
            return IFD_COMMUNICATION_ERROR;
        }
        let opened = match (self.opener)(device) {
            Ok(opened) => opened,
            Err(error) => {
                tracing::error!(device, %error, "cannot open reader");
                return match error {
                    IfdError::Gone => IFD_NO_SUCH_DEVICE,
                    _ => IFD_COMMUNICATION_ERROR,
                };
            }
        };
        let slots = opened.info().slots.max(1);
        let tracks = (0..slots)
            .map(|s| {
                Mutex::new(SlotTrack {
                    seen_insertions: opened.insertions(s),
                    ..SlotTrack::default()
                })
            })
            .collect();
        let reader = Arc::new(OpenReader {
            device: opened,
            slots: tracks,
            // Slots other than 0 count as open once pcscd opens them.
            closed: (0..slots).map(|s| AtomicBool::new(s != 0)).collect(),
            removed: AtomicBool::new(false),
            name: Arc::from(device),
        });
        let mut readers = lock(&self.readers);
        if readers.contains_key(&index) || readers.len() >= usize::from(MAX_READERS) {
            drop(readers);
            tracing::error!(index, "Lun already open, or too many readers");
            // `reader` (and the device it opened) is dropped here, after
            // the map's lock.
            return IFD_COMMUNICATION_ERROR;
        }
        readers.insert(index, reader);
        drop(readers);
        tracing::info!(device, index, slots, "reader opened");
        if self.options.notify {
            notify::start();
        }
        IFD_SUCCESS
    }

    fn open_slot(&self, index: u16, slot: u8) -> ResponseCode {
        let Some(reader) = lock(&self.readers).get(&index).cloned() else {
            tracing::error!(index, slot, "slot opened before its reader");
            return IFD_COMMUNICATION_ERROR;
        };
        match reader.closed.get(usize::from(slot)) {
            Some(closed) => {
                closed.store(false, Ordering::Release);
                IFD_SUCCESS
            }
            None => IFD_COMMUNICATION_ERROR,
        }
    }

    /// IFDHCreateChannel: reader.conf entries without DEVICENAME. Channel 0
    /// is the simulator; serial channels are not supported.
    pub fn create_channel(&self, lun: Dword, channel: Dword) -> ResponseCode {
        match channel {
            0 => self.create_channel_by_name(lun, "sim"),
            _ => IFD_NOT_SUPPORTED,
        }
    }

    /// IFDHCloseChannel: closes the slot; the reader goes when all its slots
    /// are closed. An in-flight transmit keeps the reader alive until it
    /// returns.
    ///
    /// The power-off is USB I/O (seconds on a slow reader): it runs with
    /// no driver-wide lock held, only this slot's track.
    pub fn close_channel(&self, lun: Dword) -> ResponseCode {
        let (index, slot) = split_lun(lun);
        let Some(reader) = lock(&self.readers).get(&index).cloned() else {
            return IFD_NO_SUCH_DEVICE;
        };
        let (Some(track), Some(closed)) = (
            reader.slots.get(usize::from(slot)),
            reader.closed.get(usize::from(slot)),
        ) else {
            return IFD_COMMUNICATION_ERROR;
        };
        {
            let mut track = lock(track);
            if track.powered && !reader.removed.load(Ordering::Acquire) {
                let _ = reader.device.power_off(slot);
            }
            track.powered = false;
            track.atr.clear();
            closed.store(true, Ordering::Release);
        }
        let removed = {
            let mut readers = lock(&self.readers);
            // Still this reader (not one opened again under the same
            // index), and every slot closed: the flags are atomics, so
            // this waits for no other slot's I/O.
            let ours = readers.get(&index).is_some_and(|r| Arc::ptr_eq(r, &reader));
            let all_closed = reader.closed.iter().all(|c| c.load(Ordering::Acquire));
            ours && all_closed && readers.remove(&index).is_some()
        };
        if removed {
            reader.device.cancel_wait();
            tracing::info!(index, "reader closed");
        }
        // `reader` may be the last reference: the open reader (its event
        // thread, its device) is dropped here, with no lock held.
        IFD_SUCCESS
    }

    /// IFDHGetCapabilities / SCardGetAttrib.
    pub fn get_capability(&self, lun: Dword, tag: Dword) -> Result<Capability, ResponseCode> {
        let (reader, slot) = self.reader(lun)?;
        let info = reader.device.info();
        let byte = |b: u8| Ok(Capability::Bytes(vec![b]));
        let dword = |d: u32| Ok(Capability::Bytes(d.to_le_bytes().to_vec()));
        match tag {
            TAG_IFD_ATR | SCARD_ATTR_ATR_STRING => Ok(Capability::Bytes(
                lock(&reader.slots[usize::from(slot)]).atr.clone(),
            )),
            TAG_IFD_SLOTNUM => byte(slot),
            TAG_IFD_SLOTS_NUMBER => byte(info.slots.max(1)),
            TAG_IFD_SIMULTANEOUS_ACCESS => byte(MAX_READERS),
            TAG_IFD_THREAD_SAFE => byte(1),
            TAG_IFD_SLOT_THREAD_SAFE => byte(u8::from(info.slots_concurrent)),
            // Never killable: pthread_cancel would unwind through Rust
            // frames; TAG_IFD_STOP_POLLING_THREAD stops it cleanly.
            TAG_IFD_POLLING_THREAD_KILLABLE => byte(0),
            TAG_IFD_POLLING_THREAD_WITH_TIMEOUT if info.has_interrupt => {
                Ok(Capability::PollingFunction)
            }
            TAG_IFD_STOP_POLLING_THREAD if info.has_interrupt => {
                Ok(Capability::StopPollingFunction)
            }
            SCARD_ATTR_ICC_PRESENCE => {
                let present = !matches!(reader.device.slot_state(slot), Ok(SlotState::Absent));
                // PC/SC part 3: 0 absent, 2 present (not swallowed).
                byte(if present { 2 } else { 0 })
            }
            SCARD_ATTR_ICC_INTERFACE_STATUS => {
                let active = matches!(reader.device.slot_state(slot), Ok(SlotState::Active));
                byte(u8::from(active))
            }
            SCARD_ATTR_CURRENT_PROTOCOL_TYPE => match reader.device.protocol(slot) {
                Some(0) => dword(SCARD_PROTOCOL_T0 as u32),
                Some(1) => dword(SCARD_PROTOCOL_T1 as u32),
                _ => dword(0),
            },
            SCARD_ATTR_VENDOR_NAME => Ok(Capability::Bytes(string_value(&info.vendor_name))),
            SCARD_ATTR_VENDOR_IFD_TYPE => Ok(Capability::Bytes(string_value(&info.product_name))),
            // bcdDevice 0xMMmm → 0xMMmm0000 (major, minor, build 0).
            SCARD_ATTR_VENDOR_IFD_VERSION => dword(u32::from(info.bcd_device) << 16),
            SCARD_ATTR_VENDOR_IFD_SERIAL_NO => match &info.serial {
                Some(serial) => Ok(Capability::Bytes(string_value(serial))),
                None => Err(IFD_ERROR_TAG),
            },
            SCARD_ATTR_CHANNEL_ID => dword(info.channel_id),
            SCARD_ATTR_MAXINPUT => dword(info.max_apdu_data),
            _ => Err(IFD_ERROR_TAG),
        }
    }

    /// IFDHSetCapabilities: only TAG_IFD_DEVICE_REMOVED is writable.
    pub fn set_capability(&self, lun: Dword, tag: Dword, value: &[u8]) -> ResponseCode {
        let (index, _) = split_lun(lun);
        let Some(reader) = lock(&self.readers).get(&index).cloned() else {
            return IFD_NO_SUCH_DEVICE;
        };
        match tag {
            TAG_IFD_DEVICE_REMOVED => {
                if value.first().is_some_and(|&v| v != 0) {
                    reader.removed.store(true, Ordering::Release);
                    reader.device.cancel_wait();
                }
                IFD_SUCCESS
            }
            _ => IFD_ERROR_TAG,
        }
    }

    /// IFDHSetProtocolParameters.
    pub fn set_protocol(&self, lun: Dword, protocol: Dword, flags: u8, pts1: u8) -> ResponseCode {
        let (reader, slot) = match self.reader(lun) {
            Ok(found) => found,
            Err(code) => return code,
        };
        let t = match protocol {
            SCARD_PROTOCOL_T0 => 0,
            SCARD_PROTOCOL_T1 => 1,
            _ => return IFD_PROTOCOL_NOT_SUPPORTED,
        };
        let pps1 = (flags & IFD_NEGOTIATE_PTS1 != 0).then_some(pts1);
        match reader.device.set_protocol(slot, t, pps1) {
            Ok(()) => IFD_SUCCESS,
            Err(error) => {
                tracing::warn!(slot, t, %error, "set protocol failed");
                code_of(&error)
            }
        }
    }

    /// IFDHPowerICC: returns the ATR (empty after power down).
    pub fn power(&self, lun: Dword, action: Dword) -> Result<Vec<u8>, ResponseCode> {
        let (reader, slot) = self.reader(lun)?;
        let mut track = lock(&reader.slots[usize::from(slot)]);
        let result = match action {
            IFD_POWER_DOWN => reader.device.power_off(slot).map(|()| Vec::new()),
            IFD_POWER_UP => reader.device.power_on(slot, false),
            IFD_RESET => reader.device.power_on(slot, track.powered),
            _ => return Err(IFD_NOT_SUPPORTED),
        };
        track.atr.clear();
        track.powered = false;
        match result {
            Ok(atr) if atr.len() <= MAX_ATR_SIZE => {
                track.powered = action != IFD_POWER_DOWN;
                track.atr = atr.clone();
                // The card now powered is the one the next presence query
                // reports: its insertion is not news.
                track.seen_insertions = reader.device.insertions(slot);
                Ok(atr)
            }
            Ok(atr) => {
                tracing::error!(len = atr.len(), "ATR longer than 33 bytes");
                Err(IFD_ERROR_POWER_ACTION)
            }
            Err(IfdError::Gone) => Err(IFD_NO_SUCH_DEVICE),
            Err(IfdError::NoCard) if action != IFD_POWER_DOWN => Err(IFD_ERROR_POWER_ACTION),
            Err(error) => {
                tracing::warn!(slot, %error, "power action failed");
                Err(match action {
                    IFD_POWER_DOWN => code_of(&error),
                    _ => IFD_ERROR_POWER_ACTION,
                })
            }
        }
    }

    /// IFDHTransmitToICC: `protocol` is SendPci.Protocol, which pcscd
    /// fills with the protocol number T (0 or 1), not SCARD_PROTOCOL_Tx.
    /// Puts the response into `out` and returns its length; a response
    /// longer than `out` is read from the card in full and answered with
    /// IFD_ERROR_INSUFFICIENT_BUFFER. No heap allocation on success.
    pub fn transmit(
        &self,
        lun: Dword,
        protocol: Dword,
        apdu: &[u8],
        out: &mut dyn ResponseSink,
    ) -> Result<usize, ResponseCode> {
        let (reader, slot) = self.reader(lun)?;
        if protocol > 1 {
            return Err(IFD_PROTOCOL_NOT_SUPPORTED);
        }
        if apdu.len() < 4 || apdu.len() > MAX_BUFFER_SIZE_EXTENDED {
            tracing::warn!(len = apdu.len(), "command APDU length out of range");
            return Err(IFD_COMMUNICATION_ERROR);
        }
        let notify = self.options.notify && notify::may_classify(apdu);
        let mut tap = StatusTap {
            inner: out,
            sw: None,
        };
        let result = reader
            .device
            .transmit(slot, apdu, &mut tap)
            .map_err(|error| match error {
                IfdError::InsufficientBuffer { needed } => {
                    tracing::debug!(slot, needed, "response longer than the client's buffer");
                    IFD_ERROR_INSUFFICIENT_BUFFER
                }
                error => {
                    tracing::warn!(slot, %error, "transmit failed");
                    code_of(&error)
                }
            });
        if let (true, Some((sw1, sw2))) = (notify, tap.sw) {
            if let Some(kind) = notify::classify_apdu(apdu, sw1, sw2) {
                notify::publish(&reader.name, slot, kind);
            }
        }
        result
    }

    /// IFDHICCPresence, reporting a remove-and-reinsert since the last
    /// query as one IFD_ICC_NOT_PRESENT.
    pub fn presence(&self, lun: Dword) -> ResponseCode {
        let (reader, slot) = match self.reader(lun) {
            Ok(found) => found,
            Err(code) => return code,
        };
        let state = reader.device.slot_state(slot);
        let insertions = reader.device.insertions(slot);
        let mut track = lock(&reader.slots[usize::from(slot)]);
        let was_present = track.reported_present;
        let answer = Self::presence_answer(&mut track, state, insertions, slot);
        drop(track);
        if self.options.notify {
            match (was_present, answer == IFD_ICC_PRESENT) {
                (false, true) => notify::publish(&reader.name, slot, NotifyKind::CardInserted),
                (true, false) => notify::publish(&reader.name, slot, NotifyKind::CardRemoved),
                _ => {}
            }
        }
        answer
    }

    fn presence_answer(
        track: &mut SlotTrack,
        state: Result<SlotState, IfdError>,
        insertions: u64,
        slot: u8,
    ) -> ResponseCode {
        match state {
            Err(IfdError::Gone) => IFD_NO_SUCH_DEVICE,
            Err(error) => {
                tracing::warn!(slot, %error, "slot status failed");
                IFD_COMMUNICATION_ERROR
            }
            Ok(SlotState::Absent) => {
                track.powered = false;
                track.atr.clear();
                track.reported_present = false;
                track.seen_insertions = insertions;
                IFD_ICC_NOT_PRESENT
            }
            Ok(state) => {
                let reinserted = track.reported_present && insertions != track.seen_insertions;
                let lost_power = track.powered && state == SlotState::Inactive;
                track.seen_insertions = insertions;
                if reinserted || lost_power {
                    track.powered = false;
                    track.atr.clear();
                    track.reported_present = false;
                    IFD_ICC_NOT_PRESENT
                } else {
                    track.reported_present = true;
                    IFD_ICC_PRESENT
                }
            }
        }
    }

    /// IFDHControl.
    pub fn control(&self, lun: Dword, code: Dword, input: &[u8]) -> Result<Vec<u8>, ResponseCode> {
        let (reader, slot) = self.reader(lun)?;
        let info = reader.device.info();
        let supported = features::supported_features(info, self.options.escape_enabled);
        if code == Dword::from(CM_IOCTL_GET_FEATURE_REQUEST) {
            return Ok(features::feature_list(&supported));
        }
        let Some(feature) = features::feature_of(code, &supported) else {
            return Err(IFD_ERROR_NOT_SUPPORTED);
        };
        let refused = |e: features::StructureError| {
            tracing::warn!(reason = e.0, "PIN structure refused");
            IFD_COMMUNICATION_ERROR
        };
        let reader_error = |error: IfdError| {
            tracing::warn!(%error, feature, "control failed");
            code_of(&error)
        };
        match feature {
            FEATURE_VERIFY_PIN_DIRECT | FEATURE_MODIFY_PIN_DIRECT => {
                let (data, operation) = if feature == FEATURE_VERIFY_PIN_DIRECT {
                    let data = features::verify_to_secure(input).map_err(refused)?;
                    (data, PinPadOperation::Verify)
                } else {
                    let data = features::modify_to_secure(input).map_err(refused)?;
                    (data, PinPadOperation::Modify)
                };
                let response = reader.device.secure(slot, &data).map_err(reader_error)?;
                if self.options.notify {
                    if let Some(kind) = notify::classify_pin_pad(operation, input, &response) {
                        notify::publish(&reader.name, slot, kind);
                    }
                }
                Ok(response)
            }
            FEATURE_IFD_PIN_PROPERTIES => Ok(features::pin_properties(info).to_vec()),
            FEATURE_GET_TLV_PROPERTIES => Ok(features::tlv_properties(info)),
            FEATURE_CCID_ESC_COMMAND => reader.device.escape(input).map_err(reader_error),
            _ => Err(IFD_ERROR_NOT_SUPPORTED),
        }
    }

    /// The polling function pcscd's event thread calls: returns when a
    /// card event happened, the timeout passed, or polling was stopped.
    pub fn poll(&self, lun: Dword, timeout_ms: i32) -> ResponseCode {
        let (reader, slot) = match self.reader(lun) {
            Ok(found) => found,
            Err(code) => return code,
        };
        let timeout = Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0));
        match reader.device.wait_for_change(slot, timeout) {
            Ok(SlotWait::Changed | SlotWait::Timeout | SlotWait::Cancelled) => IFD_SUCCESS,
            Err(IfdError::Gone) => IFD_NO_SUCH_DEVICE,
            Err(error) => {
                tracing::warn!(%error, "interrupt wait failed");
                // Let pcscd fall back to its own pacing instead of spinning.
                std::thread::sleep(Duration::from_millis(100));
                IFD_COMMUNICATION_ERROR
            }
        }
    }

    /// TAG_IFD_STOP_POLLING_THREAD's function: wakes [`Driver::poll`].
    pub fn stop_polling(&self, lun: Dword) -> ResponseCode {
        let (index, _) = split_lun(lun);
        let Some(reader) = lock(&self.readers).get(&index).cloned() else {
            return IFD_NO_SUCH_DEVICE;
        };
        reader.device.cancel_wait();
        IFD_SUCCESS
    }
}
