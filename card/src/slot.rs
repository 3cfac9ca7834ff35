//! A [`CardChannel`] over a ferroccid [`Slot`] directly, with no daemon
//! (for gateways and tools): the exclusive lock is the in-process lock plus
//! an advisory `flock` of [`DeviceLock`], named after the device and slot,
//! so two processes driving the same reader cannot interleave APDUs.
//!
//! # Removal and swap detection
//! Only what the reader answers this channel, and the slot's insertion
//! counter, tell that the card went away: a removal is noted when an
//! exchange or a status answer says "no card", a swap when the counter
//! moved past the value of the last (re)connect. Removal *events* are not
//! used: the reader's event thread delivers them late under load, and a
//! late one would condemn the card a reconnect had just brought back. The
//! counter can lag too: when a removal was seen and the reconnect finds
//! the card back before the insertion was counted, that one increment is
//! expected and absorbed when it comes.
//!
//! # The lock
//! An exchange by a channel that does not hold the lock takes it for the
//! length of that APDU, as pcscd does for a handle outside a transaction:
//! while another attachment (this process or another) holds it, the
//! exchange waits up to the lock wait and then fails with
//! [`ChannelError::Locked`].
//!
//! # An empty reader
//! A channel can be made to a slot with no card: it reports the slot
//! empty, exchanges fail with [`ChannelError::NoCard`], and the first
//! exchange after a card arrives powers it (there is no session to lose).

use std::time::Duration;

use super::apdu::{EXTENDED_MAX_APDU, SHORT_MAX_APDU, SHORT_MAX_NE};
use super::channel::{
    CardChannel, CardState, ChannelStatus, Disposition, Initialization, Protocol, ProtocolChoice,
};
use super::error::ChannelError;
use super::lock::{DeviceLock, DeviceLockGuard};
use ferroccid::ccid::descriptor::ExchangeLevel;
use ferroccid::ccid::secure::{PinModify, PinVerify};
use ferroccid::{ErrorKind, ProtocolPreference, Reader, ReaderError, Slot};

/// CCID message header bytes around an APDU in a bulk message.
const CCID_HEADER: usize = 10;

/// A channel to the card in one slot of a ferroccid reader.
pub struct SlotChannel {
    slot: Slot,
    name: String,
    level: ExchangeLevel,
    max_message: usize,
    /// `bPINSupport`: bit 0 verification, bit 1 modification.
    pin_support: u8,
    /// The slot's insertion counter at the last (re)connect.
    insertions: u64,
    /// The card was removed since the last (re)connect: `Some` of the
    /// insertion count the removal belongs to (an insertion after it makes
    /// the counter pass this value).
    removed: Option<u64>,
    /// The reconnect found the card back before the reader counted its
    /// insertion: the next increment of the counter is that insertion.
    insertion_pending: bool,
    connected: bool,
    /// Made to an empty slot, no card connected yet.
    awaiting_card: bool,
    lock: DeviceLock,
    guard: Option<DeviceLockGuard>,
    /// How long an exchange waits for another holder of the lock.
    lock_wait: Option<Duration>,
}

impl std::fmt::Debug for SlotChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotChannel")
            .field("name", &self.name)
            .finish()
    }
}

/// `bPINOperation` of a PIN verification (CCID §6.1.11).
const PIN_OPERATION_VERIFY: u8 = 0x00;
/// `bPINOperation` of a PIN modification.
const PIN_OPERATION_MODIFY: u8 = 0x01;

/// `abData` of PC_to_RDR_Secure for a PIN verification: `bPINOperation` 0
/// and the structure of CCID table 6.1-5 (little-endian words; unlike the
/// PC/SC form, no `bTimeOut2` and no `ulDataLength`).
pub fn ccid_verify_data(p: &PinVerify<'_>) -> Vec<u8> {
    let mut d = Vec::with_capacity(15 + p.apdu.len());
    d.extend_from_slice(&[
        PIN_OPERATION_VERIFY,
        p.timeout,
        p.format_string,
        p.pin_block_string,
        p.pin_length_format,
    ]);
    d.extend_from_slice(&p.pin_max_extra_digit.to_le_bytes());
    d.extend_from_slice(&[p.entry_validation_condition, p.number_message]);
    d.extend_from_slice(&p.lang_id.to_le_bytes());
    d.push(p.msg_index);
    d.extend_from_slice(&p.teo_prologue);
    d.extend_from_slice(p.apdu);
    d
}

