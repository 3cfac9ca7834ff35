//! The bulk pipe shared by every slot of one reader: sequence numbers, the
//! busy-slot semaphore, receive dispatch, time extensions, CMD_SLOT_BUSY
//! retries and the abort procedure.
//!
//! # Receiving with several slots
//!
//! Only one thread reads bulk-IN at a time (leader/follower). A slot that
//! waits for an answer first looks in its mailbox; if the receive turn is
//! free it takes it and reads. A frame for another slot is copied into that
//! slot's preallocated mailbox *before* the turn is given up (otherwise the
//! other slot could take the turn, find its mailbox still empty and wait on
//! bulk-IN for an answer that was already read); a frame for itself is
//! returned. Followers park on their mailbox condition variable and try to
//! become the leader whenever the current one gives the turn up.
//!
//! # Cost per exchange
//!
//! An embedded gateway runs many slots in one process, so the success path
//! makes no system call of its own: the busy-slot semaphore and the receive
//! turn are atomics with a mutex and condition variable only for threads
//! that really wait, a condition variable is notified only when a thread is
//! parked on it (std's futex condvar makes a syscall per notify, waiter or
//! not), a frame wakes only the slot it was posted to, and the clock is read
//! once per exchange (again after a wait, a time extension or a stale frame).
//!
//! # Allocation
//!
//! Nothing on the success path allocates: frames are emitted into and
//! received into the slot's buffers (sized from dwMaxCCIDMessageLength at
//! open), mailboxes are preallocated, and frame validation borrows. Errors
//! copy the offending frame (that is their point).

use std::sync::atomic::Ordering;
use std::sync::{MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::ccid::command::Command;
use crate::ccid::error::FrameBytes;
use crate::ccid::message::{frame_address, offset};
use crate::ccid::redact::{self, PinCommand};
use crate::ccid::status::SlotError;
use crate::ccid::trace::{self, trace_frame};
use crate::ccid::{
    validate_response, CcidError, ClassDescriptor, CommandRepr, Expectation, MessageType, Reply,
    HEADER_LEN,
};
use crate::transport::{Transport, TransportError, REQUEST_ABORT};

use super::error::ReaderError;
use super::quirks::Active;
use super::sync::{self, AtomicBool, AtomicU16, AtomicU8, AtomicUsize, Condvar, Mutex};
use super::ReaderOptions;

/// No slot holds the receive lock.
const NO_LEADER: u16 = u16::MAX;

/// Longest a follower sleeps before looking at the receive turn again; a
/// safety net, since the leader wakes parked followers when it gives the
/// turn up.
const FOLLOWER_NAP: Duration = Duration::from_millis(20);

/// Locks a mutex, ignoring poisoning: the data behind our mutexes stays
/// consistent even if a holder panicked (buffers and counters only).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long to wait for one answer: `margin + card × multiplier`, where
/// `card` is the card's own waiting time for this exchange and the
/// multiplier is 1, or the time-extension multiplier the reader asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wait {
    /// The reader's own latency allowance.
    pub margin: Duration,
    /// The card's waiting time (WWT, or BWT plus a block's transfer time).
    pub card: Duration,
}

impl Wait {
    /// The timeout for the next frame with time-extension `multiplier`
    /// (saturating: the command's budget clips it anyway).
    pub(crate) fn with_multiplier(self, multiplier: u8) -> Duration {
        self.card
            .checked_mul(u32::from(multiplier.max(1)))
            .and_then(|card| card.checked_add(self.margin))
            .unwrap_or(Duration::MAX)
    }

    /// When an answer to a command sent at `now` is due (no extension).
    pub(crate) fn deadline(self, now: Instant) -> Instant {
        far_deadline(now, self.with_multiplier(1))
    }
}

/// The header fields of a successful answer; the payload is
/// `rx[HEADER_LEN..HEADER_LEN + payload_len]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Answer {
    /// `bStatus`.
    pub status: u8,
    /// `bError`.
    pub error: u8,
    /// `bChainParameter` / `bClockStatus` / `bProtocolNum`.
    pub chain: u8,
    /// `dwLength`.
    pub payload_len: usize,
}

/// One slot's mailbox: a frame the leader received for it.
///
/// A frame is posted only while the slot has a command outstanding and
/// only if its bSeq is that command's (checked under this mailbox's lock,
/// which is also taken to start and end a command), so a late answer to an
/// earlier command can never be handed to a later one, even once the
/// reader-wide 8-bit bSeq has wrapped.
pub(crate) struct Mailbox {
    buf: Vec<u8>,
    len: Option<usize>,
    /// bSeq of the command the slot waits for, if any.
    expect: Option<u8>,
    /// A follower of this slot waits on `mail`: only then is it notified.
    /// Read and written under this lock only, so that parking and waking
    /// need nothing stronger than the mutex's own ordering (no SeqCst
    /// store-then-load handshake, which loom cannot check).
    parked: bool,
}

/// The per-slot part of the pipe.
pub(crate) struct SlotLink {
    pub index: u8,
    mailbox: Mutex<Mailbox>,
    /// Mirrors `mailbox.len.is_some()` (written under the mailbox lock), so
    /// that looking into an empty mailbox, the usual case, takes no lock.
    has_mail: AtomicBool,
    mail: Condvar,
    /// A cancel is pending: set by `Slot::cancel`, spent by the operation
    /// it ends or that was running when it came (see [`Operation`]).
    pub cancelled: AtomicBool,
    /// When the current command's budget runs out (see [`Budget`]); set by
    /// whoever holds the slot's state lock, read by every round.
    budget: Mutex<Budget>,
    /// The APDU exchange in progress carries a PIN: what a log may show of
    /// the frames sent for it (see [`crate::ccid::redact`]).
    pin: Mutex<Option<PinCommand>>,
}

/// Ends a PIN-carrying exchange's mark on its slot (see
/// [`SlotLink::begin_exchange`]); nothing to do for any other exchange.
pub(crate) struct PinScope<'a> {
    slot: Option<&'a SlotLink>,
}

