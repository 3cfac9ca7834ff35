//! Protocol and parameters selection (ISO/IEC 7816-3:2006 §9) and the
//! negotiation plan a CCID driver follows after the ATR.
//!
//! * [`PpsRequest`] builds the request into a caller buffer;
//!   [`PpsRequest::check_response`] applies the echo rules of §9.3.
//! * [`negotiate`] is pure: from an [`Atr`] and the reader's [`ReaderCaps`]
//!   it returns the [`Plan`]: which protocol, whether the host must send a
//!   PPS (and which), and what to program into the reader.
//!
//! # Negotiation rules
//!
//! The standard leaves the choice of Fi/Di to the interface device; where it
//! is silent we follow libccid (`IFDHSetProtocolParameters`, `find_baud_rate`):
//!
//! 1. A reader with automatic *proprietary* PPS does everything itself: the
//!    host sends neither PPS nor parameters ([`Plan::host_sets_parameters`]
//!    is false).
//! 2. Specific mode (TA2 present): the protocol is TA2's; a reader that
//!    cannot speak it, a TA2 with implicit parameters (b5), or a TA1 rate the
//!    reader cannot do are refused with a typed error: the card cannot
//!    change. Unlike libccid (which falls back to Fd/Dd when TA1 is slower
//!    than the default), the card's TA1 is used as is, as §8.3 requires.
//! 3. Negotiable mode: the protocol is the requested one, else the card's
//!    first offered that the reader supports. TA1 is used when its rate
//!    f × Di / Fi (f = the reader's default clock) is faster than the
//!    default rate, is not above f(max) of TA1, and the reader supports it:
//!    it is in the reader's data-rate list within ±1 bit/s (readers round
//!    10752.69 either way), or, with an empty list, not above the maximum
//!    data rate. Otherwise the Fi of TA1 is kept and Di lowered, fastest
//!    first (libccid steps TA1 down from 97 to 94 the same way); when no
//!    lower Di fits either, Fd/Dd (TA1 = 11) is used.
//! 4. The host sends PPS when the reader does not do automatic PPS on
//!    SetParameters, the card is in negotiable mode, and either the protocol
//!    is not the card's default or Fi/Di differ from Fd/Dd. PPS2/PPS3 are
//!    never proposed.
use crate::atr::Atr;
use crate::edc::Edc;
use crate::params;
use core::fmt;

/// PPSS, the initial byte of every PPS request and response.
pub const PPSS: u8 = 0xFF;
/// Longest PPS message: PPSS, PPS0, PPS1..3, PCK.
pub const MAX_LEN: usize = 6;

const HAS_PPS1: u8 = 0x10;
const HAS_PPS2: u8 = 0x20;
const HAS_PPS3: u8 = 0x40;

/// A PPS request (§9.2) as the host sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PpsRequest {
    /// Protocol T proposed, in PPS0's low nibble.
    pub protocol: u8,
    /// PPS1: FI in the high nibble, DI in the low one (TA1 layout).
    pub pps1: Option<u8>,
    /// PPS2: SPU use (contact C6), rarely used.
    pub pps2: Option<u8>,
    /// PPS3: RFU.
    pub pps3: Option<u8>,
}

/// What a PPS exchange agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PpsAccepted {
    /// The protocol (echoed from the request).
    pub protocol: u8,
    /// Fi/Di in TA1 layout: PPS1 when echoed, `11` (Fd/Dd) when the card
    /// left it out.
    pub fi_di: u8,
    /// PPS2 when echoed.
    pub pps2: Option<u8>,
    /// PPS3 when echoed.
    pub pps3: Option<u8>,
}

/// Why a PPS request could not be built or its response is refused. The
/// offsets are into the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PpsError {
    /// The caller's buffer holds fewer than `needed` bytes.
    BufferTooSmall {
        /// Bytes the request needs.
        needed: usize,
    },
    /// The protocol does not fit PPS0's nibble (T > 15).
    InvalidProtocol,
    /// The response ends before a byte PPS0 announces (or before PCK).
    TooShort {
        /// Offset of the missing byte.
        offset: usize,
    },
    /// PPSS is not `FF`.
    BadPpss {
        /// Always 0.
        offset: usize,
    },
    /// PPS0's protocol differs from the request's.
    ProtocolMismatch {
        /// Always 1.
        offset: usize,
    },
    /// The response carries PPSi the request did not, or a PPSi differs.
    Mismatch {
        /// Offset of the offending byte (1 for a PPS0 presence bit).
        offset: usize,
    },
    /// The XOR of the response is not zero.
    BadPck {
        /// Offset of PCK.
        offset: usize,
    },
    /// Bytes follow PCK.
    Trailing {
        /// Offset of the first extra byte.
        offset: usize,
    },
}

