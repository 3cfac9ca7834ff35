//! `ferroccid script` on the simulated reader and card (its file system in
//! `sim::card::fs`, PIN 123456 with 3 tries), and on the same reader exported
//! over USB/IP: scriptor's input as it is, expected answers with wildcards,
//! captures reused in later commands, repeats, resets, the first mismatch
//! stopping the run (or not, with --keep-going), the JSON transcript, and
//! scripts that do not parse.
#[path = "support/usbip_export.rs"]
mod usbip_export;
use assert_cmd::Command;
use std::io::Write as _;
use std::process::Output;
use usbip_export::UsbIpExport;

fn ferroccid() -> Command {
    Command::cargo_bin("ferroccid").expect("ferroccid binary")
}

fn script_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("ferroccid-script-{}-{name}", std::process::id()));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path
}

fn run(text: &str, name: &str, extra: &[&str]) -> Output {
    let path = script_file(name, text);
    let out = ferroccid()
        .arg("script")
        .arg(&path)
        .args(extra)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(path);
    out
}

fn stdout(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

const CHECKED: &str = "\
# select the MF, read a challenge, send it back as a (wrong) PIN
00 A4 00 0C 02 3F 00          => 90 00
00 84 00 00 08                => {challenge:8} 90 00
00 20 00 81 08 ${challenge}   => 63 C2
repeat 3
  00 84 00 00 08 => .. .. .. .. .. .. .. .. 90 00
end
reset
00 A4 00 0C 02 2F 00          => 90 00
00 B0 00 00 05                => 48 65 6C 6C 6F 90 00   # \"Hello\"
00 B0 00 00 27                => * 90 00
";

#[test]
fn a_script_with_expectations_captures_repeats_and_resets_passes() {
    let out = run(CHECKED, "checked", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = stdout(&out);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("ATR ")).count(),
        2,
        "{lines:?}"
    );
    let sent: Vec<&String> = lines.iter().filter(|l| l.starts_with("> ")).collect();
    assert_eq!(sent.len(), 9, "{lines:?}");
    // The captured challenge went into the next command.
    let answers: Vec<&String> = lines.iter().filter(|l| l.starts_with("< ")).collect();
    let challenge = &answers[1][2..2 + 8 * 3 - 1];
    assert_eq!(*sent[2], format!("> 00 20 00 81 08 {challenge}"));
    assert!(
        answers.iter().all(|a| a.ends_with("µs)")),
        "per-APDU timing"
    );
}

#[test]
fn scriptors_input_runs_as_it_is() {
    let out = run(
        "reset\n00 A4 00 0C 02 3F 00\n00 84 00 00 08\nexit\n00 B0 00 00 01\n",
        "scriptor",
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = stdout(&out);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("> ")).count(),
        2,
        "exit stops: {lines:?}"
    );
}

#[test]
fn the_first_mismatch_stops_the_run_unless_keep_going() {
    let text =
        "00 A4 00 0C 02 3F 00 => 90 00\n00 A4 00 0C 02 EE EE => 90 00\n00 84 00 00 08 => * 90 00\n";
    let out = run(text, "stop", &[]);
    assert_eq!(out.status.code(), Some(1));
    let lines = stdout(&out);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("> ")).count(),
        2,
        "{lines:?}"
    );
    let mismatch = lines
        .iter()
        .find(|l| l.starts_with("! "))
        .expect("a mismatch line");
    assert!(
        mismatch.contains("line 2") && mismatch.contains("6A where 90"),
        "{mismatch}"
    );
    let out = run(text, "keep", &["--keep-going"]);
    assert_eq!(out.status.code(), Some(1), "a mismatch still fails the run");
    assert_eq!(
        stdout(&out).iter().filter(|l| l.starts_with("> ")).count(),
        3
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 answer(s) did not match"));
}

#[test]
fn json_prints_the_transcript() {
    let text = "00 A4 00 0C 02 3F 00 => 90 00\n00 A4 00 0C 02 EE EE => 90 00\n";
    let out = run(text, "json", &["--json", "--keep-going"]);
    assert_eq!(out.status.code(), Some(1));
    let transcript: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = transcript.as_array().unwrap();
    assert_eq!(entries.len(), 3, "{transcript}");
    assert_eq!(entries[0]["kind"], "reset");
    assert!(entries[0]["atr"].as_str().unwrap().starts_with("3B"));
    assert_eq!(entries[1]["kind"], "exchange");
    assert_eq!(entries[1]["line"], 1);
    assert_eq!(entries[1]["command"], "00A4000C023F00");
    assert_eq!(entries[1]["response"], "9000");
    assert_eq!(entries[1]["matched"], true);
    assert!(entries[1]["micros"].is_u64());
    assert_eq!(entries[2]["line"], 2);
    assert_eq!(entries[2]["matched"], false);
    assert_eq!(entries[2]["expected"], "90 00");
    assert!(entries[2]["mismatch"]
        .as_str()
        .unwrap()
        .contains("at byte 0"));
}

#[test]
fn a_script_that_does_not_parse_is_refused_before_the_card_is_touched() {
    for (text, words) in [
        (
            "00 A4 00 0C 02 3F 00\n00 A4 0\n",
            "line 2: odd number of hex digits",
        ),
        (
            "repeat 3\n00 84 00 00 08\n",
            "line 1: `repeat` without `end`",
        ),
        ("00 84 00 00 08 => * * 90 00\n", "line 1: at most one"),
    ] {
        let out = run(text, "bad", &["--reader", "no-such-reader"]);
        assert_eq!(out.status.code(), Some(2), "{text:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(words), "{text:?}: {err}");
        assert!(out.stdout.is_empty());
    }
    let out = run("00 84 00 00 ${never}\n", "uncaptured", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1: ${never} was not captured"));
}

#[test]
fn a_script_runs_on_a_reader_over_usbip() {
    let export = UsbIpExport::start(&["--profile".as_ref(), "tpdu-t1".as_ref()]);
    let reader = export.reader();
    let out = run(CHECKED, "usbip", &["--reader", &reader]);
    drop(export);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout(&out).iter().filter(|l| l.starts_with("> ")).count(),
        9
    );
}
