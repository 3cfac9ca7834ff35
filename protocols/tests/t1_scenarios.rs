//! T=1 engine scenarios against an independent card model
//! (`t1_card_model.rs`, which builds and parses blocks by hand).

mod t1_card_model;

use ferroccid_protocols::edc::Edc;
use ferroccid_protocols::t1::{Progress, T1Config, T1Error, T1};
use t1_card_model::{block, reverse_app, run, Card, Fault, Run};

fn t1(ifsc: u8) -> T1 {
    T1::new(T1Config {
        ifsc,
        ..T1Config::default()
    })
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Runs `cmd` and checks the card's answer arrived intact.
fn assert_ok(run: &Run, cmd: &[u8], resp: &[u8], card: &Card) {
    let expected = reverse_app(cmd);
    assert_eq!(
        run.result,
        Ok(Progress::Complete(expected.len())),
        "{run:?}"
    );
    assert_eq!(&resp[..expected.len()], &expected[..]);
    assert_eq!(card.commands.last().map(|c| &c[..]), Some(cmd));
    assert!(card.violations.is_empty(), "{:?}", card.violations);
}

const SELECT: [u8; 5] = [0x00, 0xA4, 0x04, 0x00, 0x00];

#[test]
fn simple_exchange_bytes_on_the_wire() {
    let mut t1 = t1(32);
    let mut card = Card::new(32);
    let mut resp = [0u8; 64];
    let r = run(&mut t1, &mut card, &SELECT, &mut resp, &[], &[]);
    assert_ok(&r, &SELECT, &resp, &card);
    // I(0, no more), LEN 5, LRC = 05 ^ A4 ^ 04 = A5.
    assert_eq!(
        r.host_blocks,
        vec![vec![0x00, 0x00, 0x05, 0x00, 0xA4, 0x04, 0x00, 0x00, 0xA5]]
    );
    // Second APDU uses N(S) = 1 on both sides.
    let r = run(&mut t1, &mut card, &SELECT, &mut resp, &[], &[]);
    assert_ok(&r, &SELECT, &resp, &card);
    assert_eq!(r.host_blocks[0][1], 0x40);
}

#[test]
fn crc_exchange() {
    let mut t1 = T1::new(T1Config {
        edc: Edc::Crc,
        ..T1Config::default()
    });
    let mut card = Card::new(32);
    card.crc = true;
    let cmd = pattern(70);
    let mut resp = [0u8; 128];
    let r = run(
        &mut t1,
        &mut card,
        &cmd,
        &mut resp,
        &[],
        &[(1, Fault::Corrupt)],
    );
    assert_ok(&r, &cmd, &resp, &card);
    assert_eq!(r.host_blocks[0], block(true, 0x20, &cmd[..32]));
}

#[test]
fn lost_i_block_is_recovered() {
    let mut t1 = t1(32);
    let mut card = Card::new(32);
    let mut resp = [0u8; 64];
    let r = run(
        &mut t1,
        &mut card,
        &SELECT,
        &mut resp,
        &[(0, Fault::Drop)],
        &[],
    );
    assert_ok(&r, &SELECT, &resp, &card);
    // Timeout → R(N(R)=0, other error); the card asks for I(0) again.
    assert_eq!(r.host_blocks[1], vec![0x00, 0x82, 0x00, 0x82]);
    assert_eq!(r.host_blocks[2], r.host_blocks[0]);
    assert_eq!(r.host_blocks.len(), 3);
}

#[test]
fn corrupted_i_block_is_retransmitted() {
    let mut t1 = t1(32);
    let mut card = Card::new(32);
    let mut resp = [0u8; 64];
    let r = run(
        &mut t1,
        &mut card,
        &SELECT,
        &mut resp,
        &[(0, Fault::Corrupt)],
        &[],
    );
    assert_ok(&r, &SELECT, &resp, &card);
    // The card answered R(0) with EDC error; the host resent I(0).
    assert_eq!(r.host_blocks.len(), 2);
    assert_eq!(r.host_blocks[1], r.host_blocks[0]);
}

#[test]
fn corrupted_and_lost_card_i_block() {
    for fault in [Fault::Corrupt, Fault::Drop] {
        let mut t1 = t1(32);
        let mut card = Card::new(32);
        let mut resp = [0u8; 64];
        let r = run(&mut t1, &mut card, &SELECT, &mut resp, &[], &[(0, fault)]);
        assert_ok(&r, &SELECT, &resp, &card);
        // R(N(R)=0) with error 1 (EDC) or 2 (timeout).
        let err = if fault == Fault::Corrupt { 0x81 } else { 0x82 };
        assert_eq!(r.host_blocks[1], vec![0x00, err, 0x00, err]);
    }
}

#[test]
fn lost_and_corrupted_card_r_block_in_host_chain() {
    for fault in [Fault::Drop, Fault::Corrupt] {
        let mut t1 = t1(16);
        let mut card = Card::new(16);
        let cmd = pattern(40);
        let mut resp = [0u8; 64];
        let r = run(&mut t1, &mut card, &cmd, &mut resp, &[], &[(0, fault)]);
        assert_ok(&r, &cmd, &resp, &card);
        // I(0,M) of 16, [R lost/corrupt], R from host, I(1,M), I(0).
        assert_eq!(r.host_blocks[0], block(false, 0x20, &cmd[..16]));
        assert_eq!(r.host_blocks[1][1] & 0xE0, 0x80, "host R-block");
        assert_eq!(r.host_blocks[2], block(false, 0x60, &cmd[16..32]));
        assert_eq!(r.host_blocks[3], block(false, 0x00, &cmd[32..]));
    }
}

#[test]
fn lost_and_corrupted_host_r_block_in_card_chain() {
    for fault in [Fault::Drop, Fault::Corrupt] {
        let mut t1 = t1(254);
        let mut card = Card::new(254);
        let cmd = pattern(100);
        let mut resp = [0u8; 200];
        // Host block 1 is the first R-ack of the card's 102-byte chain.
        let r = run(&mut t1, &mut card, &cmd, &mut resp, &[(1, fault)], &[]);
        assert_ok(&r, &cmd, &resp, &card);
        assert_eq!(r.host_blocks[1], vec![0x00, 0x90, 0x00, 0x90]);
    }
}

#[test]
fn chaining_both_directions() {
    let mut t1 = t1(32);
    let mut card = Card::new(32);
    let cmd = pattern(300);
    let mut resp = [0u8; 400];
    let r = run(&mut t1, &mut card, &cmd, &mut resp, &[], &[]);
    assert_ok(&r, &cmd, &resp, &card);
    // ceil(300/32) = 10 I-blocks, then ceil(302/32) - 1 = 9 R-acks.
    assert_eq!(r.host_blocks.len(), 10 + 9);
    for (i, b) in r.host_blocks[..10].iter().enumerate() {
        let more = if i < 9 { 0x20 } else { 0 };
        assert_eq!(b[1], ((i as u8 & 1) << 6) | more);
        assert_eq!(b[2] as usize, if i < 9 { 32 } else { 12 });
    }
}

#[test]
fn extended_apdu_65544_bytes() {
    let mut t1 = t1(254);
    let mut card = Card::new(254);
    card.ifsd = 254;
    let cmd = pattern(65_544);
    let mut resp = vec![0u8; 65_546];
    let r = run(&mut t1, &mut card, &cmd, &mut resp, &[], &[]);
    assert_ok(&r, &cmd, &resp, &card);
}

#[test]
fn response_buffer_too_small_names_sizes() {
    let mut t1 = t1(32);
    let mut card = Card::new(32);
    let cmd = pattern(40);
    let mut resp = [0u8; 20];
    let r = run(&mut t1, &mut card, &cmd, &mut resp, &[], &[]);
    assert_eq!(
        r.result,
        Err(T1Error::ResponseBufferTooSmall {
            capacity: 20,
            needed_at_least: 32
        })
    );
}

#[test]
fn card_wtx_one_and_several() {
    for wtx in [vec![3u8], vec![1, 200, 7]] {
        let mut t1 = t1(32);
        let mut card = Card::new(32);
        card.wtx = wtx.clone();
        let mut resp = [0u8; 64];
        let r = run(&mut t1, &mut card, &SELECT, &mut resp, &[], &[]);
        assert_ok(&r, &SELECT, &resp, &card);
        assert_eq!(r.wtx, wtx);
        for (i, m) in wtx.iter().enumerate() {
            // S(WTX response) echoes the INF: 00 E3 01 m LRC.
            assert_eq!(
                r.host_blocks[1 + i],
                vec![0x00, 0xE3, 0x01, *m, 0xE3 ^ 0x01 ^ m]
            );
        }
    }
}

#[test]
fn lost_wtx_response_is_recovered() {
    let mut t1 = t1(32);
    let mut card = Card::new(32);
    card.wtx = vec![2];
    let mut resp = [0u8; 64];
    let r = run(
        &mut t1,
        &mut card,
        &SELECT,
        &mut resp,
        &[(1, Fault::Drop)],
        &[],
    );
    assert_ok(&r, &SELECT, &resp, &card);
    assert_eq!(r.wtx, vec![2, 2]);
}

#[test]
fn ifsc_change_in_the_middle_of_a_chain() {
    let mut t1 = t1(32);
    let mut card = Card::new(32);
    card.ifs_change_at_rx_block = Some((1, 10));
    let cmd = pattern(100);
    let mut resp = [0u8; 128];
    let r = run(&mut t1, &mut card, &cmd, &mut resp, &[], &[]);
    assert_ok(&r, &cmd, &resp, &card);
    assert_eq!(r.host_blocks[1], vec![0x00, 0xE1, 0x01, 0x0A, 0xEA]);
    // 32 bytes before the change, then 68 bytes in blocks of 10.
    let sizes: Vec<u8> = r.host_blocks[2..9].iter().map(|b| b[2]).collect();
    assert_eq!(sizes, vec![10, 10, 10, 10, 10, 10, 8]);
    assert_eq!(t1.ifsc(), 10);
}

#[test]
fn ifsc_change_then_retransmission_is_rechunked() {
    let mut t1 = t1(32);
    let mut card = Card::new(32);
    card.ifs_change_at_rx_block = Some((1, 10));
    let cmd = pattern(100);
    let mut resp = [0u8; 128];
    // Corrupt the first block after the IFS exchange: the card asks for it
    // again, and it must come back within the new IFSC.
    let r = run(
        &mut t1,
        &mut card,
        &cmd,
        &mut resp,
        &[(2, Fault::Corrupt)],
        &[],
    );
    assert_ok(&r, &cmd, &resp, &card);
}

#[test]
fn resynch_after_three_failures_then_success() {
    let mut t1 = t1(32);
    let mut card = Card::new(32);
    let mut resp = [0u8; 64];
    let faults = [(0, Fault::Drop), (1, Fault::Drop), (2, Fault::Drop)];
    let r = run(&mut t1, &mut card, &SELECT, &mut resp, &faults, &[]);
    assert_ok(&r, &SELECT, &resp, &card);
    assert_eq!(r.host_blocks[3], vec![0x00, 0xC0, 0x00, 0xC0]);
    assert_eq!(card.resynchs, 1);
    // After RESYNCH the APDU starts again with N(S) = 0.
    assert_eq!(r.host_blocks[4], r.host_blocks[0]);
    assert_eq!(t1.send_sequence(), 1);
}

#[test]
fn resynch_resets_sequence_numbers_and_ifs() {
    let mut t1 = t1(32);
    let mut card = Card::new(32);
    card.ifs_change_at_rx_block = Some((1, 20));
    let cmd = pattern(50);
    let mut resp = [0u8; 64];
    run(&mut t1, &mut card, &cmd, &mut resp, &[], &[]);
    assert_eq!(t1.ifsc(), 20);
    let mut x = t1.resynch();
    let mut buf = [0u8; 8];
    assert_eq!(x.poll_transmit(&mut buf), Ok(4));
    assert_eq!(&buf[..4], &[0x00, 0xC0, 0x00, 0xC0]);
    assert_eq!(
        x.handle_block(&[0x00, 0xE0, 0x00, 0xE0]),
        Ok(Progress::Complete(0))
    );
    assert_eq!((t1.send_sequence(), t1.receive_sequence()), (0, 0));
    assert_eq!(t1.ifsc(), 32);
}

#[test]
fn card_stuck_on_wrong_nr_ends_with_error() {
    let mut t1 = t1(32);
    let mut card = Card::new(32);
    let cmd = pattern(60);
    let mut resp = [0u8; 64];
    // Get past N(S)=0 first so that R(0) is a wrong N(R) for the chain.
    run(&mut t1, &mut card, &SELECT, &mut resp, &[], &[]);
    card.stuck_r0 = true;
    let r = run(&mut t1, &mut card, &cmd, &mut resp, &[], &[]);
    assert_eq!(r.result, Err(T1Error::CardNotResponding));
    // 3 attempts, then 3 RESYNCH requests: a handful of blocks, not a loop.
    assert!(r.steps <= 10, "{} steps", r.steps);
    let resynchs = r.host_blocks.iter().filter(|b| b[1] == 0xC0).count();
    assert_eq!(resynchs, 3);
}

#[test]
fn card_that_never_answers() {
    let mut t1 = t1(32);
    let mut card = Card::new(32);
    card.silent = true;
    let mut resp = [0u8; 64];
    let r = run(&mut t1, &mut card, &SELECT, &mut resp, &[], &[]);
    assert_eq!(r.result, Err(T1Error::CardNotResponding));
    // I(0), R, R (three attempts), then three S(RESYNCH request).
    let pcbs: Vec<u8> = r.host_blocks.iter().map(|b| b[1]).collect();
    assert_eq!(pcbs, vec![0x00, 0x82, 0x82, 0xC0, 0xC0, 0xC0]);
    assert_eq!(r.steps, 6);
}

#[test]
fn card_abort_of_host_chain() {
    let mut t1 = t1(16);
    let mut card = Card::new(16);
    card.abort_at_rx_block = Some(2);
    let cmd = pattern(60);
    let mut resp = [0u8; 64];
    let r = run(&mut t1, &mut card, &cmd, &mut resp, &[], &[]);
    assert_eq!(r.result, Ok(Progress::Aborted));
    assert_eq!(r.host_blocks.last().unwrap(), &vec![0x00, 0xE2, 0x00, 0xE2]);
}

#[test]
fn card_resynch_request_is_refused() {
    // Rule 6: only the interface device sends S(RESYNCH request).
    let mut t1 = t1(32);
    let mut resp = [0u8; 64];
    let mut x = t1.exchange(&SELECT, &mut resp);
    let mut buf = [0u8; 259];
    x.poll_transmit(&mut buf).unwrap();
    assert_eq!(
        x.handle_block(&[0x00, 0xC0, 0x00, 0xC0]),
        Ok(Progress::Transmit)
    );
    let n = x.poll_transmit(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0x00, 0x82, 0x00, 0x82]);
}

