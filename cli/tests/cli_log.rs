//! `ferroccid -v…` and `FERROCCID_LOG`: logs on stderr at the level asked
//! for, every CCID frame decoded and timed at `-vvv`, and never a PIN byte
//! at any level. Each run sends a VERIFY with the virtual card's PIN
//! (`123456`, `CardConfig::base`); the card answers 9000 only if the PIN
//! crossed the bus intact.
use assert_cmd::Command;

/// The virtual card's default PIN, as ASCII.
const PIN: &[u8] = b"123456";

/// Readers covering APDU level, T=0 and T=1 TPDU, and character level.
const READERS: [&str; 4] = [
    "sim:short-apdu",
    "sim:tpdu-t0",
    "sim:tpdu-t1",
    "sim:character",
];

fn verify_apdu() -> String {
    let data: String = PIN.iter().map(|b| format!("{b:02X}")).collect();
    format!("00200081{:02X}{data}", PIN.len())
}

/// Runs a VERIFY on `reader` with `flags` and `FERROCCID_LOG=env`;
/// checks it succeeded with 9000 and returns stderr.
fn verify_with(reader: &str, flags: &[&str], env: Option<&str>) -> String {
    let mut cmd = Command::cargo_bin("ferroccid").expect("ferroccid binary");
    cmd.args(flags)
        .args(["apdu", "--reader", reader, &verify_apdu()])
        .env_remove("FERROCCID_LOG")
        .env_remove("RUST_LOG");
    if let Some(env) = env {
        cmd.env("FERROCCID_LOG", env);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{reader} {flags:?} {env:?}: {stderr}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "9000",
        "{reader}: VERIFY refused"
    );
    stderr
}

/// Every way the PIN, or two adjacent bytes of it, could be printed
/// (the time at the start of each line is left out: its digits may spell
/// anything).
fn pin_leaks(log: &str) -> Vec<String> {
    let lower: String = log
        .lines()
        .map(|l| l.trim_start().split_once(' ').map_or(l, |(_, rest)| rest))
        .collect::<Vec<_>>()
        .join("\n")
        .to_ascii_lowercase();
    let mut forms = vec![String::from_utf8(PIN.to_vec()).unwrap()];
    for pair in PIN.windows(2) {
        forms.push(format!("{:02x} {:02x}", pair[0], pair[1]));
        forms.push(format!("{:02x}{:02x}", pair[0], pair[1]));
        forms.push(format!("{}, {}", pair[0], pair[1]));
    }
    forms
        .into_iter()
        .filter(|f| lower.contains(f.as_str()))
        .collect()
}

/// The level word of each log line (`INFO`, `DEBUG`, …).
fn levels(log: &str) -> Vec<&str> {
    log.lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect()
}

#[test]
fn without_v_or_env_nothing_is_logged() {
    for reader in READERS {
        assert_eq!(verify_with(reader, &[], None), "", "{reader}");
    }
}

#[test]
fn each_v_adds_a_level_and_no_level_shows_the_pin() {
    for reader in READERS {
        for (flags, most, absent) in [
            (&["-v"][..], "INFO", &["DEBUG", "TRACE"][..]),
            (&["-vv"][..], "DEBUG", &["TRACE"][..]),
            (&["-v", "-v", "-v"][..], "TRACE", &[][..]),
        ] {
            let log = verify_with(reader, flags, None);
            let seen = levels(&log);
            assert!(
                seen.contains(&most),
                "{reader} {flags:?}: no {most}:\n{log}"
            );
            for level in absent {
                assert!(!seen.contains(level), "{reader} {flags:?}: {level}:\n{log}");
            }
            assert!(
                seen.iter()
                    .all(|l| ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(l)),
                "{reader} {flags:?}: a line without time and level:\n{log}"
            );
            let leaks = pin_leaks(&log);
            assert!(
                leaks.is_empty(),
                "{reader} {flags:?}: PIN in log {leaks:?}:\n{log}"
            );
        }
    }
}

#[test]
fn vvv_decodes_every_frame_and_times_the_answers() {
    let log = verify_with("sim:tpdu-t1", &["-vvv"], None);
    let frames: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" TRACE ferroccid::ccid: "))
        .collect();
    // Power on, SetParameters, S(IFS), the VERIFY: each sent and answered.
    assert!(frames.len() >= 8, "{log}");
    let sent = frames.iter().filter(|l| l.contains(": send ")).count();
    let answered = frames
        .iter()
        .filter(|l| l.contains(": recv ") && l.contains(" ms after the command)"))
        .count();
    assert_eq!(sent, answered, "every command answered and timed:\n{log}");
    assert!(log.contains("first protocol T=1"), "ATR decoded:\n{log}");
    assert!(
        log.contains("T=1 S(IFS request)"),
        "T=1 block decoded:\n{log}"
    );
    let verify = frames
        .iter()
        .find(|l| l.contains("INF: 00 20 00 81 06"))
        .unwrap_or_else(|| panic!("VERIFY block not shown:\n{log}"));
    assert!(verify.contains("[7 bytes masked"), "{verify}");
    // Seconds since start, then the level: "   0.004342415s TRACE".
    let time = verify.split_whitespace().next().unwrap();
    assert!(
        time.ends_with('s') && time.trim_end_matches('s').parse::<f64>().is_ok(),
        "{verify}"
    );
}

#[test]
fn ferroccid_log_takes_rust_log_directives() {
    // Frames alone: no INFO from the reader logic.
    let log = verify_with("sim:tpdu-t0", &[], Some("ferroccid::ccid=trace"));
    assert!(log.contains("send PC_to_RDR_XfrBlock"), "{log}");
    assert!(!levels(&log).contains(&"INFO"), "{log}");
    assert!(pin_leaks(&log).is_empty(), "{log}");
    // On top of -v: INFO everywhere, frames too.
    let log = verify_with("sim:tpdu-t0", &["-v"], Some("ferroccid::ccid=trace"));
    assert!(
        levels(&log).contains(&"INFO") && levels(&log).contains(&"TRACE"),
        "{log}"
    );
    // Everything at TRACE through the environment alone.
    let log = verify_with("sim:character", &[], Some("trace"));
    assert!(
        levels(&log).contains(&"DEBUG") && levels(&log).contains(&"TRACE"),
        "{log}"
    );
    assert!(pin_leaks(&log).is_empty(), "{log}");
    // A directive that does not parse is reported, and the -v level kept.
    let log = verify_with("sim:tpdu-t0", &["-v"], Some("ferroccid=loud"));
    assert!(log.contains("FERROCCID_LOG"), "{log}");
    assert!(levels(&log).contains(&"INFO"), "{log}");
}
