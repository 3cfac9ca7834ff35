//! The simulated reader on the wire: hand-built CCID frames (CCID rev 1.1
//! §6.1) through `SimTransport`, answers checked byte by byte against the
//! specification, ISO/IEC 7816-3 and the card's documented personalisation.

use std::time::{Duration, Instant};

use ferroccid::{Transport, TransportError};
use ferroccid_sim::card::fs::large_ef_byte;
use ferroccid_sim::card::CardConfig;
use ferroccid_sim::profile::{PinEntry, Profile, VOLTAGE_3V};
use ferroccid_sim::ResponseFault;
use ferroccid_sim::{SimHandle, SimTransport};

const T: Duration = Duration::from_secs(5);

fn open(name: &str) -> (SimTransport, SimHandle) {
    SimTransport::open(Profile::from_name(name).expect("built-in profile"))
}

/// A command frame: type, dwLength, bSlot, bSeq, three specific bytes, data.
fn cmd(ty: u8, slot: u8, seq: u8, p: [u8; 3], data: &[u8]) -> Vec<u8> {
    let mut f = vec![ty];
    f.extend_from_slice(&(data.len() as u32).to_le_bytes());
    f.extend_from_slice(&[slot, seq, p[0], p[1], p[2]]);
    f.extend_from_slice(data);
    f
}

fn read(t: &SimTransport) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let n = t.bulk_in(&mut buf, T).expect("bulk-IN");
    buf.truncate(n);
    buf
}

fn xchg(t: &SimTransport, frame: &[u8]) -> Vec<u8> {
    t.bulk_out(frame, T).expect("bulk-OUT");
    read(t)
}

fn payload(frame: &[u8]) -> &[u8] {
    let len = u32::from_le_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
    assert_eq!(
        frame.len(),
        10 + len,
        "dwLength matches the frame: {frame:02X?}"
    );
    &frame[10..]
}

fn power_on(t: &SimTransport, slot: u8, seq: u8) -> Vec<u8> {
    let r = xchg(t, &cmd(0x62, slot, seq, [0, 0, 0], &[]));
    assert_eq!(r[0], 0x80, "RDR_to_PC_DataBlock: {r:02X?}");
    assert_eq!(r[7], 0x00, "bStatus: present, active, ok: {r:02X?}");
    payload(&r).to_vec()
}

fn xfr(t: &SimTransport, seq: u8, level: u16, data: &[u8]) -> Vec<u8> {
    let l = level.to_le_bytes();
    xchg(t, &cmd(0x6F, 0, seq, [0, l[0], l[1]], data))
}

fn lrc(b: &[u8]) -> u8 {
    b.iter().fold(0, |a, x| a ^ x)
}

/// GET CHALLENGE for 8 bytes (ISO/IEC 7816-4 §11.5.3): 8 bytes + 90 00.
const GET_CHALLENGE: [u8; 5] = [0x00, 0x84, 0x00, 0x00, 0x08];

#[test]
fn power_on_returns_the_dual_card_atr() {
    let (t, _h) = open("tpdu");
    let atr = power_on(&t, 0, 1);
    // TS direct, T0 = TD1 present + 8 historical bytes; TD1 = TD2 present, T=0;
    // TD2 = TA3 TB3 present, T=1; TA3 = IFSC 254, TB3 = BWI 4 / CWI 5.
    assert_eq!(&atr[..6], &[0x3B, 0x88, 0x80, 0x31, 0xFE, 0x45]);
    assert_eq!(&atr[6..14], b"FerroSim");
    assert_eq!(atr.len(), 15);
    assert_eq!(lrc(&atr[1..]), 0, "TCK makes T0..TCK XOR to zero");
}

