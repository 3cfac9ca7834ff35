//! Every built-in profile passes the transport conformance suite, profile
//! files load, and the simulator impersonates each of the 773 real CCID
//! interfaces of libccid's corpus well enough to power a card and report
//! the slot status.

use std::path::PathBuf;
use std::time::Duration;

use ferroccid::testing::run_conformance;
use ferroccid::{DeviceName, Transport};
use ferroccid_sim::profile::{Profile, BUILTIN_NAMES};
use ferroccid_sim::SimTransport;

const T: Duration = Duration::from_secs(5);

#[test]
fn conformance_suite_passes_for_every_builtin_profile() {
    for name in BUILTIN_NAMES {
        let (t, _h) = SimTransport::open(Profile::from_name(name).unwrap());
        run_conformance(&t).unwrap_or_else(|e| panic!("profile {name}: {e}"));
    }
}

#[test]
fn device_names_open_profiles() {
    let (t, _h) = SimTransport::open_name(&DeviceName::parse("sim").unwrap()).unwrap();
    assert_eq!((t.info().vendor_id, t.info().product_id), (0x08E6, 0x3437));
    let (t, _h) = SimTransport::open_name(&DeviceName::parse("sim:4-slot").unwrap()).unwrap();
    assert_eq!(t.info().class_descriptor.as_ref().unwrap()[4], 3);
    assert!(SimTransport::open_name(&DeviceName::parse("sim:nope").unwrap()).is_err());
}

#[test]
fn tpdu_profile_vid_pid_is_a_libccid_tpdu_reader() {
    let p = Profile::from_name("tpdu").unwrap();
    let d = p.class_descriptor();
    // dwFeatures exchange level bits 0x00070000: 0x00010000 = TPDU.
    assert_eq!(d.features & 0x0007_0000, 0x0001_0000);
    let list = manifest().join("../shared/corpus/readers/supported_readers.txt");
    let text = std::fs::read_to_string(&list)
        .unwrap_or_else(|e| panic!("libccid reader list {} missing: {e}", list.display()));
    let entry = format!("0x{:04X}:0x{:04X}:", p.vendor_id, p.product_id);
    assert!(
        text.lines().any(|l| l.starts_with(&entry)),
        "{entry} listed"
    );
}

#[test]
fn profile_files_and_specs() {
    let dir = manifest().join("fixtures/profiles");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures/profiles exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let p = Profile::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(p.slots.len(), p.slot_count());
            let (t, _h) = SimTransport::open(p);
            run_conformance(&t).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            count += 1;
        }
    }
    assert!(count >= 2, "example profiles in {}", dir.display());
    let hex = "36 21 00 01 00 07 03 00 00 00 A0 0F 00 00 A0 0F 00 00 00 00 2A 00 00 16 40 05 00 00 FE 00 00 00 00 00 00 00 00 00 00 00 30 02 01 00 0F 01 00 00 00 00 00 00 00 01";
    let p = Profile::parse(hex).unwrap();
    assert_eq!(p.descriptor[40..44], [0x30, 0x02, 0x01, 0x00]);
    assert_eq!(Profile::parse("pinpad").unwrap().product_id, 0x3478);
    assert!(Profile::parse("36 21 00").is_err());
    assert!(Profile::from_json("{\"name\": 1}").is_err());
}

fn manifest() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn cmd(ty: u8, slot: u8, seq: u8) -> [u8; 10] {
    [ty, 0, 0, 0, 0, slot, seq, 0, 0, 0]
}

#[test]
fn every_corpus_descriptor_powers_a_card() {
    let path = manifest().join("../shared/corpus/reader-class-descriptors.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("corpus {} missing: {e}", path.display()));
    let mut rows = 0;
    let mut buf = vec![0u8; 70_000];
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 4, "row {line:?}");
        let (file, hex) = (fields[0], fields[3]);
        let profile = Profile::from_descriptor_hex(hex).unwrap_or_else(|e| panic!("{file}: {e}"));
        let d = profile.class_descriptor();
        let (t, _h) = SimTransport::open(profile);
        for slot in 0..=d.max_slot_index {
            let seq = slot.wrapping_mul(2);
            t.bulk_out(&cmd(0x62, slot, seq), T).unwrap();
            let n = t.bulk_in(&mut buf, T).unwrap();
            let r = &buf[..n];
            assert_eq!(r[0], 0x80, "{file} slot {slot}: DataBlock");
            assert_eq!((r[5], r[6]), (slot, seq), "{file}");
            let atr_len = u32::from_le_bytes([r[1], r[2], r[3], r[4]]) as usize;
            assert_eq!(n, 10 + atr_len, "{file}");
            // The ATR is a valid ISO 7816-3 ATR starting with TS = 3B.
            assert_eq!((r[7], r[10]), (0x00, 0x3B), "{file} slot {slot}: {r:02X?}");
            t.bulk_out(&cmd(0x65, slot, seq + 1), T).unwrap();
            let n = t.bulk_in(&mut buf, T).unwrap();
            assert_eq!(
                &buf[..n],
                &[0x81, 0, 0, 0, 0, slot, seq + 1, 0x00, 0, 0],
                "{file} slot {slot}: present and active"
            );
        }
        rows += 1;
    }
    assert_eq!(rows, 773);
}
