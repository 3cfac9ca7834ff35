//! File management and data objects: CREATE FILE, DELETE FILE,
//! DEACTIVATE FILE, ACTIVATE FILE (ISO/IEC 7816-9 §8) and GET DATA /
//! PUT DATA (ISO/IEC 7816-4 §11.4), written from the standards.
//!
//! Choices where the standards leave the card free:
//! * CREATE FILE takes an FCP template (62) with 83 (FID, required), 82
//!   (descriptor: 01 transparent, 02 linear fixed, 04 linear variable, 38
//!   DF), 80 (size of a transparent EF, bytes filled with 00), 84 (DF
//!   name) and 88 (SFI). The file is created activated, with no access
//!   condition, and selected.
//! * DELETE / DEACTIVATE / ACTIVATE name the file by FID in the data field
//!   (P1-P2 = 0000), searched like SELECT P1=00; no data means the current
//!   EF, or the current DF when no EF is selected. The MF is refused
//!   (6985). Deleting a DF deletes what is under it.
//! * A deactivated file answers SELECT with its FCP and 6283; reading and
//!   writing it answer 6985.
//! * GET DATA (CA) and PUT DATA (DA) with P1-P2 a tag read and write the
//!   value of that data object; the objects are non-volatile (kept over
//!   resets). A tag never written answers 6A88.

use super::super::apdu::Command;
use super::super::fs::{Access, Body, File, FileIndex, RecordKind, MF};
use super::{parse_tlv, sw, Application, Response};

/// 6A89: file already exists.
const FILE_EXISTS: u16 = 0x6A89;

impl Application {
    /// CREATE FILE (INS E0).
    pub(super) fn create_file(&mut self, cmd: &Command) -> Response {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Response::status(sw::WRONG_P1P2);
        }
        let file = match parse_fcp(&cmd.data) {
            Ok(file) => file,
            Err(sw) => return Response::status(sw),
        };
        if self.fs.child(self.current_df, file.fid).is_some()
            || self.fs.get(self.current_df).fid == file.fid
        {
            return Response::status(FILE_EXISTS);
        }
        let is_df = file.is_df();
        let index = self.fs.add(self.current_df, file);
        if is_df {
            self.current_df = index;
            self.current_ef = None;
        } else {
            self.current_ef = Some(index);
        }
        self.current_record = None;
        Response::status(sw::OK)
    }

    /// The file DELETE / DEACTIVATE / ACTIVATE FILE name.
    fn target(&self, cmd: &Command) -> Result<FileIndex, u16> {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(sw::WRONG_P1P2);
        }
        let target = match cmd.data.as_slice() {
            [] => self.current_ef.unwrap_or(self.current_df),
            [hi, lo] => self
                .find_near(u16::from_be_bytes([*hi, *lo]))
                .ok_or(sw::FILE_NOT_FOUND)?,
            _ => return Err(sw::WRONG_LENGTH),
        };
        if target == MF {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        }
        Ok(target)
    }

    /// DELETE FILE (INS E4).
    pub(super) fn delete_file(&mut self, cmd: &Command) -> Response {
        let target = match self.target(cmd) {
            Ok(target) => target,
            Err(sw) => return Response::status(sw),
        };
        let parent = self.fs.get(target).parent.unwrap_or(MF);
        self.fs.remove(target);
        // A selection inside what was deleted falls back to its parent.
        let inside = |mut at: FileIndex| loop {
            if at == target {
                return true;
            }
            match self.fs.get(at).parent {
                Some(p) => at = p,
                None => return false,
            }
        };
        if inside(self.current_df) {
            self.current_df = parent;
            self.current_ef = None;
        } else if self.current_ef.is_some_and(inside) {
            self.current_ef = None;
        }
        self.current_record = None;
        Response::status(sw::OK)
    }

    /// DEACTIVATE FILE (INS 04) and ACTIVATE FILE (INS 44).
    pub(super) fn set_activation(&mut self, cmd: &Command, active: bool) -> Response {
        match self.target(cmd) {
            Ok(target) => {
                self.fs.get_mut(target).deactivated = !active;
                Response::status(sw::OK)
            }
            Err(sw) => Response::status(sw),
        }
    }

    /// GET DATA (INS CA): the value of the data object P1-P2.
    pub(super) fn get_data(&mut self, cmd: &Command) -> Response {
        let tag = u16::from_be_bytes([cmd.p1, cmd.p2]);
        if !cmd.data.is_empty() {
            return Response::status(sw::WRONG_LENGTH);
        }
        match self.data_objects.iter().find(|(t, _)| *t == tag) {
            Some((_, value)) => Response::ok(value.clone()),
            None => Response::status(sw::REFERENCE_NOT_FOUND),
        }
    }

    /// PUT DATA (INS DA): sets the data object P1-P2 to the data field.
    pub(super) fn put_data(&mut self, cmd: &Command) -> Response {
        let tag = u16::from_be_bytes([cmd.p1, cmd.p2]);
        // 0000-003F and 00FF-01FF are reserved or name no data object.
        if tag < 0x40 || (0xFF..=0x1FF).contains(&tag) {
            return Response::status(sw::WRONG_P1P2);
        }
        match self.data_objects.iter_mut().find(|(t, _)| *t == tag) {
            Some((_, value)) => *value = cmd.data.clone(),
            None => self.data_objects.push((tag, cmd.data.clone())),
        }
        Response::status(sw::OK)
    }
}

