//! PC/SC v2 part 10: the feature list, PIN structures, properties.
//!
//! Pure functions over byte slices: every length comes from the client and
//! is checked here before anything reaches the reader. A PIN never passes
//! through this module (the pad reads it), and nothing here logs.

use super::abi::Dword;
use super::reader::ReaderInfo;
use ferroccid::ccid::secure::SecureData;
use ferroccid::part10::{
    property, scard_ctl_code, FEATURE_CCID_ESC_COMMAND, FEATURE_GET_TLV_PROPERTIES,
    FEATURE_IFD_PIN_PROPERTIES, FEATURE_MODIFY_PIN_DIRECT, FEATURE_VERIFY_PIN_DIRECT,
    PIN_MODIFY_STRUCTURE_HEADER, PIN_PROPERTIES_STRUCTURE_SIZE, PIN_VERIFY_STRUCTURE_HEADER,
};

/// Why a client's structure was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StructureError(pub &'static str);

/// libccid's CLASS2_IOCTL_MAGIC: feature ioctls are SCARD_CTL_CODE(magic + feature).
const CLASS2_IOCTL_MAGIC: u32 = 0x0033_0000;

/// The control code a client uses for a feature. Clients take it from the
/// GET_FEATURE_REQUEST answer; we use libccid's numbering so scripts
/// written for libccid readers keep working.
pub const fn feature_control_code(feature: u8) -> Dword {
    scard_ctl_code(CLASS2_IOCTL_MAGIC + feature as u32) as Dword
}

/// Features the reader really supports, in the order they are listed.
pub(crate) fn supported_features(info: &ReaderInfo, escape_enabled: bool) -> Vec<u8> {
    let mut features = Vec::new();
    if let Some(pad) = info.pinpad {
        if pad.verify {
            features.push(FEATURE_VERIFY_PIN_DIRECT);
        }
        if pad.modify {
            features.push(FEATURE_MODIFY_PIN_DIRECT);
        }
        features.push(FEATURE_IFD_PIN_PROPERTIES);
    }
    features.push(FEATURE_GET_TLV_PROPERTIES);
    if escape_enabled {
        features.push(FEATURE_CCID_ESC_COMMAND);
    }
    features
}

/// CM_IOCTL_GET_FEATURE_REQUEST answer: TLV (tag, 4, control code big-endian).
pub(crate) fn feature_list(features: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(features.len() * 6);
    for &feature in features {
        out.push(feature);
        out.push(4);
        out.extend_from_slice(&(feature_control_code(feature) as u32).to_be_bytes());
    }
    out
}

/// The feature a control code stands for, if it is one of ours.
pub(crate) fn feature_of(code: Dword, features: &[u8]) -> Option<u8> {
    features
        .iter()
        .copied()
        .find(|&f| feature_control_code(f) == code)
}

/// PIN_PROPERTIES_STRUCTURE: wLcdLayout (LE), bEntryValidationCondition, bTimeOut2.
pub(crate) fn pin_properties(info: &ReaderInfo) -> [u8; PIN_PROPERTIES_STRUCTURE_SIZE] {
    let layout = info.pinpad.map_or(0, |p| p.lcd_layout).to_le_bytes();
    // Validation by the OK key (0x02) is what every pad offers; no second timeout.
    [layout[0], layout[1], 0x02, 0x00]
}

/// FEATURE_GET_TLV_PROPERTIES answer (tag, length, little-endian value).
pub(crate) fn tlv_properties(info: &ReaderInfo) -> Vec<u8> {
    let mut out = Vec::new();
    let mut put = |tag: u8, value: &[u8]| {
        out.push(tag);
        out.push(value.len() as u8);
        out.extend_from_slice(value);
    };
    if let Some(pad) = info.pinpad {
        put(property::W_LCD_LAYOUT, &pad.lcd_layout.to_le_bytes());
        put(property::B_ENTRY_VALIDATION_CONDITION, &[0x02]);
        put(property::B_TIME_OUT2, &[0x00]);
        put(property::B_MIN_PIN_SIZE, &[pad.min_pin]);
        put(property::B_MAX_PIN_SIZE, &[pad.max_pin]);
    }
    put(
        property::DW_MAX_APDU_DATA_SIZE,
        &info.max_apdu_data.to_le_bytes(),
    );
    put(property::W_ID_VENDOR, &info.vendor_id.to_le_bytes());
    put(property::W_ID_PRODUCT, &info.product_id.to_le_bytes());
    out
}

