//! The ISO/IEC 7816-4 application: command interpretation over the file
//! system, PIN/PUK security, GET CHALLENGE and INTERNAL AUTHENTICATE.
//!
//! INTERNAL AUTHENTICATE (INS 88, P1=P2=00) answers with the first Ne bytes of
//! `HMAC-SHA-256(key, challenge || 00000001) || HMAC-SHA-256(key, challenge || 00000002) || …`
//! (the counter is 4 bytes big-endian); with Le=00 (Ne maximal) the answer is
//! 32 bytes. The key is [`super::CardConfig::auth_key`].
//!
//! GET CHALLENGE (INS 84) answers Ne bytes from a SplitMix64 generator seeded
//! with [`super::CardConfig::rng_seed`]: each 64-bit output is emitted
//! little-endian, consumed 8 bytes at a time (a partial tail is discarded).

use hmac::{Hmac, Mac};
use sha2::Sha256;

mod admin;

use super::apdu::Command;
use super::fs::{Access, Body, FileIndex, FileSystem, RecordKind, MF};

/// Status words used by the card.
pub mod sw {
    /// Normal processing.
    pub const OK: u16 = 0x9000;
    /// End of file or record reached before reading Ne bytes.
    pub const END_OF_FILE: u16 = 0x6282;
    /// Selected file deactivated.
    pub const FILE_DEACTIVATED: u16 = 0x6283;
    /// Wrong length.
    pub const WRONG_LENGTH: u16 = 0x6700;
    /// Logical channel not supported.
    pub const CHANNEL_NOT_SUPPORTED: u16 = 0x6881;
    /// Secure messaging not supported.
    pub const SM_NOT_SUPPORTED: u16 = 0x6882;
    /// Command chaining not supported.
    pub const CHAINING_NOT_SUPPORTED: u16 = 0x6884;
    /// Command incompatible with file structure.
    pub const INCOMPATIBLE_FILE: u16 = 0x6981;
    /// Security status not satisfied.
    pub const SECURITY_NOT_SATISFIED: u16 = 0x6982;
    /// Authentication method blocked.
    pub const BLOCKED: u16 = 0x6983;
    /// Conditions of use not satisfied.
    pub const CONDITIONS_NOT_SATISFIED: u16 = 0x6985;
    /// Command not allowed (no current EF).
    pub const NO_CURRENT_EF: u16 = 0x6986;
    /// Incorrect parameters in the command data field.
    pub const WRONG_DATA: u16 = 0x6A80;
    /// File or application not found.
    pub const FILE_NOT_FOUND: u16 = 0x6A82;
    /// Record not found.
    pub const RECORD_NOT_FOUND: u16 = 0x6A83;
    /// Not enough memory space in the file.
    pub const FILE_FULL: u16 = 0x6A84;
    /// Incorrect parameters P1-P2.
    pub const WRONG_P1P2: u16 = 0x6A86;
    /// Referenced data or reference data not found.
    pub const REFERENCE_NOT_FOUND: u16 = 0x6A88;
    /// Wrong parameters P1-P2: offset outside the EF.
    pub const WRONG_OFFSET: u16 = 0x6B00;
    /// Instruction code not supported.
    pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
    /// Class not supported.
    pub const CLA_NOT_SUPPORTED: u16 = 0x6E00;
}

/// A response APDU: data and status word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Response data field.
    pub data: Vec<u8>,
    /// SW1-SW2.
    pub sw: u16,
}

impl Response {
    /// A status word alone.
    pub fn status(sw: u16) -> Self {
        Response {
            data: Vec::new(),
            sw,
        }
    }

    /// Data with 9000.
    pub fn ok(data: Vec<u8>) -> Self {
        Response { data, sw: sw::OK }
    }

    /// Data followed by SW1 SW2, as the card sends it.
    pub fn into_bytes(self) -> Vec<u8> {
        let mut bytes = self.data;
        bytes.extend_from_slice(&self.sw.to_be_bytes());
        bytes
    }
}

