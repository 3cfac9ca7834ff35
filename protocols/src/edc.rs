//! Error detection codes of T=1 blocks (ISO/IEC 7816-3 §11.4.4).
//!
//! (LRC/CRC computation in progress.)

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
    pub const fn len(self) -> usize {
        match self {
            Edc::Lrc => 1,
            Edc::Crc => 2,
        }
    }
}