impl fmt::Display for PpsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PpsError::BufferTooSmall { needed } => write!(f, "PPS needs {needed} bytes"),
            PpsError::InvalidProtocol => write!(f, "protocol does not fit PPS0"),
            PpsError::TooShort { offset } => write!(f, "PPS response short at offset {offset}"),
            PpsError::BadPpss { offset } => write!(f, "PPSS is not FF at offset {offset}"),
            PpsError::ProtocolMismatch { offset } => {
                write!(f, "PPS response protocol differs at offset {offset}")
            }
            PpsError::Mismatch { offset } => {
                write!(f, "PPS response not an echo at offset {offset}")
            }
            PpsError::BadPck { offset } => write!(f, "bad PCK at offset {offset}"),
            PpsError::Trailing { offset } => write!(f, "bytes after PCK from offset {offset}"),
        }
    }
}

impl PpsRequest {
    /// A request for `protocol` with Fi/Di `pps1` (TA1 layout) if any.
    pub const fn new(protocol: u8, pps1: Option<u8>) -> Self {
        PpsRequest {
            protocol,
            pps1,
            pps2: None,
            pps3: None,
        }
    }

    /// PPS0: protocol in b1-b4, presence of PPS1/2/3 in b5/b6/b7.
    pub fn pps0(&self) -> u8 {
        let mut pps0 = self.protocol & 0x0F;
        if self.pps1.is_some() {
            pps0 |= HAS_PPS1;
        }
        if self.pps2.is_some() {
            pps0 |= HAS_PPS2;
        }
        if self.pps3.is_some() {
            pps0 |= HAS_PPS3;
        }
        pps0
    }

    /// Length of the request in bytes (3 to 6).
    pub fn len(&self) -> usize {
        3 + [self.pps1, self.pps2, self.pps3]
            .iter()
            .filter(|p| p.is_some())
            .count()
    }

    /// Never empty: PPSS, PPS0 and PCK are mandatory.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Write the request into `buf`; returns its length. PCK makes the XOR
    /// of all bytes zero.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, PpsError> {
        if self.protocol > 15 {
            return Err(PpsError::InvalidProtocol);
        }
        let len = self.len();
        if buf.len() < len {
            return Err(PpsError::BufferTooSmall { needed: len });
        }
        buf[0] = PPSS;
        buf[1] = self.pps0();
        let mut pos = 2;
        for p in [self.pps1, self.pps2, self.pps3].into_iter().flatten() {
            buf[pos] = p;
            pos += 1;
        }
        buf[pos] = buf[..pos].iter().fold(0, |x, b| x ^ b);
        Ok(len)
    }

    /// Check a card's response against this request (§9.3): PPSS and the
    /// protocol echoed; each of PPS1/2/3 either echoed or absent (PPS1
    /// absent means Fd/Dd); nothing the request did not carry; PCK right;
    /// nothing after PCK.
    pub fn check_response(&self, response: &[u8]) -> Result<PpsAccepted, PpsError> {
        let byte = |offset: usize| {
            response
                .get(offset)
                .copied()
                .ok_or(PpsError::TooShort { offset })
        };
        if byte(0)? != PPSS {
            return Err(PpsError::BadPpss { offset: 0 });
        }
        let pps0 = byte(1)?;
        if pps0 & 0x0F != self.protocol {
            return Err(PpsError::ProtocolMismatch { offset: 1 });
        }
        if pps0 & !self.pps0() & 0x70 != 0 || pps0 & 0x80 != 0 {
            return Err(PpsError::Mismatch { offset: 1 });
        }
        let mut pos = 2;
        let mut echoed = [None; 3];
        for (k, (bit, asked)) in [
            (HAS_PPS1, self.pps1),
            (HAS_PPS2, self.pps2),
            (HAS_PPS3, self.pps3),
        ]
        .into_iter()
        .enumerate()
        {
            if pps0 & bit == 0 {
                continue;
            }
            let value = byte(pos)?;
            if Some(value) != asked {
                return Err(PpsError::Mismatch { offset: pos });
            }
            echoed[k] = Some(value);
            pos += 1;
        }
        byte(pos)?;
        if response[..=pos].iter().fold(0, |x, b| x ^ b) != 0 {
            return Err(PpsError::BadPck { offset: pos });
        }
        if response.len() > pos + 1 {
            return Err(PpsError::Trailing { offset: pos + 1 });
        }
        Ok(PpsAccepted {
            protocol: self.protocol,
            fi_di: echoed[0].unwrap_or(params::TA1_DEFAULT),
            pps2: echoed[1],
            pps3: echoed[2],
        })
    }
}

