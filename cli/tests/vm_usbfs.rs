//! The usbfs backend (`src/transport/usbfs/`) on a real Linux USB stack, in the QEMU
//! guest: the transport conformance suite, discovery equal to the nusb backend's, the
//! APDU script against libccid (pcscd) as the oracle with the event thread's interrupt
//! read pending at the same time (URBs reaped across threads), unplug, and the
//! simulated TPDU-level T=1 reader attached over USB/IP.
//!
//! The guest side is `guest_side` below, run inside the VM from a stripped copy of this
//! test binary; it prints `us:` lines the host tests parse.

#[path = "../../tests/vm/harness.rs"]
mod harness;

use harness::{ferroccid_extra, hex, Card, Guest};
use std::time::{Duration, Instant};

/// The same script as `vm_ferroccid.rs`; GET CHALLENGE answers are random.
const SCRIPT: &str = "00A4000C023F00 00B0000010 00FE000000 0084000008 00A4020C022F00";

const GUEST: &str = "vm_usbfs --ignored --exact guest_side --nocapture --test-threads=1";

const START_PCSCD: &str = "{ (pcscd -f > /tmp/pcscd.log 2>&1 &); i=0; \
    until [ -S /run/pcscd/pcscd.comm ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
    [ -S /run/pcscd/pcscd.comm ]; }";

/// ferroccid (for `sim --usbip`) and this test binary, stripped.
fn guest_dir(name: &str) -> std::path::PathBuf {
    let dir = ferroccid_extra(name);
    let me = std::env::current_exe().expect("the test binary's path");
    std::fs::copy(&me, dir.join("vm_usbfs")).expect("copy the test binary");
    let status = std::process::Command::new("strip")
        .arg(dir.join("vm_usbfs"))
        .status()
        .expect("run strip (binutils)");
    assert!(status.success());
    dir
}

fn masked(command: &str, response: &str) -> String {
    if command.starts_with("0084") {
        format!("{}+{}", response.len(), &response[response.len() - 4..])
    } else {
        response.to_string()
    }
}

#[test]
fn usbfs_passes_conformance_and_matches_libccid_on_qemus_reader() {
    let run = Guest::new()
        .extra(&guest_dir("usbfs-qemu"))
        .run(&format!(
            "set -o pipefail; FERROCCID_VENDOR=08e6 FERROCCID_SCRIPT='{SCRIPT}' {GUEST} && \
             {START_PCSCD} && pcsc-apdu {SCRIPT} | sed 's/^/lc:/'"
        ))
        .success();
    assert_eq!(run.value("us:list-equal: "), "true", "{}", run.console);
    assert!(
        run.values("us:list: ").any(|l| l.contains("08e6:4433")),
        "{}",
        run.console
    );
    assert_eq!(run.value("us:conformance: "), "ok");
    assert_eq!(run.value("us:features: "), "000104FE", "QEMU's dwFeatures");
    assert_eq!(run.value("us:atr: "), run.value("lc:atr: "), "same ATR");
    let pairs = |p: &str, q: &str| -> Vec<(String, String)> {
        run.values(p)
            .zip(run.values(q))
            .map(|(c, r)| (c.to_string(), masked(c, r)))
            .collect()
    };
    let ours = pairs("us:> ", "us:< ");
    assert_eq!(ours.len(), 5, "{}", run.console);
    assert_eq!(
        ours,
        pairs("lc:> ", "lc:< "),
        "ferroccid (usbfs) vs libccid"
    );
}

#[test]
fn usbfs_reports_device_gone_after_unplug() {
    let run = Guest::new()
        .extra(&guest_dir("usbfs-unplug"))
        .run(&format!(
            "FERROCCID_VENDOR=08e6 FERROCCID_SCRIPT=0084000008 FERROCCID_UNPLUG=1 {GUEST}"
        ))
        .success();
    let ms: u64 = run.value("us:gone-ms: ").parse().unwrap();
    assert!(ms < 3000, "DeviceGone after {ms} ms");
    for call in ["transmit", "status", "power_on", "bulk_in", "interrupt_in"] {
        assert_eq!(
            run.value(&format!("us:after {call}: ")),
            "DeviceGone",
            "{}",
            run.console
        );
    }
    let after: u64 = run.value("us:after-calls-ms: ").parse().unwrap();
    assert!(after < 1000, "calls after unplug took {after} ms");
}

/// `ferroccid sim --usbip` (GemPC Twin, TPDU T=1) attached through vhci-hcd.
const ATTACH: &str = "rig modules usbip && ip link set lo up && \
    (ferroccid sim --usbip 127.0.0.1:3240 --profile tpdu-t1 > /tmp/sim.log 2>&1 &) && \
    i=0; until usbip attach -r 127.0.0.1 -b 1-1 2>/dev/null || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
    i=0; until grep -qsx 3437 /sys/bus/usb/devices/*/idProduct || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
    grep -qsx 3437 /sys/bus/usb/devices/*/idProduct";

