//! pcscd with ferroccid's bundle on QEMU's usb-ccid reader in the guest (libccid's
//! bundle removed; once with the nusb backend, once with usbfs), against pcscd with libccid's bundle on the same reader in the same
//! guest run: libccid is the oracle, the PC/SC client is the harness's `pcsc-apdu`.
//!
//! The bundle is laid out as pcscd reads it (`ifd-ferroccid.bundle/Contents/
//! {Info.plist, Linux/libferroccid.so}`), its Info.plist rendered by
//! `ferroccid_ifd::plist` and listing QEMU's 08E6:4433, the library this build's
//! cdylib. Status words come from ISO/IEC 7816-4 (see `vm_libccid.rs`).

#[path = "../../tests/vm/harness.rs"]
mod harness;

use ferroccid_ifd::plist::{render, BundleConfig, ReaderId};
use harness::{out_dir, Guest, GuestRun};
use std::path::PathBuf;
use std::process::Command;

/// The same script as `vm_libccid.rs`, with the status word ISO/IEC 7816-4 gives.
const SCRIPT: [(&str, &str); 5] = [
    ("00A4000C023F00", "9000"),
    ("00B0000010", "6986"),
    ("00FE000000", "6D00"),
    ("0084000008", "9000"),
    ("00A4020C022F00", "6A82"),
];

/// pcscd's drivers directory on Debian (compiled into pcscd).
const DRIVERS: &str = "/usr/lib/pcsc/drivers";

/// `DIR/ifd-ferroccid.bundle/Contents/{Info.plist, Linux/libferroccid.so}` listing
/// `readers`, the library stripped (its debug info would slow the guest's start).
fn bundle_dir(name: &str, readers: &[ReaderId]) -> PathBuf {
    let dir = out_dir(name);
    let contents = dir.join("ifd-ferroccid.bundle/Contents");
    std::fs::create_dir_all(contents.join("Linux")).unwrap();
    let config = BundleConfig {
        executable: "libferroccid.so".into(),
        log_level: 1,
        driver_options: 0,
        class_driver: false,
    };
    std::fs::write(contents.join("Info.plist"), render(&config, readers)).unwrap();
    let so = contents.join("Linux/libferroccid.so");
    std::fs::copy(harness::fresh_cdylib(), &so).expect("copy libferroccid.so");
    let status = Command::new("strip")
        .arg("--strip-debug")
        .arg(&so)
        .status()
        .expect("run strip (binutils)");
    assert!(status.success(), "strip failed");
    dir
}

/// Starts pcscd in the background and waits for its socket (fails if it never comes).
const START_PCSCD: &str = "{ (pcscd -f > /tmp/pcscd.log 2>&1 &); i=0; \
    until [ -S /run/pcscd/pcscd.comm ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
    [ -S /run/pcscd/pcscd.comm ]; }";
/// Stops pcscd and waits until it is gone (its socket removed).
const STOP_PCSCD: &str = "{ kill $(pidof pcscd); i=0; \
    while pidof pcscd > /dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; \
    rm -f /run/pcscd/pcscd.comm; }";

fn script_args() -> String {
    SCRIPT.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(" ")
}

/// `> `/`< ` pairs of the lines prefixed `tag`.
fn pairs(run: &GuestRun, tag: &str) -> Vec<(String, String)> {
    run.values(&format!("{tag}> "))
        .map(String::from)
        .zip(run.values(&format!("{tag}< ")).map(String::from))
        .collect()
}

#[test]
fn pcscd_with_the_ferroccid_bundle_answers_like_libccid() {
    let qemu_reader = ReaderId {
        vendor_id: 0x08E6,
        product_id: 0x4433,
        name: "QEMU USB CCID".into(),
    };
    let dir = bundle_dir("bundle-ferroccid", &[qemu_reader]);
    let script = script_args();
    let run = Guest::new()
        .extra(&dir)
        .run(&format!(
            "set -o pipefail; mkdir -p /tmp/off && mv {DRIVERS}/ifd-ccid.bundle /tmp/off/ && \
             cp -r /extra/ifd-ferroccid.bundle {DRIVERS}/ && ls {DRIVERS} | sed 's/^/drivers:/' && \
             ( export FERROCCID_USB_BACKEND=nusb; {START_PCSCD} && \
             pcsc-apdu -w 5 {script} | sed 's/^/fb:/' && \
             echo fb-threads: $(cat /proc/$(pidof pcscd)/task/*/comm) ) && {STOP_PCSCD} && \
             ( export FERROCCID_USB_BACKEND=usbfs; {START_PCSCD} && \
             pcsc-apdu -w 5 {script} | sed 's/^/fu:/' && \
             echo fu-threads: $(cat /proc/$(pidof pcscd)/task/*/comm) ) && {STOP_PCSCD} && \
             rm -rf {DRIVERS}/ifd-ferroccid.bundle && mv /tmp/off/ifd-ccid.bundle {DRIVERS}/ && \
             {START_PCSCD} && pcsc-apdu -w 5 {script} | sed 's/^/lc:/' \
             || {{ echo FAILED; sed 's/^/pcscd-log:/' /tmp/pcscd.log; exit 1; }}"
        ))
        .success();
    assert_eq!(
        run.values("drivers:").collect::<Vec<_>>(),
        ["ifd-ferroccid.bundle"],
        "only ferroccid's bundle while it is tested"
    );
    // the bundle inside pcscd with each backend (FERROCCID_USB_BACKEND in pcscd's
    // environment), then libccid
    let oracle = pairs(&run, "lc:");
    assert_eq!(oracle.len(), SCRIPT.len(), "{}", run.console);
    for tag in ["fb:", "fu:"] {
        let reader = run.value(&format!("{tag}reader: "));
        assert!(!reader.contains("Gemalto"), "not libccid's name: {reader}");
        assert_eq!(
            run.value(&format!("{tag}protocol: ")),
            run.value("lc:protocol: "),
            "{tag}"
        );
        assert_eq!(
            run.value(&format!("{tag}atr: ")),
            run.value("lc:atr: "),
            "{tag}"
        );
        let ours = pairs(&run, tag);
        assert_eq!(ours.len(), SCRIPT.len(), "{tag}\n{}", run.console);
        for (((cmd, sw), (sent, mine)), (_, theirs)) in SCRIPT.iter().zip(&ours).zip(&oracle) {
            assert_eq!(sent, cmd);
            assert!(
                mine.ends_with(sw),
                "{tag} {cmd}: SW {sw} expected, got {mine}"
            );
            if cmd.starts_with("0084") {
                assert_eq!((mine.len(), theirs.len()), (20, 20), "8 random bytes + SW");
            } else {
                assert_eq!(mine, theirs, "{cmd}: ferroccid bundle ({tag}) vs libccid");
            }
        }
    }
    // the environment reaches the bundle: nusb runs its "nusb-events" thread inside
    // pcscd, the usbfs backend reaps in the calling thread and has none
    let threads = |tag: &str| run.value(&format!("{tag}-threads: "));
    assert!(threads("fb").contains("nusb-events"), "{}", threads("fb"));
    assert!(!threads("fu").contains("nusb-events"), "{}", threads("fu"));
}
