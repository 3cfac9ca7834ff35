//! APDU latency benchmark in one guest run on QEMU's usb-ccid reader (a benchmark, not a
//! timed test: it asserts only that every path completed with correct responses and ran
//! on the USB backend it is labelled with).
//!
//! Alternating rounds of N × GET CHALLENGE 8 (ISO/IEC 7816-4 §11.5.3: 8 bytes + 9000),
//! eight paths, each library path with `FERROCCID_USB_BACKEND` set explicitly:
//! 1. floor: `tests/vm/usbfs-xfr.c`, bare XfrBlock round trips through usbfs ioctls,
//!    reading a whole dwMaxCCIDMessageLength per bulk-IN as libccid does (a reference
//!    variant reads 320 bytes, to show what the kernel's 64 KiB buffer costs);
//! 2. ferroccid's library (`Slot::transmit`) over the usbfs backend, `guest_bench` below;
//! 3. the same over nusb;
//! 4. the library over usbfs with the event thread running (`Slot::insertions` starts it,
//!    as the bundle does): isolates what the interrupt-IN waiter costs each APDU;
//! 5. ferroccid's bundle in pcscd over usbfs, through the harness's C PC/SC client;
//! 6. the same over nusb;
//! 7. libccid's bundle in pcscd, the same client.
//!
//! Each round starts at a different path (rotation), so no path always runs first after
//! boot or always follows pcscd's shutdown. Prints per-round medians, the median of the
//! round medians, the spread, and the two issue-6 ratios; writes the table to
//! `target/vm-out/bench-table/table.md` (quoted in `benches/VM.md`).
//! Targets: ferroccid direct (usbfs) ≤ 1.10 × floor, ferroccid-in-pcscd (usbfs) ≤ 0.90 ×
//! libccid-in-pcscd. `FERROCCID_BENCH_ROUNDS` overrides the number of rounds.
//!
//! `pcscd_syscall_profile` (ignored by default: a profiling aid, not a benchmark) counts
//! pcscd's system calls per APDU with strace for the ferroccid bundle (usbfs) and libccid.

#[path = "../../tests/vm/harness.rs"]
mod harness;

use harness::{ferroccid_extra, repo_root, Guest, GuestRun};
use std::process::Command;
use std::time::{Duration, Instant};

/// APDUs per path per round.
const N: usize = 150;
/// Rounds (each runs every path, ~2.3 s in the guest in November, ~6 s in December's runs):
/// per-round ratios on the shared host spread 0.5–1.5, so one round says little; the test
/// gives the guest 180 s.
const ROUNDS: usize = 10;
/// GET CHALLENGE, 8 bytes.
const APDU: &str = "0084000008";
/// pcscd's drivers directory on Debian.
const DRIVERS: &str = "/usr/lib/pcsc/drivers";

const STOP_PCSCD: &str = "{ kill $(pidof pcscd); i=0; \
    while pidof pcscd > /dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; \
    rm -f /run/pcscd/pcscd.comm; }";

/// Starts pcscd with `env` (`VAR=value …`, may be empty) and waits for its socket.
fn start_pcscd(env: &str) -> String {
    format!(
        "{{ ({env} pcscd -f > /tmp/pcscd.log 2>&1 &); i=0; \
         until [ -S /run/pcscd/pcscd.comm ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
         [ -S /run/pcscd/pcscd.comm ]; }}"
    )
}

/// One measured path.
struct Path {
    /// Console tag prefix.
    tag: &'static str,
    /// Row label in the table.
    label: &'static str,
    /// Prefix of the line carrying the first response (hex).
    response_prefix: &'static str,
}

const PATHS: [Path; 8] = [
    Path {
        tag: "floor",
        label: "raw usbfs XfrBlock loop (floor)",
        response_prefix: "response: ",
    },
    Path {
        tag: "floors",
        label: "floor, bulk-IN of 320 bytes (reference)",
        response_prefix: "response: ",
    },
    Path {
        tag: "libu",
        label: "ferroccid library (usbfs)",
        response_prefix: "response: ",
    },
    Path {
        tag: "libn",
        label: "ferroccid library (nusb)",
        response_prefix: "response: ",
    },
    Path {
        tag: "libue",
        label: "ferroccid library (usbfs) + event thread",
        response_prefix: "response: ",
    },
    Path {
        tag: "fpcu",
        label: "ferroccid bundle in pcscd (usbfs)",
        response_prefix: "< ",
    },
    Path {
        tag: "fpcn",
        label: "ferroccid bundle in pcscd (nusb)",
        response_prefix: "< ",
    },
    Path {
        tag: "lpc",
        label: "libccid bundle in pcscd",
        response_prefix: "< ",
    },
];