#[test]
fn get_slot_status_reports_inactive_then_active() {
    let (t, _h) = open("tpdu");
    let r = xchg(&t, &cmd(0x65, 0, 7, [0; 3], &[]));
    assert_eq!(r, vec![0x81, 0, 0, 0, 0, 0, 7, 0x01, 0, 0]);
    power_on(&t, 0, 8);
    let r = xchg(&t, &cmd(0x65, 0, 9, [0; 3], &[]));
    assert_eq!(r, vec![0x81, 0, 0, 0, 0, 0, 9, 0x00, 0, 0]);
    let r = xchg(&t, &cmd(0x63, 0, 10, [0; 3], &[]));
    assert_eq!(r, vec![0x81, 0, 0, 0, 0, 0, 10, 0x01, 0, 0]);
}

#[test]
fn tpdu_t0_get_challenge() {
    let (t, _h) = open("tpdu-t0");
    power_on(&t, 0, 1);
    let r = xfr(&t, 2, 0, &GET_CHALLENGE);
    assert_eq!(r[7], 0);
    let p = payload(&r);
    assert_eq!(p.len(), 10);
    assert_eq!(&p[8..], &[0x90, 0x00]);
}

#[test]
fn tpdu_t1_i_block_gets_i_block() {
    let (t, _h) = open("tpdu-t1");
    power_on(&t, 0, 1);
    let mut block = vec![0x00, 0x00, 0x05];
    block.extend_from_slice(&GET_CHALLENGE);
    block.push(lrc(&block));
    let r = xfr(&t, 2, 0, &block);
    let p = payload(&r);
    // I(0, no chaining) with 10 bytes of INF, LRC over the whole block = 0.
    assert_eq!(&p[..3], &[0x00, 0x00, 0x0A]);
    assert_eq!(p.len(), 3 + 10 + 1);
    assert_eq!(&p[11..13], &[0x90, 0x00]);
    assert_eq!(lrc(p), 0);
}

#[test]
fn parameters_follow_the_atr_and_set_parameters() {
    let (t, _h) = open("tpdu-t1");
    power_on(&t, 0, 1);
    let r = xchg(&t, &cmd(0x6C, 0, 2, [0; 3], &[]));
    // T=1: Fi/Di 11, LRC (0x10), guard 0, BWI 4 / CWI 5, clock stop 0, IFSC 254, NAD 0.
    assert_eq!(r[0], 0x82);
    assert_eq!(r[9], 1, "bProtocolNum T=1");
    assert_eq!(payload(&r), &[0x11, 0x10, 0x00, 0x45, 0x00, 0xFE, 0x00]);
    let set = [0x11, 0x10, 0x00, 0x45, 0x00, 0x20, 0x00];
    let r = xchg(&t, &cmd(0x61, 0, 3, [1, 0, 0], &set));
    assert_eq!(payload(&r), &set);
    let r = xchg(&t, &cmd(0x6D, 0, 4, [0; 3], &[]));
    assert_eq!(r[0], 0x82);
    assert_eq!(r[7], 0);
}

#[test]
fn pps_through_xfr_block_then_fast_exchanges() {
    let mut p = Profile::from_name("tpdu").unwrap();
    p.slots[0].card = Some(CardConfig::fast());
    let (t, _h) = SimTransport::open(p);
    power_on(&t, 0, 1);
    // PPSS FF, PPS0 = PPS1 present + T=0, PPS1 = 96, PCK = FF^10^96.
    let r = xfr(&t, 2, 0, &[0xFF, 0x10, 0x96, 0x79]);
    assert_eq!(
        payload(&r),
        &[0xFF, 0x10, 0x96, 0x79],
        "card echoes the PPS"
    );
    let r = xchg(&t, &cmd(0x61, 0, 3, [0, 0, 0], &[0x96, 0, 0, 10, 0]));
    assert_eq!(r[7], 0);
    let r = xfr(&t, 4, 0, &GET_CHALLENGE);
    assert_eq!(&payload(&r)[8..], &[0x90, 0x00]);
}

