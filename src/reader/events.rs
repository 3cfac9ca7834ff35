//! Card insertion/removal and hardware errors: the interrupt endpoint
//! (RDR_to_PC_NotifySlotChange, RDR_to_PC_HardwareError, CCID §6.3) read by
//! a background thread, or GetSlotStatus polling for readers without one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, Weak};
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

type Subscribers = Arc<Mutex<Vec<Sender<ReaderEvent>>>>;

/// Subscribers and the background thread.
pub(crate) struct Hub {
    subscribers: Subscribers,
    thread: Mutex<Option<JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
    gone: Arc<AtomicBool>,
    waiter: Mutex<Option<Receiver<ReaderEvent>>>,
    wait_cancelled: AtomicBool,
}

impl Hub {
    pub fn new(gone: Arc<AtomicBool>) -> Hub {
        Hub {
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
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = lock(&self.thread).take() {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }

    pub fn cancel_wait(&self) {
        self.wait_cancelled.store(true, Ordering::SeqCst);
    }
}

fn broadcast(subscribers: &Subscribers, event: ReaderEvent) {
    tracing::debug!(?event, "reader event");
    lock(subscribers).retain(|s| s.send(event).is_ok());
}

pub(crate) fn subscribe(shared: &Arc<Shared>) -> Receiver<ReaderEvent> {
    let (tx, rx) = channel();
    lock(&shared.events.subscribers).push(tx);
    let mut thread = lock(&shared.events.thread);
    if thread.is_none() {
        let weak = Arc::downgrade(shared);
        let subscribers = shared.events.subscribers.clone();
        let stop = shared.events.stop.clone();
        let gone = shared.events.gone.clone();
        let transport = shared.link.transport.clone();
        let max_slot_index = shared.link.descriptor.max_slot_index;
        let poll =
            shared.link.quirks.poll_instead_of_interrupt || shared.flavour != super::Flavour::Ccid;
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
                })
            });
        match spawned {
            Ok(handle) => *thread = Some(handle),
            Err(e) => tracing::error!(error = %e, "cannot start the event thread"),
        }
    }
    rx
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
}

fn run(t: Thread) {
    let mut buf = [0u8; 64];
    let mut poll = t.poll;
    let mut last: Vec<Option<bool>> = vec![None; usize::from(t.max_slot_index) + 1];
    while !t.stop.load(Ordering::SeqCst) {
        if t.gone.load(Ordering::SeqCst) {
            broadcast(&t.subscribers, ReaderEvent::DeviceGone);
            return;
        }
        if poll {
            if !poll_once(&t, &mut last) {
                return;
            }
            let until = Instant::now() + t.interval;
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
                            let known = &mut last[usize::from(s)];
                            if change.changed || *known != Some(change.present) {
                                broadcast(
                                    &t.subscribers,
                                    ReaderEvent::SlotChanged {
                                        slot: s,
                                        present: change.present,
                                    },
                                );
                            }
                            *known = Some(change.present);
                        }
                    }
                }
                Ok(InterruptMessage::HardwareError { slot, seq, code }) => broadcast(
                    &t.subscribers,
                    ReaderEvent::HardwareError { slot, seq, code },
                ),
                Err(e) => tracing::warn!(error = %e, "bad interrupt message"),
            },
            Err(TransportError::Timeout) => {}
            Err(TransportError::Cancelled) => std::thread::sleep(SLICE),
            Err(TransportError::NoInterruptEndpoint) => {
                tracing::debug!("no interrupt endpoint: polling GetSlotStatus");
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
/// reader is gone or dropped.
fn poll_once(t: &Thread, last: &mut [Option<bool>]) -> bool {
    let Some(shared) = t.weak.upgrade() else {
        return false;
    };
    for (i, known) in last.iter_mut().enumerate() {
        // A slot in the middle of an exchange is present by definition;
        // do not queue behind it.
        if shared.slots[i].state.try_lock().is_err() {
            continue;
        }
        match slot::status(&shared, i) {
            Ok(status) => {
                if *known != Some(status.present) {
                    broadcast(
                        &t.subscribers,
                        ReaderEvent::SlotChanged {
                            slot: i as u8,
                            present: status.present,
                        },
                    );
                }
                *known = Some(status.present);
            }
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
    hub.wait_cancelled.store(false, Ordering::SeqCst);
    let mut waiter = lock(&hub.waiter);
    if waiter.is_none() {
        *waiter = Some(subscribe(shared));
    }
    let rx = waiter
        .as_ref()
        .ok_or(ReaderError::NotSupported("no event source"))?;
    let deadline = Instant::now() + timeout;
    loop {
        if hub.wait_cancelled.swap(false, Ordering::SeqCst) {
            return Err(ReaderError::Cancelled);
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
