//! Property tests of the T=1 engine against the independent card model:
//! random APDU sizes, IFSC, IFSD and one or two faults on the wire.

mod t1_card_model;

use ferroccid_protocols::t1::{Progress, T1Config, T1Error, T1};
use proptest::prelude::*;
use t1_card_model::{reverse_app, run, Card, Fault, MAX_STEPS};

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::Drop),
        Just(Fault::Corrupt),
        any::<usize>().prop_map(Fault::FlipBit),
    ]
}

/// (direction: true = host → card, position as a fraction of the exchange, fault)
fn faults(max: usize) -> impl Strategy<Value = Vec<(bool, f64, Fault)>> {
    prop::collection::vec((any::<bool>(), 0.0f64..1.0, fault()), 0..=max)
}

fn data_len() -> impl Strategy<Value = usize> {
    // Mostly short APDUs (fast, many chain boundaries), some up to 64 KiB.
    prop_oneof![4 => 0usize..=600, 1 => 0usize..=65_535]
}

fn check(len: usize, ifsc: u8, card_ifsd: u8, faults: Vec<(bool, f64, Fault)>) {
    // Extended-length case 4 APDU: header, 00 Lc Lc, data, Le Le.
    let mut cmd = vec![0x80, 0xCA, 0x00, 0x00, 0x00, (len >> 8) as u8, len as u8];
    cmd.extend((0..len).map(|i| (i % 253) as u8));
    cmd.extend_from_slice(&[0x00, 0x00]);
    let expected = reverse_app(&cmd);
    // Roughly how many blocks travel each way, to place faults anywhere.
    let blocks = cmd.len() / ifsc as usize + expected.len() / card_ifsd as usize + 2;
    let fault_count = faults.len();
    let mut host_faults = Vec::new();
    let mut card_faults = Vec::new();
    for (to_card, at, f) in faults {
        let i = (at * blocks as f64) as usize;
        if to_card {
            host_faults.push((i, f));
        } else {
            card_faults.push((i, f));
        }
    }
    let mut t1 = T1::new(T1Config {
        ifsc,
        ..T1Config::default()
    });
    let mut card = Card::new(ifsc as usize);
    card.ifsd = card_ifsd as usize;
    let mut resp = vec![0u8; expected.len()];
    // `run` panics if the exchange has not ended within MAX_STEPS.
    let r = run(
        &mut t1,
        &mut card,
        &cmd,
        &mut resp,
        &host_faults,
        &card_faults,
    );
    assert!(r.steps <= MAX_STEPS);
    match r.result {
        Ok(Progress::Complete(n)) => {
            assert_eq!(n, expected.len());
            assert_eq!(resp, expected, "response corrupted");
            assert_eq!(card.commands.last(), Some(&cmd), "command corrupted");
            assert!(card.violations.is_empty(), "{:?}", card.violations);
            // One lost or corrupted block is repaired by R-blocks and
            // retransmission alone (§11.6.3), without RESYNCH.
            if fault_count <= 1 {
                assert_eq!(card.resynchs, 0, "RESYNCH for a single fault");
            }
        }
        // Two faults cannot exhaust three attempts and three RESYNCHs.
        Err(T1Error::CardNotResponding) if fault_count > 2 => {}
        other => panic!("unexpected outcome {other:?}"),
    }
    // The session is still usable afterwards (after a RESYNCH if needed).
    let mut resp2 = vec![0u8; 16];
    let r2 = run(
        &mut t1,
        &mut card,
        &[0x00, 0xB0, 0x00, 0x00],
        &mut resp2,
        &[],
        &[],
    );
    let after = match r2.result {
        Ok(Progress::Complete(n)) => n,
        other => panic!("session broken after faults: {other:?}"),
    };
    assert_eq!(&resp2[..after], &reverse_app(&[0x00, 0xB0, 0x00, 0x00])[..]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn no_fault_response_intact(len in data_len(), ifsc in 1u8..=254, ifsd in 1u8..=254) {
        check(len, ifsc, ifsd, Vec::new());
    }

    #[test]
    fn single_and_double_faults(
        len in data_len(),
        ifsc in 1u8..=254,
        ifsd in 1u8..=254,
        faults in faults(2),
    ) {
        check(len, ifsc, ifsd, faults);
    }

    #[test]
    fn garbage_from_the_card_never_panics(
        garbage in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..20),
        ifsc in 1u8..=254,
    ) {
        let mut t1 = T1::new(T1Config { ifsc, ..T1Config::default() });
        let cmd = [0u8; 300];
        let mut resp = [0u8; 64];
        let mut x = t1.exchange(&cmd, &mut resp);
        let mut buf = [0u8; 259];
        for g in &garbage {
            if x.poll_transmit(&mut buf).is_err() {
                break;
            }
            match x.handle_block(g) {
                Ok(Progress::Complete(_)) | Ok(Progress::Aborted) | Err(_) => break,
                _ => {}
            }
        }
        // At most 3 attempts × 4 (3 RESYNCH) failures before it gives up.
        let mut timeouts = 0;
        while !x.is_finished() {
            let _ = x.poll_transmit(&mut buf);
            if x.handle_timeout().is_err() {
                break;
            }
            timeouts += 1;
            prop_assert!(timeouts <= 12, "engine kept going after {} timeouts", timeouts);
        }
    }
}
