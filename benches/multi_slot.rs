//! Several slots of one reader at once: the `4-slot` simulator profile
//! (sysmoOCTSIM cut to 4 slots, bMaxCCIDBusySlots 4, TPDU level, T=0 cards)
//! with zero simulated latency.
//!
//! Baseline: one thread sends GET CHALLENGE to the 4 slots in turn.
//! Subject: 4 threads, one per slot, sending the same total number of
//! APDUs. The figure is the throughput ratio (APDUs per second with 4
//! threads ÷ with 1 thread). With no simulated latency this measures how
//! well the CPU work of the reader and simulator spreads over the cores
//! (the machine's core count bounds it); it is not a latency-hiding figure.

mod support;

use std::time::Duration;

use ferroccid::{ProtocolPreference, Reader, Slot};
use ferroccid_sim::profile::Profile;
use ferroccid_sim::SimTransport;
use support::{Harness, Reading};

const SLOTS: usize = 4;
/// GET CHALLENGE, Le 8 (ISO/IEC 7816-4 §11.6.1): 8 bytes and 90 00 back.
const GET_CHALLENGE: [u8; 5] = [0x00, 0x84, 0x00, 0x00, 0x08];

fn get_challenge(slot: &Slot, resp: &mut [u8]) {
    let n = slot.transmit(&GET_CHALLENGE, resp).expect("transmit");
    assert!(
        n == 10 && resp[8..10] == [0x90, 0x00],
        "GET CHALLENGE answer"
    );
}

fn main() {
    let mut h = Harness::from_args("several slots at once (src/reader)")
        // Each subject sample starts 4 threads: long samples make that
        // fixed cost (tens of µs) negligible.
        .with_samples(Duration::from_millis(60), 15);
    let name = "multi-slot/4 slots × 4 threads vs 1 thread";
    if h.selected(name) {
        let mut profile = Profile::from_name("4-slot").expect("built-in profile");
        profile.exchange_latency = Duration::ZERO;
        profile.time_extensions = 0;
        assert_eq!(profile.slot_count(), SLOTS);
        let (transport, _handle) = SimTransport::open(profile);
        let reader = Reader::open(std::sync::Arc::new(transport)).expect("reader opens");
        let slots: Vec<Slot> = (0..SLOTS)
            .map(|i| {
                let slot = reader.slot(i).expect("slot");
                slot.power_on().expect("power on");
                assert_eq!(slot.set_protocol(ProtocolPreference::Any).unwrap(), 0);
                slot
            })
            .collect();
        let mut resp = [0u8; 258];
        for slot in &slots {
            get_challenge(slot, &mut resp);
        }
        h.compare_batched(
            name,
            Reading::Speedup,
            |n| {
                for i in 0..n as usize {
                    get_challenge(&slots[i % SLOTS], &mut resp);
                }
            },
            |n| {
                let n = n as usize;
                std::thread::scope(|scope| {
                    for (i, slot) in slots.iter().enumerate() {
                        // Thread i takes its share of the n APDUs.
                        let share = n / SLOTS + usize::from(i < n % SLOTS);
                        scope.spawn(move || {
                            let mut resp = [0u8; 258];
                            for _ in 0..share {
                                get_challenge(slot, &mut resp);
                            }
                        });
                    }
                });
            },
        );
    }
    h.finish();
}
