//! PPS response validation against arbitrary card answers: never panics;
//! an accepted response is a true echo of the request (§9.3) and
//! re-serialises to the same bytes; the exact echo of a request is
//! always accepted.
//!
//! Input: `protocol presence pps1 pps2 pps3` (the request) then the
//! card's response.
#![no_main]

use ferroccid_protocols::pps::{PpsRequest, MAX_LEN, PPSS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[protocol, presence, pps1, pps2, pps3], response)) = data.split_first_chunk::<5>()
    else {
        return;
    };
    let request = PpsRequest {
        protocol: protocol & 0x1F,
        pps1: (presence & 1 != 0).then_some(pps1),
        pps2: (presence & 2 != 0).then_some(pps2),
        pps3: (presence & 4 != 0).then_some(pps3),
    };

    let mut own = [0u8; MAX_LEN];
    match request.emit(&mut own) {
        Ok(n) => {
            assert_eq!(n, request.len());
            let echo = request
                .check_response(&own[..n])
                .expect("the exact echo of a request is accepted");
            assert_eq!(echo.protocol, request.protocol);
            assert_eq!(echo.pps2, request.pps2);
            assert_eq!(echo.pps3, request.pps3);
        }
        Err(_) => assert!(request.protocol > 15, "only T > 15 is refused"),
    }

    let Ok(accepted) = request.check_response(response) else {
        return;
    };
    assert!(response.len() <= MAX_LEN && response.len() >= 3);
    assert_eq!(response[0], PPSS);
    assert_eq!(accepted.protocol, request.protocol);
    assert_eq!(response.iter().fold(0, |x, b| x ^ b), 0, "PCK checked");
    // Rebuild the response from what was accepted: it must be the same bytes.
    let pps0 = response[1];
    let rebuilt = PpsRequest {
        protocol: accepted.protocol,
        pps1: (pps0 & 0x10 != 0).then_some(accepted.fi_di),
        pps2: accepted.pps2,
        pps3: accepted.pps3,
    };
    if let Some(p) = rebuilt.pps1 {
        assert_eq!(Some(p), request.pps1, "PPS1 echoed, not invented");
    }
    let mut out = [0u8; MAX_LEN];
    let n = rebuilt.emit(&mut out).expect("accepted values re-emit");
    assert_eq!(
        &out[..n],
        response,
        "an accepted response re-serialises identically"
    );
});