#[test]
fn set_parameters_without_pps_breaks_the_link() {
    let mut p = Profile::from_name("tpdu").unwrap();
    p.slots[0].card = Some(CardConfig::fast());
    p.mute_timeout = Duration::from_millis(10);
    let (t, _h) = SimTransport::open(p);
    power_on(&t, 0, 1);
    // GemPC Twin has no automatic PPS: host and card now disagree on F/D.
    let r = xchg(&t, &cmd(0x61, 0, 2, [0, 0, 0], &[0x96, 0, 0, 10, 0]));
    assert_eq!(r[7], 0);
    let r = xfr(&t, 3, 0, &GET_CHALLENGE);
    assert_eq!(r[7] & 0xC0, 0x40, "command failed");
    assert_eq!(r[8], 0xFD, "XFR_PARITY_ERROR");
}

#[test]
fn character_level_returns_exactly_the_requested_bytes() {
    let mut p = Profile::from_name("character").unwrap();
    p.mute_timeout = Duration::from_millis(20);
    let (t, _h) = SimTransport::open(p);
    power_on(&t, 0, 1);
    // Header, expecting the procedure byte (INS = 84).
    let r = xfr(&t, 2, 1, &GET_CHALLENGE);
    assert_eq!(payload(&r), &[0x84]);
    // Then the 8 data bytes and SW1 SW2.
    let r = xfr(&t, 3, 10, &[]);
    let p = payload(&r);
    assert_eq!(p.len(), 10);
    assert_eq!(&p[8..], &[0x90, 0x00]);
    // Nothing more: the card is silent, the reader reports ICC_MUTE.
    let r = xfr(&t, 4, 1, &[]);
    assert_eq!(r[7] & 0xC0, 0x40);
    assert_eq!(r[8], 0xFE);
}

#[test]
fn short_apdu_level_exchanges_and_rejects_extended() {
    let (t, _h) = open("short-apdu");
    power_on(&t, 0, 1);
    let r = xfr(&t, 2, 0, &GET_CHALLENGE);
    assert_eq!(payload(&r).len(), 10);
    assert_eq!(&payload(&r)[8..], &[0x90, 0x00]);
    // Case 2E: Le = 00 00 08 (ISO/IEC 7816-4 §5.1).
    let r = xfr(&t, 3, 0, &[0x00, 0x84, 0x00, 0x00, 0x00, 0x00, 0x08]);
    assert_eq!(r[0], 0x80);
    assert_eq!(r[7] & 0xC0, 0x40, "failed");
    assert_eq!(r[8], 10, "bError = offset of abData");
    assert_eq!(r[6], 3);
}

#[test]
fn extended_apdu_level_chains_both_ways() {
    let (t, _h) = open("extended-apdu");
    let max = 540; // dwMaxCCIDMessageLength of the Gemalto CT1100
    power_on(&t, 0, 1);
    // SELECT DF 5000, then READ BINARY of EF 5010 via SFI 16, Le = 1000 (case 2E).
    let r = xfr(&t, 2, 0, &[0x00, 0xA4, 0x00, 0x00, 0x02, 0x50, 0x00]);
    assert_eq!(&payload(&r)[payload(&r).len() - 2..], &[0x90, 0x00]);
    let r = xfr(&t, 3, 0, &[0x00, 0xB0, 0x90, 0x00, 0x00, 0x03, 0xE8]);
    assert!(r.len() <= max);
    assert_eq!(r[9], 0x01, "bChainParameter: begins, more follows");
    let mut response = payload(&r).to_vec();
    assert_eq!(response.len(), max - 10);
    let mut seq = 4;
    loop {
        let r = xfr(&t, seq, 0x10, &[]);
        assert!(r.len() <= max);
        response.extend_from_slice(payload(&r));
        seq += 1;
        match r[9] {
            0x03 => continue,
            0x02 => break,
            other => panic!("unexpected bChainParameter {other:#04X}"),
        }
    }
    assert_eq!(response.len(), 1002);
    for (i, &b) in response[..1000].iter().enumerate() {
        assert_eq!(b, large_ef_byte(i), "byte {i}");
    }
    assert_eq!(&response[1000..], &[0x90, 0x00]);
    // Command chaining: VERIFY PIN 123456 split in two parts (1 then 2).
    let r = xfr(&t, 20, 0x0001, &[0x00, 0x20, 0x00, 0x81, 0x06, b'1', b'2']);
    assert_eq!(r[9], 0x10, "reader expects the next part");
    assert!(payload(&r).is_empty());
    let r = xfr(&t, 21, 0x0002, b"3456");
    assert_eq!(payload(&r), &[0x90, 0x00]);
    // A continuation without a beginning is a bad wLevelParameter (offset 8).
    let r = xfr(&t, 22, 0x0002, b"3456");
    assert_eq!(r[8], 8);
}

