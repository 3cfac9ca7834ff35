//! Card and PIN events (the logon / password-change notifications of
//! credential managers): reader added or removed, card inserted or removed,
//! PIN verified, changed or blocked.
//!
//! Every subscriber gets every event published after it subscribed, once,
//! in publication order: publishing holds the bus lock while it numbers the
//! event and hands it to each subscriber's unbounded queue, so two
//! publishers cannot interleave and nothing is dropped.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A reader appeared.
    ReaderAdded,
    /// A reader went away.
    ReaderRemoved,
    /// A card was inserted (or found powered again after a removal).
    CardInserted,
    /// The card was removed.
    CardRemoved,
    /// VERIFY succeeded for this reference.
    PinVerified {
        /// P2 of the VERIFY (the reference data qualifier).
        reference: u8,
    },
    /// The reference data was changed or reset (CHANGE REFERENCE DATA,
    /// RESET RETRY COUNTER).
    PinChanged {
        /// The reference.
        reference: u8,
    },
    /// The reference is blocked (6983, or a failure leaving 0 tries).
    PinBlocked {
        /// The reference.
        reference: u8,
    },
}

/// One event, numbered by its bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Position on the bus: 1, 2, 3… with no gaps.
    pub seq: u64,
    /// The reader concerned.
    pub reader: String,
    /// What happened.
    pub kind: EventKind,
}

#[derive(Debug, Default)]
struct BusState {
    last_seq: u64,
    subscribers: Vec<Sender<Event>>,
}

/// A publish/subscribe bus of [`Event`]s; clones share the bus.
#[derive(Debug, Clone, Default)]
pub struct EventBus {
    state: Arc<Mutex<BusState>>,
}

impl EventBus {
    /// A new, private bus.
    pub fn new() -> Self {
        EventBus::default()
    }

    /// The process-wide bus, used by attachments unless told otherwise.
    pub fn global() -> EventBus {
        static GLOBAL: OnceLock<EventBus> = OnceLock::new();
        GLOBAL.get_or_init(EventBus::new).clone()
    }

    /// Publishes an event and returns its sequence number.
    pub fn publish(&self, reader: &str, kind: EventKind) -> u64 {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.last_seq += 1;
        let event = Event {
            seq: state.last_seq,
            reader: reader.to_owned(),
            kind,
        };
        tracing::debug!(seq = event.seq, reader, ?kind, "card event");
        state
            .subscribers
            .retain(|subscriber| subscriber.send(event.clone()).is_ok());
        event.seq
    }

    /// Receives every event published from now on.
    pub fn subscribe(&self) -> Subscription {
        let (tx, rx) = mpsc::channel();
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .subscribers
            .push(tx);
        Subscription { rx }
    }
}

/// The receiving end of a subscription; dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    rx: Receiver<Event>,
}

impl Subscription {
    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// Every event already waiting.
    pub fn drain(&self) -> Vec<Event> {
        std::iter::from_fn(|| self.try_recv()).collect()
    }
}
