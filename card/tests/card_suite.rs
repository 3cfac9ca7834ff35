//! The card service layer against the simulated card, over two in-test
//! channels that model the two kinds of readers an application meets:
//!
//! * `apdu`: an APDU-level reader (or T=1): extended length carried, the
//!   card's answer returned whole;
//! * `t0`: a T=0 TPDU-level reader: short APDUs only, case 4 sent as case 3
//!   so the card answers 61xx, case 2 with a wrong Le answered 6Cxx — the
//!   service layer must do GET RESPONSE and the re-issue itself.
//!
//! The tests themselves live in `card_suite/mod.rs`, written once over a
//! [`Fixture`] and instantiated per channel by `suite!`, so that a
//! real-reader fixture (`card_suite_pcscd.rs`) runs the same ones.

#[macro_use]
#[path = "card_suite/mod.rs"]
mod suite;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferroccid::{Tap, TapHooks};
use ferroccid_card::*;
use ferroccid_sim::card::fs::TEXT_2F00;
use ferroccid_sim::card::{CardConfig, VirtualCard};
use suite::{Fixture, SEED};

// ---------------------------------------------------------------- channel

/// The card in its slot, shared by the channels to it.
struct SimSlot {
    card: VirtualCard,
    /// Bumped on every insertion, so a channel notices a swap.
    insertions: u64,
    atr: Vec<u8>,
    apdus: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Level {
    Apdu,
    T0,
}

struct SimChannel {
    slot: Arc<Mutex<SimSlot>>,
    level: Level,
    name: String,
    lock: DeviceLock,
    guard: Option<DeviceLockGuard>,
    lock_wait: Option<Duration>,
    /// The insertion this connection was made to; `None` once disconnected.
    connected_to: Option<u64>,
    /// Made to an empty slot: the first exchange after an insertion
    /// connects, as the real channels do.
    awaiting_card: bool,
}

impl SimChannel {
    fn check(&self, slot: &SimSlot) -> Result<(), ChannelError> {
        match self.connected_to {
            None => Err(ChannelError::Detached),
            Some(_) if !slot.card.is_present() => Err(ChannelError::NoCard),
            Some(n) if n != slot.insertions => Err(ChannelError::CardRemoved),
            Some(_) if !slot.card.is_powered() => Err(ChannelError::Unpowered),
            Some(_) => Ok(()),
        }
    }

    /// What a T=0 TPDU reader does with an APDU (ISO/IEC 7816-3 §12.2):
    /// case 4 loses its Le, an extended APDU cannot be sent.
    fn to_tpdu(apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        match apdu.len() {
            4 => Ok([apdu, &[0]].concat()),
            5 => Ok(apdu.to_vec()),
            n if apdu[4] != 0 && n == 5 + usize::from(apdu[4]) => Ok(apdu.to_vec()),
            n if apdu[4] != 0 && n == 6 + usize::from(apdu[4]) => Ok(apdu[..n - 1].to_vec()),
            _ => Err(ChannelError::Other("T=0 carries short APDUs only".into())),
        }
    }

    fn status_of(&self, slot: &SimSlot) -> ChannelStatus {
        let powered = slot.card.is_powered();
        ChannelStatus {
            reader: self.name.clone(),
            state: match (slot.card.is_present(), powered) {
                (false, _) => CardState::Absent,
                (true, false) => CardState::Swallowed,
                (true, true) => CardState::Specific,
            },
            present: slot.card.is_present(),
            powered,
            protocol: powered.then_some(match slot.card.protocol() {
                0 => Protocol::T0,
                _ => Protocol::T1,
            }),
            atr: if powered {
                slot.atr.clone()
            } else {
                Vec::new()
            },
        }
    }
}

impl CardChannel for SimChannel {
    fn transmit(&mut self, cmd: &[u8], resp: &mut [u8]) -> Result<usize, ChannelError> {
        if self.awaiting_card {
            if !self.slot.lock().unwrap().card.is_present() {
                return Err(ChannelError::NoCard);
            }
            self.reconnect(Initialization::Leave, ProtocolChoice::Any)?;
            self.awaiting_card = false;
        }
        // Outside a lock of its own, an exchange takes the lock for itself,
        // as the real channels do.
        let _exchange_lock = match &self.guard {
            Some(_) => None,
            None => Some(self.lock.acquire(self.lock_wait).map_err(|e| match e {
                ChannelError::Timeout => ChannelError::Locked,
                e => e,
            })?),
        };
        let mut slot = self.slot.lock().unwrap();
        self.check(&slot)?;
        slot.apdus += 1;
        let answer = match self.level {
            Level::Apdu => slot.card.process_apdu(cmd),
            Level::T0 => {
                let tpdu = Self::to_tpdu(cmd)?;
                slot.card.t0_tpdu(&tpdu)
            }
        };
        if answer.is_empty() {
            return Err(ChannelError::Timeout);
        }
        let out = resp
            .get_mut(..answer.len())
            .ok_or(ChannelError::BufferTooSmall {
                needed: answer.len(),
            })?;
        out.copy_from_slice(&answer);
        Ok(answer.len())
    }

