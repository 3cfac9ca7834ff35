//! USB/IP client backend: a CCID reader on a remote USB/IP server, reached
//! in userspace over TCP, without the `vhci-hcd` kernel module.
//!
//! Naming: `usbip:HOST:PORT/BUSID` ([`DeviceName::UsbIp`]).
//! Discovery: [`list_devices`] sends OP_REQ_DEVLIST.
//! Open: OP_REQ_IMPORT, then GET_DESCRIPTOR (device, configuration,
//! strings) and SET_CONFIGURATION over endpoint 0, as a host would after
//! enumeration; the CCID interface and endpoints are found with
//! [`descriptors`](super::descriptors).
//! Transfers: each is one CMD_SUBMIT; a receiver thread reads every reply
//! and hands it to the waiting caller by seqnum, so bulk-IN, bulk-OUT,
//! interrupt-IN and control transfers can be in flight at once.
//! Cancellation and timeouts: CMD_UNLINK, then wait for RET_UNLINK or the
//! RET_SUBMIT that crossed it (its data is delivered, not dropped), for
//! a grace period (the transfer's timeout, within 200 ms and 2 s); then
//! the call returns its timeout or cancellation either way and forgets
//! both seqnums. So a call returns within its timeout plus that grace.
//! Errors: the URB status maps back to [`TransportError`]; a lost
//! connection is [`TransportError::DeviceGone`] for every caller.
//!
//! A hostile or broken server cannot grow the client: every call removes
//! its own entries from the table of pending seqnums when it returns, and
//! at most [`MAX_PENDING`] transfers may wait at once. The receive loop
//! checks every length (an IN reply never carries more than its URB
//! asked for; nothing is allocated beyond that), drops replies to
//! seqnums it no longer waits for (IN transfers use odd seqnums, OUT
//! transfers and unlinks even ones, so such a reply's data is skipped
//! without knowing the URB) and counts them; after
//! [`MAX_CONSECUTIVE_JUNK`] such replies in a row, or a header it cannot
//! frame, the connection is dropped and every caller gets `DeviceGone`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use super::cancel::WaitOutcome;
use super::descriptors::{
    choose_interface, find_class_descriptor, parse_configuration, select_endpoints,
};
use super::{
    round_up_to_packets, CancelToken, DeviceName, Transport, TransportError, TransportInfo,
};
use crate::usbip::wire::{
    emit_import_request, status, CmdSubmit, CmdUnlink, DeviceRecord, InterfaceRecord, OpHeader,
    RetSubmit, RetUnlink, SetupPacket, UrbHeader, DEVICE_RECORD_LEN, DIR_IN, DIR_OUT,
    INTERFACE_RECORD_LEN, OP_HEADER_LEN, OP_REP_DEVLIST, OP_REP_IMPORT, OP_REQ_DEVLIST,
    OP_STATUS_OK, URB_HEADER_LEN,
};

/// Connecting and the import handshake are bounded so a dead host fails
/// the open instead of hanging it.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Descriptor requests at open time.
const ENUMERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the server's answer to CMD_UNLINK: as long as
/// the transfer's own timeout, but at least [`MIN_UNLINK_GRACE`] (an
/// honest server answers within a round trip) and at most this.
const UNLINK_TIMEOUT: Duration = Duration::from_secs(2);
/// The shortest wait for the answer to CMD_UNLINK.
const MIN_UNLINK_GRACE: Duration = Duration::from_millis(200);
/// Largest reply accepted from the server: a whole CCID message, rounded
/// up to packets, fits easily.
const MAX_REPLY: u32 = 1 << 20;
/// A devlist larger than this many devices is a broken server.
const MAX_DEVICES: u32 = 1024;
/// Transfers that may wait for the server at once: the four endpoints
/// are serialised, so more means a bug; the excess fails at once.
pub const MAX_PENDING: usize = 16;
/// Replies in a row that answer nothing this client waits for (unknown
/// or forgotten seqnums, commands) before the server is declared broken.
pub const MAX_CONSECUTIVE_JUNK: u32 = 64;

