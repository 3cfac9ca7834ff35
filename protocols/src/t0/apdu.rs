//! Command APDU cases (ISO/IEC 7816-4 §5.1), as a view over the caller's
//! bytes.
//!
//! T=0 needs the case before it can build a TPDU: P3 is Lc for commands
//! with data and Le for commands without, and case 4 becomes case 3 plus
//! GET RESPONSE. Parsing follows the length rules of §5.1 exactly; a
//! length that fits none of the seven cases is an error, not a guess.

use core::fmt;

/// The seven APDU cases of ISO/IEC 7816-4 §5.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApduCase {
    /// No command data, no response data: `CLA INS P1 P2`.
    Case1,
    /// No command data, short Le (one byte; 00 means 256).
    Case2Short,
    /// Short Lc and command data, no Le.
    Case3Short,
    /// Short Lc, command data and short Le.
    Case4Short,
    /// Extended Le (00 then two bytes; 0000 means 65 536).
    Case2Extended,
    /// Extended Lc (00 then two bytes) and command data, no Le.
    Case3Extended,
    /// Extended Lc, command data and extended Le.
    Case4Extended,
}

impl ApduCase {
    /// Whether the command carries command data (cases 3 and 4).
    pub const fn has_command_data(self) -> bool {
        matches!(
            self,
            ApduCase::Case3Short
                | ApduCase::Case4Short
                | ApduCase::Case3Extended
                | ApduCase::Case4Extended
        )
    }

    /// Whether the command expects response data (cases 2 and 4).
    pub const fn expects_response_data(self) -> bool {
        matches!(
            self,
            ApduCase::Case2Short
                | ApduCase::Case4Short
                | ApduCase::Case2Extended
                | ApduCase::Case4Extended
        )
    }
}

/// Why bytes are not a command APDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApduError {
    /// Fewer than the four header bytes.
    TooShort,
    /// CLA = FF is reserved for PPS (ISO/IEC 7816-3 §9) and invalid in a
    /// command.
    InvalidClass,
    /// The lengths in the body fit none of the seven cases; `len` is the
    /// total length of the bytes given.
    InconsistentLength {
        /// Total length of the rejected APDU.
        len: usize,
    },
}

impl fmt::Display for ApduError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApduError::TooShort => f.write_str("command APDU shorter than its 4-byte header"),
            ApduError::InvalidClass => f.write_str("CLA FF is invalid in a command APDU"),
            ApduError::InconsistentLength { len } => {
                write!(
                    f,
                    "command APDU of {len} bytes fits no case of ISO/IEC 7816-4 §5.1"
                )
            }
        }
    }
}

/// A checked command APDU: header, command data and Ne, borrowed from the
/// caller's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandApdu<'a> {
    header: [u8; 4],
    data: &'a [u8],
    ne: u32,
    case: ApduCase,
}

impl<'a> CommandApdu<'a> {
    /// Classifies `bytes` by the rules of ISO/IEC 7816-4 §5.1.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ApduError> {
        let (header, body) = match bytes.split_first_chunk::<4>() {
            Some((header, body)) => (*header, body),
            None => return Err(ApduError::TooShort),
        };
        if header[0] == 0xFF {
            return Err(ApduError::InvalidClass);
        }
        let inconsistent = Err(ApduError::InconsistentLength { len: bytes.len() });
        let short_ne = |b: u8| if b == 0 { 256 } else { u32::from(b) };
        let extended_ne = |hi: u8, lo: u8| match u16::from_be_bytes([hi, lo]) {
            0 => 65_536,
            n => u32::from(n),
        };
        let (case, data, ne) = match *body {
            [] => (ApduCase::Case1, &body[..0], 0),
            [le] => (ApduCase::Case2Short, &body[..0], short_ne(le)),
            [0, hi, lo] => (ApduCase::Case2Extended, &body[..0], extended_ne(hi, lo)),
            [0, hi, lo, ref rest @ ..] if !rest.is_empty() => {
                let lc = usize::from(u16::from_be_bytes([hi, lo]));
                if lc == 0 {
                    return inconsistent;
                }
                if rest.len() == lc {
                    (ApduCase::Case3Extended, rest, 0)
                } else if rest.len() == lc + 2 {
                    let ne = extended_ne(rest[lc], rest[lc + 1]);
                    (ApduCase::Case4Extended, &rest[..lc], ne)
                } else {
                    return inconsistent;
                }
            }
            [lc, ref rest @ ..] if lc != 0 => {
                let lc = usize::from(lc);
                if rest.len() == lc {
                    (ApduCase::Case3Short, rest, 0)
                } else if rest.len() == lc + 1 {
                    (ApduCase::Case4Short, &rest[..lc], short_ne(rest[lc]))
                } else {
                    return inconsistent;
                }
            }
            _ => return inconsistent,
        };
        Ok(CommandApdu {
            header,
            data,
            ne,
            case,
        })
    }

    /// Which of the seven cases this is.
    pub const fn case(&self) -> ApduCase {
        self.case
    }

    /// CLA INS P1 P2.
    pub const fn header(&self) -> [u8; 4] {
        self.header
    }

    /// The class byte.
    pub const fn cla(&self) -> u8 {
        self.header[0]
    }

    /// The instruction byte.
    pub const fn ins(&self) -> u8 {
        self.header[1]
    }

    /// The command data (Nc = its length; empty for cases 1 and 2).
    pub const fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Ne, the maximum number of response data bytes expected (0 for cases
    /// 1 and 3; a coded 00 / 0000 is already turned into 256 / 65 536).
    pub const fn ne(&self) -> u32 {
        self.ne
    }
}