#[test]
fn reader_time_extensions_precede_the_answer() {
    let (t, h) = open("tpdu-t0");
    power_on(&t, 0, 1);
    h.time_extensions_next(0, 2);
    t.bulk_out(&cmd(0x6F, 0, 2, [0; 3], &GET_CHALLENGE), T)
        .unwrap();
    for _ in 0..2 {
        let r = read(&t);
        assert_eq!(r[0], 0x80);
        assert_eq!(r[6], 2);
        assert_eq!(r[7] >> 6, 2, "bmCommandStatus = time extension");
        assert_eq!(r[8], 1, "multiplier");
    }
    let r = read(&t);
    assert_eq!(r[7], 0);
    assert_eq!(&payload(&r)[8..], &[0x90, 0x00]);
}

#[test]
fn card_wtx_reaches_the_host_at_tpdu_t1() {
    let mut p = Profile::from_name("tpdu-t1").unwrap();
    let mut card = CardConfig::t1();
    card.slow.ins = vec![0x84];
    card.slow.t1_wtx_requests = 1;
    card.slow.wtx_multiplier = 2;
    p.slots[0].card = Some(card);
    let (t, _h) = SimTransport::open(p);
    power_on(&t, 0, 1);
    let mut block = vec![0x00, 0x00, 0x05];
    block.extend_from_slice(&GET_CHALLENGE);
    block.push(lrc(&block));
    let r = xfr(&t, 2, 0, &block);
    // S(WTX request) with INF = multiplier 2.
    assert_eq!(&payload(&r)[..4], &[0x00, 0xC3, 0x01, 0x02]);
}

#[test]
fn faults_corrupt_edc_and_dropped_block() {
    let mut p = Profile::from_name("tpdu-t1").unwrap();
    p.mute_timeout = Duration::from_millis(150);
    let (t, h) = SimTransport::open(p);
    power_on(&t, 0, 1);
    let mut block = vec![0x00, 0x00, 0x05];
    block.extend_from_slice(&GET_CHALLENGE);
    block.push(lrc(&block));
    h.corrupt_next_edc(0);
    let r = xfr(&t, 2, 0, &block);
    assert_ne!(lrc(payload(&r)), 0, "EDC no longer matches");
    h.drop_next_answer(0);
    // R(N(R)=1) asking for the card's block again.
    let r_block = [0x00, 0x90, 0x00, 0x90];
    let started = Instant::now();
    let r = xfr(&t, 3, 0, &r_block);
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "reader waited for the card"
    );
    assert_eq!(r[7] & 0xC0, 0x40);
    assert_eq!(r[8], 0xFE, "ICC_MUTE");
}

