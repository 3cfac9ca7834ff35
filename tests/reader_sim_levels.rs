//! Every built-in simulator profile driven through the real reader logic:
//! power on, protocol selection (PPS and IFSD where the reader leaves them
//! to the host, checked on the virtual card itself), APDU cases 1–4,
//! T=0 61xx/6Cxx with automatic handling on and off, and 65535-byte reads
//! where the exchange level and protocol carry extended APDUs.

#[path = "reader_sim_support.rs"]
mod support;

use ferroccid::{ProtocolPreference, ReaderError, SlotOptions};
use ferroccid_sim::card::config::PRESET_AUTH_KEY;
use ferroccid_sim::card::fs::{large_ef_byte, DEMO_AID, TEXT_2F00, TEXT_2F01};
use ferroccid_sim::card::CardConfig;
use ferroccid_sim::profile::BUILTIN_NAMES;
use support::*;

/// dwFeatures bits (CCID §5.1).
const AUTO_PPS: u32 = 0x80;
const AUTO_PPS_PROPRIETARY: u32 = 0x40;
const AUTO_IFSD: u32 = 0x400;
const LEVEL_MASK: u32 = 0x0007_0000;
const LEVEL_SHORT_APDU: u32 = 0x0002_0000;
const LEVEL_EXTENDED_APDU: u32 = 0x0004_0000;

/// SW 9000 / 6282 (ISO/IEC 7816-4 §5.6).
const OK: u16 = 0x9000;
const END_OF_FILE: u16 = 0x6282;

/// APDU cases 1–4 against the demo file system.
fn cases_1_to_4(slot: &ferroccid::Slot, what: &str) {
    // Case 1: SELECT MF, no data, no response data (P2 = 0C).
    assert_eq!(
        ok_apdu(slot, &[0x00, 0xA4, 0x00, 0x0C]),
        (vec![], OK),
        "{what}: case 1"
    );
    // Case 3: SELECT EF 2F00 by FID.
    let select_2f00 = short([0x00, 0xA4, 0x00, 0x0C], &[0x2F, 0x00], None);
    assert_eq!(ok_apdu(slot, &select_2f00), (vec![], OK), "{what}: case 3");
    // Case 2: READ BINARY of the whole file, exact Le.
    let read = short([0x00, 0xB0, 0x00, 0x00], &[], Some(TEXT_2F00.len() as u8));
    assert_eq!(
        ok_apdu(slot, &read),
        (TEXT_2F00.to_vec(), OK),
        "{what}: case 2"
    );
    // Case 2 with an offset (P1-P2 = 6).
    let read = short([0x00, 0xB0, 0x00, 0x06], &[], Some(4));
    assert_eq!(
        ok_apdu(slot, &read),
        (TEXT_2F00[6..10].to_vec(), OK),
        "{what}: offset"
    );
    // Case 3: UPDATE BINARY into EF 2F01, then read it back.
    let select_2f01 = short([0x00, 0xA4, 0x00, 0x0C], &[0x2F, 0x01], None);
    assert_eq!(ok_apdu(slot, &select_2f01), (vec![], OK));
    let update = short([0x00, 0xD6, 0x00, 0x04], b"ferroccid", None);
    assert_eq!(
        ok_apdu(slot, &update),
        (vec![], OK),
        "{what}: UPDATE BINARY"
    );
    let read = short([0x00, 0xB0, 0x00, 0x00], &[], Some(13));
    let mut expected = TEXT_2F01[..4].to_vec();
    expected.extend_from_slice(b"ferroccid");
    assert_eq!(ok_apdu(slot, &read), (expected, OK), "{what}: read back");
    // Case 4: SELECT with FCP template (P2 = 04): tag 62, BER length.
    let select_fcp = short([0x00, 0xA4, 0x00, 0x04], &[0x2F, 0x00], Some(0));
    let (fcp, sw) = ok_apdu(slot, &select_fcp);
    assert_eq!(sw, OK, "{what}: case 4");
    assert_eq!(fcp[0], 0x62, "{what}: FCP tag");
    assert_eq!(usize::from(fcp[1]), fcp.len() - 2, "{what}: FCP length");
    // Case 2: GET CHALLENGE, 8 bytes, fresh each time.
    let (c1, sw1) = ok_apdu(slot, &[0x00, 0x84, 0x00, 0x00, 0x08]);
    let (c2, sw2) = ok_apdu(slot, &[0x00, 0x84, 0x00, 0x00, 0x08]);
    assert_eq!(
        (c1.len(), sw1, c2.len(), sw2),
        (8, OK, 8, OK),
        "{what}: GET CHALLENGE"
    );
    assert_ne!(c1, c2, "{what}: two challenges are equal");
    // Case 4: INTERNAL AUTHENTICATE, checked against HMAC-SHA-256.
    let challenge = *b"levels!!";
    let auth = short([0x00, 0x88, 0x00, 0x00], &challenge, Some(0));
    assert_eq!(
        ok_apdu(slot, &auth),
        (expected_auth(PRESET_AUTH_KEY, &challenge), OK),
        "{what}: INTERNAL AUTHENTICATE"
    );
}

