//! The reader zoo: the simulator impersonates each of the 773 CCID
//! interfaces of libccid's corpus (`../shared/corpus/reader-class-
//! descriptors.tsv`) and ferroccid's `Reader` runs through power-on,
//! protocol selection (a T=0 card and a T=1 card where the descriptor's
//! dwProtocols offers them), the four ISO/IEC 7816-3 §12.1 APDU cases and
//! an extended APDU where the exchange level allows one.
//!
//! Expected answers come from the virtual card's documented personalisation
//! and ISO/IEC 7816-4, not from ferroccid's output. Readers that cannot pass
//! are listed in [`EXCLUDED`] with the reason their descriptor gives; the
//! test fails if one of them starts passing, or any other reader fails.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroccid::ccid::{ClassDescriptor, ExchangeLevel};
use ferroccid::{ProtocolPreference, Reader, ReaderOptions};
use ferroccid_sim::card::app::internal_authenticate;
use ferroccid_sim::card::config::PRESET_AUTH_KEY;
use ferroccid_sim::card::fs::{large_ef_byte, DEMO_AID};
use ferroccid_sim::card::CardConfig;
use ferroccid_sim::profile::Profile;
use ferroccid_sim::SimTransport;

/// Readers excluded from the zoo: (file#interface, the failure they show,
/// reason). Each reason is what the reader's own class descriptor says.
const EXCLUDED: &[(&str, &str, &str)] = &[
    (
        "MySmartPad.txt#1",
        "offers neither T=0 nor T=1",
        "dwProtocols 0x00000300 sets only bits 8-9, which CCID §5.1 leaves \
         reserved: the interface offers neither T=0 nor T=1, so no card \
         protocol can be selected",
    ),
    (
        "OMNIKEY_AG_3121.txt#0",
        "T=0 card: case 4",
        "dwFeatures 0x000407B2 announces the extended-APDU level, but the \
         firmware works at TPDU level (libccid's CARDMAN3121+1 hack; \
         ferroccid's quirks table forces TPDU for 076B:3022). The simulator \
         impersonates the descriptor as announced and so treats ferroccid's \
         correct T=0 TPDUs as APDUs: a case-4 TPDU carries no Le and the \
         card's data never comes back",
    ),
];

/// One corpus row.
struct Row {
    key: String,
    vid_pid: (u16, u16),
    descriptor: Vec<u8>,
}

fn corpus() -> Vec<Row> {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .join("../shared/corpus/reader-class-descriptors.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the reader corpus {} is missing ({e}); the zoo needs it",
            path.display()
        )
    });
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 4, "corpus line {line:?}");
            let (vid, pid) = fields[2].split_once(':').expect("VID:PID");
            let descriptor = fields[3]
                .split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
                .collect();
            Row {
                key: format!("{}#{}", fields[0], fields[1]),
                vid_pid: (
                    u16::from_str_radix(vid, 16).unwrap(),
                    u16::from_str_radix(pid, 16).unwrap(),
                ),
                descriptor,
            }
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Sends `command` and checks the response equals `expected`.
fn expect(
    slot: &ferroccid::Slot,
    what: &str,
    command: &[u8],
    expected: &[u8],
) -> Result<(), String> {
    let mut buf = vec![0u8; 70_000];
    let n = slot
        .transmit(command, &mut buf)
        .map_err(|e| format!("{what} ({}): {e}", hex(command)))?;
    if &buf[..n] != expected {
        return Err(format!(
            "{what} ({}): got {}, expected {}",
            hex(command),
            hex(&buf[..n]),
            hex(expected)
        ));
    }
    Ok(())
}

/// One reader with one card: everything the zoo checks.
fn run_session(row: &Row, card: CardConfig, protocol: u8) -> Result<(), String> {
    let mut profile = Profile::from_descriptor(&row.descriptor)
        .map_err(|e| format!("simulator refuses the descriptor: {e}"))?;
    // The real identity, so the quirks table applies as on hardware.
    (profile.vendor_id, profile.product_id) = row.vid_pid;
    for slot in &mut profile.slots {
        slot.card = Some(card.clone());
    }
    // A silent card is reported quickly: the zoo is about correct readers.
    profile.mute_timeout = Duration::from_millis(20);
    let (transport, _handle) = SimTransport::open(profile);
    let options = ReaderOptions {
        margin: Duration::from_millis(500),
        ..ReaderOptions::default()
    };
    let reader =
        Reader::open_with(Arc::new(transport), options).map_err(|e| format!("open: {e}"))?;
    let level = reader.descriptor().exchange_level();
    let slot = reader.slot(0).map_err(|e| e.to_string())?;
    slot.power_on().map_err(|e| format!("power on: {e}"))?;
    let preference = if protocol == 0 {
        ProtocolPreference::T0
    } else {
        ProtocolPreference::T1
    };
    let selected = slot
        .set_protocol(preference)
        .map_err(|e| format!("set_protocol T={protocol}: {e}"))?;
    if selected != protocol {
        return Err(format!("asked for T={protocol}, got T={selected}"));
    }
    // Case 1: VERIFY without data = retry counter, 63C3 (3 tries).
    expect(&slot, "case 1", &[0x00, 0x20, 0x00, 0x81], &[0x63, 0xC3])?;
    // Case 3: SELECT MF, no response data (P2 0C): 9000.
    expect(
        &slot,
        "case 3",
        &[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00],
        &[0x90, 0x00],
    )?;
    // Case 2: GET CHALLENGE, 8 random bytes + 9000.
    let mut buf = [0u8; 300];
    let n = slot
        .transmit(&[0x00, 0x84, 0x00, 0x00, 0x08], &mut buf)
        .map_err(|e| format!("case 2: {e}"))?;
    if n != 10 || buf[8..10] != [0x90, 0x00] {
        return Err(format!("case 2: got {}", hex(&buf[..n])));
    }
    // Case 4: INTERNAL AUTHENTICATE: HMAC-SHA-256 under the card's key.
    let challenge = *b"zoo challenge 16";
    let mut command = vec![0x00, 0x88, 0x00, 0x00, challenge.len() as u8];
    command.extend_from_slice(&challenge);
    command.push(0x20);
    let mut expected = internal_authenticate(PRESET_AUTH_KEY, &challenge, 32);
    expected.extend_from_slice(&[0x90, 0x00]);
    expect(&slot, "case 4", &command, &expected)?;
    if extended_allowed(level, protocol) {
        // SELECT the demo DF and EF 5010, then READ BINARY with extended
        // Le = 0x03E8: 1000 bytes, more than a short APDU can ask for.
        let mut select = vec![0x00, 0xA4, 0x04, 0x0C, DEMO_AID.len() as u8];
        select.extend_from_slice(DEMO_AID);
        expect(&slot, "select DF", &select, &[0x90, 0x00])?;
        expect(
            &slot,
            "select EF 5010",
            &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x50, 0x10],
            &[0x90, 0x00],
        )?;
        let mut expected: Vec<u8> = (0..1000).map(large_ef_byte).collect();
        expected.extend_from_slice(&[0x90, 0x00]);
        expect(
            &slot,
            "extended case 2",
            &[0x00, 0xB0, 0x00, 0x00, 0x00, 0x03, 0xE8],
            &expected,
        )?;
    }
    slot.power_off().map_err(|e| format!("power off: {e}"))?;
    Ok(())
}

