//! `abData` of PC_to_RDR_Secure (CCID §6.1.11): `bPINOperation` followed by
//! the PIN verification or PIN modification data structure.

/// Why a Secure `abData` cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecureDataError {
    /// Which rule was broken.
    pub reason: &'static str,
}

/// The PIN verification data structure (`bPINOperation` 0), CCID table 6.1-5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinVerify<'a> {
    /// `bTimeOut`: seconds, 0 = reader default.
    pub timeout: u8,
    /// `bmFormatString`.
    pub format_string: u8,
    /// `bmPINBlockString`.
    pub pin_block_string: u8,
    /// `bmPINLengthFormat`.
    pub pin_length_format: u8,
    /// `wPINMaxExtraDigit`: minimum digits in the high byte, maximum in the low byte.
    pub pin_max_extra_digit: u16,
    /// `bEntryValidationCondition`.
    pub entry_validation_condition: u8,
    /// `bNumberMessage`.
    pub number_message: u8,
    /// `wLangId`.
    pub lang_id: u16,
    /// `bMsgIndex`.
    pub msg_index: u8,
    /// `bTeoPrologue`: the T=1 prologue (NAD, PCB, LEN) to use; zero for T=0.
    pub teo_prologue: [u8; 3],
    /// `abPINApdu`: the command APDU the PIN is inserted into.
    pub apdu: &'a [u8],
}

/// The PIN modification data structure (`bPINOperation` 1), CCID table 6.1-6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinModify<'a> {
    /// `bTimeOut`: seconds, 0 = reader default.
    pub timeout: u8,
    /// `bmFormatString`.
    pub format_string: u8,
    /// `bmPINBlockString`.
    pub pin_block_string: u8,
    /// `bmPINLengthFormat`.
    pub pin_length_format: u8,
    /// `bInsertionOffsetOld`.
    pub insertion_offset_old: u8,
    /// `bInsertionOffsetNew`.
    pub insertion_offset_new: u8,
    /// `wPINMaxExtraDigit`: minimum digits in the high byte, maximum in the low byte.
    pub pin_max_extra_digit: u16,
    /// `bConfirmPIN`.
    pub confirm_pin: u8,
    /// `bEntryValidationCondition`.
    pub entry_validation_condition: u8,
    /// `bNumberMessage`: also decides how many `bMsgIndex` bytes are on the wire.
    pub number_message: u8,
    /// `wLangId`.
    pub lang_id: u16,
    /// `bMsgIndex1..3`; only the first [`PinModify::msg_index_count`] are sent.
    pub msg_index: [u8; 3],
    /// `bTeoPrologue`: the T=1 prologue (NAD, PCB, LEN) to use; zero for T=0.
    pub teo_prologue: [u8; 3],
    /// `abPINApdu`.
    pub apdu: &'a [u8],
}

impl PinModify<'_> {
    /// How many `bMsgIndex` bytes are present: the specification makes
    /// `bMsgIndex2` conditional on `bNumberMessage` ≥ 2 and `bMsgIndex3` on
    /// `bNumberMessage` = 3; other values (e.g. 0xFF, "reader default") keep all three.
    pub fn msg_index_count(&self) -> usize {
        match self.number_message {
            0 | 1 => 1,
            2 => 2,
            _ => 3,
        }
    }
}

