//! No heap allocation per APDU in steady state, over the simulated reader.
//!
//! Like `reader_alloc.rs` (scripted transport), a counting global allocator
//! counts allocations made on the calling thread while a thread-local flag
//! is on, around 1000 `Slot::transmit` calls at TPDU level with T=1.
//!
//! How the count stays honest: the simulator is a device model, not part of
//! the driver, and it allocates freely (each answer frame is a `Vec`, the
//! virtual card builds its response blocks). It runs on the calling thread,
//! inside `Transport::bulk_out` / `bulk_in`. The [`Outside`] wrapper around
//! the [`SimTransport`] turns counting off for exactly the duration of each
//! call into the simulator and back on when it returns, so everything
//! ferroccid's reader logic does (framing, T=1 engine, bSeq checks, the
//! copy out of the receive buffer) is counted, and nothing the simulated
//! device does is. No tracing subscriber is installed, as in a production
//! process with logging off; no other test shares this binary.

#[path = "reader_sim_support.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use ferroccid::reader::{ProtocolPreference, Reader};
use ferroccid::sim::card::fs::TEXT_2F00;
use ferroccid::sim::card::CardConfig;
use ferroccid::transport::sim::SimTransport;
use ferroccid::transport::{Transport, TransportError, TransportInfo};
use support::*;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static IN_SIM: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // try_with: the allocator may run during thread teardown.
    let counting = COUNTING.try_with(Cell::get).unwrap_or(false);
    let in_sim = IN_SIM.try_with(Cell::get).unwrap_or(false);
    if counting && !in_sim {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` (a call into the simulator) with counting suspended.
fn in_sim<R>(f: impl FnOnce() -> R) -> R {
    let before = IN_SIM.with(|s| s.replace(true));
    let r = f();
    IN_SIM.with(|s| s.set(before));
    r
}

/// The simulator seen through a wrapper that marks its calls as "device".
struct Outside(SimTransport);

impl Transport for Outside {
    fn info(&self) -> &TransportInfo {
        self.0.info()
    }
    fn bulk_out(&self, message: &[u8], timeout: Duration) -> Result<(), TransportError> {
        in_sim(|| self.0.bulk_out(message, timeout))
    }
    fn bulk_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        in_sim(|| self.0.bulk_in(buf, timeout))
    }
    fn interrupt_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        in_sim(|| self.0.interrupt_in(buf, timeout))
    }
    fn control_in(
        &self,
        request: u8,
        value: u16,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        in_sim(|| self.0.control_in(request, value, buf, timeout))
    }
    fn control_out(
        &self,
        request: u8,
        value: u16,
        data: &[u8],
        timeout: Duration,
    ) -> Result<(), TransportError> {
        in_sim(|| self.0.control_out(request, value, data, timeout))
    }
    fn cancel(&self) {
        in_sim(|| self.0.cancel())
    }
    fn reset_cancel(&self) {
        in_sim(|| self.0.reset_cancel())
    }
}

const APDUS: usize = 1000;

#[test]
fn no_allocation_per_apdu_at_tpdu_t1_over_the_simulator() {
    let (transport, handle) = SimTransport::open(profile_with("tpdu-t1", Some(CardConfig::t1())));
    let reader = Reader::open(Arc::new(Outside(transport))).unwrap();
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
