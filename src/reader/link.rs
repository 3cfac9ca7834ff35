//! The bulk pipe shared by every slot of one reader: sequence numbers, the
//! busy-slot semaphore, receive dispatch, time extensions, CMD_SLOT_BUSY
//! retries and the abort procedure.
//!
//! # Receiving with several slots
//!
//! Only one thread reads bulk-IN at a time (leader/follower). A slot that
//! waits for an answer first looks in its mailbox; if the receive lock is
//! free it takes it and reads. A frame for another slot is copied into that
//! slot's preallocated mailbox and its waiter woken; a frame for itself is
//! returned. Followers sleep on their mailbox condition variable and try to
//! become the leader whenever the current one gives the lock up.
//!
//! # Allocation
//!
//! Nothing on the success path allocates: frames are emitted into and
//! received into the slot's buffers (sized from dwMaxCCIDMessageLength at
//! open), mailboxes are preallocated, and frame validation borrows. Errors
//! copy the offending frame (that is their point).

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU8, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use crate::ccid::command::Command;
use crate::ccid::error::FrameBytes;
use crate::ccid::status::SlotError;
use crate::ccid::trace::trace_frame;
use crate::ccid::{
    validate_response, CcidError, ClassDescriptor, CommandRepr, Expectation, MessageType, Reply,
    HEADER_LEN,
};
use crate::transport::{Transport, TransportError, REQUEST_ABORT};

use super::error::ReaderError;
use super::quirks::Active;
use super::ReaderOptions;

/// No slot holds the receive lock.
const NO_LEADER: u16 = u16::MAX;

/// Longest a follower sleeps before looking at the receive lock again; a
/// safety net, since the leader wakes followers when it gives up the lock.
const FOLLOWER_NAP: Duration = Duration::from_millis(20);

/// Locks a mutex, ignoring poisoning: the data behind our mutexes stays
/// consistent even if a holder panicked (buffers and counters only).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
    /// The timeout for the next frame with time-extension `multiplier`.
    pub fn with_multiplier(self, multiplier: u8) -> Duration {
        self.margin + self.card * u32::from(multiplier.max(1))
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
pub(crate) struct Mailbox {
    buf: Vec<u8>,
    len: Option<usize>,
}

/// The per-slot part of the pipe.
pub(crate) struct SlotLink {
    pub index: u8,
    mailbox: Mutex<Mailbox>,
    mail: Condvar,
    /// Set by `Slot::cancel`, cleared when an operation starts.
    pub cancelled: AtomicBool,
}

impl SlotLink {
    pub fn new(index: u8, buffer_len: usize) -> Self {
        SlotLink {
            index,
            mailbox: Mutex::new(Mailbox {
                buf: vec![0; buffer_len],
                len: None,
            }),
            mail: Condvar::new(),
            cancelled: AtomicBool::new(false),
        }
    }

    fn wake(&self) {
        let _mb = lock(&self.mailbox);
        self.mail.notify_all();
    }
}

/// A counting semaphore for bMaxCCIDBusySlots.
struct Semaphore {
    free: Mutex<usize>,
    cv: Condvar,
}

/// The bulk pipe of one reader.
pub(crate) struct Link {
    pub transport: std::sync::Arc<dyn Transport>,
    pub descriptor: ClassDescriptor,
    pub options: ReaderOptions,
    pub quirks: Active,
    pub slots: Vec<SlotLink>,
    pub gone: std::sync::Arc<AtomicBool>,
    seq: AtomicU8,
    busy: Semaphore,
    receive_lock: Mutex<()>,
    leader: AtomicU16,
}

/// Releases a busy-slot permit on drop.
pub(crate) struct Permit<'a>(&'a Link);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *lock(&self.0.busy.free) += 1;
        self.0.busy.cv.notify_one();
    }
}