const GET_DESCRIPTOR: u8 = 0x06;
const SET_CONFIGURATION: u8 = 0x09;
const DT_DEVICE: u16 = 0x0100;
const DT_CONFIGURATION: u16 = 0x0200;
const DT_STRING: u16 = 0x0300;

/// A CCID reader imported from a USB/IP server.
pub struct UsbIpTransport {
    info: TransportInfo,
    link: Arc<Link>,
    receiver: Option<thread::JoinHandle<()>>,
    cancel: CancelToken,
    bulk_out_lock: Mutex<()>,
    bulk_in_lock: Mutex<()>,
    interrupt_lock: Mutex<()>,
    control_lock: Mutex<()>,
}

impl std::fmt::Debug for UsbIpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsbIpTransport")
            .field("name", &self.info.name)
            .finish()
    }
}

/// The connection shared by callers and the receiver thread.
struct Link {
    writer: Mutex<Box<dyn Write + Send>>,
    /// Closes the connection, so a blocked receiver returns.
    hangup: Box<dyn Fn() + Send + Sync>,
    devid: u32,
    next_seqnum: AtomicU32,
    pending: Mutex<HashMap<u32, Pending>>,
    gone: AtomicBool,
    /// The longest an interrupted transfer waits for the unlink's answer.
    unlink_grace: Duration,
    /// Replies dropped because nobody waited for them.
    dropped: AtomicU64,
}

/// What a seqnum in flight is waiting for.
enum Pending {
    Submit(Arc<Completion>),
    Unlink {
        target: u32,
        completion: Arc<Completion>,
    },
}

/// Where the receiver thread leaves one URB's outcome.
struct Completion {
    /// Whether RET_SUBMIT carries data after its header.
    direction_in: bool,
    /// IN: the most data the URB asked for.
    in_length: usize,
    state: Mutex<CompletionState>,
}

#[derive(Default)]
struct CompletionState {
    /// RET_SUBMIT status and IN data.
    submitted: Option<(i32, Vec<u8>)>,
    /// RET_UNLINK status.
    unlinked: Option<i32>,
    gone: bool,
    waker: Option<Waker>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Completion {
    fn update(&self, change: impl FnOnce(&mut CompletionState)) {
        let mut state = lock(&self.state);
        change(&mut state);
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }
}

/// Lists the devices a USB/IP server exports (OP_REQ_DEVLIST).
pub fn list_devices(
    host: &str,
    port: u16,
) -> Result<Vec<(DeviceRecord, Vec<InterfaceRecord>)>, TransportError> {
    let mut stream = connect(host, port)?;
    let io = |e| TransportError::io("usbip devlist", e);
    stream
        .write_all(&OpHeader::new(OP_REQ_DEVLIST).to_bytes())
        .map_err(io)?;
    let mut header = [0u8; OP_HEADER_LEN + 4];
    stream.read_exact(&mut header).map_err(io)?;
    let op = OpHeader::parse(&header).map_err(bad_data)?;
    if op.code != OP_REP_DEVLIST || op.status != OP_STATUS_OK {
        return Err(bad_data(format!(
            "devlist answered with code 0x{:04X} status {}",
            op.code, op.status
        )));
    }
    let count = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    if count > MAX_DEVICES {
        return Err(bad_data(format!("devlist claims {count} devices")));
    }
    let mut devices = Vec::new();
    for _ in 0..count {
        let mut raw = [0u8; DEVICE_RECORD_LEN];
        stream.read_exact(&mut raw).map_err(io)?;
        let device = DeviceRecord::parse(&raw).map_err(bad_data)?;
        let mut interfaces = Vec::new();
        for _ in 0..device.num_interfaces {
            let mut raw = [0u8; INTERFACE_RECORD_LEN];
            stream.read_exact(&mut raw).map_err(io)?;
            interfaces.push(InterfaceRecord::parse(&raw).map_err(bad_data)?);
        }
        devices.push((device, interfaces));
    }
    Ok(devices)
}

fn bad_data(e: impl ToString) -> TransportError {
    TransportError::io(
        "usbip",
        io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
    )
}

fn connect(host: &str, port: u16) -> Result<TcpStream, TransportError> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| TransportError::io("usbip: resolving the host", e))?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "host has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, HANDSHAKE_TIMEOUT) {
            Ok(stream) => {
                let setup = stream
                    .set_nodelay(true)
                    .and_then(|()| stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT)))
                    .and_then(|()| stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT)));
                setup.map_err(|e| TransportError::io("usbip: socket options", e))?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(TransportError::io("usbip: connecting", last))
}

