//! Error detection codes of T=1 blocks (ISO/IEC 7816-3 §11.4.4), card side.

/// Longitudinal redundancy check: the XOR of all bytes.
pub(crate) fn lrc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

/// CRC-16 as deployed T=1 readers compute it: polynomial 0x1021 processed
/// reflected (0x8408), initial value 0xFFFF, no final XOR ("CRC-16/MCRF4XX").
/// On the wire the high byte goes first (see [`crc_bytes`]).
pub(crate) fn crc(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// The CRC as the two bytes sent after the information field, high byte first.
pub(crate) fn crc_bytes(bytes: &[u8]) -> [u8; 2] {
    crc(bytes).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lrc_is_xor() {
        assert_eq!(lrc(&[]), 0);
        assert_eq!(lrc(&[0x00, 0x00, 0x00]), 0x00);
        // Example block 00 40 00 from ISO/IEC 7816-3 annex: LRC 40.
        assert_eq!(lrc(&[0x00, 0x40, 0x00]), 0x40);
        assert_eq!(lrc(&[0x12, 0x34, 0x56]), 0x12 ^ 0x34 ^ 0x56);
    }

    #[test]
    fn crc_check_value_mcrf4xx() {
        // Published check value of CRC-16/MCRF4XX over ASCII "123456789".
        assert_eq!(crc(b"123456789"), 0x6F91);
        assert_eq!(crc_bytes(b"123456789"), [0x6F, 0x91]);
        assert_eq!(crc(&[]), 0xFFFF);
    }
}
