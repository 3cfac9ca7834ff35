//! Which bytes of a host-to-reader frame may appear in a log: never a PIN.
//!
//! A PIN crosses the bus in the data of a command APDU (VERIFY, CHANGE
//! REFERENCE DATA, RESET RETRY COUNTER, ENABLE/DISABLE VERIFICATION
//! REQUIREMENT), which the driver may split over several XfrBlocks (T=1
//! chaining, extended-APDU chaining, T=0 bytes sent one by one at character
//! level), and in the APDU template of a PC_to_RDR_Secure. So the decision
//! has two parts: [`carries_pin`] marks a whole APDU exchange as sensitive,
//! and [`loggable_len`] tells, per frame, how long a prefix may be shown.
//! Only the frame header and the APDU's CLA INS P1 P2 and Lc are shown; the
//! rest of the frame, a T=1 block's EDC included, is masked.
use super::message::{MessageType, HEADER_LEN};
use super::secure::SecureData;

/// ISO/IEC 7816-4 instructions whose data may hold a PIN, a PUK or a new
/// reference value: VERIFY (20, 21), CHANGE REFERENCE DATA (24, 25),
/// DISABLE and ENABLE VERIFICATION REQUIREMENT (26, 28), RESET RETRY
/// COUNTER (2C, 2D).
pub const PIN_INSTRUCTIONS: [u8; 8] = [0x20, 0x21, 0x24, 0x25, 0x26, 0x28, 0x2C, 0x2D];

/// Whether the command APDU `apdu` may carry a PIN in its data.
pub fn carries_pin(apdu: &[u8]) -> bool {
    apdu.len() > 4 && PIN_INSTRUCTIONS.contains(&apdu[1])
}

/// An APDU exchange in progress whose command carries a PIN: its header,
/// and whether a frame has already shown it (every later frame of the
/// exchange is continuation data or a retransmission, masked whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinCommand {
    header: [u8; 4],
    header_shown: bool,
}

impl PinCommand {
    /// The exchange of `apdu`, if it carries a PIN.
    pub fn of(apdu: &[u8]) -> Option<PinCommand> {
        carries_pin(apdu).then(|| PinCommand {
            header: [apdu[0], apdu[1], apdu[2], apdu[3]],
            header_shown: false,
        })
    }
}

/// How many leading bytes of the host frame `frame` may be logged; the
/// rest is masked. `pin` is the sensitive exchange in progress on the
/// frame's slot, if any (updated: the header is shown once).
pub fn loggable_len(frame: &[u8], pin: Option<&mut PinCommand>) -> usize {
    let Some(payload) = frame.get(HEADER_LEN..).filter(|p| !p.is_empty()) else {
        return frame.len();
    };
    if frame[0] == MessageType::Secure.to_byte() {
        return HEADER_LEN + secure_loggable_len(payload);
    }
    let Some(pin) = pin else {
        return frame.len();
    };
    if frame[0] != MessageType::XfrBlock.to_byte() || pin.header_shown {
        return HEADER_LEN;
    }
    // The APDU (or T=0 TPDU) itself, or a T=1 block whose INF starts it.
    let shown = if payload.starts_with(&pin.header) {
        apdu_header_len(payload)
    } else if payload.len() > 3 && payload[3..].starts_with(&pin.header) {
        3 + apdu_header_len(&payload[3..3 + usize::from(payload[2]).min(payload.len() - 3)])
    } else {
        return HEADER_LEN;
    };
    pin.header_shown = true;
    HEADER_LEN + shown
}

/// CLA INS P1 P2 and Lc (one byte, or three for an extended Lc), as much
/// of it as `apdu` holds.
fn apdu_header_len(apdu: &[u8]) -> usize {
    let len = if apdu.get(4) == Some(&0) { 7 } else { 5 };
    len.min(apdu.len())
}

