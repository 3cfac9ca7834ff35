//! The bring-up commands on QEMU's usb-ccid reader in the guest (08E6:4433, TPDU
//! level, T=0, the vicc card): `script` with expectations and a live `--pcap`
//! capture, `bench`, `apdu --pcap` replayed with `replay` against the same reader,
//! and `atr` with the reader's clock. The captures come back to the host, where
//! `ferroccid trace` and Debian's tshark read them.

#[path = "../../tests/vm/harness.rs"]
mod harness;

use harness::{ferroccid_extra, out_dir, Guest};
use std::process::Command;

/// Sets `$dev` to QEMU's reader's device name (see `vm_cli.rs`).
const FIND_READER: &str = "ferroccid list --json > /tmp/list.json && \
    dev=$(awk -F'\"' '/\"vid_pid\": \"08E6:4433\"/ {f=1} f && /\"device\":/ {print $4; exit}' /tmp/list.json) && \
    echo dev: $dev";

/// SELECT MF and READ BINARY with no EF selected answer as in `vm_libccid.rs`.
const SCRIPT: &str = "00 A4 00 0C 02 3F 00 => 90 00\\n\
    00 84 00 00 08 => {challenge:8} 90 00\\n\
    repeat 3\\n00 84 00 00 08 => .. .. .. .. .. .. .. .. 90 00\\nend\\n\
    00 B0 00 00 10 => 69 86\\n";

#[test]
fn script_bench_capture_and_replay_on_qemus_reader() {
    let share = out_dir("bringup-share");
    let run = Guest::new()
        .extra(&ferroccid_extra("bringup-bin"))
        .share(&share)
        .run(&format!(
            "{FIND_READER} && printf '{SCRIPT}' > /tmp/check.script && \
             {{ ferroccid script /tmp/check.script --reader $dev --pcap /share/script.pcapng; echo rc: $?; }} 2>&1 | sed 's/^/script:/'; \
             {{ ferroccid bench -n 50 --reader $dev --json; echo rc: $?; }} 2>&1 | tr -d '\\n' | sed 's/^/bench:/'; echo; \
             {{ ferroccid apdu --reader $dev --pcap /share/apdu.pcapng 00A4000C023F00 0084000008; echo rc: $?; }} 2>&1 | sed 's/^/apdu:/'; \
             {{ ferroccid replay /share/apdu.pcapng --reader $dev; echo rc: $?; }} 2>&1 | sed 's/^/replay:/'; \
             {{ ferroccid script /tmp/check.script --reader $dev | awk '/^ATR / {{print $2}}' | head -1; }} > /tmp/atr && \
             ferroccid atr --reader $dev $(cat /tmp/atr) | sed 's/^/atr:/'"
        ))
        .success();
    let console = &run.console;
    // script: every expectation met, the exit status 0, each answer timed.
    let script: Vec<&str> = run.values("script:").collect();
    assert!(script.contains(&"rc: 0"), "{console}");
    assert_eq!(
        script.iter().filter(|l| l.starts_with("> ")).count(),
        6,
        "{console}"
    );
    assert!(script
        .iter()
        .filter(|l| l.starts_with("< "))
        .all(|l| l.ends_with("µs)")));
    // bench: one JSON object with 50 round trips.
    let bench = run.value("bench:");
    let json_end = bench.rfind('}').expect("a JSON object");
    let figures: serde_json::Value = serde_json::from_str(&bench[..=json_end]).unwrap();
    assert_eq!(figures["apdus"], 50, "{bench}");
    assert!(figures["median_us"].as_f64().unwrap() > 0.0);
    assert!(bench.ends_with("rc: 0"), "{bench}");
    eprintln!("bench on QEMU's reader in the guest: {figures}");
    // replay: the session answered as recorded (GET CHALLENGE's data masked).
    let replay: Vec<&str> = run.values("replay:").collect();
    assert!(replay.contains(&"rc: 0"), "{console}");
    assert!(
        replay
            .iter()
            .any(|l| l.contains("answered as recorded, 0 differently")),
        "{console}"
    );
    // atr: the times at QEMU's dwDefaultClock.
    let atr: Vec<&str> = run.values("atr:").collect();
    assert!(
        atr.iter()
            .any(|l| l.starts_with("Times at ") && l.contains("kHz: etu")),
        "{console}"
    );

    // The captures on the host: tshark and `ferroccid trace` read the same CCID
    // messages, and the script's APDUs are in them.
    for (name, apdu) in [
        ("script.pcapng", "00 B0 00 00 10"),
        ("apdu.pcapng", "00 84 00 00 08"),
    ] {
        let pcap = share.join(name);
        let traced = Command::new(env!("CARGO_BIN_EXE_ferroccid"))
            .arg("trace")
            .arg(&pcap)
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            traced.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&traced.stderr)
        );
        let lines: Vec<serde_json::Value> = String::from_utf8(traced.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            lines
                .iter()
                .any(|v| v["bytes"].as_str().unwrap().ends_with(apdu)),
            "{name}: {apdu} not captured"
        );
        let tshark = Command::new("tshark")
            .arg("-r")
            .arg(&pcap)
            .args([
                "-Y",
                "usbccid",
                "-T",
                "fields",
                "-e",
                "usbccid.bMessageType",
            ])
            .output()
            .expect("tshark missing: tests/scripts/install-deps.sh installs it");
        let dissected = String::from_utf8_lossy(&tshark.stdout).lines().count();
        assert_eq!(
            dissected,
            lines.len(),
            "{name}: Wireshark and ferroccid trace disagree"
        );
    }
}
