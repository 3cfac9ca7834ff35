//! The simulator as a [`Transport`]: the simulated reader
//! ([`crate::reader::ReaderModel`]) behind the same trait the USB
//! backends implement, so the driver drives it without knowing it is one.
//!
//! Same questions, same order as the USB backends:
//! - naming: `sim` (the `tpdu` profile) or `sim:PROFILE` ([`Profile::parse`]);
//! - discovery: none, the simulator exists when opened;
//! - open: [`SimTransport::open`] builds the model and synthetic USB
//!   descriptors (interface, CCID class descriptor, bulk-OUT, bulk-IN,
//!   interrupt-IN endpoints), real bytes so descriptor code is exercised;
//! - transfers: raw bytes in, raw frames out; reads block on a condvar until
//!   the model has a frame due, the timeout passes, or [`Transport::cancel`];
//! - errors: `Timeout`, `Cancelled`, `Overflow`, `Stall` for control requests
//!   the reader does not answer, `DeviceGone` after [`SimHandle::unplug`].
//!
//! Faults are injected through the [`SimHandle`] returned by `open`.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::card::CardConfig;
use crate::names::{profile_spec, split_violation, SCHEME};
use crate::profile::{PinEntry, Profile};
use crate::reader::{ReaderModel, ResponseFault};
use ferroccid::descriptors::{
    emit_configuration, endpoint_descriptions, CcidEndpoints, EndpointInfo, InterfaceDescription,
    CLASS_CCID,
};
use ferroccid::{DeviceName, Transport, TransportError, TransportInfo, REQUEST_ABORT};

/// Endpoint addresses of the synthetic interface.
const BULK_OUT: u8 = 0x01;
const BULK_IN: u8 = 0x82;
const INTERRUPT_IN: u8 = 0x83;
/// Full-speed bulk packet size, as most readers have.
const BULK_PACKET: u16 = 64;
const INTERRUPT_PACKET: u16 = 8;
/// The simulated reader's endpoints, reported in its `TransportInfo` and
/// in its configuration descriptor alike.
const ENDPOINTS: CcidEndpoints = CcidEndpoints {
    bulk_out: EndpointInfo {
        address: BULK_OUT,
        max_packet_size: BULK_PACKET,
    },
    bulk_in: EndpointInfo {
        address: BULK_IN,
        max_packet_size: BULK_PACKET,
    },
    interrupt_in: Some(EndpointInfo {
        address: INTERRUPT_IN,
        max_packet_size: INTERRUPT_PACKET,
    }),
};

struct State {
    model: ReaderModel,
    unplugged: bool,
    cancelled: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run `f` on the model and wake every blocked reader.
    fn update<R>(&self, f: impl FnOnce(&mut ReaderModel) -> R) -> R {
        let r = f(&mut self.lock().model);
        self.changed.notify_all();
        r
    }

