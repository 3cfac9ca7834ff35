//! `ferroccid apdu` against the simulated reader and its virtual card
//! (personalisation in `sim::card::fs`): responses as ISO/IEC 7816-4
//! defines them, one line of upper-case hex per APDU, `--json`, reader
//! resolution and error exits.
use assert_cmd::Command;
use ferroccid_sim::card::fs::{large_ef_byte, TEXT_2F00};

fn ferroccid() -> Command {
    Command::cargo_bin("ferroccid").expect("ferroccid binary")
}

/// Runs `ferroccid apdu ARGS`, expecting success; stdout lines.
fn apdu_ok(args: &[&str]) -> Vec<String> {
    let out = ferroccid().arg("apdu").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ferroccid apdu {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs `ferroccid apdu ARGS`, expecting failure; stderr.
fn apdu_err(args: &[&str]) -> String {
    let out = ferroccid().arg("apdu").args(args).output().unwrap();
    assert!(!out.status.success(), "ferroccid apdu {args:?} succeeded");
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
    String::from_utf8(out.stderr).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn is_upper_hex(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c))
}

/// GET CHALLENGE, Le = 8 (ISO/IEC 7816-4 §11.5.3).
const GET_CHALLENGE: &str = "0084000008";

#[test]
fn get_challenge_on_sim_prints_8_random_bytes_and_9000() {
    let first = apdu_ok(&["--reader", "sim", GET_CHALLENGE]);
    let second = apdu_ok(&["--reader", "sim", GET_CHALLENGE]);
    for lines in [&first, &second] {
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line.len(), 20, "{line}");
        assert!(is_upper_hex(line), "{line}");
        assert!(line.ends_with("9000"), "{line}");
    }
    assert_ne!(first, second, "two challenges are not the same bytes");
}

#[test]
fn the_default_reader_is_sim() {
    let lines = apdu_ok(&[GET_CHALLENGE]);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].ends_with("9000") && lines[0].len() == 20);
}

#[test]
fn each_apdu_gets_its_own_line_and_card_errors_are_output_not_failures() {
    let lines = apdu_ok(&[
        // SELECT MF by FID, no response data (P2 = 0C): 90 00.
        "00A4000C023F00",
        // SELECT EF 2F00, then READ BINARY with Le = 00 (up to 256 bytes).
        "00 A4 02 0C 02 2F 00",
        "00:B0:00:00:00",
        // VERIFY PIN 81 with "111111": wrong, 63 Cx with tries left.
        "0020008106313131313131",
    ]);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0], "9000");
    assert_eq!(lines[1], "9000");
    assert_eq!(lines[2], format!("{}9000", hex(TEXT_2F00)));
    assert!(lines[3].starts_with("63C"), "{}", lines[3]);
}

#[test]
fn json_output_has_command_response_sw_and_micros() {
    let out = ferroccid()
        .args(["apdu", "--json", "00a4000c023f00", GET_CHALLENGE])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let items = v.as_array().expect("an array");
    assert_eq!(items.len(), 2);
    for item in items {
        let mut keys: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["command", "micros", "response", "sw"]);
        assert!(item["micros"].as_u64().is_some());
    }
    assert_eq!(items[0]["command"], "00A4000C023F00");
    assert_eq!(items[0]["response"], "9000");
    assert_eq!(items[0]["sw"], "9000");
    assert_eq!(items[1]["command"], GET_CHALLENGE);
    let response = items[1]["response"].as_str().unwrap();
    assert_eq!(response.len(), 20);
    assert!(response.ends_with("9000"));
    assert_eq!(items[1]["sw"], "9000");
}

#[test]
fn protocols_can_be_forced_where_card_and_reader_offer_them() {
    for (reader, protocol) in [
        ("sim:tpdu-t0", "t0"),
        ("sim:tpdu-t1", "t1"),
        ("sim", "t0"),
        ("sim", "t1"),
        ("sim:character", "t1"),
        ("sim:short-apdu", "any"),
    ] {
        let lines = apdu_ok(&["--reader", reader, "--protocol", protocol, GET_CHALLENGE]);
        assert_eq!(lines.len(), 1, "{reader} {protocol}");
        assert!(lines[0].ends_with("9000"), "{reader} {protocol}: {lines:?}");
    }
    // The tpdu-t0 card offers only T=0.
    let err = apdu_err(&["--reader", "sim:tpdu-t0", "--protocol", "t1", GET_CHALLENGE]);
    assert!(err.contains("protocol"), "{err}");
}

