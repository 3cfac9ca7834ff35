//! The card service layer against the simulated card, over two in-test
//! channels that model the two kinds of readers an application meets:
//!
//! * `apdu`: an APDU-level reader (or T=1): extended length carried, the
//!   card's answer returned whole;
//! * `t0`: a T=0 TPDU-level reader: short APDUs only, case 4 sent as case 3
//!   so the card answers 61xx, case 2 with a wrong Le answered 6Cxx — the
//!   service layer must do GET RESPONSE and the re-issue itself.
//!
//! Each test is written once, generic over a [`Fixture`], and instantiated
//! per channel by `suite!`, so that a real-reader fixture can be added the
//! same way. Expected values come from the demo card's personalisation
//! (`ferroccid::sim::card::fs`) and the algorithms documented in
//! `ferroccid::sim::card::app`, recomputed here.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferroccid::card::*;
use ferroccid::sim::card::fs::{
    large_ef_byte, DEMO_AID, LARGE_EF_SIZE, TEXT_2F00, TEXT_2F01, TEXT_SECRET,
};
use ferroccid::sim::card::{CardConfig, VirtualCard};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PIN_REF: u8 = 0x81;
const SEED: u64 = 0x5EED_0001;

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
    /// The insertion this connection was made to; `None` once disconnected.
    connected_to: Option<u64>,
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
        if disposition == Disposition::Reset {
            self.slot.lock().unwrap().card.warm_reset();
        }
        self.guard = None;
        Ok(())
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

/// A reader with the demo card, and ways to attach to it and to move the card.
trait Fixture {
    /// A new attachment; events go to `bus`.
    fn attach(&self, bus: &EventBus) -> CardManager;
    fn remove_card(&self);
    fn insert_card(&self);
    fn atr(&self) -> Vec<u8>;
    fn reader_name(&self) -> String;
    /// APDUs the card has received so far, where the fixture can count them.
    fn apdu_count(&self) -> Option<usize>;
    /// Whether one APDU can carry more than 256 bytes each way.
    fn extended(&self) -> bool;
}

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
    fn attach(&self, bus: &EventBus) -> CardManager {
        let channel = SimChannel {
            slot: Arc::clone(&self.slot),
            level: self.level,
            name: self.name.clone(),
            lock: DeviceLock::for_device(&self.name),
            guard: None,
            connected_to: Some(self.slot.lock().unwrap().insertions),
        };
        let options = AttachOptions {
            extended: ExtendedLength::Yes,
            events: Some(bus.clone()),
        };
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
    reader: ferroccid::reader::Reader,
    sim: ferroccid::transport::sim::SimHandle,
    name: String,
    atr: Vec<u8>,
}

