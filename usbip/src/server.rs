//! A USB/IP server exporting one [`Transport`] as a USB device.
//!
//! One thread accepts connections; each connection answers one operation
//! (devlist or import). An imported connection becomes a URB session: the
//! connection thread reads URB headers and queues each URB on the worker
//! of its endpoint (control, bulk-OUT, bulk-IN, interrupt-IN), so a bulk-IN
//! read pending for minutes never delays a bulk-OUT or a class request,
//! and every endpoint completes its URBs in order. Workers build their
//! replies under the session's state lock (so replies and unlink answers
//! keep the order they were decided in) and queue them; one writer thread
//! sends them without holding the lock.
//!
//! CMD_UNLINK of a queued URB removes it; of the URB a read worker is
//! blocked on, it calls the transport's sticky `cancel` and the worker
//! answers RET_UNLINK when the read returns. The other read worker may see
//! that cancel too: it waits until every outstanding cancel is settled
//! (`reset_cancel`) and retries its own URB.
//!
//! # Limits
//!
//! A CCID host keeps one bulk-IN, one bulk-OUT, one interrupt-IN and one
//! control URB in flight (a few more when libusb splits a long transfer).
//! A session may hold at most [`MAX_OUTSTANDING_URBS`] requests (URBs and
//! unlinks not yet answered on the wire, queued, running or waiting for
//! the writer) and [`MAX_BUFFERED_BYTES`] of their buffers. Buffers are
//! sized by what the transfer can really carry, not by what the client
//! asks for: bulk-IN at most the reader's `dwMaxCCIDMessageLength` (at
//! least 271, at most a whole CCID message, rounded up to packets),
//! bulk-OUT its data (at most a whole CCID message), interrupt-IN at most
//! the largest NotifySlotChange, control at most wLength. A client that goes beyond
//! either cap, or sends OUT data longer than its endpoint can carry, is
//! broken or hostile: **its session is closed** (not answered with an
//! error, which would itself have to be buffered) and the device is
//! released for the next client.
//!
//! A client that stops reading its replies is disconnected once a reply
//! has waited [`DEFAULT_REPLY_TIMEOUT`] (or the
//! [`reply_timeout`](UsbIpServer::reply_timeout) set) for the socket.
//!
//! # No authentication
//!
//! USB/IP has none: whoever reaches the port can import the device, and
//! with it send raw CCID commands, Escape commands and PIN-pad requests
//! to a real reader. Bind to loopback (the CLI's default) and reach it
//! from elsewhere through an SSH tunnel; binding another address logs a
//! warning.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use ferroccid::{Transport, TransportError, TransportInfo};

use crate::device::{ControlAnswer, DeviceModel};
use ferroccid::usbip::wire::{
    emit_devlist_reply, parse_import_busid, status, CmdSubmit, CmdUnlink, OpHeader, RetSubmit,
    RetUnlink, SetupPacket, UrbHeader, BUSID_LEN, DIR_IN, DIR_OUT, MAX_ISO_PACKETS, OP_HEADER_LEN,
    OP_REP_IMPORT, OP_REQ_DEVLIST, OP_REQ_IMPORT, OP_STATUS_ERROR, URB_HEADER_LEN,
};

/// Largest transfer length a URB header may state: anything far beyond a
/// CCID message (65546 bytes, rounded up to packets by hosts) is a
/// hostile or broken peer. IN lengths up to this are accepted but
/// buffers are sized by the endpoint (see the module doc); OUT data is
/// further limited per endpoint.
pub const MAX_TRANSFER: u32 = 1 << 20;
/// Requests (URBs and unlinks) a session may have unanswered on the wire:
/// eight times the four a CCID host keeps in flight.
pub const MAX_OUTSTANDING_URBS: usize = 32;
/// Bytes a session may hold in URB buffers (OUT data, IN buffers, replies
/// waiting for the writer): about eight whole CCID messages.
pub const MAX_BUFFERED_BYTES: usize = 512 * 1024;
/// How long one reply may wait for a client that does not read before
/// the session is closed.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// A whole CCID message: header and the largest `dwLength` CCID allows
/// for an extended APDU exchange (65544 + 10, as `trace` accepts).
const MAX_CCID_MESSAGE: usize = 10 + 65_538;
/// Smallest message cap used whatever the descriptor says: a short APDU
/// with its header (some readers under-report, see `reader::quirks`).
const MIN_CCID_MESSAGE: usize = 271;
/// RDR_to_PC_NotifySlotChange of 256 slots (1 + 64 bytes) is the longest
/// interrupt message; one spare byte.
const MAX_INTERRUPT_MESSAGE: usize = 66;
/// How long an operation request (devlist, import) may take to arrive.
const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// Reads are issued in slices so a closed session is noticed even if the
/// transport ignored the cancel.
const READ_SLICE: Duration = Duration::from_secs(1);
/// Timeout for bulk-OUT writes and class requests.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an import waits for the previous client's session to end.
const ATTACH_WAIT: Duration = Duration::from_secs(3);
/// Connections served at once; extra ones are closed unanswered.
const MAX_CONNECTIONS: usize = 16;
/// The bus and device number the export claims (devid = 1 << 16 | 2).
const BUSNUM: u32 = 1;
const DEVNUM: u32 = 2;