/// `abData` of PC_to_RDR_Secure for a PIN modification: `bPINOperation` 1
/// and the structure of CCID table 6.1-6, with only as many `bMsgIndex`
/// bytes as `bNumberMessage` calls for.
pub fn ccid_modify_data(p: &PinModify<'_>) -> Vec<u8> {
    let mut d = Vec::with_capacity(21 + p.apdu.len());
    d.extend_from_slice(&[
        PIN_OPERATION_MODIFY,
        p.timeout,
        p.format_string,
        p.pin_block_string,
        p.pin_length_format,
        p.insertion_offset_old,
        p.insertion_offset_new,
    ]);
    d.extend_from_slice(&p.pin_max_extra_digit.to_le_bytes());
    d.extend_from_slice(&[
        p.confirm_pin,
        p.entry_validation_condition,
        p.number_message,
    ]);
    d.extend_from_slice(&p.lang_id.to_le_bytes());
    d.extend_from_slice(&p.msg_index[..p.msg_index_count()]);
    d.extend_from_slice(&p.teo_prologue);
    d.extend_from_slice(p.apdu);
    d
}

/// The coarse channel meaning of a reader error.
pub(crate) fn channel_error(e: ReaderError) -> ChannelError {
    match (&e, e.kind()) {
        (ReaderError::NotPowered, _) => ChannelError::Unpowered,
        (_, ErrorKind::NoCard) => ChannelError::NoCard,
        (_, ErrorKind::DeviceGone) => ChannelError::ReaderUnavailable,
        (_, ErrorKind::Timeout) => ChannelError::Timeout,
        (_, ErrorKind::Cancelled) => ChannelError::Cancelled,
        _ => ChannelError::Other(e.to_string()),
    }
}

impl SlotChannel {
    /// Connects to slot `index` of `reader`, powering the card and selecting
    /// a protocol if needed. `device` is the device name the reader was
    /// opened with (it names the lock); the reader name is `device` for
    /// slot 0 and `device#index` otherwise.
    pub fn connect(
        reader: &Reader,
        index: usize,
        device: &str,
    ) -> Result<SlotChannel, ChannelError> {
        let slot = reader.slot(index).map_err(channel_error)?;
        let name = if index == 0 {
            device.to_owned()
        } else {
            format!("{device}#{index}")
        };
        let descriptor = reader.descriptor();
        let mut channel = SlotChannel {
            insertions: slot.insertions(),
            slot,
            level: descriptor.exchange_level(),
            max_message: descriptor.max_message_length as usize,
            pin_support: descriptor.pin_support,
            removed: None,
            insertion_pending: false,
            connected: false,
            awaiting_card: false,
            lock: DeviceLock::for_device(&name),
            guard: None,
            lock_wait: None,
            name,
        };
        match channel.reconnect(Initialization::Leave, ProtocolChoice::Any) {
            Ok(_) => {}
            Err(ChannelError::NoCard) => {
                channel.connected = true;
                channel.awaiting_card = true;
            }
            Err(e) => return Err(e),
        }
        Ok(channel)
    }

    /// Opens a device by name (`usb:…`, `usbip:…`, or a name a registered
    /// resolver opens, such as the simulator's `sim`) and connects to slot
    /// `index`. The device's handle, if its resolver gives one (the
    /// simulator's `SimHandle`), is returned with the channel.
    pub fn open(
        device: &str,
        index: usize,
    ) -> Result<(SlotChannel, ferroccid::OpenedDevice), ChannelError> {
        let opened = ferroccid::open(device).map_err(|e| match e {
            ferroccid::TransportError::NotFound(_) => {
                ChannelError::UnknownReader(device.to_owned())
            }
            e => ChannelError::Other(format!("{device}: {e}")),
        })?;
        let reader = Reader::open(opened.transport.clone()).map_err(channel_error)?;
        let channel = SlotChannel::connect(&reader, index, device)?;
        Ok((channel, opened))
    }

    /// The slot handle.
    pub fn slot(&self) -> &Slot {
        &self.slot
    }

    /// The lock for one exchange, unless this channel holds it already.
    fn exchange_lock(&self) -> Result<Option<DeviceLockGuard>, ChannelError> {
        if self.guard.is_some() {
            return Ok(None);
        }
        match self.lock.acquire(self.lock_wait) {
            Ok(guard) => Ok(Some(guard)),
            Err(ChannelError::Timeout) => Err(ChannelError::Locked),
            Err(e) => Err(e),
        }
    }