impl SlotFixture {
    fn new() -> Self {
        let opened = ferroccid::device::open("sim").expect("the sim device opens");
        let sim = opened.sim.expect("sim names come with a handle");
        sim.insert_new_card(
            0,
            CardConfig {
                rng_seed: Some(SEED),
                ..CardConfig::dual()
            },
        );
        let reader = ferroccid::reader::Reader::open(opened.transport).expect("reader");
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
    fn attach(&self, bus: &EventBus) -> CardManager {
        let channel = SlotChannel::connect(&self.reader, 0, &self.name).expect("connect");
        let options = AttachOptions {
            extended: ExtendedLength::Yes,
            events: Some(bus.clone()),
        };
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

// ---------------------------------------------------------------- helpers

fn status_of<T: std::fmt::Debug>(r: Result<T>) -> (CardError, u16) {
    match r {
        Err(Error::Status { error, sw }) => (error, sw.0),
        other => panic!("expected a status-word error, got {other:?}"),
    }
}

fn kinds(events: &[Event]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

/// SplitMix64 as documented in `sim::card::app`, 8 little-endian bytes per
/// output (recomputed here, not taken from the simulator).
fn splitmix_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::new();
    while out.len() < n {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// The card's INTERNAL AUTHENTICATE: HMAC-SHA-256(key, challenge || 00000001).
fn card_mac(challenge: &[u8]) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(ferroccid::sim::card::config::PRESET_AUTH_KEY).unwrap();
    mac.update(challenge);
    mac.update(&1u32.to_be_bytes());
    mac.finalize().into_bytes().to_vec()
}

// ---------------------------------------------------------------- the suite

fn select_and_fcp(fx: &dyn Fixture) {
    let card = fx.attach(&EventBus::new());
    let files = card.file_access();
    let mf = files.select_fid(0x3F00).unwrap().expect("FCP of the MF");
    assert_eq!((mf.kind, mf.fid), (Some(FileKind::Df), Some(0x3F00)));
    let ef = files.select_fid(0x2F00).unwrap().unwrap();
    assert_eq!(ef.kind, Some(FileKind::WorkingEf(EfStructure::Transparent)));
    assert_eq!(ef.size, Some(TEXT_2F00.len() as u64));
    assert_eq!(ef.fid, Some(0x2F00));
    assert_eq!(ef.life_cycle, Some(LifeCycle::Activated));
    let df = files.select_df_name(DEMO_AID).unwrap().unwrap();
    assert_eq!(df.kind, Some(FileKind::Df));
    assert_eq!(df.fid, Some(0x5000));
    assert_eq!(df.df_name.as_deref(), Some(DEMO_AID));
    // Right-truncated DF name (first 5 bytes) finds the same DF.
    let df = files.select_df_name(&DEMO_AID[..5]).unwrap().unwrap();
    assert_eq!(df.fid, Some(0x5000));
    let rec = files
        .select_path(&[0x3F00, 0x5000, 0x5002])
        .unwrap()
        .unwrap();
    assert_eq!(
        rec.kind,
        Some(FileKind::WorkingEf(EfStructure::LinearFixed))
    );
    assert_eq!((rec.max_record_size, rec.record_count), (Some(16), Some(3)));
    let var = files.select_fid(0x5003).unwrap().unwrap();
    assert_eq!(
        var.kind,
        Some(FileKind::WorkingEf(EfStructure::LinearVariable))
    );
    // 70000 needs a three-byte size (tag 80).
    let large = files.select(Selection::ChildEf(0x5010)).unwrap().unwrap();
    assert_eq!(large.size, Some(LARGE_EF_SIZE as u64));
    files.select(Selection::Parent).unwrap();
    let rel = files.select_path(&[0x5000, 0x5001]).unwrap().unwrap();
    assert_eq!(rel.fid, Some(0x5001));
    assert_eq!(
        status_of(files.select_fid(0x1234)),
        (CardError::FileNotFound, 0x6A82)
    );
    assert_eq!(
        status_of(files.select_path(&[0x3F00, 0x5000, 0x9999])),
        (CardError::FileNotFound, 0x6A82)
    );
    assert!(matches!(
        files.select_df_name(&[]),
        Err(Error::InvalidRequest(_))
    ));
}

fn read_binary(fx: &dyn Fixture) {
    let card = fx.attach(&EventBus::new());
    let files = card.file_access();
    files.select_fid(0x2F00).unwrap();
    assert_eq!(files.read_binary(Ef::Current, 0, None).unwrap(), TEXT_2F00);
    assert_eq!(
        files.read_binary(Ef::Current, 6, Some(4)).unwrap(),
        &TEXT_2F00[6..10]
    );
    // Asking past the end gives what there is.
    assert_eq!(
        files.read_binary(Ef::Current, 30, Some(100)).unwrap(),
        &TEXT_2F00[30..]
    );
    assert_eq!(
        status_of(files.read_binary(Ef::Current, 1000, Some(1))),
        (CardError::IncorrectP1P2, 0x6B00)
    );
    // PIN-protected EF by SFI 1 in DF 5000.
    files.select_fid(0x5000).unwrap();
    let sfi1 = Ef::Sfi(Sfi::new(1).unwrap());
    assert_eq!(
        status_of(files.read_binary(sfi1, 0, None)),
        (CardError::SecurityStatusNotSatisfied, 0x6982)
    );
    // Large EF by SFI 16: offsets above 32767 take the odd INS.
    let sfi16 = Ef::Sfi(Sfi::new(16).unwrap());
    let piece = files.read_binary(sfi16, 40_000, Some(300)).unwrap();
    let expected: Vec<u8> = (40_000..40_300).map(large_ef_byte).collect();
    assert_eq!(piece, expected);
    // Across the 32767 boundary.
    let piece = files.read_binary(Ef::Current, 32_700, Some(200)).unwrap();
    assert_eq!(
        piece,
        (32_700..32_900).map(large_ef_byte).collect::<Vec<_>>()
    );
    // The whole file; count the APDUs to see the length choice at work.
    let before = fx.apdu_count();
    let all = files.read_binary(Ef::Current, 0, None).unwrap();
    assert_eq!(all.len(), LARGE_EF_SIZE);
    assert!(all.iter().enumerate().all(|(i, &b)| b == large_ef_byte(i)));
    // Only the in-test channels see the card's APDUs; through a reader the
    // transfer is checked by content alone.
    if let (Some(before), Some(after)) = (before, fx.apdu_count()) {
        let apdus = after - before;
        if fx.extended() {
            assert!(apdus <= 3, "extended length: {apdus} APDUs for 70000 bytes");
        } else {
            assert!(apdus >= LARGE_EF_SIZE / 256, "short APDUs: {apdus}");
        }
    }
    assert!(matches!(Sfi::new(0), Err(Error::InvalidRequest(_))));
    assert!(matches!(Sfi::new(31), Err(Error::InvalidRequest(_))));
}

fn update_binary(fx: &dyn Fixture) {
    let card = fx.attach(&EventBus::new());
    let files = card.file_access();
    files.select_fid(0x2F01).unwrap();
    files.update_binary(Ef::Current, 5, b"XYZ").unwrap();
    let mut expected = TEXT_2F01.to_vec();
    expected[5..8].copy_from_slice(b"XYZ");
    assert_eq!(files.read_binary(Ef::Current, 0, None).unwrap(), expected);
    files.select_fid(0x2F00).unwrap();
    assert_eq!(
        status_of(files.update_binary(Ef::Current, 0, b"no")),
        (CardError::SecurityStatusNotSatisfied, 0x6982)
    );
    // Large EF: a write of 600 bytes across 32767, and one far above it.
    files.select_path(&[0x3F00, 0x5000, 0x5010]).unwrap();
    let data: Vec<u8> = (0..600u32).map(|i| (i * 7 + 3) as u8).collect();
    files.update_binary(Ef::Current, 32_500, &data).unwrap();
    files.update_binary(Ef::Current, 69_000, &data).unwrap();
    assert_eq!(
        files.read_binary(Ef::Current, 32_500, Some(600)).unwrap(),
        data
    );
    assert_eq!(
        files.read_binary(Ef::Current, 69_000, Some(600)).unwrap(),
        data
    );
    assert_eq!(
        files.read_binary(Ef::Current, 32_499, Some(1)).unwrap(),
        [large_ef_byte(32_499)]
    );
    assert_eq!(
        files.read_binary(Ef::Current, 69_600, Some(1)).unwrap(),
        [large_ef_byte(69_600)]
    );
    // Past the end of the file.
    assert!(files.update_binary(Ef::Current, 69_900, &data).is_err());
    assert!(matches!(
        files.update_binary(Ef::Current, 0, &[]),
        Err(Error::InvalidRequest(_))
    ));
}

fn records(fx: &dyn Fixture) {
    let card = fx.attach(&EventBus::new());
    let files = card.file_access();
    files.select_df_name(DEMO_AID).unwrap();
    let sfi2 = Ef::Sfi(Sfi::new(2).unwrap());
    let sfi3 = Ef::Sfi(Sfi::new(3).unwrap());
    assert_eq!(files.read_record(sfi2, 2).unwrap(), [2u8; 16]);
    assert_eq!(
        files.read_all_records(sfi3).unwrap(),
        [b"first".to_vec(), b"second record".to_vec()]
    );
    files.update_record(sfi3, 1, b"changed").unwrap();
    files.append_record(sfi3, b"third").unwrap();
    assert_eq!(
        files.read_all_records(sfi3).unwrap(),
        [
            b"changed".to_vec(),
            b"second record".to_vec(),
            b"third".to_vec()
        ]
    );
    assert_eq!(
        status_of(files.read_record(sfi3, 9)),
        (CardError::RecordNotFound, 0x6A83)
    );
    // Linear fixed: a record of the wrong length, then the file fills up.
    assert_eq!(
        status_of(files.append_record(sfi2, b"short")),
        (CardError::WrongLength, 0x6700)
    );
    files.append_record(sfi2, &[4; 16]).unwrap();
    files.append_record(sfi2, &[5; 16]).unwrap();
    assert_eq!(
        status_of(files.append_record(sfi2, &[6; 16])),
        (CardError::NotEnoughMemory, 0x6A84)
    );
    files.select_fid(0x5002).unwrap();
    assert_eq!(files.read_record(Ef::Current, 5).unwrap(), [5u8; 16]);
    // A record command on a transparent EF.
    files.select_fid(0x5010).unwrap();
    assert_eq!(
        status_of(files.read_record(Ef::Current, 1)),
        (CardError::IncompatibleFileStructure, 0x6981)
    );
    assert!(matches!(
        files.read_record(Ef::Current, 0),
        Err(Error::InvalidRequest(_))
    ));
}

fn pin_verify_change_block_reset(fx: &dyn Fixture) {
    let bus = EventBus::new();
    let events = bus.subscribe();
    let card = fx.attach(&bus);
    let pins = card.verifier();
    let files = card.file_access();
    assert_eq!(pins.pin_status(PIN_REF).unwrap(), PinStatus::TriesLeft(3));
    assert_eq!(
        status_of(pins.verify(PIN_REF, &Pin::from("000000"))),
        (CardError::WrongPin { tries_left: 2 }, 0x63C2)
    );
    pins.verify(PIN_REF, &Pin::from("123456")).unwrap();
    assert_eq!(pins.pin_status(PIN_REF).unwrap(), PinStatus::Verified);
    files.select_path(&[0x3F00, 0x5000, 0x5001]).unwrap();
    assert_eq!(
        files.read_binary(Ef::Current, 0, None).unwrap(),
        TEXT_SECRET
    );
    pins.reset_security_status(PIN_REF).unwrap();
    assert_eq!(
        status_of(files.read_binary(Ef::Current, 0, None)),
        (CardError::SecurityStatusNotSatisfied, 0x6982)
    );
    // Change with the old PIN, then verify the new one.
    pins.change_pin(PIN_REF, &Pin::from("123456"), &Pin::from("4321"))
        .unwrap();
    pins.verify(PIN_REF, &Pin::from("4321")).unwrap();
    pins.set_pin(PIN_REF, &Pin::from("55555")).unwrap();
    // Block it.
    for tries_left in [2, 1, 0] {
        assert_eq!(
            status_of(pins.verify(PIN_REF, &Pin::from("9999"))).0,
            CardError::WrongPin { tries_left }
        );
    }
    assert_eq!(
        status_of(pins.verify(PIN_REF, &Pin::from("55555"))),
        (CardError::AuthenticationBlocked, 0x6983)
    );
    assert_eq!(pins.pin_status(PIN_REF).unwrap(), PinStatus::Blocked);
    // A wrong PUK counts down the PUK (5 tries), the right one unblocks.
    assert_eq!(
        status_of(pins.reset_retry_counter(
            PIN_REF,
            &Pin::from("00000000"),
            Some(&Pin::from("2468"))
        )),
        (CardError::WrongPin { tries_left: 4 }, 0x63C4)
    );
    pins.reset_retry_counter(PIN_REF, &Pin::from("12345678"), Some(&Pin::from("2468")))
        .unwrap();
    pins.verify(PIN_REF, &Pin::from("2468")).unwrap();
    assert_eq!(
        status_of(pins.verify(0x85, &Pin::from("1"))),
        (CardError::ReferenceNotFound, 0x6A88)
    );
    assert!(!pins.has_pinpad().unwrap());
    assert!(matches!(
        pins.verify(PIN_REF, &Pin::new(Vec::new())),
        Err(Error::InvalidRequest(_))
    ));

    let got = events.drain();
    let r = PIN_REF;
    assert_eq!(
        kinds(&got),
        [
            EventKind::PinVerified { reference: r },
            EventKind::PinChanged { reference: r },
            EventKind::PinVerified { reference: r },
            EventKind::PinChanged { reference: r },
            EventKind::PinBlocked { reference: r },
            EventKind::PinBlocked { reference: r },
            EventKind::PinChanged { reference: r },
            EventKind::PinVerified { reference: r },
        ]
    );
    assert!(got.iter().all(|e| e.reader == fx.reader_name()));
    let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=8).collect::<Vec<_>>(),
        "in order, no gap, no duplicate"
    );
}

fn authentication(fx: &dyn Fixture) {
    let card = fx.attach(&EventBus::new());
    let auth = card.authenticator();
    // The first three challenges come from the seeded generator in order;
    // each call consumes whole 8-byte outputs.
    let stream = splitmix_bytes(SEED, 32);
    assert_eq!(auth.get_challenge(8).unwrap(), &stream[..8]);
    assert_eq!(auth.get_challenge(16).unwrap(), &stream[8..24]);
    assert!(matches!(
        auth.get_challenge(0),
        Err(Error::InvalidRequest(_))
    ));
    let challenge = b"host challenge 1";
    assert_eq!(
        auth.internal_authenticate(0, 0, challenge, 0).unwrap(),
        card_mac(challenge)
    );
    assert_eq!(
        auth.internal_authenticate(0, 0, challenge, 16).unwrap(),
        &card_mac(challenge)[..16]
    );
    assert_eq!(
        status_of(auth.internal_authenticate(1, 0, challenge, 0)),
        (CardError::IncorrectP1P2, 0x6A86)
    );
    // The demo card implements neither EXTERNAL nor GENERAL AUTHENTICATE.
    assert_eq!(
        status_of(auth.external_authenticate(0, 0, &[0; 8])),
        (CardError::InsNotSupported, 0x6D00)
    );
    assert_eq!(
        status_of(auth.general_authenticate(0, 0, &[0x7C, 0x02, 0x81, 0x00], 256)),
        (CardError::InsNotSupported, 0x6D00)
    );

    struct Host {
        key_ok: bool,
        cryptograms: usize,
    }
    impl MutualAuthCrypto for Host {
        fn host_challenge(&mut self) -> Vec<u8> {
            b"0123456789abcdef".to_vec()
        }
        fn verify_card(&mut self, challenge: &[u8], response: &[u8]) -> bool {
            self.key_ok && response == card_mac(challenge)
        }
        fn host_cryptogram(&mut self, card_challenge: &[u8]) -> Vec<u8> {
            self.cryptograms += 1;
            card_challenge.to_vec()
        }
    }
    let mut params = MutualAuth {
        algorithm: 0,
        key_reference: 0,
        card_response_len: 32,
        card_challenge_len: 8,
        external: false,
    };
    let mut host = Host {
        key_ok: true,
        cryptograms: 0,
    };
    auth.mutual_authenticate(&params, &mut host).unwrap();
    let mut host = Host {
        key_ok: false,
        cryptograms: 0,
    };
    params.external = true;
    assert_eq!(
        auth.mutual_authenticate(&params, &mut host),
        Err(Error::AuthenticationFailed)
    );
    assert_eq!(
        host.cryptograms, 0,
        "no cryptogram for an unauthenticated card"
    );
    let mut host = Host {
        key_ok: true,
        cryptograms: 0,
    };
    assert_eq!(
        status_of(auth.mutual_authenticate(&params, &mut host)).0,
        CardError::InsNotSupported
    );
    assert_eq!(host.cryptograms, 1);
}

fn status_reconnect_detach(fx: &dyn Fixture) {
    let card = fx.attach(&EventBus::new());
    let status = card.status().unwrap();
    assert!(status.present && status.powered);
    assert_eq!(status.atr, fx.atr());
    assert_eq!(status.reader, fx.reader_name());
    assert_eq!(card.reader_name(), fx.reader_name());
    assert!(status.protocol.is_some());
    // A reset loses the security state (and the current file).
    let pins = card.verifier();
    pins.verify(PIN_REF, &Pin::from("123456")).unwrap();
    for init in [Initialization::Warm, Initialization::Cold] {
        pins.verify(PIN_REF, &Pin::from("123456")).unwrap();
        let status = card.reconnect(init, ProtocolChoice::Any).unwrap();
        assert_eq!(status.atr, fx.atr());
        assert_eq!(
            pins.pin_status(PIN_REF).unwrap(),
            PinStatus::TriesLeft(3),
            "{init:?}"
        );
    }
    pins.verify(PIN_REF, &Pin::from("123456")).unwrap();
    card.reconnect(Initialization::Leave, ProtocolChoice::Any)
        .unwrap();
    assert_eq!(
        pins.pin_status(PIN_REF).unwrap(),
        PinStatus::Verified,
        "Leave keeps the session"
    );
    // Raw transmit with the GET RESPONSE procedure.
    let r = card
        .transmit(&Command::new(0xA4, 0x00, 0x0C).with_data(&[0x2F, 0x00]))
        .unwrap();
    assert_eq!((r.data.len(), r.sw), (0, Sw::OK));
    let files = card.file_access();
    let other = fx.attach(&EventBus::new());
    card.clone().detach(Disposition::Unpower).unwrap();
    assert_eq!(
        files.select_fid(0x3F00),
        Err(Error::Channel(ChannelError::Detached))
    );
    assert_eq!(
        card.status().err(),
        Some(Error::Channel(ChannelError::Detached))
    );
    assert!(!other.status().unwrap().powered, "unpowered on detach");
}

fn removal_and_reconnect(fx: &dyn Fixture) {
    let bus = EventBus::new();
    let events = bus.subscribe();
    let card = fx.attach(&bus);
    let files = card.file_access();
    files.select_fid(0x2F00).unwrap();
    fx.remove_card();
    assert_eq!(
        files.select_fid(0x2F00),
        Err(Error::Channel(ChannelError::NoCard))
    );
    assert_eq!(
        files.select_fid(0x2F00),
        Err(Error::Channel(ChannelError::NoCard))
    );
    assert!(!card.status().unwrap().present);
    assert_eq!(
        card.reconnect(Initialization::Cold, ProtocolChoice::Any),
        Err(Error::Channel(ChannelError::NoCard))
    );
    fx.insert_card();
    assert_eq!(
        files.select_fid(0x2F00),
        Err(Error::Channel(ChannelError::CardRemoved))
    );
    card.reconnect(Initialization::Cold, ProtocolChoice::Any)
        .unwrap();
    files.select_fid(0x2F00).unwrap();
    assert_eq!(files.read_binary(Ef::Current, 0, None).unwrap(), TEXT_2F00);
    // Removal seen by status() alone, insertion by status() too.
    fx.remove_card();
    assert!(!card.status().unwrap().present);
    fx.insert_card();
    assert!(card.status().unwrap().present);
    let got = events.drain();
    assert_eq!(
        kinds(&got),
        [
            EventKind::CardRemoved,
            EventKind::CardInserted,
            EventKind::CardRemoved,
            EventKind::CardInserted
        ],
        "each change once"
    );
}

fn lock_between_attachments(fx: &dyn Fixture) {
    let a = fx.attach(&EventBus::new());
    let b = fx.attach(&EventBus::new());
    let lock = a.lock(None).unwrap();
    // A's views still work under A's lock.
    a.file_access().select_fid(0x2F00).unwrap();
    assert!(matches!(
        a.lock(Some(Duration::ZERO)),
        Err(Error::InvalidRequest(_))
    ));
    let start = Instant::now();
    assert_eq!(
        b.lock(Some(Duration::from_millis(100))).err(),
        Some(Error::Channel(ChannelError::Timeout))
    );
    assert!(start.elapsed() >= Duration::from_millis(100));
    // B waits on another thread; A releases after 150 ms; B gets it.
    let waiter = std::thread::spawn(move || {
        let start = Instant::now();
        b.lock(Some(Duration::from_secs(10)))
            .map(|_| start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(150));
    lock.unlock(Disposition::Leave).unwrap();
    let waited = waiter.join().unwrap().unwrap();
    assert!(waited >= Duration::from_millis(100), "waited {waited:?}");
    // Dropping a lock releases it too.
    drop(a.lock(None).unwrap());
    drop(a.lock(Some(Duration::from_millis(10))).unwrap());
}

fn events_from_threads_in_order(fx: &dyn Fixture) {
    let bus = EventBus::new();
    let first = bus.subscribe();
    let card = fx.attach(&bus);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let pins = card.verifier();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    pins.verify(PIN_REF, &Pin::from("123456")).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let got = first.drain();
    assert_eq!(got.len(), 100, "none lost");
    assert!(
        got.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "in order, no duplicates"
    );
    // A late subscriber sees only what follows; a dropped one is forgotten.
    let late = bus.subscribe();
    drop(first);
    card.verifier()
        .verify(PIN_REF, &Pin::from("123456"))
        .unwrap();
    let got = late.drain();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 101);
}

macro_rules! suite {
    ($name:ident, $fixture:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn select_and_fcp() {
                super::select_and_fcp(&$fixture);
            }
            #[test]
            fn read_binary() {
                super::read_binary(&$fixture);
            }
            #[test]
            fn update_binary() {
                super::update_binary(&$fixture);
            }
            #[test]
            fn records() {
                super::records(&$fixture);
            }
            #[test]
            fn pin_verify_change_block_reset() {
                super::pin_verify_change_block_reset(&$fixture);
            }
            #[test]
            fn authentication() {
                super::authentication(&$fixture);
            }
            #[test]
            fn status_reconnect_detach() {
                super::status_reconnect_detach(&$fixture);
            }
            #[test]
            fn removal_and_reconnect() {
                super::removal_and_reconnect(&$fixture);
            }
            #[test]
            fn lock_between_attachments() {
                super::lock_between_attachments(&$fixture);
            }
            #[test]
            fn events_from_threads_in_order() {
                super::events_from_threads_in_order(&$fixture);
            }
        }
    };
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
