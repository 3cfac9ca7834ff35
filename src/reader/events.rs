//! Card insertion/removal and hardware errors: the interrupt endpoint
//! (RDR_to_PC_NotifySlotChange, RDR_to_PC_HardwareError, CCID §6.3) read by
//! a background thread, or GetSlotStatus polling for readers without one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::ccid::interrupt::InterruptMessage;
use crate::transport::TransportError;

use super::error::ReaderError;
use super::link::lock;
use super::{slot, Shared};

/// How long one interrupt read blocks before the thread looks at its stop
/// flag again: bounds the join on drop.
const INTERRUPT_SLICE: Duration = Duration::from_millis(200);
/// Granularity of cancellable waits.
const SLICE: Duration = Duration::from_millis(20);

/// Something that happened on the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderEvent {
    /// A card was inserted (`present`) or removed.
    SlotChanged {
        /// The slot.
        slot: u8,
        /// A card is in the slot now.
        present: bool,
    },
    /// The reader reported a hardware error (e.g. 0x01 overcurrent).
    HardwareError {
        /// The slot.
        slot: u8,
        /// bSeq of the command running at the time.
        seq: u8,
        /// bHardwareErrorCode.
        code: u8,
    },
    /// The reader was unplugged; no event follows.
    DeviceGone,
}

type Subscribers = Arc<Mutex<SubscriberList>>;

/// The receivers of [`ReaderEvent`]s, and whether the unplug was announced.
/// One lock covers both, so a subscriber either is in the list when
/// [`ReaderEvent::DeviceGone`] goes out or finds `gone_announced` set and
/// gets the event on subscribing: never both, never neither.
#[derive(Default)]
struct SubscriberList {
    senders: Vec<Sender<ReaderEvent>>,
    gone_announced: bool,
}

/// Subscribers and the background thread.
pub(crate) struct Hub {
    subscribers: Subscribers,
    thread: Mutex<Option<JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
    gone: Arc<AtomicBool>,
    waiter: Mutex<Option<Receiver<ReaderEvent>>>,
    wait_cancelled: AtomicBool,
    pub tracker: Arc<Tracker>,
}

/// What [`Slot::wait_for_change`](super::Slot::wait_for_change) ended on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotWait {
    /// The slot changed (card inserted, removed, or both; or a hardware
    /// error) since the last wait on this slot returned.
    Changed,
    /// Nothing happened within the timeout.
    Timeout,
    /// [`Slot::cancel_wait`](super::Slot::cancel_wait) or
    /// [`Reader::cancel_wait`](super::Reader::cancel_wait) was called while
    /// waiting, or before the wait began and after the previous one ended.
    Cancelled,
}

/// Card-event bookkeeping per slot: insertion counters, and the counters
/// per-slot waiters and cancels compare against. Counters rather than
/// flags: a cancel that arrives before the wait starts is still seen, and
/// an event between two waits is not lost.
pub(crate) struct Tracker {
    state: Mutex<TrackerState>,
    changed: Condvar,
}

struct TrackerState {
    slots: Vec<SlotTrack>,
    /// Edges come from GetSlotStatus answers (no interrupt endpoint), not
    /// from NotifySlotChange; never both, or one edge would count twice.
    polling: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct SlotTrack {
    /// Presence last seen; `None` until the first observation, which is
    /// the baseline and not an insertion.
    present: Option<bool>,
    insertions: u64,
    /// Bumped on every change of the slot.
    generation: u64,
    /// The generation the slot's last wait returned on.
    returned: u64,
    cancels: u64,
    cancels_seen: u64,
}

impl Tracker {
    fn new(slots: usize, polling: bool) -> Tracker {
        Tracker {
            state: Mutex::new(TrackerState {
                slots: vec![SlotTrack::default(); slots],
                polling,
            }),
            changed: Condvar::new(),
        }
    }