    fn status(&mut self) -> Result<ChannelStatus, ChannelError> {
        let slot = self.slot.lock().unwrap();
        Ok(self.status_of(&slot))
    }

    fn reconnect(
        &mut self,
        init: Initialization,
        _: ProtocolChoice,
    ) -> Result<ChannelStatus, ChannelError> {
        let mut slot = self.slot.lock().unwrap();
        if !slot.card.is_present() {
            return Err(ChannelError::NoCard);
        }
        let swapped = self.connected_to != Some(slot.insertions);
        let atr = match init {
            Initialization::Leave if !swapped && slot.card.is_powered() => Some(slot.atr.clone()),
            Initialization::Warm if slot.card.is_powered() => slot.card.warm_reset(),
            _ => slot.card.power_on(),
        };
        slot.atr = atr.ok_or(ChannelError::Timeout)?;
        self.connected_to = Some(slot.insertions);
        Ok(self.status_of(&slot))
    }

    fn disconnect(&mut self, disposition: Disposition) -> Result<(), ChannelError> {
        let mut slot = self.slot.lock().unwrap();
        if self.awaiting_card {
            self.connected_to = None;
            return Ok(());
        }
        match disposition {
            Disposition::Leave => {}
            Disposition::Reset => {
                slot.card.warm_reset();
            }
            Disposition::Unpower | Disposition::Eject => slot.card.power_off(),
        }
        self.connected_to = None;
        self.guard = None;
        Ok(())
    }

    fn begin_transaction(&mut self, timeout: Option<Duration>) -> Result<(), ChannelError> {
        self.guard = Some(self.lock.acquire(timeout)?);
        Ok(())
    }

    fn end_transaction(&mut self, disposition: Disposition) -> Result<(), ChannelError> {
        let mut slot = self.slot.lock().unwrap();
        match disposition {
            Disposition::Leave => {}
            Disposition::Reset => {
                slot.card.warm_reset();
            }
            Disposition::Unpower | Disposition::Eject => slot.card.power_off(),
        }
        self.guard = None;
        Ok(())
    }

    fn set_lock_wait(&mut self, wait: Option<Duration>) {
        self.lock_wait = wait;
    }

    fn max_command_len(&self) -> usize {
        match self.level {
            Level::Apdu => 65_544,
            Level::T0 => 261,
        }
    }

    fn max_response_len(&self) -> usize {
        match self.level {
            Level::Apdu => 65_538,
            Level::T0 => 258,
        }
    }

    fn supports_extended(&self) -> bool {
        self.level == Level::Apdu
    }
}

// ---------------------------------------------------------------- fixture

struct SimFixture {
    slot: Arc<Mutex<SimSlot>>,
    level: Level,
    name: String,
}

impl SimFixture {
    fn new(level: Level) -> Self {
        let config = CardConfig {
            rng_seed: Some(SEED),
            ..CardConfig::dual()
        };
        let mut card = VirtualCard::new(config);
        let atr = card.power_on().expect("the demo card answers reset");
        // A unique device name per fixture: tests run in parallel.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        SimFixture {
            slot: Arc::new(Mutex::new(SimSlot {
                card,
                insertions: 0,
                atr,
                apdus: 0,
            })),
            level,
            name: format!("card-suite-{}-{:?}-{n}", std::process::id(), level),
        }
    }
}

