//! Answer-to-Reset parsing (ISO/IEC 7816-3:2006 §8).
//!
//! [`Atr::parse`] validates the structure once and returns a `Copy` value
//! holding the raw bytes (at most 33) plus the decoded transmission
//! parameters, each with the default of the standard when the card does not
//! send the byte that carries it.
//!
//! # What `parse` accepts
//!
//! * Bytes as a CCID reader delivers them: already decoded to their logical
//!   values, TS = `3B` (direct) or `3F` (inverse). A raw line capture of an
//!   inverse-convention card taken with a direct-convention UART starts with
//!   `03`; `parse` rejects it as [`AtrError::InvalidTs`] and
//!   [`Atr::parse_uart`] converts such a capture with [`inverse_to_direct`]
//!   first.
//! * A wrong TCK is *recorded*, not rejected ([`Atr::tck_ok`]), because
//!   pcscd and libccid hand such an ATR to the application too; use
//!   [`Atr::parse_strict`] to reject it.
//! * Values the standard reserves for future use are *flagged*
//!   ([`Atr::anomalies`]) and the affected parameter falls back to what real
//!   drivers do (libccid): an RFU FI or DI in TA1 makes the whole TA1 unusable
//!   and the card is driven at Fd/Dd; IFSC `00` means the default 32 and IFSC
//!   `FF` is clamped to 254; WI `00` means the default 10. [`Atr::parse_strict`]
//!   turns the first flag into [`AtrError::Rfu`].
//! * Structural faults are always errors: fewer than 2 bytes, more than 33,
//!   an indicated byte missing, bytes after the end, an unknown TS.

use crate::edc::Edc;
use crate::params;
use core::fmt;

/// The longest ATR the standard allows, TS included (§8.2.1).
pub const MAX_LEN: usize = 33;

/// Default clock rate conversion integer FI / adjustment DI used without TA1.
const TA1_DEFAULT: u8 = params::TA1_DEFAULT;
/// Default waiting time integer WI (§10.2) when TC2 is absent.
pub const WI_DEFAULT: u8 = 10;
/// Default IFSC (§11.4.2) when the first TA for T=1 is absent.
pub const IFSC_DEFAULT: u8 = 32;
/// Default CWI (§11.4.3) when the first TB for T=1 is absent.
pub const CWI_DEFAULT: u8 = 13;
/// Default BWI (§11.4.3) when the first TB for T=1 is absent.
pub const BWI_DEFAULT: u8 = 4;
/// How many anomalies an [`Atr`] records; later ones are dropped.
const MAX_ANOMALIES: usize = 8;

/// Convert one byte received in inverse convention by a UART set to direct
/// convention into its logical value: reverse the bit order, complement.
///
/// An inverse-convention TS read that way is `03`, which becomes `3F`.
pub const fn inverse_to_direct(byte: u8) -> u8 {
    !byte.reverse_bits()
}

/// Bit order and level convention announced by TS (§8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Convention {
    /// TS = `3B`: high level is 1, least significant bit first.
    Direct,
    /// TS = `3F`: low level is 1, most significant bit first.
    Inverse,
}

/// Which of the four interface bytes of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InterfaceKind {
    /// TAi
    Ta,
    /// TBi
    Tb,
    /// TCi
    Tc,
    /// TDi: Y(i+1) and the protocol T of the next group.
    Td,
}

impl InterfaceKind {
    /// The letter of the kind, as in "TA".
    pub const fn name(self) -> &'static str {
        match self {
            InterfaceKind::Ta => "TA",
            InterfaceKind::Tb => "TB",
            InterfaceKind::Tc => "TC",
            InterfaceKind::Td => "TD",
        }
    }
}

/// One interface byte, as yielded by [`Atr::interface_bytes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceByte {
    /// The group number i of TAi/TBi/TCi/TDi, starting at 1.
    pub i: u8,
    /// TA, TB, TC or TD.
    pub kind: InterfaceKind,
    /// The byte.
    pub value: u8,
    /// Its offset in the ATR (TS is offset 0).
    pub offset: u8,
    /// The protocol T announced by TD(i-1), which the byte is specific to
    /// (T=15: global); `None` for group 1.
    pub after_protocol: Option<u8>,
}

/// The protocols a card offers, in the order its TD bytes name them,
/// without duplicates and without T=15 (which is not a protocol).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtocolSet {
    list: [u8; 15],
    len: u8,
}

