//! `abProtocolDataStructure` of SetParameters / Parameters (CCID §6.1.7, §6.2.3).

/// `bProtocolNum` 0: T=0 parameters, 5 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct T0Params {
    /// `bmFindexDindex`: Fi index in the high nibble, Di index in the low nibble (TA1).
    pub findex_dindex: u8,
    /// `bmTCCKST0`: bit 1 set = inverse convention; other bits 0.
    pub tccks: u8,
    /// `bGuardTimeT0`: extra guard time (TC1).
    pub guard_time: u8,
    /// `bWaitingIntegerT0`: WI (TC2).
    pub waiting_integer: u8,
    /// `bClockStop`: 0 not allowed, 1 stop low, 2 stop high, 3 either.
    pub clock_stop: u8,
}

/// `bProtocolNum` 1: T=1 parameters, 7 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct T1Params {
    /// `bmFindexDindex`: Fi index in the high nibble, Di index in the low nibble (TA1).
    pub findex_dindex: u8,
    /// `bmTCCKST1`: 0x10 | bit 1 (inverse convention) | bit 0 (CRC instead of LRC).
    pub tccks: u8,
    /// `bGuardTimeT1`: extra guard time (TC1).
    pub guard_time: u8,
    /// `bmWaitingIntegersT1`: BWI in the high nibble, CWI in the low nibble (TB3).
    pub waiting_integers: u8,
    /// `bClockStop`: 0 not allowed, 1 stop low, 2 stop high, 3 either.
    pub clock_stop: u8,
    /// `bIFSC`: information field size of the card (TA3).
    pub ifsc: u8,
    /// `bNadValue`: node address used by the reader.
    pub nad: u8,
}

impl T1Params {
    /// True when the error detection code is CRC (bit 0 of `bmTCCKST1`).
    pub fn uses_crc(&self) -> bool {
        self.tccks & 0x01 != 0
    }
    /// BWI, the high nibble of `bmWaitingIntegersT1`.
    pub fn bwi(&self) -> u8 {
        self.waiting_integers >> 4
    }
    /// CWI, the low nibble of `bmWaitingIntegersT1`.
    pub fn cwi(&self) -> u8 {
        self.waiting_integers & 0x0F
    }
}

/// The protocol data structure with its `bProtocolNum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolData {
    /// T=0.
    T0(T0Params),
    /// T=1.
    T1(T1Params),
}

/// Why an `abProtocolDataStructure` cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolDataError {
    /// `bProtocolNum` is neither 0 nor 1.
    UnknownProtocol(u8),
    /// Wrong size for the protocol (5 for T=0, 7 for T=1).
    BadLength {
        /// `bProtocolNum`.
        protocol: u8,
        /// The size received.
        len: usize,
    },
}

impl ProtocolData {
    /// Size of the T=0 structure.
    pub const T0_LEN: usize = 5;
    /// Size of the T=1 structure.
    pub const T1_LEN: usize = 7;

    /// `bProtocolNum`.
    pub fn protocol_num(&self) -> u8 {
        match self {
            ProtocolData::T0(_) => 0,
            ProtocolData::T1(_) => 1,
        }
    }

    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        match self {
            ProtocolData::T0(_) => Self::T0_LEN,
            ProtocolData::T1(_) => Self::T1_LEN,
        }
    }

    /// Never empty; present for symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Decode the structure for `protocol_num`.
    pub fn parse(protocol_num: u8, data: &[u8]) -> Result<ProtocolData, ProtocolDataError> {
        match (protocol_num, data) {
            (0, &[findex_dindex, tccks, guard_time, waiting_integer, clock_stop]) => {
                Ok(ProtocolData::T0(T0Params {
                    findex_dindex,
                    tccks,
                    guard_time,
                    waiting_integer,
                    clock_stop,
                }))
            }
            (1, &[findex_dindex, tccks, guard_time, waiting_integers, clock_stop, ifsc, nad]) => {
                Ok(ProtocolData::T1(T1Params {
                    findex_dindex,
                    tccks,
                    guard_time,
                    waiting_integers,
                    clock_stop,
                    ifsc,
                    nad,
                }))
            }
            (0 | 1, _) => Err(ProtocolDataError::BadLength {
                protocol: protocol_num,
                len: data.len(),
            }),
            (other, _) => Err(ProtocolDataError::UnknownProtocol(other)),
        }
    }

    /// Write the structure into `buf` (caller checked `buf.len() >= self.len()`).
    pub(crate) fn write(&self, buf: &mut [u8]) {
        match self {
            ProtocolData::T0(p) => buf[..5].copy_from_slice(&[
                p.findex_dindex,
                p.tccks,
                p.guard_time,
                p.waiting_integer,
                p.clock_stop,
            ]),
            ProtocolData::T1(p) => buf[..7].copy_from_slice(&[
                p.findex_dindex,
                p.tccks,
                p.guard_time,
                p.waiting_integers,
                p.clock_stop,
                p.ifsc,
                p.nad,
            ]),
        }
    }
}