impl Fixture for SimFixture {
    fn attach_with(&self, options: AttachOptions) -> CardManager {
        let mut slot = self.slot.lock().unwrap();
        let present = slot.card.is_present();
        // Connecting powers a card left unpowered, as the real channels do.
        if present && !slot.card.is_powered() {
            slot.atr = slot.card.power_on().expect("the demo card answers reset");
        }
        let channel = SimChannel {
            slot: Arc::clone(&self.slot),
            level: self.level,
            name: self.name.clone(),
            lock: DeviceLock::for_device(&self.name),
            guard: None,
            lock_wait: None,
            connected_to: present.then_some(slot.insertions),
            awaiting_card: !present,
        };
        drop(slot);
        CardManager::attach_by_handle(channel, options).expect("attach")
    }
    fn remove_card(&self) {
        self.slot.lock().unwrap().card.remove();
    }
    fn insert_card(&self) {
        let mut slot = self.slot.lock().unwrap();
        slot.card.insert();
        slot.insertions += 1;
    }
    fn atr(&self) -> Vec<u8> {
        self.slot.lock().unwrap().card.config().atr()
    }
    fn reader_name(&self) -> String {
        self.name.clone()
    }
    fn apdu_count(&self) -> Option<usize> {
        Some(self.slot.lock().unwrap().apdus)
    }
    fn extended(&self) -> bool {
        self.level == Level::Apdu
    }
}

/// The simulated CCID reader (`sim` device) driven through the reader
/// layer: [`SlotChannel`], the direct channel applications use.
struct SlotFixture {
    reader: ferroccid::Reader,
    sim: ferroccid_sim::SimHandle,
    name: String,
    atr: Vec<u8>,
}

impl SlotFixture {
    fn new() -> Self {
        ferroccid_sim::register();
        let opened = ferroccid::open("sim").expect("the sim device opens");
        let sim = opened
            .handle::<ferroccid_sim::SimHandle>()
            .cloned()
            .expect("sim names come with a handle");
        sim.insert_new_card(
            0,
            CardConfig {
                rng_seed: Some(SEED),
                ..CardConfig::dual()
            },
        );
        let reader = ferroccid::Reader::open(opened.transport).expect("reader");
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        SlotFixture {
            reader,
            sim,
            name: format!("card-suite-slot-{}-{n}", std::process::id()),
            atr: CardConfig::dual().atr(),
        }
    }
}

impl Fixture for SlotFixture {
    fn attach_with(&self, options: AttachOptions) -> CardManager {
        let channel = SlotChannel::connect(&self.reader, 0, &self.name).expect("connect");
        CardManager::attach_by_handle(channel, options).expect("attach")
    }
    fn remove_card(&self) {
        self.sim.remove_card(0);
    }
    fn insert_card(&self) {
        self.sim.insert_card(0);
    }
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }
    fn reader_name(&self) -> String {
        self.name.clone()
    }
    fn apdu_count(&self) -> Option<usize> {
        None
    }
    fn extended(&self) -> bool {
        true
    }
}

suite!(apdu_level, SimFixture::new(Level::Apdu));
suite!(t0_tpdu_level, SimFixture::new(Level::T0));
suite!(sim_reader_slot, SlotFixture::new());

// ---------------------------------------------------------------- processes

/// Name of the device two processes fight over, passed to the child.
const LOCK_ENV: &str = "FERROCCID_CARD_SUITE_LOCK_CHILD";

/// The child half of `two_processes_compete_for_the_lock`: holds the lock
/// for 600 ms. Does nothing when run normally.
#[test]
fn lock_child_process() {
    let Ok(device) = std::env::var(LOCK_ENV) else {
        return;
    };
    let guard = DeviceLock::for_device(&device)
        .acquire(Some(Duration::from_secs(5)))
        .unwrap();
    println!("LOCKED");
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_millis(600));
    drop(guard);
}

