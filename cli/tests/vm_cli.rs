//! ferroccid's CLI on a real Linux USB stack: QEMU's usb-ccid reader on xHCI in the
//! guest, through the usbfs, nusb and rusb (libusb) backends,
//! against the kernel's own view (sysfs) and libccid (pcscd) as the oracle.
//!
//! Expected values come from the description of QEMU's reader (08e6:4433,
//! dwFeatures 0x000104FE: TPDU level, T=0 only), CCID 1.1 §5.1 (the class descriptor
//! is the 54-byte descriptor of type 0x21 in the configuration) and ISO/IEC 7816-4.
//!
//! The card-event and unplug test runs `guest_events` below inside the VM from a
//! stripped copy of this test binary; on the host it is ignored with that reason.

#[path = "../../tests/vm/harness.rs"]
mod harness;

use harness::{ferroccid_extra, hex, out_dir, repo_root, Guest, GuestRun};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The same script as `vm_libccid.rs`; GET CHALLENGE answers are random.
const SCRIPT: &str = "00A4000C023F00 00B0000010 00FE000000 0084000008 00A4020C022F00";

/// Starts pcscd (libccid) once ferroccid has let go of the reader.
const START_PCSCD: &str = "{ (pcscd -f > /tmp/pcscd.log 2>&1 &); i=0; \
    until [ -S /run/pcscd/pcscd.comm ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
    [ -S /run/pcscd/pcscd.comm ]; }";

/// Sets `$dev` (device name) and `$name` (listed name) of QEMU's reader from `ferroccid
/// list --json` (busybox has no jq: the pretty-printed keys are one per line).
const FIND_READER: &str = "ferroccid list --json > /tmp/list.json && \
    dev=$(awk -F'\"' '/\"vid_pid\": \"08E6:4433\"/ {f=1} f && /\"device\":/ {print $4; exit}' /tmp/list.json) && \
    name=$(awk -F'\"' '/\"name\":/ {n=$4} /\"vid_pid\": \"08E6:4433\"/ {print n; exit}' /tmp/list.json) && \
    echo dev: $dev && echo name: $name";

/// The guest command of the CLI comparison: sysfs, `list`, `descriptor`, `card
/// status`, `apdu` by device name and by reader name once per backend (its lines
/// prefixed `BACKEND.`, one guest boot for all of them), then libccid once.
fn cli_script(backends: &[&str]) -> String {
    let per_backend: Vec<String> = backends
        .iter()
        .map(|backend| {
            format!(
                "( export FERROCCID_USB_BACKEND={backend}; \
                 ferroccid list | sed 's/^/list:/' && \
                 {FIND_READER} && \
                 echo level: $(awk -F'\"' '/\"vid_pid\": \"08E6:4433\"/ {{f=1}} f && /\"exchange_level\":/ {{print $4; exit}}' /tmp/list.json) && \
                 echo raw-dev: $(ferroccid descriptor --reader $dev --raw) && \
                 echo raw-name: $(ferroccid descriptor --reader \"$name\" --raw) && \
                 ferroccid descriptor --reader $dev --json | sed 's/^/json:/' && \
                 ferroccid apdu --reader $dev {SCRIPT} | sed 's/^/fc:/' && \
                 ferroccid apdu --reader \"$name\" 0084000008 | sed 's/^/byname:/' && \
                 {{ ferroccid card --reader $dev status 2>&1; echo card-status-rc: $?; }} | sed 's/^/status:/' \
                 ) 2>&1 | sed 's/^/{backend}./' && "
            )
        })
        .collect();
    format!(
        "set -o pipefail; d=$(rig ccid-dev) && \
         echo sysfs: $(od -An -v -tx1 $d/descriptors | tr -d ' \\n') && \
         {} {START_PCSCD} && pcsc-apdu {SCRIPT} | sed 's/^/lc:/'",
        per_backend.concat()
    )
}