/// How much each endpoint's transfers may carry, from the exported
/// transport's descriptors.
#[derive(Debug, Clone, Copy)]
struct Limits {
    bulk_in: usize,
    bulk_out: usize,
    interrupt_in: usize,
}

impl Limits {
    fn from_info(info: &TransportInfo) -> Self {
        // dwMaxCCIDMessageLength (CCID §5.1, offset 44).
        let announced = info
            .class_descriptor
            .as_deref()
            .and_then(|d| d.get(44..48))
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .unwrap_or(MAX_CCID_MESSAGE);
        let message = announced.clamp(MIN_CCID_MESSAGE, MAX_CCID_MESSAGE);
        let packets = |len: usize, mps: Option<u16>| {
            let mps = usize::from(mps.unwrap_or(64)).max(1);
            len.div_ceil(mps) * mps
        };
        let endpoints = info.endpoints;
        Limits {
            bulk_in: packets(message, endpoints.map(|e| e.bulk_in.max_packet_size)),
            // OUT data is charged at its own length; the cap only refuses
            // what no CCID message can be (hosts follow the descriptor,
            // but a wrong descriptor must not cut a host's command).
            bulk_out: packets(
                MAX_CCID_MESSAGE,
                endpoints.map(|e| e.bulk_out.max_packet_size),
            ),
            interrupt_in: packets(
                MAX_INTERRUPT_MESSAGE,
                endpoints.and_then(|e| e.interrupt_in.map(|i| i.max_packet_size)),
            ),
        }
    }
}

/// Counters over every session of a server, for tests and monitoring.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Stats {
    /// Most requests any session had outstanding at once.
    pub peak_outstanding: AtomicUsize,
    /// Most buffer bytes any session held at once.
    pub peak_buffered: AtomicUsize,
    /// Sessions closed for going beyond a cap.
    pub over_limit: AtomicUsize,
    /// Sessions closed because the client stopped reading.
    pub write_timeouts: AtomicUsize,
    /// Requests outstanding right now, over every session.
    pub outstanding: AtomicUsize,
}

/// What is exported: one transport under one bus id.
struct Export {
    transport: Arc<dyn Transport>,
    model: DeviceModel,
    limits: Limits,
    busid: String,
    attached: Mutex<bool>,
    detached: Condvar,
    connections: AtomicUsize,
    reply_timeout: Duration,
    stats: Arc<Stats>,
}

impl Export {
    fn new(transport: Arc<dyn Transport>, busid: &str) -> Self {
        let model = DeviceModel::from_info(transport.info());
        let limits = Limits::from_info(transport.info());
        Export {
            transport,
            model,
            limits,
            busid: busid.to_owned(),
            attached: Mutex::new(false),
            detached: Condvar::new(),
            connections: AtomicUsize::new(0),
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
            stats: Arc::default(),
        }
    }
}

/// A bound, not yet running, USB/IP server.
pub struct UsbIpServer {
    listener: TcpListener,
    export: Export,
}

/// A server running on its own thread; dropping it does not stop it,
/// [`shutdown`](ServerHandle::shutdown) does.
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    thread: thread::JoinHandle<()>,
}

