//! ISO/IEC 7816-4 commands of the virtual card at APDU level: every command
//! and status-word path, on the demo personalisation.

use ferroccid_sim::card::{CardConfig, VirtualCard};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const TEXT_2F00: &[u8] = b"Hello from the ferroccid virtual card.\n";
const AID: [u8; 10] = [0xF0, 0x46, 0x45, 0x52, 0x52, 0x4F, 0x43, 0x43, 0x49, 0x44];

fn card() -> VirtualCard {
    let mut card = VirtualCard::new(CardConfig {
        rng_seed: Some(1234567),
        ..CardConfig::dual()
    });
    card.power_on().expect("ATR");
    card
}

fn sw(response: &[u8]) -> u16 {
    u16::from_be_bytes([response[response.len() - 2], response[response.len() - 1]])
}

fn data(response: &[u8]) -> &[u8] {
    &response[..response.len() - 2]
}

fn apdu(header: [u8; 4], body: &[u8], le: Option<u8>) -> Vec<u8> {
    let mut v = header.to_vec();
    if !body.is_empty() {
        v.push(body.len() as u8);
        v.extend_from_slice(body);
    }
    v.extend(le);
    v
}

fn select_path(c: &mut VirtualCard, path: &[u8]) {
    assert_eq!(
        c.process_apdu(&apdu([0, 0xA4, 0x08, 0x0C], path, None)),
        vec![0x90, 0x00]
    );
}

#[test]
fn select_variants_and_fcp() {
    let mut c = card();
    assert_eq!(
        c.process_apdu(&[0x00, 0xA4, 0x00, 0x0C]),
        vec![0x90, 0x00],
        "MF by empty data"
    );
    // FCP of EF 2F00: 62 0E | 80 02 00 27 | 82 01 01 | 83 02 2F 00 | 8A 01 05.
    assert_eq!(
        c.process_apdu(&apdu([0, 0xA4, 0x00, 0x04], &[0x2F, 0x00], Some(0))),
        vec![
            0x62, 0x0E, 0x80, 0x02, 0x00, 0x27, 0x82, 0x01, 0x01, 0x83, 0x02, 0x2F, 0x00, 0x8A,
            0x01, 0x05, 0x90, 0x00
        ]
    );
    // FCI of the DF by name.
    let mut fci = vec![
        0x6F, 0x16, 0x82, 0x01, 0x38, 0x83, 0x02, 0x50, 0x00, 0x84, 0x0A,
    ];
    fci.extend_from_slice(&AID);
    fci.extend([0x8A, 0x01, 0x05, 0x90, 0x00]);
    assert_eq!(
        c.process_apdu(&apdu([0, 0xA4, 0x04, 0x00], &AID, Some(0))),
        fci
    );
    // Right-truncated name.
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xA4, 0x04, 0x0C], &AID[..5], None))),
        0x9000
    );
    // No Le: no FCI even though P2 asks for it.
    assert_eq!(
        c.process_apdu(&apdu([0, 0xA4, 0x04, 0x00], &AID, None)),
        vec![0x90, 0x00]
    );
    // FMD.
    assert_eq!(
        c.process_apdu(&apdu([0, 0xA4, 0x04, 0x08], &AID, Some(0))),
        vec![0x64, 0x00, 0x90, 0x00]
    );
    // Parent of the DF is the MF; parent of the MF does not exist.
    assert_eq!(sw(&c.process_apdu(&[0, 0xA4, 0x03, 0x0C])), 0x9000);
    assert_eq!(sw(&c.process_apdu(&[0, 0xA4, 0x03, 0x0C])), 0x6A82);
    // Child DF (P1=01) must be a DF.
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xA4, 0x01, 0x0C], &[0x2F, 0x00], None))),
        0x6A82
    );
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xA4, 0x01, 0x0C], &[0x50, 0x00], None))),
        0x9000
    );
    // Path from the current DF (P1=09), then from the MF (P1=08), with 3F00.
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xA4, 0x09, 0x0C], &[0x50, 0x03], None))),
        0x9000
    );
    assert_eq!(
        sw(&c.process_apdu(&apdu(
            [0, 0xA4, 0x08, 0x0C],
            &[0x3F, 0x00, 0x2F, 0x01],
            None
        ))),
        0x9000
    );
    // FCP of a linear fixed EF: 82 05 02 21 00 10 03, size 80 02 00 30.
    let fcp = c.process_apdu(&apdu(
        [0, 0xA4, 0x08, 0x04],
        &[0x50, 0x00, 0x50, 0x02],
        Some(0),
    ));
    assert_eq!(
        fcp,
        vec![
            0x62, 0x12, 0x80, 0x02, 0x00, 0x30, 0x82, 0x05, 0x02, 0x21, 0x00, 0x10, 0x03, 0x83,
            0x02, 0x50, 0x02, 0x8A, 0x01, 0x05, 0x90, 0x00
        ]
    );
    // Errors.
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xA4, 0x00, 0x0C], &[0x12, 0x34], None))),
        0x6A82
    );
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xA4, 0x05, 0x0C], &[0x2F, 0x00], None))),
        0x6A86
    );
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xA4, 0x00, 0x0D], &[0x2F, 0x00], None))),
        0x6A86
    );
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xA4, 0x08, 0x0C], &[0x50, 0x00, 0x50], None))),
        0x6700
    );
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xA4, 0x04, 0x0C], &[0xA0, 0x00], None))),
        0x6A82
    );
}