    /// On a channel made to an empty slot: connects the card that has
    /// arrived since, or says there is none.
    fn connect_arrived_card(&mut self) -> Result<(), ChannelError> {
        if self.awaiting_card {
            self.reconnect(Initialization::Leave, ProtocolChoice::Any)?;
        }
        Ok(())
    }

    /// Checks that the exchange can go to the card this channel connected.
    fn ready(&mut self) -> Result<(), ChannelError> {
        if !self.connected {
            return Err(ChannelError::Detached);
        }
        self.connect_arrived_card()?;
        if self.swapped() || self.removed.is_some() {
            return Err(self.removal_error());
        }
        Ok(())
    }

    /// Notes that the card was found gone (once per removal).
    fn note_removal(&mut self) {
        if self.removed.is_none() {
            self.removed = Some(self.slot.insertions());
        }
    }

    /// Whether a card was inserted since the last (re)connect, i.e. the
    /// card there now (if any) is not the one this channel connected to.
    fn swapped(&mut self) -> bool {
        let now = self.slot.insertions();
        if self.insertion_pending && now > self.insertions {
            // The insertion the last reconnect already dealt with.
            self.insertions += 1;
            self.insertion_pending = false;
        }
        if now != self.insertions && self.removed.is_none() {
            // Removed and put back between two looks: the removal belongs
            // to the count of the connect.
            self.removed = Some(self.insertions);
        }
        now != self.insertions
    }

    /// The error for an exchange after the card was removed.
    fn removal_error(&self) -> ChannelError {
        match self.slot.status() {
            Ok(status) if status.present => ChannelError::CardRemoved,
            Ok(_) => ChannelError::NoCard,
            Err(e) => channel_error(e),
        }
    }

    /// PC_to_RDR_Secure with `ab_data`, checked like an exchange. The PIN
    /// is typed on the pad and never passes through this process.
    fn secure(&mut self, ab_data: &[u8]) -> Result<Vec<u8>, ChannelError> {
        self.ready()?;
        let _lock = self.exchange_lock()?;
        let mut response = vec![0u8; SHORT_MAX_NE + 2];
        match self.slot.secure(ab_data, &mut response) {
            Ok(n) => {
                response.truncate(n);
                Ok(response)
            }
            Err(e) => match channel_error(e) {
                ChannelError::NoCard => {
                    self.note_removal();
                    Err(ChannelError::NoCard)
                }
                other => Err(other),
            },
        }
    }

    fn protocol(&self) -> Option<u8> {
        self.slot.protocol()
    }

    /// Leaves the card as `disposition` says, under the lock if this
    /// channel holds it. EJECT unpowers: the driver sends no
    /// PC_to_RDR_Mechanical, so a reader's eject mechanism is not used.
    fn apply(&mut self, disposition: Disposition) -> Result<(), ChannelError> {
        if self.awaiting_card {
            // No card was ever connected: nothing to leave in any state.
            return Ok(());
        }
        let result = match disposition {
            Disposition::Leave => Ok(()),
            Disposition::Reset => self.slot.reset().map(drop),
            Disposition::Unpower | Disposition::Eject => self.slot.power_off(),
        };
        match result.map_err(channel_error) {
            // The card went away: nothing is left to reset or unpower.
            Err(ChannelError::NoCard) if disposition != Disposition::Leave => Ok(()),
            other => other,
        }
    }
}

impl CardChannel for SlotChannel {
    fn transmit(&mut self, cmd: &[u8], resp: &mut [u8]) -> Result<usize, ChannelError> {
        self.ready()?;
        let _lock = self.exchange_lock()?;
        match self.slot.transmit(cmd, resp).map_err(channel_error) {
            Err(ChannelError::NoCard) => {
                self.note_removal();
                Err(ChannelError::NoCard)
            }
            // A card put back is unpowered: if the counter has caught up
            // by now, say what happened rather than "unpowered".
            Err(ChannelError::Unpowered) if self.swapped() => Err(self.removal_error()),
            other => other,
        }
    }

