//! A bug report reproduced with no hardware: QEMU records (its usb-ccid `pcap=`) a
//! session of pcscd + libccid with QEMU's reader in one guest boot; in a second boot
//! without that reader, `ferroccid sim --replay` serves the recording as a reader
//! over USB/IP, the kernel's USB/IP client attaches it, and the same pcscd +
//! libccid + client get the same answers, the recorded "random" challenge
//! included.

#[path = "../../tests/vm/harness.rs"]
mod harness;

use harness::{ferroccid_extra, out_dir, Guest};

const APDUS: &str = "00A4000C023F00 0084000008 00B0000010 00A4020C022F00";

#[test]
fn libccid_gets_the_recorded_answers_from_a_replayed_capture() {
    let dir = out_dir("replay-libccid");
    let pcap = dir.join("libccid.pcap");
    let _ = std::fs::remove_file(&pcap);
    let recorded = Guest::new()
        .pcscd("")
        .pcap(&pcap)
        .run(&format!("pcsc-apdu -w 5 {APDUS} | sed 's/^/rec:/'"))
        .success();
    let answers = |run: &harness::GuestRun, tag: &str| -> Vec<String> {
        run.values(&format!("{tag}< ")).map(String::from).collect()
    };
    let original = answers(&recorded, "rec:");
    assert_eq!(original.len(), 4, "{}", recorded.console);
    assert!(pcap.exists(), "QEMU wrote no capture");

    let extra = ferroccid_extra("replay-libccid-bin");
    std::fs::copy(&pcap, extra.join("libccid.pcap")).unwrap();
    let replayed = Guest::new()
        .without_qemu_reader()
        .extra(&extra)
        .run(
            "rig modules usbip && ip link set lo up && \
             (ferroccid sim --replay /extra/libccid.pcap --usbip 127.0.0.1:3240 > /tmp/sim.log 2>&1 &) && \
             i=0; until usbip attach -r 127.0.0.1 -b 1-1 2>/dev/null || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
             i=0; until grep -qsx 4433 /sys/bus/usb/devices/*/idProduct || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
             (pcscd -f > /tmp/pcscd.log 2>&1 &); \
             i=0; until [ -S /run/pcscd/pcscd.comm ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
             pcsc-apdu -w 10 00A4000C023F00 0084000008 00B0000010 00A4020C022F00 | sed 's/^/rep:/'; \
             sed 's/^/sim-log:/' /tmp/sim.log",
        );
    let again = answers(&replayed, "rep:");
    assert_eq!(again, original, "{}", replayed.console);
    assert_eq!(replayed.value("rep:atr: "), recorded.value("rec:atr: "));
    assert!(replayed
        .values("sim-log:")
        .any(|l| l.contains("recorded commands")));
}