/// PIN reference (VERIFY / CHANGE REFERENCE DATA / RESET RETRY COUNTER P2).
pub const PIN_REFERENCE: u8 = 0x81;
/// PUK reference (VERIFY P2).
pub const PUK_REFERENCE: u8 = 0x82;

/// A secret with a retry counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// Reference value.
    pub value: Vec<u8>,
    /// Tries left before blocking.
    pub tries_left: u8,
    /// Tries after a successful presentation or a reset.
    pub max_tries: u8,
}

impl Secret {
    /// A fresh secret with all tries left.
    pub fn new(value: &[u8], max_tries: u8) -> Self {
        Secret {
            value: value.to_vec(),
            tries_left: max_tries,
            max_tries,
        }
    }

    /// Compares and counts; returns the status word.
    fn present(&mut self, candidate: &[u8]) -> u16 {
        if self.tries_left == 0 {
            sw::BLOCKED
        } else if candidate == self.value.as_slice() {
            self.tries_left = self.max_tries;
            sw::OK
        } else {
            self.tries_left -= 1;
            0x63C0 | u16::from(self.tries_left.min(15))
        }
    }
}

/// SplitMix64, a small PRNG whose output a host test can recompute.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// Next 64-bit output.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `n` bytes, 8 per output, little-endian.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// The reference INTERNAL AUTHENTICATE function (see the module doc).
pub fn internal_authenticate(key: &[u8], challenge: &[u8], ne: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(ne + 32);
    let mut counter: u32 = 1;
    while out.len() < ne {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(challenge);
        mac.update(&counter.to_be_bytes());
        out.extend_from_slice(&mac.finalize().into_bytes());
        counter += 1;
    }
    out.truncate(ne);
    out
}

/// Encodes a BER-TLV with a one-byte tag.
pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match value.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n if n < 0x1_0000 => out.extend([0x82, (n >> 8) as u8, n as u8]),
        n => out.extend([0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

/// Splits a BER-TLV with a one-byte tag off the front of `bytes`.
fn parse_tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        n if n < 0x80 => (usize::from(n), rest),
        0x81..=0x83 => {
            let k = usize::from(first & 0x7F);
            let len_bytes = rest.get(..k)?;
            (
                len_bytes
                    .iter()
                    .fold(0usize, |a, &b| (a << 8) | usize::from(b)),
                &rest[k..],
            )
        }
        _ => return None,
    };
    Some((tag, rest.get(..len)?, &rest[len..]))
}

/// The card's application state: files, current selection and security.
#[derive(Debug, Clone)]
pub struct Application {
    fs: FileSystem,
    current_df: FileIndex,
    current_ef: Option<FileIndex>,
    /// Current record of the current EF (0-based).
    current_record: Option<usize>,
    pin: Secret,
    puk: Secret,
    pin_verified: bool,
    rng: SplitMix64,
    auth_key: Vec<u8>,
    /// Data objects of GET DATA / PUT DATA, by tag.
    data_objects: Vec<(u16, Vec<u8>)>,
}

impl Application {
    /// An application over `fs` with the given secrets, PRNG seed and key.
    pub fn new(fs: FileSystem, pin: Secret, puk: Secret, seed: u64, auth_key: Vec<u8>) -> Self {
        Application {
            fs,
            current_df: MF,
            current_ef: None,
            current_record: None,
            pin,
            puk,
            pin_verified: false,
            rng: SplitMix64(seed),
            auth_key,
            data_objects: Vec::new(),
        }
    }

    /// Back to the state after a reset: MF selected, PIN not verified.
    /// Files and retry counters persist (they are non-volatile).
    pub fn reset(&mut self) {
        self.current_df = MF;
        self.current_ef = None;
        self.current_record = None;
        self.pin_verified = false;
    }

    /// The file system.
    pub fn files(&self) -> &FileSystem {
        &self.fs
    }

