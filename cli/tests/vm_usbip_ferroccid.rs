//! The simulated reader (`ferroccid sim --usbip`, profile `tpdu-t1`: a GemPC Twin,
//! 08E6:3437, TPDU level, a T=1-only card) exported into the guest through the kernel's
//! vhci-hcd and `usbip attach`, then driven over real usbfs by ferroccid's CLI (nusb)
//! and, in the same guest run, by pcscd + libccid: TPDU-level T=1 with chaining both
//! ways and extended APDUs. The two must give identical responses.
//!
//! Expected data come from the simulated card's documented file system
//! (`sim/src/card/fs.rs`: EF 2F00 holds "Hello from the ferroccid virtual card.\n", EF
//! 5010 in DF 5000 holds byte i = i mod 251) and ISO/IEC 7816-4.

#[path = "../../tests/vm/harness.rs"]
mod harness;

use harness::{ferroccid_extra, hex, Card, Guest};

/// Export the simulated reader and attach it (no pcscd yet: ferroccid goes first).
const ATTACH: &str = "rig modules usbip && ip link set lo up && \
    (ferroccid sim --usbip 127.0.0.1:3240 --profile tpdu-t1 > /tmp/sim.log 2>&1 &) && \
    i=0; until usbip attach -r 127.0.0.1 -b 1-1 2>/dev/null || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
    i=0; until grep -qsx 3437 /sys/bus/usb/devices/*/idProduct || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
    grep -qsx 3437 /sys/bus/usb/devices/*/idProduct";

/// Starts pcscd and waits for its socket (pcscd sees only readers present at start:
/// the guest has no udevd).
const START_PCSCD: &str = "{ (pcscd -f > /tmp/pcscd.log 2>&1 &); i=0; \
    until [ -S /run/pcscd/pcscd.comm ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
    [ -S /run/pcscd/pcscd.comm ]; }";

/// The script: UPDATE BINARY writes what was there already after the first run, so
/// the second client (libccid) sees the same file contents.
fn script() -> Vec<String> {
    let mut write = String::from("00D603E800012C");
    write.push_str(&"AB".repeat(300));
    vec![
        "00A4000C022F00".into(),     // SELECT EF 2F00
        "00B0000027".into(),         // READ BINARY 39 bytes
        "00A4080C0450005010".into(), // SELECT by path 5000/5010
        "00B000000003E8".into(),     // READ BINARY, extended Le = 1000 (T=1 chaining in)
        write,                       // UPDATE BINARY, extended Lc = 300 (chaining out)
        "00B003E700012E".into(),     // READ BINARY 302 bytes at 999
        "0084000008".into(),         // GET CHALLENGE 8
    ]
}

#[test]
fn ferroccid_and_libccid_agree_on_the_simulated_reader_over_usbip() {
    let script = script();
    let args = script.join(" ");
    let run = Guest::new()
        .card(Card::None)
        .without_qemu_reader()
        .extra(&ferroccid_extra("usbip-ferroccid"))
        .run(&format!(
            "set -o pipefail; {ATTACH} && \
             dev=$(ferroccid list | awk '$1 == \"08E6:3437\" && $NF ~ /^usb:/ {{print $NF}}') && \
             echo dev: $dev && \
             ferroccid apdu --reader $dev --json {args} > /tmp/fc.json && \
             sed 's/^/fc:/' /tmp/fc.json && \
             {START_PCSCD} && pcsc-apdu -r \"PC Twin\" {args} | sed 's/^/lc:/' \
             || {{ echo FAILED; cat /tmp/sim.log /tmp/pcscd.log; exit 1; }}"
        ))
        .success();
    let dev = run.value("dev: ");
    assert!(dev.starts_with("usb:08e6/3437:"), "over usbfs: {dev}");
    let json: serde_json::Value =
        serde_json::from_str(&run.values("fc:").collect::<Vec<_>>().join("\n"))
            .expect("apdu --json is one array");
    let ours: Vec<(String, String)> = json
        .as_array()
        .expect("an array")
        .iter()
        .map(|e| {
            (
                e["command"].as_str().unwrap().to_string(),
                e["response"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let oracle: Vec<(String, String)> = run
        .values("lc:> ")
        .map(String::from)
        .zip(run.values("lc:< ").map(String::from))
        .collect();
    assert_eq!(run.value("lc:protocol: "), "T=1");
    assert_eq!(ours.len(), script.len(), "{}", run.console);
    assert_eq!(oracle.len(), script.len(), "{}", run.console);

    // ferroccid's answers against the card's documented contents
    let data = |i: usize| hex(&ours[i].1[..ours[i].1.len() - 4]);
    let sw = |i: usize| &ours[i].1[ours[i].1.len() - 4..];
    for i in 0..script.len() {
        assert_eq!(sw(i), "9000", "{}: {}", script[i], ours[i].1);
    }
    assert_eq!(data(1), b"Hello from the ferroccid virtual card.\n");
    let expected: Vec<u8> = (0..1000).map(|i| (i % 251) as u8).collect();
    assert_eq!(data(3), expected, "1000 bytes through T=1 chaining");
    let r = data(5);
    assert_eq!(r.len(), 302);
    assert_eq!(
        (r[0], r[1], r[300], r[301]),
        ((999 % 251) as u8, 0xAB, 0xAB, (1300 % 251) as u8)
    );
    assert_eq!(data(6).len(), 8, "GET CHALLENGE: 8 bytes");

    // and libccid's, command by command (GET CHALLENGE may be random: length only)
    for (i, ((c1, mine), (c2, theirs))) in ours.iter().zip(&oracle).enumerate() {
        assert_eq!(c1, c2);
        if c1.starts_with("0084") {
            assert_eq!(mine.len(), theirs.len(), "GET CHALLENGE lengths");
        } else {
            assert_eq!(mine, theirs, "APDU #{i} {c1}: ferroccid vs libccid");
        }
    }
}
