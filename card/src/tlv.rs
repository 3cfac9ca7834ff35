//! BER-TLV data objects (ISO/IEC 7816-4 §6.3, ISO/IEC 8825-1) as zero-copy
//! views: the parser borrows the input and checks every length before it
//! slices, so hostile input yields an error, never a panic.
//!
//! Accepted: tags of one to four bytes, definite lengths in one to five
//! bytes (up to 2^32 - 1), and 00 / FF padding between objects (§6.3 lets
//! cards fill with them). The indefinite length form (80) is refused: 7816
//! does not use it.

use std::fmt;

/// A tag, its bytes packed big-endian into a `u32` (`6F`, `5F2D`, `7F49`…).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u32);

impl Tag {
    /// The first tag byte.
    fn first_byte(self) -> u8 {
        let mut v = self.0;
        while v > 0xFF {
            v >>= 8;
        }
        v as u8
    }

    /// Class bits (b8-b7 of the first byte): 0 universal, 1 application,
    /// 2 context-specific, 3 private.
    pub fn class(self) -> u8 {
        self.first_byte() >> 6
    }

    /// Whether the value is itself a sequence of data objects (b6 set).
    pub fn is_constructed(self) -> bool {
        self.first_byte() & 0x20 != 0
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({:02X})", self.0)
    }
}

/// Why bytes are not a BER-TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlvError {
    /// The input ends inside a tag, a length or a value.
    Truncated,
    /// A tag longer than four bytes.
    TagTooLong,
    /// Length byte 80 (indefinite) or a length field of more than 4 bytes.
    BadLength,
}

impl fmt::Display for TlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlvError::Truncated => "BER-TLV truncated",
            TlvError::TagTooLong => "BER-TLV tag longer than four bytes",
            TlvError::BadLength => "BER-TLV length form not allowed",
        })
    }
}

impl std::error::Error for TlvError {}

/// One data object: tag and value, borrowed from the input.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    tag: Tag,
    value: &'a [u8],
}

impl fmt::Debug for Tlv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tlv({:02X}, {} bytes)", self.tag.0, self.value.len())
    }
}

impl<'a> Tlv<'a> {
    /// Parses the first data object of `bytes` (after any padding) and
    /// returns it with the bytes that follow. `Ok(None)` when only padding
    /// or nothing is left.
    pub fn parse(bytes: &'a [u8]) -> Result<Option<(Tlv<'a>, &'a [u8])>, TlvError> {
        let Some((tag, len, rest)) = parse_header(bytes)? else {
            return Ok(None);
        };
        let value = rest.get(..len).ok_or(TlvError::Truncated)?;
        Ok(Some((Tlv { tag, value }, &rest[len..])))
    }

    /// The tag.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// The value field.
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The data objects inside a constructed object's value.
    pub fn children(&self) -> TlvIter<'a> {
        TlvIter::new(self.value)
    }
}

/// A tag, the announced value length, and the bytes after the length field.
pub type Header<'a> = (Tag, usize, &'a [u8]);

/// Parses the tag and length of the first data object of `bytes` (after any
/// padding): the tag, the announced value length, and the bytes after the
/// length field, which may be shorter than announced (a response cut by
/// Ne). `Ok(None)` when only padding or nothing is left.
pub fn parse_header(bytes: &[u8]) -> Result<Option<Header<'_>>, TlvError> {
    let start = bytes
        .iter()
        .position(|&b| b != 0x00 && b != 0xFF)
        .unwrap_or(bytes.len());
    let bytes = &bytes[start..];
    let Some((&first, mut rest)) = bytes.split_first() else {
        return Ok(None);
    };
    let mut tag = u32::from(first);
    if first & 0x1F == 0x1F {
        // Subsequent tag bytes: b8 set means another one follows.
        let mut count = 1;
        loop {
            let (&b, after) = rest.split_first().ok_or(TlvError::Truncated)?;
            rest = after;
            count += 1;
            if count > 4 {
                return Err(TlvError::TagTooLong);
            }
            tag = (tag << 8) | u32::from(b);
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let (&len_byte, after) = rest.split_first().ok_or(TlvError::Truncated)?;
    rest = after;
    let len = match len_byte {
        0x00..=0x7F => usize::from(len_byte),
        0x81..=0x84 => {
            let k = usize::from(len_byte & 0x7F);
            let field = rest.get(..k).ok_or(TlvError::Truncated)?;
            rest = &rest[k..];
            let n = field.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b));
            usize::try_from(n).map_err(|_| TlvError::Truncated)?
        }
        _ => return Err(TlvError::BadLength),
    };
    Ok(Some((Tag(tag), len, rest)))
}

/// The data objects of a byte string, in order; stops after the first error.
#[derive(Debug, Clone)]
pub struct TlvIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> TlvIter<'a> {
    /// Iterates over the data objects of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        TlvIter {
            rest: bytes,
            failed: false,
        }
    }

    /// The first object with this tag at this level; errors before it count.
    pub fn find(self, tag: Tag) -> Result<Option<Tlv<'a>>, TlvError> {
        for item in self {
            let tlv = item?;
            if tlv.tag == tag {
                return Ok(Some(tlv));
            }
        }
        Ok(None)
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match Tlv::parse(self.rest) {
            Ok(Some((tlv, rest))) => {
                self.rest = rest;
                Some(Ok(tlv))
            }
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Appends a data object (tag bytes without leading zeros, shortest length
/// form) to `out`.
pub fn encode(tag: Tag, value: &[u8], out: &mut Vec<u8>) {
    let tag_bytes = tag.0.to_be_bytes();
    let skip = tag_bytes.iter().take(3).take_while(|&&b| b == 0).count();
    out.extend_from_slice(&tag_bytes[skip..]);
    let n = value.len();
    match n {
        0..=0x7F => out.push(n as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, n as u8]),
        0x100..=0xFFFF => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        0x1_0000..=0xFF_FFFF => {
            out.extend_from_slice(&[0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8])
        }
        _ => {
            out.push(0x84);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(value);
}
