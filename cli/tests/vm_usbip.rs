//! The simulated reader (`ferroccid sim --usbip`, profile `tpdu-t1`: a GemPC Twin,
//! 08E6:3437, which libccid's Info.plist lists as a TPDU-level reader) exported into the
//! guest as a real USB device through the kernel's vhci-hcd and `usbip attach`, then
//! driven by pcscd + libccid over usbfs: TPDU T=1 with chaining and extended APDUs.
//!
//! Expected responses come from the simulated card's documented file system
//! (`sim/src/card/fs.rs`: EF 2F00 holds "Hello from the ferroccid virtual card.\n", EF
//! 5010 in DF 5000 holds byte i = i mod 251) and ISO/IEC 7816-4.

#[path = "../../tests/vm/harness.rs"]
mod harness;

use harness::{exchanges, ferroccid_extra, hex, out_dir, Card, Guest};

/// Attach the simulated reader and start pcscd after it (the guest has no udevd, so
/// pcscd only sees readers present when it starts).
const ATTACH: &str = "rig modules usbip && ip link set lo up && \
    (ferroccid sim --usbip 127.0.0.1:3240 --profile tpdu-t1 > /tmp/sim.log 2>&1 &) && \
    i=0; until usbip attach -r 127.0.0.1 -b 1-1 2>/dev/null || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
    i=0; until grep -qsx 3437 /sys/bus/usb/devices/*/idProduct || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
    (pcscd -f > /tmp/pcscd.log 2>&1 &); \
    i=0; until [ -S /run/pcscd/pcscd.comm ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done";

#[test]
fn libccid_drives_the_simulated_reader_over_usbip() {
    let mut write = String::from("00D603E800012C");
    write.push_str(&"AB".repeat(300));
    let script = [
        "00A4000C022F00",     // SELECT EF 2F00
        "00B0000027",         // READ BINARY 39 bytes
        "00A4080C0450005010", // SELECT by path 5000/5010
        "00B000000003E8",     // READ BINARY, extended Le = 1000
        &write,               // UPDATE BINARY, extended Lc = 300 at offset 1000
        "00B003E700012E",     // READ BINARY 302 bytes at 999
    ];
    let run = Guest::new()
        .card(Card::None)
        .without_qemu_reader()
        .extra(&ferroccid_extra("usbip-bin"))
        .run(&format!(
            "{ATTACH} && pcsc-apdu -r \"PC Twin\" {} || {{ cat /tmp/sim.log /tmp/pcscd.log; exit 1; }}",
            script.join(" ")
        ))
        .success();
    assert_eq!(
        run.value("protocol: "),
        "T=1",
        "the tpdu-t1 card offers only T=1"
    );
    let got = exchanges(&run);
    assert_eq!(got.len(), script.len());
    let sw = |i: usize| &got[i].1[got[i].1.len() - 4..];
    let data = |i: usize| hex(&got[i].1[..got[i].1.len() - 4]);
    assert_eq!(sw(0), "9000");
    assert_eq!(data(1), b"Hello from the ferroccid virtual card.\n");
    assert_eq!(sw(1), "9000");
    assert_eq!(sw(2), "9000");
    assert_eq!(sw(3), "9000");
    let expected: Vec<u8> = (0..1000).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        data(3),
        expected,
        "1000 bytes through T=1 chaining (IFSD 254)"
    );
    assert_eq!(got[4].1, "9000");
    let r = data(5);
    assert_eq!(r.len(), 302);
    assert_eq!(
        (r[0], r[1], r[300], r[301]),
        ((999 % 251) as u8, 0xAB, 0xAB, (1300 % 251) as u8)
    );
    // the record ferroccid's own run of the same script is compared with
    let dir = out_dir("usbip-libccid");
    let text: String = got.iter().map(|(c, r)| format!("{c} {r}\n")).collect();
    std::fs::write(dir.join("responses.txt"), text).unwrap();
}
