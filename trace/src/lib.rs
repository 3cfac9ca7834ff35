//! Captured CCID traffic as a list of messages: Linux usbmon captures (pcap
//! with link type 220 `LINUX_USB_MMAPPED` or 189 `LINUX_USB`, either byte
//! order, and pcapng, as written by QEMU's `usb-ccid,pcap=`, tshark and
//! dumpcap) and libccid debug logs (`-> 000000 62 00 …`, `<- 000000 80 …`,
//! `-> lun: 0, …`).
//!
//! Pure functions over bytes and text, no I/O: `ferroccid trace` renders
//! what [`read_frames`] returns, and the `trace` fuzz target feeds them
//! hostile files. Every length in a file is checked against the bytes that
//! are really there before it is used, so memory and work stay linear in
//! the input's size whatever the length fields say.
//!
//! ```
//! use ferroccid_trace::{read_frames, Direction};
//!
//! let log = "00000012 -> 000000 65 00 00 00 00 00 01 00 00 00\n\
//!            00000034 <- 000000 81 00 00 00 00 00 01 00 00 00\n";
//! let frames = read_frames(log.as_bytes())?;
//! assert_eq!(frames.len(), 2);
//! assert_eq!(frames[0].direction, Direction::Out);
//! assert_eq!(frames[1].time_us, Some(46));
//! # Ok::<(), ferroccid_trace::TraceError>(())
//! ```
#![warn(unreachable_pub)]

pub mod capture;
pub mod replay;
pub mod replayed;

use std::collections::HashMap;
use std::fmt;

use ferroccid::ccid::{MessageType, HEADER_LEN};

/// The longest CCID message a bulk transfer is joined up to: CCID §5.1
/// allows dwMaxCCIDMessageLength up to 65544 + 10; a header declaring more
/// is not waited for (it is shown as it came).
pub const MAX_MESSAGE_LEN: usize = HEADER_LEN + 65_538;

/// Which way a message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Host to reader, bulk OUT.
    Out,
    /// Reader to host, bulk IN.
    In,
    /// Reader to host, interrupt IN.
    Interrupt,
}

impl Direction {
    /// `out`, `in` or `int`, as `ferroccid trace` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Out => "out",
            Direction::In => "in",
            Direction::Interrupt => "int",
        }
    }
}

/// One CCID message as found in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Microseconds since the first message (capture timestamps, or the
    /// sum of libccid's per-line deltas).
    pub time_us: Option<u64>,
    /// Which way it went.
    pub direction: Direction,
    /// Where it was seen: `bus.device ep NN` for captures, `lun N` for logs.
    pub source: String,
    /// The message, header included.
    pub bytes: Vec<u8>,
    /// Some bytes were redacted (`XX` in a log) and read as 00.
    pub redacted: bool,
}

/// One usbmon event with data: a bulk or interrupt URB submission or
/// completion (Linux `Documentation/usb/usbmon.rst`, `struct usbmon_packet`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Urb {
    /// Capture time in microseconds (usbmon's own seconds + microseconds).
    pub time_us: u64,
    /// `b'S'` submit, `b'C'` complete (`b'E'` error events are kept too).
    pub event: u8,
    /// usbmon transfer type: 1 interrupt, 3 bulk (others are dropped).
    pub transfer: u8,
    /// Endpoint address, bit 7 set for IN.
    pub endpoint: u8,
    /// Bus number.
    pub bus: u16,
    /// Device address.
    pub device: u8,
    /// The captured data.
    pub data: Vec<u8>,
    /// usbmon's URB id, the same in a submission and its completion.
    pub id: u64,
    /// The setup packet of a control submission.
    pub setup: Option<[u8; 8]>,
}

/// The kinds of input [`read_frames`] recognises, by their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// pcap, microsecond or nanosecond magic, in this byte order.
    Pcap {
        /// The file's byte order is big-endian.
        big_endian: bool,
    },
    /// pcapng (the byte order is per section).
    Pcapng,
    /// Anything else: read as a libccid log if it is UTF-8.
    Log,
}

impl Format {
    /// Tells the format from the first four bytes.
    pub fn detect(data: &[u8]) -> Format {
        match data.get(..4).unwrap_or_default() {
            [0xD4, 0xC3, 0xB2, 0xA1] | [0x4D, 0x3C, 0xB2, 0xA1] => {
                Format::Pcap { big_endian: false }
            }
            [0xA1, 0xB2, 0xC3, 0xD4] | [0xA1, 0xB2, 0x3C, 0x4D] => {
                Format::Pcap { big_endian: true }
            }
            [0x0A, 0x0D, 0x0D, 0x0A] => Format::Pcapng,
            _ => Format::Log,
        }
    }
}