    /// Records what the reader said about `slot`: `changed` is the
    /// NotifySlotChange "changed" bit (a removal and reinsertion since the
    /// last notification shows as present + changed). Returns whether
    /// subscribers should hear about it.
    fn observe(&self, slot: usize, present: bool, changed: bool) -> bool {
        let mut st = lock(&self.state);
        let Some(t) = st.slots.get_mut(slot) else {
            return false;
        };
        let news = changed || t.present != Some(present);
        if present && t.present.is_some() && (changed || t.present == Some(false)) {
            t.insertions += 1;
        }
        t.present = Some(present);
        if news {
            t.generation += 1;
            drop(st);
            self.changed.notify_all();
        }
        news
    }

    fn bump(&self, slot: usize) {
        if let Some(t) = lock(&self.state).slots.get_mut(slot) {
            t.generation += 1;
        }
        self.changed.notify_all();
    }

    fn is_polling(&self) -> bool {
        lock(&self.state).polling
    }

    fn set_polling(&self) {
        lock(&self.state).polling = true;
    }

    pub(crate) fn insertions(&self, slot: usize) -> u64 {
        lock(&self.state)
            .slots
            .get(slot)
            .map_or(0, |t| t.insertions)
    }

    /// Makes the pending or next wait of `slot` (every slot if `None`)
    /// return [`SlotWait::Cancelled`].
    pub(crate) fn cancel(&self, slot: Option<usize>) {
        let mut st = lock(&self.state);
        for (i, t) in st.slots.iter_mut().enumerate() {
            if slot.is_none_or(|s| s == i) {
                t.cancels += 1;
            }
        }
        drop(st);
        self.changed.notify_all();
    }

    pub(crate) fn wake(&self) {
        let _st = lock(&self.state);
        self.changed.notify_all();
    }
}

impl Hub {
    /// `polling`: the reader is known to have no interrupt endpoint (or is
    /// polled anyway), so GetSlotStatus answers are its card events.
    pub(crate) fn new(gone: Arc<AtomicBool>, slots: usize, polling: bool) -> Hub {
        Hub {
            tracker: Arc::new(Tracker::new(slots, polling)),
            subscribers: Arc::default(),
            thread: Mutex::new(None),
            stop: Arc::new(AtomicBool::new(false)),
            gone,
            waiter: Mutex::new(None),
            wait_cancelled: AtomicBool::new(false),
        }
    }

    /// Stops the thread and joins it (unless we are that thread, which
    /// happens when it held the last handle).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = lock(&self.thread).take() {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }

    pub(crate) fn cancel_wait(&self) {
        self.wait_cancelled.store(true, Ordering::SeqCst);
        self.tracker.cancel(None);
    }

