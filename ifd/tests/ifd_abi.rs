//! The IFD handler's C types and constants against the installed
//! libpcsclite-dev headers: a C program compiled against them prints the
//! real values, which must equal ours.

use std::collections::HashMap;
use std::process::Command;

use ferroccid::part10::*;
use ferroccid_ifd::abi::*;

const PROGRAM: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include <PCSC/ifdhandler.h>
#include <PCSC/reader.h>
#define P(x) printf(#x " %lu\n", (unsigned long)(x))
int main(void) {
    P(sizeof(DWORD)); P(sizeof(RESPONSECODE)); P(sizeof(UCHAR));
    P(sizeof(SCARD_IO_HEADER)); P(offsetof(SCARD_IO_HEADER, Length));
    P(IFD_SUCCESS); P(IFD_ERROR_TAG); P(IFD_ERROR_SET_FAILURE); P(IFD_ERROR_VALUE_READ_ONLY);
    P(IFD_ERROR_PTS_FAILURE); P(IFD_ERROR_NOT_SUPPORTED); P(IFD_PROTOCOL_NOT_SUPPORTED);
    P(IFD_ERROR_POWER_ACTION); P(IFD_COMMUNICATION_ERROR); P(IFD_RESPONSE_TIMEOUT);
    P(IFD_NOT_SUPPORTED); P(IFD_ICC_PRESENT); P(IFD_ICC_NOT_PRESENT); P(IFD_NO_SUCH_DEVICE);
    P(IFD_ERROR_INSUFFICIENT_BUFFER); P(IFD_POWER_UP); P(IFD_POWER_DOWN); P(IFD_RESET);
    P(IFD_NEGOTIATE_PTS1); P(IFD_NEGOTIATE_PTS2); P(IFD_NEGOTIATE_PTS3);
    P(TAG_IFD_ATR); P(TAG_IFD_SLOTNUM); P(TAG_IFD_SLOT_THREAD_SAFE); P(TAG_IFD_THREAD_SAFE);
    P(TAG_IFD_SLOTS_NUMBER); P(TAG_IFD_SIMULTANEOUS_ACCESS); P(TAG_IFD_POLLING_THREAD_KILLABLE);
    P(TAG_IFD_STOP_POLLING_THREAD); P(TAG_IFD_POLLING_THREAD_WITH_TIMEOUT); P(TAG_IFD_DEVICE_REMOVED);
    P(SCARD_PROTOCOL_T0); P(SCARD_PROTOCOL_T1); P(SCARD_PROTOCOL_RAW);
    P(MAX_ATR_SIZE); P(MAX_BUFFER_SIZE); P(MAX_BUFFER_SIZE_EXTENDED);
    P(SCARD_ATTR_VENDOR_NAME); P(SCARD_ATTR_VENDOR_IFD_TYPE); P(SCARD_ATTR_VENDOR_IFD_VERSION);
    P(SCARD_ATTR_VENDOR_IFD_SERIAL_NO); P(SCARD_ATTR_CHANNEL_ID); P(SCARD_ATTR_CURRENT_PROTOCOL_TYPE);
    P(SCARD_ATTR_ICC_PRESENCE); P(SCARD_ATTR_ICC_INTERFACE_STATUS); P(SCARD_ATTR_ATR_STRING);
    P(SCARD_ATTR_MAXINPUT); P(CM_IOCTL_GET_FEATURE_REQUEST);
    P(FEATURE_VERIFY_PIN_DIRECT); P(FEATURE_MODIFY_PIN_DIRECT); P(FEATURE_IFD_PIN_PROPERTIES);
    P(FEATURE_GET_TLV_PROPERTIES); P(FEATURE_CCID_ESC_COMMAND);
    P(sizeof(PIN_VERIFY_STRUCTURE)); P(offsetof(PIN_VERIFY_STRUCTURE, abData));
    P(offsetof(PIN_VERIFY_STRUCTURE, ulDataLength));
    P(sizeof(PIN_MODIFY_STRUCTURE)); P(offsetof(PIN_MODIFY_STRUCTURE, abData));
    P(offsetof(PIN_MODIFY_STRUCTURE, ulDataLength)); P(offsetof(PIN_MODIFY_STRUCTURE, bNumberMessage));
    P(offsetof(PIN_MODIFY_STRUCTURE, bMsgIndex1)); P(offsetof(PIN_MODIFY_STRUCTURE, bTeoPrologue));
    P(sizeof(PIN_PROPERTIES_STRUCTURE));
    P(PCSCv2_PART10_PROPERTY_wLcdLayout); P(PCSCv2_PART10_PROPERTY_bEntryValidationCondition);
    P(PCSCv2_PART10_PROPERTY_bTimeOut2); P(PCSCv2_PART10_PROPERTY_wLcdMaxCharacters);
    P(PCSCv2_PART10_PROPERTY_wLcdMaxLines); P(PCSCv2_PART10_PROPERTY_bMinPINSize);
    P(PCSCv2_PART10_PROPERTY_bMaxPINSize); P(PCSCv2_PART10_PROPERTY_sFirmwareID);
    P(PCSCv2_PART10_PROPERTY_bPPDUSupport); P(PCSCv2_PART10_PROPERTY_dwMaxAPDUDataSize);
    P(PCSCv2_PART10_PROPERTY_wIdVendor); P(PCSCv2_PART10_PROPERTY_wIdProduct);
    return 0;
}
"#;

