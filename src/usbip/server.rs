//! A USB/IP server exporting one [`Transport`] as a USB device.
//!
//! One thread accepts connections; each connection answers one operation
//! (devlist or import). An imported connection becomes a URB session: the
//! connection thread reads URB headers and queues each URB on the worker
//! of its endpoint (control, bulk-OUT, bulk-IN, interrupt-IN), so a bulk-IN
//! read pending for minutes never delays a bulk-OUT or a class request,
//! and every endpoint completes its URBs in order.
//!
//! CMD_UNLINK of a queued URB removes it; of the URB a read worker is
//! blocked on, it calls the transport's sticky `cancel` and the worker
//! answers RET_UNLINK when the read returns. The other read worker may see
//! that cancel too: it waits until every outstanding cancel is settled
//! (`reset_cancel`) and retries its own URB.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::transport::{Transport, TransportError};

use super::device::{ControlAnswer, DeviceModel};
use super::wire::{
    emit_devlist_reply, parse_import_busid, status, CmdSubmit, CmdUnlink, OpHeader, RetSubmit,
    RetUnlink, SetupPacket, UrbHeader, BUSID_LEN, DIR_IN, DIR_OUT, MAX_ISO_PACKETS, OP_HEADER_LEN,
    OP_REP_IMPORT, OP_REQ_DEVLIST, OP_REQ_IMPORT, OP_STATUS_ERROR, URB_HEADER_LEN,
};

/// Largest transfer a client may submit: a CCID message is at most
/// 65546 bytes; hosts round reads up to whole packets, and anything far
/// beyond is a hostile or broken peer.
pub const MAX_TRANSFER: u32 = 1 << 20;
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

/// What is exported: one transport under one bus id.
struct Export {
    transport: Arc<dyn Transport>,
    model: DeviceModel,
    busid: String,
    attached: Mutex<bool>,
    detached: Condvar,
    connections: AtomicUsize,
}

/// A bound, not yet running, USB/IP server.
pub struct UsbIpServer {
    listener: TcpListener,
    export: Arc<Export>,
}

/// A server running on its own thread; dropping it does not stop it,
/// [`shutdown`](ServerHandle::shutdown) does.
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
}

