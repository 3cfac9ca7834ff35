//! `ferroccid list`: the built-in simulated readers, as their class
//! descriptors describe them (CCID §5.1: bMaxSlotIndex, dwFeatures bits
//! 16-18 for the exchange level), in the table and in `--json`.
use assert_cmd::Command;

fn ferroccid() -> Command {
    Command::cargo_bin("ferroccid").expect("ferroccid binary")
}

fn listing() -> Vec<serde_json::Value> {
    let out = ferroccid().args(["list", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON array");
    v.as_array().expect("an array").clone()
}

fn by_device<'a>(readers: &'a [serde_json::Value], device: &str) -> &'a serde_json::Value {
    readers
        .iter()
        .find(|r| r["device"] == device)
        .unwrap_or_else(|| panic!("{device} is listed: {readers:#?}"))
}

#[test]
fn json_objects_have_the_documented_fields() {
    let readers = listing();
    assert!(!readers.is_empty());
    for r in &readers {
        let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "device",
                "exchange_level",
                "name",
                "simulated",
                "slots",
                "vid_pid"
            ]
        );
        let vid_pid = r["vid_pid"].as_str().unwrap();
        assert_eq!(vid_pid.len(), 9, "{vid_pid}");
        assert!(vid_pid
            .chars()
            .all(|c| c == ':' || c.is_ascii_digit() || ('A'..='F').contains(&c)));
        // Real readers carry pcscd's usb: names, the simulator sim names.
        let device = r["device"].as_str().unwrap();
        assert_eq!(
            r["simulated"].as_bool().unwrap(),
            device == "sim" || device.starts_with("sim:"),
            "{r}"
        );
    }
}

#[test]
fn the_default_simulated_reader_is_listed_as_sim() {
    let readers = listing();
    let sim = by_device(&readers, "sim");
    assert_eq!(sim["simulated"], true);
    // The default profile impersonates a GemPC Twin: 08E6:3437, one slot,
    // dwFeatures 0x00010230 (TPDU level).
    assert_eq!(sim["vid_pid"], "08E6:3437");
    assert_eq!(sim["slots"], 1);
    assert_eq!(sim["exchange_level"], "tpdu");
}

#[test]
fn every_built_in_profile_is_listed_with_its_level_and_slots() {
    let readers = listing();
    // Levels from each profile's dwFeatures (CCID §5.1 table 5.1-1):
    // 0x00020472 short APDU, 0x000402B2 extended APDU, 0x00000030 character;
    // the 4-slot profile's bMaxSlotIndex is 3.
    let expected = [
        ("sim:tpdu-t0", "tpdu", 1),
        ("sim:tpdu-t1", "tpdu", 1),
        ("sim:short-apdu", "short_apdu", 1),
        ("sim:extended-apdu", "extended_apdu", 1),
        ("sim:character", "character", 1),
        ("sim:4-slot", "tpdu", 4),
        ("sim:pinpad", "tpdu", 1),
    ];
    for (device, level, slots) in expected {
        let r = by_device(&readers, device);
        assert_eq!(r["exchange_level"], level, "{device}");
        assert_eq!(r["slots"], slots, "{device}");
        assert_eq!(r["simulated"], true, "{device}");
    }
    let names: Vec<&str> = readers
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "names are distinct: {names:?}");
}

#[test]
fn the_table_has_a_header_and_a_line_per_reader() {
    let out = ferroccid().arg("list").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let header = lines.next().expect("a header");
    for column in ["VID:PID", "NAME", "SLOTS", "LEVEL", "DEVICE"] {
        assert!(header.contains(column), "{header}");
    }
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), listing().len());
    let sim_row = rows
        .iter()
        .find(|l| l.trim_end().ends_with(" sim"))
        .expect("a row for the default reader");
    assert!(sim_row.starts_with("08E6:3437"), "{sim_row}");
    assert!(sim_row.contains("simulated"), "{sim_row}");
    assert!(sim_row.contains("tpdu"), "{sim_row}");
    let four = rows.iter().find(|l| l.ends_with("sim:4-slot")).unwrap();
    assert!(four.split_whitespace().any(|w| w == "4"), "{four}");
}