#[test]
fn two_processes_compete_for_the_lock() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let device = format!("card-suite-processes-{}", std::process::id());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(LOCK_ENV, &device)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines
            .by_ref()
            .map_while(|l| l.ok())
            .any(|l| l.contains("LOCKED")),
        "the child never took the lock"
    );
    let lock = DeviceLock::for_device(&device);
    assert_eq!(
        lock.acquire(Some(Duration::from_millis(100))).err(),
        Some(ChannelError::Timeout)
    );
    let start = Instant::now();
    let guard = lock
        .acquire(Some(Duration::from_secs(10)))
        .expect("granted once the child lets go");
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "it waited for the child"
    );
    drop(guard);
    assert!(child.wait().unwrap().success());
}

// ---------------------------------------------------------------- powered by another

/// `ferroccid card status` on a reader whose card an earlier process left
/// powered: the reader reports the card active, but the new reader handle
/// has no ATR for it, so connecting must power it on (a warm reset)
/// before selecting a protocol instead of failing with "not powered".
#[test]
fn slot_channel_connects_to_a_card_an_earlier_handle_left_powered() {
    use ferroccid::Reader;
    ferroccid_sim::register();
    let opened = ferroccid::open("sim").expect("the sim device opens");
    let sim = opened
        .handle::<ferroccid_sim::SimHandle>()
        .cloned()
        .expect("sim names come with a handle");
    sim.insert_new_card(
        0,
        CardConfig {
            rng_seed: Some(SEED),
            ..CardConfig::dual()
        },
    );
    let name = format!("card-suite-earlier-{}", std::process::id());
    {
        // The earlier process: powers the card and goes away, leaving it on.
        let earlier = Reader::open(Arc::clone(&opened.transport)).expect("reader");
        let mut channel = SlotChannel::connect(&earlier, 0, &name).expect("connect");
        assert!(channel.status().unwrap().powered);
        channel.disconnect(Disposition::Leave).unwrap();
    }
    let reader = Reader::open(opened.transport).expect("second reader handle");
    let slot = reader.slot(0).unwrap();
    let before = slot.status().unwrap();
    assert!(
        before.present && before.powered && slot.atr().is_none(),
        "the situation of the bug: active card, no ATR in this handle ({before:?})"
    );
    let channel = SlotChannel::connect(&reader, 0, &name).expect("connects to the powered card");
    let card = CardManager::attach_by_handle(channel, AttachOptions::default()).unwrap();
    let status = card.status().unwrap();
    assert!(status.present && status.powered);
    assert_eq!(status.atr, CardConfig::dual().atr());
    assert!(status.protocol.is_some());
    let ef = card.file_access().select_fid(0x2F00).unwrap().unwrap();
    assert_eq!(ef.fid, Some(0x2F00));
}

// ---------------------------------------------------------------- late events

/// [`Tap`] hooks that can hold the interrupt endpoint back: the reader's
/// notifications stay queued in the simulator until released, as when the
/// event thread is not scheduled for a while (the cause of a removal event
/// arriving after a successful reconnect).
struct GatedInterrupts {
    held: std::sync::atomic::AtomicBool,
}

impl GatedInterrupts {
    fn set_held(&self, held: bool) {
        self.held.store(held, std::sync::atomic::Ordering::SeqCst);
    }
}

impl TapHooks for GatedInterrupts {
    fn before_interrupt_in(
        &self,
        timeout: Duration,
    ) -> Result<Duration, ferroccid::TransportError> {
        if self.held.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(timeout.min(Duration::from_millis(5)));
            return Err(ferroccid::TransportError::Timeout);
        }
        Ok(timeout.min(Duration::from_millis(20)))
    }
}