/// The shown prefix of a Secure `abData`: the PIN structure and the APDU
/// template's header; the template's data is masked. An operation other
/// than verify or modify (its data is opaque) shows bPINOperation only.
fn secure_loggable_len(ab_data: &[u8]) -> usize {
    let template = match SecureData::parse(ab_data) {
        Ok(SecureData::Verify(v)) => v.apdu,
        Ok(SecureData::Modify(m)) => m.apdu,
        _ => return 1,
    };
    ab_data.len() - template.len() + apdu_header_len(template)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ccid::command::{Command, CommandRepr};

    fn xfr(data: &[u8]) -> Vec<u8> {
        let mut frame = vec![0u8; HEADER_LEN + data.len()];
        CommandRepr {
            slot: 0,
            command: Command::XfrBlock {
                bwi: 0,
                level_parameter: 0,
                data,
            },
        }
        .emit(1, &mut frame)
        .unwrap();
        frame
    }

    const VERIFY: &[u8] = &[0x00, 0x20, 0x00, 0x81, 0x04, 0x31, 0x32, 0x33, 0x34];

    #[test]
    fn pin_instructions_are_recognised_whatever_the_class() {
        assert!(carries_pin(VERIFY));
        assert!(carries_pin(&[0x80, 0x2C, 0x00, 0x81, 0x00]));
        assert!(!carries_pin(&[0x00, 0xA4, 0x04, 0x00, 0x00]));
        assert!(!carries_pin(&[0x00, 0x20, 0x00, 0x81]));
    }

    #[test]
    fn apdu_shows_its_header_once_then_nothing() {
        let mut pin = PinCommand::of(VERIFY).unwrap();
        let frame = xfr(VERIFY);
        assert_eq!(loggable_len(&frame, Some(&mut pin)), HEADER_LEN + 5);
        // A second frame (continuation or retransmission) is masked whole.
        assert_eq!(loggable_len(&frame, Some(&mut pin)), HEADER_LEN);
        // Outside a PIN exchange, everything shows.
        assert_eq!(loggable_len(&frame, None), frame.len());
    }

    #[test]
    fn extended_lc_is_shown_and_the_data_masked() {
        let apdu = [0x00, 0x24, 0x00, 0x81, 0x00, 0x00, 0x02, 0x31, 0x32];
        let mut pin = PinCommand::of(&apdu).unwrap();
        assert_eq!(loggable_len(&xfr(&apdu), Some(&mut pin)), HEADER_LEN + 7);
    }

    #[test]
    fn t1_block_shows_prologue_and_header_but_not_data_or_edc() {
        let mut block = vec![0x00, 0x00, VERIFY.len() as u8];
        block.extend_from_slice(VERIFY);
        block.push(0x5A);
        let mut pin = PinCommand::of(VERIFY).unwrap();
        assert_eq!(loggable_len(&xfr(&block), Some(&mut pin)), HEADER_LEN + 8);
        // A chained block whose INF is the header alone (IFSC 4): its
        // EDC covers no PIN byte, and its successor is masked whole.
        let first = [0x00, 0x20, 0x04, 0x00, 0x20, 0x00, 0x81, 0x85];
        let mut pin = PinCommand::of(VERIFY).unwrap();
        assert_eq!(loggable_len(&xfr(&first), Some(&mut pin)), HEADER_LEN + 7);
        let next = [0x00, 0x00, 0x03, 0x04, 0x31, 0x32, 0x11];
        assert_eq!(loggable_len(&xfr(&next), Some(&mut pin)), HEADER_LEN);
        // An INF shorter than the header (IFSC 3) does not show it: masked.
        let tiny = [0x00, 0x20, 0x03, 0x00, 0x20, 0x00, 0x11];
        let mut pin = PinCommand::of(VERIFY).unwrap();
        assert_eq!(loggable_len(&xfr(&tiny), Some(&mut pin)), HEADER_LEN);
    }

    #[test]
    fn character_level_data_bytes_are_masked() {
        let mut pin = PinCommand::of(VERIFY).unwrap();
        assert_eq!(
            loggable_len(&xfr(&VERIFY[..5]), Some(&mut pin)),
            HEADER_LEN + 5
        );
        assert_eq!(loggable_len(&xfr(&VERIFY[5..]), Some(&mut pin)), HEADER_LEN);
    }

    #[test]
    fn secure_template_data_is_masked_even_outside_an_exchange() {
        // bPINOperation 0, 14 bytes of structure, then a VERIFY template
        // whose data (here padding a pad would overwrite) is masked.
        let mut ab_data = vec![0x00, 30, 0x82, 0x04, 0x00, 0x08, 0x04, 0x02, 0x01];
        ab_data.extend_from_slice(&[0x09, 0x04, 0x00, 0x00, 0x00, 0x00]);
        ab_data.extend_from_slice(&[0x00, 0x20, 0x00, 0x81, 0x08, 0xFF, 0xFF]);
        let mut frame = vec![0u8; HEADER_LEN + ab_data.len()];
        frame[0] = MessageType::Secure.to_byte();
        frame[HEADER_LEN..].copy_from_slice(&ab_data);
        assert_eq!(loggable_len(&frame, None), frame.len() - 2);
        // An opaque operation shows bPINOperation only.
        frame[HEADER_LEN] = 0x02;
        assert_eq!(loggable_len(&frame, None), HEADER_LEN + 1);
    }
}