    fn status(&mut self) -> Result<ChannelStatus, ChannelError> {
        let status = self.slot.status().map_err(channel_error)?;
        if !status.present {
            self.note_removal();
        }
        let atr = if status.powered {
            self.slot
                .atr()
                .map(|a| a.as_bytes().to_vec())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let protocol = if status.powered {
            self.protocol().map(|p| match p {
                0 => Protocol::T0,
                1 => Protocol::T1,
                other => Protocol::Other(other),
            })
        } else {
            None
        };
        // CCID tells present, active or inactive; this handle's ATR and
        // protocol tell the rest. A card another handle powered has no ATR
        // here: powered, mode unknown.
        let state = match (status.present, status.powered) {
            (false, _) => CardState::Absent,
            (true, false) => CardState::Swallowed,
            (true, true) if atr.is_empty() => CardState::Powered,
            (true, true) if protocol.is_some() => CardState::Specific,
            (true, true) => CardState::Negotiable,
        };
        Ok(ChannelStatus {
            reader: self.name.clone(),
            state,
            present: status.present,
            powered: status.powered,
            protocol,
            atr,
        })
    }

    fn reconnect(
        &mut self,
        init: Initialization,
        protocol: ProtocolChoice,
    ) -> Result<ChannelStatus, ChannelError> {
        let status = self.slot.status().map_err(channel_error)?;
        if !status.present {
            self.note_removal();
            return Err(ChannelError::NoCard);
        }
        self.swapped();
        // A card powered by an earlier process (or reader handle) is
        // active, but this handle has no ATR for it and cannot select a
        // protocol without one: power it on (a warm reset) as well.
        let must_power = !status.powered || self.removed.is_some() || self.slot.atr().is_none();
        match init {
            Initialization::Leave if !must_power => {}
            Initialization::Cold => {
                if status.powered {
                    self.slot.power_off().map_err(channel_error)?;
                }
                self.slot.power_on().map_err(channel_error)?;
            }
            _ => {
                // Warm reset, or the first power-on after an insertion.
                self.slot.power_on().map_err(channel_error)?;
            }
        }
        if self.slot.protocol().is_none() || init != Initialization::Leave {
            let preference = match protocol {
                ProtocolChoice::Any => ProtocolPreference::Any,
                ProtocolChoice::T0 => ProtocolPreference::T0,
                ProtocolChoice::T1 => ProtocolPreference::T1,
            };
            self.slot.set_protocol(preference).map_err(channel_error)?;
        }
        let now = self.slot.insertions();
        // Removed, and back before the reader counted the insertion.
        self.insertion_pending = self.removed == Some(now);
        self.insertions = now;
        self.removed = None;
        self.connected = true;
        self.awaiting_card = false;
        self.status()
    }

    fn disconnect(&mut self, disposition: Disposition) -> Result<(), ChannelError> {
        self.connected = false;
        let result = self.apply(disposition);
        self.guard = None;
        result
    }

    fn begin_transaction(&mut self, timeout: Option<Duration>) -> Result<(), ChannelError> {
        self.guard = Some(self.lock.acquire(timeout)?);
        Ok(())
    }

    fn end_transaction(&mut self, disposition: Disposition) -> Result<(), ChannelError> {
        let result = self.apply(disposition);
        self.guard = None;
        result
    }

    fn set_lock_wait(&mut self, wait: Option<Duration>) {
        self.lock_wait = wait;
    }

    fn max_command_len(&self) -> usize {
        if self.supports_extended() {
            self.max_message
                .saturating_sub(CCID_HEADER)
                .clamp(SHORT_MAX_APDU, EXTENDED_MAX_APDU)
        } else {
            SHORT_MAX_APDU
        }
    }

    fn max_response_len(&self) -> usize {
        if self.supports_extended() {
            // The slot reassembles T=1 chains and chained reader answers.
            EXTENDED_MAX_APDU.min(65_538)
        } else {
            SHORT_MAX_NE + 2
        }
    }

    fn has_pinpad(&self) -> bool {
        self.pin_support & 0x01 != 0
    }

    fn verify_pin_secure(&mut self, params: &PinVerify<'_>) -> Result<Vec<u8>, ChannelError> {
        if self.pin_support & 0x01 == 0 {
            return Err(ChannelError::Unsupported(
                "the reader has no PIN verification",
            ));
        }
        self.secure(&ccid_verify_data(params))
    }

    fn modify_pin_secure(&mut self, params: &PinModify<'_>) -> Result<Vec<u8>, ChannelError> {
        if self.pin_support & 0x02 == 0 {
            return Err(ChannelError::Unsupported(
                "the reader has no PIN modification",
            ));
        }
        self.secure(&ccid_modify_data(params))
    }

    fn supports_extended(&self) -> bool {
        match self.level {
            ExchangeLevel::ExtendedApdu => true,
            ExchangeLevel::ShortApdu => false,
            // TPDU and character level: T=1 chains any length, T=0 cannot.
            ExchangeLevel::Tpdu | ExchangeLevel::Character => self.protocol() == Some(1),
        }
    }
}
