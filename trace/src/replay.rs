//! Replaying a recorded session: which recorded answer belongs to which
//! command, and whether a new answer is the same, up to what legitimately
//! differs. Pure functions; `ferroccid replay` does the USB I/O.
//!
//! - A command's recorded answer is the next bulk-IN message on the same
//!   slot with the same bSeq, time-extension requests (bStatus 0x80)
//!   skipped: the final answer is what is compared.
//! - bSeq is never compared (the replay numbers its own commands).
//! - Random data is masked: the data of an answer to GET CHALLENGE (INS
//!   84), sent as a short APDU or inside a T=1 I-block (then the block's
//!   EDC too), and whatever byte ranges the user marks.

use ferroccid::ccid::HEADER_LEN;

use crate::{Direction, Frame};

/// A host-to-reader message and the answer recorded for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Position of the command among the trace's messages (from 1).
    pub index: usize,
    /// The command, as recorded.
    pub command: Vec<u8>,
    /// The final answer, if the trace has it.
    pub answer: Option<Vec<u8>>,
}

/// The exchanges of a trace, in the order the commands were sent.
pub fn exchanges(frames: &[Frame]) -> Vec<Exchange> {
    let mut out = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        if frame.direction != Direction::Out || frame.bytes.len() < HEADER_LEN {
            continue;
        }
        let (slot, seq) = (frame.bytes[5], frame.bytes[6]);
        let answer = frames[i + 1..]
            .iter()
            .filter(|f| f.direction == Direction::In && f.bytes.len() >= HEADER_LEN)
            .filter(|f| f.bytes[5] == slot && f.bytes[6] == seq)
            .find(|f| f.bytes[7] & 0xC0 != 0x80)
            .map(|f| f.bytes.clone());
        out.push(Exchange {
            index: i + 1,
            command: frame.bytes.clone(),
            answer,
        });
    }
    out
}

/// Byte ranges of an answer not to compare, `[from, to)`.
pub type Mask = Vec<(usize, usize)>;

/// What is random in the answer to `command`: the data of a GET
/// CHALLENGE answer (and a T=1 block's EDC), found from the command.
pub fn random_parts(command: &[u8], answer: &[u8]) -> Mask {
    let Some(payload) = command.get(HEADER_LEN..) else {
        return Vec::new();
    };
    if command[0] != 0x6F || answer.len() < HEADER_LEN + 2 {
        return Vec::new();
    }
    let end = answer.len();
    // A short APDU: CLA INS P1 P2 Le, the answer data then SW1 SW2.
    if payload.len() == 5 && payload[1] == 0x84 && payload[0] != 0xFF {
        return vec![(HEADER_LEN, end - 2)];
    }
    // A T=1 I-block carrying it: NAD PCB LEN INF EDC (LRC or CRC).
    if let Some(inf) = t1_inf(payload) {
        if inf.len() == 5 && inf[1] == 0x84 {
            let edc = payload.len() - 3 - inf.len();
            // Answer: NAD PCB LEN, INF (data, SW1 SW2), EDC.
            let data_start = HEADER_LEN + 3;
            let edc_start = end.saturating_sub(edc);
            return vec![(data_start, edc_start.saturating_sub(2)), (edc_start, end)];
        }
    }
    Vec::new()
}

/// The INF of a T=1 I-block, if `payload` is one (LEN matches, with a
/// one-byte LRC or two-byte CRC after it).
fn t1_inf(payload: &[u8]) -> Option<&[u8]> {
    let [_, pcb, len, ..] = *payload else {
        return None;
    };
    let len = usize::from(len);
    let edc = payload.len().checked_sub(3 + len)?;
    (pcb & 0x80 == 0 && (edc == 1 || edc == 2)).then(|| &payload[3..3 + len])
}

/// Where a new answer differs from the recorded one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// First differing byte of the message.
    pub offset: usize,
    /// What was recorded from there (up to 16 bytes).
    pub recorded: Vec<u8>,
    /// What came now from there.
    pub got: Vec<u8>,
}

