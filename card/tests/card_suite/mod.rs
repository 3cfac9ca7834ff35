//! The card service-layer suite, shared by the test binaries that run it
//! on different channels (`card_suite.rs`: in-process channels and the
//! simulated CCID reader; `card_suite_pcscd.rs`: through a real pcscd).
//!
//! Each test is written once, generic over a [`Fixture`], and instantiated
//! per channel by `suite!`. Expected values come from the demo card's
//! personalisation (`ferroccid_sim::card::fs`) and the algorithms
//! documented in `ferroccid_sim::card::app`, recomputed here.
//!
//! Include it with `#[macro_use] #[path = "card_suite/mod.rs"] mod suite;`
//! (the `suite!` macro names its functions as `$crate::suite::…`).

use std::time::{Duration, Instant};

use ferroccid_card::*;
use ferroccid_sim::card::fs::{
    large_ef_byte, DEMO_AID, LARGE_EF_SIZE, TEXT_2F00, TEXT_2F01, TEXT_SECRET,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The PIN reference of the demo card.
pub const PIN_REF: u8 = 0x81;
/// The seed of the demo card's GET CHALLENGE generator in every fixture.
pub const SEED: u64 = 0x5EED_0001;

// ---------------------------------------------------------------- fixture

/// A reader with the demo card, and ways to attach to it and to move the card.
pub trait Fixture {
    /// A new attachment made with `options`.
    fn attach_with(&self, options: AttachOptions) -> CardManager;
    /// A new attachment; events go to `bus`.
    fn attach(&self, bus: &EventBus) -> CardManager {
        self.attach_with(options(bus))
    }
    fn remove_card(&self);
    fn insert_card(&self);
    fn atr(&self) -> Vec<u8>;
    fn reader_name(&self) -> String;
    /// APDUs the card has received so far, where the fixture can count them.
    fn apdu_count(&self) -> Option<usize>;
    /// Whether one APDU can carry more than 256 bytes each way.
    fn extended(&self) -> bool;
    /// Whether other attachments can see that a card was unpowered on
    /// detach. pcsc-lite powers the card down but tells other handles only
    /// SCARD_W_RESET_CARD; its reader state keeps PRESENT and the ATR.
    fn unpower_stays(&self) -> bool {
        true
    }
    /// What EJECT does to the card on this channel: the direct channel
    /// unpowers (no reader here has a mechanism, and the driver sends no
    /// PC_to_RDR_Mechanical).
    fn eject_acts_as(&self) -> Disposition {
        Disposition::Unpower
    }
    /// The state a connected card with a protocol in use is reported in:
    /// SCARD_SPECIFIC, except that pcsc-lite names the ATR's mode instead
    /// (NEGOTIABLE for a card without TA2, even once a protocol is set).
    fn connected_state(&self) -> CardState {
        CardState::Specific
    }
}

/// The options of [`Fixture::attach`]: extended length, events to `bus`.
pub fn options(bus: &EventBus) -> AttachOptions {
    AttachOptions {
        extended: ExtendedLength::Yes,
        events: Some(bus.clone()),
        ..AttachOptions::default()
    }
}

// ---------------------------------------------------------------- helpers

pub fn status_of<T: std::fmt::Debug>(r: Result<T>) -> (CardError, u16) {
    match r {
        Err(Error::Status { error, sw }) => (error, sw.0),
        other => panic!("expected a status-word error, got {other:?}"),
    }
}

pub fn kinds(events: &[Event]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

/// SplitMix64 as documented in `sim::card::app`, 8 little-endian bytes per
/// output (recomputed here, not taken from the simulator).
pub fn splitmix_bytes(seed: u64, n: usize) -> Vec<u8> {
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
pub fn card_mac(challenge: &[u8]) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(ferroccid_sim::card::config::PRESET_AUTH_KEY).unwrap();
    mac.update(challenge);
    mac.update(&1u32.to_be_bytes());
    mac.finalize().into_bytes().to_vec()
}

// ---------------------------------------------------------------- the suite

pub fn select_and_fcp(fx: &dyn Fixture) {
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

pub fn read_binary(fx: &dyn Fixture) {
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

pub fn update_binary(fx: &dyn Fixture) {
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

pub fn records(fx: &dyn Fixture) {
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

pub fn pin_verify_change_block_reset(fx: &dyn Fixture) {
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

pub fn authentication(fx: &dyn Fixture) {
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

pub fn status_reconnect_detach(fx: &dyn Fixture) {
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
    if fx.unpower_stays() {
        assert!(!other.status().unwrap().powered, "unpowered on detach");
    } else {
        // The other attachment is told of the reset; keeping the session
        // fails (the card is off), a warm reset brings it back without the
        // PIN verified before.
        assert_eq!(
            other.file_access().select_fid(0x3F00).err(),
            Some(Error::Channel(ChannelError::CardReset))
        );
        assert!(other
            .reconnect(Initialization::Leave, ProtocolChoice::Any)
            .is_err());
        other
            .reconnect(Initialization::Warm, ProtocolChoice::Any)
            .unwrap();
        assert_eq!(
            other.verifier().pin_status(PIN_REF).unwrap(),
            PinStatus::TriesLeft(3),
            "security state lost with the power"
        );
    }
    // Every disposition on the same reader (a test of its own would need
    // one more reader than pcscd and its monitor take).
    dispositions(fx);
}

pub fn removal_and_reconnect(fx: &dyn Fixture) {
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
    // The same reader, empty, attached again (a test of its own would
    // need one more reader than pcscd serves).
    attach_to_an_empty_reader(fx);
}

pub fn lock_between_attachments(fx: &dyn Fixture) {
    let a = fx.attach(&EventBus::new());
    let b = fx.attach(&EventBus::new());
    // Attached before A locks: pcsc-lite's SCardConnect waits for a
    // transaction to end.
    let c = fx.attach_with(AttachOptions {
        lock_wait: Some(Duration::from_millis(150)),
        ..options(&EventBus::new())
    });
    let d = fx.attach_with(AttachOptions {
        lock_wait: Some(Duration::from_secs(10)),
        ..options(&EventBus::new())
    });
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
    // Not only B's lock: C's exchanges wait up to its lock wait, then fail.
    // On a thread, so that an exchange that waits regardless of its lock
    // wait fails this test instead of hanging it.
    let (sent, answer) = std::sync::mpsc::channel();
    let c = std::thread::spawn(move || {
        let start = Instant::now();
        let result = c.file_access().select_fid(0x2F00).err();
        let _ = sent.send((result, start.elapsed()));
        c
    });
    let (result, waited) = answer
        .recv_timeout(Duration::from_secs(5))
        .expect("an exchange under another's lock neither failed nor returned in 5 s");
    assert_eq!(result, Some(Error::Channel(ChannelError::Locked)));
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    let c = c.join().unwrap();
    // An exchange that may wait longer goes through once A lets go (the
    // lock is released below, 150 ms after the exchange started waiting).
    let exchanger = std::thread::spawn(move || {
        let answered = d.file_access().select_fid(0x2F00).map(|_| Instant::now());
        (answered, d)
    });
    // B waits on another thread; A releases after 150 ms; B gets it, and
    // not before A let go (compared as instants: the waiting thread may
    // start late on a busy machine, so its own elapsed time proves nothing).
    let waiter = std::thread::spawn(move || {
        b.lock(Some(Duration::from_secs(10)))
            .map(|_| Instant::now())
    });
    std::thread::sleep(Duration::from_millis(150));
    let released = Instant::now();
    lock.unlock(Disposition::Leave).unwrap();
    let granted = waiter.join().unwrap().unwrap();
    assert!(
        granted >= released,
        "B was granted the lock {:?} before A released it",
        released - granted
    );
    let (answered, d) = exchanger.join().unwrap();
    let answered = answered.expect("the exchange went through after the unlock");
    assert!(
        answered >= released,
        "an exchange went through {:?} before A released the lock",
        released - answered
    );
    drop(d);
    // Without a lock held anywhere, exchanges pass at once.
    c.file_access().select_fid(0x2F00).unwrap();
    // Dropping a lock releases it too.
    drop(a.lock(None).unwrap());
    drop(a.lock(Some(Duration::from_millis(10))).unwrap());
}

pub fn events_from_threads_in_order(fx: &dyn Fixture) {
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

/// LEAVE / RESET / UNPOWER / EJECT on detach and unlock, and reconnect's
/// three initialisations, each judged by what survives: a verified PIN
/// (security state) lives only while the card is neither reset nor
/// unpowered.
pub fn dispositions(fx: &dyn Fixture) {
    let pin = Pin::from("123456");
    let kept_by = |d: Disposition| match d {
        Disposition::Eject => fx.eject_acts_as() == Disposition::Leave,
        d => d == Disposition::Leave,
    };
    // Whether `card` still has the PIN verified; a reset or unpowered
    // card is reconnected with a warm reset first, as an application would.
    let pin_kept = |card: &CardManager| -> bool {
        match card.verifier().pin_status(PIN_REF) {
            Ok(PinStatus::Verified) => true,
            Ok(PinStatus::TriesLeft(3)) => false,
            Err(Error::Channel(ChannelError::CardReset | ChannelError::Unpowered)) => {
                card.reconnect(Initialization::Warm, ProtocolChoice::Any)
                    .unwrap();
                assert_eq!(
                    card.verifier().pin_status(PIN_REF).unwrap(),
                    PinStatus::TriesLeft(3)
                );
                false
            }
            other => panic!("PIN status: {other:?}"),
        }
    };
    let all = [
        Disposition::Leave,
        Disposition::Reset,
        Disposition::Unpower,
        Disposition::Eject,
    ];
    for d in all {
        let card = fx.attach(&EventBus::new());
        let other = fx.attach(&EventBus::new());
        card.verifier().verify(PIN_REF, &pin).unwrap();
        card.detach(d).unwrap();
        if fx.unpower_stays() {
            let unpowered = matches!(d, Disposition::Unpower)
                || (d == Disposition::Eject && fx.eject_acts_as() == Disposition::Unpower);
            let state = other.status().unwrap().state;
            if unpowered {
                assert_eq!(state, CardState::Swallowed, "detach {d:?}");
            } else {
                assert!(state >= CardState::Powered, "detach {d:?}: {state:?}");
            }
        }
        assert_eq!(pin_kept(&other), kept_by(d), "detach {d:?}");
        other.detach(Disposition::Leave).unwrap();
    }
    for d in all {
        let card = fx.attach(&EventBus::new());
        let other = fx.attach_with(AttachOptions {
            lock_wait: Some(Duration::from_secs(5)),
            ..options(&EventBus::new())
        });
        card.verifier().verify(PIN_REF, &pin).unwrap();
        let unlocked = card.lock(None).unwrap().unlock(d);
        if d == Disposition::Eject && fx.eject_acts_as() == Disposition::Leave {
            // pcsc-lite answers SCARD_E_UNSUPPORTED_FEATURE, having
            // released the lock and left the card.
            assert_eq!(
                unlocked,
                Err(Error::Channel(ChannelError::Unsupported(
                    "refused by PC/SC"
                )))
            );
        } else {
            unlocked.unwrap();
        }
        // The lock is free again: another attachment's exchange reaches
        // the card (which may tell it of the reset or the power-off).
        match other.file_access().select_fid(0x3F00) {
            Ok(_) => {}
            Err(Error::Channel(ChannelError::CardReset | ChannelError::Unpowered))
                if !kept_by(d) => {}
            other => panic!("unlock {d:?}, then another attachment: {other:?}"),
        }
        assert_eq!(pin_kept(&card), kept_by(d), "unlock {d:?}");
        card.detach(Disposition::Leave).unwrap();
        other.detach(Disposition::Leave).unwrap();
    }
    let card = fx.attach(&EventBus::new());
    for (init, kept) in [
        (Initialization::Leave, true),
        (Initialization::Warm, false),
        (Initialization::Cold, false),
    ] {
        card.verifier().verify(PIN_REF, &pin).unwrap();
        let status = card.reconnect(init, ProtocolChoice::Any).unwrap();
        assert!(
            status.state >= fx.connected_state(),
            "reconnect {init:?}: {status:?}"
        );
        assert_eq!(status.atr, fx.atr());
        assert_eq!(pin_kept(&card), kept, "reconnect {init:?}");
    }
}

/// CREATE / DELETE / DEACTIVATE / ACTIVATE FILE and GET / PUT DATA.
pub fn file_management_and_data_objects(fx: &dyn Fixture) {
    let card = fx.attach(&EventBus::new());
    let files = card.file_access();
    let aid: &[u8] = &[0xF0, 0x01, 0x02, 0x03];
    files.select_fid(0x3F00).unwrap();
    files
        .create_file(&NewFile {
            fid: 0x6100,
            kind: NewFileKind::Df { name: Some(aid) },
            sfi: None,
        })
        .unwrap();
    // The new DF is selected: the EF goes inside it.
    files
        .create_file(&NewFile {
            fid: 0x6101,
            kind: NewFileKind::Transparent { size: 32 },
            sfi: Some(Sfi::new(5).unwrap()),
        })
        .unwrap();
    files.update_binary(Ef::Current, 0, b"hello").unwrap();
    let info = files
        .select_path(&[0x3F00, 0x6100, 0x6101])
        .unwrap()
        .unwrap();
    assert_eq!(info.size, Some(32));
    assert_eq!(info.life_cycle, Some(LifeCycle::Activated));
    assert_eq!(
        files
            .read_binary(Ef::Sfi(Sfi::new(5).unwrap()), 0, Some(5))
            .unwrap(),
        b"hello"
    );
    files
        .create_file(&NewFile {
            fid: 0x6102,
            kind: NewFileKind::LinearFixed {
                record_size: 4,
                max_records: 2,
            },
            sfi: None,
        })
        .unwrap();
    files.append_record(Ef::Current, b"one.").unwrap();
    files.append_record(Ef::Current, b"two.").unwrap();
    assert_eq!(
        status_of(files.append_record(Ef::Current, b"3rd.")).0,
        CardError::NotEnoughMemory
    );
    assert_eq!(
        files.read_all_records(Ef::Current).unwrap(),
        [b"one.".to_vec(), b"two.".to_vec()]
    );
    let exists = files.create_file(&NewFile {
        fid: 0x6101,
        kind: NewFileKind::Transparent { size: 1 },
        sfi: None,
    });
    assert_eq!(status_of(exists).1, 0x6A89, "file already exists");
    // Deactivated: SELECT warns 6283, use is refused; activated again: back.
    files.deactivate_file(Some(0x6101)).unwrap();
    assert_eq!(
        status_of(files.select_fid(0x6101)).0,
        CardError::FileDeactivated
    );
    assert_eq!(
        status_of(files.read_binary(Ef::Current, 0, Some(5))).0,
        CardError::ConditionsNotSatisfied
    );
    files.activate_file(None).unwrap();
    assert_eq!(
        files.read_binary(Ef::Current, 0, Some(5)).unwrap(),
        b"hello"
    );
    files.delete_file(Some(0x6101)).unwrap();
    assert_eq!(
        status_of(files.select_fid(0x6101)).0,
        CardError::FileNotFound
    );
    files.select_fid(0x3F00).unwrap();
    files.delete_file(Some(0x6100)).unwrap();
    assert_eq!(
        status_of(files.select_df_name(aid)).0,
        CardError::FileNotFound
    );
    assert_eq!(
        status_of(files.delete_file(Some(0x3F00))).0,
        CardError::ConditionsNotSatisfied,
        "the MF stays"
    );
    // Data objects: absent until put, then kept over a reset.
    assert_eq!(
        status_of(files.get_data(0x5F50)).0,
        CardError::ReferenceNotFound
    );
    files.put_data(0x5F50, b"https://example.org/").unwrap();
    card.reconnect(Initialization::Warm, ProtocolChoice::Any)
        .unwrap();
    assert_eq!(files.get_data(0x5F50).unwrap(), b"https://example.org/");
    assert_eq!(
        status_of(files.put_data(0x0001, b"x")).0,
        CardError::IncorrectP1P2
    );
}

/// An attachment to an empty reader: the status says so, views answer
/// NoCard, and the card that arrives later is used.
pub fn attach_to_an_empty_reader(fx: &dyn Fixture) {
    fx.remove_card();
    let bus = EventBus::new();
    let events = bus.subscribe();
    let card = fx.attach(&bus);
    let status = card.status().unwrap();
    assert_eq!(status.state, CardState::Absent);
    assert!(!status.present && !status.powered && status.atr.is_empty());
    let files = card.file_access();
    assert_eq!(
        files.select_fid(0x2F00),
        Err(Error::Channel(ChannelError::NoCard))
    );
    fx.insert_card();
    files.select_fid(0x2F00).unwrap();
    assert_eq!(files.read_binary(Ef::Current, 0, None).unwrap(), TEXT_2F00);
    let status = card.status().unwrap();
    assert!(status.protocol.is_some());
    assert!(status.state >= fx.connected_state(), "{status:?}");
    assert_eq!(
        kinds(&events.drain()),
        [EventKind::CardInserted],
        "the arrival, once"
    );
}

#[macro_export]
macro_rules! suite {
    ($name:ident, $fixture:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn select_and_fcp() {
                $crate::suite::select_and_fcp(&$fixture);
            }
            #[test]
            fn read_binary() {
                $crate::suite::read_binary(&$fixture);
            }
            #[test]
            fn update_binary() {
                $crate::suite::update_binary(&$fixture);
            }
            #[test]
            fn records() {
                $crate::suite::records(&$fixture);
            }
            #[test]
            fn pin_verify_change_block_reset() {
                $crate::suite::pin_verify_change_block_reset(&$fixture);
            }
            #[test]
            fn authentication() {
                $crate::suite::authentication(&$fixture);
            }
            #[test]
            fn status_reconnect_detach() {
                $crate::suite::status_reconnect_detach(&$fixture);
            }
            #[test]
            fn removal_and_reconnect() {
                $crate::suite::removal_and_reconnect(&$fixture);
            }
            #[test]
            fn lock_between_attachments() {
                $crate::suite::lock_between_attachments(&$fixture);
            }
            #[test]
            fn events_from_threads_in_order() {
                $crate::suite::events_from_threads_in_order(&$fixture);
            }
            #[test]
            fn file_management_and_data_objects() {
                $crate::suite::file_management_and_data_objects(&$fixture);
            }
        }
    };
}