#[test]
fn mute_card_and_voltage_classes() {
    let mut p = Profile::from_name("tpdu").unwrap();
    p.slots[0].card_voltages = VOLTAGE_3V;
    p.mute_timeout = Duration::from_millis(5);
    let (t, h) = SimTransport::open(p);
    // bPowerSelect 1 = 5 V: the card only works at 3 V.
    let r = xchg(&t, &cmd(0x62, 0, 1, [1, 0, 0], &[]));
    assert_eq!(r[8], 0xFE);
    let r = xchg(&t, &cmd(0x62, 0, 2, [2, 0, 0], &[]));
    assert_eq!(r[7], 0);
    // bPowerSelect 4 does not exist: bad parameter at offset 7.
    let r = xchg(&t, &cmd(0x62, 0, 3, [4, 0, 0], &[]));
    assert_eq!(r[8], 7);
    h.mute_next_power_on(0);
    let r = xchg(&t, &cmd(0x62, 0, 4, [0, 0, 0], &[]));
    assert_eq!(r[7] & 0xC0, 0x40);
    assert_eq!(r[8], 0xFE);
}

#[test]
fn malformed_commands_get_spec_errors() {
    let (t, h) = open("tpdu");
    // bSlot 1 on a one-slot reader: bError 5.
    let r = xchg(&t, &cmd(0x65, 1, 1, [0; 3], &[]));
    assert_eq!((r[0], r[6], r[7] >> 6, r[8]), (0x81, 1, 1, 5));
    // Unknown bMessageType: command not supported, bError 0.
    let r = xchg(&t, &[0x99, 0, 0, 0, 0, 0, 2, 0, 0, 0]);
    assert_eq!((r[6], r[7] >> 6, r[8]), (2, 1, 0));
    // dwLength says 4 but 2 bytes follow: bError 1.
    let r = xchg(&t, &[0x6F, 4, 0, 0, 0, 0, 3, 0, 0, 0, 0xAA, 0xBB]);
    assert_eq!((r[0], r[6], r[7] >> 6, r[8]), (0x80, 3, 1, 1));
    // Longer than dwMaxCCIDMessageLength (271): bError 1.
    let big = cmd(0x6F, 0, 4, [0; 3], &[0u8; 300]);
    let r = xchg(&t, &big);
    assert_eq!((r[6], r[8]), (4, 1));
    // SetParameters with bProtocolNum 5: bError 7.
    let r = xchg(&t, &cmd(0x61, 0, 5, [5, 0, 0], &[0x11, 0, 0, 10, 0]));
    assert_eq!((r[0], r[8]), (0x82, 7));
    // Mechanical on a reader without mechanical features: not supported.
    let r = xchg(&t, &cmd(0x71, 0, 6, [1, 0, 0], &[]));
    assert_eq!((r[7] >> 6, r[8]), (1, 0));
    // Escape is echoed.
    let r = xchg(&t, &cmd(0x6B, 0, 7, [0; 3], &[1, 2, 3]));
    assert_eq!((r[0], payload(&r)), (0x83, &[1u8, 2, 3][..]));
    // Response faults, each observable.
    h.inject_response_fault(ResponseFault::WrongSeq);
    assert_eq!(xchg(&t, &cmd(0x65, 0, 8, [0; 3], &[]))[6], 9);
    h.inject_response_fault(ResponseFault::WrongSlot);
    assert_eq!(xchg(&t, &cmd(0x65, 0, 9, [0; 3], &[]))[5], 1);
    h.inject_response_fault(ResponseFault::Truncated);
    assert_eq!(xchg(&t, &cmd(0x65, 0, 10, [0; 3], &[])).len(), 9);
    h.inject_response_fault(ResponseFault::BadLength);
    let r = xchg(&t, &cmd(0x65, 0, 11, [0; 3], &[]));
    assert_eq!((r.len(), r[1]), (10, 5));
    h.inject_response_fault(ResponseFault::WrongMessageType);
    assert_eq!(xchg(&t, &cmd(0x65, 0, 12, [0; 3], &[]))[0], 0x80);
    h.inject_response_fault(ResponseFault::Oversized);
    assert_eq!(xchg(&t, &cmd(0x65, 0, 13, [0; 3], &[])).len(), 272);
}

