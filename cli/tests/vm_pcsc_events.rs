//! Reader added / removed and card inserted / removed events through a real pcscd, in
//! the QEMU guest, where a reader can come and go as a real USB device.
//!
//! Debian's pcscd cannot add or remove reader.conf readers while it runs; it learns of
//! USB readers through libudev's monitor, which listens to the events udevd re-sends
//! after processing the kernel's (the kernel's own uevents go to another netlink group
//! that libudev does not read). So the guest runs `systemd-udevd` (copied from the
//! host's `udev` package), pcscd with ferroccid's bundle only (libccid's moved away),
//! and `ferroccid monitor --pcsc` writing the events to a file. The reader is the
//! simulated GemPC Twin (profile `tpdu-t1`, 08E6:3437, holding a card) exported over
//! USB/IP by `guest_sim_server` (this test binary, run in the guest) and attached with
//! vhci-hcd + `usbip attach`; its card is moved through the simulator's control
//! directory (`ferroccid_sim::control`), the reader unplugged with `usbip detach`.
//!
//! The expected stream follows from those steps and from what the service layer
//! documents (`PcscMonitor`: a reader that goes away with a card in it first loses its
//! card): every event once, in order, numbered 1, 2, 3… without gaps.

#[path = "../../tests/vm/harness.rs"]
mod harness;

use ferroccid_ifd::plist::{render, BundleConfig, ReaderId};
use harness::{ferroccid_extra, Card, Guest};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// pcscd's drivers directory on Debian (compiled into pcscd).
const DRIVERS: &str = "/usr/lib/pcsc/drivers";

/// The simulator profile exported into the guest, and its control key
/// (`ferroccid_sim::control::control_key`).
const PROFILE: &str = "tpdu-t1";

/// The reader name the bundle's Info.plist gives 08E6:3437 (pcscd names a USB reader
/// after its `ifdFriendlyName`).
const FRIENDLY_NAME: &str = "ferroccid hotplug reader";

/// At most this many event lines are printed by the guest (the count is always).
const SHOWN: usize = 40;

/// The guest's USB/IP server address (loopback inside the guest).
const USBIP_ADDR: &str = "127.0.0.1:3240";

/// The guest side: serves the simulated reader over USB/IP, its card steered by the
/// files in `$FERROCCID_SIM_CONTROL`. Never returns (the guest powers off around it).
#[test]
#[ignore = "guest side of reader_and_card_events_reach_pcsc_clients_in_order: runs in the VM"]
fn guest_sim_server() {
    use ferroccid::Transport;
    use ferroccid_sim::control;
    use ferroccid_sim::profile::Profile;
    use ferroccid_sim::SimTransport;
    use ferroccid_usbip::UsbIpServer;

    let dir = std::env::var_os(control::CONTROL_ENV)
        .unwrap_or_else(|| panic!("{} must name the control directory", control::CONTROL_ENV));
    let profile = Profile::from_name(PROFILE).expect("built-in profile");
    let (transport, handle) = SimTransport::open(profile);
    let key = control::control_key(Some(PROFILE));
    let _watcher = control::watch(Path::new(&dir), &key, 1, handle).expect("control watcher");
    let transport: std::sync::Arc<dyn Transport> = std::sync::Arc::new(transport);
    let server = UsbIpServer::bind(USBIP_ADDR, transport, "1-1").expect("bind the USB/IP port");
    println!("sim: listening on {USBIP_ADDR}, control key {key}");
    server.serve().expect("USB/IP server");
}

fn strip(path: &Path, args: &[&str]) {
    let status = Command::new("strip")
        .args(args)
        .arg(path)
        .status()
        .expect("run strip (binutils)");
    assert!(status.success(), "strip {} failed", path.display());
}

/// The guest's `/extra`: the ferroccid CLI, this test binary, `systemd-udevd` and
/// `ifd-ferroccid.bundle` listing the simulator's 08E6:3437.
fn guest_files() -> PathBuf {
    let dir = ferroccid_extra("pcsc-events");
    let me = std::env::current_exe().expect("the test binary's path");
    std::fs::copy(&me, dir.join("vm_pcsc_events")).expect("copy the test binary");
    strip(&dir.join("vm_pcsc_events"), &[]);

    // Debian 12: /lib/systemd/systemd-udevd is a link to udevadm, which acts by argv[0].
    let udevd = Path::new("/lib/systemd/systemd-udevd");
    assert!(
        udevd.exists(),
        "{} missing: install Debian's `udev` package (pcscd's hotplug needs udevd)",
        udevd.display()
    );
    std::fs::copy(udevd, dir.join("systemd-udevd")).expect("copy systemd-udevd");

    let contents = dir.join("ifd-ferroccid.bundle/Contents");
    std::fs::create_dir_all(contents.join("Linux")).unwrap();
    let config = BundleConfig {
        executable: "libferroccid.so".into(),
        log_level: 1,
        driver_options: 0,
        class_driver: false,
    };
    let reader = ReaderId {
        vendor_id: 0x08E6,
        product_id: 0x3437,
        name: FRIENDLY_NAME.into(),
    };
    std::fs::write(contents.join("Info.plist"), render(&config, &[reader])).unwrap();
    let so = contents.join("Linux/libferroccid.so");
    std::fs::copy(harness::fresh_cdylib(), &so).expect("copy libferroccid.so");
    strip(&so, &["--strip-debug"]);
    dir
}