/// Waits until the reader has counted `count` insertions in `slot`.
fn wait_for_insertions(slot: &ferroccid::Slot, count: u64) {
    let start = Instant::now();
    while slot.insertions() < count {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the reader counted {} insertions, not {count}",
            slot.insertions()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The reader's notifications of a removal and re-insertion arrive only
/// after the application has seen the removal (no card), reconnected and
/// used the card again: they must not condemn the card the reconnect
/// brought back. A swap the channel did not see happen is still told by
/// the insertion counter.
#[test]
fn slot_channel_survives_card_events_that_arrive_after_the_reconnect() {
    ferroccid_sim::register();
    let opened = ferroccid::open("sim").expect("the sim device opens");
    let sim = opened
        .handle::<ferroccid_sim::SimHandle>()
        .cloned()
        .expect("sim names come with a handle");
    sim.insert_new_card(
        0,
        CardConfig {
            rng_seed: Some(SEED),
            ..CardConfig::dual()
        },
    );
    let gate = Arc::new(Tap::new(
        opened.transport,
        GatedInterrupts { held: false.into() },
    ));
    let reader = ferroccid::Reader::open(gate.clone()).expect("reader");
    let slot = reader.slot(0).unwrap();
    let name = format!("card-suite-late-{}", std::process::id());
    let channel = SlotChannel::connect(&reader, 0, &name).expect("connect");
    let card = CardManager::attach_by_handle(channel, AttachOptions::default()).unwrap();
    let files = card.file_access();
    files.select_fid(0x2F00).unwrap();
    let counted = slot.insertions();

    gate.hooks().set_held(true);
    sim.remove_card(0);
    assert_eq!(
        files.select_fid(0x2F00),
        Err(Error::Channel(ChannelError::NoCard))
    );
    sim.insert_card(0);
    assert_eq!(
        files.select_fid(0x2F00),
        Err(Error::Channel(ChannelError::CardRemoved))
    );
    card.reconnect(Initialization::Cold, ProtocolChoice::Any)
        .unwrap();
    files.select_fid(0x2F00).unwrap();
    assert_eq!(slot.insertions(), counted, "the notifications are held");
    // Now the reader's removal and insertion notifications come through.
    gate.hooks().set_held(false);
    wait_for_insertions(&slot, counted + 1);
    assert_eq!(
        files.select_fid(0x2F00).unwrap().and_then(|f| f.fid),
        Some(0x2F00),
        "late notifications of a removal the reconnect dealt with"
    );
    assert_eq!(files.read_binary(Ef::Current, 0, None).unwrap(), TEXT_2F00);

    // Out and back in with no exchange in between: the card is another.
    sim.remove_card(0);
    sim.insert_card(0);
    wait_for_insertions(&slot, counted + 2);
    assert_eq!(
        files.select_fid(0x2F00),
        Err(Error::Channel(ChannelError::CardRemoved))
    );
    card.reconnect(Initialization::Leave, ProtocolChoice::Any)
        .unwrap();
    files.select_fid(0x2F00).unwrap();
    assert_eq!(files.read_binary(Ef::Current, 0, None).unwrap(), TEXT_2F00);
}

// ---------------------------------------------------------------- pinpad

/// VERIFY 81 with a 6-byte ASCII PIN block: the pad fills bytes 0..6 of
/// the data field (bmFormatString 82: byte units, position 0, left, ASCII;
/// bmPINBlockString 06: no length field, 6-byte block).
const PAD_VERIFY_APDU: [u8; 11] = [0x00, 0x20, 0x00, 0x81, 0x06, 0, 0, 0, 0, 0, 0];
/// CHANGE REFERENCE DATA 81: current PIN in bytes 0..6, new in 6..12.
const PAD_MODIFY_APDU: [u8; 17] = [
    0x00, 0x24, 0x00, 0x81, 0x0C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn pad_verify() -> ferroccid::ccid::secure::PinVerify<'static> {
    ferroccid::ccid::secure::PinVerify {
        timeout: 0,
        format_string: 0x82,
        pin_block_string: 0x06,
        pin_length_format: 0,
        pin_max_extra_digit: 0x0408,
        entry_validation_condition: 0x02,
        number_message: 0x01,
        lang_id: 0x0409,
        msg_index: 0,
        teo_prologue: [0; 3],
        apdu: &PAD_VERIFY_APDU,
    }
}

fn pad_modify() -> ferroccid::ccid::secure::PinModify<'static> {
    ferroccid::ccid::secure::PinModify {
        timeout: 0,
        format_string: 0x82,
        pin_block_string: 0x06,
        pin_length_format: 0,
        insertion_offset_old: 0,
        insertion_offset_new: 6,
        pin_max_extra_digit: 0x0408,
        // Bit 0: new PIN confirmed; bit 1: current PIN entered too.
        confirm_pin: 0x03,
        entry_validation_condition: 0x02,
        number_message: 0x03,
        lang_id: 0x0409,
        msg_index: [0, 1, 2],
        teo_prologue: [0; 3],
        apdu: &PAD_MODIFY_APDU,
    }
}

/// The CCID abData SlotChannel sends decodes, with the reader layer's own
/// parser, to the structure it was made from (CCID tables 6.1-5, 6.1-6).
#[test]
fn ccid_pin_structures_decode_to_what_was_asked() {
    use ferroccid::ccid::secure::SecureData;
    use ferroccid_card::{ccid_modify_data, ccid_verify_data};
    let verify = pad_verify();
    let data = ccid_verify_data(&verify);
    assert_eq!(data.len(), 1 + 14 + PAD_VERIFY_APDU.len());
    assert_eq!(SecureData::parse(&data), Ok(SecureData::Verify(verify)));
    let modify = pad_modify();
    let data = ccid_modify_data(&modify);
    assert_eq!(data.len(), 1 + 13 + 3 + 3 + PAD_MODIFY_APDU.len());
    assert_eq!(SecureData::parse(&data), Ok(SecureData::Modify(modify)));
    // One message: one bMsgIndex on the wire.
    let one = ferroccid::ccid::secure::PinModify {
        number_message: 1,
        msg_index: [7, 0, 0],
        ..modify
    };
    let data = ccid_modify_data(&one);
    assert_eq!(data.len(), 1 + 13 + 1 + 3 + PAD_MODIFY_APDU.len());
    assert_eq!(SecureData::parse(&data), Ok(SecureData::Modify(one)));
}

/// PIN entry on the simulated GemPC Pinpad through Slot::secure: the pad
/// types the PIN of its profile; the card's answer, its events and the
/// PIN state follow.
#[test]
fn pinpad_verify_and_change_on_the_slot_channel() {
    use ferroccid_sim::profile::PinEntry;
    ferroccid_sim::register();
    let opened = ferroccid::open("sim:pinpad").expect("the pinpad profile opens");
    let sim = opened
        .handle::<ferroccid_sim::SimHandle>()
        .cloned()
        .expect("sim names come with a handle");
    let reader = ferroccid::Reader::open(opened.transport).expect("reader");
    let name = format!("card-suite-pinpad-{}", std::process::id());
    let bus = EventBus::new();
    let events = bus.subscribe();
    let channel = SlotChannel::connect(&reader, 0, &name).expect("connect");
    let card = CardManager::attach_by_handle(
        channel,
        AttachOptions {
            events: Some(bus.clone()),
            ..AttachOptions::default()
        },
    )
    .unwrap();
    let pins = card.verifier();
    assert!(pins.has_pinpad().unwrap());
    // The profile's user types 123456, the demo card's PIN.
    pins.verify_on_pinpad(suite::PIN_REF, &pad_verify())
        .unwrap();
    assert_eq!(
        pins.pin_status(suite::PIN_REF).unwrap(),
        PinStatus::Verified
    );
    sim.set_pin_entry(PinEntry::Typed {
        pin: "000000".into(),
        new_pin: "654321".into(),
    });
    assert_eq!(
        suite::status_of(pins.verify_on_pinpad(suite::PIN_REF, &pad_verify())),
        (CardError::WrongPin { tries_left: 2 }, 0x63C2)
    );
    // Current PIN 123456 and new PIN 654321 typed on the pad.
    sim.set_pin_entry(PinEntry::Typed {
        pin: "123456".into(),
        new_pin: "654321".into(),
    });
    pins.change_on_pinpad(suite::PIN_REF, &pad_modify())
        .unwrap();
    pins.verify(suite::PIN_REF, &Pin::from("654321")).unwrap();
    // Cancel pressed: an error from the reader, not from the card.
    sim.set_pin_entry(PinEntry::Cancelled);
    assert!(matches!(
        pins.verify_on_pinpad(suite::PIN_REF, &pad_verify()),
        Err(Error::Channel(_))
    ));
    let r = suite::PIN_REF;
    assert_eq!(
        suite::kinds(&events.drain()),
        [
            EventKind::PinVerified { reference: r },
            EventKind::PinChanged { reference: r },
            EventKind::PinVerified { reference: r },
        ]
    );
}
