//! USB/IP wire format (Linux `Documentation/usb/usbip_protocol.rst`).
//!
//! Two layers, as in smoltcp: [`UrbHeaderView`] is a checked view over the
//! 48 bytes of a URB header, and the `Repr` types ([`OpHeader`],
//! [`DeviceRecord`], [`UrbHeader`]) are plain values that parse from and
//! emit into buffers. Everything is big-endian except the 8-byte setup
//! packet, which travels as USB sends it (little-endian fields).
//!
//! Every parser is a pure function over bytes a peer sent: lengths are
//! checked before use and nothing panics, so they can be fuzzed directly.

use std::fmt;

/// The protocol version every message carries (v1.1.1).
pub const USBIP_VERSION: u16 = 0x0111;
/// Request the list of exported devices.
pub const OP_REQ_DEVLIST: u16 = 0x8005;
/// Reply to [`OP_REQ_DEVLIST`].
pub const OP_REP_DEVLIST: u16 = 0x0005;
/// Request to import (attach) one device by bus id.
pub const OP_REQ_IMPORT: u16 = 0x8003;
/// Reply to [`OP_REQ_IMPORT`].
pub const OP_REP_IMPORT: u16 = 0x0003;
/// Operation status: success.
pub const OP_STATUS_OK: u32 = 0;
/// Operation status: failure (unknown bus id, device busy).
pub const OP_STATUS_ERROR: u32 = 1;

/// URB command: submit a transfer (client to server).
pub const USBIP_CMD_SUBMIT: u32 = 1;
/// URB command: cancel a submitted transfer (client to server).
pub const USBIP_CMD_UNLINK: u32 = 2;
/// URB reply: a transfer completed (server to client).
pub const USBIP_RET_SUBMIT: u32 = 3;
/// URB reply: outcome of an unlink (server to client).
pub const USBIP_RET_UNLINK: u32 = 4;

/// Direction field: host to device.
pub const DIR_OUT: u32 = 0;
/// Direction field: device to host.
pub const DIR_IN: u32 = 1;

/// Linux errno values that travel as negative URB statuses.
pub mod status {
    /// The endpoint stalled.
    pub const EPIPE: i32 = -32;
    /// The URB was unlinked before it completed.
    pub const ECONNRESET: i32 = -104;
    /// The device sent more than the URB's buffer holds.
    pub const EOVERFLOW: i32 = -75;
    /// The device is gone.
    pub const ENODEV: i32 = -19;
    /// The host controller shut the endpoint down.
    pub const ESHUTDOWN: i32 = -108;
    /// The transfer timed out on the server side.
    pub const ETIMEDOUT: i32 = -110;
    /// Any other protocol error.
    pub const EPROTO: i32 = -71;
}

/// Speed values of the device record (Linux `enum usb_device_speed`).
pub mod speed {
    /// 12 Mbit/s.
    pub const FULL: u32 = 2;
    /// 480 Mbit/s.
    pub const HIGH: u32 = 3;
}

/// Length of an operation header (version, code, status).
pub const OP_HEADER_LEN: usize = 8;
/// Length of the bus id field, NUL-padded.
pub const BUSID_LEN: usize = 32;
/// Length of the sysfs path field, NUL-padded.
pub const PATH_LEN: usize = 256;
/// Length of one exported-device record.
pub const DEVICE_RECORD_LEN: usize = 312;
/// Length of one interface record following a device in a devlist.
pub const INTERFACE_RECORD_LEN: usize = 4;
/// Length of every URB header (command, submit, unlink, replies).
pub const URB_HEADER_LEN: usize = 48;
/// Length of one isochronous packet descriptor after the data.
pub const ISO_DESCRIPTOR_LEN: usize = 16;
/// The Linux stub's limit on isochronous packets per URB.
pub const MAX_ISO_PACKETS: u32 = 1024;

/// Why bytes from a peer could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the structure needs.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// A URB header with a command code this protocol does not define.
    UnknownCommand(u32),
    /// A direction other than 0 or 1.
    BadDirection(u32),
    /// An endpoint number above 15.
    BadEndpoint(u32),
    /// A transfer length that is negative or above the accepted maximum.
    BadLength(i32),
    /// An isochronous packet count that is negative or above 1024.
    BadPacketCount(i32),
    /// A NUL-padded string field with no NUL or invalid UTF-8.
    BadString,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated { needed, got } => {
                write!(f, "truncated: needed {needed} bytes, got {got}")
            }
            WireError::UnknownCommand(c) => write!(f, "unknown URB command 0x{c:08X}"),
            WireError::BadDirection(d) => write!(f, "bad direction {d}"),
            WireError::BadEndpoint(e) => write!(f, "bad endpoint number {e}"),
            WireError::BadLength(l) => write!(f, "bad transfer length {l}"),
            WireError::BadPacketCount(n) => write!(f, "bad isochronous packet count {n}"),
            WireError::BadString => write!(f, "string field is not NUL-terminated UTF-8"),
        }
    }
}

