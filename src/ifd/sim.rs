//! A stand-in backend for `sim` / `sim:PROFILE` device names: the virtual
//! card of `crate::sim::card` behind an APDU-level (T=1) or TPDU-level
//! (T=0) reader model, until the simulated CCID reader and `crate::reader`
//! can be driven through [`Backend`] instead.
//!
//! pcscd runs the driver in its own process, so tests steer the simulator
//! through files: with `FERROCCID_SIM_CONTROL=DIR` in pcscd's environment,
//! `DIR/NAME.absent` existing means "card removed" and `DIR/NAME.unplugged`
//! means "reader unplugged", where NAME is the whole profile string
//! (`sim:t0.a` → `t0.a`, `sim` → `default`). A profile is `KIND[.TAG]`,
//! KIND one of `default`, `t1`, `t0`, `short-apdu`, `pinpad`, `4-slot`;
//! TAG only tells readers apart.

use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::backend::{Backend, BackendError, PinPad, ReaderInfo, SlotState, Wait};
use crate::ccid::secure::SecureData;
use crate::sim::card::{CardConfig, VirtualCard};

/// The environment variable naming the control directory.
pub const CONTROL_ENV: &str = "FERROCCID_SIM_CONTROL";
/// The PIN the simulated pad "types" (the preset card's PIN).
const PAD_PIN: &[u8] = b"123456";
/// How often the control files are looked at while waiting.
const CONTROL_POLL: Duration = Duration::from_millis(50);
/// USB ids of the simulated reader: pid.codes' test VID/PID pair.
const SIM_VENDOR: u16 = 0x1209;
const SIM_PRODUCT: u16 = 0x0001;

struct SlotModel {
    card: VirtualCard,
    /// The card the model last saw (from the control file).
    present: bool,
    insertions: u64,
    protocol: Option<u8>,
}

struct Shared {
    slots: Vec<SlotModel>,
    gone: bool,
    cancel: bool,
    /// Bumped on every change, so a waiter sees changes another thread's
    /// refresh found first.
    events: u64,
}

/// The simulated reader.
pub struct SimBackend {
    info: ReaderInfo,
    name: String,
    t0: bool,
    control: Option<PathBuf>,
    shared: Mutex<Shared>,
    wake: Condvar,
}