impl UsbIpTransport {
    /// Opens a `usbip:HOST:PORT/BUSID` name.
    pub fn open_str(name: &str) -> Result<Self, TransportError> {
        Self::open(&name.parse::<DeviceName>()?)
    }

    /// Opens a parsed name; other kinds of names are `Unsupported`.
    pub fn open(name: &DeviceName) -> Result<Self, TransportError> {
        match name {
            DeviceName::UsbIp { host, port, bus_id } => Self::connect(host, *port, bus_id),
            other => Err(TransportError::Unsupported(format!(
                "{other} is not a usbip: name"
            ))),
        }
    }

    /// Imports `bus_id` from the server at `host:port` and enumerates it.
    pub fn connect(host: &str, port: u16, bus_id: &str) -> Result<Self, TransportError> {
        let mut stream = connect(host, port)?;
        let io = |e| TransportError::io("usbip import", e);
        stream.write_all(&emit_import_request(bus_id)).map_err(io)?;
        let mut header = [0u8; OP_HEADER_LEN];
        stream.read_exact(&mut header).map_err(io)?;
        let op = OpHeader::parse(&header).map_err(bad_data)?;
        if op.code != OP_REP_IMPORT {
            return Err(bad_data(format!(
                "import answered with code 0x{:04X}",
                op.code
            )));
        }
        if op.status != OP_STATUS_OK {
            return Err(TransportError::NotFound(format!(
                "usbip:{host}:{port}/{bus_id} (import refused, status {})",
                op.status
            )));
        }
        let mut raw = [0u8; DEVICE_RECORD_LEN];
        stream.read_exact(&mut raw).map_err(io)?;
        let record = DeviceRecord::parse(&raw).map_err(bad_data)?;
        if record.busid != bus_id {
            return Err(bad_data(format!(
                "asked for bus id {bus_id:?}, server imported {:?}",
                record.busid
            )));
        }
        stream.set_read_timeout(None).map_err(io)?;
        stream.set_write_timeout(None).map_err(io)?;
        let reader = stream.try_clone().map_err(io)?;
        let closer = stream.try_clone().map_err(io)?;
        let hangup = move || {
            let _ = closer.shutdown(Shutdown::Both);
        };
        let mut transport = Self::start(
            reader,
            stream,
            hangup,
            record.devid(),
            TransportInfo::default(),
            UNLINK_TIMEOUT,
        )
        .map_err(io)?;
        let name = DeviceName::UsbIp {
            host: host.to_owned(),
            port,
            bus_id: bus_id.to_owned(),
        };
        transport.info = transport.enumerate(name.to_string(), &record)?;
        Ok(transport)
    }

    /// A transport over any byte streams, already imported (no handshake,
    /// no enumeration: `info` is taken as given): for fuzzing the receive
    /// loop with a hostile server's bytes. `hangup` must make a blocked
    /// `reader` return.
    #[doc(hidden)]
    pub fn over_streams<R, W, H>(
        reader: R,
        writer: W,
        hangup: H,
        info: TransportInfo,
        unlink_grace: Duration,
    ) -> io::Result<Self>
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
        H: Fn() + Send + Sync + 'static,
    {
        Self::start(reader, writer, hangup, 0x0001_0002, info, unlink_grace)
    }

