//! The bundle's log inside the real pcscd: Debian's `pcscd --foreground
//! --debug --color` (started by `tests/scripts/pcscd-run.sh`) loads the
//! bundle from a bundle directory whose Info.plist sets `ifdLogLevel`, on
//! simulated readers; a PC/SC client (the `pcsc` crate, libpcsclite) sends
//! a VERIFY with the virtual card's PIN and a SELECT (not GET CHALLENGE,
//! whose random answer could spell two PIN bytes by chance).
//!
//! For each knob setting (no Info.plist key: errors only; `ifdLogLevel`
//! 3, 7, 15; `FERROCCID_LOG=trace` in pcscd's environment over
//! `ifdLogLevel` 1) the test checks that the bundle's lines are in pcscd's
//! output at the pcscd priority its level maps to (pcscd colours each
//! line by priority: error magenta, info blue, debug plain), that nothing
//! more verbose than the setting appears, and that the PIN is nowhere in
//! the output.
//!
//! Fails loudly — never skips — when pcscd cannot be started.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pcsc::{Context, Protocols, Scope, ShareMode};

/// The virtual card's default PIN (`CardConfig::base`), as ASCII.
const PIN: &[u8] = b"123456";

/// Readers: T=1 at TPDU level, the APDU level, and one that cannot open
/// (its "cannot open reader" is the bundle's error line).
const DEVICES: [&str; 3] = ["sim:tpdu-t1", "sim:short-apdu", "sim:nosuch"];

/// pcscd's colours (debuglog.c) for the priorities the bundle maps to.
const ERROR_COLOUR: &str = "\x1b[35m";
const INFO_COLOUR: &str = "\x1b[34m";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Priority {
    Debug,
    Info,
    Error,
}

/// A line the bundle wrote, with the priority pcscd gave it.
#[derive(Debug)]
struct BundleLine {
    priority: Priority,
    text: String,
}

fn library() -> PathBuf {
    // The `ferroccid-ifd` cdylib, built with the `sim` feature by
    // `cargo build --workspace --features ferroccid-ifd/sim` (tests/run.sh).
    let lib = Path::new(env!("CARGO_BIN_EXE_ferroccid")).with_file_name("libferroccid_ifd.so");
    assert!(
        lib.exists(),
        "{} missing: cargo build --workspace --features ferroccid-ifd/sim (pcscd loads it)",
        lib.display()
    );
    lib
}

fn script() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("tests/scripts/pcscd-run.sh")
}

/// A bundle directory holding the library and an Info.plist with
/// `ifdLogLevel` = `level` (no key when `None`); returns the library path
/// inside it, which the bundle finds its Info.plist from.
fn bundle(dir: &Path, level: Option<u32>) -> PathBuf {
    let contents = dir.join("ifd-ferroccid.bundle/Contents");
    let linux = contents.join("Linux");
    let _ = std::fs::remove_dir_all(&contents);
    std::fs::create_dir_all(&linux).unwrap();
    let lib = linux.join("libferroccid.so");
    std::os::unix::fs::symlink(library(), &lib).unwrap();
    let key = level
        .map(|l| format!("\t<key>ifdLogLevel</key>\n\t<string>0x{l:04X}</string>\n"))
        .unwrap_or_default();
    let plist = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n<dict>\n{key}</dict>\n</plist>\n"
    );
    std::fs::write(contents.join("Info.plist"), plist).unwrap();
    lib
}

/// VERIFY with the PIN, then SELECT MF, on the reader named after
/// `device`; the card's status words.
fn drive(device: &str) -> (Vec<u8>, Vec<u8>) {
    let ctx = Context::establish(Scope::User).expect("cannot reach the test pcscd");
    // pcscd numbers readers of one driver in the order it opens them:
    // "ferroccid sim:tpdu-t1 01 00".
    let prefix = format!("ferroccid {device} ");
    let deadline = Instant::now() + Duration::from_secs(10);
    let card = loop {
        let name = ctx
            .list_readers_owned()
            .unwrap_or_default()
            .into_iter()
            .find(|n| n.to_string_lossy().starts_with(&prefix));
        let attempt = match &name {
            Some(name) => ctx.connect(name, ShareMode::Shared, Protocols::ANY),
            None => Err(pcsc::Error::UnknownReader),
        };
        match attempt {
            Ok(card) => break card,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("connect to {name:?} ({device}): {e}"),
        }
    };
    let mut verify = vec![0x00, 0x20, 0x00, 0x81, PIN.len() as u8];
    verify.extend_from_slice(PIN);
    let mut buf = [0u8; 258];
    let verify_sw = card.transmit(&verify, &mut buf).expect("VERIFY").to_vec();
    let select_sw = card
        .transmit(&[0x00, 0xA4, 0x00, 0x0C], &mut buf)
        .expect("SELECT")
        .to_vec();
    (verify_sw, select_sw)
}

/// Runs pcscd with the bundle at `level` (and `env` for pcscd), drives
/// every working reader, stops pcscd; its whole output.
fn run(dir: &Path, level: Option<u32>, env: Option<(&str, &str)>) -> String {
    let lib = bundle(dir, level);
    let mut start = Command::new(script());
    start
        .arg("start")
        .arg(dir)
        .arg(&lib)
        .args(DEVICES)
        .env("PCSCD_OPTIONS", "--color")
        .env_remove("FERROCCID_LOG");
    if let Some((key, value)) = env {
        start.env(key, value);
    }
    let status = start.status().expect("cannot run pcscd-run.sh");
    assert!(status.success(), "pcscd did not start ({})", dir.display());
    let results: Vec<_> = DEVICES[..2].iter().map(|d| (d, drive(d))).collect();
    let _ = Command::new(script()).arg("stop").arg(dir).status();
    let log = std::fs::read_to_string(dir.join("pcscd.log")).unwrap();
    for (device, (verify, select)) in results {
        assert_eq!(verify, [0x90, 0x00], "{device}: VERIFY refused:\n{log}");
        assert_eq!(select, [0x90, 0x00], "{device}: SELECT:\n{log}");
    }
    log
}