/// The values of the lines `TAGPREFIX…` (trimmed), `tag` naming the backend's block.
fn tagged(run: &GuestRun, tag: &str, prefix: &str) -> Vec<String> {
    let full = format!("{tag}{prefix}");
    run.values(&full).map(String::from).collect()
}

/// The one value of `TAGPREFIX…`; panics if absent.
fn tagged_value(run: &GuestRun, tag: &str, prefix: &str) -> String {
    tagged(run, tag, prefix)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no `{tag}{prefix}` line in:\n{}", run.console))
}

/// Checks the CLI lines of one backend's block (`tag`, e.g. `usbfs.`) against sysfs
/// and libccid; panics on a mismatch.
fn check_cli_run(run: &GuestRun, tag: &str) {
    // `list`: QEMU's reader, TPDU level (dwFeatures 0x000104FE: bits 16-18 = 001)
    let listed = tagged(run, tag, "list:");
    assert!(
        listed.iter().any(|l| l.starts_with("08E6:4433")),
        "{tag} {listed:?}"
    );
    let dev = tagged_value(run, tag, "dev: ");
    assert!(
        dev.starts_with("usb:08e6/4433:"),
        "{tag} a pcscd-style USB device name: {dev}"
    );
    assert_eq!(tagged_value(run, tag, "level: "), "tpdu", "{tag}");
    let name = tagged_value(run, tag, "name: ");
    assert!(
        !name.is_empty() && !name.contains("simulator"),
        "{tag} {name}"
    );

    // `descriptor`: the 54 bytes equal the type-0x21 descriptor the kernel read
    let sysfs = hex(&run.value("sysfs: "));
    let class = class_descriptor_in(&sysfs[18..]);
    assert_eq!(class.len(), 54, "CCID §5.1: bLength 0x36");
    assert_eq!(
        hex(&tagged_value(run, tag, "raw-dev: ")),
        class,
        "{tag} by device name"
    );
    assert_eq!(
        hex(&tagged_value(run, tag, "raw-name: ")),
        class,
        "{tag} by reader name"
    );
    let json: serde_json::Value = serde_json::from_str(&tagged(run, tag, "json:").join("\n"))
        .unwrap_or_else(|e| panic!("{tag} descriptor --json is one object: {e}"));
    assert_eq!(json["features"], 0x0001_04FE, "{tag}");
    assert_eq!(json["protocols"], 1, "{tag} T=0 only");
    assert_eq!(json["max_message_length"], 65554, "{tag}");
    assert_eq!(json["exchange_level"], "tpdu", "{tag}");

    // power on + the script: equal to libccid
    let commands: Vec<&str> = SCRIPT.split_whitespace().collect();
    let ours = tagged(run, tag, "fc:");
    let oracle: Vec<(String, String)> = run
        .values("lc:> ")
        .map(String::from)
        .zip(run.values("lc:< ").map(String::from))
        .collect();
    assert_eq!(ours.len(), commands.len(), "{tag}\n{}", run.console);
    assert_eq!(oracle.len(), commands.len(), "{}", run.console);
    for ((command, mine), (sent, theirs)) in commands.iter().zip(&ours).zip(&oracle) {
        assert_eq!(command, sent);
        if command.starts_with("0084") {
            // GET CHALLENGE: 8 random bytes + 9000 (ISO/IEC 7816-4 §11.5.3)
            assert_eq!((mine.len(), &mine[16..]), (20, "9000"), "{tag} {command}");
            assert_eq!((theirs.len(), &theirs[16..]), (20, "9000"), "{command}");
        } else {
            assert_eq!(mine, theirs, "{command}: ferroccid ({tag}) vs libccid");
        }
    }
    let by_name = tagged_value(run, tag, "byname:");
    assert_eq!((by_name.len(), &by_name[16..]), (20, "9000"), "{tag}");
    // the ATR, as `ferroccid card status` shows it, is libccid's
    let status = tagged(run, tag, "status:").join("\n");
    let lc_atr = run.value("lc:atr: ");
    assert!(
        status.contains("card-status-rc: 0")
            && status.replace(' ', "").to_uppercase().contains(&lc_atr),
        "`ferroccid card status` ({tag}) shows libccid's ATR {lc_atr}:\n{status}"
    );
}