fn data_length(header: &[u8], at: usize) -> usize {
    u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]) as usize
}

/// PIN_VERIFY_STRUCTURE (packed, reader.h) → PC_to_RDR_Secure abData.
///
/// The client's ulDataLength must match the bytes it sent, the APDU must
/// be at least a header, and the result must decode as CCID table 6.1-5.
pub fn verify_to_secure(pcsc: &[u8]) -> Result<Vec<u8>, StructureError> {
    if pcsc.len() < PIN_VERIFY_STRUCTURE_HEADER {
        return Err(StructureError(
            "PIN_VERIFY_STRUCTURE shorter than its header",
        ));
    }
    let (header, apdu) = pcsc.split_at(PIN_VERIFY_STRUCTURE_HEADER);
    if data_length(header, 15) != apdu.len() {
        return Err(StructureError("ulDataLength disagrees with the bytes sent"));
    }
    if apdu.len() < 4 {
        return Err(StructureError("abData shorter than an APDU header"));
    }
    let mut out = Vec::with_capacity(1 + 14 + apdu.len());
    out.push(0x00); // bPINOperation: verification
    out.push(header[0]); // bTimeOut (bTimerOut2 has no CCID field)
    out.extend_from_slice(&header[2..15]);
    out.extend_from_slice(apdu);
    SecureData::parse(&out).map_err(|e| StructureError(e.reason))?;
    Ok(out)
}