/// The guest script. Each step waits (at most 10 s) until the monitor has written the
/// events the previous step causes, so the next step cannot overtake it; a step that
/// times out fails the run with every log.
fn guest_script() -> String {
    let key = PROFILE;
    format!(
        "set -o pipefail
fail() {{ echo \"FAILED: $*\"; for f in /tmp/udevd.log /tmp/pcscd.log /tmp/sim.log /tmp/monitor.err /tmp/events.txt; do head -n 200 $f | sed \"s|^|$(basename $f): |\"; done; exit 1; }}
events() {{ i=0; until [ \"$(wc -l < /tmp/events.txt)\" -ge $1 ] || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done; [ \"$(wc -l < /tmp/events.txt)\" -ge $1 ] || fail \"waiting for $1 events\"; }}
rig modules usbip || fail 'usbip modules'
ip link set lo up
mkdir -p /tmp/off /tmp/simctl /run/udev /etc/udev
mv {DRIVERS}/ifd-ccid.bundle /tmp/off/ && cp -r /extra/ifd-ferroccid.bundle {DRIVERS}/ || fail 'bundle'
ls {DRIVERS} | sed 's/^/drivers:/'
systemd-udevd --daemon --resolve-names=never > /tmp/udevd.log 2>&1 || fail 'udevd'
i=0; until [ -S /run/udev/control ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done
[ -S /run/udev/control ] || fail 'udevd control socket'
(pcscd -f > /tmp/pcscd.log 2>&1 &)
i=0; until [ -S /run/pcscd/pcscd.comm ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done
[ -S /run/pcscd/pcscd.comm ] || fail 'pcscd socket'
: > /tmp/events.txt
(ferroccid monitor --pcsc > /tmp/events.txt 2> /tmp/monitor.err &)
(FERROCCID_SIM_CONTROL=/tmp/simctl vm_pcsc_events --ignored --exact guest_sim_server --nocapture --test-threads=1 > /tmp/sim.log 2>&1 &)
i=0; until usbip attach -r 127.0.0.1 -b 1-1 2>/dev/null || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done
[ $i -lt 50 ] || fail 'usbip attach'
echo step: attached
events 2
touch /tmp/simctl/{key}.absent; echo step: card out
events 3
rm /tmp/simctl/{key}.absent; echo step: card in
events 4
usbip detach -p 0 || fail 'usbip detach'; echo step: detached
events 6
sleep 1
pidof pcscd > /dev/null || fail 'pcscd died'
echo evcount: $(wc -l < /tmp/events.txt)
head -n {SHOWN} /tmp/events.txt | sed 's/^/ev:/'
tail -n 1 /tmp/events.txt | sed 's/^/evlast:/'
"
    )
}

/// One line of `ferroccid monitor`: `SEQ READER… KIND`.
fn parse_event(line: &str) -> (u64, String, String) {
    let line = line.trim();
    let (seq, rest) = line
        .split_once(' ')
        .unwrap_or_else(|| panic!("not an event line: {line:?}"));
    let (reader, kind) = rest
        .trim()
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("not an event line: {line:?}"));
    (
        seq.parse()
            .unwrap_or_else(|e| panic!("sequence number in {line:?}: {e}")),
        reader.trim().to_string(),
        kind.to_string(),
    )
}

#[test]
fn reader_and_card_events_reach_pcsc_clients_in_order() {
    let dir = guest_files();
    let started = Instant::now();
    let run = Guest::new()
        .card(Card::None)
        .without_qemu_reader()
        .extra(&dir)
        .run(&guest_script())
        .success();
    let took = started.elapsed();
    assert_eq!(
        run.values("drivers:").collect::<Vec<_>>(),
        ["ifd-ferroccid.bundle"],
        "only ferroccid's bundle in pcscd"
    );
    let events: Vec<(u64, String, String)> = run.values("ev:").map(parse_event).collect();
    let listing: String = events
        .iter()
        .map(|(seq, reader, kind)| format!("  {seq} {reader:?} {kind}\n"))
        .collect();
    let written: usize = run.value("evcount: ").parse().expect("event count");
    let kinds: Vec<&str> = events.iter().map(|(_, _, k)| k.as_str()).collect();
    assert_eq!(
        written,
        6,
        "six events expected, the monitor wrote {written}; the first {SHOWN}:\n{listing}  …\n  {}",
        run.value("evlast:")
    );
    assert_eq!(
        kinds,
        [
            "ReaderAdded",   // usbip attach: a USB reader appears, pcscd hotplugs it
            "CardInserted",  // the simulated reader starts with its card in
            "CardRemoved",   // control file KEY.absent created
            "CardInserted",  // … and deleted
            "CardRemoved",   // usbip detach with the card in: the card goes first
            "ReaderRemoved", // … then the reader
        ],
        "the event stream, in order, none lost, none duplicated:\n{listing}"
    );
    let seqs: Vec<u64> = events.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(seqs, (1..=6).collect::<Vec<u64>>(), "numbered without gaps");
    let reader = &events[0].1;
    assert!(
        reader.starts_with(FRIENDLY_NAME),
        "pcscd names the reader after the bundle's ifdFriendlyName: {reader:?}"
    );
    assert!(
        events.iter().all(|(_, r, _)| r == reader),
        "all events concern the one reader: {events:?}"
    );
    eprintln!("guest run took {took:?}");
}