/// The type-0x21 descriptor in a configuration descriptor chain.
fn class_descriptor_in(mut chain: &[u8]) -> Vec<u8> {
    while chain.len() >= 2 {
        let len = chain[0] as usize;
        assert!(len >= 2 && len <= chain.len(), "broken chain {chain:02X?}");
        if chain[1] == 0x21 {
            return chain[..len].to_vec();
        }
        chain = &chain[len..];
    }
    panic!("no CCID class descriptor in sysfs descriptors");
}

#[test]
fn cli_over_nusb_and_usbfs_matches_sysfs_and_libccid() {
    let run = Guest::new()
        .extra(&ferroccid_extra("cli-nusb"))
        .run(&cli_script(&["nusb", "usbfs"]))
        .success();
    check_cli_run(&run, "nusb.");
    check_cli_run(&run, "usbfs.");
}

/// The ferroccid binary built again with `--features rusb`, in the target directory
/// vm_ferroccid.rs already uses for its rusb build (shared dependencies), stripped.
fn rusb_cli_dir() -> PathBuf {
    let root = repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--features",
            "rusb",
            "--bin",
            "ferroccid",
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
        .find(|e| e.ends_with("/ferroccid"))
        .expect("cargo names the ferroccid executable");
    let dir = out_dir("cli-rusb");
    std::fs::copy(&exe, dir.join("ferroccid")).expect("copy the rusb ferroccid");
    let status = Command::new("strip")
        .arg(dir.join("ferroccid"))
        .status()
        .expect("run strip (binutils)");
    assert!(status.success());
    // the binary really goes through libusb
    let ldd = Command::new("ldd")
        .arg(dir.join("ferroccid"))
        .output()
        .expect("run ldd");
    assert!(
        String::from_utf8_lossy(&ldd.stdout).contains("libusb-1.0"),
        "the --features rusb binary links libusb"
    );
    dir
}

#[test]
fn cli_over_rusb_matches_sysfs_and_libccid() {
    let run = Guest::new()
        .extra(&rusb_cli_dir())
        .run(&cli_script(&["rusb"]))
        .success();
    check_cli_run(&run, "rusb.");
}

/// This test binary, stripped, plus the ferroccid CLI, for the guest.
fn guest_dir(name: &str) -> PathBuf {
    let dir = ferroccid_extra(name);
    let me = std::env::current_exe().expect("the test binary's path");
    std::fs::copy(&me, dir.join("vm_cli")).expect("copy the test binary");
    let status = Command::new("strip")
        .arg(dir.join("vm_cli"))
        .status()
        .expect("run strip (binutils)");
    assert!(status.success());
    dir
}

/// Every CLI command on the unplugged reader: exit status 1 (not 124 = hung), the
/// message, the seconds it took.
const CLI_AFTER_UNPLUG: [(&str, &str); 4] = [
    ("apdu", "ferroccid apdu --reader $dev 0084000008"),
    ("card", "ferroccid card --reader $dev status"),
    ("descriptor", "ferroccid descriptor --reader $dev --raw"),
    (
        "apdu-by-name",
        "ferroccid apdu --reader \"$name\" 0084000008",
    ),
];

#[test]
fn card_events_through_the_interrupt_endpoint_and_unplug_over_nusb() {
    card_events_and_unplug("nusb");
}

#[test]
fn card_events_through_the_interrupt_endpoint_and_unplug_over_usbfs() {
    card_events_and_unplug("usbfs");
}

