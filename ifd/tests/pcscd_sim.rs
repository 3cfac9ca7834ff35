//! ferroccid's IFD handler inside Debian's real pcscd, with the `pcsc`
//! crate (libpcsclite) as the client. One pcscd per test binary, started
//! through tests/scripts/pcscd-run.sh in its own mount namespace; each test
//! uses its own simulated reader. Fails loudly when pcscd is missing.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ferroccid::part10::{
    property, CM_IOCTL_GET_FEATURE_REQUEST, FEATURE_CCID_ESC_COMMAND, FEATURE_GET_TLV_PROPERTIES,
    FEATURE_IFD_PIN_PROPERTIES, FEATURE_MODIFY_PIN_DIRECT, FEATURE_VERIFY_PIN_DIRECT,
};
use pcsc::{Context, Protocols, ReaderState, Scope, ShareMode, State, MAX_BUFFER_SIZE};

/// Readers of the shared pcscd: (DEVICENAME).
const READERS: &[&str] = &[
    "sim:tpdu-t1.apdu",
    "sim:tpdu-t0.apdu",
    "sim:pinpad",
    "sim:tpdu-t1.remove",
    "sim:tpdu-t1.unplug",
    "sim:tpdu-t1.load",
    "sim:tpdu",
    "sim:short-apdu",
    "sim:extended-apdu",
    "sim:character",
    "sim:4-slot",
];

struct Pcscd {
    control: PathBuf,
}

fn library() -> PathBuf {
    // Built by `cargo build --workspace --features ferroccid-ifd/sim` (as
    // tests/run.sh does): the bundle with simulated readers.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")))
        .join("debug/libferroccid_ifd.so");
    assert!(
        target.exists(),
        "{} missing: cargo build --workspace --features ferroccid-ifd/sim",
        target.display()
    );
    target
}

fn pcscd() -> &'static Pcscd {
    static PCSCD: OnceLock<Pcscd> = OnceLock::new();
    PCSCD.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ferroccid-pcscd-{}", std::process::id()));
        let control = dir.join("control");
        std::fs::create_dir_all(&control).unwrap();
        let script = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .join("tests/scripts/pcscd-run.sh");
        let status = Command::new(script)
            .arg("start")
            .arg(&dir)
            .arg(library())
            .args(READERS)
            .env("FERROCCID_SIM_CONTROL", &control)
            .env("WATCH_PID", std::process::id().to_string())
            .status()
            .expect("cannot run tests/scripts/pcscd-run.sh");
        assert!(
            status.success(),
            "pcscd did not start (see {}/pcscd.log)",
            dir.display()
        );
        // libpcsclite reads this when a context is established.
        std::env::set_var("PCSCLITE_CSOCK_NAME", dir.join("run/pcscd.comm"));
        Pcscd { control }
    })
}

fn reader_name(ctx: &Context, device: &str) -> CString {
    let mut buf = vec![0u8; 4096];
    let wanted = format!("ferroccid {device} ");
    ctx.list_readers(&mut buf)
        .unwrap()
        .find(|r| r.to_string_lossy().starts_with(&wanted))
        .unwrap_or_else(|| panic!("reader for {device} not listed"))
        .to_owned()
}

fn context() -> Context {
    pcscd();
    Context::establish(Scope::User).expect("cannot reach the test pcscd")
}

fn transmit(card: &pcsc::Card, apdu: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    card.transmit(apdu, &mut buf).unwrap().to_vec()
}

/// Disconnects without resetting: the `pcsc` crate's drop resets the card,
/// which other tests' handles on the same reader would see as RESET_CARD.
fn leave(card: pcsc::Card) {
    card.disconnect(pcsc::Disposition::LeaveCard)
        .map_err(|(_, e)| e)
        .unwrap();
}

fn sw(response: &[u8]) -> u16 {
    u16::from_be_bytes([response[response.len() - 2], response[response.len() - 1]])
}