/// Why an input could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceError {
    /// Neither a capture's magic number nor UTF-8 text.
    NotUtf8,
    /// The pcap file header (24 bytes) is cut short.
    TruncatedPcapHeader,
    /// The capture's link type is not usbmon.
    NotUsbmon {
        /// The link type found.
        linktype: u32,
    },
    /// A pcapng packet names an interface no Interface Description Block
    /// declared.
    UndeclaredInterface {
        /// The interface id in the packet.
        interface: u32,
    },
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::NotUtf8 => {
                f.write_str("neither a pcap/pcapng capture nor a text log (not UTF-8)")
            }
            TraceError::TruncatedPcapHeader => f.write_str("truncated pcap header"),
            TraceError::NotUsbmon { linktype } => write!(
                f,
                "link type {linktype} is not usbmon (189 LINUX_USB or 220 LINUX_USB_MMAPPED)"
            ),
            TraceError::UndeclaredInterface { interface } => {
                write!(f, "packet for undeclared interface {interface}")
            }
        }
    }
}

impl std::error::Error for TraceError {}

/// Every CCID message in `data`: a pcap or pcapng usbmon capture
/// (URBs joined into messages by [`reassemble`]) or a libccid log.
pub fn read_frames(data: &[u8]) -> Result<Vec<Frame>, TraceError> {
    let urbs = match Format::detect(data) {
        Format::Pcap { big_endian } => pcap_urbs(data, big_endian)?,
        Format::Pcapng => pcapng_urbs(data)?,
        Format::Log => {
            let text = std::str::from_utf8(data).map_err(|_| TraceError::NotUtf8)?;
            return Ok(libccid_log(text));
        }
    };
    Ok(reassemble(urbs))
}

/// The usbmon URBs of a capture (none for a libccid log).
pub fn capture_urbs(data: &[u8]) -> Result<Vec<Urb>, TraceError> {
    match Format::detect(data) {
        Format::Pcap { big_endian } => pcap_urbs(data, big_endian),
        Format::Pcapng => pcapng_urbs(data),
        Format::Log => Ok(Vec::new()),
    }
}

// ---------------------------------------------------------------- captures

/// Reads integers in one byte order.
#[derive(Clone, Copy)]
struct Endian {
    big: bool,
}

impl Endian {
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let v: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.big {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        })
    }
    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let v: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        })
    }
    fn u64(self, b: &[u8], at: usize) -> Option<u64> {
        let v: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(if self.big {
            u64::from_be_bytes(v)
        } else {
            u64::from_le_bytes(v)
        })
    }
}

/// `len` bytes of `data` from `at`, if they are all there.
fn slice(data: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    data.get(at..at.checked_add(len)?)
}

/// Header length of a usbmon link type: 189 has the 48-byte
/// `usbmon_packet` header, 220 the 64-byte one of the mmap interface
/// (isochronous descriptors follow only for isochronous transfers, which
/// CCID does not use).
fn usbmon_header_len(linktype: u32) -> Result<usize, TraceError> {
    match linktype {
        189 => Ok(48),
        220 => Ok(64),
        linktype => Err(TraceError::NotUsbmon { linktype }),
    }
}

/// One usbmon packet; `None` for events that carry no CCID message (control
/// or isochronous transfers, no data, a packet shorter than its header).
fn usbmon_urb(packet: &[u8], header_len: usize, e: Endian) -> Option<Urb> {
    let header = packet.get(..header_len)?;
    let (event, transfer, endpoint, device) = (header[8], header[9], header[10], header[11]);
    if !matches!(transfer, 1..=3) {
        return None;
    }
    // flag_setup 0: the setup packet is there (control submissions).
    let setup = (transfer == 2 && header[14] == 0)
        .then(|| header[40..48].try_into().ok())
        .flatten();
    // len_cap may claim more than the record holds: take what is there.
    let captured = e.u32(header, 36)? as usize;
    let body = &packet[header_len..];
    let data = &body[..captured.min(body.len())];
    if data.is_empty() && setup.is_none() {
        return None;
    }
    let seconds = e.u64(header, 16)?;
    let micros = u64::from(e.u32(header, 24)?);
    Some(Urb {
        time_us: seconds.wrapping_mul(1_000_000).wrapping_add(micros),
        event,
        transfer,
        endpoint,
        bus: e.u16(header, 12)?,
        device,
        data: data.to_vec(),
        id: e.u64(header, 0)?,
        setup,
    })
}

