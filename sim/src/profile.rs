//! Reader profiles: everything that makes the simulated reader look like a
//! particular real one (USB identity, the 54-byte CCID class descriptor, the
//! GET_CLOCK_FREQUENCIES / GET_DATA_RATES lists, the card in each slot, the
//! PIN "typed" on its pad, how slow it is).
//!
//! A profile comes from a built-in name ([`Profile::from_name`]), from a raw
//! class descriptor ([`Profile::from_descriptor_hex`]) or from a JSON file
//! ([`Profile::from_file`]); [`Profile::parse`] picks one of the three for the
//! `PROFILE` part of a `sim:PROFILE` device name.
//!
//! The built-in profiles copy real readers' descriptors and lists from
//! libccid's reader corpus (`readers/*.txt`), so the driver meets what it
//! would meet on hardware.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::card::{CardConfig, EdcKind, SlowCommands};
use ferroccid::ccid::descriptor::CLASS_DESCRIPTOR_LEN;
use ferroccid::ccid::ClassDescriptor;

/// `bVoltageSupport` / card voltage bits: 5.0 V (class A).
pub const VOLTAGE_5V: u8 = 0x01;
/// 3.0 V (class B).
pub const VOLTAGE_3V: u8 = 0x02;
/// 1.8 V (class C).
pub const VOLTAGE_1V8: u8 = 0x04;
/// All three classes.
pub const VOLTAGE_ALL: u8 = VOLTAGE_5V | VOLTAGE_3V | VOLTAGE_1V8;

/// Names of the built-in profiles, the default first.
pub const BUILTIN_NAMES: [&str; 8] = [
    "tpdu",
    "tpdu-t0",
    "tpdu-t1",
    "short-apdu",
    "extended-apdu",
    "character",
    "4-slot",
    "pinpad",
];

/// What the user does on the pinpad when a PC_to_RDR_Secure arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinEntry {
    /// The user types `pin` (and `new_pin` when asked for a new one).
    Typed {
        /// Digits typed for verification (or as the current PIN of a modification).
        pin: String,
        /// Digits typed as the new PIN of a modification (and its confirmation).
        new_pin: String,
    },
    /// The user presses Cancel: the reader answers PIN_CANCELLED.
    Cancelled,
    /// The user types nothing: the reader answers PIN_TIMEOUT.
    Timeout,
}

impl Default for PinEntry {
    fn default() -> Self {
        // The virtual card's preset PIN, so that a verify succeeds by default.
        PinEntry::Typed {
            pin: "123456".into(),
            new_pin: "654321".into(),
        }
    }
}

/// One slot: its card (if any) and the voltage classes that card accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotProfile {
    /// The card inserted at start; `None` = empty slot.
    pub card: Option<CardConfig>,
    /// Voltage classes the card answers at ([`VOLTAGE_5V`] | …). A power-on
    /// at another class gets no ATR (ICC_MUTE), as with a real card.
    pub card_voltages: u8,
}

impl SlotProfile {
    /// A slot holding `card`, which works at every voltage.
    pub fn with_card(card: CardConfig) -> Self {
        SlotProfile {
            card: Some(card),
            card_voltages: VOLTAGE_ALL,
        }
    }
}