impl Drop for PinScope<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            *sync::lock(&slot.pin) = None;
        }
    }
}

/// One command's wall-clock budget: every round of the command (each
/// answer awaited, time extensions, WTX, chaining, NULL bytes, busy
/// retries, ICCD polls) waits at most until `deadline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    /// When the command started.
    pub started: Instant,
    /// When it must have ended.
    pub deadline: Instant,
}

impl Budget {
    /// A budget of `allowed` from now (saturating: a huge value is a far
    /// deadline, not a panic).
    pub(crate) fn starting_now(allowed: Duration) -> Budget {
        let started = Instant::now();
        Budget {
            started,
            deadline: far_deadline(started, allowed),
        }
    }

    /// Time left at `now`, zero once spent.
    pub(crate) fn remaining(&self, now: Instant) -> Duration {
        self.deadline.saturating_duration_since(now)
    }

    /// The error for a spent budget.
    pub(crate) fn spent(&self) -> ReaderError {
        ReaderError::Timeout {
            waited: self.started.elapsed(),
        }
    }
}

/// `now + d`, or about a year from now if that overflows.
pub(crate) fn far_deadline(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

/// One user operation on a slot (power, status, protocol, transmit, PIN,
/// Escape), begun with [`SlotLink::begin_operation`] while the caller holds
/// the slot's state lock.
///
/// A cancel is never lost: one that comes while no operation runs makes
/// the next one fail with [`ReaderError::Cancelled`] before anything is
/// sent (as the transport's own cancel is sticky); one that comes while an
/// operation runs ends it, or is spent on it if it finishes first. Each
/// cancel ends at most one operation. Dropping the guard spends the cancel.
pub(crate) struct Operation<'a>(&'a SlotLink);

impl Drop for Operation<'_> {
    fn drop(&mut self) {
        self.0.cancelled.store(false, Ordering::SeqCst);
    }
}

impl SlotLink {
    pub(crate) fn new(index: u8, buffer_len: usize) -> Self {
        SlotLink {
            index,
            mailbox: Mutex::new(Mailbox {
                buf: vec![0; buffer_len],
                len: None,
                expect: None,
                parked: false,
            }),
            has_mail: AtomicBool::new(false),
            mail: Condvar::new(),
            cancelled: AtomicBool::new(false),
            budget: Mutex::new(Budget::starting_now(Duration::ZERO)),
            pin: Mutex::new(None),
        }
    }

    /// Marks the APDU exchange starting now as carrying a PIN if `apdu`
    /// does; the returned guard ends the mark.
    pub(crate) fn begin_exchange(&self, apdu: &[u8]) -> PinScope<'_> {
        let pin = PinCommand::of(apdu);
        if pin.is_some() {
            *sync::lock(&self.pin) = pin;
        }
        PinScope {
            slot: pin.map(|_| self),
        }
    }

    /// Logs `frame`, sent for this slot, masked as [`redact`] says.
    fn trace_sent(&self, frame: &[u8]) {
        if trace::enabled() {
            let shown = redact::loggable_len(frame, sync::lock(&self.pin).as_mut());
            trace_frame("send", frame, shown);
        }
    }

    /// Starts a command's budget of `allowed` (the caller holds the slot's
    /// state lock for the whole command).
    pub(crate) fn start_budget(&self, allowed: Duration) -> Budget {
        let budget = Budget::starting_now(allowed);
        *sync::lock(&self.budget) = budget;
        budget
    }

    /// The current command's budget.
    pub(crate) fn budget(&self) -> Budget {
        *sync::lock(&self.budget)
    }

    /// Starts waiting for the answer with bSeq `seq`: whatever the mailbox
    /// holds (a late frame of an earlier command) is dropped.
    fn expect(&self, seq: u8) {
        let mut mb = sync::lock(&self.mailbox);
        if mb.len.take().is_some() {
            tracing::debug!(slot = self.index, "stale frame in mailbox dropped");
        }
        mb.expect = Some(seq);
        self.has_mail.store(false, Ordering::SeqCst);
    }

    /// The command is over: no frame is posted until the next starts.
    fn expect_nothing(&self) {
        let mut mb = sync::lock(&self.mailbox);
        mb.len = None;
        mb.expect = None;
        self.has_mail.store(false, Ordering::SeqCst);
    }

    /// Starts an operation, or fails with [`ReaderError::Cancelled`] (and
    /// spends the cancel) when one is pending. The caller holds the slot's
    /// state lock until the guard is dropped.
    pub(crate) fn begin_operation(&self) -> Result<Operation<'_>, ReaderError> {
        if self.cancelled.swap(false, Ordering::SeqCst) {
            tracing::debug!(slot = self.index, "cancelled before it started");
            return Err(ReaderError::Cancelled);
        }
        Ok(Operation(self))
    }

    /// Wakes this slot's follower whether or not it is parked (cancel,
    /// unplug: rare, and the flag could be about to be set).
    fn wake(&self) {
        let _mb = sync::lock(&self.mailbox);
        self.mail.notify_all();
    }

    /// Wakes this slot's follower if it is parked: an uncontended lock,
    /// and no syscall when nobody waits.
    fn wake_if_parked(&self) {
        let mut mb = sync::lock(&self.mailbox);
        if std::mem::take(&mut mb.parked) {
            self.mail.notify_all();
        }
    }
}

/// A counting semaphore for bMaxCCIDBusySlots. Taking a permit is an
/// atomic operation; giving one back also takes the (uncontended) mutex to
/// see whether anyone waits, and notifies only then.
struct Semaphore {
    free: AtomicUsize,
    /// Threads in `Link::acquire_slow`, behind the lock they wait with.
    waiting: Mutex<usize>,
    cv: Condvar,
}

impl Semaphore {
    fn new(permits: usize) -> Semaphore {
        Semaphore {
            free: AtomicUsize::new(permits),
            waiting: Mutex::new(0),
            cv: Condvar::new(),
        }
    }

