//! CCID wire format: emit one PC_to_RDR_XfrBlock and validate the
//! RDR_to_PC_DataBlock that answers it, as the reader does per exchange:
//! [`CommandRepr::emit`] into the transmit buffer, [`validate_response`] on
//! the received frame (in place), then the payload copied out to the
//! caller's response buffer.
//!
//! Baseline (memcpy floor): copy the pre-built XfrBlock frame into the same
//! transmit buffer and the DataBlock's payload into the same response
//! buffer, with no header writing or checking.
//!
//! Frames are built here by hand from CCID rev 1.1 §6.1.4 / §6.2.1 and the
//! emitted ones are checked against them before timing.

mod support;

use std::hint::black_box;

use ferroccid::ccid::command::Command;
use ferroccid::ccid::{validate_response, CommandRepr, Expectation, MessageType, Reply};
use support::Harness;

/// PC_to_RDR_XfrBlock: 6F, dwLength, bSlot, bSeq, bBWI, wLevelParameter.
fn xfr_frame(slot: u8, seq: u8, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x6F];
    f.extend_from_slice(&(data.len() as u32).to_le_bytes());
    f.extend_from_slice(&[slot, seq, 0, 0, 0]);
    f.extend_from_slice(data);
    f
}

/// RDR_to_PC_DataBlock: 80, dwLength, bSlot, bSeq, bStatus 0 (card active,
/// command processed), bError 0, bChainParameter 0.
fn data_block_frame(slot: u8, seq: u8, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80];
    f.extend_from_slice(&(data.len() as u32).to_le_bytes());
    f.extend_from_slice(&[slot, seq, 0, 0, 0]);
    f.extend_from_slice(data);
    f
}

struct Pair {
    command: Vec<u8>,
    xfr: Vec<u8>,
    data_block: Vec<u8>,
    answer: Vec<u8>,
    expectation: Expectation,
}

impl Pair {
    fn new(command_len: usize, answer_len: usize) -> Pair {
        let command: Vec<u8> = (0..command_len).map(|i| (i * 3) as u8).collect();
        let answer: Vec<u8> = (0..answer_len).map(|i| (i * 5 + 1) as u8).collect();
        let (slot, seq) = (0, 0x2A);
        Pair {
            xfr: xfr_frame(slot, seq, &command),
            data_block: data_block_frame(slot, seq, &answer),
            expectation: Expectation {
                msg_type: MessageType::XfrBlock,
                slot,
                seq,
                max_slot_index: 0,
                max_message_length: (10 + command_len.max(answer_len)) as u32,
            },
            command,
            answer,
        }
    }

    /// Emit, validate, copy the payload out; returns the payload length.
    fn subject(&self, tx: &mut [u8], resp: &mut [u8]) -> usize {
        let repr = CommandRepr {
            slot: self.expectation.slot,
            command: Command::XfrBlock {
                bwi: 0,
                level_parameter: 0,
                data: &self.command,
            },
        };
        let n = repr.emit(self.expectation.seq, tx).expect("room");
        black_box(&tx[..n]);
        match validate_response(black_box(&self.data_block[..]), &self.expectation) {
            Ok(Reply::Done(message)) => {
                let payload = message.payload();
                resp[..payload.len()].copy_from_slice(payload);
                payload.len()
            }
            other => panic!("DataBlock rejected: {other:?}"),
        }
    }

    fn floor(&self, tx: &mut [u8], resp: &mut [u8]) -> usize {
        tx[..self.xfr.len()].copy_from_slice(&self.xfr);
        black_box(&tx[..self.xfr.len()]);
        let payload = &black_box(&self.data_block[..])[10..];
        resp[..payload.len()].copy_from_slice(payload);
        payload.len()
    }
}

fn main() {
    let mut h = Harness::from_args("CCID wire (src/ccid)");
    for (name, command_len, answer_len) in [
        ("ccid/xfr+datablock 5 B / 10 B", 5, 10),
        ("ccid/xfr+datablock 261 B / 258 B", 261, 258),
        ("ccid/xfr+datablock 4 KiB / 4 KiB", 4096, 4096),
    ] {
        if !h.selected(name) {
            continue;
        }
        let pair = Pair::new(command_len, answer_len);
        let mut tx = vec![0u8; pair.xfr.len()];
        let mut resp = vec![0u8; answer_len];
        let n = pair.subject(&mut tx, &mut resp);
        assert_eq!(tx, pair.xfr, "{name}: emitted XfrBlock");
        assert_eq!(&resp[..n], &pair.answer[..], "{name}: payload");
        tx.fill(0);
        resp.fill(0);
        let n = pair.floor(&mut tx, &mut resp);
        assert_eq!(tx, pair.xfr, "{name}: floor frame");
        assert_eq!(&resp[..n], &pair.answer[..], "{name}: floor payload");
        let bufs = std::cell::RefCell::new((tx, resp));
        h.compare(
            name,
            || {
                let (t, r) = &mut *bufs.borrow_mut();
                pair.floor(t, r);
            },
            || {
                let (t, r) = &mut *bufs.borrow_mut();
                pair.subject(t, r);
            },
        );
    }
    h.finish();
}