    /// Block until `poll` yields, the timeout passes, cancel or unplug.
    fn wait(
        &self,
        timeout: Duration,
        mut poll: impl FnMut(&mut ReaderModel, Instant) -> Option<Vec<u8>>,
        buf: &mut [u8],
    ) -> Result<usize, TransportError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.lock();
        loop {
            if state.unplugged {
                return Err(TransportError::DeviceGone);
            }
            let now = Instant::now();
            if let Some(frame) = poll(&mut state.model, now) {
                if frame.len() > buf.len() {
                    return Err(TransportError::Overflow {
                        received: frame.len(),
                        capacity: buf.len(),
                    });
                }
                buf[..frame.len()].copy_from_slice(&frame);
                return Ok(frame.len());
            }
            if state.cancelled {
                return Err(TransportError::Cancelled);
            }
            if deadline.is_some_and(|d| now >= d) {
                return Err(TransportError::Timeout);
            }
            let wake = [deadline, state.model.next_due()]
                .into_iter()
                .flatten()
                .min();
            state = match wake {
                Some(at) => {
                    let pause = at.saturating_duration_since(now);
                    self.changed
                        .wait_timeout(state, pause)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

/// The in-process transport.
pub struct SimTransport {
    info: TransportInfo,
    shared: Arc<Shared>,
}

/// Test and CLI control of a running simulator: faults, card movements,
/// unplugging. Cloneable; every call wakes blocked reads.
#[derive(Clone)]
pub struct SimHandle {
    shared: Arc<Shared>,
}

/// The configuration descriptor of the simulated reader: one configuration,
/// one CCID interface with the class descriptor and three endpoints.
pub(crate) fn configuration_descriptor(profile: &Profile) -> Vec<u8> {
    emit_configuration(&InterfaceDescription {
        class: CLASS_CCID,
        protocol: profile.interface_protocol,
        endpoints: endpoint_descriptions(&ENDPOINTS),
        extra: profile.descriptor.to_vec(),
        ..Default::default()
    })
}

impl SimTransport {
    /// Start a simulated reader configured by `profile`.
    pub fn open(profile: Profile) -> (SimTransport, SimHandle) {
        let name = DeviceName::Registered {
            scheme: SCHEME.to_owned(),
            spec: (profile.name != "tpdu").then(|| profile.name.clone()),
        };
        let info = TransportInfo {
            name: name.to_string(),
            vendor_id: profile.vendor_id,
            product_id: profile.product_id,
            bcd_device: profile.bcd_device,
            manufacturer: profile.manufacturer.clone(),
            product: profile.product.clone(),
            serial: profile.serial.clone(),
            bus: 0,
            address: 0,
            interface_number: 0,
            interface_class: CLASS_CCID,
            endpoints: Some(ENDPOINTS),
            class_descriptor: Some(profile.descriptor.to_vec()),
            configuration_descriptor: configuration_descriptor(&profile),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                model: ReaderModel::new(profile),
                unplugged: false,
                cancelled: false,
            }),
            changed: Condvar::new(),
        });
        let handle = SimHandle {
            shared: Arc::clone(&shared),
        };
        (SimTransport { info, shared }, handle)
    }

    /// Open a `sim` / `sim:PROFILE` device name.
    pub fn open_name(name: &DeviceName) -> Result<(SimTransport, SimHandle), TransportError> {
        let spec = match name {
            DeviceName::Registered { scheme, spec } if scheme == SCHEME => spec,
            _ => {
                return Err(TransportError::Unsupported(format!(
                    "{name} is not a simulator name"
                )))
            }
        };
        let (spec, violation) = match spec {
            None => (None, None),
            Some(spec) => {
                let (profile, violation) =
                    split_violation(spec).map_err(TransportError::BadName)?;
                (Some(profile), violation)
            }
        };
        let mut profile = match spec {
            None => Profile::default(),
            Some(spec) => {
                let spec = profile_spec(spec).map_err(TransportError::BadName)?;
                Profile::parse(&spec).map_err(|e| TransportError::NotFound(e.to_string()))?
            }
        };
        let Some(violation) = violation else {
            return Ok(Self::open(profile));
        };
        violation.apply_to_profile(&mut profile);
        let (transport, handle) = Self::open(profile);
        handle.shared.update(|m| m.set_violation(violation));
        Ok((transport, handle))
    }

    /// Another handle on this simulator.
    pub fn handle(&self) -> SimHandle {
        SimHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// A transfer whose `n` bytes so far filled whole packets with room
    /// left in `buf` is not over: with no zero-length packet to end it, the
    /// next frame joins it, or the read times out as on a real bus.
    fn run_on(
        &self,
        buf: &mut [u8],
        mut n: usize,
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        while n % usize::from(BULK_PACKET) == 0 && n < buf.len() {
            let (_, rest) = buf.split_at_mut(n);
            n += self
                .shared
                .wait(timeout, |model, now| model.poll_bulk_in(now), rest)?;
        }
        Ok(n)
    }

    fn alive(&self) -> Result<MutexGuard<'_, State>, TransportError> {
        let state = self.shared.lock();
        if state.unplugged {
            return Err(TransportError::DeviceGone);
        }
        Ok(state)
    }
}

impl Transport for SimTransport {
    fn info(&self) -> &TransportInfo {
        &self.info
    }

    fn bulk_out(&self, message: &[u8], _timeout: Duration) -> Result<(), TransportError> {
        self.alive()?
            .model
            .receive_bulk_out(message, Instant::now());
        self.shared.changed.notify_all();
        Ok(())
    }