    fn try_take(&self) -> bool {
        let mut free = self.free.load(Ordering::SeqCst);
        while free > 0 {
            match self.free.compare_exchange_weak(
                free,
                free - 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(now) => free = now,
            }
        }
        false
    }

    /// Gives a permit back. A waiter counts itself and looks for a permit
    /// under the lock, and holds it until it sleeps; this adds the permit
    /// first and then looks at the count under the same lock. Either the
    /// waiter's look comes after this lock (and sees the permit) or its
    /// count comes before (and it is notified): no wake-up is lost, with
    /// nothing stronger than the mutex's ordering.
    fn release(&self) {
        self.free.fetch_add(1, Ordering::SeqCst);
        let waiting = sync::lock(&self.waiting);
        if *waiting > 0 {
            self.cv.notify_all();
        }
    }

    fn wake_all(&self) {
        let _guard = sync::lock(&self.waiting);
        self.cv.notify_all();
    }
}

/// The bulk pipe of one reader.
pub(crate) struct Link {
    pub transport: std::sync::Arc<dyn Transport>,
    pub descriptor: ClassDescriptor,
    pub options: ReaderOptions,
    pub quirks: Active,
    pub slots: Vec<SlotLink>,
    pub gone: std::sync::Arc<std::sync::atomic::AtomicBool>,
    seq: AtomicU8,
    busy: Semaphore,
    /// The receive turn: true while a leader reads bulk-IN (only ever
    /// tried, never waited for, so an atomic flag rather than a mutex).
    receiving: AtomicBool,
    leader: AtomicU16,
}

/// Releases a busy-slot permit on drop.
pub(crate) struct Permit<'a>(&'a Link);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.busy.release();
    }
}

/// The receive turn of one leader; giving it up (on drop, so a panic in a
/// transport gives it up too) wakes the parked followers, one of which
/// becomes the next leader.
struct ReceiveTurn<'a> {
    link: &'a Link,
    slot: u8,
}

impl Drop for ReceiveTurn<'_> {
    fn drop(&mut self) {
        let link = self.link;
        link.leader.store(NO_LEADER, Ordering::SeqCst);
        // Cleared before each follower's mailbox lock is taken to look at
        // `parked` (see `park`): a follower that looks after that lock sees
        // `receiving` false and does not sleep.
        link.receiving.store(false, Ordering::SeqCst);
        for s in &link.slots {
            if s.index != self.slot {
                s.wake_if_parked();
            }
        }
    }
}

impl Link {
    pub(crate) fn new(
        transport: std::sync::Arc<dyn Transport>,
        descriptor: ClassDescriptor,
        options: ReaderOptions,
        quirks: Active,
        buffer_len: usize,
    ) -> Link {
        let slots = (0..descriptor.slot_count())
            .map(|i| SlotLink::new(i as u8, buffer_len))
            .collect();
        let permits = usize::from(descriptor.max_busy_slots.max(1));
        Link {
            transport,
            descriptor,
            options,
            quirks,
            slots,
            gone: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
            seq: AtomicU8::new(0),
            busy: Semaphore::new(permits),
            receiving: AtomicBool::new(false),
            leader: AtomicU16::new(NO_LEADER),
        }
    }

    /// The next bSeq (wraps at 255).
    pub(crate) fn next_seq(&self) -> u8 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// The margin every host-side wait starts from.
    pub(crate) fn margin(&self) -> Duration {
        self.options.margin + self.quirks.extra_timeout
    }

    /// Marks the reader unplugged and wakes every waiter.
    pub(crate) fn mark_gone(&self) {
        if !self.gone.swap(true, Ordering::SeqCst) {
            tracing::warn!("reader unplugged");
        }
        for s in &self.slots {
            s.wake();
        }
        self.busy.wake_all();
    }

    /// Fails fast once the reader is gone.
    pub(crate) fn check_gone(&self) -> Result<(), ReaderError> {
        if self.gone.load(Ordering::SeqCst) {
            Err(ReaderError::DeviceGone)
        } else {
            Ok(())
        }
    }

    fn transport_error(&self, e: TransportError, waited: Duration) -> ReaderError {
        if matches!(e, TransportError::DeviceGone) {
            self.mark_gone();
        }
        ReaderError::from_transport(e, waited)
    }

    /// Interrupts `slot`'s pending operation.
    pub(crate) fn cancel(&self, slot: &SlotLink) {
        slot.cancelled.store(true, Ordering::SeqCst);
        slot.wake();
        if self.leader.load(Ordering::SeqCst) == u16::from(slot.index) {
            self.transport.cancel();
        }
        self.busy.wake_all();
    }

    /// Takes a busy-slot permit, waiting while bMaxCCIDBusySlots slots are
    /// busy. Returns the permit and the time it was granted: `now` when one
    /// was free, the clock after a wait (the answer's wait starts then).
    pub(crate) fn acquire(
        &self,
        slot: &SlotLink,
        now: Instant,
        deadline: Instant,
        honour_cancel: bool,
    ) -> Result<(Permit<'_>, Instant), ReaderError> {
        self.check_gone()?;
        if honour_cancel && slot.cancelled.load(Ordering::SeqCst) {
            return Err(ReaderError::Cancelled);
        }
        if self.busy.try_take() {
            return Ok((Permit(self), now));
        }
        self.acquire_slow(slot, deadline, honour_cancel)
            .map(|()| (Permit(self), Instant::now()))
    }