    /// Entries in the table of pending seqnums (for tests).
    #[doc(hidden)]
    pub fn pending_len(&self) -> usize {
        lock(&self.link.pending).len()
    }

    /// Replies dropped because no call waited for them (for tests).
    #[doc(hidden)]
    pub fn dropped_replies(&self) -> u64 {
        self.link.dropped.load(Ordering::SeqCst)
    }

    fn start<R, W, H>(
        reader: R,
        writer: W,
        hangup: H,
        devid: u32,
        info: TransportInfo,
        unlink_grace: Duration,
    ) -> io::Result<Self>
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
        H: Fn() + Send + Sync + 'static,
    {
        let link = Arc::new(Link {
            writer: Mutex::new(Box::new(writer)),
            hangup: Box::new(hangup),
            devid,
            next_seqnum: AtomicU32::new(0),
            pending: Mutex::new(HashMap::new()),
            gone: AtomicBool::new(false),
            unlink_grace,
            dropped: AtomicU64::new(0),
        });
        let link2 = link.clone();
        let receiver = thread::Builder::new()
            .name("usbip-rx".into())
            .spawn(move || link2.receive(reader))?;
        Ok(UsbIpTransport {
            info,
            link,
            receiver: Some(receiver),
            cancel: CancelToken::new(),
            bulk_out_lock: Mutex::new(()),
            bulk_in_lock: Mutex::new(()),
            interrupt_lock: Mutex::new(()),
            control_lock: Mutex::new(()),
        })
    }

    /// Reads the descriptors and selects the configuration, as a host's
    /// enumeration would.
    fn enumerate(
        &self,
        name: String,
        record: &DeviceRecord,
    ) -> Result<TransportInfo, TransportError> {
        let device = self.get_descriptor(DT_DEVICE, 0, 18)?;
        if device.len() < 18 || device[1] != 0x01 {
            return Err(bad_data(format!("bad device descriptor {device:02X?}")));
        }
        let head = self.get_descriptor(DT_CONFIGURATION, 0, 9)?;
        if head.len() < 4 {
            return Err(bad_data("configuration descriptor shorter than 4 bytes"));
        }
        let total = u16::from_le_bytes([head[2], head[3]]);
        let configuration = self.get_descriptor(DT_CONFIGURATION, 0, total)?;
        let interfaces = parse_configuration(&configuration).map_err(bad_data)?;
        let interface = choose_interface(&interfaces, None)?;
        let endpoints = select_endpoints(&interface.endpoints)?;
        let configuration_value = configuration.get(5).copied().unwrap_or(1);
        self.control(
            SetupPacket {
                request_type: 0x00,
                request: SET_CONFIGURATION,
                value: u16::from(configuration_value),
                index: 0,
                length: 0,
            },
            &[],
            &mut [],
            ENUMERATION_TIMEOUT,
        )?;
        let language = self.language();
        let string = |index: u8| self.string(index, language);
        Ok(TransportInfo {
            name,
            vendor_id: u16::from_le_bytes([device[8], device[9]]),
            product_id: u16::from_le_bytes([device[10], device[11]]),
            bcd_device: u16::from_le_bytes([device[12], device[13]]),
            manufacturer: string(device[14]),
            product: string(device[15]),
            serial: string(device[16]),
            bus: u8::try_from(record.busnum).unwrap_or(0),
            address: u8::try_from(record.devnum).unwrap_or(0),
            interface_number: interface.number,
            interface_class: interface.class,
            endpoints: Some(endpoints),
            class_descriptor: find_class_descriptor(&interface.extra).map(<[u8]>::to_vec),
            configuration_descriptor: configuration,
        })
    }

    fn get_descriptor(
        &self,
        kind: u16,
        index: u16,
        length: u16,
    ) -> Result<Vec<u8>, TransportError> {
        self.get_descriptor_lang(kind, index, 0, length)
    }

