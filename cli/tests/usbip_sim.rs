//! The simulated reader over USB/IP answers byte-for-byte what it answers
//! in process, for every built-in profile; and `ferroccid sim --usbip`
//! serves a client that passes the conformance suite.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ferroccid::testing::run_conformance;
use ferroccid::usbip::UsbIpTransport;
use ferroccid::Transport;
use ferroccid_sim::profile::{Profile, BUILTIN_NAMES};
use ferroccid_sim::SimTransport;
use ferroccid_usbip::UsbIpServer;

const TIMEOUT: Duration = Duration::from_secs(5);

/// A CCID command (CCID rev 1.1 §6.1): type, dwLength LE, slot 0, seq,
/// three message-specific bytes, data.
fn command(kind: u8, seq: u8, specific: [u8; 3], data: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&(data.len() as u32).to_le_bytes());
    m.extend_from_slice(&[0, seq]);
    m.extend_from_slice(&specific);
    m.extend_from_slice(data);
    m
}

/// GetSlotStatus, IccPowerOn (automatic voltage), GetParameters,
/// XfrBlock of SELECT MF and READ BINARY, an unknown command (0x99, which
/// §6.1 says the reader rejects), IccPowerOff, GetSlotStatus.
fn script() -> Vec<Vec<u8>> {
    vec![
        command(0x65, 0, [0; 3], &[]),
        command(0x62, 1, [0; 3], &[]),
        command(0x6C, 2, [0; 3], &[]),
        command(0x6F, 3, [0; 3], &[0x00, 0xA4, 0x00, 0x00, 0x02, 0x3F, 0x00]),
        command(0x6F, 4, [0; 3], &[0x00, 0xB0, 0x00, 0x00, 0x00]),
        command(0x99, 5, [0; 3], &[]),
        command(0x63, 6, [0; 3], &[]),
        command(0x65, 7, [0; 3], &[]),
    ]
}

/// Runs the script and returns every frame received, time-extension
/// frames (bmCommandStatus 2, §6.2.6) included.
fn run_script(t: &dyn Transport) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut rx = vec![0u8; 65546];
    for message in script() {
        t.bulk_out(&message, TIMEOUT).expect("bulk-OUT");
        for _ in 0..64 {
            let n = t.bulk_in(&mut rx, TIMEOUT).expect("bulk-IN");
            let frame = rx[..n].to_vec();
            let time_extension = n >= 10 && frame[7] >> 6 == 2;
            frames.push(frame);
            if !time_extension {
                break;
            }
        }
    }
    frames
}

#[test]
fn every_profile_answers_identically_over_usbip() {
    for name in BUILTIN_NAMES {
        let profile = Profile::from_name(name).unwrap();
        let (local, _local_handle) = SimTransport::open(profile.clone());
        let expected = run_script(&local);

        let (exported, _handle) = SimTransport::open(profile);
        let server = UsbIpServer::bind("127.0.0.1:0", Arc::new(exported), "1-1")
            .unwrap()
            .spawn()
            .unwrap();
        let remote = UsbIpTransport::connect("127.0.0.1", server.local_addr().port(), "1-1")
            .unwrap_or_else(|e| panic!("profile {name}: import failed: {e}"));
        assert_eq!(remote.info().vendor_id, local.info().vendor_id, "{name}");
        assert_eq!(remote.info().product_id, local.info().product_id, "{name}");
        assert_eq!(remote.info().product, local.info().product, "{name}");
        assert_eq!(
            remote.info().class_descriptor,
            local.info().class_descriptor,
            "{name}"
        );
        assert_eq!(remote.info().endpoints, local.info().endpoints, "{name}");
        let got = run_script(&remote);
        assert_eq!(got, expected, "profile {name}");

        // Not vacuous: a SlotStatus (0x81) echoing seq 0 first, then a
        // DataBlock (0x80) for the power-on carrying an ATR (TS 3B or 3F).
        assert_eq!(got[0][0], 0x81, "{name}");
        assert_eq!(got[0][6], 0, "{name}");
        let power_on = got.iter().find(|f| f[6] == 1 && f[7] >> 6 != 2).unwrap();
        assert_eq!(power_on[0], 0x80, "{name}: {power_on:02X?}");
        assert!(
            matches!(power_on.get(10), Some(0x3B | 0x3F)),
            "{name}: {power_on:02X?}"
        );
        drop(remote);
        server.shutdown();
    }
}

#[test]
fn the_sim_subcommand_exports_a_conformant_reader() {
    let binary = env!("CARGO_BIN_EXE_ferroccid");
    let mut child = Command::new(binary)
        .args(["sim", "--usbip", "127.0.0.1:0", "--profile", "short-apdu"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run ferroccid sim");
    let mut first = String::new();
    // Kept open until the end so the child's later output has a reader.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    let port: u16 = first
        .trim()
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    let name = format!("usbip:127.0.0.1:{port}/1-1");
    let result = UsbIpTransport::open_str(&name).map(|t| {
        let verdict = run_conformance(&t);
        (t.info().name.clone(), verdict)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdout);
    let (opened_name, verdict) = result.unwrap();
    assert_eq!(opened_name, name);
    verdict.unwrap();
}
