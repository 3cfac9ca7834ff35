//! `ferroccid doctor` against Debian's real pcscd serving a simulated
//! reader (`tests/scripts/pcscd-run.sh`, reader.conf entry "ferroccid
//! sim:tpdu"): usable with its card's ATR read through PC/SC, a warning
//! once the card is taken out (the simulator's control files), and
//! unusable once pcscd is stopped. Fails loudly when pcscd cannot start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

fn script() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("tests/scripts/pcscd-run.sh")
}

fn library() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("target")
        });
    // Built with the `sim` feature by `cargo build --workspace --features
    // ferroccid-ifd/sim` (tests/run.sh).
    let lib = target.join("debug/libferroccid_ifd.so");
    assert!(
        lib.is_file(),
        "{} missing: cargo build -p ferroccid-ifd --features sim",
        lib.display()
    );
    lib
}

/// `ferroccid doctor --reader sim:tpdu --json` as a client of the pcscd in
/// `dir`, nothing on the staged machine's USB.
fn doctor(dir: &Path) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferroccid"))
        .args(["doctor", "--reader", "sim:tpdu", "--json"])
        .arg("--sysfs-dir")
        .arg(dir.join("no-sysfs"))
        .env("PCSCLITE_CSOCK_NAME", dir.join("run/pcscd.comm"))
        .output()
        .expect("run ferroccid doctor");
    let text = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (out.status.code().unwrap_or(-1), json)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report:#}"))
}

/// Stops the pcscd of `dir` when the test ends, however it ends.
struct Stop<'a>(&'a Path);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(self.0).status();
    }
}

#[test]
fn a_reader_pcscd_serves_is_usable_until_pcscd_stops() {
    let dir = std::env::temp_dir().join(format!("ferroccid-doctor-pcscd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let control = dir.join("control");
    std::fs::create_dir_all(&control).unwrap();
    let status = Command::new(script())
        .arg("start")
        .arg(&dir)
        .arg(library())
        .arg("sim:tpdu")
        .env("FERROCCID_SIM_CONTROL", &control)
        .status()
        .expect("run pcscd-run.sh");
    assert!(
        status.success(),
        "pcscd did not start (tests/scripts/install-deps.sh installs it)"
    );
    let stop = Stop(&dir);

    let (code, report) = doctor(&dir);
    assert_eq!(check(&report, "pcscd")["status"], "pass", "{report:#}");
    let reader = check(&report, "pcsc-reader");
    assert_eq!(reader["status"], "pass", "{report:#}");
    assert!(
        reader["detail"]
            .as_str()
            .unwrap()
            .contains("\"ferroccid sim:tpdu 00 00\""),
        "{reader}"
    );
    let card = check(&report, "card");
    assert_eq!(card["status"], "pass", "{report:#}");
    let text = card["detail"].as_str().unwrap();
    assert!(
        text.starts_with("ATR 3B ") && text.contains("through pcscd"),
        "{text}"
    );
    // The same ATR as the driver reads directly from the simulator.
    let direct = Command::new(env!("CARGO_BIN_EXE_ferroccid"))
        .args(["card", "--reader", "sim:tpdu", "status"])
        .output()
        .unwrap();
    let direct = String::from_utf8_lossy(&direct.stdout).to_uppercase();
    let atr: String = text["ATR ".len()..text.find(':').unwrap()].replace(' ', "");
    assert!(
        direct.replace(' ', "").contains(&atr),
        "{atr} not in `card status`:\n{direct}"
    );
    assert_eq!(report["usable"], true);
    assert_eq!(code, 0, "{report:#}");

    // Card out: still usable, with a warning.
    std::fs::write(control.join("tpdu.absent"), "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let report = loop {
        let (code, report) = doctor(&dir);
        if check(&report, "card")["status"] != "pass" || Instant::now() > deadline {
            assert_eq!(code, 0, "{report:#}");
            break report;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(check(&report, "card")["status"], "warn", "{report:#}");
    assert!(check(&report, "card")["detail"]
        .as_str()
        .unwrap()
        .contains("no card"));

    // pcscd stopped.
    drop(stop);
    let (code, report) = doctor(&dir);
    assert_eq!(check(&report, "pcscd")["status"], "fail", "{report:#}");
    assert_eq!(
        check(&report, "pcsc-reader")["status"],
        "fail",
        "{report:#}"
    );
    assert_eq!(report["usable"], false);
    assert_eq!(code, 1);
    let _ = std::fs::remove_dir_all(&dir);
}