/// Card removal, insertion and `device_del` with `backend` (its own guest: the reader
/// is gone afterwards), the library side run by `guest_events`, the CLI after it.
fn card_events_and_unplug(backend: &str) {
    let mut after = String::new();
    for (label, command) in CLI_AFTER_UNPLUG {
        after.push_str(&format!(
            "s=$(cut -d' ' -f1 /proc/uptime); timeout 10 {command} > /tmp/out 2>&1; rc=$?; \
             echo {label}-status: $rc; echo {label}-msg: $(head -c 300 /tmp/out | tr '\\n' ' '); \
             echo {label}-s: $(awk -v s=$s '{{print $1 - s}}' /proc/uptime); "
        ));
    }
    let run = Guest::new()
        .extra(&guest_dir(&format!("cli-events-{backend}")))
        .run(&format!(
            "export FERROCCID_USB_BACKEND={backend}; {FIND_READER} && vm_cli --ignored --exact guest_events --nocapture --test-threads=1 && \
             {after} ferroccid list | sed 's/^/list-after:/'"
        ))
        .success();
    let expected_backend = match backend {
        "usbfs" => "Usbfs",
        _ => "Nusb",
    };
    assert_eq!(run.value("ev-backend: "), expected_backend);
    // the library saw removal and insertion on the interrupt endpoint (CCID §6.3.1)
    assert_eq!(
        run.values("ev:").collect::<Vec<_>>(),
        [
            "removed SlotChanged { slot: 0, present: false }",
            "inserted SlotChanged { slot: 0, present: true }",
        ],
        "{}",
        run.console
    );
    assert_eq!(run.value("ev-apdu-after-insert: ").len(), 20);
    // checks that fail today are collected so one does not hide the next
    let mut wrong = Vec::new();
    let no_card = run.value("ev-no-card: ");
    if !no_card.starts_with("NoCard ") {
        wrong.push(format!(
            "APDU after the removal event: {no_card}, not NoCard"
        ));
    }
    // unplug: every library call says DeviceGone, bounded
    for call in ["transmit", "status", "power_on", "wait_for_change"] {
        let got = run.value(&format!("gone {call}: "));
        if got != "DeviceGone" {
            wrong.push(format!("{call} after unplug: {got}, not DeviceGone"));
        }
    }
    let gone_ms: u64 = run.value("gone-ms: ").parse().unwrap();
    assert!(gone_ms < 3000, "DeviceGone after {gone_ms} ms");
    let calls_ms: u64 = run.value("gone-calls-ms: ").parse().unwrap();
    if calls_ms >= 1000 {
        wrong.push(format!("the four calls after unplug took {calls_ms} ms"));
    }
    assert_eq!(run.value("gone event: "), "DeviceGone");
    // unplug: every CLI command fails at once with a message, nothing hangs
    for (label, _) in CLI_AFTER_UNPLUG {
        let status: i32 = run.value(&format!("{label}-status: ")).parse().unwrap();
        assert_eq!(status, 1, "{label}: exit status (124 = hung)");
        let message = run.value(&format!("{label}-msg: "));
        assert!(!message.is_empty(), "{label}: says why");
        let seconds: f64 = run.value(&format!("{label}-s: ")).parse().unwrap();
        assert!(seconds < 3.0, "{label} took {seconds} s");
    }
    assert!(
        !run.values("list-after:")
            .any(|l| l.starts_with("08E6:4433")),
        "{}",
        run.console
    );
    assert!(wrong.is_empty(), "wrong:\n{}", wrong.join("\n"));
}

