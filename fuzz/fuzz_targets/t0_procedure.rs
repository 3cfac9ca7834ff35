//! The T=0 procedure-byte machine fed arbitrary card bytes: never panics,
//! never transfers more data than P3 announced, and reports data bytes in
//! order.
//!
//! Input: the 5-byte header, a direction byte, then the card's bytes.
#![no_main]

use ferroccid_protocols::t0::{Direction, ProcedureEvent, ProcedureMachine};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[cla, ins, p1, p2, p3, dir], card)) = data.split_first_chunk::<6>() else {
        return;
    };
    let direction = if dir & 1 == 0 {
        Direction::ToCard
    } else {
        Direction::FromCard
    };
    let Ok(mut m) = ProcedureMachine::new([cla, ins, p1, p2, p3], direction) else {
        assert!(matches!(ins >> 4, 0x6 | 0x9), "only INS 6X/9X is refused");
        return;
    };
    let total = match (direction, p3) {
        (Direction::FromCard, 0) => 256,
        (_, n) => usize::from(n),
    };
    assert_eq!(m.remaining(), total);
    let (mut sent, mut received, mut expecting) = (0usize, 0usize, 0usize);
    let mut nulls = 0u32;
    for &byte in card {
        let event = match m.feed(byte) {
            Ok(event) => event,
            Err(_) => break,
        };
        match event {
            ProcedureEvent::Null => nulls += 1,
            ProcedureEvent::SendData { offset, len } => {
                assert_eq!(direction, Direction::ToCard);
                assert_eq!(offset, sent);
                assert!(len >= 1);
                sent += len;
            }
            ProcedureEvent::ExpectData { len } => {
                assert_eq!(direction, Direction::FromCard);
                assert_eq!(expecting, 0, "ACK while data was still due");
                assert!(len >= 1);
                expecting = len;
            }
            ProcedureEvent::Data { byte: b, offset } => {
                assert_eq!(b, byte);
                assert_eq!(offset, received);
                assert!(expecting > 0, "data byte nobody announced");
                expecting -= 1;
                received += 1;
            }
            ProcedureEvent::AwaitSw2 => assert_eq!(expecting, 0),
            ProcedureEvent::Done { .. } => assert!(m.is_done()),
        }
        assert!(sent + received <= total, "more data than P3 announced");
        assert_eq!(m.transferred(), sent + received);
        assert_eq!(m.null_count(), nulls);
    }
});
