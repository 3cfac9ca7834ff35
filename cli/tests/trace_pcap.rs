//! `ferroccid trace` on usbmon captures built here byte by byte from the formats'
//! definitions: pcap (LINKTYPE_USB_LINUX_MMAPPED 220 with the 64-byte `usbmon_packet`
//! header, LINKTYPE_USB_LINUX 189 with the 48-byte one; Linux
//! Documentation/usb/usbmon.rst) and pcapng (SHB/IDB/EPB).
use assert_cmd::Command;
use serde_json::Value;
use std::path::PathBuf;

/// One usbmon event.
struct Event {
    kind: u8,     // b'S' submit, b'C' complete
    transfer: u8, // 1 interrupt, 2 control, 3 bulk
    endpoint: u8, // bit 7 = IN
    device: u8,
    usec: u32,
    data: Vec<u8>,
}

fn ev(kind: u8, transfer: u8, endpoint: u8, usec: u32, data: &[u8]) -> Event {
    Event {
        kind,
        transfer,
        endpoint,
        device: 2,
        usec,
        data: data.to_vec(),
    }
}

/// `struct usbmon_packet`: id u64, type u8, xfer_type u8, epnum u8, devnum u8, busnum u16,
/// flag_setup i8, flag_data i8, ts_sec i64, ts_usec i32, status i32, length u32,
/// len_cap u32, setup[8], then (mmapped only) interval, start_frame, xfer_flags, ndesc.
fn usbmon(e: &Event, header_len: usize, be: bool) -> Vec<u8> {
    let u16b = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let u64b = |v: u64| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut p = Vec::new();
    p.extend(u64b(0xFFFF_8800_1234_0000));
    p.extend([e.kind, e.transfer, e.endpoint, e.device]);
    p.extend(u16b(1));
    p.extend([b'-', if e.data.is_empty() { b'<' } else { 0 }]);
    p.extend(u64b(1_700_000_000));
    p.extend(u32b(e.usec));
    p.extend(u32b(0));
    p.extend(u32b(e.data.len() as u32));
    p.extend(u32b(e.data.len() as u32));
    p.extend([0u8; 8]);
    p.resize(header_len, 0);
    p.extend(&e.data);
    p
}

fn pcap(events: &[Event], linktype: u32, be: bool) -> Vec<u8> {
    let header_len = if linktype == 220 { 64 } else { 48 };
    let u16b = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut f = Vec::new();
    f.extend(u32b(0xA1B2_C3D4));
    f.extend(u16b(2));
    f.extend(u16b(4));
    f.extend(u32b(0));
    f.extend(u32b(0));
    f.extend(u32b(65535));
    f.extend(u32b(linktype));
    for e in events {
        let p = usbmon(e, header_len, be);
        f.extend(u32b(1_700_000_000));
        f.extend(u32b(e.usec));
        f.extend(u32b(p.len() as u32));
        f.extend(u32b(p.len() as u32));
        f.extend(p);
    }
    f
}

fn pcapng(events: &[Event]) -> Vec<u8> {
    let block = |kind: u32, body: &[u8]| {
        let len = 12 + body.len().div_ceil(4) * 4;
        let mut b = Vec::new();
        b.extend(kind.to_le_bytes());
        b.extend((len as u32).to_le_bytes());
        b.extend(body);
        b.resize(len - 4, 0);
        b.extend((len as u32).to_le_bytes());
        b
    };
    let mut shb = Vec::new();
    shb.extend(0x1A2B_3C4Du32.to_le_bytes());
    shb.extend(1u16.to_le_bytes());
    shb.extend(0u16.to_le_bytes());
    shb.extend((-1i64).to_le_bytes());
    let mut f = block(0x0A0D_0D0A, &shb);
    let mut idb = Vec::new();
    idb.extend(220u16.to_le_bytes());
    idb.extend(0u16.to_le_bytes());
    idb.extend(0u32.to_le_bytes());
    f.extend(block(1, &idb));
    for e in events {
        let p = usbmon(e, 64, false);
        let mut epb = Vec::new();
        epb.extend(0u32.to_le_bytes()); // interface 0
        epb.extend(0u32.to_le_bytes());
        epb.extend(e.usec.to_le_bytes());
        epb.extend((p.len() as u32).to_le_bytes());
        epb.extend((p.len() as u32).to_le_bytes());
        epb.extend(&p);
        f.extend(block(6, &epb));
    }
    f
}