impl std::error::Error for WireError {}

fn need(bytes: &[u8], needed: usize) -> Result<(), WireError> {
    if bytes.len() < needed {
        Err(WireError::Truncated {
            needed,
            got: bytes.len(),
        })
    } else {
        Ok(())
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads a NUL-padded string field; the whole field without a NUL is
/// rejected because C peers print it with `%s`.
pub fn parse_padded_str(field: &[u8]) -> Result<&str, WireError> {
    let end = field
        .iter()
        .position(|&b| b == 0)
        .ok_or(WireError::BadString)?;
    std::str::from_utf8(&field[..end]).map_err(|_| WireError::BadString)
}

/// Writes `text` NUL-padded into `field`, truncated to leave room for the
/// terminating NUL.
pub fn emit_padded_str(text: &str, field: &mut [u8]) {
    field.fill(0);
    let n = text.len().min(field.len().saturating_sub(1));
    field[..n].copy_from_slice(&text.as_bytes()[..n]);
}

/// The 8-byte header of every operation (devlist and import).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpHeader {
    /// Protocol version, [`USBIP_VERSION`].
    pub version: u16,
    /// One of the `OP_*` codes.
    pub code: u16,
    /// 0 for requests and successful replies.
    pub status: u32,
}

impl OpHeader {
    /// A request or reply header with our version and status OK.
    pub fn new(code: u16) -> Self {
        OpHeader {
            version: USBIP_VERSION,
            code,
            status: OP_STATUS_OK,
        }
    }

    /// Parses the first 8 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        need(bytes, OP_HEADER_LEN)?;
        Ok(OpHeader {
            version: be16(bytes, 0),
            code: be16(bytes, 2),
            status: be32(bytes, 4),
        })
    }

    /// The 8 header bytes.
    pub fn to_bytes(&self) -> [u8; OP_HEADER_LEN] {
        let mut out = [0u8; OP_HEADER_LEN];
        out[0..2].copy_from_slice(&self.version.to_be_bytes());
        out[2..4].copy_from_slice(&self.code.to_be_bytes());
        out[4..8].copy_from_slice(&self.status.to_be_bytes());
        out
    }
}

/// One exported device as OP_REP_DEVLIST and OP_REP_IMPORT describe it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceRecord {
    /// sysfs path of the device on the server (informational).
    pub path: String,
    /// Bus id clients import the device by, for example `1-1`.
    pub busid: String,
    /// Bus number; with `devnum` it forms the URB `devid`.
    pub busnum: u32,
    /// Device number on that bus.
    pub devnum: u32,
    /// [`speed`] value.
    pub speed: u32,
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// bcdDevice.
    pub bcd_device: u16,
    /// bDeviceClass.
    pub device_class: u8,
    /// bDeviceSubClass.
    pub device_subclass: u8,
    /// bDeviceProtocol.
    pub device_protocol: u8,
    /// bConfigurationValue of the active configuration.
    pub configuration_value: u8,
    /// bNumConfigurations.
    pub num_configurations: u8,
    /// bNumInterfaces of the active configuration.
    pub num_interfaces: u8,
}

impl DeviceRecord {
    /// The `devid` a client puts in URB headers: `busnum << 16 | devnum`.
    pub fn devid(&self) -> u32 {
        (self.busnum << 16) | (self.devnum & 0xFFFF)
    }

