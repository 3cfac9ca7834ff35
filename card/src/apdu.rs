//! Command APDUs (ISO/IEC 7816-4 §5.1): a borrowed representation and its
//! short and extended encodings, and the response split into data and SW.
//!
//! `ne` follows the standard: 0 means no Le field, 256 is the largest short
//! Le (encoded 00), 65536 the largest extended one (encoded 0000).

use std::fmt;

use super::error::{Error, Result, Sw};

/// Largest Nc of a short APDU.
pub const SHORT_MAX_NC: usize = 255;
/// Largest Ne of a short APDU.
pub const SHORT_MAX_NE: usize = 256;
/// Largest Nc of an extended APDU.
pub const EXTENDED_MAX_NC: usize = 65_535;
/// Largest Ne of an extended APDU.
pub const EXTENDED_MAX_NE: usize = 65_536;
/// Largest encoded short APDU: header, Lc, 255 data bytes, Le.
pub const SHORT_MAX_APDU: usize = 4 + 1 + SHORT_MAX_NC + 1;
/// Largest encoded extended APDU: header, 3-byte Lc, data, 2-byte Le.
pub const EXTENDED_MAX_APDU: usize = 4 + 3 + EXTENDED_MAX_NC + 2;

/// Instruction bytes used by the service layer.
pub mod ins {
    /// SELECT.
    pub const SELECT: u8 = 0xA4;
    /// READ BINARY, offset in P1-P2.
    pub const READ_BINARY: u8 = 0xB0;
    /// READ BINARY, offset in data object 54.
    pub const READ_BINARY_ODD: u8 = 0xB1;
    /// UPDATE BINARY, offset in P1-P2.
    pub const UPDATE_BINARY: u8 = 0xD6;
    /// UPDATE BINARY, offset in data object 54.
    pub const UPDATE_BINARY_ODD: u8 = 0xD7;
    /// READ RECORD(S).
    pub const READ_RECORD: u8 = 0xB2;
    /// UPDATE RECORD.
    pub const UPDATE_RECORD: u8 = 0xDC;
    /// APPEND RECORD.
    pub const APPEND_RECORD: u8 = 0xE2;
    /// VERIFY.
    pub const VERIFY: u8 = 0x20;
    /// CHANGE REFERENCE DATA.
    pub const CHANGE_REFERENCE_DATA: u8 = 0x24;
    /// RESET RETRY COUNTER.
    pub const RESET_RETRY_COUNTER: u8 = 0x2C;
    /// GET CHALLENGE.
    pub const GET_CHALLENGE: u8 = 0x84;
    /// INTERNAL AUTHENTICATE.
    pub const INTERNAL_AUTHENTICATE: u8 = 0x88;
    /// EXTERNAL AUTHENTICATE.
    pub const EXTERNAL_AUTHENTICATE: u8 = 0x82;
    /// GENERAL AUTHENTICATE.
    pub const GENERAL_AUTHENTICATE: u8 = 0x87;
    /// GET RESPONSE.
    pub const GET_RESPONSE: u8 = 0xC0;
    /// CREATE FILE (ISO/IEC 7816-9 §8.2).
    pub const CREATE_FILE: u8 = 0xE0;
    /// DELETE FILE (ISO/IEC 7816-9 §8.3).
    pub const DELETE_FILE: u8 = 0xE4;
    /// DEACTIVATE FILE (ISO/IEC 7816-9 §8.4).
    pub const DEACTIVATE_FILE: u8 = 0x04;
    /// ACTIVATE FILE (ISO/IEC 7816-9 §8.5).
    pub const ACTIVATE_FILE: u8 = 0x44;
    /// GET DATA, P1-P2 a tag (ISO/IEC 7816-4 §11.4.3).
    pub const GET_DATA: u8 = 0xCA;
    /// PUT DATA, P1-P2 a tag (ISO/IEC 7816-4 §11.4.6).
    pub const PUT_DATA: u8 = 0xDA;
}

/// A command APDU over borrowed data.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Command<'a> {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (Nc = its length).
    pub data: &'a [u8],
    /// Ne: most response bytes expected; 0 = no Le field.
    pub ne: usize,
}

