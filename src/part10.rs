//! PC/SC part 10 ("IFDs with Secure PIN Entry Capabilities", v2.02):
//! the control code that lists a reader's features, the feature tags, the
//! TLV property tags and the sizes of the packed PIN structures, with
//! pcsc-lite's values (`PCSC/reader.h`).
//!
//! Both sides of part 10 use them: the pcscd bundle answers with them
//! (the `ferroccid-ifd` crate), the card layer asks with them over PC/SC
//! (`card::pcsc`). `tests/ifd_abi.rs` checks every value against the
//! installed `reader.h`.

/// `SCARD_CTL_CODE(code)`: pcsc-lite's control code for `code`.
pub const fn scard_ctl_code(code: u32) -> u32 {
    0x4200_0000 + code
}

/// `CM_IOCTL_GET_FEATURE_REQUEST`, `SCARD_CTL_CODE(3400)`: asks the driver
/// for its features as TLVs (tag, 4, big-endian control code; part 10 §2.2).
pub const CM_IOCTL_GET_FEATURE_REQUEST: u32 = scard_ctl_code(3400);

/// Feature tag: PIN verification on the pad.
pub const FEATURE_VERIFY_PIN_DIRECT: u8 = 0x06;
/// Feature tag: PIN modification on the pad.
pub const FEATURE_MODIFY_PIN_DIRECT: u8 = 0x07;
/// Feature tag: PIN_PROPERTIES_STRUCTURE.
pub const FEATURE_IFD_PIN_PROPERTIES: u8 = 0x0A;
/// Feature tag: reader properties as TLVs ([`property`]).
pub const FEATURE_GET_TLV_PROPERTIES: u8 = 0x12;
/// Feature tag: raw CCID escape (PC_to_RDR_Escape).
pub const FEATURE_CCID_ESC_COMMAND: u8 = 0x13;

/// `sizeof(PIN_VERIFY_STRUCTURE)` without `abData` (packed).
pub const PIN_VERIFY_STRUCTURE_HEADER: usize = 19;
/// `sizeof(PIN_MODIFY_STRUCTURE)` without `abData` (packed).
pub const PIN_MODIFY_STRUCTURE_HEADER: usize = 24;
/// `sizeof(PIN_PROPERTIES_STRUCTURE)`.
pub const PIN_PROPERTIES_STRUCTURE_SIZE: usize = 4;

/// Property tags of FEATURE_GET_TLV_PROPERTIES (`PCSCv2_PART10_PROPERTY_*`;
/// part 10 §2.6.14): each value is tag, length, little-endian value.
pub mod property {
    /// `wLcdLayout`.
    pub const W_LCD_LAYOUT: u8 = 1;
    /// `bEntryValidationCondition`.
    pub const B_ENTRY_VALIDATION_CONDITION: u8 = 2;
    /// `bTimeOut2`.
    pub const B_TIME_OUT2: u8 = 3;
    /// `wLcdMaxCharacters`.
    pub const W_LCD_MAX_CHARACTERS: u8 = 4;
    /// `wLcdMaxLines`.
    pub const W_LCD_MAX_LINES: u8 = 5;
    /// `bMinPINSize`.
    pub const B_MIN_PIN_SIZE: u8 = 6;
    /// `bMaxPINSize`.
    pub const B_MAX_PIN_SIZE: u8 = 7;
    /// `sFirmwareID`.
    pub const S_FIRMWARE_ID: u8 = 8;
    /// `bPPDUSupport`.
    pub const B_PPDU_SUPPORT: u8 = 9;
    /// `dwMaxAPDUDataSize`: 0 = short APDUs only, else the longest
    /// command data field the reader carries.
    pub const DW_MAX_APDU_DATA_SIZE: u8 = 10;
    /// `wIdVendor`.
    pub const W_ID_VENDOR: u8 = 11;
    /// `wIdProduct`.
    pub const W_ID_PRODUCT: u8 = 12;
}
