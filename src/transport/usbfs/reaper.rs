//! The event loop: how a thread waits for its IN endpoint's URB, and the
//! reaper role that decides which waiting thread watches the usbfs fd.
//!
//! Each IN endpoint waits in `epoll_wait` on its own poller (its wake
//! eventfd, the transport's cancel eventfd, and the usbfs fd only while it
//! is the reaper); [`ReapState`] says who holds the role and records URBs
//! reaped on another endpoint's behalf. The eventfd and epoll system calls
//! live here too: they exist for the wait (the transport also uses the
//! eventfd helpers for its cancel flag).
//!
//! The waiting methods are on [`UsbfsTransport`], whose fd, pipes and
//! flags they use; the transfer path in `mod.rs` calls `prepare_wait`
//! before it submits a URB, then `wait`, and `give_up_wait` if the submit
//! fails.

use std::ffi::{c_int, c_void};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::abi::{self, errno, ioctl};
use super::{lock, InPipe, UsbfsTransport};
use crate::transport::TransportError;

/// Which IN endpoint a URB belongs to: the index into [`ReapState`].
pub(super) const BULK_IN: usize = 0;
pub(super) const INTERRUPT_IN: usize = 1;

/// Who polls the usbfs fd, who waits, and completions reaped for another
/// endpoint's waiter.
///
/// usbfs has one completion queue per open file and wakes every poller of
/// the fd on each completion, so only one thread at a time — the *reaper* —
/// has the fd in its epoll set; the other waiter sleeps on its own wake
/// eventfd (and the cancel eventfd). Otherwise the reader's event thread,
/// parked in `interrupt_in`, wakes on every bulk-IN completion and mostly
/// reaps it before the transmitting thread does (`benches/VM.md`). The role
/// moves by `epoll_ctl` on the two pollers, which wakes nobody: a role
/// change costs no context switch (toggling a `poll()` set would cost two
/// per APDU, measured worse than the stealing it avoids).
///
/// Invariant (all fields, and the pollers' usbfs-fd membership, change only
/// under the mutex):
/// - `reaper` is `Some(p)` iff some endpoint is waiting, and then
///   `waiting[p]`; the usbfs fd is in at most one poller (`fd_home`), and
///   in `p`'s when `reaper == Some(p)`, so no waiter but the reaper ever
///   has it; only the reaper calls `USBDEVFS_REAPURBNDELAY`.
/// - bulk-IN takes the role from interrupt-IN when it starts waiting (the
///   transmit path is the one whose latency counts).
/// - a reaper that stops waiting (own URB reaped, cancel, timeout, gone)
///   hands the role to the other waiter, if any.
/// - a reaped URB of the other endpoint sets `done[other]`, then its
///   eventfd is written; only the owner clears `done`.
///
/// No wake-up is lost: every state change precedes the eventfd write or
/// `epoll_ctl` that announces it, a waiter re-reads the state under the
/// mutex after every `epoll_wait` (having drained its eventfd first), and
/// everything is level-triggered: an eventfd write, or a completion already
/// queued when the usbfs fd joins a poller, ends that poller's current or
/// next `epoll_wait` at once. A thread that wakes for the fd after losing
/// the role finds it is not the reaper and reaps nothing.
#[derive(Default)]
pub(super) struct ReapState {
    done: [bool; 2],
    waiting: [bool; 2],
    reaper: Option<usize>,
    /// The poller holding the usbfs fd: the reaper's, or with no reaper
    /// the last one's (left there, so a thread transferring alone costs no
    /// `epoll_ctl`).
    fd_home: Option<usize>,
}

/// The other IN endpoint's index.
fn other_endpoint(which: usize) -> usize {
    if which == BULK_IN {
        INTERRUPT_IN
    } else {
        BULK_IN
    }
}

/// How waiting for a URB ended.
pub(super) enum Waited {
    Reaped,
    Cancelled,
    TimedOut,
    Gone,
}