    /// The PIN and its retry counter.
    pub fn pin(&self) -> &Secret {
        &self.pin
    }

    /// The PUK and its retry counter.
    pub fn puk(&self) -> &Secret {
        &self.puk
    }

    /// Whether the PIN is verified.
    pub fn pin_verified(&self) -> bool {
        self.pin_verified
    }

    /// Checks CLA and INS alone, as a T=0 card does before acknowledging.
    pub fn check_header(cla: u8, ins: u8) -> Option<u16> {
        match cla {
            0x00 => {}
            0x01..=0x03 => return Some(sw::CHANNEL_NOT_SUPPORTED),
            0x04..=0x0F => return Some(sw::SM_NOT_SUPPORTED),
            0x10..=0x1F => return Some(sw::CHAINING_NOT_SUPPORTED),
            _ => return Some(sw::CLA_NOT_SUPPORTED),
        }
        match ins {
            0xA4 | 0xB0 | 0xB1 | 0xD6 | 0xD7 | 0xB2 | 0xDC | 0xE2 | 0xC0 | 0x20 | 0x24 | 0x2C
            | 0x84 | 0x88 | 0xE0 | 0xE4 | 0x04 | 0x44 | 0xCA | 0xDA => None,
            _ => Some(sw::INS_NOT_SUPPORTED),
        }
    }

    /// Whether the command with this INS sends data to the host without
    /// receiving any (case 2): decides the T=0 direction of P3.
    pub fn is_outgoing(ins: u8) -> bool {
        matches!(ins, 0xB0 | 0xB2 | 0xC0 | 0x84 | 0xCA)
    }

    /// Executes one command APDU.
    pub fn execute(&mut self, cmd: &Command) -> Response {
        if let Some(sw) = Self::check_header(cmd.cla, cmd.ins) {
            return Response::status(sw);
        }
        let mut response = match cmd.ins {
            0xA4 => self.select(cmd),
            0xB0 | 0xD6 => self.binary_even(cmd),
            0xB1 | 0xD7 => self.binary_odd(cmd),
            0xB2 => self.read_record(cmd),
            0xDC => self.update_record(cmd),
            0xE2 => self.append_record(cmd),
            0x20 => self.verify(cmd),
            0x24 => self.change_reference_data(cmd),
            0x2C => self.reset_retry_counter(cmd),
            0x84 => self.get_challenge(cmd),
            0x88 => self.internal_authenticate(cmd),
            0xE0 => self.create_file(cmd),
            0xE4 => self.delete_file(cmd),
            0x04 => self.set_activation(cmd, false),
            0x44 => self.set_activation(cmd, true),
            0xCA => self.get_data(cmd),
            0xDA => self.put_data(cmd),
            // GET RESPONSE only makes sense when a T=0 transport kept a
            // response; at this level there is none.
            _ => Response::status(sw::CONDITIONS_NOT_SATISFIED),
        };
        // No Le field: no response data (ISO/IEC 7816-4 §5.1).
        response.data.truncate(cmd.ne);
        response
    }