#[test]
fn apdu_cases_on_a_t1_card() {
    let ctx = context();
    let reader = reader_name(&ctx, "sim:tpdu-t1.apdu");
    let card = ctx
        .connect(&reader, ShareMode::Shared, Protocols::ANY)
        .unwrap();
    // The preset card's ATR: 3B, T0 with historical bytes "FerroSim".
    let (_, protocol, atr) = {
        let mut names = [0u8; 256];
        let mut atr = [0u8; 64];
        let status = card.status2(&mut names, &mut atr).unwrap();
        (status.status(), status.protocol2(), status.atr().to_vec())
    };
    assert_eq!(protocol, Some(pcsc::Protocol::T1));
    assert!(atr.ends_with(b"FerroSim") || atr[..atr.len() - 1].ends_with(b"FerroSim"));
    // Case 1: VERIFY with no data asks for the retry counter: 63C3.
    assert_eq!(sw(&transmit(&card, &[0x00, 0x20, 0x00, 0x81])), 0x63C3);
    // Case 2: GET CHALLENGE of 8 bytes.
    let r = transmit(&card, &[0x00, 0x84, 0x00, 0x00, 0x08]);
    assert_eq!((r.len(), sw(&r)), (10, 0x9000));
    // Case 3: VERIFY with the preset PIN "123456".
    let r = transmit(&card, b"\x00\x20\x00\x81\x06123456");
    assert_eq!(sw(&r), 0x9000);
    // Case 4: INTERNAL AUTHENTICATE answers a 32-byte HMAC-SHA-256.
    let r = transmit(&card, &[0x00, 0x88, 0x00, 0x00, 0x04, 1, 2, 3, 4, 0x00]);
    assert_eq!((r.len(), sw(&r)), (34, 0x9000));
    // Extended case 2: GET CHALLENGE of 300 bytes.
    let r = transmit(&card, &[0x00, 0x84, 0x00, 0x00, 0x00, 0x01, 0x2C]);
    assert_eq!((r.len(), sw(&r)), (302, 0x9000));
    // Response larger than the client's buffer: an error, nothing written past.
    let mut small = [0u8; 4];
    assert!(card
        .transmit(&[0x00, 0x84, 0x00, 0x00, 0x08], &mut small)
        .is_err());
    leave(card);
}

#[test]
fn t0_card_leaves_get_response_to_the_client() {
    let ctx = context();
    let reader = reader_name(&ctx, "sim:tpdu-t0.apdu");
    let card = ctx
        .connect(&reader, ShareMode::Shared, Protocols::ANY)
        .unwrap();
    let r = transmit(&card, &[0x00, 0x84, 0x00, 0x00, 0x08]);
    assert_eq!((r.len(), sw(&r)), (10, 0x9000));
    // Case 4 on T=0: the card answers 61xx (ISO 7816-3 §10.3.4) — libpcsclite
    // clients see it, or get the data if pcscd's client lib does GET RESPONSE.
    let r = transmit(&card, &[0x00, 0x88, 0x00, 0x00, 0x04, 1, 2, 3, 4, 0x00]);
    assert!(
        sw(&r) == 0x6120 || (r.len() == 34 && sw(&r) == 0x9000),
        "{r:02X?}"
    );
    leave(card);
}