impl UsbIpServer {
    /// Binds `addr` and prepares to export `transport` as `busid`.
    ///
    /// USB/IP has no authentication: a non-loopback address logs a
    /// warning (see the module doc).
    pub fn bind(
        addr: impl ToSocketAddrs,
        transport: Arc<dyn Transport>,
        busid: &str,
    ) -> io::Result<Self> {
        if busid.is_empty() || busid.len() >= BUSID_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bus id must be 1 to 31 bytes",
            ));
        }
        let listener = TcpListener::bind(addr)?;
        if let Ok(bound) = listener.local_addr() {
            if !bound.ip().is_loopback() {
                tracing::warn!(
                    "usbip: listening on {bound}, not loopback: USB/IP has no \
                     authentication, anyone who reaches this port controls the reader"
                );
            }
        }
        Ok(UsbIpServer {
            listener,
            export: Export::new(transport, busid),
        })
    }

    /// How long one reply may wait for a client that does not read before
    /// its session is closed and the device released (default
    /// [`DEFAULT_REPLY_TIMEOUT`]).
    pub fn reply_timeout(mut self, timeout: Duration) -> Self {
        self.export.reply_timeout = timeout;
        self
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts and serves connections until the listener fails.
    pub fn serve(self) -> io::Result<()> {
        let never = AtomicBool::new(false);
        let UsbIpServer { listener, export } = self;
        accept_loop(&listener, &Arc::new(export), &never)
    }

    /// Serves on a new thread.
    pub fn spawn(self) -> io::Result<ServerHandle> {
        let addr = self.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let stats = self.export.stats.clone();
        let UsbIpServer { listener, export } = self;
        let export = Arc::new(export);
        let thread = thread::Builder::new()
            .name("usbip-accept".into())
            .spawn(move || {
                if let Err(e) = accept_loop(&listener, &export, &stop2) {
                    tracing::warn!("usbip server stopped: {e}");
                }
            })?;
        Ok(ServerHandle {
            addr,
            stop,
            stats,
            thread,
        })
    }
}

fn accept_loop(listener: &TcpListener, export: &Arc<Export>, stop: &AtomicBool) -> io::Result<()> {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("usbip accept: {e}");
                continue;
            }
        };
        let export = export.clone();
        if export.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            export.connections.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let export2 = export.clone();
        let spawned = thread::Builder::new()
            .name("usbip-conn".into())
            .spawn(move || {
                if let Err(e) = serve_connection(stream, &export2) {
                    tracing::debug!("usbip connection ended: {e}");
                }
                export2.connections.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            tracing::warn!("usbip: cannot start a connection thread: {e}");
            export.connections.fetch_sub(1, Ordering::SeqCst);
        }
    }
    Ok(())
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counters over the sessions served so far (for tests).
    #[doc(hidden)]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Stops accepting and waits for the accept thread; sessions already
    /// running end when their clients disconnect.
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = self.thread.join();
    }
}

/// What one session used at most, and how it ended.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionReport {
    /// Most requests outstanding at once.
    pub peak_outstanding: usize,
    /// Most buffer bytes held at once.
    pub peak_buffered: usize,
    /// Whether the session was closed for going beyond a cap.
    pub over_limit: bool,
}