    fn select(&mut self, cmd: &Command) -> Response {
        if cmd.p2 & 0xF3 != 0 {
            return Response::status(sw::WRONG_P1P2);
        }
        let fids: Option<Vec<u16>> = (cmd.data.len() % 2 == 0).then(|| {
            cmd.data
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect()
        });
        let target = match cmd.p1 {
            0x00 => match fids.as_deref() {
                Some([]) | Some([0x3F00]) => Some(MF),
                Some([fid]) => self.find_near(*fid),
                _ => return Response::status(sw::WRONG_LENGTH),
            },
            0x01 | 0x02 => match fids.as_deref() {
                Some([fid]) => self
                    .fs
                    .child(self.current_df, *fid)
                    .filter(|&f| self.fs.get(f).is_df() == (cmd.p1 == 0x01)),
                _ => return Response::status(sw::WRONG_LENGTH),
            },
            0x03 if !cmd.data.is_empty() => return Response::status(sw::WRONG_LENGTH),
            0x03 => self.fs.get(self.current_df).parent,
            0x04 if cmd.data.is_empty() || cmd.data.len() > 16 => {
                return Response::status(sw::WRONG_LENGTH)
            }
            0x04 => self.fs.df_by_name(&cmd.data),
            0x08 | 0x09 => match fids.as_deref() {
                Some(path) if !path.is_empty() => {
                    let (start, path) = match (cmd.p1, path) {
                        (0x08, [0x3F00, rest @ ..]) => (MF, rest),
                        (0x08, _) => (MF, path),
                        _ => (self.current_df, path),
                    };
                    path.iter()
                        .try_fold(start, |at, &fid| self.fs.child(at, fid))
                }
                _ => return Response::status(sw::WRONG_LENGTH),
            },
            _ => return Response::status(sw::WRONG_P1P2),
        };
        let Some(target) = target else {
            return Response::status(sw::FILE_NOT_FOUND);
        };
        if self.fs.get(target).is_df() {
            self.current_df = target;
            self.current_ef = None;
        } else {
            self.current_df = self.fs.get(target).parent.unwrap_or(MF);
            self.current_ef = Some(target);
        }
        self.current_record = None;
        let mut response = match cmd.p2 & 0x0C {
            0x00 => Response::ok(tlv(0x6F, &self.fcp_content(target))),
            0x04 => Response::ok(tlv(0x62, &self.fcp_content(target))),
            0x08 => Response::ok(tlv(0x64, &[])),
            _ => Response::status(sw::OK),
        };
        if self.fs.get(target).deactivated {
            response.sw = sw::FILE_DEACTIVATED;
        }
        response
    }

    /// FID search of SELECT P1=00: the current DF, its children, its parent
    /// and the parent's children.
    fn find_near(&self, fid: u16) -> Option<FileIndex> {
        let current = self.current_df;
        if self.fs.get(current).fid == fid {
            return Some(current);
        }
        self.fs.child(current, fid).or_else(|| {
            let parent = self.fs.get(current).parent?;
            if self.fs.get(parent).fid == fid {
                Some(parent)
            } else {
                self.fs.child(parent, fid)
            }
        })
    }

    /// Contents of the FCP template: tags 80, 82, 83, 84, 8A.
    pub fn fcp_content(&self, index: FileIndex) -> Vec<u8> {
        let file = self.fs.get(index);
        let mut out = Vec::new();
        let size_tlv = |n: usize| {
            let bytes = (n as u32).to_be_bytes();
            tlv(0x80, if n > 0xFFFF { &bytes[1..] } else { &bytes[2..] })
        };
        match &file.body {
            Body::Transparent(data) => {
                out.extend(size_tlv(data.len()));
                out.extend(tlv(0x82, &[0x01]));
            }
            Body::Records { kind, records, .. } => {
                out.extend(size_tlv(records.iter().map(Vec::len).sum()));
                let (descriptor, size) = match kind {
                    RecordKind::LinearFixed(n) => (0x02, *n),
                    RecordKind::LinearVariable(n) => (0x04, *n),
                };
                out.extend(tlv(
                    0x82,
                    &[
                        descriptor,
                        0x21,
                        (size >> 8) as u8,
                        size as u8,
                        records.len() as u8,
                    ],
                ));
            }
            Body::Dedicated { .. } => out.extend(tlv(0x82, &[0x38])),
        }
        out.extend(tlv(0x83, &file.fid.to_be_bytes()));
        if let Body::Dedicated {
            name: Some(name), ..
        } = &file.body
        {
            out.extend(tlv(0x84, name));
        }
        // Life cycle status: operational, activated (05) or deactivated (04).
        out.extend(tlv(0x8A, &[if file.deactivated { 0x04 } else { 0x05 }]));
        out
    }

