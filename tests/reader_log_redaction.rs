//! No PIN byte reaches a log: VERIFY, CHANGE REFERENCE DATA and RESET
//! RETRY COUNTER through every simulator profile, every card protocol, T=1
//! chaining (IFSC 4) and T=0 data sent one byte at a time, with every
//! event at TRACE captured. The virtual card checks the PIN byte for byte,
//! so a 9000 proves the bytes did cross the bus while the log hid them.

#[path = "reader_sim_support.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use ferroccid::ProtocolPreference;
use ferroccid_sim::card::CardConfig;
use ferroccid_sim::profile::BUILTIN_NAMES;
use support::*;

/// Bytes no other part of the traffic is likely to hold side by side.
const PIN: [u8; 8] = [0x9C, 0xE1, 0x7B, 0x5A, 0xD3, 0x46, 0xA8, 0x2F];
const PUK: [u8; 8] = [0xB7, 0x13, 0xC9, 0x6E, 0x04, 0xF5, 0x8D, 0x3A];
const NEW_PIN: [u8; 8] = [0x5E, 0x92, 0x1F, 0xC4, 0x77, 0xAB, 0x38, 0xE6];

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every way two adjacent bytes of `secret` could be printed: hex either
/// case, with or without a space, and decimal as a `{:?}` of a slice does.
fn leaks(log: &str, secret: &[u8]) -> Vec<String> {
    let log_lower = log.to_ascii_lowercase();
    let mut found = Vec::new();
    for pair in secret.windows(2) {
        let forms = [
            format!("{:02x} {:02x}", pair[0], pair[1]),
            format!("{:02x}{:02x}", pair[0], pair[1]),
            format!("{}, {}", pair[0], pair[1]),
        ];
        found.extend(forms.into_iter().filter(|f| log_lower.contains(f.as_str())));
    }
    found
}

fn card(config: CardConfig) -> CardConfig {
    CardConfig {
        pin: PIN.to_vec(),
        puk: PUK.to_vec(),
        ..config
    }
}

fn apdu_with(header: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut apdu = header.to_vec();
    apdu.push(data.len() as u8);
    apdu.extend_from_slice(data);
    apdu
}

#[test]
fn no_pin_byte_is_logged_at_trace_on_any_path() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let chained_t1 = CardConfig {
        ifsc: 4,
        ..CardConfig::t1()
    };
    let t0_byte_by_byte = CardConfig {
        t0_single_byte_acks: true,
        ..CardConfig::t0()
    };
    let mut runs = 0;
    for name in BUILTIN_NAMES {
        let d = ferroccid_sim::profile::Profile::from_name(name)
            .unwrap()
            .class_descriptor();
        let mut cards = Vec::new();
        if d.supports_t0() {
            cards.push(("t0", card(CardConfig::t0()), ProtocolPreference::T0));
            cards.push((
                "t0 byte by byte",
                card(t0_byte_by_byte.clone()),
                ProtocolPreference::T0,
            ));
        }
        if d.supports_t1() {
            cards.push(("t1", card(CardConfig::t1()), ProtocolPreference::T1));
            cards.push((
                "t1 IFSC 4",
                card(chained_t1.clone()),
                ProtocolPreference::T1,
            ));
        }
        for (what, config, preference) in cards {
            let what = format!("{name} / {what}");
            let (reader, _handle) = open(profile_with(name, Some(config)));
            let slot = reader.slot(0).unwrap();
            slot.power_on().unwrap_or_else(|e| panic!("{what}: {e}"));
            slot.set_protocol(preference)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let verify = apdu_with([0x00, 0x20, 0x00, 0x81], &PIN);
            assert_eq!(ok_apdu(&slot, &verify).1, 0x9000, "{what}: VERIFY");
            let mut change = PIN.to_vec();
            change.extend_from_slice(&NEW_PIN);
            let change = apdu_with([0x00, 0x24, 0x00, 0x81], &change);
            assert_eq!(ok_apdu(&slot, &change).1, 0x9000, "{what}: CHANGE");
            let mut reset = PUK.to_vec();
            reset.extend_from_slice(&PIN);
            let reset = apdu_with([0x00, 0x2C, 0x00, 0x81], &reset);
            assert_eq!(ok_apdu(&slot, &reset).1, 0x9000, "{what}: RESET");
            // A command without a PIN is shown whole, after the PIN ones
            // (SELECT MF: no random bytes in the log that could look like
            // a PIN's, as GET CHALLENGE's would).
            assert_eq!(ok_apdu(&slot, &[0x00, 0xA4, 0x00, 0x0C]).1, 0x9000);
            runs += 1;
        }
    }
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(runs >= 12, "{runs} profile/card runs");
    // The frames were logged, their headers readable, the data masked.
    assert!(log.contains("send PC_to_RDR_XfrBlock"), "no frame logged");
    for header in [
        "00 20 00 81 08 XX",
        "00 24 00 81 10 XX",
        "00 2C 00 81 10 XX",
    ] {
        assert!(log.contains(header), "no {header:?} in the log");
    }
    assert!(log.contains("00 A4 00 0C"), "SELECT not shown whole");
    for (name, secret) in [("PIN", &PIN), ("PUK", &PUK), ("new PIN", &NEW_PIN)] {
        let found = leaks(&log, secret);
        assert!(found.is_empty(), "{name} bytes in the log: {found:?}");
    }
}
