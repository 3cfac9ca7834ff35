//! No heap allocation per APDU in steady state.
//!
//! How the count is made honest: a counting `#[global_allocator]` counts
//! every `alloc`/`alloc_zeroed`/`realloc` made *on the calling thread*
//! while a thread-local flag is set, and the flag is set only around the
//! 1000 `Slot::transmit` calls of each level. The scripted transport runs
//! on that same thread (the reader has no threads of its own on this path:
//! a single slot reads bulk-IN itself), so its work is counted too; it was
//! built for this: the whole script (every expected frame and canned
//! answer) is created before counting starts, recording of sent frames is
//! off, and matching a frame or copying an answer allocates nothing.
//! Dropping consumed script steps frees memory, which is not counted. No
//! tracing subscriber is installed, as in a production process with
//! logging off. Only this one test lives in this binary so that no other
//! test thread's activity can be mistaken for ours (and the thread-local
//! flag rules that out anyway).

#[path = "reader_support/mod.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use ferroccid::testing::ScriptedTransport;
use ferroccid::{ProtocolPreference, Slot};
use support::*;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // try_with: the allocator may run during thread teardown.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
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

const APDUS: usize = 1000;

/// Allocations made by `f` on this thread.
fn count(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    COUNT.with(|c| c.get())
}

fn run(slot: &Slot, apdu: &[u8], expected: &[u8]) -> usize {
    let mut resp = [0u8; 258];
    let mut ok = 0usize;
    let allocations = count(|| {
        for _ in 0..APDUS {
            if let Ok(n) = slot.transmit(apdu, &mut resp) {
                if &resp[..n] == expected {
                    ok += 1;
                }
            }
        }
    });
    assert_eq!(
        ok, APDUS,
        "every APDU must succeed for the count to mean anything"
    );
    allocations
}

fn seq(i: usize) -> u8 {
    (i % 256) as u8
}

#[test]
fn no_allocation_per_apdu_at_tpdu_t1_tpdu_t0_and_short_apdu() {
    // The counter sees allocations on this thread (else 0 proves nothing).
    let probe = count(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(16))));
    assert_eq!(probe, 1, "the counting allocator does not count");

    let apdu = [0x00, 0xB0, 0x00, 0x00, 0x02];
    let answer = [0xCA, 0xFE, 0x90, 0x00];

    // TPDU, T=1: setup uses bSeq 0-2; APDU i is bSeq 3 + i, N(S) alternating.
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU).bytes())).record_sent(false);
    let mut t = script_t1_setup(script_power_on(t, 0, &ATR_T1), 1);
    for i in 0..APDUS {
        let pcb = if i % 2 == 0 { 0x00 } else { 0x40 };
        t = t
            .expect_out(&xfr(0, seq(3 + i), 0, 0, &t1_block(pcb, &apdu)))
            .reply(&data_block(0, seq(3 + i), 0, &t1_block(pcb, &answer)));
    }
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::T1).unwrap();
    let t1 = run(&slot, &apdu, &answer);
    t.assert_done();

    // TPDU, T=0: setup bSeq 0-1.
    let t = ScriptedTransport::new(Some(&Desc::new(TPDU).bytes())).record_sent(false);
    let mut t = script_power_on(t, 0, &ATR_T0)
        .expect_out(&set_parameters(0, 1, 0, &T0_PARAMS))
        .reply(&parameters(0, 1, 0, &T0_PARAMS));
    for i in 0..APDUS {
        t = t
            .expect_out(&xfr(0, seq(2 + i), 0, 0, &apdu))
            .reply(&data_block(0, seq(2 + i), 0, &answer));
    }
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::T0).unwrap();
    let t0 = run(&slot, &apdu, &answer);
    t.assert_done();

    // Short APDU level: setup bSeq 0-1.
    let t = ScriptedTransport::new(Some(&Desc::new(SHORT_APDU).bytes())).record_sent(false);
    let mut t = script_power_on(t, 0, &ATR_T1)
        .expect_out(&set_parameters(0, 1, 1, &T1_PARAMS))
        .reply(&parameters(0, 1, 1, &T1_PARAMS));
    for i in 0..APDUS {
        t = t
            .expect_out(&xfr(0, seq(2 + i), 0, 0, &apdu))
            .reply(&data_block(0, seq(2 + i), 0, &answer));
    }
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::Any).unwrap();
    let short = run(&slot, &apdu, &answer);
    t.assert_done();

    assert_eq!(
        (t1, t0, short),
        (0, 0, 0),
        "allocations over {APDUS} APDUs (TPDU T=1, TPDU T=0, short APDU)"
    );
}