/// Everything the simulated reader is configured by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Short name (shown in the transport's device name, `sim:NAME`).
    pub name: String,
    /// The real reader this profile copies, for humans.
    pub modelled_on: String,
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// bcdDevice.
    pub bcd_device: u16,
    /// iManufacturer.
    pub manufacturer: Option<String>,
    /// iProduct.
    pub product: Option<String>,
    /// iSerialNumber.
    pub serial: Option<String>,
    /// bInterfaceProtocol: 0 CCID, 1 ICCD version A, 2 ICCD version B. The
    /// simulator always speaks CCID bulk messages; the value only appears in
    /// the interface descriptor.
    pub interface_protocol: u8,
    /// The raw 54-byte CCID class descriptor.
    pub descriptor: [u8; CLASS_DESCRIPTOR_LEN],
    /// GET_CLOCK_FREQUENCIES answer in kHz; empty = the request stalls.
    pub clock_frequencies_khz: Vec<u32>,
    /// GET_DATA_RATES answer in bps; empty = the request stalls.
    pub data_rates: Vec<u32>,
    /// One entry per slot (`bMaxSlotIndex + 1`).
    pub slots: Vec<SlotProfile>,
    /// What the user does on the pinpad.
    pub pin_entry: PinEntry,
    /// Time-extension frames (`bmCommandStatus` 2) sent before the answer of
    /// every exchange with the card (XfrBlock, Secure).
    pub time_extensions: u8,
    /// Time between two frames of a command (time extensions, final answer).
    pub exchange_latency: Duration,
    /// How long the reader waits for a silent card before answering ICC_MUTE
    /// (a real reader waits BWT/WWT; a test wants it short).
    pub mute_timeout: Duration,
}

/// Why a profile cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileError {
    /// No built-in profile of that name.
    UnknownName(String),
    /// The hex text is not 54 bytes of hex, or not a class descriptor.
    BadDescriptor(String),
    /// The file cannot be read.
    Io(String),
    /// The JSON is malformed or has bad values.
    BadJson(String),
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileError::UnknownName(n) => write!(
                f,
                "no simulator profile named {n:?} (built-in: {})",
                BUILTIN_NAMES.join(", ")
            ),
            ProfileError::BadDescriptor(e) => write!(f, "bad class descriptor: {e}"),
            ProfileError::Io(e) => write!(f, "cannot read profile file: {e}"),
            ProfileError::BadJson(e) => write!(f, "bad profile file: {e}"),
        }
    }
}

impl std::error::Error for ProfileError {}

/// Parse whitespace/colon-separated or packed hex into bytes.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':' && *c != ',')
        .collect();
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .map_err(|_| format!("{:?} is not a hex byte", &digits[i..i + 2]))
        })
        .collect()
}

fn descriptor_array(bytes: &[u8]) -> Result<[u8; CLASS_DESCRIPTOR_LEN], ProfileError> {
    ClassDescriptor::parse(bytes).map_err(|e| ProfileError::BadDescriptor(e.to_string()))?;
    let mut out = [0u8; CLASS_DESCRIPTOR_LEN];
    out.copy_from_slice(bytes);
    Ok(out)
}

/// The data rates GemPlus/Gemalto readers report (libccid corpus, GemPCTwin.txt).
const GEMPLUS_RATES: [u32; 40] = [
    10753, 14337, 15625, 17204, 20833, 21505, 23438, 25806, 28674, 31250, 32258, 34409, 39063,
    41667, 43011, 46875, 52083, 53763, 57348, 62500, 64516, 68817, 71685, 78125, 83333, 86022,
    93750, 104167, 107527, 114695, 125000, 129032, 143369, 156250, 166667, 172043, 215054, 229391,
    250000, 344086,
];

impl Profile {
    /// The decoded class descriptor (the bytes were checked at construction).
    pub fn class_descriptor(&self) -> ClassDescriptor {
        ClassDescriptor::parse(&self.descriptor).expect("profile descriptor checked at build time")
    }

    /// Number of slots the descriptor announces.
    pub fn slot_count(&self) -> usize {
        usize::from(self.descriptor[4]) + 1
    }