    /// Waits for a permit (the semaphore's `try_take` succeeded on return).
    fn acquire_slow(
        &self,
        slot: &SlotLink,
        deadline: Instant,
        honour_cancel: bool,
    ) -> Result<(), ReaderError> {
        let mut guard = sync::lock(&self.busy.waiting);
        *guard += 1;
        let result = loop {
            if let Err(e) = self.check_gone() {
                break Err(e);
            }
            if honour_cancel && slot.cancelled.load(Ordering::SeqCst) {
                break Err(ReaderError::Cancelled);
            }
            if self.busy.try_take() {
                break Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                break Err(ReaderError::Timeout {
                    waited: Duration::ZERO,
                });
            }
            guard = self
                .busy
                .cv
                .wait_timeout(guard, (deadline - now).min(FOLLOWER_NAP))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        *guard -= 1;
        drop(guard);
        result
    }

    /// Sends one whole frame for `slot`.
    pub(crate) fn send(&self, slot: &SlotLink, frame: &[u8]) -> Result<(), ReaderError> {
        self.check_gone()?;
        slot.trace_sent(frame);
        let timeout = self.margin();
        self.transport
            .bulk_out(frame, timeout)
            .map_err(|e| self.transport_error(e, timeout))
    }

    /// Receives the next frame addressed to `slot` (or one nobody can be
    /// given: too short, or bSlot out of range) into `rx`. `now` is the
    /// caller's reading of the clock, so the first attempt reads none.
    pub(crate) fn receive(
        &self,
        slot: &SlotLink,
        rx: &mut [u8],
        now: Instant,
        deadline: Instant,
        honour_cancel: bool,
    ) -> Result<usize, ReaderError> {
        let started = now;
        let mut now = now;
        let mut first_attempt = true;
        let mut empty_reads = 0u32;
        let mut unclaimed = 0u32;
        loop {
            self.check_gone()?;
            if let Some(n) = take_mail(slot, rx) {
                return Ok(n);
            }
            if honour_cancel && slot.cancelled.load(Ordering::SeqCst) {
                return Err(ReaderError::Cancelled);
            }
            if !first_attempt {
                now = Instant::now();
            }
            first_attempt = false;
            if now >= deadline {
                return Err(ReaderError::Timeout {
                    waited: now - started,
                });
            }
            let Some(turn) = self.try_receive_turn(slot) else {
                self.park(slot, (deadline - now).min(FOLLOWER_NAP));
                continue;
            };
            // The previous leader posts before giving the turn up, so an
            // answer read for us is in the mailbox by now.
            if let Some(n) = take_mail(slot, rx) {
                return Ok(n);
            }
            if honour_cancel && slot.cancelled.load(Ordering::SeqCst) {
                return Err(ReaderError::Cancelled);
            }
            let result = self.transport.bulk_in(rx, deadline - now);
            if let Ok(n) = result {
                let address = frame_address(&rx[..n]);
                if let Some((to, _)) = address.filter(|&(to, _)| to != slot.index) {
                    if let Some(other) = self.slots.get(usize::from(to)) {
                        let frame = &rx[..n];
                        trace_frame("recv (for another slot)", frame, frame.len());
                        if !post_mail(other, frame) {
                            // A device that floods frames for idle slots
                            // is stopped by a count, not only the clock.
                            unclaimed += 1;
                            if unclaimed > u32::from(self.options.max_stale_frames) {
                                return Err(ReaderError::Protocol(CcidError::BadPayload {
                                    reason: "too many frames for slots that wait for none",
                                    frame: FrameBytes::new(frame),
                                }));
                            }
                        }
                        drop(turn);
                        continue;
                    }
                }
            }
            drop(turn);
            match result {
                Ok(0) => {
                    // Zero-length packets (a known firmware fault, see
                    // quirks) carry nothing: read again, a bounded number
                    // of times.
                    empty_reads += 1;
                    if empty_reads > 16 {
                        return Err(ReaderError::Protocol(CcidError::TruncatedHeader {
                            frame: FrameBytes::new(&[]),
                        }));
                    }
                }
                Ok(n) => return Ok(n),
                Err(TransportError::Cancelled) => {
                    self.transport.reset_cancel();
                }
                Err(e) => return Err(self.transport_error(e, Instant::now() - started)),
            }
        }
    }

    /// Takes the receive turn for `slot` if no other thread has it.
    fn try_receive_turn(&self, slot: &SlotLink) -> Option<ReceiveTurn<'_>> {
        self.receiving
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .ok()?;
        // Set before the caller looks at `cancelled`: a cancel either sees
        // us as the leader (and cancels the transfer) or we see its flag.
        self.leader.store(u16::from(slot.index), Ordering::SeqCst);
        Some(ReceiveTurn {
            link: self,
            slot: slot.index,
        })
    }

    /// Sleeps as a follower until mail comes, the turn is given up, or
    /// `nap` passes.
    fn park(&self, slot: &SlotLink, nap: Duration) {
        let mut mb = sync::lock(&slot.mailbox);
        // `receiving` is looked at under the mailbox lock, which the leader
        // takes after clearing it (`ReceiveTurn::drop`): either the leader's
        // look at `parked` comes after this lock and it notifies us, or its
        // clearing happened before and we see `receiving` false here.
        if mb.len.is_none() && self.receiving.load(Ordering::SeqCst) {
            mb.parked = true;
            mb = slot
                .mail
                .wait_timeout(mb, nap)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            mb.parked = false;
        }
        drop(mb);
    }

    /// Sends `command` to `slot` and waits for its answer, honouring time
    /// extensions, dropping stale answers and retrying CMD_SLOT_BUSY; on a
    /// timeout or cancellation runs the abort procedure first.
    pub(crate) fn transact(
        &self,
        slot: &SlotLink,
        tx: &mut [u8],
        rx: &mut [u8],
        command: Command<'_>,
        wait: Wait,
    ) -> Result<Answer, ReaderError> {
        self.transact_inner(slot, tx, rx, command, wait, true)
    }

    /// [`Link::transact`] for the event thread's status polls: they are
    /// not the user's operations, so they neither end on a cancel nor
    /// spend one (it stays pending for the user's next operation).
    pub(crate) fn transact_ignoring_cancel(
        &self,
        slot: &SlotLink,
        tx: &mut [u8],
        rx: &mut [u8],
        command: Command<'_>,
        wait: Wait,
    ) -> Result<Answer, ReaderError> {
        self.transact_inner(slot, tx, rx, command, wait, false)
    }

