//! APDU latency benchmark in one guest run on QEMU's usb-ccid reader (a benchmark, not a
//! timed test: it asserts only that all four paths completed with correct responses).
//!
//! Alternating rounds of N × GET CHALLENGE 8 (ISO/IEC 7816-4 §11.5.3: 8 bytes + 9000):
//! 1. floor: `tests/vm/usbfs-xfr.c`, bare XfrBlock round trips through usbfs ioctls;
//! 2. ferroccid's library (`Slot::transmit` over nusb), `guest_bench` below;
//! 3. ferroccid's bundle in pcscd, through the harness's C PC/SC client;
//! 4. libccid's bundle in pcscd, the same client;
//! 5. ferroccid's library over the usbfs backend (`src/transport/usbfs.rs`).
//!
//! Prints the medians and the ratios and writes the table to `target/vm-out/bench-table/
//! table.md` (quoted in `benches/VM.md`). Targets (issue 6): ferroccid direct ≤ 1.10 ×
//! floor, ferroccid through pcscd ≤ 0.90 × libccid through pcscd.

#[path = "vm/harness.rs"]
mod harness;

use harness::{ferroccid_extra, repo_root, Guest, GuestRun};
use std::process::Command;
use std::time::{Duration, Instant};

/// APDUs per path per round.
const N: usize = 150;
/// Rounds (each runs the five paths in turn).
const ROUNDS: usize = 3;
/// GET CHALLENGE, 8 bytes.
const APDU: &str = "0084000008";
/// pcscd's drivers directory on Debian.
const DRIVERS: &str = "/usr/lib/pcsc/drivers";

const START_PCSCD: &str = "{ (pcscd -f > /tmp/pcscd.log 2>&1 &); i=0; \
    until [ -S /run/pcscd/pcscd.comm ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
    [ -S /run/pcscd/pcscd.comm ]; }";
const STOP_PCSCD: &str = "{ kill $(pidof pcscd); i=0; \
    while pidof pcscd > /dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; \
    rm -f /run/pcscd/pcscd.comm; }";

/// The guest's files: ferroccid, this test binary, the floor program, the bundle.
fn guest_dir() -> std::path::PathBuf {
    let dir = ferroccid_extra("bench");
    let me = std::env::current_exe().expect("the test binary's path");
    std::fs::copy(&me, dir.join("vm_bench")).expect("copy the test binary");
    let floor = dir.join("usbfs-xfr");
    for (program, args) in [
        ("strip", vec![dir.join("vm_bench").into_os_string()]),
        (
            "gcc",
            vec![
                "-O2".into(),
                "-Wall".into(),
                "-Werror".into(),
                "-o".into(),
                floor.clone().into_os_string(),
                repo_root().join("tests/vm/usbfs-xfr.c").into_os_string(),
            ],
        ),
    ] {
        let status = Command::new(program)
            .args(&args)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(status.success(), "{program} failed");
    }
    // the bundle, Info.plist listing QEMU's reader
    let contents = dir.join("ifd-ferroccid.bundle/Contents");
    std::fs::create_dir_all(contents.join("Linux")).unwrap();
    let config = ferroccid::ifd::plist::BundleConfig {
        executable: "libferroccid.so".into(),
        log_level: 1,
        driver_options: 0,
        class_driver: false,
    };
    let qemu = ferroccid::ifd::plist::ReaderId {
        vendor_id: 0x08E6,
        product_id: 0x4433,
        name: "QEMU USB CCID".into(),
    };
    std::fs::write(
        contents.join("Info.plist"),
        ferroccid::ifd::plist::render(&config, &[qemu]),
    )
    .unwrap();
    let lib = fresh_cdylib();
    let so = contents.join("Linux/libferroccid.so");
    std::fs::copy(&lib, &so).unwrap_or_else(|e| panic!("{}: {e}", lib.display()));
    let status = Command::new("strip")
        .arg("--strip-debug")
        .arg(&so)
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

/// This build's cdylib, built (or found up to date) by cargo in the profile the tests
/// run in: `cargo test` builds only the rlib, so the .so next to the binaries may be
/// stale or missing.
fn fresh_cdylib() -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--lib", "--message-format=json"]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("run cargo");
    assert!(
        out.status.success(),
        "cargo build --lib failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"]["name"] == "ferroccid")
        .filter_map(|v| v["filenames"].as_array().cloned())
        .flatten()
        .filter_map(|f| f.as_str().map(std::path::PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "so"))
        .expect("cargo names libferroccid.so")
}