    fn get_descriptor_lang(
        &self,
        kind: u16,
        index: u16,
        language: u16,
        length: u16,
    ) -> Result<Vec<u8>, TransportError> {
        let mut buf = vec![0u8; usize::from(length)];
        let setup = SetupPacket {
            request_type: 0x80,
            request: GET_DESCRIPTOR,
            value: kind | index,
            index: language,
            length,
        };
        let n = self.control(setup, &[], &mut buf, ENUMERATION_TIMEOUT)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// The first language the device offers, US English if it offers none.
    fn language(&self) -> u16 {
        match self.get_descriptor(DT_STRING, 0, 255) {
            Ok(d) if d.len() >= 4 => u16::from_le_bytes([d[2], d[3]]),
            _ => 0x0409,
        }
    }

    fn string(&self, index: u8, language: u16) -> Option<String> {
        if index == 0 {
            return None;
        }
        let d = self
            .get_descriptor_lang(DT_STRING, u16::from(index), language, 255)
            .ok()?;
        let len = usize::from(*d.first()?).min(d.len());
        if len < 2 || d[1] != 0x03 {
            return None;
        }
        let units: Vec<u16> = d[2..len]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Some(String::from_utf16_lossy(&units))
    }

    /// One control transfer on endpoint 0; returns the IN bytes received.
    fn control(
        &self,
        setup: SetupPacket,
        out: &[u8],
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        let _serial = lock(&self.control_lock);
        let direction = if setup.is_in() { DIR_IN } else { DIR_OUT };
        let data = self.link.transfer(
            Urb {
                direction,
                ep: 0,
                setup: setup.to_bytes(),
                out,
                in_length: buf.len(),
            },
            timeout,
            None,
        )?;
        copy_in(&data, buf)
    }

    fn read(
        &self,
        endpoint: u8,
        max_packet_size: u16,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        if self.cancel.is_cancelled() {
            return Err(TransportError::Cancelled);
        }
        let requested = round_up_to_packets(buf.len(), usize::from(max_packet_size));
        let data = self.link.transfer(
            Urb {
                direction: DIR_IN,
                ep: u32::from(endpoint & 0x0F),
                setup: [0; 8],
                out: &[],
                in_length: requested,
            },
            timeout,
            Some(&self.cancel),
        )?;
        copy_in(&data, buf)
    }

    fn endpoints(&self) -> Result<super::CcidEndpoints, TransportError> {
        self.info
            .endpoints
            .ok_or(TransportError::MissingEndpoint("bulk-IN"))
    }
}

fn copy_in(data: &[u8], buf: &mut [u8]) -> Result<usize, TransportError> {
    if data.len() > buf.len() {
        return Err(TransportError::Overflow {
            received: data.len(),
            capacity: buf.len(),
        });
    }
    buf[..data.len()].copy_from_slice(data);
    Ok(data.len())
}

/// One transfer to submit.
struct Urb<'a> {
    direction: u32,
    ep: u32,
    setup: [u8; 8],
    out: &'a [u8],
    in_length: usize,
}

impl Link {
    /// A fresh seqnum, odd for IN transfers and even for OUT transfers
    /// and unlinks, so that a reply nobody waits for can still be framed.
    fn next_seqnum(&self, direction_in: bool) -> u32 {
        loop {
            let n = self.next_seqnum.fetch_add(1, Ordering::Relaxed);
            let seqnum = n.wrapping_shl(1) | u32::from(direction_in);
            // 0 is skipped so that a zeroed header never matches a request.
            if seqnum != 0 {
                return seqnum;
            }
        }
    }

    fn send(&self, header: &UrbHeader, data: &[u8]) -> Result<(), TransportError> {
        let mut message = Vec::with_capacity(URB_HEADER_LEN + data.len());
        message.extend_from_slice(&header.to_bytes());
        message.extend_from_slice(data);
        let mut writer = lock(&self.writer);
        writer
            .write_all(&message)
            .and_then(|()| writer.flush())
            .map_err(|_| {
                self.gone.store(true, Ordering::SeqCst);
                (self.hangup)();
                TransportError::DeviceGone
            })
    }

