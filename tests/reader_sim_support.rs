//! Shared helpers for the `reader_sim_*` tests: the real reader logic
//! ([`Reader`]/[`Slot`]) over the real simulated reader ([`SimTransport`]).
//!
//! Expected values come from ISO/IEC 7816-4 (status words), the virtual
//! card's documented demo file system (`ferroccid_sim::card::fs`) and its
//! documented INTERNAL AUTHENTICATE function (HMAC-SHA-256, recomputed
//! here with the `hmac` crate, not with the card's code).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use ferroccid::{Reader, ReaderError, ReaderOptions, Slot};
use ferroccid::{Tap, TapHooks};
use ferroccid_sim::card::CardConfig;
use ferroccid_sim::profile::Profile;
use ferroccid_sim::{SimHandle, SimTransport};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Largest response of a short APDU (256 data bytes + SW1 SW2).
pub const SHORT_RESPONSE: usize = 258;

/// A built-in profile with `card` in every slot.
pub fn profile_with(name: &str, card: Option<CardConfig>) -> Profile {
    let mut p = Profile::from_name(name).expect("built-in profile");
    if let Some(card) = card {
        for slot in &mut p.slots {
            slot.card = Some(card.clone());
        }
    }
    p
}

/// Opens the reader logic on a simulator built from `profile`.
pub fn open(profile: Profile) -> (Reader, SimHandle) {
    open_with(profile, ReaderOptions::default())
}

/// [`open`] with options (a short margin bounds the fault tests).
pub fn open_with(profile: Profile, options: ReaderOptions) -> (Reader, SimHandle) {
    let (transport, handle) = SimTransport::open(profile);
    let reader = Reader::open_with(Arc::new(transport), options).expect("reader opens on the sim");
    (reader, handle)
}

/// Options with a short host margin, so that a lost answer is detected in
/// well under a second plus the card's own waiting time.
pub fn quick_options() -> ReaderOptions {
    ReaderOptions {
        margin: Duration::from_millis(300),
        ..ReaderOptions::default()
    }
}

/// Sends `command`, returns (data, SW1SW2).
pub fn apdu(slot: &Slot, command: &[u8]) -> Result<(Vec<u8>, u16), ReaderError> {
    let mut response = vec![0u8; 65_538];
    let n = slot.transmit(command, &mut response)?;
    assert!(
        n >= 2,
        "response {:02X?} has no status word",
        &response[..n]
    );
    let sw = u16::from_be_bytes([response[n - 2], response[n - 1]]);
    response.truncate(n - 2);
    Ok((response, sw))
}

/// [`apdu`] that must succeed at the transport level.
pub fn ok_apdu(slot: &Slot, command: &[u8]) -> (Vec<u8>, u16) {
    apdu(slot, command).unwrap_or_else(|e| panic!("APDU {command:02X?} failed: {e}"))
}

/// A short APDU (`lc` from `data`, `le` appended when given).
pub fn short(header: [u8; 4], data: &[u8], le: Option<u8>) -> Vec<u8> {
    let mut c = header.to_vec();
    if !data.is_empty() {
        c.push(data.len() as u8);
        c.extend_from_slice(data);
    }
    c.extend(le);
    c
}

/// The card's INTERNAL AUTHENTICATE answer for `challenge` with Le = 00:
/// the first 32 bytes of HMAC-SHA-256(key, challenge ‖ 00000001)
/// (documented in `ferroccid_sim::card::app`).
pub fn expected_auth(key: &[u8], challenge: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(challenge);
    mac.update(&1u32.to_be_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// (protocol, Fi/Di, IFSD) the virtual card in `slot` is running at.
pub fn card_state(handle: &SimHandle, slot: u8) -> (u8, u8, u8) {
    handle.inspect(|m| {
        let card = m.card(slot).expect("a card in the slot");
        (card.protocol(), card.fi_di(), card.ifsd())
    })
}

/// Runs `f` on another thread and fails the test if it takes longer than
/// `limit` (a hung reader must not hang the suite).
pub fn bounded<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("operation did not finish within {limit:?}"))
}

/// What went out on the wire, recorded by [`Recorder`]: bulk-OUT message
/// types and class requests on the control pipe, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// A bulk-OUT message: bMessageType, bSeq.
    Bulk(u8, u8),
    /// A class request (bRequest) with this wValue.
    Control(u8, u16),
}

/// [`Tap`] hooks that record what the reader logic sends.
#[derive(Default)]
pub struct Recorder {
    /// Everything sent so far.
    pub sent: std::sync::Mutex<Vec<Sent>>,
}

impl TapHooks for Recorder {
    fn on_bulk_out(&self, message: &[u8]) {
        if message.len() >= 10 {
            self.sent
                .lock()
                .unwrap()
                .push(Sent::Bulk(message[0], message[6]));
        }
    }
    fn on_control_out(&self, request: u8, value: u16, _data: &[u8]) {
        self.sent
            .lock()
            .unwrap()
            .push(Sent::Control(request, value));
    }
}

/// `inner` behind a [`Tap`] with a [`Recorder`].
pub fn recorded(inner: SimTransport) -> Tap<Recorder> {
    Tap::new(Arc::new(inner), Recorder::default())
}
