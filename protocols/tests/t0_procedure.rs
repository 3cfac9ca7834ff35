//! The T=0 procedure-byte machine of ISO/IEC 7816-3 §10.3.3, fed byte by
//! byte as a character-level reader would.

use ferroccid_protocols::t0::{Direction, ProcedureError, ProcedureEvent, ProcedureMachine};

/// Feeds `bytes` and returns the events, stopping at the first error.
fn run(
    machine: &mut ProcedureMachine,
    bytes: &[u8],
) -> Vec<Result<ProcedureEvent, ProcedureError>> {
    let mut events = Vec::new();
    for &b in bytes {
        let e = machine.feed(b);
        let stop = e.is_err();
        events.push(e);
        if stop {
            break;
        }
    }
    events
}

#[test]
fn case_3_ack_ins_sends_all_data() {
    // UPDATE BINARY, Lc = 4: card ACKs with INS (D6), then 90 00.
    let mut m = ProcedureMachine::new([0x00, 0xD6, 0x00, 0x00, 0x04], Direction::ToCard).unwrap();
    assert_eq!(
        m.feed(0xD6),
        Ok(ProcedureEvent::SendData { offset: 0, len: 4 })
    );
    assert_eq!(m.remaining(), 0);
    assert_eq!(m.feed(0x90), Ok(ProcedureEvent::AwaitSw2));
    assert_eq!(
        m.feed(0x00),
        Ok(ProcedureEvent::Done {
            sw1: 0x90,
            sw2: 0x00
        })
    );
    assert!(m.is_done());
}

#[test]
fn case_3_ack_complement_sends_one_byte_at_a_time() {
    // INS D6 ⊕ FF = 29: one byte per ACK, then INS for the rest.
    let mut m = ProcedureMachine::new([0x00, 0xD6, 0x00, 0x00, 0x03], Direction::ToCard).unwrap();
    assert_eq!(
        m.feed(0x29),
        Ok(ProcedureEvent::SendData { offset: 0, len: 1 })
    );
    assert_eq!(m.feed(0x60), Ok(ProcedureEvent::Null));
    assert_eq!(
        m.feed(0x29),
        Ok(ProcedureEvent::SendData { offset: 1, len: 1 })
    );
    assert_eq!(
        m.feed(0xD6),
        Ok(ProcedureEvent::SendData { offset: 2, len: 1 })
    );
    assert_eq!(m.null_count(), 1);
    let tail = run(&mut m, &[0x90, 0x00]);
    assert_eq!(
        tail.last(),
        Some(&Ok(ProcedureEvent::Done {
            sw1: 0x90,
            sw2: 0x00
        }))
    );
}

#[test]
fn case_2_receives_data_including_bytes_that_look_like_procedure_bytes() {
    // GET CHALLENGE, Le = 4: ACK 84, four data bytes (60 and 90 among
    // them are data, not NULL or SW1), then 90 00.
    let mut m = ProcedureMachine::new([0x00, 0x84, 0x00, 0x00, 0x04], Direction::FromCard).unwrap();
    assert_eq!(m.feed(0x84), Ok(ProcedureEvent::ExpectData { len: 4 }));
    let data = [0x60, 0x90, 0x84, 0x7B];
    for (i, &b) in data.iter().enumerate() {
        assert_eq!(m.feed(b), Ok(ProcedureEvent::Data { byte: b, offset: i }));
    }
    assert_eq!(m.feed(0x90), Ok(ProcedureEvent::AwaitSw2));
    assert_eq!(
        m.feed(0x00),
        Ok(ProcedureEvent::Done {
            sw1: 0x90,
            sw2: 0x00
        })
    );
    assert_eq!(m.transferred(), 4);
}

#[test]
fn case_2_le_00_announces_256_bytes() {
    let m = ProcedureMachine::new([0x00, 0xB0, 0x00, 0x00, 0x00], Direction::FromCard).unwrap();
    assert_eq!(m.remaining(), 256);
    // Case 1 carries P3 = 00 towards the card: no data at all.
    let m = ProcedureMachine::new([0x00, 0x70, 0x00, 0x00, 0x00], Direction::ToCard).unwrap();
    assert_eq!(m.remaining(), 0);
}

#[test]
fn case_2_single_byte_acks() {
    let mut m = ProcedureMachine::new([0x00, 0xB0, 0x00, 0x00, 0x02], Direction::FromCard).unwrap();
    assert_eq!(m.feed(0x4F), Ok(ProcedureEvent::ExpectData { len: 1 }));
    assert_eq!(
        m.feed(0xAA),
        Ok(ProcedureEvent::Data {
            byte: 0xAA,
            offset: 0
        })
    );
    assert_eq!(m.feed(0x4F), Ok(ProcedureEvent::ExpectData { len: 1 }));
    assert_eq!(
        m.feed(0xBB),
        Ok(ProcedureEvent::Data {
            byte: 0xBB,
            offset: 1
        })
    );
    assert_eq!(m.feed(0x62), Ok(ProcedureEvent::AwaitSw2));
    assert_eq!(
        m.feed(0x82),
        Ok(ProcedureEvent::Done {
            sw1: 0x62,
            sw2: 0x82
        })
    );
}

