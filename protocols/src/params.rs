//! Transmission-parameter tables of ISO/IEC 7816-3 §8.3 (Tables 7 and 8).
//!
//! TA1 carries two indices: FI (high nibble) selects the clock rate
//! conversion factor Fi and the maximum clock f(max); DI (low nibble) selects
//! the baud rate adjustment factor Di. One etu lasts Fi/Di clock cycles.
//! ATR parsing, PPS negotiation and the timing helpers all read these tables.

/// Fi and f(max) for an FI index, or `None` for the RFU indices 7, 8, E, F.
///
/// f(max) is in kHz so that 7.5 MHz stays an integer.
pub const fn fi_fmax(fi_index: u8) -> Option<(u16, u32)> {
    match fi_index & 0x0F {
        0x0 => Some((372, 4_000)),
        0x1 => Some((372, 5_000)),
        0x2 => Some((558, 6_000)),
        0x3 => Some((744, 8_000)),
        0x4 => Some((1116, 12_000)),
        0x5 => Some((1488, 16_000)),
        0x6 => Some((1860, 20_000)),
        0x9 => Some((512, 5_000)),
        0xA => Some((768, 7_500)),
        0xB => Some((1024, 10_000)),
        0xC => Some((1536, 15_000)),
        0xD => Some((2048, 20_000)),
        _ => None,
    }
}

/// Fi for an FI index, or `None` when the index is RFU.
pub const fn fi(fi_index: u8) -> Option<u16> {
    match fi_fmax(fi_index) {
        Some((f, _)) => Some(f),
        None => None,
    }
}

/// f(max) in kHz for an FI index, or `None` when the index is RFU.
pub const fn f_max_khz(fi_index: u8) -> Option<u32> {
    match fi_fmax(fi_index) {
        Some((_, f)) => Some(f),
        None => None,
    }
}

/// Di for a DI index, or `None` for the RFU indices 0 and A..F.
pub const fn di(di_index: u8) -> Option<u8> {
    match di_index & 0x0F {
        0x1 => Some(1),
        0x2 => Some(2),
        0x3 => Some(4),
        0x4 => Some(8),
        0x5 => Some(16),
        0x6 => Some(32),
        0x7 => Some(64),
        0x8 => Some(12),
        0x9 => Some(20),
        _ => None,
    }
}

/// The default TA1 value (Fd = 372, Dd = 1, f(max) = 5 MHz) used when the
/// card sends no TA1 and before any PPS exchange.
pub const TA1_DEFAULT: u8 = 0x11;

/// Fd, the default clock rate conversion factor before and without PPS.
pub const FD: u16 = 372;

/// Dd, the default baud rate adjustment factor.
pub const DD: u8 = 1;

/// Baud rate in bit/s at clock `f_khz` for factors `fi`/`di`: f × Di / Fi.
///
/// This is what CCID's dwDataRate lists; readers compare it with the
/// rate the card's TA1 implies.
pub const fn baud_rate(f_khz: u32, fi: u16, di: u8) -> u32 {
    if fi == 0 {
        return 0;
    }
    ((f_khz as u64 * 1000 * di as u64) / fi as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_7_rows() {
        assert_eq!(fi_fmax(0x0), Some((372, 4_000)));
        assert_eq!(fi_fmax(0x6), Some((1860, 20_000)));
        assert_eq!(fi_fmax(0x7), None);
        assert_eq!(fi_fmax(0x8), None);
        assert_eq!(fi_fmax(0xA), Some((768, 7_500)));
        assert_eq!(fi_fmax(0xD), Some((2048, 20_000)));
        assert_eq!(fi_fmax(0xE), None);
        assert_eq!(fi_fmax(0xF), None);
    }

    #[test]
    fn table_8_rows() {
        assert_eq!(di(0), None);
        assert_eq!(di(1), Some(1));
        assert_eq!(di(7), Some(64));
        assert_eq!(di(8), Some(12));
        assert_eq!(di(9), Some(20));
        for rfu in 0xA..=0xF {
            assert_eq!(di(rfu), None);
        }
    }

    #[test]
    fn default_baud_rate_at_4mhz_is_10752() {
        // 4 MHz / 372 = 10752.69 bit/s: CCID readers list 10752 (0x2A00).
        assert_eq!(baud_rate(4_000, 372, 1), 10_752);
        assert_eq!(baud_rate(4_000, 372, 12), 129_032);
    }
}