/// The configuration descriptor a capture holds: the first whole answer
/// (all of its wTotalLength) to a GET_DESCRIPTOR(CONFIGURATION) request
/// whose submission and completion are both in it (the kernel's, when the
/// capture began before the device was plugged in, or the one `--pcap`
/// captures start with).
pub fn configuration_descriptor(urbs: &[Urb]) -> Option<Vec<u8>> {
    get_descriptor(urbs, 2, |d| {
        d.len() >= 9 && d.len() >= usize::from(u16::from_le_bytes([d[2], d[3]]))
    })
}

/// The device descriptor a capture holds (GET_DESCRIPTOR(DEVICE), the
/// whole 18 bytes, not the kernel's first 8-byte read).
pub fn device_descriptor(urbs: &[Urb]) -> Option<Vec<u8>> {
    get_descriptor(urbs, 1, |d| d.len() >= 18)
}

/// The first answer `whole` accepts to a standard GET_DESCRIPTOR request
/// of descriptor type `kind`. Control transfers on a device's endpoint 0
/// run one at a time, so a completion answers the device's last control
/// submission (usbmon's URB ids are not used: QEMU's captures write 0).
fn get_descriptor(urbs: &[Urb], kind: u8, whole: impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
    let mut last_setup: HashMap<(u16, u8), [u8; 8]> = HashMap::new();
    for urb in urbs.iter().filter(|u| u.transfer == 2) {
        let device = (urb.bus, urb.device);
        match urb.event {
            b'S' => {
                if let Some(setup) = urb.setup {
                    last_setup.insert(device, setup);
                }
            }
            b'C' => {
                let asked = last_setup
                    .remove(&device)
                    .is_some_and(|s| s[..4] == [0x80, 0x06, 0x00, kind]);
                if asked && whole(&urb.data) {
                    return Some(urb.data.clone());
                }
            }
            _ => {}
        }
    }
    None
}

/// The URBs of a pcap capture. A record cut short (a capture still being
/// written) ends the list.
pub fn pcap_urbs(data: &[u8], big_endian: bool) -> Result<Vec<Urb>, TraceError> {
    let e = Endian { big: big_endian };
    if data.len() < 24 {
        return Err(TraceError::TruncatedPcapHeader);
    }
    let linktype = e.u32(data, 20).ok_or(TraceError::TruncatedPcapHeader)?;
    // The upper bits of the link-type field carry FCS flags (pcap-savefile).
    let header_len = usbmon_header_len(linktype & 0x0FFF_FFFF)?;
    let mut urbs = Vec::new();
    let mut at = 24usize;
    while let Some(caplen) = e.u32(data, at + 8) {
        let Some(packet) = slice(data, at + 16, caplen as usize) else {
            break;
        };
        urbs.extend(usbmon_urb(packet, header_len, e));
        at += 16 + packet.len();
    }
    Ok(urbs)
}

/// The URBs of a pcapng capture: Section Header (0x0A0D0D0A, byte order
/// from its magic), Interface Description (1) and Enhanced Packet (6)
/// blocks; other blocks are skipped. A block cut short ends the list.
pub fn pcapng_urbs(data: &[u8]) -> Result<Vec<Urb>, TraceError> {
    let mut e = Endian { big: false };
    // Header length per declared interface (None: not usbmon, an error
    // only if a packet uses it).
    let mut interfaces: Vec<Result<usize, TraceError>> = Vec::new();
    let mut urbs = Vec::new();
    let mut at = 0usize;
    while let Some(head) = slice(data, at, 12) {
        if head[..4] == [0x0A, 0x0D, 0x0D, 0x0A] {
            e = Endian {
                big: head[8..12] == [0x1A, 0x2B, 0x3C, 0x4D],
            };
            interfaces.clear();
        }
        let kind = e.u32(head, 0).unwrap_or(0);
        let len = e.u32(head, 4).unwrap_or(0) as usize;
        if len < 12 {
            break;
        }
        let Some(block) = slice(data, at, len) else {
            break;
        };
        match kind {
            1 => {
                let linktype = u32::from(e.u16(block, 8).unwrap_or(0));
                interfaces.push(usbmon_header_len(linktype));
            }
            6 if len >= 28 => {
                let interface = e.u32(block, 8).unwrap_or(0);
                let caplen = e.u32(block, 20).unwrap_or(0) as usize;
                let header_len = interfaces
                    .get(interface as usize)
                    .ok_or(TraceError::UndeclaredInterface { interface })?
                    .clone()?;
                if let Some(packet) = slice(block, 28, caplen) {
                    urbs.extend(usbmon_urb(packet, header_len, e));
                }
            }
            _ => {}
        }
        at += len;
    }
    Ok(urbs)
}