    fn transact_inner(
        &self,
        slot: &SlotLink,
        tx: &mut [u8],
        rx: &mut [u8],
        command: Command<'_>,
        wait: Wait,
        honour_cancel: bool,
    ) -> Result<Answer, ReaderError> {
        let repr = CommandRepr {
            slot: slot.index,
            command,
        };
        let msg_type = repr.message_type();
        let budget = slot.budget();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            // The one reading of the clock on the success path: the permit
            // deadline, and (unless the permit had to be waited for) the
            // start of the answer's wait, which thus covers the send too.
            let now = Instant::now();
            if now >= budget.deadline {
                return Err(budget.spent());
            }
            let permit_deadline = wait.deadline(now).min(budget.deadline);
            let (_permit, started) = self.acquire(slot, now, permit_deadline, honour_cancel)?;
            let seq = self.next_seq();
            let n = repr.emit(seq, tx).map_err(|e| match e {
                CcidError::BufferTooSmall { needed, available } => ReaderError::CommandTooLong {
                    len: needed,
                    max: available,
                },
                other => ReaderError::Protocol(other),
            })?;
            // From here until the answer, a frame another slot's leader
            // reads for us is kept only if it carries this bSeq.
            slot.expect(seq);
            let result = self.send(slot, &tx[..n]).and_then(|()| {
                self.await_answer(
                    slot,
                    (seq, msg_type),
                    rx,
                    wait,
                    (started, budget),
                    honour_cancel,
                )
            });
            slot.expect_nothing();
            match result {
                Err(ReaderError::CommandFailed {
                    error: SlotError::CmdSlotBusy,
                    ..
                }) if attempts < self.options.busy_retries => {
                    tracing::debug!(attempts, "CMD_SLOT_BUSY, retrying");
                    let pause = self.options.busy_delay * attempts;
                    if budget.remaining(Instant::now()) <= pause {
                        return Err(ReaderError::SlotBusy { attempts });
                    }
                    std::thread::sleep(pause);
                }
                Err(ReaderError::CommandFailed {
                    error: SlotError::CmdSlotBusy,
                    ..
                }) => return Err(ReaderError::SlotBusy { attempts }),
                other => return other,
            }
        }
    }

    /// Waits for the answer to the command sent as `(seq, msg_type)`.
    fn await_answer(
        &self,
        slot: &SlotLink,
        (seq, msg_type): (u8, MessageType),
        rx: &mut [u8],
        wait: Wait,
        (started, budget): (Instant, Budget),
        honour_cancel: bool,
    ) -> Result<Answer, ReaderError> {
        let mut now = started;
        let mut deadline = wait.deadline(started).min(budget.deadline);
        let mut stale = 0usize;
        // The last frame with another bSeq: if no right answer follows, it
        // was the answer with a wrong bSeq, and the error says so (only
        // this error path copies it).
        let mut last_stale: Option<(u8, FrameBytes)> = None;
        let mut extensions = 0u32;
        loop {
            let n = match self.receive(slot, rx, now, deadline, honour_cancel) {
                Ok(n) => n,
                Err(e @ (ReaderError::Cancelled | ReaderError::Timeout { .. })) => {
                    tracing::warn!(error = %e, seq, "aborting the pending command");
                    self.abort(slot, rx);
                    return Err(match (e, last_stale) {
                        (ReaderError::Timeout { .. }, Some((got, frame))) => {
                            ReaderError::StaleSequence {
                                expected: seq,
                                got,
                                skipped: stale,
                                frame,
                            }
                        }
                        (e, _) => e,
                    });
                }
                Err(e) => return Err(e),
            };
            let frame = &rx[..n];
            trace_frame("recv", frame, frame.len());
            let address = frame_address(frame).filter(|_| n >= HEADER_LEN);
            if let Some((_, got)) = address.filter(|&(to, got)| to == slot.index && got != seq) {
                stale += 1;
                tracing::debug!(expected = seq, got, "stale answer dropped");
                last_stale = Some((got, FrameBytes::new(frame)));
                if stale > usize::from(self.options.max_stale_frames) {
                    return Err(ReaderError::StaleSequence {
                        expected: seq,
                        got,
                        skipped: stale - 1,
                        frame: FrameBytes::new(frame),
                    });
                }
                now = Instant::now();
                continue;
            }
            let expected = Expectation {
                msg_type,
                slot: slot.index,
                seq,
                max_slot_index: self.descriptor.max_slot_index,
                max_message_length: self.descriptor.max_message_length,
            };
            match validate_response(frame, &expected) {
                Ok(Reply::Done(msg)) => {
                    return Ok(Answer {
                        status: msg.status().0,
                        error: msg.error_byte(),
                        chain: msg.chain_parameter(),
                        payload_len: msg.length() as usize,
                    })
                }
                Ok(Reply::TimeExtension { multiplier, .. }) => {
                    extensions += 1;
                    if extensions > self.options.max_time_extensions {
                        self.abort(slot, rx);
                        return Err(ReaderError::TooManyTimeExtensions {
                            limit: self.options.max_time_extensions,
                        });
                    }
                    tracing::debug!(multiplier, "time extension");
                    now = Instant::now();
                    // An extension moves this round's deadline, never the
                    // command's: a reader that asks forever is stopped
                    // there.
                    deadline =
                        far_deadline(now, wait.with_multiplier(multiplier)).min(budget.deadline);
                }
                Err(CcidError::CommandFailed { error, icc, frame }) => {
                    return Err(ReaderError::CommandFailed {
                        command: msg_type,
                        error,
                        icc,
                        frame,
                    })
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bad frame from reader");
                    return Err(ReaderError::Protocol(e));
                }
            }
        }
    }

    /// CCID §5.3.1: ABORT class request, then PC_to_RDR_Abort with the same
    /// bSeq, then drain until the reader's SlotStatus for the Abort (the
    /// aborted command's late answer, if any, is dropped on the way).
    /// Failures are logged, not returned: the caller reports why it aborted.
    ///
    /// The drain is bounded by the margin, and only loosely by a number of
    /// frames: how many time-extension frames of the aborted command are
    /// queued depends on how long this thread was kept from reading (a busy
    /// host), and each one left behind would count as stale against the
    /// next command. A command thus returns within its budget plus this
    /// procedure: the ABORT request's and the drain's margin.
    pub(crate) fn abort(&self, slot: &SlotLink, rx: &mut [u8]) {
        if self.check_gone().is_err() {
            return;
        }
        let seq = self.next_seq();
        let value = (u16::from(seq) << 8) | u16::from(slot.index);
        let margin = self.margin();
        if let Err(e) = self
            .transport
            .control_out(REQUEST_ABORT, value, &[], margin)
        {
            tracing::warn!(error = %e, "ABORT control request failed");
            if matches!(e, TransportError::DeviceGone) {
                self.mark_gone();
                return;
            }
        }
        let mut frame = [0u8; HEADER_LEN];
        let emitted = CommandRepr {
            slot: slot.index,
            command: Command::Abort,
        }
        .emit(seq, &mut frame);
        // The abort's own SlotStatus may be read by another slot's leader.
        slot.expect(seq);
        if emitted.is_err() || self.send(slot, &frame).is_err() {
            return;
        }
        let deadline = far_deadline(Instant::now(), margin);
        // Bounded by the margin and, for a device that answers at once and
        // forever, by a number of frames: every time extension and stale
        // frame the aborted command could have queued, and then some.
        let max_frames = self.options.max_time_extensions as usize
            + usize::from(self.options.max_stale_frames)
            + 16;
        for _ in 0..max_frames {
            match self.receive(slot, rx, Instant::now(), deadline, false) {
                Ok(n) => {
                    trace_frame("recv (draining)", &rx[..n], n);
                    let frame = &rx[..n];
                    let is_slot_status =
                        frame.get(offset::MESSAGE_TYPE) == Some(&MessageType::SlotStatus.to_byte());
                    if n >= HEADER_LEN
                        && is_slot_status
                        && frame_address(frame) == Some((slot.index, seq))
                    {
                        tracing::debug!("abort complete");
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no answer to PC_to_RDR_Abort");
                    return;
                }
            }
        }
        tracing::warn!(max_frames, "PC_to_RDR_Abort drain gave up");
    }
}