impl ProtocolSet {
    const fn empty() -> Self {
        ProtocolSet {
            list: [0; 15],
            len: 0,
        }
    }

    fn push(&mut self, protocol: u8) {
        if protocol < 15 && !self.contains(protocol) {
            self.list[self.len as usize] = protocol;
            self.len += 1;
        }
    }

    /// Whether T=`protocol` is offered.
    pub fn contains(&self, protocol: u8) -> bool {
        self.as_slice().contains(&protocol)
    }

    /// The protocol numbers in offer order.
    pub fn as_slice(&self) -> &[u8] {
        &self.list[..self.len as usize]
    }

    /// Iterate over the protocol numbers in offer order.
    pub fn iter(&self) -> core::iter::Copied<core::slice::Iter<'_, u8>> {
        self.as_slice().iter().copied()
    }

    /// The first offered protocol.
    pub fn first(&self) -> Option<u8> {
        self.as_slice().first().copied()
    }

    /// How many protocols are offered.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when nothing is offered (never the case for a parsed ATR).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bit T set for every offered T=T: the layout of CCID's
    /// dwProtocols and of PC/SC's SCARD_PROTOCOL_T0/T1.
    pub fn bitmask(&self) -> u16 {
        self.iter().fold(0, |mask, t| mask | 1 << t)
    }
}

impl<'a> IntoIterator for &'a ProtocolSet {
    type Item = u8;
    type IntoIter = core::iter::Copied<core::slice::Iter<'a, u8>>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Debug for ProtocolSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// TA2 decoded: the card is in specific mode (§8.3, no PPS possible).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpecificMode {
    /// The only protocol the card speaks (TA2 low nibble).
    pub protocol: u8,
    /// b5: Fi/Di are implicit (defined elsewhere), not those of TA1.
    pub implicit: bool,
    /// b8 clear: the card can change to negotiable mode after a warm reset.
    pub changeable: bool,
}

/// A value the standard reserves for future use or forbids, that `parse`
/// tolerates (see the module documentation for the fallback of each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnomalyKind {
    /// TA1 high nibble is an RFU FI index (7, 8, E, F): TA1 is ignored.
    RfuFi,
    /// TA1 low nibble is an RFU DI index (0, A..F): TA1 is ignored.
    RfuDi,
    /// TA2 bits 6 and 7 are not zero.
    RfuTa2Bits,
    /// TD1 announces T=15, which is only valid from TD2 on (§8.2.3).
    T15InTd1,
    /// A TD announces a protocol number reserved for future use (T=4..13).
    RfuProtocol,
    /// TC2 for T=0 is `00` (§10.2): WI stays 10.
    RfuWi,
    /// IFSC `00` (default 32 used) or `FF` (254 used) (§11.4.2).
    RfuIfsc,
    /// BWI above 9 (§11.4.3); kept as sent.
    RfuBwi,
    /// Bits 2..8 of the first TC for T=1 are not zero (§11.4.4).
    RfuEdc,
    /// The TCK that §8.2.5 requires (a protocol other than T=0 is
    /// indicated) is missing; only [`Atr::parse_lenient`] accepts this.
    MissingTck,
    /// Bytes follow the end of the ATR (e.g. a T=0-only card sending a
    /// TCK anyway); only [`Atr::parse_lenient`] accepts this, and drops them.
    TrailingBytes,
}

impl AnomalyKind {
    /// What is wrong, for messages.
    pub const fn describe(self) -> &'static str {
        match self {
            AnomalyKind::RfuFi => "RFU FI index in TA1, Fd=372 used",
            AnomalyKind::RfuDi => "RFU DI index in TA1, Dd=1 used",
            AnomalyKind::RfuTa2Bits => "RFU bits 6-7 set in TA2",
            AnomalyKind::T15InTd1 => "TD1 indicates T=15, invalid in TD1",
            AnomalyKind::RfuProtocol => "TD indicates an RFU protocol",
            AnomalyKind::RfuWi => "WI=0 in TC2 is RFU, WI=10 used",
            AnomalyKind::RfuIfsc => "IFSC 00 or FF is RFU",
            AnomalyKind::RfuBwi => "BWI above 9 is RFU",
            AnomalyKind::RfuEdc => "RFU bits set in the first TC for T=1",
            AnomalyKind::MissingTck => "mandatory TCK missing",
            AnomalyKind::TrailingBytes => "bytes after the end of the ATR ignored",
        }
    }
}

