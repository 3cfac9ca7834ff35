//! `ferroccid doctor` on a real Linux USB stack: QEMU's usb-ccid reader
//! (08E6:4433, CCID interface, vicc card) in the guest, with Debian's
//! pcscd and libccid. One guest boot walks the reader through:
//!
//! 1. `lc`: pcscd with libccid only, no ferroccid rule or bundle: the USB
//!    checks pass, the rule is missing (fail), libccid's class driver
//!    takes the reader (warn), PC/SC shows it under libccid's name, the
//!    card's ATR comes through pcscd;
//! 2. `stopped`: pcscd stopped: pcscd and the PC/SC reader fail, the card
//!    is read directly (root, nobody holds the interface);
//! 3. `fc`: after `ferroccid install --no-rescan` and a pcscd start:
//!    ferroccid's bundle is the one pcscd uses, the rule is installed (not
//!    applied: the guest runs no udev), the reader is usable (exit 0);
//! 4. `stale`: the bundle's Info.plist changed after pcscd started: warn,
//!    restart pcscd.

#[path = "../../tests/vm/harness.rs"]
mod harness;

use harness::{ferroccid_extra, Guest, GuestRun};
use serde_json::Value;

const START_PCSCD: &str = "{ (pcscd -f > /tmp/pcscd.log 2>&1 &); i=0; \
    until [ -S /run/pcscd/pcscd.comm ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
    [ -S /run/pcscd/pcscd.comm ] && sleep 1; }";
const STOP_PCSCD: &str = "{ kill $(pidof pcscd); i=0; \
    while pidof pcscd > /dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; }";

/// Runs the doctor in the guest, its JSON lines prefixed `TAG:` and its
/// exit status as `TAG-rc:`.
fn doctor(tag: &str) -> String {
    format!(
        "{{ ferroccid doctor --json > /tmp/{tag}.json; echo {tag}-rc: $?; \
         sed 's/^/{tag}:/' /tmp/{tag}.json; ferroccid doctor | sed 's/^/{tag}-text:/'; }}"
    )
}

fn report(run: &GuestRun, tag: &str) -> (i32, Value) {
    let prefix = format!("{tag}:");
    let text: Vec<&str> = run.values(&prefix).collect();
    let json = serde_json::from_str(&text.join("\n"))
        .unwrap_or_else(|e| panic!("{tag}: not JSON ({e}):\n{}", run.console));
    let code = run.value(&format!("{tag}-rc: ")).parse().unwrap();
    (code, json)
}

fn check<'a>(report: &'a Value, name: &str) -> (&'a str, &'a str) {
    let c = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report:#}"));
    (c["status"].as_str().unwrap(), c["detail"].as_str().unwrap())
}

#[test]
fn doctor_follows_qemus_reader_from_libccid_to_ferroccid() {
    let extra = ferroccid_extra("doctor");
    std::fs::copy(harness::fresh_cdylib(), extra.join("libferroccid_ifd.so"))
        .expect("copy the bundle's library next to the binary");
    let run = Guest::new().timeout(120).extra(&extra).run(&format!(
        "{START_PCSCD} && {} && {STOP_PCSCD} && {} && \
         ferroccid install --no-rescan > /dev/null && {START_PCSCD} && {} && \
         sleep 1 && touch /usr/lib/pcsc/drivers/ifd-ferroccid.bundle/Contents/Info.plist && {} \
         || {{ echo FAILED; sed 's/^/pcscd-log:/' /tmp/pcscd.log; exit 1; }}",
        doctor("lc"),
        doctor("stopped"),
        doctor("fc"),
        doctor("stale"),
    ));
    let run = run.success();

    let (code, lc) = report(&run, "lc");
    assert!(
        lc["reader"].as_str().unwrap().starts_with("usb:08e6/4433:"),
        "{lc:#}"
    );
    assert_eq!(check(&lc, "usb-device").0, "pass", "{lc:#}");
    assert!(
        check(&lc, "usb-device").1.contains("class 0x0B (CCID)"),
        "{lc:#}"
    );
    // QEMU's dwFeatures 0x000104FE: TPDU level.
    assert_eq!(
        check(&lc, "ccid-descriptor"),
        ("pass", "interface 0: CCID 1.10, 1 slot(s), tpdu level")
    );
    assert_eq!(check(&lc, "permissions").0, "pass", "{lc:#}");
    assert_eq!(check(&lc, "udev-rule").0, "fail", "{lc:#}");
    let (status, bundles) = check(&lc, "pcscd-bundle");
    assert_eq!(status, "warn", "{lc:#}");
    assert!(
        bundles.ends_with("pcscd uses ifd-ccid.bundle, not ferroccid"),
        "{bundles}"
    );
    assert_eq!(check(&lc, "pcscd").0, "pass", "{lc:#}");
    let (status, reader) = check(&lc, "pcsc-reader");
    assert_eq!(status, "pass", "{lc:#}");
    assert!(
        reader.contains("Gemalto Gemplus USB SmartCard Reader 433-Swap"),
        "{reader}"
    );
    let (status, card) = check(&lc, "card");
    assert_eq!(status, "pass", "{lc:#}");
    assert!(
        card.starts_with("ATR 3B") && card.contains("through pcscd"),
        "{card}"
    );
    assert_eq!(code, 1, "the missing rule fails");

    let (code, stopped) = report(&run, "stopped");
    assert_eq!(check(&stopped, "pcscd").0, "fail", "{stopped:#}");
    assert_eq!(check(&stopped, "pcsc-reader").0, "fail", "{stopped:#}");
    let (status, direct) = check(&stopped, "card");
    assert_eq!(status, "pass", "{stopped:#}");
    assert!(direct.contains("read directly"), "{direct}");
    // The same ATR both ways.
    assert_eq!(card.split(':').next(), direct.split(':').next());
    assert_eq!(code, 1);

    let (code, fc) = report(&run, "fc");
    let (status, rule) = check(&fc, "udev-rule");
    assert_eq!(
        status, "warn",
        "installed, not applied (no udev in the guest): {fc:#}"
    );
    assert!(
        rule.starts_with("/etc/udev/rules.d/92-ferroccid.rules is installed"),
        "{rule}"
    );
    let (status, bundles) = check(&fc, "pcscd-bundle");
    assert_eq!(status, "pass", "{fc:#}");
    assert!(
        bundles.contains("ifd-ccid.bundle (class driver"),
        "{bundles}"
    );
    assert!(
        bundles.ends_with("pcscd uses ifd-ferroccid.bundle"),
        "{bundles}"
    );
    assert_eq!(
        check(&fc, "pcscd").0,
        "pass",
        "started after the install: {fc:#}"
    );
    assert_eq!(check(&fc, "pcsc-reader").0, "pass", "{fc:#}");
    assert_eq!(check(&fc, "card").0, "pass", "{fc:#}");
    assert_eq!(fc["usable"], true);
    assert_eq!(code, 0, "{fc:#}");
    let text: Vec<&str> = run.values("fc-text:").collect();
    assert_eq!(
        text.last(),
        Some(&"The reader is usable through PC/SC."),
        "{text:#?}"
    );

    let (code, stale) = report(&run, "stale");
    let (status, pcscd) = check(&stale, "pcscd");
    assert_eq!(status, "warn", "{stale:#}");
    assert!(
        pcscd.contains("ifd-ferroccid.bundle/Contents/Info.plist changed after it started"),
        "{pcscd}"
    );
    assert_eq!(code, 0);
}
