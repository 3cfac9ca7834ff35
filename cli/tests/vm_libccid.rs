//! Guest tests with QEMU's usb-ccid reader and libccid (Debian's) in pcscd: the
//! "oracle" side of issue 6. Each test boots a guest through `tests/vm/run-guest.sh`
//! (TCG, ~5 s) and fails loudly if the harness cannot run.
//!
//! Expected values come from the description of QEMU's reader (08e6:4433, T=0
//! only, dwFeatures 0x000104FE, dwMaxCCIDMessageLength 65554, EPs 0x81/0x82/0x03),
//! from CCID 1.1 §5.1 (class descriptor offsets) and ISO/IEC 7816-4 status words.

#[path = "../../tests/vm/harness.rs"]
mod harness;

use harness::{exchanges, hex, out_dir, Card, Guest};

/// The APDU script and the status word ISO/IEC 7816-4 makes the card answer.
/// SELECT MF (P2=0C: no FCI, vicc 0.8 crashes on FCI), READ BINARY with no current EF,
/// an unknown INS, GET CHALLENGE of 8 bytes, SELECT of a missing EF.
const SCRIPT: [(&str, &str); 5] = [
    ("00A4000C023F00", "9000"),
    ("00B0000010", "6986"),     // command not allowed (no current EF)
    ("00FE000000", "6D00"),     // instruction code not supported
    ("0084000008", "9000"),     // 8 random bytes + 9000
    ("00A4020C022F00", "6A82"), // file not found
];

fn script_args() -> String {
    SCRIPT.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(" ")
}

/// vicc's ISO 7816 ATR 3B 95 13 81 01 80 73 FF 01 00 0B offers only T=1; the bridge
/// presents it as TS=3B, T0=0x15 (TA1 present, 5 historical bytes), TA1=13, history
/// 80 73 FF 01 00: implicit T=0, which QEMU's T=0-only reader can carry.
const ATR_T0: &str = "3B15138073FF0100";

#[test]
fn libccid_runs_the_apdu_script() {
    let run = Guest::new()
        .pcscd("")
        .run(&format!("pcsc-apdu {}", script_args()))
        .success();
    assert!(
        run.value("reader: ").contains("433"),
        "QEMU's reader is a Gemalto 433-Swap"
    );
    assert_eq!(run.value("protocol: "), "T=0");
    assert_eq!(run.value("atr: "), ATR_T0);
    let got = exchanges(&run);
    assert_eq!(got.len(), SCRIPT.len());
    for ((cmd, sw), (sent, resp)) in SCRIPT.iter().zip(&got) {
        assert_eq!(sent, cmd);
        assert!(resp.ends_with(sw), "{cmd}: expected SW {sw}, got {resp}");
    }
    assert_eq!(
        hex(&got[3].1).len(),
        8 + 2,
        "GET CHALLENGE Le=8 gives 8 bytes + SW"
    );
    // the oracle record other tests compare against (GET CHALLENGE is random: masked)
    let dir = out_dir("oracle-libccid");
    let text: String = got
        .iter()
        .map(|(c, r)| {
            format!(
                "{c} {}\n",
                if c.starts_with("0084") {
                    "RANDOM9000"
                } else {
                    r
                }
            )
        })
        .collect();
    std::fs::write(dir.join("responses.txt"), text).unwrap();
}

