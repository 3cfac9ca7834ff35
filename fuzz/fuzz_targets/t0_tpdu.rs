//! The T=0 APDU ↔ TPDU helper against an arbitrary card: never panics,
//! always ends (bounded GET RESPONSE and resends), never writes past the
//! response buffer.
//!
//! Input: `options resp_cap cmd_len command…` then answers `len bytes…`.
#![no_main]

use ferroccid_protocols::t0::{T0Apdu, T0Options, T0Step, MAX_TPDU_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[options, cap, cmd_len], rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let options = T0Options {
        auto_get_response: options & 1 != 0,
        auto_resend_6c: options & 2 != 0,
    };
    let cmd_len = usize::from(cmd_len).min(rest.len());
    let (command, mut answers) = rest.split_at(cmd_len);
    let cap = usize::from(cap) * 2;
    let mut response = vec![0u8; cap];
    let Ok(mut apdu) = T0Apdu::new(command, &mut response, options) else {
        return;
    };
    let mut tx = [0u8; MAX_TPDU_LEN];
    let mut steps = 0usize;
    let (len, sw) = loop {
        let tpdu = apdu
            .next_tpdu(&mut tx)
            .expect("MAX_TPDU_LEN always suffices")
            .expect("a TPDU is due until completion");
        assert!(tpdu.len() >= 5);
        let Some((&len, tail)) = answers.split_first() else {
            return;
        };
        let take = usize::from(len).min(tail.len());
        let (answer, next) = tail.split_at(take);
        answers = next;
        match apdu.handle_response(answer) {
            Ok(T0Step::SendNext) => {
                steps += 1;
                assert!(
                    steps <= usize::from(T0Apdu::MAX_GET_RESPONSES) * 4 + 8,
                    "unbounded TPDU loop"
                );
            }
            Ok(T0Step::Complete(len)) => {
                assert_eq!(apdu.next_tpdu(&mut tx), Ok(None));
                break (len, &answer[answer.len() - 2..]);
            }
            Err(_) => return,
        }
    };
    assert!((2..=cap).contains(&len), "response of {len} in {cap} bytes");
    assert_eq!(
        &response[len - 2..len],
        sw,
        "the last answer's SW ends the response"
    );
});