    /// Whether the file may be read or written: its access condition, and
    /// the file activated. The status word when not.
    fn usable(&self, file: FileIndex, write: bool) -> Result<(), u16> {
        let file = self.fs.get(file);
        if file.deactivated {
            Err(sw::CONDITIONS_NOT_SATISFIED)
        } else if !self.allowed(if write { file.write } else { file.read }) {
            Err(sw::SECURITY_NOT_SATISFIED)
        } else {
            Ok(())
        }
    }

    fn allowed(&self, access: Access) -> bool {
        match access {
            Access::Always => true,
            Access::Pin => self.pin_verified,
            Access::Never => false,
        }
    }

    /// Makes the EF with this SFI in the current DF the current EF.
    fn select_sfi(&mut self, sfi: u8) -> Result<FileIndex, u16> {
        let ef = self
            .fs
            .child_by_sfi(self.current_df, sfi)
            .filter(|&f| !self.fs.get(f).is_df())
            .ok_or(sw::FILE_NOT_FOUND)?;
        if self.current_ef != Some(ef) {
            self.current_record = None;
        }
        self.current_ef = Some(ef);
        Ok(ef)
    }

    /// READ BINARY / UPDATE BINARY with even INS: P1 b8=1 names an SFI and
    /// P2 is the offset, otherwise P1-P2 is a 15-bit offset in the current EF.
    fn binary_even(&mut self, cmd: &Command) -> Response {
        let (ef, offset) = if cmd.p1 & 0x80 != 0 {
            if cmd.p1 & 0x60 != 0 {
                return Response::status(sw::WRONG_P1P2);
            }
            match self.select_sfi(cmd.p1 & 0x1F) {
                Ok(ef) => (ef, usize::from(cmd.p2)),
                Err(sw) => return Response::status(sw),
            }
        } else {
            match self.current_ef {
                Some(ef) => (ef, usize::from(u16::from_be_bytes([cmd.p1, cmd.p2]))),
                None => return Response::status(sw::NO_CURRENT_EF),
            }
        };
        if cmd.ins == 0xB0 {
            self.read_binary(ef, offset, cmd, false)
        } else {
            self.update_binary(ef, offset, &cmd.data)
        }
    }

    /// READ BINARY / UPDATE BINARY with odd INS: P1-P2 is 0000 (current EF),
    /// an SFI (P1=00, P2=000sssss) or a FID; the offset is in DO 54.
    fn binary_odd(&mut self, cmd: &Command) -> Response {
        let p1p2 = u16::from_be_bytes([cmd.p1, cmd.p2]);
        let ef = match p1p2 {
            0 => self.current_ef.ok_or(sw::NO_CURRENT_EF),
            1..=30 => self.select_sfi(cmd.p2),
            0x3F00 | 0xFFFF => Err(sw::WRONG_P1P2),
            fid => match self
                .fs
                .child(self.current_df, fid)
                .filter(|&f| !self.fs.get(f).is_df())
            {
                Some(ef) => {
                    self.current_ef = Some(ef);
                    self.current_record = None;
                    Ok(ef)
                }
                None => Err(sw::FILE_NOT_FOUND),
            },
        };
        let ef = match ef {
            Ok(ef) => ef,
            Err(sw) => return Response::status(sw),
        };
        let Some((0x54, offset_bytes, rest)) = parse_tlv(&cmd.data) else {
            return Response::status(sw::WRONG_DATA);
        };
        if offset_bytes.is_empty() || offset_bytes.len() > 3 {
            return Response::status(sw::WRONG_DATA);
        }
        let offset = offset_bytes
            .iter()
            .fold(0usize, |a, &b| (a << 8) | usize::from(b));
        if cmd.ins == 0xB1 {
            if !rest.is_empty() {
                return Response::status(sw::WRONG_DATA);
            }
            return self.read_binary(ef, offset, cmd, true);
        }
        match parse_tlv(rest) {
            Some((0x53 | 0x73, data, [])) => self.update_binary(ef, offset, data),
            _ => Response::status(sw::WRONG_DATA),
        }
    }