/// 61xx and 6Cxx at T=0: transparent with the automatic handling off,
/// resolved with it on (ISO/IEC 7816-3 §10.3.3 / 7816-4 §5.3.4).
fn t0_procedures(slot: &ferroccid::Slot, what: &str) {
    let select_2f00 = short([0x00, 0xA4, 0x00, 0x0C], &[0x2F, 0x00], None);
    assert_eq!(ok_apdu(slot, &select_2f00), (vec![], OK));
    let too_long = short([0x00, 0xB0, 0x00, 0x00], &[], Some(0x40));
    let select_fcp = short([0x00, 0xA4, 0x00, 0x04], &[0x2F, 0x00], Some(0));

    let (data, sw) = ok_apdu(slot, &too_long);
    assert_eq!(data, TEXT_2F00, "{what}: 6Cxx resent");
    assert!(sw == OK || sw == END_OF_FILE, "{what}: SW {sw:04X}");
    let (fcp, sw) = ok_apdu(slot, &select_fcp);
    assert_eq!(sw, OK);

    slot.set_options(SlotOptions {
        auto_get_response: false,
        auto_resend_6c: false,
    });
    // P3 = 0x40 for a 39-byte file: the card answers 6C27 (exact length).
    assert_eq!(
        ok_apdu(slot, &too_long),
        (vec![], 0x6C00 | TEXT_2F00.len() as u16),
        "{what}: 6Cxx passed through"
    );
    // Case 4 at T=0: the data waits behind 61xx (xx = FCP length).
    assert_eq!(
        ok_apdu(slot, &select_fcp),
        (vec![], 0x6100 | fcp.len() as u16),
        "{what}: 61xx passed through"
    );
    // The application fetches it with GET RESPONSE itself.
    let get_response = [0x00, 0xC0, 0x00, 0x00, fcp.len() as u8];
    assert_eq!(
        ok_apdu(slot, &get_response),
        (fcp, OK),
        "{what}: GET RESPONSE"
    );
    slot.set_options(SlotOptions::default());
}

/// READ BINARY of 65535 bytes of EF 5010, odd INS (offset in DO 54,
/// answer in DO 53) and even INS with extended Le.
fn extended_reads(slot: &ferroccid::Slot, what: &str) {
    let select_demo = short([0x00, 0xA4, 0x04, 0x0C], DEMO_AID, None);
    assert_eq!(
        ok_apdu(slot, &select_demo),
        (vec![], OK),
        "{what}: SELECT DF"
    );
    // 00 B1 5010 | Lc 000003 | 54 01 00 | Le FFFF
    let odd = [
        0x00, 0xB1, 0x50, 0x10, 0x00, 0x00, 0x03, 0x54, 0x01, 0x00, 0xFF, 0xFF,
    ];
    let (data, sw) = ok_apdu(slot, &odd);
    assert_eq!(sw, OK, "{what}: odd INS SW");
    assert_eq!(data.len(), 65_535, "{what}: odd INS length");
    // DO 53 with a 3-byte length (82 FFFB) then 65531 bytes of the file.
    assert_eq!(
        &data[..4],
        &[0x53, 0x82, 0xFF, 0xFB],
        "{what}: DO 53 header"
    );
    assert!(
        data[4..]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == large_ef_byte(i)),
        "{what}: odd INS content"
    );
    // EF 5010 is now current: even INS, offset 0, extended Le = FFFF.
    let even = [0x00, 0xB0, 0x00, 0x00, 0x00, 0xFF, 0xFF];
    let (data, sw) = ok_apdu(slot, &even);
    assert_eq!((data.len(), sw), (65_535, OK), "{what}: even INS");
    assert!(
        data.iter().enumerate().all(|(i, &b)| b == large_ef_byte(i)),
        "{what}: even INS content"
    );
}

/// Cards a profile's reader can talk to, with the preference to select.
fn combinations(t0: bool, t1: bool) -> Vec<(&'static str, CardConfig, ProtocolPreference, u8)> {
    let mut v = Vec::new();
    if t0 {
        v.push(("t0 card", CardConfig::t0(), ProtocolPreference::Any, 0));
    }
    if t1 {
        v.push(("t1 card", CardConfig::t1(), ProtocolPreference::Any, 1));
    }
    if t0 && t1 {
        v.push((
            "dual card as T=0",
            CardConfig::dual(),
            ProtocolPreference::T0,
            0,
        ));
        v.push((
            "dual card as T=1",
            CardConfig::dual(),
            ProtocolPreference::T1,
            1,
        ));
    }
    v
}