#[test]
fn busy_slot_abort_and_removal_mid_exchange() {
    let (t, h) = open("tpdu-t0");
    power_on(&t, 0, 1);
    h.set_time_extensions(3, Duration::from_millis(100));
    t.bulk_out(&cmd(0x6F, 0, 2, [0; 3], &GET_CHALLENGE), T)
        .unwrap();
    // Another command while the slot works: CMD_SLOT_BUSY with its own bSeq.
    let r = xchg(&t, &cmd(0x65, 0, 3, [0; 3], &[]));
    assert_eq!((r[6], r[7] >> 6, r[8]), (3, 1, 0xE0));
    // ABORT (wValue = bSeq << 8 | bSlot), then PC_to_RDR_Abort.
    t.control_out(0x01, 0x0200, &[], T).unwrap();
    let r = read(&t);
    assert_eq!(
        (r[0], r[6], r[7] >> 6, r[8]),
        (0x80, 2, 1, 0xFF),
        "CMD_ABORTED"
    );
    let r = xchg(&t, &cmd(0x72, 0, 2, [0; 3], &[]));
    assert_eq!((r[0], r[6], r[7]), (0x81, 2, 0));
    // Card pulled out during an exchange.
    let mut buf = [0u8; 8];
    let n = t.interrupt_in(&mut buf, T).unwrap();
    assert_eq!(
        &buf[..n],
        &[0x50, 0x03],
        "plug-in: slot 0 present + changed"
    );
    t.bulk_out(&cmd(0x6F, 0, 4, [0; 3], &GET_CHALLENGE), T)
        .unwrap();
    h.remove_card(0);
    let r = read(&t);
    // No time-extension frame left; the pending command fails, no ICC present.
    assert_eq!((r[6], r[7], r[8]), (4, 0x42, 0xFE));
    let n = t.interrupt_in(&mut buf, T).unwrap();
    assert_eq!(&buf[..n], &[0x50, 0x02], "slot 0 absent + changed");
    h.insert_card(0);
    let n = t.interrupt_in(&mut buf, T).unwrap();
    assert_eq!(&buf[..n], &[0x50, 0x03]);
    h.hardware_error(0, 1);
    let n = t.interrupt_in(&mut buf, T).unwrap();
    assert_eq!(&buf[..n], &[0x51, 0x00, 0x04, 0x01]);
}

