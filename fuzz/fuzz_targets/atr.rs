//! ATR parsing on arbitrary bytes: never panics, and what parses is at most
//! 33 bytes and gives back exactly the bytes it was parsed from.
#![no_main]

use ferroccid_protocols::atr::{Atr, MAX_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lenient = Atr::parse(data);
    if let Ok(atr) = &lenient {
        assert!(
            data.len() <= MAX_LEN,
            "parsed an ATR of {} bytes",
            data.len()
        );
        assert_eq!(atr.as_bytes(), data, "an ATR re-serialises identically");
        let again = Atr::parse(atr.as_bytes()).expect("re-parsing its own bytes");
        assert_eq!(&again, atr);
        let hist = atr.historical();
        assert_eq!(
            hist.len(),
            usize::from(atr.t0() & 0x0F),
            "K historical bytes"
        );
        assert!(atr.protocols().iter().all(|t| t <= 15), "T is a nibble");
        // Accessors that derive values must not panic either.
        let _ = (
            atr.fi(),
            atr.di(),
            atr.f_max_khz(),
            atr.wi(),
            atr.bwi(),
            atr.cwi(),
        );
        let _ = (
            atr.guard_time_etu(0),
            atr.guard_time_etu(1),
            atr.specific_mode(),
        );
        let _ = atr.interface_bytes().count() + atr.anomalies().count();
        let _ = format!("{atr:?}");
    }
    match Atr::parse_strict(data) {
        // Strict acceptance implies lenient acceptance of the same ATR.
        Ok(strict) => assert_eq!(Ok(strict), lenient),
        Err(e) => {
            let _ = format!("{e} at {}", e.offset());
        }
    }
    let _ = Atr::parse_uart(data);
});
