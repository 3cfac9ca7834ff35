//! The virtual smart card: an ISO/IEC 7816-3/-4 card model.
//!
//! Like a protocol core, the card does no I/O and keeps no clock: the reader
//! model (or a test) feeds it what the interface device sends and gets back
//! what the card would answer. Four entry points match the exchange levels
//! of CCID readers:
//!
//! | level | method | input → output |
//! |---|---|---|
//! | PPS | [`VirtualCard::pps`] | PPS request → PPS response (or silence) |
//! | T=0 character | [`VirtualCard::t0_receive`] | characters → characters |
//! | T=0 TPDU | [`VirtualCard::t0_tpdu`] | TPDU → data + SW1 SW2 (driven over the character level) |
//! | T=1 block | [`VirtualCard::t1_block`] | block → block (or silence) |
//! | APDU | [`VirtualCard::process_apdu`] | command APDU → response APDU |
//!
//! | module | what |
//! |---|---|
//! | [`config`] | [`CardConfig`], presets, the ATR builder, faults |
//! | `edc` | LRC and CRC |
//! | `pps` | card side of PPS |
//! | `apdu` | command APDU decoding |
//! | [`fs`] | file system and the demo personalisation |
//! | [`app`] | the ISO/IEC 7816-4 commands |
//! | `t0`, `t1` | transmission protocols |

pub(crate) mod apdu;
pub mod app;
pub mod config;
pub(crate) mod edc;
pub mod fs;
pub(crate) mod pps;
pub(crate) mod t0;
pub(crate) mod t1;

use std::collections::VecDeque;

pub use apdu::Command;
pub use app::{Application, Response, Secret};
pub use config::{CardConfig, EdcKind, Faults, Protocols, SlowCommands, SpecificMode};

/// What the protocol layers share: the configuration and the application.
#[derive(Debug, Clone)]
pub(crate) struct Core {
    config: CardConfig,
    app: Application,
    /// `faults.drop_ins` not yet used.
    drop_pending: Option<u8>,
}

impl Core {
    /// Runs a command; the flag says the card stays silent (dropped answer).
    fn execute(&mut self, cmd: &Command) -> (Response, bool) {
        let response = self.app.execute(cmd);
        let silent = self.drop_pending == Some(cmd.ins);
        if silent {
            self.drop_pending = None;
        }
        (response, silent)
    }

    /// Runs a command; `None` when the card stays silent.
    fn run(&mut self, cmd: &Command) -> Option<Response> {
        match self.execute(cmd) {
            (response, false) => Some(response),
            (_, true) => None,
        }
    }

    /// Runs a whole APDU (T=1); the flag says the card stays silent.
    fn run_bytes(&mut self, apdu: &[u8]) -> (Response, bool) {
        match Command::parse(apdu) {
            Some(cmd) => self.execute(&cmd),
            None => (Response::status(app::sw::WRONG_LENGTH), false),
        }
    }
}

/// A virtual card in a slot.
#[derive(Debug, Clone)]
pub struct VirtualCard {
    core: Core,
    present: bool,
    powered: bool,
    /// A PPS request is acceptable (first exchange after the ATR).
    pps_allowed: bool,
    protocol: u8,
    fi_di: u8,
    t0: t0::T0Machine,
    t1: t1::T1Machine,
}

impl Default for VirtualCard {
    fn default() -> Self {
        VirtualCard::new(CardConfig::default())
    }
}