/// The guest's files: ferroccid, this test binary, the floor program, the bundle, and
/// (for the profile) strace.
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
    let config = ferroccid_ifd::plist::BundleConfig {
        executable: "libferroccid.so".into(),
        log_level: 1,
        driver_options: 0,
        class_driver: false,
    };
    let qemu = ferroccid_ifd::plist::ReaderId {
        vendor_id: 0x08E6,
        product_id: 0x4433,
        name: "QEMU USB CCID".into(),
    };
    std::fs::write(
        contents.join("Info.plist"),
        ferroccid_ifd::plist::render(&config, &[qemu]),
    )
    .unwrap();
    // FERROCCID_BENCH_BUNDLE=PATH: another build of the bundle library for
    // the guest's pcscd paths (an A/B against an older commit: compare the
    // runs' pcscd/libccid ratios).
    let lib = std::env::var_os("FERROCCID_BENCH_BUNDLE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(harness::fresh_cdylib);
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

/// Shell prologue: the reader's device node in `$node`, libccid's bundle moved aside.
fn prologue() -> String {
    format!(
        "set -o pipefail; d=$(rig ccid-dev) && \
         node=/dev/bus/usb/$(printf %03d $(cat $d/busnum))/$(printf %03d $(cat $d/devnum)) && \
         mkdir -p /tmp/off && mv {DRIVERS}/ifd-ccid.bundle /tmp/off/ && "
    )
}

/// Runs the PC/SC client under pcscd with ferroccid's bundle on `backend`, tagging its
/// output and the names of pcscd's threads (which show the backend: nusb runs a
/// "nusb-events" thread, usbfs none).
fn ferroccid_pcscd(backend: &str, tag: &str, n: usize) -> String {
    format!(
        "cp -r /extra/ifd-ferroccid.bundle {DRIVERS}/ && {start} && \
         pcsc-apdu -w 5 -n {n} {APDU} | sed 's/^/{tag}:/' && \
         echo {tag}:threads: $(cat /proc/$(pidof pcscd)/task/*/comm) && {STOP_PCSCD} && \
         rm -rf {DRIVERS}/ifd-ferroccid.bundle && ",
        start = start_pcscd(&format!("FERROCCID_USB_BACKEND={backend}")),
    )
}

/// The guest commands of one path in one round.
fn path_commands(path: &str, tag: &str, n: usize) -> String {
    let library = |backend: &str| {
        format!(
            "FERROCCID_USB_BACKEND={backend} FERROCCID_BENCH_N={n} vm_bench --ignored --exact \
             guest_bench --nocapture --test-threads=1 | sed 's/^/{tag}:/' && "
        )
    };
    match path {
        "floor" => format!("usbfs-xfr $node 0 0x03 0x82 {n} {APDU} | sed 's/^/{tag}:/' && "),
        // 320 = 10 + 258 + 2 rounded up to whole 64-byte packets: enough for any short
        // response, and no 64 KiB kernel buffer per transfer.
        "floors" => format!("usbfs-xfr $node 0 0x03 0x82 {n} {APDU} 320 | sed 's/^/{tag}:/' && "),
        "libu" => library("usbfs"),
        "libn" => library("nusb"),
        "libue" => format!("FERROCCID_BENCH_EVENTS=1 {}", library("usbfs")),
        "fpcu" => ferroccid_pcscd("usbfs", tag, n),
        "fpcn" => ferroccid_pcscd("nusb", tag, n),
        "lpc" => format!(
            "mv /tmp/off/ifd-ccid.bundle {DRIVERS}/ && {start} && \
             pcsc-apdu -w 5 -n {n} {APDU} | sed 's/^/{tag}:/' && {STOP_PCSCD} && \
             mv {DRIVERS}/ifd-ccid.bundle /tmp/off/ && ",
            start = start_pcscd("")
        ),
        other => unreachable!("unknown path {other}"),
    }
}

fn rounds() -> usize {
    std::env::var("FERROCCID_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(ROUNDS)
}

fn guest_script(rounds: usize) -> String {
    let mut s = prologue();
    for round in 1..=rounds {
        for k in 0..PATHS.len() {
            let path = &PATHS[(k + round - 1) % PATHS.len()];
            s.push_str(&path_commands(path.tag, &format!("{}{round}", path.tag), N));
        }
    }
    s.push_str("echo bench-done || { echo FAILED; cat /tmp/pcscd.log; exit 1; }");
    s
}

/// The path's per-round medians in µs; asserts every round answered GET CHALLENGE
/// correctly and (for pcscd with ferroccid's bundle) ran on the labelled backend.
fn round_medians(run: &GuestRun, path: &Path, rounds: usize) -> Vec<u64> {
    (1..=rounds)
        .map(|round| {
            let tag = format!("{}{round}:", path.tag);
            let response = run.value(&format!("{tag}{}", path.response_prefix));
            assert!(
                response.len() == 20 && response.ends_with("9000"),
                "{} round {round}: GET CHALLENGE answered {response}",
                path.label
            );
            let nusb_thread =
                |tag: &str| run.value(&format!("{tag}threads:")).contains("nusb-events");
            match path.tag {
                "fpcu" => assert!(
                    !nusb_thread(&tag),
                    "{} ran nusb: {}",
                    path.label,
                    run.value(&format!("{tag}threads:"))
                ),
                "fpcn" => assert!(
                    nusb_thread(&tag),
                    "{} has no nusb thread: {}",
                    path.label,
                    run.value(&format!("{tag}threads:"))
                ),
                "libu" | "libue" => assert_eq!(run.value(&format!("{tag}backend: ")), "Usbfs"),
                "libn" => assert_eq!(run.value(&format!("{tag}backend: ")), "Nusb"),
                _ => {}
            }
            run.value(&format!("{tag}median_us: "))
                .parse()
                .expect("median_us")
        })
        .collect()
}

fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

#[test]
fn apdu_latency_floor_library_and_pcscd() {
    let rounds = rounds();
    let run = Guest::new()
        .extra(&guest_dir())
        // 10 rounds took 55-62 s of guest time in the clean-clone runs of
        // 2026-12-07 (about 6 s a round, not the 2.3 s measured in
        // November): over the 60 s default. Why the rounds got slower is
        // open (issue note); the limit is not what this test measures.
        .timeout(180)
        .run(&guest_script(rounds))
        .success();
    assert!(run.console.contains("bench-done"), "{}", run.console);
    let per_round: Vec<Vec<u64>> = PATHS
        .iter()
        .map(|p| round_medians(&run, p, rounds))
        .collect();
    let medians: Vec<u64> = per_round.iter().map(|r| median(r)).collect();
    let mut table = String::from("| path |");
    for round in 1..=rounds {
        table.push_str(&format!(" round {round} |"));
    }
    table.push_str(" median | spread |\n|---|");
    table.push_str(&"---:|".repeat(rounds + 2));
    table.push('\n');
    for ((path, rounds), median) in PATHS.iter().zip(&per_round).zip(&medians) {
        table.push_str(&format!("| {} |", path.label));
        for v in rounds {
            table.push_str(&format!(" {v} |"));
        }
        let (lo, hi) = (rounds.iter().min().unwrap(), rounds.iter().max().unwrap());
        table.push_str(&format!(" {median} | {lo}–{hi} |\n"));
    }
    let [floor, floor_short, lib_usbfs, lib_nusb, lib_events, fpc_usbfs, fpc_nusb, libccid] =
        medians[..]
    else {
        unreachable!()
    };
    let ratio = |a: u64, b: u64| a as f64 / b as f64;
    // Per-round ratios show how much of a ratio is the host's noise.
    let round_ratios = |a: usize, b: usize| {
        let ratios: Vec<f64> = per_round[a]
            .iter()
            .zip(&per_round[b])
            .map(|(x, y)| ratio(*x, *y))
            .collect();
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        let listed: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        format!(
            "{}; median of the per-round ratios {:.2}",
            listed.join(", "),
            sorted[sorted.len() / 2]
        )
    };
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let direct = ratio(lib_usbfs, floor);
    let pcscd = ratio(fpc_usbfs, libccid);
    table.push_str(&format!(
        "\nferroccid direct (usbfs) / floor = {direct:.3} (target ≤ 1.10: {}; per round {})\n\
         ferroccid direct (usbfs) / floor with 320-byte reads = {:.3} (per round {})\n\
         ferroccid direct (nusb) / floor = {:.3} (per round {})\n\
         ferroccid direct (usbfs) with the event thread / without = {:.3} (per round {})\n\
         ferroccid-pcscd (usbfs) / libccid-pcscd = {pcscd:.3} (target ≤ 0.90: {}; per round {})\n\
         ferroccid-pcscd (nusb) / libccid-pcscd = {:.3} (per round {})\n\
         ({rounds} rotated rounds × {N} APDUs per path; median of the round medians)\n",
        verdict(direct <= 1.10),
        round_ratios(2, 0),
        ratio(lib_usbfs, floor_short),
        round_ratios(2, 1),
        ratio(lib_nusb, floor),
        round_ratios(3, 0),
        ratio(lib_events, lib_usbfs),
        round_ratios(4, 2),
        verdict(pcscd <= 0.90),
        round_ratios(5, 7),
        ratio(fpc_nusb, libccid),
        round_ratios(6, 7),
    ));
    println!("{table}");
    let dir = harness::out_dir("bench-table");
    std::fs::write(dir.join("table.md"), &table).unwrap();
}

/// Runs inside the guest: the library's round trip, N × GET CHALLENGE on QEMU's reader.
#[test]
#[ignore = "guest side of apdu_latency_floor_library_and_pcscd: runs inside the VM"]
fn guest_bench() {
    use ferroccid::Reader;
    use ferroccid::{list_usb, open, UsbBackend};
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
    if std::env::var_os("FERROCCID_BENCH_EVENTS").is_some() {
        // As the bundle does when pcscd opens the reader: the first insertions() starts
        // the event thread, whose interrupt-IN URB waits on the same usbfs fd.
        println!("insertions: {}", slot.insertions());
    }
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
    // What the bundle's per-APDU response buffer (`vec![0u8; 65538]` in
    // `ifd/src/reader.rs`) costs in this guest: zeroed allocation and free.
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(vec![0u8; 65538]);
    }
    println!(
        "zeroed_64k_alloc_ns: {}",
        started.elapsed().as_nanos() / n as u128
    );
}

/// pcscd's system calls per APDU, ferroccid's bundle (usbfs) against libccid's, under
/// strace in the guest: `-c` counts over `PROFILE_N` APDUs, and `-f -tt` traces 3 APDUs
/// to show the per-APDU sequence. A profiling aid (`cargo test --release --test vm_bench
/// -- --ignored --nocapture pcscd_syscall_profile`); its output is quoted in
/// `benches/VM.md`. It asserts only that the guest ran it and strace wrote output each time.
#[test]
#[ignore = "profiling aid, run by hand: strace in the guest"]
fn pcscd_syscall_profile() {
    const PROFILE_N: usize = 200;
    let dir = guest_dir();
    let strace = "/usr/bin/strace";
    std::fs::copy(strace, dir.join("strace"))
        .unwrap_or_else(|e| panic!("{strace} (Debian package strace) is needed: {e}"));
    // strace detaches on SIGINT and prints its table; pcscd keeps running.
    let traced = |tag: &str, options: &str, n: usize| {
        format!(
            "pcsc-apdu -w 5 -n 5 {APDU} > /dev/null && \
             {{ strace {options} -p $(pidof pcscd) -o /tmp/{tag}.st & sp=$!; }} && sleep 2 && \
             pcsc-apdu -w 5 -n {n} {APDU} | sed 's/^/{tag}:/' && sleep 0.5 && kill -INT $sp && \
             wait $sp; sed 's/^/{tag}:st:/' /tmp/{tag}.st && "
        )
    };
    let mut s = prologue();
    for (tag, start, bundle_in, bundle_out) in [
        (
            "fu",
            start_pcscd("FERROCCID_USB_BACKEND=usbfs"),
            format!("cp -r /extra/ifd-ferroccid.bundle {DRIVERS}/"),
            format!("rm -rf {DRIVERS}/ifd-ferroccid.bundle"),
        ),
        (
            "lc",
            start_pcscd(""),
            format!("mv /tmp/off/ifd-ccid.bundle {DRIVERS}/"),
            format!("mv {DRIVERS}/ifd-ccid.bundle /tmp/off/"),
        ),
    ] {
        s.push_str(&format!("{bundle_in} && {start} && "));
        s.push_str(&traced(&format!("{tag}c"), "-c -f", PROFILE_N));
        s.push_str(&traced(&format!("{tag}s"), "-f -tt -T", 3));
        s.push_str(&format!("{STOP_PCSCD} && {bundle_out} && "));
    }
    s.push_str("echo profile-done || { echo FAILED; cat /tmp/pcscd.log; exit 1; }");
    let run = Guest::new().extra(&dir).run(&s).success();
    assert!(run.console.contains("profile-done"), "{}", run.console);
    let mut report = String::new();
    for tag in ["fuc", "fus", "lcc", "lcs"] {
        let prefix = format!("{tag}:st:");
        let lines: Vec<&str> = run.values(&prefix).collect();
        assert!(
            !lines.is_empty(),
            "no strace output for {tag}:\n{}",
            run.console
        );
        report.push_str(&format!("## {tag}\n{}\n\n", lines.join("\n")));
    }
    println!("{report}");
    let out = harness::out_dir("bench-profile");
    std::fs::write(out.join("strace.txt"), &report).unwrap();
}