#[test]
fn early_status_word_aborts_the_transfer() {
    // Wrong length: the card answers 6C 08 before any ACK.
    let mut m = ProcedureMachine::new([0x00, 0x84, 0x00, 0x00, 0x10], Direction::FromCard).unwrap();
    let events = run(&mut m, &[0x60, 0x60, 0x6C, 0x08]);
    assert_eq!(
        events.last(),
        Some(&Ok(ProcedureEvent::Done {
            sw1: 0x6C,
            sw2: 0x08
        }))
    );
    assert_eq!(m.null_count(), 2);
    assert_eq!(m.transferred(), 0);
}

#[test]
fn errors_name_the_byte() {
    let mut m = ProcedureMachine::new([0x00, 0xD6, 0x00, 0x00, 0x01], Direction::ToCard).unwrap();
    assert_eq!(m.feed(0x42), Err(ProcedureError::UnexpectedByte(0x42)));

    // ACK once all data has gone.
    let mut m = ProcedureMachine::new([0x00, 0xD6, 0x00, 0x00, 0x01], Direction::ToCard).unwrap();
    assert!(m.feed(0xD6).is_ok());
    assert_eq!(m.feed(0xD6), Err(ProcedureError::AckWithoutData(0xD6)));
    let mut m = ProcedureMachine::new([0x00, 0x70, 0x00, 0x00, 0x00], Direction::ToCard).unwrap();
    assert_eq!(m.feed(0x8F), Err(ProcedureError::AckWithoutData(0x8F)));

    // Anything after SW2.
    let mut m = ProcedureMachine::new([0x00, 0x70, 0x00, 0x00, 0x00], Direction::ToCard).unwrap();
    assert!(run(&mut m, &[0x90, 0x00]).iter().all(Result::is_ok));
    assert_eq!(m.feed(0x90), Err(ProcedureError::AfterCompletion(0x90)));
}

#[test]
fn ins_6x_and_9x_are_refused() {
    for ins in [0x60, 0x6F, 0x90, 0x9F] {
        assert_eq!(
            ProcedureMachine::new([0x00, ins, 0, 0, 0], Direction::ToCard),
            Err(ProcedureError::InvalidIns(ins))
        );
    }
}

#[test]
fn null_bytes_forever_end_with_an_error() {
    // Each NULL restarts WWT: a card sending them forever held the TPDU
    // forever; the machine now fails after MAX_NULLS of them.
    let mut m = ProcedureMachine::new([0x00, 0x46, 0x00, 0x00, 0x00], Direction::FromCard).unwrap();
    let mut nulls = 0u32;
    let err = loop {
        match m.feed(0x60) {
            Ok(ProcedureEvent::Null) => nulls += 1,
            Ok(other) => panic!("{other:?}"),
            Err(e) => break e,
        }
        assert!(nulls <= 10_000_000, "NULL bytes are not bounded");
    };
    assert_eq!(err, ProcedureError::TooManyNulls);
    assert_eq!(nulls, ProcedureMachine::MAX_NULLS);
    assert_eq!(m.null_count(), ProcedureMachine::MAX_NULLS);
    assert!(!m.is_done());
    // It stays failed; a status word is not invented.
    assert_eq!(m.feed(0x60), Err(ProcedureError::TooManyNulls));
}

#[test]
fn nulls_between_data_still_count_towards_the_cap() {
    // NULLs around single-byte ACKs: data progress does not restart the
    // count, so the TPDU ends within MAX_NULLS + 2 × 256 + 3 bytes.
    let mut m = ProcedureMachine::new([0x00, 0xB0, 0x00, 0x00, 0x00], Direction::FromCard).unwrap();
    let ack_one = 0xB0 ^ 0xFF;
    let mut fed = 0u64;
    let mut step = 0u64;
    let err = loop {
        // NULL ×400, ACK one byte, one data byte, repeated.
        let byte = match step % 402 {
            400 => ack_one,
            401 => 0x42,
            _ => 0x60,
        };
        step += 1;
        fed += 1;
        match m.feed(byte) {
            Ok(_) => {}
            Err(e) => break e,
        }
        assert!(fed <= 10_000_000, "not bounded");
    };
    // 256 data bytes, then an ACK with nothing left.
    assert!(
        matches!(
            err,
            ProcedureError::TooManyNulls | ProcedureError::AckWithoutData(_)
        ),
        "{err:?}"
    );
    assert!(fed <= u64::from(ProcedureMachine::MAX_NULLS) + 2 * 256 + 3);
}