/// A card insertion, a power-on whose 10+8-byte answer arrives in two URBs (8 + 10
/// bytes: bulk IN packets of 8), a T=1 chained I-block, and traffic to ignore.
fn session() -> Vec<Event> {
    vec![
        // control transfer (GET_DESCRIPTOR) of another kind: not CCID
        ev(b'S', 2, 0x80, 10, &[]),
        // NotifySlotChange: slot 0 present + changed
        ev(b'C', 1, 0x81, 100, &[0x50, 0x03]),
        // PowerOn slot 0 seq 1, then its submission's completion (no data)
        ev(b'S', 3, 0x03, 200, &[0x62, 0, 0, 0, 0, 0, 1, 0, 0, 0]),
        ev(b'C', 3, 0x03, 210, &[]),
        // DataBlock seq 1, ATR 3B 81 81 01 01 00: T0=81 (TD1, 1 historical byte),
        // TD1=81 (TD2 follows, T=1), TD2=01 (T=1), historical 01, TCK 81^81^01^01 = 00
        ev(
            b'C',
            3,
            0x82,
            300,
            &[0x80, 0x06, 0, 0, 0, 0, 1, 0x00, 0x00, 0x00],
        ),
        ev(b'C', 3, 0x82, 301, &[0x3B, 0x81, 0x81, 0x01, 0x01, 0x00]),
        // XfrBlock seq 2 with I(0, more) NAD 00 PCB 20 LEN 03 INF 01 02 03 LRC 23
        ev(
            b'S',
            3,
            0x03,
            400,
            &[
                0x6F, 7, 0, 0, 0, 0, 2, 0, 0, 0, 0x00, 0x20, 0x03, 1, 2, 3, 0x23,
            ],
        ),
        // DataBlock seq 2: R(N(R)=1) NAD 00 PCB 90 LEN 00 LRC 90
        ev(
            b'C',
            3,
            0x82,
            500,
            &[0x80, 4, 0, 0, 0, 0, 2, 0, 0, 0, 0x00, 0x90, 0x00, 0x90],
        ),
    ]
}

fn decode(bytes: &[u8], name: &str) -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let out = Command::cargo_bin("ferroccid")
        .unwrap()
        .args(["trace", path.to_str().unwrap(), "--json"])
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

fn check_session(r: &[Value]) {
    assert_eq!(r.len(), 5, "{r:#?}");
    assert_eq!(r[0]["type"], "RDR_to_PC_NotifySlotChange");
    assert_eq!(r[0]["direction"], "int");
    assert_eq!(r[0]["slots"][0]["present"], true);
    assert_eq!(r[0]["slots"][0]["changed"], true);
    assert_eq!(r[1]["type"], "PC_to_RDR_IccPowerOn");
    assert_eq!(r[1]["seq"], 1);
    assert_eq!(r[2]["type"], "RDR_to_PC_DataBlock");
    assert_eq!(r[2]["length"], 6);
    assert_eq!(
        r[2]["atr"], "3B 81 81 01 01 00",
        "answer joined from two URBs"
    );
    assert_eq!(r[3]["type"], "PC_to_RDR_XfrBlock");
    assert_eq!(r[3]["t1"]["pcb"], 0x20);
    assert_eq!(r[3]["t1"]["inf"], "01 02 03");
    assert!(r[3]["t1"]["kind"].as_str().unwrap().contains("more"));
    assert_eq!(r[4]["t1"]["pcb"], 0x90);
    assert!(r[4]["t1"]["kind"].as_str().unwrap().starts_with("R(N(R)=1"));
    assert_eq!(
        r[4]["time_us"].as_u64().unwrap() - r[1]["time_us"].as_u64().unwrap(),
        300
    );
}

#[test]
fn mmapped_usbmon_pcap_little_endian() {
    check_session(&decode(&pcap(&session(), 220, false), "s220le.pcap"));
}

#[test]
fn plain_usbmon_pcap_big_endian() {
    check_session(&decode(&pcap(&session(), 189, true), "s189be.pcap"));
}

#[test]
fn pcapng_as_dumpcap_writes_it() {
    check_session(&decode(&pcapng(&session()), "s.pcapng"));
}

#[test]
fn other_link_types_are_refused() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ether.pcap");
    std::fs::write(&path, pcap(&[], 1, false)).unwrap();
    let out = Command::cargo_bin("ferroccid")
        .unwrap()
        .args(["trace", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("link type 1"));
}

#[test]
fn bad_lrc_on_a_t1_link_is_reported_not_hidden() {
    let mut events = session();
    // same I-block with LRC 21 instead of 23
    events[6].data[16] = 0x21;
    let r = decode(&pcap(&events, 220, false), "badlrc.pcap");
    assert!(r[3]["t1_error"].is_string(), "{}", r[3]);
}