/// Walk a configuration descriptor (as in sysfs `descriptors`, after the 18-byte
/// device descriptor) and return every descriptor as (type, bytes).
fn descriptors(bytes: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 2 {
        let len = rest[0] as usize;
        assert!(
            len >= 2 && len <= rest.len(),
            "broken descriptor chain at {rest:02X?}"
        );
        out.push((rest[1], &rest[..len]));
        rest = &rest[len..];
    }
    out
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
fn sysfs_descriptor_is_qemus_ccid_reader() {
    let run = Guest::new()
        .card(Card::None)
        .run("d=$(rig ccid-dev) && echo vidpid: $(cat $d/idVendor):$(cat $d/idProduct) && echo desc: $(od -An -v -tx1 $d/descriptors | tr -d ' \\n')")
        .success();
    assert_eq!(run.value("vidpid: "), "08e6:4433");
    let raw = hex(&run.value("desc: "));
    assert_eq!(&raw[..2], &[18, 1], "device descriptor first");
    let all = descriptors(&raw[18..]);
    let class: Vec<&[u8]> = all
        .iter()
        .filter(|(t, _)| *t == 0x21)
        .map(|(_, d)| *d)
        .collect();
    assert_eq!(class.len(), 1, "one CCID class descriptor");
    let ccid = class[0];
    assert_eq!(ccid.len(), 0x36, "CCID §5.1: bLength 54");
    assert_eq!(
        u16::from_le_bytes([ccid[2], ccid[3]]),
        0x0110,
        "bcdCCID 1.10"
    );
    assert_eq!(le32(ccid, 6), 0x0000_0001, "dwProtocols: T=0 only");
    assert_eq!(le32(ccid, 40), 0x0001_04FE, "dwFeatures");
    assert_eq!(le32(ccid, 44), 65554, "dwMaxCCIDMessageLength");
    assert_ne!(ccid[52] & 0x01, 0, "bPINSupport: verify");
    let endpoints: Vec<(u8, u8)> = all
        .iter()
        .filter(|(t, _)| *t == 5)
        .map(|(_, d)| (d[2], d[3] & 3))
        .collect();
    for want in [(0x81, 3), (0x82, 2), (0x03, 2)] {
        assert!(
            endpoints.contains(&want),
            "endpoint {want:02X?} in {endpoints:02X?}"
        );
    }
    // ferroccid's own parser must agree with the hand-read offsets above
    let parsed =
        ferroccid::ccid::ClassDescriptor::parse(ccid).expect("ferroccid parses QEMU's descriptor");
    assert!(parsed.supports_t0() && !parsed.supports_t1());
}

#[test]
fn libccid_sees_card_removal_and_insertion() {
    let pcap = out_dir("removal-libccid").join("removal.pcap");
    let run = Guest::new()
        .pcscd("")
        .pcap(&pcap)
        .run(
            "pcsc-apdu 0084000008 && rig card remove && sleep 0.5 && \
             { pcsc-apdu 0084000008; echo removed-status: $?; } ; rig card insert && \
             pcsc-apdu -w 5 00A4000C023F00",
        )
        .success();
    let removed: i32 = run.value("removed-status: ").parse().unwrap();
    assert_eq!(removed, 1, "no card: SCardConnect fails");
    assert!(
        run.console.contains("No smart card inserted"),
        "{}",
        run.console
    );
    assert_eq!(
        run.values("< ").last(),
        Some("9000"),
        "works again after re-insertion"
    );
    // on the wire: NotifySlotChange on the interrupt endpoint, CCID §6.3.1: slot 0 bit 0
    // = present, bit 1 = changed: 03 at start, 02 on removal, 03 on insertion
    let records = trace_json(&pcap);
    let notes: Vec<String> = records
        .iter()
        .filter(|r| r["type"] == "RDR_to_PC_NotifySlotChange")
        .map(|r| r["bytes"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(notes, ["50 03", "50 02", "50 03"], "{records:#?}");
}

/// `ferroccid trace --json` of a file, one value per message.
fn trace_json(file: &std::path::Path) -> Vec<serde_json::Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferroccid"))
        .args(["trace", "--json"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn libccid_session_is_captured_as_usbmon_pcap() {
    let dir = out_dir("pcap-libccid");
    let pcap = dir.join("libccid.pcap");
    let run = Guest::new()
        .pcscd("")
        .pcap(&pcap)
        .run(&format!("pcsc-apdu {}", script_args()))
        .success();
    let bytes = std::fs::read(&pcap).expect("usb-ccid wrote the pcap");
    assert!(bytes.len() > 24, "pcap has records");
    assert_eq!(
        &bytes[..4],
        &[0xD4, 0xC3, 0xB2, 0xA1],
        "little-endian pcap, microseconds"
    );
    assert_eq!(le32(&bytes, 20), 220, "LINKTYPE_USB_LINUX_MMAPPED");
    // CCID §6.1.4: XfrBlock header 6F, dwLength 7 (LE) for the 7-byte SELECT MF
    let xfr_header = [0x6F, 7, 0, 0, 0];
    assert!(
        bytes.windows(5).any(|w| w == xfr_header),
        "XfrBlock with a 7-byte APDU in the capture"
    );
    let apdu = hex(SCRIPT[0].0);
    assert!(
        bytes.windows(apdu.len()).any(|w| w == apdu.as_slice()),
        "SELECT MF in the capture"
    );
    // `ferroccid trace` on QEMU's own capture: the XfrBlock answers, in order, are the
    // responses the PC/SC client printed
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferroccid"))
        .args(["trace", "--json"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut answers = Vec::new();
    let mut pending_xfr = None;
    for r in &records {
        if r["type"] == "PC_to_RDR_XfrBlock" {
            pending_xfr = Some(r["seq"].clone());
        } else if r["type"] == "RDR_to_PC_DataBlock" && pending_xfr.as_ref() == Some(&r["seq"]) {
            let resp = &r["response"];
            answers.push(format!(
                "{}{}",
                resp["data"].as_str().unwrap().replace(' ', ""),
                resp["sw"].as_str().unwrap()
            ));
            pending_xfr = None;
        }
    }
    let printed: Vec<String> = exchanges(&run).into_iter().map(|(_, r)| r).collect();
    assert_eq!(answers, printed);
    let atr = records
        .iter()
        .find(|r| r["atr"].is_string())
        .expect("power-on answer decoded");
    assert_eq!(atr["atr"].as_str().unwrap().replace(' ', ""), ATR_T0);
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "RDR_to_PC_NotifySlotChange" && r["slots"][0]["present"] == true),
        "the interrupt endpoint's card-present notification is in the capture"
    );
}

#[test]
fn reader_unplug_through_the_monitor() {
    // the reader leaves sysfs, and libccid's next call fails instead of hanging
    let run = Guest::new()
        .pcscd("")
        .run(
            "d=$(rig ccid-dev) && pcsc-apdu 0084000008 && rig monitor device_del ccid && i=0; \
             while [ -e $d ] && [ $i -lt 100 ]; do sleep 0.02; i=$((i+1)); done; \
             [ ! -e $d ] && echo gone-ms: $((i*20)) && s=$(cut -d' ' -f1 /proc/uptime) && \
             { timeout 20 pcsc-apdu 0084000008; echo after-status: $?; } && \
             echo after-s: $(awk -v s=$s '{print $1 - s}' /proc/uptime)",
        )
        .success();
    let ms: u32 = run.value("gone-ms: ").parse().unwrap();
    assert!(ms < 2000, "device left sysfs after {ms} ms");
    let status: i32 = run.value("after-status: ").parse().unwrap();
    assert_eq!(status, 1, "PC/SC error, not a timeout (124)");
    let seconds: f64 = run.value("after-s: ").parse().unwrap();
    assert!(seconds < 5.0, "the failing call took {seconds} s");
}