    /// Submits one URB and waits for its completion, the timeout, or the
    /// cancel token; an interrupted URB is unlinked before returning.
    /// Whatever happens, the seqnums it used are forgotten on return.
    fn transfer(
        &self,
        urb: Urb<'_>,
        timeout: Duration,
        cancel: Option<&CancelToken>,
    ) -> Result<Vec<u8>, TransportError> {
        if self.gone.load(Ordering::SeqCst) {
            return Err(TransportError::DeviceGone);
        }
        let direction_in = urb.direction == DIR_IN;
        let length = if direction_in {
            urb.in_length
        } else {
            urb.out.len()
        };
        let seqnum = self.next_seqnum(direction_in);
        let completion = Arc::new(Completion {
            direction_in,
            in_length: urb.in_length,
            state: Mutex::default(),
        });
        {
            let mut pending = lock(&self.pending);
            if pending.len() >= MAX_PENDING {
                return Err(TransportError::io(
                    "usbip",
                    io::Error::other(format!(
                        "{} transfers already wait for the server (at most {MAX_PENDING})",
                        pending.len()
                    )),
                ));
            }
            pending.insert(seqnum, Pending::Submit(completion.clone()));
        }
        let mut forget = Forget {
            link: self,
            seqnums: [seqnum, 0],
        };
        let header = UrbHeader::CmdSubmit(CmdSubmit {
            seqnum,
            devid: self.devid,
            direction: urb.direction,
            ep: urb.ep,
            transfer_flags: 0,
            transfer_buffer_length: length as u32,
            start_frame: 0,
            number_of_packets: 0,
            interval: 0,
            setup: urb.setup,
        });
        self.send(&header, urb.out)?;
        let never = CancelToken::new();
        let token = cancel.unwrap_or(&never);
        let outcome = token.wait_for(timeout, |cx| poll(&completion, cx.waker(), false));
        let interrupted = match outcome {
            WaitOutcome::Ready(()) => return finish(&completion, None),
            WaitOutcome::Cancelled => TransportError::Cancelled,
            WaitOutcome::TimedOut => TransportError::Timeout,
        };
        let unlink_seqnum = self.next_seqnum(false);
        lock(&self.pending).insert(
            unlink_seqnum,
            Pending::Unlink {
                target: seqnum,
                completion: completion.clone(),
            },
        );
        forget.seqnums[1] = unlink_seqnum;
        let unlink = UrbHeader::CmdUnlink(CmdUnlink {
            seqnum: unlink_seqnum,
            devid: self.devid,
            direction: urb.direction,
            ep: urb.ep,
            unlink_seqnum: seqnum,
        });
        self.send(&unlink, &[])?;
        let grace = timeout.clamp(MIN_UNLINK_GRACE.min(self.unlink_grace), self.unlink_grace);
        match never.wait_for(grace, |cx| poll(&completion, cx.waker(), true)) {
            WaitOutcome::Ready(()) => finish(&completion, Some(interrupted)),
            _ => {
                tracing::warn!("usbip: no answer to CMD_UNLINK of seqnum {seqnum}");
                Err(interrupted)
            }
        }
    }

    /// The receiver thread: reads replies until the connection ends.
    fn receive<R: Read>(&self, mut reader: R) {
        if let Err(e) = self.receive_loop(&mut reader) {
            tracing::debug!("usbip: connection ended: {e}");
        }
        self.gone.store(true, Ordering::SeqCst);
        (self.hangup)();
        let pending: Vec<Pending> = lock(&self.pending).drain().map(|(_, p)| p).collect();
        for entry in pending {
            let (Pending::Submit(completion) | Pending::Unlink { completion, .. }) = entry;
            completion.update(|s| s.gone = true);
        }
    }