#[test]
fn usbfs_drives_the_simulated_t1_reader_over_usbip() {
    // SELECT EF 2F00, READ BINARY 39, SELECT 5000/5010, READ BINARY extended Le 1000
    // (T=1 chaining from the card).
    let script = "00A4000C022F00 00B0000027 00A4080C0450005010 00B000000003E8";
    let run = Guest::new()
        .card(Card::None)
        .without_qemu_reader()
        .extra(&guest_dir("usbfs-usbip"))
        .run(&format!(
            "set -o pipefail; {ATTACH} && \
             FERROCCID_VENDOR=08e6 FERROCCID_SCRIPT='{script}' {GUEST} \
             || {{ echo FAILED; cat /tmp/sim.log; exit 1; }}"
        ))
        .success();
    assert_eq!(run.value("us:list-equal: "), "true", "{}", run.console);
    assert_eq!(run.value("us:conformance: "), "ok");
    let responses: Vec<&str> = run.values("us:< ").collect();
    assert_eq!(responses.len(), 4, "{}", run.console);
    for r in &responses {
        assert!(r.ends_with("9000"), "{r}");
    }
    // The simulated card's documented contents (sim/src/card/fs.rs).
    assert_eq!(
        hex(&responses[1][..responses[1].len() - 4]),
        b"Hello from the ferroccid virtual card.\n"
    );
    let expected: Vec<u8> = (0..1000).map(|i| (i % 251) as u8).collect();
    assert_eq!(hex(&responses[3][..responses[3].len() - 4]), expected);
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Runs inside the guest: the reader of vendor FERROCCID_VENDOR through the usbfs
/// backend — list (against nusb's), conformance, then with the event thread running,
/// power on and FERROCCID_SCRIPT; with FERROCCID_UNPLUG=1 the reader is unplugged
/// through the QEMU monitor.
#[test]
#[ignore = "guest side of the vm_usbfs tests: runs inside the VM"]
fn guest_side() {
    use ferroccid::backend::usbfs::{list, UsbfsTransport};
    use ferroccid::{testing::run_conformance, Transport, TransportError};
    use ferroccid::{ErrorKind, Reader};
    use std::sync::Arc;
    println!(); // libtest's "test guest_side ... " has no newline yet
    let vendor = u16::from_str_radix(&std::env::var("FERROCCID_VENDOR").unwrap(), 16).unwrap();
    let infos = list().expect("list CCID interfaces");
    for i in &infos {
        println!(
            "us:list: {} {:04x}:{:04x}",
            i.name, i.vendor_id, i.product_id
        );
    }
    let nusb = ferroccid::backend::nusb::list().expect("nusb list");
    println!("us:list-equal: {}", infos == nusb);
    let info = infos
        .iter()
        .find(|i| i.vendor_id == vendor)
        .expect("the reader listed");
    let transport = Arc::new(UsbfsTransport::open_str(&info.name).expect("open through usbfs"));
    match run_conformance(transport.as_ref()) {
        Ok(()) => println!("us:conformance: ok"),
        Err(e) => println!("us:conformance: {e}"),
    }
    let reader = Reader::open(transport.clone()).expect("Reader::open");
    // The event thread keeps an interrupt-IN URB pending beside every bulk-IN one.
    let _events = reader.events();
    println!("us:features: {:08X}", reader.descriptor().features);
    let slot = reader.slot(0).expect("slot 0");
    let atr = slot.power_on().expect("power on");
    println!("us:atr: {}", to_hex(atr.as_bytes()));
    let mut response = vec![0u8; 65538];
    let script = std::env::var("FERROCCID_SCRIPT").unwrap_or_default();
    for apdu in script.split_whitespace() {
        let n = slot.transmit(&hex(apdu), &mut response).expect("transmit");
        println!("us:> {apdu}");
        println!("us:< {}", to_hex(&response[..n]));
    }
    if std::env::var("FERROCCID_UNPLUG").as_deref() == Ok("1") {
        let out = std::process::Command::new("rig")
            .args(["monitor", "device_del", "ccid"])
            .output()
            .unwrap();
        assert!(out.status.success(), "device_del failed");
        let start = Instant::now();
        loop {
            match slot.transmit(&hex("0084000008"), &mut response) {
                Err(e) if e.kind() == ErrorKind::DeviceGone => break,
                Err(e) => panic!("after unplug: {e} ({:?}) instead of DeviceGone", e.kind()),
                Ok(_) if start.elapsed() > Duration::from_secs(10) => {
                    panic!("still answering 10 s after unplug")
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        println!("us:gone-ms: {}", start.elapsed().as_millis());
        let kind = |r: Result<(), ferroccid::ReaderError>| match r {
            Err(e) => format!("{:?}", e.kind()),
            Ok(()) => "ok".to_string(),
        };
        let gone = |r: Result<usize, TransportError>| match r {
            Err(TransportError::DeviceGone) => "DeviceGone".to_string(),
            other => format!("{other:?}"),
        };
        let t = Instant::now();
        println!(
            "us:after transmit: {}",
            kind(
                slot.transmit(&[0, 0x84, 0, 0, 8], &mut response)
                    .map(|_| ())
            )
        );
        println!("us:after status: {}", kind(slot.status().map(|_| ())));
        println!("us:after power_on: {}", kind(slot.power_on().map(|_| ())));
        let mut buf = [0u8; 64];
        println!(
            "us:after bulk_in: {}",
            gone(transport.bulk_in(&mut buf, Duration::from_secs(5)))
        );
        println!(
            "us:after interrupt_in: {}",
            gone(transport.interrupt_in(&mut buf, Duration::from_secs(5)))
        );
        println!("us:after-calls-ms: {}", t.elapsed().as_millis());
    }
}