    /// A profile from a raw descriptor: unknown USB identity (0000:0000), one
    /// card per slot matching the protocols the reader announces (T=0 only,
    /// T=1 only, or dual), clock and data-rate lists stalled.
    pub fn from_descriptor(descriptor: &[u8]) -> Result<Profile, ProfileError> {
        let descriptor = descriptor_array(descriptor)?;
        let d = ClassDescriptor::parse(&descriptor).expect("checked above");
        let card = match (d.supports_t0(), d.supports_t1()) {
            (true, false) => CardConfig::t0(),
            (false, true) => CardConfig::t1(),
            _ => CardConfig::dual(),
        };
        Ok(Profile {
            name: "descriptor".into(),
            modelled_on: "a raw class descriptor".into(),
            vendor_id: 0,
            product_id: 0,
            bcd_device: 0x0100,
            manufacturer: Some("ferroccid".into()),
            product: Some("Simulated CCID reader".into()),
            serial: None,
            interface_protocol: 0,
            descriptor,
            clock_frequencies_khz: Vec::new(),
            data_rates: Vec::new(),
            slots: vec![SlotProfile::with_card(card); d.slot_count()],
            pin_entry: PinEntry::default(),
            time_extensions: 0,
            exchange_latency: Duration::ZERO,
            mute_timeout: Duration::from_millis(100),
        })
    }

    /// [`Profile::from_descriptor`] on hex text (spaces, colons optional).
    pub fn from_descriptor_hex(text: &str) -> Result<Profile, ProfileError> {
        let bytes = parse_hex(text).map_err(ProfileError::BadDescriptor)?;
        Self::from_descriptor(&bytes)
    }

    fn real(
        name: &str,
        modelled_on: &str,
        vid_pid: (u16, u16),
        bcd_device: u16,
        strings: (&str, &str),
        descriptor_hex: &str,
        card: CardConfig,
    ) -> Profile {
        let mut p =
            Self::from_descriptor_hex(descriptor_hex).expect("built-in descriptors are valid");
        p.name = name.into();
        p.modelled_on = modelled_on.into();
        (p.vendor_id, p.product_id) = vid_pid;
        p.bcd_device = bcd_device;
        p.manufacturer = Some(strings.0.into());
        p.product = Some(strings.1.into());
        p.serial = Some(format!("SIM-{name}"));
        for slot in &mut p.slots {
            slot.card = Some(card.clone());
        }
        p
    }

