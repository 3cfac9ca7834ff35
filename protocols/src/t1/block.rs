//! T=1 blocks on the wire (ISO/IEC 7816-3 §11.3): a checked view over
//! received bytes ([`Block`]) and a small representation that emits into a
//! caller buffer ([`BlockRepr`]).
//!
//! ```text
//! prologue: NAD (1) | PCB (1) | LEN (1)   INF: 0..=254   epilogue: LRC (1) or CRC (2)
//! ```
//!
//! PCB encodings (Tables 13–15):
//!
//! | block | b8 b7 | rest |
//! |---|---|---|
//! | I | `0 N(S)` | b6 = M (more data), b5..b1 = 0 |
//! | R | `1 0` | b6 = 0, b5 = N(R), b4..b1 = error code (0, 1, 2) |
//! | S | `1 1` | b6 = response, b5..b1 = 0 RESYNCH, 1 IFS, 2 ABORT, 3 WTX |

use crate::edc::Edc;

/// Length of the prologue (NAD, PCB, LEN).
pub const PROLOGUE_LEN: usize = 3;
/// Largest INF field: LEN = 255 is reserved (§11.3.2.3).
pub const MAX_INF_LEN: usize = 254;
/// Largest block on the wire: prologue, 254 INF bytes and a CRC.
pub const MAX_BLOCK_LEN: usize = PROLOGUE_LEN + MAX_INF_LEN + 2;

/// Why received bytes are not a valid block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// Fewer bytes than a prologue and an epilogue.
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// LEN = 255, reserved.
    ReservedLen,
    /// The buffer length disagrees with LEN.
    LengthMismatch {
        /// Block length LEN announces (prologue + LEN + epilogue).
        declared: usize,
        /// Bytes actually received.
        received: usize,
    },
    /// The epilogue does not match the contents.
    Edc,
    /// A PCB value no block kind defines.
    InvalidPcb(u8),
    /// An R- or S-block whose INF length its kind does not allow.
    InvalidInfLen {
        /// The PCB of the block.
        pcb: u8,
        /// The INF length received.
        len: usize,
    },
    /// The output buffer is too small to emit the block.
    BufferTooSmall {
        /// Bytes the block needs.
        needed: usize,
        /// Bytes available.
        capacity: usize,
    },
    /// An I-block INF longer than 254 bytes cannot be emitted.
    InfTooLong(usize),
}

impl BlockError {
    /// The R-block error code that reports this error to the other side:
    /// an EDC failure is code 1, anything else code 2 (§11.3.2.2).
    pub fn r_error(self) -> RError {
        match self {
            BlockError::Edc => RError::EdcOrParity,
            _ => RError::Other,
        }
    }
}

/// R-block error code (PCB b4..b1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RError {
    /// 0: error-free acknowledgement.
    None,
    /// 1: EDC or parity error.
    EdcOrParity,
    /// 2: other error.
    Other,
}

impl RError {
    const fn bits(self) -> u8 {
        match self {
            RError::None => 0,
            RError::EdcOrParity => 1,
            RError::Other => 2,
        }
    }
}

/// S-block type (PCB b5..b1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SKind {
    /// Resynchronisation (rule 6: only the interface device may request it).
    Resynch,
    /// New information field size (one byte of INF, 1..=254).
    Ifs,
    /// Chain abortion.
    Abort,
    /// Waiting time extension (one byte of INF: the BWT multiplier).
    Wtx,
}

impl SKind {
    const fn bits(self) -> u8 {
        match self {
            SKind::Resynch => 0,
            SKind::Ifs => 1,
            SKind::Abort => 2,
            SKind::Wtx => 3,
        }
    }

    /// Whether this kind carries one INF byte (IFS, WTX) or none.
    pub const fn has_param(self) -> bool {
        matches!(self, SKind::Ifs | SKind::Wtx)
    }
}

