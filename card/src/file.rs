//! File access (ISCardFileAccess): SELECT, READ/UPDATE BINARY and the
//! record commands of ISO/IEC 7816-4 §11.2–11.4.
//!
//! Reads and writes are split into pieces the card and the channel accept
//! (extended length when both take it, 256/255 bytes otherwise). Offsets
//! above 32767, which P1-P2 cannot hold, use the odd INS (B1, D7) with the
//! offset in data object 54 and the data in data object 53 (§11.3.3).

use std::sync::Arc;

use super::apdu::{ins, Command};
use super::attachment::Attachment;
use super::error::{CardError, Error, Result};
use super::fcp::FileInfo;
use super::tlv::{self, Tag};

/// Largest offset P1-P2 of an even-INS binary command can hold (15 bits).
pub(crate) const MAX_EVEN_OFFSET: usize = 0x7FFF;
/// Largest offset P2 holds when P1 names an SFI.
pub(crate) const MAX_SFI_OFFSET: usize = 0xFF;

/// A short EF identifier, 1 to 30 (§7.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sfi(u8);

impl Sfi {
    /// Checks the range.
    pub fn new(sfi: u8) -> Result<Sfi> {
        if (1..=30).contains(&sfi) {
            Ok(Sfi(sfi))
        } else {
            Err(Error::InvalidRequest("SFI must be 1 to 30"))
        }
    }

    /// The number.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// Which EF a binary or record command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ef {
    /// The current EF (after a SELECT).
    Current,
    /// The EF with this SFI in the current DF (it becomes the current EF).
    Sfi(Sfi),
}

/// What to select (SELECT P1, §11.2.2 table 62).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection<'a> {
    /// The MF (P1 00, data 3F00).
    Mf,
    /// A file by FID among the current DF, its children and its parent's
    /// children (P1 00).
    Fid(u16),
    /// A child DF of the current DF (P1 01).
    ChildDf(u16),
    /// A child EF of the current DF (P1 02).
    ChildEf(u16),
    /// The parent DF of the current DF (P1 03).
    Parent,
    /// A DF by name (AID), first or only occurrence (P1 04).
    DfName(&'a [u8]),
    /// A path from the MF, without the MF's FID (P1 08).
    PathFromMf(&'a [u16]),
    /// A path from the current DF (P1 09).
    PathFromCurrent(&'a [u16]),
}

/// P2 of SELECT: return the FCP template (b4-b3 = 01), first occurrence.
const SELECT_RETURN_FCP: u8 = 0x04;
/// P2 of SELECT: return the FCI template (b4-b3 = 00).
const SELECT_RETURN_FCI: u8 = 0x00;

/// File access over an attachment.
#[derive(Clone)]
pub struct FileAccess {
    pub(crate) attachment: Arc<Attachment>,
}

impl std::fmt::Debug for FileAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileAccess")
    }
}

fn sfi_p2(ef: Ef) -> u8 {
    match ef {
        Ef::Current => 0,
        Ef::Sfi(s) => s.0 << 3,
    }
}

/// Encodes an offset as the value of DO 54 (shortest big-endian form).
fn offset_do(offset: usize, out: &mut Vec<u8>) {
    let bytes = (offset as u32).to_be_bytes();
    let skip = bytes.iter().take(3).take_while(|&&b| b == 0).count();
    tlv::encode(Tag(0x54), &bytes[skip..], out);
}

/// Bytes a BER-TLV header with a one-byte tag needs for `len` value bytes.
fn tlv_header_len(len: usize) -> usize {
    match len {
        0..=0x7F => 2,
        0x80..=0xFF => 3,
        0x100..=0xFFFF => 4,
        _ => 5,
    }
}

impl FileAccess {
    pub(crate) fn new(attachment: Arc<Attachment>) -> Self {
        FileAccess { attachment }
    }

