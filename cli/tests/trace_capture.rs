//! `--pcap FILE` on `apdu` and `script`: the capture is a pcapng that Wireshark's
//! USB CCID dissector (Debian's `tshark`, installed by tests/scripts/install-deps.sh)
//! decodes as CCID, message for message as `ferroccid trace` reads it back, with
//! the APDUs that were sent inside. Fails loudly if tshark is missing.
use assert_cmd::Command;
use std::path::Path;

fn ferroccid() -> Command {
    Command::cargo_bin("ferroccid").expect("ferroccid binary")
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ferroccid-capture-{}-{name}", std::process::id()))
}

/// `(message type, bytes)` of every CCID message, as `ferroccid trace --json` reads them.
fn traced(pcap: &Path) -> Vec<(u64, String)> {
    let out = ferroccid()
        .arg("trace")
        .arg(pcap)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            (
                // A frame too short for a header has no message type.
                v["message_type"].as_u64().unwrap_or(u64::MAX),
                v["bytes"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The bMessageType of every packet Wireshark dissects as CCID.
fn dissected(pcap: &Path) -> Vec<u64> {
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args([
            "-Y",
            "usbccid",
            "-T",
            "fields",
            "-e",
            "usbccid.bMessageType",
        ])
        .output()
        .expect("tshark missing: tests/scripts/install-deps.sh installs Debian's tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| u64::from_str_radix(l.trim().trim_start_matches("0x"), 16).unwrap())
        .collect()
}

fn check(pcap: &Path, sent: &[&str]) {
    let messages = traced(pcap);
    let types: Vec<u64> = messages.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        dissected(pcap),
        types,
        "Wireshark and ferroccid trace disagree"
    );
    assert_eq!(types[0], 0x62, "starts with IccPowerOn");
    for apdu in sent {
        let spaced: Vec<String> = apdu
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let spaced = spaced.join(" ");
        assert!(
            messages
                .iter()
                .any(|(t, bytes)| *t == 0x6F && bytes.ends_with(&spaced)),
            "{apdu} is in no XfrBlock: {messages:?}"
        );
    }
}

#[test]
fn apdu_writes_a_capture_wireshark_dissects() {
    let pcap = temp("apdu.pcapng");
    let sent = ["00A4000C023F00", "0084000008"];
    let out = ferroccid()
        .args(["apdu", "--reader", "sim:short-apdu", "--pcap"])
        .arg(&pcap)
        .args(sent)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check(&pcap, &sent);
    let _ = std::fs::remove_file(pcap);
}

#[test]
fn script_writes_a_capture_wireshark_dissects() {
    let script = temp("script.txt");
    std::fs::write(
        &script,
        "00 A4 00 0C 02 3F 00 => 90 00\nreset\n00 84 00 00 08 => * 90 00\n",
    )
    .unwrap();
    let pcap = temp("script.pcapng");
    let out = ferroccid()
        .arg("script")
        .arg(&script)
        .args(["--reader", "sim:extended-apdu", "--pcap"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check(&pcap, &["00A4000C023F00", "0084000008"]);
    // The reset is in the capture: a second power-on.
    let power_ons = traced(&pcap).iter().filter(|(t, _)| *t == 0x62).count();
    assert_eq!(power_ons, 2);
    let _ = std::fs::remove_file(pcap);
    let _ = std::fs::remove_file(script);
}

#[test]
fn an_unwritable_capture_is_refused_before_the_card_is_touched() {
    let out = ferroccid()
        .args(["apdu", "--pcap", "/nonexistent-dir/x.pcapng", "0084000008"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent-dir/x.pcapng"));
    assert!(out.stdout.is_empty());
}

#[test]
fn check_writes_a_capture_of_its_probes() {
    let pcap = temp("check.pcapng");
    let out = ferroccid()
        .args(["check", "--reader", "sim", "--pcap"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let messages = traced(&pcap);
    let dissected = dissected(&pcap);
    // The checker sends what a driver never would (an unknown message type,
    // frames shorter than a header): Wireshark dissects every message of
    // the run, and where ferroccid trace names a type it is Wireshark's.
    assert!(dissected.len() > 50, "{}", dissected.len());
    let named: Vec<u64> = messages
        .iter()
        .map(|(t, _)| *t)
        .filter(|&t| t != u64::MAX)
        .collect();
    let unnamed = messages.len() - named.len();
    assert!(unnamed <= 4, "{unnamed} frames without a message type");
    let mut wireshark = dissected.iter();
    for t in &named {
        assert!(
            wireshark.any(|d| d == t),
            "{t:#x} not dissected in order: {dissected:?}"
        );
    }
    let _ = std::fs::remove_file(pcap);
}