/// Runs one URB session of an already imported device over any byte
/// streams (a fuzz target's input and a sink); returns when `reader`
/// ends (after waiting up to `linger` for the requests already read to
/// be answered) or the client breaks a limit.
#[doc(hidden)]
pub fn run_session<R: Read, W: Write + Send>(
    transport: Arc<dyn Transport>,
    reader: R,
    writer: W,
    linger: Duration,
) -> (io::Result<()>, SessionReport) {
    let export = Export::new(transport, "1-1");
    Session::run(reader, writer, &export, linger, &|| {})
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Answers one operation; an accepted import turns into a URB session.
fn serve_connection(mut stream: TcpStream, export: &Export) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(OP_TIMEOUT))?;
    stream.set_write_timeout(Some(OP_TIMEOUT))?;
    let mut header = [0u8; OP_HEADER_LEN];
    stream.read_exact(&mut header)?;
    let op = OpHeader::parse(&header).map_err(invalid)?;
    match op.code {
        OP_REQ_DEVLIST => {
            let record = export.model.record(&export.busid, BUSNUM, DEVNUM);
            let reply = emit_devlist_reply(&[(record, export.model.interfaces().to_vec())]);
            stream.write_all(&reply)
        }
        OP_REQ_IMPORT => {
            let mut busid = [0u8; BUSID_LEN];
            stream.read_exact(&mut busid)?;
            let wanted = parse_import_busid(&busid).map_err(invalid)?;
            if wanted != export.busid || !claim(export) {
                let mut refusal = OpHeader::new(OP_REP_IMPORT);
                refusal.status = OP_STATUS_ERROR;
                return stream.write_all(&refusal.to_bytes());
            }
            let mut reply = OpHeader::new(OP_REP_IMPORT).to_bytes().to_vec();
            reply.extend_from_slice(
                &export
                    .model
                    .record(&export.busid, BUSNUM, DEVNUM)
                    .to_bytes(),
            );
            let result = stream
                .write_all(&reply)
                .and_then(|()| stream.set_read_timeout(None))
                .and_then(|()| stream.set_write_timeout(Some(export.reply_timeout)))
                .and_then(|()| stream.try_clone())
                .and_then(|writer| {
                    let hangup = || {
                        let _ = stream.shutdown(Shutdown::Both);
                    };
                    Session::run(&stream, writer, export, Duration::ZERO, &hangup).0
                });
            *lock(&export.attached) = false;
            export.detached.notify_all();
            result
        }
        other => Err(invalid(format!("unknown operation 0x{other:04X}"))),
    }
}

/// Marks the export attached, waiting a little for a previous session
/// that is still tearing down.
fn claim(export: &Export) -> bool {
    let deadline = Instant::now() + ATTACH_WAIT;
    let mut attached = lock(&export.attached);
    while *attached {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        attached = export
            .detached
            .wait_timeout(attached, deadline - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    *attached = true;
    true
}

fn invalid(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// The endpoint workers, indexed into [`State`]'s arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pipe {
    Control = 0,
    BulkOut = 1,
    BulkIn = 2,
    InterruptIn = 3,
}

const PIPES: [Pipe; 4] = [
    Pipe::Control,
    Pipe::BulkOut,
    Pipe::BulkIn,
    Pipe::InterruptIn,
];

impl Pipe {
    /// Reads are the only transfers the transport can cancel.
    fn is_read(self) -> bool {
        matches!(self, Pipe::BulkIn | Pipe::InterruptIn)
    }
}

/// One submitted URB waiting for or being served by its worker.
struct Urb {
    seqnum: u32,
    setup: SetupPacket,
    /// OUT data, empty for IN.
    data: Vec<u8>,
    /// IN: bytes the client can take, cut to what the endpoint carries.
    in_length: usize,
    /// Buffer bytes charged to the session until its answer is written.
    reserved: usize,
}

/// The URB a worker is serving right now.
struct InFlight {
    seqnum: u32,
    /// The CMD_UNLINK seqnum, once the client asked to cancel it.
    unlinked_by: Option<u32>,
    /// Whether that unlink called `Transport::cancel` (reads only).
    cancel_issued: bool,
}

/// An encoded reply waiting for the writer, and the requests and bytes
/// that are settled once it is on the wire.
struct Reply {
    message: Vec<u8>,
    requests: usize,
    bytes: usize,
}

#[derive(Default)]
struct State {
    queues: [VecDeque<Urb>; 4],
    in_flight: [Option<InFlight>; 4],
    replies: VecDeque<Reply>,
    /// Requests read but not yet answered on the wire.
    outstanding: usize,
    /// Buffer bytes charged to those requests.
    buffered: usize,
    /// Transport cancels not yet settled by `reset_cancel`.
    cancels_outstanding: usize,
    closed: bool,
    report: SessionReport,
}

impl State {
    /// Charges one request; `false` (and nothing charged) beyond a cap.
    fn charge(&mut self, bytes: usize, stats: &Stats) -> bool {
        if self.outstanding >= MAX_OUTSTANDING_URBS
            || self.buffered.saturating_add(bytes) > MAX_BUFFERED_BYTES
        {
            if !self.report.over_limit {
                stats.over_limit.fetch_add(1, Ordering::SeqCst);
            }
            self.report.over_limit = true;
            return false;
        }
        self.outstanding += 1;
        self.buffered += bytes;
        stats.outstanding.fetch_add(1, Ordering::SeqCst);
        stats
            .peak_outstanding
            .fetch_max(self.outstanding, Ordering::SeqCst);
        stats
            .peak_buffered
            .fetch_max(self.buffered, Ordering::SeqCst);
        self.report.peak_outstanding = self.report.peak_outstanding.max(self.outstanding);
        self.report.peak_buffered = self.report.peak_buffered.max(self.buffered);
        true
    }

    fn settle(&mut self, requests: usize, bytes: usize, stats: &Stats) {
        self.outstanding -= requests;
        self.buffered -= bytes;
        stats.outstanding.fetch_sub(requests, Ordering::SeqCst);
    }
}

struct Session<'a> {
    export: &'a Export,
    state: Mutex<State>,
    changed: Condvar,
}

/// How a worker's transfer ended.
enum Outcome {
    /// IN data or OUT byte count, status 0.
    Done { data: Vec<u8>, out_length: usize },
    /// A negative errno for RET_SUBMIT.
    Failed(i32),
    /// The transport call was cancelled (by an unlink or the session end).
    Cancelled,
}

/// Why the read loop stopped a session.
fn over_limit() -> io::Error {
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "client went beyond {MAX_OUTSTANDING_URBS} outstanding requests or \
             {MAX_BUFFERED_BYTES} buffered bytes"
        ),
    )
}