/// A flagged RFU value and the offset of the byte carrying it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Anomaly {
    /// Offset of the byte in the ATR.
    pub offset: u8,
    /// What is wrong with it.
    pub kind: AnomalyKind,
}

/// Why an ATR was rejected. Every variant names the byte offset concerned
/// (TS is offset 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtrError {
    /// Fewer than the two mandatory bytes TS and T0; `offset` is the first
    /// missing one.
    TooShort {
        /// Offset of the first missing mandatory byte.
        offset: usize,
    },
    /// More than 33 bytes, given or announced.
    TooLong {
        /// Offset of the first byte beyond the limit (33).
        offset: usize,
    },
    /// TS is neither `3B` nor `3F`.
    InvalidTs {
        /// Always 0.
        offset: usize,
        /// The byte found.
        value: u8,
    },
    /// A byte announced by T0/TDi (interface, historical or TCK) is missing.
    Overrun {
        /// Offset where the missing byte should be.
        offset: usize,
    },
    /// Bytes follow the end of the ATR as its structure describes it.
    Trailing {
        /// Offset of the first extra byte.
        offset: usize,
    },
    /// The XOR of T0..TCK is not zero ([`Atr::parse_strict`] only).
    BadTck {
        /// Offset of TCK.
        offset: usize,
        /// The TCK that would make the XOR zero.
        expected: u8,
        /// The TCK received.
        found: u8,
    },
    /// An RFU value ([`Atr::parse_strict`] only).
    Rfu {
        /// Offset of the byte.
        offset: usize,
        /// Which value.
        kind: AnomalyKind,
    },
}

impl AtrError {
    /// The byte offset the error is about.
    pub const fn offset(&self) -> usize {
        match *self {
            AtrError::TooShort { offset }
            | AtrError::TooLong { offset }
            | AtrError::InvalidTs { offset, .. }
            | AtrError::Overrun { offset }
            | AtrError::Trailing { offset }
            | AtrError::BadTck { offset, .. }
            | AtrError::Rfu { offset, .. } => offset,
        }
    }
}

impl fmt::Display for AtrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AtrError::TooShort { offset } => {
                write!(
                    f,
                    "ATR too short: mandatory byte at offset {offset} missing"
                )
            }
            AtrError::TooLong { offset } => {
                write!(
                    f,
                    "ATR too long: byte at offset {offset} exceeds the 33-byte limit"
                )
            }
            AtrError::InvalidTs { offset, value } => write!(
                f,
                "invalid TS {value:02X} at offset {offset} (expected 3B or 3F)"
            ),
            AtrError::Overrun { offset } => {
                write!(
                    f,
                    "ATR truncated: indicated byte at offset {offset} missing"
                )
            }
            AtrError::Trailing { offset } => {
                write!(
                    f,
                    "extra bytes after the end of the ATR from offset {offset}"
                )
            }
            AtrError::BadTck {
                offset,
                expected,
                found,
            } => write!(
                f,
                "bad TCK {found:02X} at offset {offset} (expected {expected:02X})"
            ),
            AtrError::Rfu { offset, kind } => {
                write!(f, "{} at offset {offset}", kind.describe())
            }
        }
    }
}

/// A parsed Answer-to-Reset: the raw bytes plus the decoded parameters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Atr {
    raw: [u8; MAX_LEN],
    len: u8,
    convention: Convention,
    historical_start: u8,
    historical_len: u8,
    tck_ok: Option<bool>,
    protocols: ProtocolSet,
    ta1: Option<u8>,
    tc1: Option<u8>,
    ta2: Option<u8>,
    wi: u8,
    ifsc: u8,
    cwi: u8,
    bwi: u8,
    edc: Edc,
    t15_ta: Option<u8>,
    anomalies: [Option<Anomaly>; MAX_ANOMALIES],
}

impl fmt::Debug for Atr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Atr")
            .field("bytes", &self.as_bytes())
            .field("protocols", &self.protocols)
            .field("ta1", &self.ta1)
            .field("tck_ok", &self.tck_ok)
            .finish_non_exhaustive()
    }
}