    fn receive_loop<R: Read>(&self, reader: &mut R) -> io::Result<()> {
        let mut junk_in_a_row = 0u32;
        loop {
            let mut header = [0u8; URB_HEADER_LEN];
            reader.read_exact(&mut header)?;
            // A header that cannot be parsed leaves no way to find the
            // next one: the connection is over.
            let answered = match UrbHeader::parse(&header, MAX_REPLY).map_err(invalid)? {
                UrbHeader::RetSubmit(ret) => self.ret_submit(reader, ret)?,
                UrbHeader::RetUnlink(ret) => self.ret_unlink(ret),
                UrbHeader::CmdSubmit(cmd) => {
                    let skip = (cmd.out_data_len() + cmd.iso_descriptors_len()) as u64;
                    skip_exact(reader, skip)?;
                    false
                }
                UrbHeader::CmdUnlink(_) => false,
            };
            if answered {
                junk_in_a_row = 0;
                continue;
            }
            self.dropped.fetch_add(1, Ordering::SeqCst);
            junk_in_a_row += 1;
            if junk_in_a_row >= MAX_CONSECUTIVE_JUNK {
                return Err(invalid(format!(
                    "{junk_in_a_row} replies in a row answer nothing this client sent"
                )));
            }
        }
    }

    /// Delivers a RET_SUBMIT to its caller; `false` if nobody waits for
    /// it (its IN data, if its seqnum is odd, is skipped).
    fn ret_submit<R: Read>(&self, reader: &mut R, ret: RetSubmit) -> io::Result<bool> {
        let completion = {
            let mut pending = lock(&self.pending);
            match pending.get(&ret.seqnum) {
                Some(Pending::Submit(completion)) => {
                    let completion = completion.clone();
                    pending.remove(&ret.seqnum);
                    Some(completion)
                }
                _ => None,
            }
        };
        let length = ret.actual_length as usize;
        let Some(completion) = completion else {
            if ret.seqnum & 1 == 1 {
                skip_exact(reader, length as u64)?;
            }
            return Ok(false);
        };
        // IN data follows even a failed URB (actual_length may be 0),
        // never an OUT one; never more than the URB asked for.
        let mut outcome = (ret.status, Vec::new());
        if completion.direction_in {
            if length > completion.in_length {
                skip_exact(reader, length as u64)?;
                outcome = (status::EOVERFLOW, Vec::new());
            } else {
                outcome.1 = vec![0u8; length];
                reader.read_exact(&mut outcome.1)?;
            }
        }
        completion.update(|s| s.submitted = Some(outcome));
        Ok(true)
    }

    /// Delivers a RET_UNLINK; `false` if nobody waits for it.
    fn ret_unlink(&self, ret: RetUnlink) -> bool {
        let mut pending = lock(&self.pending);
        let Some(Pending::Unlink { target, .. }) = pending.get(&ret.seqnum) else {
            return false;
        };
        let target = *target;
        let Some(Pending::Unlink { completion, .. }) = pending.remove(&ret.seqnum) else {
            return false;
        };
        if ret.status == status::ECONNRESET {
            // Cancelled: no RET_SUBMIT will follow.
            pending.remove(&target);
        }
        drop(pending);
        completion.update(|s| s.unlinked = Some(ret.status));
        true
    }
}

/// Removes a transfer's seqnums from the pending table when it returns.
struct Forget<'a> {
    link: &'a Link,
    /// The submit's and (once sent) the unlink's seqnum; 0 is never used.
    seqnums: [u32; 2],
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        let mut pending = lock(&self.link.pending);
        for seqnum in self.seqnums {
            if seqnum != 0 {
                pending.remove(&seqnum);
            }
        }
    }
}