#[test]
fn read_binary_paths() {
    let mut c = card();
    assert_eq!(
        sw(&c.process_apdu(&[0, 0xB0, 0, 0, 4])),
        0x6986,
        "no current EF"
    );
    select_path(&mut c, &[0x2F, 0x00]);
    assert_eq!(
        c.process_apdu(&[0, 0xB0, 0, 6, 4]),
        b"from\x90\x00".to_vec()
    );
    // Le=00: as much as there is, 9000.
    assert_eq!(data(&c.process_apdu(&[0, 0xB0, 0, 0, 0])), TEXT_2F00);
    // Explicit Le too long: the rest and 6282.
    let r = c.process_apdu(&[0, 0xB0, 0, 0x20, 0x10]);
    assert_eq!((data(&r), sw(&r)), (&TEXT_2F00[0x20..], 0x6282));
    assert_eq!(
        sw(&c.process_apdu(&[0, 0xB0, 0, 0x27, 1])),
        0x6B00,
        "offset = size"
    );
    assert_eq!(sw(&c.process_apdu(&[0, 0xB0, 0x7F, 0xFF, 1])), 0x6B00);
    assert_eq!(sw(&c.process_apdu(&[0, 0xB0, 0, 0])), 0x6700, "no Le");
    // Odd INS: offset in DO 54, data in DO 53.
    let r = c.process_apdu(&apdu([0, 0xB1, 0, 0], &[0x54, 0x01, 0x06], Some(0)));
    let mut expected = vec![0x53, 0x21];
    expected.extend_from_slice(&TEXT_2F00[6..]);
    assert_eq!((data(&r), sw(&r)), (&expected[..], 0x9000));
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xB1, 0, 0], &[0x55, 0x01, 0x06], Some(0)))),
        0x6A80
    );
    // Odd INS with a FID in P1-P2.
    let r = c.process_apdu(&apdu([0, 0xB1, 0x2F, 0x01], &[0x54, 0x01, 0x00], Some(6)));
    assert_eq!(r, vec![0x53, 0x04, b'T', b'h', b'i', b's', 0x90, 0x00]);
    // Record file: 6981.
    select_path(&mut c, &[0x50, 0x00, 0x50, 0x02]);
    assert_eq!(sw(&c.process_apdu(&[0, 0xB0, 0, 0, 1])), 0x6981);
}