fn rig(args: &[&str]) {
    let out = Command::new("rig").args(args).output().expect("run rig");
    assert!(
        out.status.success(),
        "rig {args:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Runs inside the guest: card removal and insertion seen by `Reader::wait_for_change`
/// (the interrupt endpoint), then the reader unplugged through the QEMU monitor.
#[test]
#[ignore = "guest side of card_events_through_the_interrupt_endpoint_and_unplug: runs inside the VM"]
fn guest_events() {
    use ferroccid::{list_usb, open, UsbBackend};
    use ferroccid::{ErrorKind, Reader, ReaderEvent};
    println!(); // libtest's "test guest_events ... " has no newline yet
    let backend = UsbBackend::from_env();
    println!("ev-backend: {backend:?}");
    let infos = list_usb(backend).expect("list CCID interfaces");
    let info = infos
        .iter()
        .find(|i| i.vendor_id == 0x08E6 && i.product_id == 0x4433)
        .expect("QEMU's reader listed");
    let reader = Reader::open(open(&info.name).expect("open").transport).expect("Reader::open");
    let events = reader.events();
    let slot = reader.slot(0).expect("slot 0");
    slot.power_on().expect("power on");
    let mut response = vec![0u8; 258];
    // drain what the subscription saw at start (the initial NotifySlotChange)
    while events.recv_timeout(Duration::from_millis(300)).is_ok() {}
    let next_change = |what: &str| loop {
        match events.recv_timeout(Duration::from_secs(5)) {
            Ok(e @ ReaderEvent::SlotChanged { .. }) => {
                println!("ev:{what} {e:?}");
                break e;
            }
            Ok(other) => println!("ev-other: {other:?}"),
            Err(e) => panic!("no event {what} within 5 s: {e}"),
        }
    };
    rig(&["card", "remove"]);
    next_change("removed");
    let no_card = slot.transmit(&[0, 0x84, 0, 0, 8], &mut response);
    println!(
        "ev-no-card: {}",
        match no_card {
            Err(e) => format!("{:?} ({e})", e.kind()),
            Ok(n) => format!("answered {}", upper_hex(&response[..n])),
        }
    );
    rig(&["card", "insert"]);
    next_change("inserted");
    slot.power_on().expect("power on after insertion");
    let n = slot
        .transmit(&[0, 0x84, 0, 0, 8], &mut response)
        .expect("GET CHALLENGE after insertion");
    println!("ev-apdu-after-insert: {}", upper_hex(&response[..n]));

    rig(&["monitor", "device_del", "ccid"]);
    let start = Instant::now();
    loop {
        match slot.transmit(&[0, 0x84, 0, 0, 8], &mut response) {
            Err(e) if e.kind() == ErrorKind::DeviceGone => break,
            Err(e) => panic!("after unplug: {e} ({:?}) instead of DeviceGone", e.kind()),
            Ok(_) if start.elapsed() > Duration::from_secs(10) => {
                panic!("still answering 10 s after unplug")
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    println!("gone-ms: {}", start.elapsed().as_millis());
    let kind = |r: Result<String, ferroccid::ReaderError>| match r {
        Err(e) => format!("{:?}", e.kind()),
        Ok(what) => format!("ok: {what}"),
    };
    let t = Instant::now();
    println!(
        "gone transmit: {}",
        kind(
            slot.transmit(&[0, 0x84, 0, 0, 8], &mut response)
                .map(|n| n.to_string())
        )
    );
    println!(
        "gone status: {}",
        kind(slot.status().map(|s| format!("{s:?}")))
    );
    println!(
        "gone power_on: {}",
        kind(slot.power_on().map(|a| upper_hex(a.as_bytes())))
    );
    println!(
        "gone wait_for_change: {}",
        kind(
            reader
                .wait_for_change(Duration::from_secs(5))
                .map(|e| format!("{e:?}"))
        )
    );
    println!("gone-calls-ms: {}", t.elapsed().as_millis());
    // the subscription ends with DeviceGone ("no event follows")
    let last = loop {
        match events.recv_timeout(Duration::from_secs(3)) {
            Ok(ReaderEvent::DeviceGone) => break "DeviceGone".to_string(),
            Ok(_) => continue,
            Err(e) => break format!("{e}"),
        }
    };
    println!("gone event: {last}");
}
