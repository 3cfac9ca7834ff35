//! The synchronisation primitives of the receive dispatch (`link`): std's
//! in a normal build, loom's when built with `--cfg ferroccid_loom`, so
//! that the model tests in `link` explore every interleaving of the
//! mailbox, busy-slot permit and receive-turn logic
//! (`RUSTFLAGS="--cfg ferroccid_loom" cargo test --release --lib loom`).

#[cfg(ferroccid_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicU16, AtomicU8, AtomicUsize},
    Condvar, Mutex, MutexGuard,
};
#[cfg(not(ferroccid_loom))]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicU16, AtomicU8, AtomicUsize},
    Condvar, Mutex, MutexGuard,
};

/// Locks a mutex, ignoring poisoning: the data behind these mutexes stays
/// consistent even if a holder panicked (buffers and counters only).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