impl<'a> Session<'a> {
    /// Serves URBs read from `reader`, replying on `writer`; `hangup`
    /// closes the connection so a blocked `reader` returns.
    fn run<R: Read, W: Write + Send>(
        reader: R,
        writer: W,
        export: &'a Export,
        linger: Duration,
        hangup: &(dyn Fn() + Sync),
    ) -> (io::Result<()>, SessionReport) {
        let session = Session {
            export,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        };
        let result = thread::scope(|scope| {
            let session = &session;
            let mut threads: Vec<_> = PIPES
                .into_iter()
                .map(|pipe| scope.spawn(move || session.worker(pipe)))
                .collect();
            threads.push(scope.spawn(move || session.write_loop(writer, hangup)));
            let result = session.read_loop(reader);
            if result.is_ok() && !linger.is_zero() {
                session.linger(linger);
            }
            session.close();
            hangup();
            // Joined one by one, so each thread has really exited (its
            // thread-locals freed) when the session returns; the scope
            // alone only waits for the closures.
            for thread in threads {
                let _ = thread.join();
            }
            result
        });
        // Every worker has returned: settle the closing cancel.
        export.transport.reset_cancel();
        let stats = &export.stats;
        let report = {
            let mut state = lock(&session.state);
            let (requests, bytes) = (state.outstanding, state.buffered);
            state.settle(requests, bytes, stats);
            state.report
        };
        if report.over_limit {
            tracing::warn!("usbip: session closed: {}", over_limit());
        }
        (result, report)
    }

    fn close(&self) {
        let mut state = lock(&self.state);
        if !state.closed {
            state.closed = true;
            state.cancels_outstanding += 1;
            self.export.transport.cancel();
        }
        self.changed.notify_all();
    }