    /// SELECT; returns the decoded FCP (or FCI, for cards that refuse P2=04),
    /// `None` if the card sent no template.
    pub fn select(&self, target: Selection<'_>) -> Result<Option<FileInfo>> {
        let mut data = Vec::new();
        let (p1, data): (u8, &[u8]) = match target {
            Selection::Mf => (0x00, &[0x3F, 0x00]),
            Selection::Fid(fid) => {
                data.extend_from_slice(&fid.to_be_bytes());
                (0x00, &data)
            }
            Selection::ChildDf(fid) => {
                data.extend_from_slice(&fid.to_be_bytes());
                (0x01, &data)
            }
            Selection::ChildEf(fid) => {
                data.extend_from_slice(&fid.to_be_bytes());
                (0x02, &data)
            }
            Selection::Parent => (0x03, &[]),
            Selection::DfName(name) => {
                if name.is_empty() || name.len() > 16 {
                    return Err(Error::InvalidRequest("a DF name has 1 to 16 bytes"));
                }
                (0x04, name)
            }
            Selection::PathFromMf(path) | Selection::PathFromCurrent(path) => {
                let path = match (target, path) {
                    (Selection::PathFromMf(_), [0x3F00, rest @ ..]) => rest,
                    _ => path,
                };
                if path.is_empty() {
                    return self.select(Selection::Mf);
                }
                for fid in path {
                    data.extend_from_slice(&fid.to_be_bytes());
                }
                let p1 = if matches!(target, Selection::PathFromMf(_)) {
                    0x08
                } else {
                    0x09
                };
                (p1, &data)
            }
        };
        let cmd = Command::new(ins::SELECT, p1, SELECT_RETURN_FCP)
            .with_data(data)
            .with_ne(256);
        let mut response = self.attachment.exchange(&cmd)?;
        if matches!(CardError::from_sw(response.sw), CardError::IncorrectP1P2) {
            // Some cards know only the FCI form of P2.
            response = self.attachment.exchange(&Command {
                p2: SELECT_RETURN_FCI,
                ..cmd
            })?;
        }
        let data = response.into_result()?;
        FileInfo::parse(&data)
            .map_err(|_| Error::Malformed("SELECT answer is not an FCP/FCI template"))
    }

    /// SELECT by file identifier (3F00 selects the MF).
    pub fn select_fid(&self, fid: u16) -> Result<Option<FileInfo>> {
        self.select(if fid == 0x3F00 {
            Selection::Mf
        } else {
            Selection::Fid(fid)
        })
    }

    /// SELECT by path: from the MF when it starts with 3F00, from the
    /// current DF otherwise.
    pub fn select_path(&self, path: &[u16]) -> Result<Option<FileInfo>> {
        match path.first() {
            Some(0x3F00) => self.select(Selection::PathFromMf(path)),
            Some(_) => self.select(Selection::PathFromCurrent(path)),
            None => Err(Error::InvalidRequest("empty path")),
        }
    }

    /// SELECT by DF name (application identifier).
    pub fn select_df_name(&self, name: &[u8]) -> Result<Option<FileInfo>> {
        self.select(Selection::DfName(name))
    }

    /// READ BINARY: `len` bytes from `offset` (fewer if the file ends
    /// first), or everything to the end of the file when `len` is `None`.
    pub fn read_binary(&self, ef: Ef, offset: usize, len: Option<usize>) -> Result<Vec<u8>> {
        let (_, max_ne) = self.attachment.limits()?;
        let mut out = Vec::new();
        let mut ef = ef;
        let mut pos = offset;
        loop {
            let want = match len {
                Some(n) if out.len() >= n => break,
                Some(n) => (n - out.len()).min(max_ne),
                None => max_ne,
            };
            let result = self.read_binary_piece(ef, pos, want, max_ne);
            let (piece, at_end) = match result {
                Ok(piece) => piece,
                // After a first piece, an offset just past the end is the
                // end (a T=0 reader's 6Cxx re-issue hides the card's 6282).
                Err(Error::Status {
                    error: CardError::IncorrectP1P2 | CardError::EndOfFile,
                    ..
                }) if pos > offset => break,
                Err(e) => return Err(e),
            };
            ef = Ef::Current;
            let got = piece.len().min(want);
            out.extend_from_slice(&piece[..got]);
            pos += got;
            if at_end || got == 0 {
                break;
            }
        }
        Ok(out)
    }

    /// One READ BINARY command; the data and whether the card said the file
    /// ended (6282).
    fn read_binary_piece(
        &self,
        ef: Ef,
        pos: usize,
        want: usize,
        max_ne: usize,
    ) -> Result<(Vec<u8>, bool)> {
        let even = match ef {
            Ef::Current => (pos <= MAX_EVEN_OFFSET).then_some((pos >> 8) as u8 & 0x7F),
            Ef::Sfi(sfi) => (pos <= MAX_SFI_OFFSET).then_some(0x80 | sfi.0),
        };
        let response = if let Some(p1) = even {
            let cmd = Command::new(ins::READ_BINARY, p1, pos as u8).with_ne(want);
            self.attachment.exchange(&cmd)?
        } else {
            let mut data = Vec::with_capacity(6);
            offset_do(pos, &mut data);
            // Room for the DO 53 header the card wraps around the data; the
            // header's size depends on how much the card chose to wrap
            // (over T=0 it does not see Ne), so allow the longest, 5 bytes.
            let ne = (want + 5).min(max_ne);
            let cmd = Command::new(ins::READ_BINARY_ODD, 0, sfi_p2(ef) >> 3)
                .with_data(&data)
                .with_ne(ne);
            let mut response = self.attachment.exchange(&cmd)?;
            response.data = discretionary_data(&response.data)?;
            response
        };
        match CardError::from_sw(response.sw) {
            _ if response.sw.is_ok() => Ok((response.data, false)),
            CardError::EndOfFile => Ok((response.data, true)),
            _ => Err(Error::status(response.sw)),
        }
    }