/// Turns URBs into CCID messages: bulk OUT data is taken at submission,
/// bulk and interrupt IN data at completion. A bulk message longer than
/// one URB (its `dwLength` not yet satisfied) is joined with the next URBs
/// of the same endpoint, up to [`MAX_MESSAGE_LEN`]; messages still
/// incomplete at the end follow the complete ones, in the order they began.
pub fn reassemble(urbs: Vec<Urb>) -> Vec<Frame> {
    let start = urbs.first().map_or(0, |u| u.time_us);
    let mut frames = Vec::new();
    // In-progress messages by (bus, device, endpoint), with the order they began.
    let mut partial: HashMap<(u16, u8, u8), (usize, Frame)> = HashMap::new();
    for (order, urb) in urbs.into_iter().enumerate() {
        let inbound = urb.endpoint & 0x80 != 0;
        let wanted = if inbound { b'C' } else { b'S' };
        if urb.event != wanted {
            continue;
        }
        let direction = match (urb.transfer, inbound) {
            (1, true) => Direction::Interrupt,
            (3, true) => Direction::In,
            (3, false) => Direction::Out,
            _ => continue,
        };
        let key = (urb.bus, urb.device, urb.endpoint);
        let (began, mut frame) = match partial.remove(&key) {
            Some((began, mut f)) => {
                f.bytes.extend_from_slice(&urb.data);
                (began, f)
            }
            None => (
                order,
                Frame {
                    time_us: Some(urb.time_us.saturating_sub(start)),
                    direction,
                    source: format!("{}.{} ep {:02x}", urb.bus, urb.device, urb.endpoint),
                    bytes: urb.data,
                    redacted: false,
                },
            ),
        };
        if direction != Direction::Interrupt {
            if let Some(wanted) = declared_len(&frame.bytes) {
                if frame.bytes.len() < wanted {
                    partial.insert(key, (began, frame));
                    continue;
                }
            }
        }
        frame.redacted = false;
        frames.push(frame);
    }
    let mut rest: Vec<(usize, Frame)> = partial.into_values().collect();
    rest.sort_by_key(|(began, _)| *began);
    frames.extend(rest.into_iter().map(|(_, f)| f));
    frames
}

/// The whole length a CCID header announces, if the bytes start with one
/// that is plausible (a known message type, at most [`MAX_MESSAGE_LEN`]).
fn declared_len(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..HEADER_LEN)?;
    MessageType::from_byte(header[0])?;
    let declared = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let whole = HEADER_LEN.checked_add(declared)?;
    (whole <= MAX_MESSAGE_LEN).then_some(whole)
}

// ---------------------------------------------------------------- libccid logs

