//! Which card answers are logons and password changes (ISO/IEC 7816-4
//! §11.5.6–11.5.10): only the command header and the status word are
//! looked at, never the data, so no PIN byte can reach an event.

use super::server::NotifyKind;

const INS_VERIFY: u8 = 0x20;
const INS_CHANGE_REFERENCE_DATA: u8 = 0x24;
const INS_RESET_RETRY_COUNTER: u8 = 0x2C;

/// Whether `command`'s answer could make an event: the transmit path taps
/// the status word only then.
pub(crate) fn may_classify(command: &[u8]) -> bool {
    matches!(
        command,
        [cla, INS_VERIFY | INS_CHANGE_REFERENCE_DATA | INS_RESET_RETRY_COUNTER, ..] if *cla != 0xFF
    )
}

/// The event a command APDU and its status word make, if any.
///
/// - VERIFY with data: 9000 verified; 63Cx failed with x tries left (0:
///   blocked); 6983 blocked. VERIFY without data only asks the state:
///   no event.
/// - CHANGE REFERENCE DATA: 9000 changed; 63Cx / 6983 as for VERIFY.
/// - RESET RETRY COUNTER: 9000 changed (the counter, and maybe the PIN,
///   reset).
///
/// CLA FF (PC/SC reader commands) and anything else: no event.
pub(crate) fn classify_apdu(command: &[u8], sw1: u8, sw2: u8) -> Option<NotifyKind> {
    let [cla, ins, _p1, reference, ..] = *command else {
        return None;
    };
    if cla == 0xFF {
        return None;
    }
    let has_data = command.len() > 5 && command[4] != 0;
    let failed_or_blocked = || match (sw1, sw2) {
        (0x63, sw2) if sw2 & 0xF0 == 0xC0 => Some(if sw2 & 0x0F == 0 {
            NotifyKind::PinBlocked { reference }
        } else {
            NotifyKind::PinFailed {
                reference,
                tries_left: sw2 & 0x0F,
            }
        }),
        (0x69, 0x83) => Some(NotifyKind::PinBlocked { reference }),
        _ => None,
    };
    match ins {
        INS_VERIFY if has_data => match (sw1, sw2) {
            (0x90, 0x00) => Some(NotifyKind::PinVerified { reference }),
            _ => failed_or_blocked(),
        },
        INS_CHANGE_REFERENCE_DATA => match (sw1, sw2) {
            (0x90, 0x00) => Some(NotifyKind::PinChanged { reference }),
            _ => failed_or_blocked(),
        },
        INS_RESET_RETRY_COUNTER => match (sw1, sw2) {
            (0x90, 0x00) => Some(NotifyKind::PinChanged { reference }),
            _ => None,
        },
        _ => None,
    }
}

/// A PC/SC part 10 PIN pad operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PinPadOperation {
    /// FEATURE_VERIFY_PIN_DIRECT: PIN_VERIFY_STRUCTURE.
    Verify,
    /// FEATURE_MODIFY_PIN_DIRECT: PIN_MODIFY_STRUCTURE.
    Modify,
}

/// The event of a PIN pad operation: the structure's APDU template
/// (`abData`, after the fixed fields) and the card's answer.
pub(crate) fn classify_pin_pad(
    operation: PinPadOperation,
    structure: &[u8],
    response: &[u8],
) -> Option<NotifyKind> {
    // Offsets of abData (PC/SC part 10 §2.5.2 and §2.5.3).
    let template = match operation {
        PinPadOperation::Verify => structure.get(19..)?,
        PinPadOperation::Modify => structure.get(24..)?,
    };
    let [.., sw1, sw2] = *response else {
        return None;
    };
    classify_apdu(template, sw1, sw2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verify(pin: &[u8]) -> Vec<u8> {
        let mut apdu = vec![0x00, 0x20, 0x00, 0x81, pin.len() as u8];
        apdu.extend_from_slice(pin);
        apdu
    }

    #[test]
    fn verify_answers_make_logon_events() {
        let apdu = verify(b"1234");
        assert_eq!(
            classify_apdu(&apdu, 0x90, 0x00),
            Some(NotifyKind::PinVerified { reference: 0x81 })
        );
        assert_eq!(
            classify_apdu(&apdu, 0x63, 0xC2),
            Some(NotifyKind::PinFailed {
                reference: 0x81,
                tries_left: 2
            })
        );
        assert_eq!(
            classify_apdu(&apdu, 0x63, 0xC0),
            Some(NotifyKind::PinBlocked { reference: 0x81 })
        );
        assert_eq!(
            classify_apdu(&apdu, 0x69, 0x83),
            Some(NotifyKind::PinBlocked { reference: 0x81 })
        );
        assert_eq!(classify_apdu(&apdu, 0x6A, 0x88), None);
        // A state query (no data) is not a logon, whatever it answers.
        assert_eq!(classify_apdu(&[0x00, 0x20, 0x00, 0x81], 0x90, 0x00), None);
        assert_eq!(
            classify_apdu(&[0x00, 0x20, 0x00, 0x81, 0x00], 0x63, 0xC3),
            None
        );
    }

    #[test]
    fn change_and_reset_make_password_change_events() {
        let change = [0x00, 0x24, 0x00, 0x81, 0x08, 1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(
            classify_apdu(&change, 0x90, 0x00),
            Some(NotifyKind::PinChanged { reference: 0x81 })
        );
        assert_eq!(
            classify_apdu(&change, 0x63, 0xC1),
            Some(NotifyKind::PinFailed {
                reference: 0x81,
                tries_left: 1
            })
        );
        let reset = [0x00, 0x2C, 0x00, 0x81, 0x04, 1, 2, 3, 4];
        assert_eq!(
            classify_apdu(&reset, 0x90, 0x00),
            Some(NotifyKind::PinChanged { reference: 0x81 })
        );
        assert_eq!(classify_apdu(&reset, 0x69, 0x82), None);
    }

    #[test]
    fn other_commands_and_reader_commands_make_none() {
        assert_eq!(classify_apdu(&[0x00, 0xA4, 0x00, 0x0C], 0x90, 0x00), None);
        assert_eq!(
            classify_apdu(&[0xFF, 0x20, 0x00, 0x81, 0x01, 0x00], 0x90, 0x00),
            None
        );
        assert_eq!(classify_apdu(&[0x00, 0x20], 0x90, 0x00), None);
    }

    #[test]
    fn pin_pad_structures_are_read_at_their_templates() {
        let mut verify = vec![0u8; 19];
        verify.extend_from_slice(&[
            0x00, 0x20, 0x00, 0x82, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        assert_eq!(
            classify_pin_pad(PinPadOperation::Verify, &verify, &[0x90, 0x00]),
            Some(NotifyKind::PinVerified { reference: 0x82 })
        );
        let mut modify = vec![0u8; 24];
        modify.extend_from_slice(&[0x00, 0x24, 0x00, 0x82, 0x10]);
        modify.extend_from_slice(&[0xFF; 16]);
        assert_eq!(
            classify_pin_pad(PinPadOperation::Modify, &modify, &[0x90, 0x00]),
            Some(NotifyKind::PinChanged { reference: 0x82 })
        );
        assert_eq!(
            classify_pin_pad(PinPadOperation::Verify, &[0; 10], &[0x90, 0x00]),
            None
        );
        assert_eq!(
            classify_pin_pad(PinPadOperation::Verify, &verify, &[0x90]),
            None
        );
    }
}
