//! `ferroccid replay`: a session recorded with `apdu --pcap` replays as recorded
//! on the same simulated reader (directly and over USB/IP) and differs, byte for
//! byte reported, on another; `--mask` hides what the user marks; the host side
//! of every real libccid log in ../shared/corpus/logs is replayed, command for
//! command as `ferroccid trace` reads them.
#[path = "support/usbip_export.rs"]
mod usbip_export;
use assert_cmd::Command;
use std::path::{Path, PathBuf};
use usbip_export::UsbIpExport;

fn ferroccid() -> Command {
    Command::cargo_bin("ferroccid").expect("ferroccid binary")
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ferroccid-replay-{}-{name}", std::process::id()))
}

fn record(profile: &str, name: &str) -> PathBuf {
    let pcap = temp(name);
    let out = ferroccid()
        .args(["apdu", "--reader", profile, "--pcap"])
        .arg(&pcap)
        .args(["00A4000C023F00", "0084000008", "00B0000005"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pcap
}

fn replay(trace: &Path, extra: &[&str]) -> (Option<i32>, Vec<String>) {
    let out = ferroccid()
        .arg("replay")
        .arg(trace)
        .args(extra)
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    (out.status.code(), lines)
}

#[test]
fn a_recorded_session_replays_as_recorded_on_the_same_reader_only() {
    let pcap = record("sim:tpdu-t1", "same.pcapng");
    let (code, lines) = replay(&pcap, &["--reader", "sim:tpdu-t1"]);
    assert_eq!(code, Some(0), "{lines:?}");
    assert_eq!(
        lines.last().unwrap(),
        "6 commands: 6 answered as recorded, 0 differently, 0 without a recorded answer"
    );
    // Another reader: its ATR and its exchange level differ.
    let (code, lines) = replay(&pcap, &["--reader", "sim:short-apdu"]);
    assert_eq!(code, Some(1), "{lines:?}");
    assert!(
        lines[0].starts_with("#1") && lines[0].contains("DIFFERENT at byte 12"),
        "{lines:?}"
    );
    assert!(lines.last().unwrap().contains("5 differently"), "{lines:?}");
    let _ = std::fs::remove_file(pcap);
}

#[test]
fn masks_hide_what_the_user_marks() {
    let log = temp("atr.log");
    // A libccid log of a power-on answered with another card's ATR.
    std::fs::write(
        &log,
        "00000010 -> 000000 62 00 00 00 00 00 05 01 00 00\n\
         00000900 <- 000000 80 04 00 00 00 00 05 00 00 00 3B 02 14 50\n",
    )
    .unwrap();
    let (code, lines) = replay(&log, &["--reader", "sim"]);
    assert_eq!(code, Some(1), "{lines:?}");
    assert!(lines[0].contains("DIFFERENT at byte 1"), "{lines:?}");
    let (code, lines) = replay(&log, &["--reader", "sim", "--mask", "1:1-5", "--mask", "1"]);
    assert_eq!(code, Some(0), "{lines:?}");
    let (code, _) = replay(&log, &["--reader", "sim", "--mask", "1:9-3"]);
    assert_eq!(
        code,
        Some(2),
        "a mask that ends before it starts is refused"
    );
    let _ = std::fs::remove_file(log);
}

#[test]
fn a_session_replays_on_a_reader_over_usbip() {
    let pcap = record("sim:tpdu-t1", "usbip.pcapng");
    let export = UsbIpExport::start(&["--profile".as_ref(), "tpdu-t1".as_ref()]);
    let reader = export.reader();
    let (code, lines) = replay(&pcap, &["--reader", &reader]);
    drop(export);
    assert_eq!(code, Some(0), "{lines:?}");
    let _ = std::fs::remove_file(pcap);
}

#[test]
fn the_host_side_of_every_corpus_log_is_replayed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/logs");
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the shared corpus beside the repository)",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .collect();
    logs.sort();
    assert!(logs.len() >= 5, "{logs:?}");
    for log in logs {
        let out = ferroccid()
            .arg("trace")
            .arg(&log)
            .arg("--json")
            .output()
            .unwrap();
        let commands = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("\"direction\":\"out\""))
            .count();
        let (code, lines) = replay(&log, &["--reader", "sim"]);
        if commands == 0 {
            assert_eq!(code, Some(2), "{}: {lines:?}", log.display());
            continue;
        }
        assert!(
            matches!(code, Some(0 | 1)),
            "{}: {code:?} {lines:?}",
            log.display()
        );
        let summary = lines.last().unwrap();
        assert!(
            summary.starts_with(&format!("{commands} commands: ")),
            "{}: {commands} host messages, {summary}",
            log.display()
        );
    }
}

#[test]
fn sim_replay_serves_a_recorded_session_as_a_reader() {
    let pcap = record("sim:tpdu-t1", "served.pcapng");
    let recorded = ferroccid()
        .args(["trace", "--json"])
        .arg(&pcap)
        .output()
        .unwrap();
    let recorded = String::from_utf8(recorded.stdout).unwrap();
    let export = UsbIpExport::start(&["--replay".as_ref(), pcap.as_os_str()]);
    let reader = export.reader();
    // The driver talks to it as to a reader, and gets the recorded answers,
    // the recorded "random" challenge included.
    let out = ferroccid()
        .args([
            "apdu",
            "--reader",
            &reader,
            "00A4000C023F00",
            "0084000008",
            "00B0000005",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(answers[0], "9000");
    // The challenge the card gave when the session was recorded.
    let challenge: Vec<String> = answers[1].as_bytes()[..16]
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert!(
        recorded.contains(&challenge.join(" ")),
        "{} not recorded",
        answers[1]
    );
    // Replaying the session against its own replay: every answer as recorded.
    let (code, lines) = replay(&pcap, &["--reader", &reader]);
    assert_eq!(code, Some(0), "{lines:?}");
    // A command the recording never saw is refused as a reader refuses
    // one it does not support.
    let out = ferroccid()
        .args(["apdu", "--reader", &reader, "00B0000001"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("command not supported"));
    drop(export);
    let _ = std::fs::remove_file(pcap);
}

#[test]
fn a_replay_can_itself_be_captured_and_replayed() {
    let first = record("sim:tpdu-t1", "first.pcapng");
    let second = temp("second.pcapng");
    let (code, lines) = replay(
        &first,
        &[
            "--reader",
            "sim:tpdu-t1",
            "--pcap",
            second.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{lines:?}");
    let (code, lines) = replay(&second, &["--reader", "sim:tpdu-t1"]);
    assert_eq!(code, Some(0), "{lines:?}");
    assert_eq!(
        lines.last().unwrap(),
        "6 commands: 6 answered as recorded, 0 differently, 0 without a recorded answer"
    );
    let _ = std::fs::remove_file(first);
    let _ = std::fs::remove_file(second);
}