#[test]
fn pinpad_features_and_verify_pin_direct() {
    let ctx = context();
    let reader = reader_name(&ctx, "sim:pinpad");
    // T=0: the reader maps the PIN APDU itself (T=1 at TPDU level needs
    // the T=1 prologue, see pin_verify_at_tpdu_level_with_a_t1_card).
    // Other clients (opensc-tool asks every reader for its features) may
    // have left the dual card at T=1: reset it into T=0.
    let start = Instant::now();
    let card = loop {
        match ctx.connect(&reader, ShareMode::Exclusive, Protocols::ANY) {
            Ok(mut card) => {
                card.reconnect(
                    ShareMode::Exclusive,
                    Protocols::T0,
                    pcsc::Disposition::ResetCard,
                )
                .unwrap();
                break card;
            }
            Err(pcsc::Error::SharingViolation) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("connect: {e}"),
        }
    };
    assert_eq!(protocol_of(&card), pcsc::Protocol::T0);
    let mut buf = [0u8; MAX_BUFFER_SIZE];
    let features = card
        .control(CM_IOCTL_GET_FEATURE_REQUEST.into(), &[], &mut buf)
        .unwrap()
        .to_vec();
    let mut codes = std::collections::HashMap::new();
    for tlv in features.chunks(6) {
        assert_eq!(tlv[1], 4);
        codes.insert(tlv[0], u32::from_be_bytes([tlv[2], tlv[3], tlv[4], tlv[5]]));
    }
    let verify = *codes
        .get(&FEATURE_VERIFY_PIN_DIRECT)
        .expect("FEATURE_VERIFY_PIN_DIRECT listed");
    assert!(
        codes.contains_key(&FEATURE_MODIFY_PIN_DIRECT)
            && codes.contains_key(&FEATURE_IFD_PIN_PROPERTIES)
            && codes.contains_key(&FEATURE_GET_TLV_PROPERTIES)
    );
    assert!(
        !codes.contains_key(&FEATURE_CCID_ESC_COMMAND),
        "escape listed without being enabled"
    );
    // PIN_VERIFY_STRUCTURE: ASCII PIN in an 6-byte block at offset 0.
    let apdu = [
        0x00, 0x20, 0x00, 0x81, 0x06, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    let mut s = vec![
        30, 0, 0x82, 0x06, 0x00, 0x08, 0x04, 0x02, 0x01, 0x09, 0x04, 0x00, 0, 0, 0,
    ];
    s.extend_from_slice(&(apdu.len() as u32).to_le_bytes());
    s.extend_from_slice(&apdu);
    let r = card
        .control(verify as usize as _, &s, &mut buf)
        .unwrap()
        .to_vec();
    assert_eq!(r, vec![0x90, 0x00]);
    // MODIFY_PIN_DIRECT: CHANGE REFERENCE DATA with the current PIN at
    // byte 0 and the new one at byte 6 of the data field, ASCII, 6-byte
    // blocks, bConfirmPIN 0x03 (current PIN asked, new PIN confirmed).
    let modify = *codes
        .get(&FEATURE_MODIFY_PIN_DIRECT)
        .expect("FEATURE_MODIFY_PIN_DIRECT listed");
    let apdu = [
        0x00, 0x24, 0x00, 0x81, 0x0C, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF,
    ];
    let mut m = vec![
        30, 0, 0x82, 0x06, 0x00, 0x00, 0x06, 0x08, 0x04, 0x03, 0x02, 0x03, 0x09, 0x04, 0x00, 0x01,
        0x02, 0, 0, 0,
    ];
    m.extend_from_slice(&(apdu.len() as u32).to_le_bytes());
    m.extend_from_slice(&apdu);
    let r = card.control(modify as _, &m, &mut buf).unwrap().to_vec();
    assert_eq!(r, vec![0x90, 0x00]);
    // A truncated PIN_MODIFY_STRUCTURE is refused.
    assert!(card.control(modify as _, &m[..12], &mut buf).is_err());
    // Truncated structure: an error, and pcscd carries on.
    assert!(card.control(verify as _, &s[..10], &mut buf).is_err());
    // ulDataLength lying about the APDU.
    let mut lying = s.clone();
    lying[15] = 0xFF;
    assert!(card.control(verify as _, &lying, &mut buf).is_err());
    // TLV properties carry the pinpad profile's USB ids, those of the
    // GemPC Pinpad it copies: wIdVendor 0x08E6 (tag 11), wIdProduct 0x3478 (12).
    let tlv = card
        .control(codes[&FEATURE_GET_TLV_PROPERTIES] as _, &[], &mut buf)
        .unwrap()
        .to_vec();
    assert!(
        tlv.windows(4)
            .any(|w| w == [property::W_ID_VENDOR, 2, 0xE6, 0x08])
            && tlv
                .windows(4)
                .any(|w| w == [property::W_ID_PRODUCT, 2, 0x78, 0x34]),
        "{tlv:02X?}"
    );
    // Attributes.
    let mut attr = [0u8; 64];
    let vendor = card
        .get_attribute(pcsc::Attribute::VendorName, &mut attr)
        .unwrap();
    assert_eq!(vendor, b"Gemplus\0");
    let atr = card
        .get_attribute(pcsc::Attribute::AtrString, &mut attr)
        .unwrap()
        .to_vec();
    assert_eq!(atr[0], 0x3B);
    card.get_attribute(pcsc::Attribute::Maxinput, &mut attr)
        .unwrap();
    leave(card);
}

#[test]
fn oversized_apdu_is_an_error_not_a_crash() {
    let ctx = context();
    let reader = reader_name(&ctx, "sim:tpdu-t1.apdu");
    let card = ctx
        .connect(&reader, ShareMode::Shared, Protocols::ANY)
        .unwrap();
    let mut huge = vec![0u8; 70000];
    huge[..4].copy_from_slice(&[0x00, 0xD6, 0x00, 0x00]);
    let mut buf = vec![0u8; 300];
    assert!(card.transmit(&huge, &mut buf).is_err());
    // pcscd is still up and the reader still works.
    let r = transmit(&card, &[0x00, 0x84, 0x00, 0x00, 0x08]);
    assert_eq!(sw(&r), 0x9000);
    leave(card);
}

fn wait_for(ctx: &Context, reader: &CString, want: State, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut states = vec![ReaderState::new(reader.clone(), State::UNAWARE)];
    ctx.get_status_change(Duration::from_secs(1), &mut states)
        .unwrap();
    loop {
        if states[0].event_state().contains(want) {
            return start.elapsed();
        }
        states[0].sync_current_state();
        let left = limit.saturating_sub(start.elapsed());
        assert!(!left.is_zero(), "{want:?} not seen within {limit:?}");
        let _ = ctx.get_status_change(left, &mut states);
    }
}

#[test]
fn removal_and_insertion_wake_get_status_change_within_a_second() {
    let ctx = context();
    let reader = reader_name(&ctx, "sim:tpdu-t1.remove");
    let flag = pcscd().control.join("tpdu-t1.remove.absent");
    wait_for(&ctx, &reader, State::PRESENT, Duration::from_secs(2));
    std::fs::write(&flag, b"").unwrap();
    let took = wait_for(&ctx, &reader, State::EMPTY, Duration::from_secs(1));
    assert!(took < Duration::from_secs(1), "removal seen after {took:?}");
    std::fs::remove_file(&flag).unwrap();
    let took = wait_for(&ctx, &reader, State::PRESENT, Duration::from_secs(1));
    assert!(
        took < Duration::from_secs(1),
        "insertion seen after {took:?}"
    );
}

#[test]
fn sixteen_clients_thousand_apdus_each_get_their_own_answers() {
    let ctx = context();
    let reader = reader_name(&ctx, "sim:tpdu-t1.load");
    let threads: Vec<_> = (0u8..16)
        .map(|client| {
            let reader = reader.clone();
            std::thread::spawn(move || {
                let ctx = Context::establish(Scope::User).unwrap();
                let card = ctx
                    .connect(&reader, ShareMode::Shared, Protocols::ANY)
                    .unwrap();
                let mut buf = [0u8; 300];
                let mut first = None;
                for i in 0..1000u16 {
                    // INTERNAL AUTHENTICATE of (client, i): the HMAC answer
                    // is a function of the challenge only, so the same
                    // challenge must always give the same answer and
                    // different challenges different ones.
                    let c = [client, (i >> 8) as u8, i as u8, 0x5A];
                    let apdu = [0x00, 0x88, 0x00, 0x00, 0x04, c[0], c[1], c[2], c[3], 0x00];
                    let r = card.transmit(&apdu, &mut buf).unwrap().to_vec();
                    assert_eq!((r.len(), sw(&r)), (34, 0x9000), "client {client} apdu {i}");
                    if i == 0 {
                        first = Some(r.clone());
                    }
                    let again = [0x00, 0x88, 0x00, 0x00, 0x04, client, 0, 0, 0x5A, 0x00];
                    if i % 100 == 0 {
                        let r2 = card.transmit(&again, &mut buf).unwrap().to_vec();
                        assert_eq!(Some(r2), first, "client {client} got someone else's answer");
                    }
                }
                leave(card);
                first.unwrap()
            })
        })
        .collect();
    let answers: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let distinct: std::collections::HashSet<_> = answers.iter().collect();
    assert_eq!(
        distinct.len(),
        16,
        "clients' challenges must give distinct answers"
    );
}

#[test]
fn unplugged_reader_does_not_hang_clients_or_pcscd() {
    let ctx = context();
    let reader = reader_name(&ctx, "sim:tpdu-t1.unplug");
    let card = ctx
        .connect(&reader, ShareMode::Shared, Protocols::ANY)
        .unwrap();
    std::fs::write(pcscd().control.join("tpdu-t1.unplug.unplugged"), b"").unwrap();
    // The simulator looks at its control files every 50 ms.
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let mut buf = [0u8; 300];
    assert!(card
        .transmit(&[0x00, 0x84, 0x00, 0x00, 0x08], &mut buf)
        .is_err());
    assert!(start.elapsed() < Duration::from_secs(5));
    // The reader is no longer usable: listed as unavailable or gone.
    std::thread::sleep(Duration::from_millis(500));
    let mut states = vec![ReaderState::new(reader.clone(), State::UNAWARE)];
    let _ = ctx.get_status_change(Duration::from_secs(1), &mut states);
    let s = states[0].event_state();
    assert!(
        s.intersects(State::UNAVAILABLE | State::UNKNOWN | State::EMPTY | State::MUTE),
        "reader state after unplug: {s:?}"
    );
    // pcscd stays up: another reader still answers.
    let other = reader_name(&ctx, "sim:tpdu-t1.apdu");
    let card = ctx
        .connect(&other, ShareMode::Shared, Protocols::ANY)
        .unwrap();
    assert_eq!(
        sw(&transmit(&card, &[0x00, 0x84, 0x00, 0x00, 0x08])),
        0x9000
    );
    leave(card);
}

/// The readers pcscd lists for `device`, one per slot, in slot order.
fn reader_names(ctx: &Context, device: &str) -> Vec<CString> {
    let mut buf = vec![0u8; 4096];
    let wanted = format!("ferroccid {device} ");
    let mut names: Vec<CString> = ctx
        .list_readers(&mut buf)
        .unwrap()
        .filter(|r| r.to_string_lossy().starts_with(&wanted))
        .map(|r| r.to_owned())
        .collect();
    names.sort();
    names
}

/// What an application does on top of PC/SC: GET RESPONSE on 61xx, resend
/// with Le = xx on 6Cxx (ISO/IEC 7816-3 §10.3.4, 7816-4 §5.3.4).
fn exchange(card: &pcsc::Card, apdu: &[u8]) -> Vec<u8> {
    let mut r = transmit(card, apdu);
    let mut data = Vec::new();
    loop {
        match (r[r.len() - 2], r[r.len() - 1]) {
            (0x61, xx) => {
                data.extend_from_slice(&r[..r.len() - 2]);
                r = transmit(card, &[apdu[0], 0xC0, 0x00, 0x00, xx]);
            }
            (0x6C, xx) => {
                let mut again = apdu[..4].to_vec();
                again.push(xx);
                r = transmit(card, &again);
            }
            _ => {
                data.extend_from_slice(&r);
                return data;
            }
        }
    }
}

/// APDU cases 1-4 (ISO/IEC 7816-3 §12.1) on the preset card, and an
/// extended case 2 when `extended`.
fn apdu_cases(card: &pcsc::Card, extended: bool, label: &str) {
    // Case 1: VERIFY without data asks for the retry counter: 63C3
    // (three tries left on a fresh card).
    assert_eq!(
        sw(&exchange(card, &[0x00, 0x20, 0x00, 0x81])),
        0x63C3,
        "{label} case 1"
    );
    // Case 2: GET CHALLENGE of 8 bytes.
    let r = exchange(card, &[0x00, 0x84, 0x00, 0x00, 0x08]);
    assert_eq!((r.len(), sw(&r)), (10, 0x9000), "{label} case 2");
    // Case 3: VERIFY with the preset PIN.
    assert_eq!(
        sw(&exchange(card, b"\x00\x20\x00\x81\x06123456")),
        0x9000,
        "{label} case 3"
    );
    // Case 4: INTERNAL AUTHENTICATE: a 32-byte HMAC-SHA-256 answer.
    let r = exchange(card, &[0x00, 0x88, 0x00, 0x00, 0x04, 1, 2, 3, 4, 0x00]);
    assert_eq!((r.len(), sw(&r)), (34, 0x9000), "{label} case 4");
    if extended {
        let r = exchange(card, &[0x00, 0x84, 0x00, 0x00, 0x00, 0x01, 0x2C]);
        assert_eq!((r.len(), sw(&r)), (302, 0x9000), "{label} extended case 2");
    }
}

fn protocol_of(card: &pcsc::Card) -> pcsc::Protocol {
    let mut names = [0u8; 256];
    let mut atr = [0u8; 64];
    card.status2(&mut names, &mut atr)
        .unwrap()
        .protocol2()
        .expect("a protocol is active")
}

#[test]
fn apdu_cases_at_every_exchange_level() {
    let ctx = context();
    // (device, protocols to ask for, extended APDUs expected to work)
    let cases: &[(&str, Protocols, bool)] = &[
        ("sim:tpdu", Protocols::T0, false),
        ("sim:short-apdu", Protocols::ANY, false),
        ("sim:extended-apdu", Protocols::ANY, true),
        ("sim:character", Protocols::T1, true),
    ];
    for &(device, protocols, extended) in cases {
        let reader = reader_name(&ctx, device);
        // Tests run side by side on one pcscd: another may hold this card
        // in the other protocol (ProtoMismatch) until it disconnects.
        let start = std::time::Instant::now();
        let card = loop {
            match ctx.connect(&reader, ShareMode::Shared, protocols) {
                Err(pcsc::Error::ProtoMismatch) if start.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                other => break other.unwrap(),
            }
        };
        apdu_cases(&card, extended, device);
        leave(card);
    }
    // A short-APDU reader refuses an extended APDU: an error, not a crash.
    let reader = reader_name(&ctx, "sim:short-apdu");
    let card = ctx
        .connect(&reader, ShareMode::Shared, Protocols::ANY)
        .unwrap();
    let mut buf = vec![0u8; 400];
    let refused = card.transmit(&[0x00, 0x84, 0x00, 0x00, 0x00, 0x01, 0x2C], &mut buf);
    assert!(refused.is_err(), "{refused:02X?}");
    assert_eq!(
        sw(&transmit(&card, &[0x00, 0x84, 0x00, 0x00, 0x08])),
        0x9000
    );
    leave(card);
}

#[test]
fn four_slot_reader_exposes_every_slot() {
    let ctx = context();
    let names = reader_names(&ctx, "sim:4-slot");
    assert_eq!(names.len(), 4, "{names:?}");
    for (slot, name) in names.iter().enumerate() {
        assert!(
            name.to_string_lossy().ends_with(&format!(" {slot:02X}")),
            "{name:?}"
        );
        let card = ctx
            .connect(name, ShareMode::Shared, Protocols::ANY)
            .unwrap();
        // The profile's cards are T=0 only.
        assert_eq!(protocol_of(&card), pcsc::Protocol::T0);
        apdu_cases(&card, false, &format!("4-slot slot {slot}"));
        leave(card);
    }
}

#[test]
fn attributes_describe_the_reader() {
    let ctx = context();
    let reader = reader_name(&ctx, "sim:tpdu");
    let card = ctx
        .connect(&reader, ShareMode::Shared, Protocols::ANY)
        .unwrap();
    let mut buf = [0u8; 256];
    let atr = card
        .get_attribute(pcsc::Attribute::AtrString, &mut buf)
        .unwrap()
        .to_vec();
    let mut names = [0u8; 256];
    let mut status_atr = [0u8; 64];
    let status = card.status2(&mut names, &mut status_atr).unwrap();
    assert_eq!(atr, status.atr(), "SCARD_ATTR_ATR_STRING is the ATR");
    // The tpdu profile copies a GemPC Twin: iManufacturer "Gemplus",
    // iProduct "USB SmartCard Reader", bcdDevice 0x0100.
    let v = card
        .get_attribute(pcsc::Attribute::VendorName, &mut buf)
        .unwrap();
    assert_eq!(v, b"Gemplus\0");
    let v = card
        .get_attribute(pcsc::Attribute::VendorIfdType, &mut buf)
        .unwrap();
    assert_eq!(v, b"USB SmartCard Reader\0");
    // PC/SC part 3: 0xMMmmbbbb (major, minor, build).
    let v = card
        .get_attribute(pcsc::Attribute::VendorIfdVersion, &mut buf)
        .unwrap();
    assert_eq!(v, 0x0100_0000u32.to_le_bytes());
    // The profile's iSerialNumber.
    let v = card
        .get_attribute(pcsc::Attribute::VendorIfdSerialNo, &mut buf)
        .unwrap();
    assert_eq!(v, b"SIM-tpdu\0");
    // PC/SC part 3: 0xDDDDCCCC, DDDD = 0x0020 for USB; the simulator sits
    // on no bus (bus 0, address 0).
    let v = card
        .get_attribute(pcsc::Attribute::ChannelId, &mut buf)
        .unwrap();
    assert_eq!(v, 0x0020_0000u32.to_le_bytes());
    let v = card
        .get_attribute(pcsc::Attribute::Maxinput, &mut buf)
        .unwrap();
    assert_eq!(v, 65536u32.to_le_bytes());
    leave(card);
}

#[test]
fn pin_verify_at_tpdu_level_with_a_t1_card() {
    let ctx = context();
    let reader = reader_name(&ctx, "sim:pinpad");
    let card = ctx
        .connect(&reader, ShareMode::Exclusive, Protocols::T1)
        .unwrap();
    let mut buf = [0u8; MAX_BUFFER_SIZE];
    let apdu = [
        0x00, 0x20, 0x00, 0x81, 0x06, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    let mut s = vec![
        30, 0, 0x82, 0x06, 0x00, 0x08, 0x04, 0x02, 0x01, 0x09, 0x04, 0x00, 0, 0, 0,
    ];
    s.extend_from_slice(&(apdu.len() as u32).to_le_bytes());
    s.extend_from_slice(&apdu);
    let verify = 0x4200_0000 + 0x0033_0000 + 0x06;
    assert_eq!(card.control(verify, &s, &mut buf).unwrap(), [0x90, 0x00]);
    // The T=1 exchange goes on in step after the PIN block.
    assert_eq!(
        sw(&transmit(&card, &[0x00, 0x84, 0x00, 0x00, 0x08])),
        0x9000
    );
    card.disconnect(pcsc::Disposition::ResetCard)
        .map_err(|(_, e)| e)
        .unwrap();
}

fn csock() -> std::ffi::OsString {
    std::env::var_os("PCSCLITE_CSOCK_NAME").expect("set by pcscd()")
}

#[test]
fn pcsc_scan_sees_the_readers_and_the_cards() {
    context();
    let out = Command::new("timeout")
        .args(["10", "pcsc_scan", "-n", "-t", "2"])
        .env("PCSCLITE_CSOCK_NAME", csock())
        .output()
        .expect("pcsc_scan missing: tests/scripts/install-deps.sh (pcsc-tools)");
    let text = String::from_utf8_lossy(&out.stdout);
    for device in ["sim:tpdu-t1.apdu", "sim:pinpad", "sim:character"] {
        assert!(
            text.contains(&format!("ferroccid {device} ")),
            "{device} missing:\n{text}"
        );
    }
    // Every reader block names its card's ATR: the preset card's ATRs all
    // carry the historical bytes "FerroSim" (46 65 72 72 6F 53 69 6D).
    let atrs: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("ATR:"))
        .collect();
    assert!(atrs.len() >= 10, "{text}");
    assert!(
        atrs.iter().all(|l| l.contains("46 65 72 72 6F 53 69 6D")),
        "{atrs:#?}"
    );
    assert!(text.contains("Card inserted"), "{text}");
}

#[test]
fn opensc_tool_reads_the_atr_and_sends_an_apdu() {
    let ctx = context();
    let names = {
        let mut buf = vec![0u8; 4096];
        ctx.list_readers(&mut buf)
            .unwrap()
            .map(|r| r.to_owned())
            .collect::<Vec<_>>()
    };
    let index = names
        .iter()
        .position(|n| {
            n.to_string_lossy()
                .starts_with("ferroccid sim:extended-apdu ")
        })
        .expect("reader listed");
    let run = |args: &[&str]| {
        let out = Command::new("timeout")
            .arg("20")
            .arg("opensc-tool")
            .args(["-r", &index.to_string()])
            .args(args)
            .env("PCSCLITE_CSOCK_NAME", csock())
            .output()
            .expect("opensc-tool missing: tests/scripts/install-deps.sh (opensc)");
        assert!(
            out.status.success(),
            "opensc-tool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let atr = run(&["-a"]);
    assert!(atr.contains("46:65:72:72:6f:53:69:6d"), "{atr}");
    let out = run(&["-s", "00:84:00:00:08"]);
    assert!(out.contains("SW1=0x90, SW2=0x00"), "{out}");
    // Eight bytes of challenge on the line after "Received".
    let data = out
        .lines()
        .skip_while(|l| !l.starts_with("Received"))
        .nth(1)
        .unwrap_or("");
    assert_eq!(
        data.split_whitespace()
            .take(8)
            .filter(|b| b.len() == 2)
            .count(),
        8,
        "{out}"
    );
}
