//! The pinpad: builds the command APDU of a PC_to_RDR_Secure from its APDU
//! template and the digits the user "typed" (CCID §6.1.11, tables 6.1-5/6).
//!
//! Positions in `bmFormatString` / `bmPINLengthFormat` count from the first
//! byte of the template's data field (after CLA INS P1 P2 Lc), in bits or in
//! bytes as the unit bit says; the PIN block is `bmPINBlockString & 0x0F`
//! bytes long. A PIN is written as binary (one digit per unit), BCD (one
//! digit per nibble) or ASCII, left or right justified inside its block.

use crate::profile::PinEntry;
use ferroccid::ccid::secure::{PinModify, PinVerify};
use ferroccid::ccid::SlotError;

/// `bmFormatString` fields.
#[derive(Debug, Clone, Copy)]
struct Format {
    /// Position unit is bytes (else bits).
    unit_bytes: bool,
    /// PIN position after format, in units.
    position: usize,
    /// Right justified (else left).
    right: bool,
    /// 0 binary, 1 BCD, 2 ASCII.
    kind: u8,
}

impl Format {
    fn parse(b: u8) -> Format {
        Format {
            unit_bytes: b & 0x80 != 0,
            position: usize::from((b >> 3) & 0x0F),
            right: b & 0x04 != 0,
            kind: b & 0x03,
        }
    }

    fn bits_per_digit(self) -> usize {
        match self.kind {
            1 => 4,
            // Binary: one digit per unit; ASCII: one digit per byte.
            0 if !self.unit_bytes => 4,
            _ => 8,
        }
    }
}

/// Write `value` (`width` bits, MSB first) at bit `offset` of `data`.
fn put_bits(data: &mut [u8], offset: usize, width: usize, value: u32) -> Result<(), SlotError> {
    if offset + width > data.len() * 8 {
        return Err(SlotError::BadParameter(10));
    }
    for i in 0..width {
        let bit = (value >> (width - 1 - i)) & 1;
        let at = offset + i;
        let mask = 0x80u8 >> (at % 8);
        if bit == 1 {
            data[at / 8] |= mask;
        } else {
            data[at / 8] &= !mask;
        }
    }
    Ok(())
}

/// Insert `pin` into the data field `data`, its block starting at byte `block_at`.
fn insert_pin(
    data: &mut [u8],
    block_at: usize,
    format_string: u8,
    pin_block_string: u8,
    pin_length_format: u8,
    pin: &str,
) -> Result<(), SlotError> {
    let format = Format::parse(format_string);
    let digits: Vec<u8> = pin.bytes().collect();
    let unit = if format.unit_bytes { 8 } else { 1 };
    let block_bytes = usize::from(pin_block_string & 0x0F);
    let per_digit = format.bits_per_digit();
    let pin_bits = digits.len() * per_digit;
    let start = block_at * 8 + format.position * unit;
    let start = if format.right && block_bytes > 0 {
        (block_at + block_bytes) * 8 - pin_bits
    } else {
        start
    };
    for (i, &d) in digits.iter().enumerate() {
        let value = match format.kind {
            2 => u32::from(d),
            _ => u32::from(d.wrapping_sub(b'0')),
        };
        put_bits(data, start + i * per_digit, per_digit, value)?;
    }
    let length_bits = usize::from(pin_block_string >> 4);
    if length_bits > 0 {
        let unit = if pin_length_format & 0x10 != 0 { 8 } else { 1 };
        let at = block_at * 8 + usize::from(pin_length_format & 0x0F) * unit;
        put_bits(data, at, length_bits, digits.len() as u32)?;
    }
    Ok(())
}

/// Digits typed, or the error the reader answers.
fn typed(entry: &PinEntry) -> Result<(&str, &str), SlotError> {
    match entry {
        PinEntry::Typed { pin, new_pin } => Ok((pin, new_pin)),
        PinEntry::Cancelled => Err(SlotError::PinCancelled),
        PinEntry::Timeout => Err(SlotError::PinTimeout),
    }
}

/// Check the typed length against `wPINMaxExtraDigit` (min in the high byte, max in the low).
fn check_length(pin: &str, extra: u16) -> Result<(), SlotError> {
    let (min, max) = (usize::from(extra >> 8), usize::from(extra & 0xFF));
    // A real pad does not let the user submit a PIN out of range; the entry
    // then times out.
    if pin.len() < min || (max > 0 && pin.len() > max) {
        return Err(SlotError::PinTimeout);
    }
    Ok(())
}

/// Split a template into header (CLA INS P1 P2 Lc) and data.
fn template(apdu: &[u8]) -> Result<Vec<u8>, SlotError> {
    if apdu.len() < 5 {
        // Offset of abData: the structure's APDU is malformed.
        return Err(SlotError::BadParameter(10));
    }
    Ok(apdu.to_vec())
}

/// The APDU of a PIN verification with the typed PIN inserted.
pub fn verify_apdu(v: &PinVerify<'_>, entry: &PinEntry) -> Result<Vec<u8>, SlotError> {
    let (pin, _) = typed(entry)?;
    check_length(pin, v.pin_max_extra_digit)?;
    let mut apdu = template(v.apdu)?;
    insert_pin(
        &mut apdu[5..],
        0,
        v.format_string,
        v.pin_block_string,
        v.pin_length_format,
        pin,
    )?;
    Ok(apdu)
}

/// The APDU of a PIN modification with the current (if `bConfirmPIN` bit 1
/// asks for it) and new PIN inserted at their offsets.
pub(crate) fn modify_apdu(m: &PinModify<'_>, entry: &PinEntry) -> Result<Vec<u8>, SlotError> {
    let (pin, new_pin) = typed(entry)?;
    check_length(new_pin, m.pin_max_extra_digit)?;
    let mut apdu = template(m.apdu)?;
    let data = &mut apdu[5..];
    if m.confirm_pin & 0x02 != 0 {
        insert_pin(
            data,
            usize::from(m.insertion_offset_old),
            m.format_string,
            m.pin_block_string,
            m.pin_length_format,
            pin,
        )?;
    }
    insert_pin(
        data,
        usize::from(m.insertion_offset_new),
        m.format_string,
        m.pin_block_string,
        m.pin_length_format,
        new_pin,
    )?;
    Ok(apdu)
}
