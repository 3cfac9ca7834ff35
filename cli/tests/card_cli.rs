//! `ferroccid card` and `ferroccid monitor` against the simulated reader
//! (`sim`, the default), checked against the demo card's personalisation.

use assert_cmd::Command;
use ferroccid_sim::card::fs::{DEMO_AID, TEXT_2F00, TEXT_SECRET};

fn ferroccid() -> Command {
    Command::cargo_bin("ferroccid").expect("the ferroccid binary is built")
}

fn stdout_of(args: &[&str], stdin: &str) -> String {
    let out = ferroccid().args(args).write_stdin(stdin).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn status_shows_the_powered_card() {
    let text = stdout_of(&["card", "status"], "");
    assert!(text.contains("present     true"), "{text}");
    assert!(text.contains("powered     true"), "{text}");
    // TS 3B and the historical bytes "FerroSim" of the presets.
    assert!(text.contains("ATR         3B"), "{text}");
    assert!(text.contains("46 65 72 72 6F 53 69 6D"), "{text}");
}

#[test]
fn select_prints_the_fcp() {
    let text = stdout_of(&["card", "select", "3F00/5000/5002"], "");
    assert!(text.contains("FID         5002"), "{text}");
    assert!(text.contains("LinearFixed"), "{text}");
    assert!(text.contains("records     3 (max 16 bytes)"), "{text}");
    let aid: String = DEMO_AID.iter().map(|b| format!("{b:02X}")).collect();
    let text = stdout_of(&["card", "select", "--aid", &aid], "");
    assert!(
        text.contains("FID         5000") && text.contains("Df"),
        "{text}"
    );
}

#[test]
fn read_writes_file_contents_to_stdout() {
    let out = ferroccid()
        .args(["card", "read", "3F00/2F00"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, TEXT_2F00);
    let out = ferroccid()
        .args(["card", "read", "3F00/5000/5001", "--pin", "81", "--stdin"])
        .write_stdin("123456\n")
        .output()
        .unwrap();
    assert_eq!(out.stdout, TEXT_SECRET);
    let out = ferroccid()
        .args(["card", "read", "3F00/5000/5001"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("6982"));
    // Records, one per line in hex: "first", "second record".
    let text = stdout_of(&["card", "read", "3F00/5000/5003"], "");
    assert_eq!(text.lines().next(), Some("66 69 72 73 74"));
    assert_eq!(text.lines().count(), 2);
}

#[test]
fn verify_change_and_challenge() {
    assert_eq!(
        stdout_of(&["card", "verify", "--stdin"], "123456\n"),
        "PIN verified\n"
    );
    let out = ferroccid()
        .args(["card", "verify", "--stdin"])
        .write_stdin("000000\n")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("63C2") && err.contains("2 tries left"),
        "{err}"
    );
    assert_eq!(
        stdout_of(&["card", "change-pin", "--stdin"], "123456\n4321\n"),
        "PIN changed\n"
    );
    let text = stdout_of(&["card", "challenge", "--len", "16"], "");
    assert_eq!(text.trim().split(' ').count(), 16, "{text}");
    assert!(text
        .trim()
        .split(' ')
        .all(|b| b.len() == 2 && u8::from_str_radix(b, 16).is_ok()));
}

#[test]
fn monitor_prints_reader_and_card_events() {
    let text = stdout_of(&["monitor", "--count", "2", "--interval", "20"], "");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("ReaderAdded") && lines[0].contains("sim"),
        "{text}"
    );
    assert!(lines[1].contains("CardInserted"), "{text}");
    assert!(lines[0].trim_start().starts_with('1') && lines[1].trim_start().starts_with('2'));
}

#[test]
fn bad_reader_name_fails_cleanly() {
    let out = ferroccid()
        .args(["card", "--reader", "nonsense:x", "status"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("ferroccid card: nonsense:x"));
}