    /// Parses the 312-byte record.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        need(bytes, DEVICE_RECORD_LEN)?;
        let b = &bytes[..DEVICE_RECORD_LEN];
        Ok(DeviceRecord {
            path: parse_padded_str(&b[..PATH_LEN])?.to_owned(),
            busid: parse_padded_str(&b[PATH_LEN..PATH_LEN + BUSID_LEN])?.to_owned(),
            busnum: be32(b, 288),
            devnum: be32(b, 292),
            speed: be32(b, 296),
            vendor_id: be16(b, 300),
            product_id: be16(b, 302),
            bcd_device: be16(b, 304),
            device_class: b[306],
            device_subclass: b[307],
            device_protocol: b[308],
            configuration_value: b[309],
            num_configurations: b[310],
            num_interfaces: b[311],
        })
    }

    /// The 312 record bytes.
    pub fn to_bytes(&self) -> [u8; DEVICE_RECORD_LEN] {
        let mut b = [0u8; DEVICE_RECORD_LEN];
        emit_padded_str(&self.path, &mut b[..PATH_LEN]);
        emit_padded_str(&self.busid, &mut b[PATH_LEN..PATH_LEN + BUSID_LEN]);
        b[288..292].copy_from_slice(&self.busnum.to_be_bytes());
        b[292..296].copy_from_slice(&self.devnum.to_be_bytes());
        b[296..300].copy_from_slice(&self.speed.to_be_bytes());
        b[300..302].copy_from_slice(&self.vendor_id.to_be_bytes());
        b[302..304].copy_from_slice(&self.product_id.to_be_bytes());
        b[304..306].copy_from_slice(&self.bcd_device.to_be_bytes());
        b[306] = self.device_class;
        b[307] = self.device_subclass;
        b[308] = self.device_protocol;
        b[309] = self.configuration_value;
        b[310] = self.num_configurations;
        b[311] = self.num_interfaces;
        b
    }
}

/// One interface as listed after a device in OP_REP_DEVLIST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InterfaceRecord {
    /// bInterfaceClass.
    pub class: u8,
    /// bInterfaceSubClass.
    pub subclass: u8,
    /// bInterfaceProtocol.
    pub protocol: u8,
}

impl InterfaceRecord {
    /// Parses the 4-byte record (the last byte is padding).
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        need(bytes, INTERFACE_RECORD_LEN)?;
        Ok(InterfaceRecord {
            class: bytes[0],
            subclass: bytes[1],
            protocol: bytes[2],
        })
    }

    /// The 4 record bytes.
    pub fn to_bytes(&self) -> [u8; INTERFACE_RECORD_LEN] {
        [self.class, self.subclass, self.protocol, 0]
    }
}

/// Builds a whole OP_REP_DEVLIST: header, device count, then each device
/// followed by its interface records.
pub fn emit_devlist_reply(devices: &[(DeviceRecord, Vec<InterfaceRecord>)]) -> Vec<u8> {
    let mut out = OpHeader::new(OP_REP_DEVLIST).to_bytes().to_vec();
    out.extend_from_slice(&(devices.len() as u32).to_be_bytes());
    for (device, interfaces) in devices {
        out.extend_from_slice(&device.to_bytes());
        for interface in interfaces {
            out.extend_from_slice(&interface.to_bytes());
        }
    }
    out
}

/// Builds OP_REQ_IMPORT for `busid`.
pub fn emit_import_request(busid: &str) -> [u8; OP_HEADER_LEN + BUSID_LEN] {
    let mut out = [0u8; OP_HEADER_LEN + BUSID_LEN];
    out[..OP_HEADER_LEN].copy_from_slice(&OpHeader::new(OP_REQ_IMPORT).to_bytes());
    emit_padded_str(busid, &mut out[OP_HEADER_LEN..]);
    out
}

/// Parses the 32-byte bus id that follows an OP_REQ_IMPORT header.
pub fn parse_import_busid(bytes: &[u8]) -> Result<&str, WireError> {
    need(bytes, BUSID_LEN)?;
    parse_padded_str(&bytes[..BUSID_LEN])
}

/// The 8-byte USB setup packet of a control transfer (USB 2.0 §9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetupPacket {
    /// bmRequestType.
    pub request_type: u8,
    /// bRequest.
    pub request: u8,
    /// wValue.
    pub value: u16,
    /// wIndex.
    pub index: u16,
    /// wLength.
    pub length: u16,
}

impl SetupPacket {
    /// Reads the little-endian USB fields.
    pub fn from_bytes(b: [u8; 8]) -> Self {
        SetupPacket {
            request_type: b[0],
            request: b[1],
            value: u16::from_le_bytes([b[2], b[3]]),
            index: u16::from_le_bytes([b[4], b[5]]),
            length: u16::from_le_bytes([b[6], b[7]]),
        }
    }

    /// The 8 bytes as they go on the wire.
    pub fn to_bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.request_type;
        b[1] = self.request;
        b[2..4].copy_from_slice(&self.value.to_le_bytes());
        b[4..6].copy_from_slice(&self.index.to_le_bytes());
        b[6..8].copy_from_slice(&self.length.to_le_bytes());
        b
    }

    /// Whether the data stage goes device to host.
    pub fn is_in(&self) -> bool {
        self.request_type & 0x80 != 0
    }
}

