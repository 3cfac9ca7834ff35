//! Error detection codes of T=1 blocks (ISO/IEC 7816-3 §11.4.4).
//!
//! The epilogue of every block covers NAD, PCB, LEN and INF. LRC is one
//! byte: the XOR of those bytes. CRC is two bytes.
//!
//! # Which CRC
//!
//! The standard points to ISO/IEC 13239 (X.25: polynomial 0x1021 reflected,
//! initial value 0xFFFF, final XOR 0xFFFF). The implementations that cards
//! and readers have been tested against for two decades (libccid, OpenCT and
//! the reader firmwares derived from them) compute the same CRC *without* the
//! final XOR (the catalogue name is CRC-16/MCRF4XX, check value 0x6F91 over
//! `"123456789"`) and send the high byte first. We follow the deployed
//! implementations: a driver that disagrees with every reader and card in the
//! field gains nothing from matching the letter of the standard. The choice
//! lives in [`CRC_ALGORITHM`] only.

use crc::{Crc, CRC_16_MCRF4XX};

/// The CRC used for T=1 epilogues: CRC-16/MCRF4XX (see the module docs).
pub const CRC_ALGORITHM: Crc<u16> = Crc::<u16>::new(&CRC_16_MCRF4XX);

/// Longest epilogue of any EDC, in bytes.
pub const MAX_EDC_LEN: usize = 2;

/// Which error detection code a T=1 block carries, chosen by the card's
/// first TCi for T=1 (bit 1 set → CRC, otherwise LRC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Edc {
    /// Longitudinal redundancy check: one byte, XOR of all prologue and
    /// information bytes. The default.
    #[default]
    Lrc,
    /// Cyclic redundancy check: two bytes.
    Crc,
}

impl Edc {
    /// Length of the epilogue field in bytes.
    // Never empty: an `is_empty` would always say false.
    #[allow(clippy::len_without_is_empty)]
    pub const fn len(self) -> usize {
        match self {
            Edc::Lrc => 1,
            Edc::Crc => 2,
        }
    }

    /// Computes the epilogue over `covered` (prologue + INF) into the first
    /// [`Edc::len`] bytes of `out`, returning how many were written, or
    /// `None` when `out` is shorter than that.
    pub fn write(self, covered: &[u8], out: &mut [u8]) -> Option<usize> {
        let n = self.len();
        let out = out.get_mut(..n)?;
        match self {
            Edc::Lrc => out[0] = lrc(covered),
            Edc::Crc => out.copy_from_slice(&crc(covered).to_be_bytes()),
        }
        Some(n)
    }

    /// Whether `block` (prologue + INF + epilogue) ends with the correct
    /// epilogue. A block shorter than the epilogue is never correct.
    pub fn verify(self, block: &[u8]) -> bool {
        let Some(split) = block.len().checked_sub(self.len()) else {
            return false;
        };
        let (covered, received) = block.split_at(split);
        match self {
            Edc::Lrc => received[0] == lrc(covered),
            Edc::Crc => received == crc(covered).to_be_bytes(),
        }
    }
}

/// Longitudinal redundancy check: XOR of all bytes.
pub fn lrc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

/// The T=1 CRC of `bytes` (CRC-16/MCRF4XX; transmitted high byte first).
pub fn crc(bytes: &[u8]) -> u16 {
    CRC_ALGORITHM.checksum(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CRC-16/MCRF4XX computed bit by bit from its definition (reflected
    /// polynomial 0x1021 = 0x8408, init 0xFFFF, no final XOR), independent
    /// of the `crc` crate.
    fn crc_bitwise(bytes: &[u8]) -> u16 {
        let mut v: u16 = 0xFFFF;
        for &b in bytes {
            v ^= b as u16;
            for _ in 0..8 {
                v = if v & 1 != 0 {
                    (v >> 1) ^ 0x8408
                } else {
                    v >> 1
                };
            }
        }
        v
    }

    #[test]
    fn crc_check_value() {
        assert_eq!(crc(b"123456789"), 0x6F91);
        assert_eq!(crc_bitwise(b"123456789"), 0x6F91);
    }

    #[test]
    fn crc_is_x25_without_final_xor() {
        // X.25 (ISO/IEC 13239) check value is 0x906E = 0x6F91 ^ 0xFFFF.
        assert_eq!(crc(b"123456789") ^ 0xFFFF, 0x906E);
    }

    #[test]
    fn crc_matches_bitwise_reference_on_blocks() {
        let blocks: [&[u8]; 4] = [
            &[0x00, 0xC1, 0x01, 0xFE],
            &[0x00, 0xC0, 0x00],
            &[0x00, 0x00, 0x05, 0x00, 0xA4, 0x04, 0x00, 0x00],
            &[],
        ];
        for b in blocks {
            assert_eq!(crc(b), crc_bitwise(b), "{b:02X?}");
        }
    }

    #[test]
    fn crc_is_sent_high_byte_first() {
        let mut out = [0u8; 2];
        assert_eq!(Edc::Crc.write(b"123456789", &mut out), Some(2));
        assert_eq!(out, [0x6F, 0x91]);
    }

    #[test]
    fn lrc_vectors() {
        // S(IFS request, 0xFE) as seen in every T=1 trace: 00 C1 01 FE 3E.
        assert_eq!(lrc(&[0x00, 0xC1, 0x01, 0xFE]), 0x3E);
        // S(RESYNCH request): 00 C0 00 C0.
        assert_eq!(lrc(&[0x00, 0xC0, 0x00]), 0xC0);
        assert_eq!(lrc(&[]), 0x00);
    }

    #[test]
    fn verify_accepts_correct_and_rejects_corrupt() {
        assert!(Edc::Lrc.verify(&[0x00, 0xC1, 0x01, 0xFE, 0x3E]));
        assert!(!Edc::Lrc.verify(&[0x00, 0xC1, 0x01, 0xFE, 0x3F]));
        assert!(!Edc::Lrc.verify(&[]));
        let mut block = [0x00, 0xC1, 0x01, 0xFE, 0, 0];
        let (covered, epilogue) = block.split_at_mut(4);
        Edc::Crc.write(covered, epilogue).unwrap();
        assert!(Edc::Crc.verify(&block));
        block[2] ^= 0x01;
        assert!(!Edc::Crc.verify(&block));
        assert!(!Edc::Crc.verify(&[0x6F]));
    }

    #[test]
    fn write_refuses_short_output() {
        assert_eq!(Edc::Crc.write(&[1, 2], &mut [0u8; 1]), None);
        assert_eq!(Edc::Lrc.write(&[1, 2], &mut []), None);
    }
}