fn guest_script() -> String {
    let mut s = format!(
        "set -o pipefail; d=$(rig ccid-dev) && \
         node=/dev/bus/usb/$(printf %03d $(cat $d/busnum))/$(printf %03d $(cat $d/devnum)) && \
         mkdir -p /tmp/off && mv {DRIVERS}/ifd-ccid.bundle /tmp/off/ && "
    );
    for round in 1..=ROUNDS {
        s.push_str(&format!(
            "usbfs-xfr $node 0 0x03 0x82 {N} {APDU} | sed 's/^/floor{round}:/' && \
             FERROCCID_USB_BACKEND=nusb FERROCCID_BENCH_N={N} vm_bench --ignored --exact guest_bench --nocapture --test-threads=1 \
               | sed 's/^/lib{round}:/' && \
             FERROCCID_USB_BACKEND=usbfs FERROCCID_BENCH_N={N} vm_bench --ignored --exact guest_bench --nocapture --test-threads=1 \
               | sed 's/^/ufs{round}:/' && \
             cp -r /extra/ifd-ferroccid.bundle {DRIVERS}/ && {START_PCSCD} && \
             pcsc-apdu -w 5 -n {N} {APDU} | sed 's/^/fpc{round}:/' && {STOP_PCSCD} && \
             rm -rf {DRIVERS}/ifd-ferroccid.bundle && mv /tmp/off/ifd-ccid.bundle {DRIVERS}/ && \
             {START_PCSCD} && pcsc-apdu -w 5 -n {N} {APDU} | sed 's/^/lpc{round}:/' && \
             {STOP_PCSCD} && mv {DRIVERS}/ifd-ccid.bundle /tmp/off/ && "
        ));
    }
    s.push_str("echo bench-done || { echo FAILED; cat /tmp/pcscd.log; exit 1; }");
    s
}

/// The path's median over the rounds' medians, in µs; asserts every round answered
/// GET CHALLENGE correctly.
fn median_of(run: &GuestRun, path: &str, response_prefix: &str) -> u64 {
    let mut medians = Vec::new();
    for round in 1..=ROUNDS {
        let tag = format!("{path}{round}:");
        let response = run.value(&format!("{tag}{response_prefix}"));
        assert!(
            response.len() == 20 && response.ends_with("9000"),
            "{path} round {round}: GET CHALLENGE answered {response}"
        );
        let median: u64 = run
            .value(&format!("{tag}median_us: "))
            .parse()
            .expect("median_us");
        medians.push(median);
    }
    medians.sort_unstable();
    medians[medians.len() / 2]
}

#[test]
fn apdu_latency_floor_library_and_pcscd() {
    let run = Guest::new()
        .extra(&guest_dir())
        .run(&guest_script())
        .success();
    assert!(run.console.contains("bench-done"), "{}", run.console);
    let floor = median_of(&run, "floor", "response: ");
    let library = median_of(&run, "lib", "response: ");
    let usbfs = median_of(&run, "ufs", "response: ");
    let ferroccid_pcscd = median_of(&run, "fpc", "< ");
    let libccid_pcscd = median_of(&run, "lpc", "< ");
    let direct_ratio = library as f64 / floor as f64;
    let usbfs_ratio = usbfs as f64 / floor as f64;
    let pcscd_ratio = ferroccid_pcscd as f64 / libccid_pcscd as f64;
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let table = format!(
        "| path | median µs per GET CHALLENGE |\n|---|---:|\n\
         | raw usbfs XfrBlock loop (floor) | {floor} |\n\
         | ferroccid library (nusb) | {library} |\n\
         | ferroccid library (usbfs) | {usbfs} |\n\
         | ferroccid bundle in pcscd | {ferroccid_pcscd} |\n\
         | libccid bundle in pcscd | {libccid_pcscd} |\n\n\
         ferroccid direct (nusb) / floor = {direct_ratio:.3} (target ≤ 1.10: {})\n\
         ferroccid direct (usbfs) / floor = {usbfs_ratio:.3} (target ≤ 1.10: {})\n\
         ferroccid-pcscd / libccid-pcscd = {pcscd_ratio:.3} (target ≤ 0.90: {})\n\
         ({ROUNDS} alternating rounds × {N} APDUs per path, median of the round medians)\n",
        verdict(direct_ratio <= 1.10),
        verdict(usbfs_ratio <= 1.10),
        verdict(pcscd_ratio <= 0.90),
    );
    println!("{table}");
    let dir = harness::out_dir("bench-table");
    std::fs::write(dir.join("table.md"), &table).unwrap();
}

/// Runs inside the guest: the library's round trip, N × GET CHALLENGE on QEMU's reader.
#[test]
#[ignore = "guest side of apdu_latency_floor_library_and_pcscd: runs inside the VM"]
fn guest_bench() {
    use ferroccid::device::{list_usb, open, UsbBackend};
    use ferroccid::reader::Reader;
    println!(); // libtest's "test guest_bench ... " has no newline yet
    let n: usize = std::env::var("FERROCCID_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(N);
    let infos = list_usb(UsbBackend::from_env()).expect("list CCID interfaces");
    let info = infos
        .iter()
        .find(|i| i.vendor_id == 0x08E6 && i.product_id == 0x4433)
        .expect("QEMU's reader listed");
    let reader = Reader::open(open(&info.name).expect("open").transport).expect("Reader::open");
    println!("backend: {:?}", UsbBackend::from_env());
    let slot = reader.slot(0).expect("slot 0");
    slot.power_on().expect("power on");
    let command = [0x00, 0x84, 0x00, 0x00, 0x08];
    let mut response = vec![0u8; 258];
    let mut us = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        let len = slot.transmit(&command, &mut response).expect("transmit");
        us.push(started.elapsed());
        if i == 0 {
            let hex: String = response[..len].iter().map(|b| format!("{b:02X}")).collect();
            println!("response: {hex}");
        }
    }
    us.sort_unstable();
    let median: Duration = us[n / 2];
    println!("median_us: {}", median.as_micros());
}
