//! Cancellation shared by every backend.
//!
//! A [`CancelToken`] is a sticky flag plus the wakers of the threads
//! currently blocked on it. [`CancelToken::wait_for`] drives a poll
//! function (for example nusb's `poll_next_complete`) on the calling
//! thread, parking between polls; the waker unparks the thread, so both a
//! transfer completion and a [`cancel`](CancelToken::cancel) from another
//! thread end the wait at once, without a polling interval.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// A sticky, shareable cancellation flag that wakes blocked waiters.
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    next_id: AtomicU64,
    waiters: Mutex<Vec<(u64, Waker)>>,
}

/// How a [`CancelToken::wait_for`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitOutcome<T> {
    /// The poll function produced a value.
    Ready(T),
    /// The token was cancelled first.
    Cancelled,
    /// The timeout passed first.
    TimedOut,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag and wakes every thread blocked in
    /// [`wait_for`](Self::wait_for) or [`sleep`](Self::sleep).
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        let waiters = self
            .inner
            .waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (_, waker) in waiters.iter() {
            waker.wake_by_ref();
        }
    }

    /// Clears the flag; waits started afterwards block again.
    pub fn reset(&self) {
        self.inner.cancelled.store(false, Ordering::SeqCst);
    }

    /// Whether [`cancel`](Self::cancel) was called since the last reset.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Calls `poll` on this thread until it is ready, the token is
    /// cancelled, or `timeout` passes, parking in between.
    ///
    /// A ready value wins over cancellation and timeout, so data that has
    /// already arrived is never dropped in favour of `Cancelled`.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        mut poll: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> WaitOutcome<T> {
        // An unrepresentable deadline means "wait as long as it takes".
        let deadline = Instant::now().checked_add(timeout);
        let waker = current_thread_waker();
        let _registration = self.register(&waker);
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(value) = poll(&mut cx) {
                return WaitOutcome::Ready(value);
            }
            if self.is_cancelled() {
                return WaitOutcome::Cancelled;
            }
            match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return WaitOutcome::TimedOut;
                    }
                    thread::park_timeout(deadline - now);
                }
                None => thread::park(),
            }
        }
    }

    /// Blocks for `timeout` or until cancelled; returns `true` if cancelled.
    ///
    /// Backends without an asynchronous API (the rusb one) sleep between
    /// short blocking transfers with this.
    pub fn sleep(&self, timeout: Duration) -> bool {
        matches!(
            self.wait_for(timeout, |_| Poll::<()>::Pending),
            WaitOutcome::Cancelled
        )
    }

    fn register(&self, waker: &Waker) -> Registration<'_> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner
            .waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, waker.clone()));
        Registration { token: self, id }
    }
}

/// Removes a waiter from the token when its wait ends.
struct Registration<'a> {
    token: &'a CancelToken,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut waiters = self
            .token
            .inner
            .waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        waiters.retain(|(id, _)| *id != self.id);
    }
}

/// Unparks one thread: the waker behind every [`CancelToken::wait_for`].
struct ThreadWake(Thread);

impl Wake for ThreadWake {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    /// One waker per thread, built once, so steady-state waits allocate
    /// nothing.
    static THREAD_WAKER: Waker = Waker::from(Arc::new(ThreadWake(thread::current())));
}

fn current_thread_waker() -> Waker {
    THREAD_WAKER.with(Waker::clone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn ready_value_is_returned_without_waiting() {
        let token = CancelToken::new();
        let started = Instant::now();
        let outcome = token.wait_for(Duration::from_secs(10), |_| Poll::Ready(7));
        assert_eq!(outcome, WaitOutcome::Ready(7));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn waiters_are_deregistered_after_each_wait() {
        let token = CancelToken::new();
        token.sleep(Duration::from_millis(1));
        token.sleep(Duration::from_millis(1));
        assert!(token.inner.waiters.lock().unwrap().is_empty());
    }

    #[test]
    fn wake_from_another_thread_repolls() {
        let token = CancelToken::new();
        let polls = Arc::new(AtomicUsize::new(0));
        let flag = Arc::new(AtomicBool::new(false));
        let flag2 = flag.clone();
        let waker_slot: Arc<Mutex<Option<Waker>>> = Arc::default();
        let slot2 = waker_slot.clone();
        let setter = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            flag2.store(true, Ordering::SeqCst);
            if let Some(w) = slot2.lock().unwrap().take() {
                w.wake();
            }
        });
        let started = Instant::now();
        let outcome = token.wait_for(Duration::from_secs(10), |cx| {
            polls.fetch_add(1, Ordering::SeqCst);
            *waker_slot.lock().unwrap() = Some(cx.waker().clone());
            if flag.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        setter.join().unwrap();
        assert_eq!(outcome, WaitOutcome::Ready(()));
        assert!(started.elapsed() < Duration::from_secs(5));
        // Woken, not spun: a handful of polls, not thousands.
        assert!(polls.load(Ordering::SeqCst) < 10);
    }
}