    /// Waits until every request read so far is answered, or `linger`.
    fn linger(&self, linger: Duration) {
        let deadline = Instant::now() + linger;
        let mut state = lock(&self.state);
        while state.outstanding > 0 && !state.closed {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Sends queued replies, without the state lock, until the session
    /// closes or a write fails (the client left, or stopped reading for
    /// the reply timeout): then it closes the session itself.
    fn write_loop<W: Write>(&self, mut writer: W, hangup: &(dyn Fn() + Sync)) {
        loop {
            let reply = {
                let mut state = lock(&self.state);
                loop {
                    if state.closed {
                        return;
                    }
                    if let Some(reply) = state.replies.pop_front() {
                        break reply;
                    }
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            if let Err(e) = writer
                .write_all(&reply.message)
                .and_then(|()| writer.flush())
            {
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) {
                    self.export
                        .stats
                        .write_timeouts
                        .fetch_add(1, Ordering::SeqCst);
                    tracing::warn!("usbip: client stopped reading its replies; session closed");
                } else {
                    tracing::debug!("usbip: client gone while replying: {e}");
                }
                self.close();
                hangup();
                return;
            }
            let mut state = lock(&self.state);
            state.settle(reply.requests, reply.bytes, &self.export.stats);
            self.changed.notify_all();
        }
    }

    /// Reads URB headers until the client leaves or misbehaves.
    fn read_loop<R: Read>(&self, mut reader: R) -> io::Result<()> {
        loop {
            let mut header = [0u8; URB_HEADER_LEN];
            match read_all_or_eof(&mut reader, &mut header) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => return Err(e),
            }
            if lock(&self.state).closed {
                return Ok(());
            }
            match UrbHeader::parse(&header, MAX_TRANSFER).map_err(invalid)? {
                UrbHeader::CmdSubmit(cmd) => self.submit(&mut reader, cmd)?,
                UrbHeader::CmdUnlink(cmd) => self.unlink(cmd)?,
                other => return Err(invalid(format!("client sent a reply: {other:?}"))),
            }
        }
    }

    fn submit<R: Read>(&self, reader: &mut R, cmd: CmdSubmit) -> io::Result<()> {
        if cmd.number_of_packets != 0xFFFF_FFFF && cmd.number_of_packets > MAX_ISO_PACKETS {
            return Err(invalid("too many isochronous packets"));
        }
        let route = self.route(cmd.direction, cmd.ep);
        let limits = &self.export.limits;
        let setup = SetupPacket::from_bytes(cmd.setup);
        let requested = cmd.transfer_buffer_length as usize;
        // What this transfer can really carry.
        let capacity = match route {
            Some(Pipe::Control) => usize::from(setup.length),
            Some(Pipe::BulkOut) => limits.bulk_out,
            Some(Pipe::BulkIn) => limits.bulk_in,
            Some(Pipe::InterruptIn) => limits.interrupt_in,
            None => 0,
        };
        let out_length = cmd.out_data_len();
        // OUT data of an endpoint that does not exist is read (to stay in
        // step) and dropped; no more than a control transfer's worth.
        let out_capacity = match route {
            Some(_) => capacity,
            None => usize::from(u16::MAX),
        };
        if out_length > out_capacity {
            return Err(invalid(format!(
                "{out_length} bytes of OUT data for an endpoint that carries {out_capacity}"
            )));
        }
        let in_length = if cmd.direction == DIR_IN {
            requested.min(capacity)
        } else {
            0
        };
        let reserved = URB_HEADER_LEN + out_length.max(in_length);
        if !lock(&self.state).charge(reserved, &self.export.stats) {
            return Err(over_limit());
        }
        let mut data = vec![0u8; out_length];
        let read = reader.read_exact(&mut data).and_then(|()| {
            // Isochronous descriptors: no exported endpoint is
            // isochronous, so they are skipped to stay in step and the
            // URB stalls.
            let iso = cmd.iso_descriptors_len() as u64;
            let skipped = io::copy(&mut reader.by_ref().take(iso), &mut io::sink())?;
            if skipped < iso {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            Ok(iso != 0)
        });
        let mut state = lock(&self.state);
        let isochronous = match read {
            Ok(isochronous) => isochronous,
            Err(e) => {
                state.settle(1, reserved, &self.export.stats);
                return Err(e);
            }
        };
        let urb = Urb {
            seqnum: cmd.seqnum,
            setup,
            data,
            in_length,
            reserved,
        };
        match route {
            Some(pipe) if !isochronous => state.queues[pipe as usize].push_back(urb),
            _ => self.reply(
                &mut state,
                urb.seqnum,
                Outcome::Failed(status::EPIPE),
                (1, reserved),
            ),
        }
        self.changed.notify_all();
        Ok(())
    }

    fn route(&self, direction: u32, ep: u32) -> Option<Pipe> {
        if ep == 0 {
            return Some(Pipe::Control);
        }
        let endpoints = self.export.transport.info().endpoints?;
        let number = |address: u8| u32::from(address & 0x0F);
        match direction {
            DIR_OUT if ep == number(endpoints.bulk_out.address) => Some(Pipe::BulkOut),
            DIR_IN if ep == number(endpoints.bulk_in.address) => Some(Pipe::BulkIn),
            DIR_IN if endpoints.interrupt_in.map(|i| number(i.address)) == Some(ep) => {
                Some(Pipe::InterruptIn)
            }
            _ => None,
        }
    }

    fn unlink(&self, cmd: CmdUnlink) -> io::Result<()> {
        let mut state = lock(&self.state);
        if !state.charge(URB_HEADER_LEN, &self.export.stats) {
            return Err(over_limit());
        }
        let own = (1, URB_HEADER_LEN);
        for pipe in PIPES {
            let queue = &mut state.queues[pipe as usize];
            if let Some(at) = queue.iter().position(|u| u.seqnum == cmd.unlink_seqnum) {
                let removed = queue.remove(at).map_or(0, |u| u.reserved);
                let settled = (2, URB_HEADER_LEN + removed);
                self.reply_unlink(&mut state, cmd.seqnum, status::ECONNRESET, settled);
                return Ok(());
            }
        }
        for pipe in PIPES {
            let State {
                in_flight,
                cancels_outstanding,
                ..
            } = &mut *state;
            if let Some(current) = in_flight[pipe as usize].as_mut() {
                if current.seqnum == cmd.unlink_seqnum && current.unlinked_by.is_none() {
                    current.unlinked_by = Some(cmd.seqnum);
                    if pipe.is_read() {
                        current.cancel_issued = true;
                        *cancels_outstanding += 1;
                        self.export.transport.cancel();
                    }
                    // The worker answers when its transfer returns.
                    return Ok(());
                }
            }
        }
        // Already completed (its RET_SUBMIT went out first).
        self.reply_unlink(&mut state, cmd.seqnum, 0, own);
        Ok(())
    }

    fn worker(&self, pipe: Pipe) {
        loop {
            let urb = {
                let mut state = lock(&self.state);
                loop {
                    if state.closed {
                        return;
                    }
                    if let Some(urb) = state.queues[pipe as usize].pop_front() {
                        state.in_flight[pipe as usize] = Some(InFlight {
                            seqnum: urb.seqnum,
                            unlinked_by: None,
                            cancel_issued: false,
                        });
                        break urb;
                    }
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            let outcome = self.execute(pipe, &urb);
            let mut state = lock(&self.state);
            let Some(current) = state.in_flight[pipe as usize].take() else {
                return;
            };
            if state.closed {
                return;
            }
            let own = (1, urb.reserved);
            match (current.unlinked_by, outcome) {
                (Some(unlink), Outcome::Cancelled) => {
                    let settled = (2, urb.reserved + URB_HEADER_LEN);
                    self.reply_unlink(&mut state, unlink, status::ECONNRESET, settled);
                }
                (Some(unlink), outcome) => {
                    self.reply(&mut state, urb.seqnum, outcome, own);
                    self.reply_unlink(&mut state, unlink, 0, (1, URB_HEADER_LEN));
                }
                (None, outcome) => self.reply(&mut state, urb.seqnum, outcome, own),
            }
            if current.cancel_issued {
                state.cancels_outstanding -= 1;
                if state.cancels_outstanding == 0 {
                    self.export.transport.reset_cancel();
                }
            }
            self.changed.notify_all();
        }
    }

    /// Runs one URB against the transport.
    fn execute(&self, pipe: Pipe, urb: &Urb) -> Outcome {
        let transport = &*self.export.transport;
        match pipe {
            Pipe::Control => self.control(urb),
            Pipe::BulkOut => match transport.bulk_out(&urb.data, WRITE_TIMEOUT) {
                Ok(()) => Outcome::Done {
                    data: Vec::new(),
                    out_length: urb.data.len(),
                },
                Err(e) => Outcome::Failed(errno(&e)),
            },
            Pipe::BulkIn | Pipe::InterruptIn => {
                let mut buf = vec![0u8; urb.in_length];
                loop {
                    let result = if pipe == Pipe::BulkIn {
                        transport.bulk_in(&mut buf, READ_SLICE)
                    } else {
                        transport.interrupt_in(&mut buf, READ_SLICE)
                    };
                    match result {
                        Ok(n) => {
                            buf.truncate(n);
                            return Outcome::Done {
                                data: buf,
                                out_length: 0,
                            };
                        }
                        Err(TransportError::Timeout) if !lock(&self.state).closed => continue,
                        Err(TransportError::Cancelled) => {
                            if !self.wait_out_foreign_cancel(pipe) {
                                return Outcome::Cancelled;
                            }
                        }
                        Err(e) => return Outcome::Failed(errno(&e)),
                    }
                }
            }
        }
    }

    /// After a `Cancelled` read: `false` if the cancel was meant for this
    /// URB or the session is closing; otherwise waits until the other
    /// worker's cancel is settled and returns `true` to retry.
    fn wait_out_foreign_cancel(&self, pipe: Pipe) -> bool {
        let mut state = lock(&self.state);
        loop {
            let mine = state.in_flight[pipe as usize]
                .as_ref()
                .is_some_and(|c| c.unlinked_by.is_some());
            if mine || state.closed {
                return false;
            }
            if state.cancels_outstanding == 0 {
                return true;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn control(&self, urb: &Urb) -> Outcome {
        let transport = &*self.export.transport;
        let cut = |mut data: Vec<u8>| {
            data.truncate(urb.in_length);
            Outcome::Done {
                data,
                out_length: 0,
            }
        };
        match self.export.model.answer(&urb.setup) {
            ControlAnswer::Data(data) => cut(data),
            ControlAnswer::Ack => Outcome::Done {
                data: Vec::new(),
                out_length: urb.data.len(),
            },
            ControlAnswer::Stall => Outcome::Failed(status::EPIPE),
            ControlAnswer::ClassIn {
                request,
                value,
                length,
            } => {
                let mut buf = vec![0u8; usize::from(length).min(urb.in_length)];
                match transport.control_in(request, value, &mut buf, WRITE_TIMEOUT) {
                    Ok(n) => {
                        buf.truncate(n);
                        cut(buf)
                    }
                    Err(e) => Outcome::Failed(errno(&e)),
                }
            }
            ControlAnswer::ClassOut { request, value } => {
                match transport.control_out(request, value, &urb.data, WRITE_TIMEOUT) {
                    Ok(()) => Outcome::Done {
                        data: Vec::new(),
                        out_length: urb.data.len(),
                    },
                    Err(e) => Outcome::Failed(errno(&e)),
                }
            }
        }
    }

    /// Queues RET_SUBMIT; callers hold the state lock so replies and
    /// unlink answers leave in the order they were decided. `settled`
    /// (requests, bytes) is released once it is written.
    fn reply(&self, state: &mut State, seqnum: u32, outcome: Outcome, settled: (usize, usize)) {
        let (status, actual_length, data) = match outcome {
            Outcome::Done { data, out_length } if data.is_empty() => (0, out_length, data),
            Outcome::Done { data, .. } => (0, data.len(), data),
            Outcome::Failed(errno) => (errno, 0, Vec::new()),
            Outcome::Cancelled => (status::ECONNRESET, 0, Vec::new()),
        };
        let header = UrbHeader::RetSubmit(RetSubmit {
            seqnum,
            status,
            actual_length: actual_length as u32,
            ..Default::default()
        });
        Self::queue(state, &header, &data, settled);
        self.changed.notify_all();
    }

    fn reply_unlink(&self, state: &mut State, seqnum: u32, status: i32, settled: (usize, usize)) {
        let header = UrbHeader::RetUnlink(RetUnlink { seqnum, status });
        Self::queue(state, &header, &[], settled);
        self.changed.notify_all();
    }

    fn queue(state: &mut State, header: &UrbHeader, data: &[u8], settled: (usize, usize)) {
        let mut message = Vec::with_capacity(URB_HEADER_LEN + data.len());
        message.extend_from_slice(&header.to_bytes());
        message.extend_from_slice(data);
        state.replies.push_back(Reply {
            message,
            requests: settled.0,
            bytes: settled.1,
        });
    }
}

/// Fills `buf`; `Ok(false)` on a clean end of stream before its first
/// byte, `UnexpectedEof` in the middle.
fn read_all_or_eof<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The Linux URB status a host driver expects for each transport error.
fn errno(e: &TransportError) -> i32 {
    match e {
        TransportError::Stall | TransportError::NoInterruptEndpoint => status::EPIPE,
        TransportError::Timeout => status::ETIMEDOUT,
        TransportError::Cancelled => status::ECONNRESET,
        TransportError::DeviceGone => status::ESHUTDOWN,
        TransportError::Overflow { .. } => status::EOVERFLOW,
        _ => status::EPROTO,
    }
}
