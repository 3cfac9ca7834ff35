//! `ferroccid descriptor`: human, JSON and error output.
use assert_cmd::Command;

/// ACS ACR122U class descriptor (also in the corpus as ACR122U, 072F:90CC).
const ACR122U: &str = "36 21 00 01 00 07 03 00 00 00 A0 0F 00 00 A0 0F 00 00 00 00 2A 00 00 90 D0 03 00 00 F7 00 00 00 00 00 00 00 00 00 00 00 30 00 01 00 0F 01 00 00 00 00 00 00 00 01";

fn ferroccid() -> Command {
    Command::cargo_bin("ferroccid").expect("ferroccid binary")
}

fn json_of(args: &[&str]) -> serde_json::Value {
    let out = ferroccid().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn json_has_exactly_the_documented_keys_and_values() {
    let v = json_of(&["descriptor", ACR122U, "--json"]);
    let expected = serde_json::json!({
        "bcd_ccid": "1.00",
        "max_slot_index": 0,
        "voltage_support": 7,
        "protocols": 3,
        "default_clock_khz": 4000,
        "maximum_clock_khz": 4000,
        "num_clock_supported": 0,
        "data_rate": 10752,
        "max_data_rate": 250000,
        "num_data_rates_supported": 0,
        "max_ifsd": 247,
        "synch_protocols": 0,
        "mechanical": 0,
        "features": 0x0001_0030,
        "exchange_level": "tpdu",
        "max_message_length": 271,
        "class_get_response": 0,
        "class_envelope": 0,
        "lcd_layout": 0,
        "pin_support": 0,
        "max_busy_slots": 1,
    });
    assert_eq!(v, expected);
}

#[test]
fn reader_lookup_by_name_and_vid_pid() {
    let by_hex = json_of(&["descriptor", ACR122U, "--json"]);
    assert_eq!(
        json_of(&["descriptor", "--reader", "ACR122U", "--json"]),
        by_hex
    );
    // 072F:90CC: the first corpus row with that VID:PID is ACR122U.
    assert_eq!(
        json_of(&["descriptor", "--reader", "072F:90CC", "--json"]),
        by_hex
    );
    // Several interfaces: the first row (interface 0, bcdCCID 00 01 = 1.00) is used.
    let v = json_of(&[
        "descriptor",
        "--reader",
        "ACS_ACR1252_Dual_Reader",
        "--json",
    ]);
    assert_eq!(v["bcd_ccid"], "1.00");
    // bcdCCID bytes 01 10 (0x1001, a vendor's byte-order slip) print as libccid does: 10.01.
    let v = json_of(&[
        "descriptor",
        "--reader",
        "Alpha-Project_ANGARA_Token",
        "--json",
    ]);
    assert_eq!(v["bcd_ccid"], "10.01");
    // dwFeatures bytes B4 04 01 00 = 0x000104B4: TPDU level.
    assert_eq!(v["exchange_level"], "tpdu");
    let e = stderr_of_failure(&["descriptor", "--reader", "NoSuchReader"]);
    assert!(e.contains("no reader named"), "{e}");
}

#[test]
fn human_output_decodes_features_bit_by_bit() {
    let out = ferroccid().args(["descriptor", ACR122U]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "bcdCCID                 1.00",
        "bVoltageSupport         0x07: 5.0V, 3.0V, 1.8V",
        "dwProtocols             0x00000003: T=0, T=1",
        "dwDefaultClock          4000 kHz",
        "dwMaxIFSD               247",
        "  [x] 0x00000010 Automatic ICC clock frequency change according to parameters",
        "  [x] 0x00000020 Automatic baud rate change according to frequency and Fi, Di params",
        "  [ ] 0x00000080 Automatic PPS made by the CCID",
        "  exchange level 0x00010000: TPDU",
        "dwMaxCCIDMessageLength  271 bytes",
        "bMaxCCIDBusySlots       1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
}

fn stderr_of_failure(args: &[&str]) -> String {
    let out = ferroccid().args(args).output().unwrap();
    assert!(!out.status.success(), "must fail: {args:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn bad_input_names_the_wrong_byte() {
    let wrong_length = ACR122U.replacen("36", "35", 1);
    let e = stderr_of_failure(&["descriptor", &wrong_length]);
    assert!(e.contains("byte 0 (bLength) is 0x35, expected 0x36"), "{e}");
    let wrong_type = ACR122U.replacen("21", "24", 1);
    let e = stderr_of_failure(&["descriptor", &wrong_type]);
    assert!(e.contains("byte 1 (bDescriptorType) is 0x24"), "{e}");
    let e = stderr_of_failure(&["descriptor", &ACR122U[..ACR122U.len() - 3]]);
    assert!(e.contains("53 bytes, expected 54"), "{e}");
    let e = stderr_of_failure(&["descriptor", "36 21 zz"]);
    assert!(e.contains("byte 2 is not hex"), "{e}");
    stderr_of_failure(&["descriptor"]);
}
