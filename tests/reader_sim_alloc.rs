//! No heap allocation per APDU in steady state, over the simulated reader.
//!
//! Like `reader_alloc.rs` (scripted transport), a counting global allocator
//! counts allocations made on the calling thread while a thread-local flag
//! is on, around 1000 `Slot::transmit` calls at TPDU level with T=1.
//!
//! How the count stays honest: the simulator is a device model, not part of
//! the driver, and it allocates freely (each answer frame is a `Vec`, the
//! virtual card builds its response blocks). It runs on the calling thread,
//! inside `Transport::bulk_out` / `bulk_in`. The [`outside`] wrapper around
//! the [`SimTransport`] turns counting off for exactly the duration of each
//! call into the simulator and back on when it returns, so everything
//! ferroccid's reader logic does (framing, T=1 engine, bSeq checks, the
//! copy out of the receive buffer) is counted, and nothing the simulated
//! device does is. No tracing subscriber is installed, as in a production
//! process with logging off; no other test shares this binary.

#[path = "reader_sim_support.rs"]
mod support;

use std::cell::Cell;
use std::sync::Arc;

use ferroccid::{ProtocolPreference, Reader};
use ferroccid_sim::card::fs::TEXT_2F00;
use ferroccid_sim::card::CardConfig;
use ferroccid_sim::SimTransport;
use support::*;

#[path = "sim_alloc_support/mod.rs"]
mod sim_alloc;
use sim_alloc::*;

const APDUS: usize = 1000;

#[test]
fn no_allocation_per_apdu_at_tpdu_t1_over_the_simulator() {
    let (transport, handle) = SimTransport::open(profile_with("tpdu-t1", Some(CardConfig::t1())));
    let reader = Reader::open(Arc::new(outside(transport))).unwrap();
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    assert_eq!(slot.set_protocol(ProtocolPreference::T1).unwrap(), 1);
    assert_eq!(card_state(&handle, 0).0, 1);
    let select = short([0x00, 0xA4, 0x00, 0x0C], &[0x2F, 0x00], None);
    let read = short([0x00, 0xB0, 0x00, 0x00], &[], Some(TEXT_2F00.len() as u8));
    let mut expected = TEXT_2F00.to_vec();
    expected.extend_from_slice(&[0x90, 0x00]);
    let mut response = [0u8; SHORT_RESPONSE];
    // Warm-up: the first exchanges may size lazily-built state.
    for _ in 0..3 {
        slot.transmit(&select, &mut response).unwrap();
        slot.transmit(&read, &mut response).unwrap();
    }
    let mut ok = 0usize;
    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    for _ in 0..APDUS {
        if let Ok(n) = slot.transmit(&read, &mut response) {
            if response[..n] == expected[..] {
                ok += 1;
            }
        }
    }
    COUNTING.with(|c| c.set(false));
    let allocations = COUNT.with(Cell::get);
    assert_eq!(ok, APDUS, "every READ BINARY answered correctly");
    assert_eq!(
        allocations, 0,
        "reader logic allocated {allocations} times over {APDUS} APDUs"
    );
    // The counter works: an allocation outside the simulator is seen.
    COUNTING.with(|c| c.set(true));
    let v = std::hint::black_box(vec![1u8; 16]);
    COUNTING.with(|c| c.set(false));
    drop(v);
    assert_eq!(COUNT.with(Cell::get), 1, "the counting allocator counts");
}