#[test]
fn every_profile_every_card() {
    let mut table = Vec::new();
    for name in BUILTIN_NAMES {
        let d = ferroccid_sim::profile::Profile::from_name(name)
            .unwrap()
            .class_descriptor();
        let level = d.features & LEVEL_MASK;
        for (card_name, card, preference, protocol) in
            combinations(d.supports_t0(), d.supports_t1())
        {
            let what = format!("{name} / {card_name}");
            let (reader, handle) = open(profile_with(name, Some(card)));
            for index in 0..reader.slot_count() {
                let slot = reader.slot(index).unwrap();
                let atr = slot
                    .power_on()
                    .unwrap_or_else(|e| panic!("{what}: power on: {e}"));
                assert_eq!(
                    &atr.as_bytes()[..1],
                    &[0x3B],
                    "{what}: direct convention ATR"
                );
                let selected = slot
                    .set_protocol(preference)
                    .unwrap_or_else(|e| panic!("{what}: set_protocol: {e}"));
                assert_eq!(selected, protocol, "{what}: protocol");
                assert_eq!(
                    card_state(&handle, index as u8).0,
                    protocol,
                    "{what}: card's protocol"
                );
                cases_1_to_4(&slot, &what);
                // At APDU level the reader runs T=0 itself and resolves
                // 61xx/6Cxx (CCID §3.2.1); only TPDU and character levels
                // show them to the host.
                if protocol == 0 && level < LEVEL_SHORT_APDU {
                    t0_procedures(&slot, &what);
                }
                let extended_possible = match level {
                    LEVEL_SHORT_APDU => false,
                    LEVEL_EXTENDED_APDU => true,
                    // TPDU and character level: T=1 carries any APDU
                    // (chaining); T=0 has no 3-byte Lc (ISO/IEC 7816-3 §12.1).
                    _ => protocol == 1,
                };
                if extended_possible {
                    extended_reads(&slot, &what);
                } else if level == LEVEL_SHORT_APDU {
                    let even = [0x00, 0xB0, 0x00, 0x00, 0x00, 0xFF, 0xFF];
                    let e = apdu(&slot, &even).expect_err("short-APDU reader refuses");
                    assert!(
                        matches!(e, ReaderError::ExtendedApduNotSupported { len: 7 }),
                        "{what}: {e:?}"
                    );
                }
                slot.power_off().unwrap();
            }
            table.push(format!(
                "{name:14} {card_name:18} T={protocol} slots={} extended={}",
                reader.slot_count(),
                level == LEVEL_EXTENDED_APDU || (level != LEVEL_SHORT_APDU && protocol == 1)
            ));
        }
    }
    println!("{}", table.join("\n"));
    // 7 two-protocol profiles × 4 combinations + the T=0-only 4-slot reader.
    assert_eq!(table.len(), 7 * 4 + 1, "{table:#?}");
}

/// TA1 = 0x96 (Fi 512, Di 32): readers without automatic PPS leave the PPS
/// to the host; afterwards the card itself must be at Fi/Di 0x96
/// (ISO/IEC 7816-3 §9: PPS1 echoed = accepted). At T=1 the host must also
/// announce its IFSD (S(IFS request), §11.4.2) when the reader does not.
#[test]
fn pps_and_ifsd_performed_for_readers_that_need_them() {
    for name in ["tpdu", "pinpad", "character"] {
        for (preference, protocol) in [(ProtocolPreference::T0, 0), (ProtocolPreference::T1, 1)] {
            let profile = profile_with(name, Some(CardConfig::fast()));
            let d = profile.class_descriptor();
            assert_eq!(
                d.features & (AUTO_PPS | AUTO_PPS_PROPRIETARY),
                0,
                "{name} has no auto PPS"
            );
            assert_eq!(d.features & AUTO_IFSD, 0, "{name} has no auto IFSD");
            let (reader, handle) = open(profile);
            let slot = reader.slot(0).unwrap();
            slot.power_on().unwrap();
            assert_eq!(slot.set_protocol(preference).unwrap(), protocol);
            let (card_protocol, fi_di, ifsd) = card_state(&handle, 0);
            assert_eq!(card_protocol, protocol, "{name}: PPS0 protocol");
            // 4 MHz × 32 / 512 = 250000 bps must be a rate the reader does.
            // An empty list means every rate up to dwMaxDataRate (CCID §5.1
            // bNumDataRatesSupported = 0); the descriptor in use is the one
            // after quirks (the O2 reader's is cut to 9600 bps, as libccid does).
            let rate_ok = if reader.data_rates().is_empty() {
                reader.descriptor().max_data_rate >= 250_000
            } else {
                reader.data_rates().contains(&250_000)
            };
            let expected_fi_di = if rate_ok { 0x96 } else { 0x11 };
            assert_eq!(
                fi_di, expected_fi_di,
                "{name} T={protocol}: Fi/Di on the card"
            );
            if protocol == 1 {
                assert_eq!(
                    u32::from(ifsd),
                    d.max_ifsd.min(254),
                    "{name}: IFSD on the card"
                );
            }
            cases_1_to_4(&slot, &format!("{name} fast T={protocol}"));
        }
    }
}