impl SimBackend {
    /// Opens the profile `profile` (`None` for plain `sim`).
    pub fn open(profile: Option<&str>) -> Result<SimBackend, BackendError> {
        let name = profile.unwrap_or("default").to_owned();
        let kind = name.split('.').next().unwrap_or_default();
        let (t0, slots, short, pinpad) = match kind {
            "default" | "t1" | "extended-apdu" => (false, 1, false, false),
            "t0" | "tpdu" | "character" => (true, 1, true, false),
            "short-apdu" => (false, 1, true, false),
            "pinpad" => (false, 1, false, true),
            "4-slot" => (false, 4, false, false),
            _ => {
                return Err(BackendError::Communication(format!(
                    "unknown simulator profile {kind:?}"
                )))
            }
        };
        let config = if t0 {
            CardConfig::t0()
        } else {
            CardConfig::t1()
        };
        let slots = (0..slots)
            .map(|_| SlotModel {
                card: VirtualCard::new(config.clone()),
                present: true,
                insertions: 1,
                protocol: None,
            })
            .collect();
        let info = ReaderInfo {
            vendor_id: SIM_VENDOR,
            product_id: SIM_PRODUCT,
            vendor_name: "ferroccid".into(),
            product_name: format!("ferroccid simulated reader ({kind})"),
            serial: Some(name.clone()),
            bcd_device: 0x0100,
            slots: if kind == "4-slot" { 4 } else { 1 },
            max_apdu_data: if short { 255 } else { 65536 },
            has_interrupt: true,
            slots_concurrent: false,
            pinpad: pinpad.then_some(PinPad {
                verify: true,
                modify: true,
                lcd_layout: 0,
                min_pin: 4,
                max_pin: 8,
            }),
            channel_id: 0,
        };
        let control = std::env::var_os(CONTROL_ENV).map(PathBuf::from);
        let backend = SimBackend {
            info,
            name,
            t0,
            control,
            shared: Mutex::new(Shared {
                slots,
                gone: false,
                cancel: false,
                events: 0,
            }),
            wake: Condvar::new(),
        };
        {
            let mut shared = backend.lock();
            backend.refresh(&mut shared);
        }
        Ok(backend)
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn control_file(&self, suffix: &str) -> Option<PathBuf> {
        self.control
            .as_ref()
            .map(|dir| dir.join(format!("{}.{suffix}", self.name)))
    }

    /// Applies the control files; returns whether anything changed.
    fn refresh(&self, shared: &mut Shared) -> bool {
        let mut changed = false;
        if !shared.gone && self.control_file("unplugged").is_some_and(|p| p.exists()) {
            shared.gone = true;
            changed = true;
        }
        let present = !self.control_file("absent").is_some_and(|p| p.exists());
        for slot in &mut shared.slots {
            if slot.present != present {
                slot.present = present;
                changed = true;
                if present {
                    slot.insertions += 1;
                    slot.card.insert();
                } else {
                    slot.card.remove();
                    slot.protocol = None;
                }
            }
        }
        if changed {
            shared.events += 1;
            self.wake.notify_all();
        }
        changed
    }

    fn with_slot<R>(
        &self,
        slot: u8,
        f: impl FnOnce(&mut SlotModel) -> Result<R, BackendError>,
    ) -> Result<R, BackendError> {
        let mut shared = self.lock();
        self.refresh(&mut shared);
        if shared.gone {
            return Err(BackendError::Gone);
        }
        let model = shared
            .slots
            .get_mut(usize::from(slot))
            .ok_or(BackendError::NotSupported)?;
        if !model.present {
            return Err(BackendError::NoCard);
        }
        f(model)
    }

    /// T=0 at TPDU level: case 4 loses its Le (the card answers 61xx and
    /// the client sends GET RESPONSE), extended lengths are refused.
    fn t0_exchange(card: &mut VirtualCard, apdu: &[u8]) -> Vec<u8> {
        match apdu.len() {
            4 => card.t0_tpdu(&[apdu[0], apdu[1], apdu[2], apdu[3], 0]),
            5 => card.t0_tpdu(apdu),
            n if apdu[4] != 0 && n == 5 + usize::from(apdu[4]) => card.t0_tpdu(apdu),
            n if apdu[4] != 0 && n == 6 + usize::from(apdu[4]) => card.t0_tpdu(&apdu[..n - 1]),
            _ => vec![0x67, 0x00],
        }
    }
}

/// Puts the pad's PIN into the APDU as bmFormatString asks (CCID 6.1.11.7):
/// bit 7 units (bytes/bits), bits 6-3 position, bits 1-0 type (binary,
/// BCD, ASCII). Only byte-unit ASCII and binary formats are simulated.
fn insert_pin(format: u8, block: u8, apdu: &[u8]) -> Option<Vec<u8>> {
    let mut out = apdu.to_vec();
    let position = usize::from((format >> 3) & 0x0F);
    let start = 5 + position;
    let digits: Vec<u8> = match format & 0x03 {
        0x02 => PAD_PIN.to_vec(),
        0x00 => PAD_PIN.iter().map(|d| d - b'0').collect(),
        _ => return None,
    };
    let block_size = usize::from(block & 0x0F);
    if block_size != 0 && digits.len() > block_size {
        return None;
    }
    if out.len() < start + digits.len() {
        out.resize(start + digits.len(), 0xFF);
    }
    out[start..start + digits.len()].copy_from_slice(&digits);
    if block_size == 0 {
        // No block: the data field is the PIN alone.
        out.truncate(start + digits.len());
        out[4] = (position + digits.len()) as u8;
    }
    Some(out)
}

impl Backend for SimBackend {
    fn info(&self) -> &ReaderInfo {
        &self.info
    }

    fn slot_state(&self, slot: u8) -> Result<SlotState, BackendError> {
        let mut shared = self.lock();
        self.refresh(&mut shared);
        if shared.gone {
            return Err(BackendError::Gone);
        }
        let model = shared
            .slots
            .get(usize::from(slot))
            .ok_or(BackendError::NotSupported)?;
        Ok(match (model.present, model.card.is_powered()) {
            (false, _) => SlotState::Absent,
            (true, false) => SlotState::Inactive,
            (true, true) => SlotState::Active,
        })
    }