    /// A built-in profile (see [`BUILTIN_NAMES`]).
    pub fn from_name(name: &str) -> Result<Profile, ProfileError> {
        // Descriptors copied byte for byte from libccid's corpus; the file
        // named in `modelled_on` holds the reader's lists too.
        const GEMPC_TWIN: &str = "36 21 00 01 00 07 03 00 00 00 A0 0F 00 00 A0 0F 00 00 00 00 2A 00 00 16 40 05 00 00 FE 00 00 00 00 00 00 00 00 00 00 00 30 02 01 00 0F 01 00 00 00 00 00 00 00 01";
        const GEMPC_PINPAD: &str = "36 21 00 01 00 07 03 00 00 00 A0 0F 00 00 A0 0F 00 00 00 00 2A 00 00 20 A1 07 00 00 FE 00 00 00 00 00 00 00 00 00 00 00 30 02 01 00 0F 01 00 00 00 00 00 00 03 01";
        const CHERRY_XX33: &str = "36 21 00 01 00 01 03 00 00 00 A0 0F 00 00 A0 0F 00 00 00 00 2A 00 00 16 40 05 00 00 FE 00 00 00 00 00 00 00 00 00 00 00 72 04 02 00 0F 01 00 00 00 00 00 00 01 01";
        const GEMALTO_CT1100: &str = "36 21 10 01 00 02 03 00 00 00 A0 0F 00 00 A0 0F 00 00 00 00 2A 00 00 20 A1 07 00 00 FE 00 00 00 00 00 00 00 00 00 00 00 B2 04 04 00 1C 02 00 00 00 00 00 00 00 01";
        const OZ776S: &str = "36 21 00 01 00 03 03 00 00 00 A0 0F 00 00 A0 0F 00 00 00 80 25 00 00 00 B0 04 00 00 FE 00 00 00 00 00 00 00 00 00 00 00 30 00 00 00 0F 01 00 00 00 00 00 00 00 01";
        // sysmoOCTSIM has 8 slots, all usable at once; cut to 4 slots
        // (bMaxSlotIndex 3, bMaxCCIDBusySlots 4). T=0 only, like the original.
        const OCTSIM_4: &str = "36 21 10 01 03 07 01 00 00 00 C4 09 00 00 20 4E 00 00 04 40 1A 00 00 00 10 0E 00 00 00 00 00 00 00 00 00 00 00 00 00 00 B0 00 01 00 10 01 00 00 FF FF 00 00 00 04";
        let gemplus = ("Gemplus", "USB SmartCard Reader");
        let mut p = match name {
            "tpdu" => Self::real(
                "tpdu",
                "Gemalto GemPC Twin (GemPCTwin.txt): TPDU, T=0/T=1, no automatic PPS",
                (0x08E6, 0x3437),
                0x0100,
                gemplus,
                GEMPC_TWIN,
                CardConfig::dual(),
            ),
            "tpdu-t0" => Self::real(
                "tpdu-t0",
                "Gemalto GemPC Twin with a T=0-only card",
                (0x08E6, 0x3437),
                0x0100,
                gemplus,
                GEMPC_TWIN,
                CardConfig::t0(),
            ),
            "tpdu-t1" => Self::real(
                "tpdu-t1",
                "Gemalto GemPC Twin with a T=1-only card",
                (0x08E6, 0x3437),
                0x0100,
                gemplus,
                GEMPC_TWIN,
                CardConfig::t1(),
            ),
            "pinpad" => Self::real(
                "pinpad",
                "Gemalto GemPC Pinpad (GemPCPinpad.txt): TPDU, PIN verify+modify",
                (0x08E6, 0x3478),
                0x0100,
                ("Gemplus", "USB GemPCPinpad SmartCard Reader"),
                GEMPC_PINPAD,
                CardConfig::dual(),
            ),
            "short-apdu" => Self::real(
                "short-apdu",
                "Cherry SmartBoard XX33 (CherryXX33.txt): short APDU, PIN verify",
                (0x046A, 0x0005),
                0x0100,
                ("Cherry GmbH", "SmartBoard XX33"),
                CHERRY_XX33,
                CardConfig::dual(),
            ),
            "extended-apdu" => Self::real(
                "extended-apdu",
                "Gemalto CT1100 (Gemalto_CT1100.txt): extended APDU, 540-byte messages",
                (0x08E6, 0x3440),
                0x0102,
                ("GEMALTO", "USB Smart Card Reader"),
                GEMALTO_CT1100,
                CardConfig::dual(),
            ),
            "character" => Self::real(
                "character",
                "O2 Micro Oz776 (Oz776S.txt): character level",
                (0x0B97, 0x7762),
                0x0110,
                ("O2", "O2Micro CCID SC Reader"),
                OZ776S,
                CardConfig::dual(),
            ),
            "4-slot" => Self::real(
                "4-slot",
                "sysmocom sysmoOCTSIM (sysmocom_sysmoOCTSIM.txt) cut to 4 slots, all busy at once",
                (0x1D50, 0x6141),
                0x0000,
                ("sysmocom - s.f.m.c. GmbH", "sysmoOCTSIM"),
                OCTSIM_4,
                CardConfig::t0(),
            ),
            other => return Err(ProfileError::UnknownName(other.to_string())),
        };
        match name {
            "tpdu" | "tpdu-t0" | "tpdu-t1" | "pinpad" => {
                p.clock_frequencies_khz = vec![4000];
                p.data_rates = GEMPLUS_RATES.to_vec();
                if name == "pinpad" {
                    p.data_rates.push(500000);
                }
            }
            "extended-apdu" => {
                p.clock_frequencies_khz = vec![4000];
                p.data_rates = vec![10753];
            }
            "character" => {
                p.clock_frequencies_khz = vec![4000];
                p.data_rates = vec![9600];
            }
            "4-slot" => {
                // bNumClockSupported 4 makes GET_CLOCK_FREQUENCIES mandatory
                // (CCID §5.3.2); the real sysmoOCTSIM does not answer it, the
                // profile does, with four clocks in its 2.5–20 MHz range.
                p.clock_frequencies_khz = vec![2500, 5000, 10000, 20000];
            }
            _ => {}
        }
        Ok(p)
    }