    fn read_binary(
        &mut self,
        ef: FileIndex,
        offset: usize,
        cmd: &Command,
        wrap_in_53: bool,
    ) -> Response {
        if let Err(sw) = self.usable(ef, false) {
            return Response::status(sw);
        }
        let file = self.fs.get(ef);
        let Body::Transparent(content) = &file.body else {
            return Response::status(sw::INCOMPATIBLE_FILE);
        };
        if cmd.ne == 0 {
            return Response::status(sw::WRONG_LENGTH);
        }
        if offset >= content.len() {
            return Response::status(sw::WRONG_OFFSET);
        }
        let available = content.len() - offset;
        let header_len = |n: usize| match n {
            0..=0x7F => 2,
            0x80..=0xFF => 3,
            _ => 4,
        };
        let mut n = available.min(cmd.ne);
        if wrap_in_53 {
            n = n.min(cmd.ne.saturating_sub(2));
            while n > 0 && header_len(n) + n > cmd.ne {
                n -= 1;
            }
        }
        let slice = &content[offset..offset + n];
        let data = if wrap_in_53 {
            tlv(0x53, slice)
        } else {
            slice.to_vec()
        };
        let short = data.len() < cmd.ne && n == available && !cmd.ne_is_max;
        Response {
            data,
            sw: if short { sw::END_OF_FILE } else { sw::OK },
        }
    }

    fn update_binary(&mut self, ef: FileIndex, offset: usize, data: &[u8]) -> Response {
        if data.is_empty() {
            return Response::status(sw::WRONG_LENGTH);
        }
        let usable = self.usable(ef, true);
        let Body::Transparent(content) = &mut self.fs.get_mut(ef).body else {
            return Response::status(sw::INCOMPATIBLE_FILE);
        };
        if let Err(sw) = usable {
            return Response::status(sw);
        }
        if offset >= content.len() {
            return Response::status(sw::WRONG_OFFSET);
        }
        if offset + data.len() > content.len() {
            return Response::status(sw::WRONG_LENGTH);
        }
        content[offset..offset + data.len()].copy_from_slice(data);
        Response::status(sw::OK)
    }

    /// Resolves P2 b8-b4 of record commands (00000 = current EF, else SFI)
    /// to a record EF, checking the access condition.
    fn record_ef(&mut self, p2: u8, write: bool) -> Result<FileIndex, u16> {
        let ef = match p2 >> 3 {
            0 => self.current_ef.ok_or(sw::NO_CURRENT_EF)?,
            31 => return Err(sw::WRONG_P1P2),
            sfi => self.select_sfi(sfi)?,
        };
        if !matches!(self.fs.get(ef).body, Body::Records { .. }) {
            return Err(sw::INCOMPATIBLE_FILE);
        }
        self.usable(ef, write)?;
        Ok(ef)
    }

    fn records(&self, ef: FileIndex) -> &[Vec<u8>] {
        match &self.fs.get(ef).body {
            Body::Records { records, .. } => records,
            _ => &[],
        }
    }

    /// Record index (0-based) for P1 = record number, 00 = current record.
    fn record_number(&self, ef: FileIndex, p1: u8) -> Result<usize, u16> {
        let count = self.records(ef).len();
        match p1 {
            0 => self.current_record.ok_or(sw::RECORD_NOT_FOUND),
            0xFF => Err(sw::WRONG_P1P2),
            n if usize::from(n) <= count => Ok(usize::from(n) - 1),
            _ => Err(sw::RECORD_NOT_FOUND),
        }
    }