/// A file from a CREATE FILE FCP template.
fn parse_fcp(data: &[u8]) -> Result<File, u16> {
    let Some((0x62, mut rest, [])) = parse_tlv(data) else {
        return Err(sw::WRONG_DATA);
    };
    let (mut fid, mut descriptor, mut size, mut name, mut sfi) = (None, None, None, None, None);
    while !rest.is_empty() {
        let (tag, value, after) = parse_tlv(rest).ok_or(sw::WRONG_DATA)?;
        match tag {
            0x83 if value.len() == 2 => fid = Some(u16::from_be_bytes([value[0], value[1]])),
            0x82 => descriptor = Some(value),
            0x80 => size = Some(value.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b))),
            0x84 if (1..=16).contains(&value.len()) => name = Some(value.to_vec()),
            0x88 if value.len() == 1 && (1..=30).contains(&(value[0] >> 3)) => {
                sfi = Some(value[0] >> 3)
            }
            _ => return Err(sw::WRONG_DATA),
        }
        rest = after;
    }
    let fid = fid.filter(|f| !matches!(f, 0x3F00 | 0x3FFF | 0xFFFF));
    let fid = fid.ok_or(sw::WRONG_DATA)?;
    let record_sizes = |d: &[u8]| match d {
        [_, _, hi, lo, count] => Ok((usize::from(u16::from_be_bytes([*hi, *lo])), *count)),
        _ => Err(sw::WRONG_DATA),
    };
    let body = match descriptor.ok_or(sw::WRONG_DATA)? {
        [0x38, ..] => Body::Dedicated {
            name,
            children: Vec::new(),
        },
        [0x01, ..] => Body::Transparent(vec![0; size.ok_or(sw::WRONG_DATA)?]),
        d @ [0x02 | 0x04, ..] => {
            let (record_size, count) = record_sizes(d)?;
            if record_size == 0 || count == 0 {
                return Err(sw::WRONG_DATA);
            }
            Body::Records {
                kind: if d[0] == 0x02 {
                    RecordKind::LinearFixed(record_size)
                } else {
                    RecordKind::LinearVariable(record_size)
                },
                records: Vec::new(),
                max_records: usize::from(count),
            }
        }
        _ => return Err(sw::WRONG_DATA),
    };
    Ok(File {
        fid,
        sfi,
        parent: None,
        read: Access::Always,
        write: Access::Always,
        body,
        deactivated: false,
    })
}
