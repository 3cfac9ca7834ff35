//! `ferroccid demo`: exit status 0 and the key lines, checked against the
//! simulated card's documented personalisation (`sim::card::fs`,
//! `sim::card::app`) and ISO/IEC 7816-4 status words.
use assert_cmd::Command;
use ferroccid_sim::card::app::internal_authenticate;
use ferroccid_sim::card::config::PRESET_AUTH_KEY;
use ferroccid_sim::card::fs::{TEXT_2F00, TEXT_SECRET};

fn demo_output() -> String {
    let out = Command::cargo_bin("ferroccid")
        .expect("ferroccid binary")
        .arg("demo")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "exit {:?}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn line_after<'a>(lines: &[&'a str], command: &str) -> &'a str {
    let at = lines
        .iter()
        .position(|l| l.trim() == format!("> {command}"))
        .unwrap_or_else(|| panic!("APDU {command} is shown"));
    lines[at + 1]
}

#[test]
fn demo_exits_zero_and_shows_each_step() {
    let out = demo_output();
    let lines: Vec<&str> = out.lines().collect();
    // The reader: the default profile is a GemPC Twin at TPDU level.
    assert!(out.contains("08E6:3437"), "{out}");
    assert!(out.contains("exchange level tpdu"), "{out}");
    assert!(out.contains("device name sim"), "{out}");
    // The ATR of the dual card (ISO/IEC 7816-3 §8.2): TS 3B, T0 88, TD1 80
    // (T=0), TD2 31 (T=1), TA3 FE = IFSC 254, TB3 45 = BWI 4 CWI 5.
    assert!(out.contains("ATR 3B888031FE45"), "{out}");
    assert!(out.contains("protocols T=0 T=1"), "{out}");
    assert!(out.contains("Fi 372 / Di 1"), "{out}");
    assert!(out.contains("IFSC 254, BWI 4, CWI 5"), "{out}");
    // Protocol selection reports what was sent to the reader.
    assert!(out.contains("selected T=0"), "{out}");
    assert!(out.contains("SetParameters T=0"), "{out}");
    // EF 2F00's text, read after selecting the MF.
    let text_2f00 = String::from_utf8_lossy(TEXT_2F00);
    assert!(
        out.contains(&format!("EF 2F00 says: {}", text_2f00.trim_end())),
        "{out}"
    );
    // The protected EF is refused before VERIFY: 6982.
    assert!(out.contains("refused with 6982"), "{out}");
    // VERIFY with a wrong PIN: 63C2 (ISO/IEC 7816-4 §10.5.1: 63CX, X tries
    // left; the card allows 3), then the right PIN: 90 00.
    assert!(
        line_after(&lines, "0020008106303030303030").contains("63C2"),
        "{out}"
    );
    assert!(out.contains("2 tries left"), "{out}");
    assert!(
        line_after(&lines, "0020008106313233343536").contains("< 9000"),
        "{out}"
    );
    let secret = String::from_utf8_lossy(TEXT_SECRET);
    assert!(
        out.contains(&format!("EF 5001 says: {}", secret.trim_end())),
        "{out}"
    );
    // GET CHALLENGE: 8 bytes and 9000.
    let challenge = line_after(&lines, "0084000008");
    let response = challenge.trim().trim_start_matches("< ");
    let response = response.split_whitespace().next().unwrap();
    assert_eq!(response.len(), 20, "{challenge}");
    assert!(response.ends_with("9000"), "{challenge}");
    // INTERNAL AUTHENTICATE: the card's HMAC over the host challenge.
    let host = b"ferroccid demo challenge";
    let command = format!("00880000{:02X}{}20", host.len(), hex(host));
    let cryptogram = internal_authenticate(PRESET_AUTH_KEY, host, 32);
    assert!(
        line_after(&lines, &command).contains(&format!("{}9000", hex(&cryptogram))),
        "{out}"
    );
    assert!(out.contains("authenticated"), "{out}");
    assert!(out.contains("powered off"), "{out}");
}

#[test]
fn every_apdu_is_shown_with_its_timing() {
    let out = demo_output();
    let lines: Vec<&str> = out.lines().collect();
    let commands = lines
        .iter()
        .filter(|l| l.trim_start().starts_with("> "))
        .count();
    let answers: Vec<&&str> = lines
        .iter()
        .filter(|l| l.trim_start().starts_with("< "))
        .collect();
    assert!(commands >= 10, "{out}");
    assert_eq!(commands, answers.len());
    for answer in answers {
        assert!(answer.ends_with(" µs)"), "{answer}");
    }
}