impl UsbIpServer {
    /// Binds `addr` and prepares to export `transport` as `busid`.
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
        let model = DeviceModel::from_info(transport.info());
        Ok(UsbIpServer {
            listener,
            export: Arc::new(Export {
                transport,
                model,
                busid: busid.to_owned(),
                attached: Mutex::new(false),
                detached: Condvar::new(),
                connections: AtomicUsize::new(0),
            }),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts and serves connections until the listener fails.
    pub fn serve(self) -> io::Result<()> {
        let never = AtomicBool::new(false);
        self.accept_loop(&never)
    }

    /// Serves on a new thread.
    pub fn spawn(self) -> io::Result<ServerHandle> {
        let addr = self.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = thread::Builder::new()
            .name("usbip-accept".into())
            .spawn(move || {
                if let Err(e) = self.accept_loop(&stop2) {
                    tracing::warn!("usbip server stopped: {e}");
                }
            })?;
        Ok(ServerHandle { addr, stop, thread })
    }

    fn accept_loop(&self, stop: &AtomicBool) -> io::Result<()> {
        for stream in self.listener.incoming() {
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
            let export = self.export.clone();
            if export.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                export.connections.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let spawned = thread::Builder::new()
                .name("usbip-conn".into())
                .spawn(move || {
                    if let Err(e) = serve_connection(stream, &export) {
                        tracing::debug!("usbip connection ended: {e}");
                    }
                    export.connections.fetch_sub(1, Ordering::SeqCst);
                });
            if let Err(e) = spawned {
                tracing::warn!("usbip: cannot start a connection thread: {e}");
                self.export.connections.fetch_sub(1, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Answers one operation; an accepted import turns into a URB session.
fn serve_connection(mut stream: TcpStream, export: &Export) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(OP_TIMEOUT))?;
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
                .and_then(|()| Session::run(stream, export));
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
    /// IN: bytes the client can take.
    in_length: usize,
}

/// The URB a worker is serving right now.
struct InFlight {
    seqnum: u32,
    /// The CMD_UNLINK seqnum, once the client asked to cancel it.
    unlinked_by: Option<u32>,
    /// Whether that unlink called `Transport::cancel` (reads only).
    cancel_issued: bool,
}

#[derive(Default)]
struct State {
    queues: [VecDeque<Urb>; 4],
    in_flight: [Option<InFlight>; 4],
    /// Transport cancels not yet settled by `reset_cancel`.
    cancels_outstanding: usize,
    closed: bool,
}

struct Session<'a> {
    export: &'a Export,
    writer: Mutex<TcpStream>,
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

impl<'a> Session<'a> {
    fn run(stream: TcpStream, export: &'a Export) -> io::Result<()> {
        let reader = stream.try_clone()?;
        let session = Session {
            export,
            writer: Mutex::new(stream),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        };
        let result = thread::scope(|scope| {
            for pipe in PIPES {
                let session = &session;
                scope.spawn(move || session.worker(pipe));
            }
            let result = session.read_loop(reader);
            session.close();
            result
        });
        // Every worker has returned: settle the closing cancel.
        export.transport.reset_cancel();
        result
    }

    fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        state.cancels_outstanding += 1;
        self.export.transport.cancel();
        self.changed.notify_all();
        drop(state);
        let _ = lock(&self.writer).shutdown(Shutdown::Both);
    }

    /// Reads URB headers until the client leaves or misbehaves.
    fn read_loop(&self, mut reader: TcpStream) -> io::Result<()> {
        loop {
            let mut header = [0u8; URB_HEADER_LEN];
            match reader.read_exact(&mut header) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
            match UrbHeader::parse(&header, MAX_TRANSFER).map_err(invalid)? {
                UrbHeader::CmdSubmit(cmd) => self.submit(&mut reader, cmd)?,
                UrbHeader::CmdUnlink(cmd) => self.unlink(cmd),
                other => return Err(invalid(format!("client sent a reply: {other:?}"))),
            }
        }
    }

    fn submit(&self, reader: &mut TcpStream, cmd: CmdSubmit) -> io::Result<()> {
        let mut data = vec![0u8; cmd.out_data_len()];
        reader.read_exact(&mut data)?;
        if cmd.number_of_packets != 0xFFFF_FFFF && cmd.number_of_packets > MAX_ISO_PACKETS {
            return Err(invalid("too many isochronous packets"));
        }
        // Isochronous descriptors: no exported endpoint is isochronous,
        // so they are read only to stay in step and the URB stalls.
        let mut iso = vec![0u8; cmd.iso_descriptors_len()];
        reader.read_exact(&mut iso)?;
        let urb = Urb {
            seqnum: cmd.seqnum,
            setup: SetupPacket::from_bytes(cmd.setup),
            data,
            in_length: if cmd.direction == DIR_IN {
                cmd.transfer_buffer_length as usize
            } else {
                0
            },
        };
        let mut state = lock(&self.state);
        match self.route(cmd.direction, cmd.ep) {
            Some(pipe) if iso.is_empty() => {
                state.queues[pipe as usize].push_back(urb);
                self.changed.notify_all();
            }
            _ => self.reply(urb.seqnum, Outcome::Failed(status::EPIPE)),
        }
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

    fn unlink(&self, cmd: CmdUnlink) {
        let mut state = lock(&self.state);
        for pipe in PIPES {
            let queue = &mut state.queues[pipe as usize];
            if let Some(at) = queue.iter().position(|u| u.seqnum == cmd.unlink_seqnum) {
                queue.remove(at);
                self.reply_unlink(cmd.seqnum, status::ECONNRESET);
                return;
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
                    return;
                }
            }
        }
        // Already completed (its RET_SUBMIT went out first).
        self.reply_unlink(cmd.seqnum, 0);
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
            match (current.unlinked_by, outcome) {
                (Some(unlink), Outcome::Cancelled) => {
                    self.reply_unlink(unlink, status::ECONNRESET);
                }
                (Some(unlink), outcome) => {
                    self.reply(urb.seqnum, outcome);
                    self.reply_unlink(unlink, 0);
                }
                (None, outcome) => self.reply(urb.seqnum, outcome),
            }
            if current.cancel_issued {
                state.cancels_outstanding -= 1;
                if state.cancels_outstanding == 0 {
                    self.export.transport.reset_cancel();
                }
                self.changed.notify_all();
            }
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

    /// Sends RET_SUBMIT; callers hold the state lock so replies and
    /// unlink answers leave in the order they were decided.
    fn reply(&self, seqnum: u32, outcome: Outcome) {
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
        self.send(&header, &data);
    }

    fn reply_unlink(&self, seqnum: u32, status: i32) {
        self.send(&UrbHeader::RetUnlink(RetUnlink { seqnum, status }), &[]);
    }

    fn send(&self, header: &UrbHeader, data: &[u8]) {
        let mut message = Vec::with_capacity(URB_HEADER_LEN + data.len());
        message.extend_from_slice(&header.to_bytes());
        message.extend_from_slice(data);
        let mut writer = lock(&self.writer);
        if let Err(e) = writer.write_all(&message) {
            tracing::debug!("usbip: client gone while replying: {e}");
            let _ = writer.shutdown(Shutdown::Both);
        }
    }
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
