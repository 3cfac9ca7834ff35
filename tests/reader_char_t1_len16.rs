//! Character level T=1 whose block body is 16 characters (LEN 15 + LRC):
//! the body is asked for with an empty XfrBlock whose wLevelParameter is
//! 0x0010 — at character level the number of characters expected
//! (CCID §6.1.4), the same value that means "continue the response" at
//! extended APDU level (table 6.1-4). The host must ask for exactly 16
//! characters and assemble the block; the reader (scripted, then the
//! simulator's O2 Micro Oz776 profile) must read it as a count.

#[path = "reader_support/mod.rs"]
mod support;

#[path = "reader_sim_support.rs"]
mod sim_support;

use std::sync::Arc;

use ferroccid::testing::ScriptedTransport;
use ferroccid::ProtocolPreference;
use ferroccid_sim::card::fs::TEXT_2F00;
use ferroccid_sim::card::CardConfig;
use support::*;

#[test]
fn a_16_character_body_is_asked_for_with_level_parameter_0x10() {
    // READ BINARY, Le 13: the answer INF is 13 data bytes + SW1 SW2 = 15.
    let apdu = [0x00, 0xB0, 0x00, 0x00, 0x0D];
    let data: Vec<u8> = (1..=13).collect();
    let mut inf = data.clone();
    inf.extend_from_slice(&[0x90, 0x00]);
    let ifs_response = t1_block(0xE1, &[0xFE]);
    let answer = t1_block(0x00, &inf);
    assert_eq!(answer[2], 15, "LEN");
    assert_eq!(answer.len() - 3, 0x10, "LEN + LRC");
    let t = ScriptedTransport::new(Some(&Desc::new(CHARACTER).bytes()));
    let t = script_power_on(t, 0, &ATR_T1)
        .expect_out(&set_parameters(0, 1, 1, &T1_PARAMS))
        .reply(&parameters(0, 1, 1, &T1_PARAMS))
        .expect_out(&xfr(0, 2, 0, 3, &t1_block(0xC1, &[0xFE])))
        .reply(&data_block(0, 2, 0, &ifs_response[..3]))
        .expect_out(&xfr(0, 3, 0, 2, &[]))
        .reply(&data_block(0, 3, 0, &ifs_response[3..]))
        // I(0) with the APDU, asking for the prologue ...
        .expect_out(&xfr(0, 4, 0, 3, &t1_block(0x00, &apdu)))
        .reply(&data_block(0, 4, 0, &answer[..3]))
        // ... then exactly 0x0010 characters: LEN 15 + LRC.
        .expect_out(&xfr(0, 5, 0, 0x10, &[]))
        .reply(&data_block(0, 5, 0, &answer[3..]));
    let t = Arc::new(t);
    let reader = open(&t);
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(ProtocolPreference::T1).unwrap();
    let mut resp = [0u8; 32];
    let n = slot.transmit(&apdu, &mut resp).unwrap();
    assert_eq!(&resp[..n - 2], &data[..]);
    assert_eq!(&resp[n - 2..n], &[0x90, 0x00]);
    t.assert_done();
}

#[test]
fn the_character_profile_answers_16_characters_to_level_parameter_0x10() {
    let (reader, _handle) = sim_support::open(sim_support::profile_with(
        "character",
        Some(CardConfig::dual()),
    ));
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    assert_eq!(slot.set_protocol(ProtocolPreference::T1).unwrap(), 1);
    let select = sim_support::short([0x00, 0xA4, 0x00, 0x0C], &[0x2F, 0x00], None);
    assert_eq!(sim_support::ok_apdu(&slot, &select), (vec![], 0x9000));
    // Answer INF lengths 14, 15 (the 0x10 body) and 16 around the case.
    for le in [12u8, 13, 14] {
        let read = sim_support::short([0x00, 0xB0, 0x00, 0x00], &[], Some(le));
        assert_eq!(
            sim_support::ok_apdu(&slot, &read),
            (TEXT_2F00[..usize::from(le)].to_vec(), 0x9000),
            "Le {le}"
        );
    }
}