impl Link {
    pub fn new(
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
            gone: std::sync::Arc::new(AtomicBool::new(false)),
            seq: AtomicU8::new(0),
            busy: Semaphore {
                free: Mutex::new(permits),
                cv: Condvar::new(),
            },
            receive_lock: Mutex::new(()),
            leader: AtomicU16::new(NO_LEADER),
        }
    }

    /// The next bSeq (wraps at 255).
    pub fn next_seq(&self) -> u8 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// The margin every host-side wait starts from.
    pub fn margin(&self) -> Duration {
        self.options.margin + self.quirks.extra_timeout
    }

    /// Marks the reader unplugged and wakes every waiter.
    pub fn mark_gone(&self) {
        if !self.gone.swap(true, Ordering::SeqCst) {
            tracing::warn!("reader unplugged");
        }
        for s in &self.slots {
            s.wake();
        }
        self.busy.cv.notify_all();
    }

    /// Fails fast once the reader is gone.
    pub fn check_gone(&self) -> Result<(), ReaderError> {
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
    pub fn cancel(&self, slot: &SlotLink) {
        slot.cancelled.store(true, Ordering::SeqCst);
        slot.wake();
        if self.leader.load(Ordering::SeqCst) == u16::from(slot.index) {
            self.transport.cancel();
        }
        self.busy.cv.notify_all();
    }

    /// Takes a busy-slot permit, waiting while bMaxCCIDBusySlots slots are busy.
    pub fn acquire(&self, slot: &SlotLink, deadline: Instant) -> Result<Permit<'_>, ReaderError> {
        let mut free = lock(&self.busy.free);
        loop {
            self.check_gone()?;
            if slot.cancelled.load(Ordering::SeqCst) {
                return Err(ReaderError::Cancelled);
            }
            if *free > 0 {
                *free -= 1;
                return Ok(Permit(self));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ReaderError::Timeout {
                    waited: Duration::ZERO,
                });
            }
            free = self
                .busy
                .cv
                .wait_timeout(free, (deadline - now).min(FOLLOWER_NAP))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Sends one whole frame.
    pub fn send(&self, frame: &[u8]) -> Result<(), ReaderError> {
        self.check_gone()?;
        trace_frame("send", frame);
        let timeout = self.margin();
        self.transport
            .bulk_out(frame, timeout)
            .map_err(|e| self.transport_error(e, timeout))
    }

    /// Receives the next frame addressed to `slot` (or one nobody can be
    /// given: too short, or bSlot out of range) into `rx`.
    pub fn receive(
        &self,
        slot: &SlotLink,
        rx: &mut [u8],
        deadline: Instant,
        honour_cancel: bool,
    ) -> Result<usize, ReaderError> {
        let started = Instant::now();
        let mut empty_reads = 0u32;
        loop {
            self.check_gone()?;
            if let Some(n) = take_mail(slot, rx) {
                return Ok(n);
            }
            if honour_cancel && slot.cancelled.load(Ordering::SeqCst) {
                return Err(ReaderError::Cancelled);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ReaderError::Timeout {
                    waited: now - started,
                });
            }
            let guard = match self.receive_lock.try_lock() {
                Ok(g) => g,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    let mb = lock(&slot.mailbox);
                    if mb.len.is_none() {
                        let _ = slot
                            .mail
                            .wait_timeout(mb, (deadline - now).min(FOLLOWER_NAP))
                            .unwrap_or_else(PoisonError::into_inner);
                    }
                    continue;
                }
            };
            // The previous leader may have posted for us just before we
            // took the lock.
            if let Some(n) = take_mail(slot, rx) {
                return Ok(n);
            }
            self.leader.store(u16::from(slot.index), Ordering::SeqCst);
            if honour_cancel && slot.cancelled.load(Ordering::SeqCst) {
                self.leader.store(NO_LEADER, Ordering::SeqCst);
                return Err(ReaderError::Cancelled);
            }
            let result = self.transport.bulk_in(rx, deadline - now);
            self.leader.store(NO_LEADER, Ordering::SeqCst);
            drop(guard);
            for s in &self.slots {
                if s.index != slot.index {
                    s.wake();
                }
            }
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
                Ok(n) => {
                    let frame = &rx[..n];
                    if n > 6 {
                        let target = frame[5];
                        if target != slot.index {
                            if let Some(other) = self.slots.get(usize::from(target)) {
                                trace_frame("recv (for another slot)", frame);
                                post_mail(other, frame);
                                continue;
                            }
                        }
                    }
                    return Ok(n);
                }
                Err(TransportError::Cancelled) => {
                    self.transport.reset_cancel();
                }
                Err(e) => return Err(self.transport_error(e, Instant::now() - started)),
            }
        }
    }

    /// Sends `command` to `slot` and waits for its answer, honouring time
    /// extensions, dropping stale answers and retrying CMD_SLOT_BUSY; on a
    /// timeout or cancellation runs the abort procedure first.
    pub fn transact(
        &self,
        slot: &SlotLink,
        tx: &mut [u8],
        rx: &mut [u8],
        command: Command<'_>,
        wait: Wait,
    ) -> Result<Answer, ReaderError> {
        let repr = CommandRepr {
            slot: slot.index,
            command,
        };
        let msg_type = repr.message_type();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let _permit = self.acquire(slot, Instant::now() + wait.with_multiplier(1))?;
            let seq = self.next_seq();
            let n = repr.emit(seq, tx).map_err(|e| match e {
                CcidError::BufferTooSmall { needed, available } => ReaderError::CommandTooLong {
                    len: needed,
                    max: available,
                },
                other => ReaderError::Protocol(other),
            })?;
            self.send(&tx[..n])?;
            match self.await_answer(slot, seq, msg_type, rx, wait) {
                Err(ReaderError::CommandFailed {
                    error: SlotError::CmdSlotBusy,
                    ..
                }) if attempts < self.options.busy_retries => {
                    tracing::debug!(attempts, "CMD_SLOT_BUSY, retrying");
                    std::thread::sleep(self.options.busy_delay * attempts);
                }
                Err(ReaderError::CommandFailed {
                    error: SlotError::CmdSlotBusy,
                    ..
                }) => return Err(ReaderError::SlotBusy { attempts }),
                other => return other,
            }
        }
    }

    fn await_answer(
        &self,
        slot: &SlotLink,
        seq: u8,
        msg_type: MessageType,
        rx: &mut [u8],
        wait: Wait,
    ) -> Result<Answer, ReaderError> {
        let mut deadline = Instant::now() + wait.with_multiplier(1);
        let mut stale = 0usize;
        // The last frame with another bSeq: if no right answer follows, it
        // was the answer with a wrong bSeq, and the error says so (only
        // this error path copies it).
        let mut last_stale: Option<(u8, FrameBytes)> = None;
        let mut extensions = 0u32;
        loop {
            let n = match self.receive(slot, rx, deadline, true) {
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
            trace_frame("recv", frame);
            if n >= HEADER_LEN && frame[5] == slot.index && frame[6] != seq {
                stale += 1;
                tracing::debug!(expected = seq, got = frame[6], "stale answer dropped");
                last_stale = Some((frame[6], FrameBytes::new(frame)));
                if stale > usize::from(self.options.max_stale_frames) {
                    return Err(ReaderError::StaleSequence {
                        expected: seq,
                        got: frame[6],
                        skipped: stale - 1,
                        frame: FrameBytes::new(frame),
                    });
                }
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
                    deadline = Instant::now() + wait.with_multiplier(multiplier);
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
    pub fn abort(&self, slot: &SlotLink, rx: &mut [u8]) {
        if self.check_gone().is_err() {
            return;
        }
        slot.cancelled.store(false, Ordering::SeqCst);
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
        if emitted.is_err() || self.send(&frame).is_err() {
            return;
        }
        let deadline = Instant::now() + margin;
        for _ in 0..=self.options.max_stale_frames {
            match self.receive(slot, rx, deadline, false) {
                Ok(n) => {
                    trace_frame("recv (draining)", &rx[..n]);
                    if n >= HEADER_LEN && rx[0] == MessageType::SlotStatus.to_byte() && rx[6] == seq
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
    }
}

fn take_mail(slot: &SlotLink, rx: &mut [u8]) -> Option<usize> {
    let mut mb = lock(&slot.mailbox);
    let n = mb.len.take()?;
    let n = n.min(rx.len());
    rx[..n].copy_from_slice(&mb.buf[..n]);
    Some(n)
}

fn post_mail(slot: &SlotLink, frame: &[u8]) {
    let mut mb = lock(&slot.mailbox);
    if mb.len.is_some() {
        tracing::debug!(slot = slot.index, "unread frame in mailbox replaced");
    }
    let n = frame.len().min(mb.buf.len());
    mb.buf[..n].copy_from_slice(&frame[..n]);
    mb.len = Some(n);
    slot.mail.notify_all();
}
