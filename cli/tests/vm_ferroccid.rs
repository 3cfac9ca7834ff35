//! ferroccid's library on a real Linux USB stack: QEMU's usb-ccid reader on xHCI in
//! the guest, opened with the usbfs, nusb and rusb backends, against libccid (pcscd) on
//! the same reader in the same guest run as the oracle.
//!
//! The guest side is `guest_side` below, run inside the VM from a stripped copy of this
//! very test binary (`--ignored --exact guest_side`); on the host it is ignored with
//! that reason. It prints `fc:` lines the host test parses.

#[path = "../../tests/vm/harness.rs"]
mod harness;

use harness::{out_dir, Guest};
use std::time::{Duration, Instant};

/// The same script as `vm_libccid.rs`; GET CHALLENGE answers are random.
const SCRIPT: &str = "00A4000C023F00 00B0000010 00FE000000 0084000008 00A4020C022F00";

fn test_binary_dir(name: &str) -> std::path::PathBuf {
    let dir = out_dir(name);
    let me = std::env::current_exe().expect("the test binary's path");
    std::fs::copy(&me, dir.join("vm_ferroccid")).expect("copy the test binary");
    let status = std::process::Command::new("strip")
        .arg(dir.join("vm_ferroccid"))
        .status()
        .expect("run strip (binutils)");
    assert!(status.success());
    dir
}

const GUEST: &str = "vm_ferroccid --ignored --exact guest_side --nocapture --test-threads=1";

fn start_pcscd() -> &'static str {
    "(pcscd -f > /tmp/pcscd.log 2>&1 &); i=0; until [ -S /run/pcscd/pcscd.comm ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done"
}

/// Responses with GET CHALLENGE's random bytes masked.
fn masked(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs
        .into_iter()
        .map(|(c, r)| {
            let r = if c.starts_with("0084") {
                format!("{}+{}", r.len(), &r[r.len() - 4..])
            } else {
                r
            };
            (c, r)
        })
        .collect()
}

#[test]
fn nusb_and_usbfs_library_get_the_same_responses_as_libccid() {
    let dir = test_binary_dir("ferroccid-nusb");
    // one guest: the library over nusb, then over usbfs (lines prefixed `usbfs.`), then
    // power-on only with the default backend (`default.`), then libccid
    let run = Guest::new()
        .extra(&dir)
        .run(&format!(
            "set -o pipefail; FERROCCID_USB_BACKEND=nusb FERROCCID_SCRIPT='{SCRIPT}' {GUEST} && \
             FERROCCID_USB_BACKEND=usbfs FERROCCID_SCRIPT='{SCRIPT}' {GUEST} 2>&1 | sed 's/^/usbfs./' && \
             env -u FERROCCID_USB_BACKEND {GUEST} 2>&1 | sed 's/^/default./' && \
             {} && pcsc-apdu {SCRIPT} | sed 's/^/lc:/'",
            start_pcscd()
        ))
        .success();
    let pairs = |p: &str, q: &str| -> Vec<(String, String)> {
        run.values(p)
            .map(String::from)
            .zip(run.values(q).map(String::from))
            .collect()
    };
    let oracle = masked(pairs("lc:> ", "lc:< "));
    assert_eq!(oracle.len(), 5, "{}", run.console);
    // with FERROCCID_USB_BACKEND unset, the library opens the reader through usbfs
    assert_eq!(
        run.value("default.fc:backend: "),
        "Usbfs",
        "{}",
        run.console
    );
    assert_eq!(run.value("default.fc:atr: "), run.value("lc:atr: "));
    for (tag, backend) in [("", "Nusb"), ("usbfs.", "Usbfs")] {
        let line = |what: &str| format!("{tag}fc:{what}");
        assert_eq!(run.value(&line("backend: ")), backend);
        assert!(
            run.values(&line("list: ")).any(|l| l.contains("08e6:4433")),
            "{backend}: {}",
            run.console
        );
        assert_eq!(
            run.value(&line("features: ")),
            "000104FE",
            "{backend}: dwFeatures as QEMU declares it"
        );
        assert_eq!(
            run.value(&line("atr: ")),
            run.value("lc:atr: "),
            "{backend}: same ATR as libccid"
        );
        let ours = masked(pairs(&line("> "), &line("< ")));
        assert_eq!(ours.len(), 5, "{backend}: {}", run.console);
        assert_eq!(ours, oracle, "ferroccid ({backend}) vs libccid");
    }
}

/// This test binary built again with the `rusb` feature (libusb), in its own target
/// directory so the main build is not invalidated; cached after the first time.
fn rusb_binary_dir() -> std::path::PathBuf {
    let root = harness::repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(&root)
        .args([
            "test",
            "--no-run",
            "--features",
            "rusb",
            "--test",
            "vm_ferroccid",
            "--message-format=json",
        ])
        .arg("--target-dir")
        .arg(root.join("target/vm-rusb"))
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo build --features rusb failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exe = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["executable"].as_str().map(String::from))
        .find(|e| e.contains("vm_ferroccid"))
        .expect("cargo names the vm_ferroccid test executable");
    let dir = out_dir("ferroccid-rusb");
    std::fs::copy(&exe, dir.join("vm_ferroccid")).expect("copy the rusb test binary");
    let status = std::process::Command::new("strip")
        .arg(dir.join("vm_ferroccid"))
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