    fn read_record(&mut self, cmd: &Command) -> Response {
        let ef = match self.record_ef(cmd.p2, false) {
            Ok(ef) => ef,
            Err(sw) => return Response::status(sw),
        };
        if cmd.ne == 0 {
            return Response::status(sw::WRONG_LENGTH);
        }
        let count = self.records(ef).len();
        let selected: Result<Vec<usize>, u16> = match cmd.p2 & 0x07 {
            0x04 => self.record_number(ef, cmd.p1).map(|i| vec![i]),
            0x05 => self.record_number(ef, cmd.p1).map(|i| (i..count).collect()),
            0x06 => self
                .record_number(ef, cmd.p1)
                .map(|i| (i..count).rev().collect()),
            0x07 => Err(sw::WRONG_P1P2),
            // Record identifier 00: first, last, next, previous record.
            _ if cmd.p1 != 0 => Err(sw::RECORD_NOT_FOUND),
            mode => {
                let index = match (mode, self.current_record) {
                    (0, _) | (2, None) => Some(0),
                    (2, Some(i)) => Some(i + 1),
                    (3, Some(i)) => i.checked_sub(1),
                    _ => count.checked_sub(1),
                };
                match index.filter(|&i| i < count) {
                    Some(i) => {
                        self.current_record = Some(i);
                        Ok(vec![i])
                    }
                    None => Err(sw::RECORD_NOT_FOUND),
                }
            }
        };
        let indices = match selected {
            Ok(indices) => indices,
            Err(sw) => return Response::status(sw),
        };
        let records = self.records(ef);
        let mut data: Vec<u8> = indices
            .iter()
            .flat_map(|&i| records[i].iter().copied())
            .collect();
        let short = data.len() < cmd.ne && !cmd.ne_is_max;
        data.truncate(cmd.ne);
        Response {
            data,
            sw: if short { sw::END_OF_FILE } else { sw::OK },
        }
    }

    fn record_fits(&self, ef: FileIndex, data: &[u8]) -> bool {
        match &self.fs.get(ef).body {
            Body::Records {
                kind: RecordKind::LinearFixed(n),
                ..
            } => data.len() == *n,
            Body::Records {
                kind: RecordKind::LinearVariable(n),
                ..
            } => !data.is_empty() && data.len() <= *n,
            _ => false,
        }
    }

    fn update_record(&mut self, cmd: &Command) -> Response {
        if cmd.p2 & 0x07 != 0x04 {
            return Response::status(sw::WRONG_P1P2);
        }
        let index = self
            .record_ef(cmd.p2, true)
            .and_then(|ef| Ok((ef, self.record_number(ef, cmd.p1)?)));
        let (ef, index) = match index {
            Ok(found) => found,
            Err(sw) => return Response::status(sw),
        };
        if !self.record_fits(ef, &cmd.data) {
            return Response::status(sw::WRONG_LENGTH);
        }
        if let Body::Records { records, .. } = &mut self.fs.get_mut(ef).body {
            records[index] = cmd.data.clone();
        }
        Response::status(sw::OK)
    }

    fn append_record(&mut self, cmd: &Command) -> Response {
        if cmd.p1 != 0 || cmd.p2 & 0x07 != 0 {
            return Response::status(sw::WRONG_P1P2);
        }
        let ef = match self.record_ef(cmd.p2, true) {
            Ok(ef) => ef,
            Err(sw) => return Response::status(sw),
        };
        if !self.record_fits(ef, &cmd.data) {
            return Response::status(sw::WRONG_LENGTH);
        }
        let Body::Records {
            records,
            max_records,
            ..
        } = &mut self.fs.get_mut(ef).body
        else {
            return Response::status(sw::INCOMPATIBLE_FILE);
        };
        if records.len() >= *max_records {
            return Response::status(sw::FILE_FULL);
        }
        records.push(cmd.data.clone());
        self.current_record = Some(records.len() - 1);
        Response::status(sw::OK)
    }

