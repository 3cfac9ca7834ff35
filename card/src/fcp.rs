//! File control information returned by SELECT (ISO/IEC 7816-4 §7.4): the
//! FCP (62), FMD (64) and FCI (6F) templates decoded into a [`FileInfo`].

use super::tlv::{Tag, Tlv, TlvError, TlvIter};

/// Structure of an EF (file descriptor byte b3-b1, §7.4.5 table 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EfStructure {
    /// 000: no information given.
    NoInformation,
    /// 001: transparent.
    Transparent,
    /// 010: linear fixed.
    LinearFixed,
    /// 011: linear fixed, TLV records.
    LinearFixedTlv,
    /// 100: linear variable.
    LinearVariable,
    /// 101: linear variable, TLV records.
    LinearVariableTlv,
    /// 110: cyclic.
    Cyclic,
    /// 111: cyclic, TLV records.
    CyclicTlv,
}

impl EfStructure {
    fn from_bits(bits: u8) -> Self {
        match bits & 0x07 {
            1 => EfStructure::Transparent,
            2 => EfStructure::LinearFixed,
            3 => EfStructure::LinearFixedTlv,
            4 => EfStructure::LinearVariable,
            5 => EfStructure::LinearVariableTlv,
            6 => EfStructure::Cyclic,
            7 => EfStructure::CyclicTlv,
            _ => EfStructure::NoInformation,
        }
    }

    /// Whether the EF holds records.
    pub fn is_record(self) -> bool {
        !matches!(self, EfStructure::NoInformation | EfStructure::Transparent)
    }
}

/// The file category from the file descriptor byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A dedicated file (b6-b1 = 111000).
    Df,
    /// A working EF, readable by commands (b6-b4 = 000).
    WorkingEf(EfStructure),
    /// An internal EF, used by the card itself (b6-b4 = 001).
    InternalEf(EfStructure),
    /// Proprietary EF categories (b6-b4 = 010 to 110).
    ProprietaryEf(u8),
    /// b8 set: the byte is not a file descriptor (BER-TLV / proprietary).
    Other(u8),
}

impl FileKind {
    /// Decodes the file descriptor byte.
    pub fn from_descriptor(byte: u8) -> Self {
        if byte & 0x80 != 0 {
            return FileKind::Other(byte);
        }
        match (byte >> 3) & 0x07 {
            0b111 => FileKind::Df,
            0b000 => FileKind::WorkingEf(EfStructure::from_bits(byte)),
            0b001 => FileKind::InternalEf(EfStructure::from_bits(byte)),
            _ => FileKind::ProprietaryEf(byte),
        }
    }

    /// Whether this is a DF.
    pub fn is_df(self) -> bool {
        matches!(self, FileKind::Df)
    }
}

/// Life cycle status (tag 8A, §7.4.10 table 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifeCycle {
    /// 00.
    NoInformation,
    /// 01.
    Creation,
    /// 03.
    Initialisation,
    /// 05 or 07.
    Activated,
    /// 04 or 06.
    Deactivated,
    /// 0C to 0F.
    Terminated,
    /// Any other value (proprietary from 10, reserved below).
    Proprietary(u8),
}

impl LifeCycle {
    /// Decodes the life cycle status byte.
    pub fn from_byte(byte: u8) -> Self {
        match byte {
            0x00 => LifeCycle::NoInformation,
            0x01 => LifeCycle::Creation,
            0x03 => LifeCycle::Initialisation,
            0x05 | 0x07 => LifeCycle::Activated,
            0x04 | 0x06 => LifeCycle::Deactivated,
            0x0C..=0x0F => LifeCycle::Terminated,
            other => LifeCycle::Proprietary(other),
        }
    }
}

/// The template the card answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// 62: file control parameters.
    Fcp,
    /// 64: file management data.
    Fmd,
    /// 6F: file control information.
    Fci,
}

/// What SELECT told about a file. Absent fields were not in the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The template.
    pub template: Template,
    /// File category and structure (tag 82, first byte).
    pub kind: Option<FileKind>,
    /// Data bytes of the file (tag 80; or 81, the total size, if 80 is absent).
    pub size: Option<u64>,
    /// Maximum record size (tag 82 bytes 3-4), for record EFs.
    pub max_record_size: Option<u16>,
    /// Number of records (tag 82 byte 5 or 5-6), for record EFs.
    pub record_count: Option<u16>,
    /// File identifier (tag 83).
    pub fid: Option<u16>,
    /// DF name (tag 84).
    pub df_name: Option<Vec<u8>>,
    /// Short EF identifier (tag 88); `Some(None)` = the EF has none.
    pub sfi: Option<Option<u8>>,
    /// Life cycle status (tag 8A).
    pub life_cycle: Option<LifeCycle>,
}

fn be_number(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 8 {
        return None;
    }
    Some(bytes.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)))
}

impl FileInfo {
    /// Decodes a SELECT response data field. `Ok(None)` for an empty answer
    /// (P2 asked for no data); an error for anything that is not one of the
    /// three templates.
    pub fn parse(bytes: &[u8]) -> Result<Option<FileInfo>, TlvError> {
        let Some((outer, _)) = Tlv::parse(bytes)? else {
            return Ok(None);
        };
        let template = match outer.tag() {
            Tag(0x62) => Template::Fcp,
            Tag(0x64) => Template::Fmd,
            Tag(0x6F) => Template::Fci,
            _ => return Err(TlvError::BadLength),
        };
        let mut info = FileInfo {
            template,
            kind: None,
            size: None,
            max_record_size: None,
            record_count: None,
            fid: None,
            df_name: None,
            sfi: None,
            life_cycle: None,
        };
        let mut total_size = None;
        // An FCI may nest an FCP; look one level down too.
        let nested = outer.children().find(Tag(0x62))?;
        let items = outer
            .children()
            .chain(nested.map(|t| t.children()).into_iter().flatten());
        for item in items {
            let tlv = item?;
            let v = tlv.value();
            match tlv.tag() {
                Tag(0x80) => info.size = be_number(v).or(info.size),
                Tag(0x81) => total_size = be_number(v),
                Tag(0x82) => {
                    if let Some(&descriptor) = v.first() {
                        info.kind = Some(FileKind::from_descriptor(descriptor));
                    }
                    match v.len() {
                        3 => info.max_record_size = Some(u16::from(v[2])),
                        4..=6 => {
                            info.max_record_size = Some(u16::from_be_bytes([v[2], v[3]]));
                            info.record_count = match v.len() {
                                5 => Some(u16::from(v[4])),
                                6 => Some(u16::from_be_bytes([v[4], v[5]])),
                                _ => None,
                            };
                        }
                        _ => {}
                    }
                }
                Tag(0x83) if v.len() == 2 => info.fid = Some(u16::from_be_bytes([v[0], v[1]])),
                Tag(0x84) => info.df_name = Some(v.to_vec()),
                Tag(0x88) => {
                    info.sfi = Some(v.first().map(|b| b >> 3).filter(|&s| s != 0));
                }
                Tag(0x8A) => info.life_cycle = v.first().map(|&b| LifeCycle::from_byte(b)),
                _ => {}
            }
        }
        if info.size.is_none() {
            info.size = total_size;
        }
        Ok(Some(info))
    }
}

/// Iterates over the proprietary or unknown objects of a template, for
/// callers that need more than [`FileInfo`] keeps.
pub fn template_objects(bytes: &[u8]) -> Result<TlvIter<'_>, TlvError> {
    match Tlv::parse(bytes)? {
        Some((outer, _)) => Ok(outer.children()),
        None => Ok(TlvIter::new(&[])),
    }
}