/// A checked view over a 48-byte URB header.
#[derive(Debug, Clone, Copy)]
pub struct UrbHeaderView<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UrbHeaderView<T> {
    /// Wraps `buffer` after checking it holds a whole header.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        need(buffer.as_ref(), URB_HEADER_LEN)?;
        Ok(UrbHeaderView { buffer })
    }

    fn word(&self, index: usize) -> u32 {
        be32(self.buffer.as_ref(), index * 4)
    }

    /// The command code (first word).
    pub fn command(&self) -> u32 {
        self.word(0)
    }
    /// The sequence number.
    pub fn seqnum(&self) -> u32 {
        self.word(1)
    }
    /// The device id (`busnum << 16 | devnum`).
    pub fn devid(&self) -> u32 {
        self.word(2)
    }
    /// [`DIR_OUT`] or [`DIR_IN`].
    pub fn direction(&self) -> u32 {
        self.word(3)
    }
    /// The endpoint number, without the direction bit.
    pub fn ep(&self) -> u32 {
        self.word(4)
    }
    /// Word 5: transfer_flags (CMD_SUBMIT), unlink seqnum (CMD_UNLINK) or
    /// status (RET_*).
    pub fn word5(&self) -> u32 {
        self.word(5)
    }
    /// Word 6: transfer_buffer_length (CMD_SUBMIT) or actual_length
    /// (RET_SUBMIT).
    pub fn word6(&self) -> u32 {
        self.word(6)
    }
    /// Word 7: start_frame.
    pub fn start_frame(&self) -> u32 {
        self.word(7)
    }
    /// Word 8: number_of_packets.
    pub fn number_of_packets(&self) -> u32 {
        self.word(8)
    }
    /// Word 9: interval (CMD_SUBMIT) or error_count (RET_SUBMIT).
    pub fn word9(&self) -> u32 {
        self.word(9)
    }
    /// The last 8 bytes: the setup packet of a CMD_SUBMIT.
    pub fn setup(&self) -> [u8; 8] {
        let b = self.buffer.as_ref();
        [b[40], b[41], b[42], b[43], b[44], b[45], b[46], b[47]]
    }
}

/// CMD_SUBMIT: one URB from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CmdSubmit {
    /// Sequence number the reply echoes.
    pub seqnum: u32,
    /// Device id from the import reply.
    pub devid: u32,
    /// [`DIR_OUT`] or [`DIR_IN`].
    pub direction: u32,
    /// Endpoint number 0-15.
    pub ep: u32,
    /// Linux URB transfer flags.
    pub transfer_flags: u32,
    /// OUT: bytes that follow the header; IN: bytes the client can take.
    pub transfer_buffer_length: u32,
    /// Isochronous start frame (unused here).
    pub start_frame: u32,
    /// Isochronous packet count; 0 or 0xFFFFFFFF when not isochronous.
    pub number_of_packets: u32,
    /// Polling interval for interrupt endpoints.
    pub interval: u32,
    /// Setup packet for endpoint 0; zero otherwise.
    pub setup: [u8; 8],
}

impl CmdSubmit {
    /// Bytes of transfer data that follow the header on the wire.
    pub fn out_data_len(&self) -> usize {
        if self.direction == DIR_OUT {
            self.transfer_buffer_length as usize
        } else {
            0
        }
    }

    /// Bytes of isochronous packet descriptors after the data.
    pub fn iso_descriptors_len(&self) -> usize {
        match self.number_of_packets {
            0xFFFF_FFFF => 0,
            n => n as usize * ISO_DESCRIPTOR_LEN,
        }
    }
}

/// CMD_UNLINK: cancel the URB with `unlink_seqnum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CmdUnlink {
    /// This request's own sequence number, echoed by RET_UNLINK.
    pub seqnum: u32,
    /// Device id.
    pub devid: u32,
    /// Direction of the URB (informational).
    pub direction: u32,
    /// Endpoint of the URB (informational).
    pub ep: u32,
    /// The seqnum of the CMD_SUBMIT to cancel.
    pub unlink_seqnum: u32,
}

/// RET_SUBMIT: a completed URB; IN data of `actual_length` bytes follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetSubmit {
    /// The CMD_SUBMIT's seqnum.
    pub seqnum: u32,
    /// 0 or a negative errno ([`status`]).
    pub status: i32,
    /// Bytes transferred.
    pub actual_length: u32,
    /// Isochronous start frame.
    pub start_frame: u32,
    /// Isochronous packet count (0 for other transfers, as the Linux stub sends).
    pub number_of_packets: u32,
    /// Isochronous error count.
    pub error_count: u32,
}

/// RET_UNLINK: `status` is -ECONNRESET when the URB was cancelled, 0 when
/// it had already completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetUnlink {
    /// The CMD_UNLINK's seqnum.
    pub seqnum: u32,
    /// 0 or [`status::ECONNRESET`].
    pub status: i32,
}