/// Presence bits of Y(i): TA, TB, TC, TD in bits 5..8 of T0/TDi.
const PRESENCE: [(u8, InterfaceKind); 4] = [
    (0x10, InterfaceKind::Ta),
    (0x20, InterfaceKind::Tb),
    (0x40, InterfaceKind::Tc),
    (0x80, InterfaceKind::Td),
];

impl Atr {
    /// Parse an ATR as delivered by a reader (TS `3B` or `3F`), recording
    /// a bad TCK and RFU values instead of rejecting them.
    pub fn parse(bytes: &[u8]) -> Result<Atr, AtrError> {
        Atr::parse_with(bytes, false)
    }

    /// Parse an ATR the way a driver must accept it from a card in the
    /// field: like [`Atr::parse`], but a missing mandatory TCK and bytes
    /// after the end of the ATR are flagged ([`AnomalyKind::MissingTck`],
    /// [`AnomalyKind::TrailingBytes`]) instead of rejected.
    ///
    /// Why: real cards do both (34 of the exact ATRs in pcsc-tools' list),
    /// and pcscd and libccid power them up and use them. Structural faults
    /// (bad TS, missing interface or historical bytes) are still errors.
    pub fn parse_lenient(bytes: &[u8]) -> Result<Atr, AtrError> {
        Atr::parse_with(bytes, true)
    }

    fn parse_with(bytes: &[u8], lenient: bool) -> Result<Atr, AtrError> {
        let mut extra: Option<Anomaly> = None;
        if bytes.len() < 2 {
            return Err(AtrError::TooShort {
                offset: bytes.len(),
            });
        }
        if bytes.len() > MAX_LEN {
            return Err(AtrError::TooLong { offset: MAX_LEN });
        }
        let convention = match bytes[0] {
            0x3B => Convention::Direct,
            0x3F => Convention::Inverse,
            value => return Err(AtrError::InvalidTs { offset: 0, value }),
        };
        let mut raw = [0u8; MAX_LEN];
        raw[..bytes.len()].copy_from_slice(bytes);
        let mut atr = Atr {
            raw,
            len: bytes.len() as u8,
            convention,
            historical_start: 0,
            historical_len: bytes[1] & 0x0F,
            tck_ok: None,
            protocols: ProtocolSet::empty(),
            ta1: None,
            tc1: None,
            ta2: None,
            wi: WI_DEFAULT,
            ifsc: IFSC_DEFAULT,
            cwi: CWI_DEFAULT,
            bwi: BWI_DEFAULT,
            edc: Edc::Lrc,
            t15_ta: None,
            anomalies: [None; MAX_ANOMALIES],
        };
        let end_of_interface = atr.walk_structure()?;
        atr.historical_start = end_of_interface as u8;
        let hist_end = end_of_interface + atr.historical_len as usize;
        if hist_end > MAX_LEN {
            return Err(AtrError::TooLong { offset: MAX_LEN });
        }
        if hist_end > bytes.len() {
            return Err(AtrError::Overrun {
                offset: bytes.len(),
            });
        }
        // §8.2.5: TCK is absent only when T=0 is the only protocol indicated,
        // i.e. when no TD announces anything but T=0 (T=15 counts).
        let needs_tck = atr
            .interface_bytes()
            .any(|b| b.kind == InterfaceKind::Td && b.value & 0x0F != 0);
        let end = if needs_tck {
            if hist_end >= MAX_LEN {
                return Err(AtrError::TooLong { offset: MAX_LEN });
            }
            if hist_end >= bytes.len() {
                if !lenient {
                    return Err(AtrError::Overrun { offset: hist_end });
                }
                extra = Some(Anomaly {
                    offset: hist_end as u8,
                    kind: AnomalyKind::MissingTck,
                });
                hist_end
            } else {
                let xor = bytes[1..=hist_end].iter().fold(0, |x, b| x ^ b);
                atr.tck_ok = Some(xor == 0);
                hist_end + 1
            }
        } else {
            hist_end
        };
        if end < bytes.len() {
            if !lenient {
                return Err(AtrError::Trailing { offset: end });
            }
            extra = Some(Anomaly {
                offset: end as u8,
                kind: AnomalyKind::TrailingBytes,
            });
            atr.raw[end..].fill(0);
            atr.len = end as u8;
        }
        atr.decode();
        if let Some(anomaly) = extra {
            if let Some(free) = atr.anomalies.iter_mut().find(|a| a.is_none()) {
                *free = Some(anomaly);
            }
        }
        Ok(atr)
    }