#[test]
fn unsolicited_s_response_and_bad_ifs_are_errors() {
    let mut t1 = t1(32);
    let mut resp = [0u8; 64];
    let mut x = t1.exchange(&SELECT, &mut resp);
    let mut buf = [0u8; 259];
    x.poll_transmit(&mut buf).unwrap();
    // S(IFS request) with the reserved value 255.
    x.handle_block(&[0x00, 0xC1, 0x01, 0xFF, 0x3F]).unwrap();
    let n = x.poll_transmit(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0x00, 0x82, 0x00, 0x82]);
    // S(WTX response) the host never asked for.
    x.handle_block(&[0x00, 0xE3, 0x01, 0x01, 0xE3]).unwrap();
    let n = x.poll_transmit(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0x00, 0x82, 0x00, 0x82]);
}

#[test]
fn ifsd_negotiation() {
    let mut t1 = t1(32);
    let mut card = Card::new(32);
    assert_eq!(t1.ifsd(), 32);
    let mut buf = [0u8; 8];
    assert_eq!(t1.ifsd_request(&mut buf), Ok(5));
    assert_eq!(&buf[..5], &[0x00, 0xC1, 0x01, 0xFE, 0x3E]);
    let mut x = t1.negotiate_ifsd();
    // First request lost, second answered.
    assert_eq!(x.poll_transmit(&mut buf), Ok(5));
    assert_eq!(x.handle_timeout(), Ok(Progress::Transmit));
    assert_eq!(x.poll_transmit(&mut buf), Ok(5));
    let answer = card.on_block(&buf[..5]).unwrap();
    assert_eq!(answer, vec![0x00, 0xE1, 0x01, 0xFE, 0x1E]);
    assert_eq!(x.handle_block(&answer), Ok(Progress::Complete(0)));
    assert_eq!(t1.ifsd(), 254);
    assert_eq!(card.ifsd, 254);
    // The single-step helper accepts the same answer.
    assert_eq!(t1.accept_ifs_response(&answer), Ok(()));
}