    /// A profile from a JSON file (see `fixtures/profiles/*.json`).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Profile, ProfileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ProfileError::Io(format!("{}: {e}", path.display())))?;
        Self::from_json(&text)
    }

    /// A profile from JSON text (the format of [`Profile::from_file`]).
    pub fn from_json(text: &str) -> Result<Profile, ProfileError> {
        let file: ProfileFile =
            serde_json::from_str(text).map_err(|e| ProfileError::BadJson(e.to_string()))?;
        file.into_profile()
    }

    /// The `PROFILE` of `sim:PROFILE`: a built-in name, a path to a `.json`
    /// file, or the class descriptor in hex (108 hex digits, `36 21 …`).
    pub fn parse(spec: &str) -> Result<Profile, ProfileError> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Self::from_name("tpdu");
        }
        if BUILTIN_NAMES.contains(&spec) {
            return Self::from_name(spec);
        }
        if spec.ends_with(".json") || spec.contains('/') {
            return Self::from_file(spec);
        }
        let looks_hex = spec
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c.is_whitespace() || c == ':');
        if looks_hex && spec.chars().filter(char::is_ascii_hexdigit).count() >= 4 {
            return Self::from_descriptor_hex(spec);
        }
        Self::from_name(spec)
    }
}

impl Default for Profile {
    /// The `tpdu` profile, the default of a bare `sim` device name.
    fn default() -> Self {
        Profile::from_name("tpdu").expect("tpdu is built in")
    }
}

/// JSON form of a card.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CardFile {
    /// `t0`, `t1`, `dual` or `fast` (dual with TA1 = 0x96).
    preset: String,
    #[serde(default)]
    ta1: Option<u8>,
    #[serde(default)]
    ifsc: Option<u8>,
    #[serde(default)]
    crc: bool,
    #[serde(default)]
    slow_ins: Vec<u8>,
    #[serde(default)]
    t0_nulls: usize,
    #[serde(default)]
    t1_wtx_requests: usize,
    #[serde(default)]
    wtx_multiplier: u8,
    #[serde(default)]
    rng_seed: Option<u64>,
    /// Voltage classes (bit 0 5 V, bit 1 3 V, bit 2 1.8 V); default all.
    #[serde(default)]
    voltages: Option<u8>,
}

/// JSON form of a profile.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    #[serde(default)]
    modelled_on: String,
    /// "VVVV:PPPP" in hex.
    vid_pid: String,
    #[serde(default)]
    bcd_device: Option<u16>,
    #[serde(default)]
    manufacturer: Option<String>,
    #[serde(default)]
    product: Option<String>,
    #[serde(default)]
    serial: Option<String>,
    #[serde(default)]
    interface_protocol: u8,
    /// The class descriptor in hex.
    descriptor: String,
    #[serde(default)]
    clock_frequencies_khz: Vec<u32>,
    #[serde(default)]
    data_rates: Vec<u32>,
    /// One card per slot (`null` = empty slot); missing slots get a copy of the last.
    #[serde(default)]
    cards: Vec<Option<CardFile>>,
    #[serde(default)]
    typed_pin: Option<String>,
    #[serde(default)]
    typed_new_pin: Option<String>,
    /// "typed" (default), "cancelled" or "timeout".
    #[serde(default)]
    pin_entry: Option<String>,
    #[serde(default)]
    time_extensions: u8,
    #[serde(default)]
    exchange_latency_ms: u64,
    #[serde(default)]
    mute_timeout_ms: Option<u64>,
}