    /// [`Atr::parse`], then reject a bad TCK and the first RFU value.
    pub fn parse_strict(bytes: &[u8]) -> Result<Atr, AtrError> {
        let atr = Atr::parse(bytes)?;
        if atr.tck_ok == Some(false) {
            let offset = atr.len as usize - 1;
            let found = atr.raw[offset];
            let xor = atr.raw[1..offset].iter().fold(0, |x, b| x ^ b);
            return Err(AtrError::BadTck {
                offset,
                expected: xor,
                found,
            });
        }
        if let Some(anomaly) = atr.anomalies().next() {
            return Err(AtrError::Rfu {
                offset: anomaly.offset as usize,
                kind: anomaly.kind,
            });
        }
        Ok(atr)
    }

    /// Parse a raw line capture: when the first byte is `03` (an inverse-
    /// convention card read in direct convention), convert every byte with
    /// [`inverse_to_direct`] first; otherwise like [`Atr::parse`].
    pub fn parse_uart(bytes: &[u8]) -> Result<Atr, AtrError> {
        if bytes.first() != Some(&0x03) {
            return Atr::parse(bytes);
        }
        if bytes.len() > MAX_LEN {
            return Err(AtrError::TooLong { offset: MAX_LEN });
        }
        let mut direct = [0u8; MAX_LEN];
        for (d, b) in direct.iter_mut().zip(bytes) {
            *d = inverse_to_direct(*b);
        }
        Atr::parse(&direct[..bytes.len()])
    }

    /// Check that every announced interface byte is there; returns the
    /// offset of the first historical byte.
    fn walk_structure(&self) -> Result<usize, AtrError> {
        let bytes = self.as_bytes();
        let mut y = bytes[1] & 0xF0;
        let mut pos = 2usize;
        while y != 0 {
            let mut next_y = 0;
            for (bit, kind) in PRESENCE {
                if y & bit == 0 {
                    continue;
                }
                if pos >= MAX_LEN {
                    return Err(AtrError::TooLong { offset: MAX_LEN });
                }
                if pos >= bytes.len() {
                    return Err(AtrError::Overrun { offset: pos });
                }
                if kind == InterfaceKind::Td {
                    next_y = bytes[pos] & 0xF0;
                }
                pos += 1;
            }
            y = next_y;
        }
        Ok(pos)
    }

    /// Fill the decoded fields from the validated interface bytes.
    fn decode(&mut self) {
        let mut first_t1 = [false; 3]; // TA, TB, TC for T=1 already seen
        let mut first_t15_ta = false;
        let mut anomalies: [Option<Anomaly>; MAX_ANOMALIES] = [None; MAX_ANOMALIES];
        let mut n_anomalies = 0;
        let mut flag = |offset: u8, kind: AnomalyKind| {
            if n_anomalies < MAX_ANOMALIES {
                anomalies[n_anomalies] = Some(Anomaly { offset, kind });
                n_anomalies += 1;
            }
        };
        let raw = self.raw;
        for b in InterfaceBytes::new(&raw[..self.len as usize]) {
            use InterfaceKind::*;
            match (b.i, b.kind, b.after_protocol) {
                (1, Ta, _) => {
                    self.ta1 = Some(b.value);
                    if params::fi(b.value >> 4).is_none() {
                        flag(b.offset, AnomalyKind::RfuFi);
                    }
                    if params::di(b.value & 0x0F).is_none() {
                        flag(b.offset, AnomalyKind::RfuDi);
                    }
                }
                (1, Tc, _) => self.tc1 = Some(b.value),
                (2, Ta, _) => {
                    self.ta2 = Some(b.value);
                    if b.value & 0x60 != 0 {
                        flag(b.offset, AnomalyKind::RfuTa2Bits);
                    }
                }
                (2, Tc, Some(0)) => {
                    if b.value == 0 {
                        flag(b.offset, AnomalyKind::RfuWi);
                    } else {
                        self.wi = b.value;
                    }
                }
                (i, Ta, Some(1)) if i > 2 && !first_t1[0] => {
                    first_t1[0] = true;
                    self.ifsc = match b.value {
                        0x00 => {
                            flag(b.offset, AnomalyKind::RfuIfsc);
                            IFSC_DEFAULT
                        }
                        0xFF => {
                            flag(b.offset, AnomalyKind::RfuIfsc);
                            254
                        }
                        v => v,
                    };
                }
                (i, Tb, Some(1)) if i > 2 && !first_t1[1] => {
                    first_t1[1] = true;
                    self.cwi = b.value & 0x0F;
                    self.bwi = b.value >> 4;
                    if self.bwi > 9 {
                        flag(b.offset, AnomalyKind::RfuBwi);
                    }
                }
                (i, Tc, Some(1)) if i > 2 && !first_t1[2] => {
                    first_t1[2] = true;
                    self.edc = if b.value & 0x01 != 0 {
                        Edc::Crc
                    } else {
                        Edc::Lrc
                    };
                    if b.value & 0xFE != 0 {
                        flag(b.offset, AnomalyKind::RfuEdc);
                    }
                }
                (i, Ta, Some(15)) if i > 2 && !first_t15_ta => {
                    first_t15_ta = true;
                    self.t15_ta = Some(b.value);
                }
                (i, Td, _) => {
                    let t = b.value & 0x0F;
                    if t == 15 && i == 1 {
                        flag(b.offset, AnomalyKind::T15InTd1);
                    } else if (4..=13).contains(&t) {
                        flag(b.offset, AnomalyKind::RfuProtocol);
                    }
                    self.protocols.push(t);
                }
                _ => {}
            }
        }
        // §8.2.3: without TD1 (or with only T=15 indicated) T=0 is implied.
        if self.protocols.is_empty() {
            self.protocols.push(0);
        }
        self.anomalies = anomalies;
    }

