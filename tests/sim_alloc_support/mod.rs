//! A counting global allocator that leaves the simulated device out, shared
//! by the allocation tests that run the driver over the simulator
//! (`reader_sim_alloc.rs`, `ifd_alloc.rs`).
//!
//! The simulator is a device model, not part of the driver: it allocates
//! freely and runs on the calling thread inside `Transport::bulk_out` /
//! `bulk_in`. [`outside`] wraps the [`SimTransport`] and turns counting off
//! for exactly the duration of each call into the simulator, so everything
//! the driver does is counted and nothing the simulated device does is.
//! Including this module installs the allocator in that test binary.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use ferroccid::{Tap, TapHooks};
use ferroccid_sim::SimTransport;

/// The counting allocator: counts on the calling thread while [`COUNTING`] is on
/// and [`IN_SIM`] is off.
pub struct Counting;

thread_local! {
    /// Count allocations on this thread.
    pub static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// This thread is inside the simulated device: do not count.
    pub static IN_SIM: Cell<bool> = const { Cell::new(false) };
    /// Allocations counted on this thread.
    pub static COUNT: Cell<usize> = const { Cell::new(0) };
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
pub fn in_sim<R>(f: impl FnOnce() -> R) -> R {
    let before = IN_SIM.with(|s| s.replace(true));
    let r = f();
    IN_SIM.with(|s| s.set(before));
    r
}

/// [`Tap`] hooks that mark every call into the simulator as "device".
pub struct Outside;

impl TapHooks for Outside {
    fn around<R>(&self, call: impl FnOnce() -> R) -> R {
        in_sim(call)
    }
}

/// The simulator seen through a [`Tap`] with the [`Outside`] hooks.
pub fn outside(sim: SimTransport) -> Tap<Outside> {
    Tap::new(Arc::new(sim), Outside)
}