/// Any of the four URB headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrbHeader {
    /// USBIP_CMD_SUBMIT.
    CmdSubmit(CmdSubmit),
    /// USBIP_CMD_UNLINK.
    CmdUnlink(CmdUnlink),
    /// USBIP_RET_SUBMIT.
    RetSubmit(RetSubmit),
    /// USBIP_RET_UNLINK.
    RetUnlink(RetUnlink),
}

impl UrbHeader {
    /// Parses and validates a header: known command, direction 0/1,
    /// endpoint 0-15, and for CMD_SUBMIT a transfer length of at most
    /// `max_transfer` and a sane isochronous packet count; for RET_SUBMIT
    /// an actual length of at most `max_transfer`.
    pub fn parse(bytes: &[u8], max_transfer: u32) -> Result<Self, WireError> {
        let view = UrbHeaderView::new_checked(bytes)?;
        let command = view.command();
        let checked_len = |len: u32| {
            if len > max_transfer || len > i32::MAX as u32 {
                Err(WireError::BadLength(len as i32))
            } else {
                Ok(len)
            }
        };
        match command {
            USBIP_CMD_SUBMIT | USBIP_CMD_UNLINK => {
                if view.direction() > DIR_IN {
                    return Err(WireError::BadDirection(view.direction()));
                }
                if view.ep() > 15 {
                    return Err(WireError::BadEndpoint(view.ep()));
                }
            }
            USBIP_RET_SUBMIT | USBIP_RET_UNLINK => {}
            other => return Err(WireError::UnknownCommand(other)),
        }
        Ok(match command {
            USBIP_CMD_SUBMIT => {
                let packets = view.number_of_packets();
                if packets != 0xFFFF_FFFF && packets > MAX_ISO_PACKETS {
                    return Err(WireError::BadPacketCount(packets as i32));
                }
                UrbHeader::CmdSubmit(CmdSubmit {
                    seqnum: view.seqnum(),
                    devid: view.devid(),
                    direction: view.direction(),
                    ep: view.ep(),
                    transfer_flags: view.word5(),
                    transfer_buffer_length: checked_len(view.word6())?,
                    start_frame: view.start_frame(),
                    number_of_packets: packets,
                    interval: view.word9(),
                    setup: view.setup(),
                })
            }
            USBIP_CMD_UNLINK => UrbHeader::CmdUnlink(CmdUnlink {
                seqnum: view.seqnum(),
                devid: view.devid(),
                direction: view.direction(),
                ep: view.ep(),
                unlink_seqnum: view.word5(),
            }),
            USBIP_RET_SUBMIT => UrbHeader::RetSubmit(RetSubmit {
                seqnum: view.seqnum(),
                status: view.word5() as i32,
                actual_length: checked_len(view.word6())?,
                start_frame: view.start_frame(),
                number_of_packets: view.number_of_packets(),
                error_count: view.word9(),
            }),
            _ => UrbHeader::RetUnlink(RetUnlink {
                seqnum: view.seqnum(),
                status: view.word5() as i32,
            }),
        })
    }

    /// The 48 header bytes. Replies carry devid, direction and ep 0, as
    /// the protocol document requires.
    pub fn to_bytes(&self) -> [u8; URB_HEADER_LEN] {
        let words: [u32; 10] = match *self {
            UrbHeader::CmdSubmit(c) => [
                USBIP_CMD_SUBMIT,
                c.seqnum,
                c.devid,
                c.direction,
                c.ep,
                c.transfer_flags,
                c.transfer_buffer_length,
                c.start_frame,
                c.number_of_packets,
                c.interval,
            ],
            UrbHeader::CmdUnlink(u) => [
                USBIP_CMD_UNLINK,
                u.seqnum,
                u.devid,
                u.direction,
                u.ep,
                u.unlink_seqnum,
                0,
                0,
                0,
                0,
            ],
            UrbHeader::RetSubmit(r) => [
                USBIP_RET_SUBMIT,
                r.seqnum,
                0,
                0,
                0,
                r.status as u32,
                r.actual_length,
                r.start_frame,
                r.number_of_packets,
                r.error_count,
            ],
            UrbHeader::RetUnlink(r) => [
                USBIP_RET_UNLINK,
                r.seqnum,
                0,
                0,
                0,
                r.status as u32,
                0,
                0,
                0,
                0,
            ],
        };
        let mut out = [0u8; URB_HEADER_LEN];
        for (chunk, word) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        if let UrbHeader::CmdSubmit(c) = self {
            out[40..48].copy_from_slice(&c.setup);
        }
        out
    }
}