fn header_values() -> HashMap<String, u64> {
    assert!(
        std::path::Path::new("/usr/include/PCSC/ifdhandler.h").exists(),
        "libpcsclite-dev is missing: run tests/scripts/install-deps.sh"
    );
    let dir = std::env::temp_dir().join(format!("ferroccid-abi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("abi.c");
    let binary = dir.join("abi");
    std::fs::write(&source, PROGRAM).unwrap();
    let status = Command::new("gcc")
        .arg("-std=c99")
        .arg("-I/usr/include/PCSC")
        .arg(&source)
        .arg("-o")
        .arg(&binary)
        .status()
        .expect("gcc is needed to check the ABI against the headers");
    assert!(status.success(), "the header check program did not compile");
    let out = Command::new(&binary).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn types_and_constants_match_the_installed_headers() {
    let c = header_values();
    let check = |name: &str, ours: u64| {
        assert_eq!(
            c[name], ours,
            "{name}: headers say {}, ferroccid has {ours}",
            c[name]
        );
    };
    check("sizeof(DWORD)", std::mem::size_of::<Dword>() as u64);
    check(
        "sizeof(RESPONSECODE)",
        std::mem::size_of::<ResponseCode>() as u64,
    );
    check("sizeof(UCHAR)", 1);
    check(
        "sizeof(SCARD_IO_HEADER)",
        std::mem::size_of::<ScardIoHeader>() as u64,
    );
    check(
        "offsetof(SCARD_IO_HEADER, Length)",
        std::mem::offset_of!(ScardIoHeader, length) as u64,
    );
    let codes: &[(&str, ResponseCode)] = &[
        ("IFD_SUCCESS", IFD_SUCCESS),
        ("IFD_ERROR_TAG", IFD_ERROR_TAG),
        ("IFD_ERROR_SET_FAILURE", IFD_ERROR_SET_FAILURE),
        ("IFD_ERROR_VALUE_READ_ONLY", IFD_ERROR_VALUE_READ_ONLY),
        ("IFD_ERROR_PTS_FAILURE", IFD_ERROR_PTS_FAILURE),
        ("IFD_ERROR_NOT_SUPPORTED", IFD_ERROR_NOT_SUPPORTED),
        ("IFD_PROTOCOL_NOT_SUPPORTED", IFD_PROTOCOL_NOT_SUPPORTED),
        ("IFD_ERROR_POWER_ACTION", IFD_ERROR_POWER_ACTION),
        ("IFD_COMMUNICATION_ERROR", IFD_COMMUNICATION_ERROR),
        ("IFD_RESPONSE_TIMEOUT", IFD_RESPONSE_TIMEOUT),
        ("IFD_NOT_SUPPORTED", IFD_NOT_SUPPORTED),
        ("IFD_ICC_PRESENT", IFD_ICC_PRESENT),
        ("IFD_ICC_NOT_PRESENT", IFD_ICC_NOT_PRESENT),
        ("IFD_NO_SUCH_DEVICE", IFD_NO_SUCH_DEVICE),
        (
            "IFD_ERROR_INSUFFICIENT_BUFFER",
            IFD_ERROR_INSUFFICIENT_BUFFER,
        ),
    ];
    for &(name, value) in codes {
        check(name, value as u64);
    }
    let dwords: &[(&str, Dword)] = &[
        ("IFD_POWER_UP", IFD_POWER_UP),
        ("IFD_POWER_DOWN", IFD_POWER_DOWN),
        ("IFD_RESET", IFD_RESET),
        ("TAG_IFD_ATR", TAG_IFD_ATR),
        ("TAG_IFD_SLOTNUM", TAG_IFD_SLOTNUM),
        ("TAG_IFD_SLOT_THREAD_SAFE", TAG_IFD_SLOT_THREAD_SAFE),
        ("TAG_IFD_THREAD_SAFE", TAG_IFD_THREAD_SAFE),
        ("TAG_IFD_SLOTS_NUMBER", TAG_IFD_SLOTS_NUMBER),
        ("TAG_IFD_SIMULTANEOUS_ACCESS", TAG_IFD_SIMULTANEOUS_ACCESS),
        (
            "TAG_IFD_POLLING_THREAD_KILLABLE",
            TAG_IFD_POLLING_THREAD_KILLABLE,
        ),
        ("TAG_IFD_STOP_POLLING_THREAD", TAG_IFD_STOP_POLLING_THREAD),
        (
            "TAG_IFD_POLLING_THREAD_WITH_TIMEOUT",
            TAG_IFD_POLLING_THREAD_WITH_TIMEOUT,
        ),
        ("TAG_IFD_DEVICE_REMOVED", TAG_IFD_DEVICE_REMOVED),
        ("SCARD_PROTOCOL_T0", SCARD_PROTOCOL_T0),
        ("SCARD_PROTOCOL_T1", SCARD_PROTOCOL_T1),
        ("SCARD_PROTOCOL_RAW", SCARD_PROTOCOL_RAW),
        ("SCARD_ATTR_VENDOR_NAME", SCARD_ATTR_VENDOR_NAME),
        ("SCARD_ATTR_VENDOR_IFD_TYPE", SCARD_ATTR_VENDOR_IFD_TYPE),
        (
            "SCARD_ATTR_VENDOR_IFD_VERSION",
            SCARD_ATTR_VENDOR_IFD_VERSION,
        ),
        (
            "SCARD_ATTR_VENDOR_IFD_SERIAL_NO",
            SCARD_ATTR_VENDOR_IFD_SERIAL_NO,
        ),
        ("SCARD_ATTR_CHANNEL_ID", SCARD_ATTR_CHANNEL_ID),
        (
            "SCARD_ATTR_CURRENT_PROTOCOL_TYPE",
            SCARD_ATTR_CURRENT_PROTOCOL_TYPE,
        ),
        ("SCARD_ATTR_ICC_PRESENCE", SCARD_ATTR_ICC_PRESENCE),
        (
            "SCARD_ATTR_ICC_INTERFACE_STATUS",
            SCARD_ATTR_ICC_INTERFACE_STATUS,
        ),
        ("SCARD_ATTR_ATR_STRING", SCARD_ATTR_ATR_STRING),
        ("SCARD_ATTR_MAXINPUT", SCARD_ATTR_MAXINPUT),
    ];
    for &(name, value) in dwords {
        // DWORD is u64 only on LP64 targets; the cast is for the others.
        #[allow(clippy::unnecessary_cast)]
        check(name, value as u64);
    }
    check("IFD_NEGOTIATE_PTS1", IFD_NEGOTIATE_PTS1.into());
    check("IFD_NEGOTIATE_PTS2", IFD_NEGOTIATE_PTS2.into());
    check("IFD_NEGOTIATE_PTS3", IFD_NEGOTIATE_PTS3.into());
    check("MAX_ATR_SIZE", MAX_ATR_SIZE as u64);
    check("MAX_BUFFER_SIZE", MAX_BUFFER_SIZE as u64);
    check("MAX_BUFFER_SIZE_EXTENDED", MAX_BUFFER_SIZE_EXTENDED as u64);
    check(
        "CM_IOCTL_GET_FEATURE_REQUEST",
        CM_IOCTL_GET_FEATURE_REQUEST.into(),
    );
    check(
        "FEATURE_VERIFY_PIN_DIRECT",
        FEATURE_VERIFY_PIN_DIRECT.into(),
    );
    check(
        "FEATURE_MODIFY_PIN_DIRECT",
        FEATURE_MODIFY_PIN_DIRECT.into(),
    );
    check(
        "FEATURE_IFD_PIN_PROPERTIES",
        FEATURE_IFD_PIN_PROPERTIES.into(),
    );
    check(
        "FEATURE_GET_TLV_PROPERTIES",
        FEATURE_GET_TLV_PROPERTIES.into(),
    );
    check("FEATURE_CCID_ESC_COMMAND", FEATURE_CCID_ESC_COMMAND.into());
    // abData is a flexible array: its offset is the header size we parse.
    check(
        "offsetof(PIN_VERIFY_STRUCTURE, abData)",
        PIN_VERIFY_STRUCTURE_HEADER as u64,
    );
    check("offsetof(PIN_VERIFY_STRUCTURE, ulDataLength)", 15);
    check(
        "offsetof(PIN_MODIFY_STRUCTURE, abData)",
        PIN_MODIFY_STRUCTURE_HEADER as u64,
    );
    check("offsetof(PIN_MODIFY_STRUCTURE, ulDataLength)", 20);
    check("offsetof(PIN_MODIFY_STRUCTURE, bNumberMessage)", 11);
    check("offsetof(PIN_MODIFY_STRUCTURE, bMsgIndex1)", 14);
    check("offsetof(PIN_MODIFY_STRUCTURE, bTeoPrologue)", 17);
    check(
        "sizeof(PIN_PROPERTIES_STRUCTURE)",
        PIN_PROPERTIES_STRUCTURE_SIZE as u64,
    );
    let tags: &[(&str, u8)] = &[
        ("PCSCv2_PART10_PROPERTY_wLcdLayout", property::W_LCD_LAYOUT),
        (
            "PCSCv2_PART10_PROPERTY_bEntryValidationCondition",
            property::B_ENTRY_VALIDATION_CONDITION,
        ),
        ("PCSCv2_PART10_PROPERTY_bTimeOut2", property::B_TIME_OUT2),
        (
            "PCSCv2_PART10_PROPERTY_wLcdMaxCharacters",
            property::W_LCD_MAX_CHARACTERS,
        ),
        (
            "PCSCv2_PART10_PROPERTY_wLcdMaxLines",
            property::W_LCD_MAX_LINES,
        ),
        (
            "PCSCv2_PART10_PROPERTY_bMinPINSize",
            property::B_MIN_PIN_SIZE,
        ),
        (
            "PCSCv2_PART10_PROPERTY_bMaxPINSize",
            property::B_MAX_PIN_SIZE,
        ),
        (
            "PCSCv2_PART10_PROPERTY_sFirmwareID",
            property::S_FIRMWARE_ID,
        ),
        (
            "PCSCv2_PART10_PROPERTY_bPPDUSupport",
            property::B_PPDU_SUPPORT,
        ),
        (
            "PCSCv2_PART10_PROPERTY_dwMaxAPDUDataSize",
            property::DW_MAX_APDU_DATA_SIZE,
        ),
        ("PCSCv2_PART10_PROPERTY_wIdVendor", property::W_ID_VENDOR),
        ("PCSCv2_PART10_PROPERTY_wIdProduct", property::W_ID_PRODUCT),
    ];
    for &(name, value) in tags {
        check(name, value.into());
    }
}