/// What a PCB says, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockKind {
    /// Information block.
    I {
        /// Send sequence number N(S), 0 or 1.
        ns: u8,
        /// More-data bit: another block of the chain follows.
        more: bool,
    },
    /// Receive-ready block.
    R {
        /// N(R): the N(S) of the I-block the sender expects next.
        nr: u8,
        /// Error code.
        error: RError,
    },
    /// Supervisory block.
    S {
        /// Which S-block.
        kind: SKind,
        /// Response (b6 = 1) or request.
        response: bool,
    },
}

impl BlockKind {
    /// Decodes a PCB, or `None` for an encoding §11.3.2 does not define.
    pub const fn from_pcb(pcb: u8) -> Option<BlockKind> {
        if pcb & 0x80 == 0 {
            if pcb & 0x1F != 0 {
                return None;
            }
            return Some(BlockKind::I {
                ns: (pcb >> 6) & 1,
                more: pcb & 0x20 != 0,
            });
        }
        if pcb & 0x40 == 0 {
            if pcb & 0x20 != 0 {
                return None;
            }
            let error = match pcb & 0x0F {
                0 => RError::None,
                1 => RError::EdcOrParity,
                2 => RError::Other,
                _ => return None,
            };
            return Some(BlockKind::R {
                nr: (pcb >> 4) & 1,
                error,
            });
        }
        let kind = match pcb & 0x1F {
            0 => SKind::Resynch,
            1 => SKind::Ifs,
            2 => SKind::Abort,
            3 => SKind::Wtx,
            _ => return None,
        };
        Some(BlockKind::S {
            kind,
            response: pcb & 0x20 != 0,
        })
    }

    /// Encodes the PCB.
    pub const fn pcb(self) -> u8 {
        match self {
            BlockKind::I { ns, more } => ((ns & 1) << 6) | if more { 0x20 } else { 0 },
            BlockKind::R { nr, error } => 0x80 | ((nr & 1) << 4) | error.bits(),
            BlockKind::S { kind, response } => 0xC0 | if response { 0x20 } else { 0 } | kind.bits(),
        }
    }
}

/// A received block, validated once at construction: the length agrees
/// with LEN, the epilogue is correct, the PCB is defined and R/S-blocks
/// have the INF length their kind requires. Accessors never copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block<'a> {
    bytes: &'a [u8],
    kind: BlockKind,
}

impl<'a> Block<'a> {
    /// Validates `bytes` as exactly one block protected by `edc`.
    ///
    /// Checks run in wire order (length, then EDC, then PCB), so a
    /// corrupted block reports [`BlockError::Edc`] rather than a PCB error.
    pub fn new_checked(bytes: &'a [u8], edc: Edc) -> Result<Block<'a>, BlockError> {
        if bytes.len() < PROLOGUE_LEN + edc.len() {
            return Err(BlockError::Truncated { len: bytes.len() });
        }
        let len = bytes[2] as usize;
        let declared = PROLOGUE_LEN + len + edc.len();
        if declared != bytes.len() {
            return Err(BlockError::LengthMismatch {
                declared,
                received: bytes.len(),
            });
        }
        if !edc.verify(bytes) {
            return Err(BlockError::Edc);
        }
        if len > MAX_INF_LEN {
            return Err(BlockError::ReservedLen);
        }
        let pcb = bytes[1];
        let kind = BlockKind::from_pcb(pcb).ok_or(BlockError::InvalidPcb(pcb))?;
        let inf_len_ok = match kind {
            BlockKind::I { .. } => true,
            BlockKind::R { .. } => len == 0,
            BlockKind::S { kind, .. } => len == usize::from(kind.has_param()),
        };
        if !inf_len_ok {
            return Err(BlockError::InvalidInfLen { pcb, len });
        }
        Ok(Block { bytes, kind })
    }

    /// Node address byte (SAD in b3..b1, DAD in b7..b5), as received.
    pub fn nad(&self) -> u8 {
        self.bytes[0]
    }

    /// Protocol control byte.
    pub fn pcb(&self) -> u8 {
        self.bytes[1]
    }

    /// The decoded PCB.
    pub fn kind(&self) -> BlockKind {
        self.kind
    }

    /// The information field.
    pub fn inf(&self) -> &'a [u8] {
        &self.bytes[PROLOGUE_LEN..PROLOGUE_LEN + self.bytes[2] as usize]
    }