#[test]
fn pin_protection_and_sfi() {
    let mut c = card();
    select_path(&mut c, &[0x50, 0x00]);
    // SFI 1 (P1 = 1000 0001) is EF 5001, protected.
    assert_eq!(c.process_apdu(&[0, 0xB0, 0x81, 0, 0]), vec![0x69, 0x82]);
    assert_eq!(
        sw(&c.process_apdu(&[0, 0xB0, 0x9F, 0, 0])),
        0x6A82,
        "SFI 31 absent"
    );
    assert_eq!(
        c.process_apdu(&apdu([0, 0x20, 0, 0x81], b"123456", None)),
        vec![0x90, 0x00]
    );
    let r = c.process_apdu(&[0, 0xB0, 0x81, 0, 0]);
    assert_eq!(data(&r), b"The secret is only readable after VERIFY.\n");
    // Power cycle forgets the verification.
    c.power_on().unwrap();
    select_path(&mut c, &[0x50, 0x00, 0x50, 0x01]);
    assert_eq!(sw(&c.process_apdu(&[0, 0xB0, 0, 0, 0])), 0x6982);
}

#[test]
fn update_binary_paths() {
    let mut c = card();
    select_path(&mut c, &[0x2F, 0x00]);
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xD6, 0, 0], b"X", None))),
        0x6982,
        "never writable"
    );
    select_path(&mut c, &[0x2F, 0x01]);
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xD6, 0, 5], b"IS", None))),
        0x9000
    );
    assert_eq!(
        c.process_apdu(&[0, 0xB0, 0, 0, 7]),
        b"This IS\x90\x00".to_vec()
    );
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xD6, 0x01, 0], b"X", None))),
        0x6B00
    );
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xD6, 0, 0x38], b"XYZ", None))),
        0x6700,
        "past the end"
    );
    assert_eq!(sw(&c.process_apdu(&[0, 0xD6, 0, 0])), 0x6700, "no data");
    // Odd INS: 54 01 00 | 53 02 41 42.
    assert_eq!(
        sw(&c.process_apdu(&apdu(
            [0, 0xD7, 0, 0],
            &[0x54, 0x01, 0x00, 0x53, 0x02, b'A', b'B'],
            None
        ))),
        0x9000
    );
    assert_eq!(
        c.process_apdu(&[0, 0xB0, 0, 0, 4]),
        b"ABis\x90\x00".to_vec()
    );
}

#[test]
fn extended_length_both_ways() {
    let mut c = card();
    select_path(&mut c, &[0x50, 0x00, 0x50, 0x10]);
    // Le = 0000 extended: 65536 bytes.
    let r = c.process_apdu(&[0, 0xB0, 0, 0, 0, 0, 0]);
    assert_eq!(sw(&r), 0x9000);
    assert_eq!(data(&r).len(), 65536);
    assert!(data(&r)
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i % 251) as u8));
    // The rest beyond 32767 needs the odd INS: offset 65536 = 54 03 01 00 00.
    let r = c.process_apdu(&[0, 0xB1, 0, 0, 0, 0, 5, 0x54, 0x03, 0x01, 0x00, 0x00, 0, 0]);
    assert_eq!(sw(&r), 0x9000);
    // 70000 - 65536 = 4464 = 0x1170 bytes in 53 82 11 70.
    assert_eq!(&data(&r)[..4], &[0x53, 0x82, 0x11, 0x70]);
    assert!(data(&r)[4..]
        .iter()
        .enumerate()
        .all(|(i, &b)| b == ((65536 + i) % 251) as u8));
    // Extended Lc: 300 bytes written at offset 1000 (03E8).
    let mut cmd = vec![0, 0xD6, 0x03, 0xE8, 0, 0x01, 0x2C];
    cmd.extend(std::iter::repeat_n(0xAB, 300));
    assert_eq!(c.process_apdu(&cmd), vec![0x90, 0x00]);
    let r = c.process_apdu(&[0, 0xB0, 0x03, 0xE7, 0, 0x01, 0x2E]);
    assert_eq!(data(&r).len(), 302);
    assert_eq!(
        (data(&r)[0], data(&r)[1], data(&r)[300], data(&r)[301]),
        ((999 % 251) as u8, 0xAB, 0xAB, (1300 % 251) as u8)
    );
    // Inconsistent extended lengths.
    assert_eq!(
        c.process_apdu(&[0, 0xD6, 0, 0, 0, 0, 3, 1, 2]),
        vec![0x67, 0x00]
    );
}

