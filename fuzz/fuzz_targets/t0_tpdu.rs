//! The T=0 APDU ↔ TPDU helper against an arbitrary card: never panics,
//! always ends (bounded GET RESPONSE and resends), never writes past the
//! response buffer.
//!
//! Input: `options resp_cap cmd_len command…` then answers `len bytes…`.
//! options bit 0: automatic GET RESPONSE; bit 1: automatic 6Cxx resend;
//! bit 2: the card answers forever, replaying the answers in a cycle. In
//! both modes the helper must end within the bound `t0/tpdu.rs` documents,
//! (MAX_GET_RESPONSES + 1) × (MAX_RESENDS + 1) TPDUs.
#![no_main]

use ferroccid_protocols::t0::{T0Apdu, T0Options, T0Step, MAX_TPDU_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[options, cap, cmd_len], rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let forever = options & 4 != 0;
    let options = T0Options {
        auto_get_response: options & 1 != 0,
        auto_resend_6c: options & 2 != 0,
    };
    let cmd_len = usize::from(cmd_len).min(rest.len());
    let (command, mut tail) = rest.split_at(cmd_len);
    let mut answers: Vec<&[u8]> = Vec::new();
    while let Some((&len, after)) = tail.split_first() {
        let take = usize::from(len).min(after.len());
        let (answer, next) = after.split_at(take);
        answers.push(answer);
        tail = next;
    }
    if answers.is_empty() {
        return;
    }
    let cap = usize::from(cap) * 2;
    let mut response = vec![0u8; cap];
    let Ok(mut apdu) = T0Apdu::new(command, &mut response, options) else {
        return;
    };
    let max_tpdus =
        (usize::from(T0Apdu::MAX_GET_RESPONSES) + 1) * (usize::from(T0Apdu::MAX_RESENDS) + 1);
    let mut tx = [0u8; MAX_TPDU_LEN];
    let mut tpdus = 0usize;
    let mut card = answers.iter().cycle();
    let (len, sw) = loop {
        let tpdu = apdu
            .next_tpdu(&mut tx)
            .expect("MAX_TPDU_LEN always suffices")
            .expect("a TPDU is due until completion");
        assert!(tpdu.len() >= 5);
        tpdus += 1;
        if !forever && tpdus > answers.len() {
            return;
        }
        assert!(
            tpdus <= max_tpdus,
            "more than {max_tpdus} TPDUs for one APDU"
        );
        let answer = *card.next().expect("a cycle of answers never ends");
        match apdu.handle_response(answer) {
            Ok(T0Step::SendNext) => {}
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