/// PIN_MODIFY_STRUCTURE (packed, reader.h) → PC_to_RDR_Secure abData, with
/// as many bMsgIndex bytes as bNumberMessage calls for (CCID table 6.1-6).
pub fn modify_to_secure(pcsc: &[u8]) -> Result<Vec<u8>, StructureError> {
    if pcsc.len() < PIN_MODIFY_STRUCTURE_HEADER {
        return Err(StructureError(
            "PIN_MODIFY_STRUCTURE shorter than its header",
        ));
    }
    let (header, apdu) = pcsc.split_at(PIN_MODIFY_STRUCTURE_HEADER);
    if data_length(header, 20) != apdu.len() {
        return Err(StructureError("ulDataLength disagrees with the bytes sent"));
    }
    if apdu.len() < 4 {
        return Err(StructureError("abData shorter than an APDU header"));
    }
    let messages = match header[11] {
        0 | 1 => 1,
        2 => 2,
        _ => 3,
    };
    let mut out = Vec::with_capacity(1 + 20 + apdu.len());
    out.push(0x01); // bPINOperation: modification
    out.push(header[0]);
    out.extend_from_slice(&header[2..14]); // bmFormatString .. wLangId
    out.extend_from_slice(&header[14..14 + messages]);
    out.extend_from_slice(&header[17..20]); // bTeoPrologue
    out.extend_from_slice(apdu);
    SecureData::parse(&out).map_err(|e| StructureError(e.reason))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::PinPad;

    fn pinpad_info() -> ReaderInfo {
        ReaderInfo {
            vendor_id: 0x1234,
            product_id: 0xABCD,
            max_apdu_data: 65536,
            pinpad: Some(PinPad {
                verify: true,
                modify: true,
                lcd_layout: 0x0210,
                min_pin: 4,
                max_pin: 8,
            }),
            ..ReaderInfo::default()
        }
    }

    #[test]
    fn feature_list_is_tlv_with_big_endian_ioctl() {
        let info = pinpad_info();
        let list = feature_list(&supported_features(&info, false));
        // VERIFY_PIN_DIRECT: 0x42000000 + 0x330000 + 6 = 0x42330006.
        assert_eq!(&list[..6], &[0x06, 0x04, 0x42, 0x33, 0x00, 0x06]);
        assert_eq!(&list[6..12], &[0x07, 0x04, 0x42, 0x33, 0x00, 0x07]);
        assert_eq!(&list[12..18], &[0x0A, 0x04, 0x42, 0x33, 0x00, 0x0A]);
        assert_eq!(&list[18..24], &[0x12, 0x04, 0x42, 0x33, 0x00, 0x12]);
        assert_eq!(list.len(), 24);
    }

    #[test]
    fn escape_listed_only_when_enabled() {
        let info = ReaderInfo::default();
        assert_eq!(supported_features(&info, false), vec![0x12]);
        assert_eq!(supported_features(&info, true), vec![0x12, 0x13]);
    }

    #[test]
    fn tlv_properties_carry_ids_and_sizes() {
        let tlv = tlv_properties(&pinpad_info());
        let find = |tag: u8| {
            let mut i = 0;
            while i + 2 <= tlv.len() {
                let len = tlv[i + 1] as usize;
                if tlv[i] == tag {
                    return tlv[i + 2..i + 2 + len].to_vec();
                }
                i += 2 + len;
            }
            panic!("tag {tag} missing");
        };
        assert_eq!(find(11), vec![0x34, 0x12]);
        assert_eq!(find(12), vec![0xCD, 0xAB]);
        assert_eq!(find(10), vec![0x00, 0x00, 0x01, 0x00]);
        assert_eq!(find(6), vec![4]);
        assert_eq!(find(7), vec![8]);
    }

    /// A VERIFY of PIN reference 0x81, 8-byte ASCII PIN block (as libccid's
    /// documentation example and OpenSC build it).
    fn verify_structure(apdu: &[u8], declared: u32) -> Vec<u8> {
        let mut s = vec![
            30,   // bTimerOut
            0,    // bTimerOut2
            0x82, // bmFormatString: byte units, ASCII
            0x08, // bmPINBlockString: 8-byte block
            0x00, // bmPINLengthFormat
            0x08, 0x04, // wPINMaxExtraDigit: max 8, min 4 (LE on the wire)
            0x02, // bEntryValidationCondition
            0x01, // bNumberMessage
            0x09, 0x04, // wLangId 0x0409
            0x00, // bMsgIndex
            0, 0, 0, // bTeoPrologue
        ];
        s.extend_from_slice(&declared.to_le_bytes());
        s.extend_from_slice(apdu);
        s
    }

    #[test]
    fn verify_structure_becomes_ccid_secure_data() {
        let apdu = [
            0x00, 0x20, 0x00, 0x81, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ];
        let s = verify_structure(&apdu, apdu.len() as u32);
        let out = verify_to_secure(&s).unwrap();
        // CCID table 6.1-5: bPINOperation 0, bTimeOut, then 12 bytes, then APDU.
        let mut expected = vec![
            0x00, 30, 0x82, 0x08, 0x00, 0x08, 0x04, 0x02, 0x01, 0x09, 0x04, 0x00, 0, 0, 0,
        ];
        expected.extend_from_slice(&apdu);
        assert_eq!(out, expected);
    }

    #[test]
    fn truncated_or_lying_verify_structures_are_refused() {
        let apdu = [0x00, 0x20, 0x00, 0x81];
        let s = verify_structure(&apdu, 4);
        for cut in 0..s.len() {
            assert!(verify_to_secure(&s[..cut]).is_err(), "cut at {cut}");
        }
        assert!(verify_to_secure(&verify_structure(&apdu, 5)).is_err());
        assert!(verify_to_secure(&verify_structure(&apdu, u32::MAX)).is_err());
        assert!(verify_to_secure(&verify_structure(&apdu[..3], 3)).is_err());
    }

    #[test]
    fn modify_structure_keeps_message_indexes_per_count() {
        let apdu = [0x00, 0x24, 0x00, 0x81, 0x10];
        let mut s = vec![
            30, 0, 0x82, 0x08, 0x00, // timeouts, formats
            0x00, 0x08, // insertion offsets old/new
            0x08, 0x04, // wPINMaxExtraDigit
            0x03, // bConfirmPIN
            0x02, // bEntryValidationCondition
            0x02, // bNumberMessage = 2
            0x09, 0x04, // wLangId
            0x00, 0x01, 0x02, // bMsgIndex1..3
            0, 0, 0, // bTeoPrologue
        ];
        s.extend_from_slice(&(apdu.len() as u32).to_le_bytes());
        s.extend_from_slice(&apdu);
        let out = modify_to_secure(&s).unwrap();
        let mut expected = vec![
            0x01, 30, 0x82, 0x08, 0x00, 0x00, 0x08, 0x08, 0x04, 0x03, 0x02, 0x02, 0x09, 0x04, 0x00,
            0x01, 0, 0, 0,
        ];
        expected.extend_from_slice(&apdu);
        assert_eq!(out, expected);
        for cut in 0..s.len() {
            assert!(modify_to_secure(&s[..cut]).is_err(), "cut at {cut}");
        }
    }
}