#[test]
fn records() {
    let mut c = card();
    select_path(&mut c, &[0x50, 0x00]);
    // SFI 2 in P2 (0001 0xxx), mode 100 = record P1.
    assert_eq!(data(&c.process_apdu(&[0, 0xB2, 2, 0x14, 0])), &[2u8; 16]);
    assert_eq!(sw(&c.process_apdu(&[0, 0xB2, 4, 0x14, 0])), 0x6A83);
    assert_eq!(sw(&c.process_apdu(&[0, 0xB2, 1, 0x17, 0])), 0x6A86);
    assert_eq!(sw(&c.process_apdu(&[0, 0xB2, 1, 0x14])), 0x6700);
    // No current record yet; next = first, next, previous, current.
    assert_eq!(sw(&c.process_apdu(&[0, 0xB2, 0, 0x04, 0])), 0x6A83);
    assert_eq!(data(&c.process_apdu(&[0, 0xB2, 0, 0x02, 0])), &[1u8; 16]);
    assert_eq!(data(&c.process_apdu(&[0, 0xB2, 0, 0x02, 0])), &[2u8; 16]);
    assert_eq!(data(&c.process_apdu(&[0, 0xB2, 0, 0x03, 0])), &[1u8; 16]);
    assert_eq!(data(&c.process_apdu(&[0, 0xB2, 0, 0x04, 0])), &[1u8; 16]);
    assert_eq!(
        data(&c.process_apdu(&[0, 0xB2, 0, 0x01, 0])),
        &[3u8; 16],
        "last"
    );
    assert_eq!(
        sw(&c.process_apdu(&[0, 0xB2, 0, 0x02, 0])),
        0x6A83,
        "no next after last"
    );
    // Records 2 to last (mode 101), and last down to 2 (mode 110).
    let all: Vec<u8> = [[2u8; 16], [3u8; 16]].concat();
    assert_eq!(data(&c.process_apdu(&[0, 0xB2, 2, 0x05, 0])), &all[..]);
    let rev: Vec<u8> = [[3u8; 16], [2u8; 16]].concat();
    assert_eq!(data(&c.process_apdu(&[0, 0xB2, 2, 0x06, 0])), &rev[..]);
    // Explicit Le longer than the record: 6282.
    assert_eq!(sw(&c.process_apdu(&[0, 0xB2, 1, 0x14, 0x20])), 0x6282);
    // Transparent EF through SFI 1 → 6981 only after access; SFI 16 is free.
    assert_eq!(sw(&c.process_apdu(&[0, 0xB2, 1, 0x84, 0])), 0x6981);
    // UPDATE RECORD: fixed size 16.
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xDC, 2, 0x14], &[7; 16], None))),
        0x9000
    );
    assert_eq!(data(&c.process_apdu(&[0, 0xB2, 2, 0x14, 0])), &[7u8; 16]);
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xDC, 2, 0x14], &[7; 5], None))),
        0x6700
    );
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xDC, 9, 0x14], &[7; 16], None))),
        0x6A83
    );
    // APPEND RECORD until full (max 5).
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xE2, 0, 0x10], &[0xAA; 16], None))),
        0x9000
    );
    assert_eq!(
        data(&c.process_apdu(&[0, 0xB2, 0, 0x14, 0])),
        &[0xAA; 16],
        "appended is current"
    );
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xE2, 0, 0x10], &[0xBB; 16], None))),
        0x9000
    );
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xE2, 0, 0x10], &[0xCC; 16], None))),
        0x6A84
    );
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xE2, 0, 0x11], &[0xCC; 16], None))),
        0x6A86
    );
    // Linear variable file 5003 (SFI 3).
    assert_eq!(
        data(&c.process_apdu(&[0, 0xB2, 2, 0x1C, 0])),
        b"second record"
    );
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xDC, 1, 0x1C], b"1st", None))),
        0x9000
    );
    assert_eq!(data(&c.process_apdu(&[0, 0xB2, 1, 0x1C, 0])), b"1st");
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0xE2, 0, 0x18], b"third", None))),
        0x9000
    );
    assert_eq!(data(&c.process_apdu(&[0, 0xB2, 3, 0x1C, 0])), b"third");
    // Record command on a transparent EF.
    select_path(&mut c, &[0x2F, 0x00]);
    assert_eq!(sw(&c.process_apdu(&[0, 0xB2, 1, 0x04, 0])), 0x6981);
}