impl VirtualCard {
    /// A card, present and unpowered.
    pub fn new(config: CardConfig) -> Self {
        let seed = config.rng_seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        });
        let app = Application::new(
            config.files.clone(),
            Secret::new(&config.pin, config.pin_tries),
            Secret::new(&config.puk, config.puk_tries),
            seed,
            config.auth_key.clone(),
        );
        let ifsc = config.ifsc;
        VirtualCard {
            core: Core {
                drop_pending: config.faults.drop_ins,
                config,
                app,
            },
            present: true,
            powered: false,
            pps_allowed: false,
            protocol: 0,
            fi_di: 0x11,
            t0: t0::T0Machine::default(),
            t1: t1::T1Machine::new(ifsc),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CardConfig {
        &self.core.config
    }

    /// The application (files, PIN state), for inspection by tests.
    pub fn application(&self) -> &Application {
        &self.core.app
    }

    /// Whether the card is in the slot.
    pub fn is_present(&self) -> bool {
        self.present
    }

    /// Takes the card out: it loses power and answers nothing.
    pub fn remove(&mut self) {
        self.present = false;
        self.power_off();
    }

    /// Puts the card back (unpowered).
    pub fn insert(&mut self) {
        self.present = true;
    }

    /// Whether the card is powered and has answered reset.
    pub fn is_powered(&self) -> bool {
        self.powered
    }

    /// Protocol in use (0 or 1).
    pub fn protocol(&self) -> u8 {
        self.protocol
    }

    /// Fi/Di byte in use (0x11 until a PPS echoes PPS1).
    pub fn fi_di(&self) -> u8 {
        self.fi_di
    }

    /// Current T=1 IFSC (it changes after a card-initiated S(IFS request)).
    pub fn ifsc(&self) -> u8 {
        self.t1.ifsc()
    }

    /// Current T=1 IFSD, as the host set it with S(IFS request).
    pub fn ifsd(&self) -> u8 {
        self.t1.ifsd()
    }

    /// Cold reset: activation and ATR. `None` = no ATR (mute or absent card).
    pub fn power_on(&mut self) -> Option<Vec<u8>> {
        self.reset()
    }

    /// Warm reset: same as a cold reset for this card (volatile state lost).
    pub fn warm_reset(&mut self) -> Option<Vec<u8>> {
        self.reset()
    }

    /// Deactivation.
    pub fn power_off(&mut self) {
        self.powered = false;
        self.pps_allowed = false;
    }

    fn reset(&mut self) -> Option<Vec<u8>> {
        self.power_off();
        if !self.present || self.core.config.faults.mute {
            return None;
        }
        let config = &self.core.config;
        self.core.app.reset();
        self.t0.reset();
        self.t1 = t1::T1Machine::new(config.ifsc);
        self.protocol = config
            .specific_mode
            .map_or(config.protocols.first(), |m| m.protocol);
        self.fi_di = match config.specific_mode {
            Some(m) if !m.implicit_parameters => config.fi_di(),
            _ => 0x11,
        };
        self.powered = true;
        self.pps_allowed = true;
        Some(config.atr())
    }

    /// PPS exchange, allowed only as the first exchange after the ATR.
    /// `None` = the card stays silent (the reader must then deactivate).
    pub fn pps(&mut self, request: &[u8]) -> Option<Vec<u8>> {
        if !self.powered || !std::mem::take(&mut self.pps_allowed) {
            return None;
        }
        let answer = pps::answer(&self.core.config, request)?;
        self.protocol = answer.protocol;
        self.fi_di = answer.fi_di;
        Some(answer.response)
    }

    /// T=0 at character level: feeds the characters the interface device
    /// sends, returns those the card sends. Empty when the card is not
    /// powered or does not run T=0. A PPS request (starting with FF) is
    /// accepted here too, if it comes whole in one call right after the ATR.
    pub fn t0_receive(&mut self, bytes: &[u8]) -> Vec<u8> {
        if self.pps_allowed && bytes.first() == Some(&0xFF) {
            return self.pps(bytes).unwrap_or_default();
        }
        if !self.powered || self.protocol != 0 {
            return Vec::new();
        }
        self.pps_allowed = false;
        self.t0.receive(bytes, &mut self.core)
    }

    /// T=0 at TPDU level: what a TPDU-level reader returns for this TPDU
    /// (data + SW1 SW2, or nothing when the card stays silent). Implemented
    /// as a reader's loop over [`VirtualCard::t0_receive`].
    pub fn t0_tpdu(&mut self, tpdu: &[u8]) -> Vec<u8> {
        let mut header = [0u8; 5];
        let n = tpdu.len().min(5);
        header[..n].copy_from_slice(&tpdu[..n]);
        let to_send = tpdu.get(5..).unwrap_or(&[]);
        let mut to_receive = if to_send.is_empty() {
            usize::from(header[4]).max(1)
        } else {
            0
        };
        if to_send.is_empty() && header[4] == 0 {
            to_receive = 256;
        }
        let ins = header[1];
        let mut sent = 0;
        let mut answer = Vec::new();
        let mut from_card: VecDeque<u8> = self.t0_receive(&header).into();
        while let Some(procedure) = from_card.pop_front() {
            match procedure {
                t0::NULL => {}
                0x61..=0x6F | 0x90..=0x9F => {
                    answer.push(procedure);
                    answer.extend(from_card.pop_front());
                    return answer;
                }
                p if p == ins && sent < to_send.len() => {
                    from_card.extend(self.t0_receive(&to_send[sent..]));
                    sent = to_send.len();
                }
                p if p == ins ^ 0xFF && sent < to_send.len() => {
                    from_card.extend(self.t0_receive(&to_send[sent..=sent]));
                    sent += 1;
                }
                p if p == ins => {
                    let n = to_receive.min(from_card.len());
                    answer.extend(from_card.drain(..n));
                    to_receive -= n;
                }
                p if p == ins ^ 0xFF => {
                    answer.extend(from_card.pop_front());
                    to_receive = to_receive.saturating_sub(1);
                }
                _ => break,
            }
        }
        // The card stopped talking without a status word: a reader would
        // time out; report nothing.
        Vec::new()
    }

    /// T=1 at block level: receives one block, returns the card's block, or
    /// `None` when the card stays silent.
    pub fn t1_block(&mut self, block: &[u8]) -> Option<Vec<u8>> {
        if !self.powered || self.protocol != 1 {
            return None;
        }
        self.pps_allowed = false;
        self.t1.receive(block, &mut self.core)
    }

    /// APDU level (short or extended): the whole command in, the whole
    /// response (data + SW1 SW2) out; empty when the card stays silent.
    pub fn process_apdu(&mut self, cmd: &[u8]) -> Vec<u8> {
        if !self.powered {
            return Vec::new();
        }
        self.pps_allowed = false;
        match Command::parse(cmd) {
            Some(cmd) => self
                .core
                .run(&cmd)
                .map(Response::into_bytes)
                .unwrap_or_default(),
            None => Response::status(app::sw::WRONG_LENGTH).into_bytes(),
        }
    }
}