#[test]
fn rusb_library_gets_the_same_responses_as_libccid() {
    let run = Guest::new()
        .extra(&rusb_binary_dir())
        .run(&format!(
            "FERROCCID_USB_BACKEND=rusb FERROCCID_SCRIPT='{SCRIPT}' {GUEST} && {} && pcsc-apdu {SCRIPT} | sed 's/^/lc:/'",
            start_pcscd()
        ))
        .success();
    assert_eq!(run.value("fc:backend: "), "Rusb");
    let listed: Vec<&str> = run.values("fc:list: ").collect();
    assert!(listed.iter().any(|l| l.contains("08e6:4433")), "{listed:?}");
    assert_eq!(run.value("fc:atr: "), run.value("lc:atr: "));
    let pairs = |p: &str, q: &str| -> Vec<(String, String)> {
        run.values(p)
            .map(String::from)
            .zip(run.values(q).map(String::from))
            .collect()
    };
    let ours = masked(pairs("fc:> ", "fc:< "));
    assert_eq!(ours.len(), 5, "{}", run.console);
    assert_eq!(
        ours,
        masked(pairs("lc:> ", "lc:< ")),
        "ferroccid (rusb) vs libccid"
    );
}

#[test]
fn nusb_library_reports_device_gone_after_unplug() {
    let dir = test_binary_dir("ferroccid-unplug");
    let run = Guest::new()
        .extra(&dir)
        .run(&format!(
            "FERROCCID_USB_BACKEND=nusb FERROCCID_SCRIPT='0084000008' FERROCCID_UNPLUG=1 {GUEST}"
        ))
        .success();
    let ms: u64 = run.value("fc:gone-ms: ").parse().unwrap();
    assert!(ms < 3000, "DeviceGone after {ms} ms");
    for call in ["transmit", "status", "power_on"] {
        assert_eq!(
            run.value(&format!("fc:after {call}: ")),
            "DeviceGone",
            "{}",
            run.console
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Runs inside the guest: list, open, power on, the script from FERROCCID_SCRIPT, and
/// with FERROCCID_UNPLUG=1 the reader unplugged through the QEMU monitor.
#[test]
#[ignore = "guest side of the vm_ferroccid tests: runs inside the VM"]
fn guest_side() {
    use ferroccid::{list_usb, open, UsbBackend};
    use ferroccid::{ErrorKind, Reader};
    println!(); // libtest's "test guest_side ... " has no newline yet
    let backend = UsbBackend::from_env();
    println!("fc:backend: {backend:?}");
    let infos = list_usb(backend).expect("list CCID interfaces");
    for i in &infos {
        println!(
            "fc:list: {} {:04x}:{:04x}",
            i.name, i.vendor_id, i.product_id
        );
    }
    let info = infos
        .iter()
        .find(|i| i.vendor_id == 0x08E6)
        .expect("QEMU's reader listed");
    let device = open(&info.name).expect("open the reader");
    let reader = Reader::open(device.transport).expect("Reader::open");
    println!("fc:features: {:08X}", reader.descriptor().features);
    let slot = reader.slot(0).expect("slot 0");
    let atr = slot.power_on().expect("power on");
    println!("fc:atr: {}", hex(atr.as_bytes()));
    let mut response = vec![0u8; 65538];
    let script = std::env::var("FERROCCID_SCRIPT").unwrap_or_default();
    for apdu in script.split_whitespace() {
        let n = slot
            .transmit(&unhex(apdu), &mut response)
            .expect("transmit");
        println!("fc:> {apdu}");
        println!("fc:< {}", hex(&response[..n]));
    }
    if std::env::var("FERROCCID_UNPLUG").as_deref() == Ok("1") {
        let out = std::process::Command::new("rig")
            .args(["monitor", "device_del", "ccid"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "device_del: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let start = Instant::now();
        loop {
            match slot.transmit(&unhex("0084000008"), &mut response) {
                Err(e) if e.kind() == ErrorKind::DeviceGone => break,
                Err(e) => panic!("after unplug: {e} ({:?}) instead of DeviceGone", e.kind()),
                Ok(_) if start.elapsed() > Duration::from_secs(10) => {
                    panic!("still answering 10 s after unplug")
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        println!("fc:gone-ms: {}", start.elapsed().as_millis());
        let kind = |r: Result<(), ferroccid::ReaderError>| match r {
            Err(e) => format!("{:?}", e.kind()),
            Ok(()) => "ok".to_string(),
        };
        let t = Instant::now();
        println!(
            "fc:after transmit: {}",
            kind(
                slot.transmit(&[0, 0x84, 0, 0, 8], &mut response)
                    .map(|_| ())
            )
        );
        println!("fc:after status: {}", kind(slot.status().map(|_| ())));
        println!("fc:after power_on: {}", kind(slot.power_on().map(|_| ())));
        println!("fc:after-calls-ms: {}", t.elapsed().as_millis());
    }
}