/// Decoded `abData` of PC_to_RDR_Secure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecureData<'a> {
    /// `bPINOperation` 0.
    Verify(PinVerify<'a>),
    /// `bPINOperation` 1.
    Modify(PinModify<'a>),
    /// `bPINOperation` 2..: transfer PIN, wait ICC response, cancel, re-send
    /// last I-block, send next part of APDU; the rest is opaque.
    Other {
        /// `bPINOperation`.
        operation: u8,
        /// Bytes after `bPINOperation`.
        data: &'a [u8],
    },
}

/// Fixed part of the verify structure after `bPINOperation`.
const VERIFY_FIXED: usize = 14;

impl<'a> SecureData<'a> {
    /// Decode `abData` (starting with `bPINOperation`).
    pub fn parse(data: &'a [u8]) -> Result<SecureData<'a>, SecureDataError> {
        let (&op, rest) = data.split_first().ok_or(SecureDataError {
            reason: "Secure abData is empty (no bPINOperation)",
        })?;
        match op {
            0 => {
                if rest.len() < VERIFY_FIXED {
                    return Err(SecureDataError {
                        reason: "PIN verification structure shorter than 15 bytes",
                    });
                }
                let r = rest;
                Ok(SecureData::Verify(PinVerify {
                    timeout: r[0],
                    format_string: r[1],
                    pin_block_string: r[2],
                    pin_length_format: r[3],
                    pin_max_extra_digit: u16::from_le_bytes([r[4], r[5]]),
                    entry_validation_condition: r[6],
                    number_message: r[7],
                    lang_id: u16::from_le_bytes([r[8], r[9]]),
                    msg_index: r[10],
                    teo_prologue: [r[11], r[12], r[13]],
                    apdu: &r[VERIFY_FIXED..],
                }))
            }
            1 => {
                const BEFORE_INDEXES: usize = 14;
                if rest.len() < BEFORE_INDEXES {
                    return Err(SecureDataError {
                        reason: "PIN modification structure shorter than its fixed fields",
                    });
                }
                let r = rest;
                let mut m = PinModify {
                    timeout: r[0],
                    format_string: r[1],
                    pin_block_string: r[2],
                    pin_length_format: r[3],
                    insertion_offset_old: r[4],
                    insertion_offset_new: r[5],
                    pin_max_extra_digit: u16::from_le_bytes([r[6], r[7]]),
                    confirm_pin: r[8],
                    entry_validation_condition: r[9],
                    number_message: r[10],
                    lang_id: u16::from_le_bytes([r[11], r[12]]),
                    msg_index: [r[13], 0, 0],
                    teo_prologue: [0; 3],
                    apdu: &[],
                };
                let count = m.msg_index_count();
                let prologue_at = BEFORE_INDEXES - 1 + count;
                if r.len() < prologue_at + 3 {
                    return Err(SecureDataError {
                        reason: "PIN modification structure truncated before bTeoPrologue",
                    });
                }
                m.msg_index[1..count].copy_from_slice(&r[14..13 + count]);
                m.teo_prologue = [r[prologue_at], r[prologue_at + 1], r[prologue_at + 2]];
                m.apdu = &r[prologue_at + 3..];
                Ok(SecureData::Modify(m))
            }
            operation => Ok(SecureData::Other {
                operation,
                data: rest,
            }),
        }
    }

    /// Size of `abData` on the wire.
    pub fn len(&self) -> usize {
        match self {
            SecureData::Verify(v) => 1 + VERIFY_FIXED + v.apdu.len(),
            SecureData::Modify(m) => 1 + 13 + m.msg_index_count() + 3 + m.apdu.len(),
            SecureData::Other { data, .. } => 1 + data.len(),
        }
    }

    /// Never empty (`bPINOperation` is always there).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Write `abData` into `buf` (caller checked `buf.len() >= self.len()`).
    pub(crate) fn write(&self, buf: &mut [u8]) {
        match self {
            SecureData::Verify(v) => {
                let e = v.pin_max_extra_digit.to_le_bytes();
                let l = v.lang_id.to_le_bytes();
                buf[..15].copy_from_slice(&[
                    0,
                    v.timeout,
                    v.format_string,
                    v.pin_block_string,
                    v.pin_length_format,
                    e[0],
                    e[1],
                    v.entry_validation_condition,
                    v.number_message,
                    l[0],
                    l[1],
                    v.msg_index,
                    v.teo_prologue[0],
                    v.teo_prologue[1],
                    v.teo_prologue[2],
                ]);
                buf[15..15 + v.apdu.len()].copy_from_slice(v.apdu);
            }
            SecureData::Modify(m) => {
                let e = m.pin_max_extra_digit.to_le_bytes();
                let l = m.lang_id.to_le_bytes();
                buf[..14].copy_from_slice(&[
                    1,
                    m.timeout,
                    m.format_string,
                    m.pin_block_string,
                    m.pin_length_format,
                    m.insertion_offset_old,
                    m.insertion_offset_new,
                    e[0],
                    e[1],
                    m.confirm_pin,
                    m.entry_validation_condition,
                    m.number_message,
                    l[0],
                    l[1],
                ]);
                let count = m.msg_index_count();
                buf[14..14 + count].copy_from_slice(&m.msg_index[..count]);
                let at = 14 + count;
                buf[at..at + 3].copy_from_slice(&m.teo_prologue);
                buf[at + 3..at + 3 + m.apdu.len()].copy_from_slice(m.apdu);
            }
            SecureData::Other { operation, data } => {
                buf[0] = *operation;
                buf[1..1 + data.len()].copy_from_slice(data);
            }
        }
    }
}