    fn verify(&mut self, cmd: &Command) -> Response {
        if cmd.p1 == 0xFF && cmd.data.is_empty() && cmd.p2 == PIN_REFERENCE {
            // Reset the security status of the reference (ISO/IEC 7816-4:2013).
            self.pin_verified = false;
            return Response::status(sw::OK);
        }
        if cmd.p1 != 0 {
            return Response::status(sw::WRONG_P1P2);
        }
        let secret = match cmd.p2 {
            PIN_REFERENCE => &mut self.pin,
            PUK_REFERENCE => &mut self.puk,
            _ => return Response::status(sw::REFERENCE_NOT_FOUND),
        };
        if cmd.data.is_empty() {
            let sw = match secret.tries_left {
                0 => sw::BLOCKED,
                _ if cmd.p2 == PIN_REFERENCE && self.pin_verified => sw::OK,
                n => 0x63C0 | u16::from(n.min(15)),
            };
            return Response::status(sw);
        }
        let sw = secret.present(&cmd.data);
        if cmd.p2 == PIN_REFERENCE {
            self.pin_verified = sw == sw::OK;
        }
        Response::status(sw)
    }

    fn new_pin_ok(pin: &[u8]) -> bool {
        (4..=8).contains(&pin.len())
    }

    fn change_reference_data(&mut self, cmd: &Command) -> Response {
        if cmd.p2 != PIN_REFERENCE || cmd.p1 > 1 {
            return Response::status(if cmd.p1 > 1 {
                sw::WRONG_P1P2
            } else {
                sw::REFERENCE_NOT_FOUND
            });
        }
        let new_pin = if cmd.p1 == 0 {
            // Old PIN || new PIN: the old one has the stored PIN's length.
            let old_len = self.pin.value.len();
            if cmd.data.len() <= old_len {
                return Response::status(sw::WRONG_LENGTH);
            }
            let sw = self.pin.present(&cmd.data[..old_len]);
            if sw != sw::OK {
                self.pin_verified = false;
                return Response::status(sw);
            }
            &cmd.data[old_len..]
        } else {
            if !self.pin_verified {
                return Response::status(sw::SECURITY_NOT_SATISFIED);
            }
            &cmd.data[..]
        };
        if !Self::new_pin_ok(new_pin) {
            return Response::status(sw::WRONG_DATA);
        }
        self.pin.value = new_pin.to_vec();
        self.pin.tries_left = self.pin.max_tries;
        self.pin_verified = true;
        Response::status(sw::OK)
    }

    fn reset_retry_counter(&mut self, cmd: &Command) -> Response {
        if cmd.p1 > 1 {
            return Response::status(sw::WRONG_P1P2);
        }
        if cmd.p2 != PIN_REFERENCE {
            return Response::status(sw::REFERENCE_NOT_FOUND);
        }
        let puk_len = self.puk.value.len();
        let (puk, new_pin) = match cmd.p1 {
            0 if cmd.data.len() > puk_len => cmd.data.split_at(puk_len),
            1 if !cmd.data.is_empty() => (&cmd.data[..], &[][..]),
            _ => return Response::status(sw::WRONG_LENGTH),
        };
        if cmd.p1 == 0 && !Self::new_pin_ok(new_pin) {
            return Response::status(sw::WRONG_DATA);
        }
        let sw = self.puk.present(puk);
        if sw != sw::OK {
            return Response::status(sw);
        }
        if cmd.p1 == 0 {
            self.pin.value = new_pin.to_vec();
        }
        self.pin.tries_left = self.pin.max_tries;
        self.pin_verified = false;
        Response::status(sw::OK)
    }

    fn get_challenge(&mut self, cmd: &Command) -> Response {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Response::status(sw::WRONG_P1P2);
        }
        if cmd.ne == 0 || !cmd.data.is_empty() {
            return Response::status(sw::WRONG_LENGTH);
        }
        Response::ok(self.rng.bytes(cmd.ne))
    }

    fn internal_authenticate(&mut self, cmd: &Command) -> Response {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Response::status(sw::WRONG_P1P2);
        }
        if cmd.data.is_empty() {
            return Response::status(sw::WRONG_LENGTH);
        }
        let ne = if cmd.ne_is_max {
            32.min(cmd.ne)
        } else {
            cmd.ne
        };
        Response::ok(internal_authenticate(&self.auth_key, &cmd.data, ne))
    }
}
