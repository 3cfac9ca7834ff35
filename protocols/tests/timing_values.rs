//! Waiting and guard times checked against values computed by hand from
//! the formulas of ISO/IEC 7816-3 (the arithmetic is in each comment).

use ferroccid_protocols::timing::{
    bwt_us, cwt_us, etu_ns, guard_time_etu, guard_time_ns, wtx_bwt_us, wwt_us, Protocol,
    BWI_DEFAULT, CWI_DEFAULT, WI_DEFAULT,
};

#[test]
fn etu_defaults_at_4_mhz_is_93_us() {
    // 372 / (1 × 4 000 000 Hz) = 93 µs.
    assert_eq!(etu_ns(372, 1, 4_000), 93_000);
}

#[test]
fn etu_rounds_up_at_3_5712_mhz() {
    // 372 / 3 571 000 Hz = 104 172.5 ns → 104 173 (timeouts round up).
    assert_eq!(etu_ns(372, 1, 3_571), 104_173);
}

#[test]
fn etu_with_negotiated_factors() {
    // Fi = 512, Di = 8 at 5 MHz: 512 / 40 000 000 Hz = 12.8 µs.
    assert_eq!(etu_ns(512, 8, 5_000), 12_800);
}

#[test]
fn wwt_default_at_4_mhz_is_892_8_ms() {
    // 960 × 10 × 372 / 4 MHz = 3 571 200 / 4 000 000 s = 0.8928 s.
    assert_eq!(wwt_us(WI_DEFAULT, 372, 1, 4_000), 892_800);
}

#[test]
fn wwt_default_at_5_mhz() {
    // 3 571 200 / 5 000 000 s = 714.24 ms.
    assert_eq!(wwt_us(10, 372, 1, 5_000), 714_240);
}

#[test]
fn wwt_does_not_depend_on_di() {
    // WT = WI × 960 × Fi / f: no Di in the 2006 formula.
    assert_eq!(wwt_us(10, 372, 12, 4_000), 892_800);
    assert_eq!(wwt_us(10, 372, 64, 4_000), 892_800);
}

#[test]
fn wwt_scales_with_wi_and_fi() {
    // WI = 40 (the Cyberflex example), Fi = 372 at 4 MHz: 4 × 892.8 ms.
    assert_eq!(wwt_us(40, 372, 1, 4_000), 3_571_200);
    // Fi = 512 at 5 MHz: 960 × 10 × 512 / 5e6 s = 983.04 ms.
    assert_eq!(wwt_us(10, 512, 8, 5_000), 983_040);
}

#[test]
fn bwt_default_at_4_mhz() {
    // 11 etu = 11 × 93 µs = 1 023 µs;
    // 2^4 × 960 × 372 / 4e6 s = 5 713 920 / 4e6 s = 1 428 480 µs.
    assert_eq!(bwt_us(BWI_DEFAULT, 372, 1, 4_000), 1_023 + 1_428_480);
}

#[test]
fn bwt_uses_fd_not_fi_for_the_bwi_term() {
    // Fi = 512, Di = 8, f = 5 MHz: 11 etu = 11 × 12.8 µs = 140.8 µs;
    // 2^4 × 960 × 372 / 5e6 s = 1 142 784 µs (Fd = 372, not Fi = 512,
    // which would give 1 572 864 µs). Total 1 142 924.8 → 1 142 925.
    assert_eq!(bwt_us(4, 512, 8, 5_000), 1_142_925);
}

#[test]
fn bwt_bwi_zero_and_nine() {
    // BWI = 0: 1 023 µs + 960 × 372 / 4e6 s = 1 023 + 89 280 µs.
    assert_eq!(bwt_us(0, 372, 1, 4_000), 90_303);
    // BWI = 9: 1 023 µs + 512 × 89 280 µs = 45 711 360 µs.
    assert_eq!(bwt_us(9, 372, 1, 4_000), 1_023 + 45_711_360);
}

#[test]
fn cwt_default_and_small() {
    // CWI = 13: (11 + 8192) etu × 93 µs = 762 879 µs.
    assert_eq!(cwt_us(CWI_DEFAULT, 372, 1, 4_000), 762_879);
    // CWI = 5: 43 etu × 93 µs = 3 999 µs.
    assert_eq!(cwt_us(5, 372, 1, 4_000), 3_999);
    // CWI = 0: 12 etu × 12.8 µs = 153.6 µs → 154 µs.
    assert_eq!(cwt_us(0, 512, 8, 5_000), 154);
}

#[test]
fn wtx_multiplies_bwt() {
    assert_eq!(wtx_bwt_us(1_429_503, 3), 4_288_509);
    assert_eq!(wtx_bwt_us(1_000, 255), 255_000);
    // Zero is meaningless: the caller keeps at least one BWT.
    assert_eq!(wtx_bwt_us(1_000, 0), 1_000);
}

#[test]
fn guard_time_from_tc1() {
    assert_eq!(guard_time_etu(0, Protocol::T0), 12);
    assert_eq!(guard_time_etu(0, Protocol::T1), 12);
    assert_eq!(guard_time_etu(10, Protocol::T0), 22);
    assert_eq!(guard_time_etu(254, Protocol::T1), 266);
    // N = 255: minimum guard time, 12 etu for T=0, 11 etu for T=1.
    assert_eq!(guard_time_etu(255, Protocol::T0), 12);
    assert_eq!(guard_time_etu(255, Protocol::T1), 11);
    // 22 etu × 93 µs = 2 046 µs.
    assert_eq!(guard_time_ns(10, Protocol::T0, 372, 1, 4_000), 2_046_000);
    assert_eq!(guard_time_ns(255, Protocol::T1, 372, 1, 4_000), 1_023_000);
}

#[test]
fn garbage_never_panics() {
    // Zero clock or Di would divide by zero; they are treated as 1.
    assert_eq!(etu_ns(372, 0, 0), 372_000_000);
    let _ = wwt_us(255, u16::MAX, 0, 0);
    let _ = bwt_us(255, u16::MAX, 0, 0);
    let _ = cwt_us(255, u16::MAX, 0, 0);
}