impl CardFile {
    fn into_slot(self) -> Result<SlotProfile, ProfileError> {
        let mut card = match self.preset.as_str() {
            "t0" => CardConfig::t0(),
            "t1" => CardConfig::t1(),
            "dual" => CardConfig::dual(),
            "fast" => CardConfig::fast(),
            other => {
                return Err(ProfileError::BadJson(format!(
                    "card preset {other:?} is not t0, t1, dual or fast"
                )))
            }
        };
        if self.ta1.is_some() {
            card.ta1 = self.ta1;
        }
        if let Some(ifsc) = self.ifsc {
            card.ifsc = ifsc;
        }
        if self.crc {
            card.edc = EdcKind::Crc;
        }
        card.slow = SlowCommands {
            ins: self.slow_ins,
            t0_nulls: self.t0_nulls,
            t1_wtx_requests: self.t1_wtx_requests,
            wtx_multiplier: self.wtx_multiplier,
        };
        card.rng_seed = self.rng_seed;
        Ok(SlotProfile {
            card: Some(card),
            card_voltages: self.voltages.unwrap_or(VOLTAGE_ALL),
        })
    }
}

impl ProfileFile {
    fn into_profile(self) -> Result<Profile, ProfileError> {
        let mut p = Profile::from_descriptor_hex(&self.descriptor)?;
        let (v, pid) = self
            .vid_pid
            .split_once(':')
            .ok_or_else(|| ProfileError::BadJson("vid_pid must be VVVV:PPPP".into()))?;
        let hex16 = |s: &str| {
            u16::from_str_radix(s, 16)
                .map_err(|_| ProfileError::BadJson(format!("{s:?} is not a 16-bit hex number")))
        };
        p.vendor_id = hex16(v)?;
        p.product_id = hex16(pid)?;
        p.name = self.name;
        p.modelled_on = self.modelled_on;
        p.bcd_device = self.bcd_device.unwrap_or(p.bcd_device);
        p.manufacturer = self.manufacturer;
        p.product = self.product;
        p.serial = self.serial;
        if self.interface_protocol > 2 {
            return Err(ProfileError::BadJson(
                "interface_protocol must be 0 (CCID), 1 (ICCD-A) or 2 (ICCD-B)".into(),
            ));
        }
        p.interface_protocol = self.interface_protocol;
        p.clock_frequencies_khz = self.clock_frequencies_khz;
        p.data_rates = self.data_rates;
        if !self.cards.is_empty() {
            let mut slots = Vec::new();
            for card in self.cards {
                slots.push(match card {
                    Some(c) => c.into_slot()?,
                    None => SlotProfile {
                        card: None,
                        card_voltages: VOLTAGE_ALL,
                    },
                });
            }
            if slots.len() > p.slot_count() {
                return Err(ProfileError::BadJson(format!(
                    "{} cards for {} slots",
                    slots.len(),
                    p.slot_count()
                )));
            }
            while slots.len() < p.slot_count() {
                slots.push(slots[slots.len() - 1].clone());
            }
            p.slots = slots;
        }
        p.pin_entry = match self.pin_entry.as_deref().unwrap_or("typed") {
            "typed" => PinEntry::Typed {
                pin: self.typed_pin.unwrap_or_else(|| "123456".into()),
                new_pin: self.typed_new_pin.unwrap_or_else(|| "654321".into()),
            },
            "cancelled" => PinEntry::Cancelled,
            "timeout" => PinEntry::Timeout,
            other => {
                return Err(ProfileError::BadJson(format!(
                    "pin_entry {other:?} is not typed, cancelled or timeout"
                )))
            }
        };
        p.time_extensions = self.time_extensions;
        p.exchange_latency = Duration::from_millis(self.exchange_latency_ms);
        if let Some(ms) = self.mute_timeout_ms {
            p.mute_timeout = Duration::from_millis(ms);
        }
        Ok(p)
    }
}