#[test]
fn extended_read_binary_on_the_extended_apdu_reader() {
    // SELECT the demo DF by AID, EF 5010, READ BINARY with extended Le
    // 000000 = 65536 bytes (ISO/IEC 7816-4 §5.1).
    let lines = apdu_ok(&[
        "--reader",
        "sim:extended-apdu",
        "00A4040C0AF0464552524F43434944",
        "00A4020C025010",
        "00B00000000000",
    ]);
    assert_eq!(&lines[..2], ["9000", "9000"]);
    let expected: Vec<u8> = (0..65536).map(large_ef_byte).collect();
    assert_eq!(lines[2].len(), 2 * (65536 + 2));
    assert!(lines[2] == format!("{}9000", hex(&expected)));
}

#[test]
fn readers_are_found_by_a_unique_part_of_their_name() {
    // Only the pinpad profile's name contains "pinpad".
    let lines = apdu_ok(&["--reader", "PinPad", GET_CHALLENGE]);
    assert!(lines[0].ends_with("9000"));
    // "tpdu" is in three simulated readers' names: an error listing them.
    let err = apdu_err(&["--reader", "tpdu", GET_CHALLENGE]);
    assert!(err.contains("matches"), "{err}");
    for candidate in ["(sim)", "(sim:tpdu-t0)", "(sim:tpdu-t1)"] {
        assert!(err.contains(candidate), "{candidate} in {err}");
    }
    let err = apdu_err(&["--reader", "no such reader here", GET_CHALLENGE]);
    assert!(err.contains("no reader matches"), "{err}");
}

#[test]
fn bad_input_and_reader_refusals_exit_non_zero_with_the_reason() {
    let err = apdu_err(&["00zz0000"]);
    assert!(err.contains("'z' is not a hex digit"), "{err}");
    let err = apdu_err(&["008400000"]);
    assert!(err.contains("odd number of hex digits"), "{err}");
    let err = apdu_err(&["0084"]);
    assert!(err.contains("at least CLA INS P1 P2"), "{err}");
    // A short-APDU reader refuses an extended APDU (CCID §5.1 dwFeatures).
    let err = apdu_err(&["--reader", "sim:short-apdu", "00B00000000000"]);
    assert!(err.contains("00B00000000000"), "{err}");
    assert!(err.to_lowercase().contains("extended"), "{err}");
    // A profile that does not exist.
    let err = apdu_err(&["--reader", "sim:no-such-profile", GET_CHALLENGE]);
    assert!(err.contains("no-such-profile"), "{err}");
    // No APDU at all is a usage error.
    assert!(!ferroccid().arg("apdu").output().unwrap().status.success());
}

#[test]
fn a_descriptor_in_the_device_name_makes_the_simulator_that_reader() {
    // Cherry SmartBoard XX33 (short APDU) as a sim:HEX name.
    let cherry = "36:21:00:01:00:01:03:00:00:00:A0:0F:00:00:A0:0F:00:00:00:00:2A:00:00:16:40:05:00:00:FE:00:00:00:00:00:00:00:00:00:00:00:72:04:02:00:0F:01:00:00:00:00:00:00:01:01";
    let name = format!("sim:{cherry}");
    let lines = apdu_ok(&["--reader", &name, GET_CHALLENGE]);
    assert!(lines[0].ends_with("9000"));
    let err = apdu_err(&["--reader", &name, "00B00000000000"]);
    assert!(err.to_lowercase().contains("extended"), "{err}");
}

/// `--timeout SECONDS` (any subcommand) is checked and taken: a bad value
/// is refused before anything is opened, a good one leaves the exchange
/// as it was.
#[test]
fn timeout_option_is_checked_and_taken() {
    for bad in ["0", "-3", "soon", "nan"] {
        let out = ferroccid()
            .arg(format!("--timeout={bad}"))
            .args(["apdu", "--reader", "sim", "0084000008"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "--timeout {bad} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("seconds"), "--timeout {bad}: {stderr}");
    }
    let out = ferroccid()
        .args(["apdu", "--timeout", "90", "--reader", "sim", "0084000008"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.trim_end().ends_with("9000"), "{stdout}");
}