/// Extended APDUs travel at extended-APDU level (CCID chaining), and at
/// TPDU or character level over T=1 (T=1 chaining, ISO/IEC 7816-3 §11.6.2);
/// short-APDU readers refuse them and T=0 needs ENVELOPE.
fn extended_allowed(level: ExchangeLevel, protocol: u8) -> bool {
    match level {
        ExchangeLevel::ExtendedApdu => true,
        ExchangeLevel::Tpdu | ExchangeLevel::Character => protocol == 1,
        ExchangeLevel::ShortApdu => false,
    }
}

/// Every session of one reader: a T=0 card if dwProtocols has T=0, a T=1
/// card if it has T=1.
fn run_reader(row: &Row) -> Result<usize, String> {
    let d = ClassDescriptor::parse(&row.descriptor).map_err(|e| format!("descriptor: {e}"))?;
    let mut sessions = 0;
    if d.supports_t0() {
        run_session(row, CardConfig::t0(), 0).map_err(|e| format!("T=0 card: {e}"))?;
        sessions += 1;
    }
    if d.supports_t1() {
        run_session(row, CardConfig::t1(), 1).map_err(|e| format!("T=1 card: {e}"))?;
        sessions += 1;
    }
    if sessions == 0 {
        return Err(format!(
            "dwProtocols {:#x} offers neither T=0 nor T=1",
            d.protocols
        ));
    }
    Ok(sessions)
}

#[derive(Default)]
struct Tally {
    readers: usize,
    passed: usize,
    excluded: usize,
}

#[test]
fn every_corpus_reader_runs_power_on_protocols_and_apdu_cases() {
    let rows = corpus();
    assert_eq!(rows.len(), 773, "the corpus has 773 interfaces");
    let started = Instant::now();
    let mut table: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut unexpected_failures = Vec::new();
    let mut unexpected_passes = Vec::new();
    let mut sessions = 0;
    for key in EXCLUDED.iter().map(|(k, _, _)| k) {
        assert!(
            rows.iter().any(|r| r.key == *key),
            "excluded reader {key} is not in the corpus"
        );
    }
    for row in &rows {
        let level = ClassDescriptor::parse(&row.descriptor)
            .map(|d| d.exchange_level().as_str())
            .unwrap_or("unparsable");
        let tally = table.entry(level).or_default();
        tally.readers += 1;
        let excluded = EXCLUDED.iter().find(|(k, _, _)| *k == row.key);
        match (run_reader(row), excluded) {
            (Ok(n), None) => {
                tally.passed += 1;
                sessions += n;
            }
            (Ok(_), Some(_)) => unexpected_passes.push(row.key.clone()),
            (Err(e), Some((_, symptom, _))) if e.contains(symptom) => tally.excluded += 1,
            (Err(e), Some((_, symptom, _))) => unexpected_failures.push(format!(
                "{} (excluded for {symptom:?}) fails differently: {e}",
                row.key
            )),
            (Err(e), None) => unexpected_failures.push(format!("{}: {e}", row.key)),
        }
    }
    println!(
        "reader zoo: {sessions} reader/card sessions in {:?}",
        started.elapsed()
    );
    println!(
        "{:<14} {:>7} {:>7} {:>9}",
        "level", "readers", "passed", "excluded"
    );
    let mut total = Tally::default();
    for (level, t) in &table {
        println!(
            "{level:<14} {:>7} {:>7} {:>9}",
            t.readers, t.passed, t.excluded
        );
        total.readers += t.readers;
        total.passed += t.passed;
        total.excluded += t.excluded;
    }
    println!(
        "{:<14} {:>7} {:>7} {:>9}",
        "total", total.readers, total.passed, total.excluded
    );
    for (key, _, reason) in EXCLUDED {
        println!("excluded {key}: {reason}");
    }
    assert!(
        unexpected_failures.is_empty(),
        "{} readers failed:\n{}",
        unexpected_failures.len(),
        unexpected_failures.join("\n")
    );
    assert!(
        unexpected_passes.is_empty(),
        "excluded readers now pass, remove them from EXCLUDED: {unexpected_passes:?}"
    );
    assert_eq!(total.passed + total.excluded, 773);
}