    /// UPDATE BINARY: writes `data` at `offset`.
    pub fn update_binary(&self, ef: Ef, offset: usize, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Err(Error::InvalidRequest("nothing to write"));
        }
        let (max_nc, _) = self.attachment.limits()?;
        let mut ef = ef;
        let mut done = 0;
        while done < data.len() {
            let pos = offset + done;
            let even = match ef {
                Ef::Current => (pos <= MAX_EVEN_OFFSET).then_some((pos >> 8) as u8 & 0x7F),
                Ef::Sfi(sfi) => (pos <= MAX_SFI_OFFSET).then_some(0x80 | sfi.0),
            };
            let rest = &data[done..];
            let n = if let Some(p1) = even {
                let n = rest.len().min(max_nc);
                let cmd = Command::new(ins::UPDATE_BINARY, p1, pos as u8).with_data(&rest[..n]);
                self.attachment.exchange_ok(&cmd)?;
                n
            } else {
                let mut body = Vec::with_capacity(max_nc);
                offset_do(pos, &mut body);
                // Room left for DO 53 and its header.
                let room = max_nc - body.len();
                let mut n = rest.len().min(room.saturating_sub(2));
                while n > 0 && tlv_header_len(n) + n > room {
                    n -= 1;
                }
                tlv::encode(Tag(0x53), &rest[..n], &mut body);
                let cmd = Command::new(ins::UPDATE_BINARY_ODD, 0, sfi_p2(ef) >> 3).with_data(&body);
                self.attachment.exchange_ok(&cmd)?;
                n
            };
            ef = Ef::Current;
            done += n;
        }
        Ok(())
    }

    /// READ RECORD: record `number` (1 to 254) of the EF.
    pub fn read_record(&self, ef: Ef, number: u8) -> Result<Vec<u8>> {
        check_record_number(number)?;
        let (_, max_ne) = self.attachment.limits()?;
        // P2 b3-b1 = 100: read record P1.
        let cmd = Command::new(ins::READ_RECORD, number, sfi_p2(ef) | 0x04).with_ne(max_ne);
        let response = self.attachment.exchange(&cmd)?;
        match CardError::from_sw(response.sw) {
            _ if response.sw.is_ok() => Ok(response.data),
            CardError::EndOfFile => Ok(response.data),
            _ => Err(Error::status(response.sw)),
        }
    }

    /// Every record of the EF, from number 1 until the card answers
    /// "record not found".
    pub fn read_all_records(&self, ef: Ef) -> Result<Vec<Vec<u8>>> {
        let mut records = Vec::new();
        let mut ef = ef;
        for number in 1..=254u8 {
            match self.read_record(ef, number) {
                Ok(record) => records.push(record),
                Err(Error::Status {
                    error: CardError::RecordNotFound,
                    ..
                }) => break,
                Err(e) => return Err(e),
            }
            ef = Ef::Current;
        }
        Ok(records)
    }

    /// UPDATE RECORD: replaces record `number`.
    pub fn update_record(&self, ef: Ef, number: u8, data: &[u8]) -> Result<()> {
        check_record_number(number)?;
        let cmd = Command::new(ins::UPDATE_RECORD, number, sfi_p2(ef) | 0x04).with_data(data);
        self.attachment.exchange_ok(&cmd).map(drop)
    }

    /// APPEND RECORD: adds a record at the end.
    pub fn append_record(&self, ef: Ef, data: &[u8]) -> Result<()> {
        let cmd = Command::new(ins::APPEND_RECORD, 0, sfi_p2(ef)).with_data(data);
        self.attachment.exchange_ok(&cmd).map(drop)
    }
}

fn check_record_number(number: u8) -> Result<()> {
    if number == 0 || number == 0xFF {
        Err(Error::InvalidRequest("record numbers are 1 to 254"))
    } else {
        Ok(())
    }
}

/// The values of the DO 53 objects of an odd-INS READ BINARY answer. The
/// last object may be cut short: over T=0 the card does not see Ne and
/// wraps more than the host then fetches; its value bytes are still a
/// prefix of the file content, so they are kept.
fn discretionary_data(mut rest: &[u8]) -> Result<Vec<u8>> {
    let malformed = || Error::Malformed("READ BINARY odd answer is not DO 53");
    let mut values = Vec::new();
    while let Some((tag, len, after)) = tlv::parse_header(rest).map_err(|_| malformed())? {
        if tag != Tag(0x53) && tag != Tag(0x73) {
            return Err(malformed());
        }
        let n = len.min(after.len());
        values.extend_from_slice(&after[..n]);
        rest = &after[n..];
    }
    Ok(values)
}