#[test]
fn verify_change_reset() {
    let mut c = card();
    let verify = |pin: &[u8]| apdu([0, 0x20, 0, 0x81], pin, None);
    assert_eq!(c.process_apdu(&[0, 0x20, 0, 0x81]), vec![0x63, 0xC3]);
    assert_eq!(c.process_apdu(&verify(b"000000")), vec![0x63, 0xC2]);
    assert_eq!(c.process_apdu(&verify(b"123456")), vec![0x90, 0x00]);
    assert_eq!(
        c.process_apdu(&[0, 0x20, 0, 0x81]),
        vec![0x90, 0x00],
        "already verified"
    );
    assert_eq!(
        c.process_apdu(&[0, 0x20, 0xFF, 0x81]),
        vec![0x90, 0x00],
        "reset security status"
    );
    assert_eq!(
        c.process_apdu(&[0, 0x20, 0, 0x81]),
        vec![0x63, 0xC3],
        "tries were reset"
    );
    assert_eq!(sw(&c.process_apdu(&verify(b"1"))), 0x63C2);
    assert_eq!(sw(&c.process_apdu(&verify(b"2"))), 0x63C1);
    assert_eq!(sw(&c.process_apdu(&verify(b"3"))), 0x63C0);
    assert_eq!(sw(&c.process_apdu(&verify(b"123456"))), 0x6983, "blocked");
    assert_eq!(sw(&c.process_apdu(&[0, 0x20, 0, 0x81])), 0x6983);
    assert_eq!(sw(&c.process_apdu(&[0, 0x20, 0, 0x85])), 0x6A88);
    assert_eq!(sw(&c.process_apdu(&[0, 0x20, 0x01, 0x81])), 0x6A86);
    // RESET RETRY COUNTER with PUK + new PIN.
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0x2C, 0, 0x81], b"00000000654321", None))),
        0x63C4
    );
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0x2C, 0, 0x81], b"12345678654321", None))),
        0x9000
    );
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0x2C, 0, 0x81], b"1234567865", None))),
        0x6A80,
        "PIN too short"
    );
    assert_eq!(sw(&c.process_apdu(&verify(b"654321"))), 0x9000);
    // CHANGE REFERENCE DATA: old || new.
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0x24, 0, 0x81], b"1111112222", None))),
        0x63C2
    );
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0x24, 0, 0x81], b"6543212222", None))),
        0x9000
    );
    assert_eq!(sw(&c.process_apdu(&verify(b"2222"))), 0x9000);
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0x24, 0, 0x82], b"22223333", None))),
        0x6A88
    );
    // RESET RETRY COUNTER P1=01: PUK only, unblocks.
    for _ in 0..3 {
        c.process_apdu(&verify(b"9"));
    }
    assert_eq!(sw(&c.process_apdu(&[0, 0x20, 0, 0x81])), 0x6983);
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0x2C, 0x01, 0x81], b"12345678", None))),
        0x9000
    );
    assert_eq!(sw(&c.process_apdu(&verify(b"2222"))), 0x9000);
}