/// What the reader can do, from its CCID class descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReaderCaps<'a> {
    /// dwDefaultClock, kHz.
    pub default_clock_khz: u32,
    /// dwMaximumClock, kHz.
    pub max_clock_khz: u32,
    /// The data rates (bit/s) the reader lists; empty means any rate up to
    /// `max_data_rate`.
    pub data_rates: &'a [u32],
    /// dwMaxDataRate, bit/s.
    pub max_data_rate: u32,
    /// dwProtocols: bit T set when T=T is supported.
    pub protocols: u16,
    /// dwFeatures 0x02: parameters configured automatically from the ATR.
    pub auto_params_from_atr: bool,
    /// dwFeatures 0x40: automatic PPS made by the reader (proprietary).
    pub auto_pps_proprietary: bool,
    /// dwFeatures 0x80: automatic PPS according to the active parameters.
    pub auto_pps_current: bool,
    /// dwFeatures 0x10/0x20: clock and baud rate follow the parameters.
    pub auto_baud_clock: bool,
}

impl ReaderCaps<'_> {
    fn supports_protocol(&self, protocol: u8) -> bool {
        protocol < 16 && self.protocols & (1 << protocol) != 0
    }

    /// Whether the reader can run at `rate` bit/s: in its list within
    /// ±1 bit/s (libccid's `find_baud_rate`), or with no list, up to the
    /// maximum data rate.
    pub fn supports_rate(&self, rate: u32) -> bool {
        if self.data_rates.is_empty() {
            rate <= self.max_data_rate
        } else {
            self.data_rates.iter().any(|&r| rate.abs_diff(r) <= 1)
        }
    }
}

/// What to do after the ATR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The protocol to use.
    pub protocol: u8,
    /// The PPS request the host must send, `None` when none is needed or
    /// the reader does it.
    pub pps: Option<PpsRequest>,
    /// False when the reader negotiates and configures itself (automatic
    /// proprietary PPS): send no SetParameters.
    pub host_sets_parameters: bool,
    /// Fi/Di to program, TA1 layout (bmFindexDindex).
    pub ta1: u8,
    /// Fi of `ta1`.
    pub fi: u16,
    /// Di of `ta1`.
    pub di: u8,
    /// Clock to run the card at, kHz.
    pub clock_khz: u32,
    /// Resulting baud rate, bit/s.
    pub baud_rate: u32,
    /// N, the extra guard time integer (TC1).
    pub guard_time_n: u8,
    /// WI for T=0.
    pub wi: u8,
    /// IFSC for T=1.
    pub ifsc: u8,
    /// BWI for T=1.
    pub bwi: u8,
    /// CWI for T=1.
    pub cwi: u8,
    /// EDC for T=1.
    pub edc: Edc,
}

/// Why a card cannot be served by a reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NegotiationError {
    /// No protocol both offer (or the requested one is not offered by both).
    NoCommonProtocol,
    /// Specific mode in a protocol the reader lacks, or another one requested.
    SpecificProtocolUnsupported {
        /// TA2's protocol.
        protocol: u8,
    },
    /// Specific mode with a TA1 rate the reader cannot do.
    SpecificRateUnsupported {
        /// The card's TA1.
        ta1: u8,
    },
    /// Specific mode with implicit parameters (TA2 b5): unknown Fi/Di.
    ImplicitParameters,
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NegotiationError::NoCommonProtocol => {
                write!(f, "no protocol common to card and reader")
            }
            NegotiationError::SpecificProtocolUnsupported { protocol } => {
                write!(f, "card in specific mode T={protocol}, not available")
            }
            NegotiationError::SpecificRateUnsupported { ta1 } => {
                write!(
                    f,
                    "card in specific mode with TA1={ta1:02X}, rate not supported by the reader"
                )
            }
            NegotiationError::ImplicitParameters => {
                write!(f, "card in specific mode with implicit parameters")
            }
        }
    }
}