/// The CCID messages of a libccid debug log: `[> ]<usec> [thread] -> 000000
/// 62 00 …` (lun in hex) and the newer `-> lun: 0, 62 00 …`. The first
/// field is microseconds since the previous log line. `XX` (a redacted
/// byte) is read as 00 and flagged; lines with no bytes are skipped, and a
/// token that is no hex byte ends a line's bytes (e.g. `00[truncated]`).
pub fn libccid_log(text: &str) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut clock: u64 = 0;
    for raw in text.lines() {
        let line = raw.trim_start().trim_start_matches('>').trim_start();
        if line.starts_with('#') {
            continue;
        }
        if let Some(delta) = line
            .split_whitespace()
            .next()
            .and_then(|w| w.parse::<u64>().ok())
        {
            clock = clock.saturating_add(delta);
        }
        let Some((direction, rest)) = [("-> ", Direction::Out), ("<- ", Direction::In)]
            .iter()
            .find_map(|(marker, d)| line.find(marker).map(|i| (*d, &line[i + 3..])))
        else {
            continue;
        };
        let (lun, hex) = if let Some(after) = rest.strip_prefix("lun: ") {
            match after.split_once(',') {
                Some((lun, hex)) => (lun.trim(), hex),
                None => continue,
            }
        } else {
            match rest.split_once(' ') {
                Some((lun, hex))
                    if lun.len() == 6 && lun.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    (lun.trim_start_matches('0'), hex)
                }
                _ => continue,
            }
        };
        let mut bytes = Vec::new();
        let mut redacted = false;
        for token in hex.split_whitespace() {
            if token.eq_ignore_ascii_case("XX") {
                redacted = true;
                bytes.push(0);
            } else if let (2, Ok(b)) = (token.len(), u8::from_str_radix(token, 16)) {
                bytes.push(b);
            } else {
                break;
            }
        }
        if bytes.is_empty() {
            continue;
        }
        let lun = if lun.is_empty() { "0" } else { lun };
        frames.push(Frame {
            time_us: Some(clock),
            direction,
            source: format!("lun {lun}"),
            bytes,
            redacted,
        });
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pcap file header (usbmon mmapped, little-endian) and one record
    /// whose caplen claims 4 GiB: the record is cut short, so reading stops
    /// without allocating or reading past the end.
    #[test]
    fn huge_pcap_caplen_ends_the_capture() {
        let mut data = vec![0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0];
        data.extend([0u8; 12]);
        data.extend(220u32.to_le_bytes());
        data.extend([0u8; 8]); // ts
        data.extend(u32::MAX.to_le_bytes()); // caplen
        data.extend(u32::MAX.to_le_bytes()); // len
        data.extend([0u8; 64]);
        assert_eq!(read_frames(&data), Ok(Vec::new()));
    }

    #[test]
    fn pcap_of_another_link_type_is_refused() {
        let mut data = vec![0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0];
        data.extend([0u8; 12]);
        data.extend(1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        assert_eq!(
            read_frames(&data),
            Err(TraceError::NotUsbmon { linktype: 1 })
        );
        assert_eq!(
            read_frames(&data[..20]),
            Err(TraceError::TruncatedPcapHeader)
        );
    }

    #[test]
    fn pcapng_block_longer_than_the_file_ends_it() {
        // SHB little-endian, then a block header claiming 0xFFFFFFF0 bytes.
        let mut data = vec![0x0A, 0x0D, 0x0D, 0x0A];
        data.extend(28u32.to_le_bytes());
        data.extend([0x4D, 0x3C, 0x2B, 0x1A, 1, 0, 0, 0]);
        data.extend(u64::MAX.to_le_bytes()); // section length unknown
        data.extend(28u32.to_le_bytes());
        data.extend(6u32.to_le_bytes());
        data.extend(0xFFFF_FFF0u32.to_le_bytes());
        data.extend([0u8; 32]);
        assert_eq!(read_frames(&data), Ok(Vec::new()));
    }

    #[test]
    fn header_declaring_more_than_ccid_allows_is_not_waited_for() {
        // XfrBlock declaring dwLength 0xFFFFFFFF in one 12-byte URB.
        let mut bytes = vec![0x6F, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0];
        bytes.extend([0x00, 0x84]);
        let urb = Urb {
            time_us: 5,
            event: b'S',
            transfer: 3,
            endpoint: 0x02,
            bus: 1,
            device: 2,
            data: bytes.clone(),
            id: 1,
            setup: None,
        };
        let frames = reassemble(vec![urb]);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].bytes, bytes);
        assert_eq!(frames[0].direction, Direction::Out);
    }

    #[test]
    fn a_bulk_message_over_two_urbs_is_joined() {
        // DataBlock with dwLength 4 split 12 + 2 (CCID §6.2.1).
        let first = vec![0x80, 4, 0, 0, 0, 0, 7, 0, 0, 0, 0x90, 0x00];
        let urb = |data: Vec<u8>, t| Urb {
            time_us: t,
            event: b'C',
            transfer: 3,
            endpoint: 0x82,
            bus: 1,
            device: 2,
            data,
            id: t,
            setup: None,
        };
        let frames = reassemble(vec![urb(first, 100), urb(vec![0x61, 0x00], 140)]);
        assert_eq!(frames.len(), 1);
        assert_eq!(
            frames[0].bytes,
            [0x80, 4, 0, 0, 0, 0, 7, 0, 0, 0, 0x90, 0x00, 0x61, 0x00]
        );
        assert_eq!(frames[0].time_us, Some(0));
        assert_eq!(frames[0].source, "1.2 ep 82");
    }

    #[test]
    fn log_lines_in_both_forms() {
        let log = "# comment -> 000000 11\n\
                   > 00000010 [140] -> 000000 62 00 00 00 00 00 03 01 00 00\n\
                   00000005 [140] <- lun: 1, 80 02 00 00 00 00 03 00 00 00 XX 00\n\
                   00000001 nothing here\n";
        let frames = libccid_log(log);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].direction, Direction::Out);
        assert_eq!(frames[0].source, "lun 0");
        assert_eq!(frames[0].time_us, Some(10));
        assert_eq!(frames[1].source, "lun 1");
        assert_eq!(frames[1].time_us, Some(15));
        assert!(frames[1].redacted);
        assert_eq!(frames[1].bytes.len(), 12);
    }

    #[test]
    fn binary_that_is_no_capture_is_refused() {
        assert_eq!(read_frames(&[0xFF, 0xFE, 0x00]), Err(TraceError::NotUtf8));
    }
}