/// SplitMix64 reference outputs for seed 1234567 (published test vector).
const SPLITMIX_1234567: [u64; 2] = [6457827717110365317, 3203168211198807973];

#[test]
fn get_challenge_is_seeded_splitmix64() {
    let mut c = card();
    let r = c.process_apdu(&[0, 0x84, 0, 0, 16]);
    let expected: Vec<u8> = SPLITMIX_1234567
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(r, [&expected[..], &[0x90, 0x00]].concat());
    assert_eq!(data(&c.process_apdu(&[0, 0x84, 0, 0, 0])).len(), 256);
    assert_eq!(sw(&c.process_apdu(&[0, 0x84, 1, 0, 8])), 0x6A86);
    assert_eq!(sw(&c.process_apdu(&[0, 0x84, 0, 0])), 0x6700);
}

fn hmac(key: &[u8], challenge: &[u8], counter: u32) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(challenge);
    mac.update(&counter.to_be_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[test]
fn internal_authenticate_is_documented_hmac() {
    let mut c = card();
    let key = b"ferroccid-sim-internal-auth-key!";
    let challenge = [1, 2, 3, 4, 5, 6, 7, 8];
    let r = c.process_apdu(&apdu([0, 0x88, 0, 0], &challenge, Some(0)));
    assert_eq!(data(&r), &hmac(key, &challenge, 1)[..]);
    let r = c.process_apdu(&apdu([0, 0x88, 0, 0], &challenge, Some(40)));
    assert_eq!(
        data(&r),
        &[
            hmac(key, &challenge, 1),
            hmac(key, &challenge, 2)[..8].to_vec()
        ]
        .concat()[..]
    );
    assert_eq!(sw(&c.process_apdu(&[0, 0x88, 0, 0, 0])), 0x6700);
    assert_eq!(
        sw(&c.process_apdu(&apdu([0, 0x88, 0, 1], &challenge, Some(0)))),
        0x6A86
    );
}

#[test]
fn class_instruction_and_length_errors() {
    let mut c = card();
    assert_eq!(c.process_apdu(&[0x80, 0xA4, 0, 0]), vec![0x6E, 0x00]);
    assert_eq!(c.process_apdu(&[0x01, 0xA4, 0, 0]), vec![0x68, 0x81]);
    assert_eq!(c.process_apdu(&[0x0C, 0xA4, 0, 0]), vec![0x68, 0x82]);
    assert_eq!(c.process_apdu(&[0x10, 0xA4, 0, 0]), vec![0x68, 0x84]);
    assert_eq!(c.process_apdu(&[0x00, 0x50, 0, 0]), vec![0x6D, 0x00]);
    assert_eq!(c.process_apdu(&[0x00, 0xA4, 0, 0, 5, 1]), vec![0x67, 0x00]);
    assert_eq!(c.process_apdu(&[0x00, 0xA4]), vec![0x67, 0x00]);
    assert_eq!(
        c.process_apdu(&[0x00, 0xC0, 0, 0, 0]),
        vec![0x69, 0x85],
        "GET RESPONSE at APDU level"
    );
    c.power_off();
    assert!(
        c.process_apdu(&[0x00, 0xA4, 0, 0]).is_empty(),
        "unpowered card is silent"
    );
}

#[test]
fn dropped_apdu() {
    let mut config = CardConfig::dual();
    config.faults.drop_ins = Some(0x84);
    let mut c = VirtualCard::new(config);
    c.power_on().unwrap();
    assert!(c.process_apdu(&[0, 0x84, 0, 0, 8]).is_empty());
    assert_eq!(data(&c.process_apdu(&[0, 0x84, 0, 0, 8])).len(), 8);
}