    /// A GetSlotStatus answer for `slot`, from anyone: on a polled reader
    /// it is the card event source.
    pub(crate) fn observe_status(&self, slot: usize, present: bool) {
        if self.tracker.is_polling() && self.tracker.observe(slot, present, false) {
            broadcast(
                &self.subscribers,
                ReaderEvent::SlotChanged {
                    slot: slot as u8,
                    present,
                },
            );
        }
    }
}

fn broadcast(subscribers: &Subscribers, event: ReaderEvent) {
    tracing::debug!(?event, "reader event");
    let mut list = lock(subscribers);
    if list.gone_announced {
        // Nothing follows DeviceGone.
        return;
    }
    list.senders.retain(|s| s.send(event).is_ok());
    if event == ReaderEvent::DeviceGone {
        list.gone_announced = true;
        // Dropping the senders disconnects every receiver after the event.
        list.senders.clear();
    }
}

pub(crate) fn subscribe(shared: &Arc<Shared>) -> Receiver<ReaderEvent> {
    let (tx, rx) = channel();
    {
        let mut list = lock(&shared.events.subscribers);
        if list.gone_announced {
            // The event thread has ended: this late subscriber gets the
            // unplug it missed, then a disconnected channel.
            let _ = tx.send(ReaderEvent::DeviceGone);
            return rx;
        }
        list.senders.push(tx);
    }
    ensure_thread(shared);
    rx
}

/// Starts the event thread unless it runs.
pub(crate) fn ensure_thread(shared: &Arc<Shared>) {
    let mut thread = lock(&shared.events.thread);
    if thread.is_none() {
        let weak = Arc::downgrade(shared);
        let subscribers = shared.events.subscribers.clone();
        let stop = shared.events.stop.clone();
        let gone = shared.events.gone.clone();
        let transport = shared.link.transport.clone();
        let max_slot_index = shared.link.descriptor.max_slot_index;
        let tracker = shared.events.tracker.clone();
        let poll = tracker.is_polling();
        let interval = shared.link.options.poll_interval;
        let span = shared.span.clone();
        let spawned = std::thread::Builder::new()
            .name("ferroccid-events".into())
            .spawn(move || {
                let _enter = span.enter();
                run(Thread {
                    weak,
                    subscribers,
                    stop,
                    gone,
                    transport,
                    max_slot_index,
                    poll,
                    interval,
                    tracker,
                })
            });
        match spawned {
            Ok(handle) => *thread = Some(handle),
            Err(e) => tracing::error!(error = %e, "cannot start the event thread"),
        }
    }
}

struct Thread {
    weak: Weak<Shared>,
    subscribers: Subscribers,
    stop: Arc<AtomicBool>,
    gone: Arc<AtomicBool>,
    transport: Arc<dyn crate::transport::Transport>,
    max_slot_index: u8,
    poll: bool,
    interval: Duration,
    tracker: Arc<Tracker>,
}

/// Longest RDR_to_PC_NotifySlotChange (CCID §6.3.1): the type byte and
/// two bits for each of 256 slots (bMaxSlotIndex 0xFF).
const MAX_INTERRUPT_MESSAGE: usize = 1 + 256 * 2 / 8;

fn run(t: Thread) {
    let mut buf = [0u8; MAX_INTERRUPT_MESSAGE];
    let mut poll = t.poll;
    while !t.stop.load(Ordering::SeqCst) {
        if t.gone.load(Ordering::SeqCst) {
            broadcast(&t.subscribers, ReaderEvent::DeviceGone);
            t.tracker.wake();
            return;
        }
        if poll {
            if !poll_once(&t) {
                return;
            }
            let until = super::link::far_deadline(Instant::now(), t.interval);
            while Instant::now() < until && !t.stop.load(Ordering::SeqCst) {
                std::thread::sleep(SLICE.min(t.interval));
            }
            continue;
        }
        match t.transport.interrupt_in(&mut buf, INTERRUPT_SLICE) {
            Ok(n) => match InterruptMessage::parse(&buf[..n], t.max_slot_index) {
                Ok(msg @ InterruptMessage::NotifySlotChange { .. }) => {
                    for s in 0..=t.max_slot_index {
                        if let Some(change) = msg.slot_change(s) {
                            let news =
                                t.tracker
                                    .observe(usize::from(s), change.present, change.changed);
                            if news {
                                broadcast(
                                    &t.subscribers,
                                    ReaderEvent::SlotChanged {
                                        slot: s,
                                        present: change.present,
                                    },
                                );
                            }
                        }
                    }
                }
                Ok(InterruptMessage::HardwareError { slot, seq, code }) => {
                    t.tracker.bump(usize::from(slot));
                    broadcast(
                        &t.subscribers,
                        ReaderEvent::HardwareError { slot, seq, code },
                    )
                }
                Err(e) => tracing::warn!(error = %e, "bad interrupt message"),
            },
            Err(TransportError::Timeout) => {}
            Err(TransportError::Cancelled) => std::thread::sleep(SLICE),
            Err(TransportError::NoInterruptEndpoint) => {
                tracing::debug!("no interrupt endpoint: polling GetSlotStatus");
                t.tracker.set_polling();
                poll = true;
            }
            Err(TransportError::DeviceGone) => {
                if let Some(shared) = t.weak.upgrade() {
                    shared.link.mark_gone();
                }
                t.gone.store(true, Ordering::SeqCst);
            }
            Err(e) => {
                tracing::warn!(error = %e, "interrupt read failed");
                std::thread::sleep(INTERRUPT_SLICE);
            }
        }
    }
}

/// One GetSlotStatus round over the slots that are idle; false when the
/// reader is gone or dropped. `slot::status` reports what it sees to the
/// tracker, which counts and broadcasts the edges.
fn poll_once(t: &Thread) -> bool {
    let Some(shared) = t.weak.upgrade() else {
        return false;
    };
    for i in 0..=usize::from(t.max_slot_index) {
        // A slot in the middle of an exchange is present by definition;
        // do not queue behind it.
        if shared.slots[i].state.try_lock().is_err() {
            continue;
        }
        let polled = slot::SlotGuard::poll(&shared, i, slot::reader_budget(&shared))
            .and_then(|mut guard| guard.cx().status(false));
        match polled {
            Ok(_) => {}
            Err(ReaderError::DeviceGone) => return true,
            Err(e) => tracing::debug!(error = %e, "status poll failed"),
        }
    }
    true
}

pub(crate) fn wait_for_change(
    shared: &Arc<Shared>,
    timeout: Duration,
) -> Result<Option<ReaderEvent>, ReaderError> {
    let hub = &shared.events;
    // A cancel that came before this wait is kept: it ends this wait.
    let mut waiter = lock(&hub.waiter);
    if waiter.is_none() {
        // A first wait after the unplug fails at once, as documented,
        // rather than reporting the DeviceGone a late subscriber gets.
        shared.link.check_gone()?;
        *waiter = Some(subscribe(shared));
    }
    let rx = waiter
        .as_ref()
        .ok_or(ReaderError::NotSupported("no event source"))?;
    let deadline = super::link::far_deadline(Instant::now(), timeout);
    loop {
        if hub.wait_cancelled.swap(false, Ordering::SeqCst) {
            return Err(ReaderError::Cancelled);
        }
        // Events queued before the unplug are still delivered (the last
        // one is `ReaderEvent::DeviceGone`); after them nothing can come:
        // the event thread has ended, and a subscription made after it
        // ended would otherwise wait out the whole timeout.
        match rx.try_recv() {
            Ok(event) => return Ok(Some(event)),
            Err(TryRecvError::Disconnected) => return Err(ReaderError::DeviceGone),
            Err(TryRecvError::Empty) => {}
        }
        if hub.gone.load(Ordering::SeqCst) {
            return Err(ReaderError::DeviceGone);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        match rx.recv_timeout((deadline - now).min(SLICE)) {
            Ok(event) => return Ok(Some(event)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err(ReaderError::DeviceGone),
        }
    }
}

/// Waits until `slot` changes after the last wait on it returned, the
/// timeout, or a cancel; starts the event thread if needed.
pub(crate) fn wait_for_slot(
    shared: &Arc<Shared>,
    slot: usize,
    timeout: Duration,
) -> Result<SlotWait, ReaderError> {
    ensure_thread(shared);
    let tracker = &shared.events.tracker;
    let deadline = super::link::far_deadline(Instant::now(), timeout);
    let mut st = lock(&tracker.state);
    loop {
        let t = st.slots.get_mut(slot).ok_or(ReaderError::NoSuchSlot {
            index: slot,
            count: shared.slots.len(),
        })?;
        // Unplugged first: a change recorded before the unplug (the first
        // NotifySlotChange, say) is moot once the reader is gone, and
        // reporting it would depend on how far the event thread got.
        if shared.events.gone.load(Ordering::SeqCst) {
            return Err(ReaderError::DeviceGone);
        }
        if t.cancels != t.cancels_seen {
            t.cancels_seen = t.cancels;
            return Ok(SlotWait::Cancelled);
        }
        if t.generation != t.returned {
            t.returned = t.generation;
            return Ok(SlotWait::Changed);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(SlotWait::Timeout);
        }
        // Bounded slices: the unplug flag changes without a notification.
        st = tracker
            .changed
            .wait_timeout(st, (deadline - now).min(INTERRUPT_SLICE))
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
    }
}

/// Insertions seen in `slot`; on an interrupt-driven reader the first call
/// starts the event thread, so counting starts then.
pub(crate) fn insertions(shared: &Arc<Shared>, slot: usize) -> u64 {
    if !shared.events.tracker.is_polling() {
        ensure_thread(shared);
    }
    shared.events.tracker.insertions(slot)
}