    fn insertions(&self, slot: u8) -> u64 {
        let mut shared = self.lock();
        self.refresh(&mut shared);
        shared
            .slots
            .get(usize::from(slot))
            .map_or(0, |s| s.insertions)
    }

    fn power_on(&self, slot: u8, warm: bool) -> Result<Vec<u8>, BackendError> {
        let t0 = self.t0;
        self.with_slot(slot, |model| {
            let atr = if warm {
                model.card.warm_reset()
            } else {
                model.card.power_off();
                model.card.power_on()
            };
            model.protocol = Some(if t0 { 0 } else { 1 });
            atr.ok_or(BackendError::PowerFailed)
        })
    }

    fn power_off(&self, slot: u8) -> Result<(), BackendError> {
        self.with_slot(slot, |model| {
            model.card.power_off();
            model.protocol = None;
            Ok(())
        })
    }

    fn set_protocol(&self, slot: u8, t: u8, _pps1: Option<u8>) -> Result<(), BackendError> {
        let offered = if self.t0 { 0 } else { 1 };
        self.with_slot(slot, |model| {
            if t != offered {
                return Err(BackendError::ProtocolNotSupported);
            }
            model.protocol = Some(t);
            Ok(())
        })
    }

    fn protocol(&self, slot: u8) -> Option<u8> {
        self.lock()
            .slots
            .get(usize::from(slot))
            .and_then(|s| s.protocol)
    }

    fn transmit(&self, slot: u8, apdu: &[u8]) -> Result<Vec<u8>, BackendError> {
        let t0 = self.t0;
        let max = self.info.max_apdu_data as usize;
        self.with_slot(slot, |model| {
            if !model.card.is_powered() {
                return Err(BackendError::Communication("card not powered".into()));
            }
            // A short-APDU reader refuses what does not fit a short frame.
            if apdu.len() > max + 6 {
                return Err(BackendError::Communication(
                    "APDU too long for the reader".into(),
                ));
            }
            let response = if t0 {
                Self::t0_exchange(&mut model.card, apdu)
            } else {
                model.card.process_apdu(apdu)
            };
            if response.is_empty() {
                return Err(BackendError::Timeout);
            }
            Ok(response)
        })
    }

    fn secure(&self, slot: u8, ab_data: &[u8]) -> Result<Vec<u8>, BackendError> {
        if self.info.pinpad.is_none() {
            return Err(BackendError::NotSupported);
        }
        let parsed =
            SecureData::parse(ab_data).map_err(|e| BackendError::Communication(e.reason.into()))?;
        let apdu = match parsed {
            SecureData::Verify(v) => insert_pin(v.format_string, v.pin_block_string, v.apdu),
            SecureData::Modify(m) => {
                // Old and new PIN are the same typed PIN: enough to exercise the path.
                insert_pin(m.format_string, m.pin_block_string, m.apdu)
            }
            _ => None,
        }
        .ok_or(BackendError::NotSupported)?;
        self.with_slot(slot, |model| {
            if !model.card.is_powered() {
                return Err(BackendError::Communication("card not powered".into()));
            }
            Ok(model.card.process_apdu(&apdu))
        })
    }

    fn escape(&self, data: &[u8]) -> Result<Vec<u8>, BackendError> {
        // The simulated reader echoes escapes, so the path is testable.
        Ok(data.to_vec())
    }

    fn wait_for_change(&self, timeout: Duration) -> Result<Wait, BackendError> {
        let deadline = Instant::now() + timeout;
        let mut shared = self.lock();
        let seen = shared.events;
        loop {
            if shared.cancel {
                shared.cancel = false;
                return Ok(Wait::Cancelled);
            }
            self.refresh(&mut shared);
            if shared.events != seen {
                return Ok(Wait::Changed);
            }
            if shared.gone {
                return Err(BackendError::Gone);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Wait::Timeout);
            }
            let step = CONTROL_POLL.min(deadline - now);
            shared = self
                .wake
                .wait_timeout(shared, step)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn cancel_wait(&self) {
        self.lock().cancel = true;
        self.wake.notify_all();
    }
}