impl<'a> Command<'a> {
    /// A command with CLA 00, no data and no Le.
    pub fn new(ins: u8, p1: u8, p2: u8) -> Self {
        Command {
            cla: 0x00,
            ins,
            p1,
            p2,
            data: &[],
            ne: 0,
        }
    }

    /// The same command with this data field.
    pub fn with_data(self, data: &'a [u8]) -> Self {
        Command { data, ..self }
    }

    /// The same command with this Ne.
    pub fn with_ne(self, ne: usize) -> Self {
        Command { ne, ..self }
    }

    /// The same command with this class byte.
    pub fn with_cla(self, cla: u8) -> Self {
        Command { cla, ..self }
    }

    /// Whether the command needs the extended encoding.
    pub fn needs_extended(&self) -> bool {
        self.data.len() > SHORT_MAX_NC || self.ne > SHORT_MAX_NE
    }

    /// Length of the encoding chosen by [`Command::encode`].
    pub fn encoded_len(&self, extended: bool) -> usize {
        let nc = self.data.len();
        let ext = extended || self.needs_extended();
        let lc = match (nc, ext) {
            (0, _) => 0,
            (_, false) => 1,
            (_, true) => 3,
        };
        let le = match (self.ne, ext, nc) {
            (0, _, _) => 0,
            (_, false, _) => 1,
            (_, true, 0) => 3,
            (_, true, _) => 2,
        };
        4 + lc + nc + le
    }

    /// Appends the encoding to `out`: short when it fits (unless `extended`
    /// asks for the extended form anyway), extended otherwise.
    pub fn encode(&self, extended: bool, out: &mut Vec<u8>) -> Result<()> {
        let nc = self.data.len();
        if nc > EXTENDED_MAX_NC || self.ne > EXTENDED_MAX_NE {
            return Err(Error::InvalidRequest("Nc or Ne beyond the extended limits"));
        }
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if extended || self.needs_extended() {
            // Extended: Lc is 00 + 2 bytes; Le is 2 bytes after Lc, or 00 +
            // 2 bytes when there is no Lc. 65536 is encoded 0000.
            if nc > 0 {
                out.push(0);
                out.extend_from_slice(&(nc as u16).to_be_bytes());
                out.extend_from_slice(self.data);
            }
            if self.ne > 0 {
                if nc == 0 {
                    out.push(0);
                }
                out.extend_from_slice(&((self.ne % EXTENDED_MAX_NE) as u16).to_be_bytes());
            }
        } else {
            if nc > 0 {
                out.push(nc as u8);
                out.extend_from_slice(self.data);
            }
            if self.ne > 0 {
                out.push((self.ne % SHORT_MAX_NE) as u8);
            }
        }
        Ok(())
    }

    /// The encoding as a new vector.
    pub fn to_bytes(&self, extended: bool) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.encoded_len(extended));
        self.encode(extended, &mut out)?;
        Ok(out)
    }
}

impl fmt::Debug for Command<'_> {
    /// The header and lengths only: command data may hold a PIN or a key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Command({:02X} {:02X} {:02X} {:02X}, Nc={}, Ne={})",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len(),
            self.ne
        )
    }
}

/// A response APDU: data field and status word.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// The response data field.
    pub data: Vec<u8>,
    /// SW1-SW2.
    pub sw: Sw,
}

impl Response {
    /// Splits the trailing status word off a response; `None` when there
    /// are fewer than two bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Response> {
        let split = bytes.len().checked_sub(2)?;
        Some(Response {
            data: bytes[..split].to_vec(),
            sw: Sw::new(bytes[split], bytes[split + 1]),
        })
    }

    /// The data when the SW is 9000, the typed error otherwise.
    pub fn into_result(self) -> Result<Vec<u8>> {
        if self.sw.is_ok() {
            Ok(self.data)
        } else {
            Err(Error::status(self.sw))
        }
    }
}

impl fmt::Debug for Response {
    /// Length and SW only: response data may be secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Response({} bytes, SW {})", self.data.len(), self.sw)
    }
}