fn take_mail(slot: &SlotLink, rx: &mut [u8]) -> Option<usize> {
    if !slot.has_mail.load(Ordering::SeqCst) {
        return None;
    }
    let mut mb = sync::lock(&slot.mailbox);
    let n = mb.len.take()?;
    slot.has_mail.store(false, Ordering::SeqCst);
    let n = n.min(rx.len());
    rx[..n].copy_from_slice(&mb.buf[..n]);
    Some(n)
}

/// Copies `frame` into `slot`'s mailbox and wakes its follower if parked,
/// if the slot waits for an answer with this frame's bSeq; otherwise the
/// frame is a late answer to a command that is over and is dropped.
fn post_mail(slot: &SlotLink, frame: &[u8]) -> bool {
    let mut mb = sync::lock(&slot.mailbox);
    let seq = frame_address(frame).map(|(_, seq)| seq);
    if mb.expect.is_none() || mb.expect != seq {
        tracing::debug!(
            slot = slot.index,
            ?seq,
            expected = ?mb.expect,
            "frame for a slot that does not wait for it dropped"
        );
        return false;
    }
    if mb.len.is_some() {
        tracing::debug!(slot = slot.index, "unread frame in mailbox replaced");
    }
    let n = frame.len().min(mb.buf.len());
    mb.buf[..n].copy_from_slice(&frame[..n]);
    mb.len = Some(n);
    slot.has_mail.store(true, Ordering::SeqCst);
    if std::mem::take(&mut mb.parked) {
        slot.mail.notify_all();
    }
    true
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::thread;

    use super::*;
    use crate::transport::TransportInfo;

    /// bulk-IN hands out queued frames; if asked, the first read waits (up
    /// to 2 s) until `second_started`, so a test knows which thread leads.
    /// A read with nothing queued is counted and fails at once: in these
    /// tests every frame is queued up front, so such a read means a thread
    /// went to the wire for an answer another thread had already read.
    pub(super) struct QueueTransport {
        info: TransportInfo,
        pub frames: Mutex<VecDeque<Vec<u8>>>,
        hold_first_read: bool,
        second_started: AtomicBool,
        reads: AtomicUsize,
        pub reads_of_nothing: AtomicUsize,
    }

    impl QueueTransport {
        /// `hold_first_read`: the first bulk-IN waits for `second_started`.
        pub(crate) fn new(frames: VecDeque<Vec<u8>>, hold_first_read: bool) -> QueueTransport {
            QueueTransport {
                info: TransportInfo::default(),
                frames: Mutex::new(frames),
                hold_first_read,
                second_started: AtomicBool::new(false),
                reads: AtomicUsize::new(0),
                reads_of_nothing: AtomicUsize::new(0),
            }
        }
    }

    impl Transport for QueueTransport {
        fn info(&self) -> &TransportInfo {
            &self.info
        }
        fn bulk_out(&self, _: &[u8], _: Duration) -> Result<(), TransportError> {
            Ok(())
        }
        fn bulk_in(&self, buf: &mut [u8], _: Duration) -> Result<usize, TransportError> {
            if self.reads.fetch_add(1, Ordering::SeqCst) == 0 && self.hold_first_read {
                let until = Instant::now() + Duration::from_secs(2);
                while !self.second_started.load(Ordering::SeqCst) && Instant::now() < until {
                    thread::sleep(Duration::from_millis(1));
                }
                // Let the second thread find the turn taken and park.
                thread::sleep(Duration::from_millis(5));
            }
            let Some(frame) = sync::lock(&self.frames).pop_front() else {
                self.reads_of_nothing.fetch_add(1, Ordering::SeqCst);
                return Err(TransportError::Timeout);
            };
            buf[..frame.len()].copy_from_slice(&frame);
            Ok(frame.len())
        }
        fn interrupt_in(&self, _: &mut [u8], _: Duration) -> Result<usize, TransportError> {
            Err(TransportError::NoInterruptEndpoint)
        }
        fn control_in(
            &self,
            _: u8,
            _: u16,
            _: &mut [u8],
            _: Duration,
        ) -> Result<usize, TransportError> {
            Err(TransportError::Stall)
        }
        fn control_out(&self, _: u8, _: u16, _: &[u8], _: Duration) -> Result<(), TransportError> {
            Ok(())
        }
        fn cancel(&self) {}
        fn reset_cancel(&self) {}
    }

    /// CCID rev 1.1 §5.1 class descriptor of a two-slot reader with
    /// bMaxCCIDBusySlots 2, written field by field.
    pub(super) fn two_slot_descriptor() -> ClassDescriptor {
        let mut d = vec![0x36, 0x21, 0x10, 0x01, 0x01, 0x07]; // bMaxSlotIndex 1
        d.extend_from_slice(&3u32.to_le_bytes()); // dwProtocols T=0, T=1
        d.extend_from_slice(&4000u32.to_le_bytes()); // dwDefaultClock
        d.extend_from_slice(&4000u32.to_le_bytes()); // dwMaximumClock
        d.push(0); // bNumClockSupported
        d.extend_from_slice(&10_752u32.to_le_bytes()); // dwDataRate
        d.extend_from_slice(&344_086u32.to_le_bytes()); // dwMaxDataRate
        d.push(0); // bNumDataRatesSupported
        d.extend_from_slice(&254u32.to_le_bytes()); // dwMaxIFSD
        d.extend_from_slice(&0u32.to_le_bytes()); // dwSynchProtocols
        d.extend_from_slice(&0u32.to_le_bytes()); // dwMechanical
        d.extend_from_slice(&0x0002_0000u32.to_le_bytes()); // dwFeatures: short APDU
        d.extend_from_slice(&271u32.to_le_bytes()); // dwMaxCCIDMessageLength
        d.extend_from_slice(&[0xFF, 0xFF, 0, 0, 0, 2]); // ..., bMaxCCIDBusySlots 2
        ClassDescriptor::parse(&d).expect("valid class descriptor")
    }

    /// RDR_to_PC_DataBlock (§6.2.1) for `slot`, bSeq 0, one data byte.
    fn data_block(slot: u8, byte: u8) -> Vec<u8> {
        vec![0x80, 1, 0, 0, 0, slot, 0, 0, 0, 0, byte]
    }

    /// A log writer that takes 20 ms per line: with TRACE on, it widens
    /// the window between a leader reading a frame for another slot (which
    /// it logs) and that frame reaching the other slot.
    struct SlowWriter;

    impl std::io::Write for SlowWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            thread::sleep(Duration::from_millis(20));
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Regression (reader_robust::two_slots_answered_out_of_order hung
    /// under load): the leader gave up the receive lock *before* posting
    /// a frame for another slot; that slot could take the lock, find its
    /// mailbox empty and wait on bulk-IN for an answer already read.
    #[test]
    fn a_frame_for_another_slot_is_posted_before_the_turn_is_given_up() {
        // Slot 1's answer first, then slot 0's.
        let frames = VecDeque::from([data_block(1, 0x11), data_block(0, 0x00)]);
        let transport = Arc::new(QueueTransport::new(frames, true));
        let link = Arc::new(Link::new(
            transport.clone(),
            two_slot_descriptor(),
            ReaderOptions::default(),
            Active::default(),
            271,
        ));
        let receive = |link: Arc<Link>, index: usize, slow_log: bool| {
            thread::spawn(move || {
                let _log = slow_log.then(|| {
                    let subscriber = tracing_subscriber::fmt()
                        .with_max_level(tracing::Level::TRACE)
                        .with_writer(|| SlowWriter)
                        .finish();
                    tracing::subscriber::set_default(subscriber)
                });
                let mut rx = [0u8; 271];
                let now = Instant::now();
                let n = link.receive(
                    &link.slots[index],
                    &mut rx,
                    now,
                    now + Duration::from_secs(5),
                    true,
                )?;
                Ok::<_, ReaderError>(rx[..n].to_vec())
            })
        };
        // Both slots wait for bSeq 0, as `transact` has them do once sent.
        link.slots[0].expect(0);
        link.slots[1].expect(0);
        // Slot 0 leads and reads slot 1's answer first (bulk-IN holds it
        // until slot 1 is waiting too).
        let first = receive(link.clone(), 0, true);
        while transport.reads.load(Ordering::SeqCst) == 0 {
            thread::sleep(Duration::from_millis(1));
        }
        transport.second_started.store(true, Ordering::SeqCst);
        let second = receive(link.clone(), 1, false);
        let slot0 = first.join().expect("slot 0 thread");
        let slot1 = second.join().expect("slot 1 thread");
        assert_eq!(transport.reads_of_nothing.load(Ordering::SeqCst), 0);
        assert_eq!(slot0.expect("slot 0 answer"), data_block(0, 0x00));
        assert_eq!(slot1.expect("slot 1 answer"), data_block(1, 0x11));
        assert_eq!(transport.reads.load(Ordering::SeqCst), 2);
    }
}

#[cfg(test)]
mod abort_tests {
    use std::collections::VecDeque;
    use std::sync::Arc;

    use super::tests::{two_slot_descriptor, QueueTransport};
    use super::*;

    /// RDR_to_PC_DataBlock (§6.2.1) for slot 0: time extension
    /// (bmCommandStatus 2, bError = multiplier 1), bSeq `seq`, no data.
    fn time_extension(seq: u8) -> Vec<u8> {
        vec![0x80, 0, 0, 0, 0, 0, seq, 0x80, 0x01, 0]
    }

    /// Regression (reader_sim_concurrency::cancel_a_slow_command failed
    /// under load): more time-extension frames of the aborted command were
    /// queued than the drain read (it stopped after max_stale_frames + 1),
    /// so the next command met the rest as stale frames and failed.
    #[test]
    fn abort_drains_every_queued_frame_up_to_its_own_answer() {
        let aborted_seq = 0xF0;
        let mut frames: VecDeque<Vec<u8>> =
            (0..3 * usize::from(ReaderOptions::default().max_stale_frames))
                .map(|_| time_extension(aborted_seq))
                .collect();
        // CMD_ABORTED (bmCommandStatus 1, bError 0xFF) for the aborted
        // command, then the SlotStatus of PC_to_RDR_Abort: the link's
        // first bSeq is 0.
        frames.push_back(vec![0x80, 0, 0, 0, 0, 0, aborted_seq, 0x40, 0xFF, 0]);
        frames.push_back(vec![0x81, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0]);
        let transport = Arc::new(QueueTransport::new(frames, false));
        let link = Link::new(
            transport.clone(),
            two_slot_descriptor(),
            ReaderOptions::default(),
            Active::default(),
            271,
        );
        let mut rx = [0u8; 271];
        link.abort(&link.slots[0], &mut rx);
        assert_eq!(sync::lock(&transport.frames).len(), 0, "frames left behind");
        assert_eq!(transport.reads_of_nothing.load(Ordering::SeqCst), 0);
    }
}

/// Model tests of the receive dispatch under loom: every interleaving of
/// two slots' commands through the busy-slot permits, the receive turn,
/// the mailboxes and the parked followers, up to a preemption bound. Run
/// with `RUSTFLAGS="--cfg ferroccid_loom" cargo test --release --lib loom`
/// (tests/scripts/loom.sh). A lost wake-up shows as a loom deadlock (its
/// timed waits never time out), a crossed or lost answer as a failed
/// assertion.
#[cfg(all(test, ferroccid_loom))]
mod loom_tests {
    use std::collections::VecDeque;
    use std::time::Duration;

    use loom::sync::Arc;

    use super::tests::two_slot_descriptor;
    use super::*;
    use crate::transport::TransportInfo;

    /// A reader that answers each command at once with a SlotStatus for
    /// the same bSlot and bSeq (bError = bSlot + 1, so an answer carries
    /// whose it is); before the answer to a command on slot 0 it may put
    /// a late frame for slot 1 with a bSeq slot 1 is not waiting for.
    struct Model {
        info: TransportInfo,
        wire: Mutex<VecDeque<Vec<u8>>>,
        late_frame_for_slot_1: bool,
    }

    impl Transport for Model {
        fn info(&self) -> &TransportInfo {
            &self.info
        }
        fn bulk_out(&self, frame: &[u8], _: Duration) -> Result<(), TransportError> {
            let (slot, seq) = frame_address(frame).expect("the driver sends whole headers");
            let mut wire = sync::lock(&self.wire);
            if self.late_frame_for_slot_1 && slot == 0 {
                wire.push_back(vec![0x81, 0, 0, 0, 0, 1, seq.wrapping_add(100), 0, 0xEE, 0]);
            }
            wire.push_back(vec![0x81, 0, 0, 0, 0, slot, seq, 0, slot + 1, 0]);
            Ok(())
        }
        fn bulk_in(&self, buf: &mut [u8], _: Duration) -> Result<usize, TransportError> {
            match sync::lock(&self.wire).pop_front() {
                Some(frame) => {
                    buf[..frame.len()].copy_from_slice(&frame);
                    Ok(frame.len())
                }
                // Every answer is on the wire before its command's sender
                // reads; an empty wire means a thread read for an answer
                // another already took.
                None => Err(TransportError::Timeout),
            }
        }
        fn interrupt_in(&self, _: &mut [u8], _: Duration) -> Result<usize, TransportError> {
            Err(TransportError::NoInterruptEndpoint)
        }
        fn control_in(
            &self,
            _: u8,
            _: u16,
            _: &mut [u8],
            _: Duration,
        ) -> Result<usize, TransportError> {
            Err(TransportError::Stall)
        }
        fn control_out(&self, _: u8, _: u16, _: &[u8], _: Duration) -> Result<(), TransportError> {
            Ok(())
        }
        fn cancel(&self) {}
        fn reset_cancel(&self) {}
    }

    fn link(busy_slots: u8, late_frame_for_slot_1: bool) -> Arc<Link> {
        let mut descriptor = two_slot_descriptor();
        descriptor.max_busy_slots = busy_slots;
        let model = std::sync::Arc::new(Model {
            info: TransportInfo::default(),
            wire: Mutex::new(VecDeque::new()),
            late_frame_for_slot_1,
        });
        Arc::new(Link::new(
            model,
            descriptor,
            ReaderOptions::default(),
            Active::default(),
            64,
        ))
    }

    /// One GetSlotStatus on `index`; returns bError of the answer.
    fn status(link: &Link, index: usize) -> u8 {
        let slot = &link.slots[index];
        slot.start_budget(Duration::from_secs(3600));
        let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
        let wait = Wait {
            margin: Duration::from_secs(3600),
            card: Duration::ZERO,
        };
        let answer = link
            .transact(slot, &mut tx, &mut rx, Command::GetSlotStatus, wait)
            .expect("answer");
        assert_eq!(rx[5], slot.index, "answer for another slot");
        answer.error
    }

    fn two_slots(busy_slots: u8, late_frame_for_slot_1: bool) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(move || {
            let link = link(busy_slots, late_frame_for_slot_1);
            let other = link.clone();
            let slot1 = loom::thread::spawn(move || status(&other, 1));
            assert_eq!(status(&link, 0), 1);
            assert_eq!(slot1.join().unwrap(), 2);
        });
    }

    /// Both slots busy at once: each gets its own answer, whichever thread
    /// reads it, and nobody reads the wire for an answer already taken.
    #[test]
    fn two_busy_slots_each_get_their_own_answer() {
        two_slots(2, false);
    }

    /// One permit for two slots: the second waits for the first's answer.
    #[test]
    fn one_permit_two_slots() {
        two_slots(1, false);
    }

    /// A late frame for slot 1 whose bSeq slot 1 does not wait for is
    /// dropped by whichever thread reads it, never returned to slot 1.
    #[test]
    fn a_late_frame_for_slot_1_is_never_its_answer() {
        two_slots(2, true);
    }
}