    /// The ATR bytes, TS first, TCK (if any) last.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw[..self.len as usize]
    }

    /// The convention TS announced.
    pub fn convention(&self) -> Convention {
        self.convention
    }

    /// T0, the format byte.
    pub fn t0(&self) -> u8 {
        self.raw[1]
    }

    /// Offered protocols in order, no duplicates; `[0]` without TD1.
    pub fn protocols(&self) -> ProtocolSet {
        self.protocols
    }

    /// The protocol to use without PPS: TA2's in specific mode, otherwise
    /// the first offered (§8.2.3, §9.1).
    pub fn default_protocol(&self) -> u8 {
        match self.specific_mode() {
            Some(mode) => mode.protocol,
            None => self.protocols.first().unwrap_or(0),
        }
    }

    /// TA1 as sent, `None` when absent.
    pub fn ta1(&self) -> Option<u8> {
        self.ta1
    }

    /// TA1 when it is usable (present and both indices defined), else the
    /// default `11`: the value Fi/Di/f(max) are decoded from.
    pub fn effective_ta1(&self) -> u8 {
        match self.ta1 {
            Some(ta1) if params::fi(ta1 >> 4).is_some() && params::di(ta1 & 0x0F).is_some() => ta1,
            _ => TA1_DEFAULT,
        }
    }

    /// The FI index as sent in TA1 (default 1), possibly RFU.
    pub fn fi_index(&self) -> u8 {
        self.ta1.unwrap_or(TA1_DEFAULT) >> 4
    }

    /// The DI index as sent in TA1 (default 1), possibly RFU.
    pub fn di_index(&self) -> u8 {
        self.ta1.unwrap_or(TA1_DEFAULT) & 0x0F
    }

    /// Fi, the clock rate conversion factor the card offers (372 without a
    /// usable TA1).
    pub fn fi(&self) -> u16 {
        params::fi(self.effective_ta1() >> 4).unwrap_or(params::FD)
    }

    /// Di, the baud rate adjustment factor the card offers (1 without a
    /// usable TA1).
    pub fn di(&self) -> u8 {
        params::di(self.effective_ta1() & 0x0F).unwrap_or(params::DD)
    }

    /// f(max) in kHz for the offered Fi (5000 without a usable TA1).
    pub fn f_max_khz(&self) -> u32 {
        params::f_max_khz(self.effective_ta1() >> 4).unwrap_or(5_000)
    }

    /// TA2 decoded, `None` when the card is in negotiable mode.
    pub fn specific_mode(&self) -> Option<SpecificMode> {
        self.ta2.map(|ta2| SpecificMode {
            protocol: ta2 & 0x0F,
            implicit: ta2 & 0x10 != 0,
            changeable: ta2 & 0x80 == 0,
        })
    }

    /// N, the extra guard time integer from TC1 (default 0).
    pub fn n(&self) -> u8 {
        self.tc1.unwrap_or(0)
    }

    /// The minimum delay between the leading edges of two characters sent
    /// to the card, in etu, for `protocol` (§8.3): 12 + N, except that
    /// N = 255 means 12 etu for T=0 and 11 etu for T=1.
    pub fn guard_time_etu(&self, protocol: u8) -> u16 {
        match (self.n(), protocol) {
            (255, 1) => 11,
            (255, _) => 12,
            (n, _) => 12 + n as u16,
        }
    }

    /// WI, the waiting time integer of T=0 from TC2 (default 10).
    pub fn wi(&self) -> u8 {
        self.wi
    }

    /// IFSC from the first TA for T=1 (default 32).
    pub fn ifsc(&self) -> u8 {
        self.ifsc
    }

    /// CWI from the first TB for T=1, low nibble (default 13).
    pub fn cwi(&self) -> u8 {
        self.cwi
    }

    /// BWI from the first TB for T=1, high nibble (default 4).
    pub fn bwi(&self) -> u8 {
        self.bwi
    }

    /// The T=1 error detection code from the first TC for T=1 (default LRC).
    pub fn edc(&self) -> Edc {
        self.edc
    }

    /// The historical bytes (T0's K of them).
    pub fn historical(&self) -> &[u8] {
        let start = self.historical_start as usize;
        &self.raw[start..start + self.historical_len as usize]
    }

    /// TCK, `None` when absent (T=0 only).
    pub fn tck(&self) -> Option<u8> {
        self.tck_ok.map(|_| self.raw[self.len as usize - 1])
    }

    /// Whether T0..TCK XOR to zero; `None` when there is no TCK.
    pub fn tck_ok(&self) -> Option<bool> {
        self.tck_ok
    }

    /// Class indicator U (bits 1-6) of the first TA after T=15.
    pub fn class_indicator(&self) -> Option<u8> {
        self.t15_ta.map(|ta| ta & 0x3F)
    }

    /// Clock stop indicator X (bits 7-8) of the first TA after T=15:
    /// 0 not supported, 1 state L, 2 state H, 3 no preference.
    pub fn clock_stop(&self) -> Option<u8> {
        self.t15_ta.map(|ta| ta >> 6)
    }

    /// The RFU values the card sent, in ATR order.
    pub fn anomalies(&self) -> impl Iterator<Item = Anomaly> + '_ {
        self.anomalies.iter().map_while(|a| *a)
    }

    /// Every interface byte in ATR order.
    pub fn interface_bytes(&self) -> InterfaceBytes<'_> {
        InterfaceBytes::new(self.as_bytes())
    }
}

