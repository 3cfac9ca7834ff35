//! File management and data objects over [`FileAccess`]: CREATE FILE,
//! DELETE FILE, DEACTIVATE / ACTIVATE FILE (ISO/IEC 7816-9 §8) and GET
//! DATA / PUT DATA (ISO/IEC 7816-4 §11.4). Apart from `file` because
//! these change the card's structure rather than read or write contents.

use super::apdu::{ins, Command};
use super::error::{Error, Result};
use super::file::{FileAccess, Sfi};
use super::tlv::{self, Tag};

/// The structure of a file to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewFileKind<'a> {
    /// A transparent EF of this many bytes.
    Transparent {
        /// Size in bytes.
        size: usize,
    },
    /// A linear EF of records all `record_size` long.
    LinearFixed {
        /// Length of every record.
        record_size: u16,
        /// Most records the file holds.
        max_records: u8,
    },
    /// A linear EF of records up to `max_record_size` long.
    LinearVariable {
        /// Longest record.
        max_record_size: u16,
        /// Most records the file holds.
        max_records: u8,
    },
    /// A DF, optionally named (an AID of 1 to 16 bytes).
    Df {
        /// DF name.
        name: Option<&'a [u8]>,
    },
}

/// A file to create: its FID, structure and optional SFI, sent as an FCP
/// template (62) with data objects 83, 82, 80, 84 and 88.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewFile<'a> {
    /// File identifier.
    pub fid: u16,
    /// Structure.
    pub kind: NewFileKind<'a>,
    /// Short EF identifier (EFs only).
    pub sfi: Option<Sfi>,
}

impl NewFile<'_> {
    /// The FCP template CREATE FILE carries.
    pub fn fcp(&self) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        match self.kind {
            NewFileKind::Transparent { size } => {
                let size = u32::try_from(size)
                    .map_err(|_| Error::InvalidRequest("file size above 4 GiB"))?
                    .to_be_bytes();
                let skip = if size[..2] == [0, 0] { 2 } else { 0 };
                tlv::encode(Tag(0x80), &size[skip..], &mut body);
                tlv::encode(Tag(0x82), &[0x01], &mut body);
            }
            NewFileKind::LinearFixed {
                record_size: size,
                max_records: count,
            }
            | NewFileKind::LinearVariable {
                max_record_size: size,
                max_records: count,
            } => {
                // Descriptor byte, data coding byte 21, record size, count.
                let descriptor = match self.kind {
                    NewFileKind::LinearFixed { .. } => 0x02,
                    _ => 0x04,
                };
                let [hi, lo] = size.to_be_bytes();
                tlv::encode(Tag(0x82), &[descriptor, 0x21, hi, lo, count], &mut body);
            }
            NewFileKind::Df { name } => {
                tlv::encode(Tag(0x82), &[0x38], &mut body);
                if let Some(name) = name {
                    if name.is_empty() || name.len() > 16 {
                        return Err(Error::InvalidRequest("a DF name has 1 to 16 bytes"));
                    }
                    tlv::encode(Tag(0x84), name, &mut body);
                }
            }
        }
        tlv::encode(Tag(0x83), &self.fid.to_be_bytes(), &mut body);
        if let Some(sfi) = self.sfi {
            tlv::encode(Tag(0x88), &[sfi.get() << 3], &mut body);
        }
        let mut fcp = Vec::with_capacity(body.len() + 2);
        tlv::encode(Tag(0x62), &body, &mut fcp);
        Ok(fcp)
    }
}

/// P1-P2 0000 and the FID (or nothing: the current file) as data.
fn file_command(ins: u8, fid: Option<u16>, data: &mut Vec<u8>) -> Command<'_> {
    if let Some(fid) = fid {
        data.extend_from_slice(&fid.to_be_bytes());
    }
    Command::new(ins, 0x00, 0x00).with_data(data)
}

impl FileAccess {
    /// CREATE FILE in the current DF; the card selects the new file.
    pub fn create_file(&self, file: &NewFile<'_>) -> Result<()> {
        let fcp = file.fcp()?;
        let cmd = Command::new(ins::CREATE_FILE, 0x00, 0x00).with_data(&fcp);
        self.attachment.exchange_ok(&cmd).map(drop)
    }

    /// DELETE FILE: the file `fid` (searched like SELECT by FID), or the
    /// current file when `None`.
    pub fn delete_file(&self, fid: Option<u16>) -> Result<()> {
        let mut data = Vec::new();
        let cmd = file_command(ins::DELETE_FILE, fid, &mut data);
        self.attachment.exchange_ok(&cmd).map(drop)
    }

    /// DEACTIVATE FILE (life cycle "operational, deactivated"): the file
    /// stays but its use is refused until it is activated again.
    pub fn deactivate_file(&self, fid: Option<u16>) -> Result<()> {
        let mut data = Vec::new();
        let cmd = file_command(ins::DEACTIVATE_FILE, fid, &mut data);
        self.attachment.exchange_ok(&cmd).map(drop)
    }

    /// ACTIVATE FILE (life cycle "operational, activated").
    pub fn activate_file(&self, fid: Option<u16>) -> Result<()> {
        let mut data = Vec::new();
        let cmd = file_command(ins::ACTIVATE_FILE, fid, &mut data);
        self.attachment.exchange_ok(&cmd).map(drop)
    }

    /// GET DATA: the data object with this tag (P1-P2), as the card
    /// returns it.
    pub fn get_data(&self, tag: u16) -> Result<Vec<u8>> {
        let (_, max_ne) = self.attachment.limits()?;
        let [p1, p2] = tag.to_be_bytes();
        let cmd = Command::new(ins::GET_DATA, p1, p2).with_ne(max_ne);
        self.attachment.exchange_ok(&cmd)
    }

    /// PUT DATA: sets the data object with this tag (P1-P2) to `value`.
    pub fn put_data(&self, tag: u16, value: &[u8]) -> Result<()> {
        let (max_nc, _) = self.attachment.limits()?;
        if value.len() > max_nc {
            return Err(Error::InvalidRequest(
                "data object longer than one APDU carries",
            ));
        }
        let [p1, p2] = tag.to_be_bytes();
        let cmd = Command::new(ins::PUT_DATA, p1, p2).with_data(value);
        self.attachment.exchange_ok(&cmd).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcp_templates_carry_what_create_file_needs() {
        let ef = NewFile {
            fid: 0x6001,
            kind: NewFileKind::Transparent { size: 300 },
            sfi: Some(Sfi::new(5).unwrap()),
        };
        assert_eq!(
            ef.fcp().unwrap(),
            [
                0x62, 0x0E, 0x80, 0x02, 0x01, 0x2C, 0x82, 0x01, 0x01, 0x83, 0x02, 0x60, 0x01, 0x88,
                0x01, 0x28
            ]
        );
        let records = NewFile {
            fid: 0x6002,
            kind: NewFileKind::LinearFixed {
                record_size: 16,
                max_records: 4,
            },
            sfi: None,
        };
        assert_eq!(
            records.fcp().unwrap(),
            [0x62, 0x0B, 0x82, 0x05, 0x02, 0x21, 0x00, 0x10, 0x04, 0x83, 0x02, 0x60, 0x02]
        );
        let df = NewFile {
            fid: 0x6100,
            kind: NewFileKind::Df { name: Some(&[]) },
            sfi: None,
        };
        assert!(df.fcp().is_err(), "empty DF name");
    }
}