/// The bundle's lines (`ferroccid TARGET: …`) with their priority.
fn bundle_lines(log: &str) -> Vec<BundleLine> {
    log.lines()
        .filter_map(|line| {
            // "<time> [<thread>] <colour?>ferroccid …"
            let (_, rest) = line.split_once("] ")?;
            let (priority, text) = if let Some(t) = rest.strip_prefix(ERROR_COLOUR) {
                (Priority::Error, t)
            } else if let Some(t) = rest.strip_prefix(INFO_COLOUR) {
                (Priority::Info, t)
            } else {
                (Priority::Debug, rest)
            };
            text.starts_with("ferroccid ").then(|| BundleLine {
                priority,
                text: text.trim_end_matches("\x1b[0m").to_owned(),
            })
        })
        .collect()
}

/// Every way the PIN, or two adjacent bytes of it, could be printed, in
/// the log without each line's time and thread (digits that may spell
/// anything) and colours. Hex without a space between the bytes is only
/// looked for in the bundle's lines: pcscd's own print random handles and
/// pointers (`@0x55ee9ad7a4c0`) in which "3132" may turn up by chance.
fn pin_leaks(log: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in log.lines() {
        let text = line
            .split_once("] ")
            .map_or(line, |(_, rest)| rest)
            .replace("\x1b[", " ")
            .to_ascii_lowercase();
        // "ferroccid ferroccid::ccid: …", "ferroccid ferroccid_ifd::driver: …"
        let ours = text.contains("ferroccid ferroccid");
        let mut forms = vec![String::from_utf8(PIN.to_vec()).unwrap()];
        for pair in PIN.windows(2) {
            forms.push(format!("{:02x} {:02x}", pair[0], pair[1]));
            forms.push(format!("{}, {}", pair[0], pair[1]));
            if ours {
                forms.push(format!("{:02x}{:02x}", pair[0], pair[1]));
            }
        }
        found.extend(forms.into_iter().filter(|f| text.contains(f.as_str())));
    }
    found
}

fn has(lines: &[BundleLine], priority: Priority, needle: &str) -> bool {
    lines
        .iter()
        .any(|l| l.priority == priority && l.text.contains(needle))
}

#[test]
fn bundle_lines_reach_pcscd_at_mapped_priorities_and_never_show_the_pin() {
    let dir = std::env::temp_dir().join(format!("fpl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // libpcsclite reads the socket's path once per process: every pcscd
    // below uses the same one.
    std::env::set_var("PCSCLITE_CSOCK_NAME", dir.join("run/pcscd.comm"));

    // (setting, Info.plist ifdLogLevel, pcscd environment, most verbose
    // bundle priority expected)
    let settings = [
        ("errors only (no key)", None, None),
        ("ifdLogLevel 3 (info)", Some(3), None),
        ("ifdLogLevel 7 (debug)", Some(7), None),
        ("ifdLogLevel 15 (trace)", Some(15), None),
        (
            "FERROCCID_LOG=trace over ifdLogLevel 1",
            Some(1),
            Some(("FERROCCID_LOG", "trace")),
        ),
    ];
    for (what, level, env) in settings {
        let log = run(&dir, level, env);
        let lines = bundle_lines(&log);
        let plain = |l: &BundleLine| l.priority == Priority::Debug;
        // Errors show at every setting, at pcscd's error priority.
        assert!(
            has(
                &lines,
                Priority::Error,
                "ferroccid_ifd::driver: cannot open reader"
            ),
            "{what}: no error line:\n{log}"
        );
        let info = has(
            &lines,
            Priority::Info,
            "ferroccid_ifd::driver: reader opened",
        );
        let debug = lines
            .iter()
            .any(|l| plain(l) && !l.text.contains("ferroccid::ccid:"));
        let frames = lines
            .iter()
            .filter(|l| plain(l) && l.text.contains("ferroccid::ccid: send "))
            .count();
        let expected = match level {
            _ if env.is_some() => (true, true, true),
            None | Some(1) => (false, false, false),
            Some(3) => (true, false, false),
            Some(7) => (true, true, false),
            _ => (true, true, true),
        };
        assert_eq!(
            (info, debug, frames > 0),
            expected,
            "{what}: (info, debug, frames) lines:\n{log}"
        );
        if frames > 0 {
            // The VERIFY's header is shown, its data masked, in both the
            // APDU (short-apdu) and the T=1 block (tpdu-t1).
            for shape in [
                "00 20 00 81 06 XX XX XX XX XX XX",
                "00 00 0B 00 20 00 81 06 XX",
            ] {
                assert!(
                    lines.iter().any(|l| l.text.contains(shape)),
                    "{what}: no {shape:?}:\n{log}"
                );
            }
        }
        let leaks = pin_leaks(&log);
        assert!(
            leaks.is_empty(),
            "{what}: PIN in pcscd's log {leaks:?}:\n{log}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