/// Rate of `ta1` at the reader's default clock, when `ta1` is defined and
/// the clock is within the card's f(max).
fn rate_of(ta1: u8, caps: &ReaderCaps<'_>) -> Option<u32> {
    let (fi, f_max) = params::fi_fmax(ta1 >> 4)?;
    let di = params::di(ta1 & 0x0F)?;
    if caps.default_clock_khz > f_max {
        return None;
    }
    Some(params::baud_rate(caps.default_clock_khz, fi, di))
}

/// The TA1 to use in negotiable mode (rule 3 of the module documentation).
fn choose_ta1(card_ta1: u8, caps: &ReaderCaps<'_>) -> u8 {
    let default_rate = params::baud_rate(caps.default_clock_khz, params::FD, params::DD);
    let usable = |ta1: u8| {
        rate_of(ta1, caps).is_some_and(|rate| rate > default_rate && caps.supports_rate(rate))
    };
    if usable(card_ta1) {
        return card_ta1;
    }
    let Some(card_di) = params::di(card_ta1 & 0x0F) else {
        return params::TA1_DEFAULT;
    };
    // Same FI, lower Di, fastest first.
    let mut best: Option<(u8, u8)> = None;
    for di_index in 1..=9u8 {
        let Some(di) = params::di(di_index) else {
            continue;
        };
        let candidate = (card_ta1 & 0xF0) | di_index;
        if di < card_di && usable(candidate) && best.is_none_or(|(_, d)| di > d) {
            best = Some((candidate, di));
        }
    }
    best.map_or(params::TA1_DEFAULT, |(ta1, _)| ta1)
}

/// Decide protocol, PPS and reader parameters for `atr` on a reader with
/// `caps`; `requested` is the protocol the application asks for, if any.
pub fn negotiate(
    atr: &Atr,
    caps: &ReaderCaps<'_>,
    requested: Option<u8>,
) -> Result<Plan, NegotiationError> {
    let specific = atr.specific_mode();
    let protocol = match specific {
        Some(mode) => {
            if !caps.supports_protocol(mode.protocol)
                || requested.is_some_and(|r| r != mode.protocol)
            {
                return Err(NegotiationError::SpecificProtocolUnsupported {
                    protocol: mode.protocol,
                });
            }
            if mode.implicit {
                return Err(NegotiationError::ImplicitParameters);
            }
            mode.protocol
        }
        None => match requested {
            Some(r) if atr.protocols().contains(r) && caps.supports_protocol(r) => r,
            Some(_) => return Err(NegotiationError::NoCommonProtocol),
            None => atr
                .protocols()
                .iter()
                .find(|&t| caps.supports_protocol(t))
                .ok_or(NegotiationError::NoCommonProtocol)?,
        },
    };

    let ta1 = match (specific, atr.ta1()) {
        (_, None) => params::TA1_DEFAULT,
        (Some(_), Some(_)) => {
            let ta1 = atr.effective_ta1();
            let ok = ta1 == params::TA1_DEFAULT
                || rate_of(ta1, caps).is_some_and(|rate| caps.supports_rate(rate));
            if !ok {
                return Err(NegotiationError::SpecificRateUnsupported { ta1 });
            }
            ta1
        }
        (None, Some(_)) => choose_ta1(atr.effective_ta1(), caps),
    };
    let fi = params::fi(ta1 >> 4).unwrap_or(params::FD);
    let di = params::di(ta1 & 0x0F).unwrap_or(params::DD);

    let pps = if caps.auto_pps_proprietary || caps.auto_pps_current || specific.is_some() {
        None
    } else if protocol != atr.default_protocol() || ta1 != params::TA1_DEFAULT {
        Some(PpsRequest::new(
            protocol,
            (ta1 != params::TA1_DEFAULT).then_some(ta1),
        ))
    } else {
        None
    };

    Ok(Plan {
        protocol,
        pps,
        host_sets_parameters: !caps.auto_pps_proprietary,
        ta1,
        fi,
        di,
        clock_khz: caps.default_clock_khz,
        baud_rate: params::baud_rate(caps.default_clock_khz, fi, di),
        guard_time_n: atr.n(),
        wi: atr.wi(),
        ifsc: atr.ifsc(),
        bwi: atr.bwi(),
        cwi: atr.cwi(),
        edc: atr.edc(),
    })
}