    /// The whole block, epilogue included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// A block to send (or a received one, parsed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockRepr<'a> {
    /// Information block.
    I {
        /// N(S), 0 or 1.
        ns: u8,
        /// More-data bit.
        more: bool,
        /// Information field, at most 254 bytes (and at most the receiver's
        /// IFS: the engine keeps to that).
        inf: &'a [u8],
    },
    /// Receive-ready block.
    R {
        /// N(R), 0 or 1.
        nr: u8,
        /// Error code.
        error: RError,
    },
    /// Supervisory block.
    S {
        /// Which S-block.
        kind: SKind,
        /// Response or request.
        response: bool,
        /// The INF byte of IFS and WTX; ignored for RESYNCH and ABORT.
        param: u8,
    },
}

impl<'a> BlockRepr<'a> {
    /// Parses a checked block.
    pub fn parse(block: &Block<'a>) -> BlockRepr<'a> {
        match block.kind() {
            BlockKind::I { ns, more } => BlockRepr::I {
                ns,
                more,
                inf: block.inf(),
            },
            BlockKind::R { nr, error } => BlockRepr::R { nr, error },
            BlockKind::S { kind, response } => BlockRepr::S {
                kind,
                response,
                param: block.inf().first().copied().unwrap_or(0),
            },
        }
    }

    fn kind(&self) -> BlockKind {
        match *self {
            BlockRepr::I { ns, more, .. } => BlockKind::I { ns, more },
            BlockRepr::R { nr, error } => BlockKind::R { nr, error },
            BlockRepr::S { kind, response, .. } => BlockKind::S { kind, response },
        }
    }

    fn inf_len(&self) -> usize {
        match self {
            BlockRepr::I { inf, .. } => inf.len(),
            BlockRepr::R { .. } => 0,
            BlockRepr::S { kind, .. } => usize::from(kind.has_param()),
        }
    }

    /// Bytes [`BlockRepr::emit`] writes with this EDC.
    pub fn buffer_len(&self, edc: Edc) -> usize {
        PROLOGUE_LEN + self.inf_len() + edc.len()
    }

    /// Writes the block (prologue, INF, epilogue) at the start of `buf`
    /// and returns its length.
    pub fn emit(&self, nad: u8, edc: Edc, buf: &mut [u8]) -> Result<usize, BlockError> {
        let inf_len = self.inf_len();
        if inf_len > MAX_INF_LEN {
            return Err(BlockError::InfTooLong(inf_len));
        }
        let needed = self.buffer_len(edc);
        let capacity = buf.len();
        let out = buf
            .get_mut(..needed)
            .ok_or(BlockError::BufferTooSmall { needed, capacity })?;
        out[0] = nad;
        out[1] = self.kind().pcb();
        out[2] = inf_len as u8;
        match self {
            BlockRepr::I { inf, .. } => {
                out[PROLOGUE_LEN..PROLOGUE_LEN + inf_len].copy_from_slice(inf)
            }
            BlockRepr::R { .. } => {}
            BlockRepr::S { kind, param, .. } => {
                if kind.has_param() {
                    out[PROLOGUE_LEN] = *param;
                }
            }
        }
        let (covered, epilogue) = out.split_at_mut(PROLOGUE_LEN + inf_len);
        edc.write(covered, epilogue)
            .expect("epilogue space reserved by buffer_len");
        Ok(needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emit(repr: BlockRepr<'_>, edc: Edc) -> ([u8; MAX_BLOCK_LEN], usize) {
        let mut buf = [0u8; MAX_BLOCK_LEN];
        let n = repr.emit(0, edc, &mut buf).unwrap();
        (buf, n)
    }

    // Expected bytes below are assembled by hand from Tables 13–15 and the
    // LRC definition, not from this module.

    #[test]
    fn i_blocks() {
        let (b, n) = emit(
            BlockRepr::I {
                ns: 0,
                more: false,
                inf: &[0x00, 0xA4, 0x04, 0x00],
            },
            Edc::Lrc,
        );
        assert_eq!(&b[..n], &[0x00, 0x00, 0x04, 0x00, 0xA4, 0x04, 0x00, 0xA4]);
        let (b, n) = emit(
            BlockRepr::I {
                ns: 1,
                more: true,
                inf: &[0x01],
            },
            Edc::Lrc,
        );
        assert_eq!(&b[..n], &[0x00, 0x60, 0x01, 0x01, 0x60]);
        let block = Block::new_checked(&b[..n], Edc::Lrc).unwrap();
        assert_eq!(block.kind(), BlockKind::I { ns: 1, more: true });
        assert_eq!(block.inf(), &[0x01]);
        assert_eq!(block.pcb(), 0x60);
    }

    #[test]
    fn r_blocks_and_error_codes() {
        let cases = [
            (0, RError::None, 0x80),
            (1, RError::None, 0x90),
            (0, RError::EdcOrParity, 0x81),
            (1, RError::EdcOrParity, 0x91),
            (0, RError::Other, 0x82),
            (1, RError::Other, 0x92),
        ];
        for (nr, error, pcb) in cases {
            let (b, n) = emit(BlockRepr::R { nr, error }, Edc::Lrc);
            assert_eq!(&b[..n], &[0x00, pcb, 0x00, pcb]);
            let block = Block::new_checked(&b[..n], Edc::Lrc).unwrap();
            assert_eq!(block.kind(), BlockKind::R { nr, error });
        }
        // Error code 3 is not defined; neither is b6 set in an R-block.
        assert_eq!(
            Block::new_checked(&[0x00, 0x83, 0x00, 0x83], Edc::Lrc),
            Err(BlockError::InvalidPcb(0x83))
        );
        assert_eq!(
            Block::new_checked(&[0x00, 0xA0, 0x00, 0xA0], Edc::Lrc),
            Err(BlockError::InvalidPcb(0xA0))
        );
    }

    #[test]
    fn s_blocks() {
        let cases: [(SKind, bool, u8, &[u8]); 8] = [
            (SKind::Resynch, false, 0, &[0x00, 0xC0, 0x00, 0xC0]),
            (SKind::Resynch, true, 0, &[0x00, 0xE0, 0x00, 0xE0]),
            (SKind::Ifs, false, 0xFE, &[0x00, 0xC1, 0x01, 0xFE, 0x3E]),
            (SKind::Ifs, true, 0x20, &[0x00, 0xE1, 0x01, 0x20, 0xC0]),
            (SKind::Abort, false, 0, &[0x00, 0xC2, 0x00, 0xC2]),
            (SKind::Abort, true, 0, &[0x00, 0xE2, 0x00, 0xE2]),
            (SKind::Wtx, false, 0x05, &[0x00, 0xC3, 0x01, 0x05, 0xC7]),
            (SKind::Wtx, true, 0x05, &[0x00, 0xE3, 0x01, 0x05, 0xE7]),
        ];
        for (kind, response, param, wire) in cases {
            let repr = BlockRepr::S {
                kind,
                response,
                param,
            };
            let (b, n) = emit(repr, Edc::Lrc);
            assert_eq!(&b[..n], wire, "{kind:?} {response}");
            let block = Block::new_checked(wire, Edc::Lrc).unwrap();
            assert_eq!(BlockRepr::parse(&block), repr);
        }
        // S(IFS) without its INF byte, S(RESYNCH) with one.
        assert_eq!(
            Block::new_checked(&[0x00, 0xC1, 0x00, 0xC1], Edc::Lrc),
            Err(BlockError::InvalidInfLen { pcb: 0xC1, len: 0 })
        );
        assert_eq!(
            Block::new_checked(&[0x00, 0xC0, 0x01, 0x00, 0xC1], Edc::Lrc),
            Err(BlockError::InvalidInfLen { pcb: 0xC0, len: 1 })
        );
        // S-block type 4 (VPP error in old editions) is not defined here.
        assert_eq!(
            Block::new_checked(&[0x00, 0xE4, 0x00, 0xE4], Edc::Lrc),
            Err(BlockError::InvalidPcb(0xE4))
        );
    }

    #[test]
    fn nad_is_kept() {
        let mut buf = [0u8; 8];
        let n = BlockRepr::R {
            nr: 0,
            error: RError::None,
        }
        .emit(0x21, Edc::Lrc, &mut buf)
        .unwrap();
        assert_eq!(&buf[..n], &[0x21, 0x80, 0x00, 0xA1]);
        assert_eq!(Block::new_checked(&buf[..n], Edc::Lrc).unwrap().nad(), 0x21);
    }

    #[test]
    fn length_and_edc_checks() {
        assert_eq!(
            Block::new_checked(&[0x00, 0x00], Edc::Lrc),
            Err(BlockError::Truncated { len: 2 })
        );
        assert_eq!(
            Block::new_checked(&[0x00, 0x00, 0x02, 0x90, 0x92], Edc::Lrc),
            Err(BlockError::LengthMismatch {
                declared: 6,
                received: 5
            })
        );
        assert_eq!(
            Block::new_checked(&[0x00, 0x00, 0x02, 0x90, 0x00, 0x93], Edc::Lrc),
            Err(BlockError::Edc)
        );
        assert_eq!(BlockError::Edc.r_error(), RError::EdcOrParity);
        assert_eq!(BlockError::InvalidPcb(0xE4).r_error(), RError::Other);
        let ok = Block::new_checked(&[0x00, 0x00, 0x02, 0x90, 0x00, 0x92], Edc::Lrc).unwrap();
        assert_eq!(ok.inf(), &[0x90, 0x00]);
    }

    #[test]
    fn reserved_len_255_rejected() {
        let mut buf = [0u8; 3 + 255 + 1];
        buf[2] = 0xFF;
        let lrc = crate::edc::lrc(&buf[..258]);
        buf[258] = lrc;
        assert_eq!(
            Block::new_checked(&buf, Edc::Lrc),
            Err(BlockError::ReservedLen)
        );
    }

    #[test]
    fn crc_blocks_round_trip() {
        let repr = BlockRepr::I {
            ns: 0,
            more: false,
            inf: &[0x90, 0x00],
        };
        let (b, n) = emit(repr, Edc::Crc);
        assert_eq!(n, 3 + 2 + 2);
        let crc = crate::edc::crc(&[0x00, 0x00, 0x02, 0x90, 0x00]);
        assert_eq!(&b[5..7], &crc.to_be_bytes());
        assert_eq!(
            BlockRepr::parse(&Block::new_checked(&b[..n], Edc::Crc).unwrap()),
            repr
        );
        // The same bytes checked as LRC fail the length check.
        assert!(Block::new_checked(&b[..n], Edc::Lrc).is_err());
    }

    #[test]
    fn emit_errors() {
        let mut small = [0u8; 4];
        assert_eq!(
            BlockRepr::I {
                ns: 0,
                more: false,
                inf: &[1, 2]
            }
            .emit(0, Edc::Lrc, &mut small),
            Err(BlockError::BufferTooSmall {
                needed: 6,
                capacity: 4
            })
        );
        let long = [0u8; 255];
        assert_eq!(
            BlockRepr::I {
                ns: 0,
                more: false,
                inf: &long
            }
            .emit(0, Edc::Lrc, &mut [0u8; 300]),
            Err(BlockError::InfTooLong(255))
        );
    }
}