    fn bulk_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let n = self
            .shared
            .wait(timeout, |model, now| model.poll_bulk_in(now), buf)?;
        let runs_on = self
            .shared
            .lock()
            .model
            .violation()
            .is_some_and(|v| v.drops_zero_length_packets());
        if runs_on {
            return self.run_on(buf, n, timeout);
        }
        Ok(n)
    }

    fn interrupt_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        self.shared
            .wait(timeout, |model, _| model.poll_interrupt(), buf)
    }

    fn control_in(
        &self,
        request: u8,
        _value: u16,
        buf: &mut [u8],
        _timeout: Duration,
    ) -> Result<usize, TransportError> {
        let data = self
            .alive()?
            .model
            .control_in(request)
            .ok_or(TransportError::Stall)?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    fn control_out(
        &self,
        request: u8,
        value: u16,
        _data: &[u8],
        _timeout: Duration,
    ) -> Result<(), TransportError> {
        let mut state = self.alive()?;
        if request != REQUEST_ABORT || !state.model.control_abort(value, Instant::now()) {
            return Err(TransportError::Stall);
        }
        drop(state);
        self.shared.changed.notify_all();
        Ok(())
    }

    fn cancel(&self) {
        self.shared.lock().cancelled = true;
        self.shared.changed.notify_all();
    }

    fn reset_cancel(&self) {
        self.shared.lock().cancelled = false;
    }
}

impl SimHandle {
    /// Take the card out of `slot` (NotifySlotChange; a running command fails).
    pub fn remove_card(&self, slot: u8) {
        self.shared.update(|m| m.remove_card(slot, Instant::now()));
    }

    /// Put the removed card back into `slot` (a default dual card if it had none).
    pub fn insert_card(&self, slot: u8) {
        self.shared.update(|m| m.insert_card(slot, None));
    }

    /// Insert a new card configured by `card` into `slot`.
    pub fn insert_new_card(&self, slot: u8, card: CardConfig) {
        self.shared.update(|m| m.insert_card(slot, Some(card)));
    }

    /// The card's next T=1 block reaches the host with a corrupt EDC.
    pub fn corrupt_next_edc(&self, slot: u8) {
        self.shared.update(|m| {
            if let Some(f) = m.slot_faults(slot) {
                f.corrupt_next_edc = true;
            }
        });
    }

    /// The card does not answer the next block/TPDU/APDU: the reader answers
    /// ICC_MUTE after the profile's mute timeout.
    pub fn drop_next_answer(&self, slot: u8) {
        self.shared.update(|m| {
            if let Some(f) = m.slot_faults(slot) {
                f.drop_next_answer = true;
            }
        });
    }

    /// The card gives no ATR at the next power-on.
    pub fn mute_next_power_on(&self, slot: u8) {
        self.shared.update(|m| {
            if let Some(f) = m.slot_faults(slot) {
                f.mute = true;
            }
        });
    }

    /// `count` time-extension frames before the answer of the next card
    /// exchange on `slot` (spaced by the profile's exchange latency).
    pub fn time_extensions_next(&self, slot: u8, count: u8) {
        self.shared.update(|m| {
            if let Some(f) = m.slot_faults(slot) {
                f.time_extensions_next = count;
            }
        });
    }

    /// `count` time-extension frames, `step` apart, before every card exchange.
    pub fn set_time_extensions(&self, count: u8, step: Duration) {
        self.shared.update(|m| m.set_time_extensions(count, step));
    }

    /// Damage the next bulk-IN frame.
    pub fn inject_response_fault(&self, fault: ResponseFault) {
        self.shared.update(|m| m.inject_response_fault(fault));
    }

    /// Raise RDR_to_PC_HardwareError on the interrupt endpoint.
    pub fn hardware_error(&self, slot: u8, code: u8) {
        self.shared.update(|m| m.hardware_error(slot, code));
    }

    /// What the user does on the pinpad from now on.
    pub fn set_pin_entry(&self, entry: PinEntry) {
        self.shared.update(|m| m.set_pin_entry(entry));
    }

    /// Unplug the reader: every transport call answers `DeviceGone`.
    pub fn unplug(&self) {
        self.shared.lock().unplugged = true;
        self.shared.changed.notify_all();
    }

    /// Look at the model (cards, profile) under the lock.
    pub fn inspect<R>(&self, f: impl FnOnce(&ReaderModel) -> R) -> R {
        f(&self.shared.lock().model)
    }
}
