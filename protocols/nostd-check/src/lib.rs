//! A `no_std`, allocator-free user of every engine of ferroccid-protocols.
#![no_std]

use core::panic::PanicInfo;
use ferroccid_protocols::{atr::Atr, pps, t0, t1};

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {}
}

/// Parses an ATR, plans a PPS, and runs one T=1 and one T=0 step, so every
/// engine is linked in.
#[no_mangle]
pub extern "C" fn ferroccid_nostd_smoke(atr: *const u8, len: usize) -> usize {
    let _ = (atr, len);
    let bytes = [
        0x3B, 0x93, 0x96, 0x80, 0xB1, 0xFE, 0x45, 0x1F, 0x03, 0x31, 0xC0, 0x64, 0x06,
    ];
    let Ok(atr) = Atr::parse(&bytes) else {
        return 0;
    };
    let mut buf = [0u8; 8];
    let request = pps::PpsRequest {
        protocol: 1,
        pps1: Some(0x96),
        pps2: None,
        pps3: None,
    };
    let pps_len = request.emit(&mut buf).unwrap_or(0);
    let mut t1 = t1::T1::new(t1::T1Config::default());
    let mut response = [0u8; 258];
    let mut block = [0u8; t1::MAX_BLOCK_LEN];
    let mut exchange = t1.exchange(&[0x00, 0x84, 0x00, 0x00, 0x08], &mut response);
    let block_len = exchange.poll_transmit(&mut block).unwrap_or(0);
    let mut t0_response = [0u8; 258];
    let t0_ok = t0::T0Apdu::new(
        &[0x00, 0x84, 0x00, 0x00, 0x08],
        &mut t0_response,
        t0::T0Options::AUTOMATIC,
    )
    .is_ok();
    atr.as_bytes().len() + pps_len + block_len + t0_ok as usize
}
