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

fn failure_of(args: &[&str]) -> String {
    let out = ferroccid().args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `--reader` takes the names `ferroccid list` shows (the 4-slot
/// simulator is listed as "ferroccid simulator 4-slot (sysmoOCTSIM)"), as
/// `apdu` does; a name that fits none or several is a clear error.
#[test]
fn readers_attach_by_the_names_list_shows() {
    let text = stdout_of(&["card", "--reader", "sysmoOCTSIM", "status"], "");
    assert!(text.contains("reader      sim:4-slot\n"), "{text}");
    assert!(text.contains("state       specific"), "{text}");
    let text = stdout_of(&["card", "--reader", "sysmooctsim#2", "status"], "");
    assert!(text.contains("reader      sim:4-slot#2\n"), "{text}");
    let err = failure_of(&["card", "--reader", "no such reader", "status"]);
    assert!(
        err.contains("no reader matches \"no such reader\""),
        "{err}"
    );
    let err = failure_of(&["card", "--reader", "simulator", "status"]);
    assert!(err.contains("matches several readers"), "{err}");
    assert!(err.contains("(sim:pinpad)"), "{err}");
}

/// A simulator profile whose only slot is empty.
fn empty_reader_profile() -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("card-cli-empty-{}.json", std::process::id()));
    std::fs::write(
        &path,
        r#"{
  "name": "empty",
  "vid_pid": "08E6:3437",
  "manufacturer": "Gemplus",
  "product": "USB SmartCard Reader",
  "descriptor": "36 21 00 01 00 07 03 00 00 00 A0 0F 00 00 A0 0F 00 00 00 00 2A 00 00 16 40 05 00 00 FE 00 00 00 00 00 00 00 00 00 00 00 30 02 01 00 0F 01 00 00 00 00 00 00 00 01",
  "cards": [null]
}"#,
    )
    .unwrap();
    path
}

#[test]
fn status_of_an_empty_reader_succeeds() {
    let profile = empty_reader_profile();
    let reader = format!("sim:{}", profile.display());
    let text = stdout_of(&["card", "--reader", &reader, "status"], "");
    assert!(text.contains("state       absent"), "{text}");
    assert!(text.contains("present     false"), "{text}");
    assert!(!text.contains("ATR"), "{text}");
    let err = failure_of(&["card", "--reader", &reader, "read", "3F00/2F00"]);
    assert!(err.contains("no card in the reader"), "{err}");
    let _ = std::fs::remove_file(profile);
}

#[test]
fn update_writes_where_the_card_allows() {
    assert_eq!(
        stdout_of(&["card", "update", "3F00/2F01", "--hex", "41 42 43"], ""),
        "3 bytes written at 0\n"
    );
    assert_eq!(
        stdout_of(&["card", "update", "3F00/2F01", "--offset", "4"], "xyz"),
        "3 bytes written at 4\n",
        "bytes from stdin"
    );
    let err = failure_of(&["card", "update", "3F00/2F00", "--hex", "41"]);
    assert!(err.contains("6982"), "EF 2F00 is never updatable: {err}");
    let err = failure_of(&["card", "update", "3F00/5000/5001", "--hex", "41"]);
    assert!(err.contains("6982"), "{err}");
    assert_eq!(
        stdout_of(
            &[
                "card",
                "update",
                "3F00/5000/5001",
                "--hex",
                "41",
                "--pin",
                "81",
                "--stdin"
            ],
            "123456\n"
        ),
        "1 bytes written at 0\n"
    );
}

#[test]
fn reconnect_resets_and_prints_the_state() {
    for init in ["leave", "warm", "cold"] {
        let text = stdout_of(&["card", "reconnect", "--init", init], "");
        assert!(text.contains("state       specific"), "{init}: {text}");
        assert!(text.contains("ATR         3B"), "{init}: {text}");
    }
    let text = stdout_of(&["card", "reconnect", "--protocol", "t1"], "");
    assert!(text.contains("protocol    T1"), "{text}");
}

#[test]
fn auth_internal_answers_with_the_card_key() {
    use ferroccid_sim::card::app::internal_authenticate;
    use ferroccid_sim::card::CardConfig;
    let challenge = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let text = stdout_of(&["card", "auth", "--internal", "0102030405060708"], "");
    // Le 00 (len 0): the card's whole answer, 32 bytes.
    let expected: Vec<String> =
        internal_authenticate(&CardConfig::default().auth_key, &challenge, 32)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
    assert_eq!(text.trim(), expected.join(" "));
    let err = failure_of(&["card", "auth", "--external", "00112233"]);
    assert!(
        err.contains("6D00"),
        "no EXTERNAL AUTHENTICATE on the demo card: {err}"
    );
}

/// Two processes: `card lock` holds the lock; another process's command
/// fails with "locked" when it may not wait long enough, and goes through
/// once the lock is released when it may.
#[test]
fn card_lock_excludes_another_process() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    // A lock directory of this test's own: other tests lock `sim` too.
    let runtime = std::env::temp_dir().join(format!("card-cli-lock-{}", std::process::id()));
    std::fs::create_dir_all(&runtime).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("ferroccid");
    let mut holder = std::process::Command::new(&bin)
        .args(["card", "lock", "--seconds", "1.5"])
        .env("XDG_RUNTIME_DIR", &runtime)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("locked for 1.5 s"), "{first}");
    let locked_at = Instant::now();
    let out = ferroccid()
        .args(["card", "--lock-wait", "200", "select", "3F00"])
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another attachment holds the card's lock"),
        "{err}"
    );
    let out = ferroccid()
        .args(["card", "--lock-wait", "10000", "select", "3F00"])
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        locked_at.elapsed() >= Duration::from_millis(1000),
        "the second command went through while the lock was held"
    );
    assert_eq!(lines.next().unwrap().unwrap(), "unlocked");
    assert!(holder.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(runtime);
}
