//! The driver over the in-process simulator: CPU cost of the reader logic
//! per APDU.
//!
//! Subject: `Slot::transmit` of GET CHALLENGE (Le 8) and of READ BINARY of
//! 255 bytes at the four exchange levels (TPDU T=1, TPDU T=0, short APDU,
//! extended APDU), each on its built-in simulator profile with the
//! simulated latencies set to zero.
//!
//! Baseline (the floor): a raw loop over the *same* transport that writes
//! the frames the reader sent for the same APDU (recorded once, before
//! timing) and reads each answer, with no reader logic at all: no framing,
//! no validation, no T=1/T=0 engine, no locking of slot state. The ratio is
//! therefore the reader's overhead per APDU on top of the simulator's own
//! cost (target from issue 6, applied in-process: ≤ 1.10×).
//!
//! Both sides go through the same recording wrapper (recording off while
//! timing) so that neither pays a cost the other does not.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferroccid::{ProtocolPreference, Reader};
use ferroccid::{Tap, TapHooks, Transport};
use ferroccid_sim::card::fs::{large_ef_byte, DEMO_AID};
use ferroccid_sim::profile::Profile;
use ferroccid_sim::SimTransport;
use support::Harness;

const TIMEOUT: Duration = Duration::from_secs(5);

/// [`Tap`] hooks that record bulk-OUT frames while asked to.
#[derive(Default)]
struct Recording {
    on: AtomicBool,
    sent: Mutex<Vec<Vec<u8>>>,
}

impl TapHooks for Recording {
    fn on_bulk_out(&self, message: &[u8]) {
        if self.on.load(Ordering::Relaxed) {
            self.sent.lock().unwrap().push(message.to_vec());
        }
    }
}

/// A built-in profile with every simulated delay at zero and a fixed RNG.
fn instant_profile(name: &str) -> Profile {
    let mut p = Profile::from_name(name).expect("built-in profile");
    p.exchange_latency = Duration::ZERO;
    p.time_extensions = 0;
    for slot in &mut p.slots {
        if let Some(card) = &mut slot.card {
            card.rng_seed = Some(7);
            card.slow = Default::default();
        }
    }
    p
}

/// GET CHALLENGE, Le 8 (ISO/IEC 7816-4 §11.6.1).
const GET_CHALLENGE: [u8; 5] = [0x00, 0x84, 0x00, 0x00, 0x08];
/// READ BINARY, P1 = 1000 0000 | SFI 16 (the simulator's large EF), offset
/// 0, Le 255 (ISO/IEC 7816-4 §11.2.3).
const READ_BINARY_255: [u8; 5] = [0x00, 0xB0, 0x90, 0x00, 0xFF];

fn select_demo_df() -> Vec<u8> {
    // SELECT by DF name, P2 0C: no response data (ISO/IEC 7816-4 §11.2.2).
    let mut apdu = vec![0x00, 0xA4, 0x04, 0x0C, DEMO_AID.len() as u8];
    apdu.extend_from_slice(DEMO_AID);
    apdu
}

/// The answer a correct exchange returns: `len` bytes, then 90 00.
fn check_answer(apdu: &[u8], answer: &[u8]) {
    assert_eq!(
        &answer[answer.len() - 2..],
        &[0x90, 0x00],
        "SW of {apdu:02X?}"
    );
    if apdu == READ_BINARY_255 {
        let expected: Vec<u8> = (0..255).map(large_ef_byte).collect();
        assert_eq!(&answer[..255], &expected[..], "READ BINARY data");
    } else {
        assert_eq!(answer.len(), 10, "GET CHALLENGE answers 8 bytes + SW");
    }
}

fn bench_level(
    h: &mut Harness,
    level: &str,
    profile: &str,
    preference: ProtocolPreference,
    expected_protocol: u8,
) {
    for (what, apdu) in [
        ("GET CHALLENGE", GET_CHALLENGE),
        ("READ BINARY 255", READ_BINARY_255),
    ] {
        let name = format!("reader/{level} {what}");
        if !h.selected(&name) {
            continue;
        }
        let (inner, _handle) = SimTransport::open(instant_profile(profile));
        let tap = Arc::new(Tap::new(Arc::new(inner), Recording::default()));
        let reader = Reader::open(tap.clone()).expect("reader opens");
        let slot = reader.slot(0).expect("slot 0");
        slot.power_on().expect("power on");
        let protocol = slot.set_protocol(preference).expect("protocol");
        assert_eq!(protocol, expected_protocol, "{name}: protocol");
        let mut resp = vec![0u8; 258];
        let n = slot.transmit(&select_demo_df(), &mut resp).expect("SELECT");
        assert_eq!(&resp[..n], &[0x90, 0x00], "{name}: SELECT");

        // Record the frames of two consecutive APDUs: two, because T=1
        // sequence numbers alternate and the card must see them in order.
        let mut frames: [Vec<Vec<u8>>; 2] = Default::default();
        for group in &mut frames {
            tap.hooks().on.store(true, Ordering::Relaxed);
            let n = slot.transmit(&apdu, &mut resp).expect("transmit");
            tap.hooks().on.store(false, Ordering::Relaxed);
            check_answer(&apdu, &resp[..n]);
            *group = std::mem::take(&mut *tap.hooks().sent.lock().unwrap());
            assert!(!group.is_empty(), "{name}: the reader sent nothing");
        }
        let answer_len = if apdu == READ_BINARY_255 { 257 } else { 10 };
        let mut rx = vec![0u8; 10 + 4096];
        let mut parity = 0usize;
        // Floor check: replaying gives DataBlocks, processed (bStatus 0).
        let floor = |rx: &mut [u8], parity: &mut usize| {
            for frame in &frames[*parity] {
                tap.bulk_out(frame, TIMEOUT).expect("bulk out");
                let n = tap.bulk_in(rx, TIMEOUT).expect("bulk in");
                assert!(
                    n >= 10 && rx[0] == 0x80 && rx[7] & 0xC0 == 0,
                    "floor answer"
                );
            }
            *parity ^= 1;
        };
        floor(&mut rx, &mut parity);
        floor(&mut rx, &mut parity);
        // The reader is still in step with the card after the replay.
        let n = slot.transmit(&apdu, &mut resp).expect("transmit");
        check_answer(&apdu, &resp[..n]);
        let n = slot.transmit(&apdu, &mut resp).expect("transmit");
        check_answer(&apdu, &resp[..n]);

        h.compare(
            &name,
            || floor(&mut rx, &mut parity),
            || {
                let n = slot.transmit(&apdu, &mut resp).expect("transmit");
                assert_eq!(n, answer_len);
            },
        );
    }
}

fn main() {
    let mut h = Harness::from_args("reader over the in-process simulator (src/reader)");
    bench_level(&mut h, "TPDU T=1", "tpdu", ProtocolPreference::T1, 1);
    bench_level(&mut h, "TPDU T=0", "tpdu", ProtocolPreference::T0, 0);
    bench_level(
        &mut h,
        "short APDU",
        "short-apdu",
        ProtocolPreference::Any,
        0,
    );
    bench_level(
        &mut h,
        "extended APDU",
        "extended-apdu",
        ProtocolPreference::Any,
        0,
    );
    h.finish();
}