/// Iterator over the interface bytes of an [`Atr`].
#[derive(Clone, Debug)]
pub struct InterfaceBytes<'a> {
    bytes: &'a [u8],
    pos: usize,
    i: u8,
    y: u8,
    bit: usize,
    after_protocol: Option<u8>,
}

impl<'a> InterfaceBytes<'a> {
    /// Walk the interface bytes of a structurally valid ATR (at least TS
    /// and T0); stops early at the end of `bytes`.
    fn new(bytes: &'a [u8]) -> Self {
        InterfaceBytes {
            bytes,
            pos: 2,
            i: 1,
            y: bytes.get(1).map_or(0, |t0| t0 & 0xF0),
            bit: 0,
            after_protocol: None,
        }
    }
}

impl Iterator for InterfaceBytes<'_> {
    type Item = InterfaceByte;

    fn next(&mut self) -> Option<InterfaceByte> {
        while self.bit < PRESENCE.len() {
            let (mask, kind) = PRESENCE[self.bit];
            self.bit += 1;
            if self.y & mask == 0 {
                continue;
            }
            let value = *self.bytes.get(self.pos)?;
            let item = InterfaceByte {
                i: self.i,
                kind,
                value,
                offset: self.pos as u8,
                after_protocol: self.after_protocol,
            };
            self.pos += 1;
            if kind == InterfaceKind::Td {
                self.y = value & 0xF0;
                self.after_protocol = Some(value & 0x0F);
                self.i += 1;
                self.bit = 0;
            }
            return Some(item);
        }
        None
    }
}