/// A fresh non-blocking eventfd.
pub(super) fn eventfd() -> Result<OwnedFd, TransportError> {
    // SAFETY: eventfd has no pointer arguments.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(TransportError::io(
            "creating an eventfd",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes an eventfd readable (it stays so until drained).
pub(super) fn signal(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to an eventfd we own; a full
    // counter (EAGAIN) already means "signalled".
    unsafe { libc::write(fd.as_raw_fd(), (&raw const one).cast(), 8) };
}

/// Resets an eventfd to not readable.
pub(super) fn drain(fd: &OwnedFd) {
    let mut value: u64 = 0;
    // SAFETY: reads at most 8 bytes into a live u64; the fd is non-blocking.
    unsafe { libc::read(fd.as_raw_fd(), (&raw mut value).cast(), 8) };
}

/// What woke an `epoll_wait` on an endpoint's poller.
const TOKEN_USB: u64 = 0;
const TOKEN_WAKE: u64 = 1;
const TOKEN_CANCEL: u64 = 2;

/// One `epoll_ctl`; failure is logged (it only happens on a bug here or
/// resource exhaustion, and the waiter's timeout still bounds the wait).
fn epoll_ctl(poller: &OwnedFd, op: c_int, fd: RawFd, events: u32, token: u64) {
    let mut event = libc::epoll_event { events, u64: token };
    // SAFETY: `event` is a live epoll_event; the kernel validates the fds.
    let rc = unsafe { libc::epoll_ctl(poller.as_raw_fd(), op, fd, &raw mut event) };
    if rc < 0 {
        tracing::warn!(
            op,
            errno = errno(),
            "epoll_ctl on an endpoint poller failed"
        );
    }
}

/// An endpoint's poller watching its `wake` and the transport's `cancel`.
pub(super) fn poller(wake: &OwnedFd, cancel: &OwnedFd) -> Result<OwnedFd, TransportError> {
    // SAFETY: epoll_create1 has no pointer arguments.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(TransportError::io(
            "creating an epoll instance",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: `fd` was just returned by epoll_create1 and is owned by nobody else.
    let poller = unsafe { OwnedFd::from_raw_fd(fd) };
    let readable = libc::EPOLLIN as u32;
    epoll_ctl(
        &poller,
        libc::EPOLL_CTL_ADD,
        wake.as_raw_fd(),
        readable,
        TOKEN_WAKE,
    );
    epoll_ctl(
        &poller,
        libc::EPOLL_CTL_ADD,
        cancel.as_raw_fd(),
        readable,
        TOKEN_CANCEL,
    );
    Ok(poller)
}

impl UsbfsTransport {
    fn pipe(&self, which: usize) -> Option<&InPipe> {
        match which {
            BULK_IN => Some(&self.bulk_in),
            _ => self.interrupt_in.as_ref(),
        }
    }

    /// Starts (or resumes) waiting for `mine`'s URB: `Some(Reaped)` when
    /// the other thread already reaped it, else whether this thread is the
    /// reaper for its next `epoll_wait`.
    fn enter_wait(&self, mine: &InPipe) -> Result<bool, Waited> {
        let mut state = lock(&self.reaped);
        if std::mem::take(&mut state.done[mine.which]) {
            self.leave_wait(&mut state, mine.which);
            return Err(Waited::Reaped);
        }
        self.join_wait(&mut state, mine.which);
        Ok(state.reaper == Some(mine.which))
    }

    /// Marks `which` as waiting and gives it the reaper role if it is free
    /// or bulk-IN claims it.
    fn join_wait(&self, state: &mut ReapState, which: usize) {
        state.waiting[which] = true;
        match state.reaper {
            None => self.set_reaper(state, Some(which)),
            Some(INTERRUPT_IN) if which == BULK_IN => self.set_reaper(state, Some(BULK_IN)),
            Some(_) => {}
        }
    }

    /// Joins the waiters *before* submitting a URB: bulk-IN takes the fd
    /// away from the event thread's poller before its URB can complete, so
    /// a fast completion cannot wake that thread either.
    pub(super) fn prepare_wait(&self, mine: &InPipe) {
        let mut state = lock(&self.reaped);
        // This endpoint has no URB in flight: a completion flag is stale.
        state.done[mine.which] = false;
        self.join_wait(&mut state, mine.which);
    }

    /// Moves the reaper role, and the usbfs fd with it, between pollers.
    fn set_reaper(&self, state: &mut ReapState, next: Option<usize>) {
        state.reaper = next;
        let Some(next) = next else {
            // The fd stays where it is: nobody waits on that poller, and a
            // lone thread taking the role again finds it already there.
            return;
        };
        if state.fd_home == Some(next) {
            return;
        }
        if let Some(old) = state.fd_home.and_then(|p| self.pipe(p)) {
            epoll_ctl(
                &old.poller,
                libc::EPOLL_CTL_DEL,
                self.fd.as_raw_fd(),
                0,
                TOKEN_USB,
            );
        }
        if let Some(new) = self.pipe(next) {
            let events = (libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP) as u32;
            epoll_ctl(
                &new.poller,
                libc::EPOLL_CTL_ADD,
                self.fd.as_raw_fd(),
                events,
                TOKEN_USB,
            );
        }
        state.fd_home = Some(next);
    }

    /// Stops waiting on `which`; a reaper hands its role on.
    fn leave_wait(&self, state: &mut ReapState, which: usize) {
        state.waiting[which] = false;
        if state.reaper == Some(which) {
            let other = other_endpoint(which);
            // No write to its eventfd: a completion already queued makes
            // its poller ready the moment the fd joins it.
            self.set_reaper(state, state.waiting[other].then_some(other));
        }
    }

    /// Ends a wait that did not reap (cancel, timeout).
    pub(super) fn give_up_wait(&self, mine: &InPipe, why: Waited) -> Waited {
        let mut state = lock(&self.reaped);
        self.leave_wait(&mut state, mine.which);
        why
    }

    /// As the reaper: reaps completed URBs until `mine` is among them or
    /// none is left; the other endpoint's URB is recorded and its owner
    /// woken. Not the reaper (any more): reaps nothing.
    fn reap(&self, mine: &InPipe) -> Option<Waited> {
        let mut state = lock(&self.reaped);
        loop {
            if std::mem::take(&mut state.done[mine.which]) {
                self.leave_wait(&mut state, mine.which);
                return Some(Waited::Reaped);
            }
            if state.reaper != Some(mine.which) {
                return None;
            }
            let mut reaped: *mut c_void = std::ptr::null_mut();
            match ioctl(
                self.fd.as_raw_fd(),
                abi::USBDEVFS_REAPURBNDELAY,
                (&raw mut reaped).cast(),
            ) {
                Ok(_) => {
                    let address = reaped as usize;
                    for which in [BULK_IN, INTERRUPT_IN] {
                        if let Some(pipe) = self.pipe(which) {
                            if pipe.urb_address.load(Ordering::SeqCst) == address {
                                state.done[which] = true;
                                if which != mine.which {
                                    signal(&pipe.wake);
                                }
                            }
                        }
                    }
                    // Anything else is an abandoned URB coming back late.
                }
                Err(libc::EAGAIN) => return None,
                Err(libc::EINTR) => {}
                // The queue is empty and the device is gone: nothing of
                // ours is in flight any more.
                Err(libc::ENODEV) => {
                    self.leave_wait(&mut state, mine.which);
                    drop(state);
                    self.mark_gone();
                    return Some(Waited::Gone);
                }
                Err(e) => {
                    tracing::warn!(errno = e, "USBDEVFS_REAPURBNDELAY failed");
                    return None;
                }
            }
        }
    }

    /// Waits for `pipe`'s URB to be reaped (by this thread or another),
    /// the deadline, or a cancel when `cancellable`. Only the reaper (see
    /// [`ReapState`]) watches the usbfs fd.
    pub(super) fn wait(
        &self,
        pipe: &InPipe,
        deadline: Option<Instant>,
        cancellable: bool,
    ) -> Waited {
        if cancellable {
            return self.wait_events(pipe, deadline, true);
        }
        // The cancel eventfd stays readable until reset_cancel: mute it,
        // or a wait that must ignore it would spin.
        let cancel = self.cancel_fd.as_raw_fd();
        epoll_ctl(&pipe.poller, libc::EPOLL_CTL_MOD, cancel, 0, TOKEN_CANCEL);
        let outcome = self.wait_events(pipe, deadline, false);
        let readable = libc::EPOLLIN as u32;
        epoll_ctl(
            &pipe.poller,
            libc::EPOLL_CTL_MOD,
            cancel,
            readable,
            TOKEN_CANCEL,
        );
        outcome
    }

    fn wait_events(&self, pipe: &InPipe, deadline: Option<Instant>, cancellable: bool) -> Waited {
        loop {
            if let Err(outcome) = self.enter_wait(pipe) {
                return outcome;
            }
            let timeout_ms = match deadline {
                None => -1,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    // Round up: epoll_wait must not return before the deadline.
                    c_int::try_from(left.as_micros().div_ceil(1000)).unwrap_or(c_int::MAX)
                }
            };
            let mut events = [libc::epoll_event { events: 0, u64: 0 }; 3];
            // SAFETY: `events` is a live array of 3 epoll_events.
            let ready = unsafe {
                libc::epoll_wait(pipe.poller.as_raw_fd(), events.as_mut_ptr(), 3, timeout_ms)
            };
            if ready < 0 && errno() != libc::EINTR {
                tracing::warn!(errno = errno(), "epoll_wait on usbfs failed");
            }
            let ready = usize::try_from(ready).unwrap_or(0).min(events.len());
            let (mut usb, mut woken) = (0u32, false);
            for event in &events[..ready] {
                match event.u64 {
                    TOKEN_USB => usb = event.events,
                    TOKEN_WAKE => woken = true,
                    _ => {}
                }
            }
            if woken {
                drain(&pipe.wake);
            }
            if usb != 0 || woken {
                if let Some(outcome) = self.reap(pipe) {
                    return outcome;
                }
            }
            if self.gone.load(Ordering::SeqCst) && usb & libc::EPOLLHUP as u32 != 0 {
                // Disconnected: reap said the queue is not empty yet, so
                // go round again to collect ours.
                continue;
            }
            if cancellable && self.cancelled.load(Ordering::SeqCst) {
                return self.give_up_wait(pipe, Waited::Cancelled);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return self.give_up_wait(pipe, Waited::TimedOut);
            }
        }
    }
}