fn invalid(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Reads and drops `length` bytes without buffering them.
fn skip_exact<R: Read>(reader: &mut R, length: u64) -> io::Result<()> {
    let skipped = io::copy(&mut reader.by_ref().take(length), &mut io::sink())?;
    if skipped < length {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Ready once RET_SUBMIT (or, after an unlink, RET_UNLINK) arrived or the
/// connection is gone.
fn poll(completion: &Completion, waker: &Waker, unlinking: bool) -> Poll<()> {
    let mut state = lock(&completion.state);
    if state.submitted.is_some() || state.gone || (unlinking && state.unlinked.is_some()) {
        Poll::Ready(())
    } else {
        state.waker = Some(waker.clone());
        Poll::Pending
    }
}

/// Turns a finished completion into the caller's result; `interrupted`
/// is why an unlink was sent, returned unless data won the race.
fn finish(
    completion: &Completion,
    interrupted: Option<TransportError>,
) -> Result<Vec<u8>, TransportError> {
    let mut state = lock(&completion.state);
    match (state.submitted.take(), interrupted) {
        (Some((0, data)), _) => Ok(data),
        (Some((status::ECONNRESET, _)) | None, Some(why)) if !state.gone => Err(why),
        (Some((errno, _)), _) => Err(from_errno(errno)),
        (None, _) => Err(TransportError::DeviceGone),
    }
}

/// The transport error a URB status stands for.
fn from_errno(errno: i32) -> TransportError {
    match errno {
        status::EPIPE => TransportError::Stall,
        status::ECONNRESET => TransportError::Cancelled,
        status::ETIMEDOUT => TransportError::Timeout,
        status::ENODEV | status::ESHUTDOWN => TransportError::DeviceGone,
        status::EOVERFLOW => TransportError::Overflow {
            received: 0,
            capacity: 0,
        },
        other => TransportError::io(
            "usbip URB",
            io::Error::other(format!("URB failed with status {other}")),
        ),
    }
}

impl Drop for UsbIpTransport {
    fn drop(&mut self) {
        (self.link.hangup)();
        if let Some(receiver) = self.receiver.take() {
            let _ = receiver.join();
        }
    }
}

impl Transport for UsbIpTransport {
    fn info(&self) -> &TransportInfo {
        &self.info
    }

    fn bulk_out(&self, message: &[u8], timeout: Duration) -> Result<(), TransportError> {
        let endpoint = self.endpoints()?.bulk_out;
        let _serial = lock(&self.bulk_out_lock);
        self.link
            .transfer(
                Urb {
                    direction: DIR_OUT,
                    ep: u32::from(endpoint.address & 0x0F),
                    setup: [0; 8],
                    out: message,
                    in_length: 0,
                },
                timeout,
                None,
            )
            .map(|_| ())
    }

    fn bulk_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let endpoint = self.endpoints()?.bulk_in;
        let _serial = lock(&self.bulk_in_lock);
        self.read(endpoint.address, endpoint.max_packet_size, buf, timeout)
    }

    fn interrupt_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let endpoint = self
            .endpoints()?
            .interrupt_in
            .ok_or(TransportError::NoInterruptEndpoint)?;
        let _serial = lock(&self.interrupt_lock);
        self.read(endpoint.address, endpoint.max_packet_size, buf, timeout)
    }

    fn control_in(
        &self,
        request: u8,
        value: u16,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        let setup = SetupPacket {
            request_type: 0xA1,
            request,
            value,
            index: u16::from(self.info.interface_number),
            length: u16::try_from(buf.len()).unwrap_or(u16::MAX),
        };
        let length = usize::from(setup.length);
        self.control(setup, &[], &mut buf[..length], timeout)
    }

    fn control_out(
        &self,
        request: u8,
        value: u16,
        data: &[u8],
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let length = u16::try_from(data.len())
            .map_err(|_| bad_data("control data longer than 65535 bytes"))?;
        let setup = SetupPacket {
            request_type: 0x21,
            request,
            value,
            index: u16::from(self.info.interface_number),
            length,
        };
        self.control(setup, data, &mut [], timeout).map(|_| ())
    }

    fn cancel(&self) {
        self.cancel.cancel();
    }

    fn reset_cancel(&self) {
        self.cancel.reset();
    }
}