#[test]
fn pin_pad_single_block_helpers() {
    let mut t1 = t1(32);
    let mut card = Card::new(32);
    let verify = [0x00, 0x20, 0x00, 0x81, 0x08, 1, 2, 3, 4, 5, 6, 7, 8];
    let mut buf = [0u8; 259];
    let n = t1.wrap_single(&verify, &mut buf).unwrap();
    assert_eq!(&buf[..n], &block(false, 0x00, &verify)[..]);
    let answer = card.on_block(&buf[..n]).unwrap();
    assert_eq!(t1.unwrap_single(&answer), Ok(&reverse_app(&verify)[..]));
    assert_eq!((t1.send_sequence(), t1.receive_sequence()), (1, 1));
    assert_eq!(
        t1.wrap_single(&[0u8; 33], &mut buf),
        Err(T1Error::TooLongForOneBlock { len: 33, ifsc: 32 })
    );
    // The next APDU through the engine continues the sequence.
    let mut resp = [0u8; 64];
    let r = run(&mut t1, &mut card, &SELECT, &mut resp, &[], &[]);
    assert_ok(&r, &SELECT, &resp, &card);
}

#[test]
fn finished_exchange_refuses_input() {
    let mut t1 = t1(32);
    let mut resp = [0u8; 8];
    let mut x = t1.exchange(&SELECT, &mut resp);
    let mut buf = [0u8; 259];
    x.poll_transmit(&mut buf).unwrap();
    assert_eq!(
        x.handle_block(&[0x00, 0x00, 0x02, 0x90, 0x00, 0x92]),
        Ok(Progress::Complete(2))
    );
    assert!(x.is_finished());
    assert_eq!(x.poll_transmit(&mut buf), Ok(0));
    assert_eq!(x.handle_timeout(), Err(T1Error::Finished));
    assert_eq!(resp[..2], [0x90, 0x00]);
}
