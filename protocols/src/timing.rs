//! Waiting and guard times of ISO/IEC 7816-3 (§7.1, §8.3, §10.2, §11.4.3).
//!
//! The engines never read a clock: they tell the caller which time budget
//! applies, and these helpers turn the ATR/PPS parameters into numbers the
//! caller (or the CCID reader, via its timeout fields) can arm a timer with.
//!
//! All arithmetic is integer (no float in `no_std`): times are computed as
//! exact fractions and rounded **up** once at the end, because they are used
//! as timeouts and a timeout that is a hair short fails good cards.
//!
//! Units: clock `f_khz` in kHz (so 3.5712 MHz is approximated as 3571 kHz,
//! 7.5 MHz stays exact), `fi` and `di` as the values of [`crate::params`]
//! (not the indices). A zero `di` or `f_khz` would be a division by zero; it
//! is treated as 1 so that the helpers never panic on garbage input.

// The defaults that apply when the ATR is silent, defined once in `atr`.
pub use crate::atr::{BWI_DEFAULT, CWI_DEFAULT, WI_DEFAULT};

/// Fd, which BWT uses whatever Fi is in force (§11.4.3: the 2^BWI × 960
/// term is counted in clock cycles of the *default* factor, not the
/// negotiated one).
const FD: u64 = crate::params::FD as u64;

/// The transmission protocol whose guard-time rule applies for N = 255.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Character protocol T=0: minimum guard time 12 etu.
    T0,
    /// Block protocol T=1: minimum guard time 11 etu.
    T1,
}

/// `x`, or 1 when `x` is zero: the divisor guard.
const fn nonzero(x: u64) -> u64 {
    if x == 0 {
        1
    } else {
        x
    }
}

/// Divides, rounding up, with a zero divisor treated as 1.
const fn div_ceil(numerator: u64, denominator: u64) -> u64 {
    numerator.div_ceil(nonzero(denominator))
}

/// `etus` elementary time units in nanoseconds: etus × Fi / (Di × f).
const fn etus_ns(etus: u64, fi: u16, di: u8, f_khz: u32) -> u64 {
    // f in kHz: 1 clock cycle = 1e6 / f_khz ns.
    div_ceil(
        etus.saturating_mul(fi as u64).saturating_mul(1_000_000),
        nonzero(di as u64) * nonzero(f_khz as u64),
    )
}

/// One elementary time unit in nanoseconds: etu = Fi / (Di × f) (§7.1).
///
/// With the defaults (Fi = 372, Di = 1) at 4 MHz one etu lasts 93 µs.
pub const fn etu_ns(fi: u16, di: u8, f_khz: u32) -> u64 {
    etus_ns(1, fi, di, f_khz)
}

/// T=0 waiting time WT in microseconds: WI × 960 × Fi / f (§10.2).
///
/// Also the maximum delay between two characters and before each
/// procedure byte; every NULL byte (0x60) restarts it. `di` does not
/// change the result (the 1997 text counts 960 × D × WI etu, in which D
/// cancels out); it is taken so that all helpers share one signature and
/// the computation goes through the same etu arithmetic.
pub const fn wwt_us(wi: u8, fi: u16, di: u8, f_khz: u32) -> u64 {
    let di = if di == 0 { 1 } else { di };
    let etus = 960 * wi as u64 * di as u64;
    div_ceil(etus * fi as u64 * 1000, di as u64 * nonzero(f_khz as u64))
}

/// T=1 block waiting time BWT in microseconds:
/// 11 etu + 2^BWI × 960 × Fd / f (§11.4.3).
///
/// The etu term uses the current `fi`/`di`; the second term uses Fd = 372
/// whatever `fi` is. BWI above 15 is not encodable (4 bits) and is clamped.
pub const fn bwt_us(bwi: u8, fi: u16, di: u8, f_khz: u32) -> u64 {
    let bwi = if bwi > 15 { 15 } else { bwi };
    let di = nonzero(di as u64);
    // Common denominator di × f: 11 × fi / (di f) + 2^bwi × 960 × Fd × di / (di f).
    let numerator = 11 * fi as u64 + (1u64 << bwi) * 960 * FD * di;
    div_ceil(numerator * 1000, di * nonzero(f_khz as u64))
}

/// T=1 character waiting time CWT in microseconds: (11 + 2^CWI) etu
/// (§11.4.3). CWI above 15 is not encodable (4 bits) and is clamped.
pub const fn cwt_us(cwi: u8, fi: u16, di: u8, f_khz: u32) -> u64 {
    let cwi = if cwi > 15 { 15 } else { cwi };
    div_ceil(etus_ns(11 + (1u64 << cwi), fi, di, f_khz), 1000)
}

/// The block waiting time granted after an S(WTX request) carrying
/// `multiplier`: BWT × multiplier, for the next block only (§11.6.2.3).
///
/// A multiplier of 0 is not meaningful and is treated as 1 so that a
/// confused card never gets a zero timeout.
pub const fn wtx_bwt_us(bwt_us: u64, multiplier: u8) -> u64 {
    let multiplier = if multiplier == 0 { 1 } else { multiplier };
    bwt_us.saturating_mul(multiplier as u64)
}

/// Character guard time GT in etu for the extra guard time integer N of
/// TC1 (§8.3): 12 etu + N etu for N = 0..=254; for N = 255, 12 etu under
/// T=0 and 11 etu under T=1.
///
/// §8.3 writes the extra part as R × N / f; R is F/D (the factors of the
/// etu) when T=15 is absent from the ATR, so it is exactly N etu. When
/// T=15 is present R = Fi/Di, which equals F/D once PPS has selected them.
pub const fn guard_time_etu(n: u8, protocol: Protocol) -> u16 {
    match (n, protocol) {
        (255, Protocol::T0) => 12,
        (255, Protocol::T1) => 11,
        (n, _) => 12 + n as u16,
    }
}

/// Character guard time GT in nanoseconds; see [`guard_time_etu`].
pub const fn guard_time_ns(n: u8, protocol: Protocol, fi: u16, di: u8, f_khz: u32) -> u64 {
    etus_ns(guard_time_etu(n, protocol) as u64, fi, di, f_khz)
}