#[test]
fn four_slots_run_concurrently() {
    let (t, h) = open("4-slot");
    h.set_time_extensions(0, Duration::from_millis(300));
    let started = Instant::now();
    for slot in 0..4 {
        t.bulk_out(&cmd(0x62, slot, 10 + slot, [0; 3], &[]), T)
            .unwrap();
    }
    let mut answered = Vec::new();
    for _ in 0..4 {
        let r = read(&t);
        assert_eq!((r[0], r[7]), (0x80, 0), "{r:02X?}");
        answered.push((r[5], r[6]));
    }
    answered.sort();
    assert_eq!(answered, vec![(0, 10), (1, 11), (2, 12), (3, 13)]);
    // Serially this would take 4 × 300 ms.
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn one_busy_slot_allowed_on_a_gempc() {
    // bMaxCCIDBusySlots = 1: even another slot's command would be refused;
    // here the reader has one slot, so check the same slot is busy.
    let (t, h) = open("tpdu");
    h.set_time_extensions(0, Duration::from_millis(200));
    t.bulk_out(&cmd(0x62, 0, 1, [0; 3], &[]), T).unwrap();
    let r = xchg(&t, &cmd(0x65, 0, 2, [0; 3], &[]));
    assert_eq!(r[8], 0xE0);
    assert_eq!(read(&t)[6], 1);
}

fn verify_structure(apdu: &[u8], format: u8, block: u8, length_format: u8) -> Vec<u8> {
    // bPINOperation 0, bTimeOut, bmFormatString, bmPINBlockString,
    // bmPINLengthFormat, wPINMaxExtraDigit (max 8, min 4), bEntryValidationCondition 2,
    // bNumberMessage 1, wLangId 0x0409, bMsgIndex 0, bTeoPrologue 00 00 00.
    let mut s = vec![
        0,
        0,
        format,
        block,
        length_format,
        0x08,
        0x04,
        0x02,
        0x01,
        0x09,
        0x04,
        0,
        0,
        0,
        0,
    ];
    s.extend_from_slice(apdu);
    s
}

#[test]
fn pinpad_verify_inserts_the_typed_pin() {
    let (t, h) = open("pinpad");
    power_on(&t, 0, 1);
    // ASCII, byte unit, position 0, left justified; 6-byte block.
    let s = verify_structure(
        &[0x00, 0x20, 0x00, 0x81, 0x06, 0, 0, 0, 0, 0, 0],
        0x82,
        0x06,
        0,
    );
    let r = xchg(&t, &cmd(0x69, 0, 2, [0; 3], &s));
    assert_eq!(payload(&r), &[0x90, 0x00], "typed 123456 is the card's PIN");
    h.set_pin_entry(PinEntry::Typed {
        pin: "000000".into(),
        new_pin: "000000".into(),
    });
    let r = xchg(&t, &cmd(0x69, 0, 3, [0; 3], &s));
    assert_eq!(payload(&r), &[0x63, 0xC2], "wrong PIN, 2 tries left");
    h.set_pin_entry(PinEntry::Cancelled);
    let r = xchg(&t, &cmd(0x69, 0, 4, [0; 3], &s));
    assert_eq!(r[8], 0xEF, "PIN_CANCELLED");
    h.set_pin_entry(PinEntry::Timeout);
    let r = xchg(&t, &cmd(0x69, 0, 5, [0; 3], &s));
    assert_eq!(r[8], 0xF0, "PIN_TIMEOUT");
    // A reader without a pad does not support Secure.
    let (t, _h) = open("tpdu");
    power_on(&t, 0, 1);
    let r = xchg(&t, &cmd(0x69, 0, 2, [0; 3], &s));
    assert_eq!((r[7] >> 6, r[8]), (1, 0));
}

#[test]
fn iso9564_format2_pin_block() {
    use ferroccid::ccid::secure::{PinVerify, SecureData};
    // Format 2: 2L then BCD digits padded with F (ISO 9564-1).
    let apdu = [
        0x00, 0x20, 0x00, 0x81, 0x08, 0x20, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    // Bytes unit, PIN at byte 1, left, BCD; length field 4 bits, block 8 bytes;
    // length at bit 4.
    let s = verify_structure(&apdu, 0x89, 0x48, 0x04);
    let SecureData::Verify(v): SecureData = SecureData::parse(&s).unwrap() else {
        panic!("verify structure")
    };
    let v: PinVerify = v;
    let typed = PinEntry::Typed {
        pin: "1234".into(),
        new_pin: String::new(),
    };
    let out = ferroccid_sim::verify_apdu(&v, &typed).unwrap();
    assert_eq!(&out[5..], &[0x24, 0x12, 0x34, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
}

#[test]
fn control_requests_and_unplug() {
    let (t, h) = open("tpdu");
    let mut buf = [0u8; 1024];
    let n = t.control_in(0x02, 0, &mut buf, T).unwrap();
    assert_eq!(&buf[..n], &4000u32.to_le_bytes(), "GemPC Twin: 4 MHz");
    let n = t.control_in(0x03, 0, &mut buf, T).unwrap();
    assert_eq!(n, 40 * 4);
    assert_eq!(&buf[..4], &10753u32.to_le_bytes());
    assert_eq!(&buf[n - 4..n], &344086u32.to_le_bytes());
    let (t4, _h4) = open("4-slot");
    assert!(matches!(
        t4.control_in(0x03, 0, &mut buf, T),
        Err(TransportError::Stall)
    ));
    h.unplug();
    assert!(matches!(
        t.bulk_out(&[0x65; 10], T),
        Err(TransportError::DeviceGone)
    ));
    assert!(matches!(
        t.bulk_in(&mut buf, T),
        Err(TransportError::DeviceGone)
    ));
    assert!(matches!(
        t.interrupt_in(&mut buf, T),
        Err(TransportError::DeviceGone)
    ));
    assert!(matches!(
        t.control_in(2, 0, &mut buf, T),
        Err(TransportError::DeviceGone)
    ));
    assert!(matches!(
        t.control_out(1, 0, &[], T),
        Err(TransportError::DeviceGone)
    ));
}

#[test]
fn info_carries_identity_and_parseable_descriptors() {
    use ferroccid::descriptors::{find_class_descriptor, parse_configuration};
    let (t, _h) = open("pinpad");
    let info = t.info();
    assert_eq!((info.vendor_id, info.product_id), (0x08E6, 0x3478));
    assert_eq!(info.name, "sim:pinpad");
    let interfaces = parse_configuration(&info.configuration_descriptor).unwrap();
    assert_eq!(interfaces.len(), 1);
    assert_eq!(interfaces[0].class, 0x0B);
    assert_eq!(interfaces[0].endpoints.len(), 3);
    let class = find_class_descriptor(&interfaces[0].extra).unwrap();
    assert_eq!(Some(class.to_vec()), info.class_descriptor);
    assert_eq!(class[52], 0x03, "bPINSupport verify + modify");
}

#[test]
fn pinpad_modify_inserts_current_and_new_pin() {
    let (t, _h) = open("pinpad");
    power_on(&t, 0, 1);
    // bPINOperation 1, bTimeOut 0, ASCII bytes left (0x82), 6-byte blocks,
    // no length field, old PIN at data offset 0, new PIN at 6, max 8 / min 4,
    // bConfirmPIN 3 (confirm + current PIN), validation 2, bNumberMessage 3,
    // wLangId 0409, bMsgIndex1..3, bTeoPrologue; CHANGE REFERENCE DATA P1 = 0.
    let mut s = vec![
        1, 0, 0x82, 0x06, 0x00, 0, 6, 0x08, 0x04, 0x03, 0x02, 3, 0x09, 0x04, 0, 1, 2, 0, 0, 0,
    ];
    s.extend_from_slice(&[0x00, 0x24, 0x00, 0x81, 0x0C]);
    s.extend_from_slice(&[0; 12]);
    let r = xchg(&t, &cmd(0x69, 0, 2, [0; 3], &s));
    assert_eq!(payload(&r), &[0x90, 0x00], "123456 changed to 654321");
    // The new PIN now verifies through a plain T=0 TPDU.
    let r = xfr(&t, 3, 0, b"\x00\x20\x00\x81\x06654321");
    assert_eq!(payload(&r), &[0x90, 0x00]);
}

#[test]
fn apdu_level_reader_turns_card_busy_into_time_extensions() {
    let mut p = Profile::from_name("short-apdu").unwrap();
    let mut card = CardConfig::t1();
    card.slow.ins = vec![0x84];
    card.slow.t1_wtx_requests = 2;
    card.slow.wtx_multiplier = 3;
    p.slots[0].card = Some(card);
    let (t, _h) = SimTransport::open(p);
    power_on(&t, 0, 1);
    t.bulk_out(&cmd(0x6F, 0, 2, [0; 3], &GET_CHALLENGE), T)
        .unwrap();
    for _ in 0..2 {
        let r = read(&t);
        assert_eq!((r[6], r[7] >> 6, r[8]), (2, 2, 3), "time extension ×3");
    }
    let r = read(&t);
    assert_eq!(&payload(&r)[8..], &[0x90, 0x00]);
}