/// Compares `got` with `recorded`, ignoring bSeq (byte 6) and `mask`.
pub fn compare(recorded: &[u8], got: &[u8], mask: &[(usize, usize)]) -> Option<Difference> {
    let masked = |i: usize| i == 6 || mask.iter().any(|&(from, to)| (from..to).contains(&i));
    let differs = (0..recorded.len().max(got.len()))
        .find(|&i| !masked(i) && recorded.get(i) != got.get(i))?;
    let tail = |bytes: &[u8]| {
        bytes
            .get(differs..)
            .unwrap_or_default()
            .iter()
            .take(16)
            .copied()
            .collect()
    };
    Some(Difference {
        offset: differs,
        recorded: tail(recorded),
        got: tail(got),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(direction: Direction, bytes: &[u8]) -> Frame {
        Frame {
            time_us: None,
            direction,
            source: String::new(),
            bytes: bytes.to_vec(),
            redacted: false,
        }
    }

    #[test]
    fn answers_are_paired_by_slot_and_seq_after_time_extensions() {
        let frames = [
            frame(Direction::In, &[0x80, 0, 0, 0, 0, 0, 9, 0, 0, 0]), // no command: skipped
            frame(
                Direction::Out,
                &[0x6F, 5, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0x84, 0, 0, 8],
            ),
            frame(Direction::In, &[0x80, 0, 0, 0, 0, 0, 3, 0x80, 1, 0]),
            frame(Direction::In, &[0x80, 2, 0, 0, 0, 0, 3, 0, 0, 0, 0x90, 0]),
            frame(Direction::Out, &[0x65, 0, 0, 0, 0, 0, 4, 0, 0, 0]),
        ];
        let found = exchanges(&frames);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].index, 2);
        assert_eq!(
            found[0].answer.as_deref().map(|a| &a[10..]),
            Some(&[0x90, 0][..])
        );
        assert_eq!(found[1].answer, None);
    }

    #[test]
    fn bseq_and_challenge_data_are_not_compared() {
        let command = [
            0x6F, 5, 0, 0, 0, 0, 3, 0, 0, 0, 0x00, 0x84, 0x00, 0x00, 0x02,
        ];
        let recorded = [0x80, 4, 0, 0, 0, 0, 3, 0, 0, 0, 0x12, 0x34, 0x90, 0x00];
        let got = [0x80, 4, 0, 0, 0, 0, 7, 0, 0, 0, 0xAB, 0xCD, 0x90, 0x00];
        let mask = random_parts(&command, &recorded);
        assert_eq!(compare(&recorded, &got, &mask), None);
        assert_eq!(compare(&recorded, &got, &[]).unwrap().offset, 10);
        let wrong_sw = [0x80, 4, 0, 0, 0, 0, 7, 0, 0, 0, 0xAB, 0xCD, 0x6A, 0x82];
        let difference = compare(&recorded, &wrong_sw, &mask).unwrap();
        assert_eq!((difference.offset, difference.got), (12, vec![0x6A, 0x82]));
        assert_eq!(
            compare(&recorded, &recorded[..12], &mask).unwrap().offset,
            12
        );
    }

    #[test]
    fn a_challenge_inside_a_t1_block_masks_its_data_and_edc() {
        // I(0) with GET CHALLENGE of 2, LRC.
        let command = [
            0x6F, 9, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 0x00, 0x05, 0x00, 0x84, 0x00, 0x00, 0x02, 0x83,
        ];
        let recorded = [
            0x80, 8, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 0x00, 0x04, 0x11, 0x22, 0x90, 0x00, 0x55,
        ];
        let got = [
            0x80, 8, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 0x00, 0x04, 0x33, 0x44, 0x90, 0x00, 0x66,
        ];
        assert_eq!(
            compare(&recorded, &got, &random_parts(&command, &recorded)),
            None
        );
        let bad = [
            0x80, 8, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 0x00, 0x04, 0x33, 0x44, 0x6A, 0x82, 0x66,
        ];
        assert_eq!(
            compare(&recorded, &bad, &random_parts(&command, &recorded))
                .unwrap()
                .offset,
            15
        );
    }
}
